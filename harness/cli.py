"""The ``trainguard`` command: run a profile and write the report; inspect baselines and data.

Exit codes: 0 every check passed; 1 a check failed; 2 usage or input error; 5 nothing was checked
(no baseline, no golden: pytest's code for a run that tested nothing) — for ``replay``: nothing to replay.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .core import retired
from .options import REPORT, RUN_OPTIONS, add_options

EXAMPLES = """examples:
  trainguard run                                  # ci profile, CUDA if available, report in reports/report.md
  trainguard replay --profile ci                  # rerun the golden runs step by step: did anything change?
  trainguard baselines update --golden            # rewrite only the golden runs (and their noise envelope)
  trainguard run --profile seed --device cuda     # the full protocol on a GPU
  TRAINGUARD_DATA_DIR=../shared/data trainguard run --offline
  trainguard report                               # re-render reports/report.md from stored results
  trainguard report --compare old-runlog.jsonl    # ... with what moved since an earlier run
  trainguard baselines show --profile ci
  trainguard baselines update --profile ci        # retrain the baseline seeds, rewrite baselines/ci/<device>.csv
  trainguard baselines diff --profile seed        # measured baseline against the report's published table
  trainguard baselines calibrate --profile ci     # false alarms (leave-out), detectable effects, noise
  trainguard selftest --profile ci                # inject known regressions: which do the checks catch?
  trainguard run --seeds 200,201                  # check other held-out seeds than the profile's
  trainguard ledger --last 5 --plots reports/trends   # the last runs per cell, trend plots per model
  trainguard ledger import .trainguard/history    # earlier JSON-lines ledgers into the ledger database
  trainguard run --ledger postgresql://ci@db/nights   # a ledger a team shares
  trainguard dashboard --out reports/dashboard    # the nights as a static site (offline, GitHub Pages)
  trainguard run --max-minutes 80                 # the night ends by itself: late runs fail, the report is written
  trainguard run --junit-xml reports/junit.xml    # the checks as JUnit XML too
  trainguard data verify --data-dir ../shared/data
  trainguard data fetch                           # download the data sets into ~/.cache/trainguard
  trainguard data export --profile ci DIR         # only the images ci uses, to copy to a GPU host (--data-dir DIR there)
  trainguard guard guard.py:mine baseline         # your own training (docs/own-training.md): measure its baseline
  trainguard guard guard.py:mine replay --update  # write its golden runs; without --update: replay them
  trainguard guard guard.py:mine check            # its held-out seeds against the baseline's bands
  trainguard guard guard.py:mine selftest         # inject its declared faults: which check catches each?
