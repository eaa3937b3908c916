"""Shared layers: patch-matmul convolutions, pooling, spectral norm, class-conditional BatchNorm."""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


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


def conv3x3_valid(x_BxHxWxC: jnp.ndarray, kernel_3x3xCxF: jnp.ndarray) -> jnp.ndarray:
  """A VALID 3x3 convolution as one matmul over patches.

  XLA:CPU's convolution gradients run ~10x slower than a matmul; the patch order (row, column,
  channel) matches kernel.reshape(9C, F), so the weights are those of nn.Conv(padding="VALID").
  """
  _, h, w, c = x_BxHxWxC.shape
  patches = [x_BxHxWxC[:, i:i + h - 2, j:j + w - 2, :] for i in range(3) for j in range(3)]
  return jnp.concatenate(patches, axis=-1) @ kernel_3x3xCxF.reshape(9 * c, -1)


def max_pool2(x_BxHxWxC: jnp.ndarray) -> jnp.ndarray:
  """2x2 max-pool (odd edges dropped) as a reshape-max: its gradient avoids slow select-and-scatter."""
  b, h, w, c = x_BxHxWxC.shape
  x = x_BxHxWxC[:, :h // 2 * 2, :w // 2 * 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def upsample_2x(h_BxHxWxC: jnp.ndarray, features: int, name: str, dense=nn.Dense) -> jnp.ndarray:
  """Sub-pixel convolution (Shi et al. 2016): a 3x3 conv to 4 x features, then depth-to-space.

  The learnable equivalent of a stride-2 transposed convolution, as one matmul.
  """
  b, height, width, _ = h_BxHxWxC.shape
  h = dense(4 * features, name=name)(patches_3x3(h_BxHxWxC, 1))
  h = h.reshape((b, height, width, 2, 2, features)).transpose((0, 1, 3, 2, 4, 5))
  return h.reshape((b, 2 * height, 2 * width, features))


def blur_2x(h_BxHxWxC: jnp.ndarray) -> jnp.ndarray:
  """Separable [1, 2, 1] / 4 low-pass per channel (edges repeated): after a 2x upsampling it
  removes the period-2 (checkerboard) pattern a sub-pixel convolution can leave."""
  def along(h, axis):
    padded = jnp.pad(h, [(1, 1) if a == axis else (0, 0) for a in range(h.ndim)], mode="edge")
    size = h.shape[axis]
    part = lambda start: jax.lax.slice_in_dim(padded, start, start + size, axis=axis)  # noqa: E731
    return 0.25 * part(0) + 0.5 * part(1) + 0.25 * part(2)
  return along(along(h_BxHxWxC, 1), 2)


def l2_normalize(x: jnp.ndarray, eps: float = 1e-12) -> jnp.ndarray:
  return x / (jnp.linalg.norm(x) + eps)


def spectral_normalize(module: nn.Module, kernel_IxO: jnp.ndarray, update_stats: bool):
  """kernel / sigma_max(kernel), sigma from one power iteration on a persistent vector u.

  u lives in the module's "spectral" collection (Miyato et al. 2018): one iteration per
  training step suffices because the weights move little between steps. Gradients flow
  through sigma's dependence on the kernel, not through the power iteration.
  """
  u_var = module.variable("spectral", "u", lambda: l2_normalize(
      jax.random.normal(module.make_rng("params"), (kernel_IxO.shape[-1],))))
  u_O = jax.lax.stop_gradient(u_var.value)
  w = jax.lax.stop_gradient(kernel_IxO)
  v_I = l2_normalize(w @ u_O)
  u_O = l2_normalize(w.T @ v_I)
  sigma = v_I @ kernel_IxO @ u_O
  if update_stats and not module.is_initializing():
    u_var.value = u_O
  return kernel_IxO / sigma


class Dense(nn.Module):
  """nn.Dense's parameters and maths, optionally spectrally normalized (parameters float32)."""

  features: int
  spectral_norm: bool = False
  update_stats: bool = False  # advance the power iteration (D's own training step only)
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BxI: jnp.ndarray) -> jnp.ndarray:
    kernel = self.param("kernel", self.kernel_init, (x_BxI.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    if self.spectral_norm:
      kernel = spectral_normalize(self, kernel, self.update_stats)
    return x_BxI.astype(self.dtype) @ kernel.astype(self.dtype) + bias.astype(self.dtype)


class ClassBatchNorm(nn.Module):
  """BatchNorm whose scale and offset are looked up per class (de Vries et al. 2017).

  Each BatchNorm of a conditional G then carries the label, not only its input layer. The
  tables start at scale 1 and offset 0: at init this is a plain BatchNorm.
  """

  num_classes: int
  use_running_average: bool
  momentum: float = 0.9
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h_BxC: jnp.ndarray, labels_B: jnp.ndarray) -> jnp.ndarray:
    h = nn.BatchNorm(use_running_average=self.use_running_average, momentum=self.momentum,
                     use_scale=False, use_bias=False, dtype=self.dtype)(h_BxC)
    channels = h_BxC.shape[-1]
    scale_KxC = self.param("scale", nn.initializers.ones, (self.num_classes, channels))
    offset_KxC = self.param("offset", nn.initializers.zeros, (self.num_classes, channels))
    expand = (slice(None),) + (None,) * (h.ndim - 2)  # the label's row at every pixel
    return (h * scale_KxC[labels_B][expand].astype(h.dtype)
            + offset_KxC[labels_B][expand].astype(h.dtype))
