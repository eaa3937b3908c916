"""Pure, jitted AE/VAE/IWAE training steps: (state, data, key) -> (state, metrics).

Every metric is a batch mean in nats: `recon` is -log p(x|z), `kl` is KL(q(z|x) || p(z)),
`neg_elbo` their sum, and `loss` what the optimizer minimizes (beta-weighted for the VAE,
the negative k-sample bound for the IWAE, the reconstruction term for the autoencoder).
"""

import functools

import jax
import jax.numpy as jnp
import optax

from genjax import chunks, sharding, vae_data, vae_losses
from genjax.vae_state import VAESetup, VAEState, decode, decoder_log_prob, encode, log_weights_KxB

METRIC_NAMES = {"vae": ("loss", "neg_elbo", "kl", "recon"),
                "iwae": ("loss", "neg_elbo", "kl", "recon"),
                "ae": ("loss", "recon")}


def vae_objective(setup: VAESetup, params, x_BxHxW, key):
  """beta-weighted negative ELBO: one reparameterized sample, analytic KL."""
  mean_BxZ, logvar_BxZ = encode(setup, params, x_BxHxW)
  z_BxZ = vae_losses.reparameterize(key, mean_BxZ, logvar_BxZ)
  recon_B = -decoder_log_prob(setup, params, decode(setup, params, z_BxZ), x_BxHxW)
  kl_B = vae_losses.gaussian_kl_B(mean_BxZ, logvar_BxZ)
  loss_B = vae_losses.neg_elbo_B(-recon_B, kl_B, setup.beta)
  return loss_B.mean(), {"neg_elbo": (recon_B + kl_B).mean(), "kl": kl_B.mean(),
                         "recon": recon_B.mean()}


def iwae_objective(setup: VAESetup, params, x_BxHxW, key):
  """Negative k-sample importance-weighted bound; the ELBO terms come from the same k draws."""
  mean_BxZ, logvar_BxZ = encode(setup, params, x_BxHxW)
  log_px_KxB, log_w_KxB = log_weights_KxB(setup, params, x_BxHxW, mean_BxZ, logvar_BxZ, key,
                                          setup.iwae_k)
  recon, kl = -log_px_KxB.mean(), vae_losses.gaussian_kl_B(mean_BxZ, logvar_BxZ).mean()
  loss = -vae_losses.iwae_bound_B(log_w_KxB).mean()
  return loss, {"neg_elbo": recon + kl, "kl": kl, "recon": recon}


def ae_objective(setup: VAESetup, params, x_BxHxW, key):
  """Reconstruction negative log-likelihood of the deterministic code."""
  del key
  code_BxZ, _ = encode(setup, params, x_BxHxW)
  recon_B = -decoder_log_prob(setup, params, decode(setup, params, code_BxZ), x_BxHxW)
  return recon_B.mean(), {"recon": recon_B.mean()}


OBJECTIVES = {"vae": vae_objective, "iwae": iwae_objective, "ae": ae_objective}


def sample_batch(setup: VAESetup, pixels_NxHxW, key: jax.Array) -> jnp.ndarray:
  """A uniform draw with replacement, made model inputs on device (fresh bits if dynamic)."""
  idx_key, bits_key = jax.random.split(key)
  idx_B = jax.random.randint(idx_key, (setup.batch_size,), 0, pixels_NxHxW.shape[0])
  x_BxHxW = vae_data.to_inputs(pixels_NxHxW[idx_B], setup.binarization, bits_key)
  # With a mesh each device takes a slice of the same global batch; XLA all-reduces gradients.
  return sharding.constrain_batch(x_BxHxW, setup.mesh)


def train_step(setup: VAESetup, state: VAEState, pixels_NxHxW, base_key):
  """One Adam step; its randomness is fold_in(base_key, step), so any resume replays it."""
  batch_key, loss_key = jax.random.split(jax.random.fold_in(base_key, state.step))
  x_BxHxW = sample_batch(setup, pixels_NxHxW, batch_key)
  objective = OBJECTIVES[setup.model]
  (loss, metrics), grads = jax.value_and_grad(objective, argnums=1, has_aux=True)(
      setup, state.params, x_BxHxW, loss_key)
  updates, opt_state = setup.tx.update(grads, state.opt_state, state.params)
  state = VAEState(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                   opt_state=opt_state)
  return state, {"loss": loss, **metrics}


def train_chunk(setup: VAESetup, state: VAEState, pixels_NxHxW, base_key, max_steps: int,
                num_steps):
  """Runs `num_steps` (traced, <= max_steps) steps in one dispatch; donates `state`."""
  return compiled_chunk(setup, max_steps)(state, pixels_NxHxW, base_key, num_steps)


@functools.lru_cache(maxsize=None)
def compiled_chunk(setup: VAESetup, max_steps: int):
  """The jitted chunk: replicated in/out shardings when the setup has a mesh."""

  def chunk(state, pixels_NxHxW, base_key, num_steps):
    step_fn = lambda s: train_step(setup, s, pixels_NxHxW, base_key)  # noqa: E731
    return chunks.run_steps(step_fn, state, num_steps, max_steps, METRIC_NAMES[setup.model])

  return chunks.jit_chunk(chunk, setup.mesh)
