"""Own image data: folders, .npz files and their splits, against the real MNIST files; each way
the data can be wrong is one line naming the file or field."""

import jax
import numpy as np
import pytest
from PIL import Image

from genjax.configs import classifier, gan_mnist
from genjax.core import sharding
from genjax.core.errors import ConfigError, DataError
from genjax.data import image_sets, images as idx, npz, pixels, tfds_images
from genjax.data.examples import coloured
from genjax.data.image_sets import DataSpec
from genjax.judge.train import JudgeFamily
from tests.data.image_folders import coloured, mnist_folder, write_split


def spec(dataset, **kwargs) -> DataSpec:
  return DataSpec(image_sets.resolve_dataset(dataset), **kwargs)


@pytest.fixture(scope="module")
def mnist_pngs(tmp_path_factory, data_root):
  """MNIST's first 600 training and 200 test images as PNGs named by their index."""
  return mnist_folder(tmp_path_factory.mktemp("mnist_pngs"), data_root, 600, 200)


def test_a_folder_of_mnist_pngs_is_the_idx_arrays_in_their_order(mnist_pngs, data_root):
  for split, num in (("train", 600), ("test", 200)):
    data = image_sets.open_split(spec(f"folder:{mnist_pngs}"), split)
    images, labels = data.arrays()
    idx_images, idx_labels = idx.load_idx("mnist", split, data_root)
    np.testing.assert_array_equal(images, idx_images[:num])
    np.testing.assert_array_equal(labels, idx_labels[:num])
    assert data.class_names == tuple(str(k) for k in range(10)) and data.shape_hwc == (28, 28, 1)
  rows = np.array([[5, 0], [599, 17]])  # what a streamed chunk reads: the same rows
  train = image_sets.open_split(spec(f"folder:{mnist_pngs}"), "train")
  taken, taken_labels = train.take(rows)
  np.testing.assert_array_equal(taken, idx.load_idx("mnist", "train", data_root)[0][rows])
  assert taken_labels.shape == (2, 2)


def test_natural_order_and_ties_go_to_the_first_class(tmp_path):
  pixels_ = np.zeros((4, 3), np.uint8)
  for name, label in (("b/10.png", 1), ("a/2.png", 0), ("b/2.png", 1), ("a/x9.png", 0)):
    (tmp_path / name).parent.mkdir(exist_ok=True)
    Image.fromarray(pixels_ + label).save(tmp_path / name)
  data = image_sets.open_split(spec(f"folder:{tmp_path}"), "train")
  assert [p.split("/")[-2] + "/" + p.split("/")[-1] for p in data.store.paths] == \
      ["a/2.png", "b/2.png", "b/10.png", "a/x9.png"]
  assert data.arrays()[1].tolist() == [0, 1, 1, 0]


def test_image_size_resizes_and_colour_sets_three_channels(tmp_path, data_root):
  images, labels = idx.load_idx("mnist", "test", data_root)
  rgb = coloured(images[:20])
  write_split(tmp_path / "c", rgb, labels[:20])
  Image.fromarray(images[0]).save(tmp_path / "c" / str(labels[0]) / "grey.png")  # one grey
  data = image_sets.open_split(spec(f"folder:{tmp_path / 'c'}", image_size=16,
                                    test_fraction=0.25), "train")
  assert data.shape_hwc == (16, 16, 3) and len(data) == 16  # 21 images, 5 held out
  assert data.arrays()[0].shape == (16, 16, 16, 3)
  test = image_sets.open_split(spec(f"folder:{tmp_path / 'c'}", image_size=16,
                                    test_fraction=0.25), "test")
  assert len(test) == 5 and not set(test.rows) & set(data.rows)  # disjoint, the same every run
  wide = Image.fromarray(np.arange(40 * 20, dtype=np.uint8).reshape(20, 40))
  assert np.asarray(pixels.fit(wide, 10)).shape == (10, 10)  # shorter side, then the centre


def test_a_flat_folder_is_unlabelled(tmp_path, data_root):
  images, _ = idx.load_idx("mnist", "test", data_root)
  write_split(tmp_path, images[:12])
  data = image_sets.open_split(spec(f"folder:{tmp_path}", test_fraction=0.25), "train")
  assert data.num_classes == 0 and data.arrays()[1] is None and len(data) == 9


