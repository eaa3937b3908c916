"""The character language model: vocabulary, windows, cached decoding, a tiny run, resume."""

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genjax.configs.text_lm import VARIANTS, get_config
from genjax.core import loop
from genjax.core.errors import CheckpointError, ConfigError, DataError
from genjax.data import shakespeare
from genjax.text import chars, generate, inference, lm
from genjax.text.lm_models import build_lm, causal_attention, windowed_attention
from tests.conftest import run_experiment, snapshot


def test_the_vocabulary_encodes_and_names_what_it_cannot():
  vocab = chars.build_vocab("hello world\n")
  assert vocab == "\n dehlorw"
  ids = chars.encode("hold\nworld", vocab)
  assert ids.dtype == np.int32 and chars.decode(ids, vocab) == "hold\nworld"
  with pytest.raises(DataError, match=r"my.txt: character 'z' at line 2, column 3 is not in"):
    chars.encode("he\nwoz", vocab, "my.txt")


def test_the_split_is_nanogpts_and_tfds_train_split():
  train, val = shakespeare.split_text("abcdefghij" * 10, 0.1)
  assert len(train) == 90 and train + val == "abcdefghij" * 10


def test_validation_windows_predict_every_character_once():
  tokens = np.arange(1, 12, dtype=np.int32)  # 10 predictions
  inputs, targets, mask = lm.eval_windows(tokens, 4)
  assert inputs.shape == targets.shape == mask.shape == (3, 4)
  assert mask.sum() == 10
  np.testing.assert_array_equal(targets[mask], tokens[1:])
  np.testing.assert_array_equal(inputs[mask], tokens[:-1])
  lines = np.array([0, 5, 7, 0, 6, 7, 7, 7, 7, 7, 0, 5], np.int32)  # newline 0, lines of 2, 7, 1
  inputs, targets, mask = lm.eval_windows(lines, 4, newline_id=0)
  assert mask.sum() == 11 and (inputs[:, 0] == [0, 0, 7, 0]).all()  # the long line goes on
  np.testing.assert_array_equal(targets[mask], lines[1:])
  np.testing.assert_array_equal(inputs[mask], lines[:-1])
  # sliding by 1: the long line's later windows each score one target, from 4 tokens of it
  inputs, targets, mask = lm.eval_windows(lines, 4, newline_id=0, stride=1)
  assert mask.sum() == 11 and inputs[:, 0].tolist() == [0, 0, 6, 7, 7, 0]
  assert mask[2:5].sum(1).tolist() == [1, 1, 1] and mask[2:5, 3].all()
  np.testing.assert_array_equal(targets[mask], lines[1:])


