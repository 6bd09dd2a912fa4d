"""The nightly GitHub Actions workflow: valid against the GitHub workflow schema, and running
the commands this project actually has."""

import subprocess
import sys
from pathlib import Path

import pytest

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "nightly.yml"


def test_workflow_validates_against_the_github_schema():
    pytest.importorskip("check_jsonschema", reason="install the dev extra: pip install -e '.[dev]'")
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                             str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_runs_nightly_on_cpu_and_gpu_and_keeps_the_reports():
    yaml = pytest.importorskip("ruamel.yaml", reason="comes with check-jsonschema (dev extra)")
    workflow = yaml.YAML(typ="safe").load(WORKFLOW.read_text())
    assert workflow["on"]["schedule"][0]["cron"]
    cpu, gpu = workflow["jobs"]["cpu"], workflow["jobs"]["gpu"]
    cpu_commands = " ".join(step.get("run", "") for step in cpu["steps"])
    gpu_commands = " ".join(step.get("run", "") for step in gpu["steps"])
    assert "trainguard run --profile ci" in cpu_commands and "trainguard data fetch" in cpu_commands
    assert "--ledger" not in cpu_commands + gpu_commands  # from the environment: a URL never on a command line
    assert "-c constraints/nightly.txt" in cpu_commands and "--junit-xml reports/junit.xml" in cpu_commands
    assert "tox -e gpu" in gpu_commands and "self-hosted" in gpu["runs-on"]
    # The GPU night checks the profile strictly against its CUDA baseline; without one, red would not mean a
    # regression: the night says "no baseline for cuda" as its own state, checks what needs none (not strict) and
    # uploads a measured baseline with the command that installs it.
    assert gpu["env"]["TRAINGUARD_PROFILE"] == "ci" and gpu["env"]["CI"] == "true"
    steps = {step.get("name", ""): step for step in gpu["steps"]}
    probe = next(step for name, step in steps.items() if "CUDA baseline?" in name)
    assert "baselines/ci/cuda.csv" in probe["run"] and "no baseline for cuda" in probe["run"]
    strict = next(s for s in gpu["steps"] if "tox -e gpu" in s.get("run", "") and "present" in s.get("if", ""))
    assert "CI" not in strict.get("env", {})  # the job's CI=true: a failing check is red
    lenient = next(s for s in gpu["steps"] if "tox -e gpu" in s.get("run", "") and "missing" in s.get("if", ""))
    assert lenient["env"]["CI"] == "false" and "conclusions" in lenient["run"]
    measure = next(s for s in gpu["steps"] if "tox -e baseline" in s.get("run", ""))
    assert "--device cuda" in measure["run"] and "git add baselines/ci" in measure["run"]
    assert any(s.get("with", {}).get("name") == "trainguard-cuda-baseline" for s in gpu["steps"])
    for name, job in (("cpu", cpu), ("gpu", gpu)):
        uploads = [s for s in job["steps"] if s.get("with", {}).get("path") == "reports/"]
        assert uploads and uploads[0]["if"] == "always()"
        # the ledger travels between nights in a branch (not an evictable cache): restored before the run; handed,
        # even when the night failed, to a keep-ledger job that may push it; each job its own file
        runs = [s.get("run", "") for s in job["steps"]]
        assert any(r.startswith("bash tools/history_branch.sh restore .trainguard/history") for r in runs)
        handed = next(s for s in job["steps"] if s.get("with", {}).get("name") == f"trainguard-ledger-{name}")
        assert handed["if"].startswith("always()") and handed["with"]["path"] == f".trainguard/history/ledger-{name}.sqlite"
        assert not any(s.get("uses", "").startswith("actions/cache/save") for s in job["steps"])
        assert f".trainguard/history/ledger-{name}.sqlite" in job["env"]["TRAINGUARD_LEDGER"]
        assert "secrets.TRAINGUARD_LEDGER" in job["env"]["TRAINGUARD_LEDGER"]  # the secret mapped, when set
        keep = workflow["jobs"][f"keep-ledger-{name}"]
        assert keep["needs"] == name and keep["if"].startswith("always()")
        assert f"bash tools/history_branch.sh save .trainguard/history ledger-{name}.sqlite" in " ".join(
            s.get("run", "") for s in keep["steps"])
    prune = next(s for s in cpu["steps"] if "trainguard ledger prune" in s.get("run", ""))
    assert "--keep-reports 30" in prune["run"]
    build, deploy = workflow["jobs"]["pages-build"], workflow["jobs"]["pages-deploy"]
    assert "trainguard dashboard" in " ".join(s.get("run", "") for s in build["steps"])
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]


