"""The execute stage: make every planned run's result available to the judge — from the result cache where
present, else trained (trainguard.runs.training.deliver, the one way a run is trained). The judge only reads: a run
this stage did not deliver is a "missing" run there.

The golden runs are replayed first, in this process, whichever executor trains the night: they are seconds, and
their verdict (a changed golden fails a strict night) is known before the first epoch of the night's runs.
:class:`LocalExecutor` trains in this process; :class:`trainguard.night.cluster.RayExecutor` implements the same
:class:`Executor` on a Ray cluster.
"""

from __future__ import annotations

from typing import Protocol

from ..runs.training import deliver
from ..stores.golden import INPUTS
from .plan import NightPlan


class Executor(Protocol):
    """Make every planned run's result available to the judge."""

    def prepare(self) -> None:
        """Fail now (ConfigError) if the executor cannot work — before the replay, before anything trains."""

    def execute(self, plan: NightPlan, session) -> None:
        ...


def executor_for(options, printer=print) -> Executor:
    """The execute stage the options ask for: this process, or a Ray cluster (trainguard.night.cluster)."""
    if options.executor == "ray":
        from .cluster import RayExecutor

        return RayExecutor(options.ray, printer)
    return LocalExecutor(printer)


def execute(plan: NightPlan, session, executor: Executor, printer=print) -> None:
    """The whole stage: the golden replays (the models' and the declared experiments'), then the executor's runs and
    the declared experiments' runs (the judge that follows only reads)."""
    if plan.goldens:
        replay_goldens(session, [INPUTS, *plan.goldens], printer)
    runner = experiment_runner(session.matrix.options)
    delivered = [(kind, case) for kind, case in session.cases()  # what cases read beyond the matrix
                 if hasattr(kind, "deliver") and not kind.unavailable(session, case)]
    for kind, case in delivered:  # a declared experiment's golden replays: before anything trains
        if kind.before_training:
            kind.deliver(session, case, runner)
    executor.execute(plan, session)
    for kind, case in delivered:  # a declared experiment's runs
        if not kind.before_training:
            kind.deliver(session, case, runner)
    if note := getattr(executor, "placement_note", lambda: None)():
        session.notes.append(note)


def replay_goldens(session, names: list[str], printer=print) -> None:
    """Replay the golden runs ``names`` (``inputs``: compare the night's data at full scale) into
    ``session.replays``, where the replay check kind reads them; one already replayed in this session is not
    replayed again."""
    from ..replay import golden_runs

    todo = [name for name in names if name not in session.replays]
    if not todo:
        return
    goldens = [name for name in todo if name != INPUTS]
    if goldens:
        printer(f"[trainguard] replaying the golden runs of {session.profile.name} ({', '.join(goldens)})")
    outcomes = golden_runs.replay(session.matrix, goldens, printer, inputs=INPUTS in todo)
    session.replays.update({outcome.name: outcome for outcome in outcomes})


def execute_case(session, kind, case, printer=print) -> None:
    """The execute stage of one case, for front ends that judge case by case (the pytest plugin, whose pytest-xdist
    workers each take the cases of their runs; the self-test): the golden a replay case reads, the matrix's runs a
    case reads, then what the kind delivers itself (:meth:`CheckKind.deliver`: an experiment's runs) — each from the
    result cache where present. The judge that follows only reads."""
    if kind.unavailable(session, case):
        return
    if kind.name == "replay":
        replay_goldens(session, [case.id], printer)
        return
    for model, _budget, seed in kind.runs(session, case):
        deliver(session.matrix, model, seed)
    if hasattr(kind, "deliver"):  # what the case reads beyond the matrix (a kind's own runs)
        kind.deliver(session, case, experiment_runner(session.matrix.options))


def experiment_runner(options):
    """How the execute stage trains an experiment's runs (trainguard.checks.declared_experiments): in this process, or
    with ``--executor ray`` one Ray task per (variant, seed) (trainguard.night.experiment_cluster)."""
    from ..checks.declared_experiments import local_runner, resolved, run_settings

    if options.executor != "ray":
        return local_runner

    def on_ray(session, found, target, seeds, store):  # a worker loads the target from its own directory
        from .experiment_cluster import runs_on_ray

        return runs_on_ray(found, resolved(session, target), seeds, store, options.ray, **run_settings(session))

    return on_ray


class LocalExecutor:
    """Trains in this process, one run after another (or a model's seeds at once with --stack-seeds), each from
    the result cache where present."""

    def __init__(self, printer=print) -> None:
        self.printer = printer

    def prepare(self) -> None:
        pass  # this process can always train

    def execute(self, plan: NightPlan, session) -> None:
        matrix = session.matrix
        for run in plan.runs:  # every cell is trained and reported, whichever checks are on
            deliver(matrix, run.model, run.seed)

