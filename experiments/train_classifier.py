"""Trains the judge, the CNN classifier that scores generated images, and ships it.

  python experiments/train_classifier.py --dataset mnist     # updates genjax/judge/weights/
  python experiments/train_classifier.py --dataset fashion_mnist --config.num_epochs=3 --out /tmp/j

--dataset picks the config variant (genjax/configs/classifier.py:<dataset>); --config.* overrides
still apply on top of it. The run (checkpoints, metrics.jsonl) goes to --workdir.
"""

from absl import flags
from ml_collections import config_flags
from ml_collections.config_flags import config_path

import genjax.configs.classifier as classifier_config
from genjax.core import cli, sharding
from genjax.core.errors import field_error
from genjax.data.images import DATASETS
from genjax.judge.cnn import JUDGE_DIR
from genjax.judge.train import train_judge

_DATASET = flags.DEFINE_string("dataset", None, f"One of {', '.join(DATASETS)} "
                               "(default: the config's).")
_OUT = flags.DEFINE_string("out", None, "Output folder (default: config.out_dir, else the "
                           "package's judge weights, i.e. the shipped judge).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (default: a new one under runs/).")
_CONFIG = cli.define_config(classifier_config.__file__)


def build_config():
  """The --config, or the --dataset variant with the same --config.* overrides applied."""
  config = _CONFIG.value
  if _DATASET.value is not None:
    if _DATASET.value not in DATASETS:
      raise field_error("dataset", f"{_DATASET.value!r} is unknown; choose one of "
                        f"{', '.join(DATASETS)}")
    config = classifier_config.get_config(_DATASET.value)
    for path, value in config_flags.get_override_values(flags.FLAGS["config"]).items():
      config_path.set_value(path, config, value)
  config.out_dir = _OUT.value or config.out_dir or str(JUDGE_DIR)
  return config


def train():
  sharding.maybe_initialize_distributed()  # joins the run's other processes, if any
  config = build_config()
  return train_judge(config, _WORKDIR.value or cli.default_workdir(f"judge_{config.dataset}"))


def main(argv):
  del argv
  summary = cli.run(train)
  if not sharding.is_primary_process():
    return
  print(f"done: {summary['dataset']} judge, test accuracy {summary['test_accuracy']:.2f}% on "
        f"{summary['num_test']} images, trained in {summary['train_seconds']:.1f} s; wrote "
        f"{summary['out_dir']}/{summary['dataset']}.msgpack and .json")


if __name__ == "__main__":
  cli.main(main)
