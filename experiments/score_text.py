"""A language model's loss on any text file: nats and bits per character, and perplexity.

  python experiments/score_text.py --workdir runs/shakespeare --input some_text.txt

Every next character is predicted once, in consecutive windows of the model's context, as the
validation loss is measured. A character the model never saw is an error naming it and where.
"""

from absl import flags

from genjax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A language-model run.", required=True)
_INPUT = flags.DEFINE_string("input", None, "A UTF-8 text file.", required=True)


def score():
  from genjax.data.shakespeare import read_text_file  # jax loads after the flags are checked
  from genjax.text.inference import score_text

  return score_text(_WORKDIR.value, read_text_file(_INPUT.value), _INPUT.value)


def main(argv):
  del argv
  result = cli.run(score)
  print(f"{_INPUT.value}: {result['nats_per_char']:.4f} nats, {result['bits_per_char']:.4f} "
        f"bits per character (perplexity {result['perplexity']:.3f}) over "
        f"{result['predicted_chars']:,} predicted characters, model at step {result['step']}")


if __name__ == "__main__":
  cli.main(main)
