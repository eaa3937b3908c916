"""Autoencoder and VAE networks as flax.linen modules: MLP (the classic benchmark) and conv.

A conditional model takes one-hot labels y_BxC as well: q(z|x,y) sees them next to the image
features, p(x|z,y) next to z. Without labels (y None) no layer changes shape, so unconditional
parameters are those of a model that never heard of labels.
"""

import math
from typing import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from genjax.nn.layers import patches_3x3, upsample_2x

ACTIVATIONS: dict[str, Callable] = {"tanh": jnp.tanh, "softplus": nn.softplus, "relu": nn.relu}


def as_images(h_BxHxWxC: jnp.ndarray) -> jnp.ndarray:
  """B x H x W for one channel (the data's layout), else B x H x W x C."""
  return h_BxHxWxC[..., 0] if h_BxHxWxC.shape[-1] == 1 else h_BxHxWxC


def with_labels(h_BxD: jnp.ndarray, y_BxC: jnp.ndarray | None) -> jnp.ndarray:
  """h with the one-hot labels appended, or h itself for an unconditional model."""
  return h_BxD if y_BxC is None else jnp.concatenate([h_BxD, y_BxC.astype(h_BxD.dtype)], -1)


class MLPEncoder(nn.Module):
  """Images_BxHxW (and labels) -> (mean_BxZ, logvar_BxZ), or (code_BxZ, None) if deterministic."""

  hidden: Sequence[int] = (200, 200)
  latent_dim: int = 50
  activation: str = "tanh"
  stochastic: bool = True

  @nn.compact
  def __call__(self, x_BxHxW: jnp.ndarray, y_BxC: jnp.ndarray | None = None):
    h = with_labels(x_BxHxW.reshape((x_BxHxW.shape[0], -1)), y_BxC)
    for width in self.hidden:
      h = ACTIVATIONS[self.activation](nn.Dense(width)(h))
    return gaussian_heads(h, self.latent_dim, self.stochastic)


class MLPDecoder(nn.Module):
  """Codes_BxZ (and labels) -> raw outputs_BxHxW (xC in colour): Bernoulli logits, or
  pre-sigmoid means."""

  hidden: Sequence[int] = (200, 200)
  activation: str = "tanh"
  image_shape: tuple[int, int, int] = (28, 28, 1)  # H, W, C

  @nn.compact
  def __call__(self, z_BxZ: jnp.ndarray, y_BxC: jnp.ndarray | None = None) -> jnp.ndarray:
    h = with_labels(z_BxZ, y_BxC)
    for width in reversed(tuple(self.hidden)):  # mirrors the encoder
      h = ACTIVATIONS[self.activation](nn.Dense(width)(h))
    height, width, channels = self.image_shape
    h = nn.Dense(height * width * channels)(h)
    return as_images(h.reshape((z_BxZ.shape[0], height, width, channels)))


class ConvEncoder(nn.Module):
  """Stride-2 3x3 convolutions (28 -> 14 -> 7 for two), then the MLP's dense layers and heads."""

  channels: Sequence[int] = (16, 32)
  hidden: Sequence[int] = (200,)
  latent_dim: int = 50
  activation: str = "tanh"
  stochastic: bool = True

  @nn.compact
  def __call__(self, x_BxHxW: jnp.ndarray, y_BxC: jnp.ndarray | None = None):
    act = ACTIVATIONS[self.activation]
    h = x_BxHxW[..., None] if x_BxHxW.ndim == 3 else x_BxHxW
    for i, c in enumerate(self.channels):
      h = act(nn.Dense(c, name=f"conv_{i}")(patches_3x3(h, 2)))
    h = with_labels(h.reshape((h.shape[0], -1)), y_BxC)  # a label is global: no spatial layout
    for width in self.hidden:
      h = act(nn.Dense(width)(h))
    return gaussian_heads(h, self.latent_dim, self.stochastic)


