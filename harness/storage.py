"""Files that are never half-written: temporary file in the same directory, fsync, rename; and lines appended
whole (one ``write`` to a file opened with O_APPEND, fsynced), so concurrent writers interleave whole lines.

Every store builds on these: the result cache and the baselines are rewritten atomically, the run log and the
ledger of nights are appended to line by line and read back by :func:`read_json_lines`, which names the file and
the line of anything damaged (never skipped silently)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

class ConfigError(ValueError):
    """A profile, baseline, stored file or option is malformed; the message names the file (and line or key) and
    the way out. Every layer raises it (``trainguard.spec`` re-exports it); the front ends turn it into exit 2."""


# mkstemp creates files 0600; a report, baseline or result must get the permissions any other file
# the user writes gets (0666 less the umask), or colleagues and CI artifact readers cannot open it.
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_line(path: Path, line: str) -> Path:
    """Append one whole line (a trailing newline is added) as a single write: two processes appending at once
    interleave whole lines, never halves."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666 & ~_UMASK)
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_json_lines(path: Path, what: str, valid, expected: str, missing_ok: bool = False) -> list[dict]:
    """Every line of an appended JSON-lines store (``what``: "run log", "ledger"), as dicts, oldest first.

    A line that is not JSON, or that ``valid`` rejects (``expected`` says what it should be), is a ConfigError naming
    the file and the line: a store that was appended to whole lines is damaged only by hand or by the disk, and
    a reader that skipped such a line would compare against less than it says. A missing file is an error, or
    empty with ``missing_ok`` (a ledger before its first night).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        if missing_ok:
            return []
        raise ConfigError(f"{what} {path} does not exist") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{what} {path}, line {number}: not JSON ({exc.msg}); the file is damaged — delete or "
                              f"repair that line (the other lines are intact)") from None
        if not isinstance(record, dict) or not valid(record):
            raise ConfigError(f"{what} {path}, line {number}: not {expected}")
        records.append(record)
    return records


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
