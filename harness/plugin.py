"""pytest plugin (entry point ``pytest11: trainguard``): options, parametrization, session cache, report.

Thin hooks over :class:`trainguard.session.Matrix` and :mod:`trainguard.api`. Test modules ask for fixtures:

- ``trainguard_matrix``: the session's Matrix (one per pytest process: no model trains twice);
- ``cifar_cell`` → (model, budget), ``cifar_budget`` → budget, ``cifar_model`` → model,
  ``mnist_framework`` → framework: parametrized from the chosen profile, with ids like ``[NewModel2-20]``;
- ``trainguard_baseline``: the measured baseline table (rewritten first under ``--tg-update-baselines``);
- ``trainguard_check``: asserts verdicts and records them for the report;
- ``golden_run`` → the name of one of the profile's golden runs, ``trainguard_replay`` → a function that
  replays it step by step (trainguard.replay) and returns its verdict.

A good neighbour: the plugin is installed into every pytest run of the environment, so its options
are prefixed (``--tg-profile``), it imports neither torch nor scipy at start-up, and it touches only
the tests that use its fixtures. pytest-xdist's ``--dist load`` becomes ``loadgroup`` (each model's
tests on one worker, where its run is trained once) only when trainguard was asked for: a ``--tg-*``
option on the command line or a ``tg_*`` ini key, and no explicit ``--dist``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from .options import PYTEST_ONLY, PYTEST_PREFIX, RUN_OPTIONS, add_ini_options, add_options, resolve_pytest_options

_STATE_KEY = pytest.StashKey[dict]()
_FIXTURES = ("trainguard_matrix", "cifar_cell", "cifar_budget", "cifar_model", "mnist_framework", "golden_run",
             "trainguard_night")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trainguard", "trainguard training regression harness")
    add_options(group.addoption, RUN_OPTIONS + PYTEST_ONLY, prefix=PYTEST_PREFIX)
    add_ini_options(parser.addini)


def _command_line(config: pytest.Config) -> list[str]:
    """What the user typed: the invocation's arguments and $PYTEST_ADDOPTS."""
    return [str(a) for a in config.invocation_params.args] + os.environ.get("PYTEST_ADDOPTS", "").split()


def requested(config: pytest.Config) -> bool:
    """Did this pytest run ask for trainguard (a --tg-* option, or a tg_* ini key)?"""
    if any(a.startswith(f"--{PYTEST_PREFIX}") for a in _command_line(config)):
        return True
    return any(config.getini(f"tg_{o.key}") for o in RUN_OPTIONS + PYTEST_ONLY if o.ini)


def _explicit_dist(config: pytest.Config) -> bool:
    return any(a in ("--dist", "-d") or a.startswith("--dist=") for a in _command_line(config))


def pytest_configure(config: pytest.Config) -> None:
    from .spec import ConfigError, load_profile

    config.addinivalue_line("markers", "slow: trains models on real data (minutes or more); run with -m slow")
    config.addinivalue_line("markers", "selftest: trains injected regressions (opt-in: runs only when -m names it)")
    config.addinivalue_line("markers", "replay: replays the profile's golden runs step by step (seconds; pytest -m replay)")
    if not config.pluginmanager.hasplugin("xdist"):  # xdist registers it itself
        config.addinivalue_line("markers", "xdist_group(name): pytest-xdist group (one training run per group)")
    try:
        values = resolve_pytest_options(config.getoption, config.getini, config.rootpath,
                                        Path(config.invocation_params.dir))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        profile = load_profile(values["profile"])  # a TOML read: no torch
    except ConfigError as exc:
        raise pytest.UsageError(f"--tg-profile: {exc}") from None
    active = requested(config)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if active and worker is not None:
        pinned = pin_cuda_device(worker, os.environ.get("CUDA_VISIBLE_DEVICES"))
        if pinned is not None:  # before anything initialises CUDA in this worker process
            os.environ["CUDA_VISIBLE_DEVICES"] = pinned
    if active and getattr(config.option, "dist", "no") == "load" and not _explicit_dist(config):
        config.option.dist = "loadgroup"  # -n N: keep each model's tests on one worker (its run is trained once)
    config.stash[_STATE_KEY] = {"profile": profile, "values": values, "active": active, "matrix": None, "verdicts": [], "skips": [],
                                "started": time.time(), "baseline_changes": None, "shard": values["shard"],
                                "worker_histories": {}, "worker_pairs": [], "replay": {}}


