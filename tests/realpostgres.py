"""A real PostgreSQL server for a test, from the machine's own binaries (none bundled).

Looks for `initdb`, `pg_ctl`, `psql`, `pg_dump` and `pg_restore` (PATH, then Debian's
/usr/lib/postgresql/<major>/bin); tests skip, saying so, where they are absent. The server
listens on 127.0.0.1 only, on a free port, with password (scram) authentication over TCP
and trust on its private socket; it runs as `nobody` when the tests run as root
(PostgreSQL refuses root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

TOOLS = ("initdb", "pg_ctl", "psql", "pg_dump", "pg_restore", "pg_isready")


def bin_dir() -> Path | None:
    found = shutil.which("pg_dump")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if all((folder / tool).exists() for tool in TOOLS):
            return folder
    return None


@dataclass(frozen=True)
class Server:
    bin: Path
    port: int
    socket_dir: Path

    def env(self, user: str, password: str, database: str) -> dict[str, str]:
        """libpq's variables for a TCP client, as the backup pods get them."""
        return {
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "PGUSER": user,
            "PGDATABASE": database,
            "PGPASSWORD": password,
        }

    def psql(self, sql: str, *, user: str, password: str, database: str) -> str:
        env = {**os.environ, **self.env(user, password, database)}
        done = subprocess.run(
            [str(self.bin / "psql"), "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(done.stderr)
        return done.stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres(superuser: str, password: str, database: str) -> Iterator[Server]:
    folder = bin_dir()
    if folder is None:
        pytest.skip("no PostgreSQL binaries on this machine (initdb, pg_ctl, psql, pg_dump, pg_restore)")
    root = os.geteuid() == 0
    as_user = ["runuser", "-u", "nobody", "--"] if root else []
    # Its own folder under /tmp: pytest's tmp_path is private to root, which `nobody` cannot enter.
    tmp = Path(tempfile.mkdtemp(prefix="stagegraph-pg-"))
    data, sockets, pwfile = tmp / "data", tmp / "sockets", tmp / "pw"
    sockets.mkdir()
    pwfile.write_text(password + "\n")
    tmp.chmod(0o755)
    if root:
        for path in (tmp, sockets, pwfile):
            os.chown(path, 65534, 65534)

    def run(*argv: str) -> None:
        done = subprocess.run([*as_user, *argv], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise AssertionError(f"{argv[0]}: {done.stderr or done.stdout}")

    try:
        run(
            str(folder / "initdb"),
            "-D",
            str(data),
            "-U",
            superuser,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
        )
        port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets}"
        run(str(folder / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(tmp / "log"), "-w", "start")
        server = Server(folder, port, sockets)
        try:
            server.psql(
                f'CREATE DATABASE "{database}"', user=superuser, password=password, database="postgres"
            )
            yield server
        finally:
            run(str(folder / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
