"""The judge stage: the check kinds over the executed runs (they read results and references, never train), and
everything the report shows about the night gathered into a :class:`RunSummary` — plain data, no callbacks into the
session, so the report is the same whichever front end produced it. :func:`night_result` is the one decision of a
night's result (the report, the exit code and the ledger read it).
"""

from __future__ import annotations

import statistics as pystats
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import CheckSession, Part, per_check_alpha
from ..checks import baseline as baseline_kind
from ..checks import published as published_kind
from ..core import compare
from ..core.history import History
from ..core.spec import METRICS, ConfigError, Profile, seed_list
from ..runs.matrix import Matrix, describe_stop

CHECK_ORDER = ("replay", "run", "baseline", "published", "ranking", "budget_improves", "experiment", "experiment_claim")


@dataclass
class RunSummary:
    """Everything the report shows about one run, as plain data."""

    profile: Profile
    verdicts: list[compare.Verdict]  # in report order (see verdict_order)
    environment: dict[str, str]
    rows_by_budget: dict[int, list[dict]]  # per budget: final-epoch metrics per model, mean over the seeds
    statistics: dict  # how the bands were derived (rows, checked, power, lines)
    notes: list[str]
    published: dict = field(default_factory=dict)  # (model, epochs, metric) → the report's value
    published_note: str = "reference"
    curves: dict[str, History] = field(default_factory=dict)  # the figure seed's run per model
    figure_seed: int = 0
    test_split: str = ""
    changes: tuple[str, dict, dict] | None = None  # (--compare source, its runs, this run's) per model
    entry: dict | None = None  # this run's history entry (trainguard.checks.trend.history_entry)
    past_nights: list[dict] = field(default_factory=list)  # the ledger's earlier entries of this profile and class, then entry
    flags: list[compare.Verdict] = field(default_factory=list)  # drift and speed (failing only where asked)
    trend_notes: list[str] = field(default_factory=list)
    trend_metric: str = "test_acc"
    trend_bands: dict = field(default_factory=dict)  # (model, budget) → (low, high) of trend_metric's band
    replay: list = field(default_factory=list)  # trainguard.stores.golden.Outcome per golden run, replayed before the night
    parts: dict[str, Part] = field(default_factory=dict)  # check kind → its own part of the report (checks.Part)
    figures: bool = True  # write the PNG figures beside the report (--no-figures: the markdown alone)
    ledger_error: str | None = None  # the ledger could not be read: nothing compared between nights, nothing recorded

    @property
    def failed(self) -> list[compare.Verdict]:
        return [v for v in self.verdicts if v.fails]

    @property
    def passed(self) -> bool:
        return not self.failed and bool(self.verdicts)

    @property
    def checks_asked(self) -> bool:
        return checks_asked(self.profile)

    @property
    def result(self) -> str:
        return night_result(self.verdicts, self.profile)

    @property
    def exit_code(self) -> int:
        """The command's exit code: 0 PASS or TIMING ONLY, 1 FAIL, 5 NOTHING CHECKED (pytest's 'no tests ran')."""
        return {"PASS": 0, "TIMING ONLY": 0, "FAIL": 1, "NOTHING CHECKED": 5}[self.result]

    def uninformative(self) -> list[compare.Verdict]:
        return [v for v in self.verdicts if not v.informative]


def checks_asked(profile: Profile) -> bool:
    """Does the profile ask for any check (a timing profile, e.g. gpu-timing, asks for none, by design)?"""
    return bool(profile.checks or profile.golden_names() or profile.experiments)


def night_result(verdicts, profile: Profile) -> str:
    """The one decision of a night's result, for the report, the exit code and the ledger alike: PASS, FAIL,
    NOTHING CHECKED (checks were asked for, none compared anything: not a pass), or TIMING ONLY (the profile asks
    for no check)."""
    if any(v.fails for v in verdicts):
        return "FAIL"
    if not verdicts:
        return "NOTHING CHECKED" if checks_asked(profile) else "TIMING ONLY"
    return "PASS"


