"""Files that are never half-written: temporary file in the same directory, fsync, rename; lines appended
whole (one ``write`` to a file opened with O_APPEND, fsynced, its byte count checked), so concurrent writers
interleave whole lines; and several files replaced together (:func:`write_together`), all or none.

Every store builds on these: the result cache and the baselines are rewritten atomically, the run log and the
ledger of nights are appended to line by line and read back by :func:`read_json_lines`, which names the file and
the line of anything damaged (never skipped silently) — except a torn *last* line, the one thing a crash or a full
disk leaves behind: that line is set aside beside the file, said so (:data:`RECOVERED`), and the store goes on."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from .errors import ConfigError, WaitTimeout  # noqa: F401 (re-exported: every layer imports them from here)


#: What a full disk, a file-size limit or missing permissions mean to the person reading the error.
_ENVIRONMENT_ERRORS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                       errno.EFBIG: "the file is larger than this process may write (a file-size limit)",
                       errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
                       errno.EROFS: "the file system is read-only"}


def environment_error(exc: OSError) -> str | None:
    """One sentence for an OSError the machine, not trainguard, caused: the path and what to do (None: a bug)."""
    what = _ENVIRONMENT_ERRORS.get(exc.errno)
    if what is None:
        return None
    path = exc.filename or "a file"
    return (f"cannot write {path}: {what} ({exc.strerror}); free space or fix the permissions, or point the "
            f"option that names it (--results-dir, --run-log, --report, --ledger-dir, --baselines-dir) elsewhere; "
            f"completed runs are kept and a rerun resumes")


#: What the readers of line stores set aside this process (torn last lines): the report lists them.
RECOVERED: list[str] = []

#: Default bound of every lock wait, seconds (TRAINGUARD_LOCK_TIMEOUT overrides; docs/reliability.md).
DEFAULT_LOCK_TIMEOUT = 6 * 3600.0


def lock_timeout() -> float:
    """Seconds any trainguard lock waits before giving up: ``TRAINGUARD_LOCK_TIMEOUT``, else the default (generous:
    the result lock waits for another process to train a whole run)."""
    from .watchdog import seconds_from_environment

    return seconds_from_environment("TRAINGUARD_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT)


@contextlib.contextmanager
def file_lock(path: Path, what: str, timeout: float | None = None, on_wait=None):
    """Hold an exclusive lock on ``path`` (a ``.lock`` file; the OS drops it if its holder dies), waiting at most
    ``timeout`` seconds (default :func:`lock_timeout`); ``on_wait`` is told once when another process holds it.
    On expiry :class:`WaitTimeout` names ``what`` and the lock file."""
    from filelock import FileLock, Timeout

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from . import watchdog

    lock = FileLock(path)
    limit = watchdog.bound(lock_timeout() if timeout is None else timeout)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait()
        try:
            lock.acquire(timeout=limit)
        except Timeout:
            raise WaitTimeout(f"{what}: waited {limit:.0f} s for the lock {path}, held by another process; if no "
                              f"trainguard process is running, something holds it (an NFS lock?); the bound is "
                              f"TRAINGUARD_LOCK_TIMEOUT (seconds)") from None
    try:
        yield
    finally:
        lock.release()


def _umask() -> int:
    """The process's umask, read without changing it (Linux: /proc; elsewhere the classic set-and-restore, once)."""
    global _UMASK_CACHE
    if _UMASK_CACHE is None:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("Umask:"):
                    _UMASK_CACHE = int(line.split()[1], 8)
        except (OSError, ValueError, IndexError):
            pass
        if _UMASK_CACHE is None:  # not Linux: the only portable way, done at the first write, not at import
            _UMASK_CACHE = os.umask(0o022)
            os.umask(_UMASK_CACHE)
    return _UMASK_CACHE


_UMASK_CACHE: int | None = None


def file_mode() -> int:
    """The mode any other file the user writes gets (0666 less the umask): mkstemp's 0600 would lock colleagues and
    CI artifact readers out of a report, baseline or result."""
    return 0o666 & ~_umask()


