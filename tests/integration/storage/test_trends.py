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
