"""GAN networks as pure flax.linen modules: the tutorial's MLPs (Keras defaults) and a DCGAN.

Every network optionally takes class labels (the tutorial's one-hot vectors): generators
concatenate them to the noise, discriminators use a projection head (Miyato & Koyama 2018).
"""

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genjax.nn.layers import ClassBatchNorm, Dense, blur_2x, patches_3x3, upsample_2x

# Keras Dense: glorot-uniform kernels, zero biases (flax's default is lecun-normal).
KERAS_KERNEL_INIT = nn.initializers.glorot_uniform()
LEAKY_SLOPE = 0.2


def keras_dense(features: int, dtype: Any = jnp.float32, **kwargs) -> Dense:
  """Float32 parameters always; `dtype` is the compute dtype (bfloat16 for mixed precision)."""
  return Dense(features, kernel_init=KERAS_KERNEL_INIT, dtype=dtype, **kwargs)


def with_one_hot(z_BxZ: jnp.ndarray, labels_B, num_classes: int) -> jnp.ndarray:
  """[z, one_hot(label)] for a conditional network; z unchanged for an unconditional one."""
  if not num_classes:
    return z_BxZ
  if labels_B is None:
    raise ValueError("a conditional generator needs labels_B")
  return jnp.concatenate([z_BxZ, jax.nn.one_hot(labels_B, num_classes, dtype=z_BxZ.dtype)], -1)


def projection_logits(module: nn.Module, h_BxD: jnp.ndarray, labels_B, out: Dense) -> jnp.ndarray:
  """out(h) + <embed(y), h>: the projection discriminator's class-conditional logit."""
  logits_B = out(h_BxD)[:, 0]
  if module.num_classes:
    if labels_B is None:
      raise ValueError("a conditional discriminator needs labels_B")
    embed_CxD = module.param("label_embedding", nn.initializers.normal(0.02),
                             (module.num_classes, h_BxD.shape[-1]))
    logits_B = logits_B + jnp.sum(embed_CxD[labels_B].astype(h_BxD.dtype) * h_BxD, axis=-1)
  return logits_B.astype(jnp.float32)  # losses in float32


def image_out(h_BxHxWxC: jnp.ndarray) -> jnp.ndarray:
  """float32 images, B x H x W for one channel (the data's layout), else B x H x W x C."""
  return (h_BxHxWxC[..., 0] if h_BxHxWxC.shape[-1] == 1 else h_BxHxWxC).astype(jnp.float32)


def channels_last(x: jnp.ndarray) -> jnp.ndarray:
  """B x H x W x C images from the data's layout (B x H x W for one channel)."""
  return x[..., None] if x.ndim == 3 else x


class Generator(nn.Module):
  """Noise z_BxZ -> images in [-1, 1] (B x H x W, or B x H x W x C in colour): Dense ->
  LeakyReLU -> BatchNorm per hidden layer."""

  hidden: Sequence[int] = (256, 512, 1024)
  image_shape: tuple[int, int, int] = (28, 28, 1)  # H, W, C
  bn_momentum: float = 0.8  # Keras BatchNormalization(momentum=0.8)
  bn_epsilon: float = 1e-3  # Keras' default epsilon, not flax's 1e-5
  num_classes: int = 0  # >0: conditional on labels_B
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, z_BxZ: jnp.ndarray, train: bool, labels_B=None) -> jnp.ndarray:
    h = with_one_hot(z_BxZ, labels_B, self.num_classes)
    for width in self.hidden:
      h = keras_dense(width, self.dtype)(h)
      h = nn.leaky_relu(h, LEAKY_SLOPE)
      # train=False is Keras' predict(): running averages, no stats update.
      h = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                       epsilon=self.bn_epsilon, dtype=self.dtype)(h)
    height, width, channels = self.image_shape
    h = keras_dense(height * width * channels, self.dtype)(h)
    return image_out(jnp.tanh(h).reshape((z_BxZ.shape[0], height, width, channels)))


class Discriminator(nn.Module):
  """Images_BxHxW -> logits_B of 'real' (sigmoid is folded into the loss for stability)."""

  hidden: Sequence[int] = (512, 256)
  num_classes: int = 0
  spectral_norm: bool = False
  dtype: Any = jnp.float32  # compute dtype; parameters stay float32

  @nn.compact
  def __call__(self, x_BxHxW: jnp.ndarray, labels_B=None, update_stats: bool = False):
    dense = lambda n: keras_dense(n, self.dtype, spectral_norm=self.spectral_norm,  # noqa: E731
                                  update_stats=update_stats)
    h = x_BxHxW.reshape((x_BxHxW.shape[0], -1))
    for width in self.hidden:
      h = nn.leaky_relu(dense(width)(h), LEAKY_SLOPE)
    return projection_logits(self, h, labels_B, dense(1))


