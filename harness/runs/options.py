"""What a night is told: the profile and every option of its runs (plain data). The front ends fill it — the
CLI's flags, pytest's ``--tg-*`` options and ``tg_*`` ini keys, one table in :mod:`trainguard.options` — and the
library's users build it directly (``trainguard.Options``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.spec import Profile


@dataclass(frozen=True)
class RayResources:
    """Where and with what each run's Ray task runs (trainguard.night.cluster; docs/cluster.md)."""

    address: str | None = None  # None: a local cluster (or the one this process joined); auto; HOST:PORT; ray://HOST:10001
    cpus_per_run: float | None = None  # None: the run's thread count
    gpus_per_run: float = 0.0
    retries: int = 3  # reruns of a task whose worker died (Ray's max_retries); a run's own failure is never rerun


@dataclass
class Options:
    profile: Profile
    device: str = "auto"
    seeds: tuple[int, ...] | None = None  # the seeds to train and check; None = the profile's check_seeds
    allow_baseline_seeds: bool = False  # a seed of the baseline may be checked (it cannot fail against itself)
    strict: bool = False  # a missing baseline or a data mismatch is a failed check, not a skip (CI=true)
    data_dir: Path | None = None
    baselines_dir: Path | None = None  # None: the profile's (spec.baselines_dir_for)
    results_dir: Path | None = Path(".trainguard/results")
    run_log: Path | None = Path(".trainguard/runlog.jsonl")  # JSON-lines events of every training run
    threads: int | None = None  # torch/TensorFlow threads; None: the profile's ``threads`` (apply_threads)
    precision: str = "fp32"  # fp32 | bf16 (autocast); each its own baseline class
    compile: bool = False  # torch.compile the model; its own baseline class
    stack_seeds: bool = False  # train a model's seeds at once (trainguard.engines.stacked); its own baseline class
    allow_download: bool = True
    ledger: str | None = None  # the ledger of nights (trainguard.stores.ledger): a path or URL; None: no comparison between runs
    ledger_dir: Path | None = None  # the former option: the ledger DIR/ledger.sqlite (ledger wins)
    mlflow: str | None = None  # an MLflow tracking URI each night is also logged to (trainguard.report.mlflow_export)

    fail_on: tuple[str, ...] = ()  # "drift", "speed": those flags fail the run
    replay: bool = True  # trainguard run replays the profile's golden runs first (trainguard.replay.golden_runs)
    figures: bool = True  # the report's PNG figures (off: the same markdown without them)
    max_minutes: float | None = None  # the night's time limit (trainguard.core.watchdog); None: the profile's max_minutes
    executor: str = "local"  # local: train in this process; ray: a Ray task per run (trainguard.night.cluster)
    ray: RayResources = field(default_factory=RayResources)

    def __post_init__(self) -> None:
        # The profile's data set is checked here, where every front end builds its night, so a name the data store
        # does not serve stops the run before anything trains (the profile parser only asks for a name).
        from ..stores.data import check_profile_dataset

        check_profile_dataset(self.profile)

    @property
    def time_limit(self) -> float | None:
        """Minutes the night may take: --max-minutes, else the profile's ``max_minutes``, else None (no limit)."""
        return self.max_minutes if self.max_minutes is not None else self.profile.max_minutes

    @property
    def ledger_location(self) -> str | None:
        """The ledger's path or URL: ``ledger``, else ``ledger_dir``/ledger.sqlite, else None (no ledger)."""
        from ..stores.ledger import resolve_location

        return resolve_location(self.ledger, self.ledger_dir)
