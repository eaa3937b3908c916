"""One dataset argument for every image family: what `config.dataset` names, opened as splits.

  mnist, fashion_mnist       the original IDX files (or TFDS), as genjax.data.images reads them
  folder:PATH                a folder of image files (genjax.data.folders)
  npz:PATH                   one .npz of uint8 arrays (genjax.data.npz)
  tfds:NAME[:SPLIT]          a TFDS image dataset (genjax.data.tfds_images)

`config.image_size` S resizes every image on load (shorter side to S, then the centre S x S).
Without a test split of its own (test/ beside train/, test_images, TFDS's test), the data gives
config.test_fraction of its examples to one, the same ones for every run (a permutation from a
fixed seed). A run's config then records what the data is: `image_shape` (H, W, C),
`num_classes` (0: unlabelled) and `class_names`, so sampling and evaluation need its workdir
alone; paths are stored absolute.
"""

import functools
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from genjax.core import config as config_lib, feed
from genjax.core.errors import ConfigError, DataError, field_error
from genjax.data import folders, images, npz, pixels, tfds_images

KINDS = ("folder", "npz", "tfds")
FORMS = "mnist, fashion_mnist, folder:PATH, npz:PATH or tfds:NAME[:SPLIT]"
SPLIT_SEED = 0  # the held-out examples of a test_fraction split: the same for every run
FILLED_KEYS = ("image_shape", "num_classes", "class_names")  # set from the data at the start


def resolve_dataset(text, field: str = "config.dataset") -> str:
  """The dataset argument with its path made absolute; one line for a form genjax lacks."""
  text = str(text)
  kind, sep, arg = text.partition(":")
  if not sep and text in images.DATASETS:
    return text
  if kind not in KINDS or not arg:
    raise field_error(field, f"{text!r} is unknown; use {FORMS}", ConfigError)
  if kind == "tfds":
    return text
  return f"{kind}:{Path(arg).expanduser().resolve()}"


def short_name(dataset: str) -> str:
  """A dataset's name for file names and titles: mnist, the folder's or file's name, the TFDS
  name (folder:/data/faces -> faces, npz:/x/digits.npz -> digits, tfds:cifar10:train -> cifar10)."""
  kind, arg = parse(dataset)
  if kind == "builtin":
    return arg
  if kind == "tfds":
    return tfds_images.parse(arg)[0].replace("/", "_")
  return Path(arg).stem or kind


class DataSpec(NamedTuple):
  """Which examples a run's data is (hashable: splits are cached by it)."""

  dataset: str  # resolved (resolve_dataset)
  data_dir: str | None = None
  image_size: int = 0
  test_fraction: float = 0.0

  @classmethod
  def of(cls, config) -> "DataSpec":
    return cls(config.dataset, config.data_dir or None, config.image_size, config.test_fraction)


class ImageArray:
  """Images already decoded in host memory, behind ImageFiles' interface."""

  def __init__(self, images_NxHxWxC: np.ndarray):
    self.images = images_NxHxWxC

  def __len__(self):
    return len(self.images)

  def read(self, rows) -> np.ndarray:
    return self.images[np.asarray(rows, np.int64)]

  def read_all(self) -> np.ndarray:
    return self.images


