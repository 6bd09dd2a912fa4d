"""The statistics behind every band check: derived from stored per-seed values, never typed by hand.

One band check compares the mean of the night's ``k`` seeds with the ``n`` per-seed values of the
same cell and metric in the baseline. If the night is clean (same code, data and machine class,
new seeds), the night's mean and the baseline mean differ only by seed noise, and

    T = (mean_night − mean_baseline) / (s · sqrt(1/n + 1/k))

follows Student's t with n − 1 degrees of freedom (s: the baseline's sample std). The check
fails when |T| > t_{1 − α/2, n−1}: a two-sided prediction interval for the mean of k new seeds.
α is the family-wise false-alarm rate of the whole run divided by the number of band checks in
it (Bonferroni), so a clean night fails any band check with probability at most that rate.

The smallest shift a check catches with probability ``power`` (the minimum detectable effect)
comes from the same statistic: under a shift δ, T is non-central t with non-centrality
δ / (σ · sqrt(1/n + 1/k)); σ is estimated by s.

Pure functions over numbers; docs/statistics.md walks through an example by hand.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

# scipy.special and .optimize, not scipy.stats: the same functions (stdtrit is t.ppf, nctdtr is nct.cdf) at
# a third of the import time, which every trainguard process pays.
from scipy import optimize, special


@dataclass(frozen=True)
class Band:
    """The acceptance band of one check: center ± halfwidth, with how it was derived."""

    center: float  # the baseline mean
    halfwidth: float
    std: float  # the std used (the baseline's, floored at the metric's resolution)
    n: int  # baseline seeds
    k: int  # seeds averaged in the checked value
    alpha: float  # two-sided false-alarm rate of this one check
    t_crit: float
    mde: float  # shift caught with probability `power` at this alpha
    power: float
    k_ref: int | None = None  # drift: the center is an earlier night's mean of k_ref seeds, not the baseline's

    @property
    def low(self) -> float:
        return self.center - self.halfwidth

    @property
    def high(self) -> float:
        return self.center + self.halfwidth

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def describe(self) -> str:
        what, ref = ("baseline", self.n) if self.k_ref is None else ("previous run", self.k_ref)
        return (f"{what} {self.center:.4f} ± {self.halfwidth:.4f} (t {self.t_crit:.2f} × std {self.std:.4f} × "
                f"√(1/{ref} + 1/{self.k}); α {self.alpha:.2g} per check)")


def per_check_alpha(family_rate: float, checks: int) -> float:
    """Bonferroni: each of ``checks`` checks gets an equal share of the run's false-alarm rate."""
    if checks < 1:
        raise ValueError(f"a run needs at least one band check to split its false-alarm rate, got {checks}")
    return family_rate / checks


def scale(n: int, k: int) -> float:
    """std of (mean of k new seeds − mean of n baseline seeds), in units of one seed's std."""
    return math.sqrt(1.0 / n + 1.0 / k)


def t_critical(alpha: float, n: int) -> float:
    return float(special.stdtrit(n - 1, 1.0 - alpha / 2.0))


def detection_probability(shift: float, std: float, n: int, k: int, alpha: float, k_ref: int | None = None) -> float:
    """P(the check fails) when the night's true mean is ``shift`` away from the baseline's (or, with
    ``k_ref``, from an earlier night's mean of ``k_ref`` seeds; std still from the n baseline seeds)."""
    if std <= 0:
        return 1.0 if shift != 0 else alpha
    df, t = n - 1, t_critical(alpha, n)
    ncp = abs(shift) / (std * scale(k_ref or n, k))
    upper, lower = 1.0 - float(special.nctdtr(df, ncp, t)), float(special.nctdtr(df, ncp, -t))
    # scipy's nct returns NaN far in a tail it cannot resolve; the probability there is ~0 (the
    # wrong-side tail, for a shift this size) or ~1.
    lower = 0.0 if math.isnan(lower) else lower
    if math.isnan(upper):
        upper = 1.0 if ncp > t else 0.0
    return min(1.0, upper + lower)


def minimum_detectable_effect(std: float, n: int, k: int, alpha: float, power: float = 0.9,
                              k_ref: int | None = None) -> float:
    """The smallest |shift| caught with probability ≥ ``power`` (two-sided, at ``alpha``)."""
    if std <= 0:
        return 0.0
    unit = std * scale(k_ref or n, k)
    hi = unit * (t_critical(alpha, n) + 1.0)
    while detection_probability(hi, std, n, k, alpha, k_ref) < power:
        hi *= 2
    return float(optimize.brentq(lambda d: detection_probability(d, std, n, k, alpha, k_ref) - power, 0.0, hi,
                                 xtol=1e-9))


def derive_band(values: list[float], k: int, alpha: float, resolution: float = 0.0, power: float = 0.9) -> Band:
    """The band for the mean of ``k`` new seeds, from the baseline's per-seed ``values``.

    ``resolution`` floors the std: the smallest step the metric can take (one image of the
    evaluation split, in accuracy points). A cell whose seeds happened to agree exactly would
    otherwise get a band of width zero, which no honest rerun on another machine could meet.
    """
    n = len(values)
    if n < 2:
        raise ValueError(f"a band needs at least 2 baseline seeds to measure a spread, got {n}")
    if k < 1:
        raise ValueError(f"the checked value must average at least 1 seed, got {k}")
    std = max(statistics.stdev(values), resolution)
    t = t_critical(alpha, n)
    return Band(center=statistics.fmean(values), halfwidth=t * std * scale(n, k), std=std, n=n, k=k, alpha=alpha,
                t_crit=t, mde=minimum_detectable_effect(std, n, k, alpha, power), power=power)


