"""Concurrent writers and readers of trainguard's files, in real processes: appenders and readers of one line store
lose no line and leave no torn file; set-asides never overwrite each other; golden and inputs files are read as one
generation, after an interrupted update is finished; the data cache's lock stays inside trainguard's own cache."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from trainguard.core import storage
from trainguard.stores import data
from trainguard.stores.golden import inputs_bytes, read_inputs

WRITERS, LINES, PAYLOAD = 3, 40, 2_000_000  # lines of many pages: a write larger than a page is not atomic to readers


def _spawn(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # over 8 s here: in the slow suite (CI runs it), the fast one stays under 3 minutes
@pytest.mark.generated  # generated data: isolated from the user's data, cache and CI=true as a fast test is
def test_concurrent_appenders_and_readers_lose_no_line_and_tear_none(tmp_path):
    store = tmp_path / "runlog.jsonl"
    writers = [_spawn(f"""
        import json
        from trainguard.core.storage import append_line
        for i in range({LINES}):
            append_line({str(store)!r}, json.dumps({{"writer": {w}, "i": i, "pad": "x" * {PAYLOAD}}}))
    """) for w in range(WRITERS)]
    readers = [_spawn(f"""
        import os, time
        from trainguard.core.storage import read_json_lines
        reads = most = 0
        while not os.path.exists({str(tmp_path / "done")!r}):
            if os.path.exists({str(store)!r}):
                lines = read_json_lines({str(store)!r}, "run log", lambda r: "writer" in r, "a test line")
                reads, most = reads + 1, max(most, len(lines))
        print(reads, most)
    """) for _ in range(2)]
    started = time.perf_counter()
    for writer in writers:
        _, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err
    elapsed = time.perf_counter() - started
    (tmp_path / "done").touch()
    counts = []
    for reader in readers:
        out, err = reader.communicate(timeout=600)
        assert reader.returncode == 0, err  # a reader never met a damaged line
        counts.append(tuple(map(int, out.split())))
    lines = storage.read_json_lines(store, "run log", lambda r: "writer" in r, "a test line")
    assert len(lines) == WRITERS * LINES
    assert sorted((r["writer"], r["i"]) for r in lines) == [(w, i) for w in range(WRITERS) for i in range(LINES)]
    assert not list(tmp_path.glob("*.torn-*"))  # no reader mistook a line being written for a torn one
    assert all(reads > 0 for reads, _ in counts)
    print(f"{WRITERS * LINES} lines of {PAYLOAD / 1000:.0f} kB by {WRITERS} writers in {elapsed:.1f} s; "
          f"readers: {counts} (reads, most lines seen)")


def test_two_set_asides_in_the_same_second_keep_both(tmp_path):
    path = tmp_path / "cifar10.npz"
    names = []
    for content in (b"first", b"second"):
        path.write_bytes(content)
        aside = storage.unique_aside(path, "bad")
        path.rename(aside)
        names.append(aside)
    assert len(set(names)) == 2 and [p.read_bytes() for p in names] == [b"first", b"second"]


def test_a_failed_download_leaves_nothing_among_the_user_s_other_caches(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TRAINGUARD_CACHE_DIR", raising=False)
    monkeypatch.setattr(data, "DOWNLOADER", lambda name, scratch: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(data.DataError, match="download failed"):
        data.load("cifar10", None, None, allow_download=True)
    assert sorted(p.name for p in (home / ".cache").iterdir()) == ["trainguard"]


def test_the_inputs_fingerprint_is_read_after_an_interrupted_update_is_finished(tmp_path):
    """An update killed after its commit point: the goldens' reader finishes it; the inputs' reader does too."""
    directory = tmp_path / "golden-cpu"
    directory.mkdir()
    old = {"cifar10 train": {"images": 10, "sha256": "old"}}
    new = {"cifar10 train": {"images": 10, "sha256": "new"}}
    (directory / "inputs.json").write_bytes(inputs_bytes(old))
    stage = directory / ".staged-killed"
    stage.mkdir()
    (stage / "inputs.json").write_bytes(inputs_bytes(new))
    (stage / ".commit").write_text(json.dumps(["inputs.json"]))  # committed, not yet moved: then the kill
    assert read_inputs(directory / "inputs.json") == new
    assert not stage.exists()
    assert os.listdir(directory) == ["inputs.json"] or sorted(os.listdir(directory)) == [".trainguard.lock", "inputs.json"]
