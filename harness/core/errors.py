"""The errors every layer raises and the front ends turn into one sentence and exit 2 (the lowest module: it
imports nothing of trainguard's)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A profile, baseline, stored file or option is malformed; the message names the file (and line or key) and
    the way out. Every layer raises it (``trainguard.core.storage`` and ``trainguard.core.spec`` re-export it)."""


class WaitTimeout(RuntimeError):
    """A bounded wait ran out (a lock another process held, a child process, the night's time limit): the message
    names what was waited for, how long, and the setting that bounds it."""
