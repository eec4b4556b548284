"""`moodstream bench trends`: both locks on both workloads, on a private database that is dropped afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.integration


def test_bench_trends_runs_every_pair_and_cleans_up(pg_url: str, capsys) -> None:
    from moodstream.config import Settings
    from ops.bench.trends import LOCKS, WORKLOADS, run

    rows = run(Settings(database_url=pg_url), seconds=1.0, writers=2, batch_size=8)
    assert {(r.workload, r.lock) for r in rows} == {(w, lk) for w in WORKLOADS for lk in LOCKS}
    assert all(r.batches > 0 and r.rows == 8 * r.batches and 0 < r.seconds < 60 and r.rows_per_s > 0 for r in rows)
    out = capsys.readouterr().out
    assert "lock per window rows/s" in out and out.count(" ×\n") == 2
    from storage.engine import normalize_url

    engine = create_engine(normalize_url(pg_url))
    with engine.connect() as c:
        left = c.execute(text("SELECT count(*) FROM pg_database WHERE datname LIKE 'moodstream_bench_trends_%'"))
        assert left.scalar() == 0
    engine.dispose()
