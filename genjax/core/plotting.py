"""Pictures a researcher looks at: sample grids and training curves (headless matplotlib)."""

import functools

import numpy as np


@functools.cache
def pyplot():
  """matplotlib.pyplot, headless; imported on first use (half a second that a run which draws
  nothing, or stops at a bad flag, does not pay)."""
  import matplotlib
  matplotlib.use("Agg")  # no display on servers, CI or TPU hosts
  import matplotlib.pyplot as plt
  return plt


def tile_grid(images_NxHxW: np.ndarray, rows: int, cols: int, pad: int = 2) -> np.ndarray:
  """rows x cols images in [0, 1] (N x H x W, or N x H x W x C in colour) tiled into one array
  with `pad` pixels of white between."""
  n, h, w = images_NxHxW.shape[:3]
  assert n >= rows * cols, f"need {rows * cols} images, got {n}"
  grid = np.ones((rows * (h + pad) - pad, cols * (w + pad) - pad, *images_NxHxW.shape[3:]),
                 np.float32)
  for i in range(rows * cols):
    r, c = divmod(i, cols)
    grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = images_NxHxW[i]
  return grid


def save_image_grid(images_NxHxW: np.ndarray, path, rows: int, cols: int, title: str = "") -> None:
  """One figure with a single tiled image: far faster than the tutorial's rows*cols subplots."""
  plt = pyplot()
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


def save_curves(path, panels, title: str = "", xlabel: str = "step") -> None:
  """Stacked panels sharing the x axis. Each panel is a dict:

  train: [(rows, name)]: a training metric, raw (faint) and smoothed;
  points: [(rows, name, label)]: sparse values (evaluations) as markers and lines;
  ylabel, log (log scale), hline (a reference level), ylim ((low, high), either may be None).
  """
  plt = pyplot()
  fig, axes = plt.subplots(len(panels), 1, figsize=(7, 3 * len(panels)), sharex=True, dpi=100,
                           squeeze=False)
  for ax, panel in zip(axes[:, 0], panels):
    for rows, name in panel.get("train", ()):
      steps = np.array([r["step"] for r in rows])
      values = np.array([r[name] for r in rows], np.float64)
      window = max(1, len(rows) // 50)
      line, = ax.plot(steps[window - 1:], moving_average(values, window), label=name)
      ax.plot(steps, values, color=line.get_color(), alpha=0.25, linewidth=0.7)
    for rows, name, label in panel.get("points", ()):
      ax.plot([r["step"] for r in rows], [r[name] for r in rows], "o-", markersize=3,
              label=label)
    if panel.get("hline") is not None:
      ax.axhline(panel["hline"], color="gray", linestyle=":", linewidth=1)
    if panel.get("log"):
      ax.set_yscale("log")
    if panel.get("ylim"):
      ax.set_ylim(*panel["ylim"])
    ax.set_ylabel(panel.get("ylabel", ""))
    ax.legend()
  axes[-1, 0].set_xlabel(xlabel)
  if title:
    axes[0, 0].set_title(title)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
