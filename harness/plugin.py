"""pytest plugin (entry point ``pytest11: trainguard``): options, parametrization, session cache, report.

Thin hooks over :class:`trainguard.runs.matrix.Matrix`, :class:`trainguard.checks.CheckSession` and
:mod:`trainguard.api`. Test modules ask for fixtures:

- ``trainguard_case``: one case of one check kind (trainguard.checks), parametrized from the chosen profile —
  every enabled kind's cases, or those of the kinds a ``@pytest.mark.trainguard_kinds("baseline", ...)`` mark
  names (ids like ``[NewModel2-20]`` for one kind, ``[baseline-NewModel2-20]`` for several);
  ``trainguard_case.check()`` judges it (the one policy: a stopped run fails, a missing reference skips with
  the command that creates it or fails under strict) and records its verdicts for the report;
- ``trainguard_matrix``: the session's runs (one per pytest process: no model trains twice);
  ``trainguard_checks``: its CheckSession (the references are measured first under ``--tg-update-baselines``);
- ``trainguard_check``: asserts verdicts and records them for the report;
- ``golden_run`` → the name of one of the profile's golden runs, ``trainguard_replay`` → a function that
  replays it step by step (trainguard.replay.golden_runs) and returns its verdict.

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
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .options import PYTEST_ONLY, PYTEST_PREFIX, RUN_OPTIONS, add_ini_options, add_options, resolve_pytest_options

@dataclass
class PluginState:
    """What the plugin keeps for one pytest run: the options it resolved and the night its tests run (created on
    first use: a session that runs none of trainguard's tests builds none); the rest is what the terminal says."""

    profile: object
    values: dict
    active: bool  # did this pytest run ask for trainguard (a --tg-* option, a tg_* ini key)?
    night: object = None  # trainguard.night.night.Night
    started: float = field(default_factory=time.time)
    references_updated: bool = False  # --tg-update-baselines done (or, in a pytest-xdist worker, read where written)
    baseline_changes: tuple | None = None  # (file, lines) after --tg-update-baselines
    elsewhere: list = field(default_factory=list)  # verdicts of trainguard_night's own nights (their own report)
    report_path: Path | None = None
    flags: list = field(default_factory=list)
    nothing: list | None = None  # the notes of a night that checked nothing

    @property
    def shard(self):
        return self.values["shard"]


_STATE_KEY = pytest.StashKey[PluginState]()
_FIXTURES = ("trainguard_matrix", "trainguard_case", "trainguard_checks", "golden_run", "trainguard_night")


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


MARKERS = ("slow: trains models on real data (minutes or more); run with -m slow",
           "selftest: trains injected regressions (opt-in: runs only when -m names it)",
           "replay: replays the profile's golden runs step by step (seconds; pytest -m replay)",
           "trainguard_kinds(*names): parametrize trainguard_case with these check kinds only",
           "trainguard_experiment(*names): only these declared experiments' cases (NAME of FILE.py:NAME or "
           "MODULE:NAME); one name: ids without it ([small-2], [claims])")


def pytest_configure(config: pytest.Config) -> None:
    _register_markers(config)
    config.stash[_STATE_KEY] = _configured_state(config)
    if not config.pluginmanager.has_plugin("trainguard-experiments"):  # your own experiments' cases
        from . import pytest_experiments

        config.pluginmanager.register(pytest_experiments, "trainguard-experiments")


def _register_markers(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if not config.pluginmanager.hasplugin("xdist"):  # xdist registers it itself
        config.addinivalue_line("markers", "xdist_group(name): pytest-xdist group (one training run per group)")


def _configured_state(config: pytest.Config) -> PluginState:
    """The options resolved (command line, ini keys) and the profile read — a TOML read: no torch —; where this run
    asked for trainguard, its pytest-xdist workers pinned to a CUDA device each and grouped by training run."""
    from .core.spec import ConfigError, load_profile

    try:
        values = resolve_pytest_options(config.getoption, config.getini, config.rootpath,
                                        Path(config.invocation_params.dir))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    active = requested(config)
    try:
        profile = load_profile(values["profile"])
        if active:  # its data set, where this run asked for trainguard: an unrelated pytest run imports no numpy here
            from .stores.data import check_profile_dataset

            check_profile_dataset(profile)
    except ConfigError as exc:
        raise pytest.UsageError(f"--tg-profile: {exc}") from None
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if active and worker is not None:
        pinned = pin_cuda_device(worker, os.environ.get("CUDA_VISIBLE_DEVICES"))
        if pinned is not None:  # before anything initialises CUDA in this worker process
            os.environ["CUDA_VISIBLE_DEVICES"] = pinned
    if active and getattr(config.option, "dist", "no") == "load" and not _explicit_dist(config):
        config.option.dist = "loadgroup"  # -n N: keep each model's tests on one worker (its run is trained once)
    return PluginState(profile, values, active)


def pytest_report_header(config: pytest.Config) -> list[str]:
    from .core.spec import baselines_dir_for

    state = config.stash.get(_STATE_KEY, None)
    if not state or not state.active:
        return []
    values, profile = state.values, state.profile
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
    """The training run a test needs: its case's group — one per model or declared experiment, ``cross-model`` for
    the checks that compare models (they read the others' results)."""
    # A test whose kinds have no case gets one skipped placeholder (None): it belongs to no training run.
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "trainguard_case" in params:
        return getattr(params["trainguard_case"], "group", "")
    if isinstance(params.get("golden_run"), str):
        return "replay"  # one worker replays them all: the golden runs are seconds each
    return "cross-model"


def pytest_collection_modifyitems(session, config, items) -> None:
    _deselect_selftests(config, items)
    _group_and_shard(config, items)


def _deselect_selftests(config: pytest.Config, items: list) -> None:
    """trainguard's own self-test cases run only when -m names `selftest` (another project's marker is theirs)."""
    if "selftest" in (config.getoption("markexpr") or ""):
        return
    opted_out = [item for item in items if item.get_closest_marker("selftest") and is_trainguard_test(item)]
    if opted_out:
        config.hook.pytest_deselected(items=opted_out)
        items[:] = [item for item in items if not item.get_closest_marker("selftest")]


def _group_and_shard(config: pytest.Config, items: list) -> None:
    """trainguard's tests only: grouped by training run (pytest-xdist), cross-model checks last, one shard kept.
    Other tests are left as they are."""
    group = {item.nodeid: test_group(item) for item in items if is_trainguard_test(item)}
    group = {nodeid: name for nodeid, name in group.items() if name}
    if not group:
        return
    for item in items:
        if item.nodeid in group:
            item.add_marker(pytest.mark.xdist_group(name=group[item.nodeid]))
    items.sort(key=lambda item: group.get(item.nodeid) == "cross-model")  # stable: the rest keep their order
    if _state(config).shard is None:
        return
    index, total = _state(config).shard
    groups = list(dict.fromkeys(g for g in group.values() if g != "cross-model"))
    mine = set(groups[index - 1::total])
    keep = [item for item in items if item.nodeid not in group or group[item.nodeid] in mine]
    dropped = [item for item in items if item.nodeid in group and group[item.nodeid] not in mine]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


def _state(config: pytest.Config) -> PluginState:
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


def stop(config: pytest.Config, message: str) -> None:
    """End the session with ``message`` (an input every case needs is unusable: the data, a profile's file).
    In a pytest-xdist worker it fails the case instead: pytest.exit there crashes xdist's controller with an
    INTERNALERROR that hides the message (pytest-xdist issue 1239); a session fixture's failure is kept, so every
    case of that worker fails with the same message."""
    if hasattr(config, "workerinput"):  # from None: the message says it all, not the error it was made from
        raise pytest.fail.Exception(message, pytrace=False) from None
    raise pytest.exit.Exception(message, returncode=pytest.ExitCode.USAGE_ERROR) from None


def strict_mode(config: pytest.Config) -> bool:
    return _state(config).values["strict"]


def get_night(config: pytest.Config):
    """The pytest run's night (trainguard.night.night.Night), built on first use; the night's time limit runs from
    then on (ended at unconfigure)."""
    state = _state(config)
    if state.night is None:
        from .core import watchdog
        from .core.spec import ConfigError
        from .night.night import Night
        from .options import session_options

        try:
            state.night = Night(session_options(state.values, state.profile), printer=_printer(config))
        except ConfigError as exc:
            stop(config, f"trainguard: {exc}")
        watchdog.start_night(state.night.options.time_limit)
    return state.night


def get_matrix(config: pytest.Config):
    return get_night(config).matrix


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE_KEY, None)
    if state and state.night is not None:
        from .core import watchdog

        watchdog.end_night()
        state.night.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    _parametrize_cases(metafunc, _state(metafunc.config).profile)
    _parametrize_golden_runs(metafunc, _state(metafunc.config).profile)


def _parametrize_cases(metafunc: pytest.Metafunc, profile) -> None:
    """``trainguard_case``: every enabled kind's cases, or those of the kinds its ``trainguard_kinds`` mark names."""
    if "trainguard_case" not in metafunc.fixturenames:
        return
    from .checks import enabled_kinds
    from .core.spec import ConfigError

    marker = metafunc.definition.get_closest_marker("trainguard_kinds")
    wanted = marker.args if marker else None
    from .core.retired import check_kinds

    if retired := [name for name in wanted or () if name in check_kinds()]:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: trainguard_kinds{tuple(retired)}: retired kind(s); "
                                f"what they checked is now {sorted({check_kinds()[n] for n in retired})} "
                                f"(trainguard.core.retired; docs/own-training.md)")
    try:
        kinds = [k for k in enabled_kinds(profile) if wanted is None or k.name in wanted]
    except ConfigError as exc:
        raise pytest.UsageError(f"--tg-profile: {exc}") from None
    cases = [case for kind in kinds for case in kind.cases(profile)]
    cases, ids = _of_experiments(metafunc, cases, one_kind=wanted is not None and len(wanted) == 1)
    if not cases:  # one skipped case that says why, rather than pytest's "got empty parameter set"
        which = f"the check kind(s) {', '.join(wanted)}" if wanted else "any check kind"
        reason = f"profile {profile.name} has no case of {which} (not enabled, or nothing to check)"
        metafunc.parametrize("trainguard_case", [pytest.param(None, marks=pytest.mark.skip(reason=reason))],
                             ids=["none"], indirect=True)
    else:
        metafunc.parametrize("trainguard_case", cases, indirect=True, ids=ids)


