import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ["pytester"]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under pytest-xdist (-n N): one torch thread per worker, so N workers share N cores instead of N × cores
    # threads waiting on each other. Set before anything imports torch; inherited by the runs tests start.
    # The tests' expectations hold at either count (the smoke goldens replay identically at 1 and 2 threads).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # The golden replays pin their own thread count (the profile's [golden] threads): OpenMP threads that
    # sleep instead of spinning while they wait keep two workers' pinned replays from stalling each other.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def tiny_arrays():
    """A small data set in the keras layout, generated — never the network, never ../shared."""
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8),
        "y_train": np.tile(np.arange(10, dtype=np.uint8), 4),
        "x_test": rng.integers(0, 256, size=(20, 32, 32, 3), dtype=np.uint8),
        "y_test": np.tile(np.arange(10, dtype=np.uint8), 2),
    }


@pytest.fixture(autouse=True)
def _isolated_from_the_user_s_data(request, monkeypatch, tmp_path_factory):
    """Fast tests never see the user's data directory or cache, nor CI=true (a shell that exports
    them must not change what they test); slow tests use them on purpose."""
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.delenv("TRAINGUARD_DATA_DIR", raising=False)
        monkeypatch.delenv("CI", raising=False)  # strict mode only where a test asks for it
        monkeypatch.setenv("TRAINGUARD_CACHE_DIR", str(tmp_path_factory.mktemp("trainguard-cache")))
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        # a pytest this test starts is not an xdist worker (pytest-benchmark, for one, disables itself in workers)
        monkeypatch.delenv(name, raising=False)


ROOT = Path(__file__).resolve().parent.parent
SMOKE_BASELINE = ("cpu.csv", "cpu-seeds.csv", "cpu.meta.json")  # the tables, not the golden runs


@pytest.fixture(scope="session")
def preloaded():
    """Import what a trainguard night imports, once, before a test runs pytest inside this process
    (``pytester.runpytest_inprocess``): pytester drops the modules an inner run imported first, and a C extension
    (numpy.fft's, scipy's, matplotlib's) cannot be loaded twice in one process."""
    import importlib

    import matplotlib

    matplotlib.use("Agg")
    for module in ("numpy.fft", "torch", "scipy.special", "scipy.optimize", "pandas", "tabulate", "matplotlib.pyplot",
                   "trainguard.api", "trainguard.report", "trainguard.plots", "trainguard.overfit",
                   "trainguard.checks.baseline", "trainguard.checks.mnist", "trainguard.checks.conclusions",
                   "trainguard.checks.published", "trainguard.golden", "trainguard.replay"):
        importlib.import_module(module)


@dataclass(frozen=True)
class SmokeRuns:
    """Result caches of the smoke profile's runs, trained once per test session (per xdist worker)."""

    baseline_seeds: Path  # the baseline seeds' runs only
    every_seed: Path  # and the check seed's

    def copy(self, results_dir: Path, which: str = "every_seed") -> Path:
        """A test's own copy (tests write into their caches; the session's stays as trained)."""
        shutil.copytree(getattr(self, which), results_dir, dirs_exist_ok=True)
        return Path(results_dir)

    @staticmethod
    def copy_baseline(baselines: Path) -> Path:
        """The committed smoke baseline (its tables; no golden runs, so nothing is replayed) into a test's own
        baselines directory: what a test that needs *a* baseline uses instead of measuring one again."""
        target = Path(baselines) / "smoke"
        target.mkdir(parents=True, exist_ok=True)
        for name in SMOKE_BASELINE:
            shutil.copy(ROOT / "baselines" / "smoke" / name, target / name)
        return target


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory) -> SmokeRuns:
    """Every run of the smoke profile, trained once: tests about caching, checking and reporting copy these
    instead of training the same 24 runs each (the tests of training itself still train)."""
    root = tmp_path_factory.mktemp("smoke-runs")
    with pytest.MonkeyPatch.context() as patch:  # session-scoped: the per-test isolation has not run yet
        patch.delenv("CI", raising=False)
        patch.delenv("TRAINGUARD_DATA_DIR", raising=False)
        _train_smoke_runs(root)
    return SmokeRuns(baseline_seeds=root / "baseline", every_seed=root / "every")


def _train_smoke_runs(root: Path) -> None:
    from trainguard import cli

    common = ["--profile", "smoke", "--device", "cpu", "--baselines-dir", str(root / "baselines"),
              "--run-log", str(root / "runlog.jsonl"), "--no-figures"]
    assert cli.main(["baselines", "update", "--skip-golden", *common, "--results-dir", str(root / "baseline")]) == 0
    shutil.copytree(root / "baseline", root / "every")
    assert cli.main(["run", *common, "--results-dir", str(root / "every"), "--no-replay",
                     "--history-dir", str(root / "history"), "--report", str(root / "report.md")]) == 0
