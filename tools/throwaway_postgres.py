#!/usr/bin/env python3
"""A throwaway PostgreSQL server for the ledger tests, as pytest-postgresql starts one: a new cluster in a directory of
its own (initdb), listening on 127.0.0.1 at a free port and on a socket in that directory only, one role with a
random password, gone when stopped. It never touches a cluster the machine already runs.

    python3 tools/throwaway_postgres.py start DIR    prints the URL (postgresql://trainguard:…@127.0.0.1:PORT/trainguard_test)
    python3 tools/throwaway_postgres.py stop DIR

As root (a CI container), the server runs as the unprivileged ``postgres`` user (initdb refuses root), else as the
caller. Needs PostgreSQL's server binaries (Debian: the ``postgresql`` package); :func:`binaries` finds them.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

USER, DATABASE = "trainguard", "trainguard_test"


def binaries() -> Path | None:
    """The directory holding initdb and pg_ctl (PATH, pg_config, Debian's /usr/lib/postgresql/N/bin), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(_as_owner(command), capture_output=True, text=True, **kwargs)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed ({out.returncode}): {(out.stderr or out.stdout).strip()[-800:]}")
    return out


def start(directory: Path) -> str:
    """Start a new cluster in ``directory`` (created; must not hold one yet); the URL of its test database."""
    bindir = binaries()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb): apt-get install postgresql")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data, password, port = directory / "data", secrets.token_urlsafe(18), _free_port()
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    secret = directory / "password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    if os.geteuid() == 0:
        shutil.chown(secret, "postgres")
    _run([str(bindir / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(secret), "-A", "scram-sha-256",
          "--no-sync", "-E", "UTF8"])
    options = f"-h 127.0.0.1 -p {port} -k {directory} -c fsync=off -c max_connections=60"
    _run([str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(directory / "server.log"), "-w", "-t", "60",
          "start"])
    (directory / "port").write_text(f"{port}\n")
    url = f"postgresql://{USER}:{password}@127.0.0.1:{port}"
    env = {**os.environ, "PGPASSWORD": password}
    subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE], env=env,
                   check=True, capture_output=True)
    return f"{url}/{DATABASE}"


def stop(directory: Path) -> None:
    bindir = binaries()
    data = Path(directory) / "data"
    if bindir is not None and (data / "postmaster.pid").exists():
        subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=60)
    for _ in range(50):  # the postmaster's files are gone once it has exited
        if not (data / "postmaster.pid").exists():
            break
        time.sleep(0.1)
    shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "start":
        print(start(Path(argv[1])))
    else:
        stop(Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
