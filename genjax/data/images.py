"""MNIST and Fashion-MNIST from the original IDX files or through TFDS."""
from __future__ import annotations

import functools
import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from genjax.core.errors import DataError
from genjax.data import source
from genjax.data.source import DOWNLOAD_HOSTS, host_reachable, no_data_hint, resolve_data_dir

NUM_CLASSES = 10  # MNIST and Fashion-MNIST
SIDE = 28  # both, in pixels
CLASS_NAMES = {"mnist": tuple(str(k) for k in range(10)),
               "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                 "Shirt", "Sneaker", "Bag", "Ankle boot")}

DATASETS = ("mnist", "fashion_mnist")
# TFDS names use an underscore; the folders of original files use a hyphen.
DATASET_FOLDERS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}
SPLITS = ("train", "test")
SPLIT_SIZES = {"train": 60_000, "test": 10_000}  # both datasets
BACKENDS = ("auto", "idx", "tfds")
SPLIT_FILES = {
  "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
  "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_UINT8_TYPE_CODE = 0x08  # IDX type byte for unsigned bytes, the only type we read
_GZIP_MAGIC = b"\x1f\x8b"


def _check_name_split(name: str, split: str) -> None:
  """Raise DataError for an unknown dataset name or split."""
  if name not in DATASETS:
    raise DataError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
  if split not in SPLITS:
    raise DataError(f"unknown split {split!r} for {name!r}; valid splits: {', '.join(SPLITS)}")


def read_idx(path: str | os.PathLike) -> np.ndarray:
  """Read one uint8 IDX file (gzip or raw) into a read-only array, checking header and size."""
  path = Path(path)
  raw = source.read_bytes(path)
  was_gzip = raw[:2] == _GZIP_MAGIC
  if was_gzip:
    try:
      raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:  # truncated stream, bad CRC, bad deflate data
      raise DataError(f"{path}: corrupt or truncated gzip data ({err})") from err
  if len(raw) < 4:
    raise DataError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
  magic = int.from_bytes(raw[:4], "big")
  type_code, ndim = raw[2], raw[3]
  if raw[:2] != b"\x00\x00" or ndim == 0:
    kind = "IDX" if was_gzip else "gzip or IDX"
    raise DataError(f"{path}: not {kind} data (magic number 0x{magic:08x})")
  if type_code != _UINT8_TYPE_CODE:
    raise DataError(f"{path}: unsupported IDX element type 0x{type_code:02x} (only uint8)")
  header_len = 4 + 4 * ndim
  if len(raw) < header_len:
    raise DataError(f"{path}: header truncated ({len(raw)} bytes, need {header_len})")
  dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
  expected, actual = int(np.prod(dims, dtype=np.int64)), len(raw) - header_len
  if actual != expected:
    raise DataError(f"{path}: header dims {dims} need {expected} data bytes, file has {actual}")
  return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)