"""


def _common(parser: argparse.ArgumentParser) -> None:
    add_options(parser.add_argument, aliases=True)


def _report_option(parser: argparse.ArgumentParser, default: str = REPORT.default) -> None:
    parser.add_argument("--report", "--tg-report", type=Path, default=Path(default), help=f"{REPORT.help} [{default}]")


def _docs_line() -> str:
    from .core.spec import docs_dir

    where = docs_dir()
    return f"\ndocumentation (docs/NAME.md in the help texts): {where if where else 'docs/ of the project source'}\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainguard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=EXAMPLES + _docs_line())
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_run, _add_report, _add_baselines, _add_replay, _add_selftest, _add_ledger, _add_dashboard,
                _add_data, _add_guard):
        add(sub)
    return parser


def _subcommand(sub, name: str, text: str, **kwargs) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=text, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
                          **kwargs)


def _compare_option(parser) -> None:
    parser.add_argument("--compare", type=Path, default=None, metavar="OLD_RESULTS",
                        help="add a 'changes since' table against an earlier run log (.jsonl) or results directory")


def _add_run(sub) -> None:
    run = _subcommand(sub, "run", "train a profile, check it, write the markdown report")
    _common(run)
    _report_option(run)
    run.add_argument("--junit-xml", type=Path, default=None, metavar="PATH",
                     help="also write the checks as JUnit XML (one testcase per check) for CI systems that read it")
    _compare_option(run)


def _add_report(sub) -> None:
    rerender = _subcommand(sub, "report", "re-render the report from stored results, without training")
    _common(rerender)
    _report_option(rerender)
    rerender.add_argument("--from-log", type=Path, nargs="+", default=None, metavar="RUNLOG",
                          help="take the runs from these run logs (e.g. one per shard) instead of the result cache")
    rerender.add_argument("--record", action="store_true",
                          help="also record the night in the ledger (--ledger), dated by its runs' last event: nights "
                               "trained elsewhere (shards, another host) join the ledger and the dashboard")
    _compare_option(rerender)


def _add_baselines(sub) -> None:
    baselines = _subcommand(sub, "baselines", "show, diff (against the published table) or update baselines")
    baselines.add_argument("action", choices=("show", "diff", "update", "calibrate"))
    baselines.add_argument("--from-log", type=Path, nargs="+", default=None, metavar="RUNLOG",
                           help="update: take the baseline seeds' runs from these run logs instead of training; "
                                "calibrate: also check these runs of seeds outside the baseline (real reruns)")
    baselines.add_argument("--skip-experiments", action="store_true",
                           help="update: leave the declared experiments' baselines as they are (the models' only)")
    baselines.add_argument("--skip-models", action="store_true",
                           help="update: leave the models' baseline and golden runs as they are (the declared "
                                "experiments' only)")
    for old, new in retired.flags().items():  # still accepted: they do what their replacement does, with a note
        baselines.add_argument(old, action="append_const", const=(old, new), dest="retired", help=argparse.SUPPRESS)
    baselines.add_argument("--skip-golden", action="store_true", help="update: leave the golden runs as they are")
    baselines.add_argument("--train-missing", action="store_true",
                           help="update --from-log: train the baseline runs the logs lack (resumes a baseline measured "
                                "over several sessions) instead of stopping with an error")
    baselines.add_argument("--golden", action="store_true",
                           help="update: rewrite only the golden runs and their noise envelope (seconds to minutes), "
                                "printing what moved against the old ones")
    baselines.add_argument("--names", nargs="+", default=None, metavar="NAME",
                           help="with --golden: only these golden runs (the profile's models), `experiments` (its "
                                "declared experiments'), or `inputs` "
                                "(the fingerprints of the night's data only)")
    _common(baselines)


def _add_replay(sub) -> None:
    replay = _subcommand(sub, "replay", "rerun the profile's golden runs step by step and say what changed")
    _common(replay)
    replay.add_argument("--names", nargs="+", default=None, metavar="NAME",
                        help="replay only these golden runs (the profile's models; `experiments`: its declared "
                             "experiments') [all of the profile's]")
    replay.add_argument("--summary", type=Path, default=None, metavar="PATH",
                        help="also write the verdict as markdown (a pull request's comment; in GitHub Actions it is "
                             "added to the job summary too)")


def _add_selftest(sub) -> None:
    check = _subcommand(sub, "selftest", "inject known regressions and report which the checks catch")
    _common(check)
    _report_option(check, "reports/selftest.md")
    check.add_argument("--injections", nargs="+", default=None, metavar="NAME",
                       help="run only these injections [the self-test list; with --replay-only also the subtle ones]")
    check.add_argument("--replay-only", action="store_true",
                       help="replay the golden runs under each injection (seconds each) and train no outcome bands; "
                            "runs the subtle injections too")
    check.add_argument("--selftest-log", type=Path, default=Path(".trainguard/selftest-runlog.jsonl"),
                       help="run log of the injected runs, kept apart from the night's [.trainguard/selftest-runlog.jsonl]")
    check.add_argument("--skip-experiments", action="store_true",
                       help="inject into the profile's models only, not the faults its declared experiments declare")
    check.add_argument("--skip-models", action="store_true",
                       help="inject only the faults the profile's declared experiments declare (Experiment(faults=...))")


def _add_ledger(sub) -> None:
    ledger = _subcommand(sub, "ledger", "the last runs per cell from the ledger of nights, and trend plots per model "
                                        "(`trainguard history`: its former name)", aliases=["history"])
    _common(ledger)
    ledger.add_argument("action", nargs="?", choices=("show", "import", "export", "prune"), default="show",
                        help="show: the last runs of the profile [default]; import PATH...: JSON-lines ledgers (files, "
                             "or directories of <profile>/<class>.jsonl) into the ledger; export DIR: every night back "
                             "as JSON lines; prune: drop the reports and figures of all but the newest nights "
                             "(--keep-reports), keeping every night's record")
    ledger.add_argument("paths", nargs="*", type=Path, help="import: the JSON-lines ledgers; export: the directory")
    ledger.add_argument("--last", type=int, default=10, metavar="N", help="how many runs to show [10]")
    ledger.add_argument("--keep-reports", type=int, default=None, metavar="N",
                        help="prune: the newest nights per profile and device class whose reports are kept [30]")
    ledger.add_argument("--plots", type=Path, default=None, metavar="DIR",
                        help="write a trend plot per model (checked test accuracy over runs, baseline band) into DIR")


RAY_OPTION_NAMES = ("executor", "ray-address", "cpus-per-run", "gpus-per-run", "ray-retries")


def _add_guard(sub) -> None:
    guard = _subcommand(sub, "guard", "guard your own training function (an Experiment: docs/own-training.md): "
                                      "measure its baseline, write and replay its golden runs, check held-out seeds")
    guard.add_argument("target", metavar="FILE.py:NAME", help="the experiment: a file (or module) and the name of the "
                                                               "@trainguard.experiment function in it")
    guard.add_argument("action", choices=("baseline", "replay", "check", "selftest"),
                       help="baseline: train the baseline seeds (cached by the code's fingerprint); replay: rerun the "
                            "golden runs step by step (--update: write them); check: train the check seeds, compare "
                            "every declared metric at every budget with the baseline's band; selftest: inject each "
                            "of the experiment's declared faults and say which check catches it")
    guard.add_argument("--dir", type=Path, default=Path(".trainguard/experiments"), metavar="DIR",
                       help="where runs and golden runs are kept [.trainguard/experiments]")
    guard.add_argument("--update", action="store_true", help="replay: write the golden runs instead of replaying them")
    guard.add_argument("--from-csv", type=Path, default=None, metavar="FILE",
                       help="baseline: read the baseline seeds' runs from numbers measured before (a CSV: variant, "
                            "seed, epoch and a column per metric) instead of training them")
    guard.add_argument("--threads", type=int, default=1, metavar="N", help="the runs' thread count [1]")
    guard.add_argument("--device", default="cpu", help="handed to the function as run.device [cpu]")
    guard.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                       help="baseline, check: handed to the function as run.precision, where the experiment declares "
                            "it honours it (precisions=...); its own runs and baseline (DIR/<device>-bf16) [fp32]")
    guard.add_argument("--compile", action="store_true",
                       help="baseline, check: run.compile set, where the experiment declares compiles=True; its own "
                            "runs and baseline (DIR/<device>-compile)")
    guard.add_argument("--data-dir", type=Path, default=None, metavar="DIR", help="handed to the function as run.data_dir")
    guard.add_argument("--seeds", default=None, metavar="S,S", help="check: these seeds instead of the experiment's "
                                                                     "check_seeds")
    guard.add_argument("--faults", default=None, metavar="NAME,NAME",
                       help="selftest: only these of the experiment's faults [all]")
    guard.add_argument("--replay-only", action="store_true",
                       help="selftest: replay the golden runs under each fault; train no check seeds (no bands)")
    guard.add_argument("--ledger", default=None, metavar="PATH|URL",
                       help="check: record the night in this ledger (a SQLite file or postgresql://…; default "
                            "$TRAINGUARD_LEDGER, else none) and flag drift since the previous night and slowdowns")
    guard.add_argument("--report", type=Path, default=None, metavar="PATH",
                       help="check, selftest: also write the night's verdicts and flags (the faults' table) as markdown")
    guard.add_argument("--junit-xml", type=Path, default=None, metavar="PATH",
                       help="check: also write the bands and claims as JUnit XML (one testcase each)")
    guard.add_argument("--mlflow", default=None, metavar="URI",
                       help="check: also log the night to MLflow at this tracking URI (the mlflow extra)")
    add_options(guard.add_argument, [o for o in RUN_OPTIONS if o.name in RAY_OPTION_NAMES], aliases=True)
    guard.add_argument("--stack-seeds", action="store_true",
                       help="baseline, check: each variant's seeds trained at once by the experiment's train_stacked; "
                            "kept apart (DIR/stacked), with a baseline of their own")
    guard.add_argument("--max-minutes", type=float, default=None, metavar="M",
                       help="baseline, check: the runs' time limit; a run it stops is 'timeout' (its checks fail), "
                            "a run not started by then is not trained [none]")


def cmd_guard(args) -> int:
    """Exit 0: identical / within noise / every band held; 1: a change or a band failed; 2: input error;
    5: nothing to compare (no golden, no baseline)."""
    from .core.experiment import load_experiment
    from .stores.experiment_records import ExperimentStore

    from .core.errors import ConfigError
    from .night import guard

    if args.max_minutes is not None and args.max_minutes <= 0:
        raise ConfigError(f"--max-minutes {args.max_minutes:g}: give a positive number of minutes")
    if args.from_csv is not None and (args.action != "baseline" or args.stack_seeds or args.executor == "ray"):
        raise ConfigError("--from-csv: only with `baseline`, without --stack-seeds or --executor ray (it trains "
                          "nothing: it reads the baseline seeds' runs from the file)")
    arithmetic = dict(precision=args.precision, compile=args.compile)
    if arithmetic != dict(precision="fp32", compile=False) and args.action not in ("baseline", "check"):
        raise ConfigError(f"--precision/--compile: only with `baseline` and `check` (the golden runs and the self-test "
                          f"train in fp32, eager), not `{args.action}`")
    experiment, store = load_experiment(args.target), ExperimentStore(args.dir, args.device, **arithmetic)
    if why := experiment.unavailable():  # its requires: a framework not installed here
        print(f"trainguard: experiment {experiment.name} cannot run here: {why}", file=sys.stderr)
        return 5
    if why := experiment.refuses(**arithmetic):
        raise ConfigError(why)
    common = dict(threads=args.threads, device=args.device, data_dir=args.data_dir, target=args.target)
    if arithmetic != dict(precision="fp32", compile=False):
        common.update(arithmetic)
    if args.action == "replay":
        return guard.replay_or_update(experiment, store, args.update, common)
    if args.action == "selftest":
        names = tuple(n for n in (args.faults or "").split(",") if n)
        from .audit.experiment_selftest import guard_selftest

        return guard_selftest(experiment, store, common, names, args.replay_only, args.report)
    if args.max_minutes is not None:
        common["deadline"] = time.monotonic() + 60 * args.max_minutes
    if args.stack_seeds:  # stacked arithmetic rounds differently: its own runs and baseline
        if args.executor == "ray":
            raise ConfigError("--stack-seeds with --executor ray: one Ray task per run; choose one of them")
        common["stacked"], store = True, ExperimentStore(args.dir / "stacked", args.device, **arithmetic)
    if args.executor == "ray":  # baseline, check: the runs as Ray tasks (the replay stays in this process)
        from .night.cluster import RayExecutor
        from .options import ray_resources

        common["ray"] = ray_resources(vars(args))
        RayExecutor(common["ray"]).prepare()  # Ray importable, the address answering: before anything trains
    if args.action == "baseline":
        return guard.baseline(experiment, store, common, args.from_csv)
    ledger = args.ledger or os.environ.get("TRAINGUARD_LEDGER")
    return guard.check(experiment, store, args.seeds, common, ledger, args.report, args.junit_xml, args.mlflow)


def _add_dashboard(sub) -> None:
    board = _subcommand(sub, "dashboard", "the ledger of nights as a static site (offline, GitHub Pages): trends with "
                                          "their bands, speed, the replay, every night's report, the regressions")
    board.add_argument("--out", type=Path, default=Path("reports/dashboard"), metavar="DIR",
                       help="where to write the site [reports/dashboard]")
    add_options(board.add_argument, [o for o in RUN_OPTIONS if o.name in ("ledger", "ledger-dir")], aliases=True)


def _add_data(sub) -> None:
    data = _subcommand(sub, "data", "download data into the cache, verify a data directory, or export the images one "
                                    "profile uses")
    from .stores.data import FILENAMES as DATA_SETS  # the loaders' data sets

    actions = data.add_subparsers(dest="action", required=True)
    for action, text in (("fetch", "download into the cache (TRAINGUARD_CACHE_DIR, default ~/.cache/trainguard)"),
                         ("verify", "check the files of a data directory against the known releases")):
        sub_action = actions.add_parser(action, help=text)
        sub_action.add_argument("names", nargs="*", default=list(DATA_SETS), help=f"{', '.join(DATA_SETS)} [all]")
        sub_action.add_argument("--data-dir", type=Path, default=None, help="[$TRAINGUARD_DATA_DIR]")
        sub_action.add_argument("--cache-dir", type=Path, default=None)
    export = actions.add_parser("export", help="write only the images a profile uses (to copy to a host that "
                                               "cannot download); use the directory as --data-dir there")
    export.add_argument("directory", type=Path, help="where to write the profile's data set (.npz) and export.json")
    export.add_argument("--profile", "--tg-profile", default="ci", help="the profile whose images to write [ci]")
    export.add_argument("--data-dir", type=Path, default=None, help="the full data [$TRAINGUARD_DATA_DIR, cache, download]")
    export.add_argument("--offline", "--tg-offline", action="store_true", help="never download the full data")


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trainguard")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _options(args):
    from .options import session_options
    from .core.spec import load_profile

    return session_options(vars(args), load_profile(args.profile))


# The matrices a command opened: main() closes them whatever the command returns, so a command run in process
# (tests, a notebook) gives back the torch thread count it set (Matrix.close).
_OPENED: list = []


def _matrix(args):
    from .core.progress import interactive
    from .runs.matrix import Matrix

    matrix = Matrix(_options(args), progress_bar=interactive())
    _OPENED.append(matrix)
    return matrix


def _writable(option: str, path) -> None:
    """An output path the run will write: its directory must be creatable, checked before any training."""
    from .core.spec import ConfigError

    if path is None:
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot create its directory ({exc.strerror}); choose another path") from None


def cmd_run(args) -> int:
    from .api import run_profile
    from .core.progress import interactive

    _writable("--report", args.report)
    _writable("--junit-xml", args.junit_xml)

    options = _options(args)
    summary = run_profile(options, progress_bar=interactive(), compare_with=args.compare)
    return _write(summary, args.report, ledger=options.ledger_location, junit_xml=args.junit_xml, mlflow=options.mlflow)


def _write(summary, path, ledger=None, junit_xml=None, mlflow=None) -> int:
    """Publish (report; history entry and JUnit XML where given), print the failures and the summary; the exit code."""
    from .api import publish

    path = publish(summary, path, ledger=ledger, junit_xml=junit_xml, mlflow=mlflow)
    for v in summary.flags:
        if not v.passed and v not in summary.verdicts:
            print(f"FLAG {v.message}")
    for v in summary.failed:
        print(f"FAIL {v.message}")
    if summary.uninformative():
        print(f"UNINFORMATIVE {len(summary.uninformative())} band check(s) cannot fail (see the report's notes)")
    if summary.result == "NOTHING CHECKED":
        print("NOTHING CHECKED: no check compared anything; not a pass. Why:")
        for note in summary.notes[1:]:
            print(f"  {note}")
    print(f"{len(summary.verdicts) - len(summary.failed)} passed, {len(summary.failed)} failed")
    print(f"report: {path}")
    return summary.exit_code


def _models_log(profile, logs) -> None:
    """A run log holds models' runs: a profile of experiments alone has none to read from it (its experiments' runs
    are re-read from the result cache), so ``--from-log`` there names the profile the log's runs were trained with."""
    from .core.spec import ConfigError, plugin_settings

    if logs and not profile.models:
        raise ConfigError(f"--from-log: profile {profile.name} trains no models, and a run log holds models' runs "
                          f"(its experiments' runs are re-read from --results-dir): pass the profile the log's runs "
                          f"were trained with as --profile (a .toml path, or a built-in plug-in's settings by name: "
                          f"{', '.join(plugin_settings())})")


