"""Every wait of a night is bounded: the night's own time limit, and the child processes it starts.

A night nobody watches must end by itself, with a report and a ledger entry that say what did not finish:

- **the night's limit** (``--max-minutes``, the profile's ``max_minutes``): :func:`start_night` sets a deadline;
  training checks it every batch (:func:`check`) and a run that passes it stops as ``timeout``; runs not started
  by then are recorded as not trained. Checks, report and ledger still run, and the night exits non-zero.
- **a last resort** for a process stuck where no Python runs (a kernel that never returns): past the deadline
  plus :data:`HARD_GRACE_S`, :mod:`faulthandler` prints every thread's stack to stderr and ends the process,
  so the CI job ends with the place it hung instead of running into the job's own limit without a word;
- **child processes** (an experiment's runs in a process of their own, the replay's lower-ISA runs): :func:`run_child` kills a child that runs
  past ``TRAINGUARD_CHILD_TIMEOUT`` seconds (or the night's remaining time) and says which child, after how long.

The lock waits of the stores are bounded in :func:`trainguard.core.storage.file_lock` (``TRAINGUARD_LOCK_TIMEOUT``),
also no longer than the night's remaining time.
"""

from __future__ import annotations

import faulthandler
import io
import os
import sys
import subprocess
import time

from .errors import ConfigError, WaitTimeout

#: Default bound of one child process, seconds (a whole training run in a child: seconds to hours).
DEFAULT_CHILD_TIMEOUT = 2 * 3600.0
#: After the night's deadline, how long the night has to write its report before the process is ended.
HARD_GRACE_S = 600.0


class DeadlineExceeded(WaitTimeout):
    """The night's time limit passed (``--max-minutes``): the message says during what."""


_deadline: float | None = None
_minutes: float | None = None


def start_night(max_minutes: float | None, grace_s: float = HARD_GRACE_S) -> None:
    """Bound this night to ``max_minutes`` (None: unbounded, the default); arm the last-resort stack dump."""
    global _deadline, _minutes
    end_night()
    if max_minutes is None:
        return
    _minutes = max_minutes
    _deadline = time.monotonic() + max_minutes * 60.0
    try:  # to the process's own stderr (a test runner's capture has no file descriptor)
        faulthandler.dump_traceback_later(max_minutes * 60.0 + grace_s, exit=True, file=sys.__stderr__)
    except (AttributeError, ValueError, io.UnsupportedOperation):  # no stderr at all: the soft limit still holds
        pass


def end_night() -> None:
    global _deadline, _minutes
    if _deadline is not None:
        faulthandler.cancel_dump_traceback_later()
    _deadline = _minutes = None


def remaining() -> float | None:
    """Seconds left before the night's deadline (None: no limit; 0 once passed)."""
    return None if _deadline is None else max(0.0, _deadline - time.monotonic())


def passed() -> bool:
    return _deadline is not None and time.monotonic() >= _deadline


def describe_limit() -> str:
    return f"the night's time limit ({_minutes:g} min: --max-minutes or the profile's max_minutes)"


def check(what: str) -> None:
    """Raise :class:`DeadlineExceeded` if the night's deadline has passed (called every batch: cheap)."""
    if _deadline is not None and time.monotonic() >= _deadline:
        raise DeadlineExceeded(f"{describe_limit()} passed during {what}")


def bound(seconds: float) -> float:
    """``seconds``, or the night's remaining time if that is shorter (never below one second)."""
    left = remaining()
    return seconds if left is None else max(1.0, min(seconds, left))


def seconds_from_environment(name: str, default: float) -> float:
    """A bound in seconds from the environment variable ``name`` (a positive number), else ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"{name}={raw!r}: expected a positive number of seconds")
    return value


def child_timeout() -> float:
    """``TRAINGUARD_CHILD_TIMEOUT`` seconds, else :data:`DEFAULT_CHILD_TIMEOUT`."""
    return seconds_from_environment("TRAINGUARD_CHILD_TIMEOUT", DEFAULT_CHILD_TIMEOUT)


def run_child(command: list[str], what: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``command`` (its output captured), killed past :func:`child_timeout` or the night's remaining time:
    then :class:`WaitTimeout` names ``what``, the limit and the end of what the child wrote to stderr."""
    limit = bound(child_timeout())
    try:
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=limit, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        tail = f"; its last words on stderr:\n{stderr[-1500:]}" if stderr.strip() else ""
        cause = (describe_limit() if remaining() is not None and limit < child_timeout()
                 else "TRAINGUARD_CHILD_TIMEOUT (seconds)")
        raise WaitTimeout(f"{what}: the child process ran past {limit:.0f} s and was killed (the bound: {cause})"
                          f"{tail}") from None