@pytest.mark.parametrize("variant", ["tiny", "lstm,tiny"])
@pytest.mark.parametrize("prompt_less_context", [1, 0, -5])
def test_prefilled_and_cached_decoding_follow_a_full_recompute(variant, prompt_less_context):
  config = get_config(variant)
  model = build_lm(config, 11)
  params = model.init(jax.random.key(0), jnp.zeros((1, config.context), jnp.int32))["params"]
  length = config.context - prompt_less_context  # context - 1, context, context + 5
  prompt = jax.random.randint(jax.random.key(5), (2, length), 0, 11)
  num_new = 2 * config.context  # past the Transformer's context: the sliding window too
  fast, fast_logits = generate.generate_steps(model, params, prompt, num_new,
                                              jax.random.key(1), 1.3, 0)
  slow, slow_logits = generate.generate_by_recomputing(model, params, prompt, num_new,
                                                       jax.random.key(1), 1.3, 0)
  assert fast.shape == (2, num_new) and fast_logits.shape == (2, num_new, 11)
  np.testing.assert_allclose(fast_logits, slow_logits, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(fast, slow)
  assert len(np.unique(np.asarray(fast))) > 3  # a random model draws many characters
  np.testing.assert_array_equal(
      generate.generate_ids(model, params, prompt, num_new, jax.random.key(1), 1.3, 0), fast)


def test_a_prompt_past_the_context_is_read_from_its_last_context_tokens():
  config = get_config("tiny")
  model = build_lm(config, 11)
  params = model.init(jax.random.key(0), jnp.zeros((1, config.context), jnp.int32))["params"]
  prompt = jax.random.randint(jax.random.key(5), (2, config.context + 5), 0, 11)
  whole, cropped = (generate.generate_steps(model, params, p, 8, jax.random.key(1))[1]
                    for p in (prompt, prompt[:, 5:]))
  np.testing.assert_array_equal(whole, cropped)
  # the first new token's logits are those of the last `context` tokens' full pass
  np.testing.assert_allclose(whole[:, 0], model.apply({"params": params}, prompt[:, 5:])[:, -1],
                             rtol=1e-5, atol=1e-5)


def brute_force_nats(model, params, tokens_M, context: int, stride: int) -> np.ndarray:
  """Each next character's nats (the j-th, j = 1 .. M-1), predicted from the characters the
  windows give it: all j before it while j <= context, else context - stride + 1 plus how far
  it lies into the part its window scores; each prefix run through the model on its own."""
  tokens_M = np.asarray(tokens_M)
  j_N = np.arange(1, len(tokens_M))
  seen_N = np.where(j_N <= context, j_N, context - stride + 1 + (j_N - context - 1) % stride)
  prefixes_NxT = np.zeros((j_N.size, context), np.int32)  # right-padded: causal, never read
  for n, (j, seen) in enumerate(zip(j_N, seen_N)):
    prefixes_NxT[n, :seen] = tokens_M[j - seen:j]
  @jax.jit
  def nats_N(prefixes_NxT, seen_N, targets_N):
    logits_NxTxV = model.apply({"params": params}, prefixes_NxT)
    last_NxV = jax.nn.log_softmax(logits_NxTxV[jnp.arange(len(seen_N)), seen_N - 1])
    return -jnp.take_along_axis(last_NxV, targets_N[:, None], 1)[:, 0]

  pad = -j_N.size % 4096  # whole chunks: one compiled shape
  prefixes_NxT = np.pad(prefixes_NxT, ((0, pad), (0, 0)))
  seen_N, targets_N = np.pad(seen_N, (0, pad), constant_values=1), np.pad(tokens_M[j_N], (0, pad))
  nats = np.concatenate([nats_N(*(a[i:i + 4096] for a in (prefixes_NxT, seen_N, targets_N)))
                         for i in range(0, len(seen_N), 4096)])
  return nats[:j_N.size]


@pytest.mark.parametrize("stride", [16, 5, 1])
def test_sliding_windows_score_each_character_once_with_the_context_they_promise(stride):
  text = "To be, or not to be, that is the question:\nWhether 'tis nobler"  # 63 characters
  config = get_config("tiny")
  config.vocab = chars.build_vocab(text)
  setup = lm.build_setup(config)
  params = lm.init_state(setup, jax.random.key(0)).params
  tokens = chars.encode(text, config.vocab)
  inputs, targets, mask = lm.eval_windows(tokens, config.context, stride=stride)
  assert mask.sum() == len(text) - 1 and inputs.shape[0] == -(-(len(text) - 17) // stride) + 1
  np.testing.assert_array_equal(np.sort(targets[mask]), np.sort(tokens[1:]))
  expected = brute_force_nats(setup.model, params, tokens, config.context, stride).mean()
  assert lm.mean_nats(setup, params, tokens, stride) == pytest.approx(expected, rel=1e-5)
  if stride < config.context:  # the windows really differ from consecutive ones
    consecutive = brute_force_nats(setup.model, params, tokens, config.context, 16).mean()
    assert abs(expected - consecutive) > 1e-4


def test_bfloat16_compute_follows_float32_and_keeps_float32_parameters():
  config = get_config("tiny")
  config.update(width=64, context=32)
  model32 = build_lm(config, 11)
  config.compute_dtype = "bfloat16"
  model16 = build_lm(config, 11)
  tokens = jax.random.randint(jax.random.key(2), (4, 33), 0, 11)
  params = model32.init(jax.random.key(0), tokens[:, :-1])["params"]

  def loss(model, p):
    logits = model.apply({"params": p}, tokens[:, :-1])
    assert logits.dtype == jnp.float32
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[:, 1:, None], -1))

  loss32, grads32 = jax.value_and_grad(lambda p: loss(model32, p))(params)
  loss16, grads16 = jax.value_and_grad(lambda p: loss(model16, p))(params)
  assert abs(float(loss16 - loss32)) < 1e-3 * float(loss32)
  flat32, flat16 = (jnp.concatenate([g.ravel() for g in jax.tree.leaves(t)])
                    for t in (grads32, grads16))
  assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads16))
  cosine = jnp.dot(flat32, flat16) / (jnp.linalg.norm(flat32) * jnp.linalg.norm(flat16))
  assert float(cosine) > 0.999 and not jnp.array_equal(flat32, flat16)
  hlo = jax.jit(jax.grad(lambda p: loss(model16, p))).lower(params).as_text()
  assert "bf16" in hlo  # the matmuls really take bfloat16 operands


