#!/usr/bin/env bash
# One prepared GPU check (issue 5): run it once on a lent GPU host, copy $OUT back.
#   OUT=/some/dir bash tools/gpu_check.sh
# 1. the seed protocol on generated tensors of the real sizes (CIFAR 4 models x 20 epochs, one
#    seed, + the MNIST experiment) with the training time in the report;
# 2. engine vs the naive loop, side by side on the GPU (paired rounds), fp32 and bf16, 10,000
#    generated images per epoch, at the seed profile's batch 8 with its flip + crop on both sides, and at the ci profile's batches.
#
# It runs from the repository root without installing trainguard (a lent host has torch,
# torchvision, pandas, tabulate, matplotlib, pytest but no TensorFlow and no network): the CLI as
# `python3 -m trainguard.cli` when `trainguard` is not on PATH, and the MNIST experiment in PyTorch
# only when TensorFlow is missing (trainguard's Keras runs on the CPU anyway).
# Budget: a lent GPU allows 10 minutes per command and 15 in all. The seed matrix at batch 8 is
# ~500,000 optimizer steps (4 models x 20 epochs x 6,250), so eager PyTorch's per-step launch
# cost dominates it; run the two parts as separate commands (PART=run, then PART=bench) so each
# fits, and keep $OUT: the run log holds every finished epoch's seconds even if a part is cut off.
# Overrides, also for a dry run on a CPU: PART (all | run | bench), DEVICE (cuda),
# PROFILE (gpu-timing), IMAGES per side-by-side epoch (10000), ROUNDS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-reports/gpu}
DEVICE=${DEVICE:-cuda}
PROFILE=${PROFILE:-gpu-timing}
PART=${PART:-all}
IMAGES=${IMAGES:-10000}
ROUNDS=${ROUNDS:-2}
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TRAINGUARD_PROGRESS=lines
mkdir -p "$OUT"

if command -v trainguard >/dev/null; then cli=(trainguard); else cli=("$PYTHON" -m trainguard.cli); fi
profile_file=$PROFILE
[[ $profile_file == *.toml ]] || profile_file=harness/profiles/$PROFILE.toml
if ! "$PYTHON" -c "import tensorflow, keras" 2>/dev/null; then
    echo "TensorFlow/Keras not installed here: the MNIST experiment runs in PyTorch only" | tee "$OUT/notes.txt"
    sed 's/^frameworks = .*/frameworks = ["torch"]/' "$profile_file" > "$OUT/profile.toml"
    profile_file=$OUT/profile.toml
fi

"$PYTHON" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')" \
    | tee "$OUT/device.txt"
if [[ $PART == all || $PART == run ]]; then
    start=$(date +%s)
    "${cli[@]}" run --profile "$profile_file" --device "$DEVICE" --no-result-cache --results-dir "$OUT/results" \
        --report "$OUT/gpu-timing.md" --run-log "$OUT/gpu-timing.jsonl" > "$OUT/gpu-timing.log" 2>&1 || status=$?
    echo "trainguard run: exit ${status:-0}, $(( $(date +%s) - start )) s wall (install-free, data generated)" \
        | tee -a "$OUT/device.txt"
    tail -3 "$OUT/gpu-timing.log"
fi
[[ $PART == all || $PART == bench ]] || exit 0
for protocol in seed ci; do
    augment=(); [[ $protocol == seed ]] && augment=(--augment)  # the protocol's flip + crop on both sides
    "$PYTHON" -m benchmarks.side_by_side --device "$DEVICE" --images "$IMAGES" --profile "$protocol" --bf16 "${augment[@]}" \
        --rounds "$ROUNDS" | tee "$OUT/side-by-side-$protocol.md"
done
