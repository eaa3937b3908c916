"""The tutorial's GAN as Keras code, timed on the same data and machine as genjax's step.

The baseline behind genjax's speed ratios: the classic Keras MLP GAN on MNIST (G 100 -> 256 ->
512 -> 1024 -> 784 with LeakyReLU and BatchNorm(momentum 0.8), D 784 -> 512 -> 256 -> 1, Adam
(2e-4, 0.5), batch 32), trained the way the tutorial does it: `generator.predict` for the fakes,
two `discriminator.train_on_batch` calls (reals labelled 1, fakes 0), then `train_on_batch` of
the stacked G -> D model with D frozen. Keras (with TensorFlow) comes with the `tfds` extra and
is imported only here.

Run it as `python experiments/bench_jit.py --models tutorial,keras`: the Keras loop runs in a
process of its own (`python -m genjax.gan.keras_reference`), so TensorFlow's thread pools and
JAX's never share one.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from genjax.core import cli
from genjax.core.errors import GenjaxError
from genjax.data.images import load_dataset
from genjax.data.source import resolve_data_dir

LATENT_DIM = 100
G_HIDDEN = (256, 512, 1024)
D_HIDDEN = (512, 256)
IMAGE_SHAPE = (28, 28)


def import_keras():
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  try:
    import keras
  except ImportError as err:
    raise GenjaxError(f"the Keras baseline needs Keras and TensorFlow: pip install genjax[tfds] "
                      f"({err})") from None
  return keras


def build_models(keras):
  """(generator, discriminator, combined), compiled as the tutorial compiles them."""
  layers = keras.layers
  g_layers = [keras.Input((LATENT_DIM,))]
  for width in G_HIDDEN:
    g_layers += [layers.Dense(width), layers.LeakyReLU(negative_slope=0.2),
                 layers.BatchNormalization(momentum=0.8)]
  g_layers += [layers.Dense(IMAGE_SHAPE[0] * IMAGE_SHAPE[1], activation="tanh"),
               layers.Reshape(IMAGE_SHAPE)]
  generator = keras.Sequential(g_layers, name="generator")

  d_layers = [keras.Input(IMAGE_SHAPE), layers.Flatten()]
  for width in D_HIDDEN:
    d_layers += [layers.Dense(width), layers.LeakyReLU(negative_slope=0.2)]
  d_layers += [layers.Dense(1, activation="sigmoid")]
  discriminator = keras.Sequential(d_layers, name="discriminator")

  adam = lambda: keras.optimizers.Adam(2e-4, beta_1=0.5)  # noqa: E731
  discriminator.compile(loss="binary_crossentropy", optimizer=adam(), metrics=["accuracy"])
  z = keras.Input((LATENT_DIM,))
  discriminator.trainable = False
  combined = keras.Model(z, discriminator(generator(z)), name="combined")
  combined.compile(loss="binary_crossentropy", optimizer=adam())
  return generator, discriminator, combined


def _pairs(models, g_params, g_batch_stats, d_params):
  """(Keras layer, genjax's weights for it in Keras' order) for every layer with weights."""
  generator, discriminator, _ = models

  def layers(model, kind):
    return [layer for layer in model.layers if type(layer).__name__ == kind]

  for params, model in ((g_params, generator), (d_params, discriminator)):
    for i, layer in enumerate(layers(model, "Dense")):
      yield layer, [np.asarray(params[f"Dense_{i}"][k]) for k in ("kernel", "bias")]
  for i, layer in enumerate(layers(generator, "BatchNormalization")):
    name = f"BatchNorm_{i}"
    yield layer, [np.asarray(g_params[name]["scale"]), np.asarray(g_params[name]["bias"]),
                  np.asarray(g_batch_stats[name]["mean"]), np.asarray(g_batch_stats[name]["var"])]


def set_weights(models, g_params, g_batch_stats, d_params) -> None:
  """Give the Keras models genjax's MLP weights (flax's Dense_i / BatchNorm_i trees)."""
  for layer, weights in _pairs(models, g_params, g_batch_stats, d_params):
    layer.set_weights(weights)


def weight_drift(models, g_params, g_batch_stats, d_params) -> float:
  """Largest absolute difference between the Keras models' weights and genjax's."""
  return max(float(np.max(np.abs(a - b)))
             for layer, weights in _pairs(models, g_params, g_batch_stats, d_params)
             for a, b in zip(layer.get_weights(), weights))


def train_iteration(models, real_Bx28x28: np.ndarray, z_d_BxZ: np.ndarray,
                    z_g_BxZ: np.ndarray) -> tuple:
  """One tutorial iteration (noise z_d for D's fakes, z_g for G's step): (d_loss, d_acc, g_loss).

  Keras 3 reads `trainable` when it first traces a model's train step, so D is marked
  trainable for its own steps and frozen for the stacked model's, as the tutorial intends.
  """
  generator, discriminator, combined = models
  batch = len(real_Bx28x28)
  ones, zeros = np.ones((batch, 1), np.float32), np.zeros((batch, 1), np.float32)
  fakes = generator.predict(z_d_BxZ, verbose=0)
  discriminator.trainable = True
  d_real = discriminator.train_on_batch(real_Bx28x28, ones)
  d_fake = discriminator.train_on_batch(fakes, zeros)
  discriminator.trainable = False
  g_loss = combined.train_on_batch(z_g_BxZ, ones)
  d_loss, d_acc = 0.5 * (np.add(d_real, d_fake))
  return float(d_loss), float(d_acc), float(np.ravel(g_loss)[0])


def benchmark_keras(images_Nx28x28: np.ndarray, batch_size: int = 32, seconds: float = 5.0,
                    warmup: int = 20, seed: int = 0) -> dict:
  """Iterations/s of the tutorial's Keras loop after `warmup` iterations (tracing)."""
  keras = import_keras()
  keras.utils.set_random_seed(seed)
  models = build_models(keras)
  rng = np.random.default_rng(seed)
  real_Nx28x28 = images_Nx28x28.astype(np.float32) / 127.5 - 1.0

  def run(iterations: int):
    for _ in range(iterations):
      idx = rng.integers(0, len(real_Nx28x28), batch_size)
      z_d, z_g = rng.normal(0, 1, (2, batch_size, LATENT_DIM)).astype(np.float32)
      losses = train_iteration(models, real_Nx28x28[idx], z_d, z_g)
    return losses

  start = time.perf_counter()
  run(warmup)
  warmup_s = time.perf_counter() - start
  iterations, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    losses = run(10)
    iterations += 10
  elapsed = time.perf_counter() - start
  generator, discriminator, _ = models
  return dict(
      model="keras", framework=f"keras {keras.__version__} ({keras.backend.backend()})",
      batch_size=batch_size, iters=iterations, seconds=elapsed, warmup_s=warmup_s,
      iters_per_s=iterations / elapsed, items_per_s=iterations * batch_size / elapsed,
      item="image", params=int(generator.count_params() + discriminator.count_params()),
      d_loss=losses[0], d_acc=losses[1], g_loss=losses[2])


