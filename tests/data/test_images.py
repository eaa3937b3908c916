"""genjax.data.images against the real MNIST / Fashion-MNIST files, directly and through TFDS."""
import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from genjax.core.errors import DataError
from genjax.data import image_sets, images as data, source
from tests.conftest import DATA_ROOT

MNIST_TRAIN_HIST = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(scope="session")
def root():
  """The real data folder; missing data is a failure, not a skip."""
  assert (DATA_ROOT / "mnist").is_dir() and (DATA_ROOT / "fashion-mnist").is_dir(), f"data not found in {DATA_ROOT}"
  return str(DATA_ROOT)


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch):
  # Tests pass data folders explicitly so the environment cannot change what they check.
  monkeypatch.delenv("GENJAX_DATA_DIR", raising=False)


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="session")
def mnist_tfds(root, tfds_dir):
  """MNIST prepared once through TFDS from the real gz files."""
  return {split: data.load_tfds("mnist", split, manual_dir=Path(root) / "mnist", tfds_data_dir=tfds_dir) for split in data.SPLITS}


def _idx_header(magic, dims):
  return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


def _sorted_by_content(images, labels):
  """Order examples by a hash of (image bytes, label) so differently shuffled copies line up."""
  keys = [hashlib.sha1(img.tobytes() + bytes([lab])).digest() for img, lab in zip(images, labels)]
  order = sorted(range(len(keys)), key=keys.__getitem__)
  return images[order], labels[order]


def test_mnist_idx(root):
  images, labels = data.load_idx("mnist", "train", root)
  assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
  assert labels.shape == (60000,) and labels.dtype == np.int32
  assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
  assert np.bincount(labels).tolist() == MNIST_TRAIN_HIST
  test_images, test_labels = data.load_idx("mnist", "test", root)
  assert test_images.shape == (10000, 28, 28) and test_labels.shape == (10000,)
  assert test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_fashion_mnist_idx(root):
  images, labels = data.load_dataset("fashion_mnist", "train", data_dir=root)
  assert images.shape == (60000, 28, 28) and images.dtype == np.uint8 and labels.dtype == np.int32
  assert np.bincount(labels).tolist() == [6000] * 10
  test_images, test_labels = data.load_dataset("fashion_mnist", "test", data_dir=root, backend="idx")
  assert test_images.shape == (10000, 28, 28) and test_labels.shape == (10000,)


@pytest.mark.slow
@pytest.mark.parametrize("split", data.SPLITS)
def test_tfds_matches_idx(root, mnist_tfds, split):
  tf_images, tf_labels = mnist_tfds[split]
  idx_images, idx_labels = data.load_idx("mnist", split, root)
  assert tf_images.shape == idx_images.shape and tf_images.dtype == np.uint8 and tf_labels.dtype == np.int32
  tf_images, tf_labels = _sorted_by_content(tf_images, tf_labels)
  idx_images, idx_labels = _sorted_by_content(idx_images, idx_labels)
  np.testing.assert_array_equal(tf_images, idx_images)
  np.testing.assert_array_equal(tf_labels, idx_labels)


@pytest.mark.slow
def test_load_dataset_tfds_backend(root, mnist_tfds, tfds_dir, monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))  # reuse the prepared copy
  images, labels = data.load_dataset("mnist", "test", data_dir=root, backend="tfds")
  np.testing.assert_array_equal(images, mnist_tfds["test"][0])
  np.testing.assert_array_equal(labels, mnist_tfds["test"][1])


def test_load_dataset_cached_and_read_only(root):
  first = data.load_dataset("mnist", "test", data_dir=root)
  second = data.load_dataset("mnist", "test", data_dir=root)
  assert first[0] is second[0] and first[1] is second[1]
  with pytest.raises(ValueError):
    first[1][0] = 3


def test_resolve_data_dir_precedence(tmp_path, monkeypatch):
  explicit, env = tmp_path / "explicit", tmp_path / "env"
  explicit.mkdir()
  env.mkdir()
  assert source.resolve_data_dir(None) is None
  monkeypatch.setenv("GENJAX_DATA_DIR", str(env))
  assert source.resolve_data_dir(None) == str(env.resolve())
  assert source.resolve_data_dir("") == str(env.resolve())
  assert source.resolve_data_dir(str(explicit)) == str(explicit.resolve())
  with pytest.raises(DataError, match="nowhere.*config.data_dir"):
    source.resolve_data_dir(str(tmp_path / "nowhere"))
  monkeypatch.setenv("GENJAX_DATA_DIR", str(tmp_path / "gone"))
  with pytest.raises(DataError, match="gone.*GENJAX_DATA_DIR"):
    data.load_dataset("mnist", data_dir=None)