def _write_fsynced(path: Path, payload: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file_mode())
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_directory(path.parent)  # the rename itself survives a power cut, not only the bytes
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a file object's write names no file: say which (a full disk, a size limit)
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------------ several files at once

_STAGE_PREFIX = ".staged-"
_COMMIT = ".commit"


def write_together(directory: Path, files: dict[str, bytes], what: str) -> list[str]:
    """Replace ``files`` (names relative to ``directory``) all at once, under the directory's lock: staged in a
    temporary directory beside them, committed by one atomic write of the list of names, then moved into place.
    A crash before the commit leaves the old files (the stage is discarded on the next access); a crash after it
    is finished by the next access (:func:`recover_staged`): readers never see half of an update. Returns what an
    earlier, interrupted update left and this one recovered."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with file_lock(directory / ".trainguard.lock", f"updating {what} in {directory}"):
        recovered = _recover(directory)
        stage = Path(tempfile.mkdtemp(dir=directory, prefix=_STAGE_PREFIX))
        for name, payload in files.items():
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            _write_fsynced(stage / name, payload)
        atomic_write_text(stage / _COMMIT, json.dumps(sorted(files)))  # the commit point
        _roll_forward(stage, directory)
    return recovered


@contextlib.contextmanager
def reading_together(directory: Path, what: str):
    """Read a set of files that :func:`write_together` replaces, never between two of its moves: under the
    directory's lock, after finishing or discarding an interrupted update. A directory this process cannot write
    (trainguard's own, installed read-only) has no writer either: it is read as it is."""
    directory = Path(directory)
    if not directory.is_dir() or not os.access(directory, os.W_OK):
        yield
        return
    with file_lock(directory / ".trainguard.lock", f"reading {what} in {directory}"):
        _recover(directory)
        yield


def recover_staged(directory: Path) -> list[str]:
    """Finish (committed) or discard (uncommitted) what an interrupted :func:`write_together` left; what was done."""
    directory = Path(directory)
    if not any(directory.glob(f"{_STAGE_PREFIX}*")):
        return []
    with file_lock(directory / ".trainguard.lock", f"recovering an update in {directory}"):
        return _recover(directory)


def _recover(directory: Path) -> list[str]:
    done = []
    for stage in sorted(directory.glob(f"{_STAGE_PREFIX}*")):
        if (stage / _COMMIT).is_file():
            names = _roll_forward(stage, directory)
            done.append(f"{directory}: finished an interrupted update ({', '.join(names)})")
        else:
            shutil.rmtree(stage, ignore_errors=True)
            done.append(f"{directory}: discarded an interrupted, uncommitted update (the files before it are intact)")
    RECOVERED.extend(done)
    return done


def _roll_forward(stage: Path, directory: Path) -> list[str]:
    names = json.loads((stage / _COMMIT).read_text())
    for name in names:
        source = stage / name
        if source.exists():  # a name already moved by a run that died after moving it
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, directory / name)
    _fsync_directory(directory)
    shutil.rmtree(stage, ignore_errors=True)
    return names


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows: directories cannot be opened; renames are durable there anyway
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------ line stores

#: Bound of the wait for a line store's lock (seconds): held only for one append, one repair or one read.
LINE_LOCK_SECONDS = 120.0


def _line_lock(path: Path, what: str):
    """The lock every appender, repairer and reader of the line store ``path`` takes: a reader never sees, and so
    never "repairs", a line another process is still writing (a write of more than a page is not atomic to
    readers, and a short write is finished in a second call)."""
    return file_lock(path.with_name(f".{path.name}.lock"), f"{what} {path}", timeout=LINE_LOCK_SECONDS)


