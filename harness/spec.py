"""What a run is: profiles (TOML files) parsed into frozen, validated dataclasses.

A profile names the data, the models, the epoch budgets, the seeds, the training
hyperparameters and the comparison tolerances. Everything that determines a
result lives here, so that :func:`RunSpec.key` can hash it for the result cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PROFILES_DIR = Path(__file__).parent / "profiles"

#: Metrics the comparison understands, with the unit shown in reports.
METRICS = ("train_loss", "train_acc", "test_acc")
METRIC_LABELS = {
    "train_loss": "Train Loss",
    "train_acc": "Train Accuracy",
    "test_acc": "Test Accuracy",
    "test_loss": "Test Loss",
}
CHECKS = ("baseline", "published", "ranking", "budget_improves")
DATASETS = ("cifar10", "synthetic")


class ConfigError(ValueError):
    """A profile, baseline or option is malformed; the message names the file and key."""


OPTIMIZERS = ("sgd", "adam")
INPUT_SCALES = ("pm1", "raw")  # pm1: pixels to [-1, 1]; raw: 0–255 as floats (the MNIST report's choice)
# Training-time augmentation, done per batch on the device: none; flip = random horizontal
# flip; flip_crop = flip + random 32x32 crop of the image zero-padded by 4 pixels (the
# torchvision RandomHorizontalFlip + RandomCrop(32, padding=4) of course code).
AUGMENTATIONS = ("none", "flip", "flip_crop")


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 0.01
    momentum: float = 0.0
    batch_size: int = 32
    eval_batch_size: int = 1000
    weight_decay: float = 0.0
    optimizer: str = "sgd"
    inputs: str = "pm1"
    augment: str = "none"


@dataclass(frozen=True)
class Tolerance:
    """Allowed deviation from a baseline mean: ``abs + k_std * std``.

    Additive, like numpy's ``atol + rtol*|b|``: the absolute part is a floor that
    survives a baseline whose few seeds happened to agree closely; the k_std part
    scales with the spread that was actually measured.
    """

    abs: float = 0.0
    k_std: float = 0.0

    def allowed(self, std: float) -> float:
        return self.abs + self.k_std * std


@dataclass(frozen=True)
class PublishedCheck:
    """The comparison with the report's published table: |mean over ``seeds`` − published| ≤ band.

    Bands are absolute (points of accuracy, units of loss): the published table is a single
    run with no spread to scale by. A metric without a band is shown but not checked.
    """

    bands: tuple[tuple[str, float], ...] = (("train_loss", 0.10), ("test_acc", 2.5))
    seeds: tuple[int, ...] = ()  # () = the run's seed alone

    def band(self, metric: str) -> float | None:
        return dict(self.bands).get(metric)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    dataset: str
    train_per_class: int | None  # None = the whole training split
    test_images: int | None  # None = the whole test split; else its first N
    budgets: tuple[int, ...]
    models: tuple[str, ...]
    seed: int
    baseline_seeds: tuple[int, ...]
    checks: tuple[str, ...]
    default_training: TrainConfig
    per_model_training: tuple[tuple[str, TrainConfig], ...] = ()
    tolerances: tuple[tuple[str, Tolerance], ...] = ()
    source: str = ""
    mnist: object = None  # harness.overfit.OverfitConfig when the profile runs Experiment 1
    published: PublishedCheck = PublishedCheck()

    @property
    def max_epochs(self) -> int:
        return max(self.budgets)

    def training(self, model: str) -> TrainConfig:
        return dict(self.per_model_training).get(model, self.default_training)

    def tolerance(self, metric: str) -> Tolerance:
        return dict(self.tolerances).get(metric, Tolerance())

    def with_models(self, models: tuple[str, ...]) -> "Profile":
        return dataclasses.replace(self, models=models)


@dataclass(frozen=True)
class RunSpec:
    """One training run: a model trained once to the profile's largest budget."""

    profile: str
    model: str
    seed: int
    epochs: int
    training: TrainConfig
    data_fingerprint: str
    device_class: str
    code_fingerprint: str = ""
    versions: tuple[tuple[str, str], ...] = field(default=())

    def key(self) -> str:
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def load_profile(name_or_path: str) -> Profile:
    """Load a profile by name (``ci``) or by path to a TOML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILES_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise ConfigError(
                f"unknown profile {name_or_path!r}: choose one of {', '.join(available_profiles())}, "
                f"or pass the path to a .toml profile file"
            )
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"profile file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profile file {path} is not valid TOML: {exc}") from None
    return parse_profile(raw, source=str(path))


def _require(raw: dict, key: str, kind, source: str):
    if key not in raw:
        raise ConfigError(f"{source}: missing key {key!r}")
    value = raw[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{source}: key {key!r} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _train_config(raw: dict, base: TrainConfig, where: str) -> TrainConfig:
    known = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    values = {}
    for key, value in raw.items():
        if key == "per_model":
            continue
        if key not in known:
            raise ConfigError(f"{where}: unknown training key {key!r}; known: {', '.join(known)}")
        choices = {"optimizer": OPTIMIZERS, "inputs": INPUT_SCALES, "augment": AUGMENTATIONS}.get(key)
        if choices is not None:
            if value not in choices:
                raise ConfigError(f"{where}: training key {key!r} must be one of {', '.join(choices)}, got {value!r}")
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: training key {key!r} must be a number, got {value!r}")
        values[key] = value
    config = dataclasses.replace(base, **values)
    if config.batch_size < 1 or config.eval_batch_size < 1 or config.lr <= 0:
        raise ConfigError(f"{where}: batch sizes must be >= 1 and lr > 0, got {config}")
    return config


def _published_check(raw: dict, source: str) -> PublishedCheck:
    where = f"{source} [published]"
    bands = dict(PublishedCheck().bands)
    seeds: tuple[int, ...] = ()
    for key, value in raw.items():
        if key == "seeds":
            if not isinstance(value, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in value):
                raise ConfigError(f"{where}: 'seeds' must be a list of integers, got {value!r}")
            seeds = tuple(value)
        elif key in METRICS:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{where}: band {key!r} must be a number >= 0, got {value!r}")
            bands[key] = float(value)
        else:
            raise ConfigError(f"{where}: unknown key {key!r}; known: seeds, {', '.join(METRICS)}")
    return PublishedCheck(tuple(sorted(bands.items())), seeds)


def parse_profile(raw: dict, source: str = "<profile>") -> Profile:
    from models import MODEL_NAMES  # late import: models import torch

    name = _require(raw, "name", str, source)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or ".." in name:
        # The name becomes a directory under baselines/ and the result cache: keep it a plain name.
        raise ConfigError(f"{source}: 'name' {name!r} must be a plain name (letters, digits, '_', '-', '.'; "
                          f"no path separators or '..')")
    dataset = _require(raw, "dataset", str, source)
    if dataset not in DATASETS:
        raise ConfigError(f"{source}: dataset {dataset!r} is not one of {', '.join(DATASETS)}")
    budgets = tuple(_require(raw, "budgets", list, source))
    if not budgets or any(not isinstance(b, int) or b < 1 for b in budgets):
        raise ConfigError(f"{source}: 'budgets' must be a non-empty list of positive integers, got {budgets!r}")
    models = tuple(_require(raw, "models", list, source))
    for model in models:
        if model not in MODEL_NAMES:
            raise ConfigError(f"{source}: unknown model {model!r}; known: {', '.join(MODEL_NAMES)}")
    checks = tuple(raw.get("checks", ["baseline"]))
    for check in checks:
        if check not in CHECKS:
            raise ConfigError(f"{source}: unknown check {check!r}; known: {', '.join(CHECKS)}")
    training_raw = raw.get("training", {})
    default_training = _train_config(training_raw, TrainConfig(), f"{source} [training]")
    per_model = []
    for model, override in sorted(training_raw.get("per_model", {}).items()):
        if model not in MODEL_NAMES:
            raise ConfigError(f"{source}: [training.per_model.{model}] names an unknown model")
        per_model.append((model, _train_config(override, default_training, f"{source} [training.per_model.{model}]")))
    tolerances = []
    for metric, tol in sorted(raw.get("tolerance", {}).items()):
        if metric not in METRICS:
            raise ConfigError(f"{source}: [tolerance.{metric}] is not a metric; known: {', '.join(METRICS)}")
        unknown = set(tol) - {"abs", "k_std"}
        if unknown:
            raise ConfigError(f"{source}: [tolerance.{metric}] has unknown keys {sorted(unknown)}; use abs and k_std")
        tolerances.append((metric, Tolerance(float(tol.get("abs", 0.0)), float(tol.get("k_std", 0.0)))))
    baseline_seeds = tuple(raw.get("baseline_seeds", [0, 1, 2]))
    if len(baseline_seeds) < 2:
        raise ConfigError(f"{source}: 'baseline_seeds' needs at least 2 seeds to measure a spread")
    published = _published_check(raw.get("published", {}), source)
    mnist = None
    if "mnist" in raw:
        from .overfit import OverfitConfig  # late import: overfit imports this module

        try:
            mnist = OverfitConfig.from_profile(raw["mnist"], source)
        except TypeError as exc:
            raise ConfigError(f"{source}: [mnist]: {exc}") from None
    return Profile(
        mnist=mnist,
        published=published,
        name=name,
        description=raw.get("description", ""),
        dataset=dataset,
        train_per_class=raw.get("train_per_class"),
        test_images=raw.get("test_images"),
        budgets=tuple(sorted(budgets)),
        models=models,
        seed=int(raw.get("seed", 0)),
        baseline_seeds=baseline_seeds,
        checks=checks,
        default_training=default_training,
        per_model_training=tuple(per_model),
        tolerances=tuple(tolerances),
        source=source,
    )
