"""Experiment 1 of the course report as a plug-in on the Experiment contract: a dense network on 200 MNIST images
(seeded, class-balanced) overfits without dropout; Dropout(0.5) shrinks the gap (final test loss − final train
loss). Its settings are a profile's ``[mnist]`` section (the ``ci`` profile's by default); ``torch`` is the PyTorch
arm, ``keras`` the Keras twin (trained in its child process: it reports epochs, not steps, so it has no golden)."""

from __future__ import annotations

import functools

from ..core.experiment import Claim, Experiment, Run
from ..core.spec import OverfitConfig, load_profile


@functools.lru_cache(maxsize=4)
def _mnist(config: OverfitConfig, data_dir):
    from ..engines.overfit import load_mnist

    return load_mnist(config, data_dir)


def _train(config: OverfitConfig, framework: str, run: Run) -> None:
    import torch

    from ..engines import engine
    from ..engines.overfit import run_keras, small_subset
    from ..models.mnist import DenseMNIST

    dropout = run.settings["dropout"]
    torch.set_num_threads(run.threads)
    subset = small_subset(_mnist(config, run.data_dir), config, run.seed)
    run.inputs(x_train=subset.x_train, y_train=subset.y_train, x_test=subset.x_test, y_test=subset.y_test)
    if framework == "keras":
        history = run_keras(subset, config, dropout, run.seed, run.threads)
    else:
        history = engine.train(f"DenseMNIST(dropout={dropout})", subset, config.train_config(), run.budget, run.seed,
                               torch.device(run.device), model_factory=lambda: DenseMNIST(dropout),
                               on_step=lambda step, loss, model, optimizer: run.step(loss=float(loss)))
    if not history.completed:
        raise RuntimeError(f"{history.status} at epoch {history.failed_epoch}: {history.message}")
    for epoch in history.epochs[:run.budget]:
        run.epoch(train_loss=epoch.train_loss, test_loss=epoch.test_loss, gap=epoch.test_loss - epoch.train_loss)


def make(config: OverfitConfig | None = None, framework: str = "torch") -> Experiment:
    """The experiment at ``config`` (default: the ci profile's ``[mnist]``), in ``framework``."""
    config = config or load_profile("ci").mnist
    final = f"@{config.epochs}"
    return Experiment(
        f"mnist-overfit-{framework}", functools.partial(_train, config, framework),
        metrics={"train_loss": "lower", "test_loss": "lower", "gap": "lower"}, budgets=(config.epochs,),
        variants={"nodrop": {"dropout": 0.0}, "dropout": {"dropout": config.dropout}},
        baseline_seeds=config.baseline_seeds, check_seeds=config.seeds, replay_budget=1,
        claims=(Claim("dropout shrinks the gap", "gap", better="dropout" + final, than="nodrop" + final),
                Claim("dropout lowers the final test loss", "test_loss", better="dropout" + final,
                      than="nodrop" + final)))


torch = make(framework="torch")
keras = make(framework="keras")
