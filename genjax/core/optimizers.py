"""Adam in the two forms in use, optax's (and PyTorch's) and Keras/TensorFlow's, and the
parameters weight decay applies to.

They differ only in where epsilon enters. optax adds it to the bias-corrected root,
m_hat / (sqrt(v_hat) + eps); Keras folds the bias correction into the step size and adds eps to
the raw root, m * lr_t / (sqrt(v) + eps), which is optax's form with eps / sqrt(1 - beta2^t):
about 30x larger at the first step and falling to eps over a few thousand. Where gradients are
that small the updates differ, and a run drifts away from the Keras code it reproduces.
"""

import jax
import jax.numpy as jnp
import optax

ADAM_FORMS = ("optax", "keras")


def decay_mask(params):
  """True for the parameters weight decay applies to: matrices (dense kernels, embeddings,
  position tables), not vectors (biases, LayerNorm scales and offsets)."""
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def keras_adam(learning_rate: float, b1: float, b2: float, eps: float
               ) -> optax.GradientTransformation:
  """Keras 3's Adam update, operation for operation (so its rounding too).

  Its state has optax.adam's tree, (ScaleByAdamState(count, mu, nu), EmptyState()), with the
  same moments, so a checkpoint of either form restores into the other.
  """

  def init(params):
    zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
    return (optax.ScaleByAdamState(count=jnp.zeros((), jnp.int32), mu=zeros(), nu=zeros()),
            optax.EmptyState())

  def update(grads, state, params=None):
    del params
    adam, empty = state
    count = optax.safe_increment(adam.count)
    t = count.astype(jnp.float32)
    mu = jax.tree.map(lambda m, g: m + (g - m) * (1 - b1), adam.mu, grads)
    nu = jax.tree.map(lambda v, g: v + (jnp.square(g) - v) * (1 - b2), adam.nu, grads)
    # The step size carries both bias corrections, as in keras.optimizers.Adam.
    alpha = learning_rate * jnp.sqrt(1 - jnp.power(b2, t)) / (1 - jnp.power(b1, t))
    updates = jax.tree.map(lambda m, v: -(m * alpha) / (jnp.sqrt(v) + eps), mu, nu)
    return updates, (optax.ScaleByAdamState(count=count, mu=mu, nu=nu), empty)

  return optax.GradientTransformation(init, update)


def adam(learning_rate: float, b1: float, b2: float, eps: float, form: str = "optax"
         ) -> optax.GradientTransformation:
  """Adam in `form` (ADAM_FORMS); both keep the same state tree."""
  if form == "keras":
    return keras_adam(learning_rate, b1, b2, eps)
  if form == "optax":
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)
  raise ValueError(f"unknown Adam form {form!r}; valid: {', '.join(ADAM_FORMS)}")
