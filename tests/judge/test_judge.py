"""The judge: CNN shapes, the shipped weights and their checks, tiny training, the entry point."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.configs.classifier import get_config
from genjax.data import images as data
from genjax.judge import cnn as classifier
from genjax.judge.train import train_judge
from genjax.nn.layers import conv3x3_valid
from tests.conftest import DATA_ROOT, PROJECT_ROOT, assert_one_line_error

MIN_ACCURACY = {"mnist": 99.3, "fashion_mnist": 91.0}


def test_data_root_exists():
  assert (DATA_ROOT / "mnist").is_dir(), f"MNIST gz files not found in {DATA_ROOT}"


def test_cnn_outputs_logits_and_penultimate_features():
  model = classifier.CNN()
  images_BxHxW = jax.random.uniform(jax.random.key(0), (3, 28, 28))
  params = model.init(jax.random.key(1), images_BxHxW, train=False)["params"]
  logits, features = model.apply({"params": params}, images_BxHxW, train=False)
  assert logits.shape == (3, 10) and logits.dtype == jnp.float32
  assert features.shape == (3, 128) and features.dtype == jnp.float32
  assert float(features.min()) >= 0.0  # post-ReLU
  logits_train, _ = model.apply({"params": params}, images_BxHxW, train=True,
                                rngs={"dropout": jax.random.key(2)})
  assert logits_train.shape == (3, 10) and not np.allclose(logits_train, logits)
  assert 4 * sum(p.size for p in jax.tree.leaves(params)) <= 2e6  # float32 bytes


def test_conv3x3_is_a_valid_convolution():
  x = jax.random.normal(jax.random.key(0), (2, 9, 8, 3))
  kernel = jax.random.normal(jax.random.key(1), (3, 3, 3, 5))
  expected = jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID",
                                          dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(conv3x3_valid(x, kernel), expected, atol=1e-4)


@pytest.mark.parametrize("dataset", ["mnist", pytest.param("fashion_mnist", marks=pytest.mark.slow)])
def test_shipped_judge_reaches_its_recorded_accuracy(dataset):
  judge = classifier.load_judge(dataset)
  assert judge is classifier.load_judge(dataset)  # cached
  assert judge.identity == {"dataset": dataset, "weights_sha256": judge.meta["weights_sha256"],
                            "test_accuracy": judge.meta["test_accuracy"]}
  images, labels = data.load_dataset(dataset, "test", DATA_ROOT)
  assert classifier.data_sha256(images, labels) == judge.meta["test_data_sha256"]
  accuracy = judge.accuracy(images.astype(np.float32) / 255.0, labels)
  assert abs(accuracy - judge.meta["test_accuracy"]) <= 0.05
  assert accuracy >= MIN_ACCURACY[dataset]


def test_batched_prediction_matches_unbatched():
  judge = classifier.load_judge("mnist")
  images, _ = data.load_dataset("mnist", "test", DATA_ROOT)
  x_NxHxW = images[:1001].astype(np.float32) / 255.0
  probs, features = judge.predict(x_NxHxW)  # 1000 + 1 padded to 1000
  assert probs.shape == (1001, 10) and features.shape == (1001, 128)
  assert probs.dtype == np.float32 and features.dtype == np.float32
  np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
  for start, stop in ((0, 1), (995, 1001), (1000, 1001)):
    p, f = judge.predict(x_NxHxW[start:stop])
    np.testing.assert_allclose(p, probs[start:stop], atol=1e-5)
    np.testing.assert_allclose(f, features[start:stop], rtol=1e-4, atol=1e-4)
  p, _ = judge.predict(x_NxHxW, batch_size=1001)
  np.testing.assert_allclose(p, probs, atol=1e-5)
  np.testing.assert_array_equal(judge.predict(images[:5])[0], probs[:5])  # uint8 is scaled
  with pytest.raises(classifier.JudgeError, match=r"\[0, 1\]"):
    judge.predict(x_NxHxW[:5] * 2 - 1)  # a tanh-range GAN sample


@pytest.fixture
def judge_copy(tmp_path):
  for suffix in (".msgpack", ".json"):
    shutil.copy(classifier.JUDGE_DIR / f"mnist{suffix}", tmp_path)
  return tmp_path


def test_copied_judge_loads(judge_copy):
  assert classifier.load_judge("mnist", judge_copy).identity == classifier.load_judge("mnist").identity


def test_tampered_weights_raise_judge_error(judge_copy):
  path = judge_copy / "mnist.msgpack"
  payload = bytearray(path.read_bytes())
  payload[-1] ^= 1
  path.write_bytes(bytes(payload))
  with pytest.raises(classifier.JudgeError) as exc:
    classifier.load_judge("mnist", judge_copy)
  message = str(exc.value)
  assert str(path) in message and "sha256" in message and "\n" not in message
  assert "experiments/train_classifier.py --dataset mnist" in message


@pytest.mark.parametrize("missing", ["mnist.msgpack", "mnist.json"])
def test_missing_files_raise_judge_error(judge_copy, missing):
  (judge_copy / missing).unlink()
  with pytest.raises(classifier.JudgeError, match="not found") as exc:
    classifier.load_judge("mnist", judge_copy)
  assert str(judge_copy / missing) in str(exc.value)
  assert "train_classifier.py --dataset mnist" in str(exc.value)


def test_corrupt_metadata_raises_judge_error(judge_copy):
  (judge_copy / "mnist.json").write_text("{not json")
  with pytest.raises(classifier.JudgeError, match="corrupt judge metadata") as exc:
    classifier.load_judge("mnist", judge_copy)
  assert str(judge_copy / "mnist.json") in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.slow
def test_tiny_training_is_deterministic_and_learns(tmp_path):
  config = get_config("tiny")
  config.update(data_dir=str(DATA_ROOT), out_dir=str(tmp_path / "out"))
  first = train_judge(config, tmp_path / "first")
  config.out_dir = ""
  second = train_judge(config, tmp_path / "second")
  assert first["weights_sha256"] == second["weights_sha256"]
  assert first["test_accuracy"] == second["test_accuracy"] > 25.0  # chance is 10%
  assert second["out_dir"] is None and not (tmp_path / "second" / "mnist.json").exists()
  meta = json.loads((tmp_path / "out" / "mnist.json").read_text())
  assert meta["config"]["num_epochs"] == 2 and meta["param_count"] == first["param_count"]
  assert meta["config"]["num_steps"] == 2 * 2000 // 50  # two epochs of the 2,000 images
  judge = classifier.load_judge("mnist", tmp_path / "out")  # what it wrote loads as a judge
  images, labels = data.load_dataset("mnist", "test", DATA_ROOT)
  assert judge.accuracy(images[:1000], labels[:1000]) == pytest.approx(meta["test_accuracy"])
  assert judge.predict(images[:2])[1].shape == (2, config.feature_dim)


def run_cli(*args):
  env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), GENJAX_DATA_DIR=str(DATA_ROOT))
  return subprocess.run([sys.executable, str(PROJECT_ROOT / "experiments" / "train_classifier.py"),
                         *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("args, needle", [
    (("--dataset", "cifar10"), "--dataset 'cifar10' is unknown"),
    # --config.* overrides still apply on top of the --dataset variant
    (("--dataset", "fashion_mnist", "--config.batch_size=0"), "--config.batch_size"),
])
def test_cli_rejects_bad_input_in_one_line(args, needle, tmp_path):
  result = run_cli(*args, f"--out={tmp_path / 'out'}", f"--workdir={tmp_path / 'run'}")
  assert_one_line_error(result, needle)
  assert not list(tmp_path.iterdir())
