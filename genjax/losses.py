"""Loss and metric functions: per example first, reduced by the caller's choice (mean)."""

import jax.numpy as jnp
import optax


def sigmoid_bce_B(logits_B: jnp.ndarray, label: float) -> jnp.ndarray:
  """Binary cross-entropy of sigmoid(logits) against a constant label, per example.

  Same mathematics as Keras' sigmoid + binary_crossentropy, but computed from logits
  so it neither saturates nor needs Keras' 1e-7 clipping.
  """
  return optax.sigmoid_binary_cross_entropy(logits_B, jnp.full_like(logits_B, label))


def binary_accuracy_B(logits_B: jnp.ndarray, label: float) -> jnp.ndarray:
  """1.0 where sigmoid(logits) > 0.5 agrees with the label (Keras' binary accuracy)."""
  predicted_real_B = logits_B > 0.0
  return (predicted_real_B == (label > 0.5)).astype(jnp.float32)


def discriminator_loss(logits_B: jnp.ndarray, label: float) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(mean BCE, mean accuracy) of a discriminator on a batch that is all `label`."""
  return sigmoid_bce_B(logits_B, label).mean(), binary_accuracy_B(logits_B, label).mean()


def generator_loss(fake_logits_B: jnp.ndarray) -> jnp.ndarray:
  """Non-saturating generator loss: the stacked model's BCE with fakes labelled real."""
  return sigmoid_bce_B(fake_logits_B, 1.0).mean()