def _of_experiments(metafunc: pytest.Metafunc, cases: list, one_kind: bool) -> tuple[list, list[str]]:
    """The cases a ``trainguard_experiment(*names)`` mark keeps and their pytest ids. Of the declared experiments'
    cases (kinds ``experiments``, ``experiment_replay``) it keeps those whose target NAME it names, each id without
    that NAME where the mark names one experiment alone ([small-2], [claims], [replay]); the other kinds' cases stay,
    under their own ids — so one test function takes a profile's models' cells and its experiment's alike
    ([NewModel2-20]). Without the mark: every case, its id prefixed with its kind unless the test takes one kind."""
    marker = metafunc.definition.get_closest_marker("trainguard_experiment")
    if marker is None:
        return cases, [case.id if one_kind else f"{case.kind}-{case.id}" for case in cases]
    names, kept, ids = set(marker.args), [], []
    for case in cases:
        if case.kind not in ("experiments", "experiment_replay"):
            kept.append(case), ids.append(case.id)
        elif (name := case.params[0].rpartition(":")[2]) in names:
            kept.append(case)
            ids.append(case.id if len(names) > 1 else "replay" if case.id == name else case.id.removeprefix(f"{name}-"))
    return kept, ids


def _parametrize_golden_runs(metafunc: pytest.Metafunc, profile) -> None:
    """``golden_run``: ``inputs`` and each golden run of the profile (the replay kind's cases)."""
    if "golden_run" not in metafunc.fixturenames:
        return
    from .core.registry import load

    kind = load("replay")
    names = [case.id for case in kind.cases(profile)] if kind.enabled(profile) else []
    if not names:  # a profile of experiments alone: its experiments' golden runs are the experiment_replay kind's
        reason = f"profile {profile.name} has no golden run of its own (its declared experiments replay theirs)"
        metafunc.parametrize("golden_run", [pytest.param(None, marks=pytest.mark.skip(reason=reason))], ids=["none"])
        return
    metafunc.parametrize("golden_run", names, ids=names)


