"""The sentence classifier: tokenization, masks, length buckets, a tiny run, resume, predict."""

import itertools
import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax.configs.text_classify import get_config
from genjax.core import sharding
from genjax.core.errors import CheckpointError, ConfigError, DataError
from genjax.text import classify, sentences, words
from genjax.text.classifier_models import build_classifier
from tests.conftest import snapshot


def test_raw_text_is_tokenized_as_sst2_is():
  assert words.tokenize("It's a gorgeous, witty film!") == \
      ["it", "'s", "a", "gorgeous", ",", "witty", "film", "!"]
  vocab = words.build_vocab([("a", "film"), ("a", "dull", "film")])
  ids = words.encode(["a", "film", "unseen"], words.lookup(vocab))
  assert words.decode(ids, vocab) == ["a", "film", vocab[ids[2]]] and ids[2] != 0  # <unk>


@pytest.mark.parametrize("encoder, pooling, subword_buckets", [
    ("bilstm", "meanmax", 0), ("lstm", "attention", 0), ("gru", "meanmax", 0),
    ("bilstm", "meanmax", 64)])
def test_padding_changes_no_logit(encoder, pooling, subword_buckets):
  config = get_config("tiny")
  config.update(encoder=encoder, pooling=pooling, subword_buckets=subword_buckets)
  model = build_classifier(config, 50)
  g = 3 if subword_buckets else 0
  params = model.init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32), jnp.ones((1,), jnp.int32),
                      subwords_BxTxG=jnp.zeros((1, 1, g), jnp.int32))

  def apply(tokens, lengths, subwords):
    return model.apply(params, tokens, lengths, subwords_BxTxG=subwords[..., :g])

  sentence = jnp.array([[5, 9, 3]], jnp.int32)
  sub = jnp.array([[[4, 8, 0], [9, 0, 0], [2, 3, 5]]], jnp.int32)
  alone = apply(sentence, jnp.array([3]), sub)
  padded = jnp.array([[5, 9, 3, 0, 0, 0, 0, 0], [7, 7, 7, 7, 7, 7, 7, 7]], jnp.int32)
  sub_padded = jnp.zeros((2, 8, 3), jnp.int32).at[0, :3].set(sub[0]).at[1].set(6)
  together = apply(padded, jnp.array([3, 8]), sub_padded)
  np.testing.assert_allclose(together[0], alone[0], rtol=1e-5, atol=1e-6)
  garbage = padded.at[0, 3:].set(11)  # what sits past the length is never read
  np.testing.assert_allclose(apply(garbage, jnp.array([3, 8]), sub_padded.at[0, 3:].set(7))[0],
                             alone[0], rtol=1e-5, atol=1e-6)
  if subword_buckets:  # the subwords count: other ones, another logit
    assert abs(float(apply(sentence, jnp.array([3]), sub.at[0, 1, 0].set(1))[0] - alone[0])) > 0
    with pytest.raises(ValueError, match="subword_buckets=64"):  # named, not a shape error
      model.apply(params, sentence, jnp.array([3]))


def batches_of_epoch(family, epoch: int) -> list[tuple[int, int]]:
  """(bucket, batch within it) of every step of an epoch, as the chunks index them."""
  steps = int(family.offsets[-1])
  order, step = [], epoch * steps
  while step < (epoch + 1) * steps:
    bucket, offset, left = family.segment_at(step)
    order += [(bucket, s % steps - offset) for s in range(step, step + left)]
    step += left
  return order


@pytest.mark.parametrize("segment_batches", [0, 5])
def test_an_epoch_runs_every_batch_of_every_bucket_once(segment_batches, data_root):
  config = get_config("tiny")
  config.update(data_dir=data_root, segment_batches=segment_batches)
  family = classify.ClassifierFamily(classify.ClassifierFamily.validate(config),
                                     sharding.make_mesh(1))
  family.load_data()
  every_batch = sorted((b, k) for b, n in enumerate(np.diff(family.offsets)) for k in range(n))
  first, second = batches_of_epoch(family, 0), batches_of_epoch(family, 1)
  assert sorted(first) == sorted(second) == every_batch
  if segment_batches:  # shuffled pieces of at most 5 batches, in another order each epoch
    assert first != every_batch and first != second
    runs = [len(list(g)) for _, g in itertools.groupby(b for b, _ in first)]
    assert max(runs) >= 5 and first[:5] == [(first[0][0], first[0][1] + i) for i in range(5)]
  else:
    assert first == second == every_batch  # bucket after bucket


@pytest.mark.parametrize("key, value, needle", [
    ("encoder", "cnn", "config.encoder"), ("buckets", (16, 8), "config.buckets"),
    ("embed_dropout", 1.5, "config.embed_dropout"), ("batch_size", 0, "config.batch_size"),
    ("adversarial_eps", -1.0, "config.adversarial_eps"),
    ("segment_batches", -1, "config.segment_batches")])
