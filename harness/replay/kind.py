"""The replay as a check kind: its cases are the golden runs (and ``inputs``, the night's data at full scale), its
reference the golden files, its update ``trainguard baselines update --golden``.

The execute stage replays the golden runs (trainguard.night.execute, into ``CheckSession.replays``); this kind only
reads what came back. A change it sees need not matter (a refactor that reorders a sum), so the kind *flags*: a
change fails a strict night (CI=true, --strict) and is flagged otherwise (trainguard.core.compare.flag_fails).
What it can and cannot see: docs/replay.md.
"""

from __future__ import annotations

from ..checks import Case, CheckKind, Reference
from ..core.compare import Verdict
from ..stores.golden import INPUTS, MISSING, missing_message, read_golden, read_inputs


class GoldenReplay(CheckKind):
    name = "replay"
    reference_policy = "stored"
    flags = True

    def enabled(self, profile) -> bool:
        return bool(profile.golden_names())

    def active(self, options) -> bool:
        return options.replay

    def cases(self, profile) -> list[Case]:
        return [Case(self.name, name, group="replay") for name in [INPUTS, *profile.golden_names()]]

    def reference_key(self, case: Case):
        return case.id

    def reference(self, session, case: Case) -> Reference:
        """The golden file (read and checked: a corrupt one is a ConfigError before anything trains), or why none."""
        matrix, command = session.matrix, f"trainguard baselines update --golden --profile {session.profile.cli_name}"
        if case.id == INPUTS:
            path = matrix.references.inputs
            recorded = read_inputs(path)
            return Reference(recorded) if recorded is not None else Reference(missing=(
                f"{INPUTS}: no fingerprint of the night's data at {path}; write it (and only it) with "
                f"`{command} --names {INPUTS}`"))
        path = matrix.references.golden(case.id)
        recorded = read_golden(path)
        return Reference(recorded) if recorded is not None else Reference(
            missing=missing_message(case.id, path, session.profile.cli_name))

    def verdicts(self, session, case: Case, reference) -> list[Verdict]:
        outcome = session.replays.get(case.id)
        if outcome is None or outcome.status == MISSING:  # the execute stage did not replay it: never replayed here
            return [Verdict(self.name, case.id, False, f"{case.id}: not replayed in this night's execute stage "
                                                       f"(--no-replay, or a night stopped before it)", model=case.id)]
        return [outcome_verdict(outcome)]

    def update(self, session) -> list[str]:
        """Write every golden run with its noise envelope, and the fingerprints of the night's inputs."""
        from .golden_runs import write_goldens

        matrix = session.matrix
        written = write_goldens(matrix, printer=matrix.printer,  # each file said as it is written (minutes)
                                command=f"trainguard baselines update --profile {session.profile.cli_name}")
        return [f"golden runs of {session.profile.name}: {len(written)} file(s) in "
                f"{matrix.references.golden_dir}" if written else "no golden runs written"]


def outcome_verdict(outcome) -> Verdict:
    """A replay's outcome as a verdict: identical and numerics-differ pass; changed and cannot-compare fail (the
    judge flags them where the night is not strict), with the first value that moved."""
    where = outcome.beyond or outcome.first
    return Verdict("replay", outcome.name, outcome.passed, outcome.message, model=outcome.name,
                   metric=where.series if where else None,
                   measured=where.replay if where else None, expected=where.golden if where else None)
