"""Samples from a run's latest checkpoint: the one way every run gets evaluated."""

import json
from pathlib import Path

import jax
import ml_collections
import numpy as np

from genjax import checkpoint, sharding
from genjax.errors import CheckpointError, ConfigError, WorkdirError
from genjax.train_state import NUM_CLASSES, build_gan, generate, init_state

SAMPLE_BATCH = 1000  # bounded memory for any --num
VAE_MODELS = ("vae", "iwae", "ae")  # runs of experiments/vae_mnist.py (an ae cannot sample)


def load_run_config(workdir) -> ml_collections.ConfigDict:
  path = Path(workdir) / "config.json"
  if not Path(workdir).is_dir():
    raise WorkdirError(f"workdir {workdir} does not exist")
  try:
    return ml_collections.ConfigDict(json.loads(path.read_text()))
  except (OSError, json.JSONDecodeError) as exc:
    raise CheckpointError(f"cannot read the run config {path}: {exc}") from None


def restore_generator(workdir, step: int | None = None):
  """(gan, state, config, step) of the checkpoint at `step` in workdir (None: the newest)."""
  gan, config, states_and_steps = restore_generators(workdir, [step])
  state, step = states_and_steps[0]
  return gan, state, config, step


def restore_generators(workdir, steps):
  """(gan, config, [(state, step), ...]) for each of `steps` (None: the newest), one model."""
  config = load_run_config(workdir)
  if config.get("model", "gan") != "gan":
    raise ConfigError(f"{workdir} holds a {config.model!r} run; this sampler knows 'gan'")
  gan = build_gan(config)
  # Replicated onto this process's first device, whatever device count wrote the checkpoint.
  abstract = sharding.abstract_replicated(
      jax.eval_shape(lambda: init_state(gan, jax.random.key(0))), sharding.make_mesh(1))
  identity = checkpoint.identity_of(config)
  manager = checkpoint.open_manager(workdir, max_to_keep=None, create=False)
  try:
    restored = [_restore_one(manager, workdir, step, abstract, identity) for step in steps]
  finally:
    manager.close()
  return gan, config, restored


def _restore_one(manager, workdir, step, abstract, identity):
  """(state, step) at `step` (None: the newest), or a clear error listing what exists."""
  if step is None:
    state, step = checkpoint.restore_latest(manager, abstract, identity)
  elif step in manager.all_steps():
    state = checkpoint.restore_step(manager, step, abstract, identity)
  else:
    raise CheckpointError(f"no checkpoint of step {step} in "
                          f"{checkpoint.checkpoint_dir(workdir)} (it has "
                          f"{sorted(manager.all_steps()) or 'none'})")
  if state is None:
    raise CheckpointError(f"no checkpoint in {checkpoint.checkpoint_dir(workdir)}")
  return state, step


def check_label(label, config, workdir) -> None:
  """A --label needs a conditional run and a class in 0..9."""
  if label is None:
    return
  if not config.get("conditional", False):
    raise ConfigError(f"--label {label}: {workdir} is not conditional; train with "
                      "--config.conditional=True (e.g. the cgan recipe) to sample by class")
  if not isinstance(label, (int, np.integer)) or isinstance(label, bool) or \
      not 0 <= label < NUM_CLASSES:
    raise ConfigError(f"--label must be a class in 0..{NUM_CLASSES - 1}, got {label!r}")


def sample_images(workdir, num: int, seed: int = 0, label: int | None = None,
                  step: int | None = None, drs: bool = False) -> np.ndarray:
  """(num, 28, 28) float32 in [0, 1]: G in inference mode, or a VAE's decoder means.

  label K: every sample of class K (conditional runs); None: a conditional GAN cycles through
  the classes (balanced), a conditional VAE draws them uniformly. step: that checkpoint of a
  GAN run (None: the newest). drs: keep G's samples by the run's DRS fit (genjax.rejection).
  """
  if not isinstance(num, int) or num <= 0:
    raise ConfigError(f"--num must be a positive integer, got {num!r}")
  run_config = load_run_config(workdir)
  check_label(label, run_config, workdir)
  return sampler(workdir, run_config, step, drs)(num, seed, label)


def sampler(workdir, run_config, step: int | None = None, drs: bool = False):
  """fn(num, seed, label) -> images of the checkpoint at step (None: the newest), restored once."""
  if run_config.get("model", "gan") in VAE_MODELS:
    if step is not None:
      raise ConfigError(f"--step {step}: {workdir} is a VAE run, which samples its newest "
                        "checkpoint only")
    if drs:
      raise ConfigError(f"--drs: {workdir} is a VAE run; rejection sampling keeps a GAN's samples")
    from genjax import vae_sampling  # only VAE runs need the VAE modules
    return lambda num, seed, label: vae_sampling.sample_images(workdir, run_config, num, seed,
                                                               label=label)
  draw, chunk, g_step, num_classes = gan_draws(workdir, run_config, step)
  if drs:
    from genjax import rejection  # its network only when asked for
    return rejection.rejecting_draw(workdir, chunk, g_step, num_classes)
  return draw


def gan_draws(workdir, run_config, step: int | None = None):
  """(draw, chunk, step, num_classes) of a GAN checkpoint, restored once.

  draw(num, seed, label): the first num images of seed's noise stream; chunk(seed, label, i):
  its i-th block of SAMPLE_BATCH images. label None: a conditional G's balanced labels.
  """
  gan, state, config, step = restore_generator(workdir, step)
  gen = jax.jit(lambda s, z, y: generate(gan, s, z, y) * 0.5 + 0.5)

  def chunk(seed: int, label: int | None, i: int) -> np.ndarray:
    z = jax.random.normal(jax.random.fold_in(jax.random.key(seed), i * SAMPLE_BATCH),
                          (SAMPLE_BATCH, config.latent_dim))
    # label None: generate's balanced labels (SAMPLE_BATCH is a multiple of the classes).
    labels = None if label is None else np.full(SAMPLE_BATCH, label)
    return np.clip(np.asarray(gen(state, z, labels)), 0.0, 1.0).astype(np.float32)

  def draw(num: int, seed: int, label: int | None) -> np.ndarray:
    return np.concatenate([chunk(seed, label, i) for i in range(-(-num // SAMPLE_BATCH))])[:num]

  return draw, chunk, step, gan.num_classes


def class_seed(seed: int, label: int) -> int:
  """The noise seed of class `label`'s samples at evaluation seed `seed`.

  Distinct for every (seed, label): two evaluation seeds never reuse a noise vector, so their
  spread is that of independent sample sets. Seed 0 keeps its classes' seeds 0..9.
  """
  return seed * NUM_CLASSES + label


def sample_by_class(workdir, num: int, seed: int = 0, step: int | None = None,
                    drs: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """(images, labels): about num / 10 samples asked for each class of a conditional run."""
  run_config = load_run_config(workdir)
  check_label(0, run_config, workdir)
  draw = sampler(workdir, run_config, step, drs)
  per_class = [num // NUM_CLASSES + (k < num % NUM_CLASSES) for k in range(NUM_CLASSES)]
  images = [draw(n, class_seed(seed, k), k) for k, n in enumerate(per_class) if n]
  labels = np.concatenate([np.full(n, k) for k, n in enumerate(per_class) if n])
  return np.concatenate(images), labels


def write_samples(path, images: np.ndarray) -> None:
  """Writes `images` to an .npz; the parent folder must exist or be creatable."""
  path = Path(path)
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
      np.savez_compressed(f, images=images)
  except OSError as exc:
    raise WorkdirError(f"cannot write samples to {path}: {exc.strerror or exc}") from None
