"""Datasets, read offline from the original files or through TensorFlow Datasets."""
