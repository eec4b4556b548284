"""Peak memory and CPU time of the processes that make up the stack, sampled from a background thread.

Groups: ``worker`` (the Faust worker or the naive peer), one per Serve deployment (``replica:VisionModel`` ...:
the replica processes), ``ray`` (controller, proxy, raylet, GCS), ``broker`` (Tansu), ``postgres`` and ``redis``
(their whole servers: on a shared machine other clients count too) and ``bench`` (this process: publisher,
commit listener and Ray driver).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

MB = 1024 * 1024


def _cmd(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except (psutil.Error, OSError):
        return ""


def classify(p: psutil.Process, worker_pids: set[int], broker_pid: int | None) -> str | None:
    """The group of one process, or None when it is not part of the stack."""
    if p.pid == os.getpid():
        return "bench"
    if p.pid in worker_pids:
        return "worker"
    if broker_pid is not None and p.pid == broker_pid:
        return "broker"
    cmd = _cmd(p)
    if cmd.startswith("ray::ServeReplica:"):
        return "replica:" + cmd.split()[0].rsplit(":", 1)[-1].split(".")[0]  # title may end in .method
    try:
        name = p.name()
    except psutil.Error:
        return None
    if cmd.startswith("ray::") or name in ("raylet", "gcs_server") or "ray/_private" in cmd \
            or "ray/dashboard" in cmd:
        return "ray"
    if name.startswith("postgres"):
        return "postgres"
    if name.startswith("redis-server"):
        return "redis"
    return None


@dataclass
class Sample:
    """Per group: peak of the summed RSS, peak RSS of a single process, CPU seconds used."""

    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    peak_proc_rss_mb: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)  # latest


class ProcessWatch:
    """Samples every ``interval_s``; ``begin()`` starts a measurement window and ``end()`` returns it."""

    def __init__(self, worker_pids: Callable[[], set[int]], broker_pid: int | None, interval_s: float = 0.5) -> None:
        self.worker_pids = worker_pids
        self.broker_pid = broker_pid
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._cpu0: dict[int, float] = {}
        self._cpu_last: dict[int, tuple[str, float]] = {}
        self._window = Sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="procwatch", daemon=True)

    def start(self) -> ProcessWatch:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _scan(self) -> None:
        workers = self.worker_pids()
        rss: dict[str, float] = {}
        with self._lock:
            for p in psutil.process_iter():
                group = classify(p, workers, self.broker_pid)
                if group is None:
                    continue
                try:
                    with p.oneshot():
                        mem = p.memory_info().rss / MB
                        t = p.cpu_times()
                except psutil.Error:
                    continue
                cpu = t.user + t.system
                self._cpu0.setdefault(p.pid, cpu)
                self._cpu_last[p.pid] = (group, cpu)
                rss[group] = rss.get(group, 0.0) + mem
                w = self._window
                w.peak_proc_rss_mb[group] = max(w.peak_proc_rss_mb.get(group, 0.0), mem)
            w = self._window
            for g, v in rss.items():
                w.peak_rss_mb[g] = max(w.peak_rss_mb.get(g, 0.0), v)
            w.rss_mb = rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._scan()

    def begin(self) -> None:
        """Start a window: peaks reset, CPU counted from now."""
        self._scan()
        with self._lock:
            self._window = Sample(rss_mb=dict(self._window.rss_mb))
            self._cpu0 = {pid: cpu for pid, (_g, cpu) in self._cpu_last.items()}

    def current_rss_mb(self, group: str) -> float:
        self._scan()
        with self._lock:
            return round(self._window.rss_mb.get(group, 0.0), 1)

    def end(self) -> Sample:
        """The window since ``begin()``: peaks and CPU seconds per group."""
        self._scan()
        with self._lock:
            cpu: dict[str, float] = {}
            for pid, (group, now) in self._cpu_last.items():
                cpu[group] = cpu.get(group, 0.0) + max(0.0, now - self._cpu0.get(pid, now))
            w = self._window
            return Sample(peak_rss_mb={k: round(v, 1) for k, v in w.peak_rss_mb.items()},
                          peak_proc_rss_mb={k: round(v, 1) for k, v in w.peak_proc_rss_mb.items()},
                          cpu_s={k: round(v, 2) for k, v in cpu.items()}, rss_mb=dict(w.rss_mb))
