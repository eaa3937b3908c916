#!/usr/bin/env bash
# Before device_checks.sh runs on a bare, offline accelerator machine: puts what it lacks into
# .device/ (ignored by git; copy it along with the checkout): the MNIST and Fashion-MNIST gz
# files and an ml-collections wheel (such machines usually have jax, flax, optax, orbax, tqdm and
# matplotlib).
set -euo pipefail
cd "$(dirname "$0")/.."
src="${GENJAX_DATA_DIR:-../shared/data}"
for name in mnist fashion-mnist; do
  [[ -d "$src/$name" ]] || { echo "prepare_device.sh: no $src/$name (set GENJAX_DATA_DIR)" >&2; exit 1; }
  mkdir -p ".device/data/$name"
  cp "$src/$name"/*.gz ".device/data/$name/"
done
mkdir -p .device/whl
python3 -m pip download -q --no-deps --only-binary=:all: -d .device/whl "ml-collections>=1.0"
du -sh .device
