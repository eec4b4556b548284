"""Read plans over the summary tables: which table answers which part of a time range (read side).

A range's whole days come from the daily trend rollups, its remaining whole hours from the hourly ones, its
remaining whole minutes from the 60 s windows (``trend_windows``, ``modality_windows``, ``pipeline_windows``),
and only the partial minutes at its edges from ``predictions``. So an answer equals the predictions-only one
(means to ~1e-6: trend windows store them rounded) while the rows read stay few whatever the range's length.

A plan is used only when one cheap statement finds, for every level it reads, that level's rows at the first
and the last post there (data loaded without the worker has none); otherwise the caller reads ``predictions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    Integer,
    String,
    Subquery,
    case,
    cast,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy import union_all as sa_union_all
from sqlalchemy.sql.elements import ColumnElement

from moodstream.clock import as_utc, window_start
from moodstream.labels import EMOTIONS, SENTIMENTS
from storage.rollups import FLAGS, MICROS, MODALITY_COLUMNS
from storage.tables import (
    ModalityWindowRow,
    PipelineWindowRow,
    PostHashtagRow,
    PredictionRow,
    TrendRollupRow,
    TrendWindowRow,
)

MINUTE, HOUR, DAY = 60, 3600, 86400
BUCKET_SECONDS = {"minute": MINUTE, "hour": HOUR, "day": DAY}
MIN_SPAN = timedelta(hours=24)  # ranges at least this long read summaries whatever the bucket

_PT, _HT, _WT = PredictionRow.__table__, PostHashtagRow.__table__, TrendWindowRow.__table__
_RT, _MT, _QT = TrendRollupRow.__table__, ModalityWindowRow.__table__, PipelineWindowRow.__table__
P, H, W, R, M, Q = _PT.c, _HT.c, _WT.c, _RT.c, _MT.c, _QT.c
Span = tuple[datetime, datetime]


def in_range(col: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return (col >= as_utc(start)) & (col < as_utc(end))


def any_range(col: Any, spans: list[Span]) -> ColumnElement[bool]:
    return or_(*(in_range(col, a, b) for a, b in spans))


def ones(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return case((cond, 1), else_=0)


# ------------------------------------------------------------------------------------------ splitting


def _ceil_to(dt: datetime, size: int) -> datetime:
    lo = window_start(dt, size)
    return lo if lo == as_utc(dt) else lo + timedelta(seconds=size)


def _merge(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


@dataclass(frozen=True)
class Plan:
    """Spans read per level (window seconds) and the partial-minute ``edges`` read from predictions."""

    spans: dict[int, list[Span]] = field(default_factory=dict)
    edges: list[Span] = field(default_factory=list)


def _split_one(a: datetime, b: datetime, levels: tuple[int, ...], spans: dict[int, list[Span]],
               edges: list[Span]) -> None:
    if a >= b:
        return
    if not levels:
        edges.append((a, b))
        return
    size, finer = levels[0], levels[1:]
    lo, hi = _ceil_to(a, size), window_start(b, size)
    if lo < hi:
        spans.setdefault(size, []).append((lo, hi))
        _split_one(a, lo, finer, spans, edges)
        _split_one(hi, b, finer, spans, edges)
    else:
        _split_one(a, b, finer, spans, edges)


def split(cuts: list[datetime], levels: tuple[int, ...]) -> Plan:
    """Each ``[cuts[i], cuts[i+1])`` split into whole windows of the coarsest level that fits, then finer ones;
    what is left (partial minutes) becomes edges. No span crosses a cut."""
    spans: dict[int, list[Span]] = {}
    edges: list[Span] = []
    for a, b in pairwise(cuts):
        _split_one(as_utc(a), as_utc(b), levels, spans, edges)
    return Plan({size: _merge(s) for size, s in spans.items()}, _merge(edges))


def levels_for(bucket: str | None, levels: tuple[int, ...]) -> tuple[int, ...]:
    """The levels whose rows fall inside one bucket (all of them without a bucket)."""
    if bucket is None:
        return levels
    return tuple(size for size in levels if size <= BUCKET_SECONDS[bucket])


def worth_it(cuts: list[datetime], bucket: str | None) -> bool:
    """Summaries for hour and day buckets and for ranges of at least ``MIN_SPAN``; short minute ranges are cheap."""
    return bucket in ("hour", "day") or as_utc(cuts[-1]) - as_utc(cuts[-2]) >= MIN_SPAN


# ---------------------------------------------------------------------------------------- cover check


def _first(col: Any, where: list[ColumnElement[bool]], last: bool = False) -> Any:
    return select(col).where(*where).order_by(col.desc() if last else col).limit(1).scalar_subquery()


@dataclass(frozen=True)
class Level:
    """How to check one level: the post time column, the level's time column and its global rows."""

    size: int
    post_time: Any
    window_time: Any
    where: tuple[ColumnElement[bool], ...] = ()