def load_idx(name: str, split: str, root: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
  """Load (images uint8 [N,28,28], labels int32 [N]) from root/<folder>/ IDX files."""
  _check_name_split(name, split)
  folder = Path(root) / DATASET_FOLDERS[name]
  if not folder.is_dir():
    raise DataError(f"{folder}: dataset folder for {name!r} not found")
  paths = [folder / file for file in SPLIT_FILES[split]]
  # Also accept already-decompressed copies next to (or instead of) the .gz files.
  paths = [p if p.exists() or not p.with_suffix("").exists() else p.with_suffix("") for p in paths]
  images, labels = read_idx(paths[0]), read_idx(paths[1])
  if images.ndim != 3 or images.shape[1:] != (28, 28):
    raise DataError(f"{paths[0]}: expected images of shape [N,28,28], got {images.shape}")
  if labels.ndim != 1:
    raise DataError(f"{paths[1]}: expected 1-D labels, got shape {labels.shape}")
  if len(images) != len(labels):
    raise DataError(f"{paths[0]} has {len(images)} images but {paths[1].name} has {len(labels)} labels")
  return images, labels.astype(np.int32)


def load_tfds(
  name: str,
  split: str,
  manual_dir: str | os.PathLike | None = None,
  tfds_data_dir: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
  """Load (images uint8 [N,28,28], labels int32 [N]) through tensorflow_datasets."""
  _check_name_split(name, split)
  try:  # Imported lazily: TensorFlow is an optional extra and slow to import.
    import tensorflow_datasets as tfds
  except ImportError as err:
    raise DataError(f"loading {name!r} through TFDS needs tensorflow-datasets: pip install genjax[tfds] ({err})") from err
  # TFDS reads TFDS_DATA_DIR once at import; read it per call so later changes count.
  tfds_data_dir = tfds_data_dir or os.environ.get("TFDS_DATA_DIR") or None
  config = tfds.download.DownloadConfig(manual_dir=str(manual_dir)) if manual_dir else None
  try:
    builder = tfds.builder(name, data_dir=None if tfds_data_dir is None else str(tfds_data_dir))
    builder.download_and_prepare(download_config=config)
    if builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD:  # tfds:mnist prepared it
      rows = builder.as_data_source(split=split)
      rows = rows.__getitems__(list(range(len(rows))))
      arrays = {k: np.stack([r[k] for r in rows]) for k in ("image", "label")}
    else:
      arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
  except Exception as err:  # TFDS/TF raise many unrelated types; report them uniformly.
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
    source = f" from {manual_dir}" if manual_dir else ""
    raise DataError(f"TFDS could not load {name!r} {split}{source}: {reason}") from err
  return np.squeeze(arrays["image"], axis=-1), np.asarray(arrays["label"]).astype(np.int32)


def load_dataset(
  name: str, split: str = "train", data_dir: str | os.PathLike | None = None, backend: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
  """Load (images uint8 [N,28,28], labels int32 [N]) as read-only, cached arrays."""
  _check_name_split(name, split)
  if backend not in BACKENDS:
    raise DataError(f"unknown data backend {backend!r}; valid: {', '.join(BACKENDS)}")
  root = resolve_data_dir(data_dir)
  # TFDS's own data dir is part of the cache key only when TFDS may be used.
  uses_tfds = backend == "tfds" or (backend == "auto" and root is None)
  tfds_dir = os.environ.get("TFDS_DATA_DIR") if uses_tfds else None
  return _load_cached(name, split, root, backend, tfds_dir)


@functools.lru_cache(maxsize=None)
def _load_cached(
  name: str, split: str, root: str | None, backend: str, tfds_dir: str | None
) -> tuple[np.ndarray, np.ndarray]:
  """Load once per resolved arguments; arrays are made read-only so the cache stays intact."""
  if backend == "idx" or (backend == "auto" and root is not None):
    if root is None:
      raise DataError(f"backend 'idx' for {name!r} needs a data folder: set config.data_dir or GENJAX_DATA_DIR")
    images, labels = load_idx(name, split, root)
  elif root is not None:
    images, labels = load_tfds(name, split, manual_dir=Path(root) / DATASET_FOLDERS[name], tfds_data_dir=tfds_dir)
  elif backend == "tfds":
    images, labels = load_tfds(name, split, tfds_data_dir=tfds_dir)
  else:
    hint = no_data_hint(name, "mnist/ and fashion-mnist/ subfolders of the original IDX .gz files")
    if not tfds_prepared(name, tfds_dir) and not host_reachable(DOWNLOAD_HOSTS[name]):
      raise DataError(hint, field="config.data_dir")
    try:
      images, labels = load_tfds(name, split, tfds_data_dir=tfds_dir)
    except DataError as err:
      raise DataError(f"{hint} ({err})", field="config.data_dir") from err
  images, labels = np.asarray(images), np.asarray(labels)
  images.flags.writeable = False
  labels.flags.writeable = False
  return images, labels


def tfds_prepared(name: str, tfds_data_dir=None) -> bool:
  """Whether TFDS already holds `name` prepared (then no download is needed)."""
  try:
    import tensorflow_datasets as tfds
    return tfds.builder(name, data_dir=tfds_data_dir).is_prepared()
  except Exception:  # not installed, unknown to this version, or an unreadable data dir
    return False


def scale_to_tanh_range(images_uint8):
  """Map uint8 pixels to float32 in [-1, 1] (works on NumPy and jnp arrays, under jit)."""
  return images_uint8.astype(np.float32) / 127.5 - 1.0
