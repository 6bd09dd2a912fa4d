#!/usr/bin/env bash
# A PostgreSQL server for the ledger tests (tests/test_ledger.py), started the way a CI machine can: Debian's
# package (installed if missing; needs root), its default cluster started, a role and a database created for
# trainguard. Prints the URL to export as TRAINGUARD_TEST_POSTGRES. Idempotent: a second call finds it running.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
    pg_createcluster "$version" main >&2
fi
pg_ctlcluster "$version" main start >&2 2>/dev/null || true
for _ in $(seq 1 30); do
    pg_isready -q -h localhost && break
    sleep 1
done
pg_isready -h localhost >&2
su postgres -c "psql -q -tAc \"SELECT 1 FROM pg_roles WHERE rolname='trainguard'\"" | grep -q 1 ||
    su postgres -c "psql -q -c \"CREATE ROLE trainguard LOGIN CREATEDB PASSWORD 'trainguard'\"" >&2
su postgres -c "psql -q -tAc \"SELECT 1 FROM pg_database WHERE datname='trainguard_test'\"" | grep -q 1 ||
    su postgres -c "createdb -O trainguard trainguard_test" >&2
echo "postgresql://trainguard:trainguard@localhost:5432/trainguard_test"
