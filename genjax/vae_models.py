"""Autoencoder and VAE networks as flax.linen modules: MLP (the classic benchmark) and conv."""

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable] = {"tanh": jnp.tanh, "softplus": nn.softplus, "relu": nn.relu}
IMAGE_SHAPE = (28, 28)


class MLPEncoder(nn.Module):
  """Images_BxHxW -> (mean_BxZ, logvar_BxZ), or (code_BxZ, None) when not stochastic."""

  hidden: Sequence[int] = (200, 200)
  latent_dim: int = 50
  activation: str = "tanh"
  stochastic: bool = True

  @nn.compact
  def __call__(self, x_BxHxW: jnp.ndarray):
    h = x_BxHxW.reshape((x_BxHxW.shape[0], -1))
    for width in self.hidden:
      h = ACTIVATIONS[self.activation](nn.Dense(width)(h))
    return gaussian_heads(h, self.latent_dim, self.stochastic)


class MLPDecoder(nn.Module):
  """Codes_BxZ -> raw outputs_BxHxW: Bernoulli logits, or Gaussian means before a sigmoid."""

  hidden: Sequence[int] = (200, 200)
  activation: str = "tanh"
  image_shape: tuple[int, int] = IMAGE_SHAPE

  @nn.compact
  def __call__(self, z_BxZ: jnp.ndarray) -> jnp.ndarray:
    h = z_BxZ
    for width in reversed(tuple(self.hidden)):  # mirrors the encoder
      h = ACTIVATIONS[self.activation](nn.Dense(width)(h))
    h = nn.Dense(self.image_shape[0] * self.image_shape[1])(h)
    return h.reshape((z_BxZ.shape[0], *self.image_shape))


def patches_3x3(h_BxHxWxC: jnp.ndarray, stride: int) -> jnp.ndarray:
  """The 3x3 'SAME' neighbourhoods of every stride-th pixel, stacked: B x H/s x W/s x 9C.

  A Dense layer on these is a 3x3 convolution. Written as slices and a matmul because
  XLA:CPU runs lax.conv about 10x slower inside while loops (jax-ml/jax#12868), and every
  training step here runs inside one.
  """
  height, width = h_BxHxWxC.shape[1:3]
  padded = jnp.pad(h_BxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return jnp.concatenate([padded[:, dy:dy + height:stride, dx:dx + width:stride]
                          for dy in range(3) for dx in range(3)], axis=-1)


def upsample_2x(h_BxHxWxC: jnp.ndarray, features: int, name: str) -> jnp.ndarray:
  """Sub-pixel convolution (Shi et al. 2016): a 3x3 conv to 4 x features, then depth-to-space."""
  b, height, width, _ = h_BxHxWxC.shape
  h = nn.Dense(4 * features, name=name)(patches_3x3(h_BxHxWxC, 1))
  h = h.reshape((b, height, width, 2, 2, features)).transpose((0, 1, 3, 2, 4, 5))
  return h.reshape((b, 2 * height, 2 * width, features))


class ConvEncoder(nn.Module):
  """Stride-2 3x3 convolutions (28 -> 14 -> 7), then the MLP's dense layers and heads."""

  channels: Sequence[int] = (16, 32)
  hidden: Sequence[int] = (200,)
  latent_dim: int = 50
  activation: str = "tanh"
  stochastic: bool = True

  @nn.compact
  def __call__(self, x_BxHxW: jnp.ndarray):
    act = ACTIVATIONS[self.activation]
    h = x_BxHxW[..., None]
    for i, c in enumerate(self.channels):
      h = act(nn.Dense(c, name=f"conv_{i}")(patches_3x3(h, 2)))
    h = h.reshape((h.shape[0], -1))
    for width in self.hidden:
      h = act(nn.Dense(width)(h))
    return gaussian_heads(h, self.latent_dim, self.stochastic)


class ConvDecoder(nn.Module):
  """Dense layers to a 7x7 feature map, 2x sub-pixel upsampling convolutions back to 28x28."""

  channels: Sequence[int] = (16, 32)  # the encoder's, undone in reverse order
  hidden: Sequence[int] = (200,)
  activation: str = "tanh"
  image_shape: tuple[int, int] = IMAGE_SHAPE

  @nn.compact
  def __call__(self, z_BxZ: jnp.ndarray) -> jnp.ndarray:
    act = ACTIVATIONS[self.activation]
    scale = 2 ** len(self.channels)
    side_h, side_w = self.image_shape[0] // scale, self.image_shape[1] // scale
    h = z_BxZ
    for width in reversed(tuple(self.hidden)):
      h = act(nn.Dense(width)(h))
    h = act(nn.Dense(side_h * side_w * self.channels[-1])(h))
    h = h.reshape((z_BxZ.shape[0], side_h, side_w, self.channels[-1]))
    # Each layer doubles the side; the last one emits the single output channel.
    for i, c in enumerate(reversed(tuple(self.channels[:-1]))):
      h = act(upsample_2x(h, c, name=f"upconv_{i}"))
    return upsample_2x(h, 1, name="out")[..., 0]


def gaussian_heads(h_BxD: jnp.ndarray, latent_dim: int, stochastic: bool):
  """Mean and log-variance heads of q(z|x); a deterministic code has the mean head only."""
  mean_BxZ = nn.Dense(latent_dim, name="mean")(h_BxD)
  if not stochastic:
    return mean_BxZ, None
  return mean_BxZ, nn.Dense(latent_dim, name="logvar")(h_BxD)


class VAE(nn.Module):
  """An encoder, a decoder and, for a learned-variance Gaussian decoder, its log std."""

  encoder: nn.Module
  decoder: nn.Module
  learn_std: bool = False
  init_log_std: float = 0.0

  def setup(self):
    if self.learn_std:  # one scalar: per-pixel variances collapse on constant background pixels
      self.log_std = self.param("decoder_log_std", lambda _: jnp.asarray(self.init_log_std))

  def encode(self, x_BxHxW):
    return self.encoder(x_BxHxW)

  def decode(self, z_BxZ):
    return self.decoder(z_BxZ)

  def decoder_log_std(self):
    return self.log_std if self.learn_std else jnp.asarray(self.init_log_std, jnp.float32)

  def __call__(self, x_BxHxW):
    """Touches every parameter, for init."""
    mean_BxZ, _ = self.encode(x_BxHxW)
    return self.decode(mean_BxZ), self.decoder_log_std()


def build_vae_module(config) -> VAE:
  """The AE/VAE network for `config` (model, arch, hidden, latent_dim, activation, decoder)."""
  stochastic = config.model != "ae"
  hidden, act = tuple(config.hidden), config.activation
  if config.arch == "conv":
    channels = tuple(config.conv_channels)
    encoder = ConvEncoder(channels, hidden, config.latent_dim, act, stochastic)
    decoder = ConvDecoder(channels, hidden, act)
  else:
    encoder = MLPEncoder(hidden, config.latent_dim, act, stochastic)
    decoder = MLPDecoder(hidden, act)
  learn_std = config.decoder == "gaussian" and config.learn_decoder_std
  return VAE(encoder, decoder, learn_std=learn_std,
             init_log_std=math.log(config.decoder_std))
