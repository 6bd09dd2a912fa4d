"""Experiments a profile declares (``experiments = ["guard.py:mine"]``) guarded by the night itself, beside its models:
the same instruments as ``trainguard guard`` — every declared metric at every budget in every variant inside the
band of the stored baseline seeds (with its MDE), every declared claim — judged by the night's one policy, reported
in its report, JUnit and exit code.

One case per experiment (``test_…[mine]``: collecting a profile's cases imports none of the user's code). The
baseline seeds' runs are the stored reference (``baselines/<profile>/experiments/``, written by ``trainguard
baselines update``), keyed by the experiment's source: changed code has no baseline until it is measured again.
The check seeds' runs go to the result cache (``<results>/experiments/``). The bands take their share of the
profile's false-alarm rate (its band checks count them).

What it sees: a metric's mean moved beyond seed noise, a claim that flipped. What it cannot see: a shift smaller
than the printed MDE; the step-by-step replay of an experiment is ``trainguard guard TARGET replay``, not this kind.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..core.compare import Verdict
from ..core.errors import ConfigError
from ..core.spec import model_search_paths
from . import Case, CheckKind, Part, Reference


def _name(target: str) -> str:
    return target.rpartition(":")[2]


def _in_home(target: str, home: str) -> str:
    """A FILE.py:NAME target relative to the profile's directory (``home``) as home/FILE.py:NAME; any other as it is
    (a FILE.py relative to the working directory, an absolute one, a MODULE:NAME)."""
    where, _, name = target.rpartition(":")
    if where.endswith(".py") and not Path(where).is_absolute() and (Path(home) / where).is_file():
        return f"{Path(home) / where}:{name}"
    return target


def _home(profile) -> str:
    """The profile's directory, where its FILE.py experiment targets are looked for first."""
    return str(model_search_paths(profile)[0])


def _load(target: str, home: str):
    """The experiment ``target``; a FILE.py target relative to the profile's directory (``home``), else the working
    directory's."""
    from ..core.experiment import load_experiment

    return load_experiment(_in_home(target, home))


def resolved(session, target: str) -> str:
    """The target as another process in another directory loads it (a Ray worker, the lower-ISA replay's child): a
    FILE.py relative to the profile's directory by its full path; a MODULE:NAME as it is."""
    found = _in_home(target, _home(session.profile))
    if found == target:
        return target
    where, _, name = found.rpartition(":")
    return f"{Path(where).resolve()}:{name}"


def experiment(session, target: str):
    """The experiment ``target``, loaded once per session (the execute stage and the judge read the same object), with
    the night's ``--seeds`` as its check seeds where they are given."""
    loaded = session.__dict__.setdefault("declared_experiments", {})
    if target not in loaded:
        loaded[target] = _with_night_seeds(session, _load(target, _home(session.profile)))
    return loaded[target]


def _with_night_seeds(session, found):
    """``--seeds`` (``--tg-seeds``) checks other held-out seeds than the experiment's own, as it does a profile's
    models'; a seed of its baseline is refused, naming it, unless ``--allow-baseline-seeds`` (it cannot fail)."""
    import copy

    options = session.matrix.options
    if not options.seeds:
        return found
    seeds = tuple(options.seeds)
    overlap = sorted(set(seeds) & set(found.baseline_seeds))
    if overlap and not options.allow_baseline_seeds:
        raise ConfigError(f"--seeds: seed(s) {', '.join(map(str, overlap))} are in experiment {found.name}'s "
                          f"baseline_seeds: a run checked against a baseline that contains it cannot fail, so it "
                          f"proves nothing. Check held-out seeds (its check_seeds {list(found.check_seeds)}, or "
                          f"others), or pass --tg-allow-baseline-seeds to reproduce a baseline seed on purpose")
    night = copy.copy(found)
    object.__setattr__(night, "check_seeds", seeds)  # validated above (an Experiment refuses baseline seeds itself)
    return night


def stacked(session, found) -> bool:
    """Whether ``found``'s runs train stacked this night: ``--stack-seeds`` and the experiment offers
    ``train_stacked`` (one without it trains seed by seed, as it always does, and the night's notes say so)."""
    if not session.matrix.options.stack_seeds or session.matrix.options.executor == "ray" or found is None:
        return False
    if found.train_stacked is None:
        note = f"experiment {found.name} offers no train_stacked: --stack-seeds trains its runs one seed at a time"
        if note not in session.notes:
            session.notes.append(note)
        return False
    return True


def baseline_store(session, found=None):
    """The baseline runs and golden runs of the declared experiments; ``found``'s stacked runs (``--stack-seeds``)
    apart in ``stacked/``, with a baseline of their own (stacked arithmetic rounds differently)."""
    from ..stores.experiment_records import ExperimentStore

    root = session.matrix.references.directory / "experiments"
    return ExperimentStore(root / "stacked" if stacked(session, found) else root, **_arithmetic(session))


