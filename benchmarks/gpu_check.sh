#!/usr/bin/env bash
# One prepared device check (issue 12): the Triton kernel tests on the GPU, then benchmarks/gpu.py.
# Writes everything under $OUT (default ./gpu_out). Installs nothing from the network: peers the machine lacks
# (antialiased-cnns, kornia) are installed only from wheels carried in $WHEELS (default benchmarks/wheels), else
# their columns are dropped. Budget: about 1 minute of tests + at most 5 minutes of benchmarks.
#
#   OUT=/tmp/out bash benchmarks/gpu_check.sh            # everything
#   QUICK=1 bash benchmarks/gpu_check.sh                 # tests + a short benchmark (layers, resnet50 only)
set -uo pipefail
OUT="${OUT:-gpu_out}"
WHEELS="${WHEELS:-benchmarks/wheels}"
mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
  python -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
} > "$OUT/env.txt" 2>&1
if [ -d "$WHEELS" ]; then
  python -m pip install --no-index --no-deps --find-links "$WHEELS" antialiased-cnns kornia kornia_rs > "$OUT/pip.txt" 2>&1 || true
fi
python -m pip install --no-deps --no-build-isolation -e . > "$OUT/pip_self.txt" 2>&1 || true

# The kernel tests on the GPU: the compiled kernels (no interpreter), the backend forced to triton on cuda.
ANTIALIAS_TEST_DEVICE=cuda TRITON_INTERPRET=0 timeout 300 python -m pytest -q -p no:xdist -p no:cacheprovider \
  tests/layers/test_triton.py "tests/layers/test_functional.py::test_forward_is_local" \
  "tests/layers/test_functional.py::test_backward_is_local" -k "triton or not is_local" \
  --junitxml="$OUT/pytest_triton.xml" > "$OUT/pytest_triton.txt" 2>&1
echo "pytest rc=$?" >> "$OUT/pytest_triton.txt"
# The layer suite with the triton backend forced on CUDA tensors (values against the reference and slices).
ANTIALIAS_TEST_DEVICE=cuda ANTIALIAS_BACKEND=triton TRITON_INTERPRET=0 timeout 180 python -m pytest -q -p no:xdist \
  -p no:cacheprovider tests/layers/test_functional.py tests/layers/test_blurpool.py > "$OUT/pytest_layers_triton.txt" 2>&1
echo "pytest rc=$?" >> "$OUT/pytest_layers_triton.txt"

if [ "${QUICK:-0}" = "1" ]; then
  timeout 300 python benchmarks/gpu.py --archs resnet50 --shapes 64x256x56x56 --output "$OUT/gpu.json" 2> "$OUT/gpu.log"
else
  timeout 420 python benchmarks/gpu.py --output "$OUT/gpu.json" 2> "$OUT/gpu.log"
fi
echo "gpu.py rc=$?" >> "$OUT/gpu.log"
tail -n 3 "$OUT"/pytest_*.txt "$OUT/gpu.log"
