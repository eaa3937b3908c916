"""Config keys added after the first runs, at the value a run written without one implies.

One table serves every reader of an old run: the GAN and VAE builders (config_value), the
samplers, and the checkpoint identity check (a checkpoint without a key had its default).
"""

import json

NEWER_KEY_DEFAULTS = {
    # GAN keys beyond the tutorial's: configs without them mean the tutorial's choice.
    "compute_dtype": "float32", "arch": "mlp", "g_channels": (128, 64), "d_channels": (64, 128),
    "loss": "nsgan", "gp_weight": 0.0, "r1_weight": 0.0, "spectral_norm": False, "n_critic": 1,
    "ema_decay": 0.0, "d_learning_rate": 0.0, "lr_schedule": "constant",
    "g_refine": 0, "mode_seeking": 0.0, "consistency_weight": 0.0, "consistency_shift": 2,
    "g_blur": False, "lr_decay_fraction": 1.0, "g_class_bn": False,
    "d_mbstd": 0,
    # GAN and VAE: runs before class conditioning were unconditional.
    "conditional": False,
}


def config_value(config, key: str):
  """config[key], or its default when the config predates the key; lists as tuples (hashable)."""
  value = config.get(key, NEWER_KEY_DEFAULTS.get(key))
  return tuple(value) if isinstance(value, (list, tuple)) else value


def json_defaults() -> dict:
  """The defaults as a checkpoint's JSON identity holds them (tuples as lists)."""
  return json.loads(json.dumps(NEWER_KEY_DEFAULTS))