def covered(conn: Connection, plan: Plan, levels: dict[int, Level]) -> bool:
    """One statement: for each level the plan reads, rows exist at the first and the last post in its spans."""
    checks = [(levels[size], spans[0][0], spans[-1][1]) for size, spans in sorted(plan.spans.items())]
    if not checks:
        return True
    cols = []
    for i, (lv, lo, hi) in enumerate(checks):
        pw, ww = [in_range(lv.post_time, lo, hi)], [*lv.where, in_range(lv.window_time, lo, hi)]
        cols += [_first(lv.post_time, pw).label(f"p0_{i}"), _first(lv.post_time, pw, True).label(f"p1_{i}"),
                 _first(lv.window_time, ww).label(f"w0_{i}"), _first(lv.window_time, ww, True).label(f"w1_{i}")]
    row = conn.execute(select(*cols)).one()._mapping
    for i, (lv, _lo, _hi) in enumerate(checks):
        p0, p1, w0, w1 = (row[f"{k}_{i}"] for k in ("p0", "p1", "w0", "w1"))
        if p0 is None:
            if w0 is not None:
                return False
            continue
        if w0 is None or as_utc(w0) != window_start(p0, lv.size) or as_utc(w1) != window_start(p1, lv.size):
            return False
    return True


TREND_CHECKS = {
    DAY: Level(DAY, P.created_at, R.window_start, (R.window_s == DAY, R.hashtag == "")),
    HOUR: Level(HOUR, P.created_at, R.window_start, (R.window_s == HOUR, R.hashtag == "")),
    MINUTE: Level(MINUTE, P.created_at, W.window_start, (W.hashtag == "", W.window_s == MINUTE)),
}
MODALITY_CHECKS = {MINUTE: Level(MINUTE, P.created_at, M.window_start)}
PIPELINE_CHECKS = {MINUTE: Level(MINUTE, P.processed_at, Q.window_start)}


def plan_for(conn: Connection, cuts: list[datetime], bucket: str | None, checks: dict[int, Level]) -> Plan | None:
    """The plan for reading ``cuts`` from these summaries, or None when predictions should answer alone."""
    if not worth_it(cuts, bucket):
        return None
    plan = split(cuts, levels_for(bucket, tuple(sorted(checks, reverse=True))))
    if not plan.spans or not covered(conn, plan, checks):
        return None
    return plan


# -------------------------------------------------------------------------------------------- sources


def _union(parts: list[Any]) -> Subquery:
    return (parts[0] if len(parts) == 1 else sa_union_all(*parts)).subquery("u")