def cmd_report(args) -> int:
    """The report from stored runs only: the result cache, or a run log with --from-log. Nothing trains and nothing
    is replayed: the night's judge and record stages over what was stored."""
    from .night.night import Night
    from .stores.runlog import histories_from_log

    options = _options(args)
    _models_log(options.profile, args.from_log)
    options.replay = False  # a re-render replays nothing: the replay kind is off (`trainguard replay` does it)
    histories = {}
    for log in args.from_log or []:  # later logs win for a run present in several
        histories.update(histories_from_log(log, options.profile.name))
    night = Night(options)
    night.checks.rerendered = True  # what was not stored is not trained: a declared experiment without runs is skipped
    night.notes.append("Re-rendered from stored results by `trainguard report`; nothing was trained.")
    if args.from_log is not None:
        night.matrix.preload({key: h for key, h in histories.items() if key[0] in options.profile.models})
        night.notes.append(f"Runs from the run log(s) {', '.join(map(str, args.from_log))} ({len(histories)} completed).")
    night.judge()
    summary = night.summary(compare_with=args.compare)
    if args.record and summary.entry is not None and args.from_log:
        summary.entry.update(_recorded_by_the_runs(args.from_log, night.matrix))
        summary.entry["run_id"] = _rerendered_night_id(summary.entry)
    return _write(summary, args.report, ledger=night.options.ledger_location if args.record else None)


