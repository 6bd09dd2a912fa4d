#!/usr/bin/env bash
# The nightly workflow's CPU job (.github/workflows/nightly.yml), run locally in the same order: the
# same commands (a fast test checks each `run:` of the job appears here verbatim). Outside GitHub Actions
# tools/history_branch.sh leaves the ledger where it is (.trainguard/history/ledger-cpu.sqlite) instead of
# committing it to the trainguard-history branch; the job summary goes to reports/job-summary.md instead of
# GitHub's $GITHUB_STEP_SUMMARY. Afterwards reports/ holds the artifact's layout: report.md and figures,
# runlog.jsonl, junit.xml, history.md, trends/, dashboard/, job-summary.md.
# Usage: tools/nightly.sh   (offline: TRAINGUARD_DATA_DIR=../shared/data tools/nightly.sh; the data
# step then verifies that directory instead of downloading)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p reports
export GITHUB_STEP_SUMMARY=${GITHUB_STEP_SUMMARY:-$(pwd)/reports/job-summary.md}
# as the job: the ledger from the environment (a database URL never on a command line), else the job's SQLite file
export TRAINGUARD_LEDGER=${TRAINGUARD_LEDGER:-.trainguard/history/ledger-cpu.sqlite}
if [[ ! -x .venv/bin/python ]]; then python3 -m venv .venv; fi
. .venv/bin/activate

bash tools/history_branch.sh restore .trainguard/history
python -m pip install -c constraints/nightly.txt -e ".[tf,dev]"
if [[ -n "${TRAINGUARD_DATA_DIR:-}" ]]; then
    trainguard data verify --data-dir "$TRAINGUARD_DATA_DIR"
else
    trainguard data fetch cifar10 mnist
fi
python -m pytest -m "not slow" -n auto -q
status=0
trainguard run --profile ci --run-log reports/runlog.jsonl --junit-xml reports/junit.xml --report reports/report.md || status=$?
trainguard ledger --profile ci --plots reports/trends > reports/history.md
trainguard dashboard --out reports/dashboard
echo "Dashboard of every night: https://${GITHUB_REPOSITORY_OWNER:-OWNER}.github.io/$(basename "${GITHUB_REPOSITORY:-OWNER/REPO}")/cpu/ (this night's: reports/dashboard/index.html in the artifact)" >> "$GITHUB_STEP_SUMMARY"
if [[ "$TRAINGUARD_LEDGER" == .trainguard/history/ledger-cpu.sqlite ]]; then
    trainguard ledger prune --keep-reports 30
fi
# the workflow's keep-ledger-cpu job (its own token may push): the same script
bash tools/history_branch.sh save .trainguard/history ledger-cpu.sqlite
echo "job summary: $GITHUB_STEP_SUMMARY; artifact layout: reports/"
exit $status
