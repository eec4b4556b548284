"""The summary tables (trend rollups, modality and pipeline windows) stay equal to a rebuild from scratch through
every write the worker makes: replays, moved posts, removed hashtags, reprocessing, concurrent batches."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from storage.repository import recompute_trend_windows, upsert_predictions
from storage.rollups import recount_summaries, stored_summaries

pytestmark = pytest.mark.integration


def assert_close(a: object, b: object, path: str = "") -> None:
    """Equal, floats to 1e-9 (a rollup's score sum is added up in a different order than a rebuild's)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-9), path
    else:
        assert a == b, (path, a, b)


def consistent(engine) -> dict:
    stored = stored_summaries(engine)
    assert_close(stored, recount_summaries(engine))
    return stored


def test_summaries_follow_every_kind_of_write(engine, fx) -> None:
    batch = fx.mixed_batch(40)
    upsert_predictions(engine, batch, window_s=60)
    first = consistent(engine)
    assert {len(rows) > 0 for rows in first.values()} == {True}
    volumes = {(r["window_s"], r["hashtag"]): r["volume"] for r in first["trend_rollups"]}
    assert volumes[(3600, "")] == volumes[(86400, "")] == 40
    assert sum(r["volume"] for r in first["modality_windows"]) == 40
    assert sum(r["processed"] for r in first["pipeline_windows"]) == 40

    upsert_predictions(engine, batch[5:25], window_s=60)  # a replay changes nothing
    assert_close(consistent(engine), first)

    moved = fx.make_record(3, created_at=fx.T0 + timedelta(days=1, hours=2))  # another hour and day
    retagged = fx.make_record(7, hashtags=["solo"])  # loses #topic1 and #all
    r9 = fx.make_record(9)
    reprocessed = fx.PostRecord(post=r9.post, prediction=r9.prediction.model_copy(  # another pipeline minute
        update={"processed_at": fx.T0 + timedelta(hours=5)}))
    upsert_predictions(engine, [moved, retagged, reprocessed], window_s=60)
    after = consistent(engine)
    days = {r["window_start"]: r["volume"] for r in after["trend_rollups"] if r["window_s"] == 86400
            and r["hashtag"] == ""}
    assert sorted(days.values()) == [1, 39]
    assert any(r["hashtag"] == "solo" for r in after["trend_rollups"])
    assert {r["window_start"] for r in after["pipeline_windows"]} >= {fx.T0 + timedelta(hours=5)}


def test_window_recompute_keeps_summaries(engine, fx) -> None:
    """Predictions written without windows, then every window recomputed (all, then some): summaries follow."""
    batch = fx.mixed_batch(24)
    upsert_predictions(engine, batch)
    assert stored_summaries(engine) == {"trend_rollups": [], "modality_windows": [], "pipeline_windows": []}
    recompute_trend_windows(engine, None)
    first = consistent(engine)
    upsert_predictions(engine, batch[:6])
    recompute_trend_windows(engine, [r.post.created_at for r in batch[:6]])
    assert_close(consistent(engine), first)


def test_concurrent_batches_keep_summaries_exact(engine, fx) -> None:
    n_threads, rounds = 4, 3
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def write(k: int) -> None:
        try:
            for r in range(rounds):
                start = r * 50 + k * (10 if r % 2 == 0 else 7)  # neighbours share posts in odd rounds
                barrier.wait()
                upsert_predictions(engine, [fx.make_record(i, hashtags=["x", f"t{i % 3}"])
                                            for i in range(start, start + 10)], window_s=60)
        except BaseException as e:
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=write, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and not any(t.is_alive() for t in threads)
    consistent(engine)


def test_migration_backfills_the_summaries(db_url: str, fx, alembic) -> None:
    """0003 on a database at 0002 with windows fills the summary tables with what the worker would have kept."""
    from alembic import command

    from storage.engine import make_engine
    from storage.migrate import upgrade

    upgrade(db_url)
    engine = make_engine(db_url)
    batch = fx.mixed_batch(30) + [fx.make_record(100 + i, created_at=fx.T0 + timedelta(hours=7 * i, seconds=i),
                                                 hashtags=["later"]) for i in range(6)]
    upsert_predictions(engine, batch, window_s=60)
    kept = consistent(engine)
    alembic(command.downgrade, "0002_covering_indexes")
    alembic(command.upgrade, "head")
    assert_close(stored_summaries(engine), kept)
    engine.dispose()


def test_flag_counts_follow_the_predictions(engine, fx) -> None:
    """``modality_windows.uncertain`` / ``.conflict`` count the flagged posts per minute; a re-classification that
    clears or sets a flag moves the counts in the same transaction (stored == recount throughout)."""
    batch = fx.flagged_batch(36)
    upsert_predictions(engine, batch, window_s=60)
    rows = consistent(engine)["modality_windows"]
    assert sum(r["uncertain"] for r in rows) == sum(r.prediction.uncertain for r in batch) == 12
    assert sum(r["conflict"] for r in rows) == sum(r.prediction.conflict for r in batch) == 9
    assert all(r["uncertain"] <= r["volume"] and r["conflict"] <= r["volume"] for r in rows)

    flipped = [fx.flagged(r, uncertain=not r.prediction.uncertain, conflict=False) for r in batch[:6]]
    upsert_predictions(engine, flipped, window_s=60)
    rows = consistent(engine)["modality_windows"]
    expected = {r.post.id: r.prediction for r in batch} | {r.post.id: r.prediction for r in flipped}
    assert sum(r["uncertain"] for r in rows) == sum(p.uncertain for p in expected.values())
    assert sum(r["conflict"] for r in rows) == sum(p.conflict for p in expected.values())


def test_flags_migration_on_stored_rows(db_url: str, fx, alembic) -> None:
    """0005 on a database at 0004 holding predictions: every old row reads as not uncertain, no conflict, and the
    summaries stay equal to a recount; its downgrade and a second upgrade keep the rows."""
    from alembic import command
    from sqlalchemy import text

    from storage.engine import make_engine

    alembic(command.upgrade, "0004_alert_outbox")
    engine = make_engine(db_url)
    batch = fx.mixed_batch(12)
    with engine.begin() as conn:  # rows as the 0004 code wrote them (no flag columns)
        from storage.records import post_row, prediction_row
        posts = [post_row(r) for r in batch]
        preds = [{k: v for k, v in prediction_row(r).items() if k not in ("uncertain", "conflict")} for r in batch]
        for table, rows in (("posts", posts), ("predictions", preds)):
            cols = list(rows[0])
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
            conn.execute(text(sql), [{k: (_json(v) if isinstance(v, dict) else v) for k, v in r.items()}
                                     for r in rows])
    alembic(command.upgrade, "head")
    recompute_trend_windows(engine, None)
    rows = consistent(engine)["modality_windows"]
    assert sum(r["volume"] for r in rows) == 12 and {(r["uncertain"], r["conflict"]) for r in rows} == {(0, 0)}
    with engine.connect() as conn:
        flags = conn.execute(text("SELECT uncertain, conflict FROM predictions")).all()
    assert len(flags) == 12 and {(bool(u), bool(c)) for u, c in flags} == {(False, False)}
    alembic(command.downgrade, "0004_alert_outbox")
    alembic(command.upgrade, "head")
    upsert_predictions(engine, fx.flagged_batch(12), window_s=60)
    rows = consistent(engine)["modality_windows"]
    assert sum(r["uncertain"] for r in rows) == 4
    engine.dispose()


def _json(v: object) -> str:
    import json

    return json.dumps(v)
