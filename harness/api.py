"""The library's entry point: run a profile, get a :class:`RunSummary`; render the report from it.

:func:`run_profile` is the night's four stages in order (trainguard.night): plan, execute, judge — the caller
records (:func:`publish`: the report, the ledger, JUnit, the job summary). Both front ends sit on it: the CLI calls
:func:`run_profile`; the pytest plugin plans and executes the same way, judges case by case as parametrized tests,
then calls :func:`summarize` on the verdicts its tests recorded.
"""

from __future__ import annotations

from pathlib import Path

from .night.execute import executor_for
from .night.judge import RunSummary, night_result, statistics_summary, summarize, trend_bands, versions_line
from .night.record import export_to_mlflow, publish, report_files
from .night.night import Night
from .runs.options import Options

__all__ = ["Options", "RunSummary", "run_profile", "summarize", "publish", "night_result", "executor_for",
           "export_to_mlflow", "report_files", "statistics_summary", "trend_bands", "versions_line"]


def run_profile(options: Options, printer=print, progress_bar: bool = False,
                compare_with: Path | None = None, executor=None) -> RunSummary:
    """A night (trainguard.night.night.Night): plan, execute — the golden replays, then the profile's cells for the
    checked seeds trained or taken from the cache, and the declared experiments' runs —, judge every check the profile
    enables, and summarize (``compare_with``: an earlier run log or result directory, for the report's "changes
    since" table). Record it with :func:`publish`. Raises ConfigError / DataError on bad input; a failed check is
    a verdict, not an exception."""
    return Night(options, printer, progress_bar).run(compare_with, executor)