def test_mixed_attention_and_its_hand_written_gradient_follow_float32():
  q, k, v = jax.random.normal(jax.random.key(3), (3, 2, 16, 2, 8))
  q16, k16, v16 = (a.astype(jnp.bfloat16) for a in (q, k, v))
  allowed = jnp.tril(jnp.ones((16, 16), bool))

  def loss(q_, k_, v_):
    return jnp.sum(jnp.sin(3.0 * causal_attention(q_, k_, v_, allowed).astype(jnp.float32)))

  out16 = causal_attention(q16, k16, v16, allowed)
  assert out16.dtype == jnp.bfloat16
  grads16 = jax.grad(loss, (0, 1, 2))(q16, k16, v16)
  grads32 = jax.grad(loss, (0, 1, 2))(*(a.astype(jnp.float32) for a in (q16, k16, v16)))
  for name, got, ref in zip("qkv", grads16, grads32):
    assert got.dtype == jnp.bfloat16, name
    scale = float(jnp.max(jnp.abs(ref)))
    assert float(jnp.max(jnp.abs(got.astype(jnp.float32) - ref))) < 0.03 * scale, name
  # the last key and value are the last query's alone: the others' gradients ignore them
  np.testing.assert_array_equal(
      jax.grad(lambda q_: loss(q_, k16, v16))(q16)[:, :-1],
      jax.grad(lambda q_: loss(q_, k16.at[:, -1].set(7), v16.at[:, -1].set(7)))(q16)[:, :-1])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_attention_in_blocks_of_queries_is_the_whole_windows_in_values_and_gradients(dtype):
  q, k, v = (a.astype(dtype) for a in jax.random.normal(jax.random.key(4), (3, 2, 16, 2, 8)))
  weights = jax.random.normal(jax.random.key(5), (2, 16, 2, 8))
  allowed = jnp.tril(jnp.ones((16, 16), bool))

  def loss(attend, q_, k_, v_):
    return jnp.sum(jnp.sin(attend(q_, k_, v_).astype(jnp.float32)) * weights)

  whole = lambda q_, k_, v_: causal_attention(q_, k_, v_, allowed)  # noqa: E731
  tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=0.02, atol=0.02)
  for blocks in (2, 4, 3):  # 3 does not divide 16: one block, the whole window
    blocked = lambda q_, k_, v_: windowed_attention(q_, k_, v_, blocks)  # noqa: E731,B023
    got, want = blocked(q, k, v), whole(q, k, v)
    assert got.dtype == want.dtype == jnp.dtype(dtype)
    np.testing.assert_allclose(got.astype(jnp.float32), want.astype(jnp.float32), **tol)
    grads = jax.grad(lambda *a: loss(blocked, *a), (0, 1, 2))(q, k, v)  # noqa: B023
    grads_whole = jax.grad(lambda *a: loss(whole, *a), (0, 1, 2))(q, k, v)
    for got_g, want_g in zip(grads, grads_whole):
      assert float(jnp.max(jnp.abs(want_g.astype(jnp.float32)))) > 0
      np.testing.assert_allclose(got_g.astype(jnp.float32), want_g.astype(jnp.float32), **tol)