def pytest_report_header(config: pytest.Config) -> list[str]:
    from .spec import baselines_dir_for

    state = config.stash.get(_STATE_KEY, None)
    if not state or not state["active"]:
        return []
    values, profile = state["values"], state["profile"]
    data = values["data_dir"] or os.environ.get("TRAINGUARD_DATA_DIR") or "the download cache"
    return [f"trainguard: profile {profile.name} ({profile.source}), device {values['device']}, "
            f"precision {values['precision']}, data {data}, baselines {values['baselines_dir'] or baselines_dir_for(profile)}"]


def pin_cuda_device(worker: str, visible: str | None) -> str | None:
    """The one device a pytest-xdist worker (``gw0``, ``gw1``, ...) should see: its index into the
    caller's own CUDA_VISIBLE_DEVICES list (round-robin if there are more workers than devices).
    None when the caller did not list devices: then nothing is changed."""
    if not visible or not visible.strip():
        return None
    devices = [d.strip() for d in visible.split(",") if d.strip()]
    index = int(worker.removeprefix("gw")) if worker.removeprefix("gw").isdigit() else 0
    return devices[index % len(devices)]


def is_trainguard_test(item) -> bool:
    return any(name in getattr(item, "fixturenames", ()) for name in _FIXTURES)


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
    if "mnist_framework" in params:
        return f"mnist-{params['mnist_framework']}"
    if "golden_run" in params:
        return "replay"  # one worker replays them all: the golden runs are seconds each
    return "cross-model"


def pytest_collection_modifyitems(session, config, items) -> None:
    """trainguard's tests only: group them by training run (pytest-xdist), run cross-model checks last,
    keep one shard. Other tests are left as they are."""
    state = _state(config)
    if "selftest" not in (config.getoption("markexpr") or ""):
        # only trainguard's own self-test cases (they use its fixtures): another project's `selftest` marker is theirs
        opted_out = [item for item in items if item.get_closest_marker("selftest") and is_trainguard_test(item)]
        if opted_out:
            config.hook.pytest_deselected(items=opted_out)
            items[:] = [item for item in items if not item.get_closest_marker("selftest")]
    group = {item.nodeid: test_group(item) for item in items if is_trainguard_test(item)}
    if not group:
        return
    for item in items:
        if item.nodeid in group:
            item.add_marker(pytest.mark.xdist_group(name=group[item.nodeid]))
    items.sort(key=lambda item: group.get(item.nodeid) == "cross-model")  # stable: the rest keep their order
    if state["shard"] is None:
        return
    index, total = state["shard"]
    groups = list(dict.fromkeys(g for g in group.values() if g != "cross-model"))
    mine = set(groups[index - 1::total])
    keep = [item for item in items if item.nodeid not in group or group[item.nodeid] in mine]
    dropped = [item for item in items if item.nodeid in group and group[item.nodeid] not in mine]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


def _state(config: pytest.Config) -> dict:
    return config.stash[_STATE_KEY]


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
    return _state(config)["values"]["strict"]


