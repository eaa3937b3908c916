"""The AE/VAE's static definition (network, optimizer, objective) and its train-state pytree."""

import dataclasses
import functools
import math

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from genjax.core import schedules
from genjax.core.config import Static, recipe_of
from genjax.data.pixels import example_shape
from genjax.vae import losses as vae_losses
from genjax.vae.models import VAE, build_vae_module

MIN_DECODER_LOG_STD = math.log(1e-3)  # floor for a learned Gaussian std: sharp pixels blow up

# Besides the loop's, keys the host alone reads: left out of a setup's recipe, so changing them
# compiles nothing.
HOST_KEYS = ("dataset", "binarize_seed", "num_epochs", "eval_num", "eval_iwae_k", "eval_nll_k",
             "eval_batch", "eval_k_chunk", "eval_interval", "eval_interval_num",
             "sample_interval", "grid_size", "image_size", "test_fraction", "class_names")


@dataclasses.dataclass(frozen=True, eq=False)
class VAESetup(Static):
  """What never changes during training: network, optimizer, objective. Static under jit.

  `recipe` is the config without the host loop's keys: recipe.model ("vae", "iwae" or "ae"),
  recipe.decoder ("bernoulli" or "gaussian"), recipe.binarization, recipe.beta, ...
  """

  module: VAE
  tx: optax.GradientTransformation
  recipe: ml_collections.FrozenConfigDict
  mesh: Mesh | None = None  # data-parallel mesh; None: plain single-device jit

  @property
  def conditional(self) -> bool:
    """Whether q(z|x,y) and p(x|z,y) take one-hot labels."""
    return self.module.num_classes > 0

  @property
  def num_classes(self) -> int:
    return self.module.num_classes

  @property
  def example_shape(self) -> tuple:
    """One image's array shape: (H, W) for one channel, (H, W, C) in colour."""
    return example_shape(self.recipe.image_shape)

  @property
  def pixel_axes(self) -> tuple:
    """The axes a likelihood sums over: an image's last two, or three in colour."""
    return tuple(range(-len(self.example_shape), 0))


@flax.struct.dataclass
class VAEState:
  """Everything that changes: parameters, optimizer state, the step."""

  step: jnp.ndarray  # int32 scalar: iterations completed
  params: flax.core.FrozenDict
  opt_state: optax.OptState


def learning_rate_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """constant; cosine decay to final_lr_fraction; or Burda's 8 stages of 3^i, compressed."""
  return schedules.optax_schedule(config.lr_schedule, config.learning_rate, config.num_steps,
                                  final_fraction=config.final_lr_fraction)


def build_setup(config: ml_collections.ConfigDict, mesh: Mesh | None = None) -> VAESetup:
  """The static definition for a resolved config (num_steps and the data keys filled in);
  batches split over mesh."""
  tx = optax.adam(learning_rate_schedule(config), b1=config.beta1, b2=config.beta2,
                  eps=config.adam_eps)
  # A decaying schedule is laid over num_steps: then the steps depend on it.
  host = HOST_KEYS + (("num_steps",) if config.lr_schedule == "constant" else ())
  return VAESetup(module=build_vae_module(config), tx=tx, recipe=recipe_of(config, host),
                  mesh=mesh)


@functools.partial(jax.jit, static_argnums=0)
def init_state(setup: VAESetup, key: jax.Array) -> VAEState:
  y_1xC = jnp.zeros((1, setup.num_classes)) if setup.conditional else None
  params = setup.module.init(key, jnp.zeros((1, *setup.example_shape)), y_1xC)["params"]
  return VAEState(step=jnp.zeros((), jnp.int32), params=params, opt_state=setup.tx.init(params))


def encode(setup: VAESetup, params, x_BxHxW, y_BxC=None):
  """(mean_BxZ, logvar_BxZ) of q(z|x[,y]); (code_BxZ, None) for the autoencoder."""
  return setup.module.apply({"params": params}, x_BxHxW, y_BxC, method=VAE.encode)


def decode(setup: VAESetup, params, z_BxZ, y_BxC=None):
  """Raw decoder outputs_BxHxW (logits, or Gaussian means before the sigmoid)."""
  return setup.module.apply({"params": params}, z_BxZ, y_BxC, method=VAE.decode)


def decode_mean(setup: VAESetup, params, z_BxZ, y_BxC=None):
  """E[x|z[,y]] in [0, 1]: Bernoulli probabilities or Gaussian means, the pictures one shows."""
  return jax.nn.sigmoid(decode(setup, params, z_BxZ, y_BxC))


def decoder_log_prob(setup: VAESetup, params, out_xHxW, x_xHxW):
  """log p(x|z) summed over pixels, from the decoder's raw outputs."""
  if setup.recipe.decoder == "bernoulli":
    return vae_losses.bernoulli_log_prob(out_xHxW, x_xHxW, setup.pixel_axes)
  log_std = setup.module.apply({"params": params}, method=VAE.decoder_log_std)
  log_std = jnp.maximum(log_std, MIN_DECODER_LOG_STD)
  return vae_losses.gaussian_log_prob(jax.nn.sigmoid(out_xHxW), log_std, x_xHxW,
                                      setup.pixel_axes)


def log_weights_KxB(setup: VAESetup, params, x_BxHxW, mean_BxZ, logvar_BxZ, key, k: int,
                    y_BxC=None):
  """(log p(x|z_k[,y]), log importance weights), both K x B, for k draws z_k ~ q(z|x[,y]).

  The prior p(z) ignores y, so with labels the weights bound log p(x|y).
  """
  z_KxBxZ = vae_losses.reparameterize(key, mean_BxZ, logvar_BxZ, k)
  b, z_dim = mean_BxZ.shape
  y_KBxC = None if y_BxC is None else jnp.tile(y_BxC, (k, 1))  # row k*b + i is example i
  out_KxBxHxW = decode(setup, params, z_KxBxZ.reshape(k * b, z_dim), y_KBxC).reshape(
      (k, b, *x_BxHxW.shape[1:]))
  log_px_KxB = decoder_log_prob(setup, params, out_KxBxHxW, x_BxHxW[None])
  return log_px_KxB, vae_losses.log_importance_weights_KxB(log_px_KxB, z_KxBxZ, mean_BxZ,
                                                           logvar_BxZ)
