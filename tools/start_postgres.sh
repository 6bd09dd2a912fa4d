#!/usr/bin/env bash
# A throwaway PostgreSQL server for the ledger tests (tests/test_ledger.py), started the way a CI machine can:
# Debian's server package (installed if missing; needs root), then a new cluster of its own in a fresh directory
# (tools/throwaway_postgres.py: 127.0.0.1 at a free port, one role with a random password). It never touches a
# cluster the machine already runs. Prints the URL to export as TRAINGUARD_TEST_POSTGRES; the directory it used
# goes to stderr (`python3 tools/throwaway_postgres.py stop DIR` stops it and removes it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! python3 -c "import sys; sys.path.insert(0, '$here'); import throwaway_postgres as t; sys.exit(t.binaries() is None)"; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi
directory=$(mktemp -d /tmp/tg-postgres-XXXXXX)
echo "throwaway PostgreSQL in $directory" >&2
python3 "$here/throwaway_postgres.py" start "$directory"
