"""The AE/VAE/IWAE config's checks, its epochs as steps, and which keys a resume may change."""

import math

from genjax.core import config as config_lib, schedules
from genjax.core.errors import field_error
from genjax.data import image_sets
from genjax.vae.data import BINARIZATIONS

MODELS = ("vae", "iwae", "ae")
CHOICES = {"model": MODELS, "binarization": BINARIZATIONS,
           "decoder": ("bernoulli", "gaussian"), "arch": ("mlp", "conv"),
           "activation": ("tanh", "softplus", "relu"),
           "lr_schedule": ("constant", "cosine", "burda")}
# Besides the loop's: pictures and every evaluation setting (a trained run can be re-scored).
RESUMABLE = config_lib.LOOP_RESUMABLE | {
    "num_epochs", "sample_interval", "grid_size", "eval_num", "eval_iwae_k", "eval_nll_k",
    "eval_batch", "eval_k_chunk", "eval_interval", "eval_interval_num", "judge"}


def validate(config) -> None:
  """Raises ConfigError naming the first bad field, before anything is computed or written."""
  c = config_lib
  c.check_loop_keys(config)
  image_sets.check_config(config)
  c.check_bools(config, ("conditional", "learn_decoder_std"))
  for key, choices in CHOICES.items():
    c.check_choice(config, key, choices)
  c.check_ints(config, ("batch_size", "latent_dim", "iwae_k", "sample_interval", "grid_size",
                        "eval_num", "eval_iwae_k", "eval_batch", "eval_k_chunk",
                        "eval_interval_num"))
  c.check_ints(config, ("eval_nll_k", "eval_interval", "binarize_seed"), low=0)
  c.check_numbers(config, ("learning_rate", "adam_eps", "decoder_std", "num_epochs"), strict=True)
  c.check_range(config, ("beta1", "beta2"), 0.0, 1.0)
  c.check_numbers(config, ("beta", "final_lr_fraction"))
  c.check_widths(config, ("hidden", "conv_channels"), allow_empty=True)
  side = image_sets.known_side(config)
  if side:  # else checked once the data is read
    check_image_shape(config, (side, side))
  if config.eval_nll_k and config.eval_nll_k % config.eval_iwae_k:
    raise field_error("config.eval_nll_k", f"must be 0 or a multiple of config.eval_iwae_k="
                      f"{config.eval_iwae_k} (both come from the same draws), "
                      f"got {config.eval_nll_k}")


def check_image_shape(config, shape_hwc) -> None:
  """Whether the conv networks serve images of shape_hwc: each layer halves a side, and the
  decoder doubles it back, so the sides must be multiples of 2^len(conv_channels)."""
  if config.arch != "conv":
    return
  scale = 2 ** len(config.conv_channels)
  height, width = shape_hwc[:2]
  if not config.conv_channels or height % scale or width % scale:
    raise field_error("config.conv_channels", f"{tuple(config.conv_channels)} halves a side "
                      f"{len(config.conv_channels)} times: it cannot serve {height}x{width} "
                      f"images (sides must be multiples of {scale}, and one layer at least); "
                      "change the number of entries or config.image_size")


def resolve(config):
  """A validated copy, its data's path made absolute."""
  validate(config)
  return image_sets.resolve_paths(config.copy_and_resolve_references())


def fill_num_steps(config, num_examples: int) -> None:
  """num_steps from num_epochs of num_examples when it is 0."""
  if not config.num_steps:
    config.num_steps = math.ceil(config.num_epochs * num_examples / config.batch_size)


def check_resume(saved_config: dict, config, step: int) -> None:
  """A decaying schedule is laid over num_steps: a resume may change it only when the steps
  already taken keep their rates."""
  if config.lr_schedule == "constant" or saved_config["num_steps"] == config.num_steps:
    return
  saved = schedules.optax_schedule(config.lr_schedule, config.learning_rate,
                                   saved_config["num_steps"], config.final_lr_fraction)
  now = schedules.optax_schedule(config.lr_schedule, config.learning_rate, config.num_steps,
                                 config.final_lr_fraction)
  if not schedules.same_rates(saved, now, step):
    raise field_error("config.num_steps", f"{config.num_steps} (config.num_epochs "
                      f"{config.num_epochs}) would change the {config.lr_schedule} learning "
                      f"rates of the {step} steps already taken ({saved_config['num_steps']} "
                      "when they were); keep them or use another --workdir")
