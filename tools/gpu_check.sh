#!/usr/bin/env bash
# One prepared GPU check (issue 5): run it once on a lent GPU host, copy $OUT back.
#   OUT=/some/dir bash tools/gpu_check.sh
# 1. the seed protocol on generated tensors of the real sizes (CIFAR 4 models x 20 epochs, one
#    seed, + MNIST both frameworks) with the training time in the report;
# 2. engine vs the naive loop, side by side on the GPU, fp32 and bf16, 50,000 generated images.
set -euo pipefail
OUT=${OUT:-reports/gpu}
mkdir -p "$OUT"
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" | tee "$OUT/device.txt"
TRAINGUARD_PROGRESS=lines trainguard run --profile gpu-timing --device cuda --no-result-cache \
    --report "$OUT/gpu-timing.md" --run-log "$OUT/gpu-timing.jsonl" | tee "$OUT/gpu-timing.log" | tail -5
python -m benchmarks.side_by_side --device cuda --images 50000 --profile seed --bf16 | tee "$OUT/side-by-side-seed.md"
python -m benchmarks.side_by_side --device cuda --images 50000 --profile ci --bf16 | tee "$OUT/side-by-side-ci.md"
