"""One option table for both front ends (the pytest-benchmark pattern).

:func:`add_options` adds the table to either parser: the ``trainguard`` command's argparse
parsers (``--profile``, with ``--tg-profile`` accepted too) or pytest's (``--tg-profile`` only:
the plugin is installed into every pytest run of the environment, and generic names such as
``--profile`` or ``--device`` clash with other plugins). Validation lives in the ``type``
callables, so both front ends refuse the same bad values with the same message. Options marked
``ini`` can also be set in a project's pytest configuration (``tg_profile = "ci"``).
This module imports nothing heavy: the plugin loads it into unrelated test runs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from .core.spec import PRECISIONS

PYTEST_PREFIX = "tg-"


def _seeds(text: str) -> tuple[int, ...]:
    from .core.spec import ConfigError, parse_seeds

    try:
        return parse_seeds(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _device(text: str) -> str:
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: expected auto, cpu, cuda or cuda:N")


def _positive_int(text: str) -> int:
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r}: expected a positive integer")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value >= 0:
        return value
    raise argparse.ArgumentTypeError(f"{text!r}: expected 0 or a positive integer")


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value > 0 and value != float("inf"):
        return value
    raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number")


def _shard(text: str) -> tuple[int, int]:
    try:
        index, total = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected I/N, e.g. 1/3") from None
    if not 1 <= index <= total:
        raise argparse.ArgumentTypeError(f"{text!r}: I must be between 1 and N")
    return index, total


@dataclass(frozen=True)
class CommandOption:
    """One option of both command lines (the ``trainguard`` command's and pytest's); the run's settings that
    these options fill in are :class:`trainguard.runs.matrix.Options`."""

    name: str  # the CLI's long name without dashes; pytest's is PYTEST_PREFIX + name
    help: str
    default: object = None
    flag: bool = False  # store_true
    type: object = None  # a callable that converts and validates (argparse.ArgumentTypeError on bad input)
    choices: tuple = ()
    metavar: str | None = None
    ini: bool = False  # also settable as the pytest ini key tg_<name>
    former: tuple[str, ...] = ()  # earlier names, still accepted (on the command line and as ini keys)

    @property
    def key(self) -> str:
        """The key in :func:`resolve_pytest_options`'s result and the CLI's namespace."""
        return self.name.replace("-", "_")

    @property
    def ini_keys(self) -> tuple[str, ...]:
        """``tg_<name>``, then the former names' keys."""
        return tuple(f"tg_{name.replace('-', '_')}" for name in (self.name, *self.former))

    def help_text(self) -> str:
        return self.help if self.flag or self.default is None else f"{self.help} [{self.default}]"


