"""Moving averages of weights, shared by every family that samples or evaluates with averaged
weights (the GAN's generator, the text models, the diffusion U-Net), and the plain mean of
weights over checkpoints."""

import jax
import jax.numpy as jnp


def ema_decay_at(decay: float, num_updates) -> jnp.ndarray:
  """min(decay, (1 + t) / (10 + t)) after t updates: early on, the average forgets the random
  initialization quickly instead of carrying 0.999^t of it (tf.train.ExponentialMovingAverage).
  The ramp also keeps the average's window near a ninth of the steps taken until `decay` caps
  it, so a mid-run evaluation of the average is never far behind the weights."""
  t = jnp.asarray(num_updates, jnp.float32)
  return jnp.minimum(decay, (1.0 + t) / (10.0 + t))


def ema_update(ema_tree, new_tree, decay):
  """decay * ema + (1 - decay) * new, leaf by leaf."""
  return jax.tree.map(lambda e, n: decay * e + (1.0 - decay) * n, ema_tree, new_tree)


def ema_copy(tree):
  """The average's starting point: a separate copy of `tree`, since a donated state may not
  hold one buffer twice."""
  return jax.tree.map(jnp.copy, tree)


def mean_tree(trees):
  """The leafwise float32 mean of same-shaped pytrees (weights averaged over checkpoints)."""
  def mean(*leaves):
    return sum(leaf.astype(jnp.float32) for leaf in leaves) / len(leaves)
  return jax.tree.map(mean, *trees)
