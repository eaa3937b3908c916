"""GAN losses and penalties: per example first (suffix _B), reduced by the caller (mean).

Each loss family splits the discriminator's objective into a term on real logits and one on
fake logits, so the tutorial's two separate D updates and a joint update share the maths.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax


def sigmoid_bce_B(logits_B: jnp.ndarray, label: float) -> jnp.ndarray:
  """Binary cross-entropy of sigmoid(logits) against a constant label, per example.

  Same mathematics as Keras' sigmoid + binary_crossentropy, but computed from logits
  so it neither saturates nor needs Keras' 1e-7 clipping.
  """
  return optax.sigmoid_binary_cross_entropy(logits_B, jnp.full_like(logits_B, label))


class Loss(NamedTuple):
  """One GAN loss family: D's terms on real and on fake logits, G's term on fake logits (each
  per example), and the output above which D calls an input real (for the accuracy metric)."""

  d_real: Callable
  d_fake: Callable
  g: Callable
  threshold: float = 0.0


LOSSES = {
    # The tutorial's: BCE with real=1, fake=0; G's non-saturating form labels fakes real.
    "nsgan": Loss(lambda r: sigmoid_bce_B(r, 1.0), lambda f: sigmoid_bce_B(f, 0.0),
                  lambda f: sigmoid_bce_B(f, 1.0)),
    # Least squares (Mao et al. 2017), targets a=0, b=c=1 on the raw output.
    "lsgan": Loss(lambda r: 0.5 * (r - 1.0) ** 2, lambda f: 0.5 * f ** 2,
                  lambda f: 0.5 * (f - 1.0) ** 2, threshold=0.5),
    # Hinge (Lim & Ye 2017; Miyato et al. 2018).
    "hinge": Loss(lambda r: jax.nn.relu(1.0 - r), lambda f: jax.nn.relu(1.0 + f), lambda f: -f),
    # Wasserstein critic (Arjovsky et al. 2017): needs a Lipschitz constraint (GP or SN).
    "wgan": Loss(lambda r: -r, lambda f: f, lambda f: -f),
}


def d_real_term_B(loss: str, logits_B: jnp.ndarray) -> jnp.ndarray:
  return LOSSES[loss].d_real(logits_B)


def d_fake_term_B(loss: str, logits_B: jnp.ndarray) -> jnp.ndarray:
  return LOSSES[loss].d_fake(logits_B)


def g_term_B(loss: str, fake_logits_B: jnp.ndarray) -> jnp.ndarray:
  return LOSSES[loss].g(fake_logits_B)


def accuracy_B(loss: str, logits_B: jnp.ndarray, label: float) -> jnp.ndarray:
  """1.0 where D's decision agrees with the label (Keras' binary accuracy for nsgan)."""
  predicted_real_B = logits_B > LOSSES[loss].threshold
  return (predicted_real_B == (label > 0.5)).astype(jnp.float32)


def discriminator_loss(logits_B: jnp.ndarray, label: float, loss: str = "nsgan"):
  """(mean loss, mean accuracy) of a discriminator on a batch that is all `label`."""
  term = d_real_term_B if label > 0.5 else d_fake_term_B
  return term(loss, logits_B).mean(), accuracy_B(loss, logits_B, label).mean()


def generator_loss(fake_logits_B: jnp.ndarray, loss: str = "nsgan") -> jnp.ndarray:
  """G's loss on D's logits of its fakes (non-saturating for nsgan)."""
  return g_term_B(loss, fake_logits_B).mean()


def input_grad_sq_norm_B(d_fn, x_BxHxW: jnp.ndarray) -> jnp.ndarray:
  """||d D(x_i) / d x_i||² per example (examples are independent, so one grad of the sum)."""
  grads = jax.grad(lambda x: d_fn(x).sum())(x_BxHxW)
  return jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=-1)


def gradient_penalty_B(d_fn, real_BxHxW, fake_BxHxW, key: jax.Array) -> jnp.ndarray:
  """WGAN-GP (Gulrajani et al. 2017): (||grad D(x_hat)|| - 1)² on random interpolates."""
  eps_B = jax.random.uniform(key, (real_BxHxW.shape[0],) + (1,) * (real_BxHxW.ndim - 1))
  x_hat = eps_B * real_BxHxW + (1.0 - eps_B) * fake_BxHxW
  # sqrt(sq + tiny): the norm's gradient stays finite when a gradient is exactly zero.
  return (jnp.sqrt(input_grad_sq_norm_B(d_fn, x_hat) + 1e-12) - 1.0) ** 2


def r1_penalty_B(d_fn, real_BxHxW) -> jnp.ndarray:
  """R1 (Mescheder et al. 2018): ||grad D(x)||² on real data; weighted by gamma / 2."""
  return input_grad_sq_norm_B(d_fn, real_BxHxW)


def consistency_B(logits_B: jnp.ndarray, augmented_logits_B: jnp.ndarray) -> jnp.ndarray:
  """CR-GAN (Zhang et al. 2020): D's logit should not move when its input is augmented."""
  return (logits_B - augmented_logits_B) ** 2


def mode_seeking_P(fakes_BxHxW: jnp.ndarray, z_BxZ: jnp.ndarray) -> jnp.ndarray:
  """MSGAN (Mao et al. 2019): 1 / (image distance / noise distance) per pair, to be minimized.

  Pairs row i with row i + B/2, which share a label in conditional runs; G lowers the term by
  making different noise give different images, which counters within-class mode collapse.
  """
  x1, x2 = jnp.split(fakes_BxHxW.reshape(fakes_BxHxW.shape[0], -1), 2)
  z1, z2 = jnp.split(z_BxZ, 2)
  ratio_P = jnp.mean(jnp.abs(x1 - x2), -1) / jnp.mean(jnp.abs(z1 - z2), -1)
  return 1.0 / (ratio_P + 1e-5)
