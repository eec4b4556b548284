"""Summary tables kept beside the trend windows, so the dashboard's long ranges read few rows (write side).

* ``trend_rollups``: hourly and daily sums of the stored 60 s trend windows, global and per hashtag. Whenever
  ``storage.trends.recompute_windows`` replaces 60 s windows, the difference between the rows it removed and the
  rows it wrote is added to the hour and day rows that hold them, so a rollup always equals the sum of its
  stored windows (a replay adds zero). Every value is an integer (the score sum in millionths: window means are
  stored rounded to 6 digits), so deltas and rebuilds agree exactly and never drift.
* ``modality_windows``: per minute of ``created_at``, each modality's emotion counts, text/image agreement and
  how many posts were flagged uncertain or conflicting.
* ``pipeline_windows``: per minute of ``processed_at``, model version and fusion: processed, cached, latency sum.

The last two are recomputed from ``predictions`` for the minutes a write touches (replace semantics, like the
trend windows). Every function runs inside the caller's transaction (after the trend lock, on PostgreSQL).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Select,
    and_,
    case,
    cast,
    delete,
    func,
    literal_column,
    select,
    true,
)

from moodstream.clock import as_utc, from_epoch, window_epoch
from moodstream.labels import EMOTIONS, SENTIMENTS
from storage.engine import transaction
from storage.sqlutil import bucket_epoch, chunks, epoch_to_time, insert
from storage.tables import (
    ModalityWindowRow,
    PipelineWindowRow,
    PredictionRow,
    TrendRollupRow,
    TrendWindowRow,
)

MINUTE = 60  # the trend windows rolled up, and the size of the modality and pipeline windows
ROLLUP_LEVELS = (3600, 86400)
ROLLUP_VALUES = ("volume", *SENTIMENTS, "score_micros", *(f"emo_{e}" for e in EMOTIONS))
MICROS = 1_000_000
MODALITY_COLUMNS = {"fused": "emotion", "text": "text_emotion", "image": "image_emotion"}
_MINUTES_PER_QUERY = 500

_PT, _WT, _RT = PredictionRow.__table__, TrendWindowRow.__table__, TrendRollupRow.__table__
_MT, _QT = ModalityWindowRow.__table__, PipelineWindowRow.__table__
P, W, R = _PT.c, _WT.c, _RT.c


def _ones(cond: Any) -> Any:
    return func.sum(case((cond, 1), else_=0))


# -------------------------------------------------------------------------------------- trend rollups


def _rollup_values(w: dict[str, Any]) -> list[int]:
    emotions = w.get("emotions") or {}
    return [w["volume"], *(w[s] for s in SENTIMENTS), round(float(w["mean_score"]) * MICROS) * w["volume"],
            *(int(emotions.get(e, 0)) for e in EMOTIONS)]


def add_window_deltas(conn: Connection, removed: Iterable[dict[str, Any]], written: Iterable[dict[str, Any]]) -> None:
    """Add (written − removed) 60 s windows to the hour and day rollups holding them; drop rollups left empty."""
    deltas: dict[tuple[int, int, str], list[int]] = defaultdict(lambda: [0] * len(ROLLUP_VALUES))
    for sign, rows in ((-1, removed), (1, written)):
        for w in rows:
            if w["window_s"] != MINUTE:
                continue
            start = window_epoch(w["window_start"], MINUTE)
            values = _rollup_values(w)
            for level in ROLLUP_LEVELS:
                acc = deltas[(level, start - start % level, w["hashtag"])]
                for i, v in enumerate(values):
                    acc[i] += sign * v
    rows = [{"window_s": level, "window_start": from_epoch(start), "hashtag": tag, **dict(zip(ROLLUP_VALUES, v,
                                                                                                  strict=True))}
            for (level, start, tag), v in sorted(deltas.items()) if any(v)]
    if not rows:
        return
    stmt = insert(conn, _RT)
    stmt = stmt.on_conflict_do_update(index_elements=[R.window_s, R.hashtag, R.window_start],
                                      set_={c: R[c] + stmt.excluded[c] for c in ROLLUP_VALUES})
    conn.execute(stmt, rows)
    for level in ROLLUP_LEVELS:  # only a rollup whose volume went down can be empty now
        starts = sorted({r["window_start"] for r in rows if r["window_s"] == level and r["volume"] < 0})
        for group in chunks(starts, _MINUTES_PER_QUERY):
            conn.execute(delete(_RT).where(R.window_s == level, R.window_start.in_(list(group)), R.volume <= 0))


def _rollup_select(level: int, source: Any) -> Select[Any]:
    """``INSERT … SELECT`` body: rows of ``source`` (60 s windows or the next finer rollup) summed per ``level``."""
    if source is _WT:
        micros = cast(func.round(W.mean_score * MICROS), BigInteger()) * W.volume
        values = [W.volume, *(W[s] for s in SENTIMENTS), micros, *(W.emotions[e].as_integer() for e in EMOTIONS)]
        where, start, tag = W.window_s == MINUTE, W.window_start, W.hashtag
    else:
        finer = ROLLUP_LEVELS[ROLLUP_LEVELS.index(level) - 1]
        values = [R[c] for c in ROLLUP_VALUES]
        where, start, tag = R.window_s == finer, R.window_start, R.hashtag
    bucket = bucket_epoch(start, level).label("bucket")
    inner = (select(bucket, tag.label("hashtag"), *(func.sum(v).label(n) for v, n in zip(values, ROLLUP_VALUES,
                                                                                          strict=True)))
             .where(where).group_by(bucket, tag).subquery())
    return select(literal_column(str(level)), inner.c.hashtag, epoch_to_time(inner.c.bucket),
                  *(inner.c[n] for n in ROLLUP_VALUES))


def rebuild_trend_rollups(conn: Connection) -> None:
    """Every hour and day rollup again from the stored 60 s windows."""
    conn.execute(delete(_RT))
    for level in ROLLUP_LEVELS:
        source = _WT if level == ROLLUP_LEVELS[0] else _RT
        conn.execute(_RT.insert().from_select(["window_s", "hashtag", "window_start", *ROLLUP_VALUES],
                                              _rollup_select(level, source)))


# --------------------------------------------------------------------- modality and pipeline windows


def _in_minutes(col: Any, group: list[int]) -> Any:
    """``col`` inside the minutes starting at the epoch seconds ``group`` (a range the indexes can use)."""
    lo, hi = from_epoch(group[0]), from_epoch(group[-1] + MINUTE)
    return and_(col >= lo, col < hi, bucket_epoch(col, MINUTE).in_(group))


FLAGS = ("uncertain", "conflict")  # Prediction flags counted per minute in modality_windows (migration 0005)


def flag_counts(cols: Any) -> list[Any]:
    """``uncertain`` and ``conflict``: how many predictions carry each flag (``cols``: the predictions columns)."""
    return [_ones(cols[f].is_(True)).label(f) for f in FLAGS]


def _modality_select(where: Any) -> Select[Any]:
    bucket = bucket_epoch(P.created_at, MINUTE).label("bucket")
    both = P.text_sentiment.is_not(None) & P.image_sentiment.is_not(None)
    counts = [_ones(P[col] == e).label(f"{m}_{e}") for m, col in MODALITY_COLUMNS.items() for e in EMOTIONS]
    inner = (select(bucket, func.count().label("volume"), *counts, _ones(both).label("both_modalities"),
                    _ones(both & (P.text_sentiment == P.image_sentiment)).label("agree_sentiment"),
                    _ones(both & (P.text_emotion == P.image_emotion)).label("agree_emotion"),
                    *flag_counts(P))
             .where(where).group_by(bucket).subquery())
    return select(epoch_to_time(inner.c.bucket), *(c for c in inner.c if c.name != "bucket"))


def _pipeline_select(where: Any) -> Select[Any]:
    bucket = bucket_epoch(P.processed_at, MINUTE).label("bucket")
    inner = (select(bucket, P.model_version, P.fusion, func.count().label("processed"),
                    _ones(P.cached.is_(True)).label("cached"), func.sum(P.latency_ms).label("latency_sum"),
                    func.max(P.processed_at).label("last_processed_at"))
             .where(where).group_by(bucket, P.model_version, P.fusion).subquery())
    return select(epoch_to_time(inner.c.bucket), *(c for c in inner.c if c.name != "bucket"))


def _recompute(conn: Connection, table: Any, build: Any, col: Any, minutes: Iterable[int] | None) -> None:
    names = [c.name for c in table.columns]
    if minutes is None:
        conn.execute(delete(table))
        conn.execute(table.insert().from_select(names, build(true())))
        return
    for group in chunks(sorted({m - m % MINUTE for m in minutes}), _MINUTES_PER_QUERY):
        group = list(group)
        conn.execute(delete(table).where(table.c.window_start.in_([from_epoch(m) for m in group])))
        conn.execute(table.insert().from_select(names, build(_in_minutes(col, group))))


def recompute_modality_windows(conn: Connection, minutes: Iterable[int] | None) -> None:
    """Replace the modality windows of these minutes (epoch seconds of ``created_at``; None: all) from predictions."""
    _recompute(conn, _MT, _modality_select, P.created_at, minutes)


def recompute_pipeline_windows(conn: Connection, minutes: Iterable[int] | None) -> None:
    """Replace the pipeline windows of these minutes (epoch seconds of ``processed_at``; None: all)."""
    _recompute(conn, _QT, _pipeline_select, P.processed_at, minutes)


def processed_minutes(conn: Connection, buckets: list[int], window_s: int) -> set[int]:
    """The ``processed_at`` minutes of the predictions created in these trend windows (epoch starts)."""
    out: set[int] = set()
    for group in chunks(buckets, _MINUTES_PER_QUERY):
        lo, hi = from_epoch(group[0]), from_epoch(group[-1] + window_s)
        b = bucket_epoch(P.processed_at, MINUTE)
        q = (select(b).distinct()
             .where(P.created_at >= lo, P.created_at < hi, bucket_epoch(P.created_at, window_s).in_(list(group))))
        out.update(int(m) for m in conn.execute(q).scalars())
    return out


def rebuild_summaries(conn: Connection) -> None:
    """Every summary table again: rollups from the stored windows, the rest from predictions (bulk SQL)."""
    rebuild_trend_rollups(conn)
    recompute_modality_windows(conn, None)
    recompute_pipeline_windows(conn, None)


# ------------------------------------------------------------------------------------------ checks

SUMMARY_TABLES = (_RT, _MT, _QT)


def _rows(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for t in SUMMARY_TABLES:
        rows = [dict(r._mapping) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
        for r in rows:
            for k, v in r.items():
                if k in ("window_start", "last_processed_at"):
                    r[k] = as_utc(v)
        out[t.name] = rows
    return out


def stored_summaries(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of the summary tables, per table, in primary-key order."""
    with transaction(engine) as conn:
        return _rows(conn)


def recount_summaries(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """What ``rebuild_summaries`` would store now (rebuilt inside a transaction that is rolled back; writers wait
    meanwhile, so this is for checks and tests)."""
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            rebuild_summaries(conn)
            return _rows(conn)
        finally:
            tx.rollback()
