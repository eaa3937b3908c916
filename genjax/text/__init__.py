"""Text: a character-level language model (Transformer or LSTM) and an RNN sentence classifier,
the tutorial's two sequence examples, on the same core loop as the image families."""
