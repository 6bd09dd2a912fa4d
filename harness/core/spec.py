"""What a run is: profiles (TOML files) parsed into frozen, validated dataclasses.

A profile names the data, the models, the epoch budgets, the seeds, the training
hyperparameters and how its bands are derived ([statistics]). Everything that determines a
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

from .storage import ConfigError  # defined with the stores, the lowest layer that raises it

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the installed `trainguard` (harness/ in a checkout)
PROFILES_DIR = PACKAGE_DIR / "profiles"
# The built-in plug-ins' settings files (trainguard/experiments/*.toml), read as profiles by name too: the models'
# machinery runs a plug-in's comparison from them (``--profile NAME``); a night's profiles are PROFILES_DIR's.
PLUGIN_SETTINGS_DIR = PACKAGE_DIR / "experiments"

#: Metrics the comparison understands, with the unit shown in reports.
METRICS = ("train_loss", "train_acc", "test_acc")
PRECISIONS = ("fp32", "bf16")  # --precision: fp32, or bf16 autocast (each its own baseline class)
METRIC_LABELS = {
    "train_loss": "Train Loss",
    "train_acc": "Train Accuracy",
    "test_acc": "Test Accuracy",
    "test_loss": "Test Loss",
    "start_train_loss": "Train Loss at the start (first epochs)",
    "val_acc": "Validation Accuracy",
    "val_loss": "Validation Loss",
}



OPTIMIZERS = ("sgd", "adam")
INPUT_SCALES = ("pm1", "raw")  # pm1: pixels to [-1, 1]; raw: 0–255 as floats (as a model fed raw pixels expects)
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
class Stats:
    """How a profile's checks are calibrated (docs/statistics.md).

    ``false_alarm_rate`` is family-wise: the chance that a clean nightly run fails any band
    check; it is split evenly (Bonferroni) over the run's band checks. ``window`` epochs ending
    at a budget are averaged into the checked statistic (epoch-to-epoch swings average out).
    """

    false_alarm_rate: float = 0.01
    window: int = 3
    power: float = 0.9  # the detection probability the minimum detectable effect is quoted at
    # The start of the learning curve: the train loss averaged over the first ``start_window`` epochs,
    # one band check per model in ``start_models`` (0: off). It sees changes that reach the same end
    # point by another path (an activation, an initialisation): docs/statistics.md.
    start_window: int = 0
    start_models: tuple[str, ...] = ()


@dataclass(frozen=True)
class BandCheck:
    """One band check of a profile: the mean of ``source`` over epochs ``end − window + 1 … end`` of each
    checked seed, averaged over the seeds, against the same statistic of the baseline's seeds."""

    model: str
    budget: int  # the report cell it is shown with
    metric: str  # the verdict's metric key: a METRICS name, or "start_train_loss"
    source: str  # the per-epoch series it reads
    end: int
    window: int