RUN_OPTIONS = (
    CommandOption("profile", "profile name (smoke, ci, seed, gpu-timing, or a built-in plug-in's settings) or path "
                             "to a .toml profile", "ci", ini=True),
    CommandOption("device", "auto (CUDA when available, else CPU), cpu, cuda or cuda:N", "auto", type=_device, ini=True),
    CommandOption("seeds", "seeds to train and check, held out of the baseline, for the profile's models and its "
                           "declared experiments alike [their check_seeds]",
                  type=_seeds, metavar="N[,N...]"),
    CommandOption("allow-baseline-seeds", "allow checking a seed of the baseline (it cannot fail against itself)", flag=True),
    CommandOption("strict", "a missing baseline, a data mismatch or a check with nothing to check fails instead of "
                            "being noted [on when CI=true]", flag=True),
    CommandOption("threads", "torch (and TensorFlow) threads for every run [the profile's `threads`, else the library's "
                             "default]; another count than the baseline's is reported as a difference", type=_positive_int,
                  metavar="N", ini=True),
    CommandOption("precision", "fp32, or bf16 autocast; each precision has its own baseline class (cpu-bf16, cuda-bf16)",
                  "fp32", choices=PRECISIONS),
    CommandOption("compile", "torch.compile the models; its own baseline class (e.g. cuda-compile); see docs/speed.md",
                  flag=True),
    CommandOption("stack-seeds", "train a model's seeds at once as one vmapped model (fewer kernel launches on a GPU), "
                                 "a declared experiment's by its train_stacked; its own baseline class (e.g. "
                                 "cuda-stacked); see docs/gpus.md", flag=True),
    CommandOption("data-dir", "directory holding the data sets' .npz files (docs/data.md) [$TRAINGUARD_DATA_DIR, then the "
                                "cache, then download]",
                  type=Path, ini=True),
    CommandOption("offline", "never download data; fail with instructions instead", flag=True),
    CommandOption("baselines-dir", "baseline tables and golden runs [the profile's: its baselines_dir key, baselines/ beside "
                                   "a profile file, ./baselines, or those shipped with trainguard for the built-in profiles]",
                  type=Path, ini=True),
    CommandOption("results-dir", "result cache, one JSON per training run", ".trainguard/results", type=Path, ini=True),
    CommandOption("no-result-cache", "train everything again; do not read or write the result cache", flag=True),
    CommandOption("run-log", "JSON-lines log of every training run, appended", ".trainguard/runlog.jsonl", type=Path, ini=True),
    CommandOption("ledger", "the ledger of nights, compared between nights (drift, speed, trends) and shown by `trainguard "
                            "dashboard`: a SQLite file, or a database URL (postgresql://USER@HOST/DB) a team shares "
                            "[$TRAINGUARD_LEDGER, else .trainguard/ledger.sqlite]", metavar="PATH|URL", ini=True),
    CommandOption("mlflow", "also log each night to MLflow at this tracking URI (a run per night: settings as parameters, "
                            "checked statistics as metrics, the report and figures as artifacts; the mlflow extra)",
                  metavar="URI", ini=True),
    CommandOption("ledger-dir", "the former ledger option: the ledger DIR/ledger.sqlite, into which the JSON-lines ledgers "
                                "under DIR are imported once (formerly --history-dir, still accepted)", type=Path, ini=True,
                  former=("history-dir",)),
    CommandOption("fail-on-drift", "fail the run when a cell steps beyond seed noise since the previous run "
                                   "(otherwise the step is flagged in the report)", flag=True),
    CommandOption("no-replay", "do not replay the profile's golden runs before the night (trainguard run; the "
                               "replay is also `trainguard replay` and `pytest -m replay`)", flag=True),
    CommandOption("no-figures", "write the report without its PNG figures (the tables and checks are the same; quicker "
                                "where only the verdicts are read)", flag=True, ini=True),
    CommandOption("fail-on-slowdown", "fail the run when a model trains slower than earlier runs on the same hardware, "
                                      "beyond their measured noise (otherwise flagged)", flag=True),
    CommandOption("max-minutes", "the night's time limit: a run still training then stops as timed out, runs not yet "
                                 "started are not trained, the checks, report and ledger entry are still written, and "
                                 "the night fails [the profile's max_minutes, else none]; docs/reliability.md",
                  type=_positive_number, metavar="M", ini=True),
    CommandOption("executor", "where the night's runs train: local (this process) or ray (one Ray task per run on a "
                              "Ray cluster; the ray extra; docs/cluster.md)", "local", choices=("local", "ray"), ini=True),
    CommandOption("ray-address", "the Ray cluster to join: auto (the one `ray start` runs here), HOST:PORT or "
                                 "ray://HOST:10001 [none: a local cluster for this night]", metavar="ADDRESS", ini=True),
    CommandOption("cpus-per-run", "CPUs Ray reserves for each run's task [the run's thread count]",
                  type=_positive_number, metavar="N", ini=True),
    CommandOption("gpus-per-run", "GPUs Ray gives each run's task (with --device auto the run trains on it) [0]",
                  type=_positive_number, metavar="N", ini=True),
    CommandOption("ray-retries", "times Ray reruns a run whose worker process or node died (a run that fails in its "
                                 "own code is never rerun)", 3, type=_non_negative_int, metavar="N", ini=True),
)
REPORT = CommandOption("report", "markdown report path (figures are written beside it)", "reports/report.md", type=Path,
                       ini=True)
PYTEST_ONLY = (
    REPORT,
    CommandOption("shard", "run only shard I of N (1-based): whole models are spread over N hosts; the cross-model checks "
                           "run when the shards' run logs are merged with `trainguard report --from-log ...`",
                  type=_shard, metavar="I/N"),
    CommandOption("update-baselines", "train the profile's baseline seeds, rewrite baselines/<profile>/<device>.csv and "
                                      "print what changed", flag=True),
)


