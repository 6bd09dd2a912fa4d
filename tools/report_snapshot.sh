#!/usr/bin/env bash
# The same-report check of a refactor: render the ci night (the CIFAR-10 comparison, through the models' machinery: --profile cifar-models-ci) from its committed run log (nothing trains) and run a
# fresh smoke night (seconds, generated data), into OUTDIR. Run it before and after a change with the same data,
# then diff the two folders: only times, dates and memory may differ. PYTHON: the interpreter with trainguard.
#   TRAINGUARD_DATA_DIR=../shared/data tools/report_snapshot.sh /tmp/before   # … change …   then /tmp/after
#   diff /tmp/before/ci/report.md /tmp/after/ci/report.md; diff /tmp/before/smoke/report.md /tmp/after/smoke/report.md
set -u
out=$(realpath -m "${1:?usage: tools/report_snapshot.sh OUTDIR}")
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
cd "$out"
export PYTHONHASHSEED=0
"${PYTHON:-python3}" -m trainguard report --profile cifar-models-ci --offline --baselines-dir "$repo/baselines" \
    --from-log "$repo/baselines/ci/avx512-night-runlog.jsonl" \
    --report "$out/ci/report.md" --results-dir "$out/ci-results" > "$out/ci.out" 2>&1
echo "ci rc=$?" >> "$out/ci.out"
"${PYTHON:-python3}" -m trainguard run --profile smoke --offline --baselines-dir "$repo/baselines" --report "$out/smoke/report.md" \
    --results-dir "$out/smoke-results" --junit-xml "$out/smoke/junit.xml" > "$out/smoke.out" 2>&1
echo "smoke rc=$?" >> "$out/smoke.out"
tail -n 3 "$out/ci.out" "$out/smoke.out"