def test_muon_orthogonalizes_the_dense_kernels_and_adamw_moves_the_rest():
  config = get_config("tiny")
  config.width = 64
  model = build_lm(config, 11)
  tokens = jax.random.randint(jax.random.key(2), (4, 17), 0, 11)
  params = model.init(jax.random.key(0), tokens[:, :-1])["params"]

  def loss(p):
    logits = model.apply({"params": p}, tokens[:, :-1])
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[:, 1:, None], -1))

  grads = jax.grad(loss)(params)
  tx = lm.muon(config, 0.01)
  updates, _ = tx.update(grads, tx.init(params), params)

  def eighth(matrix):  # the eighth largest singular value over the largest
    s = jnp.linalg.svd(matrix, compute_uv=False)
    return float(s[7] / s[0])

  for block in ("attention", "mlp_in"):
    path = ("blocks_0", "attention", "qkv") if block == "attention" else ("blocks_0", "mlp_in")
    update, grad = updates, grads
    for key in path:
      update, grad = update[key], grad[key]
    # Newton-Schulz pulls the momentum's leading singular values together (towards 1)
    assert eighth(update["kernel"]) > 0.5 > eighth(grad["kernel"]), block
  # AdamW's first step moves every coordinate of the embedding by the same amount (g / |g|),
  # besides its weight decay
  step = updates["embed"]["embedding"] + 0.01 * config.weight_decay * params["embed"]["embedding"]
  moved = jnp.abs(step)[jnp.abs(grads["embed"]["embedding"]) > 1e-6]
  assert moved.size > 100 and float(moved.std() / moved.mean()) < 1e-3


@pytest.mark.parametrize("optimizer", ["muon", "adamw"])
def test_weight_decay_reaches_the_same_parameters_under_muon_and_adamw(optimizer):
  config = get_config("tiny")
  config.update(vocab="abcdefghijk", optimizer=optimizer, warmup_steps=1)
  setup = lm.build_setup(config)
  state = lm.init_state(setup, jax.random.key(0))
  params, opt_state = state.params, state.opt_state
  zeros = jax.tree.map(jnp.zeros_like, params)  # no gradient: the decay alone moves a weight
  for _ in range(2):  # the first step's learning rate is 0 (the warmup's start)
    updates, opt_state = setup.tx.update(zeros, opt_state, params)
    params = optax.apply_updates(params, updates)
  shrink = 1 - float(setup.tx_schedule(1)) * config.weight_decay
  assert shrink < 0.9999
  for (path, before), after in zip(jax.tree_util.tree_leaves_with_path(state.params),
                                   jax.tree.leaves(params)):
    # matrices (kernels, the embedding, the positions) shrink by lr * weight_decay; vectors not
    expected = np.asarray(before) * (shrink if before.ndim >= 2 else 1.0)
    np.testing.assert_allclose(after, expected, rtol=1e-6, atol=1e-9,
                               err_msg=jax.tree_util.keystr(path))
  if optimizer == "muon":  # and Muon is for the Transformer only
    config.update(model="lstm")
    with pytest.raises(ConfigError, match="^config.optimizer 'muon' is for the Transformer"):
      lm.validate(config)


def test_guidance_of_one_is_the_conditioned_model_and_more_moves_away_from_the_other():
  config = get_config("tiny")
  model = build_lm(config, 11)
  params = model.init(jax.random.key(0), jnp.zeros((1, config.context), jnp.int32))["params"]
  cond, uncond = jnp.array([[3, 1, 4], [3, 1, 4]]), jnp.array([[3, 2, 4], [3, 2, 4]])
  num_new = config.context + 4  # the cache, then the sliding window
  plain = generate.generate_ids(model, params, cond, num_new, jax.random.key(1), 1.0, 0)
  paired = jnp.concatenate([cond, uncond])
  same = generate.generate_ids(model, params, paired, num_new, jax.random.key(1), 1.0, 0, 1.0)
  np.testing.assert_array_equal(same, plain)
  pushed = generate.generate_ids(model, params, paired, num_new, jax.random.key(1), 1.0, 0, 4.0)
  assert pushed.shape == plain.shape and not np.array_equal(pushed, plain)
  logits_c, logits_u = jnp.array([[0.0, 1.0]]), jnp.array([[0.0, 3.0]])
  np.testing.assert_allclose(generate.guided(jnp.concatenate([logits_c, logits_u]), 2.0),
                             [[0.0, -1.0]])


