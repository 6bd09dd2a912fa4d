"""Detection self-test: inject known regressions into a copy of the run, check, and count what is caught.

Each :class:`Injection` changes one thing a real regression could change (the data, the labels,
the preprocessing, the optimiser, the model, the evaluation) for the length
of a ``with`` block, by editing the Matrix's copy of the profile or data, or by patching one
engine function. The injected runs are trained for the run's seeds with no result cache (nothing
injected is ever stored where a clean run could read it) and checked with the same derived bands
as a night. A check that fails on them caught the injection; the report lists which.

Every injection is also run through the replay of the golden runs (trainguard.replay.golden_runs): the same
patch, a few seconds per model, and the first step and quantity it moved. :data:`SUBTLE_INJECTIONS`
are changes a regression harness should see and that seed-noise bands on two CPU cores mostly cannot
(a small optimiser change, a regulariser, augmentation, data-order and evaluation details):
``trainguard selftest --replay-only`` measures the replay on all of them in minutes.

``trainguard selftest --profile ci`` runs :data:`CI_INJECTIONS`; the fast suite runs a gross one
on generated data (tests/test_selftest.py). It injects into the profile's models only: a declared experiment is
the user's code, which the self-test cannot patch.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Iterator

import numpy as np
import pandas as pd

from ..core import compare
from ..stores import golden


@dataclass(frozen=True)
class Injection:
    name: str
    kind: str  # data | labels | preprocessing | optimiser | model | evaluation | …
    description: str
    targets: tuple[str, ...]  # the models trained under it
    apply: Callable[[object], ContextManager]  # matrix → context in which the regression holds


@dataclass
class InjectionResult:
    injection: Injection
    verdicts: list[compare.Verdict] = field(default_factory=list)
    skipped: str = ""  # why it was not run (e.g. a target model not in the profile)
    replay: list = field(default_factory=list)  # trainguard.stores.golden.Outcome per golden run of the targets
    bands_run: bool = True  # False: --replay-only, the outcome bands were not trained

    @property
    def caught_by(self) -> list[compare.Verdict]:
        return [v for v in self.verdicts if not v.passed]

    @property
    def caught_by_replay(self) -> list:
        return [o for o in self.replay if not o.passed and o.status != golden.MISSING]

    @property
    def caught(self) -> bool:
        return bool(self.caught_by) or bool(self.caught_by_replay)


# --------------------------------------------------------------------------- the injections


def _engine():
    """trainguard.engines.engine, imported when an injection applies: listing the injections (a plug-in's faults
    name them) imports no torch."""
    from ..engines import engine

    return engine


@contextlib.contextmanager
def _replaced(obj, name: str, value) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _with_dataset(change: Callable):
    """Train on a changed copy of the matrix's data set. The run keeps the night's data fingerprint (computed
    first): the injection must be caught by the checks, not by the baseline's data-mismatch guard."""
    def apply(matrix):
        matrix.data_fingerprint  # noqa: B018
        return _replaced(matrix, "_dataset", change(matrix.dataset))
    return apply


def _half_the_images(ds):
    keep = np.arange(len(ds.x_train)) % 2 == 0
    return dataclasses.replace(ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep])


def _noisy_labels(fraction: float):
    def change(ds):
        rng = np.random.default_rng(12345)
        labels = ds.y_train.copy()
        flip = rng.random(len(labels)) < fraction
        labels[flip] = rng.integers(0, 10, size=int(flip.sum()), dtype=labels.dtype)
        return dataclasses.replace(ds, y_train=labels)
    return change


def _permuted_labels(ds):
    return dataclasses.replace(ds, y_train=np.random.default_rng(12345).permutation(ds.y_train))


def _training_change(**changes):
    """Every model of the profile trains with these TrainConfig fields changed (e.g. lr)."""
    def apply(matrix):
        profile = matrix.profile
        scaled = {model: dataclasses.replace(profile.training(model), **{
            k: (v(getattr(profile.training(model), k)) if callable(v) else v) for k, v in changes.items()})
            for model in profile.models}
        return _replaced(matrix, "profile", dataclasses.replace(
            profile, per_model_training=tuple(sorted(scaled.items()))))
    return apply


