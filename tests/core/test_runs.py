"""The family registry and the one restore path: any workdir opens by the family its record
names, any kept step restores, and a command given another family's run says so in one line."""

import jax
import numpy as np
import pytest

from genjax.configs.text_lm import get_config as lm_config
from genjax.core import checkpoint, loop, runs
from genjax.core.errors import CheckpointError, ConfigError, WorkdirError
from genjax.gan.sampling import restore_generator
from genjax.text.lm import train_lm
from tests.conftest import assert_one_line_error, run_experiment

pytestmark = pytest.mark.slow  # trains tiny runs of two families


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
  corpus = tmp_path_factory.mktemp("corpus") / "text.txt"
  corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 30)
  config = lm_config("tiny")
  config.update(text_file=str(corpus), num_steps=4, checkpoint_interval=2, eval_interval=0,
                sample_interval=4)
  workdir = tmp_path_factory.mktemp("lm") / "run"
  train_lm(config, workdir)
  return workdir


def test_every_registered_name_is_the_name_its_family_records():
  for name in runs.FAMILIES:
    family = runs.family_class(name)
    assert issubclass(family, loop.Family) and family.name == name
    assert family.make_static and family.make_state  # each can rebuild its runs
  with pytest.raises(CheckpointError, match="no genjax family is called 'text_lm'"):
    runs.family_class("text_lm")


def test_a_run_restores_by_its_recorded_family_at_any_kept_step(tiny_gan_run, lm_run):
  gan_dir = tiny_gan_run("dcgan,tiny")
  run = runs.restore(gan_dir)
  assert (run.family, run.step, run.config.arch) == ("gan", 6, "dcgan")
  _, state, _, step = restore_generator(gan_dir)
  assert step == 6
  jax.tree.map(np.testing.assert_array_equal, run.state, state)
  with runs.RunFolder(gan_dir) as folder:
    assert folder.steps == [3, 6]
    earlier = folder.restore(3)
  assert earlier.step == 3 and int(earlier.state.step) == 3
  text = runs.restore(lm_run, families=("lm",), step=2)
  assert (text.family, text.step, int(text.state.step)) == ("lm", 2, 2)


def test_another_familys_run_is_one_line_naming_both(tiny_gan_run, lm_run):
  with pytest.raises(ConfigError, match=r"holds a 'gan' run; this command reads 'lm' runs "
                                        r"\(sample.py, evaluate.py, .* read 'gan' runs\)"):
    runs.restore(tiny_gan_run("dcgan,tiny"), families=("lm",))
  result = run_experiment("generate_text.py", f"--workdir={tiny_gan_run('dcgan,tiny')}")
  assert_one_line_error(result, "--workdir", "holds a 'gan' run", "'lm'")
  result = run_experiment("sample.py", f"--workdir={lm_run}", "--out=x.npz")
  assert_one_line_error(result, "--workdir", "holds a 'lm' run", "'gan' or 'vae'",
                        "generate_text.py")


def test_a_missing_or_empty_workdir_is_named(tmp_path):
  with pytest.raises(WorkdirError, match="does not exist"):
    runs.restore(tmp_path / "nowhere")
  with pytest.raises(CheckpointError, match="no checkpoint in .*is .* a genjax run"):
    runs.restore(tmp_path)
  (tmp_path / "checkpoints").mkdir()
  with pytest.raises(CheckpointError, match="no checkpoint in"):
    runs.restore(tmp_path)


def test_a_reader_skips_an_unreadable_newest_step_and_moves_nothing(lm_run, tmp_path, capfd):
  import shutil
  copy = tmp_path / "run"
  shutil.copytree(lm_run, copy)
  for path in (copy / "checkpoints" / "4").rglob("*"):
    if path.is_file():
      path.write_bytes(b"garbage")
  run = runs.restore(copy)
  assert run.step == 2 and (copy / "checkpoints" / "4").is_dir()
  assert "warning: checkpoint step 4 is unreadable" in capfd.readouterr().err
  assert not (copy / checkpoint.UNREADABLE_DIR).exists()
  with pytest.raises(CheckpointError, match="checkpoint step 4 is unreadable"):
    runs.restore(copy, step=4)