@pytest.fixture(scope="session")
def trainguard_matrix(request):
    from .stores.data import DataError

    matrix = get_matrix(request.config)
    try:
        if matrix.profile.models:  # a profile of experiments alone has no data of its own: each reads its own
            matrix.dataset  # noqa: B018 — load and verify once, fail every case with the same clear message
    except DataError as exc:
        stop(request.config, f"trainguard: {exc}")
    return matrix


@pytest.fixture(scope="session")
def trainguard_checks(request, trainguard_matrix):
    """The session's CheckSession: its check kinds, their references read once. Under ``--tg-update-baselines``
    every stored reference (the baseline, the declared experiments' baselines) is measured first."""
    from .stores.data import DataError

    night, state = get_night(request.config), _state(request.config)
    if state.values["update_baselines"] and not state.references_updated:
        if hasattr(request.config, "workerinput"):  # pytest-xdist: the controller wrote them before we started
            trainguard_matrix.redirect_writes()  # read them where it wrote them
            night.checks.forget_references()
        else:
            try:
                _update_references(request.config)
            except DataError as exc:
                stop(request.config, f"trainguard: {exc}")
        state.references_updated = True
    return night.checks


def _update_references(config: pytest.Config) -> None:
    """--tg-update-baselines: the references measured from the night's runs (the per-seed baseline, the declared
    experiments' baselines), as the option says — the golden runs: `trainguard baselines update --golden` —, once per pytest
    run (one writer: the process itself, or pytest-xdist's controller before its workers start)."""
    from .checks.baseline import baseline_file

    night, state = get_night(config), _state(config)
    changes = night.update_references([kind.name for kind in night.checks.kinds if kind.name != "replay"])
    # a profile of experiments alone has no models' table: its experiments' folder is what was rewritten
    matrix = night.matrix
    written = baseline_file(matrix) if matrix.profile.models else matrix.references.directory / "experiments"
    state.references_updated, state.baseline_changes = True, (written, changes)
    _printer(config)(f"[trainguard] rewrote {written}:\n  " + "\n  ".join(changes))