def get_matrix(config: pytest.Config):
    from .options import session_options
    from .spec import ConfigError

    state = _state(config)
    if state["matrix"] is None:
        from .session import Matrix

        try:
            state["matrix"] = Matrix(session_options(state["values"], state["profile"]), printer=_printer(config))
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
    if "mnist_framework" in metafunc.fixturenames:
        frameworks = list(profile.mnist.frameworks) if profile.mnist else []
        metafunc.parametrize("mnist_framework", frameworks, ids=frameworks)
    if "cifar_model" in metafunc.fixturenames:
        metafunc.parametrize("cifar_model", profile.models, ids=list(profile.models))
    if "golden_run" in metafunc.fixturenames:
        names = profile.golden_names()
        metafunc.parametrize("golden_run", names, ids=names)


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
    if state["values"]["update_baselines"]:
        if note := trainguard_matrix.redirect_writes():
            _printer(request.config)(f"[trainguard] {note}")
        changes = trainguard_matrix.update_baseline()
        state["baseline_changes"] = (trainguard_matrix.baseline_file(), changes)
        _printer(request.config)(f"[trainguard] rewrote {trainguard_matrix.baseline_file()}:\n  " + "\n  ".join(changes))
    from .spec import ConfigError

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
    from .overfit import update_distributions

    state = _state(request.config)
    if state["profile"].mnist is None:
        pytest.skip(f"profile {state['profile'].name} has no [mnist] section")
    try:
        experiment = trainguard_matrix.mnist_experiment()
    except DataError as exc:
        pytest.exit(f"trainguard: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
    state["overfit"] = experiment
    if state["values"]["update_baselines"]:
        trainguard_matrix.redirect_writes()
        lines = update_distributions(experiment, trainguard_matrix.options.baselines_dir, state["profile"].name,
                                     trainguard_matrix.device.type)  # MNIST runs are always fp32
        _printer(request.config)("[trainguard] MNIST baselines:\n  " + "\n  ".join(lines))
    return experiment


@pytest.fixture(scope="session")
def trainguard_replay(request, trainguard_matrix):
    """A function: golden run name → its replay's verdict (trainguard.replay); replayed once per session. A
    change fails the test, strict or not (the replay was asked for); a missing golden skips, or fails under strict."""
    from . import replay
    from .spec import ConfigError

    state = _state(request.config)

    def replay_one(name: str):
        if name not in state["replay"]:
            try:
                state["replay"][name] = replay.replay(trainguard_matrix, [name], printer=_printer(request.config))[0]
            except ConfigError as exc:
                pytest.fail(f"trainguard: {exc}", pytrace=False)
        outcome = state["replay"][name]
        checks, _ = replay.verdicts([outcome], strict=True)
        if not strict_mode(request.config) and not checks[0].passed and outcome.status == "no golden":
            state["skips"].append(outcome.message)
            pytest.skip(outcome.message)
        return checks

    return replay_one


@pytest.fixture
def trainguard_night(request):
    """For a user's own tests: ``trainguard_night("mine.toml")`` runs a whole night of that profile (a name or a
    path; ``**options`` override trainguard.session.Options fields, e.g. ``device="cpu"``) with this pytest run's
    ``--tg-*`` options — the same replay, checks, verdicts and report as ``trainguard run`` — and returns its
    RunSummary. It fails with every failing check's message; a night that compares nothing (no baseline or golden
    yet) fails on first use, naming the command that creates them; under ``--tg-update-baselines`` the profile's
    baseline and golden runs are measured first."""
    state = _state(request.config)
    printer = _printer(request.config)

    def night(profile: str = "ci", **options):
        from .api import publish, run_profile
        from .options import session_options
        from .spec import ConfigError, load_profile

        try:
            run = session_options(state["values"], load_profile(profile))
        except ConfigError as exc:
            pytest.fail(f"trainguard: {exc}", pytrace=False)
        for key, value in options.items():
            setattr(run, key, value)
        if state["values"]["update_baselines"]:
            _measure(run, printer)
        try:
            summary = run_profile(run, printer=printer)
        except ConfigError as exc:
            pytest.fail(f"trainguard: {exc}", pytrace=False)
        state["report_path"] = publish(summary, state["values"]["report"], history_dir=state["values"]["history_dir"])
        state["verdicts"].extend(summary.verdicts)
        if summary.result == "NOTHING CHECKED":
            pytest.fail("trainguard: NOTHING CHECKED — " + "; ".join(summary.notes[1:]) +
                        " (or run this test once with --tg-update-baselines)", pytrace=False)
        if summary.failed:
            pytest.fail("\n".join(v.message for v in summary.failed), pytrace=False)
        return summary

    return night


def _measure(options, printer) -> None:
    """--tg-update-baselines for trainguard_night: the baseline seeds, the MNIST distributions, the golden runs."""
    from .overfit import update_distributions
    from .replay import write_goldens
    from .session import Matrix

    matrix = Matrix(options, printer=printer)
    if note := matrix.redirect_writes():
        printer(f"[trainguard] {note}")
    for line in matrix.update_baseline():
        printer(f"[trainguard] {line}")
    if matrix.profile.mnist is not None and not matrix.profile.mnist.synthetic:
        for line in update_distributions(matrix.mnist_experiment(), matrix.options.baselines_dir, matrix.profile.name,
                                         matrix.device.type):
            printer(f"[trainguard] {line}")
    write_goldens(matrix, printer=printer)
    options.baselines_dir = matrix.options.baselines_dir


@pytest.fixture
def trainguard_check(request):
    """Record verdicts for the report and fail with every failing verdict's message."""
    state = _state(request.config)

    def check(verdicts: list) -> None:
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
        "replay": [o.to_json() for o in state["replay"].values()],
        "skips": list(state["skips"]),
        "histories": [h.to_json() for h in matrix.histories.values()] if matrix else [],
        "pairs": [{"framework": p.framework, "seed": p.seed, "nodrop": p.nodrop.to_json(), "drop": p.drop.to_json()}
                  for p in overfit.pairs.values()] if overfit else [],
    }


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """Controller side of pytest-xdist: collect each worker's verdicts and runs for one merged report."""
    from .compare import Verdict
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
    if payload.get("replay"):
        from .golden import Outcome

        state["replay"].update({o["name"]: Outcome.from_json(o) for o in payload["replay"]})


