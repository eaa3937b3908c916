"""Generates text with a trained language model (experiments/text_lm.py).

  python experiments/generate_text.py --workdir runs/shakespeare --prompt "ROMEO:" \
      --num_chars 500 --temperature 0.8 --top_k 10 --seed 0 [--out sample.txt]

Prints the prompt and what follows it, or writes it to --out. A prompt longer than the
model's context is read from its last `context` characters, and a note on stderr says so. A
prompt character the model never saw is an error naming it. A label-conditioned model's label
characters (sst2_conditional) steer it but are not printed.
"""

from absl import flags

from genjax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "A language-model run.", required=True)
_PROMPT = flags.DEFINE_string("prompt", "\n", "Text to continue.")
_NUM_CHARS = flags.DEFINE_integer("num_chars", 500, "Characters to generate.")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.8, "Softmax temperature (lower: safer).")
_TOP_K = flags.DEFINE_integer("top_k", 0, "Draw from the k likeliest characters (0: all).")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_OUT = flags.DEFINE_string("out", None, "Write the text here instead of printing it.")


def generate():
  from genjax.text.inference import generate_text  # jax loads after the flags are checked

  text = generate_text(_WORKDIR.value, _PROMPT.value, _NUM_CHARS.value, _TEMPERATURE.value,
                       _TOP_K.value, _SEED.value)
  if _OUT.value:
    cli.write_output(_OUT.value, text)
  return text


def main(argv):
  del argv
  text = cli.run(generate)
  if _OUT.value:
    print(f"wrote {len(text)} characters to {_OUT.value}")
  else:
    print(text)


if __name__ == "__main__":
  cli.main(main)
