"""Golden runs: the step-by-step trace of a short, fixed training run, its measured rounding noise, and
the comparison of a replay with it. Pure data and file I/O; what trains them is trainguard.replay.golden_runs.

A golden file holds, for one model (one part; the format holds several, each a training run of its own):

- per optimiser step: the training loss, the gradient norm, the learning rate;
- per epoch: the engine's evaluation of the model as it stands (train/test/validation loss and accuracy);
- a digest of the final weights;
- the **noise envelope**: the same run repeated under perturbations that change only rounding (another
  thread count, a one-ulp nudge of the initial weights, a lower instruction set), and for every step the
  largest relative divergence any of them reached by then. On the golden's own environment a replay
  must be identical; on another one, a replay inside the envelope is "numerics differ", one beyond it
  is a change;
- provenance: the environment (versions, threads, CPU and instruction set), data and code fingerprints.

Values are stored as JSON numbers, which Python writes with ``repr``: they read back bit for bit.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.spec import ConfigError
from ..core.storage import reading_together, write_together
from .references import INPUTS_FILE, References  # noqa: F401 (INPUTS_FILE re-exported)

FORMAT_VERSION = 1
STEP_SERIES = ("loss", "grad_norm", "lr")  # in the order a step produces them
LABELS = {"loss": "train loss", "grad_norm": "gradient norm", "lr": "learning rate", "train_loss": "epoch train loss",
          "train_acc": "epoch train accuracy", "test_loss": "test loss", "test_acc": "test accuracy",
          "val_loss": "validation loss", "val_acc": "validation accuracy", "eval_repeat_diff": "evaluation repeat difference"}
EVALUATION_SERIES = ("test_loss", "test_acc", "val_loss", "val_acc", "eval_repeat_diff")
TINY = 1e-30  # below it, a value counts as zero for the relative difference
# Four ulps of float32 at their widest relative spacing (2**-23 each). A value computed in float32 that a
# rounding difference touched moves by one or a few ulps (the same terms summed in another order), so the
# noise envelope never goes below this: a perturbation that happened not to touch a value says nothing about
# one that does. Real recipe changes move the first value they touch by orders of magnitude more
# (docs/replay.md measures the margin).
FLOAT32_RESOLUTION = 4 * 2.0 ** -23


@dataclass
class TracePart:
    """One training run of a golden (a model's: one part per golden)."""

    label: str  # "" for a model's single run; the run's name where a golden holds several
    steps_per_epoch: int
    steps: dict[str, list[float]]  # STEP_SERIES present, one value per optimiser step
    epochs: dict[str, list[float]]  # per epoch, after it
    weights: str  # sha256 of the final weights (and buffers) in a fixed order

    def events(self):
        """(time, series, index, value) in the order training produces them: an epoch's evaluation
        comes after its last step."""
        for name, values in self.steps.items():
            for i, value in enumerate(values):
                yield (i + 1, STEP_SERIES.index(name) if name in STEP_SERIES else 9), name, i, value
        for name, values in self.epochs.items():
            for i, value in enumerate(values):
                yield ((i + 1) * self.steps_per_epoch + 0.5, 0), name, i, value


@dataclass
class Trace:
    name: str  # the model
    parts: list[TracePart]
    data: str  # fingerprint of the data the golden run trains and evaluates on
    environment: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> "Trace":
        return cls(raw["name"], [TracePart(**p) for p in raw["parts"]], raw["data"], raw.get("environment", {}))

    @property
    def steps(self) -> int:
        return sum(len(p.steps.get("loss", [])) for p in self.parts)


def relative(a: float, b: float) -> float:
    """|a − b| relative to the larger magnitude; 0 for equal values (NaN equals NaN here), inf for NaN vs a number."""
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return math.inf
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale > TINY else 0.0


def divergence(golden: Trace, other: Trace) -> list[dict[str, list[float]]]:
    """Per part and series, the relative difference at each index (missing values: inf)."""
    out = []
    for g, o in zip(golden.parts, other.parts):
        series = {}
        for kind in ("steps", "epochs"):
            for name, values in getattr(g, kind).items():
                series[name] = series_divergence(values, getattr(o, kind).get(name, []))
        out.append(series)
    return out


def running_max(values: list[float]) -> list[float]:
    out, top = [], 0.0
    for v in values:
        top = max(top, v)
        out.append(top)
    return out


def envelope(golden: Trace, perturbed: list[Trace]) -> list[dict[str, list[float]]]:
    """For every part, series and index: the largest relative divergence any perturbed run reached at or before
    that index, and at least FLOAT32_RESOLUTION. Divergence from a rounding difference grows as training goes
    on, so the envelope is a running max."""
    runs = [divergence(golden, p) for p in perturbed]
    return [{name: noise_envelope([run[i][name] for run in runs], len(_values(part, name)))
             for name in [*part.steps, *part.epochs]} for i, part in enumerate(golden.parts)]


def noise_envelope(divergences: list[list[float]], length: int) -> list[float]:
    """One series' envelope over its ``length`` indices from the relative divergences of its perturbed runs (one
    list per run): the largest any run reached at or before each index, never below FLOAT32_RESOLUTION."""
    per_index = [max((d[j] for d in divergences), default=0.0) for j in range(length)]
    return [max(v, FLOAT32_RESOLUTION) for v in running_max(per_index)]


def series_divergence(values: list[float], other: list[float]) -> list[float]:
    """The relative difference at each index of ``values`` (a value ``other`` lacks: inf)."""
    return [relative(v, other[i]) if i < len(other) else math.inf for i, v in enumerate(values)]


def _values(part: TracePart, name: str) -> list[float]:
    return part.steps.get(name) if name in part.steps else part.epochs[name]


def excess(golden: Trace, run: Trace, env: list[dict[str, list[float]]]) -> dict[str, float]:
    """Per series, the largest ratio of ``run``'s divergence to the envelope ``env`` (1 or less: inside)."""
    out: dict[str, float] = {}
    for i, part in enumerate(divergence(golden, run)):
        for name, values in part.items():
            out[name] = max([out.get(name, 0.0), *(d / env[i][name][j] for j, d in enumerate(values))])
    return out


def noise_factors(golden: Trace, perturbed: dict[str, Trace]) -> tuple[dict[str, float], dict[str, float]]:
    """Leave one out: how far each perturbation went beyond the envelope of the others. Returns (per series: the
    largest such excess, at least 1 — it widens the envelope into the tolerance a replay on another environment
    is judged by; per perturbation: its largest excess over the judged series). Rounding noise is heavy-tailed
    (a one-ulp change that flips one ReLU jumps where the others stayed at an ulp), so the widening is measured
    from how much perturbations of the same kind disagree with one another, series by series."""
    names = list(perturbed)
    if len(names) < 2:
        return {}, {n: 1.0 for n in names}
    per_run = {n: excess(golden, perturbed[n], envelope(golden, [perturbed[o] for o in names if o != n])) for n in names}
    series = {s for e in per_run.values() for s in e if s in JUDGED_ACROSS_ENVIRONMENTS}
    factors = {s: max([1.0, *(e.get(s, 0.0) for e in per_run.values())]) for s in sorted(series)}
    return factors, {n: max((v for s, v in e.items() if s in factors), default=0.0) for n, e in per_run.items()}


# On another environment only continuous quantities are judged against the noise: an accuracy is a count of
# argmax decisions, so a rounding difference either flips none or flips whole images, a jump no envelope of a
# few perturbations can bound. Its changes follow the losses, which are judged.
JUDGED_ACROSS_ENVIRONMENTS = ("loss", "grad_norm", "lr", "train_loss", "test_loss", "val_loss")


@dataclass
class Golden:
    trace: Trace
    envelope: list[dict[str, list[float]]]
    factors: dict[str, float]  # per judged series, the leave-one-out widening: the tolerance is factor × envelope
    perturbations: list[dict]  # name, what it changes, first value it moved, largest divergence, leave-one-out excess
    spec: dict  # what the golden run is: model, seed, epochs, subset, training settings
    provenance: dict  # code fingerprint, commit, time, command

    def tolerance(self, part: int, series: str, index: int) -> float:
        """How far a replay on another environment may diverge here and still be rounding noise (inf: not judged)."""
        if series not in self.factors:
            return math.inf
        return self.factors[series] * self.envelope[part][series][index]

    def to_json(self) -> dict:
        return {"format_version": FORMAT_VERSION, "trace": self.trace.to_json(), "envelope": self.envelope,
                "factors": self.factors, "perturbations": self.perturbations, "spec": self.spec,
                "provenance": self.provenance}

    @classmethod
    def from_json(cls, raw: dict) -> "Golden":
        if raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format_version {raw.get('format_version')!r}, expected {FORMAT_VERSION}")
        return cls(Trace.from_json(raw["trace"]), raw["envelope"], {k: float(v) for k, v in raw["factors"].items()},
                   raw["perturbations"],
                   raw["spec"], raw["provenance"])


def measure(golden_trace: Trace, perturbed: dict[str, Trace], descriptions: dict[str, str]) -> tuple[list, dict, list[dict]]:
    """(envelope, per-series factors, per-perturbation summary) of ``golden_trace`` under its rounding perturbations."""
    env = envelope(golden_trace, list(perturbed.values()))
    factors, loo = noise_factors(golden_trace, perturbed)
    summary = []
    for name, run in perturbed.items():
        div = divergence(golden_trace, run)
        first = None
        for i, part in enumerate(golden_trace.parts):
            moved = [(t, s, j) for t, s, j, _ in part.events() if div[i][s][j] > 0]
            if moved and first is None:
                _, series, j = min(moved)
                first = {"part": part.label, "series": series, "index": j}
        top = max((d for p in div for v in p.values() for d in v if math.isfinite(d)), default=0.0)
        summary.append({"name": name, "changes": descriptions.get(name, ""), "first_moved": first,
                        "max_relative": top, "excess_over_others": loo[name]})
    return env, factors, summary


# ------------------------------------------------------------------------------------------ comparison

IDENTICAL, NOISE, CHANGED, EVALUATION_CHANGED, INCOMPARABLE, MISSING = (
    "identical", "numerics differ", "changed", "evaluation changed", "cannot compare", "no golden")


@dataclass
class Difference:
    part: str
    series: str
    index: int  # 0-based within the series
    golden: float | None
    replay: float | None
    relative: float
    noise: float  # the envelope at that point
    steps_per_epoch: int
    is_step: bool

    def where(self) -> str:
        arm = f" of the arm {self.part}" if self.part else ""
        if self.is_step:
            epoch, within = divmod(self.index, self.steps_per_epoch)
            return f"step {self.index + 1}{arm} (epoch {epoch + 1}, step {within + 1} of {self.steps_per_epoch})"
        return f"epoch {self.index + 1}{arm}"

    def values(self) -> str:
        if self.replay is None:
            return f"{LABELS.get(self.series, self.series)} {_show(self.golden)} in the golden, missing in the replay"
        return (f"{LABELS.get(self.series, self.series)} {_show(self.golden, self.replay)} → {_show(self.replay, self.golden)} "
                f"(relative {self.relative:.2g}")


def _show(value: float | None, other: float | None = None) -> str:
    """Enough significant digits to see how ``value`` differs from ``other``."""
    if value is None:
        return "—"
    for digits in range(5, 18):
        if other is None or f"{value:.{digits}g}" != f"{other:.{digits}g}":
            return f"{value:.{digits}g}"
    return repr(value)


@dataclass
class Outcome:
    name: str
    status: str
    message: str
    first: Difference | None = None  # the first value that moved at all
    beyond: Difference | None = None  # the first value beyond the measured noise
    environment_diff: dict = field(default_factory=dict)  # key → (golden's, this one's)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status in (IDENTICAL, NOISE)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> "Outcome":
        raw = dict(raw)
        for key in ("first", "beyond"):
            raw[key] = Difference(**raw[key]) if raw.get(key) else None
        raw["environment_diff"] = {k: tuple(v) for k, v in raw.get("environment_diff", {}).items()}
        return cls(**raw)

    @property
    def step(self) -> int | None:
        """The global step (1-based, over the parts in order) of the first value that moved."""
        where = self.beyond or self.first
        return None if where is None else where.index + 1


def environment_diff(golden: dict, current: dict) -> dict:
    return {k: (golden.get(k), current.get(k)) for k in sorted(set(golden) | set(current)) if golden.get(k) != current.get(k)}


def describe_environment_diff(diff: dict) -> str:
    return ", ".join(f"{k} {a or '—'} → {b or '—'}" for k, (a, b) in diff.items())


def _differences(golden: Golden, replay: Trace) -> tuple[Difference | None, Difference | None, bool]:
    """The first value that differs at all, the first beyond the tolerance, and whether every step value
    is within it."""
    div = divergence(golden.trace, replay)
    first = beyond = None
    steps_within = True
    for i, part in enumerate(golden.trace.parts):
        theirs = replay.parts[i] if i < len(replay.parts) else None
        for _, series, j, value in sorted(part.events(), key=lambda e: e[0]):
            d = div[i][series][j] if i < len(div) else math.inf
            noise = golden.tolerance(i, series, j)
            if d == 0:
                continue
            is_step = series in part.steps
            replay_value = None
            if theirs is not None:
                values = theirs.steps.get(series) if is_step else theirs.epochs.get(series)
                replay_value = values[j] if values is not None and j < len(values) else None
            diff = Difference(part.label, series, j, value, replay_value, d, noise, part.steps_per_epoch, is_step)
            first = first or diff
            if d > noise:
                beyond = beyond or diff
                steps_within = steps_within and not is_step
        if beyond is not None:
            break
    return first, beyond, steps_within


REGEN = "if the change is intended, rewrite the golden: trainguard baselines update --golden --profile {profile}"


def compare(golden: Golden, replay: Trace, spec: dict, profile: str) -> Outcome:
    """The replay's verdict against ``golden`` (see the module doc); ``spec``: the replay's own golden spec."""
    name = golden.trace.name
    structural = {k: (golden.spec.get(k), spec.get(k)) for k in ("seed", "epochs", "subset", "arms")
                  if golden.spec.get(k) != spec.get(k)}
    if structural:
        what = "; ".join(f"{k}: golden {a!r}, now {b!r}" for k, (a, b) in structural.items())
        return Outcome(name, INCOMPARABLE, f"{name}: cannot compare with the golden run: its definition changed ({what}); "
                                           f"write it anew with `trainguard baselines update --golden --profile {profile}`")
    env = environment_diff(golden.trace.environment, replay.environment)
    first, beyond, _ = _differences(golden, replay)
    steps_identical = len(replay.parts) == len(golden.trace.parts) and all(
        g.steps == r.steps for g, r in zip(golden.trace.parts, replay.parts))
    weights_equal = len(replay.parts) == len(golden.trace.parts) and all(
        g.weights == r.weights for g, r in zip(golden.trace.parts, replay.parts))
    data_note = (f"; the data differ from the golden's (fingerprint {golden.trace.data[:12]} → {replay.data[:12]}: "
                 f"the loader or the subset changed)" if replay.data != golden.trace.data else "")
    settings = {k: (golden.spec.get("training", {}).get(k), v) for k, v in spec.get("training", {}).items()
                if golden.spec.get("training", {}).get(k) != v}
    settings_note = ("; the profile's training settings differ from the golden's: "
                     + ", ".join(f"{k} {a} → {b}" for k, (a, b) in settings.items()) if settings else "")
    regen = REGEN.format(profile=profile)
    if first is None and weights_equal and not data_note:
        return Outcome(name, IDENTICAL, f"{name}: identical to the golden run ({replay.steps} steps and every "
                                        f"evaluation bit for bit, final weights included)", environment_diff=env)
    if not env:  # the golden's own environment: exactness is expected, any difference is a change
        return _on_its_own_environment(name, first, beyond, steps_identical, env, settings_note, data_note, regen)
    return _on_another_environment(golden, replay, name, first, beyond, env, settings_note, data_note, regen)


def _on_its_own_environment(name: str, first, beyond, steps_identical: bool, env: dict, settings_note: str,
                            data_note: str, regen: str) -> Outcome:
    """A replay on the golden's own environment that is not identical: a change, named where it first shows."""
    if first is None:
        return Outcome(name, CHANGED, f"{name}: every logged value is identical but the final weights differ "
                                      f"(a change that no logged quantity shows yet, e.g. a buffer){data_note}; {regen}")
    # the first value that moved is an evaluation, every step before it bit for bit: the evaluation changed
    # first (training may follow: an evaluation left in train mode draws dropout's random numbers and updates
    # BatchNorm's statistics, which later steps then see)
    status = EVALUATION_CHANGED if not first.is_step else CHANGED
    where = f"evaluation changed at {first.where()}" if status == EVALUATION_CHANGED else f"changed at {first.where()}"
    if status == EVALUATION_CHANGED and not steps_identical:
        where += " (training steps after it differ too: they follow from it)"
    noise = (f"; {first.relative / first.noise:.3g}× the rounding noise measured there ({first.noise:.2g})"
             if math.isfinite(first.noise) else "")
    if 0 < first.relative <= first.noise < math.inf:
        noise = (f"; inside the rounding noise measured there ({first.noise:.2g}): an arithmetic-order change "
                 f"(a refactor?) rather than a recipe change")
    return Outcome(name, status, f"{name}: {where}: {first.values()}{noise}){settings_note}{data_note}; {regen}",
                   first=first, beyond=beyond, environment_diff=env)


def _on_another_environment(golden: Golden, replay: Trace, name: str, first, beyond, env: dict, settings_note: str,
                            data_note: str, regen: str) -> Outcome:
    """A replay on another environment (library, threads, ISA): within the measured rounding noise it is not a
    regression; beyond it, a change named where it first leaves the noise."""
    differs = describe_environment_diff(env)
    if beyond is None and not data_note:
        div = divergence(golden.trace, replay)
        share = max((d / golden.tolerance(i, s, j) for i, part in enumerate(div) for s, values in part.items()
                     if s in golden.factors for j, d in enumerate(values)), default=0.0)
        return Outcome(name, NOISE, f"{name}: numerics differ with {differs}; within the measured rounding noise at "
                                    f"every step (at most {share:.2g} of the tolerance); not a regression",
                       first=first, environment_diff=env)
    if beyond is None:  # the data moved, yet every value is inside the noise: still a change of input
        return Outcome(name, CHANGED, f"{name}: changed{data_note} (every value within the noise of {differs}); {regen}",
                       first=first, environment_diff=env)
    # "evaluation changed" needs training steps that are the golden's bit for bit; here they only lie within
    # the noise, which may already be large, so the change is named where it first shows
    where = (f"changed, first beyond the noise at {beyond.where()}" if not beyond.is_step
             else f"changed at {beyond.where()}")
    ratio = f"{beyond.relative / beyond.noise:.3g}× the rounding noise measured there" if beyond.noise > 0 else \
        "no rounding perturbation moved it there"
    return Outcome(name, CHANGED, f"{name}: {where}: {beyond.values()}; {ratio} ({beyond.noise:.2g}); the environment "
                                  f"also differs ({differs}){settings_note}{data_note}; {regen}",
                   first=first, beyond=beyond, environment_diff=env)


# ------------------------------------------------------------------------------------------ files

def missing_message(name: str, path: Path, profile: str) -> str:
    """What a night says where a golden run has no file: where it looked, and the command that writes it."""
    return f"{name}: no golden run at {path}; write it with `trainguard baselines update --golden --profile {profile}`"


def golden_path(baselines_dir: Path | str, profile: str, device_class: str, name: str) -> Path:
    """Where the golden run ``name`` lives (trainguard.stores.references decides)."""
    return References(Path(baselines_dir), profile, device_class, device_class).golden(name)


def golden_bytes(golden: Golden) -> bytes:
    return (json.dumps(golden.to_json(), indent=1, sort_keys=True) + "\n").encode("utf-8")


def write_goldens_together(goldens: dict[Path, Golden], inputs: dict[Path, dict] | None = None) -> None:
    """Every golden of one update replaced together, per directory (storage.write_together), with the fingerprints
    of the night's inputs (``inputs``): an update that dies half way leaves the goldens before it, never some of
    each."""
    by_directory: dict[Path, dict[str, bytes]] = {}
    for path, golden in goldens.items():
        by_directory.setdefault(Path(path).parent, {})[Path(path).name] = golden_bytes(golden)
    for path, fingerprints in (inputs or {}).items():
        by_directory.setdefault(Path(path).parent, {})[Path(path).name] = inputs_bytes(fingerprints)
    for directory, files in by_directory.items():
        write_together(directory, files, "the golden runs")


INPUTS = "inputs"  # the replay's case for the night's data at full scale (beside the golden runs' names)


def inputs_path(baselines_dir: Path | str, profile: str, device_class: str) -> Path:
    """Where the night's inputs fingerprints live (trainguard.stores.references decides)."""
    return References(Path(baselines_dir), profile, device_class, device_class).inputs


def inputs_bytes(fingerprints: dict[str, dict]) -> bytes:
    return (json.dumps({"version": 1, "splits": fingerprints}, indent=1, sort_keys=True) + "\n").encode("utf-8")


def read_inputs(path: Path) -> dict[str, dict] | None:
    """The recorded fingerprints of the night's inputs ({"<data set> train": {"images", "sha256"}, ...}); None if
    there is no file; a ConfigError naming the file if it is unreadable. Read as the goldens are: under their
    directory's lock, after finishing or discarding an interrupted update (storage.reading_together)."""
    path = Path(path)
    with reading_together(path.parent, "the golden runs"):
        return _read_inputs_file(path)


def _read_inputs_file(path: Path) -> dict[str, dict] | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        splits = raw["splits"]
        if not all(isinstance(v.get("images"), int) and isinstance(v.get("sha256"), str) for v in splits.values()):
            raise ValueError("a split without its image count and sha256")
        return splits
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a trainguard inputs file ({exc}); write it again with `trainguard baselines "
                          f"update --golden`") from None


def read_golden(path: Path) -> Golden | None:
    """The golden at ``path``; None if there is none; a ConfigError naming the file if it is unreadable."""
    return read_goldens([path])[Path(path)]


def read_goldens(paths) -> dict[Path, Golden | None]:
    """Several goldens read as one generation: under their directory's lock (never between two moves of a
    concurrent update), after finishing or discarding an update that died half way (storage.reading_together)."""
    paths = [Path(p) for p in paths]
    found: dict[Path, Golden | None] = {}
    for directory in dict.fromkeys(p.parent for p in paths):
        with reading_together(directory, "the golden runs"):
            found.update({p: _read_golden_file(p) for p in paths if p.parent == directory})
    return found


def _read_golden_file(path: Path) -> Golden | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        golden = Golden.from_json(json.loads(text))
        for part in golden.trace.parts:
            for name in [*part.steps, *part.epochs]:
                if not all(math.isfinite(v) for v in _values(part, name)):
                    raise ValueError(f"the series {name!r} holds a value that is not a finite number")
        for part, env in zip(golden.trace.parts, golden.envelope):
            for name in [*part.steps, *part.epochs]:
                if len(env[name]) != len(_values(part, name)):
                    raise ValueError(f"the envelope of {name!r} has {len(env[name])} values, the trace {len(_values(part, name))}")
        return golden
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ConfigError(f"golden file {path} is corrupt or truncated ({type(exc).__name__}: {exc}); it is not "
                          f"trusted: restore it from git or rewrite it with `trainguard baselines update --golden`") from None
