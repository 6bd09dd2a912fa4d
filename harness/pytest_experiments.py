"""Your own experiment as pytest cases (registered by trainguard's pytest plugin; docs/own-training.md).

Mark a test module with the experiment and ask for the cases::

    import pytest

    pytestmark = pytest.mark.trainguard_experiment("guard.py:train")

    def test_replay(experiment_replay):        # one case per variant: test_replay[default]
        experiment_replay.check()

    def test_band(experiment_band):            # one per variant × budget × metric: test_band[default-2-test_acc]
        experiment_band.check()

    def test_cell_within_baseline(experiment_cell):  # one per variant × budget, every band of it: [default-2]
        experiment_cell.check()

    def test_claim(experiment_claim):          # one per claim and checked reference value: test_claim[more epochs help]
        experiment_claim.check()

The cases read what ``trainguard guard … replay --update`` and ``… baseline`` stored (in ``.trainguard/experiments``
beside the experiment's file, or ``TRAINGUARD_EXPERIMENTS_DIR``); the check seeds train once per session, on first
use. A missing golden or baseline skips with the command that writes it, and fails under ``CI=true``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MARKER = ("trainguard_experiment(target): the experiment (FILE.py:NAME or MODULE:NAME) whose cases "
          "experiment_replay, experiment_band, experiment_cell and experiment_claim are")


@dataclass
class Guarded:
    """One experiment in one pytest session: its stored references and, trained on first use, its check seeds."""

    target: str
    experiment: object
    store: object
    night: dict | None = None
    verdicts: dict = field(default_factory=dict)

    @classmethod
    def load(cls, target: str, rootdir: Path) -> "Guarded":
        from .core.experiment import load_experiment
        from .stores.experiment_records import ExperimentStore

        file, _, _ = target.rpartition(":")
        path = Path(file) if Path(file).is_absolute() else rootdir / file
        experiment = load_experiment(f"{path}:{target.rpartition(':')[2]}" if file.endswith(".py") else target)
        root = os.environ.get("TRAINGUARD_EXPERIMENTS_DIR") or (path.parent / ".trainguard" / "experiments")
        return cls(target, experiment, ExperimentStore(root))

    def band(self, case: str):
        if not self.verdicts:
            self._judge()
        return self.verdicts.get(case)

    def cell(self, variant: str, budget: int) -> list | None:
        """Every band verdict of one variant at one budget (its metrics, and the start of the curve kept with it);
        None when nothing could be judged."""
        if not self.verdicts:
            self._judge()
        if None in self.verdicts:
            return None
        return [v for v in self.verdicts.values() if getattr(v, "variant", None) == variant
                and getattr(v, "budget", None) == budget]

    def _judge(self) -> None:
        from .checks.experiment_bands import bands
        from .runs.experiment_runs import baseline_of, runs

        e = self.experiment
        baseline, _ = baseline_of(e, self.store)
        if baseline is None:
            self.verdicts = {None: f"no baseline of {e.name} in {self.store.root}: run `trainguard guard "
                                   f"{self.target} baseline`"}
            return
        from .checks.experiment_references import assertions, pool_of, seeds_to_train

        self.night = runs(e, e.check_seeds, self.store, printer=lambda line: None)
        own = runs(e, seeds_to_train(e), self.store, printer=lambda line: None)  # the references' seeds
        self.verdicts = {v.case: v for v in bands(e, baseline, self.night)}
        self.verdicts.update({f"claim:{c.name}": c for c in assertions(e, self.night, pool_of(self.night, baseline,
                                                                                              own))})


def _missing(reason: str) -> None:
    from .core.compare import missing_fails

    if missing_fails(strict=os.environ.get("CI") == "true"):  # the one rule for a missing reference
        pytest.fail(f"{reason} (CI=true: a missing reference fails)", pytrace=False)
    pytest.skip(reason)


class BandCase:
    def __init__(self, guarded: Guarded, case: str) -> None:
        self.guarded, self.case = guarded, case

    def check(self) -> None:
        verdict = self.guarded.band(self.case)
        if verdict is None:
            _missing(self.guarded.verdicts[None])
        elif not verdict.passed:
            pytest.fail(verdict.message, pytrace=False)


class CellCase:
    def __init__(self, guarded: Guarded, variant: str, budget: int) -> None:
        self.guarded, self.variant, self.budget = guarded, variant, budget

    def check(self) -> None:
        verdicts = self.guarded.cell(self.variant, self.budget)
        if verdicts is None:
            _missing(self.guarded.verdicts[None])
        elif failed := [v.message for v in verdicts if not v.passed]:
            pytest.fail(f"{len(failed)} of {len(verdicts)} band(s) failed:\n" + "\n".join(failed), pytrace=False)


class ReplayCase:
    def __init__(self, guarded: Guarded, variant: str) -> None:
        self.guarded, self.variant = guarded, variant

    def check(self) -> None:
        from .replay.experiment_replay import MISSING, replay

        outcome = replay(self.guarded.experiment, self.variant, self.guarded.store)
        if outcome.status == MISSING:
            _missing(outcome.message)
        elif not outcome.passed:
            pytest.fail(outcome.message, pytrace=False)


_LOADED: dict[str, Guarded] = {}


def _guarded(config: pytest.Config, target: str) -> Guarded:
    if target not in _LOADED:
        from .core.errors import ConfigError

        try:
            _LOADED[target] = Guarded.load(target, config.rootpath)
        except ConfigError as exc:
            raise pytest.UsageError(f"trainguard_experiment: {exc}") from None
    return _LOADED[target]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    wanted = {"experiment_replay", "experiment_band", "experiment_cell", "experiment_claim"} & set(metafunc.fixturenames)
    marker = metafunc.definition.get_closest_marker("trainguard_experiment")
    if not wanted or marker is None:
        return
    guarded = _guarded(metafunc.config, marker.args[0])
    e = guarded.experiment
    if "experiment_replay" in wanted:
        metafunc.parametrize("experiment_replay", [ReplayCase(guarded, v) for v in e.variants], ids=list(e.variants))
    if "experiment_band" in wanted:
        cases = [f"{c.variant}-{c.budget}-{c.metric}" for c in e.cells()]
        metafunc.parametrize("experiment_band", [BandCase(guarded, c) for c in cases], ids=cases)
    if "experiment_cell" in wanted:
        cells = [(v, b) for v in e.variants for b in sorted(e.budgets)]
        metafunc.parametrize("experiment_cell", [CellCase(guarded, v, b) for v, b in cells],
                             ids=[f"{v}-{b}" for v, b in cells])
    if "experiment_claim" in wanted:
        from .checks.experiment_references import checked_names

        names = [c.name for c in e.claims] + checked_names(e)
        metafunc.parametrize("experiment_claim", [BandCase(guarded, f"claim:{n}") for n in names], ids=names)


def pytest_unconfigure(config: pytest.Config) -> None:
    _LOADED.clear()
