"""The AE/VAE/IWAE config's checks, its epochs as steps, and which keys a resume may change."""

import math

from genjax.core import config as config_lib, schedules
from genjax.core.errors import field_error
from genjax.data.images import DATASETS, SPLIT_SIZES
from genjax.vae.data import BINARIZATIONS

MODELS = ("vae", "iwae", "ae")
CHOICES = {"model": MODELS, "dataset": DATASETS, "binarization": BINARIZATIONS,
           "decoder": ("bernoulli", "gaussian"), "arch": ("mlp", "conv"),
           "activation": ("tanh", "softplus", "relu"),
           "lr_schedule": ("constant", "cosine", "burda")}
# Besides the loop's: pictures and every evaluation setting (a trained run can be re-scored).
RESUMABLE = config_lib.LOOP_RESUMABLE | {
    "num_epochs", "sample_interval", "grid_size", "eval_num", "eval_iwae_k", "eval_nll_k",
    "eval_batch", "eval_k_chunk", "eval_interval", "eval_interval_num"}


def validate(config) -> None:
  """Raises ConfigError naming the first bad field, before anything is computed or written."""
  c = config_lib
  c.check_loop_keys(config)
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
  if config.arch == "conv" and not 1 <= len(config.conv_channels) <= 2:
    raise field_error("config.conv_channels", "must have 1 or 2 layers (28 -> 14 -> 7), "
                      f"got {config.conv_channels!r}")
  if config.eval_nll_k and config.eval_nll_k % config.eval_iwae_k:
    raise field_error("config.eval_nll_k", f"must be 0 or a multiple of config.eval_iwae_k="
                      f"{config.eval_iwae_k} (both come from the same draws), "
                      f"got {config.eval_nll_k}")


def resolve(config):
  """A validated copy with num_steps filled in from num_epochs when it is 0."""
  validate(config)
  config = config.copy_and_resolve_references()
  if not config.num_steps:
    config.num_steps = math.ceil(config.num_epochs * SPLIT_SIZES["train"] / config.batch_size)
  return config


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