class ImageSet(feed.Source):
  """One split: images (decoded, or files read when asked), labels (None: unlabelled) and the
  dataset's class names; `rows` picks some of the store's examples, in order."""

  def __init__(self, store, labels, class_names: tuple, shape_hwc: tuple, name: str,
               rows=None, use_labels: bool = True):
    self.store, self.labels, self.class_names = store, labels, tuple(class_names)
    self.shape_hwc, self.name, self.rows, self.use_labels = tuple(shape_hwc), name, rows, use_labels
    self._arrays = None

  def _copy(self, **changes) -> "ImageSet":
    fields = dict(store=self.store, labels=self.labels, class_names=self.class_names,
                  shape_hwc=self.shape_hwc, name=self.name, rows=self.rows,
                  use_labels=self.use_labels)
    return ImageSet(**{**fields, **changes})

  def __len__(self):
    return len(self.store) if self.rows is None else len(self.rows)

  @property
  def num_classes(self) -> int:
    return len(self.class_names) if self.labels is not None else 0

  @property
  def example_shape(self) -> tuple:
    return pixels.example_shape(self.shape_hwc)

  @property
  def nbytes(self) -> int:
    labels = 4 if self.labels is not None and self.use_labels else 0
    return len(self) * (int(np.prod(self.shape_hwc)) + labels)

  def with_labels(self, use: bool) -> "ImageSet":
    """The same examples, their labels read (use) or left out (None in place of labels)."""
    return self._copy(use_labels=use)

  def head(self, n: int) -> "ImageSet":
    """The first n examples (all when n is 0 or more than there are)."""
    if not n or n >= len(self):
      return self
    return self._copy(rows=np.arange(n) if self.rows is None else self.rows[:n])

  def _labels_of(self, rows):
    if self.labels is None or not self.use_labels:
      return None
    return self.labels if rows is None else self.labels[rows]

  def arrays(self) -> tuple:
    """(images, labels or None), decoded once and kept."""
    if self._arrays is None:
      images_ = self.store.read_all() if self.rows is None else self.store.read(self.rows)
      self._arrays = (images_, self._labels_of(self.rows))
    return self._arrays

  def take(self, idx) -> tuple:
    idx = np.asarray(idx)
    flat = idx.reshape(-1)
    rows = flat if self.rows is None else self.rows[flat]
    images_ = self.store.read(rows).reshape(*idx.shape, *self.example_shape)
    labels = self._labels_of(rows)
    return images_, None if labels is None else labels.reshape(idx.shape)


def parse(dataset: str) -> tuple[str, str]:
  """('builtin', 'mnist'), ('folder', '/abs/path'), ('npz', ...), ('tfds', 'NAME[:SPLIT]')."""
  kind, sep, arg = dataset.partition(":")
  return ("builtin", dataset) if not sep else (kind, arg)


def _array_set(images_, labels, names, name: str, image_size: int) -> ImageSet:
  images_ = pixels.resize_arrays(images_, image_size)
  channels = 3 if images_.ndim == 4 else 1
  return ImageSet(ImageArray(images_), labels, names, (*images_.shape[1:3], channels), name)


@functools.lru_cache(maxsize=8)
def _folder(root: str, image_size: int) -> dict:
  return folders.open_folder(Path(root), image_size)


@functools.lru_cache(maxsize=8)
def _npz(path: str) -> dict:
  return npz.read(path)


@functools.lru_cache(maxsize=16)
def own_split(spec: DataSpec, which: str) -> tuple[ImageSet | None, bool]:
  """(the dataset's own `which` split or None, whether it has a test split of its own)."""
  kind, arg = parse(spec.dataset)
  name = spec.dataset
  if kind == "builtin":
    images_, labels = images.load_dataset(arg, which, spec.data_dir)
    return _array_set(images_, labels, images.CLASS_NAMES[arg], name, spec.image_size), True
  if kind == "folder":
    found = _folder(arg, spec.image_size)
    if found[which] is None:
      return None, False
    files, labels, names = found[which]
    return ImageSet(files, labels, names, files.shape_hwc, name), found["test"] is not None
  if kind == "npz":
    found = _npz(arg)
    part = found[which]
    if part is None:
      return None, False
    return _array_set(*part, found["class_names"], name, spec.image_size), found["test"] is not None
  found = tfds_images.load(arg, spec.data_dir, spec.image_size, which)
  store = found["images"]
  if store is None:
    return None, False
  if isinstance(store, np.ndarray):
    return (_array_set(store, found["labels"], found["class_names"], name, spec.image_size),
            found["has_test"])
  return (ImageSet(store, found["labels"], found["class_names"], store.shape_hwc, name),
          found["has_test"])


def held_out_rows(n: int, fraction: float) -> np.ndarray:
  """The sorted rows of n examples that a test_fraction split holds out."""
  count = int(round(n * fraction))
  return np.sort(np.random.default_rng(SPLIT_SEED).permutation(n)[:count])


