#!/usr/bin/env bash
# Everything the GPU path promises, checked in one command on one GPU machine (docs/gpu.md):
#   1. the `gpu`-marked tests (every entry point on CUDA vs CPU, no per-step syncs, CUDA graphs),
#   2. bench/cka_bench.py --device cuda (cka_heatmap vs its forward+Gram floor, widths 1 and 4),
#   3. bench/train_bench.py --device cuda (repatlas vs a plain loop; compile=reduce-overhead),
#   4. bench/gpu_slots_bench.py (k concurrent training jobs vs one),
#   5. configs/gpu-check.yaml, a small Fashion-MNIST study, with --resources gpu_slots=4.
# Each stage has its own time limit and the whole run stops within 8 minutes (the stages after
# a deadline are skipped, and say so). Output, three small files under OUT (a remote runner may
# return only a few): summary.txt (read it first), logs.tar (one log per stage, appended as each
# ends), study.tar.gz (figures, csv/nc/json/tsv results and logs; no zarr, no .pt).
#
# Usage (repository root or anywhere):
#   bench/gpu_check.sh OUT [--data DIR] [--cpu]
# --data: folder with Fashion-MNIST's four .gz files (default: ./fmnist, else the Debian package's
#         /usr/share/datasets/fashion-mnist).
# --cpu:  the same stages on the CPU at tiny sizes, to check the script itself on a machine
#         without a GPU (limits scaled by GPU_CHECK_SLACK, default 4 in this mode).
# Offline GPU machine: if ./.whl holds wheels (docs/gpu.md lists them), they are installed into
# a temporary folder first and put on PYTHONPATH with ./src; PYTHON picks the interpreter.
set -u

usage="usage: bench/gpu_check.sh OUT [--data DIR] [--cpu]"
OUT=${1:?$usage}
shift
MODE=gpu
DATA=
while [ $# -gt 0 ]; do
  case $1 in
    --cpu) MODE=cpu ;;
    --data) DATA=${2:?$usage}; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done

mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
PY=${PYTHON:-python3}
SUMMARY=$OUT/summary.txt
START=$(date +%s)
DEADLINE=$((START + ${GPU_CHECK_SECONDS:-480}))
SLACK=${GPU_CHECK_SLACK:-$([ $MODE = cpu ] && echo 4 || echo 1)}
[ $MODE = cpu ] && DEADLINE=$((START + ${GPU_CHECK_SECONDS:-480} * SLACK))
: > "$SUMMARY"

say() { echo "$*" | tee -a "$SUMMARY"; }

# stage NAME LIMIT_SECONDS CMD...: run with a time limit (cut to the time left), log to LOGS/NAME.log,
# then appended to OUT/logs.tar
stage() {
  local name=$1 limit=$(($2 * SLACK)) t0 left rc
  shift 2
  t0=$(date +%s)
  left=$((DEADLINE - t0 - 20))
  [ $limit -gt $left ] && limit=$left
  if [ $limit -lt 10 ]; then
    say "== $name: SKIPPED, the time budget (GPU_CHECK_SECONDS, default 480 s) is spent"
    return 0
  fi
  say "== $name (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" > "$LOGS/$name.log" 2>&1
  rc=$?
  tar -C "$LOGS" -rf "$OUT/logs.tar" "$name.log"
  say "== $name: exit $rc$([ $rc = 124 ] && echo ' (TIMED OUT)') after $(($(date +%s) - t0)) s"
}

# ----------------------------------------------------------------------------- environment
export PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH}
if compgen -G "$ROOT/.whl/*.whl" > /dev/null; then
  SITE=$(mktemp -d)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$ROOT"/.whl/*.whl > "$SITE.log" 2>&1 \
    || { say "wheel install failed:"; tail -n 5 "$SITE.log" >> "$SUMMARY"; }
  export PYTHONPATH=$SITE:$PYTHONPATH
fi
if [ -z "$DATA" ]; then
  DATA=$ROOT/fmnist
  [ -d "$DATA" ] || DATA=/usr/share/datasets/fashion-mnist
fi
WORK=$(mktemp -d)  # the study's results (zarr stores, checkpoints) and the logs stay out of OUT
LOGS=$WORK/logs
mkdir -p "$LOGS"
rm -f "$OUT/logs.tar"
trap 'rm -rf "$WORK" ${SITE:+"$SITE" "$SITE.log"}' EXIT

say "gpu_check.sh mode=$MODE commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown) host=$(hostname) $(date -u +%FT%TZ)"
say "$("$PY" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
  "|", torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU visible")' 2>&1)"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$SUMMARY"

