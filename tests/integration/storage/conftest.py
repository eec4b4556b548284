"""Storage integration fixtures: record factories and a migrated engine on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of the post tables, of trend_windows (minus ``updated_at``) and of the summary tables, in
    primary-key order."""
    from storage.tables import (
        ModalityWindowRow,
        PipelineWindowRow,
        PostHashtagRow,
        PostRow,
        PredictionRow,
        TrendRollupRow,
        TrendWindowRow,
    )

    out = {}
    with engine.connect() as conn:
        for row_cls in (PostRow, PredictionRow, PostHashtagRow, TrendWindowRow, TrendRollupRow, ModalityWindowRow,
                        PipelineWindowRow):
            t = row_cls.__table__
            stmt = select(*(c for c in t.columns if c.name != "updated_at")).order_by(*t.primary_key.columns)
            out[t.name] = [dict(r._mapping) for r in conn.execute(stmt)]
    return out


@pytest.fixture(scope="session")
def take_snapshot():
    return snapshot


@pytest.fixture
def alembic(db_url: str) -> Any:
    """``alembic(command.upgrade | command.downgrade, rev)`` on the test's database."""
    from storage.engine import make_engine
    from storage.migrate import alembic_config

    def run(fn: Any, rev: str) -> None:
        engine = make_engine(db_url)
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            fn(cfg, rev)
        engine.dispose()

    return run
