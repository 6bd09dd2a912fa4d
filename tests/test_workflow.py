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
    assert "pytest -m slow --tg-profile ci" in cpu_commands and "trainguard data fetch" in cpu_commands
    assert "tox -e gpu" in gpu_commands and "self-hosted" in gpu["runs-on"]
    for job in (cpu, gpu):
        uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
        assert uploads and uploads[0]["if"] == "always()" and uploads[0]["with"]["path"] == "reports/"


def test_ci_runs_the_readme_s_two_set_up_commands_verbatim():
    """.ci/run takes the commands out of README.md (the lines after '# 1. ' and '# 2. '): what a user
    copies is what CI runs."""
    root = WORKFLOW.parents[2]
    readme = (root / "README.md").read_text().splitlines()
    commands = [readme[i + 1] for i, line in enumerate(readme) if line.startswith(("# 1. ", "# 2. "))]
    assert len(commands) == 2
    assert commands[0].startswith("python3 -m venv .venv") and "pip install -e" in commands[0]
    assert commands[0].endswith("trainguard run") and commands[1].endswith('pytest -m "not slow"')
    extracted = [subprocess.run(["sed", "-n", rf"/^# {n}\. /{{n;p;q}}", str(root / "README.md")],
                                capture_output=True, text=True, check=True).stdout.strip() for n in (1, 2)]
    assert extracted == commands
    script = (root / ".ci" / "run").read_text()
    assert 'bash -euo pipefail -c "$main_job"' in script and 'bash -euo pipefail -c "$test_job"' in script
