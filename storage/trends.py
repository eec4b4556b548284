"""Tumbling trend windows derived from the stored predictions, written with replace semantics.

A window is global (``hashtag == ''``) or per hashtag. Every write recomputes the window from
``predictions`` (joined to ``post_hashtags``), so a replayed post can never be counted twice. The same
transaction keeps the summary tables of ``storage.rollups`` in step (hour/day rollups of the 60 s windows,
per-minute modality and pipeline windows).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Select, case, delete, func, literal, select, text

from moodstream.clock import as_utc, from_epoch, window_epoch
from moodstream.labels import EMOTIONS, SENTIMENTS
from storage import rollups
from storage.engine import is_postgres, transaction
from storage.sqlutil import bucket_epoch, chunks, insert
from storage.tables import PostHashtagRow, PredictionRow, TrendWindowRow

TrendWindow = dict[str, Any]
TrendLock = Literal["window", "global"]
TREND_LOCK_KEY = 0x6D6F6F64_7472656E  # "moodtren": exclusive for a full rebuild (and the old "global" mode)
WINDOW_LOCK_CLASS = 0x6D6F7477  # "motw": (class, minute of a window start) locks a trend window
PROCESSED_LOCK_CLASS = 0x6D6F7470  # "motp": (class, minute of processed_at) locks a pipeline window
MEAN_DIGITS = 6  # mean scores rounded, so summation order never changes a stored value
_STARTS_PER_QUERY = 500


def _aggregate(window_s: int, by_hashtag: bool, hashtags: Collection[str] | None = None) -> Select[Any]:
    p = PredictionRow.__table__.c
    bucket = bucket_epoch(p.created_at, window_s).label("bucket")
    tag = PostHashtagRow.__table__.c.hashtag if by_hashtag else literal("")
    cols = [
        bucket,
        tag.label("hashtag"),
        func.count().label("volume"),
        *(func.sum(case((p.sentiment == s, 1), else_=0)).label(s) for s in SENTIMENTS),
        func.avg(p.sentiment_score).label("mean_score"),
        *(func.sum(case((p.emotion == e, 1), else_=0)).label(f"emo_{e}") for e in EMOTIONS),
    ]
    if by_hashtag:
        h = PostHashtagRow.__table__
        stmt = select(*cols).select_from(h.join(PredictionRow.__table__, h.c.post_id == p.post_id))
        if hashtags is not None:
            stmt = stmt.where(h.c.hashtag.in_(sorted(hashtags)))
        return stmt.group_by(bucket, h.c.hashtag)
    return select(*cols).select_from(PredictionRow.__table__).group_by(bucket)


def _to_window(row: Any, window_s: int) -> TrendWindow:
    m = row._mapping
    return {
        "window_start": from_epoch(m["bucket"]),
        "hashtag": m["hashtag"],
        "window_s": window_s,
        "volume": int(m["volume"]),
        **{s: int(m[s] or 0) for s in SENTIMENTS},
        "mean_score": round(float(m["mean_score"] or 0.0), MEAN_DIGITS),
        "emotions": {e: int(m[f"emo_{e}"] or 0) for e in EMOTIONS},
    }


def _sort_key(w: TrendWindow) -> tuple[datetime, str]:
    return (w["window_start"], w["hashtag"])


def aggregate_windows(conn: Connection, window_s: int = 60, buckets: Iterable[int] | None = None,
                      hashtags: Collection[str] | None = None) -> list[TrendWindow]:
    """Windows computed from predictions, for the given bucket epochs (None: all), sorted. ``hashtags``: only the
    global windows and those of these hashtags (None: every hashtag)."""
    if window_s < 1:
        raise ValueError("window_s must be >= 1")
    p = PredictionRow.__table__.c
    out: list[TrendWindow] = []
    if buckets is None:
        groups: list[Sequence[int] | None] = [None]
    else:
        groups = list(chunks(sorted(set(buckets)), _STARTS_PER_QUERY))
    for group in groups:
        for by_hashtag in (False, True) if hashtags is None or hashtags else (False,):
            stmt = _aggregate(window_s, by_hashtag, hashtags)
            if group is not None:
                lo, hi = from_epoch(group[0]), from_epoch(group[-1] + window_s)
                stmt = stmt.where(p.created_at >= lo, p.created_at < hi,
                                  bucket_epoch(p.created_at, window_s).in_(list(group)))
            out.extend(_to_window(r, window_s) for r in conn.execute(stmt))
    return sorted(out, key=_sort_key)


def _of_windows(t: Any, group: Sequence[int], hashtags: Collection[str] | None) -> list[Any]:
    """WHERE clauses: windows starting at these epoch seconds, global or of ``hashtags`` (None: any hashtag)."""
    where = [t.c.window_start.in_([from_epoch(b) for b in group])]
    if hashtags is not None:
        where.append(t.c.hashtag.in_(["", *sorted(hashtags)]))
    return where


def _stored_minute_windows(conn: Connection, group: Sequence[int],
                           hashtags: Collection[str] | None = None) -> list[TrendWindow]:
    """The stored 60 s windows starting at these epoch seconds (what a replace removes from the rollups)."""
    t = TrendWindowRow.__table__
    q = select(t).where(*_of_windows(t, group, hashtags), t.c.window_s == rollups.MINUTE)
    return [dict(r._mapping) for r in conn.execute(q)]


def recompute_windows(
    conn: Connection, window_starts: Iterable[datetime] | None, window_s: int = 60,
    processed: Iterable[datetime] | None = None, lock: TrendLock = "window",
    hashtags: Iterable[str] | None = None,
) -> list[TrendWindow]:
    """Replace the stored windows holding ``window_starts`` (None: every window) by fresh aggregates.

    ``hashtags``: replace only the global windows and those of these hashtags (None: every hashtag's). A batch
    passes the hashtags its posts had and have: no other window can change, and a minute holds hundreds of
    hashtag windows, so recomputing them all on every batch cost most of a worker's own CPU.

    On PostgreSQL concurrent writers are serialised per window (``lock="window"``: one advisory lock per minute of
    the windows and of the pipeline minutes written, see ``_lock``), or all together (``"global"``, the old way, kept
    for ``moodstream bench trends``).

    Also brings the summary tables up to date: the rollups by the difference the replaced 60 s windows make,
    the modality windows of the minutes of ``window_starts``, and the pipeline windows of the ``processed``
    minutes (None: those of the predictions created in the recomputed windows). With ``window_starts`` None
    every summary table is rebuilt (bulk SQL).
    """
    t = TrendWindowRow.__table__
    buckets = None if window_starts is None else sorted({window_epoch(ws, window_s) for ws in window_starts})
    postgres = is_postgres(conn)
    if postgres:
        _lock(conn, LOCK_WINDOWS if buckets is not None and lock == "window" else LOCK_ALL, WINDOW_LOCK_CLASS,
              buckets or [])
    tags = None if hashtags is None or buckets is None else set(hashtags)
    windows = aggregate_windows(conn, window_s, buckets, tags)
    removed: list[TrendWindow] = []
    if buckets is None:
        conn.execute(delete(t).where(t.c.window_s == window_s))
    else:
        # Windows that lost all their posts (e.g. a hashtag was removed) must disappear too.
        for group in chunks(buckets, _STARTS_PER_QUERY):
            removed += _stored_minute_windows(conn, group, tags)
            conn.execute(delete(t).where(*_of_windows(t, group, tags)))
    now = datetime.now(UTC)
    rows = [{**w, "updated_at": now} for w in windows]
    if rows:
        stmt = insert(conn, t)
        keep = ("window_start", "hashtag")
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.window_start, t.c.hashtag],
            set_={c.name: stmt.excluded[c.name] for c in t.columns if c.name not in keep},
        )
        conn.execute(stmt, rows)
    if buckets is None:
        rollups.rebuild_summaries(conn)
        return rows
    rollups.recompute_modality_windows(conn, {m for b in buckets for m in range(b, b + window_s, rollups.MINUTE)})
    minutes = (rollups.processed_minutes(conn, buckets, window_s) if processed is None
               else {window_epoch(ts, rollups.MINUTE) for ts in processed})
    if postgres and lock == "window":
        _lock(conn, LOCK_MINUTES, PROCESSED_LOCK_CLASS, minutes)
    rollups.recompute_pipeline_windows(conn, minutes)
    # last: the hour and day rows are shared by writers of different windows; their row locks are held from here to
    # the commit, so as briefly as possible (the deltas add up in any order)
    rollups.add_window_deltas(conn, removed, rows)
    return rows


LOCK_ALL, LOCK_WINDOWS, LOCK_MINUTES = "all", "windows", "minutes"
INT4 = 2**31


def _lock(conn: Connection, what: str, lock_class: int, epochs: Iterable[int]) -> None:
    """Transaction-scoped advisory locks on PostgreSQL.

    ``all``: the one exclusive lock (a full rebuild, or the old global mode). ``windows``: the exclusive lock shared
    instead, then one lock per minute of the windows written, in ascending order; ``minutes``: one lock per minute of
    ``processed_at``, also ascending and always after the window locks. Every writer takes its locks in that one order,
    so two writers never wait on each other in a cycle; writers of different windows never wait at all.
    """
    if what == LOCK_ALL:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": TREND_LOCK_KEY})
        return
    if what == LOCK_WINDOWS:
        conn.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": TREND_LOCK_KEY})
    # the two-int4 form: minutes since 1970 fit until the year 6053; any epoch (a post may claim year 9999 or 1) is
    # folded into int4, where a collision only makes two windows share a lock
    keys = sorted({(int(e) // rollups.MINUTE + INT4) % (2 * INT4) - INT4 for e in epochs})
    for key in keys:
        conn.execute(text("SELECT pg_advisory_xact_lock(CAST(:c AS integer), CAST(:k AS integer))"),
                     {"c": lock_class, "k": key})


def recompute_trend_windows(
    engine: Engine, window_starts: list[datetime] | None, window_s: int = 60
) -> list[TrendWindow]:
    """Recompute and store (replace) the windows holding ``window_starts`` (None: all); return the rows written.

    Each datetime selects the window it falls in, so post timestamps can be passed as they are.
    """
    with transaction(engine) as conn:
        return recompute_windows(conn, window_starts, window_s)


def recount_trend_windows(engine: Engine, window_s: int = 60) -> list[TrendWindow]:
    """Every window straight from predictions, not written (to check the stored ``trend_windows``)."""
    with transaction(engine) as conn:
        return aggregate_windows(conn, window_s)


def stored_trend_windows(engine: Engine, window_s: int | None = None) -> list[TrendWindow]:
    """The stored windows (without ``updated_at``), in the same shape and order as ``recount_trend_windows``."""
    t = TrendWindowRow.__table__
    stmt = select(*(c for c in t.columns if c.name != "updated_at"))
    if window_s is not None:
        stmt = stmt.where(t.c.window_s == window_s)
    with transaction(engine) as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
    for r in rows:
        r["window_start"] = as_utc(r["window_start"])
        r["mean_score"] = float(r["mean_score"])
        r["emotions"] = {e: int(r["emotions"].get(e, 0)) for e in EMOTIONS}
    return sorted(rows, key=_sort_key)


def windows_at(engine: Engine, starts: Iterable[datetime], window_s: int) -> list[TrendWindow]:
    """The stored windows (global and per hashtag) that start at ``starts`` (already recomputed by the upsert)."""
    wanted = sorted({as_utc(s) for s in starts})
    if not wanted:
        return []
    t = TrendWindowRow.__table__
    cols = [c for c in t.columns if c.name != "updated_at"]
    out: list[TrendWindow] = []
    with engine.connect() as conn:
        for part in chunks(wanted, _STARTS_PER_QUERY):
            q = select(*cols).where(t.c.window_start.in_(list(part)), t.c.window_s == window_s)
            out.extend(dict(r._mapping) for r in conn.execute(q))
    return out


def trailing_scores(engine: Engine, keys: Iterable[tuple[str, datetime]], windows: int,
                    window_s: int) -> dict[tuple[str, datetime], list[float]]:
    """For each (hashtag, window start): the mean scores of that hashtag's non-empty stored windows in the
    ``windows`` window lengths before it, newest first. One query for all keys."""
    wanted = sorted({(tag, as_utc(start)) for tag, start in keys}, key=lambda k: (k[1], k[0]))
    if not wanted:
        return {}
    span = timedelta(seconds=windows * window_s)
    t = TrendWindowRow
    q = (select(t.hashtag, t.window_start, t.mean_score)
         .where(t.hashtag.in_(sorted({tag for tag, _ in wanted})), t.window_s == window_s, t.volume > 0,
                t.window_start >= wanted[0][1] - span, t.window_start < wanted[-1][1]))
    by_tag: dict[str, list[tuple[datetime, float]]] = {}
    with engine.connect() as conn:
        for tag, start, score in conn.execute(q):
            by_tag.setdefault(tag, []).append((as_utc(start), float(score)))
    out: dict[tuple[str, datetime], list[float]] = {}
    for tag, start in wanted:
        before = sorted((w for w in by_tag.get(tag, []) if start - span <= w[0] < start), reverse=True)
        out[(tag, start)] = [score for _, score in before[:windows]]
    return out
