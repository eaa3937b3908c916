"""SST-2 read from GLUE's files: sizes, labels, and bad files named in one line."""

import numpy as np
import pytest

from genjax.core.errors import DataError
from genjax.data import sst2


def test_the_published_splits(data_root):
  train, dev, test = (sst2.load_split(s, data_root) for s in ("train", "dev", "test"))
  assert (len(train.sentences), len(dev.sentences), len(test.sentences)) == (67349, 872, 1821)
  assert set(np.unique(train.labels_N)) == {0, 1} and test.labels_N is None
  assert 0.5 < train.labels_N.mean() < 0.6  # SST-2's training split leans positive
  assert all(t == t.lower() for s in dev.sentences[:50] for t in s)  # lower-cased, tokenized


@pytest.mark.parametrize("content, needle", [
    ("text\tlabel\nfine\t1\n", "has no 'sentence' column"),
    ("sentence\tscore\nfine\t1\n", "has no 'label' column"),
    ("sentence\tlabel\nfine\t7\n", "line 2 has label '7'"),
    ("sentence\tlabel\nfine\t1\textra\n", "line 2 has 3 tab-separated fields"),
    ("sentence\tlabel\n", "no sentences after the header"),
    ("", "the file is empty"),
])
def test_bad_files_are_named(tmp_path, content, needle):
  path = tmp_path / "train.tsv"
  path.write_text(content)
  with pytest.raises(DataError, match=needle):
    sst2.read_tsv(path)


def test_a_missing_folder_is_named(tmp_path, monkeypatch):
  monkeypatch.delenv("GENJAX_DATA_DIR", raising=False)
  with pytest.raises(DataError, match="GLUE's SST-2"):
    sst2.load_split("train", None)
  with pytest.raises(DataError, match="file not found"):
    sst2.load_split("dev", str(tmp_path))
