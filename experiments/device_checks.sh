#!/usr/bin/env bash
# The accelerator figures genjax documents, in parts short enough for a brief hold on a GPU.
#
#   bash experiments/prepare_device.sh           # beforehand: data and the missing wheel into .device/
#   on the GPU machine, with .device/ copied:  bash experiments/device_checks.sh bench,mnist  (~3 min)
#                                              bash experiments/device_checks.sh fashion,vae  (~7 min)
#
# Parts (comma-separated, or "all"):
#   bench    bench_jit.py: the tutorial GAN at batch 32/256/4096 in float32 and bfloat16, and the
#            cgan recipe at its batch 64; scaling estimates from the former
#   mnist    the MNIST cgan recipe, 12,000 iterations, timed, then scored on 10,000 samples at
#            evaluation seeds 0, 1, 2 (its target is read off their means)
#   fashion  the cgan_fashion recipe for 96,000 iterations instead of 48,000, scored, then its
#            last three checkpoints averaged and scored at seeds 0, 1, 2, then with a DRS fit.
#            On a CPU it scored 5.16, 5.37, 5.27 at 40k, 44k, 48k (10,000 samples, seed 0) and,
#            averaged over 40-48k, 5.01, 6.61, 6.11 at seeds 0-2 (6.34x the mean floor), 3.70,
#            4.15, 4.07 with DRS: levelled off; whether G alone keeps improving to 96k is what
#            this measures
#   vae      the classic VAE for up to 3280 epochs, then the k=5000 test NLL
# Each part is time-boxed (PART_SECONDS_<part> overrides) so a slow device still returns
# figures; a run cut short keeps its checkpoints and is scored where it stopped.
# Results go to $OUT (default runs/device_checks): one log per part and the benchmark JSON.
# TINY=1 shrinks every part to seconds, to test this script on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
parts="${1:-all}"
[[ "$parts" == all ]] && parts="bench,mnist,fashion,vae"
for part in ${parts//,/ }; do
  case "$part" in
    bench|mnist|fashion|vae) ;;
    *) echo "device_checks.sh: unknown part '$part' (bench, mnist, fashion, vae, all)" >&2; exit 2;;
  esac
done
OUT="${OUT:-runs/device_checks}"
WORK="${WORK:-/tmp/genjax_device}"
mkdir -p "$OUT" "$WORK"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export GENJAX_DATA_DIR="${GENJAX_DATA_DIR:-$PWD/.device/data}"
py="${PYTHON:-python3}"

