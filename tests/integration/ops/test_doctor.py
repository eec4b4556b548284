"""`moodstream doctor` against real services: healthy, and with components pointed at closed ports."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from moodstream.config import Settings
from ops.doctor import check_broker, check_database, check_redis
from ops.localhost import free_port

pytestmark = pytest.mark.integration


def test_healthy_components(broker: str, pg_url: str) -> None:
    s = Settings(kafka_brokers=broker, database_url=pg_url, redis_url="redis://127.0.0.1:6379/0")
    b = check_broker(s)
    assert b.ok
    # the session broker is the embedded Tansu: doctor recognises it by its cluster id and says what clients need
    assert b.warning is not None and "embedded Tansu" in b.warning and "max.poll.interval.ms=6000" in b.warning
    assert check_broker(Settings(kafka_brokers=None)).warning == b.warning  # unset: Tansu will be started
    db = check_database(s)
    assert db.ok and "127.0.0.1" in db.detail
    assert check_redis(s).ok


def test_closed_ports_are_reported(pg_url: str) -> None:
    closed = free_port()
    s = Settings(kafka_brokers=f"127.0.0.1:{closed}",
                 database_url=f"postgresql+psycopg://app:s3cret-pw@127.0.0.1:{closed}/x",
                 redis_url=f"redis://127.0.0.1:{closed}/0")
    for check in (check_broker(s), check_database(s), check_redis(s)):
        assert not check.ok
        assert str(closed) in check.detail and "\n" not in check.detail
        assert "s3cret-pw" not in check.detail


def test_cli_exit_code_and_one_line_each(pg_url: str, tmp_path) -> None:
    env = {**os.environ, "MOODSTREAM_DATABASE_URL": pg_url, "MOODSTREAM_KAFKA_BROKERS": f"127.0.0.1:{free_port()}",
           "COLUMNS": "300"}
    out = subprocess.run([sys.executable, "-m", "ops.cli", "doctor"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith(("ok", "FAIL"))]
    assert out.returncode == 1
    comps = {ln.split()[1]: ln.split()[0] for ln in lines}
    assert comps["broker"] == "FAIL" and comps["database"] == "ok" and comps["cache"] == "ok"


def test_cli_warns_about_the_embedded_broker(broker: str, pg_url: str, tmp_path) -> None:
    env = {**os.environ, "MOODSTREAM_DATABASE_URL": pg_url, "MOODSTREAM_KAFKA_BROKERS": broker, "COLUMNS": "400"}
    out = subprocess.run([sys.executable, "-m", "ops.cli", "doctor"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    warns = [ln for ln in out.stderr.splitlines() if ln.startswith("warn")]
    assert len(warns) == 1 and warns[0].split()[1] == "broker", out.stderr
    assert "embedded Tansu" in warns[0] and "kcat" in warns[0]
