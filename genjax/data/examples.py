"""Example image folders written from MNIST or Fashion-MNIST: what a folder of your own looks
like, for the notebook, the tests and the streaming benchmark."""

from pathlib import Path

import numpy as np
from PIL import Image

from genjax.core.errors import ConfigError, field_error
from genjax.data import images

# Ink colours (RGB in [0, 1]), one drawn per image whatever its class (so the class is in the
# shape, not the colour); backgrounds are dark and random.
INK = np.array([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.3, 0.4, 1.0], [1.0, 1.0, 0.2],
                [1.0, 0.3, 1.0], [0.2, 1.0, 1.0], [1.0, 0.6, 0.1], [0.6, 0.3, 1.0],
                [1.0, 1.0, 1.0], [0.6, 1.0, 0.5]])


def coloured(images_NxHxW, side: int = 32, seed: int = 0) -> np.ndarray:
  """Grey images padded to side x side and coloured: a random ink over a dark random
  background; uint8 N x side x side x 3."""
  height = images_NxHxW.shape[1]
  before = (side - height) // 2
  pad = ((0, 0), (before, side - height - before), (before, side - height - before))
  alpha_NxHxWx1 = np.pad(images_NxHxW, pad)[..., None].astype(np.float32) / 255.0
  rng = np.random.default_rng(seed)
  background = rng.uniform(0.0, 0.35, (len(alpha_NxHxWx1), 1, 1, 3))
  ink = INK[rng.integers(0, len(INK), len(alpha_NxHxWx1))][:, None, None]
  return np.round(255 * (alpha_NxHxWx1 * ink + (1 - alpha_NxHxWx1) * background)).astype(
      np.uint8)


def write_split(folder: Path, images_N, labels_N=None) -> None:
  """PNGs named by their index: folder/<label>/<i>.png, or folder/<i>.png without labels (the
  folder's array order is then the arrays' own)."""
  folder = Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  for i, pixels in enumerate(images_N):
    where = folder if labels_N is None else folder / str(labels_N[i])
    where.mkdir(exist_ok=True)
    Image.fromarray(pixels).save(where / f"{i}.png", compress_level=1)


def write_example_folder(root, num_train: int, num_test: int, data_dir=None,
                         dataset: str = "mnist", side: int = 32) -> Path:
  """root/train/<class>/<i>.png and root/test/...: the first images of each split of `dataset`
  (mnist or fashion_mnist), padded to side x side and coloured (side 0: as they are, grey).
  root must be new or empty; the arguments are checked before anything is written."""
  root = Path(root)
  check_example_args(root, num_train, num_test, dataset, side)
  for split, num in (("train", num_train), ("test", num_test)):
    grey, labels = images.load_dataset(dataset, split, data_dir)
    grey, labels = grey[:num], labels[:num]
    pixels = coloured(grey, side, seed=len(split)) if side else grey
    write_split(root / split, pixels, labels)
  return root


def check_example_args(root: Path, num_train: int, num_test: int, dataset: str,
                       side: int) -> None:
  """One line (ConfigError naming the argument) for what write_example_folder cannot do."""
  if root.exists() and (not root.is_dir() or any(root.iterdir())):
    raise field_error("out", f"{root} exists and is not an empty folder", ConfigError)
  if dataset not in images.DATASETS:
    raise field_error("dataset", f"{dataset!r} is unknown; use {' or '.join(images.DATASETS)}")
  for name, num in (("num", num_train), ("num_test", num_test)):
    if not 0 < num <= images.SPLIT_SIZES["train" if name == "num" else "test"]:
      raise field_error(name, f"must be from 1 to the split's size, got {num}")
  if side and side < images.SIDE:
    raise field_error("side", f"must be 0 (as they are) or at least {images.SIDE}, got {side}")
