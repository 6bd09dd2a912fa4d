"""The plan stage: from the profile and options, every run the night needs — each (model, seed) to its largest
budget, each declared experiment, each golden replay — with every reference it will read read and checked now
(:func:`preflight`), before anything trains. The plan is data: it can be shown, counted, split or handed to
another machine (:mod:`trainguard.night.execute` takes it; :mod:`trainguard.night.cluster` on Ray)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.spec import RunSpec, seed_list


@dataclass(frozen=True)
class PlannedRun:
    """One training run: a (model, seed) to the profile's largest budget, keyed by its spec."""

    model: str
    seed: int
    spec: RunSpec


@dataclass(frozen=True)
class NightPlan:
    """Everything a night will run, known before anything runs."""

    profile: str
    runs: tuple[PlannedRun, ...]
    experiments: tuple[str, ...] = ()  # declared experiments (their runs: trainguard.checks.declared_experiments)
    goldens: tuple[str, ...] = ()  # replayed before anything trains
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        models = list(dict.fromkeys(r.model for r in self.runs))
        seeds = sorted({r.seed for r in self.runs})
        parts = [f"{len(self.runs)} run(s) ({', '.join(models)} × seeds {seed_list(seeds)})"]
        if self.experiments:
            parts.append(f"{len(self.experiments)} experiment(s)")
        if self.goldens:
            parts.append(f"{len(self.goldens)} golden replay(s)")
        return f"the night of {self.profile}: " + ", ".join(parts)


def plan_night(session) -> NightPlan:
    """The night's plan, for a :class:`trainguard.checks.CheckSession` over its runs; every input read and checked
    first (a bad one raises ConfigError / DataError here, before anything trains)."""
    preflight(session)
    matrix, profile = session.matrix, session.profile
    runs = tuple(PlannedRun(model, seed, matrix.run_spec(model, seed)) for seed in matrix.seeds for model in profile.models)
    goldens = tuple(profile.golden_names()) if matrix.options.replay else ()
    return NightPlan(profile.name, runs, tuple(profile.experiments), goldens)


def plan_baselines(session) -> NightPlan:
    """The runs a baseline update measures: every model at every baseline seed (``trainguard baselines update``;
    a declared experiment's baseline seeds are its kind's update); the goldens are written by the update itself."""
    matrix, profile = session.matrix, session.profile
    runs = tuple(PlannedRun(model, seed, matrix.run_spec(model, seed))
                 for seed in profile.baseline_seeds for model in profile.models)
    return NightPlan(profile.name, runs)


def preflight(session) -> None:
    """Read and check every input the run will need before the first epoch — the data, every enabled kind's
    reference (the baseline tables, the declared experiments' baselines, the published tables), the goldens — so that a bad
    one (a truncated CSV, a corrupt golden) is an error naming the file now, not after minutes of training.
    Raises ConfigError / DataError."""
    from ..checks import published

    matrix, profile = session.matrix, session.profile
    if profile.models:  # a profile of experiments alone has no data of its own: each experiment reads its own
        matrix.dataset  # noqa: B018 — load and verify
    for kind, case in session.cases():
        if kind.reference_policy != "none":
            session.reference(kind, case)
    if "ranking" in profile.checks:
        published.read(matrix)  # the expected order
