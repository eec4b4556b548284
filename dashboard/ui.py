"""Pieces every page shares: the global sidebar controls, the live fragment, the empty/down guards, safe text."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, data
from moodstream.config import get_settings

RANGES: dict[str, int] = {
    "Last 15 minutes": 15 * 60,
    "Last hour": 3600,
    "Last 6 hours": 6 * 3600,
    "Last 24 hours": 24 * 3600,
    "Last 7 days": 7 * 86400,
    "Last 30 days": 30 * 86400,
}
BUCKETS = ("minute", "hour", "day")
MAX_BUCKETS = {"minute": 24 * 60, "hour": 31 * 24, "day": 10_000}  # bigger ranges fall back to a coarser bucket
EMPTY_MESSAGE = "No posts yet — publish some with `moodstream publish --synthetic`."
SENTIMENT_COLORS = {"negative": "#d62728", "neutral": "#9e9e9e", "positive": "#2ca02c"}
BADGE_COLORS = {"negative": "red", "neutral": "gray", "positive": "green"}

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def escape_md(text: str) -> str:
    """Text safe to place in Markdown: every Markdown/HTML control character backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", text)


DEFAULT_VIEW = ("Last 24 hours", "hour")


def default_view(extent: dict[str, Any] | None, now: datetime | None = None) -> tuple[str, str]:
    """The time range and bucket a visit starts on, following the data (``storage.queries.data_extent``).

    Data younger than an hour: the last hour by minute; younger than six hours: the last six hours by minute;
    otherwise the last 24 hours by hour, unless the newest post is older than that: then the shortest range
    that still holds it (by hour up to 7 days, else by day). No data: the last 24 hours by hour.
    """
    now = now or datetime.now(UTC)
    first, last = (extent or {}).get("first"), (extent or {}).get("last")
    if first is None or last is None:
        return DEFAULT_VIEW
    age, stale = (now - first).total_seconds(), (now - last).total_seconds()
    if age <= RANGES["Last hour"]:
        return "Last hour", "minute"
    if age <= RANGES["Last 6 hours"]:
        return "Last 6 hours", "minute"
    if stale <= RANGES["Last 24 hours"]:
        return DEFAULT_VIEW
    for label, span in RANGES.items():
        if span > stale:
            return label, "hour" if span <= RANGES["Last 7 days"] else "day"
    return "Last 30 days", "day"


def _chosen() -> None:
    """The range or bucket was changed by hand: stop following the data."""
    st.session_state["view_chosen"] = True


def _follow_data() -> None:
    """Until the range or bucket is chosen by hand, start every full run on ``default_view`` of the data."""
    if st.session_state.get("view_chosen"):
        return
    try:
        extent = data.data_extent()
    except data.DashboardDataError:
        extent = None
    st.session_state["range"], st.session_state["bucket"] = default_view(extent)


def sidebar_controls() -> None:
    """Time range, bucket and live toggle, in the sidebar of every page (so their state never resets).

    The range and bucket follow the data (``default_view``) until one of them is changed by hand."""
    settings = get_settings()
    _follow_data()
    with st.sidebar:
        st.selectbox("Time range", list(RANGES), key="range", on_change=_chosen,
                     help="Until you pick one, the range follows the data: the last hour by minute while all posts "
                          "are younger than an hour.")
        st.segmented_control("Bucket", BUCKETS, required=True, key="bucket", on_change=_chosen,
                             help="Size of one bar or point of the charts (coarser when the range would hold too "
                                  "many).")
        st.toggle("Live", value=True, key="live",
                  help=f"Refresh the charts every {settings.dashboard_refresh_s:g} s without reloading the page")


def span_s() -> int:
    """The selected time range in seconds."""
    return RANGES.get(st.session_state.get("range", ""), RANGES["Last 24 hours"])


