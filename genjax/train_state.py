"""The GAN's static definition (modules, optimizers) and its one train-state pytree."""

import dataclasses

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from genjax.models import Discriminator, Generator


@dataclasses.dataclass(frozen=True, eq=False)
class GAN:
  """What never changes during training: modules, optimizers, sizes. Static under jit.

  Equal (and hashing equal) when built from the same config values, so rebuilding a GAN
  reuses jit's compiled steps instead of compiling again.
  """

  generator: Generator
  discriminator: Discriminator
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  latent_dim: int
  batch_size: int
  d_update: str  # "seed" (the tutorial's two D updates) or "joint" (one update on both halves)
  mesh: Mesh | None  # data-parallel mesh; None: plain single-device jit

  spec: tuple  # the config values it was built from

  def __hash__(self):
    return hash(self.spec)

  def __eq__(self, other):
    return isinstance(other, GAN) and self.spec == other.spec


@flax.struct.dataclass
class GANState:
  """Everything that changes: both networks, G's batch stats, both optimizer states, the step."""

  step: jnp.ndarray  # int32 scalar: iterations completed
  g_params: flax.core.FrozenDict
  g_batch_stats: flax.core.FrozenDict
  d_params: flax.core.FrozenDict
  g_opt_state: optax.OptState
  d_opt_state: optax.OptState


def keras_adam(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam(lr, beta_1, beta_2) with Keras' epsilon 1e-7 (optax's default is 1e-8)."""
  return optax.adam(config.learning_rate, b1=config.beta1, b2=config.beta2, eps=config.adam_eps)


GAN_SPEC_KEYS = ("g_hidden", "d_hidden", "bn_momentum", "learning_rate", "beta1", "beta2",
                 "adam_eps", "latent_dim", "batch_size", "d_update", "compute_dtype")


def build_gan(config: ml_collections.ConfigDict, mesh: Mesh | None = None) -> GAN:
  """The GAN for `config`; with a mesh, batches are split over its `data` axis."""
  spec = tuple((k, tuple(config[k]) if k.endswith("hidden") else config.get(k, "float32"))
               for k in GAN_SPEC_KEYS) + (("mesh", mesh),)
  dtype = jnp.dtype(config.get("compute_dtype", "float32"))
  return GAN(
      spec=spec,
      mesh=mesh,
      generator=Generator(hidden=tuple(config.g_hidden), bn_momentum=config.bn_momentum,
                          dtype=dtype),
      discriminator=Discriminator(hidden=tuple(config.d_hidden), dtype=dtype),
      g_tx=keras_adam(config),
      d_tx=keras_adam(config),
      latent_dim=config.latent_dim,
      batch_size=config.batch_size,
      d_update=config.d_update,
  )


def init_state(gan: GAN, key: jax.Array, image_shape=(28, 28)) -> GANState:
  g_key, d_key = jax.random.split(key)
  g_vars = gan.generator.init(g_key, jnp.zeros((1, gan.latent_dim)), train=False)
  d_vars = gan.discriminator.init(d_key, jnp.zeros((1, *image_shape)))
  return GANState(
      step=jnp.zeros((), jnp.int32),
      g_params=g_vars["params"],
      g_batch_stats=g_vars["batch_stats"],
      d_params=d_vars["params"],
      g_opt_state=gan.g_tx.init(g_vars["params"]),
      d_opt_state=gan.d_tx.init(d_vars["params"]),
  )


def generate(gan: GAN, state: GANState, z_BxZ: jnp.ndarray) -> jnp.ndarray:
  """Images in [-1, 1] from G in inference mode (running BatchNorm averages, like Keras predict)."""
  variables = {"params": state.g_params, "batch_stats": state.g_batch_stats}
  return gan.generator.apply(variables, z_BxZ, train=False)
