"""``trainguard guard``: an experiment's night in stages, as the CLI runs it — baseline (train the baseline seeds),
replay (write or rerun the golden runs), check (train the check seeds; bands, claims; the ledger with drift and speed;
a markdown report). Each returns the command's exit code and prints what it found."""

from __future__ import annotations

import sys
from pathlib import Path


def baseline(experiment, store, common, from_csv: Path | None = None) -> int:
    from ..core.spec import seed_list

    if from_csv is not None:
        return import_baseline(experiment, store, from_csv, common["threads"])
    found = deliver_runs(experiment, experiment.baseline_seeds, store, common)
    failed = [r for r in found.values() if not r.completed]
    print(f"baseline of {experiment.name}: {len(found) - len(failed)} of {len(found)} run(s) completed "
          f"({len(experiment.variants)} variant(s) × seeds {seed_list(experiment.baseline_seeds)}) in {store.root}")
    return 1 if failed else 0


def import_baseline(experiment, store, path: Path, threads: int) -> int:
    """The baseline seeds' runs read from a CSV of numbers measured before (trainguard.stores.experiment_import),
    written as the baseline; trains nothing."""
    from ..core.spec import seed_list
    from ..stores.experiment_import import records_from_csv

    records = records_from_csv(experiment, path, threads)  # every one checked before any is written
    for record in records:
        store.put(record)
    print(f"baseline of {experiment.name}: {len(records)} run(s) imported from {path} ({len(experiment.variants)} "
          f"variant(s) × seeds {seed_list(experiment.baseline_seeds)}, {max(experiment.budgets)} epochs, at "
          f"{threads} thread(s)) into {store.root}; nothing trained")
    return 0


def replay_or_update(experiment, store, update: bool, common) -> int:
    from ..replay import experiment_replay as replay

    if experiment.replay_budget == 0:
        print(f"{experiment.name} has no golden run (replay_budget 0): nothing to replay")
        return 5
    if update:
        results = [replay.write_golden(experiment, variant, store, common["threads"], common["device"],
                                       common["data_dir"], common.get("target")) for variant in experiment.variants]
        for _, message in results:
            print(message)
        return 0 if all(golden is not None for golden, _ in results) else 1
    outcomes = [replay.replay(experiment, variant, store, None, common["device"], common["data_dir"])
                for variant in experiment.variants]
    for outcome in outcomes:
        print(f"{outcome.status}: {outcome.message}")
    if all(o.status == replay.MISSING for o in outcomes):
        return 5
    return 0 if all(o.passed for o in outcomes) else 1


def check(experiment, store, seeds, common, ledger=None, report=None, junit=None, mlflow=None) -> int:
    """``ledger``: where the night is recorded (None: nowhere); ``report`` / ``junit`` / ``mlflow``: what else it
    is written to."""
    from ..checks.experiment_bands import bands
    from ..checks.experiment_references import assertions, pool_of
    from ..checks.experiment_results import gather
    from ..runs.experiment_runs import baseline_of

    baseline, other_code = baseline_of(experiment, store, common["threads"])  # stacked: DIR/stacked, its own
    if baseline is None:
        print(f"trainguard: no baseline of {experiment.name} in {store.root} at {common['threads']} thread(s): run "
              f"`trainguard guard TARGET baseline` first", file=sys.stderr)
        return 5
    if other_code:
        print(f"note: {other_code}")
    checked = tuple(int(s) for s in seeds.split(",")) if seeds else experiment.check_seeds
    if set(checked) & set(experiment.baseline_seeds):
        from ..core.errors import ConfigError

        raise ConfigError(f"--seeds {seeds}: baseline seeds cannot be checked against the baseline that holds them")
    night = deliver_runs(experiment, checked, store, common)
    verdicts, asserted = bands(experiment, baseline, night), assertions(
        experiment, night, pool_of(night, baseline, _reference_runs(experiment, checked, store, common)))
    for verdict in [*verdicts, *asserted]:
        print(f"{'PASS' if verdict.passed else 'FAIL'} {verdict.message}")
    from ..stores.experiment_records import arithmetic_class

    # the ledger compares a night with earlier ones of the same arithmetic (a bf16 night is not an fp32 one's drift)
    entry = _entry(experiment, night, verdicts, asserted,
                   arithmetic_class(common["device"], common.get("precision", "fp32"), common.get("compile", False)))
    flags, notes = _record(entry, baseline, ledger, experiment)
    for line in [f.message for f in flags if not f.passed] + notes:
        print(f"note: {line}")
    failed = [v for v in [*verdicts, *asserted] if not v.passed]
    print(f"{len(verdicts) + len(asserted) - len(failed)} passed, {len(failed)} failed")
    measured = gather(experiment, night, baseline)
    _write(experiment, verdicts, asserted, flags, notes, report, junit, measured)
    if mlflow:
        _to_mlflow(mlflow, entry, experiment, verdicts, asserted, flags, notes, report, measured)
    return 1 if failed else 0


