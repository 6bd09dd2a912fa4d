"""The ledger of nights: one record per night, kept between nights, in a real database.

("history" is one run's curve, trainguard.core.history; the ledger is the store of past nights.)

- **SQLite** (the standard library's driver, WAL mode) is the embedded default: ``.trainguard/ledger.sqlite``;
- **PostgreSQL** for a team that shares one ledger across runners and hosts: ``--ledger postgresql://…``
  (the ini key ``tg_ledger``, or ``TRAINGUARD_LEDGER``); the ``postgres`` extra installs its driver (psycopg).

Both through SQLAlchemy Core, one schema, versioned (:data:`MIGRATIONS`, applied in order under a lock the first
time a newer trainguard opens an older ledger). A night is one transaction — its record (what later nights
compare against: :func:`trainguard.checks.trend.history_entry`) and its report with the figures — so it is all in or all
out: two nights writing at once, or a writer killed in the middle, leave the database consistent.

The JSON-lines files earlier versions kept (``<dir>/<profile>/<device class>.jsonl``, :class:`JsonLinesLedger`)
are read by ``trainguard ledger import`` and written by ``trainguard ledger export``; ``--ledger-dir DIR`` (the
former option) is the ledger ``DIR/ledger.sqlite``, into which the JSON-lines ledgers under ``DIR`` are imported
once, so nothing measured is lost.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.redact import redact_text, redact_url
from ..core.storage import ConfigError, append_line, read_json_lines
from .night_record import FORMAT_VERSION, validate_record  # noqa: F401 (FORMAT_VERSION re-exported)

#: How long a PostgreSQL session may sit inside a transaction doing nothing before the server ends it (seconds;
#: TRAINGUARD_LEDGER_IDLE_SECONDS overrides): a host frozen or cut off mid-append releases the append lock after
#: this, not after the server's TCP timeout (hours). An append itself is busy, never idle, for milliseconds.
IDLE_IN_TRANSACTION_SECONDS = 60.0
#: The reports (markdown and figures) kept with the newest nights by ``trainguard ledger prune`` (the records of
#: every night are kept: they are a few KB each; the reports are most of a ledger's size).
DEFAULT_KEEP_REPORTS = 30
DEFAULT_LEDGER = Path(".trainguard/ledger.sqlite")
DEFAULT_DIR = Path(".trainguard/history")  # the JSON-lines ledgers of earlier versions


# ------------------------------------------------------------------------------------ the schema

def _schema():
    import sqlalchemy as sa

    metadata = sa.MetaData()
    version = sa.Table("trainguard_schema", metadata, sa.Column("version", sa.Integer, nullable=False))
    nights = sa.Table(
        "nights", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False, unique=True),
        sa.Column("profile", sa.String(200), nullable=False),
        sa.Column("device_class", sa.String(100), nullable=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("result", sa.String(40), nullable=False),
        sa.Column("commit_id", sa.String(80), nullable=False),
        sa.Column("entry", sa.Text, nullable=False),  # the whole record, as JSON
        sa.Index("nights_by_class", "profile", "device_class", "id"),
    )
    artifacts = sa.Table(
        "artifacts", metadata,
        sa.Column("night_id", sa.Integer, sa.ForeignKey("nights.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),  # report.md, report-models-curves.png, ...
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    return metadata, version, nights, artifacts


_METADATA, VERSION_TABLE, NIGHTS, ARTIFACTS = _schema()

#: Schema version → what it adds. A ledger is migrated in order, in one transaction, under a lock.
MIGRATIONS = {
    1: ("the nights: one record per night, indexed by profile and device class", (NIGHTS,)),
    2: ("each night's report and figures (the dashboard links them)", (ARTIFACTS,)),
}
SCHEMA_VERSION = max(MIGRATIONS)


# ------------------------------------------------------------------------------------ where a ledger lives

def resolve_location(ledger: str | Path | None = None, ledger_dir: Path | None = None) -> str | None:
    """The ledger a night uses: ``--ledger`` (a path or a database URL), else ``--ledger-dir DIR`` (the former
    option: ``DIR/ledger.sqlite``), else None (no ledger)."""
    if ledger:
        return str(ledger)
    if ledger_dir:
        return str(Path(ledger_dir) / "ledger.sqlite")
    return None


def database_url(location: str | Path) -> str:
    """A SQLAlchemy URL for ``location``: a ``postgresql://`` / ``sqlite:///`` URL as given, a path as SQLite."""
    text = str(location)
    if "://" in text:
        if text.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + text.split("://", 1)[1]
        if text.startswith(("postgresql+", "sqlite:")):
            return text
        raise ConfigError(f"ledger {redact_url(text)!r}: expected a file path (SQLite), sqlite:///PATH or "
                          f"postgresql://USER@HOST/DB")
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def open_ledger(location: str | Path) -> "Ledger":
    """The ledger at ``location`` (a path: SQLite; a URL: PostgreSQL or SQLite), created or migrated on first use.
    A JSON-lines ledger directory beside a SQLite file (``--ledger-dir``) is imported into it once."""
    new = "://" not in str(location) and not Path(location).expanduser().exists()
    ledger = Ledger(database_url(location))
    legacy = Path(location).parent
    if new and Path(location).name == "ledger.sqlite" and any(legacy.glob("*/*.jsonl")):
        ledger.import_jsonl(sorted(legacy.glob("*/*.jsonl")))  # once: when the database is created beside them
    return ledger


