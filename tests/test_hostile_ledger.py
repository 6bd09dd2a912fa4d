"""Hostile records: what a ledger others can write (an imported file, a shared database, a history branch) can and
cannot do to trainguard and to the published dashboard. Real SQLite and PostgreSQL (conftest's postgres_server),
the distribution's Chromium for what a reader's browser does with the pages. No mocks.

The ledger's one validation (stores/night_record.py) refuses records that are not night records; the dashboard's one
escaping rule (report/dashboard.py `_e`) shows whatever valid text holds as text."""

import json
from pathlib import Path

import pytest

from trainguard import cli
from trainguard.report import dashboard
from trainguard.stores import ledger as ledger_module
from trainguard.stores.ledger import open_ledger
from trainguard.stores.night_record import validate_record
from trainguard.core.errors import ConfigError

from test_ledger import entry, postgres_database

MARKUP = '"><img src=x onerror="window.__pwned=1;alert(1)">'
SCRIPT = "<script>window.__pwned=2</script>"


def _hostile_valid_night(run_id: str, time: str = "2026-12-01T02:17:00+00:00") -> dict:
    """A record that passes validation — every field the right type and length — with markup wherever text goes."""
    return entry(run_id, time=time, result="FAIL", commit=f"c0ffee{MARKUP}"[:80], hardware=f"cpu {SCRIPT}",
                 cells={f"Model{MARKUP}": {"10": {"test_acc": {"100": 31.5}}}},
                 speed={f"Model{MARKUP}": {"trained": True, "epoch_seconds": 0.5}},
                 failures=[f"Model-10 test_acc REGRESSION {SCRIPT}"], flags=[f"drift {MARKUP}"],
                 replay={f"Model{MARKUP}": {"status": f"changed {MARKUP}", "message": f"at step 3 {SCRIPT}"}},
                 versions={"torch": f"2.14{SCRIPT}"},
                 experiments={f"exp{MARKUP}": {f"v{SCRIPT}": {"10": {f"m{SCRIPT}": {"100": 1.0}}}}},
                 experiment_bands={f"exp{MARKUP}": {"metric": f"m{SCRIPT}", f"v{SCRIPT}-10": [0.5, 1.5]}})


@pytest.mark.parametrize("field, value, said", [
    ("profile", 'x"><img src=x onerror=alert(1)>', "profile: 'x\"><img src=x onerror=alert(1)>' is not a plain name"),
    ("device_class", "../../pwned", "device_class: '../../pwned' is not a plain name"),
    ("run_id", "a/b", "run_id: 'a/b' is not a plain name"),
    ("id", "../../pwned", "unknown keys ['id']"),
    ("time", "yesterday", "time: 'yesterday' is not an ISO 8601 time"),
    ("cells", {"M": {"10": {"test_acc": {"100": float("nan")}}}}, "cells[M][10][test_acc][100]: not a finite number"),
    ("commit", "x" * 81, "commit: longer than 80 characters"),
    ("result", "PASS\u0007", "result: 'PASS\\x07' is not one of"),
    ("hardware", "cpu\x1b[2J", "hardware: holds a control character"),
    ("sources", {"mine": "<script>"}, "sources[mine]: expected a sha256 in hex"),
    ("experiment_bands", {"mine": {"metric": "gap", "v-10": [1.0]}}, "experiment_bands[mine][v-10]: expected [low, high]"),
    ("experiment_bands", {"mine": {"gap": {"v-10": [1.0]}}}, "experiment_bands[mine][gap][v-10]: expected [low, high]"),
])
def test_a_hostile_record_through_import_is_refused_naming_the_file_and_record_and_nothing_is_imported(
        tmp_path, capsys, field, value, said):
    ledger_file = tmp_path / "in.jsonl"
    good, bad = entry("good"), entry("bad")
    bad[field] = value
    ledger_file.write_text("\n".join(json.dumps({"format_version": 1, **e}) for e in (good, bad)) + "\n")
    database = tmp_path / "ledger.sqlite"
    assert cli.main(["ledger", "import", str(ledger_file), "--ledger", str(database)]) == 2
    err = capsys.readouterr().err
    assert f"ledger import {ledger_file}, record 2: not a valid night record" in err and said in err, err
    assert open_ledger(database).nights() == []  # all or none: the good record did not go in without the bad


def test_the_record_s_own_id_never_replaces_the_database_s_nor_names_a_folder(tmp_path):
    store = open_ledger(tmp_path / "ledger.sqlite")
    with pytest.raises(ConfigError, match="unknown keys \\['id'\\]"):
        store.append({**entry("one"), "id": "../../pwned"})
    store.append(entry("two"))
    out = tmp_path / "site" / "out"
    dashboard.build(store, out)
    (night, _), = store.nights()
    assert (out / "nights" / str(night) / "index.html").is_file()
    assert [p.name for p in (out / "nights").iterdir()] == [str(night)]
    assert not list(tmp_path.rglob("pwned*"))


def _insert_raw(store, profile: str, device_class: str, record: dict | str) -> None:
    """What another host with write access to a shared database can do: a row written straight into the tables,
    past trainguard's validation."""
    import sqlalchemy as sa

    text = record if isinstance(record, str) else json.dumps({"format_version": 1, **record})
    with store.engine.begin() as connection:
        connection.execute(sa.insert(ledger_module.NIGHTS).values(
            run_id=f"raw-{len(text)}-{abs(hash(text)) % 10**8}", profile=profile, device_class=device_class,
            time="2026-12-02T00:00:00+00:00", result="PASS", commit_id="x", entry=text))


