"""Pure, jitted AE/VAE/IWAE training steps: (state, data, key) -> (state, metrics).

Every metric is a batch mean in nats: `recon` is -log p(x|z), `kl` is KL(q(z|x) || p(z)),
`neg_elbo` their sum, and `loss` what the optimizer minimizes (beta-weighted for the VAE,
the negative k-sample bound for the IWAE, the reconstruction term for the autoencoder).
A conditional model sees one-hot labels y_BxC too: its bounds are on log p(x|y).
"""

import functools

import jax
import optax

from genjax.core import runner, sharding
from genjax.core.feed import Streamed
from genjax.vae import data as vae_data, losses as vae_losses
from genjax.vae.state import VAESetup, VAEState, decode, decoder_log_prob, encode, log_weights_KxB

METRIC_NAMES = {"vae": ("loss", "neg_elbo", "kl", "recon"),
                "iwae": ("loss", "neg_elbo", "kl", "recon"),
                "ae": ("loss", "recon")}


def vae_objective(setup: VAESetup, params, x_BxHxW, key, y_BxC=None):
  """beta-weighted negative ELBO: one reparameterized sample, analytic KL."""
  mean_BxZ, logvar_BxZ = encode(setup, params, x_BxHxW, y_BxC)
  z_BxZ = vae_losses.reparameterize(key, mean_BxZ, logvar_BxZ)
  recon_B = -decoder_log_prob(setup, params, decode(setup, params, z_BxZ, y_BxC), x_BxHxW)
  kl_B = vae_losses.gaussian_kl_B(mean_BxZ, logvar_BxZ)
  loss_B = vae_losses.neg_elbo_B(-recon_B, kl_B, float(setup.recipe.beta))
  return loss_B.mean(), {"neg_elbo": (recon_B + kl_B).mean(), "kl": kl_B.mean(),
                         "recon": recon_B.mean()}


def iwae_objective(setup: VAESetup, params, x_BxHxW, key, y_BxC=None):
  """Negative k-sample importance-weighted bound; the ELBO terms come from the same k draws."""
  mean_BxZ, logvar_BxZ = encode(setup, params, x_BxHxW, y_BxC)
  log_px_KxB, log_w_KxB = log_weights_KxB(setup, params, x_BxHxW, mean_BxZ, logvar_BxZ, key,
                                          setup.recipe.iwae_k, y_BxC)
  recon, kl = -log_px_KxB.mean(), vae_losses.gaussian_kl_B(mean_BxZ, logvar_BxZ).mean()
  loss = -vae_losses.iwae_bound_B(log_w_KxB).mean()
  return loss, {"neg_elbo": recon + kl, "kl": kl, "recon": recon}


def ae_objective(setup: VAESetup, params, x_BxHxW, key, y_BxC=None):
  """Reconstruction negative log-likelihood of the deterministic code."""
  del key
  code_BxZ, _ = encode(setup, params, x_BxHxW, y_BxC)
  recon_B = -decoder_log_prob(setup, params, decode(setup, params, code_BxZ, y_BxC), x_BxHxW)
  return recon_B.mean(), {"recon": recon_B.mean()}


OBJECTIVES = {"vae": vae_objective, "iwae": iwae_objective, "ae": ae_objective}


def batch_indices(setup: VAESetup, base_key, step, num_examples: int):
  """The B training rows step `step` reads: the draws sample_batch makes in the step."""
  batch_key = jax.random.split(jax.random.fold_in(base_key, step))[0]
  idx_key = jax.random.split(batch_key)[0]
  return jax.random.randint(idx_key, (setup.recipe.batch_size,), 0, num_examples)


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def steps_indices(setup: VAESetup, base_key, first_step, max_steps: int, num_examples: int):
  """max_steps x B: batch_indices of first_step, first_step + 1, ..."""
  steps_K = first_step + jax.numpy.arange(max_steps)
  return jax.vmap(lambda step: batch_indices(setup, base_key, step, num_examples))(steps_K)


def sample_batch(setup: VAESetup, data, i, key: jax.Array):
  """(x_BxHxW, y_BxC): a uniform draw with replacement from the pixels on the device (data =
  (pixels, labels or None)), or a streamed chunk's i-th batch; made model inputs on device
  (fresh bits if dynamic), with one-hot labels (None without labels)."""
  idx_key, bits_key = jax.random.split(key)
  if isinstance(data, Streamed):
    pixels_B, labels_B = (None if a is None else a[i] for a in data.arrays)
  else:
    pixels_NxHxW, labels_N = data
    idx_B = jax.random.randint(idx_key, (setup.recipe.batch_size,), 0, pixels_NxHxW.shape[0])
    pixels_B, labels_B = pixels_NxHxW[idx_B], None if labels_N is None else labels_N[idx_B]
  x_BxHxW = vae_data.to_inputs(pixels_B, setup.recipe.binarization, bits_key)
  y_BxC = None if labels_B is None else vae_data.one_hot(labels_B, setup.num_classes)
  # With a mesh each device takes a slice of the same global batch; XLA all-reduces gradients.
  return jax.tree.map(lambda a: sharding.constrain_batch(a, setup.mesh), (x_BxHxW, y_BxC))


def train_step(setup: VAESetup, state: VAEState, pixels_NxHxW, base_key, labels_N=None, i=0):
  """One Adam step; its randomness is fold_in(base_key, step), so any resume replays it.
  pixels_NxHxW (labels_N for a conditional setup): on the device, or a chunk's Streamed
  batches (labels inside; this step's are row i)."""
  streamed = isinstance(pixels_NxHxW, Streamed)
  data = pixels_NxHxW if streamed else (pixels_NxHxW, labels_N)
  labelled = (data.arrays if streamed else data)[1] is not None
  if setup.conditional != labelled:
    raise ValueError("a conditional setup needs labels_N; an unconditional one takes none")
  batch_key, loss_key = jax.random.split(jax.random.fold_in(base_key, state.step))
  x_BxHxW, y_BxC = sample_batch(setup, data, i, batch_key)
  objective = OBJECTIVES[setup.recipe.model]
  (loss, metrics), grads = jax.value_and_grad(objective, argnums=1, has_aux=True)(
      setup, state.params, x_BxHxW, loss_key, y_BxC)
  updates, opt_state = setup.tx.update(grads, state.opt_state, state.params)
  state = VAEState(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                   opt_state=opt_state)
  return state, {"loss": loss, **metrics}


def train_chunk(setup: VAESetup, state: VAEState, pixels_NxHxW, base_key, max_steps: int,
                num_steps, labels_N=None):
  """Runs `num_steps` (traced, <= max_steps) steps in one dispatch; donates `state`.

  A conditional setup needs the integer labels_N of the pixels, on device like them;
  pixels_NxHxW may also be a chunk's Streamed batches (labels inside).
  """
  streamed = isinstance(pixels_NxHxW, Streamed)
  return compiled_chunk(setup, max_steps, streamed)(state, pixels_NxHxW, base_key, num_steps,
                                                   labels_N)


@functools.lru_cache(maxsize=None)
def compiled_chunk(setup: VAESetup, max_steps: int, streamed: bool = False):
  """The jitted chunk: replicated in/out shardings when the setup has a mesh."""

  def chunk(state, pixels_NxHxW, base_key, num_steps, labels_N=None):
    step_fn = lambda s, i: train_step(setup, s, pixels_NxHxW, base_key, labels_N, i)  # noqa: E731
    return runner.run_steps(step_fn, state, num_steps, max_steps,
                            METRIC_NAMES[setup.recipe.model], indexed=True)

  return runner.jit_chunk(chunk, setup.mesh, streamed)
