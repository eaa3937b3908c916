"""What a VAE researcher looks at: reconstructions, prior samples, interpolations, traversals,
the 2-D latent manifold and encoded test set, samples by class for a conditional model, and
training curves (headless PNGs)."""

import functools
import statistics
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from genjax.core import plotting
from genjax.core.plotting import pyplot
from genjax.vae import data as vae_data, eval as vae_eval
from genjax.vae.state import VAESetup, decode_mean

MAX_CLASS_ROWS = 20  # samples_by_class.png shows the first classes, one row each

PAIRS, STEPS, TRAVERSAL_DIMS = 5, 10, 8


@functools.partial(jax.jit, static_argnums=0)
def _decode_mean(setup: VAESetup, params, z_BxZ, y_BxC=None):
  return decode_mean(setup, params, z_BxZ, y_BxC)


def decode_images(setup: VAESetup, params, z_NxZ, y_NxC=None) -> np.ndarray:
  """E[x|z[,y]] as numpy; y_NxC one-hot labels (or a blend of them) for a conditional model."""
  y_NxC = None if y_NxC is None else jnp.asarray(y_NxC, jnp.float32)
  return np.asarray(_decode_mean(setup, params, jnp.asarray(z_NxZ, jnp.float32), y_NxC))


def save_reconstructions(inputs_NxHxW, recons_NxHxW, path, cols: int = 10, title: str = ""):
  """Rows of inputs, each followed by the row of their reconstructions."""
  pairs = len(inputs_NxHxW) // cols
  rows = [block[p * cols:(p + 1) * cols] for p in range(pairs)
          for block in (inputs_NxHxW, recons_NxHxW)]
  plotting.save_image_grid(np.concatenate(rows), path, 2 * pairs, cols, title=title)


