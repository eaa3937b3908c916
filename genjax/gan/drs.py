"""Discriminator rejection sampling (DRS, Azadi et al. 2019): G's samples kept with the
probability that moves G's distribution toward the data's.

A GAN's own D is no density ratio: its hinge loss is uncalibrated, and it was trained against
G's current weights, not the EMA or averaged weights that sample. So DRS fits a fresh one: a
CNN (class-conditional for conditional runs) trained with BCE to tell the training images from
a pool of the sampling G's own images. At the optimum its logit is log p_data(x|y) / p_G(x|y),
and a candidate is kept with probability min(1, exp(logit - M_y)). M_y = the largest logit
would be exact rejection sampling; a percentile of held-out pool logits (Azadi et al. shift by
a gamma for the same trade) keeps more candidates and stops a few over-confident logits from
dominating. The pool and the evaluation draw disjoint noise, and nothing here sees the judge or
the test set. The fit is short on purpose: a longer fit separates the pools better but keeps
fewer samples and scores worse (docs/results.md has the trials).
"""

import functools
import json
import time
from pathlib import Path

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax.core import checkpoint, runner, sharding
from genjax.core.errors import CheckpointError, ConfigError, GenjaxError, WorkdirError, field_error
from genjax.core.files import write_atomic
from genjax.data import image_sets
from genjax.data.images import scale_to_tanh_range
from genjax.data.pixels import example_shape
from genjax.gan import losses
from genjax.gan.models import DCGANDiscriminator
from genjax.gan.sampling import class_seed, gan_draws

RATIO_CHANNELS = (32, 64, 128)  # 28 -> 14 -> 7 -> 4, the recipes' D without its extras
POOL_SEED = 1_000_000  # the pool's noise seeds, POOL_SEED + class: far above evaluation seeds
HOLDOUT = 0.1  # of the real and the pool images, kept out of training to measure the fit
CHUNK = 500  # training steps per dispatch
MAX_CANDIDATES = 50  # per requested sample, before a hopeless acceptance rate is an error
SUBDIR = "drs"
RECORD = "drs.json"


class SamplingError(GenjaxError):
  """DRS cannot deliver the samples asked for."""


@flax.struct.dataclass
class RatioState:
  step: jnp.ndarray
  params: flax.core.FrozenDict
  opt_state: optax.OptState


def ratio_network(num_classes: int, channels=RATIO_CHANNELS) -> DCGANDiscriminator:
  return DCGANDiscriminator(channels=tuple(channels), num_classes=num_classes)


def init_ratio_state(net: DCGANDiscriminator, tx, key, example_shape=(28, 28)) -> RatioState:
  labels = jnp.zeros((1,), jnp.int32) if net.num_classes else None
  params = net.init(key, jnp.zeros((1, *example_shape)), labels)["params"]
  return RatioState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))


def ratio_loss(net, params, real_BxHxW, real_y_B, fake_BxHxW, fake_y_B) -> jnp.ndarray:
  """BCE of real (label 1) against G's images (label 0), per example then averaged."""
  real_B = losses.sigmoid_bce_B(net.apply({"params": params}, real_BxHxW, real_y_B), 1.0)
  fake_B = losses.sigmoid_bce_B(net.apply({"params": params}, fake_BxHxW, fake_y_B), 0.0)
  return jnp.concatenate([real_B, fake_B]).mean()


def ratio_step(net, tx, batch_size: int, state: RatioState, pools: dict, base_key):
  """One Adam step on a batch of each pool: (state, {"loss"})."""
  real_key, fake_key = jax.random.split(jax.random.fold_in(base_key, state.step))
  ir_B = jax.random.randint(real_key, (batch_size,), 0, pools["real"].shape[0])
  if_B = jax.random.randint(fake_key, (batch_size,), 0, pools["fake"].shape[0])
  take = lambda y, i: None if y is None else y[i]  # noqa: E731  unconditional: no labels
  loss, grads = jax.value_and_grad(ratio_loss, argnums=1)(
      net, state.params, pools["real"][ir_B], take(pools["real_y"], ir_B),
      pools["fake"][if_B], take(pools["fake_y"], if_B))
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                       opt_state=opt_state), {"loss": loss}


