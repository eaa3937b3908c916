"""Tiny Shakespeare read directly and through real TFDS (manual_dir): the same text."""

import hashlib

import pytest

from genjax.core.errors import DataError
from genjax.data import shakespeare

SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"  # SOURCES.md


def test_the_direct_reader_gives_the_published_file(data_root):
  text = shakespeare.load_text(data_root)
  assert len(text) == 1_115_394 and len(set(text)) == 65
  assert hashlib.sha256(text.encode("utf-8")).hexdigest() == SHA256
  train, val = shakespeare.split_text(text, 0.1)
  assert (len(train), len(val)) == (1_003_854, 111_540)  # nanoGPT's shakespeare_char


@pytest.mark.slow
def test_tfds_gives_the_same_text(data_root, tmp_path):
  manual = shakespeare.Path(data_root) / shakespeare.FOLDER
  assert shakespeare.load_tfds(manual_dir=manual, tfds_data_dir=tmp_path) == \
      shakespeare.load_text(data_root)


def test_bad_corpora_are_named(tmp_path, monkeypatch):
  monkeypatch.setenv("GENJAX_OFFLINE", "1")
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
  monkeypatch.delenv("GENJAX_DATA_DIR", raising=False)
  with pytest.raises(DataError, match="no data for 'tiny_shakespeare'.*config.data_dir"):
    shakespeare.load_text(None)
  (tmp_path / "tiny_shakespeare").mkdir()
  with pytest.raises(DataError, match="input.txt: file not found"):
    shakespeare.load_text(tmp_path)
  (tmp_path / "bad.txt").write_bytes(b"ok\n\xff\xfe")
  with pytest.raises(DataError, match=r"bad.txt: not UTF-8 text \(byte 3, line 2\)"):
    shakespeare.read_text_file(tmp_path / "bad.txt")
