#!/usr/bin/env bash
# One prepared device check, at most 8 minutes on one GPU (the sum of the limits below: 470 s, plus
# start-up), everything written under $OUT:
#   env.txt                     GPU, driver, torch, Triton
#   pytest_triton.txt/.xml      the Triton kernel tests on CUDA (compiled kernels, no interpreter)
#   pytest_layers_triton.txt    the layer suite with the triton backend forced on CUDA tensors
#   aot.json                    benchmarks/gpu.py --compile-cost (specialisations, compile seconds)
#   gpu_layers.json             blur-pool table (ours per backend, reference, timm, kornia, floor)
#   gpu_networks.json           network table, eager (ResNet-50 first: its first step compiles cold)
#   gpu_compiled.json           ResNet-50 under torch.compile (torchvision, reference, ours)
# Each part has its own time limit; the JSON files are rewritten after every row, so a part stopped
# by its limit keeps what it measured. Nothing is installed from the network: peers the machine
# lacks (antialiased-cnns, kornia) come only from wheels in $WHEELS (default benchmarks/wheels).
#
#   OUT=/tmp/out bash benchmarks/gpu_check.sh       # everything
#   DRY_RUN=1 bash benchmarks/gpu_check.sh          # print the commands, run nothing
#   bash benchmarks/gpu_check.sh --help
set -uo pipefail
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
OUT="${OUT:-gpu_out}"
WHEELS="${WHEELS:-benchmarks/wheels}"
DRY_RUN="${DRY_RUN:-0}"
PY="${PYTHON:-python}"

# run LIMIT_S LOG COMMAND...: the command under a time limit, its output in $OUT/LOG, its status
# appended; with DRY_RUN=1 only printed.
run() {
  local limit="$1" log="$2"
  shift 2
  if [ "$DRY_RUN" = "1" ]; then
    printf 'timeout %s' "$limit"
    printf ' %q' "$@"
    printf ' > %s\n' "$OUT/$log"
    return 0
  fi
  timeout "$limit" "$@" > "$OUT/$log" 2>&1
  local rc=$?
  echo "rc=$rc" >> "$OUT/$log"
  return 0
}

[ "$DRY_RUN" = "1" ] || mkdir -p "$OUT"
if [ "$DRY_RUN" != "1" ]; then
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
    "$PY" -c "import torch, triton
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
  } > "$OUT/env.txt" 2>&1
  if [ -d "$WHEELS" ]; then
    "$PY" -m pip install --no-index --no-deps --find-links "$WHEELS" antialiased-cnns kornia \
      kornia_rs > "$OUT/pip.txt" 2>&1 || true
  fi
  "$PY" -m pip install --no-deps --no-build-isolation -e . > "$OUT/pip_self.txt" 2>&1 || true
fi

# The kernel tests on the GPU: the compiled kernels, the backend forced to triton on CUDA tensors.
export ANTIALIAS_TEST_DEVICE=cuda TRITON_INTERPRET=0
CACHE="/tmp/antialias-triton-$$"
run 90 pytest_triton.txt env TRITON_CACHE_DIR="$CACHE-tests" "$PY" -m pytest -q -p no:xdist \
  -p no:cacheprovider tests/layers/test_triton.py \
  "tests/layers/test_functional.py::test_forward_is_local" \
  "tests/layers/test_functional.py::test_backward_is_local" -k "triton or not is_local" \
  --junitxml="$OUT/pytest_triton.xml"
run 60 pytest_layers_triton.txt env TRITON_CACHE_DIR="$CACHE-tests" ANTIALIAS_BACKEND=triton \
  "$PY" -m pytest -q -p no:xdist -p no:cacheprovider tests/layers/test_functional.py \
  tests/layers/test_blurpool.py

# Ahead-of-time compile cost: one training step per model recorded on the CPU (batch 1), each
# specialisation compiled for sm_80 and sm_90; then the same step on the GPU at the benchmark's
# batch, what Triton compiles there compared with the recording (cuda_step in aot.json).
run 60 aot.log "$PY" benchmarks/gpu.py --compile-cost --aot-batch 1 --output "$OUT/aot.json"

# The blur-pool table (the goal shape), then the networks eager in a process with a cold Triton
# cache (ResNet-50 first: its first step compiles every kernel it launches), then ResNet-50 under
# torch.compile.
run 70 gpu_layers.log env TRITON_CACHE_DIR="$CACHE-layers" "$PY" benchmarks/gpu.py \
  --sections layers --shapes 64x256x56x56 --output "$OUT/gpu_layers.json"
run 90 gpu_networks.log env TRITON_CACHE_DIR="$CACHE-networks" "$PY" benchmarks/gpu.py \
  --sections networks --archs resnet50 resnet18 mobilenet_v2 densenet121 --net-modes eager \
  --output "$OUT/gpu_networks.json"
run 100 gpu_compiled.log env TRITON_CACHE_DIR="$CACHE-compiled" "$PY" benchmarks/gpu.py \
  --sections networks --archs resnet50 --compile-archs resnet50 --net-modes compiled \
  --output "$OUT/gpu_compiled.json"
[ "$DRY_RUN" = "1" ] || tail -n 3 "$OUT"/*.txt "$OUT"/*.log