def _rerendered_night_id(entry: dict) -> str:
    """The same runs recorded twice are one night: a re-rendered night's id is a digest of what it measured and when
    its runs ended (the ledger skips an id it holds), never a fresh random one."""
    import hashlib
    import json

    measured = {key: entry.get(key) for key in ("profile", "device_class", "seeds", "cells", "time", "commit")}
    return "log-" + hashlib.sha256(json.dumps(measured, sort_keys=True).encode()).hexdigest()[:20]


def _recorded_by_the_runs(logs, matrix) -> dict:
    """What a re-rendered night records as the runs had it, not as the machine that re-renders has it: when they
    ended (their last event), the commit they ran (the most common), their versions; the hardware is not in a run
    log and is said so."""
    from collections import Counter

    from .stores.runlog import read_events

    events = [event for log in logs for event in read_events(log)]
    times = [event["time"] for event in events if "time" in event]
    commits = Counter(event["commit"] for event in events if event["event"] == "run_start" and event.get("commit"))
    recorded = {"rerendered": True, "versions": matrix.runs_versions(),
                "hardware": "not recorded (re-rendered from a run log)"}
    if times:
        recorded["time"] = max(times)
    if commits:
        recorded["commit"] = commits.most_common(1)[0][0]
    return recorded


def cmd_replay(args) -> int:
    """Exit 0 identical or within noise, 1 changed, 2 a golden that cannot be compared, 5 nothing to replay."""
    from .replay import golden_runs as replay
    from .stores.golden import MISSING

    matrix = _matrix(args)
    names = args.names or replay.golden_names(matrix.profile)
    unknown = sorted(set(names) - set(replay.golden_names(matrix.profile)) - {EXPERIMENTS})
    if unknown:
        print(f"trainguard: error: --names {unknown}: not golden runs of profile {matrix.profile.name}; it has "
              f"{', '.join(replay.golden_names(matrix.profile)) or 'none'}"
              + (f" (and `{EXPERIMENTS}`: its declared experiments')" if matrix.profile.experiments else ""),
              file=sys.stderr)
        return 2
    models = [name for name in names if name != EXPERIMENTS]
    outcomes = replay.replay(matrix, models, printer=lambda _: None, inputs=not args.names and bool(models))
    if not args.names or EXPERIMENTS in args.names:
        outcomes += _experiment_replays(matrix)
    for o in outcomes:
        print(f"{o.status.upper():>18}  {o.message}" + (f" [{o.seconds:.1f} s]" if o.seconds else ""))
    code = replay.exit_code(outcomes)
    if code == 5:
        print(f"nothing to replay: profile {matrix.profile.name} has no golden runs for {matrix.device.type} under "
              f"{matrix.options.baselines_dir}; write them with `trainguard baselines update --golden --profile "
              f"{matrix.profile.name}`")
    else:
        counts = {}
        for o in outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        print(", ".join(f"{n} {status}" for status, n in counts.items()) + f" ({sum(o.seconds for o in outcomes):.1f} s)")
        if any(o.status == MISSING for o in outcomes):
            print("some golden runs are missing: write them with `trainguard baselines update --golden`")
    _replay_summary(args, replay.summary_markdown(outcomes, code, matrix.profile.cli_name))
    return code


