"""Process sampling: groups by role, peak memory and CPU seconds of a real child process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from ops.bench.procs import ProcessWatch, classify


def test_this_process_is_the_bench_and_others_are_ignored() -> None:
    me = psutil.Process(os.getpid())
    assert classify(me, set(), None) == "bench"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        p = psutil.Process(child.pid)
        assert classify(p, set(), None) is None
        assert classify(p, {child.pid}, None) == "worker"
        assert classify(p, set(), child.pid) == "broker"
    finally:
        child.kill()
        child.wait()


def test_window_reports_the_worker_peak_rss_and_cpu_time() -> None:
    # allocates ~60 MB, then burns CPU for a while
    code = "b = bytearray(60 * 1024 * 1024)\nimport time\nt = time.process_time()\n" \
           "while time.process_time() - t < 1.5: pass\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code])
    watch = ProcessWatch(lambda: {child.pid}, None, interval_s=0.1).start()
    try:
        watch.begin()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and psutil.Process(child.pid).cpu_times().user < 1.4:
            time.sleep(0.2)
        sample = watch.end()
    finally:
        watch.close()
        child.kill()
        child.wait()
    assert sample.peak_rss_mb["worker"] >= 55
    assert sample.peak_proc_rss_mb["worker"] == sample.peak_rss_mb["worker"]  # one process in the group
    assert 1.0 <= sample.cpu_s["worker"] <= 3.0
    assert "bench" in sample.cpu_s or "bench" in sample.peak_rss_mb
