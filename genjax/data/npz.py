"""Image datasets as one .npz file.

Arrays: `images` (uint8, N x H x W or N x H x W x C, C 1 or 3), and optionally `labels` (N
integers from 0), `class_names` (one string per class), `test_images` and `test_labels` (the
held-out split, laid out like the training one).
"""

from pathlib import Path

import numpy as np

from genjax.core.errors import DataError
from genjax.data import pixels

KEYS = ("images", "labels", "class_names", "test_images", "test_labels")


def _labels(npz, key: str, count: int, where: str) -> np.ndarray | None:
  if key not in npz:
    return None
  labels = np.asarray(npz[key])
  if labels.ndim != 1 or len(labels) != count:
    raise DataError(f"{where}: '{key}' has shape {labels.shape}; it needs one label per image "
                    f"({count})")
  if not np.issubdtype(labels.dtype, np.integer) or (len(labels) and labels.min() < 0):
    raise DataError(f"{where}: '{key}' must be integers from 0, got {labels.dtype}"
                    + (f" down to {labels.min()}" if len(labels) else ""))
  return labels.astype(np.int32)


def read(path) -> dict:
  """{"train": (images, labels or None), "test": the same or None, "class_names": tuple}."""
  where = f"npz:{path}"
  try:
    npz = np.load(Path(path), allow_pickle=False)
  except FileNotFoundError:
    raise DataError(f"{where}: no such file", field="config.dataset") from None
  except (OSError, ValueError, EOFError) as exc:
    raise DataError(f"{where}: not a readable .npz ({' '.join(str(exc).split())[:120]})") \
        from None
  with npz:
    if "images" not in npz:
      raise DataError(f"{where}: no 'images' array (it has {', '.join(npz.files) or 'none'})")
    try:
      images = pixels.check_array_images(npz["images"], f"{where} 'images'")
      labels = _labels(npz, "labels", len(images), where)
      test = None
      if "test_images" in npz:
        test_images = pixels.check_array_images(npz["test_images"], f"{where} 'test_images'")
        if test_images.shape[1:] != images.shape[1:]:
          raise DataError(f"{where}: 'test_images' are {test_images.shape[1:]}, 'images' "
                          f"{images.shape[1:]}")
        test = (test_images, _labels(npz, "test_labels", len(test_images), where))
        if (test[1] is None) != (labels is None):
          raise DataError(f"{where}: 'labels' and 'test_labels' come together (one is missing)")
      names = tuple(str(n) for n in npz["class_names"]) if "class_names" in npz else None
    except DataError:
      raise
    except (OSError, ValueError, EOFError) as exc:  # a member cut short
      raise DataError(f"{where}: cannot read ({' '.join(str(exc).split())[:120]})") from None
  return {"train": (images, labels), "test": test,
          "class_names": _class_names(names, labels, test, where)}


def _class_names(names, labels, test, where: str) -> tuple:
  if labels is None:
    if names:
      raise DataError(f"{where}: 'class_names' without 'labels'")
    return ()
  top = max(int(labels.max(initial=0)), int(test[1].max(initial=0)) if test else 0) + 1
  if names is None:
    return tuple(str(k) for k in range(top))
  if len(names) < top:
    raise DataError(f"{where}: 'class_names' names {len(names)} classes, the labels go up to "
                    f"{top - 1}")
  return names


def write(path, images, labels=None, class_names=None, test_images=None,
          test_labels=None) -> None:
  """The .npz `read` takes back (arrays left out when None)."""
  arrays = dict(images=images, labels=labels, class_names=None if class_names is None
                else np.asarray(class_names, str), test_images=test_images,
                test_labels=test_labels)
  np.savez(Path(path), **{k: v for k, v in arrays.items() if v is not None})
