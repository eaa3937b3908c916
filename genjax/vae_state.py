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

from genjax import checkpoint, vae_losses
from genjax.config_defaults import config_value
from genjax.vae_models import IMAGE_SHAPE, NUM_CLASSES, VAE, build_vae_module

MIN_DECODER_LOG_STD = math.log(1e-3)  # floor for a learned Gaussian std: sharp pixels blow up
BURDA_STAGES = 8  # Burda et al.: stage i lasts 3^i epochs at lr 1e-3 * 10^(-i/7)

# Config values the compiled functions depend on: equal specs share jit's cache.
SPEC_KEYS = ("model", "arch", "hidden", "conv_channels", "activation", "latent_dim", "decoder",
             "decoder_std", "learn_decoder_std", "binarization", "beta", "iwae_k", "batch_size",
             "learning_rate", "lr_schedule", "final_lr_fraction", "beta1", "beta2", "adam_eps",
             "num_steps", "conditional")

# Config keys that define the model and its training trajectory: a checkpoint written under
# other values cannot continue this run (see checkpoint.IDENTITY_KEYS, the GAN's).
IDENTITY_KEYS = ("model", "dataset", "arch", "hidden", "conv_channels", "activation",
                 "latent_dim", "decoder", "learn_decoder_std", "binarization", "binarize_seed",
                 "beta", "iwae_k", "batch_size", "seed", "conditional")


@dataclasses.dataclass(frozen=True, eq=False)
class VAESetup:
  """What never changes during training: network, optimizer, objective. Static under jit."""

  module: VAE
  tx: optax.GradientTransformation
  model: str  # "vae" (ELBO), "iwae" (k-sample bound) or "ae" (reconstruction only)
  decoder: str  # "bernoulli" (logits) or "gaussian" (sigmoid means, fixed or learned std)
  binarization: str
  beta: float
  iwae_k: int
  latent_dim: int
  batch_size: int

  spec: tuple  # the config values it was built from
  mesh: Mesh | None = None  # data-parallel mesh; None: plain single-device jit

  def __hash__(self):
    return hash((self.spec, self.mesh))

  def __eq__(self, other):
    return isinstance(other, VAESetup) and self.mesh == other.mesh and self.spec == other.spec

  @property
  def conditional(self) -> bool:
    """Whether q(z|x,y) and p(x|z,y) take one-hot labels."""
    return self.module.num_classes > 0


@flax.struct.dataclass
class VAEState:
  """Everything that changes: parameters, optimizer state, the step."""

  step: jnp.ndarray  # int32 scalar: iterations completed
  params: flax.core.FrozenDict
  opt_state: optax.OptState


def learning_rate_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """constant; cosine decay to final_lr_fraction; or Burda's 8 stages of 3^i, compressed."""
  lr, n = config.learning_rate, max(config.num_steps, 1)
  if config.lr_schedule == "constant":
    return optax.constant_schedule(lr)
  if config.lr_schedule == "cosine":
    return optax.cosine_decay_schedule(lr, n, alpha=config.final_lr_fraction)
  lengths = [3 ** i for i in range(BURDA_STAGES)]
  ends = [round(n * sum(lengths[:i + 1]) / sum(lengths)) for i in range(BURDA_STAGES - 1)]
  return optax.piecewise_constant_schedule(lr, {end: 10 ** (-1 / 7) for end in ends})


def restore_identity(config: ml_collections.ConfigDict) -> dict:
  """The identity a checkpoint must carry to be restored under `config` (keys newer than a
  checkpoint count at their config_defaults value)."""
  return checkpoint.identity_of(config, IDENTITY_KEYS)


def build_setup(config: ml_collections.ConfigDict, mesh: Mesh | None = None) -> VAESetup:
  """The static definition for a resolved config (num_steps filled in); batches split over mesh."""
  tx = optax.adam(learning_rate_schedule(config), b1=config.beta1, b2=config.beta2,
                  eps=config.adam_eps)
  return VAESetup(
      spec=tuple((k, config_value(config, k)) for k in SPEC_KEYS
                 if k != "num_steps" or config.lr_schedule != "constant"),
      module=build_vae_module(config), tx=tx, model=config.model, decoder=config.decoder,
      binarization=config.binarization, beta=float(config.beta), iwae_k=config.iwae_k,
      latent_dim=config.latent_dim, batch_size=config.batch_size, mesh=mesh)


@functools.partial(jax.jit, static_argnums=0)
def init_state(setup: VAESetup, key: jax.Array) -> VAEState:
  y_1xC = jnp.zeros((1, NUM_CLASSES)) if setup.conditional else None
  params = setup.module.init(key, jnp.zeros((1, *IMAGE_SHAPE)), y_1xC)["params"]
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
  if setup.decoder == "bernoulli":
    return vae_losses.bernoulli_log_prob(out_xHxW, x_xHxW)
  log_std = setup.module.apply({"params": params}, method=VAE.decoder_log_std)
  log_std = jnp.maximum(log_std, MIN_DECODER_LOG_STD)
  return vae_losses.gaussian_log_prob(jax.nn.sigmoid(out_xHxW), log_std, x_xHxW)


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