def _merged_overfit(state: dict):
    """The controller's view of the MNIST experiment: the workers' pairs (no data, nothing to train)."""
    if not state["worker_pairs"] or state["profile"].mnist is None:
        return state.get("overfit")
    # Imported only when needed: a session that ran no trainguard test must not import torch/scipy at its
    # end (after pytester's in-process runs, a first import of scipy there can fail).
    from .history import History
    from .overfit import OverfitExperiment, Pair

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
    if state["matrix"] is None or not (state["matrix"].histories or (overfit and overfit.pairs)):
        return
    from .api import publish, summarize

    path = state["values"]["report"]
    try:
        summary = summarize(state["matrix"], state["verdicts"], state["skips"], overfit,
                            replay_outcomes=[state["replay"][n] for n in state["profile"].golden_names()
                                             if n in state["replay"]])
        publish(summary, path, history_dir=state["values"]["history_dir"])
    except Exception as exc:  # the tests' verdicts stand; a missing report must still fail the run
        _printer(config)(f"[trainguard] could not write the report {path}: {type(exc).__name__}: {exc}")
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        return
    state["report_path"] = path
    state["flags"] = [v for v in summary.flags if not v.passed]
    if summary.result == "NOTHING CHECKED":
        state["nothing"] = summary.notes
        if session.exitstatus == pytest.ExitCode.OK:  # trainguard's cases all skipped: not a pass (pytest's code 5)
            session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
    if any(not v.passed for v in summary.verdicts if v.check in ("drift", "speed")):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # --tg-fail-on-drift / --tg-fail-on-slowdown


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
        if state.get("nothing"):
            terminalreporter.write_line("NOTHING CHECKED: no check compared anything; not a pass (exit 5). Why:")
            for note in state["nothing"][1:]:
                terminalreporter.write_line(f"  {note}")
        for flag in state.get("flags", []):
            terminalreporter.write_line(f"FLAG {flag.message}")

