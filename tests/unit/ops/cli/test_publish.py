from __future__ import annotations

from typer.testing import CliRunner

from ops.cli import app


def test_publish_without_broker_says_what_to_do(monkeypatch):
    from moodstream.config import get_settings

    monkeypatch.delenv("MOODSTREAM_KAFKA_BROKERS", raising=False)
    monkeypatch.setenv("MOODSTREAM_KAFKA_BROKERS", "")
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(app, ["publish", "--synthetic", "--count", "3"])
    finally:
        get_settings.cache_clear()
    assert r.exit_code == 1
    out = " ".join(r.output.split())
    assert "moodstream broker" in out and "export MOODSTREAM_KAFKA_BROKERS" in out


def test_publish_needs_one_source():
    r = CliRunner().invoke(app, ["publish"])
    assert r.exit_code != 0
