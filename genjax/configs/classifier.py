"""The judge: a small CNN classifier that scores generated images (MNIST, Fashion-MNIST, or
any labelled dataset).

Run:      python experiments/train_classifier.py --dataset mnist  # updates genjax/judge/weights/
Own data: python experiments/train_classifier.py --dataset folder:PATH --workdir J  (the run J
          is the judge: evaluate.py --judge J, --config.judge=J in training)
Variants: --config=genjax/configs/classifier.py:fashion_mnist (or :cifar), --config.num_epochs=3
Tiny (tests): --config=genjax/configs/classifier.py:tiny
The shipped weights record their accuracy and training (genjax/judge/weights/*.json); measured
figures: docs/results.md, "The judges".
"""

import ml_collections

VARIANTS = ("mnist", "fashion_mnist", "cifar", "tiny")


def get_config(variant: str = "mnist") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.model = "classifier"
  c.dataset = "mnist"  # fashion_mnist, folder:PATH, npz:FILE or tfds:NAME[:SPLIT] (labelled)
  c.data_dir = ""  # folder with mnist/ and fashion-mnist/ gz files; else $GENJAX_DATA_DIR, else TFDS
  c.image_size = 0  # >0: every image resized (shorter side) and centre-cropped to S x S on load
  c.test_fraction = 0.1  # held out as the test split by data without one of its own
  c.device_data_mb = 2048.0  # data up to this size (MB) sits on the devices; larger streams
  # Set from the data when a run starts (its checkpoints record them): leave them unset.
  c.image_shape = None  # (H, W, C)
  c.num_classes = None
  c.class_names = None
  c.out_dir = ""  # where <dataset>.msgpack/.json go; "": the entry point's default (MNIST's and
  # Fashion's: the shipped judges' folder; other data: none, the run's workdir is the judge)
  c.seed = 0

  c.conv_features = (32, 64)  # one 3x3 conv + 2x2 max-pool per block
  c.feature_dim = 128  # the penultimate layer: the judge's feature space
  c.conv_dropout = 0.25
  c.dense_dropout = 0.5

  c.batch_size = 128
  c.num_epochs = 12
  c.learning_rate = 3e-3  # peak of a one-cycle (warmup, then cosine to ~0) schedule
  c.warmup_fraction = 0.15
  c.weight_decay = 1e-4  # AdamW, decoupled
  c.label_smoothing = 0.0  # >0 would flatten the judge's probabilities (they feed scores)
  c.augment = True
  c.max_shift = 2  # random translations of up to this many pixels, done on device

  c.train_limit = 0  # >0: use only the first N training images (tests)
  c.test_limit = 0  # >0: evaluate on the first N test images only
  c.num_steps = 0  # >0 overrides num_epochs
  c.steps_per_dispatch = 100  # batches per jitted call: the progress bar's granularity
  c.eval_batch_size = 1000
  c.log_interval = 1  # rows of metrics.jsonl (the last epoch's mean is the recorded train loss)
  c.checkpoint_interval = 2000
  c.keep_checkpoints = 2
  c.num_devices = 1
  c.progress = True

  if variant == "fashion_mnist":
    # Clothes need width more than invariance: MNIST's 2-px shifts and heavy dropout underfit.
    c.dataset = "fashion_mnist"
    c.conv_features = (32, 128)
    c.conv_dropout = 0.1
    c.dense_dropout = 0.3
    c.max_shift = 1
    c.num_epochs = 15
  elif variant == "cifar":
    # 32x32 colour (CIFAR-10): wider, longer. Not measured yet; on one GPU:
    #   python experiments/train_classifier.py --dataset tfds:cifar10 \
    #       --config=genjax/configs/classifier.py:cifar --workdir runs/judge_cifar
    c.dataset = "tfds:cifar10"
    c.conv_features = (64, 128)
    c.feature_dim = 256
    c.num_epochs = 30
  elif variant == "tiny":
    c.conv_features = (8, 16)
    c.feature_dim = 32
    c.batch_size = 50
    c.num_epochs = 2
    c.train_limit = 2000
    c.test_limit = 1000
    c.steps_per_dispatch = 20
    c.progress = False
  elif variant not in ("", "mnist"):
    raise ValueError(f"unknown config variant {variant!r}: use one of {', '.join(VARIANTS)}")
  return c
