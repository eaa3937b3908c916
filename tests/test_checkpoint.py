"""Orbax save -> restore round trip and the guards against foreign or corrupt checkpoints."""

import jax
import numpy as np
import pytest

from genjax import checkpoint
from genjax.configs.gan_mnist import get_config
from genjax.errors import CheckpointError
from genjax.train_state import build_gan, init_state


def tiny_state(seed=0, **overrides):
  config = get_config("tiny")
  config.update(overrides)
  gan = build_gan(config)
  return config, gan, init_state(gan, jax.random.key(seed))


def test_save_restore_round_trip_is_bit_identical(tmp_path):
  config, gan, state = tiny_state(seed=3)
  manager = checkpoint.open_manager(tmp_path)
  checkpoint.save(manager, 7, state, checkpoint.identity_of(config))
  manager.close()
  abstract = jax.eval_shape(lambda: init_state(gan, jax.random.key(0)))
  manager = checkpoint.open_manager(tmp_path)
  restored, step = checkpoint.restore_latest(manager, abstract, checkpoint.identity_of(config))
  assert step == 7
  jax.tree.map(np.testing.assert_array_equal, restored, state)
  assert jax.tree.structure(restored) == jax.tree.structure(state)


def test_no_checkpoint_gives_none(tmp_path):
  config, gan, state = tiny_state()
  manager = checkpoint.open_manager(tmp_path)
  assert checkpoint.restore_latest(manager, state, checkpoint.identity_of(config)) == (None, None)


def test_keeps_only_the_last_few(tmp_path):
  config, _, state = tiny_state()
  manager = checkpoint.open_manager(tmp_path, max_to_keep=2)
  for step in (1, 2, 3):
    checkpoint.save(manager, step, state, checkpoint.identity_of(config))
  assert sorted(manager.all_steps()) == [2, 3]


def test_foreign_config_is_named(tmp_path):
  config, _, state = tiny_state()
  manager = checkpoint.open_manager(tmp_path)
  checkpoint.save(manager, 1, state, checkpoint.identity_of(config))
  other = config.copy_and_resolve_references()
  other.latent_dim = 12
  with pytest.raises(CheckpointError, match=r"latent_dim=8 \(config says 12\)"):
    checkpoint.restore_latest(manager, state, checkpoint.identity_of(other))


def test_shape_mismatch_behind_matching_identity_is_caught(tmp_path):
  config, _, state = tiny_state()
  manager = checkpoint.open_manager(tmp_path)
  checkpoint.save(manager, 1, state, checkpoint.identity_of(config))
  _, gan_big, _ = tiny_state(g_hidden=(16, 64))
  abstract = jax.eval_shape(lambda: init_state(gan_big, jax.random.key(0)))
  with pytest.raises(CheckpointError, match="does not fit this model|corrupt"):
    checkpoint.restore_latest(manager, abstract, checkpoint.identity_of(config))


TUTORIAL_KEYS = ("model", "dataset", "latent_dim", "g_hidden", "d_hidden", "bn_momentum",
                 "d_update", "batch_size", "seed")


def test_identity_keys_newer_than_a_checkpoint_take_their_old_default(tmp_path):
  # A checkpoint written before `conditional` existed was unconditional.
  checkpoint.check_identity({"model": "vae"}, {"model": "vae", "conditional": False}, tmp_path,
                            5)
  with pytest.raises(CheckpointError, match="conditional=False"):
    checkpoint.check_identity({"model": "vae"}, {"model": "vae", "conditional": True}, tmp_path,
                              5)
  # The tutorial's GAN checkpoints predate every recipe key: the current default config
  # (which has them all, at the tutorial's values) still resumes them; a recipe does not.
  config = get_config()
  old = {k: v for k, v in checkpoint.identity_of(config).items() if k in TUTORIAL_KEYS}
  checkpoint.check_identity(old, checkpoint.identity_of(config), tmp_path, 5)
  with pytest.raises(CheckpointError, match="arch='mlp'.*g_refine=0"):
    checkpoint.check_identity(old, checkpoint.identity_of(get_config("cgan")), tmp_path, 5)


def test_a_decaying_tail_may_follow_a_constant_checkpoint_but_not_rewrite_its_past(tmp_path):
  constant = checkpoint.identity_of(get_config())
  tail = get_config()
  tail.update(num_steps=100, lr_schedule="linear", lr_decay_fraction=0.2)  # decays 80 -> 100
  assert checkpoint.identity_of(tail)["lr_window"] == [80, 100]
  old = {k: v for k, v in constant.items() if k != "lr_window"}  # written before the window
  for saved in (constant, old):
    checkpoint.check_identity(saved, checkpoint.identity_of(tail), tmp_path, 81)  # 0..80 at 1
    with pytest.raises(CheckpointError, match="lr_schedule.*before 82"):
      checkpoint.check_identity(saved, checkpoint.identity_of(tail), tmp_path, 82)
  # Mid-decay, the same window goes on; a longer one would change the rates already used.
  checkpoint.check_identity(checkpoint.identity_of(tail), checkpoint.identity_of(tail),
                            tmp_path, 90)
  tail.num_steps = 200
  with pytest.raises(CheckpointError, match="lr_schedule"):
    checkpoint.check_identity({**constant, "lr_window": [80, 100]},
                              checkpoint.identity_of(tail), tmp_path, 90)