def summarize(session: CheckSession, verdicts: list[compare.Verdict], notes: list[str] = (),
              compare_with: Path | None = None) -> RunSummary:
    """Collect what the report shows from a night whose runs and checks are done (``session``: its runs, check
    kinds, golden replays and declared experiments' runs); compare with the ledger of nights
    (``options.ledger``) for drift and speed. Flagged verdicts (the replay's changes on a night that is not strict)
    go with the drift and speed flags."""
    matrix, options = session.matrix, session.matrix.options
    profile, notes = matrix.profile, list(notes)
    replay_outcomes = replays_in_order(session)
    trend_part = _trend(session)
    def fails(check: str) -> bool:
        return compare.flag_fails(check, options.strict, options.fail_on)

    trend_flags = [compare.settle(f, fails(f.check)) for f in trend_part["flags"]]
    trend_part["flags"] = [v for v in verdicts if v.flagged] + trend_flags
    verdicts = [v for v in verdicts if not v.flagged] + [f for f in trend_flags if fails(f.check)]
    trend_part["entry"]["result"] = night_result(verdicts, profile)  # the ledger says what the report says
    trend_part["entry"]["failed"] = [v.subject + (f" {v.metric}" if v.metric else "") for v in verdicts if not v.passed]
    # what the dashboard shows per night beside the numbers: the replay's verdicts, the flags, the failures' words
    trend_part["entry"]["replay"] = {o.name: {"status": o.status, "message": o.message} for o in replay_outcomes}
    if session.profile.experiments:  # and each declared experiment's golden replays
        from ..replay.experiment_kind import night_record

        trend_part["entry"]["replay"].update(night_record(session))
    trend_part["entry"]["flags"] = [f.message for f in trend_part["flags"] if not f.passed]
    trend_part["entry"]["failures"] = [v.message for v in verdicts if not v.passed][:50]
    trend_part["entry"]["bands"] = {"metric": trend_part["trend_metric"],  # the band each trend chart shades
                                    **{f"{m}-{b}": list(band) for (m, b), band in trend_part["trend_bands"].items()}}
    if experiment_bands := _experiment_bands(session, verdicts):  # each declared experiment's charts shade these
        trend_part["entry"]["experiment_bands"] = experiment_bands
    changes = _changes(matrix, compare_with, notes) if compare_with is not None else None
    notes = _lead_notes(profile, verdicts) + notes
    notes = list(dict.fromkeys(notes))  # one line per distinct reason
    notes += _run_notes(session)
    notes += [f"recovered: {line}" for line in drain_recovered()]
    return RunSummary(
        profile=profile, verdicts=sorted(verdicts, key=verdict_order(profile.models)),
        environment=environment(session), rows_by_budget=report_rows(matrix), statistics=statistics_summary(session),
        notes=notes, published=published_kind.read(matrix), published_note=published_kind.note(matrix),
        curves=figure_curves(matrix), figure_seed=matrix.seed, test_split=matrix.dataset.test_split if profile.models else "",
        parts=parts(session), changes=changes,
        replay=list(replay_outcomes), figures=matrix.options.figures, **trend_part)


def _experiment_bands(session: CheckSession, verdicts: list[compare.Verdict]) -> dict:
    from ..checks.declared_experiments import night_bands

    return night_bands(session, verdicts) if session.profile.experiments else {}


def _changes(matrix: Matrix, compare_with: Path, notes: list[str]) -> tuple[str, dict, dict]:
    """--compare: (source, its runs, this run's) of the figure seed, per model; a note when it has none."""
    old = earlier_results(compare_with, matrix.profile.name)
    mine = {m: h for (m, s), h in matrix.histories.items() if s == matrix.seed}
    theirs = {m: h for (m, s), h in old.items() if s == matrix.seed}
    if not theirs:
        notes.append(f"--compare {compare_with}: no completed {matrix.profile.name} run with seed {matrix.seed} there")
    return str(compare_with), theirs, mine


