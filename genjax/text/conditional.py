"""The two halves together: a label-conditioned language model's sentences judged by the
sentence classifier, as the conditional GAN's images are judged by the CNN.

A conditional model (genjax/configs/text_lm.py:sst2_conditional) trains on SST-2's sentences,
each behind its label's character; asked for a label, it continues "\\n" + that character up
to the next newline. The classifier then says which label each sentence reads as.
"""

import jax
import jax.numpy as jnp
import numpy as np

from genjax.core.errors import ConfigError, field_error
from genjax.data import sst2
from genjax.text import chars, classify
from genjax.text.corpora import LABEL_CHARS
from genjax.text.generate import generate_ids
from genjax.text.inference import restore_lm

BATCH = 100  # sentences decoded together


def sample_sentences(lm_workdir, label: int, num: int, seed: int = 0, max_chars: int = 200,
                     temperature: float = 1.0, top_k: int = 0) -> list[str]:
  """`num` sentences the model writes when asked for `label` (0 negative, 1 positive)."""
  setup, params, config, _ = restore_lm(lm_workdir)
  if config.dataset != "sst2_conditional":
    raise ConfigError(f"{lm_workdir} holds a model of {config.dataset!r}, not a "
                      "label-conditioned one (train --config=genjax/configs/text_lm.py:"
                      "sst2_conditional)")
  prompt = "\n" + LABEL_CHARS[label]
  prompt_1xP = jnp.asarray(chars.encode(prompt, config.vocab, "prompt"))[None]
  key = jax.random.fold_in(jax.random.key(seed), label)
  sentences = []
  for start in range(0, num, BATCH):
    ids = generate_ids(setup.model, params, jnp.tile(prompt_1xP, (BATCH, 1)), max_chars,
                       jax.random.fold_in(key, start), float(temperature), top_k)
    for row in np.asarray(ids):
      sentences.append(chars.decode(row, config.vocab).split("\n")[0].strip())
  return sentences[:num]


def judge(lm_workdir, classifier_workdir, num: int = 500, seed: int = 0,
          temperature: float = 1.0, data_dir=None) -> dict:
  """The share of sampled sentences the classifier labels as asked, per label and overall,
  next to the same share for the real dev sentences (the classifier's dev accuracy)."""
  if not isinstance(num, int) or isinstance(num, bool) or num < 1:
    raise field_error("num", f"must be a positive integer, got {num!r}")
  report = {"num_per_label": num, "seed": seed, "temperature": temperature, "labels": {}}
  agree = []
  for label in (0, 1):
    sentences = sample_sentences(lm_workdir, label, num, seed, temperature=temperature)
    kept = [s for s in sentences if s]  # a model may end a line at once: nothing to classify
    predicted, p_positive = classify.predict(classifier_workdir, kept)
    asked = np.asarray(predicted) == label
    agree.append(asked)
    report["labels"][str(label)] = {
        "as_asked": float(asked.mean()) if kept else 0.0, "empty": len(sentences) - len(kept),
        "mean_p_positive": float(np.mean(p_positive)) if kept else None,
        "examples": kept[:5]}
  report["as_asked"] = float(np.concatenate(agree).mean())
  dev = sst2.load_split("dev", data_dir)
  dev_predicted, _ = classify.predict(classifier_workdir, [" ".join(t) for t in dev.sentences])
  report["dev_as_labelled"] = float(np.mean(np.asarray(dev_predicted) == dev.labels_N))
  return report
