"""Pictures a researcher looks at: sample grids and training curves (headless matplotlib)."""

import matplotlib

matplotlib.use("Agg")  # no display on servers, CI or TPU hosts
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def tile_grid(images_NxHxW: np.ndarray, rows: int, cols: int, pad: int = 2) -> np.ndarray:
  """rows x cols images in [0, 1] tiled into one array with `pad` pixels of white between."""
  n, h, w = images_NxHxW.shape
  assert n >= rows * cols, f"need {rows * cols} images, got {n}"
  grid = np.ones((rows * (h + pad) - pad, cols * (w + pad) - pad), np.float32)
  for i in range(rows * cols):
    r, c = divmod(i, cols)
    grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = images_NxHxW[i]
  return grid


def save_image_grid(images_NxHxW: np.ndarray, path, rows: int, cols: int, title: str = "") -> None:
  """One figure with a single tiled image: far faster than the tutorial's rows*cols subplots."""
  fig, ax = plt.subplots(figsize=(4, 4 * rows / cols + (0.3 if title else 0)), dpi=100)
  ax.imshow(tile_grid(np.clip(images_NxHxW, 0.0, 1.0), rows, cols), cmap="gray", vmin=0, vmax=1)
  ax.axis("off")
  if title:
    ax.set_title(title, fontsize=10)
  fig.savefig(path, bbox_inches="tight", pad_inches=0.05)
  plt.close(fig)


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
  if window <= 1 or len(x) < window:
    return x
  return np.convolve(x, np.ones(window) / window, mode="valid")


def save_loss_curves(rows: list[dict], path, title: str = "") -> None:
  """Losses (top) and discriminator accuracy (bottom) against step, raw and smoothed."""
  steps = np.array([r["step"] for r in rows])
  window = max(1, len(rows) // 50)
  fig, (ax_loss, ax_acc) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, dpi=100)
  for name, color in (("d_loss", "tab:blue"), ("g_loss", "tab:orange")):
    values = np.array([r[name] for r in rows], np.float64)
    ax_loss.plot(steps, values, color=color, alpha=0.25, linewidth=0.7)
    ax_loss.plot(steps[window - 1:], moving_average(values, window), color=color, label=name)
  acc = np.array([r["d_acc"] for r in rows], np.float64)
  ax_acc.plot(steps, acc, color="tab:green", alpha=0.25, linewidth=0.7)
  ax_acc.plot(steps[window - 1:], moving_average(acc, window), color="tab:green", label="d_acc")
  ax_acc.axhline(0.5, color="gray", linestyle=":", linewidth=1)
  ax_loss.set_ylabel("loss")
  ax_acc.set_ylabel("accuracy")
  ax_acc.set_xlabel("iteration")
  ax_loss.legend()
  ax_acc.legend()
  if title:
    ax_loss.set_title(title)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def save_eval_curves(rows: list[dict], path, title: str = "") -> None:
  """Classifier-FID (log scale) and the bounded metrics against step."""
  steps = [r["step"] for r in rows]
  fig, (ax_fid, ax_rest) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, dpi=100)
  ax_fid.plot(steps, [r["fid"] for r in rows], marker="o", color="tab:red", label="classifier FID")
  ax_fid.set_yscale("log")
  ax_fid.set_ylabel("FID (judge features)")
  for name in ("precision", "recall", "confident"):
    ax_rest.plot(steps, [r[name] for r in rows], marker=".", label=name)
  ax_rest.plot(steps, [r["score"] / 10 for r in rows], marker=".", label="score / 10")
  ax_rest.set_ylim(0, 1.05)
  ax_rest.set_xlabel("iteration")
  for ax in (ax_fid, ax_rest):
    ax.legend()
  if title:
    ax_fid.set_title(title)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
