"""What one step of a compiled program does, read from its HLO text: the kernels it launches,
its dots' FLOPs and its kernels' bytes, each loop of known trip count counted that many times.

XLA's own cost analysis counts a loop's body once; these counts, on the same model of a kernel
(its operands and result, slices reading only what they write), let a benchmark add the trips
it leaves out.
"""

import math
import re

import numpy as np

# HLO instructions that launch no kernel of their own; those that run other computations.
FREE_OPCODES = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast", "while",
                "conditional", "call", "after-all", "partition-id", "replica-id"}
CALLING_OPCODES = ("while", "call", "conditional")


_OPCODE = re.compile(r"=\s.*?\s([a-z][a-z0-9-]*)\(")
_CALLED = re.compile(
    r"(body|condition|to_apply|branch_computations|calls)=\{?([^,}]+(?:, *%[^,}]+)*)")
_TRIP_COUNT = re.compile(r'"known_trip_count":\{"n":"(\d+)"')


def _computations(hlo_text: str) -> tuple[dict, str | None]:
  """{computation name: its instruction lines} and the entry computation's name."""
  bodies, name, entry = {}, None, None
  for line in hlo_text.splitlines():
    stripped = line.strip()
    if stripped.endswith("{") and "->" in stripped:  # a computation's header
      words = stripped.split()
      name = (words[1] if words[0] == "ENTRY" else words[0]).lstrip("%")
      entry = name if words[0] == "ENTRY" else entry
      bodies[name] = []
    elif stripped == "}":
      name = None
    elif name is not None:
      bodies[name].append(stripped)
  return bodies, entry


_BYTES_PER_ELEMENT = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2,
                      "s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8,
                      "c128": 16}
_ARRAY = re.compile(r"\b(pred|[suf]\d+|bf16|c64|c128)\[([\d,]*)\]")
_NAME_AND_SHAPE = re.compile(r"^(?:ROOT )?%([\w.-]+) = (.*?) [a-z][a-z0-9-]*\(")
_OPERANDS = re.compile(r"[a-z][a-z0-9-]*\(([^)]*)\)")
_CONTRACTING = re.compile(r"lhs_contracting_dims=\{([\d,]*)\}")
_DIM_LABELS = re.compile(r"dim_labels=[^_]*_([^-]*)->")


def _arrays(shape_text: str) -> list[tuple[str, list[int]]]:
  """[(dtype, dims)] of a shape, a tuple's arrays each."""
  return [(t, [int(d) for d in dims.split(",") if d]) for t, dims in _ARRAY.findall(shape_text)]


def _num_bytes(shape_text: str) -> int:
  return sum(_BYTES_PER_ELEMENT.get(t, 4) * math.prod(dims) for t, dims in _arrays(shape_text))


def _dot_flops(line: str, opcode: str, shapes: dict) -> float:
  """2 x output elements x contracted size of a dot or convolution (0 for anything else)."""
  if opcode not in ("dot", "convolution"):
    return 0.0
  out = _arrays(_NAME_AND_SHAPE.search(line).group(2))
  operands = _operand_names(line)
  lhs, rhs = (_arrays(shapes.get(o, "")) for o in operands[:2])
  if not out or not lhs or not rhs:
    return 0.0
  if opcode == "dot":
    dims = _CONTRACTING.search(line)
    contracted = math.prod(lhs[0][1][int(d)] for d in dims.group(1).split(",") if d) \
        if dims else 1
  else:  # the kernel's elements over its output features
    labels = _DIM_LABELS.search(line)
    out_features = rhs[0][1][labels.group(1).index("o")] if labels else 1
    contracted = math.prod(rhs[0][1]) // max(out_features, 1)
  return 2.0 * math.prod(out[0][1]) * contracted


_SLICING = ("dynamic-slice", "slice", "gather")  # read only what they write


def _operand_names(line: str) -> list[str]:
  return [o.strip().lstrip("%") for o in _OPERANDS.search(line).group(1).split(",")]


def _kernel_bytes(line: str, opcode: str, operands, fused_lines, shapes: dict) -> int:
  """Bytes a kernel reads and writes: its operands and result, except that a slice reads only
  what it writes and a dynamic-update-slice (in place) writes only its update. A fusion is
  looked into: a parameter it only slices counts the slices, one it updates in place nothing."""
  size = lambda name: _num_bytes(shapes.get(name, ""))  # noqa: E731
  result = _NAME_AND_SHAPE.search(line).group(1)
  if opcode in _SLICING:
    return 2 * size(result)
  if opcode == "dynamic-update-slice":
    return 2 * size(operands[1])
  if fused_lines is None:
    return size(result) + sum(size(o) for o in set(operands))
  params, users, root = [], {}, None
  for fused_line in fused_lines:
    name, op = _NAME_AND_SHAPE.search(fused_line), _OPCODE.search(fused_line)
    if name is None or op is None:
      continue
    name, op = name.group(1), op.group(1)
    args = _operand_names(fused_line)
    if op == "parameter":
      params.append(name)
    for position, arg in enumerate(args):
      users.setdefault(arg, []).append((op, position, name))
    if fused_line.startswith("ROOT"):
      root = (name, op, args)
  total = size(root[2][1]) if root and root[1] == "dynamic-update-slice" else size(result)
  for param in params:
    uses = users.get(param, [])
    if uses and all(op in _SLICING and position == 0 for op, position, _ in uses):
      total += sum(size(user) for _, _, user in uses)
    elif not (uses and all(op == "dynamic-update-slice" and position == 0
                           for op, position, _ in uses)):
      total += size(param)
  return total


