"""Pure, jitted GAN training steps: (state, data, key) -> (state, metrics)."""

import functools

import jax
import jax.numpy as jnp
import optax

from genjax.core import runner, schedules, sharding
from genjax.core.ema import ema_decay_at, ema_update
from genjax.core.feed import Streamed
from genjax.data.images import scale_to_tanh_range
from genjax.gan import losses
from genjax.gan.state import GAN, GANState
from genjax.nn.augment import translate_BxHxW

BACKGROUND = -1.0  # black in the [-1, 1] range G and the data share

METRIC_NAMES = ("d_loss", "d_acc", "g_loss")


def sample_real_batch(images_NxHxW: jnp.ndarray, key: jax.Array, batch_size: int) -> jnp.ndarray:
  """Uniform draw with replacement (the tutorial's np.random.randint), scaled to [-1, 1] on device."""
  return sample_labeled_batch(images_NxHxW, None, key, batch_size)[0]


def sample_labeled_batch(images_NxHxW, labels_N, key: jax.Array, batch_size: int):
  """(images_BxHxW in [-1, 1], their labels_B or None) drawn with replacement on device."""
  idx_B = jax.random.randint(key, (batch_size,), 0, images_NxHxW.shape[0])
  labels_B = None if labels_N is None else labels_N[idx_B].astype(jnp.int32)
  return scale_to_tanh_range(images_NxHxW[idx_B]), labels_B


def generator_forward(gan: GAN, state: GANState, z_BxZ, labels_B, train: bool):
  """(fakes_BxHxW, G's batch stats after the call) from the weights being trained (never the EMA)."""
  variables = {"params": state.g_params, "batch_stats": state.g_batch_stats}
  if not train:  # Keras' predict(): running averages, no update
    return gan.generator.apply(variables, z_BxZ, train=False, labels_B=labels_B), \
        state.g_batch_stats
  fakes, new_vars = gan.generator.apply(variables, z_BxZ, train=True, labels_B=labels_B,
                                        mutable=["batch_stats"])
  return fakes, new_vars["batch_stats"]


def d_logits(gan: GAN, d_params, d_state, x_BxHxW, labels_B, update_stats: bool = False):
  """(logits_B, D's state after the call): spectral-norm vectors advance only when asked."""
  variables = {"params": d_params, **d_state}
  if update_stats and d_state:
    logits_B, new_state = gan.discriminator.apply(variables, x_BxHxW, labels_B, update_stats=True,
                                                  mutable=list(d_state))
    return logits_B, dict(new_state)
  return gan.discriminator.apply(variables, x_BxHxW, labels_B), d_state


def scheduled(gan: GAN, updates, step):
  """Adam's updates times the schedule's factor for iteration `step` (none when constant)."""
  if gan.lr_window is None:
    return updates
  scale = schedules.window_scale(gan.lr_window, step)
  return jax.tree.map(lambda u: (u * scale).astype(u.dtype), updates)


