#!/usr/bin/env bash
# GPU check for a maintainer with an NVIDIA GPU (Linux x64, CUDA 12 + cuDNN 9 installed).
#
#   bash scripts/gpu-check.sh [--shape 1.5b|tiny] [--quick] [--feed URL] [--model DIR] [--skip-install]
#
# 1. Installs CUDA support into this checkout's onnxruntime-node (r1 install-cuda: the CUDA
#    runtime check, the NuGet package Microsoft.ML.OnnxRuntime.Gpu.Linux at onnxruntime-node's
#    version, sha512-verified, installed atomically next to the binding).
# 2. Runs the benchmark (`npm run bench`) on the benchmark model with --provider cpu, then with
#    --provider cuda (our engine only).
# 3. Prints decode tok/s of both, and the provider that really ran (`r1 info --provider cuda
#    --json`: an explicit provider never falls back, so "cuda" there means the session runs on CUDA).
#
# Exit status: 0 when CUDA really ran, 1 otherwise. Nothing here runs without an NVIDIA GPU:
# on a machine without one it stops at the runtime check and says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

shape=1.5b
quick=()
feed=()
model=""
install=1
while [ $# -gt 0 ]; do
  case "$1" in
    --shape) shape="$2"; shift 2 ;;
    --quick) quick=(--quick); shift ;;
    --feed) feed=(--feed "$2"); shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --skip-install) install=0; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
  esac
done

if [ "$(uname -s)" != "Linux" ] || [ "$(uname -m)" != "x86_64" ]; then
  echo "gpu-check: CUDA support is for Linux x64 only (this is $(uname -s) $(uname -m))." >&2
  exit 1
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
else
  echo "gpu-check: nvidia-smi not found; the NVIDIA driver may be missing." >&2
fi

echo "== building"
npm run build --silent

r1() { node dist/cli.js "$@"; }

echo "== CUDA runtime libraries"
r1 install-cuda --check || true
if [ "$install" = 1 ]; then
  echo "== installing CUDA support"
  r1 install-cuda "${feed[@]}"
fi

if ! grep -q '"bench"' package.json; then
  echo "gpu-check: package.json has no \"bench\" script yet (npm run bench with --provider, --quick, --shape)." >&2
  exit 1
fi

out=".cache/gpu-check"
mkdir -p "$out/cpu" "$out/cuda"
bench_tps() {
  # Median decode tok/s of our engine from the bench log ("run i/N ours: ... decode X tok/s").
  grep -E 'ours: .*decode [0-9.]+ tok/s' "$1" | sed -E 's/.*decode ([0-9.]+) tok\/s.*/\1/' | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}'
}
for p in cpu cuda; do
  echo "== bench --provider $p"
  npm run bench --silent -- "${quick[@]}" --shape "$shape" --provider "$p" --contenders ours --out "$out/$p" 2>&1 | tee "$out/bench-$p.log"
done

if [ -z "$model" ]; then
  model="$(node --import tsx -e "const m = require('./bench/model'); process.stdout.write(m.benchModelDir('$shape'))")"
fi
echo "== r1 info --provider cuda on $model"
info_json="$out/info-cuda.json"
provider="failed"
if r1 info --model "$model" --provider cuda --json >"$info_json" 2>"$out/info-cuda.err"; then
  provider="$(node -e "const i = JSON.parse(require('fs').readFileSync('$info_json', 'utf8')); process.stdout.write(i.provider + ' (' + i.variant + ')')")"
else
  echo "r1 info --provider cuda failed: $(cat "$out/info-cuda.err")" >&2
fi

cpu_tps="$(bench_tps "$out/bench-cpu.log")"
cuda_tps="$(bench_tps "$out/bench-cuda.log")"
echo
echo "== GPU check ($shape model)"
printf '  decode tok/s   CPU %s   CUDA %s\n' "$cpu_tps" "$cuda_tps"
printf '  provider that really ran with --provider cuda: %s\n' "$provider"
printf '  logs and results in %s\n' "$out"
case "$provider" in cuda*) exit 0 ;; *) exit 1 ;; esac