def _experiment_replays(matrix) -> list:
    """Each declared experiment's golden runs replayed (trainguard.replay.experiment_replay, as a night replays them),
    each an outcome beside the models' ("NAME VARIANT")."""
    from .checks import CheckSession
    from .checks.declared_experiments import experiment
    from .replay import experiment_replay
    from .replay.experiment_kind import replayed
    from .stores.golden import INCOMPARABLE, MISSING, Outcome

    session, outcomes = CheckSession(matrix), []
    statuses = {experiment_replay.MISSING: MISSING, experiment_replay.FAILED: INCOMPARABLE}
    for target in matrix.profile.experiments:
        found = experiment(session, target)
        if why := ("replay_budget 0" if found.replay_budget == 0 else found.unavailable()):
            print(f"experiment {found.name}: not replayed ({why})")
            continue
        started = time.perf_counter()
        for o in replayed(session, found):
            outcomes.append(Outcome(f"{found.name} {o.variant}", statuses.get(o.status, o.status), o.message,
                                    seconds=time.perf_counter() - started))
            started = time.perf_counter()
    return outcomes


def _replay_summary(args, markdown: str) -> None:
    from .report.markdown import append_job_summary
    from .core.storage import atomic_write_text

    if args.summary is not None:
        atomic_write_text(args.summary, markdown)
    append_job_summary(markdown)


def cmd_baselines(args) -> int:
    """update (train the baseline seeds; --golden: the golden runs only), calibrate, diff, show."""
    from .checks.baseline import baseline_file

    if args.golden and args.action != "update":
        print("trainguard: error: --golden goes with `baselines update`", file=sys.stderr)
        return 2
    matrix = _matrix(args)
    if args.action == "update":
        if note := matrix.redirect_writes():
            print(note)
        return _update_goldens(matrix, args) if args.golden else _update_baselines(matrix, args)
    path = baseline_file(matrix)
    if not matrix.profile.models and args.action != "calibrate":
        print(f"profile {matrix.profile.name} trains no models: `baselines {args.action}` reads the models' baseline "
              f"table; its experiments' baselines are in {Path(matrix.options.baselines_dir) / matrix.profile.name / 'experiments'} "
              f"(`trainguard baselines calibrate` reads them)", file=sys.stderr)
        return 2
    if matrix.profile.models and not path.exists():
        print(f"no baseline at {path}; create it with `trainguard baselines update --profile {matrix.profile.cli_name}`",
              file=sys.stderr)
        return 2
    return {"calibrate": _calibrate, "diff": _diff_published, "show": _show_baseline}[args.action](matrix, args, path)