if [[ -d .device/whl ]] && ! "$py" -c "import ml_collections" 2>/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .device/whl/*.whl || { echo "cannot install .device/whl" >&2; exit 1; }
  export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

tiny="${TINY:-0}"
pick() { if [[ "$tiny" == 1 ]]; then echo "$2"; else echo "$1"; fi; }
budget() { local var="PART_SECONDS_$1"; echo "${!var:-$2}"; }
GAN_CFG=genjax/configs/gan_mnist.py

{ date -u; nvidia-smi -L 2>/dev/null; "$py" -c "import jax; print(jax.__version__, jax.devices())"
} > "$OUT/env.txt" 2>&1

# Latest checkpoint steps of a run, newest last.
steps_of() { ls "$1/checkpoints" 2>/dev/null | grep -E '^[0-9]+$' | sort -n; }

part_bench() {
  local secs; secs=$(pick 2 0.2)
  "$py" experiments/bench_jit.py --batch_sizes "$(pick 32,256,4096 8,16)" \
    --dtypes float32,bfloat16 --seconds "$secs" --json "$OUT/bench_mlp.json"
  "$py" experiments/bench_jit.py --recipe cgan --batch_sizes "$(pick 64 8)" \
    --dtypes float32,bfloat16 --seconds "$secs" --json "$OUT/bench_cgan.json"
  for net in h100_nvlink_8 tpu_v2_8; do
    "$py" experiments/scaling_estimate.py --bench_json "$OUT/bench_mlp.json" --interconnect "$net"
  done
}

# train RECIPE_ARGS...: one time-boxed run into $run; a cut-short run keeps its checkpoints.
train() {
  local t0=$SECONDS
  # --config=... must come before any --config.key=value override
  timeout "$limit" "$py" experiments/gan_mnist.py --workdir "$run" "$@" --config.progress=False
  echo "exit $? after $((SECONDS - t0)) s wall; checkpoints: $(steps_of "$run" | tr '\n' ' ')"
}

part_mnist() {
  local run="$WORK/mnist_cgan" limit; limit=$(budget mnist 150)
  rm -rf "$run"
  train --config="$GAN_CFG:cgan$(pick '' ,tiny)" --config.num_steps="$(pick 12000 8)"
  "$py" experiments/evaluate.py --workdir "$run" --num "$(pick 10000 200)" --seeds 0,1,2
}

part_fashion() {
  local run="$WORK/fashion_cgan" limit; limit=$(budget fashion 300)
  rm -rf "$run" "$run.avg"
  train --config="$GAN_CFG:cgan_fashion$(pick '' ,tiny)" --config.num_steps="$(pick 96000 12)" \
    --config.checkpoint_interval="$(pick 4000 3)" --config.keep_checkpoints=40 \
    --config.eval_interval="$(pick 8000 0)"
  "$py" experiments/evaluate.py --workdir "$run" --num "$(pick 10000 200)" --spectrum
  local last3; last3=$(steps_of "$run" | tail -3 | paste -sd, -)
  "$py" experiments/average_checkpoints.py --workdir "$run" --steps "$last3" --out "$run.avg" \
    && "$py" experiments/evaluate.py --workdir "$run.avg" --num "$(pick 10000 200)" --seeds 0,1,2 \
    && "$py" experiments/fit_drs.py --workdir "$run.avg" $(pick '' '--num_steps=20 --pool_per_class=10') \
    && "$py" experiments/evaluate.py --workdir "$run.avg" --drs --num "$(pick 10000 200)" \
      --seeds 0,1,2
  cp "$(ls "$run"/images/*.png | sort -V | tail -1)" "$OUT/fashion_last_grid.png" 2>/dev/null
}

part_vae() {
  # A killed VAE run has no evaluation, so the epochs are sized from a timed probe run.
  local run="$WORK/vae" limit; limit=$(budget vae 240)
  local probe_steps; probe_steps=$(pick 20000 6)
  local vae=(experiments/vae_mnist.py --config="genjax/configs/vae_mnist.py$(pick '' :tiny)"
             --config.progress=False)
  rm -rf "$run" "$run.probe"
  local t0=$SECONDS
  "$py" "${vae[@]}" --workdir "$run.probe" --config.num_steps="$probe_steps" \
    --config.eval_num=100 --config.eval_nll_k=0 > /dev/null || return 1
  local probe_s=$((SECONDS - t0 + 1))
  # 60 s kept for compilation and the k=5000 NLL; 600 steps of batch 100 per epoch.
  local epochs; epochs=$("$py" -c "print(max(1, min(3280, int(($limit - 60) / $probe_s * \
    $probe_steps / 600))))")
  echo "probe: $probe_steps steps in ${probe_s} s wall; training $(pick "$epochs" 0.01) epochs"
  t0=$SECONDS
  "$py" "${vae[@]}" --workdir "$run" --config.num_epochs="$(pick "$epochs" 0.01)" \
    --config.eval_batch="$(pick 100 20)" --config.eval_k_chunk="$(pick 5000 6)"
  echo "exit $? after $((SECONDS - t0)) s wall"
  cat "$run/eval.json" 2>/dev/null
}

for part in ${parts//,/ }; do
  echo "== $part $(date -u +%T)"
  "part_$part" > "$OUT/$part.log" 2>&1
  echo "   done $(date -u +%T): $(tail -1 "$OUT/$part.log")"
done