class ConvDecoder(nn.Module):
  """Dense layers to an (H/2^k)x(W/2^k) feature map (7x7 for 28x28 and k = 2), then k 2x
  sub-pixel upsampling convolutions back to HxW."""

  channels: Sequence[int] = (16, 32)  # the encoder's, undone in reverse order
  hidden: Sequence[int] = (200,)
  activation: str = "tanh"
  image_shape: tuple[int, int, int] = (28, 28, 1)  # H, W, C

  @nn.compact
  def __call__(self, z_BxZ: jnp.ndarray, y_BxC: jnp.ndarray | None = None) -> jnp.ndarray:
    act = ACTIVATIONS[self.activation]
    scale = 2 ** len(self.channels)
    side_h, side_w = self.image_shape[0] // scale, self.image_shape[1] // scale
    h = with_labels(z_BxZ, y_BxC)
    for width in reversed(tuple(self.hidden)):
      h = act(nn.Dense(width)(h))
    h = act(nn.Dense(side_h * side_w * self.channels[-1])(h))
    h = h.reshape((z_BxZ.shape[0], side_h, side_w, self.channels[-1]))
    # Each layer doubles the side; the last one emits the image's channels.
    for i, c in enumerate(reversed(tuple(self.channels[:-1]))):
      h = act(upsample_2x(h, c, name=f"upconv_{i}"))
    return as_images(upsample_2x(h, self.image_shape[2], name="out"))


def gaussian_heads(h_BxD: jnp.ndarray, latent_dim: int, stochastic: bool):
  """Mean and log-variance heads of q(z|x); a deterministic code has the mean head only."""
  mean_BxZ = nn.Dense(latent_dim, name="mean")(h_BxD)
  if not stochastic:
    return mean_BxZ, None
  return mean_BxZ, nn.Dense(latent_dim, name="logvar")(h_BxD)


class VAE(nn.Module):
  """An encoder, a decoder and, for a learned-variance Gaussian decoder, its log std.

  num_classes > 0 makes it conditional: encode and decode then need one-hot labels y_BxC.
  """

  encoder: nn.Module
  decoder: nn.Module
  learn_std: bool = False
  init_log_std: float = 0.0
  num_classes: int = 0

  def setup(self):
    if self.learn_std:  # one scalar: per-pixel variances collapse on constant background pixels
      self.log_std = self.param("decoder_log_std", lambda _: jnp.asarray(self.init_log_std))

  def encode(self, x_BxHxW, y_BxC=None):
    self.check_labels(y_BxC)
    return self.encoder(x_BxHxW, y_BxC)

  def decode(self, z_BxZ, y_BxC=None):
    self.check_labels(y_BxC)
    return self.decoder(z_BxZ, y_BxC)

  def check_labels(self, y_BxC):
    """Labels iff conditional: a shape error deep inside a Dense layer would not say so."""
    if (y_BxC is None) != (self.num_classes == 0):
      raise ValueError(f"this VAE has num_classes={self.num_classes} but got labels "
                       f"{None if y_BxC is None else y_BxC.shape}")

  def decoder_log_std(self):
    return self.log_std if self.learn_std else jnp.asarray(self.init_log_std, jnp.float32)

  def __call__(self, x_BxHxW, y_BxC=None):
    """Touches every parameter, for init."""
    mean_BxZ, _ = self.encode(x_BxHxW, y_BxC)
    return self.decode(mean_BxZ, y_BxC), self.decoder_log_std()


def build_vae_module(config) -> VAE:
  """The AE/VAE network for `config` (model, arch, hidden, latent_dim, activation, decoder,
  conditional, and the data's image_shape and num_classes)."""
  stochastic = config.model != "ae"
  hidden, act, shape = tuple(config.hidden), config.activation, tuple(config.image_shape)
  if config.arch == "conv":
    channels = tuple(config.conv_channels)
    encoder = ConvEncoder(channels, hidden, config.latent_dim, act, stochastic)
    decoder = ConvDecoder(channels, hidden, act, shape)
  else:
    encoder = MLPEncoder(hidden, config.latent_dim, act, stochastic)
    decoder = MLPDecoder(hidden, act, shape)
  learn_std = config.decoder == "gaussian" and config.learn_decoder_std
  return VAE(encoder, decoder, learn_std=learn_std,
             init_log_std=math.log(config.decoder_std),
             num_classes=config.num_classes if config.conditional else 0)
