"""Trains the judge, the CNN classifier that scores generated images, and ships it.

  python experiments/train_classifier.py --dataset mnist     # updates genjax/judge/weights/
  python experiments/train_classifier.py --dataset fashion_mnist --config.num_epochs=3 --out /tmp/j
  python experiments/train_classifier.py --dataset folder:PATH --workdir J   # a judge of PATH

--dataset mnist or fashion_mnist picks the config variant (genjax/configs/classifier.py:<dataset>);
any other dataset (folder:PATH, npz:FILE, tfds:NAME) takes the config's, and is set as its
config.dataset. --config.* overrides still apply on top. The run (checkpoints, metrics.jsonl,
judge.json) goes to --workdir; it is the judge for evaluate.py --judge and config.judge.
"""

from absl import flags
from ml_collections import config_flags
from ml_collections.config_flags import config_path

import genjax.configs.classifier as classifier_config
from genjax.core import cli, loop, sharding
from genjax.data.image_sets import resolve_dataset, short_name
from genjax.data.images import DATASETS
from genjax.judge.cnn import JUDGE_DIR
from genjax.judge.train import train_judge

_DATASET = flags.DEFINE_string("dataset", None, f"One of {', '.join(DATASETS)}, or "
                               "folder:PATH, npz:FILE, tfds:NAME[:SPLIT] (default: the config's).")
_OUT = flags.DEFINE_string("out", None, "Output folder (default: config.out_dir, else the "
                           "package's judge weights, i.e. the shipped judge).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (default: a new one under runs/).")
_CONFIG = cli.define_config(classifier_config.__file__)


def build_config():
  """The --config, or the --dataset variant with the same --config.* overrides applied; the
  shipped judges' folder is the default output for MNIST and Fashion-MNIST only."""
  config = _CONFIG.value
  dataset = _DATASET.value
  if dataset is not None:
    resolve_dataset(dataset, "dataset")  # one line for a form genjax does not read
    if dataset in DATASETS:
      config = classifier_config.get_config(dataset)
      for path, value in config_flags.get_override_values(flags.FLAGS["config"]).items():
        config_path.set_value(path, config, value)
    else:
      config.dataset = dataset
  shipped = str(JUDGE_DIR) if config.dataset in DATASETS else ""
  config.out_dir = _OUT.value or config.out_dir or shipped
  return config


def train():
  sharding.maybe_initialize_distributed()  # joins the run's other processes, if any
  config = build_config()
  name = short_name(resolve_dataset(config.dataset, "config.dataset"))
  return train_judge(config, _WORKDIR.value or cli.default_workdir(f"judge_{name}"))


def main(argv):
  del argv
  summary = cli.run(train)
  if not sharding.is_primary_process():
    return
  wrote = (f"wrote {summary['out_dir']}/{summary['name']}.msgpack and .json" if summary["out_dir"]
           else f"the judge is {summary['workdir']} (--judge)")
  print(f"done: {summary['dataset']} judge, {loop.trained_text(summary)}; test accuracy "
        f"{summary['test_accuracy']:.2f}% on {summary['num_test']} images; {wrote}")


if __name__ == "__main__":
  cli.main(main)
