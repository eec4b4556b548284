"""Read-side queries for the dashboard: each one aggregate SQL statement, bound parameters only.

Works on SQLite and PostgreSQL. Times go in as datetimes (any zone; converted to UTC) and come out as
tz-aware UTC datetimes. Time buckets are computed in SQL (``date_trunc`` on PostgreSQL, ``strftime`` on
SQLite). Every function takes an open ``Connection`` and returns plain dicts, so results cache and pickle.

Long ranges (and hour or day buckets) read the summary tables the stream worker keeps (``storage.windowed``
plans which: daily and hourly trend rollups, then 60 s windows, then ``predictions`` only for the partial
minutes at the edges), so the numbers equal the predictions-only answer (means to ~1e-6: windows store them
rounded). One cheap statement first checks that the summaries exist for the range's first and last posts; when
they do not (data loaded without the worker, a ``trend_window_s`` other than 60), the query reads
``predictions`` alone. Latency percentiles are exact up to ``LATENCY_SAMPLE`` predictions in range and over
the latest ``LATENCY_SAMPLE`` beyond that (``latency_sample`` says how many).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Float,
    String,
    Subquery,
    case,
    cast,
    event,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from moodstream.clock import as_utc, window_start
from moodstream.labels import EMOTIONS, SENTIMENTS
from storage import windowed as wd
from storage.tables import AlertDeliveryRow, AlertRow, DeadLetterRow, PostHashtagRow, PostRow, PredictionRow

Bucket = Literal["minute", "hour", "day"]
Modality = Literal["fused", "text", "image"]
BUCKETS: tuple[str, ...] = ("minute", "hour", "day")
BUCKET_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_SQLITE_FORMATS = {"minute": "%Y-%m-%d %H:%M:00", "hour": "%Y-%m-%d %H:00:00", "day": "%Y-%m-%d 00:00:00"}
LATENCY_SAMPLE = 50_000  # latency percentiles over at most the latest N predictions in range
MAX_LIMIT = 1000
SEARCH_ALL = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC))  # "all time" for search

_PT, _TT, _HT = PredictionRow.__table__, PostRow.__table__, PostHashtagRow.__table__
P, T, H = _PT.c, _TT.c, _HT.c


# -------------------------------------------------------------------------------------------- helpers


def _bound(dt: datetime) -> datetime:
    """A bound parameter for a time column: UTC; naive on SQLite, where times are stored as naive UTC text."""
    return as_utc(dt)


def _limit(n: int) -> int:
    return max(1, min(int(n), MAX_LIMIT))


def custom_plans(engine: Engine) -> Engine:
    """Plan every read with its real parameters: no server-side prepared statements on PostgreSQL.

    psycopg 3 prepares a statement after 5 runs, and after 5 more PostgreSQL may switch it to a generic plan
    that ignores the bound range and filters (the Posts page's filtered query on 1M rows: 0.03 s → 0.7 s).
    A dashboard re-runs the same statements every refresh, so without this its pages slow down after a minute.
    """
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _no_prepare)
    return engine


def _no_prepare(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.prepare_threshold = None


def _is_pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def bucket_expr(conn: Connection, col: Any, bucket: str) -> ColumnElement[Any]:
    """``col`` truncated to a minute/hour/day bucket, in UTC, by the connection's dialect.

    The unit comes from a fixed whitelist and is rendered as a constant (grouping by an expression that
    holds a bound parameter fails on PostgreSQL with server-side binding).
    """
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {BUCKETS}, not {bucket!r}")
    if _is_pg(conn):
        return func.date_trunc(literal_column(f"'{bucket}'"), func.timezone(literal_column("'UTC'"), col))
    return type_coerce(func.strftime(literal_column(f"'{_SQLITE_FORMATS[bucket]}'"), col), DateTime())


def _range(col: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return (col >= _bound(start)) & (col < _bound(end))


def _tag_filter(hashtags: list[str] | tuple[str, ...] | None, start: datetime, end: datetime):
    """``predictions.post_id IN (posts with any of these hashtags in range)``, or None for no filter."""
    if not hashtags:
        return None
    tags = [t.lstrip("#").lower() for t in hashtags]
    sub = select(H.post_id).where(H.hashtag.in_(tags), _range(H.created_at, start, end))
    return P.post_id.in_(sub)


def _count_if(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count().filter(cond)


def _rows(result: Any) -> list[dict[str, Any]]:
    out = []
    for r in result:
        d = dict(r._mapping)
        for k, v in d.items():
            if isinstance(v, datetime):
                d[k] = as_utc(v)
        out.append(d)
    return out


def _json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


# -------------------------------------------------------------------------------------- summaries

TagCond = Callable[[Any], ColumnElement[bool]]


def _tags(hashtags: list[str] | tuple[str, ...] | None) -> list[str]:
    """Hashtags as stored (lower-case, no ``#``), each once."""
    return list(dict.fromkeys(t.lstrip("#").lower() for t in hashtags or ()))


def _trend_plan(conn: Connection, cuts: list[datetime], bucket: str | None,
                tags: list[str] | None = None) -> wd.Plan | None:
    """A summary plan for a trend read, or None (read predictions). At most one hashtag may be filtered on:
    per-tag rows would count a post with two of them twice."""
    if tags is not None and len(tags) > 1:
        return None
    return wd.plan_for(conn, cuts, bucket, wd.TREND_CHECKS)


def _source(plan: wd.Plan, tag: TagCond | None, emotions: bool = False) -> Subquery:
    return wd.trend_source(plan, tag, emotions)


def _tag_equals(tags: list[str] | None) -> TagCond | None:
    """Rows of the one filtered hashtag, or None (global windows) without a filter."""
    if not tags:
        return None
    tag = tags[0]
    return lambda c: c == tag


def _any_tag(c: Any) -> ColumnElement[bool]:
    return c != ""


def _sums(u: Subquery, *names: str) -> list[ColumnElement[Any]]:
    return [func.coalesce(func.sum(u.c[n]), 0).label(n) for n in names]


def _mean(u: Subquery) -> ColumnElement[float]:
    """Σ(mean·volume) / Σ volume: the mean score of every post the rows stand for."""
    return (func.sum(u.c.score_sum) / func.nullif(func.sum(u.c.volume), 0)).label("mean_score")


# ------------------------------------------------------------------------------------------ overview


def has_any_posts(conn: Connection) -> bool:
    """Whether any prediction has been stored."""
    return conn.execute(select(P.post_id).limit(1)).first() is not None


def data_extent(conn: Connection) -> dict[str, Any]:
    """First and last ``created_at`` and the number of predictions (one statement)."""
    row = conn.execute(select(func.min(P.created_at).label("first"), func.max(P.created_at).label("last"),
                              func.count().label("n"))).one()
    return {"first": as_utc(row.first), "last": as_utc(row.last), "n": int(row.n)}


def sentiment_over_time(conn: Connection, start: datetime, end: datetime, bucket: str,
                        hashtags: list[str] | None = None, exclude_uncertain: bool = False) -> list[dict[str, Any]]:
    """Per bucket: ``bucket, negative, neutral, positive, volume, mean_score`` (buckets with posts only).

    ``exclude_uncertain`` leaves out the posts flagged uncertain (read from ``predictions``: the summaries count
    every post)."""
    tags = _tags(hashtags) or None
    plan = None if exclude_uncertain else _trend_plan(conn, [start, end], bucket, tags)
    if plan:
        u = _source(plan, _tag_equals(tags))
        b = bucket_expr(conn, u.c.ts, bucket).label("bucket")
        q = select(b, *_sums(u, *SENTIMENTS, "volume"), _mean(u)).group_by(b).order_by(b)
        return _rows(conn.execute(q))
    b = bucket_expr(conn, P.created_at, bucket).label("bucket")
    q = (select(b, *[_count_if(P.sentiment == s).label(s) for s in SENTIMENTS],
                func.count().label("volume"), func.avg(P.sentiment_score).label("mean_score"))
         .where(_range(P.created_at, start, end)))
    tag = _tag_filter(hashtags, start, end)
    if tag is not None:
        q = q.where(tag)
    if exclude_uncertain:
        q = q.where(P.uncertain.is_(False))
    return _rows(conn.execute(q.group_by(b).order_by(b)))


def sentiment_summary(conn: Connection, start: datetime, end: datetime,
                      hashtags: list[str] | None = None, exclude_uncertain: bool = False) -> dict[str, Any]:
    """Totals over the range: ``negative, neutral, positive, volume, mean_score`` (``exclude_uncertain``: as in
    ``sentiment_over_time``)."""
    tags = _tags(hashtags) or None
    plan = None if exclude_uncertain else _trend_plan(conn, [start, end], None, tags)
    if plan:
        u = _source(plan, _tag_equals(tags))
        return dict(conn.execute(select(*_sums(u, *SENTIMENTS, "volume"), _mean(u))).one()._mapping)
    q = (select(*[_count_if(P.sentiment == s).label(s) for s in SENTIMENTS],
                func.count().label("volume"), func.avg(P.sentiment_score).label("mean_score"))
         .where(_range(P.created_at, start, end)))
    tag = _tag_filter(hashtags, start, end)
    if tag is not None:
        q = q.where(tag)
    if exclude_uncertain:
        q = q.where(P.uncertain.is_(False))
    return dict(conn.execute(q).one()._mapping)


_EMOTION_COL = {"fused": P.emotion, "text": P.text_emotion, "image": P.image_emotion}


def emotion_over_time(conn: Connection, start: datetime, end: datetime, bucket: str,
                      modality: str = "fused", hashtags: list[str] | None = None) -> list[dict[str, Any]]:
    """Per bucket: ``bucket, <one count per emotion>, volume`` for the fused, text or image emotion
    (buckets with posts of that modality only)."""
    if modality not in _EMOTION_COL:
        raise ValueError(f"modality must be one of {tuple(_EMOTION_COL)}, not {modality!r}")
    tags = _tags(hashtags) or None
    plan = _trend_plan(conn, [start, end], bucket, tags) if modality == "fused" else None
    if plan:
        u = _source(plan, _tag_equals(tags), emotions=True)
        b = bucket_expr(conn, u.c.ts, bucket).label("bucket")
        emo = [func.sum(u.c[f"emo_{e}"]).label(e) for e in EMOTIONS]
        return _rows(conn.execute(select(b, *emo, *_sums(u, "volume")).group_by(b).order_by(b)))
    plan = wd.plan_for(conn, [start, end], bucket, wd.MODALITY_CHECKS) if modality != "fused" and not tags else None
    if plan:
        u = wd.modality_source(plan)
        b = bucket_expr(conn, u.c.ts, bucket).label("bucket")
        emo = [func.sum(u.c[f"{modality}_{e}"]).label(e) for e in EMOTIONS]
        volume = func.sum(sum((u.c[f"{modality}_{e}"] for e in EMOTIONS[1:]), u.c[f"{modality}_{EMOTIONS[0]}"]))
        q = select(b, *emo, volume.label("volume")).group_by(b).having(volume > 0).order_by(b)
        return _rows(conn.execute(q))
    col = _EMOTION_COL[modality]
    b = bucket_expr(conn, P.created_at, bucket).label("bucket")
    q = (select(b, *[_count_if(col == e).label(e) for e in EMOTIONS], func.count().label("volume"))
         .where(_range(P.created_at, start, end), col.is_not(None)))
    tag = _tag_filter(hashtags, start, end)
    if tag is not None:
        q = q.where(tag)
    return _rows(conn.execute(q.group_by(b).order_by(b)))


def _agreement(row: Any) -> dict[str, Any]:
    counts = {m: {e: int(row[f"{m}_{e}"] or 0) for e in EMOTIONS} for m in _EMOTION_COL}
    return {"counts": counts, "both": int(row["both_modalities"] or 0),
            "agree_sentiment": int(row["agree_sentiment"] or 0), "agree_emotion": int(row["agree_emotion"] or 0)}


def emotion_by_modality(conn: Connection, start: datetime, end: datetime,
                        hashtags: list[str] | None = None) -> dict[str, Any]:
    """Emotion counts per modality plus how often text and image agree, in one statement.

    Returns ``{"counts": {modality: {emotion: n}}, "both": n_with_both, "agree_sentiment": n, "agree_emotion": n}``.
    """
    plan = None if _tags(hashtags) else wd.plan_for(conn, [start, end], None, wd.MODALITY_CHECKS)
    if plan:
        u = wd.modality_source(plan)
        names = [n for n in wd.MODALITY_VALUES if n != "volume"]
        return _agreement(conn.execute(select(*(func.sum(u.c[n]).label(n) for n in names))).one()._mapping)
    cols = [_count_if(c == e).label(f"{m}_{e}") for m, c in _EMOTION_COL.items() for e in EMOTIONS]
    both = P.text_sentiment.is_not(None) & P.image_sentiment.is_not(None)
    q = select(*cols, _count_if(both).label("both_modalities"),
               _count_if(both & (P.text_sentiment == P.image_sentiment)).label("agree_sentiment"),
               _count_if(both & (P.text_emotion == P.image_emotion)).label("agree_emotion"),
               ).where(_range(P.created_at, start, end))
    tag = _tag_filter(hashtags, start, end)
    if tag is not None:
        q = q.where(tag)
    return _agreement(conn.execute(q).one()._mapping)


def flag_rates(conn: Connection, start: datetime, end: datetime, bucket: str) -> list[dict[str, Any]]:
    """Per bucket: ``bucket, volume, uncertain, conflict`` (posts, and how many carry each Prediction flag) and
    ``uncertain_rate, conflict_rate`` (shares of ``volume``); buckets with posts only. Long ranges and hour/day
    buckets read ``modality_windows`` (which count the flags per minute), the rest ``predictions``."""
    plan = wd.plan_for(conn, [start, end], bucket, wd.MODALITY_CHECKS)
    if plan:
        u = wd.modality_source(plan)
        b = bucket_expr(conn, u.c.ts, bucket).label("bucket")
        q = select(b, *_sums(u, "volume", "uncertain", "conflict")).group_by(b).order_by(b)
    else:
        b = bucket_expr(conn, P.created_at, bucket).label("bucket")
        q = (select(b, func.count().label("volume"), _count_if(P.uncertain.is_(True)).label("uncertain"),
                    _count_if(P.conflict.is_(True)).label("conflict"))
             .where(_range(P.created_at, start, end)).group_by(b).order_by(b))
    rows = _rows(conn.execute(q))
    for r in rows:
        for k in ("volume", "uncertain", "conflict"):
            r[k] = int(r[k] or 0)
        r["uncertain_rate"] = r["uncertain"] / r["volume"] if r["volume"] else None
        r["conflict_rate"] = r["conflict"] / r["volume"] if r["volume"] else None
    return rows


# ------------------------------------------------------------------------------------------ hashtags

_ORDERS = ("volume", "positive", "negative")


def top_hashtags(conn: Connection, start: datetime, end: datetime, limit: int = 10, order: str = "volume",
                 min_volume: int = 1) -> list[dict[str, Any]]:
    """Hashtags in range: ``hashtag, volume, negative, neutral, positive, mean_score``.

    ``order``: ``volume`` (most posts), ``positive`` (highest mean score) or ``negative`` (lowest); ties by volume.
    """
    if order not in _ORDERS:
        raise ValueError(f"order must be one of {_ORDERS}, not {order!r}")
    plan = _trend_plan(conn, [start, end], None)
    if plan:
        u = _source(plan, _any_tag)
        volume = func.sum(u.c.volume)
        mean = _mean(u)
        q = select(u.c.hashtag, volume.label("volume"), *_sums(u, *SENTIMENTS), mean).group_by(u.c.hashtag)
        if min_volume > 1:
            q = q.having(volume >= int(min_volume))
        wby = {"volume": [volume.desc(), u.c.hashtag],
               "positive": [mean.desc(), volume.desc(), u.c.hashtag],
               "negative": [mean.asc(), volume.desc(), u.c.hashtag]}[order]
        return _rows(conn.execute(q.order_by(*wby).limit(_limit(limit))))
    volume = func.count().label("volume")
    mean = func.avg(P.sentiment_score).label("mean_score")
    q = (select(H.hashtag, volume, *[_count_if(P.sentiment == s).label(s) for s in SENTIMENTS], mean)
         .select_from(_HT.join(_PT, P.post_id == H.post_id))
         .where(_range(H.created_at, start, end))
         .group_by(H.hashtag))
    if min_volume > 1:
        q = q.having(func.count() >= int(min_volume))
    by = {"volume": [volume.desc(), H.hashtag],
          "positive": [mean.desc(), volume.desc(), H.hashtag],
          "negative": [mean.asc(), volume.desc(), H.hashtag]}[order]
    return _rows(conn.execute(q.order_by(*by).limit(_limit(limit))))


def hashtag_movers(conn: Connection, start: datetime, end: datetime, limit: int = 10) -> list[dict[str, Any]]:
    """Hashtags whose volume changed most against the previous period of the same length.

    Rows: ``hashtag, volume, previous, change, mean_score, previous_score`` ordered by ``|change|``.
    """
    prev_start = as_utc(start) - (as_utc(end) - as_utc(start))  # type: ignore[operator]
    plan = _trend_plan(conn, [prev_start, start, end], None)
    if plan:
        u = _source(plan, _any_tag)
        now = u.c.ts >= _bound(start)
        vol_now = func.sum(case((now, u.c.volume), else_=0))
        vol_prev = func.sum(case((~now, u.c.volume), else_=0))
        wchange = vol_now - vol_prev
        q = (select(u.c.hashtag, vol_now.label("volume"), vol_prev.label("previous"), wchange.label("change"),
                    (func.sum(case((now, u.c.score_sum))) / func.nullif(vol_now, 0)).label("mean_score"),
                    (func.sum(case((~now, u.c.score_sum))) / func.nullif(vol_prev, 0)).label("previous_score"))
             .group_by(u.c.hashtag).order_by(func.abs(wchange).desc(), vol_now.desc(), u.c.hashtag)
             .limit(_limit(limit)))
        return _rows(conn.execute(q))
    cur = H.created_at >= _bound(start)
    cur_n = _count_if(cur)
    prev_n = _count_if(~cur)
    change = (cur_n - prev_n)
    q = (select(H.hashtag, cur_n.label("volume"), prev_n.label("previous"), change.label("change"),
                func.avg(case((cur, P.sentiment_score))).label("mean_score"),
                func.avg(case((~cur, P.sentiment_score))).label("previous_score"))
         .select_from(_HT.join(_PT, P.post_id == H.post_id))
         .where(_range(H.created_at, prev_start, end))
         .group_by(H.hashtag)
         .order_by(func.abs(change).desc(), cur_n.desc(), H.hashtag)
         .limit(_limit(limit)))
    return _rows(conn.execute(q))


def hashtag_sparklines(conn: Connection, tags: list[str], start: datetime, end: datetime,
                       bucket: str) -> list[dict[str, Any]]:
    """Per hashtag and bucket: ``hashtag, bucket, volume, mean_score`` for the given tags."""
    if not tags:
        return []
    plan = _trend_plan(conn, [start, end], bucket)
    if plan:
        wanted = _tags(tags)
        u = _source(plan, lambda c: c.in_(wanted))
        b = bucket_expr(conn, u.c.ts, bucket).label("bucket")
        q = (select(u.c.hashtag, b, func.sum(u.c.volume).label("volume"), _mean(u))
             .group_by(u.c.hashtag, b).order_by(u.c.hashtag, b))
        return _rows(conn.execute(q))
    b = bucket_expr(conn, H.created_at, bucket).label("bucket")
    q = (select(H.hashtag, b, func.count().label("volume"), func.avg(P.sentiment_score).label("mean_score"))
         .select_from(_HT.join(_PT, P.post_id == H.post_id))
         .where(H.hashtag.in_([t.lstrip("#").lower() for t in tags]), _range(H.created_at, start, end))
         .group_by(H.hashtag, b).order_by(H.hashtag, b))
    return _rows(conn.execute(q))


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def search_hashtags(conn: Connection, prefix: str, limit: int = 20, start: datetime | None = None,
                    end: datetime | None = None) -> list[dict[str, Any]]:
    """Hashtags starting with ``prefix`` (``#`` and case ignored; LIKE wildcards escaped), most used first:
    ``hashtag, volume`` (counted in ``[start, end)`` when given)."""
    prefix = prefix.strip().lstrip("#").lower()[:100]
    plan = _trend_plan(conn, [start or SEARCH_ALL[0], end or SEARCH_ALL[1]], None)
    if plan:
        def matches(c: Any) -> ColumnElement[bool]:
            return c.like(_like_prefix(prefix), escape="\\") if prefix else c != ""

        u = _source(plan, matches)
        volume = func.sum(u.c.volume)
        q = select(u.c.hashtag, volume.label("volume")).group_by(u.c.hashtag)
        return _rows(conn.execute(q.order_by(volume.desc(), u.c.hashtag).limit(_limit(limit))))
    q = select(H.hashtag, func.count().label("volume")).group_by(H.hashtag)
    if prefix:
        q = q.where(H.hashtag.like(_like_prefix(prefix), escape="\\"))
    if start is not None:
        q = q.where(H.created_at >= _bound(start))
    if end is not None:
        q = q.where(H.created_at < _bound(end))
    return _rows(conn.execute(q.order_by(func.count().desc(), H.hashtag).limit(_limit(limit))))


# ------------------------------------------------------------------------------------------- posts

_POST_COLS = (T.id, T.created_at, T.text, T.author, T.lang, T.source, T.image_url, T.has_image,
              P.processed_at, P.model_version, P.fusion, P.sentiment, P.sentiment_score, P.emotion,
              P.sentiment_probs, P.emotion_probs, P.text_sentiment, P.text_emotion, P.image_sentiment,
              P.image_emotion, P.modalities, P.faces, P.confidence, P.latency_ms, P.cached, P.uncertain, P.conflict)


def _post_row(d: dict[str, Any]) -> dict[str, Any]:
    for k in ("sentiment_probs", "emotion_probs", "modalities"):
        d[k] = _json(d.get(k)) or {}
    d["modality_confidence"] = modality_confidence(d["modalities"], d["sentiment_probs"])
    d["evidence"] = modality_evidence(d)
    return d


def modality_evidence(post: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """What each modality says next to the fused label: ``text`` {label, confidence}, ``image`` {label, confidence,
    faces} (``None`` when the post lacks the modality) and ``fused`` {label, confidence} (the stored, calibrated
    confidence of the fused label)."""
    mods = post.get("modalities") or {}
    out: dict[str, dict[str, Any] | None] = {}
    for m in ("text", "image"):
        mod = mods.get(m) if isinstance(mods.get(m), dict) else None
        probs = (mod or {}).get("sentiment") or {}
        if not probs:
            out[m] = None
            continue
        label = max(probs, key=probs.__getitem__)
        out[m] = {"label": label, "confidence": float(probs[label])}
        if m == "image":
            out[m]["faces"] = (mod or {}).get("faces")
    conf = post.get("confidence")
    out["fused"] = {"label": post.get("sentiment"), "confidence": None if conf is None else float(conf)}
    return out


def modality_confidence(modalities: dict[str, Any], fused_probs: dict[str, float]) -> dict[str, float | None]:
    """Max sentiment probability per modality (``None`` when the modality is missing) and for the fusion."""
    out: dict[str, float | None] = {}
    for m in ("text", "image"):
        probs = (modalities or {}).get(m) or {}
        sent = probs.get("sentiment") if isinstance(probs, dict) else None
        out[m] = max(sent.values()) if sent else None
    out["fused"] = max(fused_probs.values()) if fused_probs else None
    return out


def recent_posts(conn: Connection, limit: int = 24, sentiment: str | None = None, emotion: str | None = None,
                 hashtag: str | None = None, min_confidence: float | None = None,
                 with_thumbnails: bool = True, uncertain_only: bool = False,
                 conflict_only: bool = False) -> list[dict[str, Any]]:
    """The newest posts with their predictions (and thumbnail bytes), optionally filtered (``uncertain_only``,
    ``conflict_only``: only posts carrying that flag)."""
    cols = (*_POST_COLS, T.thumbnail) if with_thumbnails else _POST_COLS
    q = select(*cols).select_from(_PT.join(_TT, T.id == P.post_id))
    if sentiment:
        q = q.where(P.sentiment == sentiment)
    if emotion:
        q = q.where(P.emotion == emotion)
    if min_confidence is not None and min_confidence > 0:
        q = q.where(P.confidence >= float(min_confidence))
    if uncertain_only:  # the bare column, as in the partial index's WHERE (both backends then use it)
        q = q.where(P.uncertain)
    if conflict_only:
        q = q.where(P.conflict)
    if hashtag:
        q = q.where(P.post_id.in_(select(H.post_id).where(H.hashtag == hashtag.lstrip("#").lower())))
    q = q.order_by(P.created_at.desc(), P.post_id).limit(_limit(limit))
    return [_post_row(d) for d in _rows(conn.execute(q))]


def get_post(conn: Connection, post_id: str) -> dict[str, Any] | None:
    """One post with its prediction, thumbnail and hashtags (``hashtags`` list), or None."""
    tags = (select(func.aggregate_strings(H.hashtag, " "))
            .where(H.post_id == T.id).scalar_subquery().label("hashtags"))
    q = (select(*_POST_COLS, T.thumbnail, type_coerce(tags, String()))
         .select_from(_TT.join(_PT, T.id == P.post_id))
         .where(T.id == post_id))
    rows = _rows(conn.execute(q))
    if not rows:
        return None
    d = _post_row(rows[0])
    d["hashtags"] = sorted((d.get("hashtags") or "").split())
    return d


# ------------------------------------------------------------------------------------------ alerts


def alerts(conn: Connection, since: datetime, limit: int = 100) -> list[dict[str, Any]]:
    """Alerts raised since ``since``, newest first."""
    a = AlertRow.__table__.c
    q = (select(a.id, a.hashtag, a.window_start, a.mean_score, a.baseline, a.delta, a.volume, a.direction,
                a.raised_at)
         .where(a.raised_at >= _bound(since)).order_by(a.raised_at.desc(), a.id).limit(_limit(limit)))
    return _rows(conn.execute(q))


def alert_deliveries(conn: Connection, since: datetime, limit: int = 100) -> list[dict[str, Any]]:
    """Webhook deliveries (the outbox) of the alerts raised since ``since``: state, attempts, last error; the most
    recently updated first."""
    a = AlertRow.__table__.c
    d = AlertDeliveryRow.__table__.c
    q = (select(d.alert_id, a.hashtag, a.direction, a.raised_at, d.sink, d.state, d.attempts, d.last_error,
                d.next_attempt_at, d.delivered_at, d.updated_at)
         .select_from(AlertDeliveryRow.__table__.join(AlertRow.__table__, a.id == d.alert_id))
         .where(a.raised_at >= _bound(since)).order_by(d.updated_at.desc(), d.id.desc()).limit(_limit(limit)))
    return _rows(conn.execute(q))


# ---------------------------------------------------------------------------------------- pipeline


def _pipeline_plan(conn: Connection, start: datetime, end: datetime, bucket: str | None) -> wd.Plan | None:
    return wd.plan_for(conn, [start, end], bucket, wd.PIPELINE_CHECKS)


def _throughput(conn: Connection, start: datetime, end: datetime, bucket: str,
                plan: wd.Plan | None) -> list[dict[str, Any]]:
    if plan:
        u = wd.pipeline_source(plan)
        b = bucket_expr(conn, u.c.ts, bucket).label("bucket")
        processed = func.sum(u.c.processed)
        q = (select(b, processed.label("processed"), func.sum(u.c.cached).label("cached"),
                    (func.sum(u.c.latency_sum) / func.nullif(processed, 0)).label("mean_latency_ms"))
             .group_by(b).order_by(b))
        return _rows(conn.execute(q))
    b = bucket_expr(conn, P.processed_at, bucket).label("bucket")
    q = (select(b, func.count().label("processed"), _count_if(P.cached.is_(True)).label("cached"),
                func.avg(P.latency_ms).label("mean_latency_ms"))
         .where(_range(P.processed_at, start, end)).group_by(b).order_by(b))
    return _rows(conn.execute(q))


def throughput(conn: Connection, start: datetime, end: datetime, bucket: str = "minute") -> list[dict[str, Any]]:
    """Predictions processed per bucket (by ``processed_at``): ``bucket, processed, cached, mean_latency_ms``."""
    return _throughput(conn, start, end, bucket, _pipeline_plan(conn, start, end, bucket))


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (what PostgreSQL's ``percentile_cont`` does)."""
    if not sorted_values:
        return None
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


_QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def _latency(conn: Connection, where: ColumnElement[bool]) -> dict[str, Any]:
    """``p50, p95, p99`` over the latest ``LATENCY_SAMPLE`` predictions in range (one bounded statement, an
    index-only scan), the sample's size (``latency_sample``) and the newest ``processed_at`` (``last``)."""
    latest = select(P.latency_ms, P.processed_at).where(where).order_by(P.processed_at.desc()).limit(LATENCY_SAMPLE)
    if _is_pg(conn):
        s = latest.subquery("s")
        pct = [func.percentile_cont(literal_column(str(q))).within_group(s.c.latency_ms).label(name)
               for name, q in _QUANTILES]
        row = conn.execute(select(func.count().label("latency_sample"), func.max(s.c.processed_at).label("last"),
                                  *pct)).one()._mapping
        return {**dict(row), "last": as_utc(row["last"])}
    rows = conn.execute(latest).all()
    lat = sorted(r.latency_ms for r in rows)
    return {**{name: _percentile(lat, q) for name, q in _QUANTILES}, "latency_sample": len(lat),
            "last": as_utc(rows[0].processed_at) if rows else None}


def _processing(conn: Connection, start: datetime, end: datetime, plan: wd.Plan | None) -> dict[str, Any]:
    if plan:
        u = wd.pipeline_source(plan)
        processed = func.sum(u.c.processed)
        q = select(func.coalesce(processed, 0).label("processed"),
                   (cast(func.sum(u.c.cached), Float()) / func.nullif(processed, 0)).label("cache_hit_rate"))
    else:
        q = (select(func.count().label("processed"),
                    func.avg(case((P.cached.is_(True), 1.0), else_=0.0)).label("cache_hit_rate"))
             .where(_range(P.processed_at, start, end)))
    out = dict(conn.execute(q).one()._mapping)
    out.update(_latency(conn, _range(P.processed_at, start, end)))
    last = out.pop("last")
    out["last_minute"] = 0
    if last is not None:
        lo = window_start(last, 60)
        hi = min(as_utc(end), lo + timedelta(seconds=60))  # type: ignore[type-var]
        out["last_minute"] = int(conn.execute(select(func.count()).where(_range(P.processed_at, lo, hi))).scalar_one())
    return out


def processing_stats(conn: Connection, start: datetime, end: datetime) -> dict[str, Any]:
    """Over predictions processed in range: ``processed, cache_hit_rate, p50, p95, p99, latency_sample,
    last_minute`` (processed in the newest minute with any).

    Counts are exact; the percentiles are over the latest ``latency_sample`` (at most ``LATENCY_SAMPLE``)
    predictions in range, so exact when the range holds no more than that.
    """
    return _processing(conn, start, end, _pipeline_plan(conn, start, end, None))


def _models(conn: Connection, start: datetime, end: datetime, plan: wd.Plan | None) -> list[dict[str, Any]]:
    if plan:
        u = wd.pipeline_source(plan)
        last = func.max(u.c.last_at)
        q = (select(u.c.model_version, u.c.fusion, func.sum(u.c.processed).label("n"), last.label("last_seen"))
             .group_by(u.c.model_version, u.c.fusion).order_by(last.desc()))
        return _rows(conn.execute(q))
    q = (select(P.model_version, P.fusion, func.count().label("n"), func.max(P.processed_at).label("last_seen"))
         .where(_range(P.processed_at, start, end)).group_by(P.model_version, P.fusion)
         .order_by(func.max(P.processed_at).desc()))
    return _rows(conn.execute(q))


def model_versions(conn: Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Model versions and fusion strategies that processed posts in range: ``model_version, fusion, n, last_seen``."""
    return _models(conn, start, end, _pipeline_plan(conn, start, end, None))


def dead_letter_stats(conn: Connection, start: datetime, end: datetime, latest: int = 10) -> dict[str, Any]:
    """Dead letters in range: ``count`` and the ``latest`` few (``failed_at, stage, post_id, reason``)."""
    d = DeadLetterRow.__table__.c
    where = _range(d.failed_at, start, end)
    count = select(func.count()).where(where).scalar_subquery()
    q = (select(count.label("count"), d.failed_at, d.stage, d.post_id, d.reason)
         .where(where).order_by(d.failed_at.desc(), d.id.desc()).limit(_limit(latest)))
    rows = _rows(conn.execute(q))
    total = int(rows[0]["count"]) if rows else 0
    return {"count": total, "latest": [{k: v for k, v in r.items() if k != "count"} for r in rows]}


def pipeline_stats(conn: Connection, start: datetime, end: datetime, bucket: str = "minute") -> dict[str, Any]:
    """Everything the Pipeline page shows: throughput per ``bucket``, dead letters, latency, cache, model versions
    (one summary plan for all of them)."""
    plan = _pipeline_plan(conn, start, end, bucket)
    return {"throughput": _throughput(conn, start, end, bucket, plan),
            "processing": _processing(conn, start, end, plan),
            "dead_letters": dead_letter_stats(conn, start, end), "models": _models(conn, start, end, plan)}
