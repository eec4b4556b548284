"""Alembic migrations: a fresh database gets exactly the tables of ``storage.tables``; upgrades are idempotent."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect, text

from storage.engine import make_engine
from storage.migrate import current_revision, head_revision, schema_diffs, upgrade
from storage.tables import Base

pytestmark = pytest.mark.integration


def _schema(url: str) -> dict[str, object]:
    engine = make_engine(url)
    try:
        insp = inspect(engine)
        return {
            t: (
                [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)],
                sorted((i["name"], tuple(i["column_names"])) for i in insp.get_indexes(t)),
                insp.get_pk_constraint(t)["constrained_columns"],
            )
            for t in sorted(insp.get_table_names())
        }
    finally:
        engine.dispose()


def test_fresh_upgrade_creates_exactly_the_metadata(db_url: str) -> None:
    assert current_revision(db_url) is None
    upgrade(db_url)
    engine = make_engine(db_url)
    insp = inspect(engine)
    assert set(insp.get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
    for name, table in Base.metadata.tables.items():
        assert {c["name"] for c in insp.get_columns(name)} == {c.name for c in table.columns}
        indexes = {i["name"] for i in insp.get_indexes(name) if not i.get("duplicates_constraint")}
        assert indexes == {i.name for i in table.indexes}
    assert {u["name"] for u in insp.get_unique_constraints("dead_letters")} == {"uq_dead_letters_source_key"}
    fks = {(fk["referred_table"], tuple(fk["constrained_columns"])) for fk in insp.get_foreign_keys("predictions")}
    assert fks == {("posts", ("post_id",))}
    engine.dispose()
    assert current_revision(db_url) == head_revision() == "0005_prediction_flags"
    assert schema_diffs(db_url) == []


def test_second_upgrade_is_a_noop(db_url: str) -> None:
    upgrade(db_url)
    before = _schema(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO alerts (id, hashtag, window_start, mean_score, baseline, delta, volume, "
                          "direction, raised_at) VALUES ('a', 'x', '2026-01-01', 0, 0, 0, 1, 'up', '2026-01-01')"))
    upgrade(db_url)
    assert _schema(db_url) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alerts")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()
    assert schema_diffs(db_url) == []


def test_schema_diffs_detects_drift(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_predictions_processed_at"))
    engine.dispose()
    diffs = schema_diffs(db_url)
    assert [d[0] for d in diffs] == ["add_index"] and diffs[0][1].name == "ix_predictions_processed_at"


def test_concurrent_upgrades(db_url: str) -> None:
    """Several processes starting at once (threads with their own engines here) all succeed, once."""
    n = 4
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            upgrade(db_url)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "an upgrade hung"
    assert errors == []
    assert current_revision(db_url) == head_revision()
    assert schema_diffs(db_url) == []


def test_upgrade_of_unreachable_database_is_one_clear_line() -> None:
    from ops.localhost import free_port
    from storage.engine import DatabaseUnavailable

    port = free_port()
    with pytest.raises(DatabaseUnavailable) as err:
        upgrade(f"postgresql://moody:hunter2@127.0.0.1:{port}/x")
    assert "hunter2" not in str(err.value) and "\n" not in str(err.value) and f":{port}/x" in str(err.value)


def test_upgrade_from_0001_and_downgrade(db_url: str, alembic) -> None:
    """0002 on a database already at 0001 (with rows) reaches the models exactly; its downgrade restores 0001."""
    from alembic import command


    alembic(command.upgrade, "0001_initial")
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO posts (id, created_at, has_image) VALUES ('p', '2026-01-01', false)"))
        conn.execute(text("INSERT INTO post_hashtags (post_id, hashtag, created_at) VALUES ('p', 'x', '2026-01-01')"))
    alembic(command.upgrade, "head")
    assert schema_diffs(db_url) == []
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            defs = dict(conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN "
                                          "('ix_predictions_created_at', 'ix_predictions_processed_at')")).all())
        assert "INCLUDE (sentiment, sentiment_score" in defs["ix_predictions_created_at"]
        assert "INCLUDE (latency_ms, cached, model_version, fusion)" in defs["ix_predictions_processed_at"]
    alembic(command.downgrade, "0001_initial")
    indexes = {i["name"]: i for i in inspect(engine).get_indexes("predictions")}
    assert "ix_post_hashtags_created_at" not in {i["name"] for i in inspect(engine).get_indexes("post_hashtags")}
    assert not indexes["ix_predictions_created_at"].get("include_columns")
    alembic(command.upgrade, "head")
    assert schema_diffs(db_url) == [] and current_revision(db_url) == "0005_prediction_flags"
    engine.dispose()
