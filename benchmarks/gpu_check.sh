#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and CuPy: the GPU tests (parity with Numba in both dtypes,
# convergence orders, graph replay, host copies), then the GPU benchmark suite with every peer
# that imports. Usage, from the repository root:
#     bash benchmarks/gpu_check.sh [OUTDIR]
# writes OUTDIR/gpu_tests.txt, OUTDIR/gpu_bench.txt and OUTDIR/results_gpu.json (default
# OUTDIR: benchmarks/). Both steps run even if the first fails; the exit status is the worst.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-benchmarks}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python -m pytest tests/gpu -m gpu -q -p no:cacheprovider 2>&1 | tee "$out/gpu_tests.txt"
tests=${PIPESTATUS[0]}
python -m benchmarks --gpu --json "$out/results_gpu.json" 2>&1 | tee "$out/gpu_bench.txt"
bench=${PIPESTATUS[0]}
exit $(( tests > bench ? tests : bench ))
