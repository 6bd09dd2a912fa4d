"""A user's model on a Ray cluster joined by address, started here with `ray start` (trainguard.night.cluster).

A module of its own: `ray stop` ends every Ray process on the machine, so no other test's cluster may be alive."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SMOKE = (Path(__file__).parent.parent / "harness" / "profiles" / "smoke.toml").read_text()


def _profile(directory: Path, name: str, models: list[str]) -> Path:
    text = SMOKE.replace('name = "smoke"', f'name = "{name}"').replace(
        'models = ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]', "models = [" + ", ".join(f'"{m}"' for m in models) + "]")
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


WHERE = '''
import os

import torch.nn as nn

# where the worker imported this module from, and what else travelled with it
open({record!r}, "a").write(__file__ + " " + ",".join(sorted(os.listdir(os.path.dirname(__file__)))) + "\\n")


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)

    def forward(self, x):
        return self.fc(x.flatten(1).float())
'''


@pytest.mark.slow
@pytest.mark.generated
def test_a_user_model_travels_to_a_cluster_with_the_job(tmp_path):
    """A cluster joined by address (not this process's own): the user's module is shipped as the tasks' working
    directory (Ray's runtime environment) and imported from there, not from the driver's files."""
    pytest.importorskip("ray")
    project = tmp_path / "project"
    project.mkdir()
    record = tmp_path / "imported-from.txt"
    (project / "tinynet.py").write_text(WHERE.format(record=str(record)))
    (project / ".env").write_text("API_TOKEN=do-not-ship\n")  # beside the user's code, as projects keep them
    (project / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (project / "data.npz").write_bytes(b"\0" * 1000)
    _profile(project, name="mine", models=["tinynet:TinyNet"])
    # Ray 2.60's token authentication refuses a driver joining by HOST:PORT on this machine (InvalidAuthToken, while
    # `auto` is let in): this test's own cluster runs without it (docs/cluster.md)
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_AUTH_MODE": "disabled"}
    port = "6391"
    ray_cli = str(Path(sys.executable).parent / "ray")
    subprocess.run([ray_cli, "start", "--head", "--port", port, "--num-cpus", "2", "--include-dashboard", "false"],
                   check=True, capture_output=True, env=env, timeout=120)
    try:
        night = subprocess.run([sys.executable, "-m", "trainguard", "run", "--profile", "mine.toml", "--executor", "ray",
                                "--ray-address", f"127.0.0.1:{port}", "--threads", "1", "--no-figures"],
                               cwd=project, capture_output=True, text=True, env=env, timeout=300)
        (project / "helper.py").write_text("def value(seed):\n    return 1.0 + seed / 10\n")  # after the night: its
        (project / "exp.py").write_text(EXPERIMENT.format(record=str(record)))  # bundle is every .py of the folder
        guarded = subprocess.run([sys.executable, "-m", "trainguard", "guard", "exp.py:shipped", "baseline", "--executor",
                                  "ray", "--ray-address", f"127.0.0.1:{port}"],
                                 cwd=project, capture_output=True, text=True, env=env, timeout=300)
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, env=env, timeout=120)
    assert night.returncode in (0, 5), night.stdout[-3000:] + night.stderr[-3000:]  # 5: no baseline, nothing checked
    assert "Ray: tinynet:TinyNet seed 100 completed" in night.stdout
    lines = [line.split(" ", 1) for line in record.read_text().splitlines()]
    places = {Path(module).parent for module, _ in lines}
    workers = [p for p in places if p != project]
    assert workers and all("runtime_resources" in str(p) for p in workers), places
    shipped = {files for module, files in lines if Path(module).parent != project and module.endswith("tinynet.py")}
    assert shipped == {"tinynet.py"}, shipped  # only the Python modules travel: no .env, no key, no data
    # an experiment (not a profile) on the same cluster: its source files travel — the function's file and the module
    # it imports beside it — and nothing else of the folder (not tinynet.py, which it does not import)
    assert guarded.returncode == 0, guarded.stdout[-3000:] + guarded.stderr[-3000:]
    assert "Ray: shipped default seed 0 completed" in guarded.stdout
    travelled = {files for module, files in lines if module.endswith("exp.py") and Path(module).parent != project}
    assert travelled == {"exp.py,helper.py"}, travelled


EXPERIMENT = '''
import os

import helper
import trainguard

open({record!r}, "a").write(__file__ + " " + ",".join(sorted(os.listdir(os.path.dirname(__file__)))) + "\\n")


@trainguard.experiment(metrics={{"m": "lower"}}, budgets=(1,), baseline_seeds=(0, 1))
def shipped(run):
    run.step(loss=helper.value(run.seed))
    run.epoch(m=helper.value(run.seed))
'''

