"""Radial power spectra: Parseval, white noise, blur and noise, per class, the report and plot."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from genjax.data import images as data
from genjax.eval import scoring as evaluation, spectra


@pytest.fixture(scope="module")
def fashion(data_root):
  images, labels = data.load_dataset("fashion_mnist", "test", data_root)
  return images[:2000].astype(np.float32) / 255.0, np.asarray(labels[:2000])


def test_radii_sum_to_the_variance(fashion):
  """Parseval: summed over radii, the power is each image's sum of squared deviations."""
  images = fashion[0][:50]
  power = spectra.radial_power(images)
  deviations = images - images.mean(axis=(1, 2), keepdims=True)
  assert power[0] == pytest.approx(0.0, abs=1e-9)
  assert power.sum() == pytest.approx(float((deviations.astype(np.float64) ** 2).sum((1, 2)).mean()),
                                      rel=1e-9)
  assert len(power) == 21  # radius up to hypot(14, 14) rounded


def test_white_noise_is_flat_per_bin():
  noise = np.random.default_rng(0).normal(0.0, 1.0, (400, 28, 28))
  power = spectra.radial_power(noise)
  bins = np.bincount(spectra.radius_index(28, 28).ravel())
  per_bin = power[1:] / bins[1:]
  assert np.allclose(per_bin, 1.0, rtol=0.1)  # variance 1 in every frequency bin


def test_blur_and_noise_move_the_high_band(fashion):
  images = fashion[0][:500]
  blurred = ndimage.gaussian_filter(images, (0, 0.7, 0.7))
  noisy = images + np.random.default_rng(1).normal(0.0, 0.05, images.shape)
  assert spectra.high_band_ratio(blurred, images) < 0.5
  assert spectra.high_band_ratio(noisy, images) > 1.1
  assert spectra.high_band_ratio(images, images) == pytest.approx(1.0)


def test_report_per_class(fashion):
  images, labels = fashion
  noisy = images.copy()
  noisy[labels == 8] += np.random.default_rng(2).normal(0.0, 0.05, noisy[labels == 8].shape)
  report = spectra.spectrum_report(noisy, images, labels, labels)
  ratios = report["class_high_band_ratio"]
  assert len(ratios) == 10 and ratios[8] > 1.1  # only bags were noised
  assert all(r == pytest.approx(1.0) for k, r in enumerate(ratios) if k != 8)
  assert "8: " in spectra.format_summary(report)
  assert len(report["ratio"]) == len(report["radius"]) - 1


@pytest.mark.slow
def test_evaluate_script_writes_spectrum(tmp_path, data_root):
  images, _ = data.load_dataset("mnist", "test", data_root)
  npz = tmp_path / "s.npz"
  np.savez(npz, images=images[:300].astype(np.float32) / 255.0)
  script = Path(__file__).resolve().parents[2] / "experiments" / "evaluate.py"
  proc = subprocess.run([sys.executable, str(script), "--samples", str(npz), "--num", "300",
                         "--spectrum", "--json", str(tmp_path / "r.json")],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  report = json.loads((tmp_path / "r.json").read_text())
  # Test images against a train subset: the same distribution, so close to 1.
  assert 0.8 < report["spectrum"]["high_band_ratio"] < 1.25
  assert (tmp_path / "r.spectrum.png").stat().st_size > 1000
  assert "samples / real" in proc.stdout


def test_floor_subset_unchanged_by_refactor(data_root):
  """real_subset draws what reference_rows always drew: figures stay reproducible."""
  rng = np.random.default_rng(0)
  subset, labels = evaluation.real_subset("mnist", data_root, 100, rng)
  train, train_labels = data.load_dataset("mnist", "train", data_root)
  chosen = np.random.default_rng(0).choice(len(train), size=100, replace=False)
  assert np.array_equal(subset, train[chosen].astype(np.float32) / 255.0)
  assert np.array_equal(labels, np.asarray(train_labels)[chosen])
