"""The GAN steps: D frozen in the G step, a hand-checked iteration, determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genjax.gan import losses, steps
from genjax.nn.augment import translate_BxHxW
from genjax.configs.gan_mnist import get_config
from genjax.data.image_sets import filled
from genjax.gan.state import build_gan, init_state


def tiny_gan(**overrides):
  config = get_config("tiny")
  config.update(overrides)
  config = filled(config)
  gan = build_gan(config)
  return config, gan, init_state(gan, jax.random.key(0))


def fake_dataset(n=50):
  return jax.random.randint(jax.random.key(9), (n, 28, 28), 0, 256).astype(jnp.uint8)


def assert_trees_equal(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


def test_generator_step_freezes_discriminator():
  config, gan, state = tiny_gan()
  z = jax.random.normal(jax.random.key(1), (config.batch_size, config.latent_dim))
  new_state, loss = jax.jit(steps.g_adam_step, static_argnums=0)(gan, state, z)
  assert_trees_equal(new_state.d_params, state.d_params)
  assert_trees_equal(new_state.d_opt_state, state.d_opt_state)
  assert np.isfinite(loss)
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new_state.g_params, state.g_params)
  assert all(jax.tree.leaves(changed)), "every generator parameter should move"
  # Zero gradient reaches D's params through the stacked model; G's gradient is non-zero.
  grad_fn = jax.grad(lambda g, d: steps.g_loss_fn(gan, g, state.g_batch_stats, d, z)[0],
                     argnums=(0, 1))
  g_grads, d_grads = grad_fn(state.g_params, state.d_params)
  assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree.leaves(d_grads))
  assert any(float(jnp.abs(x).max()) > 0.0 for x in jax.tree.leaves(g_grads))


@pytest.mark.slow
def test_schedule_past_its_end_stops_every_update():
  """Iteration num_steps of a linear schedule has rate 0: the networks stay, Adam's moments move."""
  config, gan, state = tiny_gan(num_steps=1, lr_schedule="linear", lr_decay_fraction=1.0)
  state = state.replace(step=jnp.ones((), jnp.int32))
  new_state, _ = steps.train_chunk(gan, jax.tree.map(jnp.copy, state), fake_dataset(),
                                   jax.random.key(3), 1, 1)
  assert_trees_equal(new_state.g_params, state.g_params)
  assert_trees_equal(new_state.d_params, state.d_params)
  moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new_state.g_opt_state,
                       state.g_opt_state)
  assert any(jax.tree.leaves(moved))


# --- An independent, hand-written Keras-faithful iteration in plain jnp -----------------------

def leaky(x):
  return jnp.where(x > 0, x, 0.2 * x)


def manual_generator(p, stats, z, train):
  h, new_stats = z, {}
  n_hidden = len(stats)
  for i in range(n_hidden):
    h = leaky(h @ p[f"Dense_{i}"]["kernel"] + p[f"Dense_{i}"]["bias"])
    bn, s = p[f"BatchNorm_{i}"], stats[f"BatchNorm_{i}"]
    if train:
      mean, var = h.mean(0), h.var(0)
      new_stats[f"BatchNorm_{i}"] = {"mean": 0.8 * s["mean"] + 0.2 * mean,
                                     "var": 0.8 * s["var"] + 0.2 * var}
    else:
      mean, var = s["mean"], s["var"]
    h = (h - mean) / jnp.sqrt(var + 1e-3) * bn["scale"] + bn["bias"]
  out = jnp.tanh(h @ p[f"Dense_{n_hidden}"]["kernel"] + p[f"Dense_{n_hidden}"]["bias"])
  return out.reshape(z.shape[0], 28, 28), new_stats


def manual_discriminator(p, x):
  h = x.reshape(x.shape[0], -1)
  n = len(p)
  for i in range(n - 1):
    h = leaky(h @ p[f"Dense_{i}"]["kernel"] + p[f"Dense_{i}"]["bias"])
  return (h @ p[f"Dense_{n - 1}"]["kernel"] + p[f"Dense_{n - 1}"]["bias"])[:, 0]


def bce(logits, label):  # -log sigmoid(x) for real, -log(1 - sigmoid(x)) for fake
  return jnp.mean(jnp.logaddexp(0.0, -logits) if label == 1 else jnp.logaddexp(0.0, logits))


def adam(params, grads, m, v, t, lr=2e-4, b1=0.5, b2=0.999, eps=1e-7):
  """Keras' Adam: the bias corrections in the step size, eps added to the raw root of v."""
  m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
  v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
  step_size = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
  new = jax.tree.map(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) + eps), params, m, v)
  return new, m, v


