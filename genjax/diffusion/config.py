"""The diffusion config's checks, which keys a resume may change, and the sampling settings'
checks shared by the config and the commands that override them."""

from genjax.core import config as config_lib, schedules
from genjax.core.errors import field_error
from genjax.data import image_sets
from genjax.diffusion import paths, samplers

# Besides the loop's: pictures, evaluation and how samples are drawn (no training step reads them).
RESUMABLE = config_lib.LOOP_RESUMABLE | {
    "sample_interval", "eval_interval", "eval_num", "eval_batch", "sampler", "nfe", "guidance",
    "judge"}


CONFIG_FIELDS = ("config.sampler", "config.nfe", "config.guidance")


def check_sampling(objective: str, conditional: bool, sampler, nfe, guidance,
                   fields=CONFIG_FIELDS) -> None:
  """The sampler belongs to the objective, nfe pays for whole steps, and guidance is 1 (none)
  unless the run is conditional. fields: the names errors give the three (config keys, or a
  command's arguments)."""
  sampler_field, nfe_field, guidance_field = fields
  choices = samplers.SAMPLERS[objective]
  if sampler not in choices:
    raise field_error(sampler_field, f"{sampler!r} is unknown for a {objective} run; choose "
                      f"one of {', '.join(choices)}")
  per_step = samplers.EVALS_PER_STEP[sampler]
  if not config_lib.is_int(nfe) or nfe < per_step or nfe % per_step:
    what = "a positive integer" if per_step == 1 else f"a positive multiple of {per_step}"
    raise field_error(nfe_field, f"must be {what} (network evaluations of {sampler}), "
                      f"got {nfe!r}")
  if not config_lib.is_number(guidance) or guidance < 0:
    raise field_error(guidance_field, f"must be a number >= 0, got {guidance!r}")
  if guidance != 1 and not conditional:
    raise field_error(guidance_field, f"{guidance:g} needs a conditional run (guidance mixes "
                      "in the unconditional model); this one is unconditional")


def validate(config) -> None:
  """Raises ConfigError naming the first bad field, before anything is computed or written."""
  c = config_lib
  c.check_loop_keys(config)
  image_sets.check_config(config)
  c.check_choice(config, "objective", paths.OBJECTIVES)
  c.check_choice(config, "t_sampling", paths.T_SAMPLINGS)
  c.check_choice(config, "lr_schedule", ("constant", "warmup_cosine"))
  c.check_bools(config, ("conditional",))
  c.check_ints(config, ("batch_size", "blocks", "heads", "groups", "sample_interval",
                        "eval_num", "eval_batch"))
  c.check_ints(config, ("eval_interval", "warmup_steps"), low=0)
  c.check_widths(config, ("channels",))
  c.check_numbers(config, ("learning_rate", "adam_eps"), strict=True)
  c.check_numbers(config, ("grad_clip", "final_lr_fraction"))
  c.check_range(config, ("beta1", "beta2", "ema_decay", "label_dropout"), 0.0, 1.0)
  c.check_choice(config, "patch", (1, 2))
  side = image_sets.known_side(config)
  if side:  # else checked once the data is read
    check_image_shape(config, (side, side))
  bad = [w for w in config.channels if w % config.groups or w % config.heads]
  if bad:
    raise field_error("config.groups", f"{config.groups} and config.heads {config.heads} must "
                      f"divide every width of config.channels, not {bad[0]}")
  if config.conditional and not config.label_dropout:
    raise field_error("config.label_dropout", "must be > 0 for a conditional run: the null "
                      "label that guidance needs is trained on the dropped labels")
  check_sampling(config.objective, config.conditional, config.sampler, config.nfe,
                 config.guidance)


def check_image_shape(config, shape_hwc) -> None:
  """Whether the U-Net serves images of shape_hwc: it cuts them into patch x patch blocks, then
  halves the sides once per further width of config.channels."""
  height, width = shape_hwc[:2]
  scale = config.patch * 2 ** (len(config.channels) - 1)
  if height % scale or width % scale:
    size = "config.image_size" if config.image_size else "their size (config.image_size)"
    raise field_error("config.channels", f"{tuple(config.channels)} with config.patch="
                      f"{config.patch} needs sides that are multiples of {scale}, not "
                      f"{height}x{width}; change {size}, config.patch or the number of widths")


def resolve(config):
  """A validated copy, its data's path made absolute (the data fills num_classes etc.)."""
  validate(config)
  return image_sets.resolve_paths(config.copy_and_resolve_references())


def check_resume(saved_config: dict, config, step: int) -> None:
  """A cosine schedule is laid over num_steps: a resume may change it only when the steps
  already taken keep their rates."""
  if config.lr_schedule == "constant" or saved_config["num_steps"] == config.num_steps:
    return
  kind, rate, warmup, final = (config.lr_schedule, config.learning_rate, config.warmup_steps,
                               config.final_lr_fraction)
  saved = schedules.optax_schedule(kind, rate, saved_config["num_steps"], final,
                                   warmup_steps=warmup)
  now = schedules.optax_schedule(kind, rate, config.num_steps, final, warmup_steps=warmup)
  if not schedules.same_rates(saved, now, step):
    raise field_error("config.num_steps", f"{config.num_steps} would change the cosine "
                      f"learning rates of the {step} steps already taken "
                      f"({saved_config['num_steps']} when they were); keep it or use another "
                      "--workdir")
