"""pytest plugin (entry point ``pytest11: trainguard``): options, parametrization, session cache, report.

Thin hooks over :class:`harness.session.Matrix`. Test modules ask for fixtures:

- ``trainguard_matrix``: the session's Matrix (one per pytest process: no model trains twice);
- ``cifar_cell`` → (model, budget), ``cifar_budget`` → budget, ``cifar_model`` → model:
  parametrized from the chosen profile, with ids like ``[NewModel2-20]``;
- ``trainguard_baseline``: the measured baseline table (rewritten first under ``--update-baselines``);
- ``trainguard_check``: asserts verdicts and records them for the report.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from .compare import Verdict
from .spec import ConfigError, load_profile

_STATE_KEY = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trainguard", "trainguard training regression harness")
    group.addoption("--profile", default="ci", help="profile name (smoke, ci, seed) or path to a .toml profile [ci]")
    group.addoption("--device", default="auto", help="auto (CUDA when available, else CPU), cpu or cuda [auto]")
    group.addoption("--seed", "--seeds", dest="trainguard_seeds", default=None, metavar="N[,N...]",
                    help="seeds to train and check, held out of the baseline [the profile's check_seeds]")
    group.addoption("--tg-allow-baseline-seeds", action="store_true",
                    help="allow checking a seed of the baseline (it cannot fail against itself)")
    group.addoption("--tg-strict", action="store_true", default=None,
                    help="a missing baseline, a data mismatch or a check with nothing to check fails instead of "
                         "skipping [on when CI=true]")
    group.addoption("--precision", default="fp32",
                    help="fp32, or bf16 autocast; each precision has its own baseline class (cpu-bf16, cuda-bf16) [fp32]")
    group.addoption("--compile", action="store_true",
                    help="torch.compile the models; its own baseline class (e.g. cuda-compile). Meant for GPUs: on a "
                         "2-core CPU it was measured slower than eager for 3 of the 4 models (README, Speed)")
    group.addoption("--data-dir", default=None,
                    help="directory holding cifar10.npz / mnist.npz [$TRAINGUARD_DATA_DIR, then the cache, then download]")
    group.addoption("--offline", action="store_true", help="never download data; fail with instructions instead")
    group.addoption("--baselines-dir", default=None, help="baseline tables [./baselines]")
    group.addoption("--results-dir", default=None, help="result cache, one JSON per run [./.trainguard/results]")
    group.addoption("--no-result-cache", action="store_true", help="train everything again; do not read or write the result cache")
    group.addoption("--report", default=None, help="markdown report path [./reports/report.md]")
    group.addoption("--run-log", default=None,
                    help="JSON-lines log of every training run, appended [./.trainguard/runlog.jsonl]")
    group.addoption("--shard", default=None, metavar="I/N",
                    help="run only shard I of N (1-based): whole models are spread over N hosts; the cross-model "
                         "checks run when the shards' run logs are merged with `trainguard report --from-log ...`")
    group.addoption("--update-baselines", action="store_true",
                    help="train the profile's baseline seeds, rewrite baselines/<profile>/<device>.csv and print what changed")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: trains models on real data (minutes or more); run with -m slow")
    config.addinivalue_line("markers", "selftest: trains injected regressions (opt-in: runs only when -m names it)")
    try:
        profile = load_profile(config.getoption("--profile"))
    except ConfigError as exc:
        raise pytest.UsageError(f"--profile: {exc}") from None
    device = config.getoption("--device")
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise pytest.UsageError(f"--device {device!r}: expected auto, cpu or cuda")
    from .engine import check_precision

    try:
        check_precision(config.getoption("--precision"))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    seeds = config.getoption("trainguard_seeds")
    if seeds is not None:
        from .spec import parse_seeds

        try:
            parse_seeds(seeds)
        except ConfigError as exc:
            raise pytest.UsageError(f"--seed: {exc}") from None
    shard = _parse_shard(config.getoption("--shard"))
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is not None:
        pinned = pin_cuda_device(worker, os.environ.get("CUDA_VISIBLE_DEVICES"))
        if pinned is not None:  # before anything initialises CUDA in this worker process
            os.environ["CUDA_VISIBLE_DEVICES"] = pinned
    if getattr(config.option, "dist", "no") == "load":
        # -n N: keep each model's tests on one worker (its run is trained once, there)
        config.option.dist = "loadgroup"
    config.addinivalue_line("markers", "xdist_group(name): pytest-xdist group (one training run per group)")
    config.stash[_STATE_KEY] = {"profile": profile, "matrix": None, "verdicts": [], "skips": [],
                                "started": time.time(), "baseline_changes": None, "shard": shard,
                                "worker_histories": {}, "worker_pairs": []}


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        index, total = (int(part) for part in value.split("/"))
    except ValueError:
        raise pytest.UsageError(f"--shard {value!r}: expected I/N, e.g. 1/3") from None
    if not 1 <= index <= total:
        raise pytest.UsageError(f"--shard {value!r}: I must be between 1 and N")
    return index, total


def pin_cuda_device(worker: str, visible: str | None) -> str | None:
    """The one device a pytest-xdist worker (``gw0``, ``gw1``, ...) should see: its index into the
    caller's own CUDA_VISIBLE_DEVICES list (round-robin if there are more workers than devices).
    None when the caller did not list devices: then nothing is changed."""
    if not visible or not visible.strip():
        return None
    devices = [d.strip() for d in visible.split(",") if d.strip()]
    index = int(worker.removeprefix("gw")) if worker.removeprefix("gw").isdigit() else 0
    return devices[index % len(devices)]


def test_group(item) -> str:
    """The training run a test needs: one group per model (CIFAR) or framework (MNIST); ``cross-model``
    for the checks that compare models (they read the others' results)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    # A profile without an [mnist] section parametrizes the MNIST tests with nothing (NOTSET): they
    # skip, and belong to no training run.
    params = {k: v for k, v in params.items() if isinstance(v, (str, int, tuple))}
    if "cifar_cell" in params:
        return params["cifar_cell"][0]
    if "cifar_model" in params:
        return params["cifar_model"]
    if "mnist_case" in params:
        return f"mnist-{params['mnist_case'][0]}"
    if "mnist_framework" in params:
        return f"mnist-{params['mnist_framework']}"
    return "cross-model"


def pytest_collection_modifyitems(session, config, items) -> None:
    """Group tests by training run (pytest-xdist), run cross-model checks last, and keep one shard."""
    state = _state(config)
    if "selftest" not in (config.getoption("markexpr") or ""):
        opted_out = [item for item in items if item.get_closest_marker("selftest")]
        if opted_out:
            config.hook.pytest_deselected(items=opted_out)
            items[:] = [item for item in items if not item.get_closest_marker("selftest")]
    group = {item.nodeid: test_group(item) for item in items}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(name=group[item.nodeid]))
    items.sort(key=lambda item: group[item.nodeid] == "cross-model")  # stable: the rest keep their order
    if state["shard"] is None:
        return
    index, total = state["shard"]
    groups = list(dict.fromkeys(g for g in group.values() if g != "cross-model"))
    mine = set(groups[index - 1::total])
    keep = [item for item in items if group[item.nodeid] in mine]
    dropped = [item for item in items if group[item.nodeid] not in mine]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


