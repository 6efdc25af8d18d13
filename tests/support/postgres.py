"""A real PostgreSQL server for the tests, started from Debian's ``postgresql`` package.

:func:`start_server` makes a throw-away cluster (``initdb``) in a temporary folder and starts
it listening on a Unix socket only (no TCP port to collide with anything), as the
``postgres`` user when the tests run as root (PostgreSQL refuses to run as root). ``./course
test`` installs the package when it is missing and it can (as root, with apt).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def find_bin() -> Path | None:
    """The folder of ``pg_ctl`` and ``initdb``: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


@dataclass
class Server:
    folder: Path
    bindir: Path
    as_user: list[str]

    def url(self, database: str) -> str:
        """An SQLAlchemy URL of ``database`` on this server (psycopg2, over the Unix socket)."""
        return f"postgresql+psycopg2://postgres@/{database}?host={self.folder / 'socket'}"

    def create_database(self, name: str) -> str:
        self._run("psql", "-h", str(self.folder / "socket"), "-U", "postgres", "-d", "postgres", "-v",
                  "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{name}"', bindir=Path(shutil.which("psql") or
                                                                                    self.bindir / "psql").parent)
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *args: str, check: bool = True, bindir: Path | None = None):
        command = [*self.as_user, str((bindir or self.bindir) / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done


def start_server() -> Server:
    """Initialise and start a PostgreSQL server in a new temporary folder; raise if there is none installed."""
    bindir = find_bin()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL is not installed (Debian: apt install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="softgrad-pg-"))
    (folder / "socket").mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL will not run as root: the package's postgres user runs it
        as_user = ["runuser", "-u", "postgres", "--"]
        folder.chmod(0o755)
        shutil.chown(folder / "socket", "postgres")
        (folder / "data").mkdir()
        shutil.chown(folder / "data", "postgres")
    server = Server(folder, bindir, as_user)
    server._run("initdb", "-D", str(folder / "data"), "-U", "postgres", "-A", "trust", "--no-sync")
    server._run("pg_ctl", "-D", str(folder / "data"), "-w", "-t", "60", "-l", str(folder / "data" / "server.log"),
                "-o", f"-k {folder / 'socket'} -c listen_addresses='' -c fsync=off", "start")
    return server
