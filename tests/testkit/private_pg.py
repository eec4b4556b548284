"""A private PostgreSQL server a test owns and may restart: ``initdb`` into a temp dir, trust auth, a free port.

The machine's PostgreSQL service is never touched. The binaries refuse to run as root, so when the tests run as
root every command goes through ``runuser -u postgres`` and the data directory belongs to ``postgres``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ops.localhost import free_port, port_open


class PrivatePostgres:
    """``initdb`` + ``pg_ctl`` on ``127.0.0.1:<free port>``; ``restart(mode)`` stops it (``immediate`` is crash-like)
    and starts it again on the same port and data directory."""

    def __init__(self, database: str = "moodstream_fault") -> None:
        missing = [b for b in ("initdb", "pg_ctl") if shutil.which(b) is None]
        if missing:
            raise FileNotFoundError(f"PostgreSQL binaries not on PATH: {missing}")
        self.database = database
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ms-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:  # the binaries refuse root: run them as postgres
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.root, ignore_errors=True)
                raise FileNotFoundError("running as root and there is no postgres user to run initdb as") from None
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.root.chmod(0o755)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *argv: str, timeout: float = 180) -> str:
        cmd = ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else list(argv)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                               f"{self.tail()}")
        return done.stdout

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def start(self) -> PrivatePostgres:
        """Initialise (first call only), start and wait until it accepts connections; create the database once."""
        first = not self.data.exists()
        if first:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--no-instructions")
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                "-c max_connections=60 -c shared_buffers=32MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "120", "start")
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"private PostgreSQL is not listening on {self.port}\n{self.tail()}")
            time.sleep(0.1)
        if first:
            self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                      "-v", "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{self.database}"')
        return self

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast|immediate`` (immediate: every backend killed, crash recovery on the next start)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "120", "stop")

    def restart(self, mode: str = "immediate", down_s: float = 0.0) -> None:
        """Stop with ``mode``, stay down ``down_s`` seconds, start again (same port, same data)."""
        self.stop(mode)
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        """Stop (immediately) and delete the data directory."""
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
