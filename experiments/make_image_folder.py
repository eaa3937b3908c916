"""Writes a folder of images laid out as genjax reads your own: MNIST (or Fashion-MNIST) digits
padded to 32x32 in random colours, one subfolder per class, with a test split beside.

  python experiments/make_image_folder.py --out runs/digits --num 2000
  python experiments/gan_mnist.py --config=genjax/configs/gan_mnist.py:cgan \\
      --config.dataset=folder:runs/digits --workdir runs/digits_cgan

Writes OUT/train/<class>/<i>.png (the first --num images of the training split) and
OUT/test/<class>/<i>.png (the first --num_test of the test split; default --num / 5).
--out must be new or empty.
"""

from absl import flags

from genjax.core import cli
from genjax.data.examples import write_example_folder

_OUT = flags.DEFINE_string("out", None, "A new folder for the images.", required=True)
_NUM = flags.DEFINE_integer("num", 2000, "Training images.")
_NUM_TEST = flags.DEFINE_integer("num_test", None, "Test images (default: --num / 5).")
_DATASET = flags.DEFINE_string("dataset", "mnist", "mnist or fashion_mnist.")
_SIDE = flags.DEFINE_integer("side", 32, "Pad to side x side and colour (0: 28x28 grey).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with mnist/ and fashion-mnist/ "
                                "(default: $GENJAX_DATA_DIR).")


def main(argv):
  del argv
  num_test = _NUM_TEST.value if _NUM_TEST.value is not None else max(1, _NUM.value // 5)
  root = cli.run(write_example_folder, _OUT.value, _NUM.value, num_test, _DATA_DIR.value,
                 _DATASET.value, _SIDE.value)
  print(f"wrote {_NUM.value} training and {num_test} test images of {_DATASET.value} to {root}")


if __name__ == "__main__":
  cli.main(main)