EXPERIMENTS = "experiments"  # --golden --names experiments: the golden runs of the profile's declared experiments


def _update_goldens(matrix, args) -> int:
    from .replay.golden_runs import write_goldens

    from .replay.golden_runs import INPUTS

    names = args.names or None
    unknown = sorted(set(names or ()) - set(matrix.profile.golden_names()) - {INPUTS, EXPERIMENTS})
    if unknown:
        print(f"trainguard: error: --names {unknown}: not golden runs of profile {matrix.profile.name}; it has "
              f"{', '.join(matrix.profile.golden_names()) or 'none'} (and {INPUTS}, {EXPERIMENTS})", file=sys.stderr)
        return 2
    models = None if names is None else [n for n in names if n != EXPERIMENTS]
    if models != []:
        write_goldens(matrix, models, command=" ".join(["trainguard", "baselines", "update", "--golden", "--profile",
                                                        matrix.profile.name, *(["--names", *models] if models else [])]))
    if (names is None or EXPERIMENTS in names) and matrix.profile.experiments:  # the profile's own experiments
        from .checks import CheckSession

        for line in CheckSession(matrix).update(["experiment_replay"]):
            print(line)
    return 0


def _update_baselines(matrix, args) -> int:
    """The baseline seeds (trained, cached, or from --from-log), the declared experiments' baselines, the golden
    runs."""
    from .checks import CheckSession

    _models_log(matrix.profile, args.from_log)
    if args.from_log:  # recompute from recorded runs instead of training (e.g. a committed run log)
        from .stores.runlog import histories_from_log

        for log in args.from_log:
            runs = {key: h for key, h in histories_from_log(log, matrix.profile.name).items()
                    if key[0] in matrix.profile.models and key[1] in matrix.profile.baseline_seeds}
            other = [f"{m} seed {s}" for (m, s), h in sorted(runs.items()) if h.key != matrix.run_spec(m, s).key()]
            if other:  # trained by other code, settings, versions or thread count than this run would use
                print(f"note: {log}: {len(other)} run(s) have another key than this checkout and machine would give "
                      f"them ({', '.join(other[:4])}{' …' if len(other) > 4 else ''}): the baseline records what they "
                      f"were trained with, not what a night here computes")
            matrix.preload(runs)
    session = CheckSession(matrix)
    session.source_logs = list(args.from_log or [])
    if not args.skip_models and (not args.from_log or args.train_missing):  # else a run the logs lack is an error,
        from .api import executor_for                                         # not hours of training
        from .night.plan import plan_baselines

        executor = executor_for(matrix.options)  # the seeds' runs first: in process, or spread over the cluster
        executor.prepare()
        executor.execute(plan_baselines(session), session)
    for old, new in args.retired or ():
        print(f"note: {old} is retired (trainguard.core.retired): it does what {new} does", file=sys.stderr)
        setattr(args, new.removeprefix("--").replace("-", "_"), True)
    kinds = (([] if args.skip_models else ["baseline"]) + ([] if args.skip_experiments else ["experiments"])
             + ([] if args.skip_golden else ([] if args.skip_models else ["replay"]) + ["experiment_replay"]))
    for line in session.update(kinds):
        print(line)
    return 0


def _calibrate(matrix, args, path) -> int:
    """False alarms, detectable effects and noise from the stored per-seed baseline (and --from-log reruns)."""
    from .stores import baselines as bl
    from .audit.calibration import render
    from .checks import band_check_count, per_check_alpha
    from .checks import baseline as baseline_kind
    from .stores.runlog import histories_from_log

    if not matrix.profile.models:  # experiments alone: no models' baseline table
        from .audit.calibration import render_experiments

        _models_log(matrix.profile, args.from_log)

        print(render_experiments(matrix.profile, per_check_alpha(matrix.profile), band_check_count(matrix.profile),
                                 _calibrate_experiments(matrix)))
        return 0
    histories = {}
    for log in args.from_log or ():
        histories.update(histories_from_log(log, matrix.profile.name))
    reruns = {key: bl.curve(h) for key, h in histories.items() if key[0] in matrix.profile.models and h.completed} \
        if args.from_log else None
    print(render(baseline_kind.read(matrix), matrix.profile, per_check_alpha(matrix.profile),
                 band_check_count(matrix.profile), reruns, _calibrate_experiments(matrix)))
    return 0


def _calibrate_experiments(matrix) -> list[str]:
    """Each declared experiment's leave-k-out and MDE lines, from its stored baseline runs."""
    from .audit.experiment_calibration import section
    from .checks import CheckSession, per_check_alpha
    from .checks.declared_experiments import baseline_store, experiment, night_runs
    from .runs.experiment_runs import baseline_of

    session, lines = CheckSession(matrix), []
    for target in matrix.profile.experiments:
        found = experiment(session, target)
        baseline, _ = baseline_of(found, baseline_store(session, found), matrix.threads)
        lines += (section(found, baseline, per_check_alpha(matrix.profile), matrix.profile.statistics.power,
                          night_runs(session, target))
                  if baseline else [f"- {found.name}: no baseline in {baseline_store(session, found).root}"])
    return lines


def _diff_published(matrix, args, path) -> int:
    from .checks import baseline as baseline_kind
    from .checks import published
    from .report.markdown import published_vs_measured

    table = baseline_kind.read(matrix)
    print(f"{path} (n = {len(table.meta.get('seeds', []))} seeds; {table.meta.get('data', {}).get('test_split', '?')}) "
          f"against {published.path(matrix)}:\n")
    print(published_vs_measured(table, published.read(matrix), matrix.profile))
    return 0