def test_windows_from_line_starts_begin_at_a_newline_and_labels_are_withheld_at_the_rate():
  tokens = jnp.asarray(np.array([0, 5, 7, 7, 0, 6, 7, 0, 5, 7, 7, 7, 0, 6], np.int32))
  starts = lm.corpora.line_starts(tokens, 0, context=4)
  assert starts.tolist() == [0, 4, 7]  # 12 leaves fewer than 5 tokens
  data = {"tokens": tokens, "starts": jnp.asarray(starts)}
  inputs, targets = lm.random_windows(data, jax.random.key(0), 64, 4)
  assert (inputs[:, 0] == 0).all() and set(inputs[:, 1].tolist()) == {5, 6}
  np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
  withheld = lm.withhold_labels(inputs, jax.random.key(1), 0.5, 9)
  changed = np.asarray(withheld != inputs)
  assert not changed[:, [0, 2, 3]].any() and (np.asarray(withheld[:, 1])[changed[:, 1]] == 9).all()
  assert 16 < changed[:, 1].sum() < 48


def test_the_label_loss_is_bayes_rule_over_the_first_line():
  targets = jnp.array([[5, 7, 8, 0, 9, 0], [6, 0, 7, 7, 7, 7]])  # newline 0
  line = lm.first_line_mask(targets, 0)
  assert line.tolist() == [[False, True, True, True, False, False],
                           [False, True, False, False, False, False]]
  nats, flipped = jnp.ones((2, 6)), jnp.full((2, 6), 2.0)
  # the true label's line: 3 and 1 nats; the other's: 6 and 2
  np.testing.assert_allclose(lm.label_nll_B(nats, flipped, line),
                             [np.log1p(np.exp(-3.0)), np.log1p(np.exp(-1.0))], rtol=1e-6)


def test_top_k_keeps_only_the_k_most_likely():
  logits = jnp.log(jnp.array([[0.1, 0.5, 0.05, 0.35]]))
  draws = {int(generate.sample_next(logits, jax.random.key(i), 1.0, 2)[0]) for i in range(200)}
  assert draws == {1, 3}


def test_the_step_keeps_a_moving_average_and_evaluation_uses_it():
  text = "To be, or not to be, that is the question:\n" * 8
  for decay in (0.999, 0.0):
    config = get_config("tiny")
    config.update(vocab=chars.build_vocab(text), ema_decay=decay)
    setup = lm.build_setup(config)
    state = lm.init_state(setup, jax.random.key(0))
    first = jax.tree.map(np.asarray, state.params)
    data = {"tokens": jnp.asarray(chars.encode(text, config.vocab, "text")), "starts": None}
    state, _ = lm.train_step(setup, state, data, jax.random.key(1))
    if not decay:
      # without the average, its field holds nothing (no second copy of the weights)
      assert state.ema_params == {} and jax.tree.leaves(state.ema_params) == []
      assert lm.eval_params(setup, state) is state.params
      continue
    # the first update's decay is (1 + 0) / (10 + 0): the average is mostly the new weights
    expected = jax.tree.map(lambda a, b: 0.1 * a + 0.9 * np.asarray(b), first, state.params)
    jax.tree.map(lambda e, x: np.testing.assert_allclose(e, x, rtol=1e-6, atol=1e-7),
                 lm.eval_params(setup, state), expected)
    assert not np.array_equal(state.params["embed"]["embedding"],
                              state.ema_params["embed"]["embedding"])


@pytest.mark.parametrize("key,value,needle", [
    ("model", "gru", "config.model"), ("context", 0, "config.context"),
    ("context", 100_000, "longer than the model's maximum"), ("num_heads", 3, "config.width"),
    ("dropout", 1.0, "config.dropout"), ("validation_fraction", 0.6, "validation_fraction"),
    ("window_starts", "words", "config.window_starts"), ("label_dropout", 0.1, "sst2_conditional"),
    ("label_loss_weight", 1.0, "sst2_conditional"), ("ema_decay", 1.0, "config.ema_decay"),
    ("cpu_devices", 0, "config.cpu_devices")])
