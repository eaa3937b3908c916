"""Own image data end to end: a 32x32 colour folder made from real MNIST digits trains a judge,
a conditional DCGAN, a conv VAE and a conditional flow-matching U-Net; sampling and evaluation
read the workdirs alone; data over the device threshold streams, resumes bit for bit and
matches the run with it on the devices."""

import jax
import numpy as np
import pytest

from genjax import sampling
from genjax.configs import classifier, diffusion_mnist, gan_mnist, vae_mnist
from genjax.core import runs
from genjax.diffusion.family import train_diffusion
from genjax.diffusion.nfe import fid_by_nfe
from genjax.eval.scoring import EvaluationError
from genjax.gan.family import train_gan
from genjax.judge.train import train_judge
from genjax.vae.family import train_vae
from tests.conftest import assert_one_line_error, run_experiment, snapshot
from tests.data.image_folders import colour_folder, mnist_folder

pytestmark = pytest.mark.slow  # end to end on tiny runs: the full suite's tier


@pytest.fixture(scope="module")
def colour_digits(tmp_path_factory, data_root):
  """train/<digit>/<i>.png (400) and test/ (200): the first real digits, padded to 32x32 and
  coloured at random."""
  return colour_folder(tmp_path_factory.mktemp("colour"), data_root, 400, 200)


@pytest.fixture(scope="module")
def judge(tmp_path_factory, colour_digits):
  config = classifier.get_config("tiny")
  config.update(dataset=f"folder:{colour_digits}", num_epochs=10)
  workdir = tmp_path_factory.mktemp("judge") / "run"
  return workdir, train_judge(config, workdir)


def gan_config(dataset, **overrides):
  config = gan_mnist.get_config("cgan,tiny")
  config.update(dataset=dataset, **overrides)
  return config


def test_the_judge_learns_the_colour_digits(judge):
  workdir, summary = judge
  assert summary["dataset"].startswith("folder:/") and summary["out_dir"] is None
  assert summary["test_accuracy"] > 25 and (workdir / "judge.json").is_file()  # chance: 10
  assert summary["config"]["image_shape"] == (32, 32, 3)


def test_a_conditional_dcgan_trains_samples_and_is_judged(judge, colour_digits, tmp_path):
  judge_dir, _ = judge
  summary = train_gan(gan_config(f"folder:{colour_digits}", judge=str(judge_dir),
                                 eval_interval=6, eval_num=100), tmp_path / "gan")
  assert np.isfinite(summary["final_eval"]["fid"]) and "label_accuracy" in summary["final_eval"]
  assert (tmp_path / "gan" / "images" / f"{colour_digits.name}_6.png").is_file()
  images = sampling.sample_images(tmp_path / "gan", 20, label=3)
  assert images.shape == (20, 32, 32, 3) and 0.0 <= images.min() and images.max() <= 1.0
  report = sampling.evaluate(workdir=tmp_path / "gan", num=100, references=True)
  samples, floor = report["rows"]["samples"], report["rows"]["real_train"]
  assert report["judge"]["workdir"] == str(judge_dir) and "label_accuracy" in samples
  assert floor["fid"] < samples["fid"] and len(samples["class_hist"]) == 10


def test_a_conv_vae_trains_on_colour_and_samples(colour_digits, tmp_path):
  config = vae_mnist.get_config("conv,tiny")
  config.update(dataset=f"folder:{colour_digits}", binarization="none", decoder="gaussian",
                eval_nll_k=0)
  summary = train_vae(config, tmp_path / "vae")
  assert np.isfinite(summary["eval"]["neg_elbo"]) and summary["eval"]["num_examples"] == 40
  assert sampling.sample_images(tmp_path / "vae", 5).shape == (5, 32, 32, 3)


def test_a_conditional_diffusion_model_trains_on_colour_samples_and_is_judged(judge,
                                                                              colour_digits,
                                                                              tmp_path):
  judge_dir, _ = judge
  config = diffusion_mnist.get_config("tiny")
  config.update(dataset=f"folder:{colour_digits}", judge=str(judge_dir), eval_interval=6)
  summary = train_diffusion(config, tmp_path / "flow")
  assert np.isfinite(summary["final_eval"]["fid"]) and "label_accuracy" in summary["final_eval"]
  assert (tmp_path / "flow" / "images" / "6.png").is_file()
  assert runs.restore(tmp_path / "flow").config.image_shape == [32, 32, 3]
  images = sampling.sample_images(tmp_path / "flow", 12, label=9)
  assert images.shape == (12, 32, 32, 3) and 0.0 <= images.min() and images.max() <= 1.0
  report = sampling.evaluate(workdir=tmp_path / "flow", num=20, references=False,
                             settings={"nfe": 2, "sampler": "euler"})
  assert report["judge"]["workdir"] == str(judge_dir)
  assert report["sampling"]["nfe"] == 2 and "label_accuracy" in report["rows"]["samples"]
  table = fid_by_nfe(tmp_path / "flow", [2], ["euler"], num=20)  # the sampler compiled above
  assert [r["nfe"] for r in table["rows"]] == [2] and table["floor"] > 0