def _state(config: pytest.Config) -> dict:
    return config.stash[_STATE_KEY]


def _rooted(config: pytest.Config, value: str | None, default: str) -> Path:
    """Defaults live under the directory pytest was started from (the project root, as the CLI's do).

    Not pytest's rootdir: that moves when an option value is a path elsewhere (``--profile /tmp/x.toml``).
    """
    return Path(value) if value else Path(config.invocation_params.dir) / default


def _printer(config: pytest.Config):
    def write(message: str) -> None:
        capman = config.pluginmanager.getplugin("capturemanager")
        reporter = config.pluginmanager.getplugin("terminalreporter")
        if reporter is None:
            print(message)
            return
        if capman is not None:
            with capman.global_and_fixture_disabled():
                reporter.write_line(message)
        else:
            reporter.write_line(message)
    return write


def strict_mode(config: pytest.Config) -> bool:
    from .spec import strict_default

    option = config.getoption("--tg-strict")
    return strict_default() if option is None else option


def get_matrix(config: pytest.Config):
    state = _state(config)
    if state["matrix"] is None:
        from .session import Matrix, Options
        from .spec import parse_seeds

        options = Options(
            profile=state["profile"],
            device=config.getoption("--device"),
            seeds=parse_seeds(config.getoption("trainguard_seeds")) if config.getoption("trainguard_seeds") else None,
            allow_baseline_seeds=config.getoption("--tg-allow-baseline-seeds"),
            strict=strict_mode(config),
            data_dir=Path(config.getoption("--data-dir")) if config.getoption("--data-dir") else None,
            baselines_dir=_rooted(config, config.getoption("--baselines-dir"), "baselines"),
            results_dir=None if config.getoption("--no-result-cache")
            else _rooted(config, config.getoption("--results-dir"), ".trainguard/results"),
            allow_download=not config.getoption("--offline"),
            run_log=_rooted(config, config.getoption("--run-log"), ".trainguard/runlog.jsonl"),
            precision=config.getoption("--precision"),
            compile=config.getoption("--compile"),
        )
        try:
            state["matrix"] = Matrix(options, printer=_printer(config))
        except ConfigError as exc:
            pytest.exit(f"trainguard: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    return state["matrix"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    profile = _state(metafunc.config)["profile"]
    if "cifar_cell" in metafunc.fixturenames:
        cells = [(m, b) for m in profile.models for b in profile.budgets]
        metafunc.parametrize("cifar_cell", cells, ids=[f"{m}-{b}" for m, b in cells])
    if "cifar_budget" in metafunc.fixturenames:
        metafunc.parametrize("cifar_budget", profile.budgets, ids=[str(b) for b in profile.budgets])
    if "mnist_case" in metafunc.fixturenames:
        config = profile.mnist
        cases = [(f, seed) for f in config.frameworks for seed in config.seeds] if config else []
        metafunc.parametrize("mnist_case", cases, ids=[f"{f}-seed{s}" for f, s in cases])
    if "mnist_framework" in metafunc.fixturenames:
        frameworks = list(profile.mnist.frameworks) if profile.mnist else []
        metafunc.parametrize("mnist_framework", frameworks, ids=frameworks)
    if "cifar_model" in metafunc.fixturenames:
        metafunc.parametrize("cifar_model", profile.models, ids=list(profile.models))


@pytest.fixture(scope="session")
def trainguard_profile(request):
    return _state(request.config)["profile"]


@pytest.fixture(scope="session")
def trainguard_matrix(request):
    from .data import DataError

    matrix = get_matrix(request.config)
    try:
        matrix.dataset  # noqa: B018 — load and verify once, fail every case with the same clear message
    except DataError as exc:
        pytest.exit(f"trainguard: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    return matrix


@pytest.fixture(scope="session")
def trainguard_baseline(request, trainguard_matrix):
    """The measured baseline for this profile and device class; skips with the way to create it if absent."""
    state = _state(request.config)
    if request.config.getoption("--update-baselines"):
        changes = trainguard_matrix.update_baseline()
        state["baseline_changes"] = (trainguard_matrix.baseline_file(), changes)
        _printer(request.config)(f"[trainguard] rewrote {trainguard_matrix.baseline_file()}:\n  " + "\n  ".join(changes))
    try:
        table, problem = trainguard_matrix.checkable_baseline()
    except ConfigError as exc:
        pytest.fail(f"trainguard: {exc}", pytrace=False)
    if table is None:
        if strict_mode(request.config):
            pytest.fail(f"trainguard (strict: CI=true or --tg-strict): {problem}", pytrace=False)
        state["skips"].append(problem)
        pytest.skip(problem)
    return table


@pytest.fixture(scope="session")
def mnist_experiment(request, trainguard_matrix):
    """Experiment 1 for the session: pairs (without/with dropout) cached per framework × seed."""
    from .data import DataError
    from .overfit import OverfitExperiment, load_mnist, update_distributions

    state = _state(request.config)
    config = state["profile"].mnist
    if config is None:
        pytest.skip(f"profile {state['profile'].name} has no [mnist] section")
    options = trainguard_matrix.options
    try:
        mnist = load_mnist(config, options.data_dir, allow_download=options.allow_download)
    except DataError as exc:
        pytest.exit(f"trainguard: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    experiment = OverfitExperiment(config, mnist, trainguard_matrix.device, log=trainguard_matrix.log,
                                   profile=state["profile"].name)
    state["overfit"] = experiment
    if request.config.getoption("--update-baselines"):
        lines = update_distributions(experiment, options.baselines_dir, state["profile"].name,
                                     trainguard_matrix.device.type)  # MNIST runs are always fp32
        _printer(request.config)("[trainguard] MNIST baselines:\n  " + "\n  ".join(lines))
    return experiment


@pytest.fixture
def trainguard_check(request):
    """Record verdicts for the report and fail with every failing verdict's message."""
    state = _state(request.config)

    def check(verdicts: list[Verdict]) -> None:
        state["verdicts"].extend(verdicts)
        failures = [v.message for v in verdicts if not v.passed]
        if failures:
            pytest.fail("\n".join(failures), pytrace=False)

    return check


def require_check(profile, name: str) -> None:
    if name not in profile.checks:
        pytest.skip(f"profile {profile.name} does not enable the {name!r} check")


def _worker_payload(state: dict) -> dict:
    """What a pytest-xdist worker hands the controller: plain JSON-able data."""
    matrix, overfit = state["matrix"], state.get("overfit")
    return {
        "verdicts": [dataclasses.asdict(v) for v in state["verdicts"]],
        "skips": list(state["skips"]),
        "histories": [h.to_json() for h in matrix._histories.values()] if matrix else [],
        "pairs": [{"framework": p.framework, "seed": p.seed, "nodrop": p.nodrop.to_json(), "drop": p.drop.to_json()}
                  for p in overfit.pairs.values()] if overfit else [],
    }


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """Controller side of pytest-xdist: collect each worker's verdicts and runs for one merged report."""
    from .history import History

    payload = getattr(node, "workeroutput", {}).get("trainguard")
    if not payload:
        return
    state = _state(node.config)
    state["verdicts"] += [Verdict(**v) for v in payload["verdicts"]]
    state["skips"] += [s for s in payload["skips"] if s not in state["skips"]]
    for data in payload["histories"]:
        history = History.from_json(data)
        state["worker_histories"][(history.model, history.seed)] = history
    state["worker_pairs"] += payload["pairs"]


def _merged_overfit(state: dict):
    """The controller's view of the MNIST experiment: the workers' pairs (no data, nothing to train)."""
    from .history import History
    from .overfit import OverfitExperiment, Pair

    if not state["worker_pairs"] or state["profile"].mnist is None:
        return state.get("overfit")
    return OverfitExperiment.from_pairs(state["profile"].mnist, [
        Pair(p["framework"], p["seed"], History.from_json(p["nodrop"]), History.from_json(p["drop"]))
        for p in state["worker_pairs"]])


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    config = session.config
    state = config.stash.get(_STATE_KEY, None)
    if not state:
        return
    if hasattr(config, "workeroutput"):  # an xdist worker: the controller writes the one report
        config.workeroutput["trainguard"] = _worker_payload(state)
        return
    if state["worker_histories"] and state["matrix"] is None:
        get_matrix(config).preload(state["worker_histories"])
    overfit = _merged_overfit(state)
    if state["matrix"] is None or not (state["matrix"]._histories or (overfit and overfit.pairs)):
        return
    from .session import write_report

    path = _rooted(config, config.getoption("--report"), "reports/report.md")
    try:
        write_report(state["matrix"], state["verdicts"], path, notes=state["skips"], overfit_experiment=overfit)
    except Exception as exc:  # the tests' verdicts stand; a missing report must still fail the run
        _printer(config)(f"[trainguard] could not write the report {path}: {type(exc).__name__}: {exc}")
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        return
    state["report_path"] = path


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    state = config.stash.get(_STATE_KEY, None)
    if not state:
        return
    if state.get("baseline_changes"):
        path, changes = state["baseline_changes"]
        terminalreporter.write_sep("-", f"trainguard: baseline {path} updated")
        for line in changes:
            terminalreporter.write_line(line)
    if state.get("report_path"):
        failed = sum(not v.passed for v in state["verdicts"])
        terminalreporter.write_sep("-", "trainguard")
        terminalreporter.write_line(f"report: {state['report_path']} ({len(state['verdicts'])} checks, {failed} failed)")

