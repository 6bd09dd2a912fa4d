"""Every entry point the README and docs tell users about starts: each tox env's command collects (pytest) or
answers --help (trainguard), and every trainguard subcommand has a working --help."""

import configparser
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from trainguard import cli

ROOT = Path(__file__).resolve().parent.parent


def tox_commands() -> dict[str, str]:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini")
    commands = {}
    for section in config.sections():
        if section.startswith("testenv") and "commands" in config[section]:
            name = section.partition(":")[2] or "py"
            command = config[section]["commands"].strip()
            command = re.sub(r"\{env:[A-Z_]+:([^}]*)\}", r"\1", command).replace("{posargs}", "").strip()
            commands[name] = command
    return commands


def test_tox_has_the_documented_envs():
    assert set(tox_commands()) == {"py", "slow", "gpu", "report", "baseline", "bench"}


# Each collects the whole test suite in a fresh process (seconds): slow and gpu, the same collection, run with the
# slow suite; the fast suite keeps the others.
@pytest.mark.parametrize("env", [pytest.param(env, marks=pytest.mark.slow) if env in ("slow", "gpu") else env
                                 for env in sorted(tox_commands())])
def test_each_tox_env_command_starts(env):
    args = shlex.split(tox_commands()[env])
    if args[0] == "pytest":
        if "--tg-device" in args:  # tox -e gpu on a machine without CUDA: collection only needs the profile
            args[args.index("--tg-device") + 1] = "cpu"
        args = [sys.executable, "-m", "pytest", *[a.strip('"') for a in args[1:]], "--collect-only", "-q",
                "-p", "no:cacheprovider"]
    else:
        assert args[0] == "trainguard"
        args = [sys.executable, "-m", "trainguard.cli", *args[1:], "--help"]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    if "pytest" in args:
        assert re.search(r"\d+ tests? collected|\d+/\d+ tests collected", result.stdout), result.stdout[-500:]


@pytest.mark.parametrize("command", ["run", "replay", "report", "baselines", "selftest", "ledger", "history", "data",
                                     "data export", "dashboard", "guard"])
def test_every_cli_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command.split(), "--help"])
    assert exit_info.value.code == 0
    shown = "ledger" if command == "history" else command  # `history`: the ledger command's former name
    assert "usage: trainguard " + shown in capsys.readouterr().out


def test_the_gpu_check_script_starts_and_refuses_a_missing_export(tmp_path):
    """tools/gpu_check.sh on this CPU: its baseline part without the exported data stops at once, naming
    the command that writes it, and still returns its archive."""
    env = {**os.environ, "PART": "baseline", "DEVICE": "cpu", "DATA": str(tmp_path / "none"), "OUT": str(tmp_path / "out"),
           "WORK": str(tmp_path / "work"), "PYTHON": sys.executable}
    result = subprocess.run(["bash", "tools/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "trainguard data export --profile ci" in result.stderr
    assert (tmp_path / "out" / "baseline.tgz").exists()


def test_the_baseline_comparison_tool_starts():
    """tools/baseline_mde.py (a re-measured baseline against the committed one, from run logs) starts."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "baseline_mde.py"), "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "--log" in result.stdout, result.stderr[-2000:]