def test_npz_round_trip(tmp_path, data_root):
  images, labels = idx.load_idx("fashion_mnist", "train", data_root)
  test_images, test_labels = idx.load_idx("fashion_mnist", "test", data_root)
  path = tmp_path / "fashion.npz"
  npz.write(path, images[:50], labels[:50], idx.CLASS_NAMES["fashion_mnist"], test_images[:20],
            test_labels[:20])
  train = image_sets.open_split(spec(f"npz:{path}"), "train")
  np.testing.assert_array_equal(train.arrays()[0], images[:50])
  np.testing.assert_array_equal(train.arrays()[1], labels[:50])
  assert train.class_names == idx.CLASS_NAMES["fashion_mnist"]
  test = image_sets.open_split(spec(f"npz:{path}", image_size=32), "test")
  assert test.arrays()[0].shape == (20, 32, 32)
  config = image_sets.filled(_config(f"npz:{path}"))
  assert config.image_shape == (28, 28, 1) and config.num_classes == 10


def _config(dataset, **overrides):
  config = gan_mnist.get_config("tiny")
  config.update(dataset=dataset, **overrides)
  return config


def _bad_png(path):
  raw = (path.parent / "good.png")
  Image.fromarray(np.zeros((8, 8), np.uint8)).save(raw)
  path.write_bytes(raw.read_bytes()[:40])
  raw.unlink()


@pytest.mark.parametrize("case,needle", [
    ("empty", "no images"),
    ("empty_class", "cat: class folder with no images"),
    ("truncated", "broken.png: cannot read the image"),
    ("not_an_image", "notes.png: cannot read the image"),
    ("sizes", "images of different sizes (a.png 8x8, b.png 9x8); set config.image_size"),
    ("mixed", "holds both images (x.png) and class folders (cat/)"),
])
def test_bad_folders_are_one_line_naming_the_file(tmp_path, case, needle):
  root = tmp_path / "data"
  root.mkdir()
  save = lambda name, w=8: Image.fromarray(np.zeros((8, w), np.uint8)).save(root / name)  # noqa
  if case == "empty_class":
    (root / "dog").mkdir()
    save("dog/1.png")
    (root / "cat").mkdir()
  elif case == "truncated":
    _bad_png(root / "broken.png")
  elif case == "not_an_image":
    (root / "notes.png").write_text("not a picture")
  elif case == "sizes":
    save("a.png")
    save("b.png", 9)
  elif case == "mixed":
    (root / "cat").mkdir()
    save("cat/1.png")
    save("x.png")
  with pytest.raises(DataError) as info:
    image_sets.open_split(spec(f"folder:{root}"), "train").arrays()
  assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("arrays,needle", [
    ({"pictures": np.zeros((3, 8, 8), np.uint8)}, "no 'images' array (it has pictures)"),
    ({"images": np.zeros((3, 8, 8), np.uint8), "labels": np.zeros(2, np.int64)},
     "'labels' has shape (2,); it needs one label per image (3)"),
    ({"images": np.zeros((3, 8, 8), np.float32)}, "images must be uint8"),
    ({"images": np.zeros((3, 8, 8, 4), np.uint8)}, "C 1 or 3"),
])
def test_bad_npz_is_one_line(tmp_path, arrays, needle):
  path = tmp_path / "bad.npz"
  np.savez(path, **arrays)
  with pytest.raises(DataError, match="bad.npz") as info:
    image_sets.open_split(spec(f"npz:{path}"), "train")
  assert needle in str(info.value)


def test_unknown_forms_and_tfds_names(tmp_path, monkeypatch):
  with pytest.raises(ConfigError, match="config.dataset 'cifar10' is unknown; use mnist"):
    image_sets.resolve_dataset("cifar10")
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
  with pytest.raises(DataError, match="tfds:no_such_images: Dataset no_such_images not found"):
    image_sets.open_split(spec("tfds:no_such_images"), "train")
  with pytest.raises(DataError, match="tfds:glue/sst2: the dataset has no 'image' feature"):
    image_sets.open_split(spec("tfds:glue/sst2"), "train")


@pytest.fixture(scope="module")
def tfds_digits(tmp_path_factory, data_root):
  """A real TFDS dataset `colour_digits` in ArrayRecord files (TFDS's own writer): 300 training
  and 100 test MNIST digits, padded to 32x32 and coloured; returns (TFDS data dir, the
  training images and labels as written)."""
  import tensorflow as tf
  import tensorflow_datasets as tfds

  images, labels = idx.load_idx("mnist", "train", data_root)
  rgb, labels = coloured(images[:400]), labels[:400].astype(np.int64)
  features = tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(32, 32, 3)),
      "label": tfds.features.ClassLabel(names=[str(k) for k in range(10)])})
  split = lambda lo, hi: tf.data.Dataset.from_tensor_slices(  # noqa: E731
      {"image": rgb[lo:hi], "label": labels[lo:hi]})
  root = tmp_path_factory.mktemp("tfds_digits")
  tfds.dataset_builders.store_as_tfds_dataset(
      name="colour_digits", version="1.0.0", features=features, data_dir=str(root),
      split_datasets={"train": split(0, 300), "test": split(300, 400)}, file_format="array_record")
  return root, rgb[:300], labels[:300]


