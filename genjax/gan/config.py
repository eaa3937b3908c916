"""The GAN config's checks, which keys a resume may change, and its learning-rate window."""

from genjax.core import config as config_lib, schedules
from genjax.core.errors import field_error
from genjax.core.optimizers import ADAM_FORMS
from genjax.data import image_sets
from genjax.gan.losses import LOSSES

D_UPDATES = ("keras", "joint")  # keras: the tutorial's two D updates; joint: one on both halves
ARCHS = ("mlp", "dcgan")
COMPUTE_DTYPES = ("float32", "bfloat16")
# Besides the loop's: pictures, evaluation, precision, and the schedule (within the window rule).
RESUMABLE = config_lib.LOOP_RESUMABLE | {
    "sample_interval", "grid_size", "eval_interval", "eval_num", "compute_dtype",
    "lr_schedule", "lr_decay_fraction", "judge"}


def validate(config) -> None:
  """Raises ConfigError naming the first bad field, before anything is computed or written."""
  c = config_lib
  c.check_loop_keys(config)
  c.check_ints(config, ("batch_size", "latent_dim", "sample_interval", "grid_size", "eval_num",
                        "n_critic"))
  c.check_ints(config, ("eval_interval", "g_refine", "d_mbstd"), low=0)
  image_sets.check_config(config)
  c.check_choice(config, "d_update", D_UPDATES)
  c.check_choice(config, "compute_dtype", COMPUTE_DTYPES)
  c.check_choice(config, "arch", ARCHS)
  c.check_choice(config, "adam_form", ADAM_FORMS)
  c.check_choice(config, "loss", tuple(LOSSES))
  c.check_choice(config, "lr_schedule", ("constant", "linear"))
  c.check_widths(config, ("g_hidden", "d_hidden", "g_channels", "d_channels"))
  c.check_numbers(config, ("learning_rate", "adam_eps"), strict=True)
  c.check_range(config, ("beta1", "beta2", "bn_momentum"), 0.0, 1.0)
  c.check_bools(config, ("spectral_norm", "conditional", "g_blur", "g_class_bn"))
  c.check_numbers(config, ("gp_weight", "r1_weight", "d_learning_rate", "mode_seeking",
                           "consistency_weight"))
  if not (c.is_number(config.lr_decay_fraction) and 0 < config.lr_decay_fraction <= 1):
    raise field_error("config.lr_decay_fraction",
                      f"must be in (0, 1], got {config.lr_decay_fraction!r}")
  if not (c.is_number(config.ema_decay) and 0 <= config.ema_decay < 1):
    raise field_error("config.ema_decay", f"must be in [0, 1) (0: off), got {config.ema_decay!r}")
  _check_recipe(config)


def check_image_shape(config, shape_hwc) -> None:
  """Whether the networks serve images of shape_hwc (H, W, C): the DCGAN generator doubles its
  side len(g_channels) times; bCR's shifts stay under half a side."""
  height, width = shape_hwc[:2]
  scale = 2 ** len(config.g_channels)
  if config.arch == "dcgan" and (height % scale or width % scale):
    size = "config.image_size" if config.image_size else "its size (config.image_size)"
    raise field_error("config.g_channels", f"{tuple(config.g_channels)} doubles a side "
                      f"{len(config.g_channels)} times: it cannot make {height}x{width} images "
                      f"(sides must be multiples of {scale}); change {size} or the number of "
                      "entries")
  shift = config.consistency_shift
  if config_lib.is_int(shift) and 2 * shift >= min(height, width):
    raise field_error("config.consistency_shift", f"{shift} pixels is half a side or more of "
                      f"{height}x{width} images")


def _check_recipe(config) -> None:
  """The recipe's combinations: what needs the DCGAN, an even batch or the joint update."""
  side = image_sets.known_side(config)
  if side:  # else checked once the data is read
    check_image_shape(config, (side, side))
  if config.mode_seeking and config.batch_size % 2:
    raise field_error("config.mode_seeking", "pairs the batch's halves: config.batch_size "
                      f"must be even, got {config.batch_size}")
  if config.g_class_bn and not config.conditional:
    raise field_error("config.g_class_bn", "looks up each class's BatchNorm scale and offset: "
                      "set config.conditional=True")
  for key in ("g_refine", "g_blur", "g_class_bn", "d_mbstd"):
    if config[key] and config.arch != "dcgan":
      raise field_error(f"config.{key}", "is part of the dcgan networks; set config.arch='dcgan'")
  group = config.d_mbstd
  if group == 1 or (group and config.batch_size % group):
    raise field_error("config.d_mbstd", "must be 0 (off) or a group size >= 2 that divides "
                      f"config.batch_size ({config.batch_size}), got {group!r}")
  shift = config.consistency_shift
  if not config_lib.is_int(shift) or shift < 0:
    raise field_error("config.consistency_shift",
                      f"must be a non-negative integer of pixels, got {shift!r}")
  penalties = [k for k in ("gp_weight", "r1_weight", "consistency_weight") if config[k]]
  if penalties and config.d_update != "joint":
    raise field_error(f"config.{penalties[0]}", "needs config.d_update='joint' (the penalties "
                      "are part of one D objective on both halves)")


def lr_window(config) -> tuple[int, int] | None:
  """The linear decay's (begin, end) steps, or None for the constant rate."""
  if config.lr_schedule != "linear":
    return None
  return schedules.decay_window(config.num_steps, config.lr_decay_fraction)
