"""A language model's loss on any text file: nats and bits per character, and perplexity.

  python experiments/score_text.py --workdir runs/shakespeare --input some_text.txt

Every next character is predicted once, in consecutive windows of the model's context, as the
validation loss is measured: the average character is predicted from half a window before it
(nanoGPT's convention). --stride S slides a window every S characters instead, each scoring
the characters after its predecessor's, so each character past the first window is predicted
from at least context - S + 1 before it (S = 1: a full context every time, one window per
character). The line printed says which windows were used. A character the model never saw
is an error naming it and where.
"""

from absl import flags

from genjax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A language-model run.", required=True)
_INPUT = flags.DEFINE_string("input", None, "A UTF-8 text file.", required=True)
_STRIDE = flags.DEFINE_integer("stride", None, "Slide a window every this many characters, "
                               "1 to the model's context (default: consecutive windows).")


def score():
  from genjax.data.shakespeare import read_text_file  # jax loads after the flags are checked
  from genjax.text.inference import score_text

  return score_text(_WORKDIR.value, read_text_file(_INPUT.value), _INPUT.value, _STRIDE.value)


def main(argv):
  del argv
  result = cli.run(score)
  print(f"{_INPUT.value}: {result['nats_per_char']:.4f} nats, {result['bits_per_char']:.4f} "
        f"bits per character (perplexity {result['perplexity']:.3f}) over "
        f"{result['predicted_chars']:,} predicted characters; windows: {result['windows']}; "
        f"model at step {result['step']}")


if __name__ == "__main__":
  cli.main(main)
