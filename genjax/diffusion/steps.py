"""The pure, jitted training step: noise a batch at random times, regress the network's
prediction on the target (noise or velocity), one Adam step, the moving average."""

import functools

import jax
import jax.numpy as jnp
import optax

from genjax.core import runner, sharding
from genjax.core.ema import ema_decay_at, ema_update
from genjax.data.images import scale_to_tanh_range
from genjax.diffusion import paths
from genjax.diffusion.state import Diffusion, DiffusionState

METRIC_NAMES = ("loss", "grad_norm")


def drop_labels(labels_B, key, rate: float, null_label: int):
  """Each label replaced by the null label with probability `rate`: the one network learns
  the unconditional model too, which classifier-free guidance needs."""
  return jnp.where(jax.random.uniform(key, labels_B.shape) < rate, null_label, labels_B)


def batch_inputs(static: Diffusion, images_NxHxW, labels_N, key):
  """(x_BxHxW in [-1, 1], labels_B or None, e_BxHxW, t_B) of one step, split over the mesh."""
  recipe = static.recipe
  idx_key, drop_key, noise_key, time_key = jax.random.split(key, 4)
  idx_B = jax.random.randint(idx_key, (recipe.batch_size,), 0, images_NxHxW.shape[0])
  x_BxHxW = scale_to_tanh_range(images_NxHxW[idx_B])
  labels_B = None
  if static.num_classes:
    labels_B = drop_labels(labels_N[idx_B].astype(jnp.int32), drop_key, recipe.label_dropout,
                           static.num_classes)
  e_BxHxW = jax.random.normal(noise_key, x_BxHxW.shape)
  t_B = paths.sample_times(time_key, recipe.batch_size, recipe.t_sampling)
  # With a mesh each device takes a slice of the same global batch; XLA all-reduces gradients.
  return jax.tree.map(lambda a: sharding.constrain_batch(a, static.mesh),
                      (x_BxHxW, labels_B, e_BxHxW, t_B))


def loss_fn(static: Diffusion, params, x_BxHxW, labels_B, e_BxHxW, t_B):
  """The mean over the batch of each example's squared error on its target."""
  z_BxHxW, target_BxHxW = paths.noisy(static.objective, x_BxHxW, e_BxHxW, t_B)
  pred_BxHxW = static.module.apply({"params": params}, z_BxHxW, t_B, labels_B)
  return paths.loss_B(pred_BxHxW, target_BxHxW).mean()


def train_step(static: Diffusion, state: DiffusionState, images_NxHxW, base_key, labels_N=None):
  """One step; its randomness is fold_in(base_key, step), so any resume replays it."""
  key = jax.random.fold_in(base_key, state.step)
  inputs = batch_inputs(static, images_NxHxW, labels_N, key)
  loss, grads = jax.value_and_grad(loss_fn, argnums=1)(static, state.params, *inputs)
  updates, opt_state = static.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  ema = state.ema_params
  if static.recipe.ema_decay:
    ema = ema_update(ema, params, ema_decay_at(static.recipe.ema_decay, state.step))
  state = DiffusionState(step=state.step + 1, params=params, opt_state=opt_state,
                         ema_params=ema)
  return state, {"loss": loss, "grad_norm": optax.global_norm(grads)}


def train_chunk(static: Diffusion, state: DiffusionState, images_NxHxW, base_key,
                max_steps: int, num_steps, labels_N=None):
  """Runs `num_steps` (traced, <= max_steps) steps in one dispatch; donates `state`."""
  if static.num_classes and labels_N is None:
    raise ValueError("a conditional model trains on labelled data: pass labels_N")
  labels_N = labels_N if static.num_classes else None
  return compiled_chunk(static, max_steps)(state, images_NxHxW, base_key, num_steps, labels_N)


@functools.lru_cache(maxsize=None)
def compiled_chunk(static: Diffusion, max_steps: int):
  """The jitted chunk: replicated in/out shardings when the definition has a mesh."""

  def chunk(state, images_NxHxW, base_key, num_steps, labels_N):
    step_fn = lambda s: train_step(static, s, images_NxHxW, base_key, labels_N)  # noqa: E731
    return runner.run_steps(step_fn, state, num_steps, max_steps, METRIC_NAMES)

  return runner.jit_chunk(chunk, static.mesh)