def drift_band(values: list[float], previous: float, k_previous: int, k: int, alpha: float, resolution: float = 0.0,
               power: float = 0.9) -> Band:
    """The band for this night's mean of ``k`` seeds around an earlier night's mean of ``k_previous`` seeds.

    The same statistic as :func:`derive_band` with the earlier night in the baseline's place: between two
    clean nights the means differ by seed noise only, (m_now − m_before) / (s · √(1/k_previous + 1/k)) is
    Student's t with n − 1 degrees of freedom, s and n from the baseline's per-seed ``values`` (the nights
    have too few seeds to measure their own spread). Same seeds on the same machine class reproduce exactly,
    so between such nights any step is a change of code, data, configuration or libraries.
    """
    base = derive_band(values, k, alpha, resolution, power)
    halfwidth = base.t_crit * base.std * scale(k_previous, k)
    return Band(center=previous, halfwidth=halfwidth, std=base.std, n=base.n, k=k, alpha=alpha, t_crit=base.t_crit,
                mde=minimum_detectable_effect(base.std, base.n, k, alpha, power, k_ref=k_previous), power=power,
                k_ref=k_previous)


# The level of the tail screen (tail_screen): low enough that across a profile's few dozen band checks a normal
# baseline flags a cell about once in several re-measurements, high enough to flag a seed several of the
# others' stds away.
TAIL_SCREEN_LEVEL = 0.01


@dataclass(frozen=True)
class Tail:
    """One baseline seed far from the others: what a normal-theory band cannot vouch for (docs/statistics.md)."""

    index: int  # its position among the values (the baseline's seed order)
    value: float
    t: float  # deleted studentized residual: (value − mean of the others) / (their std · √(1 + 1/(n − 1)))
    p: float  # how often n normal seeds would show one this far out (Bonferroni over the n seeds)
    rest_mean: float
    rest_std: float

    def describe(self, seed: int, n: int) -> str:
        """"seed S at V lies T stds from the other n − 1 seeds (mean ± std; p P for n normal seeds)"."""
        return (f"seed {seed} at {self.value:.4g} lies {abs(self.t):.1f} stds from the other {n - 1} seeds "
                f"({self.rest_mean:.4g} ± {self.rest_std:.3g}; p {self.p:.1g} for {n} normal seeds)")


def tail_screen(values: list[float], resolution: float = 0.0, level: float = TAIL_SCREEN_LEVEL) -> Tail | None:
    """The seed farthest from the others, if n normal seeds would rarely put one that far out (p < ``level``).

    Each seed is compared with the mean and std of the other n − 1: under normality that deleted residual is
    Student's t with n − 2 degrees of freedom, so the screen needs no tuning per cell. It sees one seed in a
    mode of its own (a data order that learns late, say); two such seeds mask each other, and a mode rarer
    than 1 in n is seen only when the baseline happens to draw it. ``resolution`` floors the others' std, as
    in the band.
    """
    n = len(values)
    if n < 4:  # with 3 seeds, 2 remain: their std says nothing about tails
        return None
    mean = statistics.fmean(values)
    squares = math.fsum((x - mean) ** 2 for x in values)
    worst = None
    for i, value in enumerate(values):
        # the other n − 1 seeds' mean and std, by deleting one value from the sums (exact, and O(n) in all)
        rest_mean = (mean * n - value) / (n - 1)
        rest_squares = max(squares - n / (n - 1) * (value - mean) ** 2, 0.0)
        rest_std = max(math.sqrt(rest_squares / (n - 2)), resolution)
        if rest_std <= 0:
            continue
        t = (value - rest_mean) / (rest_std * math.sqrt(1.0 + 1.0 / (n - 1)))
        if worst is None or abs(t) > abs(worst.t):
            worst = Tail(i, value, t, 0.0, rest_mean, rest_std)
    if worst is None:
        return None
    p = min(1.0, n * 2.0 * float(special.stdtr(n - 2, -abs(worst.t))))
    return Tail(worst.index, worst.value, worst.t, p, worst.rest_mean, worst.rest_std) if p < level else None


def slowdown_bound(reference: list[float], floor: float, alpha: float) -> tuple[float, float]:
    """One-sided upper prediction bound for the next night's log epoch time, from earlier nights' values.

    ``reference``: log of the median epoch seconds of m ≥ 3 earlier runs of the same model on the same
    hardware. Their spread is the between-night noise (machine load, clocks), floored at ``floor`` (the
    within-run standard error of one run's median: two nights cannot agree better than one night's own
    epochs do). Returns (bound, the std used): a night above the bound is a slowdown with false-alarm
    probability ``alpha`` if nothing changed.
    """
    m = len(reference)
    if m < 3:
        raise ValueError(f"a speed check needs at least 3 earlier runs to measure between-night noise, got {m}")
    std = max(statistics.stdev(reference), floor)
    t = float(special.stdtrit(m - 1, 1.0 - alpha))
    return statistics.fmean(reference) + t * std * math.sqrt(1.0 + 1.0 / m), std


def window_mean(values: list[float], budget: int, window: int) -> float:
    """Mean of the per-epoch ``values`` over the ``window`` epochs ending at ``budget`` (1-based)."""
    if budget > len(values):
        raise IndexError(f"asked for epoch {budget}, the run has {len(values)} epochs")
    if not 1 <= window <= budget:
        raise ValueError(f"window {window} must be between 1 and the budget {budget}")
    return statistics.fmean(values[budget - window:budget])
