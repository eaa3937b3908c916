"""Entry-point plumbing: a baseline module run in a process of its own."""

import pytest

from genjax.core import cli
from genjax.core.errors import GenjaxError

CHILD = """import json, sys
if sys.argv[1] == "fail":
  print("a first line", file=sys.stderr)
  sys.exit("the child's own reason")
print("a progress line")
print(json.dumps({"args": sys.argv[1:]}))
"""


def test_a_module_in_its_own_process_gives_its_last_json_line_or_its_last_error(
    tmp_path, monkeypatch):
  (tmp_path / "child_baseline.py").write_text(CHILD)
  monkeypatch.setenv("PYTHONPATH", str(tmp_path))
  assert cli.run_module("child_baseline", ["ok", 3, 0.5], "the child") == \
      {"args": ["ok", "3", "0.5"]}
  with pytest.raises(GenjaxError, match="^the child failed: the child's own reason$"):
    cli.run_module("child_baseline", ["fail"], "the child")
