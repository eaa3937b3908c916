"""An RNN sentence classifier on SST-2 (GLUE's binary sentiment), or on one's own labelled
sentences (--config.train_file, --config.dev_file), trained from scratch.

Run:      python experiments/text_classify.py --workdir runs/sst2
Variants: --config=genjax/configs/text_classify.py:VARIANT with VARIANT one of
  bilstm   (default) a bidirectional LSTM over word vectors plus their hashed subwords' (character
           3-5-grams), masked mean+max pooling, word and embedding dropout, evaluated with the
           parameters' moving average
  lstm     a forward LSTM in its place
  gru      a forward GRU in its place
  tiny     seconds, for the tests (",tiny" shrinks any variant: "gru,tiny")
Own data: --config.train_file=train.tsv --config.dev_file=dev.tsv [--config.text_column=text
          --config.label_column=topic]; two classes train with a sigmoid, more with a softmax
Then:     python experiments/classify_text.py --workdir runs/sst2 --text "a gorgeous, witty film"
Measured figures: docs/results.md, "Text classification (SST-2)".
"""

import ml_collections

from genjax.core.config import apply_variant

VARIANTS = {
    "bilstm": {},
    "lstm": dict(encoder="lstm"),
    "gru": dict(encoder="gru"),
}
TINY = dict(train_limit=3000, embed_dim=16, hidden_dim=16, batch_size=32, num_epochs=2,
            ema_decay=0.9, buckets=(16, 64), eval_interval=60, checkpoint_interval=60, log_interval=1,
            steps_per_dispatch=50, eval_batch_size=128, progress=False, subword_buckets=1024,
            subword_width=16)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "", a name of VARIANTS, "tiny", or "NAME,tiny"."""
  c = ml_collections.ConfigDict()
  c.model = "text_classify"
  c.dataset = "sst2"
  c.data_dir = ""  # folder with sst2/{train,dev}.tsv; else $GENJAX_DATA_DIR (no download)
  # Sentences of one's own instead of SST-2: tab-separated files with a header line, one text
  # column and one label column (named below); any number of classes, labels as names or
  # integers, the training file's labels the classes (numeric order when all are integers)
  c.train_file = ""
  c.dev_file = ""  # needed with train_file: the development set, labels among the training file's
  c.text_column = "sentence"
  c.label_column = "label"
  c.class_names = ()  # set when a run starts: the labels in class order (SST-2: negative, positive)
  c.train_limit = 0  # >0: the first N training sentences only (tests)
  c.min_count = 2  # a training word seen fewer times is <unk>
  c.vocab_size = 0  # set when a run starts (from the training split)
  c.vocab_sha256 = ""  # set when a run starts: the checkpoint's vocabulary, checked on resume
  c.steps_per_epoch = 0  # set when a run starts (from the buckets' sizes)
  c.seed = 0

  c.encoder = "bilstm"  # bilstm | lstm | gru
  c.pooling = "meanmax"  # meanmax | attention
  c.embed_dim = 128
  c.hidden_dim = 128  # per direction
  c.head_dim = 0  # >0: a ReLU layer before the logit
  c.embed_dropout = 0.3
  c.word_dropout = 0.1  # a training word becomes <unk> with this probability
  c.feature_dropout = 0.3
  # >0: each word's character 3-5-grams and the word itself hashed into this many buckets;
  # their vectors' mean joins the word's (fastText's subwords), words outside the vocabulary too
  c.subword_buckets = 65536
  c.subword_width = 32  # subwords kept per word (a word of 10 characters has 28)
  c.adversarial_eps = 0.0  # >0: adversarial training, word vectors moved this far per sentence

  # Sentences are grouped by length: a bucket holds those of up to this many tokens, padded
  # to it; the last must hold the longest training sentence.
  c.buckets = (8, 16, 32, 64)
  c.batch_size = 128
  c.segment_batches = 0  # 0: an epoch runs bucket after bucket; N: N-batch pieces, shuffled
  c.num_epochs = 6  # the learning-rate schedule spans them
  c.num_steps = 0  # 0: num_epochs' worth; >0 stops there (the schedule is num_epochs')
  c.learning_rate = 2e-3  # peak, after a linear warmup; then a cosine to final_lr_fraction
  c.warmup_fraction = 0.05
  c.final_lr_fraction = 0.0
  c.weight_decay = 1e-4  # AdamW, on matrices only
  c.grad_clip = 1.0
  c.ema_decay = 0.999  # >0: evaluate and predict with the parameters' moving average
  c.num_devices = 1

  c.eval_interval = 500  # dev loss and accuracy (0: at the end only)
  c.eval_batch_size = 256
  c.log_interval = 10
  c.print_interval = 0
  c.checkpoint_interval = 1000
  c.keep_checkpoints = 2
  c.steps_per_dispatch = 200
  c.progress = True

  return apply_variant(c, variant, VARIANTS, TINY)