def night_store(session, found=None):
    """The check seeds' runs: the result cache's, or (no cache) a folder of this process's own; stacked runs apart."""
    from ..stores.experiment_records import ExperimentStore

    root = session.matrix.options.results_dir
    if root is None:  # one folder per session, so what the execute stage trained the judge reads
        if getattr(session, "experiment_scratch", None) is None:
            session.experiment_scratch = tempfile.mkdtemp(prefix="trainguard-experiments-")
        root = session.experiment_scratch
    root = Path(root) / "experiments"
    return ExperimentStore(root / "stacked" if stacked(session, found) else root, **_arithmetic(session))


def _arithmetic(session) -> dict:
    """The night's device type and arithmetic (--precision, --compile): which runs its stores hold."""
    options = session.matrix.options
    return dict(device=session.matrix.device.type, precision=options.precision, compile=bool(options.compile))


def _cannot_run(session, found) -> str | None:
    """Why ``found`` cannot train this night: its ``requires`` unmet, or an arithmetic (--precision, --compile) it
    does not declare it honours; None when it can."""
    options = session.matrix.options
    return found.unavailable() or found.refuses(options.precision, bool(options.compile))


def run_settings(session) -> dict:
    """How the night trains an experiment's runs: its thread count, device type, arithmetic, data folder and time
    left."""
    import time

    from ..core import watchdog

    matrix, left = session.matrix, watchdog.remaining()
    return dict(threads=matrix.threads, **_arithmetic(session), data_dir=matrix.options.data_dir,
                printer=matrix.printer, deadline=None if left is None else time.monotonic() + left)


def local_runner(session, found, target: str, seeds, store) -> dict:
    """The runs of ``seeds``, from ``store`` or trained in this process (runs.experiment_runs, the one way)."""
    from ..runs.experiment_runs import runs

    return runs(found, seeds, store, stacked=stacked(session, found), **run_settings(session))


def night_runs(session, target: str) -> dict | None:
    """The check seeds' runs of ``target`` this night: as the execute stage delivered them, else as the result cache
    holds them (a re-render, another process's night); None when neither has them all."""
    from ..runs.experiment_runs import stored

    delivered = session.__dict__.setdefault("experiment_runs", {})
    if target not in delivered:
        found = experiment(session, target)
        runs = stored(found, found.check_seeds, night_store(session, found), session.matrix.threads)
        if runs is None:
            return None
        delivered[target] = runs  # read once per session: the verdicts, ledger, drift and report all ask
    return delivered[target]


def reference_runs(session, target: str) -> dict:
    """The runs of the references' own seeds (trainguard.checks.experiment_references.seeds_to_train): as the execute
    stage delivered them, else those the result cache holds ({} where none; a reference missing its runs fails)."""
    from ..runs.experiment_runs import stored

    own = session.__dict__.setdefault("experiment_reference_runs", {})
    if target not in own:
        from .experiment_references import seeds_to_train

        found = experiment(session, target)
        store, threads = night_store(session, found), session.matrix.threads
        own[target] = {key: record for seed in seeds_to_train(found)
                       for key, record in (stored(found, (seed,), store, threads) or {}).items()}
    return own[target]


def _nights(session) -> dict:
    """target → its check seeds' runs, for every declared experiment that has them."""
    found = {target: night_runs(session, target) for target in session.profile.experiments}
    return {target: runs for target, runs in found.items() if runs is not None}


def night_training(session) -> tuple[float, int]:
    """(seconds, runs) of the declared experiments' check-seed runs trained by this process tonight: their epochs'
    seconds as stated (Run.epoch_time) or timed between reports, a run's whole time where it kept none."""
    runs = [r for night in _nights(session).values() for r in night.values() if getattr(r, "trained_here", False)]
    return sum(sum(r.epoch_seconds) if r.epoch_seconds else r.seconds for r in runs), len(runs)


def night_cells(session) -> dict:
    """What the ledger records of the declared experiments this night: name → variant → budget → metric → seed →
    value, for each variant whose check seeds' runs all completed (a failed run measured nothing)."""
    from .experiment_night import variant_cells

    cells = {}
    for target, runs in _nights(session).items():
        found = experiment(session, target)
        if mine := variant_cells(found, runs):
            cells[found.name] = mine
    return cells


def night_bands(session, verdicts) -> dict:
    """What the dashboard shades behind each declared experiment's trend charts: name → metric → {"VARIANT-BUDGET":
    [low, high]} from this night's band verdicts, every declared metric judged (none where nothing was), in the form
    a guard night records (trainguard.checks.experiment_night.every_metric_bands)."""
    from .experiment_night import every_metric_bands

    found = {}
    for target in session.profile.experiments:
        name = experiment(session, target).name
        found.update(every_metric_bands(name, (
            (v.metric, v.model, v.budget, v.expected - v.allowed, v.expected + v.allowed) for v in verdicts
            if v.check == "experiment" and v.expected is not None and v.subject == f"{name}-{v.model}-{v.budget}")))
    return found


