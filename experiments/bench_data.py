"""What streaming the training data from the host costs a GAN step.

  python experiments/bench_data.py --config=genjax/configs/gan_mnist.py:dcgan \
      --config.dataset=folder:runs/digits32 --num_steps 600
  python experiments/bench_data.py --example runs/digits32 ...   # writes the folder first:
      # 60,000 MNIST digits padded to 32x32 and coloured, as PNGs (and 10,000 test images)

Prints the host pipeline's images/s (random rows read and decoded a chunk at a time, as a
streamed run reads them), then the recipe's steady images/s with the data on the devices and
streamed, in alternating runs (the first chunk of each, compilation, left out), each with the
1-minute load average beside it, and the streamed/in-memory ratio.
"""

from absl import flags

import genjax.configs.gan_mnist as gan_config
from genjax.core import cli

_CONFIG = cli.define_config(gan_config.__file__)
_NUM_STEPS = flags.DEFINE_integer("num_steps", 600, "Steps of each timed run.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Runs of each kind, alternating.")
_SECONDS = flags.DEFINE_float("seconds", 10.0, "Seconds of the pipeline's own measurement.")
_EXAMPLE = flags.DEFINE_string("example", None, "Write the example folder of coloured MNIST "
                               "digits here first (if it is not there) and train on it.")


def measure():
  from pathlib import Path

  from genjax.data.examples import write_example_folder
  from genjax.gan.bench import stream_speed

  config = _CONFIG.value
  if _EXAMPLE.value:
    if not Path(_EXAMPLE.value).is_dir():
      write_example_folder(_EXAMPLE.value, 60_000, 10_000, config.data_dir or None)
    config.dataset = f"folder:{_EXAMPLE.value}"
  return stream_speed(config, _NUM_STEPS.value, _REPEATS.value, _SECONDS.value)


def main(argv):
  del argv
  record = cli.run(measure)
  print(f"done: pipeline {record['pipeline_images_per_s']:.0f} images/s; steps "
        f"{record['in_memory_images_per_s']:.0f} images/s in memory, "
        f"{record['streamed_images_per_s']:.0f} streamed "
        f"({record['streamed_over_in_memory']:.2f} of in-memory)")


if __name__ == "__main__":
  cli.main(main)
