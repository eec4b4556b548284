"""Settings: env prefix, .env file, embedded defaults, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from moodstream.config import Settings, mask_url


def test_embedded_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.kafka_brokers is None and s.redis_url is None and s.ray_address is None and s.model_dir is None
    assert s.database_url == "sqlite:///./moodstream.db"
    assert s.topics == {"posts": "posts", "predictions": "predictions", "trends": "trends", "alerts": "alerts",
                        "dlq": "posts.dlq"}


def test_env_prefix_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MOODSTREAM_KAFKA_PARTITIONS=7\nMOODSTREAM_REDIS_URL=redis://r:6379/1\n")
    monkeypatch.setenv("MOODSTREAM_KAFKA_BROKERS", "kafka:9092")
    monkeypatch.setenv("MOODSTREAM_REDIS_URL", "")  # env beats .env; empty means unset
    s = Settings()
    assert (s.kafka_partitions, s.kafka_brokers, s.redis_url) == (7, "kafka:9092", None)


def test_invalid_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOODSTREAM_KAFKA_PARTITIONS", "zero")
    with pytest.raises(ValueError, match="kafka_partitions"):
        Settings()


def test_secrets_are_masked_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOODSTREAM_DASHBOARD_PASSWORD", "hunter2-dash")
    monkeypatch.setenv("MOODSTREAM_KAFKA_SASL_PASSWORD", "hunter2-kafka")
    monkeypatch.setenv("MOODSTREAM_DATABASE_URL", "postgresql+psycopg://app:hunter2-db@db:5432/m")
    s = Settings()
    shown = repr(s) + str(s.safe_dump())
    for secret in ("hunter2-dash", "hunter2-kafka", "hunter2-db"):
        assert secret not in str(s.safe_dump())
    assert "hunter2-dash" not in shown and "hunter2-kafka" not in shown
    assert s.dashboard_password is not None and s.dashboard_password.get_secret_value() == "hunter2-dash"
    assert s.safe_dump()["database_url"] == "postgresql+psycopg://app:***@db:5432/m"


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("sqlite:///./x.db", "sqlite:///./x.db"),
    (None, None),
])
def test_mask_url(url: str | None, shown: str | None) -> None:
    assert mask_url(url) == shown