def _xdist_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Under pytest-xdist, --tg-update-baselines is done here, in the controller, before the workers start: one
    writer, and every worker then checks against the same whole reference. With --tg-executor ray, the night's
    execute stage runs here, before the first case."""
    from .core.spec import ConfigError
    from .stores.data import DataError

    state = session.config.stash.get(_STATE_KEY, None)
    if not state or not state.active:
        return
    try:
        if state.values.get("executor") == "ray":
            _execute_on_ray(session.config)
        elif state.values["update_baselines"] and _xdist_controller(session.config):
            _update_references(session.config)
    except (ConfigError, DataError) as exc:
        raise pytest.UsageError(f"trainguard: {exc}") from None


def _execute_on_ray(config: pytest.Config) -> None:
    """--tg-executor ray: the night's execute stage before the first case (the cases then judge what came back):
    the baseline seeds first under --tg-update-baselines, then the checked runs, one Ray task each."""
    from .night.execute import executor_for
    from .night.plan import plan_baselines

    if _xdist_controller(config) or hasattr(config, "workerinput"):
        raise pytest.UsageError("--tg-executor ray spreads the runs over the Ray cluster itself: drop -n (pytest-xdist)")
    night = get_night(config)
    executor = executor_for(night.options, _printer(config))
    executor.prepare()
    if _state(config).values["update_baselines"]:
        executor.execute(plan_baselines(night.checks), night.checks)
        _update_references(config)
    night.execute(night.plan(), executor)


def fail_on_failures(verdicts: list) -> list:
    """A test's outcome from its verdicts: failed with every failing verdict's message (a flagged one does not fail),
    else passed; the verdicts, for the test to look at."""
    failures = [v.message for v in verdicts if v.fails]
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
    return verdicts


class CaseCheck:
    """One parametrized case: :meth:`check` executes and judges it through the night (the one policy), keeps its
    verdicts for the report, and fails the test with every failing verdict's message (or skips it, with the
    reason)."""

    def __init__(self, config: pytest.Config, session, case) -> None:
        self.config, self.session, self.case = config, session, case
        self.kind = session.kind(case.kind)

    @classmethod
    def for_case(cls, config: pytest.Config, session, kind: str, case_id: str) -> "CaseCheck":
        from .checks import Case

        return cls(config, session, Case(kind, case_id, group=kind))

    def judge(self, keep: bool = True):
        from .checks import Judgement
        from .core.spec import ConfigError
        from .stores.data import DataError

        if self.kind is None:
            return Judgement(skipped=f"the check kind {self.case.kind} is off in this session (--tg-no-replay?)")
        try:
            return get_night(self.config).check(self.kind, self.case, keep=keep)
        except ConfigError as exc:  # a malformed reference is never a skip
            pytest.fail(f"trainguard: {exc}", pytrace=False)
        except DataError as exc:
            stop(self.config, f"trainguard: {exc}")

    def check(self) -> list:
        judgement = self.judge()
        if judgement.skipped:
            pytest.skip(judgement.skipped)
        return fail_on_failures(judgement.verdicts)


@pytest.fixture
def trainguard_case(request, trainguard_checks):
    """One case of one check kind (parametrized by the plugin): ``trainguard_case.check()``."""
    return CaseCheck(request.config, trainguard_checks, request.param)


@pytest.fixture(scope="session")
def trainguard_replay(request, trainguard_checks):
    """A function: golden run name (or ``inputs``) → its replay's verdicts, judged by the replay check kind;
    replayed once per session. A change fails the test, strict or not (the replay was asked for); a missing golden
    skips, or fails under strict."""

    def replay_one(name: str):
        judgement = CaseCheck.for_case(request.config, trainguard_checks, "replay", name).judge(keep=False)
        if judgement.skipped:
            pytest.skip(judgement.skipped)
        return [dataclasses.replace(v, flagged=False) for v in judgement.verdicts]  # asked for: a change fails

    return replay_one


@pytest.fixture
def trainguard_night(request):
    """For a user's own tests: ``trainguard_night("mine.toml")`` runs a whole night of that profile (a name or a
    path; ``**options`` override trainguard.runs.matrix.Options fields, e.g. ``device="cpu"``) with this pytest run's
    ``--tg-*`` options — the same replay, checks, verdicts and report as ``trainguard run`` — and returns its
    RunSummary. It fails with every failing check's message; a night that compares nothing (no baseline or golden
    yet) fails on first use, naming the command that creates them; under ``--tg-update-baselines`` the profile's
    baseline and golden runs are measured first."""
    state = _state(request.config)
    printer = _printer(request.config)

    def night(profile: str = "ci", **options):
        from .core.spec import ConfigError, load_profile
        from .night.night import Night
        from .night.record import publish
        from .options import session_options

        try:
            run = session_options(state.values, load_profile(profile))
            for key, value in options.items():
                setattr(run, key, value)
            if state.values["update_baselines"]:
                measured = Night(run, printer)
                for line in measured.update_references():  # every reference: baselines, golden runs
                    printer(f"[trainguard] {line}")
                run.baselines_dir = measured.options.baselines_dir
                measured.close()
            summary = Night(run, printer).run()
        except ConfigError as exc:
            pytest.fail(f"trainguard: {exc}", pytrace=False)
        try:
            state.report_path = publish(summary, state.values["report"], ledger=run.ledger_location, mlflow=run.mlflow)
        except ConfigError as exc:  # NotRecorded: the report is written, the ledger failed
            from .core.redact import redact_text

            pytest.fail(f"trainguard: {redact_text(str(exc))}", pytrace=False)
        state.elsewhere.extend(summary.verdicts)
        if summary.result == "NOTHING CHECKED":
            pytest.fail("trainguard: NOTHING CHECKED — " + "; ".join(summary.notes[1:]) +
                        " (or run this test once with --tg-update-baselines)", pytrace=False)
        fail_on_failures(summary.verdicts)
        return summary

    return night


@pytest.fixture
def trainguard_check(request):
    """Keep verdicts for the report and fail with every failing verdict's message."""
    def check(verdicts: list) -> None:
        get_night(request.config).verdicts.extend(verdicts)
        fail_on_failures(verdicts)

    return check


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """Controller side of pytest-xdist: what each worker's night found, merged into one night and one report."""
    payload = getattr(node, "workeroutput", {}).get("trainguard")
    if payload:
        get_night(node.config).merge(payload)


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    state = session.config.stash.get(_STATE_KEY, None)
    if not state or state.night is None:
        return
    if hasattr(session.config, "workeroutput"):  # an xdist worker: the controller writes the one report
        session.config.workeroutput["trainguard"] = state.night.payload()
    elif state.night.ran_anything:
        _record(session, state)