def _inputs_in_unit_range(matrix):
    """Preprocessing bug: pixels scaled to [0, 1] instead of [-1, 1] (train and evaluation alike)."""
    original = _engine().normalize

    def normalize(batch, inputs="pm1"):
        return (original(batch, inputs) + 1.0) / 2.0 if inputs == "pm1" else original(batch, inputs)
    return _replaced(_engine(), "normalize", normalize)


def _relu_to_tanh(matrix):
    """Model bug: every ReLU of the network built as Tanh."""
    import torch.nn as nn

    from .. import models

    original = models.build

    def build(name, **kwargs):
        model = original(name, **kwargs)
        for module in list(model.modules()):
            for child_name, child in module.named_children():
                if isinstance(child, nn.ReLU):
                    setattr(module, child_name, nn.Tanh())
        return model
    return _replaced(_engine().models, "build", build)


def _evaluate_in_train_mode(matrix):
    """Evaluation bug: model.eval() forgotten, so dropout stays on and BatchNorm normalises with the
    test batch's own statistics (and updates its running ones)."""
    original = _engine().evaluate

    def evaluate(model, *args, **kwargs):
        model.train()
        model.eval = lambda: model  # the forgotten call
        try:
            return original(model, *args, **kwargs)
        finally:
            del model.eval
    return _replaced(_engine(), "evaluate", evaluate)


def _label_smoothing(amount: float):
    """A regulariser: the training loss with label smoothing (evaluation keeps plain cross-entropy)."""
    def apply(matrix):
        import torch.nn as nn

        return _replaced(_engine(), "make_criterion", lambda config: nn.CrossEntropyLoss(label_smoothing=amount))
    return apply


def _crop_padding(pad: int):
    def apply(matrix):
        return _replaced(_engine(), "CROP_PAD", pad)
    return apply


def _flip_probability(p: float):
    """Augmentation detail: images flipped with probability ``p`` instead of 0.5 (the same random numbers)."""
    def apply(matrix):
        import torch

        def draws(n, kind, rng):
            if kind == "none":
                return None, None
            flip = torch.rand(n, generator=rng).lt(p)
            pad = _engine().CROP_PAD
            offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=rng) if kind == "flip_crop" else None
            return flip, offsets
        return _replaced(_engine(), "augment_draws", draws)
    return apply


def _no_reshuffle(matrix):
    """Data-order detail: the first epoch's order reused every epoch (the shuffle drawn once)."""
    first = {}
    original = _engine().epoch_order

    def order(n, rng, device):
        if id(rng) not in first:
            first[id(rng)] = original(n, rng, device)
        return first[id(rng)]
    return _replaced(_engine(), "epoch_order", order)


def _one_image_fewer(matrix):
    """Data-order detail: the last image of every epoch's order dropped (an off-by-one in a loader)."""
    original = _engine().epoch_order
    return _replaced(_engine(), "epoch_order", lambda n, rng, device: original(n, rng, device)[:-1])


def _test_time_flip(matrix):
    """Evaluation detail: the test and validation images evaluated mirrored (training untouched)."""
    original = _engine().evaluate

    def evaluate(model, images, *args, **kwargs):
        return original(model, images.flip(3), *args, **kwargs)
    return _replaced(_engine(), "evaluate", evaluate)


