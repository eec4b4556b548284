"""Trend windows recomputed from stored predictions: replace semantics, no double counting, both backends."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta, timezone

import pytest

from moodstream.clock import from_epoch, window_epoch
from moodstream.labels import EMOTIONS
from storage.repository import (
    recompute_trend_windows,
    recount_trend_windows,
    stored_trend_windows,
    upsert_predictions,
)

pytestmark = pytest.mark.integration


def expected_windows(records, window_s: int = 60) -> list[dict]:
    """The windows computed in Python from the records themselves (an oracle independent of the SQL)."""
    groups: dict[tuple[datetime, str], list] = defaultdict(list)
    for r in records:
        start = from_epoch(window_epoch(r.prediction.created_at, window_s))
        for tag in ["", *dict.fromkeys(r.post.hashtags or [])]:
            groups[(start, tag)].append(r.prediction)
    out = []
    for (start, tag), preds in sorted(groups.items()):
        sent = Counter(p.sentiment.label for p in preds)
        emo = Counter(p.emotion.label for p in preds)
        out.append({
            "window_start": start, "hashtag": tag, "window_s": window_s, "volume": len(preds),
            "negative": sent["negative"], "neutral": sent["neutral"], "positive": sent["positive"],
            "mean_score": round(sum(p.sentiment.score for p in preds) / len(preds), 6),
            "emotions": {e: emo[e] for e in EMOTIONS},
        })
    return out


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "updated_at"} for r in rows]


def test_recompute_matches_recount_and_oracle(engine, fx) -> None:
    batch = fx.mixed_batch(40)
    upsert_predictions(engine, batch)
    written = recompute_trend_windows(engine, None)
    assert all(w["updated_at"].tzinfo is not None for w in written)
    expected = expected_windows(batch)
    assert _strip(written) == expected
    assert recount_trend_windows(engine) == expected
    assert stored_trend_windows(engine) == expected
    assert {w["hashtag"] for w in expected} >= {"", "all", "sunset", "beach", "topic0"}


def test_replay_never_double_counts(engine, fx, take_snapshot) -> None:
    batch = fx.mixed_batch(16)
    upsert_predictions(engine, batch, window_s=60)
    first = take_snapshot(engine)
    for _ in range(3):
        upsert_predictions(engine, batch[3:11], window_s=60)
        recompute_trend_windows(engine, [r.post.created_at for r in batch[:5]])
    assert take_snapshot(engine) == first
    assert stored_trend_windows(engine) == expected_windows(batch)


def test_only_the_given_windows_are_written(engine, fx) -> None:
    batch = fx.mixed_batch(12)  # posts 17 s apart: windows at 12:00, 12:01, 12:02, 12:03
    upsert_predictions(engine, batch)
    t = fx.T0 + timedelta(seconds=75)  # any instant inside the 12:01 window selects it
    written = recompute_trend_windows(engine, [t])
    assert {w["window_start"] for w in written} == {fx.T0 + timedelta(minutes=1)}
    assert stored_trend_windows(engine) == [w for w in expected_windows(batch)
                                            if w["window_start"] == fx.T0 + timedelta(minutes=1)]


def test_removed_hashtag_window_disappears(engine, fx) -> None:
    upsert_predictions(engine, [fx.make_record(0, hashtags=["solo"]), fx.make_record(1, hashtags=["x"])],
                       window_s=60)
    assert {w["hashtag"] for w in stored_trend_windows(engine)} == {"", "solo", "x"}
    upsert_predictions(engine, [fx.make_record(0, hashtags=["x"])], window_s=60)
    stored = stored_trend_windows(engine)
    assert {w["hashtag"]: w["volume"] for w in stored} == {"": 2, "x": 2}
    assert stored == recount_trend_windows(engine)


def test_a_batch_rewrites_only_the_hashtag_windows_it_touches(engine, fx) -> None:
    """A minute holds many hashtag windows; a batch replaces the global one and those of its posts' hashtags (old
    and new), leaves the others as they were, and everything still equals a recount."""
    from storage.rollups import recount_summaries, stored_summaries
    from storage.tables import TrendWindowRow

    def updated(tag: str) -> datetime:
        t = TrendWindowRow.__table__
        with engine.connect() as conn:
            return conn.execute(t.select().where(t.c.hashtag == tag)).one()._mapping["updated_at"]

    upsert_predictions(engine, [fx.make_record(0, hashtags=["keep"]), fx.make_record(1, hashtags=["old"])],
                       window_s=60)
    kept = updated("keep")
    upsert_predictions(engine, [fx.make_record(1, hashtags=["new"]), fx.make_record(2, hashtags=["new"])],
                       window_s=60)
    assert updated("keep") == kept
    stored = stored_trend_windows(engine)
    assert {w["hashtag"]: w["volume"] for w in stored} == {"": 3, "keep": 1, "new": 2}
    assert stored == recount_trend_windows(engine)
    assert stored_summaries(engine) == recount_summaries(engine)


def test_moved_post_leaves_its_old_window(engine, fx) -> None:
    upsert_predictions(engine, [fx.make_record(i) for i in range(3)], window_s=60)  # all in 12:00
    moved = fx.make_record(1, created_at=fx.T0 + timedelta(minutes=5))
    upsert_predictions(engine, [moved], window_s=60)
    volumes = {(w["window_start"], w["hashtag"]): w["volume"] for w in stored_trend_windows(engine)}
    assert volumes[(fx.T0, "")] == 2
    assert volumes[(fx.T0 + timedelta(minutes=5), "")] == 1
    assert stored_trend_windows(engine) == recount_trend_windows(engine)


def test_hour_windows_and_timezones(engine, fx) -> None:
    plus5 = timezone(timedelta(hours=5))
    recs = [fx.make_record(0, created_at=datetime(2026, 5, 1, 12, 59, 59, tzinfo=UTC)),
            fx.make_record(1, created_at=datetime(2026, 5, 1, 13, 0, 0, tzinfo=UTC).astimezone(plus5))]
    upsert_predictions(engine, recs)
    written = recompute_trend_windows(engine, None, window_s=3600)
    starts = sorted({w["window_start"] for w in written})
    assert starts == [datetime(2026, 5, 1, 12, tzinfo=UTC), datetime(2026, 5, 1, 13, tzinfo=UTC)]
    assert recount_trend_windows(engine, 3600) == _strip(written) == expected_windows(recs, 3600)


def test_concurrent_writers_end_consistent(engine, fx) -> None:
    """Overlapping batches upserted at once (as workers after a rebalance would) leave exact windows."""
    n_threads, rounds = 6, 4
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)
    written = []

    def write(k: int) -> None:
        try:
            for r in range(rounds):
                # every thread writes into the same few windows; in odd rounds neighbours share 3 posts
                start = r * 100 + k * (10 if r % 2 == 0 else 7)
                batch = [fx.make_record(i) for i in range(start, start + 10)]
                written.extend(batch)
                barrier.wait()
                upsert_predictions(engine, batch, window_s=60)
        except BaseException as e:
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=write, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and not any(t.is_alive() for t in threads)
    everything = {r.post.id: r for r in written}.values()
    assert stored_trend_windows(engine) == recount_trend_windows(engine) == expected_windows(everything)


def test_many_windows_in_one_recompute(engine, fx) -> None:
    """More window starts than one IN list holds (they are chunked) are all recomputed."""
    batch = [fx.make_record(i, created_at=fx.T0 + timedelta(seconds=61 * i), hashtags=["t"]) for i in range(1100)]
    upsert_predictions(engine, batch, window_s=60)
    stored = stored_trend_windows(engine)
    assert len(stored) == 2 * 1100
    assert stored == recount_trend_windows(engine) == expected_windows(batch)


def test_writers_of_different_windows_do_not_wait_for_each_other(pg_url: str, fx) -> None:
    """PostgreSQL: a transaction holding the lock of one window blocks writers of that window only (per-window
    trend locks); a writer of another minute commits meanwhile, and the windows end exact."""
    from storage.engine import make_engine, transaction
    from storage.migrate import upgrade
    from storage.trends import recompute_windows

    upgrade(pg_url)
    engine = make_engine(pg_url)
    at = fx.T0.replace(second=5)
    first, other, same = (fx.make_record(i, created_at=at + timedelta(minutes=m)) for i, m in ((1, 0), (2, 5), (3, 0)))
    upsert_predictions(engine, [first], window_s=60)
    done = {name: threading.Event() for name in ("other", "same")}

    def write(name: str, rec) -> None:
        upsert_predictions(engine, [rec], window_s=60)
        done[name].set()

    try:
        with transaction(engine) as conn:  # holds the lock of the first record's window until it ends
            recompute_windows(conn, [first.prediction.created_at], 60, [first.prediction.processed_at])
            threads = [threading.Thread(target=write, args=a, daemon=True) for a in (("other", other),
                                                                                     ("same", same))]
            for t in threads:
                t.start()
            assert done["other"].wait(30), "a writer of another window waited for an unrelated lock"
            assert not done["same"].wait(1.0), "a writer of the locked window did not wait for it"
        assert done["same"].wait(30)
        for t in threads:
            t.join(5)
        assert stored_trend_windows(engine) == recount_trend_windows(engine) == expected_windows([first, other,
                                                                                                    same])
    finally:
        engine.dispose()


def test_global_lock_mode_blocks_every_writer(pg_url: str, fx) -> None:
    """The old single lock (kept for ``moodstream bench trends``): one open recompute holds up any other window."""
    from storage.engine import make_engine, transaction
    from storage.migrate import upgrade
    from storage.trends import recompute_windows

    upgrade(pg_url)
    engine = make_engine(pg_url)
    at = fx.T0.replace(second=5)
    first, other = fx.make_record(1, created_at=at), fx.make_record(2, created_at=at + timedelta(minutes=5))
    upsert_predictions(engine, [first], window_s=60)
    done = threading.Event()
    writer = threading.Thread(target=lambda: (upsert_predictions(engine, [other], window_s=60, trend_lock="global"),
                                              done.set()), daemon=True)
    try:
        with transaction(engine) as conn:
            recompute_windows(conn, [first.prediction.created_at], 60, lock="global")
            writer.start()
            assert not done.wait(1.0), "the global lock let another window's writer through"
        assert done.wait(30)
        writer.join(5)
        assert stored_trend_windows(engine) == expected_windows([first, other])
    finally:
        engine.dispose()


def test_posts_from_the_far_past_and_future_take_their_window_locks(engine, fx) -> None:
    """Window lock keys stay in PostgreSQL's int4 for any timestamp a post may claim (year 1 and 9999 included)."""
    far = [datetime(1, 1, 1, 0, 0, 30, tzinfo=UTC), datetime(9999, 12, 31, 23, 58, 30, tzinfo=UTC),
           datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), datetime(6100, 6, 1, tzinfo=UTC)]
    batch = [fx.make_record(i, created_at=ts) for i, ts in enumerate(far)]
    upsert_predictions(engine, batch, window_s=60)
    assert stored_trend_windows(engine) == recount_trend_windows(engine) == expected_windows(batch)