def _record(session: pytest.Session, state: PluginState) -> None:
    """The night's record stage, as `trainguard run`'s: the report, the ledger, the job summary; the exit status."""
    from .night.record import publish

    night, path = state.night, state.values["report"]
    from .night.record import NotRecorded
    from .core.redact import redact_text

    try:
        summary = night.summary()
        publish(summary, path, ledger=night.options.ledger_location, mlflow=night.options.mlflow)
    except NotRecorded as exc:  # the report is written; the ledger failed: the run fails, saying so
        _printer(session.config)(f"[trainguard] {redact_text(str(exc))}")
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        return
    except Exception as exc:  # the tests' verdicts stand; a missing report must still fail the run
        import traceback

        from .core.storage import environment_error

        why = (environment_error(exc) if isinstance(exc, OSError) else None) or "".join(traceback.format_exception(exc))
        _printer(session.config)(f"[trainguard] could not write the report {path}: {why}")
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        return
    state.report_path, state.flags = path, [v for v in summary.flags if not v.passed]
    if summary.result == "NOTHING CHECKED":
        state.nothing = summary.notes
        if session.exitstatus == pytest.ExitCode.OK:  # trainguard's cases all skipped: not a pass (pytest's code 5)
            session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
    if any(v.fails for v in summary.verdicts if v.check in ("drift", "speed")):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # --tg-fail-on-drift / --tg-fail-on-slowdown


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    state = config.stash.get(_STATE_KEY, None)
    if not state:
        return
    if state.baseline_changes:
        path, changes = state.baseline_changes
        terminalreporter.write_sep("-", f"trainguard: baseline {path} updated")
        for line in changes:
            terminalreporter.write_line(line)
    if state.report_path:
        verdicts = (state.night.verdicts if state.night is not None else []) + state.elsewhere
        failed = sum(v.fails for v in verdicts)
        terminalreporter.write_sep("-", "trainguard")
        terminalreporter.write_line(f"report: {state.report_path} ({len(verdicts)} checks, {failed} failed)")
        if state.nothing:
            terminalreporter.write_line("NOTHING CHECKED: no check compared anything; not a pass (exit 5). Why:")
            for note in state.nothing[1:]:
                terminalreporter.write_line(f"  {note}")
        for flag in state.flags:
            terminalreporter.write_line(f"FLAG {flag.message}")
