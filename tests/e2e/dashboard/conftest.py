"""Fixtures for the dashboard's browser test: a running ``moodstream dashboard`` and headless Chromium (CDP)."""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ops.localhost import free_port

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--window-size=1400,1000"]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def start_dashboard(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``start_dashboard(db_url, password=None)`` runs ``moodstream dashboard`` on a free port; returns its URL."""
    procs: list[subprocess.Popen] = []

    def _start(db_url: str, password: str | None = None) -> str:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOODSTREAM_")}
        env.update({"MOODSTREAM_DATABASE_URL": db_url, "MOODSTREAM_DASHBOARD_REFRESH_S": "30"})
        if password:
            env["MOODSTREAM_DASHBOARD_PASSWORD"] = password
        exe = Path(sys.executable).with_name("moodstream")
        log = open(tmp_path / f"dashboard-{port}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([str(exe), "dashboard", "--port", str(port), "--host", "127.0.0.1"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", 90, proc)
        return f"http://127.0.0.1:{port}"

    yield _start
    for p in procs:
        stop(p)


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page, synchronous)."""

    def __init__(self, profile: Path) -> None:
        from websockets.sync.client import connect

        exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        if exe is None:
            pytest.fail("chromium not found: apt-get install -y chromium (the Makefile installs it)")
        self.proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                      "--remote-debugging-port=0", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self._ids = itertools.count(1)

    def call(self, method: str, **params: object) -> dict:
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def goto(self, url: str) -> None:
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)

    def eval(self, expression: str) -> object:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.25)
        raise TimeoutError(f"page never satisfied: {expression}")

    def screenshot(self, path: Path, full_height: int = 1000) -> Path:
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=full_height, deviceScaleFactor=1,
                  mobile=False)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            stop(self.proc)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(tmp_path / "chromium-profile")
    yield b
    b.close()
