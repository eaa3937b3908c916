"""The sentence classifier as a flax.linen module: word embeddings, a recurrent encoder, a
summary of its outputs and one logit (log-odds of positive), or one per class for more than two.

Encoders: `bilstm` (a forward and a backward LSTM, outputs concatenated), `lstm`, `gru`; each
through flax's nn.RNN with `seq_lengths`, so a sentence's states never see its padding (the
backward LSTM starts at the sentence's last word, not at the padding's end). Summaries:
`meanmax` (the masked mean and max over positions, concatenated) or `attention` (a learned
query's masked softmax over positions). Padding changes no logit.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

ENCODERS = ("bilstm", "lstm", "gru")
POOLINGS = ("meanmax", "attention")
NEG_INF = -1e9  # masked positions' scores (finite: a softmax over them stays a number)


def mask_of(lengths_B, num_positions: int) -> jnp.ndarray:
  """mask_BxT: True at the first lengths_B[b] positions of each row."""
  return jnp.arange(num_positions)[None, :] < lengths_B[:, None]


def masked_mean_max(h_BxTxF, mask_BxT) -> jnp.ndarray:
  """[mean, max] over the unmasked positions: B x 2F (every row has one or more)."""
  m_BxTx1 = mask_BxT[..., None]
  count_Bx1 = jnp.maximum(mask_BxT.sum(1, keepdims=True), 1).astype(h_BxTxF.dtype)
  mean_BxF = jnp.where(m_BxTx1, h_BxTxF, 0.0).sum(1) / count_Bx1
  max_BxF = jnp.where(m_BxTx1, h_BxTxF, -jnp.inf).max(1)
  return jnp.concatenate([mean_BxF, jnp.where(jnp.isfinite(max_BxF), max_BxF, 0.0)], -1)


def subword_mean(embed: nn.Embed, subwords_BxTxG) -> jnp.ndarray:
  """The mean vector of each word's subwords (ids > 0): B x T x E, zeros for padding."""
  present_BxTxGx1 = (subwords_BxTxG > 0)[..., None]
  sum_BxTxE = jnp.where(present_BxTxGx1, embed(subwords_BxTxG), 0.0).sum(2)
  return sum_BxTxE / jnp.maximum(present_BxTxGx1.sum(2), 1)


class AttentionPool(nn.Module):
  """A softmax over positions of a learned score (tanh MLP), the outputs' weighted sum."""

  @nn.compact
  def __call__(self, h_BxTxF, mask_BxT):
    hidden = nn.tanh(nn.Dense(h_BxTxF.shape[-1], name="key")(h_BxTxF))
    score_BxT = nn.Dense(1, use_bias=False, name="query")(hidden)[..., 0]
    weights_BxT = jax.nn.softmax(jnp.where(mask_BxT, score_BxT, NEG_INF), axis=-1)
    return jnp.einsum("bt,btf->bf", weights_BxT, h_BxTxF)


class Encoder(nn.Module):
  """The recurrent layer: B x T x E -> B x T x F (F = 2H for the BiLSTM, else H)."""

  kind: str
  hidden_dim: int

  @nn.compact
  def __call__(self, x_BxTxE, lengths_B):
    if self.kind == "bilstm":
      rnn = nn.Bidirectional(nn.RNN(nn.OptimizedLSTMCell(self.hidden_dim), name="forward"),
                             nn.RNN(nn.OptimizedLSTMCell(self.hidden_dim), name="backward"))
    elif self.kind == "lstm":
      rnn = nn.RNN(nn.OptimizedLSTMCell(self.hidden_dim), name="forward")
    elif self.kind == "gru":
      rnn = nn.RNN(nn.GRUCell(self.hidden_dim), name="forward")
    else:
      raise ValueError(f"unknown encoder {self.kind!r}; choose one of {', '.join(ENCODERS)}")
    return rnn(x_BxTxE, seq_lengths=lengths_B)