def _show_baseline(matrix, args, path) -> int:
    from .checks import baseline as baseline_kind
    from .report.markdown import markdown_table, pd

    table = baseline_kind.read(matrix)
    print(f"{path} (n = {len(table.meta.get('seeds', []))} seeds per cell; per-seed curves in "
          f"{path.with_name(path.stem + '-seeds.csv').name}):\n")
    print(markdown_table(pd.read_csv(path)))
    tails = baseline_kind.tails(table, matrix.profile)
    print("\ntails (docs/statistics.md): " + ("no band check's seeds hold one far from the others" if not tails else
          "; ".join(baseline_kind.describe_tail(check, seed, tail, len(table.seeds)) for check, seed, tail in tails)))
    return 0


def cmd_selftest(args) -> int:
    """Inject known regressions, check them like a night, write the caught/missed table; 1 if any is missed."""
    from .audit import selftest
    from .audit.experiment_selftest import line as fault_line, section as faults_section
    from .report import markdown as report

    matrix = _matrix(args)
    if matrix.options.executor != "local":
        print("trainguard: error: --executor ray: the self-test injects its regressions into this process's code, so "
              "its runs train here; drop --executor (a night and a baseline update can run on Ray)", file=sys.stderr)
        return 2
    default = selftest.CI_INJECTIONS + (selftest.SUBTLE_INJECTIONS if args.replay_only else ())
    injections = () if args.skip_models or not matrix.profile.models else \
        selftest.by_name(args.injections) if args.injections else default
    outcomes = selftest.run_selftest(matrix, injections, log=args.selftest_log, bands=not args.replay_only)
    faults, notes = _experiment_faults(args, matrix)
    path = report.write(args.report, selftest.report_text(matrix, outcomes) + "\n" + faults_section(faults, notes))
    run = [o for o in outcomes if not o.skipped]
    missed = [o.injection.name for o in run if not o.caught] + [o.fault.name for o in faults if not o.caught]
    for o in outcomes:
        bands = f"bands: {len(o.caught_by)} of {len(o.verdicts)} checks failed" if o.bands_run else "bands: not run"
        print(f"{'not run' if o.skipped else 'caught' if o.caught else 'MISSED'}: {o.injection.name} "
              f"({o.injection.kind}) {o.skipped or f'replay: {selftest.replay_cell(o)}; {bands}'}")
    faults = [o for o in faults if o.measured]  # a fault no instrument looked at is neither caught nor missed
    for o in faults:
        print(fault_line(o))
    print(f"{len(run) + len(faults) - len(missed)} of {len(run) + len(faults)} injected regressions caught")
    if not (run or faults):
        print("nothing was injected: the profile's models' injections did not apply and its experiments declare no "
              "faults (Experiment(faults=...): docs/own-training.md); a self-test that injects nothing proves nothing")
    print(f"report: {path}")
    return 1 if missed or not (run or faults) else 0


def _experiment_faults(args, matrix) -> tuple[list, list[str]]:
    """The profile's declared experiments' own faults (none with --skip-experiments, or when --injections names
    model injections only)."""
    from .audit.experiment_selftest import profile_faults
    from .checks import CheckSession

    if args.skip_experiments or args.injections or not matrix.profile.experiments:
        return [], []
    return profile_faults(CheckSession(matrix), bands_too=not args.replay_only, printer=matrix.printer)


def cmd_ledger(args) -> int:
    """Print the last runs of the profile on this device class, write trend plots where asked; or import and
    export JSON-lines ledgers."""
    from .stores.ledger import open_ledger
    from .options import ledger_location
    from .core.spec import ConfigError

    store = open_ledger(ledger_location(vars(args)))
    if args.action == "import":
        if not args.paths:
            raise ConfigError("ledger import: name the JSON-lines ledgers to import (files or directories)")
        imported, skipped = store.import_jsonl(args.paths)
        print(f"imported {imported} night(s) into {store.where()}" + (f"; {skipped} already there" if skipped else ""))
        return 0
    if args.action == "export":
        if len(args.paths) != 1:
            raise ConfigError("ledger export: name one directory to write <profile>/<class>.jsonl into")
        for path in store.export_jsonl(args.paths[0]):
            print(f"wrote {path}")
        return 0
    if args.action == "prune":
        from .stores.ledger import DEFAULT_KEEP_REPORTS

        keep = DEFAULT_KEEP_REPORTS if args.keep_reports is None else args.keep_reports
        dropped = store.prune(keep)
        print(f"pruned the reports of {dropped} night(s) in {store.where()}; the newest {keep} per profile and device "
              f"class keep theirs, every night keeps its record")
        return 0
    return _show_ledger(args, store)


def _guard_nights(args, store) -> tuple[str, str, list[dict]] | None:
    """(name, class, its nights) where ``--profile NAME`` names no profile but the experiment of ``trainguard guard
    … check --ledger`` nights (they are recorded under the experiment's name, in its arithmetic class); None
    otherwise."""
    from .core.spec import PROFILES_DIR
    from .stores.experiment_records import arithmetic_class

    name = args.profile
    if not name or Path(name).suffix or (PROFILES_DIR / f"{name}.toml").exists():
        return None
    if args.device not in (None, "auto"):
        device_class = arithmetic_class(args.device, args.precision or "fp32", bool(args.compile))
    else:  # the class its nights were recorded in (the CPU's before a GPU's), of the arithmetic asked
        suffix = arithmetic_class("", args.precision or "fp32", bool(args.compile))
        recorded = sorted(c for p, c in store.profiles() if p == name and c.split("-", 1)[0] + suffix == c)
        device_class = recorded[0] if recorded else arithmetic_class("cpu") + suffix
    entries = store.read(name, device_class)
    return (name, device_class, entries) if entries else None