def benchmark_in_subprocess(batch_size: int, seconds: float, data_dir: str | None = None) -> dict:
  """benchmark_keras on MNIST in a fresh Python process; its record."""
  root = resolve_data_dir(data_dir)
  return cli.run_module("genjax.gan.keras_reference", ["--batch_size", batch_size, "--seconds",
                        seconds] + (["--data_dir", os.path.abspath(root)] if root else []),
                        "the Keras baseline")


class _OneLineParser(argparse.ArgumentParser):
  def error(self, message):  # argparse's own: a usage block, then the error
    self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv=None) -> int:
  parser = _OneLineParser(prog="python -m genjax.gan.keras_reference",
                          description="Time the tutorial's Keras GAN loop on MNIST.")
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--seconds", type=float, default=5.0)
  parser.add_argument("--data_dir", default=None, help="folder with mnist/ (else GENJAX_DATA_DIR)")
  args = parser.parse_args(argv)
  if args.batch_size <= 0:
    parser.error(f"--batch_size must be positive, got {args.batch_size}")
  if args.seconds <= 0:
    parser.error(f"--seconds must be positive, got {args.seconds}")
  try:
    images = load_dataset("mnist", "train", args.data_dir)[0]
    record = benchmark_keras(images, args.batch_size, args.seconds)
  except GenjaxError as e:
    message = cli.flag_message(e, {"config.data_dir": "--data_dir"})  # the flag it takes
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 2
  print(json.dumps(record))
  return 0


if __name__ == "__main__":
  sys.exit(main())
