"""Image folders the tests write from the real MNIST and Fashion-MNIST files."""

from pathlib import Path

from genjax.data.examples import coloured, write_example_folder, write_split  # noqa: F401


def mnist_folder(root: Path, data_root, num_train: int, num_test: int) -> Path:
  """MNIST's first images as root/train/<digit>/<index>.png and root/test/...: the folder's
  arrays are the IDX files' first rows, in their order."""
  return write_example_folder(root, num_train, num_test, data_root, side=0)


def colour_folder(root: Path, data_root, num_train: int, num_test: int,
                  dataset: str = "mnist") -> Path:
  """The first real digits (or clothes) of each split, padded to 32x32 and coloured."""
  return write_example_folder(root, num_train, num_test, data_root, dataset, side=32)
