#!/usr/bin/env bash
# The GPU benchmark, unattended, on a machine with an NVIDIA GPU (`make bench-device`):
#
#   1. installs geomtoy with the CUDA extra and torch (a CUDA build) into .venv-device,
#   2. checks that JAX sees the GPU and that torch can use it,
#   3. runs the step benchmark (`python -m bench`: geomtoy and the notebook loop, both on
#      the GPU) and the whole-process benchmark (`python -m bench.whole --device cuda`),
#   4. prints the plan of a paper-scale sweep (`--dry-run`) and trains it
#      (sweeps/phase_2x1_1e5.toml --scale paper: 10^5 models x 10,000 steps),
#
# each step under its own time limit, all within 8 minutes. Everything lands in
# $OUT (default bench/device-out/): device.log, summary.txt, the benchmark markdown and
# JSON, the sweep's results directory. A failed step is logged and the next one still
# runs; the exit status is the number of failed steps.
#
#   bench/device.sh            on the GPU machine
#   DRY=1 bench/device.sh      on any CPU machine: the same steps with JAX on the CPU, the
#                              existing .venv, tiny sizes (checks the script, ~5 minutes)
#
# Variables: OUT, PYTHON (python3), CUDA_EXTRA (cuda12 | cuda13), VENV (.venv-device),
# BUDGET (480 s: steps that would start later are skipped and counted as failed).
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=${DRY:-0}
OUT=${OUT:-bench/device-out}
PYTHON=${PYTHON:-python3}
CUDA_EXTRA=${CUDA_EXTRA:-cuda12}
VENV=${VENV:-.venv-device}
BUDGET=${BUDGET:-480}  # seconds for the whole script; every step's limit is cut to what is left
mkdir -p "$OUT"
LOG="$OUT/device.log"
SUMMARY="$OUT/summary.txt"
: >"$LOG"
: >"$SUMMARY"
FAILED=0
T0=$SECONDS

note() { echo "[device.sh +$((SECONDS - T0))s] $*" | tee -a "$LOG" "$SUMMARY" >&2; }

# step NAME LIMIT_SECONDS COMMAND...: run one step under a time limit, log it, go on.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((BUDGET - (SECONDS - T0)))
  if [ "$left" -lt 15 ]; then
    note "$name: SKIPPED, the ${BUDGET}s budget is spent"
    FAILED=$((FAILED + 1))
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  note "$name: start (limit ${limit}s): $*"
  local t=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >>"$LOG" 2>&1
  local rc=$?
  if [ $rc -eq 0 ]; then
    note "$name: ok in $((SECONDS - t))s"
  else
    [ $rc -eq 124 ] && note "$name: TIMED OUT after ${limit}s" || note "$name: FAILED (exit $rc)"
    FAILED=$((FAILED + 1))
  fi
  return $rc
}

if [ "$DRY" = 1 ]; then
  note "dry mode: JAX on the CPU, tiny sizes, no installation"
  export JAX_PLATFORMS=cpu
  PY=.venv/bin/python
  DEVICE=cpu
  WHOLE_STEPS="20"
  SCALE=smoke
  BENCH_ARGS="--no-reference"
else
  PY="$VENV/bin/python"
  DEVICE=cuda
  WHOLE_STEPS="400 10000"
  SCALE=paper
  BENCH_ARGS=""
  command -v nvidia-smi >/dev/null && nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 ||
    note "nvidia-smi not found: is this a GPU machine?"
  if [ ! -x "$PY" ]; then
    step venv 60 "$PYTHON" -m venv "$VENV" || exit 99
  fi
  # PyPI's Linux torch wheels are CUDA builds; jax[cuda12] brings its own CUDA libraries
  step install 240 "$PY" -m pip install -q -e ".[$CUDA_EXTRA,bench]" || exit 98
fi

step check 120 "$PY" - "$DEVICE" <<'EOF' || exit 97
import sys
import jax, torch
want = sys.argv[1]
platform = jax.default_backend()
print("jax", jax.__version__, platform, jax.devices(), "torch", torch.__version__,
      "cuda", torch.cuda.is_available())
if want == "cuda":
    assert platform == "gpu", f"JAX runs on {platform}, not the GPU: check the {want} extra"
    assert torch.cuda.is_available(), "torch has no CUDA: install a CUDA build of torch"
EOF

# The step table: geomtoy and the notebook loop on the GPU, side by side.
if [ "$DRY" = 1 ]; then
  step bench-steps 60 "$PY" -c "import bench.run as b; assert b.plan('quick')"
else
  step bench-steps 200 "$PY" -m bench $BENCH_ARGS --results "$OUT/RESULTS-gpu.md"
fi
# Whole processes, start-up included, against the notebook loop on the same device.
# shellcheck disable=SC2086
step bench-whole 150 "$PY" -m bench.whole --steps $WHOLE_STEPS --startup-rounds 1 \
  --device "$DEVICE" --results "$OUT/RESULTS-gpu.md" --json "$OUT/results-whole.json"

# A paper-scale sweep: its plan first (memory per block from the device), then the run.
SWEEP=sweeps/phase_2x1_1e5.toml
step plan 60 "$PY" -m geomtoy run "$SWEEP" --scale "$SCALE" --dry-run --out "$OUT/sweep"
START=$SECONDS
step sweep 200 "$PY" -m geomtoy run "$SWEEP" --scale "$SCALE" --out "$OUT/sweep" --overwrite -q
note "sweep wall time: $((SECONDS - START))s"
grep -h "instances\|estimated" "$LOG" | tail -4 >>"$SUMMARY"
[ -f "$OUT/RESULTS-gpu.md" ] && grep -h "^|" "$OUT/RESULTS-gpu.md" >>"$SUMMARY"
note "done in $((SECONDS - T0))s with $FAILED failed step(s); results in $OUT"
exit "$FAILED"