@functools.lru_cache(maxsize=None)
def compiled_chunk(net, tx, batch_size: int):
  """Up to CHUNK ratio steps in one dispatch (the core runner): (state, {"loss": per step})."""

  def chunk(state: RatioState, pools: dict, base_key, num_steps):
    step_fn = lambda s: ratio_step(net, tx, batch_size, s, pools, base_key)  # noqa: E731
    return runner.run_steps(step_fn, state, num_steps, CHUNK, ("loss",))

  return runner.jit_chunk(chunk, None)


_apply = jax.jit(lambda net, params, x, y: net.apply({"params": params}, x, y),
                 static_argnums=0)


def logits_N(net, params, images_NxHxW, labels_N=None, batch: int = 2000) -> np.ndarray:
  """The ratio network's logits of images in [-1, 1], in batches."""
  out = []
  for i in range(0, len(images_NxHxW), batch):
    y = None if labels_N is None else jnp.asarray(labels_N[i:i + batch])
    out.append(np.asarray(_apply(net, params, jnp.asarray(images_NxHxW[i:i + batch]), y)))
  return np.concatenate(out)


def holdout_fit(net, params, pools: dict) -> dict:
  """BCE per example (chance: log 2 = 0.693) and accuracy, the two pools weighted equally,
  on the held-out images."""
  real = logits_N(net, params, pools["real"], pools["real_y"])
  fake = logits_N(net, params, pools["fake"], pools["fake_y"])
  return {"bce": float(0.5 * (np.mean(np.logaddexp(0, -real)) + np.mean(np.logaddexp(0, fake)))),
          "accuracy": float(0.5 * ((real > 0).mean() + (fake < 0).mean()))}


def thresholds_C(logits_N_, labels_N, percentile: float, num_classes: int) -> np.ndarray:
  """M_y: the percentile of the logits of each class (one value for unconditional runs)."""
  if not num_classes:
    return np.array([np.percentile(logits_N_, percentile)])
  return np.array([np.percentile(logits_N_[labels_N == k], percentile)
                   for k in range(num_classes)])


def accept_probs(logits_N_, threshold) -> np.ndarray:
  """min(1, exp(logit - M)): the density ratio, scaled so M's ratio is kept for sure."""
  return np.exp(np.minimum(np.asarray(logits_N_, np.float64) - threshold, 0.0))


def drs_dir(workdir) -> Path:
  return Path(workdir) / SUBDIR


