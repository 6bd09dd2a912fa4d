"""tools/history_branch.sh against a local bare repository standing in for the forge, with credentials only where
the workflow puts them: the remote's URL (https://forge.invalid/…) resolves only through the workspace checkout's
own git config (an ``insteadOf`` rule, as actions/checkout puts its token in that config and nowhere else). A second
clone made elsewhere, as the script once did, cannot reach it."""

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from trainguard.stores.ledger import open_ledger

from test_ledger import entry

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "history_branch.sh"
REMOTE = "https://forge.invalid/owner/repo.git"


def _git(cwd, *args, env=None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def forge(tmp_path):
    """(workspace, bare, env): a bare repository with a main branch, and the workflow's checkout of it."""
    env = {**os.environ, "HOME": str(tmp_path / "home"), "GIT_CONFIG_NOSYSTEM": "1", "GITHUB_ACTIONS": "true",
           "GITHUB_RUN_ID": "42", "GIT_TERMINAL_PROMPT": "0"}
    (tmp_path / "home").mkdir()
    bare = tmp_path / "forge.git"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare), env=env)
    workspace = tmp_path / "workspace"
    _git(tmp_path, "init", "-q", "-b", "main", str(workspace), env=env)
    (workspace / "README.md").write_text("project\n")
    _git(workspace, "add", "README.md", env=env)
    _git(workspace, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first", env=env)
    _git(workspace, "remote", "add", "origin", REMOTE, env=env)
    # the credentials: only in this checkout's config, as actions/checkout leaves them
    _git(workspace, "config", f"url.{bare.as_uri()}.insteadOf", REMOTE, env=env)
    _git(workspace, "push", "-q", "origin", "main", env=env)
    return workspace, bare, env


def _script(workspace, env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=workspace, env=env, capture_output=True, text=True)


def _ledger(path: Path, nights: int) -> Path:
    store = open_ledger(path)
    for night in range(nights):
        store.append(entry(f"n{night}", time=f"2026-12-{night + 1:02d}T02:17:00+00:00"),
                     {"report.md": os.urandom(1000)})
    return path


def _saved(forge, nights: int) -> str:
    """A ledger of ``nights`` nights saved to the branch from the workspace; the branch's tip after it."""
    workspace, bare, env = forge
    history = workspace / ".trainguard" / "history"
    _ledger(history / "ledger-cpu.sqlite", nights)
    assert _script(workspace, env, "save", str(history), "ledger-cpu.sqlite").returncode == 0
    return _git(bare, "rev-parse", "trainguard-history", env=env)


def test_saved_and_restored_with_only_the_workflow_s_credentials_one_commit_kept(forge, tmp_path):
    workspace, bare, env = forge
    history = workspace / ".trainguard" / "history"
    assert "no branch trainguard-history" in _script(workspace, env, "restore", str(history)).stdout
    _ledger(history / "ledger-cpu.sqlite", 1)
    saved = _script(workspace, env, "save", str(history), "ledger-cpu.sqlite")
    assert saved.returncode == 0, saved.stderr
    _ledger(history / "ledger-cpu.sqlite", 2)  # the next night: one more (n0 is there already)
    assert _script(workspace, env, "save", str(history), "ledger-cpu.sqlite").returncode == 0
    (tmp_path / "gpu").mkdir()
    _ledger(tmp_path / "gpu" / "ledger-gpu.sqlite", 1)  # the other job's file, beside it
    assert _script(workspace, env, "save", str(tmp_path / "gpu"), "ledger-gpu.sqlite").returncode == 0
    restored = tmp_path / "restored"
    result = _script(workspace, env, "restore", str(restored))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in restored.iterdir()) == ["ledger-cpu.sqlite", "ledger-gpu.sqlite"]
    assert len(open_ledger(restored / "ledger-cpu.sqlite").nights()) == 2
    log = _git(bare, "log", "--oneline", "trainguard-history", env=env).splitlines()
    assert len(log) == 1, log  # the branch holds the current files, not every night's copy of the database


def test_a_restore_that_cannot_reach_the_remote_fails_loudly_and_a_save_changes_nothing(forge, tmp_path):
    workspace, bare, env = forge
    tip = _saved(forge, nights=2)
    _git(workspace, "config", "--unset", f"url.{bare.as_uri()}.insteadOf", env=env)  # the token expired
    empty = tmp_path / "empty"
    result = _script(workspace, env, "restore", str(empty))
    assert result.returncode != 0 and "cannot reach the remote" in result.stderr
    assert "refusing to go on as if there were no ledger yet" in result.stderr
    _ledger(empty / "ledger-cpu.sqlite", 1)  # a night that went on anyway: one night
    assert _script(workspace, env, "save", str(empty), "ledger-cpu.sqlite").returncode != 0
    assert _git(bare, "rev-parse", "trainguard-history", env=env) == tip


def test_a_save_never_replaces_the_branch_s_ledger_with_fewer_nights(forge, tmp_path):
    workspace, bare, env = forge
    tip = _saved(forge, nights=3)
    fresh = tmp_path / "fresh"
    _ledger(fresh / "ledger-cpu.sqlite", 1)
    result = _script(workspace, env, "save", str(fresh), "ledger-cpu.sqlite")
    assert result.returncode != 0 and "refusing to replace ledger-cpu.sqlite on trainguard-history (3 nights) with one of 1" in result.stderr
    assert _git(bare, "rev-parse", "trainguard-history", env=env) == tip


def test_pruned_reports_keep_the_committed_ledger_small_and_every_record(tmp_path):
    """The retention the nightly applies before saving (`trainguard ledger prune --keep-reports 30`): 60 nights
    with a 400 kB report each; the newest 30 keep theirs, all 60 keep their records."""
    path = tmp_path / "ledger.sqlite"
    store = open_ledger(path)
    for night in range(60):
        store.append(entry(f"n{night}", time=f"2026-{night // 28 + 10:02d}-{night % 28 + 1:02d}T02:17:00+00:00"),
                     {"report.md": os.urandom(400_000)})
    before = path.stat().st_size
    assert store.prune(30) == 30
    after = path.stat().st_size
    nights = store.nights()
    assert len(nights) == 60
    assert [bool(store.artifacts(n)) for n, _ in nights] == [False] * 30 + [True] * 30
    assert after < 0.55 * before, (before, after)
    with sqlite3.connect(path) as connection:
        assert connection.execute("pragma integrity_check").fetchone() == ("ok",)


def test_the_prune_command_says_what_it_did(tmp_path, capsys):
    from trainguard import cli

    path = _ledger(tmp_path / "ledger.sqlite", 3)
    assert cli.main(["ledger", "prune", "--ledger", str(path), "--keep-reports", "1"]) == 0
    assert "pruned the reports of 2 night(s)" in capsys.readouterr().out
    assert [bool(open_ledger(path).artifacts(n)) for n, _ in open_ledger(path).nights()] == [False, False, True]
    assert cli.main(["ledger", "prune", "--ledger", str(path), "--keep-reports", "-1"]) == 2