CHEAP = ("Baseline1", "NewModel1")
CI_INJECTIONS = (
    Injection("half-data", "data", "every second training image dropped (a loader filter bug)", CHEAP,
              _with_dataset(_half_the_images)),
    Injection("label-noise-10", "labels", "10 % of the training labels replaced by random classes", CHEAP,
              _with_dataset(_noisy_labels(0.10))),
    Injection("unit-range-inputs", "preprocessing", "pixels scaled to [0, 1] instead of [-1, 1]", CHEAP,
              _inputs_in_unit_range),
    Injection("lr-halved", "optimiser", "learning rate 0.005 instead of 0.01", CHEAP,
              _training_change(lr=lambda lr: lr / 2)),
    Injection("relu-to-tanh", "model", "every ReLU built as Tanh", ("NewModel1",), _relu_to_tanh),
    Injection("eval-in-train-mode", "evaluation", "model.eval() forgotten before evaluation (dropout on, "
              "BatchNorm on batch statistics)", ("NewModel2",), _evaluate_in_train_mode),
)
ALL_MODELS = ("Baseline1", "Baseline2", "NewModel1", "NewModel2")
SUBTLE_INJECTIONS = (
    Injection("lr-plus-1pct", "optimiser", "learning rate 1 % higher (0.0101 instead of 0.01)", CHEAP,
              _training_change(lr=lambda lr: lr * 1.01)),
    Injection("weight-decay-5e-4", "regulariser", "weight decay 5e-4 added (as common image-classification recipes have it)",
              ALL_MODELS, _training_change(weight_decay=5e-4)),
    Injection("label-smoothing-0.1", "regulariser", "training loss with label smoothing 0.1", CHEAP,
              _label_smoothing(0.1)),
    Injection("crop-pad-3", "augmentation", "random crops padded by 3 pixels instead of 4", ("NewModel2",),
              _crop_padding(3)),
    Injection("flip-p-0.4", "augmentation", "horizontal flips with probability 0.4 instead of 0.5", ("NewModel2",),
              _flip_probability(0.4)),
    Injection("no-reshuffle", "data order", "the first epoch's order reused every epoch", CHEAP, _no_reshuffle),
    Injection("one-image-fewer", "data order", "the last image of every epoch's order dropped", CHEAP,
              _one_image_fewer),
    Injection("test-time-flip", "evaluation", "test and validation images evaluated mirrored", CHEAP,
              _test_time_flip),
)
#: The gross injection the fast suite must catch on generated data.
GROSS = Injection("permuted-labels", "labels", "training labels permuted (no relation to the images left)",
                  ("Baseline1",), _with_dataset(_permuted_labels))


# --------------------------------------------------------------------------- running them


def replay_under(matrix, injection: Injection, printer=print) -> list:
    """The golden runs of ``injection``'s target models replayed under it."""
    from ..replay import golden_runs as replay

    names = [n for n in matrix.profile.golden_names() if n in injection.targets]
    if not names:
        return []
    with injection.apply(matrix):
        return replay.replay(matrix, names, printer)


def run_injection(matrix, injection: Injection, printer=print, log=None, bands: bool = True,
                  replay: bool = True) -> InjectionResult:
    """Replay the golden runs under ``injection`` (``replay``), then train its targets under it (fresh, never
    cached) and check them against the baseline (``bands``)."""
    missing = [m for m in injection.targets if m not in matrix.profile.models]
    if missing:
        return InjectionResult(injection, skipped=f"profile {matrix.profile.name} has no {', '.join(missing)}")
    replayed = replay_under(matrix, injection, printer) if replay else []
    if not bands:
        return InjectionResult(injection, replay=replayed, bands_run=False)
    outcome = _run_bands(matrix, injection, printer, log)
    outcome.replay = replayed
    return outcome


def _judged(session, cases) -> list[compare.Verdict]:
    """The cases' runs executed (under the injection), then their verdicts through the night's one judging policy
    (checks.CheckSession.judge)."""
    from ..night.execute import execute_case

    verdicts = []
    for kind, case in cases:
        execute_case(session, kind, case, session.matrix.printer)
        verdicts += session.judge(kind, case).verdicts
    return verdicts


def _run_bands(matrix, injection: Injection, printer, log) -> InjectionResult:
    """Train the targets under the injection and judge, exactly as a night does, every enabled kind's cases that
    read them (cases of other models only would judge the clean runs again). The other models a cross-model case
    reads are taken clean (cache or trained) before the injection is applied."""
    from ..checks import CheckSession
    from ..checks.baseline import checkable

    if "baseline" in matrix.profile.checks and (problem := checkable(matrix)[1]):
        return InjectionResult(injection, skipped=problem)
    from ..runs.training import deliver
    from ..stores.results import ResultStore
    from ..stores.runlog import RunLog

    session = CheckSession(matrix)
    cases = [(kind, case) for kind, case in session.cases()
             if case.group in injection.targets or case.group == "cross-model"]
    clean = {(m, s) for kind, case in cases for m, _, s in kind.runs(session, case) if m not in injection.targets}
    for model, seed in sorted(clean):
        deliver(matrix, model, seed)
    saved = matrix.histories, matrix.store, matrix.log, list(matrix.trained)
    matrix.histories = {key: h for key, h in saved[0].items() if key in clean}
    matrix.store = ResultStore(None)  # an injected run must never land in (or come from) the cache,
    matrix.log = RunLog(log)  # nor in the night's run log, where a re-render would take it for a clean run
    try:
        with injection.apply(matrix):
            printer(f"[trainguard] selftest {injection.name}: training {', '.join(injection.targets)} "
                    f"(seeds {', '.join(map(str, matrix.seeds))}) with {injection.description}")
            verdicts = _judged(session, cases)
    finally:
        matrix.histories, matrix.store, matrix.log, matrix.trained = saved
    return InjectionResult(injection, verdicts)