def bucket() -> str:
    """The selected bucket, coarsened when the range would give too many buckets."""
    chosen = st.session_state.get("bucket") or "hour"
    span = span_s()
    for b in BUCKETS[BUCKETS.index(chosen):]:
        if span / data.queries.BUCKET_SECONDS[b] <= MAX_BUCKETS[b]:
            return b
    return "day"


def live(body: Callable[[], None]) -> None:
    """Run ``body`` as a fragment that reruns every ``dashboard_refresh_s`` while Live is on.

    Before ``body`` it checks the database: no posts → the friendly empty message; database down → one
    ``st.error``. Either way the next refresh tries again, so the page recovers by itself.
    """
    every = get_settings().dashboard_refresh_s if st.session_state.get("live", True) else None

    @st.fragment(run_every=every)
    def _fragment() -> None:
        state, why = data.status()
        if state == "down":
            st.error(f"Cannot read the database — {why}. Retrying on the next refresh.", icon=":material/error:")
            return
        if state == "empty":
            st.info(EMPTY_MESSAGE + (f" ({why})" if why else ""), icon=":material/inbox:")
            return
        try:
            body()
        except data.DashboardDataError as e:
            st.error(f"Cannot read the database — {e}. Retrying on the next refresh.", icon=":material/error:")

    _fragment()


def pct(n: float, total: float) -> str:
    return f"{n / total:.1%}" if total else "–"


def score(x: float | None) -> str:
    return "–" if x is None else f"{x:+.3f}"


def hashtag_filter(key: str = "tags") -> tuple[str, ...]:
    """Hashtag multi-select with a prefix search; the typed text only reaches SQL as a bound parameter.

    ``?hashtag=x`` in the URL (the Alerts page links here) preselects ``x`` once.
    """
    linked = st.query_params.get("hashtag")
    if linked:
        st.session_state[key] = [linked.lstrip("#").lower()]
        del st.query_params["hashtag"]
    selected = list(st.session_state.get(key) or [])
    left, right = st.columns([1, 3])
    prefix = left.text_input("Search hashtags", key=f"{key}_search", placeholder="prefix, e.g. cat",
                             persist_state="session")
    try:
        found = data.search_hashtags(prefix, limit=50, span_s=None if prefix else span_s())
    except data.DashboardDataError:
        found = []
    options = list(dict.fromkeys([*selected, *found]))
    chosen = right.multiselect("Hashtags", options, key=key, accept_new_options=True, persist_state="session",
                               placeholder="all posts (choose hashtags to filter)")
    return tuple(dict.fromkeys(t.strip().lstrip("#").lower() for t in chosen if t.strip().lstrip("#")))


def bucket_edges(span: int, bucket: str) -> pd.DatetimeIndex:
    """Every bucket start in the last ``span`` seconds (UTC), to fill buckets that had no posts."""
    freq = {"minute": "min", "hour": "h", "day": "D"}[bucket]
    end = pd.Timestamp.now(tz="UTC")
    return pd.date_range((end - pd.Timedelta(seconds=span)).floor(freq), end.floor(freq), freq=freq)


def chart(c: Any) -> None:
    """Draw an Altair chart at the page width and a readable height (its plot height plus title, legend, axis)."""
    st.altair_chart(c, width="stretch", height=charts.display_height(c))


def describe_range() -> str:
    """The selected range in words, e.g. "the last hour"."""
    label = st.session_state.get("range") or DEFAULT_VIEW[0]
    return "the " + label[0].lower() + label[1:] if label.startswith("Last") else label


def nothing_in_range(what: str = "posts") -> None:
    """An empty state that says why and what to do: no ``what`` in the selected range, when the newest post is."""
    try:
        last = data.data_extent().get("last")
    except data.DashboardDataError:
        last = None
    hint = (f" The newest post is from {last:%Y-%m-%d %H:%M} UTC; choose a longer time range in the sidebar."
            if last is not None else "")
    st.info(f"No {what} in {describe_range()}.{hint}", icon=":material/search_off:")
