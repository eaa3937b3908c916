"""The toy family as an entry point, for runs over several processes:

  python tests/core/toy_run.py WORKDIR [KEY=VALUE ...]

Process 0 prints the final parameters as JSON (their float32 bits, to compare exactly).
"""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from genjax.core import cli, sharding  # noqa: E402
from tests.core.toy import get_config, train_toy  # noqa: E402


def bits(value: float) -> int:
  return int(np.float32(value).view(np.uint32))


def main() -> None:
  workdir, overrides = sys.argv[1], sys.argv[2:]
  config = get_config()
  for item in overrides:
    key, value = item.split("=", 1)
    config[key] = type(config[key])(value)

  def train():
    sharding.maybe_initialize_distributed()
    return train_toy(config, workdir)

  summary = cli.run(train)
  if sharding.is_primary_process():
    print(json.dumps({"w": bits(summary["w"]), "b": bits(summary["b"]),
                      "start_step": summary["start_step"]}))


if __name__ == "__main__":
  main()
