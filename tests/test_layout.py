"""The architecture's rules, read from the source: who may import whom.

- core, data and nn import no family; gan and vae never import each other; eval scores arrays
  and imports neither family; no family imports another one;
- nothing under genjax/ imports genjax.configs, and genjax imports itself at module level only
  (an import inside a function would hide a cycle);
- no module carries a family prefix (vae_*.py) in place of a subpackage.
"""

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "genjax"
FAMILIES = ("gan", "vae", "text")
# What each part of the package must not import.
FORBIDDEN = {
    "core": ("gan", "vae", "text", "judge", "eval", "data", "nn", "sampling"),
    "data": ("gan", "vae", "text", "judge", "eval", "nn", "sampling"),
    "nn": ("gan", "vae", "text", "judge", "eval", "data", "sampling"),
    "eval": ("gan", "vae", "text", "sampling"),
    "judge": ("gan", "vae", "text", "eval", "sampling"),
    "gan": ("vae", "text", "sampling"),
    "vae": ("gan", "text", "sampling"),
    "text": ("gan", "vae", "judge", "eval", "sampling"),
}


def modules():
  return sorted(p for p in PACKAGE.rglob("*.py") if "configs" not in p.relative_to(PACKAGE).parts)


def genjax_imports(path: Path):
  """(imported genjax module, line, at module level) for every import in the file."""
  tree = ast.parse(path.read_text())
  top = {id(node) for node in tree.body}
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    else:
      continue
    for name in names:
      if name == "genjax" or name.startswith("genjax."):
        yield name, node.lineno, id(node) in top


def part_of(path: Path) -> str:
  rel = path.relative_to(PACKAGE)
  return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_the_rules_see_every_part_of_the_package():
  parts = {part_of(p) for p in modules()}
  assert {"core", "data", "nn", "gan", "vae", "judge", "eval"} <= parts


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_architecture(path):
  part = part_of(path)
  for name, line, at_top in genjax_imports(path):
    where = f"{path.relative_to(PROJECT_ROOT)}:{line} imports {name}"
    assert not name.startswith("genjax.configs"), where
    assert at_top, f"{where} inside a function"
    target = name.split(".")[1] if "." in name else ""
    assert target not in FORBIDDEN.get(part, ()), where


def test_no_family_prefix_stands_in_for_a_subpackage():
  flat = [p.name for p in PACKAGE.glob("*.py")]
  assert not [n for n in flat if re.match(rf"({'|'.join(FAMILIES)})_", n)], flat
