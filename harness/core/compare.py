"""Checks: measured numbers + derived bands (harness/core/stats.py) → verdicts with messages.

Pure functions; nothing here trains, reads files or knows about pytest.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

from .spec import METRIC_LABELS
from .stats import Band


def missing_fails(strict: bool, shipped: bool = False) -> bool:
    """The one rule for a check with nothing to compare against (no baseline, no golden, no fingerprint): it fails
    when trainguard ships that reference (``shipped``: its absence is a broken install) or the night is strict
    (CI=true, --strict); otherwise the check is skipped and the report says how to create the reference."""
    return shipped or strict


def flag_fails(check: str, strict: bool, fail_on: Collection[str]) -> bool:
    """The one rule for a check that flags — it sees a change that need not matter: the replay's changed golden, a
    drift between nights, a slowdown. Its failure fails the night where the night is asked to fail on it
    (``--fail-on-drift``, ``--fail-on-slowdown``) or, for the replay, where the night is strict (CI=true,
    --strict); otherwise it is *flagged*: reported at the top of the report and in the job summary, not failing."""
    return check in fail_on or (strict and check in REPLAYS)


#: The replays' kinds: a change they see fails a strict night (the models' golden runs; a profile's experiments').
REPLAYS = ("replay", "experiment_replay")


def settle(verdict: "Verdict", fails: bool) -> "Verdict":
    """``verdict`` as the night counts it: a failure that does not fail this night (:func:`flag_fails`) flagged."""
    return verdict if verdict.passed or fails else replace(verdict, flagged=True)


@dataclass(frozen=True)
class Verdict:
    check: str  # baseline | ranking | budget_improves | run | replay | drift | speed | experiment | … (a kind's name)
    subject: str  # e.g. "NewModel2-20", "ranking@10", "Baseline1 10→20"
    passed: bool
    message: str
    model: str | None = None
    budget: int | None = None
    metric: str | None = None
    measured: float | None = None
    expected: float | None = None
    allowed: float | None = None
    mde: float | None = None  # minimum detectable effect of a band check (harness/core/stats.py)
    informative: bool = True  # False: a band so wide it cannot fail (see uninformative())
    flagged: bool = False  # a failure that does not fail this night (settle): reported, not counted

    @property
    def status(self) -> str:
        return "pass" if self.passed else "flagged" if self.flagged else "FAIL"

    @property
    def fails(self) -> bool:
        """Does this verdict fail the night?"""
        return not self.passed and not self.flagged


PERCENT_METRICS = ("train_acc", "test_acc", "val_acc")  # bounded metrics: 0 … 100


def uninformative(metric: str, band: Band) -> str | None:
    """Why a band cannot fail, or None: an accuracy band that covers all of 0–100, or whose smallest detectable
    shift is 100 points or more, passes whatever the night measures."""
    if metric not in PERCENT_METRICS:
        return None
    if band.low <= 0 and band.high >= 100:
        return f"the band {band.low:.4g}…{band.high:.4g} covers the whole 0–100 range"
    if band.mde >= 100:
        return f"its smallest detectable shift ({band.mde:.4g} points) exceeds the 0–100 range"
    return None


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def check_band(subject: str, metric: str, label: str, measured: float, band: Band, source: str,
               check: str = "baseline", model: str | None = None, budget: int | None = None,
               lower_is_better: bool | None = None) -> Verdict:
    """The night's value (a mean over its seeds) inside the band derived from the baseline's seeds.
    ``lower_is_better``: the metric's declared direction (None: a loss is lower-is-better, anything else higher)."""
    delta = measured - band.center
    passed = band.contains(measured)
    useless = uninformative(metric, band)
    message = (f"{subject} {label}: measured {_fmt(measured)} (mean of {band.k} seed{'s' if band.k > 1 else ''}), "
               f"{band.describe()} from {source}, difference {delta:+.4f}; smallest shift caught "
               f"{band.power:.0%} of the time {band.mde:.4f}"
               + ("" if passed else " — REGRESSION (worse than baseline)" if _is_worse(metric, delta, lower_is_better)
                  else " — DEVIATION (better than baseline: check what changed)")
               + (f" — UNINFORMATIVE: {useless}; it cannot fail (more baseline seeds or a larger eval set narrow it)"
                  if useless else ""))
    return Verdict(check, subject, passed, message, model, budget, metric, measured, band.center, band.halfwidth,
                   mde=band.mde, informative=useless is None)


def check_against_published(model: str, budget: int, metric: str, values: list[float], published: float,
                            band: float) -> Verdict:
    """|mean of ``values`` − published| ≤ band: the report's single run against our seed mean."""
    mean = sum(values) / len(values)
    delta = mean - published
    passed = abs(delta) <= band
    spread = f"mean of {len(values)} seeds" if len(values) > 1 else "1 seed"
    message = (f"{model}-{budget} {METRIC_LABELS[metric]} vs published: measured {_fmt(mean)} ({spread}), "
               f"published {_fmt(published)}, difference {delta:+.4f}, allowed ±{band}"
               + ("" if passed else " — OUTSIDE THE PUBLISHED BAND"))
    return Verdict("published", f"{model}-{budget}", passed, message, model, budget, metric, mean, published, band)


def _is_worse(metric: str, delta: float, lower_is_better: bool | None = None) -> bool:
    higher_is_worse = metric.endswith("loss") if lower_is_better is None else lower_is_better
    return delta > 0 if higher_is_worse else delta < 0


def _over(seeds: tuple[int, ...]) -> str:
    return f" (mean over seeds {', '.join(map(str, seeds))})" if len(seeds) > 1 else ""


def check_ranking(budget: int, order: list[str], test_acc: dict[str, float], seeds: tuple[int, ...] = ()) -> Verdict:
    """The report's ranking: each model in ``order`` has strictly higher test accuracy than the one before."""
    present = [m for m in order if m in test_acc]
    broken = [(a, b) for a, b in zip(present, present[1:]) if not test_acc[a] < test_acc[b]]
    listing = " < ".join(f"{m} {test_acc[m]:.2f}" for m in present)
    if broken:
        pairs = "; ".join(f"{a} ({test_acc[a]:.2f}) is not below {b} ({test_acc[b]:.2f})" for a, b in broken)
        return Verdict("ranking", f"ranking@{budget}", False,
                       f"ranking at {budget} epochs broken (test accuracy{_over(seeds)}): {pairs}. "
                       f"Expected {' < '.join(present)}.", budget=budget, metric="test_acc")
    return Verdict("ranking", f"ranking@{budget}", True, f"ranking at {budget} epochs holds{_over(seeds)}: {listing}",
                   budget=budget, metric="test_acc")


def check_budget_improves(model: str, small: int, large: int, acc_small: float, acc_large: float,
                           seeds: tuple[int, ...] = ()) -> Verdict:
    """More epochs must help: test accuracy after ``large`` epochs strictly above that after ``small``."""
    passed = acc_large > acc_small
    message = (f"{model}: test accuracy{_over(seeds)} {acc_small:.2f} after {small} epochs → {acc_large:.2f} after {large} "
               f"({acc_large - acc_small:+.2f})" + ("" if passed else f" — {large} epochs did not improve on {small}"))
    return Verdict("budget_improves", f"{model} {small}→{large}", passed, message, model, large, "test_acc",
                   acc_large, acc_small)
