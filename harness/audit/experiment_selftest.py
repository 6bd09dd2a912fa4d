"""The self-test on any experiment: each regression it declares (``faults``, trainguard.core.experiment.Fault:
settings its function honours as the bug would act) injected alone, and which instrument catches it — the golden
replay (the first step that moved), the outcome bands, the claims.

What it measures: whether these instruments see *these* faults, at this baseline's noise and this night's seeds.
What it cannot say: anything about a regression the experiment did not declare, or one its function cannot express
through its settings; a fault the bands miss may still be real (its shift below the printed MDE). Faulted runs are
never cached or recorded: they would otherwise be read back as the code's own results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..checks.experiment_bands import BandVerdict, bands
from ..checks.experiment_claims import ClaimVerdict
from ..checks.experiment_references import assertions
from ..core.experiment import Experiment, Fault
from ..replay.experiment_replay import ReplayOutcome, compare, golden_run
from ..runs.experiment_runs import train
from ..stores.experiment_records import ExperimentStore, Record

WHAT_IT_SEES = ("What it measures: whether these instruments see *these* faults, at this baseline's noise and this "
                "night's seeds. What it cannot say: anything about a regression the experiment did not declare, or one "
                "its function cannot express through its settings; a fault the bands miss may still be real (its "
                "shift below the printed MDE).")


@dataclass
class FaultOutcome:
    experiment: str
    fault: Fault
    replay: list[ReplayOutcome] = field(default_factory=list)  # one per faulted variant with a golden run
    bands: list[BandVerdict] | None = None  # None: not measured (replay only, or no baseline)
    claims: list[ClaimVerdict] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def caught_by_replay(self) -> list[ReplayOutcome]:
        return [o for o in self.replay if not o.passed]

    @property
    def caught_by_bands(self) -> list:
        return [v for v in (self.bands or []) + (self.claims or []) if not v.passed]

    @property
    def caught(self) -> bool:
        return bool(self.caught_by_replay or self.caught_by_bands)

    @property
    def measured(self) -> bool:
        """Whether any instrument looked: a fault neither replayed nor banded is not missed, it is unmeasured."""
        return bool(self.replay) or self.bands is not None

    @property
    def result(self) -> str:
        return "caught" if self.caught else "MISSED" if self.measured else "not measured"


def faulted_variants(experiment: Experiment, fault: Fault) -> tuple[str, ...]:
    return fault.variants or tuple(experiment.variants)


def replay_under(experiment: Experiment, fault: Fault, store: ExperimentStore, device: str = "cpu",
                 data_dir=None) -> tuple[list[ReplayOutcome], list[str]]:
    """Each faulted variant's golden run retrained under the fault (at the golden's thread count) and compared."""
    outcomes, notes = [], []
    for variant in faulted_variants(experiment, fault):
        golden = store.golden(experiment.name, variant)
        if golden is None:
            notes.append(f"{variant}: no golden run in {store.root}" if experiment.replay_budget else
                         f"{variant}: no golden run (replay_budget 0)")
            continue
        now = golden_run(experiment, variant, golden.record.epochs_asked, golden.record.threads, device, data_dir,
                         overrides=fault.settings)
        outcomes.append(compare(experiment.name, golden, now))
    return outcomes, notes


def bands_under(experiment: Experiment, fault: Fault, baseline: dict, clean: dict[tuple[str, int], Record],
                threads: int = 1, device: str = "cpu", data_dir=None, alpha: float | None = None,
                printer=print) -> tuple[list[BandVerdict], list[ClaimVerdict]]:
    """The night's check seeds of the faulted variants trained under the fault; the other variants' runs are the
    clean night's (``clean``). Judged as the night judges: every band and every claim."""
    faulted = faulted_variants(experiment, fault)
    night = {key: record for key, record in clean.items() if key[0] not in faulted}
    seeds = sorted({seed for _, seed in clean})
    for variant in faulted:
        printer(f"[trainguard] selftest {experiment.name} {fault.name}: {variant} seeds {seeds}, "
                f"{max(experiment.budgets)} epoch(s)")
        for seed in seeds:
            night[(variant, seed)] = train(experiment, variant, seed, max(experiment.budgets), threads, device,
                                           data_dir, overrides=fault.settings)
    return bands(experiment, baseline, night, alpha=alpha), assertions(experiment, night)


def run_faults(experiment: Experiment, store: ExperimentStore, clean: dict | None, baseline: dict | None,
               threads: int = 1, device: str = "cpu", data_dir=None, names=(), alpha: float | None = None,
               printer=print) -> list[FaultOutcome]:
    """Every declared fault (or those ``names`` lists), one at a time. ``clean``/``baseline``: the night's and the
    baseline's runs; either None: replay only."""
    unknown = sorted(set(names) - {f.name for f in experiment.faults})
    if unknown:
        from ..core.errors import ConfigError

        raise ConfigError(f"{experiment.name}: no fault named {', '.join(unknown)}; it declares "
                          f"{', '.join(f.name for f in experiment.faults) or 'none'}")
    outcomes = []
    for fault in (f for f in experiment.faults if not names or f.name in names):
        replayed, notes = replay_under(experiment, fault, store, device, data_dir)
        outcome = FaultOutcome(experiment.name, fault, replayed, notes=notes)
        if clean is not None and baseline is not None:
            outcome.bands, outcome.claims = bands_under(experiment, fault, baseline, clean, threads, device, data_dir,
                                                        alpha, printer)
        outcomes.append(outcome)
    return outcomes