def test_bad_config_names_the_field(key, value, needle):
  config = get_config("tiny")
  config[key] = value
  with pytest.raises(ConfigError, match=needle):
    lm.validate(config)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_named_variant_passes_the_config_checks(variant):
  lm.validate(get_config(variant))
  lm.validate(get_config(f"{variant},tiny"))


def test_corpus_problems_are_one_line_and_write_nothing(tmp_path):
  bad = tmp_path / "latin1.txt"
  bad.write_bytes("caf\xe9\n".encode("latin-1"))
  (tmp_path / "empty.txt").write_text("")
  (tmp_path / "short.txt").write_text("to be or not to be\n" * 2)
  for name, needle in (("latin1.txt", "not UTF-8 text"), ("empty.txt", "empty"),
                       ("short.txt", "config.context 16 needs a training text longer")):
    config = get_config("tiny")
    config.update(text_file=str(tmp_path / name), context=16 if name != "short.txt" else 64)
    with pytest.raises((DataError, ConfigError), match=needle if name != "short.txt"
                       else "config.context 64 needs"):
      lm.train_lm(config, tmp_path / "run")
  assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_root):
  workdir = tmp_path_factory.mktemp("lm") / "run"
  config = get_config("tiny")
  config.data_dir = data_root
  return workdir, config, lm.train_lm(config, workdir)


def test_a_tiny_run_writes_its_outputs(tiny_run):
  workdir, _, summary = tiny_run
  result = json.loads((workdir / "eval.json").read_text())
  assert set(result) >= {"val_loss", "val_bpc", "train_loss", "params", "tokens_seen",
                         "train_seconds"}
  assert result["val_bpc"] == pytest.approx(result["val_loss"] / np.log(2))
  assert 2.0 < result["val_loss"] < np.log(65) + 0.2  # near uniform after 6 steps, not worse
  assert result["tokens_seen"] == 6 * 8 * 16 and summary["eval"] == result
  # evaluated with the weights' moving average, the trained weights' own loss beside it
  assert 2.0 < result["val_loss_without_ema"] != result["val_loss"]
  evals = [r for r in loop.MetricsLog.read(workdir / "metrics.jsonl") if r.get("kind")]
  assert [r["step"] for r in evals] == [3, 6] and evals[-1]["val_loss"] == result["val_loss"]
  assert sorted(p.name for p in (workdir / "samples").iterdir()) == ["3.txt", "6.txt"]
  assert len((workdir / "samples" / "6.txt").read_text()) == 1 + 20
  assert (workdir / "loss_curve.png").stat().st_size > 1000
  config = json.loads((workdir / "config.json").read_text())
  assert len(config["vocab"]) == 65  # Tiny Shakespeare's characters


@pytest.mark.slow
def test_a_run_split_over_two_cpu_devices_trains_as_one_device(tiny_run, data_root, tmp_path):
  """experiments/text_lm.py splits the CPU before JAX starts: the batch goes half to each
  device, and the run follows the one-device run to float32 rounding (the gradients' sums
  in another order)."""
  result = run_experiment("text_lm.py", "--config=genjax/configs/text_lm.py:tiny",
                          "--config.cpu_devices=2", f"--workdir={tmp_path / 'run'}",
                          data_root=data_root)
  assert result.returncode == 0, result.stderr[-3000:]
  split = json.loads((tmp_path / "run" / "eval.json").read_text())
  one = json.loads((tiny_run[0] / "eval.json").read_text())
  assert split["devices"] == 2 and one["devices"] == 1
  assert split["val_loss"] == pytest.approx(one["val_loss"], rel=1e-4)