def add_options(add, options=RUN_OPTIONS, prefix: str = "", aliases: bool = False) -> None:
    """Add ``options`` through ``add`` (``argparse.ArgumentParser.add_argument`` or pytest's
    ``OptionGroup.addoption``) as ``--{prefix}{name}``; ``aliases`` also accepts ``--tg-{name}``
    (the CLI, so options copied from a pytest command line work there too)."""
    for option in options:
        names = [f"--{prefix}{name}" for name in (option.name, *option.former)]
        if aliases and not prefix:
            names += [f"--{PYTEST_PREFIX}{name}" for name in (option.name, *option.former)]
        kwargs = {"dest": (prefix + option.name).replace("-", "_"), "help": option.help_text()}
        if option.flag:
            kwargs.update(action="store_true", default=None if option.name == "strict" else False)
        else:
            # pytest: None, so that an ini value or the table's default fills in (resolve_pytest_options)
            kwargs["default"] = option.default if not prefix else None
            if option.type is not None:
                kwargs["type"] = option.type
            if option.choices:
                kwargs["choices"] = option.choices
            if option.metavar:
                kwargs["metavar"] = option.metavar
        if not prefix and option.type is Path and option.default is not None:
            kwargs["default"] = Path(option.default)
        add(*names, **kwargs)


def add_ini_options(addini, options=RUN_OPTIONS + PYTEST_ONLY) -> None:
    for option in options:
        if option.ini:
            for key in option.ini_keys:
                addini(key, f"trainguard: {option.help_text()}", default="")


def resolve_pytest_options(getoption, getini, rootdir: Path, invocation_dir: Path,
                           options=RUN_OPTIONS + PYTEST_ONLY) -> dict:
    """pytest's values by option key: the command line, else the ini key (paths relative to the ini file's
    directory), else the table's default (paths relative to where pytest was started, as the CLI's)."""
    from .core.spec import strict_default

    values = {}
    for option in options:
        value = getoption((PYTEST_PREFIX + option.name).replace("-", "_"))
        ini_key = next((key for key in option.ini_keys if getini(key)), None) if option.ini else None
        if value is None and ini_key:
            raw = getini(ini_key)
            try:
                value = option.type(raw) if option.type not in (None, Path) else raw
            except argparse.ArgumentTypeError as exc:
                raise ValueError(f"ini option {ini_key} = {raw!r}: {exc}") from None
            if option.type is Path:
                value = rootdir / raw
        if value is None and option.default is not None:
            value = invocation_dir / option.default if option.type is Path else option.default
        values[option.key] = value
    if values.get("strict") is None:
        values["strict"] = strict_default()
    return values


def ledger_location(values: dict) -> str:
    """--ledger, else --ledger-dir DIR (DIR/ledger.sqlite), else $TRAINGUARD_LEDGER, else .trainguard/ledger.sqlite."""
    import os

    from .stores.ledger import DEFAULT_LEDGER, resolve_location

    return (resolve_location(values.get("ledger"), values.get("ledger_dir")) or os.environ.get("TRAINGUARD_LEDGER")
            or str(DEFAULT_LEDGER))


def ray_resources(values: dict):
    from .runs.options import RayResources

    retries = values.get("ray_retries")
    return RayResources(address=values.get("ray_address"), cpus_per_run=values.get("cpus_per_run"),
                        gpus_per_run=values.get("gpus_per_run") or 0.0, retries=3 if retries is None else int(retries))


def session_options(values: dict, profile):
    """The run's :class:`trainguard.runs.matrix.Options` from either front end's values."""
    from .runs.options import Options
    from .core.spec import baselines_dir_for, strict_default

    strict = strict_default() if values["strict"] is None else values["strict"]
    return Options(profile=profile, device=values["device"], seeds=values["seeds"],
                   allow_baseline_seeds=bool(values["allow_baseline_seeds"]), strict=strict,
                   data_dir=Path(values["data_dir"]) if values["data_dir"] else None,
                   baselines_dir=Path(values["baselines_dir"]) if values.get("baselines_dir") else baselines_dir_for(profile),
                   results_dir=None if values["no_result_cache"] else Path(values["results_dir"]),
                   allow_download=not values["offline"], run_log=Path(values["run_log"]) if values["run_log"] else None,
                   threads=values.get("threads"), precision=values["precision"], compile=bool(values["compile"]),
                   stack_seeds=bool(values.get("stack_seeds")),
                   ledger=ledger_location(values), mlflow=values.get("mlflow"),
                   replay=not values.get("no_replay"), figures=not values.get("no_figures"),
                   max_minutes=values.get("max_minutes"), executor=values.get("executor") or "local",
                   ray=ray_resources(values),
                   fail_on=tuple(name for name, key in (("drift", "fail_on_drift"), ("speed", "fail_on_slowdown"))
                                 if values.get(key)))