if [ $MODE = gpu ]; then
  DEV=cuda
  CKA1=(--device cuda --examples 10000 --batch-size 256 --skip-streaming --width 1)
  CKA4=(--device cuda --examples 10000 --batch-size 256 --skip-streaming --width 4)
  TRAIN1=(--device cuda --widths 1 --images 5000 --epochs 3 --rounds 1 --compile reduce-overhead)
  TRAIN8=(--device cuda --widths 8 --images 5000 --epochs 3 --rounds 1)
  SLOTS=(--device cuda --slots 1 2 4 8 --images 5000 --epochs 3)
  STUDY=(--configfile "$ROOT/configs/gpu-check.yaml" --config device=cuda "data_dir=$DATA")
else
  DEV=cpu
  CKA1=(--device cpu --examples 256 --batch-size 64 --skip-streaming --skip-torch-cka --threads 1 --width 1)
  CKA4=(--device cpu --examples 128 --batch-size 64 --skip-streaming --skip-torch-cka --threads 1 --width 2)
  # (no --compile: inductor needs minutes on a busy CPU; tests/test_train.py covers the modes)
  TRAIN1=(--device cpu --threads 1 --widths 1 --images 256 --test-images 64 --epochs 2 --rounds 1)
  TRAIN8=(--device cpu --threads 1 --widths 2 --images 128 --test-images 64 --epochs 2 --rounds 1)
  SLOTS=(--device cpu --slots 1 2 --images 128 --epochs 1)
  # digits, not Fashion-MNIST: its 10,000-image test split alone takes minutes on a busy CPU
  printf '%s\n' "dataset: digits" "probe_size: 100" "grid: {arch: resnet, depth: [8], width: [1, 2], n: [200], seed: [0, 1]}" \
    "train: {epochs: 1, eval_every: 1, batch_size: 50}" "activations: {batch_size: 50}" "cka: {batch_size: 50}" \
    "wide_deep: {probes: {epochs: 1}}" > "$WORK/tiny.yaml"  # merged over configs/gpu-check.yaml
  STUDY=(--configfile "$ROOT/configs/gpu-check.yaml" "$WORK/tiny.yaml" --config device=cpu "data_dir=$DATA")
fi

# ----------------------------------------------------------------------------- stages
stage gpu_tests 90 "$PY" -m pytest -m gpu -q -p no:cacheprovider tests/test_gpu.py
tail -n 15 "$LOGS/gpu_tests.log" >> "$SUMMARY" 2> /dev/null

stage cka_bench 40 "$PY" bench/cka_bench.py "${CKA1[@]}"
stage cka_bench_wide 40 "$PY" bench/cka_bench.py "${CKA4[@]}"
cat "$LOGS/cka_bench.log" "$LOGS/cka_bench_wide.log" 2> /dev/null | grep -v Warning >> "$SUMMARY"

stage train_bench 70 "$PY" bench/train_bench.py "${TRAIN1[@]}"
stage train_bench_wide 45 "$PY" bench/train_bench.py "${TRAIN8[@]}"
cat "$LOGS/train_bench.log" "$LOGS/train_bench_wide.log" 2> /dev/null >> "$SUMMARY"

stage slots_bench 60 "$PY" bench/gpu_slots_bench.py "${SLOTS[@]}" --json "$LOGS/slots_bench.json"
cat "$LOGS/slots_bench.log" >> "$SUMMARY" 2> /dev/null
[ -f "$LOGS/slots_bench.json" ] && tar -C "$LOGS" -rf "$OUT/logs.tar" slots_bench.json

stage study 150 "$PY" -m snakemake --snakefile "$ROOT/Snakefile" --directory "$WORK" \
  --cores all --resources gpu_slots=4 --scheduler greedy --keep-going --nolock "${STUDY[@]}"
grep -E "steps \([0-9]+%\) done|^Error|config key|Exiting|Complete log" "$LOGS/study.log" 2> /dev/null | tail -n 8 >> "$SUMMARY"
if [ -d "$WORK/results" ]; then
  (cd "$WORK" && find results -type f \( -name '*.png' -o -name '*.pdf' -o -name '*.csv' -o -name '*.nc' \
     -o -name '*.tsv' -o -name '*.json' -o -name '*.log' \) -size -5M | tar -czf "$OUT/study.tar.gz" -T -)
  "$PY" - "$WORK" >> "$SUMMARY" 2>&1 <<'EOF'
import json, sys
from pathlib import Path
for m in sorted(Path(sys.argv[1], "results", "models").glob("*/*/*/metrics.json")):
    r = json.loads(m.read_text())
    f = r["final"]
    print(f"{m.parent.relative_to(Path(sys.argv[1], 'results', 'models'))}: test_acc={f['test_acc']} "
          f"train_loss={f['train_loss']:.3f} {r['seconds']:.1f} s on {r['device']}")
EOF
fi
say "== total $(($(date +%s) - START)) s (budget ${GPU_CHECK_SECONDS:-480} s x slack $SLACK)"
