"""The judge: a CNN classifier, its training, and the shipped weights that score generated images."""
