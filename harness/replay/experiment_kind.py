"""The replay of a profile's own experiments (``experiments = [...]``) as a check kind of its night: each variant's
golden run (``baselines/<profile>/experiments/<experiment>/golden/``, written by ``trainguard baselines update
--golden``) rerun step by step by the execute stage and compared — the same replay as ``trainguard guard TARGET
replay`` (trainguard.replay.experiment_replay). Like the models' replay it *flags*: a change fails a strict night
(CI=true, --strict) and is flagged otherwise. One case per experiment, named after it.

What it sees and cannot see: trainguard.replay.experiment_replay (and, with ``data=`` declared, the data path at
full scale). Like the models' goldens, they are replayed before anything of the night trains.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..checks import Case, CheckKind, Reference
from ..checks.declared_experiments import baseline_store, experiment, resolved
from ..core.compare import Verdict

if TYPE_CHECKING:
    from .experiment_replay import ReplayOutcome


def _name(target: str) -> str:
    return target.rpartition(":")[2]


def _settings(session) -> dict:
    matrix = session.matrix
    return dict(device=matrix.device.type, data_dir=matrix.options.data_dir)


class DeclaredReplays(CheckKind):
    name = "experiment_replay"
    reference_policy = "stored"
    flags = True
    before_training = True

    def enabled(self, profile) -> bool:
        return bool(profile.experiments)

    def active(self, options) -> bool:
        return options.replay

    def cases(self, profile) -> list[Case]:
        return [Case(self.name, _name(t), f"experiment-{_name(t)}", (t,)) for t in profile.experiments]

    def unavailable(self, session, case) -> str | None:
        found = experiment(session, case.params[0])
        if found.replay_budget == 0:
            return f"experiment {found.name} has no golden run (replay_budget 0): not replayed"
        return found.unavailable()

    def reference_key(self, case):
        return case.params[0] if case is not None else None

    def reference(self, session, case) -> Reference:
        found, store = experiment(session, case.params[0]), baseline_store(session)
        missing = [v for v in found.variants if not store.golden_path(found.name, v).exists()]
        if not missing:
            return Reference(True)
        return Reference(missing=f"experiment {found.name}: no golden run of {', '.join(missing)} in "
                                 f"{store.root / found.name / 'golden'}; write them with trainguard baselines update "
                                 f"--golden --profile {session.profile.cli_name}")

    def deliver(self, session, case, runner=None) -> None:
        """Replay every variant's golden (:func:`replayed`), once a night."""
        found, store, target = experiment(session, case.params[0]), baseline_store(session), case.params[0]
        replays = session.__dict__.setdefault("experiment_replays", {})
        if target in replays or any(not store.golden_path(found.name, v).exists() for v in found.variants):
            return
        session.matrix.printer(f"[trainguard] replaying the golden runs of experiment {found.name}")
        replays[target] = list(replayed(session, found))

    def verdicts(self, session, case, reference) -> list[Verdict]:
        outcomes = session.__dict__.get("experiment_replays", {}).get(case.params[0])
        if outcomes is None:
            return [Verdict(self.name, case.id, False, f"experiment {case.id}: not replayed in this night's execute "
                                                       f"stage (--no-replay, or a night stopped before it)")]
        return [Verdict(self.name, f"{case.id}-{o.variant}", o.passed, o.message, metric=o.series) for o in outcomes]

    def update(self, session) -> list[str]:
        """Write every declared experiment's golden runs (twice to prove them deterministic, perturbed for the
        noise envelope), with their data path at full scale where declared."""
        from .experiment_replay import write_golden

        lines = []
        for target in session.profile.experiments:
            found = experiment(session, target)
            if found.replay_budget == 0 or (why := found.unavailable()):
                lines.append(f"experiment {found.name}: no golden written ("
                             f"{'replay_budget 0' if found.replay_budget == 0 else why})")
                continue
            for variant in found.variants:
                golden, message = write_golden(found, variant, baseline_store(session), session.matrix.threads,
                                               target=resolved(session, target), **_settings(session))
                if golden is None:
                    raise RuntimeError(message)
                lines.append(message)
        return lines


def replayed(session, found) -> Iterator[ReplayOutcome]:
    """Each variant's golden run replayed, one after another, in this process (the verdict needs the golden's own
    arithmetic): a night's execute stage and ``trainguard replay`` alike."""
    from .experiment_replay import replay

    store = baseline_store(session)
    for variant in found.variants:
        yield replay(found, variant, store, None, **_settings(session))


def night_record(session) -> dict:
    """"NAME VARIANT" → {status, message} of each declared experiment's golden replay this night: the night record's
    ``replay`` beside the models' golden runs (the dashboard's replay table)."""
    found = {}
    for target, outcomes in session.__dict__.get("experiment_replays", {}).items():
        name = experiment(session, target).name
        found.update({f"{name} {o.variant}": {"status": o.status, "message": o.message} for o in outcomes})
    return found
