"""The library's entry point: run a profile, get a :class:`RunSummary`; render the report from it.

:func:`run_profile` is the night's four stages in order (trainguard.night): plan, execute, judge — the caller
records (:func:`publish`: the report, the ledger, JUnit, the job summary). Both front ends sit on it: the CLI calls
:func:`run_profile`; the pytest plugin plans and executes the same way, judges case by case as parametrized tests,
then calls :func:`summarize` on the verdicts its tests recorded.
"""

from __future__ import annotations

from pathlib import Path

from .checks import CheckSession
from .night.judge import RunSummary, night_result, statistics_summary, summarize, trend_bands, versions_line
from .night.record import export_to_mlflow, publish, report_files
from .runs.session import Matrix, Options

__all__ = ["Options", "RunSummary", "run_profile", "summarize", "publish", "night_result", "executor_for",
           "export_to_mlflow", "report_files", "statistics_summary", "trend_bands", "versions_line"]


def run_profile(options: Options, printer=print, progress_bar: bool = False,
                compare_with: Path | None = None, executor=None) -> RunSummary:
    """A night's plan, execute and judge stages: train the profile's cells for the checked seeds (or take them from
    the cache) after replaying its golden runs, run every check the profile enables, including Experiment 1
    (MNIST), and summarize (``compare_with``: an earlier run log or result directory, for the report's "changes
    since" table). Raises ConfigError / DataError on bad input; a failed check is a verdict, not an exception."""
    from .core import watchdog
    from .night.execute import execute
    from .night.plan import plan_night

    matrix = Matrix(options, printer=printer, progress_bar=progress_bar)
    session = CheckSession(matrix)
    plan = plan_night(session)  # every input read and checked before anything trains
    executor = executor or executor_for(options, printer)
    executor.prepare()  # an unusable executor (no Ray, a cluster address nobody answers at) fails now
    watchdog.start_night(options.time_limit)  # runs past it stop as timed out; the report is still written
    try:
        execute(plan, session, executor, printer)  # then the runs are closed: the judge only reads
        return summarize(session, session.verdicts(), session.notes, compare_with)
    finally:
        watchdog.end_night()
        matrix.close()


def executor_for(options: Options, printer=print):
    """The execute stage the options ask for: this process, or a Ray cluster (trainguard.night.cluster)."""
    if options.executor == "ray":
        from .night.cluster import RayExecutor

        return RayExecutor(options.ray, printer)
    from .night.execute import LocalExecutor

    return LocalExecutor(printer)
