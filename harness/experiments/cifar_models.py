"""Experiment 2 of the course report as a plug-in on the Experiment contract: four CIFAR-10 classifiers (Baseline1,
Baseline2, NewModel1, NewModel2) trained with a profile's training settings (by default those in
``cifar-models-ci.toml`` beside this file, which the ``ci`` profile declares as :data:`ci`: lr 0.01 as the report, its
data view, budgets and seeds), one variant per model. Its metrics are the profile's checked
metrics, read as the profile reads them (the mean of its ``window`` last epochs up to each budget), so its bands are
the built-in profile's bands on the same runs. Its claims are the report's conclusions: the models rank as
published at every budget, and more epochs help every model.

The course report's table is a reference beside its means, checked within the profile's [published] bands where the
profile enables that check, on the mean of the profile's [published] seeds (its check seeds where it names none), as
the built-in check averages them. Its golden runs are the profile's: its [golden] subset and epochs (declaring the
data at full scale too, every split the night's runs receive, so a change past the subset is named), every step's
loss, gradient norm and learning rate, and the noise envelope of its one-ulp nudges of the initial weights (beside
another thread count and a lower instruction set). It honours a night's ``--precision`` and ``--compile`` (the
engine's bf16 autocast and torch.compile). The profile's start of the learning curve (``start_window``, ``start_models``) is its
:class:`Start`. Its faults are the models' self-test injections: as settings where a run's settings express them
(the learning rate, weight decay, augmentation), else by name (the data, the model, the loss, the data order, the
evaluation), applied to the faulted run alone. Its ledger history continues the profile's models' cells
(``formerly``: the profile's name), so drift compares its first night with the models' last.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from ..core.experiment import Claim, Experiment, Fault, Reference, Run, Start
from ..core.spec import Profile, load_profile, packaged_baselines_dir


@functools.lru_cache(maxsize=4)
def _data(profile: Profile, data_dir):
    from ..stores import data

    return data.for_profile(profile, data_dir)


def _golden_subset(full, profile: Profile):
    """The golden's data: the profile's [golden] first images of each class of the data the run trains on (an
    injected change to that data reaches it, as it reaches the built-in golden runs)."""
    from ..replay.golden_runs import model_subset

    return model_subset(full, profile.golden)


def _golden_hooks(run: Run, model: str):
    """At the golden's scale (``golden`` in the run's settings): every step's loss, gradient norm and learning rate, as
    the built-in golden runs trace them; and, for a ``nudge`` perturbation, every initial weight moved one ulp."""
    from ..engines import engine
    from ..replay.golden_runs import StepRecorder, nudge

    recorder = StepRecorder()

    def on_step(step, loss, net, optimizer) -> None:
        recorder(step, loss, net, optimizer)
        run.step(**{name: values[-1] for name, values in recorder.steps.items()})

    seed = run.settings.get("nudge")
    # engine.models.build at call time, as the built-in golden runs look it up
    factory = None if seed is None else (lambda: nudge(seed)(engine.models.build(model)))
    return on_step, factory


class _Seams:
    """What a models' self-test injection edits (trainguard.audit.selftest), as a night's Matrix holds it: the profile
    (its training settings) and the data set. The injections that patch the engine's functions need nothing of it."""

    def __init__(self, profile: Profile, dataset) -> None:
        self.profile, self._dataset = profile, dataset
        self.data_fingerprint = ""  # read by a data injection before it edits (the night keeps its fingerprint)

    @property
    def dataset(self):
        return self._dataset


def _train(profile: Profile, run: Run) -> None:
    import contextlib

    from ..audit.selftest import by_name

    seams = _Seams(profile, _data(profile, run.data_dir))
    inject = run.settings.get("inject")  # a fault: one of the models' self-test injections, for this run only
    with by_name((inject,))[0].apply(seams) if inject else contextlib.nullcontext():
        _train_as(seams.profile, seams.dataset, run)


def _config(profile: Profile, run: Run):
    """The model's training settings, with the run's settings of the same names over them (a fault's learning rate,
    weight decay …)."""
    config = profile.training(run.settings["model"])
    return dataclasses.replace(config, **{k: v for k, v in run.settings.items()
                                          if k in {f.name for f in dataclasses.fields(config)}})


def _described(dataset) -> str:
    """The data in words for the report: the copy read, the profile's view of it, and which test images."""
    return "; ".join([f"{dataset.name} from {dataset.source}", *dataset.notes, f"test: {dataset.test_split}"])


def _report_epoch(run: Run, record) -> None:
    """One epoch of the engine's history, reported through the run as it ends (so a night's progress line shows its
    time), with its training time (evaluation left out: what the models' speed times)."""
    validation = {k: v for k, v in record.extra.items() if k in ("val_loss", "val_acc")}  # with val_per_class
    run.epoch(train_loss=record.train_loss, train_acc=record.train_acc, test_loss=record.test_loss,
              test_acc=record.test_acc, **validation)
    run.epoch_time(record.seconds)