def _show_guard_ledger(args, name: str, device_class: str, entries: list[dict]) -> int:
    """A guard's nights: its variants where a profile's models stand (the record's own shape), then its table."""
    from .checks.trend import experiment_rows, history_rows
    from .core.errors import ConfigError
    from .report import markdown as report

    if args.plots is not None:
        raise ConfigError(f"ledger --plots: {name} is an experiment's guard nights, not a profile: its trend charts "
                          f"are the dashboard's (trainguard dashboard)")
    shown = entries[-args.last:]
    print(f"experiment {name} on {device_class} (nights of `trainguard guard … check --ledger`):")
    print(report.markdown_table(report.pd.DataFrame.from_records(history_rows(shown, args.last))))
    for experiment, rows in experiment_rows(shown, args.last).items():
        print(f"\nexperiment {experiment}:\n{report.markdown_table(report.pd.DataFrame.from_records(rows))}")
    return 0


def _show_ledger(args, store) -> int:
    from .core import plots
    from .report import markdown as report
    from .checks import baseline as baseline_kind
    from .checks.trend import LABELS, experiment_rows, history_rows, series

    if (guard := _guard_nights(args, store)) is not None:
        return _show_guard_ledger(args, *guard)
    matrix = _matrix(args)
    entries = store.read(matrix.profile.name, matrix.device_class)[-args.last:]
    if not entries:
        print(f"no runs of profile {matrix.profile.name} on {matrix.device_class} in the ledger {store.where()}",
              file=sys.stderr)
        return 2
    print(report.markdown_table(report.pd.DataFrame.from_records(history_rows(entries, args.last))))
    for name, rows in experiment_rows(entries, args.last).items():  # the profile's declared experiments, each alone
        print(f"\nexperiment {name}:\n{report.markdown_table(report.pd.DataFrame.from_records(rows))}")
    if args.plots is not None and not matrix.profile.models:
        print(f"no trend plots: profile {matrix.profile.name} trains no models, and its experiments' trend charts are "
              f"the dashboard's (trainguard dashboard)")
    elif args.plots is not None:
        from .api import trend_bands

        table = baseline_kind.checkable(matrix)[0] if "baseline" in matrix.profile.checks else None
        metric, cell_bands = trend_bands(matrix, table, k=len(entries[-1].get("seeds", [1])))
        runs = [e.get("time", "?")[5:16].replace("T", " ") for e in entries]
        for model in matrix.profile.models:
            bands = {str(b): cell_bands[(model, b)] for b in matrix.profile.budgets if (model, b) in cell_bands}
            lines = {str(b): series(entries, model, b, metric) for b in matrix.profile.budgets}
            if any(v is not None for values in lines.values() for v in values):
                path = plots.trend(args.plots / f"trend-{model}.png", f"{model}: {LABELS[metric]} over runs",
                                   LABELS[metric], runs, lines, bands)
                print(f"wrote {path}")
    return 0


def cmd_dashboard(args) -> int:
    """Write the static site of the ledger's nights; say where, how big and how long it took."""
    import time

    from .report import dashboard
    from .stores.ledger import open_ledger
    from .options import ledger_location

    started = time.perf_counter()
    store = open_ledger(ledger_location(vars(args)))
    dashboard.clean(args.out)
    pages = dashboard.build(store, args.out)
    print(f"wrote {args.out / 'index.html'}: {len(pages)} pages, {dashboard.site_size(args.out) / 2**20:.1f} MiB, "
          f"in {time.perf_counter() - started:.1f} s, from the ledger {store.where()}")
    return 0


def cmd_data(args) -> int:
    from .stores import data

    if args.action == "export":
        from .runs.export import export_profile_data
        from .core.spec import load_profile

        export_profile_data(load_profile(args.profile), args.directory, args.data_dir, not args.offline)
        return 0
    for name in args.names:
        if args.action == "verify":
            directory = args.data_dir or data.default_data_dir()
            if directory is None:
                print("data verify needs --data-dir or TRAINGUARD_DATA_DIR", file=sys.stderr)
                return 2
            ds = data.read_npz(name, Path(directory) / data.FILENAMES[name])
        else:
            ds = data.load(name, None, args.cache_dir, allow_download=True)
        print(f"{name}: {ds.source}: {len(ds.x_train):,} train, {ds.test_split}; {ds.verification}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .stores.data import DataError
    from .core.spec import ConfigError
    from .core.redact import redact_text
    from .core.storage import WaitTimeout, environment_error

    args = build_parser().parse_args(argv)
    try:
        return {"run": cmd_run, "report": cmd_report, "baselines": cmd_baselines, "data": cmd_data, "replay": cmd_replay,
                "selftest": cmd_selftest, "ledger": cmd_ledger, "history": cmd_ledger,
                "dashboard": cmd_dashboard, "guard": cmd_guard}[args.command](args)
    except (ConfigError, DataError, WaitTimeout) as exc:  # a message may quote a URL given to an option: redacted
        print(f"trainguard: error: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        if (message := environment_error(exc)) is None:
            raise
        print(f"trainguard: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trainguard: interrupted; completed runs are kept in the result cache, rerun to resume", file=sys.stderr)
        return 130
    finally:
        while _OPENED:
            _OPENED.pop().close()


if __name__ == "__main__":
    sys.exit(main())