def replays_in_order(session: CheckSession) -> list:
    """The golden replays of the night (``inputs`` first), in the profile's order."""
    from ..replay.golden_runs import INPUTS

    order = [INPUTS, *session.profile.golden_names()]
    return sorted(session.replays.values(), key=lambda o: order.index(o.name) if o.name in order else len(order))


def _lead_notes(profile: Profile, verdicts: list[compare.Verdict]) -> list[str]:
    """What the reader must see first: a run that compared nothing, and band checks that cannot fail."""
    lead = []
    if not verdicts and checks_asked(profile):
        lead.append("NOTHING CHECKED: no check compared anything (reasons below); this run is not a pass")
    useless = [v for v in verdicts if not v.informative]
    bands = [v for v in verdicts if v.check == "baseline" and v.mde is not None]
    if useless:
        every = "EVERY band of this profile is uninformative: its PASS says nothing about the outcome. " \
            if len(useless) == len(bands) else ""
        lead.append(f"{every}{len(useless)} of {len(bands)} band checks are uninformative (a band that covers the "
                    f"whole 0–100 range, or an accuracy MDE of 100 points or more, cannot fail): "
                    + ", ".join(f"{v.subject} {v.metric}" for v in useless[:6]) + (" …" if len(useless) > 6 else ""))
    return lead


def _run_notes(session: CheckSession) -> list[str]:
    """Runs that stopped before their budget, and what synthetic data means."""
    matrix = session.matrix
    notes = [describe_stop(history) for _, history in sorted(matrix.histories.items()) if not history.completed]
    if matrix.profile.dataset == "synthetic":
        notes.append(f"Synthetic data: generated tensors of the real shapes; accuracies mean nothing about "
                     f"{matrix.dataset.title}.")
    return notes


def parts(session: CheckSession) -> dict[str, Part]:
    """Each enabled kind's own part of the report (checks.Part), in the registry's order."""
    found = {}
    for kind in session.kinds:
        part = kind.summary_part(session)
        if part is not None:
            found[kind.name] = part
    return found


def _trend(session: CheckSession) -> dict:
    """This run's history entry, the earlier ones, and the drift and speed flags against them."""
    from ..checks import trend
    from ..checks.declared_experiments import baseline_tables, night_cells, night_sources, night_speed

    matrix = session.matrix
    profile, st = matrix.profile, matrix.profile.statistics
    entry = trend.history_entry(matrix, night_cells(session), night_sources(session))
    entry["speed"].update(night_speed(session))  # the declared experiments' variants beside the models
    location = matrix.options.ledger_location
    earlier, ledger_error = _earlier_nights(location, profile.name, matrix.device_class)
    table = baseline_kind.table_of(session) if "baseline" in profile.checks else None
    drift, drift_notes = trend.drift_verdicts(earlier[-1] if earlier else None, entry, table, baseline_tables(session),
                                              st.false_alarm_rate, st.power)
    speed, speed_notes = trend.speed_verdicts(earlier, entry, st.false_alarm_rate)
    metric, bands = trend_bands(matrix, table)
    return {"entry": entry, "past_nights": [*earlier, entry], "flags": drift + speed,
            "trend_notes": ([] if location else ["no ledger of nights (--ledger): nothing compared between runs"])
            + ([f"THE LEDGER COULD NOT BE READ: {ledger_error}; nothing was compared between nights and this night "
                f"is not recorded"] if ledger_error else [])
            + drift_notes + speed_notes, "trend_metric": metric, "trend_bands": bands, "ledger_error": ledger_error}


def _earlier_nights(location, profile: str, device_class: str) -> tuple[list[dict], str | None]:
    """The ledger's earlier nights of this profile and class, and why they could not be read (an outage after hours
    of training must not cost the night its report: the record stage writes it, then says the ledger failed)."""
    from ..stores.ledger import open_ledger

    if not location:
        return [], None
    try:
        return open_ledger(location).read(profile, device_class), None
    except ConfigError as exc:
        return [], str(exc)