def check_fit_args(num_steps, pool_per_class, percentile, batch_size) -> None:
  for name, value in (("num_steps", num_steps), ("pool_per_class", pool_per_class),
                      ("batch_size", batch_size)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise field_error(name, f"must be a positive integer, got {value!r}")
  if pool_per_class < 10:  # HOLDOUT of it held out: at least one image per class
    raise field_error("pool_per_class", f"must be at least 10, got {pool_per_class}")
  if not isinstance(percentile, (int, float)) or not 0 < percentile <= 100:
    raise field_error("percentile", f"must be in (0, 100], got {percentile!r}")


def split_blocks(n: int, blocks: int, rng) -> tuple[np.ndarray, np.ndarray]:
  """(training, held-out) indices of n items in `blocks` equal consecutive blocks (the pool's
  classes): HOLDOUT of each block, at least one, held out at random."""
  size = n // blocks
  hold = max(1, int(HOLDOUT * size))
  orders = [b * size + rng.permutation(size) for b in range(blocks)]
  return (np.concatenate([o[hold:] for o in orders]), np.concatenate([o[:hold] for o in orders]))


def pools_of(real, real_y, fake, fake_y, rng, fake_blocks: int = 1) -> tuple[dict, dict]:
  """(training pools, held-out pools): images in [-1, 1], HOLDOUT of each kept out (of each of
  the fake pool's `fake_blocks` classes)."""
  def pick(x, y, idx):
    return jnp.asarray(x[idx]), None if y is None else jnp.asarray(y[idx])
  real_train, real_held = split_blocks(len(real), 1, rng)
  fake_train, fake_held = split_blocks(len(fake), fake_blocks, rng)
  (rt, ryt), (rh, ryh) = pick(real, real_y, real_train), pick(real, real_y, real_held)
  (ft, fyt), (fh, fyh) = pick(fake, fake_y, fake_train), pick(fake, fake_y, fake_held)
  return ({"real": rt, "real_y": ryt, "fake": ft, "fake_y": fyt},
          {"real": rh, "real_y": ryh, "fake": fh, "fake_y": fyh})


def g_pool(draw, num_classes: int, pool_per_class: int):
  """(images in [-1, 1], labels or None): the sampling G's images from the pool's own seeds."""
  if not num_classes:
    return draw(pool_per_class * 10, POOL_SEED, None) * 2.0 - 1.0, None
  images = [draw(pool_per_class, POOL_SEED + k, k) for k in range(num_classes)]
  return np.concatenate(images) * 2.0 - 1.0, np.repeat(np.arange(num_classes), pool_per_class)


def train_ratio(net, pools: dict, num_steps: int, batch_size: int, seed: int, log) -> RatioState:
  """The ratio network after num_steps Adam(2e-4, 0.5) steps, CHUNK steps per dispatch."""
  tx = optax.adam(2e-4, b1=0.5)
  state = init_ratio_state(net, tx, jax.random.key(seed), pools["real"].shape[1:])
  base_key = jax.random.fold_in(jax.random.key(seed), 1)
  chunk = compiled_chunk(net, tx, batch_size)
  for done in range(0, num_steps, CHUNK):
    n = min(CHUNK, num_steps - done)
    state, metrics = chunk(state, pools, base_key, n)
    log(f"step {int(state.step)}: train BCE {float(np.mean(metrics['loss'][:n])):.3f}")
  return state


def fit(workdir, num_steps: int = 3000, pool_per_class: int = 6000, percentile: float = 90.0,
        batch_size: int = 64, seed: int = 0, step: int | None = None, log=print,
        data_dir: str | None = None, channels=RATIO_CHANNELS) -> dict:
  """Fits the density-ratio network to a GAN run's G (at `step`; None: the newest) and writes
  it with its thresholds to workdir/drs. Returns the record written to drs/drs.json.

  data_dir: where the training images are (None: the run's config.data_dir, else the usual
  search). channels: the ratio network's convolutions (the default is what the documented
  figures used; tests fit narrower ones)."""
  check_fit_args(num_steps, pool_per_class, percentile, batch_size)
  if not Path(workdir).is_dir():
    raise WorkdirError(f"workdir {workdir} does not exist")
  out = drs_dir(workdir)
  if out.exists() and any(out.iterdir()):
    raise WorkdirError(f"{out} already holds a DRS fit; move it away to fit again")
  t0 = time.perf_counter()
  draws = gan_draws(workdir, step)
  g_step, num_classes = draws.step, draws.num_classes
  config = draws.config
  spec = image_sets.DataSpec.of(config)._replace(
      data_dir=data_dir if data_dir is not None else config.data_dir or None)
  real, real_y = image_sets.load_arrays(spec, "train")
  fake, fake_y = g_pool(draws.draw, num_classes, pool_per_class)
  train_pools, held_out = pools_of(scale_to_tanh_range(real),
                                   real_y if num_classes else None, fake, fake_y,
                                   np.random.default_rng(seed), max(num_classes, 1))
  log(f"pool: {len(fake)} images of G at step {g_step} in {time.perf_counter() - t0:.0f} s")
  net = ratio_network(num_classes, channels)
  state = train_ratio(net, train_pools, num_steps, batch_size, seed, log)
  fit_metrics = holdout_fit(net, state.params, held_out)
  # Thresholds and acceptance from held-out images: the network has seen (and pushed down)
  # the training pool's logits, so those would set M too low and promise too much.
  held_y = None if fake_y is None else np.asarray(held_out["fake_y"])
  held_logits = logits_N(net, state.params, held_out["fake"], held_out["fake_y"])
  thresholds = thresholds_C(held_logits, held_y, percentile, num_classes)
  accept = [float(accept_probs(held_logits if held_y is None else held_logits[held_y == k],
                               thresholds[k]).mean()) for k in range(len(thresholds))]
  save_params(out, g_step, num_classes, channels, state.params)
  record = {"workdir": str(workdir), "g_step": g_step, "num_classes": num_classes,
            "channels": list(channels), "image_shape": list(config.image_shape),
            "num_steps": num_steps,
            "pool_per_class": pool_per_class, "batch_size": batch_size, "seed": seed,
            "percentile": percentile, "thresholds": thresholds.tolist(),
            "holdout": fit_metrics, "expected_acceptance": accept,
            "fit_s": round(time.perf_counter() - t0, 1)}
  write_atomic(out / RECORD, json.dumps(record, indent=2))  # last: its presence marks a whole fit
  return record


def fit_record(g_step: int, num_classes: int, channels) -> dict:
  """The checkpoint record of a fit: which G it belongs to and the network's shape."""
  return checkpoint.make_record("drs", {"g_step": g_step, "num_classes": num_classes,
                                        "channels": list(channels)})


def save_params(out: Path, g_step: int, num_classes: int, channels, params) -> None:
  manager = checkpoint.open_manager(out, max_to_keep=None)
  try:
    checkpoint.save(manager, g_step, {"params": params},
                    fit_record(g_step, num_classes, channels))
  finally:
    manager.close()


def read_record(workdir) -> dict:
  """The drs.json of workdir's DRS fit, or a one-line error saying how to make one."""
  path = drs_dir(workdir) / RECORD
  if not path.is_file():
    raise CheckpointError(f"--drs: no DRS fit in {drs_dir(workdir)}; make one with "
                          f"python experiments/fit_drs.py --workdir {workdir}")
  try:
    return json.loads(path.read_text())
  except (OSError, json.JSONDecodeError) as exc:
    raise CheckpointError(f"--drs: cannot read {path}: {exc}") from None


def load(workdir, g_step: int):
  """(network, params, record) of the DRS fit in workdir/drs, which must be for `g_step`'s G."""
  record = read_record(workdir)
  if record.get("g_step") != g_step:
    raise ConfigError(f"--drs: {drs_dir(workdir)} was fitted to the G of step "
                      f"{record.get('g_step')}, not step {g_step}")
  net = ratio_network(record["num_classes"], record["channels"])
  shape = example_shape(record["image_shape"])
  abstract = sharding.abstract_replicated(jax.eval_shape(
      lambda: {"params": init_ratio_state(net, optax.adam(1.0), jax.random.key(0),
                                          shape).params}), sharding.make_mesh(1))
  manager = checkpoint.open_manager(drs_dir(workdir), max_to_keep=None, create=False)
  try:
    params = checkpoint.restore_step(manager, g_step, abstract,
                                     fit_record(g_step, record["num_classes"],
                                                record["channels"]))["params"]
  finally:
    manager.close()
  return net, params, record


ACCEPT_STREAM = 2**31 - 1  # the acceptance draws' key: fold_in of the noise seed's key by this


def rejecting_draw(workdir, chunk, g_step: int, num_classes: int, shape=(28, 28)):
  """fn(num, seed, label) -> num images G made and DRS kept; chunk(seed, label, i) is the i-th
  block of G's images for that seed's noise (genjax.gan.sampling.gan_draws); shape: one
  image's."""
  net, params, record = load(workdir, g_step)
  thresholds = np.asarray(record["thresholds"])

  def draw_kept(num: int, seed: int, label: int | None) -> np.ndarray:
    kept, num_kept, seen, i = [], 0, 0, 0
    accept_key = jax.random.fold_in(jax.random.key(seed), ACCEPT_STREAM)
    while num_kept < num:
      if seen >= MAX_CANDIDATES * num:
        raise SamplingError(f"--drs kept {num_kept} of {seen} candidates (class {label}); "
                            "refit with a lower --percentile")
      images = chunk(seed, label, i)
      labels = None if label is None else np.full(len(images), label)
      probs = accept_probs(logits_N(net, params, images * 2.0 - 1.0, labels),
                           thresholds[label or 0])
      u = np.asarray(jax.random.uniform(jax.random.fold_in(accept_key, i), (len(images),)))
      kept.append(images[u < probs])
      num_kept, seen, i = num_kept + len(kept[-1]), seen + len(images), i + 1
    return np.concatenate(kept)[:num]

  def draw(num: int, seed: int, label: int | None) -> np.ndarray:
    if label is not None or not num_classes:
      return draw_kept(num, seed, label)
    # A conditional run without a label: each class from its own noise, interleaved i mod C.
    out = np.empty((num, *shape), np.float32)
    for k in range(min(num, num_classes)):
      out[k::num_classes] = draw_kept(len(out[k::num_classes]),
                                      class_seed(seed, k, num_classes), k)
    return out

  return draw
