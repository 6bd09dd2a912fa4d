import os
import shutil
import tempfile
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


def pytest_configure(config):
    config.addinivalue_line("markers", "generated: a slow test on generated data only: isolated from the user's data, "
                                       "cache and CI=true as the fast tests are")




@pytest.fixture(autouse=True)
def _isolated_from_the_user_s_data(request, monkeypatch, tmp_path_factory):
    """Fast tests never see the user's data directory or cache, nor CI=true (a shell that exports
    them must not change what they test); slow tests use them on purpose, unless marked ``generated``."""
    if request.node.get_closest_marker("slow") is None or request.node.get_closest_marker("generated"):
        monkeypatch.delenv("TRAINGUARD_DATA_DIR", raising=False)
        monkeypatch.delenv("CI", raising=False)  # strict mode only where a test asks for it
        monkeypatch.setenv("TRAINGUARD_CACHE_DIR", str(tmp_path_factory.mktemp("trainguard-cache")))
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        # a pytest this test starts is not an xdist worker (pytest-benchmark, for one, disables itself in workers)
        monkeypatch.delenv(name, raising=False)


ROOT = Path(__file__).resolve().parent.parent
SMOKE_BASELINE = ("cpu.csv", "cpu-seeds.csv", "cpu.meta.json")  # the tables, not the golden runs


@pytest.fixture(scope="session")
def preloaded(smoke_runs):
    """Import what a trainguard night imports, once, before a test runs pytest inside this process
    (``pytester.runpytest_inprocess``): pytester drops the modules an inner run imported first, and some cannot
    be loaded twice in one process (numpy.fft's and scipy's C extensions; torch's operator libraries, which
    training imports on first use — hence a real training of each smoke model and a night from the cache, not
    only imports; the smoke runs themselves may have been trained by another xdist worker)."""
    import importlib

    import matplotlib

    matplotlib.use("Agg")
    for module in ("numpy.fft", "torch", "scipy.special", "scipy.optimize", "pandas", "tabulate", "matplotlib.pyplot",
                   "trainguard.api", "trainguard.report.markdown", "trainguard.core.plots", "trainguard.engines.engine",
                   "trainguard.checks.baseline", "trainguard.checks.declared_experiments", "trainguard.checks.conclusions",
                   "trainguard.checks.published", "trainguard.stores.golden", "trainguard.replay.golden_runs"):
        importlib.import_module(module)
    import torch

    from trainguard import cli
    from trainguard.stores import data
    from trainguard.engines import engine
    from trainguard.core.spec import load_profile

    warm = smoke_runs.root / f"warm-up-{os.getpid()}"
    results = smoke_runs.copy(warm / "results")  # trained now, by this process, if no worker had yet
    if not smoke_runs.trained_here:  # another worker trained them: run the same code path here, on 30 images
        smoke = load_profile("smoke")
        tiny = data.synthetic("cifar10", train_per_class=2, test_per_class=1)
        for model in smoke.models:
            engine.train(model, tiny, smoke.training(model), 1, seed=0, device=torch.device("cpu"))
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CI", raising=False)
        patch.delenv("TRAINGUARD_DATA_DIR", raising=False)
        code = cli.main(["run", "--profile", "smoke", "--device", "cpu", "--no-replay",
                         "--results-dir", str(results),
                         "--baselines-dir", str(smoke_runs.copy_baseline(warm / "b").parent),
                         "--run-log", str(warm / "runlog.jsonl"), "--ledger-dir", str(warm / "ledger"),
                         "--report", str(warm / "report.md")])  # from the cache: nothing trains
    assert code == 0, f"the warm-up night failed (exit {code})"