def _callees(line: str, bodies: dict, seen: frozenset) -> list[str]:
  """The computations an instruction calls (loop bodies, branches, fused computations)."""
  called = dict(_CALLED.findall(line))
  names = [c.strip().lstrip("%") for part in called.values() for c in part.split(",")]
  return [c for c in names if c in bodies and c not in seen]


def hlo_cost(hlo_text: str, trips: bool = True) -> dict:
  """{"kernels", "flops", "bytes"} of one step, read from a compiled program's text.

  kernels: the entry computation's non-free instructions (not parameters, tuples, bitcasts...),
  a fusion counting once (a thunk on CPU, a launch on GPU); flops: its dots' and convolutions'
  (inside fusions too); bytes: each kernel's operands and result. A loop of known trip count
  (an RNN's scan, a random-bits loop) counts its body that many times (trips=False: once); a
  loop of unknown trip count (a chunk's loop over steps) counts its body once: one step.
  """
  bodies, entry = _computations(hlo_text)
  shapes = {match.group(1): match.group(2) for lines in bodies.values() for line in lines
            if (match := _NAME_AND_SHAPE.search(line)) is not None}

  def fused_flops(name: str, seen: frozenset) -> float:
    total = 0.0
    for line in bodies[name]:
      if (match := _OPCODE.search(line)) is not None:
        total += _dot_flops(line, match.group(1), shapes) + sum(
            fused_flops(c, seen | {c}) for c in _callees(line, bodies, seen))
    return total

  def count(name: str, seen: frozenset) -> np.ndarray:
    """[kernels, flops, bytes] of one run of computation `name`."""
    total = np.zeros(3)
    for line in bodies[name]:
      if (match := _OPCODE.search(line)) is None:
        continue
      opcode, callees = match.group(1), _callees(line, bodies, seen)
      inner = [count(c, seen | {c}) for c in callees] if opcode in CALLING_OPCODES else []
      if opcode == "while":  # its condition and body, once per trip
        trip = _TRIP_COUNT.search(line)
        total += (int(trip.group(1)) if trip and trips else 1) * sum(inner, np.zeros(3))
      elif opcode in CALLING_OPCODES:  # a call, or a conditional's costliest branch
        total += max(inner, key=tuple, default=np.zeros(3))
      elif opcode not in FREE_OPCODES:
        fused = callees[0] if opcode == "fusion" and callees else None
        flops = _dot_flops(line, opcode, shapes) + (fused_flops(fused, seen) if fused else 0.0)
        total += (1, flops, _kernel_bytes(line, opcode, _operand_names(line),
                                          bodies[fused] if fused else None, shapes))
    return total

  kernels, flops, num_bytes = count(entry, frozenset({entry})) if entry else np.zeros(3)
  return {"kernels": int(kernels), "flops": float(flops), "bytes": float(num_bytes)}


_DIMS = {key: re.compile(key + r"=\{([\d,]*)\}") for key in (
    "lhs_contracting_dims", "rhs_contracting_dims", "lhs_batch_dims", "rhs_batch_dims")}


def _dot_signature(line: str, shapes: dict):
  """(lhs dtype, lhs dims, rhs dtype, rhs dims, out dtype, ((lhs contracting), (rhs
  contracting), (lhs batch), (rhs batch))) of a dot: enough to run the same dot again."""
  out = _arrays(_NAME_AND_SHAPE.search(line).group(2))
  lhs, rhs = (_arrays(shapes.get(o, "")) for o in _operand_names(line)[:2])
  if not (out and lhs and rhs):
    return None
  dims = tuple(tuple(int(d) for d in m.group(1).split(",") if d) if (m := p.search(line)) else ()
               for p in _DIMS.values())
  return (lhs[0][0], tuple(lhs[0][1]), rhs[0][0], tuple(rhs[0][1]), out[0][0], dims)


def hlo_dots(hlo_text: str) -> dict:
  """{dot signature (see _dot_signature): how many times one step runs it}, fused dots and
  loop bodies included (a loop of known trip count that many times, as in hlo_cost)."""
  bodies, entry = _computations(hlo_text)
  shapes = {match.group(1): match.group(2) for lines in bodies.values() for line in lines
            if (match := _NAME_AND_SHAPE.search(line)) is not None}
  found: dict = {}

  def walk(name: str, times: int, seen: frozenset) -> None:
    for line in bodies[name]:
      if (match := _OPCODE.search(line)) is None:
        continue
      if match.group(1) == "dot" and (signature := _dot_signature(line, shapes)):
        found[signature] = found.get(signature, 0) + times
      trip = _TRIP_COUNT.search(line) if match.group(1) == "while" else None
      callees = _callees(line, bodies, seen)
      if match.group(1) == "conditional":  # one branch runs: count the first
        callees = callees[:1]
      for callee in callees:
        walk(callee, times * (int(trip.group(1)) if trip else 1), seen | {callee})

  if entry:
    walk(entry, 1, frozenset({entry}))
  return found