class SentenceClassifier(nn.Module):
  """tokens_BxT (padded with 0 past lengths_B) -> logits_B (two classes) or logits_BxK."""

  vocab_size: int
  embed_dim: int
  hidden_dim: int
  encoder: str = "bilstm"
  pooling: str = "meanmax"
  head_dim: int = 0  # >0: a ReLU layer between the summary and the logit
  embed_dropout: float = 0.0
  word_dropout: float = 0.0  # training: a word becomes <unk> with this probability
  feature_dropout: float = 0.0
  subword_buckets: int = 0  # >0: a word's vector adds the mean of its hashed subwords' vectors
  unk_id: int = 1
  num_classes: int = 2  # two: one logit (log-odds of class 1); more: one logit per class

  @nn.compact
  def __call__(self, tokens_BxT, lengths_B, train: bool = False, embed_delta_BxTxE=None,
               subwords_BxTxG=None):
    """embed_delta_BxTxE: added to the word vectors (the adversarial perturbation);
    subwords_BxTxG: each word's subword ids (words.encode_subwords), 0 padding."""
    mask_BxT = mask_of(lengths_B, tokens_BxT.shape[1])
    if train and self.word_dropout:
      drop_BxT = jax.random.bernoulli(self.make_rng("dropout"), self.word_dropout,
                                      tokens_BxT.shape)
      tokens_BxT = jnp.where(drop_BxT & mask_BxT, self.unk_id, tokens_BxT)
    x_BxTxE = nn.Embed(self.vocab_size, self.embed_dim, name="embed",
                       embedding_init=nn.initializers.normal(0.1))(tokens_BxT)
    if self.subword_buckets:
      if subwords_BxTxG is None:
        raise ValueError(f"this classifier has subword_buckets={self.subword_buckets}: pass "
                         "subwords_BxTxG (words.encode_subwords), or build it with 0")
      # Unlike its word vector, a word's subwords survive word dropout and a word outside
      # the vocabulary: "unfunny" and "overlong" still say something.
      x_BxTxE = x_BxTxE + subword_mean(
          nn.Embed(self.subword_buckets, self.embed_dim, name="subword_embed",
                   embedding_init=nn.initializers.normal(0.1)), subwords_BxTxG)
    if embed_delta_BxTxE is not None:
      x_BxTxE = x_BxTxE + embed_delta_BxTxE
    x_BxTxE = nn.Dropout(self.embed_dropout, deterministic=not train)(x_BxTxE)
    h_BxTxF = Encoder(self.encoder, self.hidden_dim, name="encoder")(x_BxTxE, lengths_B)
    if self.pooling == "attention":
      features_BxF = AttentionPool(name="attention")(h_BxTxF, mask_BxT)
    else:
      features_BxF = masked_mean_max(h_BxTxF, mask_BxT)
    drop = nn.Dropout(self.feature_dropout, deterministic=not train)
    features_BxF = drop(features_BxF)
    if self.head_dim:
      features_BxF = drop(nn.relu(nn.Dense(self.head_dim, name="head")(features_BxF)))
    if self.num_classes == 2:
      return nn.Dense(1, name="logit")(features_BxF)[:, 0]
    return nn.Dense(self.num_classes, name="logit")(features_BxF)


def num_classes(config) -> int:
  """The classes of a config's run: its class names' count, set from the data when the run
  starts (a config no data has filled yet, as a test's or benchmark's: two)."""
  return len(config.class_names) or 2


def build_classifier(config, vocab_size: int) -> SentenceClassifier:
  """The model of a (resolved) config and a vocabulary's size."""
  return SentenceClassifier(
      vocab_size=vocab_size, embed_dim=config.embed_dim, hidden_dim=config.hidden_dim,
      encoder=config.encoder, pooling=config.pooling, head_dim=config.head_dim,
      embed_dropout=config.embed_dropout, word_dropout=config.word_dropout,
      feature_dropout=config.feature_dropout, subword_buckets=config.subword_buckets,
      num_classes=num_classes(config))
