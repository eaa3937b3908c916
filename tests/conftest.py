"""Shared fixtures: the real data folder and the tiny GAN config."""

import os
from pathlib import Path

import pytest

from genjax.configs.gan_mnist import get_config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("GENJAX_DATA_DIR") or PROJECT_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_root() -> str:
  """The real data folder; missing data is a failure, not a skip."""
  assert (DATA_ROOT / "mnist").is_dir(), f"MNIST gz files not found in {DATA_ROOT}"
  return str(DATA_ROOT)


@pytest.fixture
def tiny_config(data_root):
  config = get_config("tiny")
  config.data_dir = data_root
  return config