@dataclass
class SmokeRuns:
    """Result caches of the smoke profile's runs, each trained at most once per test session — once for all
    pytest-xdist workers, under a file lock — and only when a test asks for it: the check seed's 4 runs, the
    baseline seeds' 20."""

    root: Path
    trained_here: bool = False  # this process trained some of them (so it has run every smoke model's training)

    def copy(self, results_dir: Path, which: str = "check_seed") -> Path:
        """A test's own copy of ``which`` ("check_seed" or "baseline_seeds"): tests write into their caches,
        the session's stay as trained."""
        shutil.copytree(self._trained(which), results_dir, dirs_exist_ok=True)
        return Path(results_dir)

    def run_log(self, which: str = "check_seed") -> Path:
        """The run log written while ``which`` was trained."""
        return self._trained(which).with_name(f"{which}-work") / "runlog.jsonl"

    @staticmethod
    def copy_baseline(baselines: Path) -> Path:
        """The committed smoke baseline (its tables; no golden runs, so nothing is replayed) into a test's own
        baselines directory: what a test that needs *a* baseline uses instead of measuring one again."""
        target = Path(baselines) / "smoke"
        target.mkdir(parents=True, exist_ok=True)
        for name in SMOKE_BASELINE:
            shutil.copy(ROOT / "baselines" / "smoke" / name, target / name)
        return target

    def _trained(self, which: str) -> Path:
        from filelock import FileLock

        results, done = self.root / which, self.root / f"{which}.done"
        with FileLock(self.root / f"{which}.lock"):  # another worker training it: wait, then read its runs
            if not done.exists():
                shutil.rmtree(results, ignore_errors=True)  # a worker that died mid-way left a partial cache
                self._train(which, results)
                self.trained_here = True
                done.touch()
        return results

    def _train(self, which: str, results: Path) -> None:
        from trainguard import cli

        work = results.with_name(f"{which}-work")
        common = ["--profile", "smoke", "--device", "cpu", "--results-dir", str(results), "--no-figures",
                  "--run-log", str(work / "runlog.jsonl")]
        with pytest.MonkeyPatch.context() as patch:  # session-scoped: the per-test isolation does not apply
            patch.delenv("CI", raising=False)
            patch.delenv("TRAINGUARD_DATA_DIR", raising=False)
            if which == "baseline_seeds":
                code = cli.main(["baselines", "update", "--skip-golden", *common,
                                 "--baselines-dir", str(work / "measured")])
            else:  # against the committed baseline: the run must pass, or the cache is not what tests expect
                code = cli.main(["run", *common, "--baselines-dir", str(self.copy_baseline(work / "b").parent),
                                 "--no-replay", "--ledger-dir", str(work / "ledger"), "--report", str(work / "report.md")])
        assert code == 0, f"training the smoke profile's {which} for the tests failed (exit {code})"


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory, request) -> SmokeRuns:
    """The smoke profile's runs, trained once: tests about caching, checking and reporting copy them instead
    of training the same runs each (the tests of training itself still train). Under pytest-xdist the workers
    share one copy, in the session's common temporary directory."""
    if hasattr(request.config, "workerinput"):
        root = tmp_path_factory.getbasetemp().parent / "smoke-runs"
        root.mkdir(exist_ok=True)
        return SmokeRuns(root)
    return SmokeRuns(tmp_path_factory.mktemp("smoke-runs"))


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """A real PostgreSQL server: the one TRAINGUARD_TEST_POSTGRES names (.ci/run starts one), else a throwaway
    cluster this session starts itself where PostgreSQL's server binaries are installed (tools/throwaway_postgres.py,
    as pytest-postgresql does), stopped at the end. Skipped only where neither is possible."""
    given = os.environ.get("TRAINGUARD_TEST_POSTGRES")
    if given:
        yield given
        return
    from tools import throwaway_postgres

    if throwaway_postgres.binaries() is None:
        pytest.skip("no PostgreSQL server: set TRAINGUARD_TEST_POSTGRES, or install its server (apt-get install "
                    "postgresql) and the tests start a throwaway one")
    directory = Path(tempfile.mkdtemp(prefix="tg-postgres-"))  # short: the socket path has a length limit
    try:
        url = throwaway_postgres.start(directory)
    except RuntimeError as exc:
        throwaway_postgres.stop(directory)
        pytest.skip(f"could not start a throwaway PostgreSQL server: {exc}")
    yield url
    throwaway_postgres.stop(directory)


# The distribution's Chromium driven by Playwright (CI cannot download browser builds). As the machine's notes
# advise: no background networking (the network is closed), a fresh profile per launch.
CHROMIUM = os.environ.get("TRAINGUARD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run installs it)")
    playwright = pytest.importorskip("playwright.sync_api", reason="the dev extra installs playwright")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.errors, page.requests, page.dialogs = [], [], []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: page.requests.append(request.url))
    page.blocked = []  # requests the page's Content-Security-Policy stopped before they left
    page.on("requestfailed", lambda request: page.blocked.append(request.url) if request.failure == "csp" else None)
    page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