def _reporter(runs: list[Run]):
    """The engine's ``on_epoch``: each seed's epoch to its run, as it ends."""
    by_seed = {run.seed: run for run in runs}
    return lambda history, record: _report_epoch(by_seed[history.seed], record)


def _ended(run: Run, history) -> None:
    """A history that stopped (diverged, out of memory) fails its run with its reason, after its epochs; one run alone
    fails: a stack's other seeds keep their results."""
    if not history.completed:
        run.fail(f"{history.status} at epoch {history.failed_epoch}: {history.message}")


def _train_stacked(profile: Profile, runs: list[Run]) -> None:
    """One model's seeds at once (trainguard.engines.stacked, what the profile's ``--stack-seeds`` trains): each run
    gets its seed's epochs (no step scalars: a stacked run is never a golden)."""
    import torch

    from ..engines.stacked import train_stacked

    first = runs[0]
    torch.set_num_threads(first.threads)
    dataset = _data(profile, first.data_dir)
    for run in runs:
        run.inputs(x_train=dataset.x_train, y_train=dataset.y_train, x_test=dataset.x_test, y_test=dataset.y_test)
        run.describe_data(_described(dataset))
    histories = train_stacked(first.settings["model"], dataset, _config(profile, first), first.budget,
                              [r.seed for r in runs], torch.device(first.device), on_epoch=_reporter(runs),
                              precision=first.precision, compile_model=first.compile)
    for run, history in zip(runs, histories):
        _ended(run, history)


def _full_inputs(full) -> dict:
    """Every split of the data at full scale (train, test, and val where the profile holds one out), by name."""
    return {f"full {split} {part}": array for split, (x, y) in full.splits().items()
            for part, array in (("x", x), ("y", y))}


def _train_as(profile: Profile, full, run: Run) -> None:
    import torch

    from ..engines import engine

    model, config = run.settings["model"], _config(profile, run)
    torch.set_num_threads(run.threads)
    golden = bool(run.settings.get("golden"))
    dataset = _golden_subset(full, profile) if golden else full
    run.inputs(x_train=dataset.x_train, y_train=dataset.y_train, x_test=dataset.x_test, y_test=dataset.y_test)
    if golden:  # and the data at full scale, as the night's runs receive it: a change past the subset is named too
        run.inputs(**_full_inputs(full))
    run.describe_data(_described(dataset) + ("; the golden run's subset" if golden else ""))
    on_step, factory = _golden_hooks(run, model) if golden else (
        lambda step, loss, net, optimizer: run.step(loss=float(loss)), None)
    history = engine.train(model, dataset, config, run.budget, run.seed, torch.device(run.device), on_step=on_step,
                           on_epoch=_reporter([run]), model_factory=factory, precision=run.precision,
                           compile_model=run.compile)
    _ended(run, history)


def metrics(profile: Profile) -> dict[str, str]:
    """The profile's checked metrics, each with its better direction (a loss lower, an accuracy higher)."""
    return {m: "lower" if m.endswith("loss") else "higher" for m in profile.checked_metrics}


def resolutions(profile: Profile) -> dict[str, float]:
    """The smallest step of each metric, as the built-in profile floors its bands: one image of the split an accuracy
    is measured on (where the profile states its size), 1e-4 for a loss."""
    images = {"train": profile.train_per_class and 10 * profile.train_per_class, "test": profile.test_images,
              "val": profile.val_per_class and 10 * profile.val_per_class}
    found = {m: 1e-4 for m in metrics(profile) if m.endswith("loss")}
    found.update({m: 100.0 / images[m.split("_")[0]] for m in metrics(profile)
                  if m.endswith("acc") and images.get(m.split("_")[0])})
    return found


def _published() -> tuple[dict, dict]:
    """(model, epochs, metric) → the course report's value (baselines/published.csv), and what it was measured on
    (published.json); ({}, {}) without them."""
    import json

    from ..stores.baselines import load_published

    directory = packaged_baselines_dir()
    if directory is None or not (directory / "published.csv").exists():
        return {}, {}
    meta = directory / "published.json"
    return load_published(directory / "published.csv"), json.loads(meta.read_text()) if meta.exists() else {}


