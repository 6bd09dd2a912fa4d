"""trainguard as a user gets it: the built wheel, installed outside the checkout, used from a directory of
the user's own (docs/own-model.md). Generated data only; no network (the wheel's dependencies are this
environment's)."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

TINYNET = textwrap.dedent("""
    from torch import nn


    class TinyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4))
            self.head = nn.Linear(8 * 16, 10)

        def forward(self, x):
            return self.head(self.features(x).flatten(1))
""")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout, installed with --target into a directory of its own."""
    work = tmp_path_factory.mktemp("installed")
    # from a clean copy: setuptools reuses a checkout's build/ folder, which still holds modules since removed
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", ".tox",
                                                                ".trainguard", "reports", ".benchmarks", "__pycache__",
                                                                ".pytest_cache", ".ruff_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(work / "dist"), str(source)], check=True, capture_output=True, timeout=600)
    wheel, = (work / "dist").glob("trainguard-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(work / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=600)
    return work / "site"


def trainguard(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TRAINGUARD_DATA_DIR")}
    env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-m", "trainguard", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def test_it_is_the_installed_copy_outside_the_checkout(installed, tmp_path):
    out = subprocess.run([sys.executable, "-c", "import trainguard; print(trainguard.__file__)"], cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(installed)}, capture_output=True, text=True)
    assert out.stdout.strip().startswith(str(installed)), out.stdout + out.stderr
    # every module of the checkout is in the wheel (an editable install of the checkout would otherwise serve a
    # subpackage the wheel forgot, and this test would not see it)
    sources = {"": ROOT / "harness", "models/": ROOT / "models"}
    checkout = {prefix + p.relative_to(folder).as_posix() for prefix, folder in sources.items() for p in folder.rglob("*.py")}
    shipped = {p.relative_to(installed / "trainguard").as_posix() for p in (installed / "trainguard").rglob("*.py")}
    assert checkout <= shipped, f"modules missing from the wheel: {sorted(checkout - shipped)}"
    assert (installed / "trainguard" / "_baselines" / "smoke" / "golden-cpu" / "NewModel2.json").exists()
    assert (installed / "trainguard" / "_docs" / "replay.md").exists()  # the docs the help texts point at
    help_text = trainguard(installed, tmp_path, "--help").stdout
    assert f"documentation (docs/NAME.md in the help texts): {installed / 'trainguard' / '_docs'}" in help_text


def test_without_baselines_nothing_is_checked_and_it_says_so(installed, tmp_path, smoke_runs):
    smoke_runs.copy(tmp_path / ".trainguard" / "results")  # the check seed's runs, trained by the checkout's code
    result = trainguard(installed, tmp_path, "run", "--profile", "smoke", "--device", "cpu", "--baselines-dir", "none",
                        "--no-figures")
    assert result.returncode == 5, result.stdout[-3000:] + result.stderr[-3000:]
    assert "NOTHING CHECKED" in result.stdout and "0 passed, 0 failed" in result.stdout
    assert "**Result: NOTHING CHECKED**" in (tmp_path / "reports" / "report.md").read_text()


@pytest.mark.slow  # over 8 s here: in the slow suite (CI runs it), the fast one stays under 3 minutes
@pytest.mark.generated  # generated data: isolated from the user's data, cache and CI=true as a fast test is
def test_the_built_in_profile_finds_its_shipped_baselines_from_any_directory(installed, tmp_path, smoke_runs):
    smoke_runs.copy(tmp_path / ".trainguard" / "results")
    result = trainguard(installed, tmp_path, "run", "--profile", "smoke", "--device", "cpu")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # the cache keys hash the source by module name: the wheel is served the checkout's runs, nothing trains
    assert "[trainguard] training" not in result.stdout + result.stderr
    assert "29 passed, 0 failed" in result.stdout  # 24 band checks, the 4 golden runs and the inputs replayed
    assert not (tmp_path / "baselines").exists()  # nothing written beside the user's files
    # the figure shows the check: it differs from the same night's figure without a baseline (no band)
    bare = trainguard(installed, tmp_path, "run", "--profile", "smoke", "--device", "cpu", "--baselines-dir", "none",
                      "--report", "bare/report.md")
    assert bare.returncode == 5
    checked = (tmp_path / "reports" / "report-models-curves.png").read_bytes()
    assert checked != (tmp_path / "bare" / "report-models-curves.png").read_bytes()


@pytest.mark.slow  # over 8 s here: in the slow suite (CI runs it), the fast one stays under 3 minutes
@pytest.mark.generated  # generated data: isolated from the user's data, cache and CI=true as a fast test is
def test_a_user_model_is_measured_passes_and_a_deliberate_change_is_caught(installed, tmp_path):
    (tmp_path / "mynet.py").write_text(TINYNET)
    smoke = (installed / "trainguard" / "profiles" / "smoke.toml").read_text()
    (tmp_path / "mine.toml").write_text(
        smoke.replace('name = "smoke"', 'name = "mine"')
        .replace('models = ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]', 'models = ["mynet:TinyNet"]')
        + "perturbations = 2\nisa = false\n")
    update = trainguard(installed, tmp_path, "baselines", "update", "--profile", "mine.toml", "--device", "cpu", "--no-figures")
    assert update.returncode == 0, update.stdout[-3000:] + update.stderr[-3000:]
    assert (tmp_path / "baselines" / "mine" / "cpu-seeds.csv").exists()
    assert (tmp_path / "baselines" / "mine" / "golden-cpu" / "mynet--TinyNet.json").exists()
    night = trainguard(installed, tmp_path, "run", "--profile", "mine.toml", "--device", "cpu", "--strict", "--no-figures")
    assert night.returncode == 0, night.stdout[-3000:] + night.stderr[-3000:]
    (tmp_path / "mynet.py").write_text(TINYNET.replace("nn.ReLU()", "nn.Tanh()"))
    broken = trainguard(installed, tmp_path, "run", "--profile", "mine.toml", "--device", "cpu", "--strict", "--no-figures")
    assert broken.returncode == 1, broken.stdout[-3000:]
    assert "FAIL mynet:TinyNet: changed at step 1" in broken.stdout
    assert "model source changed since the golden" in broken.stdout
    assert "trainguard baselines update --golden --profile mine.toml" in broken.stdout


def test_an_unknown_model_path_names_the_module_and_attribute(installed, tmp_path):
    (tmp_path / "mynet.py").write_text(TINYNET)
    smoke = (installed / "trainguard" / "profiles" / "smoke.toml").read_text()
    for models, expected in (('["mynet:Nope"]', "module 'mynet' has no attribute 'Nope'"),
                             ('["nosuch:TinyNet"]', "module 'nosuch' cannot be imported")):
        (tmp_path / "bad.toml").write_text(smoke.replace(
            'models = ["Baseline1", "Baseline2", "NewModel1", "NewModel2"]', f"models = {models}"))
        result = trainguard(installed, tmp_path, "run", "--profile", "bad.toml", "--device", "cpu")
        assert result.returncode == 2 and expected in result.stderr, result.stderr[-2000:]


EXAMPLE = ROOT / "examples" / "mnist_classic"
OWN_TRAINING = ROOT / "docs" / "own-training.md"
# the three one-line changes a team makes every week, in the script itself: its schedule, its network, its data
ONE_LINE_CHANGES = [("default=0.7)", "default=0.8)", "changed at step 9 (lr): golden 0.7, now 0.8"),
                    ("nn.Dropout(0.25)", "nn.Dropout(0.3)", "changed at step 1 (weight_norm)"),
                    ("(0.1307,)", "(0.1308,)", "its inputs changed (batches of train)")]


def _guard_commands() -> list[list[str]]:
    """The `trainguard guard guard.py:…` commands docs/own-training.md tells a newcomer to run on the example, in its
    order."""
    return [line.split()[1:] for line in OWN_TRAINING.read_text().splitlines()
            if line.startswith("trainguard guard guard.py:")]


@pytest.mark.slow
@pytest.mark.generated
def test_a_foreign_training_script_is_guarded_end_to_end_from_the_wheel(installed, tmp_path):
    """examples/mnist_classic, copied into a directory of the user's own, through the commands of
    docs/own-training.md against the installed wheel, on generated images of MNIST's shapes: the golden runs written
    and replayed identical, the baseline measured, a held-out seed within every band; then each one-line change in
    the script caught by the replay at a named step."""
    for name in ("train.py", "guard.py"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    commands = _guard_commands()
    assert [c[2] for c in commands] == ["replay", "replay", "baseline", "check"], commands
    for command in commands:
        done = trainguard(installed, tmp_path, *command)
        assert done.returncode == 0, f"{command}: " + done.stdout[-2000:] + done.stderr[-2000:]
    assert "identical: mnist default: identical to the golden run" in trainguard(installed, tmp_path, *commands[1]).stdout
    original = (tmp_path / "train.py").read_text()
    for old, new, caught in ONE_LINE_CHANGES:
        (tmp_path / "train.py").write_text(original.replace(old, new, 1))
        done = trainguard(installed, tmp_path, *commands[1])
        assert done.returncode == 1 and caught in done.stdout, (old, done.stdout[-2000:], done.stderr[-2000:])
        print(f"{old} → {new}: {next(l for l in done.stdout.splitlines() if l.startswith('changed'))}")
    (tmp_path / "train.py").write_text(original)
    assert trainguard(installed, tmp_path, *commands[1]).returncode == 0  # back to the golden's code: identical
    # the doc's pytest cases, as the user's own test file, under the installed plugin
    (tmp_path / "test_mnist.py").write_text(_pytest_cases_block())
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TRAINGUARD_DATA_DIR")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "test_mnist.py"],
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(installed)}, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    # a replay per variant, a band per budget × metric, a cell per budget; the example declares no claim
    assert "7 passed, 1 skipped" in done.stdout, done.stdout[-2000:]
    # the doc's profile of the experiment alone, and its commands
    toml, commands = _profile_block()
    (tmp_path / "mine.toml").write_text(toml)
    assert [c[0] for c in commands] == ["baselines", "run", "replay"], commands
    for command in commands:
        done = trainguard(installed, tmp_path, *command)
        assert done.returncode == 0, f"{command}: " + done.stdout[-2000:] + done.stderr[-2000:]
    assert "IDENTICAL  mnist default" in done.stdout, done.stdout[-2000:]
    report = (tmp_path / "reports" / "report.md").read_text()
    assert "**Result: PASS**" in report and "mnist default: identical to the golden run" in report, report[:3000]


def _profile_block() -> tuple[str, list[list[str]]]:
    """The profile of docs/own-training.md's "### In a profile's night" (its toml block) and the commands of the bash
    block after it."""
    text = OWN_TRAINING.read_text().split("### In a profile's night", 1)[1]
    toml = text.split("```toml\n", 1)[1].split("```", 1)[0]
    bash = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return toml, [line.split("#")[0].split()[1:] for line in bash.splitlines() if line.startswith("trainguard ")]


def _pytest_cases_block() -> str:
    """The first python block after "### As pytest cases" in docs/own-training.md."""
    text = OWN_TRAINING.read_text().split("### As pytest cases", 1)[1]
    return text.split("```python\n", 1)[1].split("```", 1)[0]
