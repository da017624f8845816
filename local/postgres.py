"""The local stack's metadata DB: a PostgreSQL server of its own, run from the ``pgserver`` wheel's binaries.

MWAA and docker compose run Airflow on Postgres. The local stack ran on SQLite before, where its four
components write to one file: under load Airflow answered "database is locked" (a 503 for a backfill, a 500
for a click in the UI), and no busy timeout helped. pgserver ships PostgreSQL 16 for Linux and macOS in a
wheel, so ``make install`` brings it. Its Python wrapper is not used: as root it adds a system user and opens
up every parent folder of its files.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import tempfile
from pathlib import Path
from typing import Any

USER = DATABASE = "airflow"
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",  # TCP only: no socket file in /tmp that two stacks could both want
    # A crash of the machine may lose the last moments' commits, never the DB; every commit is much faster.
    "synchronous_commit": "off",
    # Each component keeps a sync and an async pool, and the scheduler's executor workers their own.
    "max_connections": "200",
}
SERVER_USER = "nobody"  # the server's user when the stack runs as root


def dsn(port: int) -> str:
    """The Airflow database of the server on ``port``, as libpq clients (psql, psycopg2) name it."""
    return f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}"


def url(port: int) -> str:
    """The SQLAlchemy URL of the server on ``port``; Airflow derives its async (asyncpg) URL from it."""
    return dsn(port).replace("postgresql://", "postgresql+psycopg2://", 1)


def installed() -> Path:
    """The pgserver package's folder; PostgreSQL is in its ``pginstall``."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the pgserver package (PostgreSQL for the local stack) is missing: run make install"
        )
    return Path(spec.submodule_search_locations[0])


class Cluster:
    """One PostgreSQL cluster: where it keeps its data, and the commands that create and run it.

    The data lives in ``home/postgres`` from one start to the next. PostgreSQL refuses to run as root, so for
    root the server runs as ``nobody``, from a temporary folder that ``nobody`` can reach whatever the
    permissions of ``home`` and the virtualenv: a copy of the installation and a new cluster, for one run.
    """

    def __init__(self, home: Path, port: int):
        self.port = port
        self.popen: dict[str, Any] = {}  # subprocess arguments for the server's user
        if os.geteuid() == 0:
            nobody = pwd.getpwnam(SERVER_USER)
            self.popen = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
            self.temporary: Path | None = Path(tempfile.mkdtemp(prefix="local-stack-postgres-"))
            package = installed()
            # With the wheel's own copies of shared libraries, which the binaries find by a relative path.
            for folder in (package, package.with_name(f"{package.name}.libs")):
                if folder.exists():
                    shutil.copytree(folder, self.temporary / folder.name, symlinks=True)
            self.bin = self.temporary / package.name / "pginstall" / "bin"
            self.data = self.temporary / "data"
            self.data.mkdir()
            os.chown(self.data, nobody.pw_uid, nobody.pw_gid)
            self.temporary.chmod(0o755)
        else:
            self.temporary = None
            self.bin, self.data = installed() / "pginstall" / "bin", home / "postgres"

    @property
    def new(self) -> bool:
        """No cluster yet: ``initdb_command`` and, once the server runs, ``createdb_command`` are due."""
        return not (self.data / "PG_VERSION").exists()

    def initdb_command(self) -> list[str]:
        """A new cluster whose superuser is ``airflow``, trusted on 127.0.0.1 (local use only)."""
        auth = ["-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]
        return [str(self.bin / "initdb"), "-D", str(self.data), *auth]

    def server_command(self) -> list[str]:
        settings = [arg for name, value in SETTINGS.items() for arg in ("-c", f"{name}={value}")]
        return [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), *settings]

    def createdb_command(self) -> list[str]:
        return [str(self.bin / "createdb"), *self._client_args(), DATABASE]

    def ready_command(self) -> list[str]:
        return [str(self.bin / "pg_isready"), "-q", *self._client_args()]

    def _client_args(self) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", USER]

    def remove_temporary(self) -> None:
        """Once the server has stopped: the root run's folder goes."""
        if self.temporary:
            shutil.rmtree(self.temporary, ignore_errors=True)
