#!/usr/bin/env bash
# The ledger of nights kept durably in a branch of the repository (as github-action-benchmark keeps its data):
#   tools/history_branch.sh restore DIR         the branch's files into DIR (nothing yet: an empty DIR)
#   tools/history_branch.sh save DIR FILE       commit DIR/FILE to the branch and push, retrying on a race
# Each job saves its own file (ledger-cpu.sqlite, ledger-gpu.sqlite), so two jobs never edit one file.
set -euo pipefail
if [[ -z "${GITHUB_ACTIONS:-}" ]]; then  # a local run (tools/nightly.sh): the ledger stays in DIR, nothing is pushed
    echo "not in GitHub Actions: the ledger stays in ${2:-DIR}"
    exit 0
fi
branch=${TRAINGUARD_HISTORY_BRANCH:-trainguard-history}
action=$1 dir=$2
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
remote=$(git remote get-url origin)
fetch() {
    rm -rf "$work/branch"
    if git ls-remote --exit-code --heads origin "$branch" >/dev/null 2>&1; then
        git clone -q --depth 1 --branch "$branch" "$remote" "$work/branch"
    else
        git init -q "$work/branch" && git -C "$work/branch" checkout -q --orphan "$branch"
        git -C "$work/branch" remote add origin "$remote"
    fi
}
case "$action" in
    restore)
        fetch
        find "$work/branch" -maxdepth 1 -type f -exec cp {} "$dir"/ \;
        ;;
    save)
        file=$3
        [ -f "$dir/$file" ] || { echo "no $dir/$file to save"; exit 0; }
        for attempt in 1 2 3 4 5; do
            fetch
            cp "$dir/$file" "$work/branch/$file"
            git -C "$work/branch" add "$file"
            git -C "$work/branch" -c user.name=trainguard -c user.email=trainguard@users.noreply.github.com \
                commit -q -m "ledger: $file after run ${GITHUB_RUN_ID:-local}" || { echo "ledger unchanged"; exit 0; }
            git -C "$work/branch" push -q origin "HEAD:$branch" && exit 0
            sleep $((attempt * 5))
        done
        echo "could not push the ledger to $branch after 5 attempts" >&2
        exit 1
        ;;
    *)
        echo "usage: $0 restore DIR | save DIR FILE" >&2
        exit 2
        ;;
esac
