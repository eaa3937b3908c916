"""genjax's tutorial loop against the tutorial's own Keras code, from the same weights."""

import subprocess
import sys

import jax
import numpy as np
import pytest

from genjax.configs.gan_mnist import get_config
from genjax.data.images import load_dataset, scale_to_tanh_range
from genjax.gan import keras_reference, steps
from genjax.data.image_sets import filled
from genjax.gan.state import build_gan, init_state

ITERATIONS = 5


@pytest.fixture(scope="module")
def mnist_train(data_root):
  return load_dataset("mnist", "train", data_root)[0]


def batches(images_NxHxW, n):
  """The same real batches and noise for both: (real_BxHxW, z_d_BxZ, z_g_BxZ) n times."""
  rng = np.random.default_rng(3)
  for _ in range(n):
    real = scale_to_tanh_range(images_NxHxW[rng.integers(0, len(images_NxHxW), 32)])
    yield (real, *rng.normal(0, 1, (2, 32, keras_reference.LATENT_DIM)).astype(np.float32))


def genjax_run(gan, state, data):
  @jax.jit
  def iteration(state, real_BxHxW, z_d_BxZ, z_g_BxZ):
    state, d_loss, d_acc = steps.keras_d_update(gan, state, real_BxHxW, None, z_d_BxZ, None)
    state, g_loss = steps.g_adam_step(gan, state, z_g_BxZ)
    return state.replace(step=state.step + 1), (d_loss, d_acc, g_loss)

  losses = []
  for real, z_d, z_g in data:
    state, metrics = iteration(state, real, z_d, z_g)
    losses.append([float(m) for m in metrics])
  return state, np.array(losses)


@pytest.mark.slow  # TensorFlow's import and Keras' graph building: a minute or more
def test_tutorial_loop_matches_keras(mnist_train):
  config = get_config()  # the tutorial: full-size networks, Keras' Adam
  gan = build_gan(filled(config))
  start = init_state(gan, jax.random.key(0))
  keras = keras_reference.import_keras()
  models = keras_reference.build_models(keras)
  keras_reference.set_weights(models, start.g_params, start.g_batch_stats, start.d_params)
  keras_losses = np.array([keras_reference.train_iteration(models, *batch)
                           for batch in batches(mnist_train, ITERATIONS)])
  state, losses = genjax_run(gan, start, batches(mnist_train, ITERATIONS))

  np.testing.assert_allclose(losses, keras_losses, rtol=2e-5, atol=1e-6)
  generator, discriminator, _ = models
  ours = jax.tree.leaves((state.g_params, state.g_batch_stats, state.d_params))
  assert sum(a.size for a in ours) == generator.count_params() + discriminator.count_params()
  drift = keras_reference.weight_drift(models, state.g_params, state.g_batch_stats,
                                       state.d_params)
  assert drift < 2e-6, f"genjax's weights left Keras' by {drift} after {ITERATIONS} iterations"


@pytest.mark.parametrize("args,field", [(["--batch_size", "0"], "--batch_size"),
                                        (["--seconds", "x"], "--seconds"),
                                        (["--data_dir", "/nonexistent"], "/nonexistent")])
def test_bad_input_is_one_line(args, field):
  proc = subprocess.run([sys.executable, "-m", "genjax.gan.keras_reference", *args],
                        capture_output=True, text=True, timeout=120)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1 and field in lines[0], proc.stderr