def test_scoring_the_validation_text_gives_the_validation_loss(tiny_run, data_root):
  workdir, config, _ = tiny_run
  _, val_text = shakespeare.split_text(shakespeare.load_text(data_root), 0.1)
  setup, params, restored, _ = inference.restore_lm(workdir)
  # The text cut into consecutive rows of `context` predictions, by a reshape, run through the
  # run's averaged weights: the validation loss computed without eval_windows or mean_nats.
  tokens = chars.encode(val_text, restored.vocab)
  pad = -(len(tokens) - 1) % config.context
  inputs_WxT, targets_WxT = (np.pad(a, (0, pad), constant_values=-1).reshape(-1, config.context)
                             for a in (tokens[:-1], tokens[1:]))
  log_p = jax.jit(lambda x: jax.nn.log_softmax(setup.model.apply({"params": params}, x)))
  nats_WxT = -np.take_along_axis(np.asarray(log_p(np.maximum(inputs_WxT, 0))),
                                 np.maximum(targets_WxT, 0)[..., None], -1)[..., 0]
  expected = nats_WxT[targets_WxT >= 0].mean(dtype=np.float64)
  score = inference.score_text(workdir, val_text)
  assert score["nats_per_char"] == pytest.approx(expected, rel=1e-5)
  assert json.loads((workdir / "eval.json").read_text())["val_loss"] == pytest.approx(
      expected, rel=1e-5)
  assert score["predicted_chars"] == len(val_text) - 1
  assert score["windows"] == "consecutive, 16 characters"
  sliding = inference.score_text(workdir, val_text[:500], stride=4)
  assert sliding["windows"] == "sliding, 16 characters, stride 4"
  for stride in (0, -1, 17):
    with pytest.raises(ConfigError, match="^stride "):
      inference.score_text(workdir, val_text[:500], stride=stride)
  with pytest.raises(DataError, match="'é' at line 1, column 4"):
    inference.score_text(workdir, "caf\u00e9 au lait")


def test_generation_is_deterministic_and_checks_its_arguments(tiny_run):
  workdir = tiny_run[0]
  text = inference.generate_text(workdir, "ROMEO:", 40, seed=3)
  assert text.startswith("ROMEO:") and len(text) == 46
  assert inference.generate_text(workdir, "ROMEO:", 40, seed=3) == text
  assert inference.generate_text(workdir, "ROMEO:", 40, seed=4) != text
  with pytest.raises(ConfigError, match="^num_chars must be a positive integer"):
    inference.generate_text(workdir, "A", 0)
  with pytest.raises(DataError, match="--prompt: character '#'"):
    inference.generate_text(workdir, "A#", 5)


@pytest.mark.slow
def test_resume_is_bit_identical_and_the_schedule_may_not_stretch(tiny_run, tmp_path):
  whole_dir, config, _ = tiny_run
  # An interrupted run (its last checkpoint never written) resumes bit for bit.
  shutil.copytree(whole_dir, tmp_path / "resumed")
  shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "6")
  assert lm.train_lm(config, tmp_path / "resumed")["start_step"] == 3
  whole, resumed = (inference.restore_lm(d)[1] for d in (whole_dir, tmp_path / "resumed"))
  jax.tree.map(np.testing.assert_array_equal, whole, resumed)
  # The cosine is laid over num_steps: stretching it would change the steps already taken.
  longer = config.copy_and_resolve_references()
  longer.num_steps = 12
  before = snapshot(tmp_path / "resumed")
  with pytest.raises(ConfigError, match="config.num_steps 12 would change the learning rates"):
    lm.train_lm(longer, tmp_path / "resumed")
  assert snapshot(tmp_path / "resumed") == before


def test_a_checkpoint_refuses_a_corpus_with_another_vocabulary(tmp_path):
  corpus = tmp_path / "corpus.txt"
  corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 20)
  config = get_config("tiny")
  config.update(text_file=str(corpus), num_steps=2, checkpoint_interval=2, eval_interval=2,
                sample_interval=2)
  lm.train_lm(config, tmp_path / "run")
  corpus.write_text("THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG\n" * 20)
  before = snapshot(tmp_path / "run")
  with pytest.raises(CheckpointError, match="vocabulary .* is not the data's"):
    lm.train_lm(config, tmp_path / "run")
  assert snapshot(tmp_path / "run") == before