# ------------------------------------------------------------------------------------ the store

def _database_errors(method):
    """A database that cannot be reached or written (a server down, a full disk, a size limit, permissions) is one
    sentence naming the ledger (ConfigError: exit 2), never a driver's traceback."""
    import functools

    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        import sqlalchemy.exc

        try:
            return method(self, *args, **kwargs)
        except sqlalchemy.exc.DBAPIError as exc:  # its text may quote the URL: redacted with the rest
            exc = _Redacted(exc)
            cause = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc).splitlines()[0]
            raise ConfigError(f"ledger {self.where()}: {cause} (a database that cannot be reached or written: a server "
                              f"down, a full disk, a file-size limit, permissions); the ledger is unchanged — fix "
                              f"it, or point --ledger elsewhere") from None
    return wrapped


class Ledger:
    """A ledger database: append nights, read them back per profile and device class, their reports."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.refused: list[str] = []  # records read that failed validation, left out (one sentence each)
        self.engine = _engine(url)
        _database_errors(Ledger._migrate)(self)

    def __repr__(self) -> str:
        return f"Ledger({self.where()})"

    def where(self) -> str:
        """Where it lives, for messages: the URL without its password, in the user info or the query
        (core.redact, the one rule for every URL printed)."""
        return redact_url(self.url)

    # -------------------------------------------------------------- schema

    @_database_errors
    def schema_version(self) -> int:
        import sqlalchemy as sa

        with self.engine.connect() as connection:
            if not sa.inspect(connection).has_table(VERSION_TABLE.name):
                return 0
            return connection.execute(sa.select(VERSION_TABLE.c.version)).scalar() or 0

    def _migrate(self) -> None:
        import sqlalchemy as sa

        if self.schema_version() == SCHEMA_VERSION:  # the common case: a read, no write lock
            return
        with self._write() as connection:
            if not sa.inspect(connection).has_table(VERSION_TABLE.name):
                VERSION_TABLE.create(connection)
                connection.execute(VERSION_TABLE.insert().values(version=0))
            current = connection.execute(sa.select(VERSION_TABLE.c.version)).scalar() or 0
            if current > SCHEMA_VERSION:
                raise ConfigError(f"ledger {self.where()}: schema version {current} is newer than this trainguard's "
                                  f"{SCHEMA_VERSION}; upgrade trainguard")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for table in MIGRATIONS[version][1]:
                    table.create(connection, checkfirst=True)
                connection.execute(VERSION_TABLE.update().values(version=version))

    def _write(self):
        """One transaction that writes: SQLite takes its write lock at the start (BEGIN IMMEDIATE, so two writers
        queue instead of failing mid-way), PostgreSQL an advisory lock for the migration's DDL."""
        return _WriteTransaction(self.engine)

    # -------------------------------------------------------------- nights

    @_database_errors
    def append(self, entry: dict, artifacts: dict[str, bytes] | None = None) -> int | None:
        """Store one night — its record and its report files — in one transaction; returns its id (None: a night
        with this run_id is already stored, as when a JSON-lines ledger is imported twice)."""
        import sqlalchemy as sa

        entry = {"format_version": FORMAT_VERSION, **entry}
        entry.setdefault("run_id", os.urandom(6).hex())
        entry = validate_record(entry, f"ledger {self.where()}, night {entry.get('run_id')!r}")
        for name in artifacts or {}:
            _artifact_name(name, self.where())
        row = {"run_id": entry["run_id"], "profile": entry["profile"],
               "device_class": entry["device_class"], "time": str(entry.get("time", "")),
               "result": str(entry.get("result", "")), "commit_id": str(entry.get("commit", "")),
               "entry": json.dumps(entry, sort_keys=True)}
        with self._write() as connection:
            if connection.execute(sa.select(NIGHTS.c.id).where(NIGHTS.c.run_id == row["run_id"])).first():
                return None
            night = connection.execute(NIGHTS.insert().values(**row)).inserted_primary_key[0]
            for name, content in (artifacts or {}).items():
                connection.execute(ARTIFACTS.insert().values(night_id=night, name=name, content=content))
        return night

    def read(self, profile: str, device_class: str) -> list[dict]:
        """Every night of ``profile`` on ``device_class``, oldest first (empty if none yet)."""
        return [entry for _, entry in self.nights(profile, device_class)]

    @_database_errors
    def nights(self, profile: str | None = None, device_class: str | None = None) -> list[tuple[int, dict]]:
        """(id, record) of every night, or of one profile and device class, in the order they ran (their UTC time;
        recorded order among equal times). A record that fails validation — written into a shared database or a
        history branch by something other than trainguard — is left out and named in :attr:`refused`."""
        import sqlalchemy as sa

        query = sa.select(NIGHTS.c.id, NIGHTS.c.entry, NIGHTS.c.profile, NIGHTS.c.device_class).order_by(
            NIGHTS.c.time, NIGHTS.c.id)
        if profile is not None:
            query = query.where(NIGHTS.c.profile == profile)
        if device_class is not None:
            query = query.where(NIGHTS.c.device_class == device_class)
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
        nights = []
        for night, text, column_profile, column_class in rows:
            source = f"ledger {self.where()}, night {night}"
            try:
                record = validate_record(json.loads(text), source)
                if (record["profile"], record["device_class"]) != (column_profile, column_class):
                    raise ConfigError(f"{source}: its record says {record['profile']} on {record['device_class']}, its "
                                      f"row {column_profile} on {column_class}; the ledger takes no part of it")
                nights.append((night, record))
            except (ValueError, ConfigError) as exc:  # json's errors are ValueErrors
                reason = str(exc) if isinstance(exc, ConfigError) else f"{source}: not JSON ({exc})"
                if reason not in self.refused:
                    self.refused.append(reason)
        return sorted(nights, key=lambda item: (item[1]["time"], item[0]))

    @_database_errors
    def profiles(self) -> list[tuple[str, str]]:
        """(profile, device class) of every night stored."""
        import sqlalchemy as sa

        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(NIGHTS.c.profile, NIGHTS.c.device_class).distinct())
            return sorted(tuple(row) for row in rows)

    @_database_errors
    def artifacts(self, night: int) -> dict[str, bytes]:
        """The report files stored with night ``night`` (name → bytes)."""
        import sqlalchemy as sa

        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(ARTIFACTS.c.name, ARTIFACTS.c.content).where(ARTIFACTS.c.night_id == night))
            return {name: bytes(content) for name, content in rows if _artifact_name(name, None)}

    @_database_errors
    def prune(self, keep_reports: int = DEFAULT_KEEP_REPORTS) -> int:
        """Drop the reports and figures of all but the newest ``keep_reports`` nights per profile and device class
        (their records stay: drift, speed and the dashboard's charts read only those); SQLite is compacted after.
        Returns how many nights lost their report. The retention that keeps a ledger committed nightly small."""
        import sqlalchemy as sa

        if keep_reports < 0:
            raise ConfigError(f"ledger prune --keep-reports {keep_reports}: expected 0 or more")
        dropped = []
        for profile, device_class in self.profiles():
            ids = [night for night, _ in self.nights(profile, device_class)]
            dropped += ids[:max(0, len(ids) - keep_reports)]
        with self._write() as connection:
            for start in range(0, len(dropped), 500):
                connection.execute(ARTIFACTS.delete().where(ARTIFACTS.c.night_id.in_(dropped[start:start + 500])))
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as connection:
                connection.exec_driver_sql("VACUUM")
        return len(dropped)

    # -------------------------------------------------------------- JSON lines in and out

    def import_jsonl(self, paths) -> tuple[int, int]:
        """Read JSON-lines ledgers (files, or directories of ``<profile>/<class>.jsonl``) into this one; a night
        already here (same run_id) is skipped. Returns (imported, skipped)."""
        imported = skipped = 0
        records = []
        for path in _jsonl_files(paths):  # every record checked before any is written: all in, or none
            records += [validate_record(entry, f"ledger import {path}, record {number}")
                        for number, entry in enumerate(JsonLinesLedger.read_file(path), 1)]
        for entry in records:
            if self.append(entry) is None:
                skipped += 1
            else:
                imported += 1
        return imported, skipped

    def export_jsonl(self, directory: Path) -> list[Path]:
        """Write every night back as JSON lines, ``<directory>/<profile>/<class>.jsonl`` (rewritten whole)."""
        from ..core.storage import atomic_write_text

        written = []
        for profile, device_class in self.profiles():
            path = JsonLinesLedger(directory).path(profile, device_class)
            lines = [json.dumps(entry, sort_keys=True) for entry in self.read(profile, device_class)]
            atomic_write_text(path, "\n".join(lines) + "\n")
            written.append(path)
        return written