@dataclass(frozen=True)
class GoldenConfig:
    """The profile's golden runs (trainguard.stores.golden, trainguard.replay.golden_runs): per model a short fixed run on a
    small subset of the profile's own data, with the profile's training settings for that model. Replayed step by step, they show any change to
    training or evaluation; ``threads`` is pinned while they run, because the thread count changes rounding."""

    enabled: bool = True
    train_per_class: int = 50  # the first N training images of each class of the profile's training split
    test_images: int = 200  # the first N of its test images
    val_per_class: int = 20  # the first N of each class of its validation split (when it has one)
    epochs: int = 3  # enough for epoch boundaries, reshuffling, augmentation and evaluation to be exercised
    seed: int | None = None  # None: the profile's first baseline seed
    threads: int = 2  # torch (and TensorFlow) threads while a golden run trains
    perturbations: int = 6  # one-ulp nudges of the initial weights measured for the noise envelope (plus threads, ISA)
    isa: bool = True  # also measure a lower instruction set (x86 CPUs; a child process)

    @classmethod
    def from_profile(cls, raw: dict, source: str) -> "GoldenConfig":
        where = f"{source} [golden]"
        known = {f.name: f for f in dataclasses.fields(cls)}
        _retired(raw, source, prefix="golden.")
        unknown = set(raw) - set(known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {', '.join(sorted(known))}")
        for key, value in raw.items():
            if key in ("enabled", "isa"):
                if not isinstance(value, bool):
                    raise ConfigError(f"{where}: {key!r} must be true or false, got {value!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or (value < 1 and key not in ("seed", "val_per_class")):
                raise ConfigError(f"{where}: {key!r} must be a positive integer, got {value!r}")
        return cls(**raw)


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
    source: str = ""
    published: PublishedCheck = PublishedCheck()
    val_per_class: int | None = None  # a validation split of unused training images (reduce())
    check_seeds: tuple[int, ...] = ()  # the seeds a default run trains and checks: held out of the baseline
    stats: "Stats" = None  # how bands are derived (harness/core/stats.py); None = Stats()
    golden: GoldenConfig = GoldenConfig()  # the golden runs replayed step by step (trainguard.replay.golden_runs)
    baselines_dir: str | None = None  # where its baselines live, relative to the profile file (baselines_dir_for)
    # torch (and TensorFlow) threads for every run: the count changes how sums are split, so a baseline is
    # only comparable with runs at its own count. None: the library's default for the machine (reported).
    threads: int | None = None
    # the night's time limit in minutes (trainguard.core.watchdog; --max-minutes wins); None: no limit
    max_minutes: float | None = None
    # experiments of the user's own (FILE.py:NAME, relative to the profile file, or MODULE:NAME) the night guards
    # beside its models: their bands and claims (trainguard.checks.declared_experiments)
    experiments: tuple[str, ...] = ()

    @property
    def max_epochs(self) -> int:
        return max(self.budgets)

    @property
    def cli_name(self) -> str:
        """How a command names this profile: a built-in's name (a built-in plug-in's settings by their file's), or the
        path of a user's profile file."""
        if self.source and Path(self.source).parent.resolve() == PLUGIN_SETTINGS_DIR.resolve():
            return Path(self.source).stem
        if self.source and Path(self.source).parent.resolve() != PROFILES_DIR.resolve():
            return self.source
        return self.name

    def golden_names(self) -> list[str]:
        """The profile's golden runs (trainguard.replay.golden_runs): one per model (a declared experiment's goldens
        are its own: trainguard.replay.experiment_kind)."""
        if not self.golden.enabled:
            return []
        return list(self.models)

    def training(self, model: str) -> TrainConfig:
        return dict(self.per_model_training).get(model, self.default_training)

    @property
    def checked_metrics(self) -> tuple[str, ...]:
        """The metrics every model × budget is checked on against the baseline."""
        return METRICS + (("val_acc",) if self.val_per_class else ())

    @property
    def statistics(self) -> "Stats":
        return self.stats or Stats()

    def band_checks(self) -> list[BandCheck]:
        """Every band check of the models a run of this profile makes (the false-alarm rate is split over these and
        the declared experiments' bands); the checks, the calibration and the statistics tests all read this list."""
        st = self.statistics
        checks = [BandCheck(model, budget, metric, metric, budget, st.window)
                  for model in self.models for budget in self.budgets for metric in self.checked_metrics]
        if st.start_window:
            from .experiment import start_metric  # the contract's naming rule (no torch)

            checks += [BandCheck(model, self.budgets[0], start_metric("train_loss"), "train_loss", st.start_window,
                                 st.start_window) for model in self.models if model in st.start_models]
        return checks


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
    # --stack-seeds: the seeds trained together with this one. Their arithmetic (a grouped convolution
    # over k seeds) may round differently for another k, so the group is part of the key.
    stack: tuple[int, ...] = ()

    def key(self) -> str:
        fields = dataclasses.asdict(self)
        if not self.stack:
            del fields["stack"]  # runs trained one seed at a time keep the keys they always had
        payload = json.dumps(fields, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"100,101"`` → (100, 101): the seeds option of the CLI and the plugin."""
    try:
        seeds = tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"seeds {text!r}: expected integers separated by commas, e.g. 100,101") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {text!r}: expected one or more distinct integers, e.g. 100,101")
    return seeds


def strict_default() -> bool:
    """CI systems set CI=true: there a missing baseline or a data mismatch fails instead of skipping."""
    import os

    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def packaged_baselines_dir() -> Path | None:
    """The baselines shipped with trainguard for its built-in profiles: ``trainguard/_baselines/`` in a wheel,
    the checkout's ``baselines/`` when run from the source tree."""
    here = PACKAGE_DIR
    for candidate in (here / "_baselines", here.parent / "baselines"):
        if (candidate / "published.csv").is_file():
            return candidate
    return None


def docs_dir() -> Path | None:
    """The documentation the help texts point at (``docs/NAME.md``): ``trainguard/_docs/`` in a wheel, the
    checkout's ``docs/`` in the source tree."""
    here = PACKAGE_DIR
    for candidate in (here / "_docs", here.parent / "docs"):
        if (candidate / "options.md").is_file():
            return candidate
    return None


def baselines_dir_for(profile: "Profile", cwd: Path | None = None) -> Path:
    """Where a profile's baselines live when ``--baselines-dir`` is not given (docs/options.md):
    1. the profile file's own ``baselines_dir`` key, relative to the file;
    2. for a profile file of the user's, ``baselines/`` beside it;
    3. ``./baselines`` when it holds this profile's directory (a project's own measurements);
    4. the baselines shipped with trainguard (the built-in profiles');
    5. ``./baselines``."""
    cwd = Path.cwd() if cwd is None else cwd
    source = Path(profile.source) if profile.source else None
    builtin = source is None or source.resolve().parent in (PROFILES_DIR.resolve(), PLUGIN_SETTINGS_DIR.resolve())
    if profile.baselines_dir:
        base = source.parent if source is not None else cwd
        return (base / profile.baselines_dir).resolve()
    if not builtin:
        return source.resolve().parent / "baselines"
    if (cwd / "baselines" / profile.name).is_dir():
        return cwd / "baselines"
    return packaged_baselines_dir() or cwd / "baselines"


def writable_baselines_dir(path: Path, cwd: Path | None = None) -> Path:
    """Where an update writes: ``path``, unless it is the copy shipped with trainguard (the wheel's, or a checkout's
    when working elsewhere) found only as the fallback: that is never rewritten from another project — the update
    goes to ``./baselines``, which later runs from there find first."""
    local = (Path.cwd() if cwd is None else cwd) / "baselines"
    shipped = packaged_baselines_dir()
    if shipped is not None and Path(path).resolve() == shipped.resolve() and local.resolve() != shipped.resolve():
        return local
    return Path(path)


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def plugin_settings() -> list[str]:
    """The built-in plug-ins' settings files, by the name ``--profile`` takes."""
    return sorted(p.stem for p in PLUGIN_SETTINGS_DIR.glob("*.toml"))


def model_search_paths(profile: Profile) -> tuple[Path, ...]:
    """Where a profile's own model modules (and experiment files) are looked for: the profile file's directory, then
    the working one."""
    source = Path(profile.source) if profile.source else None
    return tuple([source.parent.resolve()] if source and source.suffix == ".toml" else []) + (Path.cwd(),)


def load_profile(name_or_path: str) -> Profile:
    """Load a profile by name (``ci``; or a built-in plug-in's settings, :func:`plugin_settings`) or by path to a TOML
    file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILES_DIR / f"{name_or_path}.toml"
        if not path.exists() and (PLUGIN_SETTINGS_DIR / f"{name_or_path}.toml").exists():
            path = PLUGIN_SETTINGS_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise ConfigError(
                f"unknown profile {name_or_path!r}: choose one of {', '.join(available_profiles())} (or a "
                f"built-in plug-in's settings: {', '.join(plugin_settings())}), or pass the path to a .toml profile file"
            )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))  # TOML is UTF-8 whatever the locale
    except FileNotFoundError:
        raise ConfigError(f"profile file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"profile file {path} is not UTF-8 text (byte {exc.start}): TOML files are UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"profile file {path} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profile file {path} is not valid TOML: {exc}") from None
    return parse_profile(raw, source=str(path))


# ------------------------------------------------------------------------------------ typed keys
# Every value of a profile is type-checked where it is read, with a message naming the file, the section and the
# key: a wrong type must never pass parsing and fail far away (a TypeError after training started).

def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_KINDS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (_is_int, "an integer"),
    "positive int": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "number": (_is_number, "a number"),
    "positive number": (lambda v: _is_number(v) and v > 0 and v != float("inf"), "a positive number"),
    "ints": (lambda v: isinstance(v, list) and all(map(_is_int, v)), "a list of integers"),
    "strs": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings"),
    "table": (lambda v: isinstance(v, dict), "a table ([section])"),
}


def _typed(raw: dict, key: str, kind: str, where: str, default=None):
    """``raw[key]`` if it is of ``kind`` (see _KINDS), ``default`` if absent; else a ConfigError naming the key."""
    if key not in raw:
        return default
    test, expected = _KINDS[kind]
    value = raw[key]
    if not test(value):
        raise ConfigError(f"{where}: {key!r} must be {expected}, got {value!r} ({type(value).__name__})")
    return value


#: The top-level keys of a profile and their kinds (sections are checked by their own readers).
TOP_LEVEL = {"name": "str", "description": "str", "dataset": "str", "train_per_class": "positive int",
             "test_images": "positive int", "val_per_class": "positive int", "budgets": "ints", "models": "strs",
             "seed": "int", "baseline_seeds": "ints", "check_seeds": "ints", "checks": "strs", "threads": "positive int",
             "baselines_dir": "str", "max_minutes": "positive number", "training": "table", "published": "table",
             "statistics": "table", "golden": "table", "tolerance": "table", "experiments": "strs"}


def _retired(keys, source: str, prefix: str = "") -> None:
    """A key that is gone fails naming what replaced it (trainguard.core.retired), not as an unknown key."""
    from .retired import profile_keys

    retired = profile_keys()
    for key in sorted(keys):
        if f"{prefix}{key}" in retired:
            raise ConfigError(f"{source}: {retired[prefix + key]}")


def _check_top_level(raw: dict, source: str) -> None:
    _retired(raw, source)
    unknown = sorted(set(raw) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; known: {', '.join(sorted(TOP_LEVEL))} (a misspelt key "
                          f"would otherwise be ignored)")
    for key, kind in TOP_LEVEL.items():
        _typed(raw, key, kind, source)


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
        elif key in ("batch_size", "eval_batch_size") and not _is_int(value):
            raise ConfigError(f"{where}: training key {key!r} must be an integer, got {value!r}")
        elif not _is_number(value):
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


def _stats(raw: dict, source: str) -> Stats:
    where = f"{source} [statistics]"
    known = {f.name for f in dataclasses.fields(Stats)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {', '.join(sorted(known))}")
    for key, kind in {"false_alarm_rate": "number", "window": "positive int", "power": "number",
                      "start_window": "int", "start_models": "strs"}.items():
        _typed(raw, key, kind, where)
    raw = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    stats = dataclasses.replace(Stats(), **raw)
    if not 0 < stats.false_alarm_rate < 0.5:
        raise ConfigError(f"{where}: false_alarm_rate must be between 0 and 0.5, got {stats.false_alarm_rate!r}")
    if not isinstance(stats.window, int) or stats.window < 1:
        raise ConfigError(f"{where}: window must be a positive integer, got {stats.window!r}")
    if not 0.5 <= stats.power < 1:
        raise ConfigError(f"{where}: power must be in [0.5, 1), got {stats.power!r}")
    if not isinstance(stats.start_window, int) or stats.start_window < 0:
        raise ConfigError(f"{where}: start_window must be 0 (off) or a number of epochs, got {stats.start_window!r}")
    return stats


def parse_profile(raw: dict, source: str = "<profile>") -> Profile:
    """A profile from its parsed TOML; every malformed key is a ConfigError naming ``source`` and the key."""
    _check_top_level(raw, source)
    name = _name(raw, source)
    # Which names are data sets is the data store's to say (trainguard.stores.data.check_profile_dataset, run when
    # the profile's Options are built): the schema only asks for a name.
    models = _models(raw, source)
    # A profile of experiments alone (``experiments = [...]``, no models) names no data set and no budgets: each
    # experiment declares its own.
    dataset = _require(raw, "dataset", str, source) if models or "dataset" in raw else ""
    budgets = _budgets(raw, source) if models or "budgets" in raw else ()
    checks = _checks(raw, source, models)
    default_training, per_model = _training(raw.get("training", {}), source)
    if "tolerance" in raw:
        raise ConfigError(f"{source}: [tolerance] sections are gone: bands are derived from the baseline's per-seed "
                          f"values and the profile's [statistics] false_alarm_rate (docs/statistics.md); delete them")
    baseline_seeds = tuple(raw.get("baseline_seeds", [0, 1, 2]))
    if len(set(baseline_seeds)) < 2 or len(set(baseline_seeds)) != len(baseline_seeds):
        raise ConfigError(f"{source}: 'baseline_seeds' needs at least 2 seeds, all distinct, to measure a spread, got "
                          f"{list(baseline_seeds)}")
    published = _published_check(raw.get("published", {}), source)
    check_seeds = tuple(raw.get("check_seeds", [raw.get("seed", 0)]))
    if not check_seeds or any(not isinstance(x, int) or isinstance(x, bool) for x in check_seeds):
        raise ConfigError(f"{source}: 'check_seeds' must be a non-empty list of integers, got {check_seeds!r}")
    stats = _statistics(raw, budgets, models, source)
    val_per_class = raw.get("val_per_class")
    if val_per_class is not None and (not isinstance(val_per_class, int) or val_per_class < 1):
        raise ConfigError(f"{source}: 'val_per_class' must be a positive integer, got {val_per_class!r}")
    experiments = _experiments(raw, source)
    golden = GoldenConfig.from_profile(raw.get("golden", {}), source)
    threads, baselines_dir = _machine(raw, source)
    return Profile(
        max_minutes=raw.get("max_minutes"), threads=threads, baselines_dir=baselines_dir, golden=golden, published=published, name=name,
        description=raw.get("description", ""), dataset=dataset, train_per_class=raw.get("train_per_class"),
        test_images=raw.get("test_images"), budgets=tuple(sorted(budgets)), models=models, seed=check_seeds[0],
        check_seeds=check_seeds, stats=stats, val_per_class=val_per_class, baseline_seeds=baseline_seeds,
        checks=checks, default_training=default_training, per_model_training=tuple(per_model), source=source,
        experiments=experiments,
    )


def _experiments(raw: dict, source: str) -> tuple[str, ...]:
    """``experiments = ["train_guard.py:mine", "pkg.mod:NAME"]``: targets only (nothing is imported to read a profile)."""
    targets = tuple(raw.get("experiments", ()))
    for target in targets:
        where, _, name = target.rpartition(":")
        if not where or not name.isidentifier():
            raise ConfigError(f"{source}: experiments entry {target!r}: expected FILE.py:NAME or MODULE:NAME (the "
                              f"@trainguard.experiment function; docs/own-training.md)")
    if len(set(t.rpartition(":")[2] for t in targets)) != len(targets):
        raise ConfigError(f"{source}: experiments {list(targets)}: two entries with the same NAME (each names its cases)")
    return targets


def _name(raw: dict, source: str) -> str:
    name = _require(raw, "name", str, source)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or ".." in name:
        # The name becomes a directory under baselines/ and the result cache: keep it a plain name.
        raise ConfigError(f"{source}: 'name' {name!r} must be a plain name (letters, digits, '_', '-', '.'; "
                          f"no path separators or '..')")
    return name


def _budgets(raw: dict, source: str) -> tuple[int, ...]:
    budgets = tuple(_require(raw, "budgets", list, source))
    if not budgets or any(not _is_int(b) or b < 1 for b in budgets):
        raise ConfigError(f"{source}: 'budgets' must be a non-empty list of positive integers, got {budgets!r}")
    return budgets


def _models(raw: dict, source: str) -> tuple[str, ...]:
    """The models the profile trains; none for a profile of experiments alone (``experiments = [...]``)."""
    from ..models import MODEL_NAMES, is_model_name  # (no torch: names only)

    if "models" not in raw and raw.get("experiments"):
        return ()
    models = tuple(_require(raw, "models", list, source))
    if not models and not raw.get("experiments"):
        raise ConfigError(f"{source}: 'models' is empty and no 'experiments' are declared: the profile checks nothing; "
                          f"name models, or experiments of your own (docs/own-training.md)")
    for model in models:
        if not isinstance(model, str) or not is_model_name(model):
            raise ConfigError(f"{source}: unknown model {model!r}; known: {', '.join(MODEL_NAMES)}, an import path "
                              f"such as 'mypkg.nets:TinyNet' (a class or zero-argument factory), or an entry point "
                              f"of the 'trainguard.models' group")
    return models


def _checks(raw: dict, source: str, models: tuple[str, ...]) -> tuple[str, ...]:
    """The profile's check kinds: the models' bands by default; none of the models' for a profile of experiments
    alone (its experiments' kinds are on whenever it declares them)."""
    from .registry import names as check_kinds  # names only: no kind is imported to read a profile

    checks, known = tuple(raw.get("checks", ["baseline"] if models else [])), check_kinds()
    for check in checks:
        if check not in known:
            raise ConfigError(f"{source}: unknown check {check!r}; known: {', '.join(known)} (a kind of your own: "
                              f"trainguard.checks.register, or an entry point of the 'trainguard.checks' group)")
    return checks


def _training(training_raw: dict, source: str) -> tuple[TrainConfig, list[tuple[str, TrainConfig]]]:
    """[training] and its [training.per_model.<model>] overrides (each on top of [training])."""
    from ..models import is_model_name

    default_training = _train_config(training_raw, TrainConfig(), f"{source} [training]")
    _typed(training_raw, "per_model", "table", f"{source} [training]")
    per_model = []
    for model, override in sorted(training_raw.get("per_model", {}).items()):
        if not isinstance(override, dict):
            raise ConfigError(f"{source}: [training.per_model.{model}] must be a table of training keys, got {override!r}")
        if not is_model_name(model):
            raise ConfigError(f"{source}: [training.per_model.{model}] names an unknown model")
        per_model.append((model, _train_config(override, default_training, f"{source} [training.per_model.{model}]")))
    return default_training, per_model


def _statistics(raw: dict, budgets: tuple[int, ...], models: tuple[str, ...], source: str) -> "Stats":
    if not budgets:  # experiments alone: each declares its own window (Experiment(window=...))
        return _stats(raw.get("statistics", {}), source)
    stats = _stats({"window": min(Stats.window, min(budgets)), **raw.get("statistics", {})}, source)
    if stats.start_window > min(budgets):
        raise ConfigError(f"{source}: [statistics] start_window {stats.start_window} is longer than the smallest budget")
    unknown_start = sorted(set(stats.start_models) - set(models))
    if unknown_start:
        raise ConfigError(f"{source}: [statistics] start_models {unknown_start} are not among the profile's models")
    if stats.window > min(budgets):
        raise ConfigError(f"{source}: [statistics] window {stats.window} is longer than the smallest budget {min(budgets)}")
    return stats


def _machine(raw: dict, source: str) -> tuple[int | None, str | None]:
    """``threads`` (every run's torch and TensorFlow threads) and ``baselines_dir``."""
    threads = raw.get("threads")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ConfigError(f"{source}: 'threads' must be a positive integer (the torch and TensorFlow thread count of "
                          f"every run), got {threads!r}")
    baselines_dir = raw.get("baselines_dir")
    if baselines_dir is not None and not isinstance(baselines_dir, str):
        raise ConfigError(f"{source}: 'baselines_dir' must be a path (a string), got {baselines_dir!r}")
    return threads, baselines_dir


def seed_list(seeds) -> str:
    """0–7 for a range, else 100, 101."""
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))