def _reference_runs(experiment, checked, store, common) -> dict:
    """The runs of the references' own seeds that are neither checked nor baseline seeds, trained (or cached)."""
    from ..checks.experiment_references import seeds_to_train

    extra = seeds_to_train(experiment, checked)
    return deliver_runs(experiment, extra, store, common) if extra else {}


def deliver_runs(experiment, seeds, store, common) -> dict:
    """The runs, in this process or (``common["ray"]``: the cluster's resources) as Ray tasks; either way through
    the same training function and the same store."""
    settings = {k: v for k, v in common.items() if k not in ("ray", "target")}
    if common.get("ray") is None:  # in this process (stacked: common["stacked"])
        from ..runs.experiment_runs import runs

        return runs(experiment, seeds, store, **settings)
    from .experiment_cluster import runs_on_ray

    return runs_on_ray(experiment, common["target"], seeds, store, common["ray"], **settings)


def _entry(experiment, night, verdicts, asserted, device) -> dict:
    """The night as the ledger, the dashboard and MLflow read a profile's night (a variant where a model would be)."""
    from ..checks.experiment_night import night_entry

    entry = night_entry(experiment, night, verdicts, device)
    broken = [c for c in asserted if not c.passed]
    if broken:
        entry["result"] = "FAIL"
        entry["failed"] += [c.name for c in broken]
        entry["failures"] += [c.message for c in broken]
    return entry


def _record(entry: dict, baseline, ledger: str | None, experiment) -> tuple[list, list[str]]:
    """The night in the ledger, with drift and speed against the earlier nights (flags: they never fail it)."""
    from ..checks.experiment_night import between_nights
    from ..stores.ledger import open_ledger

    if not ledger:
        return [], ["no ledger (--ledger): nothing compared between nights, nothing recorded"]
    store = open_ledger(ledger)
    earlier = store.read(entry["profile"], entry["device_class"])
    renamed = [(name, store.read(name, entry["device_class"])) for name in experiment.formerly]
    # by time; nights under a former name first where two share a second (a rename comes before the new name's nights)
    earlier = sorted([e for _, nights in renamed for e in nights] + earlier, key=lambda e: e.get("time", ""))
    flags, notes = between_nights(entry, earlier, baseline, experiment)
    store.append(entry)
    read = [f"{name} ({len(nights)} night(s))" for name, nights in renamed if nights]
    return flags, notes + ([f"earlier nights read under its former name(s): {', '.join(read)}"] if read else []) \
        + [f"recorded in the ledger {store.where()}"]


def _to_mlflow(uri: str, entry: dict, experiment, verdicts, asserted, flags, notes, report: Path | None,
               measured=None) -> None:
    """One MLflow run for the night (trainguard.report.mlflow_export, as a profile's night): its settings, the mean of
    every metric per variant and budget, the markdown report as an artifact (written for it when --report is not)."""
    import tempfile

    from ..core.storage import atomic_write_text
    from ..report import experiment_report
    from .record import export_to_mlflow

    with tempfile.TemporaryDirectory(prefix="trainguard-mlflow-") as tmp:
        if report is None:
            report = Path(tmp) / "report.md"
            atomic_write_text(report, experiment_report.markdown(experiment, verdicts, asserted, flags, notes, measured))
        export_to_mlflow(uri, entry, report)
        print(f"MLflow: logged the night to {_redacted(uri)}")


def _redacted(uri: str) -> str:
    from ..core.redact import redact_url

    return redact_url(uri)


def _write(experiment, verdicts, asserted, flags, notes, report: Path | None, junit: Path | None, measured=None) -> None:
    from ..core.storage import atomic_write_text
    from ..report import experiment_report

    if report is not None:
        atomic_write_text(report, experiment_report.markdown(experiment, verdicts, asserted, flags, notes, measured,
                                                             report))
        print(f"report: {report}")
    if junit is not None:
        atomic_write_text(junit, experiment_report.junit_xml(experiment, verdicts, asserted, flags))
        print(f"JUnit XML: {junit}")