def _workflow():
    yaml = pytest.importorskip("ruamel.yaml", reason="comes with check-jsonschema (dev extra)")
    return yaml.YAML(typ="safe").load(WORKFLOW.read_text())


def test_the_local_script_runs_the_cpu_job_s_steps_in_order():
    """tools/nightly.sh: every `run:` of the CPU job, verbatim and in the same order."""
    script = (WORKFLOW.parents[2] / "tools" / "nightly.sh").read_text()
    positions = []
    for step in _workflow()["jobs"]["cpu"]["steps"]:
        if "run" in step:
            command = step["run"].strip()
            assert command in script, f"tools/nightly.sh lacks the workflow step {command!r}"
            positions.append(script.index(command))
    assert positions == sorted(positions)


def test_runner_labels_are_declared_for_actionlint():
    """actionlint reports an unknown self-hosted label unless .github/actionlint.yaml declares it."""
    yaml = pytest.importorskip("ruamel.yaml", reason="comes with check-jsonschema (dev extra)")
    config = yaml.YAML(typ="safe").load((WORKFLOW.parents[1] / "actionlint.yaml").read_text())
    known = {"self-hosted", "linux", "windows", "macos", "x64", "arm64", "ubuntu-latest"}
    for job in _workflow()["jobs"].values():
        labels = job["runs-on"] if isinstance(job["runs-on"], list) else [job["runs-on"]]
        assert set(labels) - known <= set(config["self-hosted-runner"]["labels"])


