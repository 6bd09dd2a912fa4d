"""The report's published table: each cell's mean over the profile's [published] seeds within ±band of the
course report's number (the `seed` profile: the full protocol). The table ships with trainguard
(baselines/published.csv), so a missing one is a failure, not a note."""

from __future__ import annotations

from pathlib import Path

from ..stores import baselines as bl
from ..core import compare
from ..core.spec import METRICS
from . import Case, CheckKind, Reference


class PublishedTable(CheckKind):
    name = "published"
    reference_policy = "shipped"

    def cases(self, profile) -> list[Case]:
        return [Case(self.name, f"{m}-{b}", m, (m, b)) for m in profile.models for b in profile.budgets]

    def runs(self, session, case):
        model, budget = case.params
        return [(model, budget, seed) for seed in seeds(session.matrix)]

    def reference(self, session, case) -> Reference:
        table = read(session.matrix)
        if table:
            return Reference(table)
        return Reference(missing=f"the published check needs {path(session.matrix)}, which is missing or empty (it "
                                 f"ships with trainguard in baselines/; pass --baselines-dir)")

    def verdicts(self, session, case, published) -> list[compare.Verdict]:
        model, budget = case.params
        matrix, profile = session.matrix, session.profile
        records = [matrix.history(model, seed).at(budget) for seed in seeds(matrix)]
        verdicts = []
        for metric in METRICS:
            allowed, value = profile.published.band(metric), published.get((model, budget, metric))
            if allowed is not None and value is not None:
                verdicts.append(compare.check_against_published(model, budget, metric,
                                                                [r.metric(metric) for r in records], value, allowed))
        return verdicts


def seeds(matrix) -> tuple[int, ...]:
    """The seeds the published check averages: the profile's [published] seeds, else the run's."""
    return matrix.profile.published.seeds or matrix.seeds


def path(matrix) -> Path:
    return Path(matrix.options.baselines_dir) / "published.csv"


def protocol(matrix) -> dict:
    """What the published table was measured on (``published.json`` beside it: its data set, title and training
    images); {} when not recorded."""
    import json

    where = path(matrix).with_suffix(".json")
    return json.loads(where.read_text()) if where.exists() else {}


def note(matrix) -> str:
    """How far the published table applies to this profile: the same protocol (its data set, all its training
    images), or a reference only, saying why."""
    measured, profile = protocol(matrix), matrix.profile
    if not measured:
        return f"reference only: what it was measured on is not recorded ({path(matrix).with_suffix('.json')})"
    if profile.dataset != measured.get("dataset"):
        return f"reference only: the report measured it on {measured.get('title', measured.get('dataset'))}; this " \
               f"profile trains on {profile.dataset} data"
    if profile.train_per_class is not None:
        return f"reference only: the report trained on all {measured.get('train_images', 0):,} images; this " \
               f"profile uses less data"
    return f"same protocol; this run's test split: {matrix.dataset.test_split}"


def read(matrix) -> dict:
    """(model, epochs, metric) → the report's value; {} without the file."""
    return bl.load_published(path(matrix)) if path(matrix).exists() else {}

