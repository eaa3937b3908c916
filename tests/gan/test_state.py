"""The train state: what each recipe puts into it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.gan import steps
from genjax.configs.gan_mnist import get_config
from genjax.data.image_sets import filled
from genjax.gan.state import balanced_labels, build_gan, generate, init_state


@pytest.mark.slow
def test_train_step_updates_the_ema_and_samples_use_it():
  config = get_config("dcgan,tiny")
  config.ema_decay = 0.9
  gan = build_gan(filled(config))
  state = init_state(gan, jax.random.key(0))
  jax.tree.map(np.testing.assert_array_equal, state.g_ema["params"], state.g_params)
  images = jax.random.randint(jax.random.key(1), (40, 28, 28), 0, 256).astype(jnp.uint8)
  new, _ = jax.jit(steps.train_step, static_argnums=0)(gan, state, images, jax.random.key(2))
  d = 0.1  # min(0.9, (1 + 0) / 10) at the first update
  expected = jax.tree.map(lambda e, p: d * e + (1 - d) * p, state.g_ema["params"], new.g_params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               new.g_ema["params"], expected)
  z = jax.random.normal(jax.random.key(3), (4, config.latent_dim))
  ema_out = generate(gan, new, z)
  online = gan.generator.apply({"params": new.g_params, "batch_stats": new.g_batch_stats}, z,
                               train=False)
  ema_vars = gan.generator.apply(new.g_ema, z, train=False)
  np.testing.assert_array_equal(ema_out, ema_vars)
  assert not np.allclose(ema_out, online)


@pytest.mark.parametrize("recipe", ["mlp", "dcgan", "hinge_sn", "cgan"])
def test_state_holds_what_the_recipe_needs(recipe):
  gan = build_gan(filled(get_config(f"{recipe},tiny")))
  state = init_state(gan, jax.random.key(0))
  assert ("spectral" in state.d_state) == (recipe == "hinge_sn")
  assert bool(state.g_ema) == (recipe != "mlp")
  assert ("label_embedding" in state.d_params) == (recipe == "cgan")


def test_conditional_generate_defaults_to_balanced_labels():
  gan = build_gan(filled(get_config("cgan,tiny")))
  state = init_state(gan, jax.random.key(0))
  z = jax.random.normal(jax.random.key(1), (20, gan.latent_dim))
  np.testing.assert_array_equal(balanced_labels(12), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
  np.testing.assert_array_equal(generate(gan, state, z), generate(gan, state, z,
                                                                  balanced_labels(20)))
