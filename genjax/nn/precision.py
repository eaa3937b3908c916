"""Mixed precision: bfloat16 matmuls that sum their products in float32.

XLA:CPU runs a bfloat16 x bfloat16 -> bfloat16 dot by converting both sides to float32 (no
faster than float32), but a bfloat16 dot asked for a float32 result goes to the CPU's native
bfloat16 instructions where it has them (AVX512_BF16, AMX): about 2x the float32 matmul on a
Zen 4 EPYC. GPUs and TPUs accumulate bfloat16 products in float32 either way. The custom VJP
asks the same of the two backward matmuls, which JAX's own transpose would run in float32.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

F32 = jnp.float32


@jax.custom_vjp
def matmul_f32_sum(x_NxK: jnp.ndarray, w_KxM: jnp.ndarray) -> jnp.ndarray:
  """x @ w contracting x's last axis (any leading axes), products summed in float32, the
  result in x's dtype."""
  return lax.dot_general(x_NxK, w_KxM, (((x_NxK.ndim - 1,), (0,)), ((), ())),
                         preferred_element_type=F32).astype(x_NxK.dtype)


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


def _dense_dot_general(lhs, rhs, dimension_numbers, precision=None,
                       preferred_element_type=None):
  """nn.Dense's dot_general (the input's last axis against the kernel's first) through
  matmul_f32_sum."""
  del precision, preferred_element_type
  if dimension_numbers != (((lhs.ndim - 1,), (0,)), ((), ())):
    raise ValueError(f"mixed-precision dense: unexpected dimension numbers {dimension_numbers}")
  return matmul_f32_sum(lhs, rhs)


def dense_dot_general(dtype):
  """The dot_general for an nn.Dense computing in `dtype`: None (flax's own) for float32."""
  return None if jnp.dtype(dtype) == jnp.dtype(F32) else _dense_dot_general


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
