"""Screenshots of every dashboard page from a real headless Chromium (DevTools protocol), in one command.

    python -m ops.screenshots --db sqlite:///moodstream.db --out docs/          # against the demo's database
    python -m ops.screenshots --seed-demo --db sqlite:////tmp/demo.db --out docs/  # a synthetic demo first

It starts ``moodstream dashboard`` on a free port reading ``--db`` (live refresh slowed down, so nothing reruns
mid-shot), opens each page in Chromium at 1400 px wide, waits until Streamlit has finished running the page, every
chart has drawn and every image has loaded, then grows the window to the page's full height and saves
``<out>/dashboard-<page>.png``. The browser test (``tests/e2e/dashboard``) drives the same ``Browser`` and
``dashboard_server``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ops.localhost import free_port

PAGES = ("trends", "emotions", "hashtags", "posts", "alerts", "pipeline")
URL_PATHS = {"trends": ""}  # the default page lives at "/" (its own url_path answers "Page not found")
WIDTH = 1400
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  f"--window-size={WIDTH},1000"]
# Streamlit has finished: no skeleton placeholders and no "running" status widget.
SETTLED = ("document.querySelectorAll('[data-testid=stSkeleton]').length === 0 && "
           "document.querySelectorAll('[data-testid=stStatusWidget]').length === 0")
# Every Vega chart has drawn (a canvas or svg inside each .vega-embed) and every image has loaded.
DRAWN = ("Array.from(document.querySelectorAll('.vega-embed')).every(e => e.querySelector('canvas, svg')) && "
         "Array.from(document.images).every(i => i.complete)")
TITLE = "document.querySelector('h1') !== null"
# The page's full height: Streamlit scrolls inside its main section, not the document.
FULL_HEIGHT = """Math.ceil(Math.max(document.documentElement.scrollHeight,
  ...Array.from(document.querySelectorAll('[data-testid=stMain], [data-testid=stAppViewContainer], section.main'))
     .map(e => e.scrollHeight)))"""
TEXT = "document.body ? document.body.innerText : ''"


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Until ``url`` answers 200 (raises when ``proc`` exits first or time runs out)."""
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
    """SIGTERM, then SIGKILL after 20 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def dashboard_server(db_url: str, *, password: str | None = None, refresh_s: float = 3600.0,
                     log: IO[bytes] | None = None, cwd: Path | None = None) -> Iterator[str]:
    """``moodstream dashboard`` on a free port reading ``db_url``; yields its base URL, stops it afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOODSTREAM_")}
    env.update({"MOODSTREAM_DATABASE_URL": db_url, "MOODSTREAM_DASHBOARD_REFRESH_S": f"{refresh_s:g}"})
    if password:
        env["MOODSTREAM_DASHBOARD_PASSWORD"] = password
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.Popen([sys.executable, "-m", "ops.cli", "dashboard", "--port", str(port), "--host",
                             "127.0.0.1"], env=env, stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            cwd=cwd or root)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", 90, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page, synchronous)."""

    def __init__(self, profile: Path) -> None:
        from websockets.sync.client import connect

        exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        if exe is None:
            raise RuntimeError("chromium not found: apt-get install -y chromium (the Makefile installs it)")
        self.proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                      "--remote-debugging-port=0", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                stop(self.proc)
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        self.ws = connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10).__enter__()
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

    def resize(self, height: int, width: int = WIDTH) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def goto(self, url: str, height: int = 1000) -> None:
        self.call("Page.enable")
        self.resize(height)
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

    def settle(self, timeout: float = 90, quiet_s: float = 1.0) -> None:
        """Until Streamlit is idle and every chart and image has drawn, twice ``quiet_s`` apart."""
        deadline = time.monotonic() + timeout
        self.wait_for(TITLE, timeout)
        while time.monotonic() < deadline:
            self.wait_for(f"({SETTLED}) && ({DRAWN})", max(1.0, deadline - time.monotonic()))
            time.sleep(quiet_s)
            if self.eval(f"({SETTLED}) && ({DRAWN})"):
                return
        raise TimeoutError("the page never settled")

    def screenshot(self, path: Path, full_height: int = 1000) -> Path:
        self.resize(full_height)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def full_page(self, path: Path, max_height: int = 12000) -> Path:
        """The whole page: the window grown to the page's height (charts redraw at the same width), then a shot."""
        height = min(int(self.eval(FULL_HEIGHT) or 1000), max_height)
        self.resize(height)
        time.sleep(0.5)
        self.settle(30, 0.5)
        height = min(max(height, int(self.eval(FULL_HEIGHT) or height)), max_height)
        return self.screenshot(path, height)

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            stop(self.proc)


def capture(base_url: str, out: Path, pages: tuple[str, ...] = PAGES, browser: Browser | None = None,
            prefix: str = "dashboard-") -> list[Path]:
    """A full-page PNG of each page of the dashboard at ``base_url`` into ``out`` (``<prefix><page>.png``)."""
    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with contextlib.ExitStack() as stack:
        if browser is None:
            profile = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="moodstream-chromium-")))
            browser = Browser(profile)
            stack.callback(browser.close)
        for page in pages:
            browser.goto(f"{base_url}/{URL_PATHS.get(page, page)}")
            browser.settle()
            text = str(browser.eval(TEXT))
            if "Traceback" in text or "Page not found" in text:
                raise RuntimeError(f"page {page!r} did not render: {text[-1500:]}")
            shots.append(browser.full_page(out / f"{prefix}{page}.png"))
    return shots


def take_screenshots(db_url: str, out: Path, pages: tuple[str, ...] = PAGES) -> list[Path]:
    """Start a dashboard reading ``db_url``, screenshot ``pages`` into ``out``, stop it."""
    with tempfile.TemporaryDirectory(prefix="moodstream-shots-") as tmp, \
            open(Path(tmp) / "dashboard.log", "wb") as log, dashboard_server(db_url, log=log) as base:
        try:
            return capture(base, out, pages)
        except Exception:
            log.flush()
            sys.stderr.write((Path(tmp) / "dashboard.log").read_text(errors="replace")[-4000:])
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL the dashboard reads (default: MOODSTREAM_DATABASE_URL)")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="folder of the PNGs (default: docs)")
    parser.add_argument("--pages", default=",".join(PAGES), help=f"comma-separated (default: {','.join(PAGES)})")
    parser.add_argument("--seed-demo", action="store_true",
                        help="first write a synthetic demo into --db (ops.demo_seed; posts with flags, alerts, "
                             "dead letters), as the worker would")
    parser.add_argument("--minutes", type=float, default=30.0, help="--seed-demo: minutes of posts (default 30)")
    parser.add_argument("--rate", type=float, default=2.0, help="--seed-demo: posts per second (default 2)")
    args = parser.parse_args(argv)
    if args.db:
        db = args.db
    else:
        from moodstream.config import get_settings

        db = get_settings().database_url
    pages = tuple(p.strip() for p in args.pages.split(",") if p.strip())
    unknown = sorted(set(pages) - set(PAGES))
    if unknown:
        parser.error(f"unknown pages {unknown}; known: {', '.join(PAGES)}")
    if args.seed_demo:
        from ops.demo_seed import seed_demo

        n = seed_demo(db, args.minutes, args.rate)
        print(f"seeded {n:,} demo posts")
    for path in take_screenshots(db, args.out, pages):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
