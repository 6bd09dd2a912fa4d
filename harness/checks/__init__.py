"""Check kinds: one module per kind, one protocol, one judging policy.

A **kind** (:class:`CheckKind`) says which **cases** a profile has (what the pytest plugin parametrizes:
``NewModel2-20``, ``ranking@10``), how many **band checks** it makes (the run's false-alarm rate is split
over every enabled kind's), what **reference** it compares with (a stored baseline, a published table, or
none), which **runs** a case reads, and turns a case into **verdicts**; optionally its **part** of the report
(:class:`Part`: sections beyond the verdicts, which every report lists). Everything else — a stopped run, a
missing reference, strict mode, the false-alarm split, reading each reference once — is the one policy in
:meth:`CheckSession.judge`, which the CLI, the pytest plugin, ``selftest`` and the report all go through.

Adding a kind: one module with a subclass, one line in :data:`trainguard.core.registry.BUILTIN` (trainguard's own)
or ``trainguard.checks.register(MyKind)`` / an entry point (anyone's), then ``checks = ["...", "mine"]`` in
the profile. docs/architecture.md walks through one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from ..core.compare import flag_fails, missing_fails, settle
from ..core.registry import load, names, register, unregister
from ..core.spec import ConfigError

if TYPE_CHECKING:  # the plugin imports this package at start-up: nothing heavy at import time
    from ..core.compare import Verdict

__all__ = ["Case", "CheckKind", "CheckSession", "Judgement", "Part", "Reference", "enabled_kinds", "per_check_alpha",
           "register", "unregister", "names"]

STRICT_NOTE = "(strict: CI=true or --tg-strict)"


@dataclass(frozen=True)
class Case:
    """One parametrized case of a kind: ``id`` is its pytest id, ``group`` the training run it reads (one
    pytest-xdist worker and one shard per group; ``cross-model`` for cases that read every model's runs)."""

    kind: str
    id: str
    group: str = "cross-model"
    params: tuple = ()


@dataclass(frozen=True)
class Reference:
    """What a kind compares with: ``value`` (a baseline table, a published table, ...), or why there is none
    (``missing``: the reason and the command that creates it)."""

    value: object = None
    missing: str | None = None


class Part:
    """A kind's own part of the report, beyond its verdicts: plain data gathered when the run's checks are done
    (:meth:`CheckKind.summary_part`), rendered from the summary alone, so a report re-renders without the run."""

    def sections(self, summary, path, figures: bool) -> list[str]:
        """Markdown sections for the report at ``path`` (``figures``: PNGs may be drawn beside it)."""
        return []


@dataclass
class Judgement:
    verdicts: list = field(default_factory=list)
    skipped: str | None = None  # why the case checked nothing (a note in the report; a skip in pytest)


class CheckKind:
    """The protocol of a check kind. Subclass it, set ``name``, implement :meth:`cases` and :meth:`verdicts`;
    override the rest where the kind has them."""

    name: ClassVar[str] = ""
    # "none": no reference; "stored": measured by `trainguard baselines update` (missing: noted, strict fails);
    # "shipped": travels with trainguard or the profile (missing: always fails)
    reference_policy: ClassVar[str] = "none"
    # True: what the kind sees is a change that need not matter (the replay's): its failures are flagged, failing
    # only a night that fails on them (trainguard.core.compare.flag_fails)
    flags: ClassVar[bool] = False
    # True: the execute stage delivers its cases (:meth:`deliver`) before anything trains, as the models' golden
    # replays are: seconds, whose verdict is known before the first epoch of the night's runs
    before_training: ClassVar[bool] = False

    def enabled(self, profile) -> bool:
        return self.name in profile.checks

    def active(self, options) -> bool:
        """Whether this night's options leave the enabled kind on (``--no-replay`` turns the replay off)."""
        return True

    def band_checks(self, profile) -> int:
        """How many band checks a whole run makes (their share of the false-alarm rate); 0 for exact checks."""
        return 0

    def cases(self, profile) -> list[Case]:
        raise NotImplementedError

    def unavailable(self, session: "CheckSession", case: Case) -> str | None:
        """Why ``case`` cannot be checked here (a framework not installed); None when it can."""
        return None

    def runs(self, session: "CheckSession", case: Case) -> list[tuple[str, int, int]]:
        """The (model, budget, seed) results ``case`` reads: a run that stopped before its budget fails it first."""
        return []

    def stopped_runs(self, session: "CheckSession", case: Case) -> list:
        """Histories ``case`` reads outside the matrix of models that did not complete: they fail the case first,
        each with why (a timeout, a hung child), as a stopped run of :meth:`runs` does."""
        return []

    def deliver(self, session: "CheckSession", case: Case, runner=None) -> None:
        """The execute stage's part for ``case`` beyond the matrix's runs (:meth:`runs`): train or read from the cache
        whatever else its verdicts read — an experiment's runs, by ``runner`` (the execute stage's: in this process or
        on Ray; None: in this process). Judging then only reads."""

    def reference_key(self, case: Case):
        """Cases with the same key share one reference (read once per run)."""
        return None

    def reference(self, session: "CheckSession", case: Case) -> Reference:
        return Reference()

    def verdicts(self, session: "CheckSession", case: Case, reference) -> list[Verdict]:
        raise NotImplementedError

    def update(self, session: "CheckSession") -> list[str]:
        """Measure and write the kind's stored reference (``trainguard baselines update``); what changed."""
        return []

    def summary_part(self, session: "CheckSession") -> Part | None:
        """What the kind adds to the report once the run's checks are done (None: its verdicts say it all)."""
        return None


def record(into: list[Verdict], verdicts) -> list[Verdict]:
    """Append ``verdicts`` to ``into`` once each: a missing reference is one verdict however many cases read it,
    and every case that reads it returns that same object."""
    into.extend(v for v in verdicts if not any(v is r for r in into))
    return into


def enabled_kinds(profile) -> list[CheckKind]:
    """The profile's kinds, in the registry's order. An unknown name is a ConfigError naming the known ones."""
    for name in profile.checks:
        if name not in names():
            raise ConfigError(f"{profile.source or profile.name}: unknown check {name!r}; known: {', '.join(names())}")
    return [kind for kind in (load(name) for name in names()) if kind.enabled(profile)]


def band_check_count(profile) -> int:
    """Band checks a whole run of the profile makes: the false-alarm rate is split over these."""
    return sum(kind.band_checks(profile) for kind in enabled_kinds(profile))


def per_check_alpha(profile) -> float:
    from ..core.stats import per_check_alpha as split

    return split(profile.statistics.false_alarm_rate, band_check_count(profile))


class CheckSession:
    """One run's checks over its runs (a :class:`trainguard.runs.matrix.Matrix`): the enabled kinds, their references
    (read once), and the judging policy."""

    def __init__(self, matrix) -> None:
        self.matrix = matrix
        self.profile = matrix.profile
        self.kinds = [kind for kind in enabled_kinds(self.profile) if kind.active(matrix.options)]
        self.replays: dict = {}  # golden name (and "inputs") → its replay's Outcome, from the execute stage
        self.source_logs: list = []  # the run logs the stored runs came from (baselines update --from-log)
        self.rerendered = False  # `trainguard report`: nothing trains; what was not stored is not checked
        self._references: dict = {}
        self._missing: dict = {}  # one failing verdict per missing reference, however many cases read it
        self.notes: list[str] = []  # why cases checked nothing, in the order met

    # ------------------------------------------------------------------ what kinds read

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.matrix.seeds

    @property
    def strict(self) -> bool:
        return self.matrix.options.strict

    @functools.cached_property
    def alpha(self) -> float:
        """The per-check false-alarm rate, split over the enabled kinds' band checks (once: every band reads it)."""
        return per_check_alpha(self.profile)

    def kind(self, name: str) -> CheckKind | None:
        return next((k for k in self.kinds if k.name == name), None)

    def reference(self, kind: CheckKind, case: Case | None = None) -> Reference:
        """The kind's reference for ``case``, read once per run (a malformed one raises ConfigError: never a skip)."""
        key = (kind.name, kind.reference_key(case) if case is not None else None)
        if key not in self._references:
            self._references[key] = kind.reference(self, case)
        return self._references[key]

    def forget_references(self) -> None:
        """After an update rewrote them: read again on next use (and judge again what was judged against them)."""
        self._references.clear()
        self._missing.clear()
        self.__dict__.pop("experiment_verdicts", None)

    # ------------------------------------------------------------------ the policy

    def cases(self) -> list[tuple[CheckKind, Case]]:
        return [(kind, case) for kind in self.kinds for case in kind.cases(self.profile)]

    def run_failures(self, runs) -> list[Verdict]:
        """A failing verdict for each run that stopped (diverged, out of memory, missing) before its budget."""
        from ..core.compare import Verdict
        from ..runs.matrix import describe_stop

        failures = []
        for model, budget, seed in dict.fromkeys(runs):
            history = self.matrix.history(model, seed)
            if len(history.epochs) < budget:
                failures.append(Verdict("run", f"{model}-{budget}", False,
                                        f"{describe_stop(history)}; no {budget}-epoch result", model=model, budget=budget))
        return failures

    def stopped_failures(self, histories) -> list[Verdict]:
        from ..core.compare import Verdict
        from ..runs.matrix import describe_stop

        return [Verdict("run", f"{h.model}-seed{h.seed}", False, describe_stop(h)) for h in histories]

    def judge(self, kind: CheckKind, case: Case) -> Judgement:
        """The one judging policy: a case that cannot run here is skipped with the reason; a stopped run fails
        the case; a missing reference fails it where the kind ships one or the run is strict, else the case is
        skipped with the command that creates it; otherwise the kind's verdicts, a flagging kind's failures flagged
        where they do not fail this night. It only reads: a run the execute stage did not deliver is a "missing"
        run here, never trained (trainguard.night.execute runs a night's, or one case's, runs first)."""
        if reason := kind.unavailable(self, case):
            return self._skip(reason)
        if failures := self.run_failures(kind.runs(self, case)) + self.stopped_failures(kind.stopped_runs(self, case)):
            return Judgement(failures)
        reference = Reference()
        if kind.reference_policy != "none":
            reference = self.reference(kind, case)
            if reference.missing:
                if missing_fails(self.strict, shipped=kind.reference_policy == "shipped"):
                    return Judgement([self._missing_verdict(kind, case, reference)])
                return self._skip(reference.missing)
        verdicts = list(kind.verdicts(self, case, reference.value))
        if kind.flags:
            options = self.matrix.options
            verdicts = [settle(v, flag_fails(kind.name, options.strict, options.fail_on)) for v in verdicts]
        return Judgement(verdicts)

    def verdicts(self) -> list[Verdict]:
        """Every case of every enabled kind, judged (the CLI; the plugin judges case by case)."""
        verdicts = []
        for kind, case in self.cases():
            record(verdicts, self.judge(kind, case).verdicts)
        return verdicts

    def _skip(self, reason: str) -> Judgement:
        if reason not in self.notes:
            self.notes.append(reason)
        return Judgement(skipped=reason)

    def _missing_verdict(self, kind: CheckKind, case: Case, reference: Reference):
        from ..core.compare import Verdict

        key = (kind.name, kind.reference_key(case))
        if key not in self._missing:
            strict = f" {STRICT_NOTE}" if kind.reference_policy != "shipped" else ""
            self._missing[key] = Verdict(kind.name, kind.name if key[1] is None else f"{kind.name}-{key[1]}", False,
                                         f"{reference.missing}{strict}")
        return self._missing[key]

    # ------------------------------------------------------------------ updates

    def update(self, names_: list[str] | None = None) -> list[str]:
        """The one way references are rewritten (``trainguard baselines update``, ``--tg-update-baselines``,
        ``trainguard_night``): measure every enabled kind's stored reference (or those named) — the per-seed
        baseline, the declared experiments' baselines, the golden runs — then read them again. What changed, line by line."""
        lines = []
        for kind in self.kinds:
            if kind.reference_policy == "stored" and (names_ is None or kind.name in names_):
                lines += kind.update(self)
        self.forget_references()
        return lines