def append_line(path: Path, line: str) -> Path:
    """Append one whole line (a trailing newline is added) under the store's lock (:func:`_line_lock`), as one
    write to an O_APPEND file. A short write (a full disk, a signal) is finished or, if the rest cannot be
    written, cut back to where the line began and raised: the store never keeps half a line of ours. A torn tail a
    killed writer left is set aside first (:func:`repair_tail`), so the new line does not glue onto it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = (line.rstrip("\n") + "\n").encode("utf-8")
    with _line_lock(path, "appending to"):
        _repair_tail_locked(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, file_mode())
        try:
            _write_all(fd, payload, path)
            os.fsync(fd)
        finally:
            os.close(fd)
    return path


def _write_all(fd: int, payload: bytes, path: Path) -> None:
    start = os.fstat(fd).st_size
    written = 0
    try:
        while written < len(payload):
            count = os.write(fd, payload[written:])
            if count <= 0:
                raise OSError(errno.EIO, f"write returned {count}", str(path))
            written += count
    except OSError as exc:
        if written:  # take our half line back out; if even that fails, the next append sets it aside
            with contextlib.suppress(OSError):
                if os.fstat(fd).st_size == start + written:
                    os.ftruncate(fd, start)
        raise OSError(exc.errno, exc.strerror, str(path)) from None  # os.write names no file: say which


def repair_tail(path: Path) -> str | None:
    """If ``path`` ends without a newline (a writer killed mid-line, a full disk), move that torn last line to
    ``<name>.torn-<time>`` beside it and cut it from the file; say what was done (None: nothing to do). Only the
    tail is touched: a damaged line in the middle stays an error for :func:`read_json_lines` to name."""
    path = Path(path)
    if not _ends_torn(path):
        return None
    with _line_lock(path, "repairing"):
        return _repair_tail_locked(path)


def _ends_torn(path: Path) -> bool:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if size == 0:
        return False
    with open(path, "rb") as handle:
        handle.seek(size - 1)
        return handle.read(1) != b"\n"


def _repair_tail_locked(path: Path) -> str | None:
    """:func:`repair_tail` for a caller that holds the store's lock: no writer is between two of its writes."""
    if not _ends_torn(path):
        return None
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    aside = unique_aside(path, "torn")
    atomic_write_bytes(aside, data[cut:])
    with open(path, "r+b") as handle:
        handle.truncate(cut)
        handle.flush()
        os.fsync(handle.fileno())
    note = (f"{path}: its last line was torn ({len(data) - cut} bytes without a newline, left by an interrupted "
            f"write); set aside in {aside.name}, the complete lines before it kept")
    RECOVERED.append(note)
    return note


def read_json_lines(path: Path, what: str, valid, expected: str, missing_ok: bool = False) -> list[dict]:
    """Every line of an appended JSON-lines store (``what``: "run log", "ledger"), as dicts, oldest first.

    A line that is not JSON, or that ``valid`` rejects (``expected`` says what it should be), is a ConfigError naming
    the file and the line: a store that was appended to whole lines is damaged only by hand or by the disk, and
    a reader that skipped such a line would compare against less than it says. The exception is a torn last line
    (no newline: an interrupted append), which is set aside (:func:`repair_tail`) and noted in :data:`RECOVERED`.
    A missing file is an error, or empty with ``missing_ok`` (a ledger before its first night).
    """
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return []
        raise ConfigError(f"{what} {path} does not exist")
    if os.access(path, os.W_OK):  # a store this process can write may have writers: read it between two appends
        with _line_lock(path, "reading"):
            _repair_tail_locked(path)
            text = path.read_text(encoding="utf-8", errors="replace")
    else:
        text = path.read_text(encoding="utf-8", errors="replace")
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


def unique_aside(path: Path, why: str) -> Path:
    """A new name beside ``path`` for what is set aside (``<name>.<why>-<time>-<pid>-<n>``): two set-asides in the
    same second, by one process or two, never overwrite each other."""
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    for number in range(10_000):
        candidate = path.with_name(f"{path.name}.{why}-{stamp}-{number}")
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, file_mode()))  # claimed: nobody else
            return candidate
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, "no free name to set a file aside", str(path))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
