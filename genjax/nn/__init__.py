"""Layers and augmentations shared by the model families."""
