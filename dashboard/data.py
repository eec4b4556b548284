"""Cached access to the read queries: one engine per URL (``st.cache_resource``), results cached a few seconds.

Time ranges are passed as a span in seconds ending "now", so the cache key is stable between reruns and a
chart is at most ``dashboard_cache_ttl_s`` old. Results are pandas DataFrames (or dicts) ready to chart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from moodstream.config import get_settings
from storage import queries
from storage.engine import DatabaseUnavailable, display_url, make_engine

_TTL = get_settings().dashboard_cache_ttl_s
Status = Literal["ok", "empty", "down"]


class DashboardDataError(RuntimeError):
    """A query failed because the database is down or unreadable; the message is one line, no password."""


def database_url() -> str:
    """The URL the dashboard reads: the read-only role's URL when set, else the database URL."""
    s = get_settings()
    return s.database_readonly_url or s.database_url


def readonly_url(url: str) -> str:
    """For a SQLite file, the same file opened read-only (``mode=ro``); other URLs unchanged."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return url
    db = parsed.database or ""
    if db in ("", ":memory:") or db.startswith("file:"):
        return url
    path = Path(db).expanduser().resolve()
    return f"sqlite:///file:{path}?mode=ro&uri=true"


def sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    db = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or db in ("", ":memory:"):
        return None
    return Path(db.removeprefix("file:").split("?")[0]).expanduser()


@st.cache_resource(show_spinner=False)
def engine(url: str) -> Engine:
    """One pooled, read-only engine per URL for the whole server (every read planned with its parameters)."""
    return queries.custom_plans(make_engine(readonly_url(url), readonly=True))


def _short(err: BaseException, url: str) -> str:
    if isinstance(err, DatabaseUnavailable):
        return str(err)
    orig = getattr(err, "orig", None) or err
    lines = [s.strip() for s in str(orig).splitlines() if s.strip()]
    return f"database {display_url(url)} is unavailable: {lines[0] if lines else type(orig).__name__}"


def run(name: str, **kwargs: Any) -> Any:
    """Call ``storage.queries.<name>(conn, **kwargs)`` on a fresh pooled connection, uncached."""
    url = database_url()
    try:
        with engine(url).connect() as conn:
            return getattr(queries, name)(conn, **kwargs)
    except (SQLAlchemyError, DatabaseUnavailable, OSError) as e:
        raise DashboardDataError(_short(e, url)) from e


@st.cache_data(ttl=_TTL, show_spinner=False, max_entries=512)
def _cached(url: str, name: str, span_s: int | None, **kwargs: Any) -> Any:
    if span_s is not None:
        end = datetime.now(UTC) + timedelta(seconds=1)
        kwargs = {"start": end - timedelta(seconds=span_s), "end": end, **kwargs}
    return run(name, **kwargs)


def fetch(name: str, span_s: int | None = None, **kwargs: Any) -> Any:
    """A cached query result; ``span_s`` adds ``start``/``end`` for the last ``span_s`` seconds."""
    return _cached(database_url(), name, span_s, **kwargs)


def _is_missing_table(err: BaseException) -> bool:
    text = str(getattr(err.__cause__, "orig", None) or err).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def status() -> tuple[Status, str]:
    """``("ok", "")``, ``("empty", why)`` for no posts yet, or ``("down", one-line reason)``."""
    url = database_url()
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return "empty", f"database file {path} does not exist yet"
    try:
        has = fetch("has_any_posts")
    except DashboardDataError as e:
        if _is_missing_table(e):
            return "empty", "the database has no tables yet"
        return "down", str(e)
    return ("ok", "") if has else ("empty", "")


# ------------------------------------------------------------------------------ typed wrappers


def _frame(rows: list[dict[str, Any]], columns: list[str] | None = None) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns) if not rows and columns else pd.DataFrame(rows)
    return df


def sentiment_over_time(span_s: int, bucket: str, tags: tuple[str, ...] = ()) -> pd.DataFrame:
    cols = ["bucket", "negative", "neutral", "positive", "volume", "mean_score"]
    return _frame(fetch("sentiment_over_time", span_s, bucket=bucket, hashtags=list(tags)), cols)


def sentiment_summary(span_s: int, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    return fetch("sentiment_summary", span_s, hashtags=list(tags))


def emotion_over_time(span_s: int, bucket: str, modality: str, tags: tuple[str, ...] = ()) -> pd.DataFrame:
    cols = ["bucket", *queries.EMOTIONS, "volume"]
    return _frame(fetch("emotion_over_time", span_s, bucket=bucket, modality=modality, hashtags=list(tags)), cols)


def emotion_by_modality(span_s: int, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    return fetch("emotion_by_modality", span_s, hashtags=list(tags))


def top_hashtags(span_s: int, limit: int, order: str, min_volume: int = 1) -> pd.DataFrame:
    cols = ["hashtag", "volume", "negative", "neutral", "positive", "mean_score"]
    return _frame(fetch("top_hashtags", span_s, limit=limit, order=order, min_volume=min_volume), cols)


def hashtag_movers(span_s: int, limit: int) -> pd.DataFrame:
    cols = ["hashtag", "volume", "previous", "change", "mean_score", "previous_score"]
    return _frame(fetch("hashtag_movers", span_s, limit=limit), cols)


def hashtag_sparklines(tags: tuple[str, ...], span_s: int, bucket: str) -> pd.DataFrame:
    cols = ["hashtag", "bucket", "volume", "mean_score"]
    return _frame(fetch("hashtag_sparklines", span_s, tags=list(tags), bucket=bucket), cols)


def search_hashtags(prefix: str, limit: int = 20, span_s: int | None = None) -> list[str]:
    return [r["hashtag"] for r in fetch("search_hashtags", span_s, prefix=prefix, limit=limit)]


def recent_posts(limit: int, sentiment: str | None = None, emotion: str | None = None, hashtag: str | None = None,
                 min_confidence: float | None = None) -> list[dict[str, Any]]:
    return fetch("recent_posts", limit=limit, sentiment=sentiment, emotion=emotion, hashtag=hashtag,
                 min_confidence=min_confidence)


def get_post(post_id: str) -> dict[str, Any] | None:
    return fetch("get_post", post_id=post_id)


def alerts(span_s: int, limit: int = 200) -> pd.DataFrame:
    now = datetime.now(UTC)
    since = now.replace(second=now.second - now.second % 5, microsecond=0) - timedelta(seconds=span_s)
    cols = ["id", "hashtag", "window_start", "mean_score", "baseline", "delta", "volume", "direction", "raised_at"]
    return _frame(fetch("alerts", since=since, limit=limit), cols)


def pipeline_stats(span_s: int, bucket: str = "minute") -> dict[str, Any]:
    return fetch("pipeline_stats", span_s, bucket=bucket)


def data_extent() -> dict[str, Any]:
    """First and last ``created_at`` of the stored predictions and their number (``storage.queries.data_extent``)."""
    return fetch("data_extent")


def flag_rates(span_s: int, bucket: str) -> pd.DataFrame:
    cols = ["bucket", "volume", "uncertain", "conflict", "uncertain_rate", "conflict_rate"]
    return _frame(fetch("flag_rates", span_s, bucket=bucket), cols)


def sentiment_over_time_sure(span_s: int, bucket: str, tags: tuple[str, ...] = ()) -> pd.DataFrame:
    """``sentiment_over_time`` without the posts flagged uncertain (read from predictions)."""
    cols = ["bucket", "negative", "neutral", "positive", "volume", "mean_score"]
    return _frame(fetch("sentiment_over_time", span_s, bucket=bucket, hashtags=list(tags), exclude_uncertain=True),
                  cols)


def sentiment_summary_sure(span_s: int, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    """``sentiment_summary`` without the posts flagged uncertain."""
    return fetch("sentiment_summary", span_s, hashtags=list(tags), exclude_uncertain=True)


def posts_page(limit: int, sentiment: str | None = None, emotion: str | None = None, hashtag: str | None = None,
               min_confidence: float | None = None, uncertain_only: bool = False,
               conflict_only: bool = False) -> list[dict[str, Any]]:
    """``recent_posts`` with the flag filters."""
    return fetch("recent_posts", limit=limit, sentiment=sentiment, emotion=emotion, hashtag=hashtag,
                 min_confidence=min_confidence, uncertain_only=uncertain_only, conflict_only=conflict_only)
