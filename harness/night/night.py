"""One night, whichever front end runs it: the object both build.

`trainguard run` calls :meth:`Night.run` (plan, execute, judge, summarize; the caller records). The pytest plugin
holds one for its session and calls the same stages from its hooks: :meth:`check` executes and judges one case
(pytest-xdist hands each worker the cases of its runs), :meth:`payload` / :meth:`merge` carry what a worker found
to the controller, and :meth:`summary` is the night's summary, recorded by :func:`trainguard.night.record.publish`
as the CLI records it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..checks import CheckSession, Judgement, record
from ..runs.matrix import Matrix
from ..runs.options import Options
from .execute import execute, execute_case, executor_for
from .judge import RunSummary, summarize
from .plan import NightPlan, plan_night


class Night:
    """A night's runs (:class:`~trainguard.runs.matrix.Matrix`), its checks (:class:`~trainguard.checks.CheckSession`)
    and what its judge found: the verdicts and the report's notes."""

    def __init__(self, options: Options, printer=print, progress_bar: bool = False) -> None:
        self.options, self.printer = options, printer
        self.matrix = Matrix(options, printer=printer, progress_bar=progress_bar)
        self.checks = CheckSession(self.matrix)
        self.verdicts: list = []
        self.notes: list[str] = []  # why a case checked nothing, where the runs trained: the report prints them

    # ------------------------------------------------------------------ the stages

    def plan(self) -> NightPlan:
        """Every run, experiment and golden replay of the night, every input read and checked (ConfigError / DataError)."""
        return plan_night(self.checks)

    def execute(self, plan: NightPlan, executor=None) -> None:
        """The golden replays, every planned run (this process, or the options' executor), then the runs closed."""
        executor = executor or executor_for(self.options, self.printer)
        execute(plan, self.checks, executor, self.printer)

    def judge(self) -> list:
        """Every case of every enabled kind, judged (the runs executed before)."""
        record(self.verdicts, self.checks.verdicts())
        return self.verdicts

    def check(self, kind, case, keep: bool = True) -> Judgement:
        """One case: its runs executed (from the cache where present), then judged; its verdicts kept for the
        report (``keep``)."""
        execute_case(self.checks, kind, case, self.printer)
        judgement = self.checks.judge(kind, case)
        if keep:
            record(self.verdicts, judgement.verdicts)
        return judgement  # why a case checked nothing is in self.checks.notes (the judge noted it)

    def summary(self, compare_with: Path | None = None) -> RunSummary:
        """What the report shows, from the verdicts judged (here or merged from elsewhere)."""
        notes = list(dict.fromkeys(self.notes + self.checks.notes))
        return summarize(self.checks, self.verdicts, notes, compare_with)

    def run(self, compare_with: Path | None = None, executor=None) -> RunSummary:
        """`trainguard run`: plan (every input checked before anything trains), execute within the night's time
        limit, judge, summarize. Raises ConfigError / DataError on bad input; a failed check is a verdict."""
        from ..core import watchdog

        try:
            plan = self.plan()
            executor = executor or executor_for(self.options, self.printer)
            executor.prepare()  # an unusable executor (no Ray, a cluster address nobody answers at) fails now
            watchdog.start_night(self.options.time_limit)  # runs past it stop as timed out; the report is still written
            try:
                self.execute(plan, executor)
                self.judge()
                return self.summary(compare_with)
            finally:
                watchdog.end_night()
        finally:
            self.close()

    # ------------------------------------------------------------------ references

    def update_references(self, names: list[str] | None = None) -> list[str]:
        """Rewrite the enabled kinds' stored references (or those named): what changed, line by line."""
        from .execute import LocalExecutor
        from .plan import plan_baselines

        if note := self.matrix.redirect_writes():
            self.printer(f"[trainguard] {note}")
        plan = plan_baselines(self.checks)  # the runs the references measure; those delivered are not retrained
        wanted = set(names) if names is not None else {kind.name for kind in self.checks.kinds}
        plan = dataclasses.replace(plan, runs=plan.runs if "baseline" in wanted else ())
        LocalExecutor(self.printer).execute(plan, self.checks)
        return self.checks.update(names)

    # ------------------------------------------------------------------ a night of several processes

    def payload(self) -> dict:
        """What this process found, as plain JSON-able data (a pytest-xdist worker hands it to the controller)."""
        import dataclasses

        return {
            "verdicts": [dataclasses.asdict(v) for v in self.verdicts],
            "replay": [o.to_json() for o in self.checks.replays.values()],
            "notes": list(dict.fromkeys(self.notes + self.checks.notes)),
            "histories": [h.to_json() for h in self.matrix.histories.values()],
            # the declared experiments' runs (target → records): the controller's report tables them
            "experiment_runs": {target: [r.to_json() for r in runs.values()]
                                for target, runs in self._experiment_runs().items()},
            # their golden replays (target → outcomes): the controller's night record keeps them for the dashboard
            "experiment_replays": {target: [dataclasses.asdict(o) for o in outcomes]
                                   for target, outcomes in self.checks.__dict__.get("experiment_replays", {}).items()},
        }

    def _experiment_runs(self) -> dict:
        return self.checks.__dict__.setdefault("experiment_runs", {})

    def merge(self, payload: dict) -> None:
        """Add what another process of this night found (its :meth:`payload`)."""
        from ..core.compare import Verdict
        from ..core.history import History
        from ..stores.experiment_records import Record
        from ..stores.golden import Outcome

        self.verdicts += [Verdict(**v) for v in payload["verdicts"]]
        self.notes += [n for n in payload["notes"] if n not in self.notes]
        self.matrix.preload({(h.model, h.seed): h for h in map(History.from_json, payload["histories"])})
        self.checks.replays.update({o["name"]: Outcome.from_json(o) for o in payload.get("replay", [])})
        from ..replay.experiment_replay import ReplayOutcome

        replays = self.checks.__dict__.setdefault("experiment_replays", {})
        replays.update({target: [ReplayOutcome(**o) for o in outcomes]
                        for target, outcomes in payload.get("experiment_replays", {}).items()})
        for target, records in payload.get("experiment_runs", {}).items():
            runs = self._experiment_runs().setdefault(target, {})
            for run in (Record.from_json(r, Path(f"payload of {target}")) for r in records):
                runs[(run.variant, run.seed)] = run

    @property
    def ran_anything(self) -> bool:
        """Did this night hold any run of a model or of a declared experiment (else there is nothing to report)?"""
        return bool(self.matrix.histories or any(self._experiment_runs().values()))

    def close(self) -> None:
        self.matrix.close()