def _sorted(images, labels):
  order = np.lexsort((labels, *images.reshape(len(images), -1).T[::-1]))
  return images[order], labels[order]


@pytest.mark.slow
def test_a_tfds_split_in_array_records_is_read_by_row(tfds_digits, monkeypatch):
  root, rgb, labels = tfds_digits
  monkeypatch.setenv("TFDS_DATA_DIR", str(root))
  monkeypatch.setenv("GENJAX_OFFLINE", "1")
  train = image_sets.open_split(spec("tfds:colour_digits"), "train")
  assert isinstance(train.store, tfds_images.RecordStore) and len(train) == 300
  assert train.shape_hwc == (32, 32, 3) and train.num_classes == 10
  images, found_labels = train.arrays()  # TFDS's order: the same examples
  for got, want in zip(_sorted(images, found_labels), _sorted(rgb, labels)):
    np.testing.assert_array_equal(got, want)
  rows = np.array([[7, 0], [299, 7]])  # a streamed chunk's reads: those rows alone
  taken, taken_labels = train.take(rows)
  np.testing.assert_array_equal(taken, images[rows])
  np.testing.assert_array_equal(taken_labels, found_labels[rows])
  test = image_sets.open_split(spec("tfds:colour_digits"), "test")
  assert len(test) == 100 and isinstance(test.store, tfds_images.RecordStore)
  small = image_sets.open_split(spec("tfds:colour_digits", image_size=16), "train")
  assert small.take(np.array([3]))[0].shape == (1, 16, 16, 3)
  with pytest.raises(DataError, match="tfds:colour_digits:validation: cannot read split "
                     "'validation'"):
    image_sets.open_split(spec("tfds:colour_digits:validation"), "train")


@pytest.mark.slow
def test_a_tfds_set_over_the_threshold_streams_a_gan_run(tfds_digits, monkeypatch, tmp_path,
                                                         capsys):
  from genjax.core import runs
  from genjax.gan.family import train_gan

  monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_digits[0]))
  monkeypatch.setenv("GENJAX_OFFLINE", "1")
  config = gan_mnist.get_config("tiny")
  config.update(dataset="tfds:colour_digits", device_data_mb=0.1)
  train_gan(config, tmp_path / "streamed")
  assert "data: 0.9 MB streamed from the host" in capsys.readouterr().out
  config.device_data_mb = 2048
  train_gan(config, tmp_path / "devices")
  streamed, resident = (runs.restore(tmp_path / d).state for d in ("streamed", "devices"))
  jax.tree.map(np.testing.assert_array_equal, streamed, resident)


def test_paths_are_stored_absolute(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert image_sets.resolve_dataset("folder:faces") == f"folder:{tmp_path / 'faces'}"
  assert image_sets.short_name(f"folder:{tmp_path / 'faces'}") == "faces"
  assert image_sets.resolve_dataset("tfds:cifar10:train[:10%]") == "tfds:cifar10:train[:10%]"


def test_a_judge_needs_labels(tmp_path, data_root):
  write_split(tmp_path, idx.load_idx("mnist", "test", data_root)[0][:20])
  config = classifier.get_config("tiny")
  config.dataset = f"folder:{tmp_path}"
  family = JudgeFamily(JudgeFamily.validate(config), sharding.make_mesh(1))
  with pytest.raises(DataError, match="config.dataset folder:.* has no labels; a judge learns"):
    family.load_data()


@pytest.mark.parametrize("kwargs,needle", [
    (dict(num_train=0), "num must be from 1 to the split's size, got 0"),
    (dict(dataset="cifar10"), "dataset 'cifar10' is unknown; use mnist or fashion_mnist"),
    (dict(side=20), "side must be 0 (as they are) or at least 28, got 20"),
    (dict(full=True), "exists and is not an empty folder"),
])
def test_the_example_folder_refuses_bad_arguments_before_writing(tmp_path, kwargs, needle):
  from genjax.data.examples import write_example_folder

  root = tmp_path / "digits"
  if kwargs.pop("full", False):
    root.mkdir()
    (root / "mine.png").write_bytes(b"")
  args = {**dict(num_train=10, num_test=5, dataset="mnist", side=32), **kwargs}
  with pytest.raises(ConfigError) as info:
    write_example_folder(root, args["num_train"], args["num_test"], None, args["dataset"],
                         args["side"])
  assert needle in str(info.value)
  assert sorted(p.name for p in tmp_path.rglob("*")) == (["digits", "mine.png"] if
                                                         root.exists() else [])
