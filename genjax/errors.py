"""User-facing errors: each carries a one-line message naming the field, file or folder at fault."""


class GenjaxError(Exception):
  """Base of every error the entry points report as one line and a non-zero exit."""


class ConfigError(GenjaxError, ValueError):
  """A config value is out of range or unknown."""


class CheckpointError(GenjaxError):
  """A checkpoint is missing, corrupt, or from a different model/config."""


class WorkdirError(GenjaxError):
  """The workdir cannot be created or written."""


class TrainingDiverged(GenjaxError):
  """A loss or parameter became NaN/inf; the last good checkpoint is kept."""