def test_bad_config_names_the_field(key, value, needle, tmp_path):
  config = get_config("tiny")
  config[key] = value
  with pytest.raises(ConfigError, match=needle):
    classify.train_classifier(config, tmp_path / "run")
  assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_root):
  workdir = tmp_path_factory.mktemp("sst2") / "run"
  config = get_config("tiny")
  config.data_dir = data_root
  return workdir, config, classify.train_classifier(config, workdir)


def test_a_tiny_run_writes_its_outputs(tiny_run):
  workdir, _, summary = tiny_run
  result = json.loads((workdir / "eval.json").read_text())
  assert result["num_dev"] == 872 and 0 <= result["dev_accuracy"] <= 100
  assert sum(map(sum, result["confusion"])) == 872
  assert sum(b["count"] for b in result["accuracy_by_length"]) == 872
  assert (workdir / "loss_curve.png").stat().st_size > 0 and (workdir / "vocab.json").exists()
  assert summary["eval"]["dev_accuracy"] == result["dev_accuracy"]


def test_predict_agrees_with_the_dev_evaluation(tiny_run, data_root):
  workdir, _, summary = tiny_run
  from genjax.data import sst2
  dev = sst2.load_split("dev", data_root)
  labels, p_positive = classify.predict(workdir, [" ".join(s) for s in dev.sentences])
  assert round(100 * float(np.mean(labels == dev.labels_N)), 2) == \
      summary["eval"]["dev_accuracy"]
  assert np.all((p_positive > 0.5) == (labels == 1))
  # a line without words is skipped in place; the others keep their rows and their labels
  some = [" ".join(s) for s in dev.sentences[:3]]
  labels, p_positive = classify.predict(workdir, [some[0], "   ", "", some[1], some[2]])
  assert labels.tolist() == [labels[0], -1, -1, labels[3], labels[4]]
  assert np.isnan(p_positive[[1, 2]]).all() and not np.isnan(p_positive[[0, 3, 4]]).any()
  np.testing.assert_array_equal(p_positive[[0, 3, 4]], classify.predict(workdir, some)[1])
  with pytest.raises(DataError, match="^reviews.txt: no words to classify"):
    classify.predict(workdir, ["", "   "], "reviews.txt")


def test_a_sentence_past_the_last_bucket_is_padded_in_few_rows_and_keeps_its_logit(tiny_run):
  workdir = tiny_run[0]
  assert [sentences.padded_width(n, (16, 64)) for n in (64, 65, 128, 129, 5000)] == \
      [64, 128, 128, 256, 8192]
  # one long sentence is one row, not a batch of 128 rows of 8,192 tokens; more come in
  # powers of two, at most the tokens of a batch of the last bucket
  assert [sentences.batch_rows(w, n, (16, 64), 128) for w, n in (
      (64, 1), (8192, 1), (256, 3), (256, 100), (8192, 100))] == [128, 1, 4, 32, 1]
  restored = classify.restore_classifier(workdir)
  model, params, config, vocab, _ = restored
  assert tuple(config.buckets) == (16, 64) and config.eval_batch_size == 128
  long_sentence = " ".join(["a", "dull", ",", "witty", "film"] * 30)  # 150 tokens
  labels, p_positive = classify.predict(restored, [long_sentence, "a witty film"])
  # the logit of the whole batch of rows it used to be padded into
  encoded = sentences.encode_sentences([words.tokenize(long_sentence)], words.lookup(vocab),
                                       config)
  logit = classify.logits_of(model, params, *sentences.pad_rows(encoded, 256, 128))[0]
  assert p_positive[0] == pytest.approx(float(jax.nn.sigmoid(logit)), abs=1e-6)
  assert labels[0] == int(logit > 0)


def test_resume_is_bit_identical_and_refuses_another_vocabulary(tiny_run, tmp_path):
  whole_dir, config, whole = tiny_run
  half = config.copy_and_resolve_references()
  half.num_steps = 60  # the schedule spans num_epochs whatever num_steps is
  classify.train_classifier(half, tmp_path / "run")
  resumed = classify.train_classifier(config, tmp_path / "run")
  assert resumed["start_step"] == 60
  assert resumed["eval"]["dev_loss"] == whole["eval"]["dev_loss"]
  # The same config on other training data (a word changed): another vocabulary.
  lines = (Path(config.data_dir) / "sst2" / "train.tsv").read_text().splitlines(True)
  (tmp_path / "data" / "sst2").mkdir(parents=True)
  (tmp_path / "data" / "sst2" / "train.tsv").write_text(
      "".join(lines[:1] + [line.replace(" the ", " zzyzx ", 1) for line in lines[1:3001]]))
  shutil.copy(Path(config.data_dir) / "sst2" / "dev.tsv", tmp_path / "data" / "sst2")
  other = config.copy_and_resolve_references()
  other.data_dir = str(tmp_path / "data")
  before = snapshot(tmp_path / "run")
  with pytest.raises(CheckpointError, match="vocabulary"):
    classify.train_classifier(other, tmp_path / "run")
  assert snapshot(tmp_path / "run") == before


