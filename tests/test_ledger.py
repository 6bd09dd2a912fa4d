"""The ledger of nights in a real database: SQLite always, PostgreSQL through a real server where one is given
(``TRAINGUARD_TEST_POSTGRES``: `.ci/run` starts one with tools/start_postgres.sh; else the suite starts a throwaway
one itself where PostgreSQL's server is installed: conftest's ``postgres_server``). No mocks.

What is shown: a night and its report stored and read back, the schema migrated from an older version, two
writers at once, a writer killed in the middle of its transaction, every committed JSON-lines ledger imported
with the same `trainguard ledger` output, exported back unchanged."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from trainguard import cli
from trainguard.stores import ledger as ledger_module
from trainguard.stores.ledger import JsonLinesLedger, database_url, open_ledger
from trainguard.core.spec import ConfigError

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted((ROOT / "docs").rglob("*.jsonl"))  # every JSON-lines ledger the repository keeps


def entry(run_id: str, profile: str = "ci", result: str = "PASS", **extra) -> dict:
    return {"run_id": run_id, "time": "2026-12-01T02:17:00+00:00", "profile": profile, "device_class": "cpu",
            "commit": "abc1234", "result": result, "cells": {"Baseline1": {"10": {"test_acc": {"100": 31.5}}}}, **extra}


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """A new, empty ledger of each kind: a SQLite file, or a database of its own on the PostgreSQL server."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.sqlite")
        return
    yield from postgres_database(request.getfixturevalue("postgres_server"))


def postgres_database(server: str):
    """A database of its own on the PostgreSQL server (dropped after)."""
    import sqlalchemy as sa

    name = f"tg_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(database_url(server), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    yield server.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))


def test_a_night_and_its_report_are_stored_and_read_back(location):
    store = open_ledger(location)
    first = store.append(entry("one"), {"report.md": b"# night one\n", "report-models-curves.png": b"\x89PNG..."})
    store.append(entry("two", result="FAIL"))
    store.append(entry("three", profile="smoke"))
    assert [e["run_id"] for e in store.read("ci", "cpu")] == ["one", "two"]
    assert store.profiles() == [("ci", "cpu"), ("smoke", "cpu")]
    assert store.artifacts(first) == {"report.md": b"# night one\n", "report-models-curves.png": b"\x89PNG..."}
    assert store.append(entry("one")) is None  # the same night again (an import run twice): stored once
    assert open_ledger(location).read("ci", "cpu")[1]["result"] == "FAIL"  # another connection sees it all
    assert store.schema_version() == ledger_module.SCHEMA_VERSION


def test_an_older_schema_is_migrated_and_keeps_its_nights(location, monkeypatch):
    monkeypatch.setattr(ledger_module, "SCHEMA_VERSION", 1)  # a ledger written by the trainguard before artifacts
    old = open_ledger(location)
    old.append(entry("before"))
    assert old.schema_version() == 1
    monkeypatch.undo()
    new = open_ledger(location)
    assert new.schema_version() == ledger_module.SCHEMA_VERSION == 2
    assert [e["run_id"] for e in new.read("ci", "cpu")] == ["before"]
    night = new.append(entry("after"), {"report.md": b"x"})
    assert new.artifacts(night) == {"report.md": b"x"}


def test_a_newer_schema_is_refused_by_an_older_trainguard(location, monkeypatch):
    open_ledger(location)
    monkeypatch.setattr(ledger_module, "SCHEMA_VERSION", 1)
    with pytest.raises(ConfigError, match=r"schema version 2 is newer than this trainguard's 1; upgrade trainguard"):
        open_ledger(location)


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from trainguard.stores.ledger import open_ledger
    store = open_ledger({location!r})
    for i in range(20):
        store.append({{"run_id": f"{{sys.argv[1]}}-{{i}}", "time": "2026-12-01T02:17:00+00:00", "profile": "ci", "device_class": "cpu",
                      "result": "PASS", "commit": "c"}}, {{"report.md": b"r" * 20000}})
