"""A private multi-node Ray cluster on this machine: ``ray start --head`` plus more ``ray start --address`` nodes.

Each node is a ``ray start --block`` subprocess in its own session with its own temp dir and ports, so one node can
be SIGKILLed (every process of that node: raylet, agents, its workers) without touching the others or anyone else's
Ray (``ray stop`` would stop every Ray on the machine). Ray 2.60 turns token auth on for a head it starts; this
cluster uses its own token (``RAY_AUTH_TOKEN`` in ``env``, never ``~/.ray/auth_token``), and every process that
joins or connects to it (nodes, drivers, the worker) needs ``env``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ops.localhost import free_port, port_open

RAY = str(Path(sys.executable).with_name("ray"))


# A driver script (after ray.init): alive actors by class -> the custom resources of their nodes, as one JSON line.
_ACTOR_NODES = """
from ray._private.state import actors
skip = ("CPU", "GPU", "memory", "object_store_memory")
res = {n["NodeID"]: ",".join(sorted(k for k in n["Resources"] if k not in skip and not k.startswith("node:")))
       for n in ray.nodes() if n["Alive"]}
out = {}
for a in actors().values():
    if a["State"] == "ALIVE":
        out.setdefault(a["ActorClassName"], []).append(res.get(a["Address"]["NodeID"], "?"))
print(json.dumps(out))
"""


def session_pids(sid: int) -> list[int]:
    """Every live process in session ``sid`` (a node's processes stay in the session its ``ray start`` got)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":  # fields after "comm": state ppid pgrp session
            out.append(int(d.name))
    return out


class RayNode:
    """One ``ray start --block`` subprocess (a head or a node joining ``address``)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], root: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log = root / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RayNode:
        with self.log.open("ab") as f:
            self.proc = subprocess.Popen(self.argv, env={**os.environ, **self.env}, stdout=f, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> int:
        """SIGKILL every process of this node (its session); returns how many there were."""
        if self.proc is None:
            return 0
        pids = session_pids(self.proc.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        deadline = time.monotonic() + 10
        while session_pids(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        return len(pids)

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


class RayCluster:
    """A head (``num_cpus``) and nodes added with ``add_node``; ``close()`` kills every process of every node."""

    def __init__(self, num_cpus: int = 1, object_store_mb: int = 100) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="msray-"))  # short: Ray's socket paths must stay under 108 bytes
        self.port = free_port()
        self.object_store_mb = object_store_mb
        # RAY_raylet_start_wait_time_s: Ray gives a starting node 30 s to register with the GCS; on the loaded
        # 2-core machine a second node once took longer and its `ray start` exited ("The current node timed out
        # during startup"), failing a fault run before any fault.
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    "RAY_USAGE_STATS_ENABLED": "0", "RAY_raylet_start_wait_time_s": "180"}
        self.nodes: list[RayNode] = []
        self.head = self._node("head", ["--head", f"--port={self.port}", f"--num-cpus={num_cpus}",
                                        "--include-dashboard=false", f"--ray-client-server-port={free_port()}"])

    @property
    def address(self) -> str:
        """The GCS address (``ray.init(address=...)``, ``MOODSTREAM_RAY_ADDRESS``)."""
        return f"127.0.0.1:{self.port}"

    def _node(self, name: str, args: list[str]) -> RayNode:
        temp = self.root / name
        temp.mkdir()
        argv = [RAY, "start", "--block", "--node-ip-address=127.0.0.1", f"--temp-dir={temp}",
                f"--object-store-memory={self.object_store_mb * 1024 * 1024}",
                f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
                f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}",
                f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}", *args]
        node = RayNode(name, argv, self.env, self.root)
        self.nodes.append(node)
        return node

    def start(self, timeout: float = 180) -> RayCluster:
        """Start the head and wait until its GCS answers."""
        self.head.start()
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            if not self.head.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head did not start\n{self.head.tail()}")
            time.sleep(0.2)
        return self

    def add_node(self, name: str, num_cpus: int = 1, resources: dict[str, float] | None = None) -> RayNode:
        """A node joining the head, not started: ``join(node, expect)`` starts it and waits until it joined."""
        return self._node(name, [f"--address={self.address}", f"--num-cpus={num_cpus}",
                                 f"--resources={json.dumps(resources or {})}"])

    def join(self, node: RayNode, expect: int, timeout: float = 300, attempts: int = 2) -> int:
        """Start ``node`` and wait until ``expect`` nodes are alive; returns the starts it took. A ``ray start``
        that exits before its node joined (Ray's own startup timeout, seen on the loaded 2-core machine: "The
        current node timed out during startup") is killed and started again, up to ``attempts`` starts in all:
        this happens before any fault, so a retry tests nothing less. Raises ``RuntimeError`` with the node's log
        otherwise."""
        for start in range(1, attempts + 1):
            node.start()
            deadline = time.monotonic() + timeout
            while node.alive() and time.monotonic() < deadline:
                if self.alive_nodes() == expect:
                    return start
                time.sleep(0.5)
            if node.alive():
                break  # running but not joined in time: a retry would not tell us more
            node.kill()  # what its exited `ray start` left behind (a raylet that never registered)
        raise RuntimeError(f"node {node.name} did not join the cluster ({expect} nodes expected)\n{node.tail()}")

    def alive_nodes(self) -> int:
        """Nodes the GCS sees alive (asked from a short-lived subprocess, so this process never joins Ray)."""
        line = self._ask("print(sum(n['Alive'] for n in ray.nodes()))")
        return int(line) if line.isdigit() else -1

    def _ask(self, code: str) -> str:
        """Run ``code`` (which prints one line) in a short-lived driver of this cluster; ``""`` on failure."""
        init = f"import ray, json; ray.init(address={self.address!r}, log_to_driver=False)\n"
        try:
            done = subprocess.run([sys.executable, "-c", init + code], env={**os.environ, **self.env},
                                  capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return ""
        lines = done.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def actor_nodes(self) -> dict[str, list[str]]:
        """Alive actors by class name -> the custom resources of each one's node (``"model_node"`` for a replica
        on the model node, ``""`` on the head). Read from the GCS, no dashboard needed."""
        line = self._ask(_ACTOR_NODES)
        return json.loads(line) if line.startswith("{") else {}

    def close(self) -> None:
        """SIGKILL every process of every node, then delete the temp dirs."""
        for node in reversed(self.nodes):
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> RayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
