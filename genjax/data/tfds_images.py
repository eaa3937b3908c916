"""Any TensorFlow Datasets image dataset: `tfds:NAME[:SPLIT]` (an `image` feature, and a `label`
ClassLabel when it is labelled).

TFDS reads from its data dir ($TFDS_DATA_DIR, else ~/tensorflow_datasets). A dataset not yet
prepared there is prepared from DIR/NAME when the data folder (config.data_dir or
$GENJAX_DATA_DIR) has it (TFDS's manual_dir: the files its download would fetch), else
downloaded when a quick probe finds the network; genjax prepares it as ArrayRecord files, which
are read by row. SPLIT is the training split (TFDS's split syntax, e.g. train[:80%]; default
train); the held-out split is TFDS's `test` where the dataset has one.

A split in ArrayRecord files whose images share one size (or are resized to image_size) is a
RecordStore: rows are decoded when a batch asks for them, so a set larger than host memory
streams (only the labels are read up front). Other splits (TFRecord files prepared elsewhere,
images of several sizes) are decoded whole into host memory, resized on the way.
"""

import os
from pathlib import Path

import numpy as np

from genjax.core.errors import DataError
from genjax.data import pixels, source

DEFAULT_HOST = "storage.googleapis.com"  # TFDS's own mirror, the probe's target for most names
BATCH = 1024  # examples per read where the images share one shape


def _tfds():
  try:  # Imported here: TensorFlow is an optional extra and slow to import.
    import tensorflow_datasets as tfds
  except ImportError as err:
    raise DataError(f"tfds: datasets need tensorflow-datasets: pip install genjax[tfds] ({err})",
                    field="config.dataset") from None
  return tfds


def parse(arg: str) -> tuple[str, str]:
  """'cifar10' -> ('cifar10', 'train'); 'celeb_a:train[:50%]' -> ('celeb_a', 'train[:50%]')."""
  name, _, split = arg.partition(":")
  return name, split or "train"


def _builder(tfds, name: str, where: str):
  data_dir = os.environ.get("TFDS_DATA_DIR") or None  # read per call: later changes count
  try:
    return tfds.builder(name, data_dir=data_dir)
  except Exception as exc:  # DatasetNotFoundError, a bad config name, an unreadable data dir
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    raise DataError(f"{where}: {reason}", field="config.dataset") from None


def _check_features(builder, where: str) -> tuple[int | None, tuple]:
  """(channels or None when not fixed, class names) of the image and label features."""
  features = builder.info.features
  if "image" not in features:
    raise DataError(f"{where}: the dataset has no 'image' feature (it has "
                    f"{', '.join(features.keys())})", field="config.dataset")
  shape = getattr(features["image"], "shape", (None, None, None))
  channels = shape[-1] if len(shape) == 3 else None
  if channels not in (None, 1, 3):
    raise DataError(f"{where}: images with {channels} channels; genjax trains on 1 or 3")
  label = features["label"] if "label" in features else None
  names = tuple(label.names) if label is not None and hasattr(label, "names") else ()
  return channels, names


def _prepare(tfds, builder, name: str, data_dir, where: str):
  """The builder of the prepared dataset: as found, or prepared now as ArrayRecord files."""
  if builder.is_prepared():
    return builder
  builder = tfds.builder(name, data_dir=builder.data_dir_root, file_format="array_record")
  manual = Path(data_dir) / name if data_dir else None
  config = None
  if manual is not None and manual.is_dir():
    config = tfds.download.DownloadConfig(manual_dir=str(manual))
  elif not source.host_reachable(source.DOWNLOAD_HOSTS.get(name, DEFAULT_HOST)):
    raise DataError(f"{where}: not prepared in TFDS's data dir and no network to download it; "
                    f"set TFDS_DATA_DIR to where it is prepared, or put its files in "
                    f"DATA_DIR/{name} (config.data_dir or GENJAX_DATA_DIR)",
                    field="config.data_dir")
  try:
    builder.download_and_prepare(download_config=config)
  except Exception as exc:  # TFDS/TF raise many unrelated types; report them uniformly
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    raise DataError(f"{where}: TFDS could not prepare it ({reason})") from None
  return builder


def _squeeze_grey(images_BxHxWxC) -> np.ndarray:
  """B x H x W for one channel (MNIST's layout), as it was for three."""
  return images_BxHxWxC[..., 0] if images_BxHxWxC.shape[-1] == 1 else images_BxHxWxC