def night_speed(session) -> dict:
    """"NAME VARIANT" → each declared experiment's variant's median seconds per epoch of the runs trained in this
    process tonight ({"trained": False} where they came from the cache): the speed check reads them beside the
    models', against earlier nights on the same hardware."""
    from .experiment_night import variant_speed

    found = {}
    for target, runs in _nights(session).items():
        mine = experiment(session, target)
        found.update(variant_speed(mine, runs, prefix=f"{mine.name} "))
    return found


def night_sources(session) -> dict:
    """name → the source fingerprint of each declared experiment checked this night (drift names a changed one)."""
    return {experiment(session, target).name: experiment(session, target).source_fingerprint()
            for target in _nights(session)}


def baseline_tables(session) -> dict:
    """name → the baseline seeds' values of each declared experiment with a baseline (drift reads its seed noise)."""
    from ..runs.experiment_runs import baseline_of
    from .experiment_night import ExperimentTable

    tables = {}
    for target in _nights(session):
        found = experiment(session, target)
        baseline, _ = baseline_of(found, baseline_store(session, found), session.matrix.threads)
        if baseline is not None:
            tables[found.name] = ExperimentTable(baseline, found)
    return tables


class DeclaredExperiments(CheckKind):
    name = "experiments"
    reference_policy = "stored"

    def enabled(self, profile) -> bool:
        return bool(profile.experiments)

    def band_checks(self, profile) -> int:
        from ..checks.experiment_bands import check_count

        return sum(check_count(_load(target, _home(profile))) for target in profile.experiments)

    def cases(self, profile) -> list[Case]:
        """One case per experiment × variant × budget (its bands there: ``torch-dropout-10``), then one for the
        experiment's claims and checked references (``torch-claims``), grouped by experiment (its runs train once)."""
        from ..checks.experiment_references import checked_names

        found = []
        for target in profile.experiments:
            mine, group = _load(target, _home(profile)), f"experiment-{_name(target)}"
            found += [Case(self.name, f"{_name(target)}-{variant}-{budget}", group, (target, variant, budget))
                      for variant in mine.variants for budget in sorted(mine.budgets)]
            if mine.claims or checked_names(mine):
                found.append(Case(self.name, f"{_name(target)}-claims", group, (target, None, None)))
        return found

    def unavailable(self, session, case) -> str | None:
        """Its ``requires`` unmet; or, in a re-render (``trainguard report``: nothing trains), its check seeds' runs
        not in the result cache — a run log holds the models' runs only."""
        found = experiment(session, case.params[0])
        if why := _cannot_run(session, found):
            return why
        if session.rerendered and night_runs(session, case.params[0]) is None:
            return (f"experiment {found.name}: its check seeds' runs are not in the result cache (--results-dir); a "
                    f"re-render reads them from there only (run logs hold the models' runs)")
        return None

    def deliver(self, session, case, runner=local_runner) -> None:
        """The check seeds' runs, by ``runner`` (the execute stage's: in this process, or Ray tasks); kept for the
        judge with those that failed (a failed run is never cached, but its message is the verdict's)."""
        from .experiment_references import seeds_to_train

        found, target = experiment(session, case.params[0]), case.params[0]
        delivered = session.__dict__.setdefault("experiment_runs", {})
        if target not in delivered:
            delivered[target] = (runner or local_runner)(session, found, target, found.check_seeds,
                                                         night_store(session, found))
        own = session.__dict__.setdefault("experiment_reference_runs", {})
        if target not in own and seeds_to_train(found):  # the references' seeds, apart: the bands never read them
            own[target] = (runner or local_runner)(session, found, target, seeds_to_train(found),
                                                   night_store(session, found))

    def reference_key(self, case):
        return case.params[0] if case is not None else None

    def reference(self, session, case) -> Reference:
        from ..runs.experiment_runs import baseline_of

        found = experiment(session, case.params[0])
        baseline, other_code = baseline_of(found, baseline_store(session, found), session.matrix.threads)
        if baseline is not None:
            if other_code and other_code not in session.notes:
                session.notes.append(other_code)
            return Reference(baseline)
        where = baseline_store(session, found).root
        return Reference(missing=f"experiment {found.name}: no baseline in {where}; measure it "
                                 f"with trainguard baselines update --profile {session.profile.cli_name}")

    def verdicts(self, session, case, baseline) -> list[Verdict]:
        """The case's share of its experiment's verdicts: the bands of its variant at its budget (the start of the
        curve kept with the smallest budget), or the claims; the experiment's verdicts are derived once a night."""
        target, variant, budget = case.params
        every = self._judged(session, target, baseline)
        if len(every) == 1 and every[0].check == "run":
            return every  # its runs were not delivered: every case of it says so (one verdict)
        if variant is None:
            return [v for v in every if v.check == "experiment_claim"]
        subject = f"{experiment(session, target).name}-{variant}-{budget}"
        return [v for v in every if v.check == "experiment" and v.subject == subject]

    @staticmethod
    def _judged(session, target: str, baseline) -> list[Verdict]:
        from ..checks.experiment_bands import bands
        from ..checks.experiment_references import assertions, pool_of

        judged = session.__dict__.setdefault("experiment_verdicts", {})
        if target in judged:
            return judged[target]
        found = experiment(session, target)
        night = night_runs(session, target)
        if night is None:  # the execute stage did not deliver them: a failed run, never trained here
            judged[target] = [Verdict("run", f"{found.name}-runs", False, f"experiment {found.name}: its check seeds' "
                                                                         f"runs were not delivered by the execute stage")]
            return judged[target]
        checked = bands(found, baseline, night, power=session.profile.statistics.power, alpha=session.alpha)
        judged[target] = (
            [Verdict("experiment", f"{found.name}-{v.variant}-{v.budget}", v.passed, f"{found.name} {v.message}",
                     model=v.variant, metric=v.metric, budget=v.budget, measured=v.value,
                     expected=v.band.center if v.band else None, allowed=v.band.halfwidth if v.band else None,
                     mde=v.band.mde if v.band else None)
             for v in checked]
            + [Verdict("experiment_claim", f"{found.name}: {c.name}", c.passed, f"{found.name}: {c.message}")
               for c in assertions(found, night, pool_of(night, baseline, reference_runs(session, target)))])
        return judged[target]

    def update(self, session) -> list[str]:
        lines = []
        for target in session.profile.experiments:
            found = experiment(session, target)
            if why := _cannot_run(session, found):
                lines.append(f"experiment {found.name} skipped: {why}")
                continue
            runs = local_runner(session, found, target, found.baseline_seeds, baseline_store(session, found))
            failed = [r for r in runs.values() if not r.completed]
            if failed:
                raise RuntimeError(f"experiment {found.name} baseline: {len(failed)} run(s) did not complete, the first "
                                   f"{failed[0].variant} seed {failed[0].seed}: {failed[0].message}")
            where = baseline_store(session, found).root
            lines.append(f"experiment {found.name}: {len(runs)} baseline run(s) in {where}")
        return lines

    def summary_part(self, session) -> "ExperimentsPart | None":
        """Their verdicts, and what their check seeds' runs measured (delivered, or from the result cache)."""
        from ..runs.experiment_runs import baseline_of
        from .experiment_results import gather

        def measured(target: str, runs: dict):  # the baseline's spread behind the night's curves, where stored
            found = experiment(session, target)
            return gather(found, runs, baseline_of(found, baseline_store(session, found), session.matrix.threads)[0])

        # by the experiment's own name (its verdicts' subjects), which need not be the NAME of its MODULE:NAME target
        return ExperimentsPart([experiment(session, t).name for t in session.profile.experiments],
                               {experiment(session, t).name: measured(t, runs) for t, runs in _nights(session).items()})


