"""The pure, jitted training step: noise a batch at random times, regress the network's
prediction on the target (noise or velocity), one Adam step, the moving average."""

import functools

import jax
import jax.numpy as jnp
import optax

from genjax.core import runner, sharding
from genjax.core.ema import ema_decay_at, ema_update
from genjax.core.feed import Streamed
from genjax.data.images import scale_to_tanh_range
from genjax.diffusion import paths
from genjax.diffusion.state import Diffusion, DiffusionState

METRIC_NAMES = ("loss", "grad_norm")


def drop_labels(labels_B, key, rate: float, null_label: int):
  """Each label replaced by the null label with probability `rate`: the one network learns
  the unconditional model too, which classifier-free guidance needs."""
  return jnp.where(jax.random.uniform(key, labels_B.shape) < rate, null_label, labels_B)


def batch_indices(static: Diffusion, base_key, step, num_examples: int):
  """The B training rows step `step` reads (drawn with replacement)."""
  idx_key = jax.random.split(jax.random.fold_in(base_key, step), 4)[0]
  return jax.random.randint(idx_key, (static.recipe.batch_size,), 0, num_examples)


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def steps_indices(static: Diffusion, base_key, first_step, max_steps: int, num_examples: int):
  """max_steps x B: batch_indices of first_step, first_step + 1, ... (a streamed run's reads)."""
  steps_K = first_step + jnp.arange(max_steps)
  return jax.vmap(lambda step: batch_indices(static, base_key, step, num_examples))(steps_K)


def batch_inputs(static: Diffusion, data, i, base_key, step):
  """(x in [-1, 1], labels_B or None, noise e like x, t_B) of one step, split over the mesh.
  data: (images, labels or None) on the device, or a chunk's Streamed batches (row i)."""
  recipe = static.recipe
  _, drop_key, noise_key, time_key = jax.random.split(jax.random.fold_in(base_key, step), 4)
  if isinstance(data, Streamed):
    images_B, labels_B = (None if a is None else a[i] for a in data.arrays)
  else:
    images_N, labels_N = data
    idx_B = batch_indices(static, base_key, step, images_N.shape[0])
    images_B, labels_B = images_N[idx_B], None if labels_N is None else labels_N[idx_B]
  x_B = scale_to_tanh_range(images_B)
  if static.num_classes:
    labels_B = drop_labels(labels_B.astype(jnp.int32), drop_key, recipe.label_dropout,
                           static.num_classes)
  e_B = jax.random.normal(noise_key, x_B.shape)
  t_B = paths.sample_times(time_key, recipe.batch_size, recipe.t_sampling)
  # With a mesh each device takes a slice of the same global batch; XLA all-reduces gradients.
  return jax.tree.map(lambda a: sharding.constrain_batch(a, static.mesh),
                      (x_B, labels_B, e_B, t_B))


def loss_fn(static: Diffusion, params, x_B, labels_B, e_B, t_B):
  """The mean over the batch of each example's squared error on its target (x_B, e_B: a
  batch of images, B x H x W or B x H x W x C)."""
  z_B, target_B = paths.noisy(static.objective, x_B, e_B, t_B)
  pred_B = static.module.apply({"params": params}, z_B, t_B, labels_B)
  return paths.loss_B(pred_B, target_B).mean()


def train_step(static: Diffusion, state: DiffusionState, images_N, base_key, labels_N=None,
               i=0):
  """One step; its randomness is fold_in(base_key, step), so any resume replays it.
  images_N (labels_N for a conditional model): on the device, or a chunk's Streamed batches
  (labels inside; this step's are row i)."""
  data = images_N if isinstance(images_N, Streamed) else (images_N, labels_N)
  inputs = batch_inputs(static, data, i, base_key, state.step)
  loss, grads = jax.value_and_grad(loss_fn, argnums=1)(static, state.params, *inputs)
  updates, opt_state = static.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  ema = state.ema_params
  if static.recipe.ema_decay:
    ema = ema_update(ema, params, ema_decay_at(static.recipe.ema_decay, state.step))
  state = DiffusionState(step=state.step + 1, params=params, opt_state=opt_state,
                         ema_params=ema)
  return state, {"loss": loss, "grad_norm": optax.global_norm(grads)}


def train_chunk(static: Diffusion, state: DiffusionState, images_N, base_key,
                max_steps: int, num_steps, labels_N=None):
  """Runs `num_steps` (traced, <= max_steps) steps in one dispatch; donates `state`.
  images_N may be a chunk's Streamed batches (labels inside)."""
  streamed = isinstance(images_N, Streamed)
  labelled = (images_N.arrays[1] if streamed else labels_N) is not None
  if static.num_classes and not labelled:
    raise ValueError("a conditional model trains on labelled data: pass labels_N")
  labels_N = labels_N if static.num_classes else None
  return compiled_chunk(static, max_steps, streamed)(state, images_N, base_key, num_steps,
                                                     labels_N)


@functools.lru_cache(maxsize=None)
def compiled_chunk(static: Diffusion, max_steps: int, streamed: bool = False):
  """The jitted chunk: replicated in/out shardings when the definition has a mesh."""

  def chunk(state, images_N, base_key, num_steps, labels_N):
    step_fn = lambda s, i: train_step(static, s, images_N, base_key, labels_N, i)  # noqa: E731
    return runner.run_steps(step_fn, state, num_steps, max_steps, METRIC_NAMES, indexed=True)

  return runner.jit_chunk(chunk, static.mesh, streamed)