def save_latent_scatter(codes_Nx2, labels_N, path, title: str = ""):
  """The codes, coloured by label (one colour without labels)."""
  plt = pyplot()
  fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
  if labels_N is None:
    ax.scatter(codes_Nx2[:, 0], codes_Nx2[:, 1], s=2)
  else:
    k = max(int(np.max(labels_N)) + 1, 10)
    points = ax.scatter(codes_Nx2[:, 0], codes_Nx2[:, 1], c=labels_N, s=2, vmin=-0.5,
                        vmax=k - 0.5, cmap="tab10" if k == 10 else "viridis")
    fig.colorbar(points, ax=ax, ticks=range(0, k, max(1, k // 10)), label="label")
  ax.set_xlabel("z[0]")
  ax.set_ylabel("z[1]")
  if title:
    ax.set_title(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def save_training_curves(rows: list[dict], path, title: str = "", eval_rows=()):
  """Loss and negative ELBO (top, with test figures), reconstruction and KL terms (bottom)."""
  evaluated = [n for n in ("neg_elbo", "neg_iwae_bound") if eval_rows and n in eval_rows[0]]
  top = {"train": [(rows, n) for n in ("loss", "neg_elbo") if n in rows[0]], "ylabel": "nats",
         "points": [(eval_rows, n, f"test {n}") for n in evaluated],
         "ylim": (None, np.percentile([r["loss"] for r in rows], 99))}  # hide the first steps
  bottom = {"train": [(rows, n) for n in ("recon", "kl") if n in rows[0]], "ylabel": "nats"}
  plotting.save_curves(path, [top, bottom], title)


def interpolation_codes(codes_Px2xZ) -> np.ndarray:
  """STEPS codes on the segment between each pair, P*STEPS x Z."""
  t = np.linspace(0.0, 1.0, STEPS)[None, :, None]
  return ((1 - t) * codes_Px2xZ[:, :1] + t * codes_Px2xZ[:, 1:]).reshape(-1, codes_Px2xZ.shape[-1])


def traversal_codes(base_Z, codes_NxZ, dims) -> np.ndarray:
  """Each dim swept over mean +- 3 std of the codes, the others held at base: D*STEPS x Z."""
  mean, std = codes_NxZ.mean(axis=0), codes_NxZ.std(axis=0)
  out = np.repeat(base_Z[None], len(dims) * STEPS, axis=0)
  for row, d in enumerate(dims):
    out[row * STEPS:(row + 1) * STEPS, d] = mean[d] + std[d] * np.linspace(-3, 3, STEPS)
  return out


def manifold_codes(codes_Nx2, stochastic: bool, side: int = 20) -> np.ndarray:
  """A side x side grid: Gaussian quantiles of the prior, or the codes' 1-99% range for an AE."""
  if stochastic:
    axis = [statistics.NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, side)]
    axes = (np.array(axis), np.array(axis))
  else:
    axes = tuple(np.linspace(*np.percentile(codes_Nx2[:, d], [1, 99]), side) for d in (0, 1))
  grid_y, grid_x = np.meshgrid(axes[1][::-1], axes[0], indexing="ij")  # z[1] grows upwards
  return np.stack([grid_x.ravel(), grid_y.ravel()], axis=-1)


def uniform_labels(setup: VAESetup, key, n: int):
  """One-hot labels drawn uniformly for n prior draws, which then follow the marginal p(x);
  None for an unconditional model."""
  if not setup.conditional:
    return None
  return vae_data.one_hot(jax.random.randint(key, (n,), 0, setup.num_classes), setup.num_classes)


def class_grid_inputs(key, latent_dim: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """(z, labels) of a K x 10 grid (K classes, at most MAX_CLASS_ROWS): row k has label k, each
  column one prior draw z, so a column shows one style across the classes."""
  rows = min(num_classes, MAX_CLASS_ROWS)
  z_10xZ = np.asarray(jax.random.normal(key, (10, latent_dim)))
  return np.tile(z_10xZ, (rows, 1)), np.repeat(np.arange(rows), 10)


def save_pictures(setup: VAESetup, params, x_NxHxW, labels_N, workdir, key, grid_size: int,
                  name: str) -> list[str]:
  """Every picture of a trained model on test images x; returns the file names written.

  A conditional model encodes and decodes each test image with its true label.
  """
  workdir, stochastic = Path(workdir), setup.recipe.model != "ae"
  model_labels_N = labels_N if setup.conditional else None  # what encoder and decoder see
  codes_NxZ = vae_eval.encode_all(setup, params, x_NxHxW, labels_N=model_labels_N)
  y_NxC = None if model_labels_N is None else np.asarray(vae_data.one_hot(model_labels_N,
                                                                           setup.num_classes))
  decode = functools.partial(decode_images, setup, params)
  written = []

  def grid(file, images, rows, cols, title):
    plotting.save_image_grid(images, workdir / file, rows, cols, title=f"{name}: {title}")
    written.append(file)

  save_reconstructions(x_NxHxW[:30], decode(codes_NxZ[:30], _rows(y_NxC, 30)),
                       workdir / "reconstructions.png",
                       title=f"{name}: test inputs / reconstructions")
  written.append("reconstructions.png")
  if stochastic:
    z = jax.random.normal(key, (grid_size ** 2, setup.recipe.latent_dim))
    grid("samples.png", decode(z, uniform_labels(setup, jax.random.fold_in(key, 1), len(z))),
         grid_size, grid_size, "samples from the prior")
    if setup.conditional:
      z, labels = class_grid_inputs(jax.random.fold_in(key, 2), setup.recipe.latent_dim,
                                    setup.num_classes)
      grid("samples_by_class.png", decode(z, vae_data.one_hot(labels, setup.num_classes)),
           len(labels) // 10, 10, "prior samples, row k given label k, one z per column")

  def pairs(a_NxD):
    return a_NxD[:2 * PAIRS].reshape(PAIRS, 2, -1)

  # A conditional model's label moves too, from one digit's one-hot vector to the other's.
  y_path = None if y_NxC is None else interpolation_codes(pairs(y_NxC))
  grid("interpolation.png", decode(interpolation_codes(pairs(codes_NxZ)), y_path), PAIRS, STEPS,
       "latent interpolation between test images")
  dims = np.argsort(-codes_NxZ.var(axis=0))[:TRAVERSAL_DIMS]  # the most used dimensions first
  sweep_NxZ = traversal_codes(codes_NxZ[0], codes_NxZ, dims)
  y_sweep = None if y_NxC is None else np.repeat(y_NxC[:1], len(sweep_NxZ), axis=0)
  grid("traversal.png", decode(sweep_NxZ, y_sweep), len(dims), STEPS,
       f"traversal of dims {', '.join(map(str, dims))} (rows), mean +- 3 std")
  if setup.recipe.latent_dim == 2:
    if not setup.conditional:  # it would have one manifold per class: see samples_by_class
      side = 20
      tiles = plotting.tile_grid(decode(manifold_codes(codes_NxZ, stochastic, side)), side,
                                 side, 0)
      pyplot().imsave(workdir / "manifold.png", tiles, cmap="gray", vmin=0, vmax=1)
      written.append("manifold.png")
    save_latent_scatter(codes_NxZ, labels_N, workdir / "latent_scatter.png",
                        title=f"{name}: encoded test set")
    written.append("latent_scatter.png")
  return written


def _rows(y_NxC, n: int):
  return None if y_NxC is None else y_NxC[:n]