class _WriteTransaction:
    def __init__(self, engine) -> None:
        self.engine = engine

    def __enter__(self):
        import sqlalchemy as sa

        self.connection = self.engine.connect()
        if self.engine.dialect.name == "sqlite":
            self.connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            self.transaction = self.connection.begin()
            if self.engine.dialect.name == "postgresql":  # one migrating writer at a time (DDL is transactional)
                self.connection.execute(sa.text("SELECT pg_advisory_xact_lock(74726169)"))
        return self.connection

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if self.engine.dialect.name == "sqlite":
                self.connection.exec_driver_sql("COMMIT" if kind is None else "ROLLBACK")
            elif kind is None:
                self.transaction.commit()
            else:
                self.transaction.rollback()
        finally:
            self.connection.close()


def _engine(url: str):
    """An engine whose every wait is bounded (trainguard.core.storage.lock_timeout); SQLite in WAL mode, its
    transactions begun by us (the driver's own implicit BEGIN would take the write lock too late)."""
    import sqlalchemy as sa

    from ..core.storage import lock_timeout
    from ..core.watchdog import seconds_from_environment

    wait = lock_timeout()
    idle = seconds_from_environment("TRAINGUARD_LEDGER_IDLE_SECONDS", IDLE_IN_TRANSACTION_SECONDS)
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": min(wait, 600.0), "isolation_level": None},
                                  poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer; a killed writer rolls back
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    try:
        # Every wait bounded: the connection (15 s), a lock another session holds (lock_timeout), a session that went
        # quiet inside a transaction, holding the append lock (idle_in_transaction_session_timeout), and a peer that
        # vanished without closing its connection (TCP keepalives, about a minute instead of the kernel's hours).
        options = (f"-c lock_timeout={int(min(wait, 600.0) * 1000)} "
                   f"-c idle_in_transaction_session_timeout={int(idle * 1000)} "
                   f"-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3")
        return sa.create_engine(url, poolclass=sa.pool.NullPool,
                                connect_args={"connect_timeout": 15, "options": options, "keepalives": 1,
                                              "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3})
    except ModuleNotFoundError as exc:
        raise ConfigError(f"ledger {redact_url(url)}: the PostgreSQL driver is not installed ({exc.name}); "
                          f"pip install 'trainguard[postgres]'") from None


class _Redacted:
    """A database error whose text is redacted (the driver's message may quote the connection string)."""

    def __init__(self, exc) -> None:
        self.orig = redact_text(str(exc.orig)) if exc.orig is not None else None
        self._text = redact_text(str(exc))

    def __str__(self) -> str:
        return self._text


def _artifact_name(name: str, where: str | None) -> bool:
    """A report file's name is a plain file name (the dashboard writes it into a night's folder): True, or a
    ConfigError naming the ledger (``where``) — or False when reading (``where`` None): such a file is skipped."""
    plain = isinstance(name, str) and 0 < len(name) <= 200 and "/" not in name and "\\" not in name \
        and not name.startswith(".") and name.isprintable()
    if not plain and where is not None:
        raise ConfigError(f"ledger {where}: report file name {name!r} is not a plain file name")
    return plain


def _jsonl_files(paths) -> list[Path]:
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(path.glob("*/*.jsonl")) + sorted(path.glob("*.jsonl"))
        elif path.exists():
            files.append(path)
        else:
            raise ConfigError(f"ledger import: {path} does not exist")
    return files


# ------------------------------------------------------------------------------------ the former format

class JsonLinesLedger:
    """The JSON-lines ledger of earlier versions: ``<root>/<profile>/<device class>.jsonl``, one whole line per
    night (storage.append_line); a damaged line is an error naming the file and line, a torn last line is set
    aside. Read by ``trainguard ledger import``, written by ``export``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, profile: str, device_class: str) -> Path:
        return self.root / profile / f"{device_class}.jsonl"

    def append(self, entry: dict) -> Path:
        path = self.path(entry["profile"], entry["device_class"])
        return append_line(path, json.dumps({"format_version": FORMAT_VERSION, **entry}, sort_keys=True))

    def read(self, profile: str, device_class: str) -> list[dict]:
        """Every run of ``profile`` on ``device_class``, oldest first (empty if none yet)."""
        return self.read_file(self.path(profile, device_class), missing_ok=True)

    @staticmethod
    def read_file(path: Path, missing_ok: bool = False) -> list[dict]:
        return read_json_lines(path, "ledger", lambda entry: entry.get("format_version") == FORMAT_VERSION,
                               f"a format {FORMAT_VERSION} ledger entry", missing_ok=missing_ok)

    def profiles(self) -> list[tuple[str, str]]:
        """(profile, device class) of every history file under the root."""
        return sorted((p.parent.name, p.stem) for p in self.root.glob("*/*.jsonl"))


HistoryStore = JsonLinesLedger  # the earliest name
