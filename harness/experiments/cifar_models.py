"""Experiment 2 of the course report as a plug-in on the Experiment contract: four CIFAR-10 classifiers (Baseline1,
Baseline2, NewModel1, NewModel2) trained with a profile's training settings (the ``ci`` profile's by default: lr
0.01 as the report, its data view, budgets and seeds), one variant per model. Its claims are the report's
conclusions: the models rank as published at every budget, and more epochs help every model.

The bands here check each budget's final-epoch value; the built-in profile checks the mean of its last ``window``
epochs (trainguard.core.stats.window_mean) — a difference of statistic, not of training.
"""

from __future__ import annotations

import functools

from ..core.experiment import Claim, Experiment, Run
from ..core.spec import Profile, load_profile, packaged_baselines_dir


@functools.lru_cache(maxsize=4)
def _data(profile: Profile, data_dir):
    from ..stores import data

    return data.for_profile(profile, data_dir)


def _train(profile: Profile, run: Run) -> None:
    import torch

    from ..engines import engine

    model = run.settings["model"]
    torch.set_num_threads(run.threads)
    dataset = _data(profile, run.data_dir)
    run.inputs(x_train=dataset.x_train, y_train=dataset.y_train, x_test=dataset.x_test, y_test=dataset.y_test)
    history = engine.train(model, dataset, profile.training(model), run.budget, run.seed, torch.device(run.device),
                           on_step=lambda step, loss, net, optimizer: run.step(loss=float(loss)))
    if not history.completed:
        raise RuntimeError(f"{history.status} at epoch {history.failed_epoch}: {history.message}")
    for epoch in history.epochs[:run.budget]:
        run.epoch(test_acc=epoch.test_acc, test_loss=epoch.test_loss, train_acc=epoch.train_acc,
                  train_loss=epoch.train_loss)


def published_ranking(profile: Profile) -> list[str]:
    """The report's ranking at the largest budget, weakest first (baselines/published.csv); the profile's order
    without it."""
    from ..stores.baselines import load_published

    directory, budget = packaged_baselines_dir(), profile.budgets[-1]
    published = load_published(directory / "published.csv") if directory and (directory / "published.csv").exists() else {}
    if all((m, budget, "test_acc") in published for m in profile.models):
        return sorted(profile.models, key=lambda m: published[(m, budget, "test_acc")])
    return list(profile.models)


def claims(profile: Profile) -> tuple[Claim, ...]:
    order, (small, large) = published_ranking(profile), (profile.budgets[0], profile.budgets[-1])
    ranking = tuple(Claim(f"{strong} beats {weak} at {budget} epochs", "test_acc", better=f"{strong}@{budget}",
                          than=f"{weak}@{budget}")
                    for budget in profile.budgets for weak, strong in zip(order, order[1:]))
    more = tuple(Claim(f"more epochs help {model}", "test_acc", better=f"{model}@{large}", than=f"{model}@{small}")
                 for model in profile.models) if large != small else ()
    return ranking + more


def make(profile: Profile | None = None) -> Experiment:
    """The experiment at ``profile``'s settings (default: the ci profile)."""
    profile = profile or load_profile("ci")
    return Experiment(f"cifar-models-{profile.name}", functools.partial(_train, profile),
                      metrics={"test_acc": "higher", "test_loss": "lower"}, budgets=tuple(profile.budgets),
                      variants={model: {"model": model} for model in profile.models},
                      baseline_seeds=tuple(profile.baseline_seeds), check_seeds=tuple(profile.check_seeds),
                      replay_budget=1, claims=claims(profile))


ci = make()