def _bad_files(root):
  """(file name, bytes) pairs, each a different way an IDX file can be broken."""
  real = (Path(root) / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
  bad_crc = real[:-8] + bytes([real[-8] ^ 0xFF]) + real[-7:]
  return {
    "truncated": real[: len(real) // 2],
    "bad_crc": bad_crc,
    "garbage": b"this is not an IDX file at all",
    "bad_gzip": b"\x1f\x8b" + b"\x00" * 40,
    "wrong_magic": gzip.compress(_idx_header(0x12345678, []) + b"\x00" * 16),
    "float_type": gzip.compress(_idx_header(0x00000D01, [4]) + b"\x00" * 16),
    "short_payload": gzip.compress(_idx_header(0x00000803, [10, 28, 28]) + b"\x00" * (5 * 784)),
    "long_payload": _idx_header(0x00000801, [3]) + b"\x01" * 4,
    "short_header": gzip.compress(_idx_header(0x00000803, [10])),
  }


BAD_KINDS = ["truncated", "bad_crc", "garbage", "bad_gzip", "wrong_magic", "float_type", "short_payload", "long_payload", "short_header"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_read_idx_bad_files(root, tmp_path, kind):
  path = tmp_path / f"{kind}-idx-file.gz"
  bad = _bad_files(root)
  assert sorted(bad) == sorted(BAD_KINDS)
  path.write_bytes(bad[kind])
  with pytest.raises(DataError, match=f"{kind}-idx-file.gz"):
    data.read_idx(path)


def test_read_idx_uncompressed_and_missing(tmp_path):
  raw = tmp_path / "labels-idx1-ubyte"
  raw.write_bytes(_idx_header(0x00000801, [3]) + bytes([7, 2, 1]))
  assert data.read_idx(raw).tolist() == [7, 2, 1]
  with pytest.raises(DataError, match="absent-file.gz"):
    data.read_idx(tmp_path / "absent-file.gz")


def test_load_idx_count_mismatch_and_missing_folder(tmp_path):
  folder = tmp_path / "mnist"
  folder.mkdir()
  (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_header(0x803, [3, 28, 28]) + bytes(3 * 784)))
  (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_header(0x801, [2]) + bytes(2)))
  with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
    data.load_idx("mnist", "train", tmp_path)
  with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
    data.load_idx("mnist", "test", tmp_path)
  with pytest.raises(DataError, match="fashion-mnist"):
    data.load_dataset("fashion_mnist", data_dir=str(tmp_path))


def test_unknown_name_split_backend(root):
  with pytest.raises(DataError, match="cifar10.*mnist, fashion_mnist"):
    data.load_dataset("cifar10", data_dir=root)
  with pytest.raises(DataError, match="validation"):
    data.load_dataset("mnist", "validation", data_dir=root)
  with pytest.raises(DataError, match="torch"):
    data.load_dataset("mnist", data_dir=root, backend="torch")
  with pytest.raises(DataError, match="GENJAX_DATA_DIR"):
    data.load_dataset("mnist", backend="idx")


def test_offline_without_data_fails_at_once_with_the_hint(tmp_path, monkeypatch):
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
  monkeypatch.setenv("GENJAX_OFFLINE", "1")
  assert not source.host_reachable(source.DOWNLOAD_HOSTS["mnist"])  # no probe: the network is off
  with pytest.raises(DataError) as info:
    data.load_dataset("mnist", "train")
  message = str(info.value)
  assert "config.data_dir or GENJAX_DATA_DIR" in message and "mnist/ and fashion-mnist/" in message
  assert info.value.field == "config.data_dir" and "\n" not in message


def test_a_failed_download_is_reported_in_one_line(tmp_path, monkeypatch):
  import tensorflow_datasets as tfds

  def no_network(*args, **kwargs):
    raise ConnectionError("network disabled in tests")

  # This machine has no route out: pretend the probe got through, and let the download fail.
  monkeypatch.setattr(data, "host_reachable", lambda host: True)
  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_network)
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
  with pytest.raises(DataError) as info:
    data.load_dataset("mnist", "train")
  message = str(info.value)
  assert "GENJAX_DATA_DIR" in message and "network disabled" in message and "\n" not in message


def test_tfds_not_installed(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # makes the import fail
  with pytest.raises(DataError, match="tensorflow-datasets"):
    data.load_tfds("mnist", "test")


def test_scale_to_tanh_range():
  import jax
  import jax.numpy as jnp

  pixels = np.array([[0, 255], [51, 204]], dtype=np.uint8)
  scaled = data.scale_to_tanh_range(pixels)
  assert scaled.dtype == np.float32
  np.testing.assert_allclose(scaled, [[-1.0, 1.0], [-0.6, 0.6]], atol=1e-6)
  jitted = jax.jit(data.scale_to_tanh_range)(jnp.asarray(pixels))
  assert jitted.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(jitted), scaled, atol=1e-6)


@pytest.mark.slow
def test_tfds_mnist_through_the_dataset_argument(mnist_tfds, tfds_dir, root, monkeypatch):
  """tfds:mnist reads the TFDS data dir the fixture prepared from the gz files (its manual_dir)
  and gives what TFDS itself reads."""
  monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
  monkeypatch.setenv("GENJAX_OFFLINE", "1")  # no download: prepared, or nothing
  spec = image_sets.DataSpec("tfds:mnist", data_dir=str(root))
  for split in data.SPLITS:
    found = image_sets.open_split(spec, split)
    np.testing.assert_array_equal(found.arrays()[0], mnist_tfds[split][0])  # TFDS's own order
    np.testing.assert_array_equal(found.arrays()[1], mnist_tfds[split][1])
    assert found.class_names == tuple(str(k) for k in range(10)) and found.shape_hwc == (28, 28, 1)