@pytest.fixture(params=["sqlite", "postgresql"])
def shared(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.sqlite")
    else:
        yield from postgres_database(request.getfixturevalue("postgres_server"))


def test_hostile_rows_written_straight_into_a_shared_database_are_refused_listed_and_never_followed(shared, tmp_path):
    store = open_ledger(shared)
    store.append(entry("honest"))
    evil_profile = 'x"><img src=x onerror=alert(1)>'
    _insert_raw(store, evil_profile, "cpu", {**entry("e1"), "profile": evil_profile})
    _insert_raw(store, "ci", "cpu", {**entry("e2"), "id": "../../pwned"})
    _insert_raw(store, "ci", "cpu", {**entry("e3"), "profile": "smoke"})  # a record filed under another class
    _insert_raw(store, "ci", "cpu", "{not json")
    reader = open_ledger(shared)
    assert [record["run_id"] for _, record in reader.nights()] == ["honest"]
    assert len(reader.refused) == 4 and any("unknown keys ['id']" in r for r in reader.refused)
    assert all("not a valid night record" in r or "not JSON" in r or "its row ci on cpu" in r for r in reader.refused)
    out = tmp_path / "site"
    dashboard.build(reader, out)
    index = (out / "index.html").read_text()
    assert "4 record(s) of the ledger refused" in index
    assert str(tmp_path) not in index and "the ledger, night" in index  # where the ledger lives is not published
    assert "<img" not in index.replace("&lt;img", "")  # named in the list of refusals, as text
    assert not list(tmp_path.rglob("pwned*")) and not list(Path(shared).parent.rglob("pwned*"))
    assert reader.read("ci", "cpu")[0]["run_id"] == "honest"  # drift and speed compare with the honest night only


def test_valid_records_full_of_markup_are_shown_as_text_in_a_real_browser(tmp_path, page):
    store = open_ledger(tmp_path / "ledger.sqlite")
    store.append(_hostile_valid_night("n1", "2026-12-01T02:17:00+00:00"))
    store.append(_hostile_valid_night("n2", "2026-12-02T02:17:00+00:00"),
                 {"report.md": f"# night\n\n{SCRIPT} {MARKUP}\n\n[x](javascript:alert(3)) ![t](http://example.invalid/t.png)\n".encode()})
    out = tmp_path / "site"
    dashboard.build(store, out)
    (first, _), (second, _) = store.nights()
    for path in (out / "index.html", out / "regressions.html", out / "nights" / str(first) / "index.html",
                 out / "nights" / str(second) / "index.html"):
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        if path.name == "index.html" and path.parent == out:
            page.wait_for_function("document.querySelectorAll('.trend .main-svg').length > 0")
        assert page.dialogs == [], f"{path}: a script ran: {page.dialogs}"
        assert page.evaluate("() => window.__pwned === undefined"), path
        injected = page.evaluate("() => document.querySelectorAll('img[src=\"x\"], script:not([src])').length")
        assert injected == 0, path
        assert "onerror" in page.inner_text("body") or "script" in page.inner_text("body"), path  # shown, as text
        remote = [url for url in page.requests if not url.startswith(("file://", "data:")) and url not in page.blocked]
        assert remote == [], remote  # the report's remote image was not fetched (the pages' policy: img-src 'self')
    assert page.blocked == ["http://example.invalid/t.png"]  # the one remote image, stopped by the policy
    assert all("Content Security Policy" in e for e in page.errors), page.errors


def test_validation_normalises_time_to_utc_and_nights_are_ordered_by_when_they_ran(tmp_path):
    store = open_ledger(tmp_path / "ledger.sqlite")
    store.append(entry("late-recorded", time="2026-12-01T03:00:00+01:00"))  # 02:00 UTC, recorded last
    store.append(entry("second", time="2026-12-02T02:17:00+00:00"))
    store.append(entry("first", time="2026-12-01T02:17:00+00:00"))
    assert [r["run_id"] for r in store.read("ci", "cpu")] == ["late-recorded", "first", "second"]
    assert store.read("ci", "cpu")[0]["time"] == "2026-12-01T02:00:00+00:00"
    assert validate_record({**entry("x"), "format_version": 1}, "here")["time"] == "2026-12-01T02:17:00+00:00"


def test_published_pages_carry_no_local_paths_nor_ray_hosts(tmp_path):
    store = open_ledger(tmp_path / "ledger.sqlite")
    report = ("# night\n\n| key | value |\n| --- | --- |\n| python | /home/alice/project/.venv/bin/python3 |\n"
              "| data | cifar10 from /srv/alice/data/cifar10.npz; verified |\n\n"
              "executor: Ray — 3 run(s) trained on gpu-node-17.corp.example, 1 run(s) trained on 10.1.2.3\n")
    store.append(entry("n1"), {"report.md": report.encode()})
    store.append(entry("n2", time="2026-12-02T02:17:00+00:00", hardware="cpu"))  # no report: its record is shown
    out = tmp_path / "site"
    dashboard.build(store, out)
    pages = "".join(p.read_text() for p in out.rglob("*.html"))
    for private in ("/home/alice", "/srv/alice", "gpu-node-17", "10.1.2.3", str(tmp_path)):
        assert private not in pages, private
    assert "…/python3" in pages and "…/cifar10.npz" in pages and "trained on a cluster node" in pages