def d_adam_step(gan: GAN, d_params, d_opt_state, d_state, images_BxHxW, labels_B, label: float,
                step):
  """One Keras train_on_batch of D: loss and accuracy are those before the update."""

  def loss_fn(params):
    logits_B, new_d_state = d_logits(gan, params, d_state, images_BxHxW, labels_B, True)
    loss, acc = losses.discriminator_loss(logits_B, label, gan.recipe.loss)
    return loss, (acc, new_d_state)

  (loss, (acc, d_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d_params)
  updates, d_opt_state = gan.d_tx.update(grads, d_opt_state, d_params)
  updates = scheduled(gan, updates, step)
  return optax.apply_updates(d_params, updates), d_opt_state, d_state, loss, acc


def keras_d_update(gan: GAN, state: GANState, real_BxHxW, labels_B, z_BxZ, key):
  """The tutorial: fakes from G.predict, then two D train_on_batch calls (real, then fake)."""
  del key  # no penalty needs randomness here
  fakes_BxHxW, _ = generator_forward(gan, state, z_BxZ, labels_B, train=False)
  d_params, d_opt, d_state, loss_real, acc_real = d_adam_step(
      gan, state.d_params, state.d_opt_state, state.d_state, real_BxHxW, labels_B, 1.0, state.step)
  d_params, d_opt, d_state, loss_fake, acc_fake = d_adam_step(
      gan, d_params, d_opt, d_state, fakes_BxHxW, labels_B, 0.0, state.step)
  state = state.replace(d_params=d_params, d_opt_state=d_opt, d_state=d_state)
  return state, 0.5 * (loss_real + loss_fake), 0.5 * (acc_real + acc_fake)


def joint_d_loss(gan: GAN, d_params, d_state, real_BxHxW, fakes_BxHxW, labels_B, key):
  """D's objective: real term + fake term (+ bCR, + gradient penalty, + R1) in one D call."""
  recipe = gan.recipe
  inputs = jnp.concatenate([real_BxHxW, fakes_BxHxW])
  if recipe.consistency_weight:  # shifted copies ride in the same D call
    inputs = jnp.concatenate([inputs, translate_BxHxW(
        inputs, jax.random.fold_in(key, 2), recipe.consistency_shift, BACKGROUND)])
  copies = inputs.shape[0] // real_BxHxW.shape[0]
  in_labels = None if labels_B is None else jnp.tile(labels_B, copies)
  logits, d_state = d_logits(gan, d_params, d_state, inputs, in_labels, True)
  real_B, fake_B = jnp.split(logits, copies)[:2]
  loss = (losses.d_real_term_B(recipe.loss, real_B).mean()
          + losses.d_fake_term_B(recipe.loss, fake_B).mean())
  if recipe.consistency_weight:  # bCR (Zhao et al. 2021): one weight for both halves
    logits_2B, shifted_2B = jnp.split(logits, 2)
    loss += recipe.consistency_weight * 2 * losses.consistency_B(logits_2B, shifted_2B).mean()
  d_fn = lambda x: d_logits(gan, d_params, d_state, x, labels_B)[0]  # noqa: E731
  if recipe.gp_weight:
    gp_B = losses.gradient_penalty_B(d_fn, real_BxHxW, fakes_BxHxW, key)
    loss += recipe.gp_weight * gp_B.mean()
  if recipe.r1_weight:
    loss += 0.5 * recipe.r1_weight * losses.r1_penalty_B(d_fn, real_BxHxW).mean()
  acc = 0.5 * (losses.accuracy_B(recipe.loss, real_B, 1.0).mean()
               + losses.accuracy_B(recipe.loss, fake_B, 0.0).mean())
  return loss, (acc, d_state)


def joint_d_update(gan: GAN, state: GANState, real_BxHxW, labels_B, z_BxZ, key):
  """One D Adam step on both halves and the penalties; fakes from G in training mode."""
  fakes_BxHxW, batch_stats = generator_forward(gan, state, z_BxZ, labels_B, train=True)
  (loss, (acc, d_state)), grads = jax.value_and_grad(joint_d_loss, argnums=1, has_aux=True)(
      gan, state.d_params, state.d_state, real_BxHxW, jax.lax.stop_gradient(fakes_BxHxW),
      labels_B, key)
  updates, d_opt = gan.d_tx.update(grads, state.d_opt_state, state.d_params)
  updates = scheduled(gan, updates, state.step)
  state = state.replace(d_params=optax.apply_updates(state.d_params, updates), d_opt_state=d_opt,
                        d_state=d_state, g_batch_stats=batch_stats)
  return state, loss, acc


D_UPDATES = {"keras": keras_d_update, "joint": joint_d_update}


def g_loss_fn(gan: GAN, g_params, g_batch_stats, d_params, z_BxZ, labels_B=None, d_state=None):
  """(loss, (G's batch stats, the adversarial part alone)): the stacked G -> D model with fakes
  labelled real, D frozen by stop_gradient; the adversarial part is what the logs report."""
  fakes_BxHxW, new_vars = gan.generator.apply(
      {"params": g_params, "batch_stats": g_batch_stats}, z_BxZ, train=True, labels_B=labels_B,
      mutable=["batch_stats"])
  frozen = jax.lax.stop_gradient((d_params, d_state or {}))
  logits_B, _ = d_logits(gan, *frozen, fakes_BxHxW, labels_B)
  adversarial = losses.generator_loss(logits_B, gan.recipe.loss)
  loss = adversarial
  if gan.recipe.mode_seeking:
    loss += gan.recipe.mode_seeking * losses.mode_seeking_P(fakes_BxHxW, z_BxZ).mean()
  return loss, (new_vars["batch_stats"], adversarial)


def g_adam_step(gan: GAN, state: GANState, z_BxZ, labels_B=None) -> tuple[GANState, jnp.ndarray]:
  """Gradients w.r.t. G's params only; D's params and optimizer state pass through untouched."""
  grad_fn = jax.value_and_grad(g_loss_fn, argnums=1, has_aux=True)
  (_, (batch_stats, adversarial)), grads = grad_fn(
      gan, state.g_params, state.g_batch_stats, state.d_params, z_BxZ, labels_B, state.d_state)
  updates, g_opt_state = gan.g_tx.update(grads, state.g_opt_state, state.g_params)
  updates = scheduled(gan, updates, state.step)
  g_params = optax.apply_updates(state.g_params, updates)
  state = state.replace(g_params=g_params, g_batch_stats=batch_stats, g_opt_state=g_opt_state)
  if gan.recipe.ema_decay:
    decay = ema_decay_at(gan.recipe.ema_decay, state.step)  # state.step updates came before
    state = state.replace(g_ema=ema_update(
        state.g_ema, {"params": g_params, "batch_stats": batch_stats}, decay))
  return state, adversarial


def real_indices(gan: GAN, base_key: jax.Array, step, num_examples: int) -> jnp.ndarray:
  """The training rows iteration `step` reads: B (n_critic x B with several critic updates)
  uniform draws with replacement, the very draws sample_labeled_batch makes in the step."""
  idx_key = jax.random.split(jax.random.fold_in(base_key, step), 3)[0]
  draw = lambda key: jax.random.randint(key, (gan.batch_size,), 0, num_examples)  # noqa: E731
  if gan.recipe.n_critic == 1:
    return draw(idx_key)
  return jnp.stack([draw(jax.random.fold_in(idx_key, c)) for c in range(gan.recipe.n_critic)])


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def steps_indices(gan: GAN, base_key, first_step, max_steps: int, num_examples: int):
  """max_steps x (a step's rows): real_indices of first_step, first_step + 1, ..."""
  steps_K = first_step + jnp.arange(max_steps)
  return jax.vmap(lambda step: real_indices(gan, base_key, step, num_examples))(steps_K)


def real_batch(gan: GAN, data, i, c, key):
  """(real images in [-1, 1], their labels or None) of critic update c: drawn on the device
  from the training set (data = (images, labels or None)), or a streamed chunk's i-th."""
  if not isinstance(data, Streamed):
    return sample_labeled_batch(data[0], data[1], key, gan.batch_size)
  rows = (lambda a: a[i]) if gan.recipe.n_critic == 1 else (lambda a: a[i, c])  # noqa: E731
  images, labels = data.arrays
  return scale_to_tanh_range(rows(images)), None if labels is None else rows(labels).astype(
      jnp.int32)


def critic_updates(gan: GAN, state: GANState, data, i, idx_key, noise_key):
  """n_critic D updates, each on a fresh real batch and fresh noise; metrics of the last."""
  shard = lambda x: sharding.constrain_batch(x, gan.mesh)  # noqa: E731

  def one(state, c, i_key, n_key):
    real_BxHxW, labels_B = real_batch(gan, data, i, c, i_key)
    labels_B = None if labels_B is None else shard(labels_B)
    z_BxZ = shard(jax.random.normal(n_key, (gan.batch_size, gan.latent_dim)))
    # Fakes share the real batch's labels, so penalties compare like with like.
    return D_UPDATES[gan.recipe.d_update](gan, state, shard(real_BxHxW), labels_B, z_BxZ,
                                   jax.random.fold_in(n_key, 1))

  if gan.recipe.n_critic == 1:  # the tutorial's keys, unchanged
    return one(state, 0, idx_key, noise_key)

  def body(c, carry):
    return one(carry[0], c, jax.random.fold_in(idx_key, c), jax.random.fold_in(noise_key, c))

  zero = jnp.zeros((), jnp.float32)
  return jax.lax.fori_loop(0, gan.recipe.n_critic, body, (state, zero, zero))


def train_step(gan: GAN, state: GANState, images_NxHxW, base_key, labels_N=None,
               i=0) -> tuple[GANState, dict]:
  """One GAN iteration; its randomness is fold_in(base_key, step), so any resume replays it.

  images_NxHxW (and labels_N for a conditional GAN): the training set on the device, or a
  chunk's Streamed batches (labels inside; this iteration's are row i).
  """
  data = images_NxHxW if isinstance(images_NxHxW, Streamed) else (images_NxHxW, labels_N)
  key = jax.random.fold_in(base_key, state.step)
  idx_key, d_noise_key, g_noise_key = jax.random.split(key, 3)
  # The same global batch as on one device; with a mesh each device computes its slice and
  # XLA all-reduces gradients and BatchNorm statistics over the `data` axis.
  shard = lambda x: sharding.constrain_batch(x, gan.mesh)  # noqa: E731
  state, d_loss, d_acc = critic_updates(gan, state, data, i, idx_key, d_noise_key)
  z_g_BxZ = shard(jax.random.normal(g_noise_key, (gan.batch_size, gan.latent_dim)))  # fresh
  g_labels_B = None
  if gan.num_classes:
    label_key = jax.random.fold_in(g_noise_key, 1)
    if gan.recipe.mode_seeking:  # the two halves are pairs with one label each
      half_B = jax.random.randint(label_key, (gan.batch_size // 2,), 0, gan.num_classes)
      g_labels_B = shard(jnp.concatenate([half_B, half_B]))
    else:
      g_labels_B = shard(jax.random.randint(label_key, (gan.batch_size,), 0, gan.num_classes))
  state, g_loss = g_adam_step(gan, state, z_g_BxZ, g_labels_B)
  state = state.replace(step=state.step + 1)
  return state, {"d_loss": d_loss, "d_acc": d_acc, "g_loss": g_loss}


def train_chunk(gan: GAN, state: GANState, images_NxHxW, base_key, max_steps: int,
                num_steps, labels_N=None) -> tuple[GANState, dict]:
  """Runs `num_steps` (traced, <= max_steps) iterations in one dispatch; donates `state`.

  images_NxHxW: the training images on the device, with labels_N (the class of each image,
  needed by conditional GANs only); or a chunk's Streamed batches (labels inside).
  """
  streamed = isinstance(images_NxHxW, Streamed)
  if gan.num_classes and labels_N is None and not streamed:
    raise ValueError("a conditional GAN trains on labelled data: pass labels_N")
  labels_N = labels_N if gan.num_classes else None
  return compiled_chunk(gan, max_steps, streamed)(state, images_NxHxW, base_key, num_steps,
                                                 labels_N)


@functools.lru_cache(maxsize=None)
def compiled_chunk(gan: GAN, max_steps: int, streamed: bool = False):
  """The jitted chunk for this GAN: replicated in/out shardings when it has a mesh."""

  def chunk(state, images_NxHxW, base_key, num_steps, labels_N=None):
    step_fn = lambda s, i: train_step(gan, s, images_NxHxW, base_key, labels_N, i)  # noqa: E731
    return runner.run_steps(step_fn, state, num_steps, max_steps, METRIC_NAMES, indexed=True)

  return runner.jit_chunk(chunk, gan.mesh, streamed)
