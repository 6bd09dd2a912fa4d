#!/usr/bin/env bash
# The ledger of nights kept in a branch of the repository, between nights on hosted runners:
#   tools/history_branch.sh restore DIR         the branch's files into DIR (no branch yet: DIR left empty, said so)
#   tools/history_branch.sh save DIR FILE       DIR/FILE into the branch, pushed; retried when another job pushed first
# Each job saves its own file (ledger-cpu.sqlite, ledger-gpu.sqlite), so two jobs never edit one file.
#
# Run from the workflow's own checkout: everything happens in that repository with git plumbing (no second clone),
# so it uses the credentials actions/checkout put in its git config, on public and private repositories alike.
# What it guards against:
#   - a remote that cannot be reached (network, credentials) is an error, never "no branch yet": a restore that
#     came back empty by mistake would otherwise let the next save replace every night with one;
#   - a save never replaces the branch's ledger with one holding fewer nights (a restore that failed, a bug);
#   - a save never overwrites another job's push: it leases the tip it read (--force-with-lease) and retries;
#   - the branch stays small: one commit holding the current files, not a new copy of the database every night
#     (the workflow prunes old nights' reports first: `trainguard ledger prune`; every night's record is kept).
set -euo pipefail
if [[ -z "${GITHUB_ACTIONS:-}" ]]; then  # a local run (tools/nightly.sh): the ledger stays in DIR, nothing is pushed
    echo "not in GitHub Actions: the ledger stays in ${2:-DIR}"
    exit 0
fi
branch=${TRAINGUARD_HISTORY_BRANCH:-trainguard-history}
action=${1:-} dir=${2:-}
[[ -n "$action" && -n "$dir" ]] || { echo "usage: $0 restore DIR | save DIR FILE" >&2; exit 2; }
remote_ref="refs/remotes/origin/$branch"

# 0: the branch exists (fetched into $remote_ref); 2: it does not exist yet; anything else: exit, loudly.
fetch_branch() {
    local code=0
    git ls-remote --exit-code --heads origin "refs/heads/$branch" >/dev/null 2>"$errors" || code=$?
    if [[ $code -eq 2 ]]; then
        return 2
    elif [[ $code -ne 0 ]]; then
        echo "history_branch: cannot reach the remote 'origin' to read $branch (git ls-remote exit $code): $(tail -2 "$errors")" >&2
        echo "history_branch: refusing to go on as if there were no ledger yet" >&2
        exit 1
    fi
    if ! git fetch -q --no-tags --depth 1 origin "+refs/heads/$branch:$remote_ref" 2>"$errors"; then
        echo "history_branch: cannot fetch $branch: $(tail -2 "$errors")" >&2
        exit 1
    fi
}

nights_in() {  # the number of nights a ledger file holds (0: none or no ledger)
    python3 - "$1" <<'EOF'
import sqlite3, sys
try:
    print(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("select count(*) from nights").fetchone()[0])
except sqlite3.Error:
    print(0)
EOF
}

errors=$(mktemp)
scratch=$(mktemp -d)
trap 'rm -rf "$errors" "$scratch"' EXIT
mkdir -p "$dir"
case "$action" in
    restore)
        if fetch_branch; then
            git ls-tree --name-only "$remote_ref" | while read -r name; do
                git cat-file blob "$remote_ref:$name" > "$dir/$name"
            done
            echo "history_branch: restored $(git ls-tree --name-only "$remote_ref" | tr '\n' ' ')from $branch"
        else
            echo "history_branch: no branch $branch on origin yet: starting a new ledger"
        fi
        ;;
    save)
        file=${3:-}
        [[ -n "$file" ]] || { echo "usage: $0 save DIR FILE" >&2; exit 2; }
        [[ -f "$dir/$file" ]] || { echo "history_branch: no $dir/$file to save"; exit 0; }
        for attempt in 1 2 3 4 5; do
            tip="" exists=0
            fetch_branch || exists=$?
            export GIT_INDEX_FILE="$scratch/index"
            rm -f "$GIT_INDEX_FILE"
            if [[ $exists -eq 0 ]]; then
                tip=$(git rev-parse "$remote_ref")
                if git cat-file -e "$tip:$file" 2>/dev/null; then
                    git cat-file blob "$tip:$file" > "$scratch/old"
                    old=$(nights_in "$scratch/old") new=$(nights_in "$dir/$file")
                    if (( new < old )); then
                        echo "history_branch: refusing to replace $file on $branch ($old nights) with one of $new nights" >&2
                        exit 1
                    fi
                fi
                git read-tree "$tip"  # the other jobs' files stay as they are
            fi
            blob=$(git hash-object -w "$dir/$file")
            git update-index --add --cacheinfo "100644,$blob,$file"
            tree=$(git write-tree)
            if [[ -n "$tip" && "$(git rev-parse "$tip^{tree}")" == "$tree" ]]; then
                echo "history_branch: $file unchanged on $branch"
                exit 0
            fi
            commit=$(GIT_AUTHOR_NAME=trainguard GIT_AUTHOR_EMAIL=trainguard@users.noreply.github.com \
                     GIT_COMMITTER_NAME=trainguard GIT_COMMITTER_EMAIL=trainguard@users.noreply.github.com \
                     git commit-tree "$tree" -m "ledger: $file after run ${GITHUB_RUN_ID:-local}")
            unset GIT_INDEX_FILE
            if git push -q --force-with-lease="refs/heads/$branch:$tip" origin "$commit:refs/heads/$branch" 2>"$errors"; then
                echo "history_branch: saved $file to $branch ($(nights_in "$dir/$file") nights)"
                exit 0
            fi
            echo "history_branch: push $attempt refused ($(tail -1 "$errors")); reading the branch again" >&2
            sleep $((attempt * 3))
        done
        echo "history_branch: could not push $file to $branch after 5 attempts" >&2
        exit 1
        ;;
    *)
        echo "usage: $0 restore DIR | save DIR FILE" >&2
        exit 2
        ;;
esac
