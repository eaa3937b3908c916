"""The diffusion model's static definition (U-Net, optimizer, recipe), its train-state pytree,
and images drawn from it with any sampler, number of evaluations and guidance."""

import dataclasses
import functools

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from genjax.core import schedules
from genjax.core.config import Static, as_tuple, recipe_of
from genjax.core.ema import ema_copy
from genjax.data.pixels import example_shape
from genjax.diffusion import samplers
from genjax.diffusion.models import UNet

# Besides the loop's, keys the host alone reads (pictures, evaluation, the sampling settings
# samples and evaluations use): left out of the recipe, so changing them compiles no step.
HOST_KEYS = ("dataset", "image_size", "test_fraction", "class_names", "judge",
             "sample_interval", "eval_interval", "eval_num", "eval_batch", "sampler", "nfe",
             "guidance")


@dataclasses.dataclass(frozen=True, eq=False)
class Diffusion(Static):
  """What never changes during training: the U-Net, the optimizer, the recipe (the config
  without the host's keys: recipe.objective, recipe.label_dropout, ...). Static under jit."""

  module: UNet
  tx: optax.GradientTransformation
  recipe: ml_collections.FrozenConfigDict
  mesh: Mesh | None = None  # data-parallel mesh; None: plain single-device jit

  @property
  def num_classes(self) -> int:
    """> 0: class-conditional, with label num_classes the null label."""
    return self.module.num_classes

  @property
  def objective(self) -> str:
    return self.recipe.objective

  @property
  def example_shape(self) -> tuple:
    """One image's shape: (H, W) for one channel (MNIST's layout), (H, W, C) for colour."""
    return example_shape(self.recipe.image_shape)


@flax.struct.dataclass
class DiffusionState:
  """Everything that changes: the U-Net's parameters, Adam's state, their average, the step."""

  step: jnp.ndarray  # int32 scalar: steps completed
  params: flax.core.FrozenDict
  opt_state: optax.OptState
  ema_params: dict  # the parameters' moving average (config.ema_decay), or {} without one


def learning_rate(config) -> optax.Schedule:
  """A linear warmup over config.warmup_steps, then constant, or a cosine to
  config.final_lr_fraction of the rate at num_steps."""
  if config.lr_schedule == "warmup_cosine":
    return schedules.optax_schedule("warmup_cosine", config.learning_rate, config.num_steps,
                                    final_fraction=config.final_lr_fraction,
                                    warmup_steps=config.warmup_steps)
  warmup = max(int(config.warmup_steps), 1)
  return optax.join_schedules([optax.linear_schedule(0.0, config.learning_rate, warmup),
                               optax.constant_schedule(config.learning_rate)], [warmup])


def build(config: ml_collections.ConfigDict, mesh: Mesh | None = None) -> Diffusion:
  """The static definition of a validated config; with a mesh, batches split over its devices."""
  module = UNet(channels=as_tuple(config.channels), blocks=config.blocks, heads=config.heads,
                groups=config.groups,
                num_classes=config.num_classes if config.conditional else 0,
                patch=config.patch)
  # Flattened: Adam's elementwise update runs on one vector instead of a hundred small leaves,
  # the same numbers with a tenth of the kernels (and of the compile time).
  tx = optax.flatten(optax.chain(
      optax.clip_by_global_norm(config.grad_clip) if config.grad_clip else optax.identity(),
      optax.adam(learning_rate(config), b1=config.beta1, b2=config.beta2, eps=config.adam_eps)))
  # A constant rate does not depend on num_steps: then neither do the compiled steps.
  host = HOST_KEYS + (("num_steps",) if config.lr_schedule == "constant" else ())
  return Diffusion(module=module, tx=tx, recipe=recipe_of(config, host), mesh=mesh)


@functools.partial(jax.jit, static_argnums=0)
def init_state(static: Diffusion, key: jax.Array) -> DiffusionState:
  labels = jnp.zeros((1,), jnp.int32) if static.num_classes else None
  params = static.module.init(key, jnp.zeros((1, *static.example_shape)), jnp.zeros((1,)), labels)
  params = params["params"]
  return DiffusionState(step=jnp.zeros((), jnp.int32), params=params,
                        opt_state=static.tx.init(params),
                        ema_params=ema_copy(params) if static.recipe.ema_decay else {})


def sampling_params(static: Diffusion, state: DiffusionState):
  """The weights samples come from: the moving average when the recipe keeps one."""
  return state.ema_params if static.recipe.ema_decay else state.params


def apply_fn(static: Diffusion, params):
  """fn(z_BxHxW[xC], t_B, labels_B) -> the U-Net's prediction (noise or velocity)."""
  return lambda z, t, labels: static.module.apply({"params": params}, z, t, labels)


@functools.partial(jax.jit, static_argnums=(0, 5, 6, 7, 8))
def generate(static: Diffusion, params, noise_BxHxW, labels_B, key, sampler: str, nfe: int,
             guidance: float, keep_path: bool = False):
  """Images in [-1, 1] from noise: `sampler` with `nfe` evaluations and classifier-free
  `guidance` (1: the conditional model; labels_B None for an unconditional one). With
  keep_path, also every grid time's z (the denoising trajectory), unclipped."""
  predict = samplers.guided(apply_fn(static, params), labels_B, guidance, static.num_classes)
  out = samplers.sample(predict, noise_BxHxW, key, sampler, nfe, clip=True, keep_path=keep_path)
  if keep_path:
    return jnp.clip(out[0], -1.0, 1.0), out[1]
  return jnp.clip(out, -1.0, 1.0)


def balanced_labels(n: int, num_classes: int, start: int = 0) -> jnp.ndarray:
  """i mod num_classes for samples i = start, ..., start + n - 1: equal numbers of each class."""
  return (start + jnp.arange(n, dtype=jnp.int32)) % num_classes