def test_keras_faithful_iteration_by_hand():
  config, gan, state = tiny_gan()
  images, base_key = fake_dataset(), jax.random.key(5)
  new_state, metrics = jax.jit(steps.train_step, static_argnums=0)(gan, state, images, base_key)

  idx_key, d_key, g_key = jax.random.split(jax.random.fold_in(base_key, 0), 3)
  real = images[jax.random.randint(idx_key, (8,), 0, 50)].astype(jnp.float32) / 127.5 - 1
  z_d = jax.random.normal(d_key, (8, config.latent_dim))
  z_g = jax.random.normal(g_key, (8, config.latent_dim))
  gp, stats, dp = state.g_params, state.g_batch_stats, state.d_params
  zeros = lambda t: jax.tree.map(jnp.zeros_like, t)  # noqa: E731
  # Keras: fakes from G.predict (running stats), D.train_on_batch(real, 1), then (fake, 0).
  fakes, _ = manual_generator(gp, stats, z_d, train=False)
  loss_real, g_real = jax.value_and_grad(lambda d: bce(manual_discriminator(d, real), 1))(dp)
  dp1, m, v = adam(dp, g_real, zeros(dp), zeros(dp), t=1)
  loss_fake, g_fake = jax.value_and_grad(lambda d: bce(manual_discriminator(d, fakes), 0))(dp1)
  dp2, _, _ = adam(dp1, g_fake, m, v, t=2)
  acc_real = jnp.mean(manual_discriminator(dp, real) > 0)
  acc_fake = jnp.mean(manual_discriminator(dp1, fakes) <= 0)

  # combined.train_on_batch(noise, 1): G in training mode, D (already updated twice) frozen.
  def g_loss(g):
    out, new_stats = manual_generator(g, stats, z_g, train=True)
    return bce(manual_discriminator(dp2, out), 1), new_stats

  (loss_g, new_stats), g_grads = jax.value_and_grad(g_loss, has_aux=True)(gp)
  gp1, _, _ = adam(gp, g_grads, zeros(gp), zeros(gp), t=1)

  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)  # noqa: E731
  close(metrics["d_loss"], 0.5 * (loss_real + loss_fake))
  close(metrics["d_acc"], 0.5 * (acc_real + acc_fake))
  close(metrics["g_loss"], loss_g)
  jax.tree.map(close, new_state.d_params, dp2)
  jax.tree.map(close, new_state.g_params, gp1)
  jax.tree.map(close, new_state.g_batch_stats, new_stats)
  assert int(new_state.step) == 1
  assert int(new_state.d_opt_state[0].count) == 2  # two D Adam steps per iteration
  assert int(new_state.g_opt_state[0].count) == 1


def test_joint_mode_updates_discriminator_once():
  _, gan, state = tiny_gan(d_update="joint")
  new_state, metrics = jax.jit(steps.train_step, static_argnums=0)(
      gan, state, fake_dataset(), jax.random.key(0))
  assert int(new_state.d_opt_state[0].count) == 1
  assert all(np.isfinite(float(v)) for v in metrics.values())


def run_chunk(seed, n, mode="keras"):
  _, gan, state = tiny_gan(d_update=mode)
  return steps.train_chunk(gan, state, fake_dataset(), jax.random.key(seed), 8, n)


@pytest.mark.parametrize("mode", ["keras", "joint"])
def test_chunk_is_deterministic_and_seed_dependent(mode):
  state_a, metrics_a = run_chunk(1, 5, mode)
  state_b, metrics_b = run_chunk(1, 5, mode)
  state_c, _ = run_chunk(2, 5, mode)
  assert_trees_equal(state_a, state_b)
  assert_trees_equal(metrics_a, metrics_b)
  assert not np.array_equal(state_a.g_params["Dense_0"]["kernel"],
                            state_c.g_params["Dense_0"]["kernel"])
  assert int(state_a.step) == 5
  assert np.isfinite(metrics_a["g_loss"][:5]).all() and np.isnan(metrics_a["g_loss"][5:]).all()


def test_chunks_compose_like_single_steps():
  """Two chunks of 2 and 3 iterations equal one of 5: fold_in(key, step) makes chunking invisible."""
  _, gan, state = tiny_gan()
  images, key = fake_dataset(), jax.random.key(3)
  whole, _ = steps.train_chunk(gan, state, images, key, 8, 5)
  _, gan, state = tiny_gan()
  part, _ = steps.train_chunk(gan, state, images, key, 8, 2)
  part, _ = steps.train_chunk(gan, part, images, key, 8, 3)
  assert_trees_equal(whole, part)


