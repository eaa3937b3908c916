"""Mixed precision: bfloat16 matmuls that sum their products in float32.

XLA:CPU runs a bfloat16 x bfloat16 -> bfloat16 dot by converting both sides to float32 (no
faster than float32), but a bfloat16 dot asked for a float32 result goes to the CPU's native
bfloat16 instructions where it has them (AVX512_BF16, AMX): about 2x the float32 matmul on a
Zen 4 EPYC. GPUs and TPUs accumulate bfloat16 products in float32 either way. The custom VJP
asks the same of the two backward matmuls, which JAX's own transpose would run in float32.
MixedDense is flax's Dense on that matmul, its bias added to the float32 sums.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

F32 = jnp.float32


@jax.custom_vjp
def matmul_f32_sum(x_NxK: jnp.ndarray, w_KxM: jnp.ndarray) -> jnp.ndarray:
  """x @ w contracting x's last axis (any leading axes): the products of x's dtype summed and
  returned in float32."""
  return lax.dot_general(x_NxK, w_KxM, (((x_NxK.ndim - 1,), (0,)), ((), ())),
                         preferred_element_type=F32)


def _matmul_fwd(x_NxK, w_KxM):
  return matmul_f32_sum(x_NxK, w_KxM), (x_NxK, w_KxM)


def _matmul_bwd(residuals, g_NxM):
  x_NxK, w_KxM = residuals
  g_NxM = g_NxM.astype(x_NxK.dtype)
  gx_NxK = lax.dot_general(g_NxM, w_KxM, (((g_NxM.ndim - 1,), (1,)), ((), ())),
                           preferred_element_type=F32).astype(x_NxK.dtype)
  leading = tuple(range(x_NxK.ndim - 1))
  gw_KxM = lax.dot_general(x_NxK, g_NxM, ((leading, leading), ((), ())),
                           preferred_element_type=F32).astype(w_KxM.dtype)
  return gx_NxK, gw_KxM


matmul_f32_sum.defvjp(_matmul_fwd, _matmul_bwd)


class MixedDense(nn.Module):
  """nn.Dense's parameters (same names, shapes and initializers) computed in `dtype` through
  matmul_f32_sum. The bias joins the float32 sums before the rounding to `dtype`, so its
  gradient is a float32 reduction: XLA:CPU splits a large bfloat16 one into reduce-windows
  that cost an eighth of a Transformer step."""

  features: int
  use_bias: bool = True
  dtype: Any = jnp.bfloat16

  @nn.compact
  def __call__(self, x_NxK: jnp.ndarray) -> jnp.ndarray:
    kernel_KxM = self.param("kernel", nn.initializers.lecun_normal(),
                            (x_NxK.shape[-1], self.features))
    y_NxM = matmul_f32_sum(x_NxK.astype(self.dtype), kernel_KxM.astype(self.dtype))
    if self.use_bias:
      y_NxM = y_NxM + self.param("bias", nn.initializers.zeros_init(), (self.features,))
    return y_NxM.astype(self.dtype)


def dense(features: int, dtype, use_bias: bool = True, name: str | None = None) -> nn.Module:
  """A dense layer computing in `dtype`: flax's own in float32, else MixedDense."""
  if jnp.dtype(dtype) == jnp.dtype(F32):
    return nn.Dense(features, use_bias=use_bias, name=name)
  return MixedDense(features, use_bias, dtype, name=name)


@functools.cache
def cpu_has_bfloat16_matmul() -> bool:
  """Whether this host's CPU has native bfloat16 dot-product instructions (Linux flags)."""
  try:
    with open("/proc/cpuinfo") as f:
      flags = next((line for line in f if line.startswith("flags")), "").split()
  except OSError:
    return False
  return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_compute_dtype(name: str) -> str:
  """"auto": bfloat16 on GPUs and TPUs and on CPUs with native bfloat16 matmuls, else
  float32; any other name is returned as it is."""
  if name != "auto":
    return name
  if jax.default_backend() != "cpu":
    return "bfloat16"
  return "bfloat16" if cpu_has_bfloat16_matmul() else "float32"
