"""The sentence classifier's outputs on many sentences: logits in bucketed batches, class
probabilities, and the development set's loss, accuracy and confusion matrix.

A binary classifier has one logit per sentence (log-odds of class 1, read with a sigmoid); one
of K > 2 classes has K (read with a softmax).
"""

import functools

import jax
import numpy as np

from genjax.text.sentences import Encoded, batch_rows, pad_rows, padded_width, rows_of


@functools.partial(jax.jit, static_argnums=0)
def logits_of(model, params, tokens_BxT, lengths_B, subwords_BxTxG):
  return model.apply({"params": params}, tokens_BxT, lengths_B, subwords_BxTxG=subwords_BxTxG)


def logits_of_ids(model, params, encoded: Encoded, boundaries, batch_size: int) -> np.ndarray:
  """Every sentence's logits, in order (logits_N, or logits_NxK for K > 2 classes): batches
  of one bucket, padded to batch_size rows (one compiled shape per bucket, whatever the number
  of sentences); sentences longer than the last bucket in fewer rows (sentences.batch_rows)."""
  widths_N = np.array([padded_width(len(ids), boundaries) for ids in encoded.ids])
  logits = None
  for width in sorted(set(widths_N.tolist())):
    rows = np.flatnonzero(widths_N == width)
    size = batch_rows(width, rows.size, boundaries, batch_size)
    for start in range(0, rows.size, size):
      part = rows[start:start + size]
      batch = pad_rows(rows_of(encoded, part), width, size)
      out = np.asarray(logits_of(model, params, *batch))[:part.size]
      if logits is None:
        logits = np.zeros((len(encoded.ids), *out.shape[1:]), np.float32)
      logits[part] = out
  return logits


def probabilities(logits) -> np.ndarray:
  """probs_NxK of logits_N (binary: [1 - p, p]) or logits_NxK (a softmax), in float64."""
  logits = np.asarray(logits, np.float64)
  if logits.ndim == 1:
    p_N = 1.0 / (1.0 + np.exp(-logits))
    return np.stack([1.0 - p_N, p_N], axis=1)
  shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
  return shifted / shifted.sum(axis=1, keepdims=True)


def _nats_and_predictions(logits, labels_N):
  """(cross-entropy of each sentence in nats, predicted class indices)."""
  if logits.ndim == 1:  # sigmoid: the binary classifier's own loss
    signs_N = np.where(labels_N == 1, 1.0, -1.0)
    return (np.logaddexp(0.0, -signs_N * logits.astype(np.float64)),
            (logits > 0).astype(np.int32))
  log_probs = np.log(probabilities(logits))
  return -log_probs[np.arange(len(labels_N)), labels_N], log_probs.argmax(1).astype(np.int32)


def evaluate(model, params, encoded: Encoded, labels_N, boundaries, batch_size: int,
             num_classes: int = 2) -> dict:
  """Loss (nats), accuracy (%), the confusion matrix and accuracy by length bucket."""
  ids_list = encoded.ids
  logits = logits_of_ids(model, params, encoded, boundaries, batch_size)
  nats_N, predicted_N = _nats_and_predictions(logits, labels_N)
  right_N = predicted_N == labels_N
  lengths_N = np.array([len(ids) for ids in ids_list])
  by_length, low = [], 0
  for bound in boundaries:
    inside = (lengths_N > low) & (lengths_N <= bound)
    by_length.append({"tokens": f"{low + 1}-{bound}", "count": int(inside.sum()),
                      "accuracy": round(100 * float(right_N[inside].mean()), 2)
                      if inside.any() else None})
    low = bound
  classes = range(num_classes)
  confusion = [[int(np.sum((labels_N == t) & (predicted_N == p))) for p in classes]
               for t in classes]
  names = "/".join(map(str, classes))
  return {"dev_loss": float(nats_N.mean()),
          "dev_accuracy": round(100 * float(right_N.mean()), 2), "num_dev": len(ids_list),
          "confusion": confusion,
          "confusion_layout": f"rows: true {names}, columns: predicted {names}",
          "accuracy_by_length": by_length}