def test_a_streamed_diffusion_run_resumes_and_matches_the_devices_run(colour_digits, tmp_path,
                                                                      capsys):
  config = diffusion_mnist.get_config("ddpm,tiny")
  config.update(dataset=f"folder:{colour_digits}", device_data_mb=0.1, checkpoint_interval=2,
                steps_per_dispatch=2, sample_interval=100)
  half = config.copy_and_resolve_references()
  half.num_steps = 4
  train_diffusion(half, tmp_path / "resumed")
  assert "data: 1.2 MB streamed from the host" in capsys.readouterr().out
  assert train_diffusion(config, tmp_path / "resumed")["start_step"] == 4
  config.device_data_mb = 2048
  train_diffusion(config, tmp_path / "devices")
  assert "data: 1.2 MB on the devices" in capsys.readouterr().out
  jax.tree.map(np.testing.assert_array_equal, final_state(tmp_path / "resumed"),
               final_state(tmp_path / "devices"))


def test_unlabelled_data_trains_but_evaluation_needs_a_labelled_judge(tmp_path, data_root,
                                                                      capsys):
  flat = mnist_folder(tmp_path / "flat", data_root, 60, 20) / "train" / "0"
  config = gan_mnist.get_config("tiny")  # the tutorial's MLPs: the quickest to compile
  config.update(dataset=f"folder:{flat}", eval_interval=3)
  train_gan(config, tmp_path / "gan")
  assert "evaluation off: evaluation needs a labelled judge" in capsys.readouterr().out
  assert sampling.sample_images(tmp_path / "gan", 3).shape == (3, 28, 28)
  with pytest.raises(EvaluationError, match="^judge: evaluation needs a labelled judge, and "
                     "folder:.*/0 has no classes"):
    sampling.evaluate(workdir=tmp_path / "gan", num=20)


def final_state(workdir):
  return runs.restore(workdir).state


def test_streamed_data_resumes_bit_for_bit_and_matches_the_devices_run(colour_digits, tmp_path,
                                                                        capsys):
  config = gan_config(f"folder:{colour_digits}", device_data_mb=0.1, checkpoint_interval=2)
  train_gan(config, tmp_path / "streamed")
  assert "data: 1.2 MB streamed from the host" in capsys.readouterr().out
  half = config.copy_and_resolve_references()
  half.num_steps = 4
  train_gan(half, tmp_path / "resumed")
  assert train_gan(config, tmp_path / "resumed")["start_step"] == 4
  on_devices = config.copy_and_resolve_references()
  on_devices.device_data_mb = 2048
  train_gan(on_devices, tmp_path / "devices")
  assert "data: 1.2 MB on the devices" in capsys.readouterr().out
  whole = final_state(tmp_path / "streamed")
  for other in ("resumed", "devices"):
    jax.tree.map(np.testing.assert_array_equal, whole, final_state(tmp_path / other))


@pytest.mark.parametrize("script,variant,flag,needle", [
    ("gan_mnist", "cgan,tiny", "--config.image_size=30", "--config.g_channels (8, 4) doubles "
     "a side 2 times: it cannot make 30x30 images"),
    ("gan_mnist", "cgan,tiny", "--config.dataset=folder:/nowhere/faces",
     "folder:/nowhere/faces: no such folder"),
    ("diffusion_mnist", "tiny", "--config.image_size=33", "--config.channels (8,) with "
     "--config.patch=2 needs sides that are multiples of 2, not 33x33"),
])
def test_bad_data_flags_are_one_line_and_write_nothing(colour_digits, tmp_path, script, variant,
                                                       flag, needle):
  args = [f"--workdir={tmp_path / 'run'}", f"--config=genjax/configs/{script}.py:{variant}",
          f"--config.dataset=folder:{colour_digits}", flag]
  result = run_experiment(f"{script}.py", *args)
  assert_one_line_error(result, needle)
  assert not (tmp_path / "run").exists() and snapshot(tmp_path) == {}


def test_a_folder_of_mnist_pngs_trains_the_judge_as_the_idx_files_do(tmp_path, data_root):
  """Files named by their index give the IDX arrays in their order: the same weights."""
  config = classifier.get_config("tiny")  # the first 2000 training and 1000 test images
  folder = mnist_folder(tmp_path / "pngs", data_root, config.train_limit, config.test_limit)
  from_idx = train_judge(config, tmp_path / "idx")
  config.dataset = f"folder:{folder}"
  from_folder = train_judge(config, tmp_path / "folder")
  assert from_folder["weights_sha256"] == from_idx["weights_sha256"]
  assert from_folder["test_accuracy"] == from_idx["test_accuracy"]


def test_the_streaming_benchmark_times_both_ways(colour_digits, capsys):
  from genjax.gan.bench import stream_speed

  config = gan_config(f"folder:{colour_digits}", steps_per_dispatch=2)
  record = stream_speed(config, num_steps=6, repeats=1, seconds=0.2)
  out = capsys.readouterr().out
  assert "data: 1.2 MB streamed from the host" in out and "on the devices" in out
  assert [r["mode"] for r in record["runs"]] == ["in_memory", "streamed"]
  assert record["pipeline_images_per_s"] > 0 and record["num_examples"] == 400
  assert record["streamed_over_in_memory"] == pytest.approx(
      record["streamed_images_per_s"] / record["in_memory_images_per_s"])
