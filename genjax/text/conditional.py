"""The two halves together: a label-conditioned language model's sentences judged by the
sentence classifier, as the conditional GAN's images are judged by the CNN.

A conditional model (genjax/configs/text_lm.py:sst2_conditional) trains on SST-2's sentences,
each behind its label's character; asked for a label, it continues "\\n" + that character up
to the next newline. The classifier then says which label each sentence reads as.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from genjax.core.errors import ConfigError, GenjaxError, field_error
from genjax.data import sst2
from genjax.text import chars, classify, lm
from genjax.text.corpora import LABEL_CHARS, NULL_LABEL, readable
from genjax.text.generate import context_limit, generate_ids
from genjax.text.inference import restore_lm

BATCH = 100  # sentences decoded together


def restored_as(restore, workdir, field: str):
  """restore(workdir), an error about the workdir naming `field`, the argument that gave it
  (judge takes two workdirs: each error says which)."""
  try:
    return restore(workdir)
  except GenjaxError as exc:
    text = str(exc)
    if exc.field != "workdir" or not text.startswith("workdir"):
      raise
    raise type(exc)(field + text[len("workdir"):], field=field) from None


def restore_conditional_lm(lm_workdir):
  """(setup, params, config, workdir) of a label-conditioned language model's newest
  checkpoint; another model is a one-line error."""
  setup, params, config, _ = restore_lm(lm_workdir)
  if config.dataset != "sst2_conditional":
    raise ConfigError(f"{lm_workdir} holds a model of {config.dataset!r}, not a "
                      "label-conditioned one (train --config=genjax/configs/text_lm.py:"
                      "sst2_conditional)")
  return setup, params, config, lm_workdir


def sample_sentences(restored, label: int, num: int, seed: int = 0, max_chars: int = 0,
                     temperature: float = 1.0, top_k: int = 0,
                     guidance: float | None = None) -> list[str]:
  """`num` sentences the model (restore_conditional_lm's) writes when asked for `label`
  (0 negative, 1 positive), each at most max_chars long (0: what the model's context holds
  after the prompt). guidance: classifier-free guidance's weight (None: the conditioned model
  alone)."""
  setup, params, config, lm_workdir = restored
  if guidance is not None and not config.label_dropout:
    raise field_error("guidance", f"needs a model trained with labels withheld; {lm_workdir} "
                      "was not (config.label_dropout=0)")
  prompt_BxP = jnp.tile(jnp.asarray(chars.encode("\n" + LABEL_CHARS[label], config.vocab,
                                                 "prompt"))[None], (BATCH, 1))
  if guidance is not None:  # the same rows without the label, for the guided mix
    prompt_BxP = jnp.concatenate([prompt_BxP, jnp.tile(jnp.asarray(chars.encode(
        "\n" + NULL_LABEL, config.vocab, "prompt"))[None], (BATCH, 1))])
  limit = context_limit(setup.model)
  max_chars = max_chars or (limit - prompt_BxP.shape[1] if limit else 200)
  key = jax.random.fold_in(jax.random.key(seed), label)
  sentences = []
  for start in range(0, num, BATCH):
    ids = generate_ids(setup.model, params, prompt_BxP, max_chars,
                       jax.random.fold_in(key, start), float(temperature), top_k,
                       None if guidance is None else float(guidance))
    for row in np.asarray(ids):
      line = chars.decode(row, config.vocab).split("\n")[0]
      sentences.append(readable(line, config.dataset).strip())
  return sentences[:num]


@functools.partial(jax.jit, static_argnums=0)
def _label_nats_B(setup, params, inputs_BxT, flipped_BxT, targets_BxT):
  """-log p(label | line) of each window's first line, by the model's own Bayes' rule."""
  nats = lm.loss_BxT(setup, params, inputs_BxT, targets_BxT)
  flipped = lm.loss_BxT(setup, params, flipped_BxT, targets_BxT)
  line_BxT = lm.first_line_mask(targets_BxT, setup.recipe.vocab.index("\n"))
  return lm.label_nll_B(nats, flipped, line_BxT)


def bayes_accuracy(restored, dev: sst2.Split) -> float:
  """The share of dev sentences whose label the language model (restore_conditional_lm's)
  itself gives the higher likelihood: how much the label conditions its text."""
  setup, params, config, _ = restored
  windows = np.zeros((len(dev.sentences), config.context + 1), np.int32)
  for i, tokens in enumerate(dev.sentences):
    ids = chars.encode("\n" + LABEL_CHARS[0] + " ".join(tokens) + "\n", config.vocab,
                       "dev sentence")[:config.context + 1]
    windows[i, :len(ids)] = ids
  inputs, targets = windows[:, :-1], windows[:, 1:]  # past a line, padding: masked out
  flipped = inputs.copy()
  flipped[:, 1] = config.vocab.index(LABEL_CHARS[1])
  nats_N = np.concatenate([np.asarray(_label_nats_B(setup, params, *(a[i:i + BATCH] for a in (
      inputs, flipped, targets)))) for i in range(0, len(inputs), BATCH)])
  negative_N = nats_N < math.log(2)  # p(negative | line) > 1/2
  return float(np.mean(negative_N == (np.asarray(dev.labels_N) == 0)))


def judge(lm_workdir, classifier_workdir, num: int = 500, seed: int = 0,
          temperature: float = 1.0, data_dir=None, guidance: float | None = None) -> dict:
  """The share of sampled sentences the classifier labels as asked, per label and overall,
  next to the same share for the real dev sentences (the classifier's dev accuracy)."""
  if not isinstance(num, int) or isinstance(num, bool) or num < 1:
    raise field_error("num", f"must be a positive integer, got {num!r}")
  report = {"num_per_label": num, "seed": seed, "temperature": temperature,
            "guidance": guidance, "labels": {}}
  # once: both labels and the Bayes accuracy
  restored = restored_as(restore_conditional_lm, lm_workdir, "lm_workdir")
  classifier = restored_as(classify.restore_classifier, classifier_workdir, "classifier_workdir")
  agree = []
  for label in (0, 1):
    sentences = sample_sentences(restored, label, num, seed, temperature=temperature,
                                 guidance=guidance)
    kept = [s for s in sentences if s]  # a model may end a line at once: nothing to classify
    predicted, p_positive = classify.predict(classifier, kept) if kept else ([], [])
    asked = np.asarray(predicted) == label
    agree.append(asked)
    report["labels"][str(label)] = {
        "as_asked": float(asked.mean()) if kept else 0.0, "empty": len(sentences) - len(kept),
        "mean_p_positive": float(np.mean(p_positive)) if kept else None,
        "examples": kept[:5]}
  report["as_asked"] = float(np.concatenate(agree).mean())
  dev = sst2.load_split("dev", data_dir)
  dev_predicted, _ = classify.predict(classifier, [" ".join(t) for t in dev.sentences])
  report["dev_as_labelled"] = float(np.mean(np.asarray(dev_predicted) == dev.labels_N))
  report["lm_bayes_accuracy"] = bayes_accuracy(restored, dev)
  return report