class DCGANGenerator(nn.Module):
  """z_BxZ -> Dense to (H/2^k)x(W/2^k)xC0 -> [2x up-convolution, BatchNorm, ReLU]... -> HxW tanh
  (k = len(channels): 7x7 -> 28x28 for MNIST's two).

  The up-convolutions are sub-pixel convolutions (the matmul form of a stride-2 transposed
  convolution): XLA:CPU runs them several times faster than lax.conv_transpose.
  """

  channels: Sequence[int] = (128, 64)  # at 7x7, 14x14, ...; the last layer emits the image's
  image_shape: tuple[int, int, int] = (28, 28, 1)  # H, W, C
  bn_momentum: float = 0.9
  num_classes: int = 0
  refine_channels: int = 0  # >0: upsample to this many channels, then a full-size 3x3 conv
  blur: bool = False  # low-pass each upsampled feature map (before its BatchNorm)
  class_bn: bool = False  # conditional: every BatchNorm's scale and offset depend on the label
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z_BxZ: jnp.ndarray, train: bool, labels_B=None) -> jnp.ndarray:
    def bn():
      if self.class_bn and self.num_classes:
        norm = ClassBatchNorm(self.num_classes, not train, self.bn_momentum, self.dtype)
        return lambda h: norm(h, labels_B)
      return nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                          dtype=self.dtype)
    scale = 2 ** len(self.channels)
    side_h, side_w = self.image_shape[0] // scale, self.image_shape[1] // scale
    h = with_one_hot(z_BxZ, labels_B, self.num_classes)
    h = Dense(side_h * side_w * self.channels[0], dtype=self.dtype, name="project")(h)
    h = nn.relu(bn()(h)).reshape((z_BxZ.shape[0], side_h, side_w, self.channels[0]))
    dense = lambda n, name: Dense(n, dtype=self.dtype, name=name)  # noqa: E731
    up = lambda h, c, name: (blur_2x if self.blur else lambda x: x)(  # noqa: E731
        upsample_2x(h, c, name, dense))
    for i, c in enumerate(self.channels[1:]):
      h = nn.relu(bn()(up(h, c, f"up_{i}")))
    channels = self.image_shape[2]
    if self.refine_channels:
      h = nn.relu(bn()(up(h, self.refine_channels, "up_refine")))
      out = dense(channels, "out")(patches_3x3(h, 1))
    else:
      out = upsample_2x(h, channels, "out", dense)
    return image_out(jnp.tanh(out))


def minibatch_stddev(h_BxHxWxC: jnp.ndarray, group: int) -> jnp.ndarray:
  """h with one more channel: the mean feature std within its group of `group` consecutive
  examples (ProGAN, Karras et al. 2018), so D can see a batch with too little variety.

  Consecutive groups never mix the real and fake halves of a joint D call."""
  b, hh, ww, _ = h_BxHxWxC.shape
  group = math.gcd(group, b)  # init's batch of one; training batches are validated to divide
  h_GxNxHxWxC = h_BxHxWxC.astype(jnp.float32).reshape(b // group, group, *h_BxHxWxC.shape[1:])
  std_G = jnp.sqrt(h_GxNxHxWxC.var(axis=1) + 1e-8).mean(axis=(1, 2, 3))
  std_Bx1 = jnp.repeat(std_G, group)[:, None, None, None]
  return jnp.concatenate([h_BxHxWxC, jnp.broadcast_to(std_Bx1, (b, hh, ww, 1)).astype(
      h_BxHxWxC.dtype)], axis=-1)


class DCGANDiscriminator(nn.Module):
  """Images (B x H x W, or B x H x W x C) -> [3x3 stride-2 convolution, LeakyReLU 0.2]... ->
  Dense logit (+ projection)."""

  channels: Sequence[int] = (64, 128)  # 28 -> 14 -> 7
  num_classes: int = 0
  spectral_norm: bool = False
  mbstd_group: int = 0  # >0: a minibatch-stddev channel before the logit (group size)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxHxW: jnp.ndarray, labels_B=None, update_stats: bool = False):
    dense = lambda n, name: Dense(n, spectral_norm=self.spectral_norm,  # noqa: E731
                                  update_stats=update_stats, dtype=self.dtype, name=name)
    h = channels_last(x_BxHxW).astype(self.dtype)
    for i, c in enumerate(self.channels):
      h = nn.leaky_relu(dense(c, f"conv_{i}")(patches_3x3(h, 2)), LEAKY_SLOPE)
    if self.mbstd_group:
      h = minibatch_stddev(h, self.mbstd_group)
    h = h.reshape((h.shape[0], -1))
    return projection_logits(self, h, labels_B, dense(1, "out"))