def test_real_batch_is_scaled_to_tanh_range():
  images = jnp.array([[[0, 255]], [[127, 128]]], jnp.uint8)
  batch = steps.sample_real_batch(images, jax.random.key(0), 64)
  assert batch.shape == (64, 1, 2) and batch.dtype == jnp.float32
  np.testing.assert_allclose(np.unique(np.asarray(batch)), [-1, -1 / 255, 1 / 255, 1], atol=1e-6)


@pytest.mark.slow
def test_bfloat16_compute_keeps_float32_params_and_tracks_float32():
  _, gan32, state32 = tiny_gan()
  _, gan16, state16 = tiny_gan(compute_dtype="bfloat16")
  images, key = fake_dataset(), jax.random.key(4)
  state32, metrics32 = steps.train_chunk(gan32, state32, images, key, 8, 3)
  state16, metrics16 = steps.train_chunk(gan16, state16, images, key, 8, 3)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state16.g_params))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state16.d_opt_state[0].mu))
  hlo = steps.compiled_chunk(gan16, 8).lower(state16, images, key, 1).as_text()
  assert "bf16" in hlo  # the matmuls really run in bfloat16
  for name in steps.METRIC_NAMES:  # same trajectory up to bfloat16 rounding
    np.testing.assert_allclose(metrics16[name][:3], metrics32[name][:3], rtol=0.05, atol=0.02)


# --- recipes beyond the tutorial: penalties, n_critic, spectral norm, conditioning ------------

from genjax.data.images import scale_to_tanh_range  # noqa: E402


def recipe_gan(recipe, **overrides):
  config = get_config(f"{recipe},tiny")
  config.update(overrides)
  config = filled(config)
  gan = build_gan(config)
  return config, gan, init_state(gan, jax.random.key(0))


def first_d_batch(gan, state, images, base_key):
  """The real batch, fakes and penalty key the first joint D update of step 0 uses."""
  idx_key, d_key, _ = jax.random.split(jax.random.fold_in(base_key, 0), 3)
  real = scale_to_tanh_range(images[jax.random.randint(idx_key, (gan.batch_size,), 0,
                                                            images.shape[0])])
  z = jax.random.normal(d_key, (gan.batch_size, gan.latent_dim))
  fakes, _ = steps.generator_forward(gan, state, z, None, train=True)
  return real, fakes, jax.random.fold_in(d_key, 1)


@pytest.mark.slow
@pytest.mark.parametrize("penalty", ["gp_weight", "r1_weight"])
def test_penalty_inside_the_step_equals_the_explicit_one(penalty):
  images, key = fake_dataset(), jax.random.key(7)
  _, gan0, state = recipe_gan("dcgan", ema_decay=0.0)
  _, gan1, _ = recipe_gan("dcgan", ema_decay=0.0, **{penalty: 3.0})
  step = jax.jit(steps.train_step, static_argnums=0)
  _, plain = step(gan0, state, images, key)
  _, penalized = step(gan1, state, images, key)
  real, fakes, gp_key = first_d_batch(gan0, state, images, key)
  d_fn = lambda x: gan0.discriminator.apply({"params": state.d_params}, x)  # noqa: E731
  if penalty == "gp_weight":
    expected = 3.0 * losses.gradient_penalty_B(d_fn, real, fakes, gp_key).mean()
  else:
    expected = 0.5 * 3.0 * losses.r1_penalty_B(d_fn, real).mean()
  assert float(expected) > 1e-4
  np.testing.assert_allclose(penalized["d_loss"] - plain["d_loss"], expected, rtol=1e-3)


@pytest.mark.slow
def test_n_critic_updates_discriminator_n_times_per_generator_update():
  _, gan, state = recipe_gan("wgan_gp", n_critic=3)
  new_state, metrics = jax.jit(steps.train_step, static_argnums=0)(
      gan, state, fake_dataset(), jax.random.key(0))
  assert int(new_state.d_opt_state[0].count) == 3
  assert int(new_state.g_opt_state[0].count) == 1
  assert all(np.isfinite(float(v)) for v in metrics.values())


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["keras", "joint"])
def test_spectral_norm_vectors_advance_in_d_steps_only(mode):
  _, gan, state = recipe_gan("hinge_sn", d_update=mode)
  new_state, _ = jax.jit(steps.train_step, static_argnums=0)(
      gan, state, fake_dataset(), jax.random.key(0))
  # (The output layer's u has one entry, always +-1: nothing to iterate.)
  moved = jax.tree.map(lambda a, b: a.size == 1 or not np.allclose(a, b), new_state.d_state,
                       state.d_state)
  assert all(jax.tree.leaves(moved))
  # The G step reads D (frozen): its spectral vectors pass through untouched.
  z = jax.random.normal(jax.random.key(1), (gan.batch_size, gan.latent_dim))
  after_g, _ = jax.jit(steps.g_adam_step, static_argnums=0)(gan, new_state, z)
  jax.tree.map(np.testing.assert_array_equal, after_g.d_state, new_state.d_state)
  jax.tree.map(np.testing.assert_array_equal, after_g.d_params, new_state.d_params)