def published(profile: Profile) -> tuple[Reference, ...]:
    """The course report's table beside the night's means: checked within the profile's [published] bands where the
    profile enables the ``published`` check, on its [published] seeds, shown otherwise; its note says where the
    profile's protocol differs."""
    table, measured = _published()
    declared = metrics(profile)
    values = {f"{m}@{b}": {k: table[(m, b, k)] for k in declared if (m, b, k) in table}
              for m in profile.models for b in profile.budgets}
    values = {cell: found for cell, found in values.items() if found}
    if not values:
        return ()
    same = profile.dataset == measured.get("dataset") and profile.train_per_class is None
    note = "" if same else f"one run on all {measured.get('train_images', 0):,} training images; this profile trains " \
                           f"on {'other' if profile.dataset != measured.get('dataset') else 'less'} data"
    tolerances = {k: band for k, band in profile.published.bands if k in declared} \
        if "published" in profile.checks else {}
    return (Reference("the course report", values, tolerances, note, seeds=tuple(profile.published.seeds)),)


def published_ranking(profile: Profile) -> list[str]:
    """The report's ranking at the largest budget, weakest first (baselines/published.csv); the profile's order
    without it."""
    table, budget = _published()[0], profile.budgets[-1]
    if all((m, budget, "test_acc") in table for m in profile.models):
        return sorted(profile.models, key=lambda m: table[(m, budget, "test_acc")])
    return list(profile.models)


def claims(profile: Profile) -> tuple[Claim, ...]:
    order, (small, large) = published_ranking(profile), (profile.budgets[0], profile.budgets[-1])
    ranking = tuple(Claim(f"{strong} beats {weak} at {budget} epochs", "test_acc", better=f"{strong}@{budget}",
                          than=f"{weak}@{budget}")
                    for budget in profile.budgets for weak, strong in zip(order, order[1:]))
    more = tuple(Claim(f"more epochs help {model}", "test_acc", better=f"{model}@{large}", than=f"{model}@{small}")
                 for model in profile.models) if large != small else ()
    return ranking + more


def faults(profile: Profile) -> tuple[Fault, ...]:
    """The models' self-test injections: those a run's settings express as settings (the learning rate 1 % higher,
    weight decay 5e-4 added, the augmentation of the models that have one taken away), then every other one of
    trainguard.audit.selftest whose models the profile has, by name (``{"inject": name}``): the data, labels,
    preprocessing, model, loss, augmentation, data-order and evaluation changes, applied to this run alone."""
    lr = profile.default_training.lr
    found = [Fault("lr-plus-1pct", f"learning rate 1 % higher ({lr * 1.01:g} instead of {lr:g})", {"lr": lr * 1.01}),
             Fault("weight-decay-5e-4", "weight decay 5e-4 added", {"weight_decay": 5e-4})]
    augmented = tuple(m for m in profile.models if profile.training(m).augment != "none")
    if augmented:
        found.append(Fault("no-augmentation", f"{', '.join(augmented)} trained without augmentation",
                           {"augment": "none"}, variants=augmented))
    from ..audit.selftest import CI_INJECTIONS, SUBTLE_INJECTIONS

    named = {f.name for f in found}
    found += [Fault(i.name, i.description, {"inject": i.name}, variants=i.targets)
              for i in (*CI_INJECTIONS, *SUBTLE_INJECTIONS)
              if i.name not in named and set(i.targets) <= set(profile.models)]
    return tuple(found)


def start(profile: Profile) -> Start | None:
    """The profile's start of the learning curve (its [statistics] start_window, start_models): the train loss over
    the first epochs, checked for the models it names."""
    window, models = profile.statistics.start_window, tuple(profile.statistics.start_models)
    if not window or "train_loss" not in metrics(profile):
        return None
    return Start(("train_loss",), window, variants=models)


SETTINGS = Path(__file__).with_name("cifar-models-ci.toml")  # what the ci profile declares; --profile cifar-models-ci


def make(profile: Profile | None = None) -> Experiment:
    """The experiment at ``profile``'s settings (default: :data:`SETTINGS`, what the ci profile declares)."""
    profile = profile or load_profile(str(SETTINGS))
    return Experiment(f"cifar-models-{profile.name}", functools.partial(_train, profile),
                      metrics=metrics(profile), budgets=tuple(profile.budgets), window=profile.statistics.window,
                      resolutions=resolutions(profile), references=published(profile),
                      variants={model: {"model": model} for model in profile.models},
                      baseline_seeds=tuple(profile.baseline_seeds), check_seeds=tuple(profile.check_seeds),
                      replay_budget=profile.golden.epochs, replay_settings={"golden": True},
                      perturbations={f"nudge-{i}": {"nudge": i} for i in range(1, profile.golden.perturbations + 1)},
                      claims=claims(profile), faults=faults(profile), start=start(profile),
                      train_stacked=functools.partial(_train_stacked, profile),
                      precisions=("fp32", "bf16"), compiles=True,  # the engine's --precision and --compile
                      formerly=(profile.name,))  # the profile's models' ledger cells are its earlier values


ci = make()
