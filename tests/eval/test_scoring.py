"""The judge-based evaluation: sanity on real data and noise, bad input, training-time eval."""

import numpy as np
import pytest

from genjax import sampling
from genjax.data import images as data
from genjax.eval import scoring as evaluation
from genjax.eval.scoring import EvaluationError


@pytest.fixture(scope="module")
def mnist_test(data_root):
  images, _ = data.load_dataset("mnist", "test", data_root)
  return images.astype(np.float32) / 255.0


@pytest.mark.slow
def test_test_set_against_itself_is_the_ideal(mnist_test, data_root):
  m = evaluation.evaluate_images(mnist_test, "mnist", data_root)
  assert abs(m["fid"]) < 1e-2
  assert m["precision"] == 1.0 and m["recall"] == 1.0
  assert 9.0 < m["score"] <= 10.0  # confident and balanced over 10 digits
  assert m["kl_to_uniform"] < 0.01 and m["confident"] > 0.97


@pytest.mark.slow
def test_real_train_floor_beats_noise(data_root):
  rows = evaluation.reference_rows("mnist", data_root, num=1000, seed=0)
  real, noise = rows["real_train"], rows["uniform_noise"]
  assert real["fid"] < 0.05 * noise["fid"]
  assert real["score"] > 8.0 > noise["score"]
  assert real["precision"] > 0.6 and real["recall"] > 0.6
  assert noise["precision"] < 0.05 and noise["recall"] < 0.05
  assert real["num_samples"] == noise["num_samples"] == 1000


def test_slightly_degraded_real_images_score_between_floor_and_noise(data_root):
  rows = evaluation.reference_rows("mnist", data_root, num=500, seed=0, degraded=True)
  floor, noise = rows["real_train"]["fid"], rows["uniform_noise"]["fid"]
  for name in ("real_blur_0.5px", "real_noise_0.05", "real_binarized"):
    assert floor < rows[name]["fid"] < 0.2 * noise, name
  assert rows["real_blur_0.5px"]["fid"] > 3 * floor  # the judge sees sub-pixel blur


@pytest.mark.parametrize("images,needle", [
    (np.zeros((5, 28, 27), np.float32), "shape"),
    (np.zeros((5, 28, 28), np.uint8), "dtype"),
    (np.full((5, 28, 28), 2.0, np.float32), r"\[0, 1\]"),
    (np.full((5, 28, 28), np.nan, np.float32), "NaN"),
])
def test_bad_images_are_named(images, needle):
  with pytest.raises(EvaluationError, match=needle):
    evaluation.check_images(images, "my.npz")


def test_bad_sample_files(tmp_path):
  np.savez(tmp_path / "wrong_key.npz", pictures=np.zeros((4, 28, 28), np.float32))
  (tmp_path / "garbage.npz").write_bytes(b"not a zip")
  with pytest.raises(EvaluationError, match="wrong_key.npz: no 'images'"):
    evaluation.load_samples(tmp_path / "wrong_key.npz")
  with pytest.raises(EvaluationError, match="garbage.npz"):
    evaluation.load_samples(tmp_path / "garbage.npz")
  with pytest.raises(EvaluationError, match="missing.npz"):
    evaluation.load_samples(tmp_path / "missing.npz")
  with pytest.raises(EvaluationError, match="exactly one"):
    sampling.evaluate()
  with pytest.raises(EvaluationError, match="^degraded .*--noreferences"):
    sampling.evaluate(tmp_path / "x.npz", references=False, degraded=True)


def test_label_accuracy_is_the_judges_agreement(data_root):
  images, labels = data.load_dataset("mnist", "test", data_root)
  images = images[:500].astype(np.float32) / 255.0
  right = evaluation.evaluate_images(images, "mnist", data_root, labels_N=labels[:500])
  wrong = evaluation.evaluate_images(images, "mnist", data_root, labels_N=(labels[:500] + 1) % 10)
  assert right["label_accuracy"] >= 0.99
  assert wrong["label_accuracy"] <= 0.01
  assert "label_accuracy" not in evaluation.evaluate_images(images, "mnist", data_root)
  table = evaluation.format_table({"samples": right})
  assert "requested labels" in table and "class_share" in table


@pytest.mark.slow
def test_per_class_fid_finds_the_class_that_is_wrong(data_root):
  images, labels = data.load_dataset("mnist", "train", data_root)
  images, labels = images[:3000].astype(np.float32) / 255.0, np.asarray(labels[:3000])
  honest = evaluation.evaluate_images(images, "mnist", data_root, labels_N=labels, per_class=True)
  # Every image labelled 3 swapped for a 5: only class 3's FID may blow up.
  fives = images[labels == 5]
  swapped = images.copy()
  threes = np.flatnonzero(labels == 3)
  swapped[threes] = fives[np.arange(len(threes)) % len(fives)]
  wrong = evaluation.evaluate_images(swapped, "mnist", data_root, labels_N=labels, per_class=True)
  assert len(honest["class_fid"]) == len(wrong["class_fid"]) == 10
  assert max(honest["class_fid"]) < 0.2 * wrong["class_fid"][3]
  others = [k for k in range(10) if k != 3]
  np.testing.assert_allclose([wrong["class_fid"][k] for k in others],
                             [honest["class_fid"][k] for k in others], rtol=1e-4)
  assert "class_fid" not in evaluation.evaluate_images(images, "mnist", data_root, labels_N=labels)
  rows = evaluation.reference_rows("mnist", data_root, num=500, per_class=True)
  assert len(rows["real_train"]["class_fid"]) == 10 and rows["real_train"]["label_accuracy"] > 0.95
  table = evaluation.format_table({"samples": wrong, **rows})
  assert "FID per class: 0: " in table and "on the true labels" in table


def report_with(fid, floor):
  return {"rows": {"samples": {"fid": fid}, "real_train": {"fid": floor}}}


def test_seed_spread_reads_the_target_off_the_means():
  spread = evaluation.seed_spread([report_with(5.0, 1.0), report_with(6.0, 2.0)], [3, 7])
  assert spread["seeds"] == [3, 7] and spread["ratio"] == [5.0, 3.0]
  assert spread["mean_fid"] == 5.5 and spread["std_fid"] == 0.5 and spread["mean_floor"] == 1.5
  assert spread["mean_ratio"] == pytest.approx(5.5 / 1.5)  # not the mean of the ratios (4.0)
  line = evaluation.format_seed_spread(spread)
  assert "seeds 3, 7" in line and "mean 5.50 ± 0.50" in line and "3.67×" in line


@pytest.mark.parametrize("seeds,needle", [(["0", "x"], "integers"), (["1"], "at least two"),
                                          (["2", "2"], "at least two different")])
def test_bad_seed_lists_are_named(seeds, needle):
  with pytest.raises(EvaluationError, match=needle):
    sampling.evaluate_seeds(seeds, workdir="never/read")


def test_step_needs_a_workdir(tmp_path):
  with pytest.raises(EvaluationError, match="^step picks a checkpoint of --workdir"):
    sampling.evaluate(samples=tmp_path / "s.npz", step=8)