def trend_bands(matrix: Matrix, table, k: int | None = None) -> tuple[str, dict]:
    """The metric the trend plots show (test accuracy where checked) and its band per (model, budget) for
    the mean of ``k`` seeds (default: this run's); no bands without a baseline table."""
    profile = matrix.profile
    metric = "test_acc" if "test_acc" in profile.checked_metrics else profile.checked_metrics[0]
    if table is None:
        return metric, {}
    bands = {(m, b): baseline_kind.band(matrix, table, m, b, metric, k) for m in profile.models for b in profile.budgets}
    return metric, {key: (band.low, band.high) for key, band in bands.items()}


def environment(session: CheckSession) -> dict[str, str]:
    """The report's environment table, with whether tonight's library versions are the baseline's."""
    env, line = {}, baseline_versions(session)
    for key, value in session.matrix.environment().items():
        env[key] = value
        if key == "versions" and line:
            env["baseline versions"] = line
    env["training time"] = _training_time(session)
    return env


def _training_time(session: CheckSession) -> str:
    """The seconds this process spent training: the models' runs and the declared experiments'."""
    from ..checks.declared_experiments import night_training

    models = session.matrix.training_time()
    seconds, runs = night_training(session) if session.profile.experiments else (0.0, 0)
    if not runs:
        return models
    experiments = f"{seconds:.1f} s in {runs} experiment run(s) trained by this process"
    return experiments if not session.matrix.trained else f"{models}; {experiments}"


def baseline_versions(session: CheckSession) -> str | None:
    """The checked runs' versions against those recorded in the baseline's metadata (None without a baseline)."""
    matrix = session.matrix
    table = baseline_kind.table_of(session) if "baseline" in matrix.profile.checks else None
    if table is None or "versions" not in table.meta:
        return None
    return versions_line(table.meta["versions"], matrix.runs_versions(), matrix.threads_note)


def versions_line(recorded: dict, now: dict, threads_note: str) -> str:
    """"same as the baseline's" or what differs; a quantity the baseline did not record (the instruction set,
    recorded since 2026-12-02) cannot be said to differ: it is named as not recorded."""
    unknown = [f"{name} {now[name]}" for name in sorted(set(now) - set(recorded))]
    differ = [f"{name} {now.get(name)} (baseline {recorded.get(name)})" for name in sorted(recorded)
              if recorded.get(name) != now.get(name)]
    if "torch_threads" in recorded and recorded["torch_threads"] != now.get("torch_threads"):
        differ.append(f"this run's threads: {threads_note}")
    line = "same as the baseline's" if not differ else "DIFFER from the baseline's: " + ", ".join(differ)
    return line + (f" (the baseline did not record: {', '.join(unknown)})" if unknown else "")


def verdict_order(models: tuple[str, ...]):
    """A fixed order for the report, whatever order the checks ran in (one process, xdist workers, shards)."""

    def key(verdict: compare.Verdict) -> tuple:
        check = CHECK_ORDER.index(verdict.check) if verdict.check in CHECK_ORDER else len(CHECK_ORDER)
        model = models.index(verdict.model) if verdict.model in models else len(models)
        metric = METRICS.index(verdict.metric) if verdict.metric in METRICS else len(METRICS)
        return check, model, verdict.budget or 0, metric, verdict.subject, verdict.metric or ""

    return key


def report_rows(matrix: Matrix) -> dict[int, list[dict]]:
    """Per budget, the final-epoch metrics of every model, averaged over the run's seeds."""
    rows: dict[int, list[dict]] = {b: [] for b in matrix.profile.budgets}
    metrics = METRICS + (("val_acc",) if matrix.profile.val_per_class else ())
    for model in matrix.profile.models:
        histories = [matrix.histories.get((model, seed)) for seed in matrix.seeds]
        for budget in matrix.profile.budgets:
            if histories and all(h is not None and budget <= len(h.epochs) for h in histories):
                rows[budget].append({"model": model, **{m: pystats.fmean(h.at(budget).metric(m) for h in histories)
                                                        for m in metrics}})
    return rows