def trend_source(plan: Plan, tag: Any | None, emotions: bool = False) -> Subquery:
    """Rows ``ts, hashtag, volume, negative, neutral, positive, score_sum[, emo_<emotion>...]``.

    Rollups and windows are global when ``tag`` is None, else the hashtags ``tag`` accepts (a function of the
    hashtag column); the edges come from ``predictions`` (joined to ``post_hashtags`` for hashtags).
    """
    parts: list[Any] = []
    for size, spans in sorted(plan.spans.items(), reverse=True):
        if size == MINUTE:
            cols = [W.window_start, W.hashtag, W.volume, *(W[s] for s in SENTIMENTS), W.mean_score * W.volume]
            cols += [W.emotions[e].as_integer() for e in EMOTIONS] if emotions else []
            where = [W.window_s == MINUTE, W.hashtag == "" if tag is None else tag(W.hashtag),
                     any_range(W.window_start, spans)]
        else:
            cols = [R.window_start, R.hashtag, R.volume, *(R[s] for s in SENTIMENTS),
                    cast(R.score_micros, Float()) / MICROS]
            cols += [R[f"emo_{e}"] for e in EMOTIONS] if emotions else []
            where = [R.window_s == size, R.hashtag == "" if tag is None else tag(R.hashtag),
                     any_range(R.window_start, spans)]
        parts.append(select(*_labelled(cols, emotions)).where(*where))
    if plan.edges:
        ts = P.created_at if tag is None else H.created_at
        cols = [ts, literal_column("''", String()) if tag is None else H.hashtag, literal_column("1", Integer()),
                *(ones(P.sentiment == s) for s in SENTIMENTS), type_coerce(P.sentiment_score, Float())]
        cols += [ones(P.emotion == e) for e in EMOTIONS] if emotions else []
        q = select(*_labelled(cols, emotions)).where(any_range(ts, plan.edges))
        if tag is not None:
            q = q.select_from(_HT.join(_PT, P.post_id == H.post_id)).where(tag(H.hashtag))
        parts.append(q)
    return _union(parts)


def _labelled(cols: list[Any], emotions: bool) -> list[Any]:
    names = ["ts", "hashtag", "volume", *SENTIMENTS, "score_sum", *([f"emo_{e}" for e in EMOTIONS] if emotions else [])]
    return [c.label(n) for c, n in zip(cols, names, strict=True)]


MODALITY_VALUES = ("volume", *(f"{m}_{e}" for m in MODALITY_COLUMNS for e in EMOTIONS), "both_modalities",
                   "agree_sentiment", "agree_emotion", *FLAGS)


def modality_source(plan: Plan) -> Subquery:
    """Rows ``ts, volume, <modality>_<emotion>..., both_modalities, agree_sentiment, agree_emotion, uncertain,
    conflict``."""
    parts: list[Any] = [select(M.window_start.label("ts"), *(M[c] for c in MODALITY_VALUES))
                        .where(any_range(M.window_start, plan.spans[MINUTE]))]
    if plan.edges:
        both = P.text_sentiment.is_not(None) & P.image_sentiment.is_not(None)
        counts = [ones(P[col] == e).label(f"{m}_{e}") for m, col in MODALITY_COLUMNS.items() for e in EMOTIONS]
        parts.append(select(P.created_at.label("ts"), literal_column("1", Integer()).label("volume"), *counts,
                            ones(both).label("both_modalities"),
                            ones(both & (P.text_sentiment == P.image_sentiment)).label("agree_sentiment"),
                            ones(both & (P.text_emotion == P.image_emotion)).label("agree_emotion"),
                            *(ones(P[f].is_(True)).label(f) for f in FLAGS))
                     .where(any_range(P.created_at, plan.edges)))
    return _union(parts)


def pipeline_source(plan: Plan) -> Subquery:
    """Rows ``ts, model_version, fusion, processed, cached, latency_sum, last_at`` (by ``processed_at``)."""
    parts: list[Any] = [select(Q.window_start.label("ts"), Q.model_version, Q.fusion, Q.processed, Q.cached,
                               Q.latency_sum, Q.last_processed_at.label("last_at"))
                        .where(any_range(Q.window_start, plan.spans[MINUTE]))]
    if plan.edges:
        parts.append(select(P.processed_at.label("ts"), P.model_version, P.fusion,
                            literal_column("1", Integer()).label("processed"),
                            ones(P.cached.is_(True)).label("cached"),
                            type_coerce(P.latency_ms, Float()).label("latency_sum"), P.processed_at.label("last_at"))
                     .where(any_range(P.processed_at, plan.edges)))
    return _union(parts)