def test_adversarial_training_adds_the_loss_at_the_worst_nearby_word_vectors():
  config = get_config("tiny")
  config.update(vocab_size=30, steps_per_epoch=5, embed_dropout=0.0, word_dropout=0.0,
                feature_dropout=0.0, adversarial_eps=0.5, subword_buckets=0)
  setup = classify.build_setup(config)
  state = classify.init_state(setup, jax.random.key(0))
  tokens_BxT = jax.random.randint(jax.random.key(1), (4, 6), 2, 30)
  lengths_B, labels_B = jnp.array([6, 3, 5, 1]), jnp.array([1, 0, 1, 0])
  mask_BxTx1 = (jnp.arange(6)[None, :] < lengths_B[:, None])[..., None]

  @jax.jit
  def loss_and_grads(params, delta_BxTxE):
    def loss(params, delta_BxTxE):
      logits_B = setup.model.apply({"params": params}, tokens_BxT, lengths_B,
                                   embed_delta_BxTxE=delta_BxTxE)
      return jnp.mean(optax.sigmoid_binary_cross_entropy(logits_B, labels_B.astype(float)))
    return jax.value_and_grad(loss, argnums=(0, 1))(params, delta_BxTxE)

  zeros_BxTxE = jnp.zeros((4, 6, config.embed_dim))
  clean, (clean_grads, g_BxTxE) = loss_and_grads(state.params, zeros_BxTxE)
  delta_BxTxE = classify.adversarial_delta(g_BxTxE, 0.5)
  np.testing.assert_allclose(jnp.sqrt(jnp.sum(delta_BxTxE**2, axis=(1, 2))), 0.5, rtol=1e-5)
  assert not jnp.any(jnp.where(mask_BxTx1, 0.0, delta_BxTxE))  # padding is never moved
  noise_BxTxE = jnp.where(mask_BxTx1, jax.random.normal(jax.random.key(2), g_BxTxE.shape), 0)
  noisy, _ = loss_and_grads(state.params, classify.adversarial_delta(noise_BxTxE, 0.5))
  worst, (worst_grads, _) = loss_and_grads(state.params, delta_BxTxE)
  assert worst > noisy and worst > clean + 1e-3
  # The step: the optimizer fed the clean gradient plus the one at the perturbation (its
  # moments show it: at step 0 the warmup's rate is 0), reported with the clean loss.
  step = jax.jit(classify.train_step, static_argnums=0)
  batch = sentences.Bucket(tokens_BxT, lengths_B, labels_B, jnp.zeros((4, 6, 0), jnp.int32))
  new_state, metrics = step(setup, state, batch, jax.random.key(3))
  np.testing.assert_allclose(metrics["loss"], clean, rtol=1e-5)
  _, expected = jax.jit(setup.tx.update)(jax.tree.map(jnp.add, clean_grads, worst_grads),
                                         state.opt_state, state.params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7),
               new_state.opt_state, expected)


@pytest.mark.slow
def test_the_benchmark_weights_each_buckets_program_by_its_steps(data_root):
  from genjax.text.classify_bench import benchmark_classifier
  config = get_config("tiny")
  config.data_dir = data_root
  limits = {"matmul_flops_per_s": 1e11, "bytes_per_s": 1e10}
  record = benchmark_classifier(config, seconds=0.2, repeats=2, limits=limits)
  short, long = record["buckets"]  # tiny: sentences of up to 16 tokens, then up to 64
  assert (short["width"], long["width"]) == (16, 64)
  assert short["share"] + long["share"] == pytest.approx(1.0) and short["share"] > long["share"]
  # The LSTM runs once per token (a scan XLA's cost analysis sees once): four times the
  # tokens, over twice the kernels and about four times the FLOPs.
  assert long["kernels"] > 2 * short["kernels"]
  assert 3 < long["flops"] / short["flops"] < 5, (long["flops"], short["flops"])
  assert record["flops"] == pytest.approx(short["share"] * short["flops"]
                                          + long["share"] * long["flops"])
  assert 1 / record["steps_per_s"] == pytest.approx(short["share"] / short["steps_per_s"]
                                                    + long["share"] / long["steps_per_s"])
  assert record["bound"] in ("compute", "memory", "cache", "overhead")
  # The dots timed alone, weighted as the buckets are (their times are the benchmark's to judge).
  assert long["dots_alone_s"] > 0 and short["dots_alone_s"] > 0
  assert record["dots_alone_s"] == pytest.approx(short["share"] * short["dots_alone_s"]
                                                 + long["share"] * long["dots_alone_s"])

