"""Image datasets as folders of image files (any format Pillow reads).

  PATH/cat/001.png, PATH/dog/001.jpg, ...        one subfolder per class (names sorted)
  PATH/001.png, PATH/002.png, ...                a flat folder: an unlabelled dataset
  PATH/train/... and PATH/test/...               the two splits, each laid out as above

Array order: the files sorted by their path inside their class folder in natural order (a run
of digits compares as a number, so 2.png comes before 10.png), across all classes, a tie going
to the class that sorts first. A folder whose files are named by their index in another dataset
(train/5/0.png, train/0/1.png, ...) therefore gives that dataset's arrays in its own order.
Hidden files and files whose suffix Pillow does not read are left out.

Headers are read when the folder is opened (sizes and modes: the shape and the channel count,
3 when any image is in colour); pixels when they are asked for, by a pool of threads.
"""

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from genjax.core.errors import DataError
from genjax.data import pixels

READ_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
BLOCK = 64  # images per task of the decoding pool


def image_suffixes() -> frozenset:
  """File suffixes Pillow opens (.png, .jpg, .jpeg, .bmp, .gif, .tif, .webp, ...)."""
  return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def natural_key(text: str) -> list:
  """'img10.png' after 'img2.png': runs of digits compare as numbers."""
  return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _visible(path: Path) -> bool:
  return not path.name.startswith(".")


def _image_files(folder: Path, suffixes) -> list[Path]:
  return [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
          and _visible(p) and all(_visible(q) for q in p.relative_to(folder).parents)]


def scan(folder: Path) -> tuple[list[Path], np.ndarray | None, tuple]:
  """(files in array order, labels int32 or None, class names) of one split's folder."""
  suffixes = image_suffixes()
  if not folder.is_dir():
    raise DataError(f"{folder}: not a folder")
  entries = sorted((p for p in folder.iterdir() if _visible(p)), key=lambda p: p.name)
  classes = [p for p in entries if p.is_dir()]
  loose = [p for p in entries if p.is_file() and p.suffix.lower() in suffixes]
  if classes and loose:
    raise DataError(f"{folder}: holds both images ({loose[0].name}) and class folders "
                    f"({classes[0].name}/); put every image in a class folder, or none")
  if not classes:
    if not loose:
      raise DataError(f"{folder}: no images (none of {', '.join(sorted(suffixes)[:6])}, ...)")
    return sorted(loose, key=lambda p: natural_key(p.name)), None, ()
  keyed = []
  for label, class_dir in enumerate(classes):
    files = _image_files(class_dir, suffixes)
    if not files:
      raise DataError(f"{class_dir}: class folder with no images")
    keyed += [(natural_key(str(f.relative_to(class_dir))), label, f) for f in files]
  keyed.sort(key=lambda t: (t[0], t[1]))
  return ([f for _, _, f in keyed], np.array([label for _, label, _ in keyed], np.int32),
          tuple(c.name for c in classes))


def read_header(path: Path) -> tuple[tuple[int, int], str]:
  """((width, height), mode) without decoding the pixels."""
  try:
    with Image.open(path) as image:
      return image.size, image.mode
  except READ_ERRORS as exc:
    raise DataError(f"{path}: cannot read the image ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
  return " ".join(str(exc).split())[:120] or type(exc).__name__


def decode(path: str, channels: int, image_size: int) -> np.ndarray:
  """One image's uint8 pixels, H x W or H x W x 3; a DataError naming the file."""
  try:
    with Image.open(path) as image:
      image.load()
      return pixels.image_array(image, channels, image_size)
  except READ_ERRORS as exc:
    raise DataError(f"{path}: cannot read the image ({_reason(exc)})") from None


_pool = None


def pool() -> ThreadPoolExecutor:
  """The decoding threads (Pillow decodes with the interpreter lock released), made once."""
  global _pool
  if _pool is None:
    _pool = ThreadPoolExecutor(max(1, os.cpu_count() or 1), thread_name_prefix="genjax-decode")
  return _pool


class ImageFiles:
  """One split's image files with a common shape: pixels read on demand, or all at once."""

  def __init__(self, paths, shape_hwc: tuple, image_size: int):
    self.paths = np.asarray([str(p) for p in paths])
    self.shape_hwc, self.image_size = tuple(shape_hwc), image_size
    self.example_shape = pixels.example_shape(self.shape_hwc)
    self._all = None

  def __len__(self) -> int:
    return len(self.paths)

  def read(self, rows) -> np.ndarray:
    """The images of `rows` (a 1-D index array), decoded in blocks by the pool."""
    paths = self.paths[np.asarray(rows, np.int64)]
    out = np.empty((len(paths), *self.example_shape), np.uint8)

    def block(start):
      for i in range(start, min(start + BLOCK, len(paths))):
        out[i] = decode(paths[i], self.shape_hwc[2], self.image_size)

    for done in pool().map(block, range(0, len(paths), BLOCK)):
      del done  # map re-raises the first error (a DataError naming its file)
    return out

  def read_all(self) -> np.ndarray:
    """Every image, decoded once and kept (read-only)."""
    if self._all is None:
      self._all = self.read(np.arange(len(self.paths)))
      self._all.flags.writeable = False
    return self._all


def shape_of(paths, image_size: int, where: str) -> tuple[int, int, int]:
  """(H, W, C) the files take: every header read; sizes must agree unless image_size is set."""
  headers = [read_header(p) for p in paths]
  channels = 3 if any(pixels.channels_of_mode(mode) == 3 for _, mode in headers) else 1
  if image_size:
    return image_size, image_size, channels
  sizes = {size for size, _ in headers}
  if len(sizes) > 1:
    size_text = lambda i: f"{paths[i].name} {headers[i][0][0]}x{headers[i][0][1]}"  # noqa: E731
    other = next(i for i, (size, _) in enumerate(headers) if size != headers[0][0])
    raise DataError(f"{where}: images of different sizes ({size_text(0)}, {size_text(other)});"
                    " set config.image_size to resize them all", field="config.image_size")
  width, height = headers[0][0]
  return height, width, channels


def open_folder(root: Path, image_size: int) -> dict:
  """{"train": (ImageFiles, labels, class names), "test": the same or None} of a dataset folder."""
  root = Path(root)
  if not root.is_dir():
    raise DataError(f"folder:{root}: no such folder", field="config.dataset")
  split_root = (root / "train").is_dir()
  train = scan(root / "train" if split_root else root)
  test = scan(root / "test") if split_root and (root / "test").is_dir() else None
  if test is not None:
    test = _with_train_classes(test, train, root)
  where = f"folder:{root}"
  # One shape for both splits: colour anywhere makes both colour.
  shape = shape_of(train[0] + (test[0] if test else []), image_size, where)
  out = {"train": (ImageFiles(train[0], shape, image_size), train[1], train[2]), "test": None}
  if test is not None:
    out["test"] = (ImageFiles(test[0], shape, image_size), test[1], train[2])
  return out


def _with_train_classes(test, train, root: Path):
  """The test split's labels in the training split's class numbering."""
  files, labels, names = test
  if (labels is None) != (train[1] is None):
    which = "test" if labels is None else "train"
    raise DataError(f"{root}/{which}: has no class folders, while the other split has")
  if labels is None:
    return test
  unknown = sorted(set(names) - set(train[2]))
  if unknown:
    raise DataError(f"{root}/test/{unknown[0]}: a class the training split does not have")
  numbering = np.array([train[2].index(name) for name in names], np.int32)
  return files, numbering[labels], train[2]