class RecordStore:
  """A split in ArrayRecord files, read by row (TFDS's random-access data source): read(rows)
  decodes just those images, resized to image_size; read_all() all of them, in batches."""

  def __init__(self, tfds, builder, split: str, image_size: int):
    self.source = builder.as_data_source(split=split)
    self.image_size = image_size
    first = self.read([0])
    self.shape_hwc = (*first.shape[1:3], 3 if first.ndim == 4 else 1)
    self.labels_source = builder.as_data_source(  # the labels alone: no image decoded
        split=split, decoders={"image": tfds.decode.SkipDecoding()})

  def __len__(self):
    return len(self.source)

  def read(self, rows) -> np.ndarray:
    examples = self.source.__getitems__([int(r) for r in np.asarray(rows).reshape(-1)])
    batch = np.stack([_squeeze_grey(e["image"]) for e in examples])
    return pixels.resize_arrays(batch, self.image_size)

  def read_all(self) -> np.ndarray:
    return np.concatenate([self.read(range(i, min(i + BATCH, len(self))))
                           for i in range(0, len(self), BATCH)])

  def labels(self) -> np.ndarray:
    return np.concatenate([
        np.asarray([e["label"] for e in self.labels_source.__getitems__(
            list(range(i, min(i + BATCH, len(self)))))], np.int32)
        for i in range(0, len(self), BATCH)])


def _read_split(tfds, builder, split: str, image_size: int, labelled: bool, where: str):
  """(images uint8, labels int32 or None): in batches where the images share one shape, else
  one at a time; resized as they come."""
  fixed = None not in getattr(builder.info.features["image"], "shape", (None,))
  try:
    dataset = builder.as_dataset(split=split, shuffle_files=False,
                                 batch_size=BATCH if fixed else None)
  except Exception as exc:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    raise DataError(f"{where}: no split {split!r} ({reason})", field="config.dataset") from None
  images, labels, sizes = [], [], set()
  for example in tfds.as_numpy(dataset):
    batch = _squeeze_grey(example["image"] if fixed else example["image"][None])
    images.append(pixels.resize_arrays(batch, image_size))
    sizes.add(images[-1].shape[1:])
    if labelled:
      labels.append(np.asarray(example["label"], np.int32).reshape(-1))
  if not images:
    raise DataError(f"{where}: split {split!r} is empty")
  if len(sizes) > 1:
    listed = ", ".join("x".join(map(str, s[:2])) for s in sorted(sizes)[:2])
    raise DataError(f"{where}: images of different sizes ({listed}); set config.image_size to "
                    "resize them all", field="config.image_size")
  return np.concatenate(images), np.concatenate(labels) if labelled else None


def _open_split(tfds, builder, split: str, image_size: int, labelled: bool, where: str):
  """(images: a RecordStore or a decoded array, labels int32 or None)."""
  fixed = None not in getattr(builder.info.features["image"], "shape", (None,))
  if builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD and (fixed or image_size):
    try:
      store = RecordStore(tfds, builder, split, image_size)
    except Exception as exc:  # an unknown split, an empty one, unreadable files
      reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
      raise DataError(f"{where}: cannot read split {split!r} ({reason})",
                      field="config.dataset") from None
    return store, store.labels() if labelled else None
  return _read_split(tfds, builder, split, image_size, labelled, where)


def load(arg: str, data_dir, image_size: int, which: str) -> dict:
  """{"images", "labels" (or None), "class_names", "has_test"} of the training split
  (which="train") or of the test split (which="test"; images None when there is none);
  images: a RecordStore (read by row) or a decoded uint8 array."""
  tfds = _tfds()
  name, split = parse(arg)
  where = f"tfds:{arg}"
  builder = _builder(tfds, name, where)
  _, names = _check_features(builder, where)
  builder = _prepare(tfds, builder, name, data_dir, where)
  names = tuple(builder.info.features["label"].names) if names else ()  # read once prepared
  has_test = "test" in builder.info.splits and split.split("[")[0] != "test"
  images = labels = None
  if which == "train" or has_test:
    images, labels = _open_split(tfds, builder, split if which == "train" else "test",
                                 image_size, bool(names), where)
  return {"images": images, "labels": labels, "class_names": names, "has_test": has_test}
