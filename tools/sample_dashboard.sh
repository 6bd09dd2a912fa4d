#!/usr/bin/env bash
# The sample dashboard of the committed nights (docs/dashboard/): a ledger built from what the repository keeps —
# the ci night on held-out seeds 100-101 (baselines/ci/heldout-runlog.jsonl), the five nights of the nightly
# acceptance (docs/nightly-acceptance/history-ci-cpu.jsonl, imported: records without reports), the same held-out
# night on an AVX-512 host (baselines/ci/avx512-night-runlog.jsonl) — in the order they ran; then the site and
# screenshots of its main pages. Needs the data (TRAINGUARD_DATA_DIR), the dashboard extra and Chromium.
# Usage: TRAINGUARD_DATA_DIR=../shared/data tools/sample_dashboard.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ledger="$work/ledger.sqlite"
night() {  # a committed night's run log, re-rendered and recorded (dated by its runs)
    trainguard report --profile cifar-models-ci --offline --from-log "$1" --record --ledger "$ledger" --report "$work/$2/report.md" >/dev/null || true
}
night baselines/ci/heldout-runlog.jsonl heldout
trainguard ledger import docs/nightly-acceptance --ledger "$ledger"
night baselines/ci/avx512-night-runlog.jsonl avx512
rm -rf docs/dashboard/site
trainguard dashboard --ledger "$ledger" --out docs/dashboard/site
python tools/dashboard_screenshots.py docs/dashboard/site docs/dashboard
