"""Trains the judge, the CNN classifier that scores generated images, and ships it.

  python experiments/train_classifier.py --dataset mnist              # updates genjax/judges/
  python experiments/train_classifier.py --dataset fashion_mnist --config.num_epochs=3 --out /tmp/j

--dataset picks the config variant (genjax/configs/classifier.py:<dataset>); --config.* overrides
still apply on top of it.
"""

from absl import app, flags
from ml_collections import config_flags
from ml_collections.config_flags import config_path

import genjax.configs.classifier as classifier_config
from genjax import classifier, cli, data
from genjax.errors import ConfigError

_DATASET = flags.DEFINE_string("dataset", None, f"One of {', '.join(data.DATASETS)} "
                               "(default: the config's).")
_OUT = flags.DEFINE_string("out", None, "Output folder (default: config.out_dir, else the "
                           "package's judges folder, i.e. the shipped judge).")
_CONFIG = config_flags.DEFINE_config_file("config", classifier_config.__file__, "Training config.")


def build_config():
  """The --config, or the --dataset variant with the same --config.* overrides applied."""
  config = _CONFIG.value
  if _DATASET.value is not None:
    if _DATASET.value not in data.DATASETS:
      raise ConfigError(f"--dataset {_DATASET.value!r} is unknown; choose one of "
                        f"{', '.join(data.DATASETS)}")
    config = classifier_config.get_config(_DATASET.value)
    for path, value in config_flags.get_override_values(flags.FLAGS["config"]).items():
      config_path.set_value(path, config, value)
  return config


def train(out):
  config = build_config()
  return classifier.train_classifier(config, out or config.out_dir or classifier.JUDGE_DIR)


def main(argv):
  del argv
  summary = cli.run_reporting_errors(train, _OUT.value)
  print(f"done: {summary['dataset']} judge, test accuracy {summary['test_accuracy']:.2f}% on "
        f"{summary['num_test']} images, trained in {summary['train_seconds']:.1f} s; wrote "
        f"{summary['out_dir']}/{summary['dataset']}.msgpack and .json")


if __name__ == "__main__":
  app.run(main)