@dataclass
class ExperimentsPart(Part):
    """The declared experiments in the report: their verdicts each, then what their runs measured (a table of every
    metric at every budget per seed, and a figure: trainguard.checks.experiment_results)."""

    names: list = field(default_factory=list)
    results: dict = field(default_factory=dict)  # name → trainguard.checks.experiment_results.Results

    def sections(self, summary, path, figures: bool) -> list[str]:
        """Per experiment: its claims, references, replay and failures as lines (a failed band with its derivation),
        its bands as checked per budget (a table, and a figure beside each band), then what its runs measured."""
        from .experiment_results import checked_of_verdicts, checked_section, section

        lines = ["## Your experiments", ""]
        for name in self.names:
            mine = [v for v in summary.verdicts + [f for f in summary.flags if f not in summary.verdicts]
                    if v.check in ("experiment", "experiment_claim", "experiment_replay", "run")
                    and (v.subject == f"{name}-runs" or v.subject.startswith((f"{name}-", f"{name}: ")))]
            checked = checked_of_verdicts(mine)
            said = [v for v in mine if v.check != "experiment" or not v.passed or v.model is None]
            lines += [f"### {name}", ""]
            lines += [f"- {'PASS' if v.passed else 'FAIL'} {v.message}" for v in said] or \
                ([] if checked else ["- not checked (see Notes)"])
            lines.append("")
            if name in self.results:
                lines += checked_section(self.results[name], checked, path, figures)
                lines += section(self.results[name], path, figures)
        return ["\n".join(lines)]
