"""The tutorial's MLP GAN as pure flax.linen modules, with the Keras defaults it relied on."""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

# Keras Dense: glorot-uniform kernels, zero biases (flax's default is lecun-normal).
KERAS_KERNEL_INIT = nn.initializers.glorot_uniform()
KERAS_BIAS_INIT = nn.initializers.zeros
LEAKY_SLOPE = 0.2


def keras_dense(features: int, dtype: Any = jnp.float32) -> nn.Dense:
  """Float32 parameters always; `dtype` is the compute dtype (bfloat16 for mixed precision)."""
  return nn.Dense(features, kernel_init=KERAS_KERNEL_INIT, bias_init=KERAS_BIAS_INIT, dtype=dtype)


class Generator(nn.Module):
  """Noise z_BxZ -> images_BxHxW in [-1, 1]: Dense -> LeakyReLU -> BatchNorm per hidden layer."""

  hidden: Sequence[int] = (256, 512, 1024)
  image_shape: tuple[int, int] = (28, 28)
  bn_momentum: float = 0.8  # Keras BatchNormalization(momentum=0.8)
  bn_epsilon: float = 1e-3  # Keras' default epsilon, not flax's 1e-5
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, z_BxZ: jnp.ndarray, train: bool) -> jnp.ndarray:
    h = z_BxZ
    for width in self.hidden:
      h = keras_dense(width, self.dtype)(h)
      h = nn.leaky_relu(h, LEAKY_SLOPE)
      # train=False is Keras' predict(): running averages, no stats update.
      h = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                       epsilon=self.bn_epsilon, dtype=self.dtype)(h)
    h = keras_dense(self.image_shape[0] * self.image_shape[1], self.dtype)(h)
    return jnp.tanh(h).astype(jnp.float32).reshape((z_BxZ.shape[0], *self.image_shape))


class Discriminator(nn.Module):
  """Images_BxHxW -> logits_B of 'real' (sigmoid is folded into the loss for stability)."""

  hidden: Sequence[int] = (512, 256)
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, x_BxHxW: jnp.ndarray) -> jnp.ndarray:
    h = x_BxHxW.reshape((x_BxHxW.shape[0], -1))
    for width in self.hidden:
      h = nn.leaky_relu(keras_dense(width, self.dtype)(h), LEAKY_SLOPE)
    return keras_dense(1, self.dtype)(h)[:, 0].astype(jnp.float32)  # losses in float32
