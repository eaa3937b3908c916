"""Datasets, read offline from the original files or through TensorFlow Datasets; any image
dataset as a folder, an .npz or a TFDS name (genjax.data.image_sets)."""