@pytest.mark.slow
def test_conditional_training_needs_and_uses_the_labels():
  _, gan, state = recipe_gan("cgan")
  images = fake_dataset()
  with pytest.raises(ValueError, match="labels_N"):
    steps.train_chunk(gan, state, images, jax.random.key(0), 4, 2)
  labels_a = jnp.arange(50, dtype=jnp.int32) % 10
  labels_b = (labels_a + 3) % 10
  out_a, _ = steps.train_chunk(gan, init_state(gan, jax.random.key(0)), images,
                               jax.random.key(0), 4, 2, labels_a)
  out_b, _ = steps.train_chunk(gan, init_state(gan, jax.random.key(0)), images,
                               jax.random.key(0), 4, 2, labels_b)
  emb_a, emb_b = out_a.d_params["label_embedding"], out_b.d_params["label_embedding"]
  assert not np.allclose(emb_a, emb_b)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["lsgan", "wgan"])  # nsgan: the tutorial; hinge: cgan
def test_every_loss_and_regularizer_runs_on_the_mlp_too(loss):
  _, gan, state = tiny_gan(d_update="joint", loss=loss, spectral_norm=True, r1_weight=1.0,
                           gp_weight=1.0, n_critic=2, ema_decay=0.99, conditional=True)
  labels = jnp.arange(50, dtype=jnp.int32) % 10
  new_state, metrics = steps.train_chunk(gan, state, fake_dataset(), jax.random.key(0), 4, 2,
                                         labels)
  assert all(np.isfinite(metrics[k][:2]).all() for k in steps.METRIC_NAMES)
  assert int(new_state.d_opt_state[0].count) == 4 and new_state.d_state and new_state.g_ema


def test_mode_seeking_term_joins_the_generator_loss_but_not_its_log():
  config, gan, state = tiny_gan(mode_seeking=0.5)
  _, plain, _ = tiny_gan()
  z = jax.random.normal(jax.random.key(1), (config.batch_size, config.latent_dim))
  loss, (_, logged) = steps.g_loss_fn(gan, state.g_params, state.g_batch_stats, state.d_params, z)
  adversarial, _ = steps.g_loss_fn(plain, state.g_params, state.g_batch_stats, state.d_params, z)
  fakes = gan.generator.apply({"params": state.g_params, "batch_stats": state.g_batch_stats},
                              z, train=True, mutable=["batch_stats"])[0]
  expected = adversarial + 0.5 * losses.mode_seeking_P(fakes, z).mean()
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  assert float(loss - adversarial) > 0.0
  np.testing.assert_allclose(logged, adversarial, rtol=1e-6)  # g_loss stays comparable across runs
  _, step_logged = steps.g_adam_step(gan, state, z)
  np.testing.assert_allclose(step_logged, adversarial, rtol=1e-6)


@pytest.mark.slow
def test_consistency_term_joins_the_discriminator_loss():
  config, gan, state = tiny_gan(d_update="joint", consistency_weight=3.0, consistency_shift=2,
                                arch="dcgan")
  _, plain, _ = tiny_gan(d_update="joint", arch="dcgan")
  real = jnp.tanh(jax.random.normal(jax.random.key(1), (config.batch_size, 28, 28)))
  fakes = jnp.tanh(jax.random.normal(jax.random.key(2), (config.batch_size, 28, 28)))
  key = jax.random.key(3)
  args = (state.d_params, state.d_state, real, fakes, None, key)
  loss, _ = steps.joint_d_loss(gan, *args)
  adversarial, _ = steps.joint_d_loss(plain, *args)
  both = jnp.concatenate([real, fakes])
  shifted = translate_BxHxW(both, jax.random.fold_in(key, 2), 2, -1.0)
  d = lambda x: gan.discriminator.apply({"params": state.d_params}, x)  # noqa: E731
  expected = adversarial + 3.0 * 2 * jnp.mean((d(both) - d(shifted)) ** 2)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  assert float(loss - adversarial) > 0.0
