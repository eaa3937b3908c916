"""The GAN's static definition (modules, optimizers, recipe) and its one train-state pytree."""

import dataclasses

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from genjax.core import optimizers
from genjax.core.config import Static, as_tuple, recipe_of
from genjax.core.ema import ema_copy
from genjax.data.images import NUM_CLASSES
from genjax.data.pixels import example_shape
from genjax.gan.config import lr_window
from genjax.gan.models import DCGANDiscriminator, DCGANGenerator, Discriminator, Generator


@dataclasses.dataclass(frozen=True, eq=False)
class GAN(Static):
  """What never changes during training: modules, optimizers and the recipe. Static under jit.

  `recipe` is the config without the host loop's keys (intervals, folders, step counts): the
  steps read every recipe value from it (gan.recipe.loss, gan.recipe.r1_weight, ...), so a new
  config key reaches them without touching this class. Equal (and hashing equal) GANs come
  from equal recipes, so rebuilding one reuses jit's compiled steps instead of compiling again.
  """

  generator: Generator | DCGANGenerator
  discriminator: Discriminator | DCGANDiscriminator
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation
  recipe: ml_collections.FrozenConfigDict
  mesh: Mesh | None  # data-parallel mesh; None: plain single-device jit
  num_classes: int = 0  # >0: class-conditional G and D
  lr_window: tuple[int, int] | None = None  # linear decay of both rates to 0 over [begin, end)

  def _key(self):
    return (self.recipe, self.mesh, self.lr_window)

  @property
  def latent_dim(self) -> int:
    return self.recipe.latent_dim

  @property
  def batch_size(self) -> int:
    return self.recipe.batch_size

  @property
  def example_shape(self) -> tuple:
    """One image's array shape: (H, W) for one channel, (H, W, C) in colour."""
    return example_shape(self.recipe.image_shape)


@flax.struct.dataclass
class GANState:
  """Everything that changes: both networks, G's batch stats, both optimizer states, the step."""

  step: jnp.ndarray  # int32 scalar: iterations completed
  g_params: flax.core.FrozenDict
  g_batch_stats: flax.core.FrozenDict
  d_params: flax.core.FrozenDict
  g_opt_state: optax.OptState
  d_opt_state: optax.OptState
  d_state: dict  # D's other collections: {"spectral": power-iteration vectors} or {}
  g_ema: dict  # {"params", "batch_stats"} averaged over steps, or {} without EMA


def gan_adam(learning_rate: float, config: ml_collections.ConfigDict):
  """Adam(lr, beta_1, beta_2, eps) in config.adam_form: the tutorial's Keras Adam, or optax's.

  Constant rate: a schedule scales the updates in the step (genjax.core.schedules), so the
  optimizer state is the same under every schedule.
  """
  return optimizers.adam(learning_rate, config.beta1, config.beta2, config.adam_eps,
                         config.adam_form)


# Besides the loop's, keys the host alone reads: left out of a GAN's recipe, so changing them
# compiles nothing.
HOST_KEYS = ("model", "dataset", "num_steps", "sample_interval", "grid_size", "eval_interval",
             "eval_num", "image_size", "test_fraction", "class_names", "judge")


def build_networks(config, num_classes: int, dtype):
  """(generator, discriminator) modules of config.arch, for images of config.image_shape."""
  sn = bool(config.spectral_norm)
  image_shape = tuple(config.image_shape)
  if config.arch == "dcgan":
    return (DCGANGenerator(channels=as_tuple(config.g_channels), image_shape=image_shape,
                           num_classes=num_classes,
                           refine_channels=int(config.g_refine), blur=bool(config.g_blur),
                           class_bn=bool(config.g_class_bn), dtype=dtype),
            DCGANDiscriminator(channels=as_tuple(config.d_channels), num_classes=num_classes,
                               spectral_norm=sn, mbstd_group=int(config.d_mbstd), dtype=dtype))
  return (Generator(hidden=tuple(config.g_hidden), image_shape=image_shape,
                    bn_momentum=config.bn_momentum, num_classes=num_classes, dtype=dtype),
          Discriminator(hidden=tuple(config.d_hidden), num_classes=num_classes, spectral_norm=sn,
                        dtype=dtype))


def build_gan(config: ml_collections.ConfigDict, mesh: Mesh | None = None) -> GAN:
  """The GAN for a validated `config` whose data keys are filled in (image_shape,
  num_classes); with a mesh, batches are split over its `data` axis."""
  recipe = recipe_of(config, HOST_KEYS)
  num_classes = config.num_classes if config.conditional else 0
  generator, discriminator = build_networks(config, num_classes,
                                            jnp.dtype(config.compute_dtype))
  d_lr = config.d_learning_rate or config.learning_rate
  return GAN(generator=generator, discriminator=discriminator,
             g_tx=gan_adam(config.learning_rate, config), d_tx=gan_adam(d_lr, config),
             recipe=recipe, mesh=mesh, num_classes=num_classes,
             lr_window=lr_window(config))  # the window depends on num_steps


def init_state(gan: GAN, key: jax.Array) -> GANState:
  g_key, d_key = jax.random.split(key)
  labels = jnp.zeros((1,), jnp.int32) if gan.num_classes else None
  g_vars = gan.generator.init(g_key, jnp.zeros((1, gan.latent_dim)), train=False, labels_B=labels)
  d_vars = dict(gan.discriminator.init(d_key, jnp.zeros((1, *gan.example_shape)), labels))
  d_params = d_vars.pop("params")
  g_ema = ema_copy(dict(g_vars)) if gan.recipe.ema_decay else {}
  return GANState(
      step=jnp.zeros((), jnp.int32),
      g_params=g_vars["params"],
      g_batch_stats=g_vars["batch_stats"],
      d_params=d_params,
      g_opt_state=gan.g_tx.init(g_vars["params"]),
      d_opt_state=gan.d_tx.init(d_params),
      d_state=d_vars,
      g_ema=g_ema,
  )


def sampling_variables(gan: GAN, state: GANState) -> dict:
  """G's variables for samples: the EMA when the recipe keeps one, else the trained ones."""
  if gan.recipe.ema_decay:
    return state.g_ema
  return {"params": state.g_params, "batch_stats": state.g_batch_stats}


def generate(gan: GAN, state: GANState, z_BxZ: jnp.ndarray, labels_B=None) -> jnp.ndarray:
  """Images in [-1, 1] from G in inference mode (running BatchNorm averages, like Keras predict).

  A conditional G with labels_B None draws balanced labels: i mod K for the i-th noise row.
  """
  if gan.num_classes and labels_B is None:
    labels_B = balanced_labels(z_BxZ.shape[0], gan.num_classes)
  return gan.generator.apply(sampling_variables(gan, state), z_BxZ, train=False,
                             labels_B=labels_B)


def balanced_labels(n: int, num_classes: int = NUM_CLASSES) -> jnp.ndarray:
  return jnp.arange(n, dtype=jnp.int32) % num_classes