@functools.lru_cache(maxsize=16)
def open_split(spec: DataSpec, split: str) -> ImageSet:
  """The `split` ("train" or "test") of the data `spec` names (cached)."""
  if split not in images.SPLITS:
    raise DataError(f"unknown split {split!r}; valid splits: {', '.join(images.SPLITS)}")
  train, has_test = own_split(spec, "train")
  if has_test:
    return train if split == "train" else own_split(spec, "test")[0]
  if not spec.test_fraction:
    if split == "train":
      return train
    raise DataError(f"{spec.dataset} has no test split: add a test/ folder (or test_images) "
                    "beside the training images, or set config.test_fraction to hold some out",
                    field="config.test_fraction")
  held = held_out_rows(len(train), spec.test_fraction)
  if not len(held) or len(held) == len(train):
    raise field_error("config.test_fraction", f"{spec.test_fraction} of {len(train)} examples "
                      "leaves a split empty", DataError)
  rows = held if split == "test" else np.setdiff1d(np.arange(len(train)), held)
  return train._copy(rows=rows)


def load_arrays(spec: DataSpec, split: str) -> tuple:
  """(images, labels or None) of a split, decoded into host memory."""
  return open_split(spec, split).arrays()


def check_config(config) -> None:
  """The data keys every image family shares, checked (ConfigError naming config.KEY)."""
  resolve_dataset(config.dataset)
  config_lib.check_ints(config, ("image_size",), low=0)
  config_lib.check_range(config, ("test_fraction",), 0.0, 1.0)
  config_lib.check_numbers(config, ("device_data_mb",))
  if "judge" in config and not isinstance(config.judge, str):  # the judge's own config has none
    raise field_error("config.judge", f"must be a judge's workdir or '' (none), got "
                      f"{config.judge!r}")


def resolve_paths(config):
  """`config` with its dataset's path and its judge's made absolute (they are recorded)."""
  config.dataset = resolve_dataset(config.dataset)
  if config.get("judge"):
    config.judge = str(Path(config.judge).expanduser().resolve())
  return config


def data_keys(data: ImageSet) -> dict:
  """What a run records of its data (FILLED_KEYS)."""
  return {"image_shape": list(data.shape_hwc), "num_classes": data.num_classes,
          "class_names": list(data.class_names)}


def fill_config(config, found: dict, name: str) -> None:
  """Records what the data is in the run's config (FILLED_KEYS, from data_keys); a value
  already there must agree (a resumed run's, or one given by hand)."""
  for key, value in found.items():
    given = config[key]
    if given is not None and json.loads(json.dumps(given, default=list)) != value:
      raise field_error(f"config.{key}", f"is {given!r} but {name} has {value!r}; leave "
                        "it unset (the data sets it)", DataError)
    config[key] = tuple(value) if isinstance(value, list) else value
  if config.get("conditional") and not found["num_classes"]:
    raise field_error("config.conditional", f"needs labels; {name} has none (a flat "
                      "folder, or no labels array)", DataError)


def known_side(config) -> int | None:
  """The side of the run's images where the config alone tells it (image_size, or MNIST's
  28); None until the data is read."""
  if config.image_size:
    return config.image_size
  return images.SIDE if parse(resolve_dataset(config.dataset))[0] == "builtin" else None


def filled(config):
  """A copy of `config` with the data keys (what a run's load_data records), for building a
  model outside a run: MNIST's and Fashion-MNIST's are known without reading them, others
  are read from the training data."""
  config = resolve_paths(config.copy_and_resolve_references())
  spec = DataSpec.of(config)
  kind, arg = parse(spec.dataset)
  if kind == "builtin":
    side, names = spec.image_size or images.SIDE, images.CLASS_NAMES[arg]
    found = {"image_shape": [side, side, 1], "num_classes": len(names),
             "class_names": list(names)}
  else:
    found = data_keys(open_split(spec, "train"))
  fill_config(config, found, spec.dataset)
  return config


def training_set(config) -> ImageSet:
  """The training split of config's data, its shape and classes recorded in config."""
  data = open_split(DataSpec.of(config), "train")
  fill_config(config, data_keys(data), data.name)
  return data
