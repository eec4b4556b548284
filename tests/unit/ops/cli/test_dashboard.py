"""moodstream dashboard: Streamlit headless on the packaged app."""

from __future__ import annotations

from pathlib import Path

from ops.cli import dashboard as cli


def test_cli_runs_streamlit_headless_on_the_packaged_app() -> None:
    cmd = cli.streamlit_command("127.0.0.1", 8999)
    assert cmd[1:4] == ["-m", "streamlit", "run"]
    assert Path(cmd[4]) == cli.app_path() and cli.app_path().is_file()
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[cmd.index("--server.port") + 1] == "8999"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"


def test_dashboard_command_is_registered() -> None:
    from typer.testing import CliRunner

    from ops.cli import app

    out = CliRunner().invoke(app, ["dashboard", "--help"])
    assert out.exit_code == 0 and "--port" in out.output and "--host" in out.output