def run_selftest(matrix, injections=CI_INJECTIONS, printer=print, log=None, bands: bool = True,
                 replay: bool = True) -> list[InjectionResult]:
    """Every injection in turn; ``log``: a run log of its own for the injected runs (None: not logged);
    ``bands=False``: the replay only (seconds per injection instead of a night's training)."""
    return [run_injection(matrix, injection, printer, log, bands, replay) for injection in injections]


def by_name(names) -> tuple[Injection, ...]:
    known = {i.name: i for i in (*CI_INJECTIONS, *SUBTLE_INJECTIONS, GROSS)}
    unknown = [n for n in names if n not in known]
    if unknown:
        from ..core.spec import ConfigError

        raise ConfigError(f"unknown injection(s) {unknown}; known: {', '.join(known)}")
    return tuple(known[n] for n in names)


def replay_cell(o: InjectionResult) -> str:
    """The replay's verdict for the table: where each changed golden run first moved."""
    if o.skipped:
        return "not run"
    if not o.replay:
        return "no golden runs"
    caught = o.caught_by_replay
    if not caught:
        return "**missed**: " + ", ".join(f"{r.name} {r.status}" for r in o.replay)
    cells = []
    for r in caught:
        where = r.beyond or r.first
        cells.append(f"{r.name}: {r.status} at {where.where()} ({where.series})" if where else f"{r.name}: {r.status}")
    return "; ".join(cells)


def bands_cell(o: InjectionResult) -> str:
    if o.skipped:
        return o.skipped
    if not o.bands_run:
        return "not run (--replay-only)"
    caught = o.caught_by
    if not caught:
        return f"**none** of {len(o.verdicts)}"
    return (f"{len(caught)} of {len(o.verdicts)}: " + "; ".join(
        f"{v.subject} {v.metric} ({v.measured:.4g} vs band {v.expected - v.allowed:.4g}…{v.expected + v.allowed:.4g})"
        if v.expected is not None and v.allowed is not None else f"{v.subject} {v.metric}"
        for v in caught[:3]) + (" …" if len(caught) > 3 else ""))


def outcome_table(outcomes: list[InjectionResult]) -> pd.DataFrame:
    records = []
    for o in outcomes:
        records.append({
            "injection": o.injection.name, "kind": o.injection.kind, "what": o.injection.description,
            "trained": ", ".join(o.injection.targets),
            "result": "not run" if o.skipped else ("caught" if o.caught else "**MISSED**"),
            "replay (first step that moved)": replay_cell(o),
            "outcome bands that failed": bands_cell(o),
        })
    return pd.DataFrame.from_records(records)


def selftest_section(outcomes: list[InjectionResult]) -> str:
    run = [o for o in outcomes if not o.skipped]
    caught = sum(o.caught for o in run)
    by_replay = sum(bool(o.caught_by_replay) for o in run)
    banded = [o for o in run if o.bands_run]
    by_bands = sum(bool(o.caught_by) for o in banded)
    return "\n".join(["## Detection self-test", "",
                      f"{caught} of {len(run)} injected regressions caught: {by_replay} of {len(run)} by the replay of "
                      f"the golden runs, {by_bands} of {len(banded)} by the outcome bands (each trained on the run's "
                      f"seeds, checked with the night's derived bands; nothing injected is cached).", "",
                      outcome_table(outcomes).to_markdown(index=False, disable_numparse=True), ""])


def report_text(matrix, outcomes: list[InjectionResult]) -> str:
    """The self-test's markdown report (``trainguard selftest --report``): the environment, the caught/missed table,
    and how the bands were derived."""
    import pandas as pd

    from ..checks import CheckSession
    from ..night.judge import statistics_summary
    from ..report.markdown import markdown_table

    environment = matrix.environment()
    stats = statistics_summary(CheckSession(matrix))
    return "\n".join([f"# trainguard self-test — profile {matrix.profile.name}", "",
                      markdown_table(pd.DataFrame({"": list(environment), "value": [str(v) for v in environment.values()]})),
                      "", selftest_section(outcomes), "## Statistics", "", *[f"- {line}" for line in stats["lines"]], ""])
