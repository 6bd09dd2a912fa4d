"""A ledger outage after hours of training costs the night its ledger entry, never its report: the record stage writes
the report first, then JUnit, MLflow and the job summary, and only then says the ledger failed (exit 2), with every
URL it prints redacted. A real PostgreSQL server (conftest's postgres_server): one nobody answers at, and one whose
role may read the ledger but not write it. `report --record` of the same run log twice records the night once."""

import json

import pytest

from trainguard import cli
from trainguard.stores.ledger import open_ledger

from test_ledger import postgres_database


def _night(tmp_path, smoke_runs, ledger: str, *extra) -> int:
    baselines = smoke_runs.copy_baseline(tmp_path / "b").parent
    return cli.main(["run", "--profile", "smoke", "--device", "cpu", "--no-replay", "--no-figures", "--results-dir",
                     str(smoke_runs.copy(tmp_path / "results")), "--baselines-dir", str(baselines),
                     "--run-log", str(tmp_path / "runlog.jsonl"), "--ledger", ledger,
                     "--junit-xml", str(tmp_path / "junit.xml"), "--report", str(tmp_path / "night" / "report.md"),
                     *extra])


def test_a_ledger_nobody_answers_at_still_leaves_the_report_and_junit_and_exits_2(tmp_path, smoke_runs, capsys):
    code = _night(tmp_path, smoke_runs, "postgresql://night:hunter2@127.0.0.1:9/x?password=hunter3")
    err = capsys.readouterr().err
    assert code == 2, err
    report = (tmp_path / "night" / "report.md").read_text()
    assert "THE LEDGER COULD NOT BE READ" in report and "32 passed" not in err
    assert (tmp_path / "junit.xml").is_file()
    assert "This night is NOT in the ledger" in err and "--record" in err
    assert "hunter2" not in err + report and "hunter3" not in err + report and "night:***@" in err


def test_a_ledger_that_can_be_read_but_not_written_still_leaves_everything_and_exits_2(
        tmp_path, smoke_runs, capsys, postgres_server):
    import sqlalchemy as sa

    from trainguard.stores.ledger import database_url

    database = next(postgres_database(postgres_server))
    open_ledger(database)  # the schema, created by its owner
    reader = f"reader_{tmp_path.name[-8:].lower().replace('-', '_')}"
    owner = sa.create_engine(database_url(database), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with owner.connect() as connection:  # a role that may read the ledger, not write it (a revoked grant)
        connection.execute(sa.text(f"CREATE ROLE {reader} LOGIN PASSWORD 'readonly-secret'"))
        connection.execute(sa.text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}"))
    address = database.split("@", 1)[1]
    code = _night(tmp_path, smoke_runs, f"postgresql://{reader}:readonly-secret@{address}")
    err = capsys.readouterr().err
    assert code == 2, err
    assert "permission denied" in err and "This night is NOT in the ledger" in err and "readonly-secret" not in err
    assert (tmp_path / "night" / "report.md").is_file() and (tmp_path / "junit.xml").is_file()
    assert open_ledger(database).nights() == []


def test_recording_the_same_run_log_twice_records_one_night(tmp_path, smoke_runs, capsys):
    ledger, baselines = tmp_path / "l.sqlite", smoke_runs.copy_baseline(tmp_path / "b").parent
    for _ in range(2):
        code = cli.main(["report", "--profile", "smoke", "--device", "cpu", "--no-figures", "--from-log",
                         str(smoke_runs.run_log()), "--baselines-dir", str(baselines),
                         "--results-dir", str(tmp_path / "empty"), "--record", "--ledger", str(ledger),
                         "--report", str(tmp_path / "rerendered" / "report.md")])
        assert code in (0, 1), capsys.readouterr().err
    records = open_ledger(ledger).read("smoke", "cpu")
    assert len(records) == 1 and records[0]["rerendered"] is True, json.dumps(records)[:400]


@pytest.mark.parametrize("url, secret", [
    ("postgresql://who:topsecret@127.0.0.1:9/db", "topsecret"),
    ("postgresql://who@127.0.0.1:9/db?password=topsecret", "topsecret"),
    ("mysql://who:topsecret@host/db", "topsecret"),
])
def test_every_ledger_url_printed_is_redacted(url, secret, capsys):
    assert cli.main(["ledger", "--profile", "smoke", "--ledger", url]) == 2
    err = capsys.readouterr().err
    assert secret not in err and "***" in err, err


def test_a_writer_frozen_mid_append_on_a_shared_postgresql_ledger_does_not_block_the_next_night(
        tmp_path, postgres_server, monkeypatch):
    """A host that stops in the middle of its append (SIGSTOP: a frozen VM, a cut network), holding the append
    lock: the server ends its session after TRAINGUARD_LEDGER_IDLE_SECONDS, and the next night's append goes in.
    Without that bound it waited until its own lock timeout and dropped its night."""
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    database = next(postgres_database(postgres_server))
    open_ledger(database)
    monkeypatch.setenv("TRAINGUARD_LEDGER_IDLE_SECONDS", "3")
    monkeypatch.setenv("TRAINGUARD_LOCK_TIMEOUT", "30")
    frozen = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, signal, sys
        from trainguard.stores.ledger import open_ledger
        store = open_ledger({database!r})
        with store._write() as connection:  # the append's transaction, its lock taken
            print("locked", flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert frozen.stdout.readline().strip() == "locked"
        started = time.monotonic()
        store = open_ledger(database)
        store.append({"run_id": "next", "time": "2026-12-02T02:17:00+00:00", "profile": "ci", "device_class": "cpu"})
        waited = time.monotonic() - started
    finally:
        frozen.send_signal(signal.SIGKILL)
        frozen.wait()
    assert [r["run_id"] for r in store.read("ci", "cpu")] == ["next"]
    assert waited < 20, waited  # the idle bound (3 s) and the server's check, far below the lock timeout (30 s)
    print(f"the next append waited {waited:.1f} s behind a frozen writer")
