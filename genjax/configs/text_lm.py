"""Character-level language models on Tiny Shakespeare: a Transformer (default) or an LSTM.

Run:      python experiments/text_lm.py --workdir runs/shakespeare
Variants: --config=genjax/configs/text_lm.py:VARIANT with VARIANT one of
  transformer   (default) the CPU recipe: Muon, 4,400 steps, judged by a moving average of the
                weights; sized for half an hour on a 2-core CPU with bfloat16 instructions
  ten_minutes   the default model without dropout, its schedule cut to 1,080 steps
  minute        a small Transformer for a one-minute run on a laptop CPU
  lstm          a 2-layer LSTM (it overfits the text past its best validation loss)
  reference     a minimal nanoGPT-style setting (4 layers, width 192, context 128, batch 32,
                dropout 0.1), the yardstick the recipe is measured against
  sst2_conditional  SST-2's sentences, each behind its label's character: the model then
                writes a sentence of the sentiment asked for (experiments/judge_text.py),
                guided or not
  gpu           nanoGPT's shakespeare_char size (6 layers, width 384, context 256, batch 64,
                dropout 0.2, 5,000 steps): a GPU's job
  tiny          seconds, for the tests (",tiny" shrinks any variant: "lstm,tiny")
Any UTF-8 text file trains the same way: --config.text_file=PATH.
Then: python experiments/generate_text.py --workdir runs/shakespeare --prompt "ROMEO:"
"""

import ml_collections

from genjax.core.config import apply_variant

VARIANTS = {
    "transformer": {},
    "ten_minutes": dict(num_steps=1080, dropout=0.0, eval_interval=360, sample_interval=1080,
                        checkpoint_interval=540),
    # A minute buys about a million characters: a small, shallow model learns most from them.
    "minute": dict(width=96, num_layers=2, num_heads=4, context=64, batch_size=32, dropout=0.0,
                   learning_rate=6e-3, warmup_steps=50, num_steps=1000, eval_interval=500,
                   sample_interval=1000, checkpoint_interval=500),
    "lstm": dict(model="lstm", width=512, num_layers=2, embed_dim=64, learning_rate=3e-3,
                 cpu_devices=1, dropout=0.0, weight_decay=0.0, num_steps=2400, eval_interval=200,
                 sample_interval=800, checkpoint_interval=400, optimizer="adamw", ema_decay=0.0,
                 compute_dtype="float32"),  # as its figures were measured
    "reference": dict(width=192, num_layers=4, num_heads=4, context=128, batch_size=32,
                      dropout=0.1, learning_rate=1e-3, warmup_steps=100, num_steps=6000,
                      # as the yardstick was measured
                      compute_dtype="float32", optimizer="adamw", ema_decay=0.0),
    # SST-2's sentences, each behind its label: sampled per label and judged by the classifier.
    # Windows begin at a line's start, so the label is always in view; one label in ten is
    # withheld, so sampling can use classifier-free guidance (judge_text.py --guidance); the
    # label's own loss (by Bayes' rule from the model's likelihoods) makes the label matter.
    "sst2_conditional": dict(dataset="sst2_conditional", width=128, context=128,
                             window_starts="lines", label_dropout=0.1, label_loss_weight=0.02,
                             dropout=0.0,
                             learning_rate=3e-3, warmup_steps=100, num_steps=2000,
                             eval_interval=500, sample_interval=1000, checkpoint_interval=500,
                             compute_dtype="float32",  # as its judged figures were measured
                             optimizer="adamw", ema_decay=0.0),
    "gpu": dict(width=384, num_layers=6, num_heads=6, context=256, batch_size=64, dropout=0.2,
                learning_rate=1e-3, warmup_steps=100, num_steps=5000, beta2=0.99,
                eval_interval=250, optimizer="adamw", ema_decay=0.0),  # nanoGPT's recipe
}
TINY = dict(width=32, num_layers=2, num_heads=2, context=16, batch_size=8, num_steps=6,
            embed_dim=0, warmup_steps=2, eval_interval=3, sample_interval=3, sample_chars=20,
            checkpoint_interval=3, log_interval=1, progress=False, dropout=0.0,
            compute_dtype="float32", cpu_devices=1)  # tests compare runs exactly, on any CPU


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "", a name of VARIANTS, "tiny", or "NAME,tiny"."""
  c = ml_collections.ConfigDict()
  c.model = "transformer"  # transformer | lstm
  c.dataset = "tiny_shakespeare"
  c.text_file = ""  # any UTF-8 text file instead of the dataset
  c.data_dir = ""  # folder with tiny_shakespeare/input.txt; else $GENJAX_DATA_DIR, else TFDS
  c.validation_fraction = 0.1  # the last 10% of the text (nanoGPT's shakespeare_char split)
  c.window_starts = "any"  # any | lines: training windows begin anywhere, or at a newline
  c.label_dropout = 0.0  # sst2_conditional: share of labels withheld (for guided sampling)
  c.label_loss_weight = 0.0  # sst2_conditional: weight of -log p(label | line) by Bayes' rule
  c.vocab = ""  # "": the training text's characters, sorted (set when a run starts)
  c.seed = 0

  c.context = 128  # characters per training window (and the Transformer's positions)
  c.width = 192
  c.num_layers = 4
  c.num_heads = 4
  c.embed_dim = 0  # lstm: the embedding's width (0: the LSTM's)
  c.dropout = 0.1
  # auto: bfloat16 matmuls summed in float32 on GPUs, TPUs and CPUs with native bfloat16
  # (AVX512_BF16, AMX), else float32 (docs/results.md has the speeds)
  c.compute_dtype = "auto"

  c.batch_size = 32
  c.num_steps = 4400
  # muon: Muon on the blocks' dense kernels, AdamW on the rest (the Transformer only: an LSTM's
  # output layer is a dense kernel too); adamw: AdamW on everything. Either way weight_decay
  # reaches the same parameters.
  c.optimizer = "muon"
  c.learning_rate = 3e-3  # peak, after a linear warmup; then a cosine to final_lr_fraction
  c.warmup_steps = 100
  c.final_lr_fraction = 0.1
  c.beta1 = 0.9
  c.beta2 = 0.99
  c.weight_decay = 0.1  # decoupled, on matrices only (kernels, embedding, positions)
  c.grad_clip = 1.0
  # >0: evaluate, sample and score with a moving average of the weights, its window about a
  # ninth of the steps taken (until this decay caps it)
  c.ema_decay = 0.999
  c.num_devices = 0  # data-parallel over this many devices (0: all); batch_size must divide
  # On a CPU: split it into this many devices sharing its cores, each batch split over them
  # (experiments/text_lm.py and bench_jit.py set it before JAX starts). Two are faster for
  # the Transformer on a 2-core CPU, one for the LSTM (docs/results.md). No effect on GPUs.
  c.cpu_devices = 2

  c.log_interval = 10
  c.print_interval = 0
  c.eval_interval = 550  # validation loss over the whole validation split (0: at the end only)
  c.sample_interval = 2200  # samples/<step>.txt from sample_prompt with a fixed key
  c.sample_prompt = "\n"
  c.sample_chars = 300
  c.checkpoint_interval = 1100
  c.keep_checkpoints = 3
  c.steps_per_dispatch = 100
  c.progress = True

  return apply_variant(c, variant, VARIANTS, TINY)
