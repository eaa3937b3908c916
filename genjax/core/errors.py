"""User-facing errors: each carries a one-line message naming the field, file or folder at fault.

The library names config fields as `config.KEY` and function arguments by their names; the
entry points (genjax.core.cli) turn those into the flags a user typed (`--config.KEY`, `--num`).
"""


class GenjaxError(Exception):
  """Base of every error the entry points report as one line and a non-zero exit.

  field: the config field (`config.batch_size`) or argument (`num`) at fault, when one is; the
  message starts with it, so an entry point can name its flag instead.
  """

  def __init__(self, message: str, field: str | None = None):
    super().__init__(message)
    self.field = field


class ConfigError(GenjaxError, ValueError):
  """A config value or an argument is out of range, unknown or inconsistent."""


class DataError(GenjaxError, ValueError):
  """A dataset name, file or folder that cannot be used, with a one-line reason."""


class CheckpointError(GenjaxError):
  """A checkpoint is missing, corrupt, or from a different model/config."""


class WorkdirError(GenjaxError):
  """The workdir cannot be created or written, or would overwrite something kept."""


class TrainingDiverged(GenjaxError):
  """A loss or parameter became NaN/inf; the last good checkpoint is kept."""


def field_error(field: str, text: str, cls=ConfigError) -> GenjaxError:
  """`cls("{field} {text}", field)`: the message names the field first."""
  return cls(f"{field} {text}", field=field)
