"""`moodstream dashboard`: run the Streamlit dashboard (``streamlit run dashboard/app.py``) in the foreground."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import typer

from moodstream.config import get_settings, mask_url
from ops.cli._common import console, fail


def app_path() -> Path:
    """The dashboard's entry script, found through the installed ``dashboard`` package."""
    import dashboard

    return Path(dashboard.__file__).resolve().parent / "app.py"


def streamlit_command(host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line: headless, no usage stats, no file watcher, no dev-mode toolbar."""
    return [
        sys.executable, "-m", "streamlit", "run", str(app_path()),
        "--server.headless", "true",
        "--server.address", host,
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
        "--global.developmentMode", "false",
        "--theme.base", "light",
    ]


def register(app: typer.Typer) -> None:
    @app.command("dashboard")
    def dashboard(
        port: int | None = typer.Option(None, help="port to listen on (default: MOODSTREAM_DASHBOARD_PORT, 8501)"),
        host: str | None = typer.Option(None, help="address to listen on (default: MOODSTREAM_DASHBOARD_HOST)"),
    ) -> None:
        """Run the Streamlit dashboard until Ctrl-C (reads the database only)."""
        s = get_settings()
        host = host or s.dashboard_host
        port = port or s.dashboard_port
        cmd = streamlit_command(host, port)
        env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
        try:
            proc = subprocess.Popen(cmd, env=env)
        except OSError as e:
            fail(f"cannot start streamlit: {e}")
            return
        console.print(f"[green]dashboard[/] on [bold]http://{host}:{port}[/] reading "
                      f"{mask_url(s.database_readonly_url or s.database_url)}; Ctrl-C stops it.")

        def forward(signum: int, _frame: object) -> None:
            if proc.poll() is None:
                proc.send_signal(signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, forward)
        try:
            code = proc.wait()
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if code not in (0, -signal.SIGINT, -signal.SIGTERM):
            fail(f"streamlit exited with status {code}", code=code if code > 0 else 1)
