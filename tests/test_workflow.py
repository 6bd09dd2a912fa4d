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
    assert "pytest -m slow --profile ci" in cpu_commands and "trainguard data fetch" in cpu_commands
    assert "tox -e gpu" in gpu_commands and "self-hosted" in gpu["runs-on"]
    for job in (cpu, gpu):
        uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
        assert uploads and uploads[0]["if"] == "always()" and uploads[0]["with"]["path"] == "reports/"
