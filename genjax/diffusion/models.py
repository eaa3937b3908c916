"""The denoising U-Net: residual blocks with GroupNorm, a sinusoidal time embedding through an
MLP, self-attention at the lowest resolution, skip connections, and an optional label
embedding whose last row is the null label of classifier-free guidance.

Every 3x3 convolution is a patch matmul (genjax.nn.layers): XLA:CPU runs lax.conv several times
slower inside the while loop every training step runs in.
"""

import math
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from genjax.nn.layers import patches_3x3, upsample_2x

# The last layer of every residual branch starts at zero: each block starts as the identity,
# and the whole network as a constant prediction, which keeps early steps stable.
ZERO = nn.initializers.zeros


def conv3x3(h_BxHxWxC: jnp.ndarray, features: int, name: str, stride: int = 1,
            kernel_init=nn.initializers.lecun_normal()) -> jnp.ndarray:
  """A 'SAME' 3x3 convolution (stride 1 or 2) as one Dense layer on the patches."""
  return nn.Dense(features, kernel_init=kernel_init, name=name)(patches_3x3(h_BxHxWxC, stride))


def space_to_depth(x_BxHxWxC: jnp.ndarray, p: int) -> jnp.ndarray:
  """B x H/p x W/p x (p p C): each p x p block of pixels as one vector."""
  b, h, w, c = x_BxHxWxC.shape
  x = x_BxHxWxC.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // p, w // p, p * p * c)


def depth_to_space(x_BxHxWxD: jnp.ndarray, p: int) -> jnp.ndarray:
  """The inverse of space_to_depth: B x pH x pW x D/(p p)."""
  b, h, w, d = x_BxHxWxD.shape
  x = x_BxHxWxD.reshape(b, h, w, p, p, d // (p * p)).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h * p, w * p, d // (p * p))


def sinusoidal_embedding(t_B: jnp.ndarray, dim: int) -> jnp.ndarray:
  """The Transformer's sinusoids of 1000 t (t in [0, 1]): frequencies from 1 to 1/10,000."""
  half = dim // 2
  freqs_H = jnp.exp(-math.log(10_000.0) * jnp.arange(half) / half)
  angles_BxH = 1000.0 * t_B[:, None].astype(jnp.float32) * freqs_H[None]
  return jnp.concatenate([jnp.sin(angles_BxH), jnp.cos(angles_BxH)], axis=-1)


class ResBlock(nn.Module):
  """GroupNorm-SiLU-conv, plus the embedding's shift per channel, GroupNorm-SiLU-conv, added
  to the input (through a 1x1 projection when the width changes)."""

  features: int
  groups: int

  @nn.compact
  def __call__(self, h_BxHxWxC: jnp.ndarray, emb_BxE: jnp.ndarray) -> jnp.ndarray:
    h = nn.silu(nn.GroupNorm(num_groups=self.groups, name="norm_0")(h_BxHxWxC))
    h = conv3x3(h, self.features, "conv_0")
    h = h + nn.Dense(self.features, name="emb")(nn.silu(emb_BxE))[:, None, None, :]
    h = nn.silu(nn.GroupNorm(num_groups=self.groups, name="norm_1")(h))
    h = conv3x3(h, self.features, "conv_1", kernel_init=ZERO)
    skip = h_BxHxWxC
    if skip.shape[-1] != self.features:
      skip = nn.Dense(self.features, name="skip")(skip)
    return skip + h


class Attention(nn.Module):
  """Multi-head self-attention over the pixels of a (small) feature map, residual."""

  heads: int
  groups: int

  @nn.compact
  def __call__(self, h_BxHxWxC: jnp.ndarray) -> jnp.ndarray:
    b, height, width, c = h_BxHxWxC.shape
    x_BxLxC = nn.GroupNorm(num_groups=self.groups)(h_BxHxWxC).reshape(b, height * width, c)
    qkv = nn.Dense(3 * c, name="qkv")(x_BxLxC).reshape(b, height * width, 3, self.heads, -1)
    q_BxLxNxD, k_BxLxNxD, v_BxLxNxD = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    logits_BxNxLxL = jnp.einsum("blnd,bmnd->bnlm", q_BxLxNxD, k_BxLxNxD) / math.sqrt(
        q_BxLxNxD.shape[-1])
    out_BxLxNxD = jnp.einsum("bnlm,bmnd->blnd", nn.softmax(logits_BxNxLxL, axis=-1), v_BxLxNxD)
    out = nn.Dense(c, kernel_init=ZERO, name="out")(out_BxLxNxD.reshape(b, height * width, c))
    return h_BxHxWxC + out.reshape(b, height, width, c)


class UNet(nn.Module):
  """(x_BxHxW or x_BxHxWxC, t_B in [0, 1], labels_B or None) -> a prediction shaped like x
  (the noise, or the velocity).

  The image is first cut into patch x patch pixel blocks, each a vector (space to depth),
  and channels[i] is the width at resolution H / patch / 2^i; each level has `blocks`
  residual blocks on the way down and blocks + 1 on the way up (each with a skip from the way
  down). A label of `num_classes` is the null label: the unconditional model that guidance
  mixes in.
  """

  channels: Sequence[int] = (32, 64, 128)
  blocks: int = 1
  heads: int = 4
  groups: int = 8
  num_classes: int = 0  # > 0: conditional, with num_classes + 1 label embeddings
  patch: int = 1  # 2: the U-Net runs at half the resolution on 2x2 pixel blocks

  @nn.compact
  def __call__(self, x: jnp.ndarray, t_B: jnp.ndarray, labels_B=None) -> jnp.ndarray:
    emb_dim = 4 * self.channels[0]
    emb = sinusoidal_embedding(t_B, self.channels[0])
    emb = nn.Dense(emb_dim, name="time_0")(emb)
    emb_BxE = nn.Dense(emb_dim, name="time_1")(nn.silu(emb))
    if self.num_classes:
      if labels_B is None:
        raise ValueError("a conditional U-Net needs labels_B (num_classes: the null label)")
      emb_BxE = emb_BxE + nn.Embed(self.num_classes + 1, emb_dim, name="label")(labels_B)
    block = lambda h, c, name: ResBlock(c, self.groups, name=name)(h, emb_BxE)  # noqa: E731
    x_BxHxWxC = x[..., None] if x.ndim == 3 else x  # one channel: MNIST's B x H x W layout
    h = conv3x3(space_to_depth(x_BxHxWxC, self.patch), self.channels[0], "stem")
    skips = [h]
    for level, c in enumerate(self.channels):
      for i in range(self.blocks):
        h = block(h, c, f"down_{level}_{i}")
        skips.append(h)
      if level < len(self.channels) - 1:
        h = conv3x3(h, c, f"downsample_{level}", stride=2)
        skips.append(h)
    h = block(h, self.channels[-1], "mid_0")
    h = Attention(self.heads, self.groups, name="mid_attention")(h)
    h = block(h, self.channels[-1], "mid_1")
    for level in reversed(range(len(self.channels))):
      for i in range(self.blocks + 1):
        h = block(jnp.concatenate([h, skips.pop()], axis=-1), self.channels[level],
                  f"up_{level}_{i}")
      if level:
        h = upsample_2x(h, self.channels[level - 1], f"upsample_{level}")
    h = nn.silu(nn.GroupNorm(num_groups=self.groups, name="out_norm")(h))
    out = conv3x3(h, self.patch ** 2 * x_BxHxWxC.shape[-1], "out", kernel_init=ZERO)
    return depth_to_space(out, self.patch).reshape(x.shape)