def test_nightly_pins_are_the_baseline_s_versions():
    """constraints/nightly.txt pins the versions the committed ci baseline was measured with."""
    import json

    root = WORKFLOW.parents[2]
    pins = dict(line.split("==") for line in (root / "constraints" / "nightly.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    meta = json.loads((root / "baselines" / "ci" / "cpu.meta.json").read_text())["versions"]
    for package in ("torch", "numpy"):
        assert pins[package] == meta[package].split("+")[0], package


def test_ci_runs_the_readme_s_two_set_up_commands_verbatim():
    """.ci/run takes the commands out of README.md (the lines after '# 1. ' and '# 2. '): what a user
    copies is what CI runs."""
    root = WORKFLOW.parents[2]
    readme = (root / "README.md").read_text().splitlines()
    commands = [readme[i + 1] for i, line in enumerate(readme) if line.startswith(("# 1. ", "# 2. "))]
    assert len(commands) == 2
    assert commands[0].startswith("python3 -m venv .venv") and "pip install -e" in commands[0]
    assert commands[0].endswith("trainguard run") and commands[1].endswith('pytest -m "not slow" -n auto')
    extracted = [subprocess.run(["sed", "-n", rf"/^# {n}\. /{{n;p;q}}", str(root / "README.md")],
                                capture_output=True, text=True, check=True).stdout.strip() for n in (1, 2)]
    assert extracted == commands
    script = (root / ".ci" / "run").read_text()
    assert 'bash -euo pipefail -c "$main_job"' in script and 'bash -euo pipefail -c "$test_job"' in script


REPLAY = WORKFLOW.with_name("replay.yml")
COMMENT = WORKFLOW.with_name("replay-comment.yml")


def test_every_pull_request_is_replayed_and_told_the_verdict():
    yaml = pytest.importorskip("ruamel.yaml", reason="comes with check-jsonschema (dev extra)")
    workflow = yaml.YAML(typ="safe").load(REPLAY.read_text())
    assert "pull_request" in workflow["on"] and workflow["permissions"] == {"contents": "read"}
    steps = workflow["jobs"]["replay"]["steps"]
    replay = next(s for s in steps if "trainguard replay" in s.get("run", ""))
    assert "--summary reports/replay.md" in replay["run"] and "if" not in replay  # a change (exit 1) fails the PR
    assert not any("gh pr comment" in s.get("run", "") for s in steps)  # a fork's token could not: the check went red
    verdict = next(s for s in steps if s.get("with", {}).get("name") == "replay-verdict")
    assert verdict["if"].startswith("always()")
    comment = yaml.YAML(typ="safe").load(COMMENT.read_text())
    assert comment["on"]["workflow_run"] == {"workflows": ["replay"], "types": ["completed"]}
    job = comment["jobs"]["comment"]
    posting = next(s for s in job["steps"] if "gh pr comment" in s.get("run", ""))
    assert "--body-file" in posting["run"] and "^[0-9]{1,10}$" in posting["run"] and "HEAD_SHA" in posting["run"]
    assert not any(s.get("uses", "").startswith("actions/checkout") for s in job["steps"])  # never the PR's code


def _permissions(workflow: dict, job: dict) -> dict:
    granted = job.get("permissions", workflow.get("permissions"))
    if granted is None:
        return {"everything": "write"}  # GitHub's default token may write (the repository's setting decides)
    if isinstance(granted, str):
        return {"everything": granted}
    return granted


WRITING_CODE = ("pip install", "tox", "trainguard ", "pytest", "npm ", "python -m", "setup-python")


def test_every_workflow_is_least_privileged_job_by_job():
    """Each job names its permissions (none inherited); a job that may write anything runs no third-party or
    pull-request code (no install, no trainguard, no tests); pull requests never reach the self-hosted runner and
    never get a write token; secrets reach commands through the environment, not their arguments."""
    yaml = pytest.importorskip("ruamel.yaml", reason="comes with check-jsonschema (dev extra)")
    for path in sorted(WORKFLOW.parent.glob("*.yml")):
        workflow = yaml.YAML(typ="safe").load(path.read_text())
        assert workflow.get("permissions") in ({}, {"contents": "read"}), f"{path.name}: top-level permissions"
        triggers = workflow["on"] if isinstance(workflow["on"], (dict, list)) else [workflow["on"]]
        from_pull_requests = "pull_request" in triggers or "pull_request_target" in triggers
        for name, job in workflow["jobs"].items():
            where = f"{path.name} job {name}"
            granted = _permissions(workflow, job)
            assert "everything" not in granted, f"{where}: name its permissions"
            writes = sorted(k for k, v in granted.items() if v == "write")
            text = " ".join(str(s.get("run", "")) + " " + str(s.get("uses", "")) for s in job.get("steps", []))
            if writes:
                assert not any(code in text for code in WRITING_CODE), f"{where} may write {writes} and runs code"
            runner = job["runs-on"] if isinstance(job["runs-on"], list) else [job["runs-on"]]
            if from_pull_requests:
                assert "self-hosted" not in runner, f"{where}: a pull request on the self-hosted runner"
                assert not writes, f"{where}: a pull request's code with a write token"
                assert "secrets." not in path.read_text(), f"{path.name}: secrets within reach of a pull request"
            if "self-hosted" in runner:
                assert "pull_request" in job.get("if", ""), f"{where}: say that pull requests never run here"
                assert "--user" not in text, f"{where}: installs into the runner's home, which outlives the job"
            for step in job.get("steps", []):
                assert "secrets." not in str(step.get("run", "")), f"{where}: a secret on a command line"


def test_the_replay_workflows_validate_against_the_github_schema():
    pytest.importorskip("check_jsonschema", reason="the dev extra installs check-jsonschema")
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(REPLAY), str(COMMENT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr



def _without_times(text: str) -> str:
    """A report less what a rerun may change: dates, wall, training and replay times, speed and memory rows."""
    import re

    timed = re.compile(r"^\| \d{4}-\d\d-\d\d |wall time|training time|Replay time|"
                       r"^\| (Baseline|NewModel)\d \| [\d.]+ +\| \d+ +\| \d+ +\|$")
    return "\n".join(line for line in text.splitlines() if not timed.search(line))


@pytest.mark.slow
def test_the_report_snapshot_tool_gives_the_same_reports_twice(tmp_path):
    """tools/report_snapshot.sh (how a refactor shows the same verdicts and report before and after): the ci night
    re-rendered from its committed run log and a fresh smoke night, twice — the same reports, times aside."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    if not os.environ.get("TRAINGUARD_DATA_DIR"):
        pytest.skip("needs the real CIFAR-10 copy (TRAINGUARD_DATA_DIR) to verify the re-rendered ci night's data")
    for name in ("one", "two"):
        done = subprocess.run(["bash", str(root / "tools" / "report_snapshot.sh"), str(tmp_path / name)],
                              capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHON": sys.executable})
        assert "ci rc=0" in done.stdout and "smoke rc=0" in done.stdout, done.stdout + done.stderr
    for night in ("ci", "smoke"):
        one, two = ((tmp_path / n / night / "report.md").read_text() for n in ("one", "two"))
        assert "Result: PASS" in one and _without_times(one) == _without_times(two)
