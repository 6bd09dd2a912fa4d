#!/usr/bin/env bash
# The prepared GPU checks of issue 16: run each part once on a lent GPU host and keep $OUT.
#
#   PART=stack    bash tools/gpu_check.sh   # seeds stacked (eager, compiled) vs one after another; the seed protocol's time
#   PART=baseline bash tools/gpu_check.sh   # baselines/ci/cuda.csv from the exported ci data, then the checks
#                                           # against it: trainguard run, then pytest -m slow (the nightly's way)
#   PART=bench    bash tools/gpu_check.sh   # engine vs the naive loop: fp32 / bf16 / compile
#
# A lent host has torch, pytest, pandas, tabulate, matplotlib and setuptools but no network, no
# TensorFlow and not ../shared: the script installs trainguard from the checkout without the index
# (into /tmp, nothing left in the tree), skips the MNIST plug-in's Keras twin, and reads the
# data from DATA, a directory written here by `trainguard data export --profile cifar-models-ci gpu-data` with mnist.npz copied in
# (~48 MB; name it in the device tool's carry). Each part fits one 10-minute command; the baseline
# part is resumable: rerun it on the same warm machine and the result cache keeps what finished.
#
# Everything a part writes goes to WORK and comes back as one archive, $OUT/<part>.tgz (also when
# the part fails or is cut off: the device tool returns at most 8 files).
# Overrides, also for a dry run on a CPU: DEVICE (cuda), DATA (gpu-data), PROFILE (cifar-models-ci: the ci profile's CIFAR-10 comparison through the models' machinery),
# IMAGES per timed epoch (10000), SEEDS per stack (3), ROUNDS (2; STACK_ROUNDS 1), OUT (reports/gpu), WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-reports/gpu}
DEVICE=${DEVICE:-cuda}
DATA=${DATA:-gpu-data}
PROFILE=${PROFILE:-cifar-models-ci}
PART=${PART:-stack}
IMAGES=${IMAGES:-10000}
SEEDS=${SEEDS:-3}
ROUNDS=${ROUNDS:-2}
PYTHON=${PYTHON:-python3}
WORK=${WORK:-/tmp/trainguard-gpu-$PART}
export PYTHONUNBUFFERED=1 TRAINGUARD_PROGRESS=lines
mkdir -p "$OUT" "$WORK"
trap 'tar czf "$OUT/$PART.tgz" -C "$WORK" .' EXIT
if [[ $PART == baseline && ! -f $DATA/export.json ]]; then  # before anything is imported: a missing export stops at once
    echo "no export at $DATA: run 'trainguard data export --profile $PROFILE $DATA' where the data is, and carry it" >&2
    exit 2
fi

if ! "$PYTHON" -c "import trainguard.cli" 2>/dev/null; then  # not installed: build it here, offline
    "$PYTHON" -m pip install -q --no-deps --no-build-isolation --no-index --target /tmp/trainguard-site .
    export PYTHONPATH="/tmp/trainguard-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
tg=("$PYTHON" -m trainguard.cli)
"$PYTHON" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')" \
    | tee -a "$WORK/device.txt"

profile_file=$PROFILE
[[ $profile_file == *.toml ]] || profile_file=harness/profiles/$PROFILE.toml
[[ -f $profile_file ]] || profile_file=harness/experiments/$PROFILE.toml  # a built-in plug-in's settings
# Without TensorFlow the MNIST plug-in's Keras twin says so (its `requires`) and its cases are skipped.

case $PART in
stack)
    # One round by default: each compiled stack pays its compilation again (minutes on a GPU host's CPU).
    "$PYTHON" -m benchmarks.stacked_seeds --device "$DEVICE" --images "$IMAGES" --seeds "$SEEDS" \
        --rounds "${STACK_ROUNDS:-1}" --compile | tee "$WORK/stacked-seeds.md"
    ;;
baseline)
    common=(--profile "$profile_file" --device "$DEVICE" --data-dir "$DATA" --offline --run-log "$WORK/runlog.jsonl")
    name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$profile_file")
    start=$(date +%s)
    set -o pipefail
    "${tg[@]}" baselines update "${common[@]}" 2>&1 | tee "$WORK/baseline.log"
    echo "baselines update: $(( $(date +%s) - start )) s wall" | tee -a "$WORK/device.txt"
    mkdir -p "$WORK/baselines/$name" && cp baselines/"$name"/*"${DEVICE%%:*}"* "$WORK/baselines/$name/"
    start=$(date +%s)
    "${tg[@]}" run "${common[@]}" --strict --report "$WORK/report.md" 2>&1 | tee "$WORK/run.log" || status=$?
    echo "run (checks against it): exit ${status:-0}, $(( $(date +%s) - start )) s wall" | tee -a "$WORK/device.txt"
    # The same checks through the pytest plugin (what the nightly GPU job runs), on the runs cached above.
    start=$(date +%s)
    "$PYTHON" -m pytest -m slow -q -p no:cacheprovider --tg-profile "$profile_file" --tg-device "$DEVICE" \
        --tg-data-dir "$DATA" --tg-offline --tg-strict --tg-run-log "$WORK/runlog.jsonl" \
        --tg-report "$WORK/pytest-report.md" 2>&1 | tee "$WORK/pytest.log" || pytest_status=$?
    echo "pytest -m slow (plugin): exit ${pytest_status:-0}, $(( $(date +%s) - start )) s wall" | tee -a "$WORK/device.txt"
    ;;
bench)
    for protocol in seed cifar-models-ci; do
        augment=(); [[ $protocol == seed ]] && augment=(--augment)  # the protocol's flip + crop on both sides
        "$PYTHON" -m benchmarks.side_by_side --device "$DEVICE" --images "$IMAGES" --profile "$protocol" --bf16 \
            --compile "${augment[@]}" --rounds "$ROUNDS" | tee "$WORK/side-by-side-$protocol.md"
    done
    ;;
*) echo "PART must be stack, baseline or bench" >&2; exit 2 ;;
esac
