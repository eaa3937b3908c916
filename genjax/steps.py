"""Pure, jitted GAN training steps: (state, data, key) -> (state, metrics)."""

import functools

import jax
import jax.numpy as jnp
import optax

from genjax import chunks, data, losses, sharding
from genjax.train_state import GAN, GANState, generate

METRIC_NAMES = ("d_loss", "d_acc", "g_loss")


def sample_real_batch(images_NxHxW: jnp.ndarray, key: jax.Array, batch_size: int) -> jnp.ndarray:
  """Uniform draw with replacement (the tutorial's np.random.randint), scaled to [-1, 1] on device."""
  idx_B = jax.random.randint(key, (batch_size,), 0, images_NxHxW.shape[0])
  return data.scale_to_tanh_range(images_NxHxW[idx_B])


def d_loss_fn(gan: GAN, d_params, images_BxHxW, label: float):
  logits_B = gan.discriminator.apply({"params": d_params}, images_BxHxW)
  loss, acc = losses.discriminator_loss(logits_B, label)
  return loss, acc


def d_adam_step(gan: GAN, d_params, d_opt_state, images_BxHxW, label: float):
  """One Keras train_on_batch of D: loss and accuracy are those before the update."""
  (loss, acc), grads = jax.value_and_grad(d_loss_fn, argnums=1, has_aux=True)(
      gan, d_params, images_BxHxW, label)
  updates, d_opt_state = gan.d_tx.update(grads, d_opt_state, d_params)
  return optax.apply_updates(d_params, updates), d_opt_state, loss, acc


def g_loss_fn(gan: GAN, g_params, g_batch_stats, d_params, z_BxZ):
  """The stacked G -> D model with fakes labelled real; D is frozen by stop_gradient."""
  fakes_BxHxW, new_vars = gan.generator.apply(
      {"params": g_params, "batch_stats": g_batch_stats}, z_BxZ, train=True,
      mutable=["batch_stats"])
  logits_B = gan.discriminator.apply({"params": jax.lax.stop_gradient(d_params)}, fakes_BxHxW)
  return losses.generator_loss(logits_B), new_vars["batch_stats"]


def g_adam_step(gan: GAN, state: GANState, z_BxZ) -> tuple[GANState, jnp.ndarray]:
  """Gradients w.r.t. G's params only; D's params and optimizer state pass through untouched."""
  (loss, batch_stats), grads = jax.value_and_grad(g_loss_fn, argnums=1, has_aux=True)(
      gan, state.g_params, state.g_batch_stats, state.d_params, z_BxZ)
  updates, g_opt_state = gan.g_tx.update(grads, state.g_opt_state, state.g_params)
  state = state.replace(g_params=optax.apply_updates(state.g_params, updates),
                        g_batch_stats=batch_stats, g_opt_state=g_opt_state)
  return state, loss


def seed_faithful_d_update(gan: GAN, state: GANState, real_BxHxW, z_BxZ):
  """The tutorial: fakes from G.predict, then two D train_on_batch calls (real, then fake)."""
  fakes_BxHxW = generate(gan, state, z_BxZ)
  d_params, d_opt, loss_real, acc_real = d_adam_step(
      gan, state.d_params, state.d_opt_state, real_BxHxW, 1.0)
  d_params, d_opt, loss_fake, acc_fake = d_adam_step(gan, d_params, d_opt, fakes_BxHxW, 0.0)
  state = state.replace(d_params=d_params, d_opt_state=d_opt)
  return state, 0.5 * (loss_real + loss_fake), 0.5 * (acc_real + acc_fake)


def joint_d_update(gan: GAN, state: GANState, real_BxHxW, z_BxZ):
  """One D Adam step on the mean loss of both halves; fakes from G in training mode."""
  fakes_BxHxW, new_vars = gan.generator.apply(
      {"params": state.g_params, "batch_stats": state.g_batch_stats}, z_BxZ, train=True,
      mutable=["batch_stats"])

  def loss_fn(d_params):
    loss_real, acc_real = d_loss_fn(gan, d_params, real_BxHxW, 1.0)
    loss_fake, acc_fake = d_loss_fn(gan, d_params, fakes_BxHxW, 0.0)
    return 0.5 * (loss_real + loss_fake), 0.5 * (acc_real + acc_fake)

  (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
  updates, d_opt = gan.d_tx.update(grads, state.d_opt_state, state.d_params)
  state = state.replace(d_params=optax.apply_updates(state.d_params, updates), d_opt_state=d_opt,
                        g_batch_stats=new_vars["batch_stats"])
  return state, loss, acc


D_UPDATES = {"seed": seed_faithful_d_update, "joint": joint_d_update}


def train_step(gan: GAN, state: GANState, images_NxHxW, base_key) -> tuple[GANState, dict]:
  """One GAN iteration; its randomness is fold_in(base_key, step), so any resume replays it."""
  key = jax.random.fold_in(base_key, state.step)
  idx_key, d_noise_key, g_noise_key = jax.random.split(key, 3)
  # The same global batch as on one device; with a mesh each device computes its slice and
  # XLA all-reduces gradients and BatchNorm statistics over the `data` axis.
  shard = lambda x: sharding.constrain_batch(x, gan.mesh)  # noqa: E731
  real_BxHxW = shard(sample_real_batch(images_NxHxW, idx_key, gan.batch_size))
  z_d_BxZ = shard(jax.random.normal(d_noise_key, (gan.batch_size, gan.latent_dim)))
  state, d_loss, d_acc = D_UPDATES[gan.d_update](gan, state, real_BxHxW, z_d_BxZ)
  z_g_BxZ = shard(jax.random.normal(g_noise_key, (gan.batch_size, gan.latent_dim)))  # fresh
  state, g_loss = g_adam_step(gan, state, z_g_BxZ)
  state = state.replace(step=state.step + 1)
  return state, {"d_loss": d_loss, "d_acc": d_acc, "g_loss": g_loss}


def train_chunk(gan: GAN, state: GANState, images_NxHxW, base_key, max_steps: int,
                num_steps) -> tuple[GANState, dict]:
  """Runs `num_steps` (traced, <= max_steps) iterations in one dispatch; donates `state`."""
  return compiled_chunk(gan, max_steps)(state, images_NxHxW, base_key, num_steps)


@functools.lru_cache(maxsize=None)
def compiled_chunk(gan: GAN, max_steps: int):
  """The jitted chunk for this GAN: replicated in/out shardings when it has a mesh."""

  def chunk(state, images_NxHxW, base_key, num_steps):
    step_fn = lambda s: train_step(gan, s, images_NxHxW, base_key)  # noqa: E731
    return chunks.run_steps(step_fn, state, num_steps, max_steps, METRIC_NAMES)

  return chunks.jit_chunk(chunk, gan.mesh)