def replay_cell(outcome: FaultOutcome) -> str:
    if not outcome.replay:
        return "not replayed: " + "; ".join(outcome.notes) if outcome.notes else "not replayed"
    return "; ".join(f"{o.variant}: {o.status}" + (f" at step {o.step} ({o.series})" if o.step else "")
                     for o in outcome.replay)


def bands_cell(outcome: FaultOutcome) -> str:
    if outcome.bands is None:
        return "not measured"
    checked = len(outcome.bands) + len(outcome.claims or [])
    caught = outcome.caught_by_bands
    if not caught:
        return f"0 of {checked}: missed"
    names = [v.case if isinstance(v, BandVerdict) else v.name for v in caught]
    return f"{len(caught)} of {checked}: " + ", ".join(names[:6]) + (" …" if len(names) > 6 else "")


def line(outcome: FaultOutcome) -> str:
    """One fault's outcome as the commands print it (``trainguard guard … selftest``, ``trainguard selftest``), in the
    form the models' injections print theirs: result, what was injected, then each instrument's finding."""
    o = outcome
    return (f"{o.result}: {o.experiment} {o.fault.name} ({o.fault.description}) replay: {replay_cell(o)}; "
            f"bands and claims: {bands_cell(o)}")


def table(outcomes: list[FaultOutcome]) -> str:
    """The outcomes as a markdown table: one row per fault."""
    rows = ["| experiment | fault | what it changes | caught | replay | bands and claims |",
            "| --- | --- | --- | --- | --- | --- |"]
    rows += [f"| {o.experiment} | {o.fault.name} | {o.fault.description} | {o.result} | "
             f"{replay_cell(o)} | {bands_cell(o)} |" for o in outcomes]
    return "\n".join(rows)


def profile_faults(session, bands_too: bool = True, printer=print) -> tuple[list[FaultOutcome], list[str]]:
    """The faults of every experiment a profile declares, judged with the profile's own per-check false-alarm rate;
    (outcomes, notes on the experiments not injected)."""
    from ..checks import declared_experiments as declared
    from ..runs.experiment_runs import baseline_of, runs

    outcomes, notes = [], []
    for target in session.profile.experiments:
        found = declared.experiment(session, target)
        if why := found.unavailable() or (None if found.faults else "it declares no faults"):
            notes.append(f"experiment {found.name} not injected: {why}")
            continue
        settings = declared.run_settings(session)
        store = declared.baseline_store(session)
        baseline = baseline_of(found, store, settings["threads"])[0] if bands_too else None
        # seed by seed even with --stack-seeds: the faulted runs train so, and the bands compare like with like
        clean = runs(found, found.check_seeds, declared.night_store(session), **settings) if baseline is not None \
            else None
        if bands_too and baseline is None:
            notes.append(f"experiment {found.name}: no baseline in {store.root}: its faults were replayed only")
        outcomes += run_faults(found, store, clean, baseline, settings["threads"], settings["device"],
                               settings["data_dir"], alpha=session.alpha, printer=printer)
    return outcomes, notes


def section(outcomes: list[FaultOutcome], notes: list[str]) -> str:
    """The self-test report's part for declared experiments."""
    if not outcomes and not notes:
        return ""
    caught, measured = sum(o.caught for o in outcomes), sum(o.measured for o in outcomes)
    lines = ["## Declared experiments' faults", "",
             f"{caught} of {measured} declared fault(s) measured were caught (each trained under the fault alone; the bands "
             f"and claims are the night's, at its per-check false-alarm rate; nothing faulted is cached).", ""]
    if outcomes:
        lines += [table(outcomes), ""]
    lines += [f"- {note}" for note in notes] + ([""] if notes else []) + [WHAT_IT_SEES]
    return "\n".join(lines) + "\n"


def guard_selftest(experiment, store, common, names=(), replay_only: bool = False, report: Path | None = None) -> int:
    """``trainguard guard TARGET selftest``: each declared fault injected alone. Exit 0: every fault measured was
    caught; 1: one was missed; 5: nothing measured (no faults declared, or neither a golden run nor a baseline)."""
    from ..core.storage import atomic_write_text
    from ..night.guard import deliver_runs
    from ..runs.experiment_runs import baseline_of

    if not experiment.faults:
        print(f"{experiment.name} declares no faults (Experiment(faults=...)): nothing to inject")
        return 5
    baseline = None if replay_only else baseline_of(experiment, store, common["threads"])[0]
    if not replay_only and baseline is None:
        print(f"note: no baseline of {experiment.name} in {store.root}: replay only (run `trainguard guard TARGET "
              f"baseline` first for the bands)")
    clean = deliver_runs(experiment, experiment.check_seeds, store, common) if baseline is not None else None
    outcomes = run_faults(experiment, store, clean, baseline, common["threads"], common["device"],
                          common["data_dir"], names)
    for o in outcomes:
        print(line(o))
    measured = [o for o in outcomes if o.measured]
    missed = [o for o in measured if not o.caught]
    print(f"{len(measured) - len(missed)} of {len(measured)} fault(s) measured were caught"
          + (f"; {len(outcomes) - len(measured)} not measured (no golden run, no baseline)"
             if len(measured) < len(outcomes) else ""))
    if report is not None:
        atomic_write_text(report, f"# Self-test of {experiment.name}\n\n{table(outcomes)}\n\n{WHAT_IT_SEES}\n")
        print(f"report: {report}")
    return 1 if missed else 0 if measured else 5