""")


def test_two_writers_at_once_store_every_night_whole(location, tmp_path):
    open_ledger(location)  # created (and migrated) before the race: the race is about nights
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=str(ROOT), location=location))
    writers = [subprocess.Popen([sys.executable, str(script), name], stderr=subprocess.PIPE, text=True)
               for name in ("a", "b")]
    for writer in writers:
        assert writer.wait(timeout=300) == 0, writer.stderr.read()
    store = open_ledger(location)
    nights = store.nights("ci", "cpu")
    assert sorted(e["run_id"] for _, e in nights) == sorted(f"{w}-{i}" for w in "ab" for i in range(20))
    assert all(store.artifacts(night) == {"report.md": b"r" * 20000} for night, _ in nights[::7])


def test_a_writer_killed_mid_transaction_leaves_the_ledger_consistent(location, tmp_path):
    store = open_ledger(location)
    store.append(entry("kept"))
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from trainguard.stores import ledger
        def die(self, *exc):
            os.kill(os.getpid(), signal.SIGKILL)  # after the night's rows are written, before COMMIT
        ledger._WriteTransaction.__exit__ = die
        store = ledger.open_ledger({location!r})
        store.append({{"run_id": "torn", "time": "2026-12-01T02:17:00+00:00", "profile": "ci", "device_class": "cpu", "result": "PASS",
                       "commit": "c"}}, {{"report.md": b"half"}})
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    store = open_ledger(location)
    assert [e["run_id"] for e in store.read("ci", "cpu")] == ["kept"]  # the killed night is all out
    store.append(entry("next"))  # the next night runs
    assert [e["run_id"] for e in store.read("ci", "cpu")] == ["kept", "next"]
    if location.endswith(".sqlite"):
        import sqlite3

        assert sqlite3.connect(location).execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_every_committed_json_lines_ledger_imports_with_the_same_ledger_output(path, tmp_path, capsys):
    """`trainguard ledger` from the database after the import prints what the JSON-lines ledger printed:
    the same entries, through the same table."""
    from trainguard.report import markdown as report
    from trainguard.checks.trend import history_rows

    entries = JsonLinesLedger.read_file(path)
    profile = entries[0]["profile"]
    database = str(tmp_path / "ledger.sqlite")
    assert cli.main(["ledger", "import", str(path), "--ledger", database]) == 0
    capsys.readouterr()
    assert cli.main(["ledger", "--profile", profile, "--ledger", database, "--last", "100"]) == 0
    shown = capsys.readouterr().out.strip()
    expected = report.markdown_table(report.pd.DataFrame.from_records(history_rows(entries[-100:], 100))).strip()
    assert shown == expected
    assert cli.main(["ledger", "export", str(tmp_path / "out"), "--ledger", database]) == 0
    exported = JsonLinesLedger(tmp_path / "out").read(profile, entries[0]["device_class"])
    assert exported == entries  # nothing measured is lost either way


def test_the_former_ledger_dir_is_imported_once_into_its_database(tmp_path):
    legacy = JsonLinesLedger(tmp_path / "history")
    legacy.append(entry("old-1"))
    legacy.append(entry("old-2"))
    for _ in range(2):  # twice: imported once
        store = open_ledger(tmp_path / "history" / "ledger.sqlite")
    assert [e["run_id"] for e in store.read("ci", "cpu")] == ["old-1", "old-2"]


def test_an_unreachable_server_is_an_error_naming_it_without_its_password():
    with pytest.raises(ConfigError) as error:
        open_ledger("postgresql://someone:secret@127.0.0.1:1/nothing")
    message = str(error.value)
    assert "ledger postgresql+psycopg://someone:***@127.0.0.1:1/nothing" in message and "secret" not in message


def test_a_location_that_is_no_database_is_named():
    with pytest.raises(ConfigError, match=r"ledger 'mysql://x': expected a file path \(SQLite\)"):
        database_url("mysql://x")


def test_a_night_writes_its_record_and_report_in_the_ledger(tmp_path, smoke_runs):
    """A real night (smoke, from the cache): the ledger holds its record, and its report with the figures."""
    baselines = smoke_runs.copy_baseline(tmp_path / "b").parent
    code = cli.main(["run", "--profile", "smoke", "--device", "cpu", "--no-replay", "--results-dir",
                     str(smoke_runs.copy(tmp_path / "results")), "--baselines-dir", str(baselines),
                     "--run-log", str(tmp_path / "runlog.jsonl"), "--ledger", str(tmp_path / "l.sqlite"),
                     "--report", str(tmp_path / "night" / "report.md")])
    assert code == 0
    store = open_ledger(tmp_path / "l.sqlite")
    (night, record), = store.nights("smoke", "cpu")
    assert record["result"] == "PASS" and record["replay"] == {} and record["flags"] == []
    files = store.artifacts(night)
    assert files["report.md"] == (tmp_path / "night" / "report.md").read_bytes()
    assert "report-models-curves.png" in files and json.dumps(record)


def test_a_timing_only_night_is_recorded_as_timing_only_not_nothing_checked(tmp_path, capsys):
    """The result is decided once (api.night_result): the ledger says what the report and the exit code say."""
    profile = tmp_path / "timing.toml"
    profile.write_text('name = "timing"\ndataset = "synthetic"\ntrain_per_class = 3\ntest_images = 10\nbudgets = [1]\n'
                       'models = ["Baseline1"]\nchecks = []\ncheck_seeds = [100]\nbaseline_seeds = [0, 1]\n'
                       '[golden]\nenabled = false\n')
    code = cli.main(["run", "--profile", str(profile), "--device", "cpu", "--no-figures", "--results-dir",
                     str(tmp_path / "results"), "--run-log", str(tmp_path / "runlog.jsonl"), "--ledger",
                     str(tmp_path / "l.sqlite"), "--report", str(tmp_path / "report.md")])
    assert code == 0 and "TIMING ONLY" in (tmp_path / "report.md").read_text()
    assert [e["result"] for e in open_ledger(tmp_path / "l.sqlite").read("timing", "cpu")] == ["TIMING ONLY"]