def statistics_summary(session: CheckSession) -> dict:
    """What the report says about how its bands were derived (docs/statistics.md)."""
    from ..checks import band_check_count

    matrix = session.matrix
    p, st = matrix.profile, matrix.profile.statistics
    seeds = seed_list(matrix.seeds)
    window = f"mean of the last {st.window} epochs up to the budget, " if st.window > 1 else ""
    table = baseline_kind.table_of(session) if "baseline" in p.checks else None
    count = band_check_count(p)
    lines = [
        f"Family-wise false-alarm rate {st.false_alarm_rate:.0%} for the whole run, split evenly over its "
        f"{count} band checks: α = {per_check_alpha(p):.2g} per check (two-sided)." if count else
        "This run makes no band checks (its profile enables no check kind that has them).",
        f"Each band: baseline mean ± t(1 − α/2, n − 1) · s · √(1/n + 1/k), from the n per-seed values of that model, "
        f"budget and metric (no pooling across cells); k = {len(matrix.seeds)} seed(s) this run ({seeds})."
        if p.models else
        "Each band: baseline mean ± t(1 − α/2, n − 1) · s · √(1/n + 1/k), from the n baseline seeds' values of that "
        "experiment's variant, budget and metric (no pooling across cells); k: its check seeds (its section names "
        "them).",
        f"MDE: the smallest true shift the check catches with probability {st.power:.0%} (non-central t).",
    ]
    if table is not None:
        lines.append(f"Baseline: {table.path} — seeds {seed_list(table.seeds)} (n = {len(table.seeds)}), "
                     f"measured {table.meta.get('date', '?')} on {table.meta.get('device_name', '?')}, "
                     f"commit {table.meta.get('commit', '?')}.")
        lines += [f"Tail: {baseline_kind.describe_tail(check, seed, tail, len(table.seeds))}. The band, from all the "
                  f"seeds, holds it; a seed farther out than any the baseline drew would fail it (docs/statistics.md, "
                  f"Tails)." for check, seed, tail in baseline_kind.tails(table, p)]
    if p.val_per_class:
        lines.append(f"Validation accuracy: {p.val_per_class} unused training images per class, never trained on "
                     f"(a larger evaluation split than the test images).")
    return {"rows": f"mean over seed(s) {seeds}", "checked": f"{window}averaged over seed(s) {seeds}",
            "power": f"{st.power:.0%}", "lines": lines}


def figure_curves(matrix: Matrix) -> dict[str, History]:
    """The runs the figures show: the first checked seed's, per model in the profile's order."""
    mine = {m: h for (m, s), h in matrix.histories.items() if s == matrix.seed and h.epochs}
    return {m: mine[m] for m in matrix.profile.models if m in mine}


def earlier_results(path: Path | str, profile: str) -> dict[tuple[str, int], History]:
    """Histories of an earlier run, for ``--compare``: a run log (.jsonl) or a result directory."""
    from ..stores.results import ResultStore
    from ..stores.runlog import histories_from_log

    path = Path(path)
    if path.is_file():
        return histories_from_log(path, profile)
    if path.is_dir():
        return ResultStore(path).latest(profile)
    raise ConfigError(f"--compare {path}: no such file or directory; pass a run log (.jsonl) or a results directory")


def drain_recovered() -> list[str]:
    """What the stores set aside or finished since the last report (a torn last line, an interrupted update, a
    healed data cache): the report says it once."""
    from ..core.storage import RECOVERED

    lines = list(dict.fromkeys(RECOVERED))
    RECOVERED.clear()
    return lines
