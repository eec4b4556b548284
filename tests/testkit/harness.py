"""Reliability test machinery: a live synthetic feed, the invalid extras, the end-of-test audit, the table.

Publishing, waiting and topic reading come from ``testkit.stream_helpers``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from testkit.stream_helpers import read_topic, rows, scalar, settings_from

RESULTS: list[FaultRow] = []
BAD_INPUT: list[dict[str, Any]] = []
# One seed per session drives the fault timings (test_faults) and the generated bad input (hypothesis, test_bad_input);
# MOODSTREAM_RELIABILITY_SEED=N repeats a run's choices (timing on a busy machine still varies).
SEED = int(os.environ.get("MOODSTREAM_RELIABILITY_SEED") or random.randrange(1 << 30))
META: dict[str, Any] = {"seed": SEED}


@dataclass
class FaultRow:
    """One line of the fault table."""

    fault: str
    form: str
    sent: int
    stored: int
    duplicates: int
    lost: int
    dlq_expected: int
    dlq_stored: int  # rows in the dead_letters table
    dlq_topic: int  # messages on the DLQ topic (at least once: replays may repeat one)
    trends_match: bool
    recovery_s: list[float] = field(default_factory=list)
    notes: str = ""


def render_table() -> str:
    lines = [f"seed: {SEED} (MOODSTREAM_RELIABILITY_SEED={SEED} repeats it)"]
    if META.get("classifier"):
        lines.append(f"classifier: {META['classifier']['model']} ({META['classifier']['why']})")
    head = ("fault", "form", "sent", "stored", "dup", "lost", "DLQ exp/db/topic", "trends=recount", "recovery s")
    body = [(r.fault, r.form, str(r.sent), str(r.stored), str(r.duplicates), str(r.lost),
             f"{r.dlq_expected}/{r.dlq_stored}/{r.dlq_topic}", "yes" if r.trends_match else "NO",
             ", ".join(f"{x:.1f}" for x in r.recovery_s) or "-") for r in RESULTS]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    fmt = " | ".join(f"{{:{w}}}" for w in widths)
    lines += [fmt.format(*head), "-+-".join("-" * w for w in widths)] + [fmt.format(*b) for b in body]
    for r in RESULTS:
        if r.notes:
            lines.append(f"  {r.fault}: {r.notes}")
    for b in BAD_INPUT:
        lines.append("bad input: " + ", ".join(f"{k}={v}" for k, v in b.items()))
    return "\n".join(lines)


def render_repeats() -> str:
    """Per fault and form over repeated runs (``--count N``): runs, clean runs (0 lost, 0 duplicates, DLQ table exact
    and topic complete, trends equal a recount) and the worst figures. Empty when nothing ran twice."""
    groups: dict[tuple[str, str], list[FaultRow]] = {}
    for r in RESULTS:
        groups.setdefault((r.fault, r.form), []).append(r)
    if all(len(g) < 2 for g in groups.values()):
        return ""
    head = ("fault", "form", "runs", "clean", "max lost", "max dup", "DLQ db exact", "trends=recount")
    body = [(f, form, str(len(g)), str(sum(clean(r) for r in g)), str(max(r.lost for r in g)),
             str(max(r.duplicates for r in g)), f"{sum(r.dlq_stored == r.dlq_expected for r in g)}/{len(g)}",
             f"{sum(r.trends_match for r in g)}/{len(g)}") for (f, form), g in groups.items()]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    fmt = " | ".join(f"{{:{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), "-+-".join("-" * w for w in widths)] + [fmt.format(*b) for b in body])


def clean(r: FaultRow) -> bool:
    """The audit's promise held in this run."""
    return (r.lost == 0 and r.duplicates == 0 and r.dlq_stored == r.dlq_expected and r.dlq_topic >= r.dlq_expected
            and r.trends_match)


def as_json() -> dict[str, Any]:
    return {"meta": META, "faults": [asdict(r) for r in RESULTS], "bad_input": BAD_INPUT}


# ------------------------------------------------------------------------------------------ input


def synthetic(n: int, seed: int, prefix: str | None = None) -> list[dict[str, Any]]:
    """``n`` posts of the synthetic feed (unique ids per call)."""
    from ops.producers.synthetic import SyntheticFeed

    tag = prefix or f"r{uuid.uuid4().hex[:6]}"
    return [p.post for p in SyntheticFeed(n, seed=seed, id_prefix=tag).posts()]


def invalid_messages(hostile: str | None = None, tag: str = "") -> list[bytes]:
    """A few messages every fault test sends among the valid ones; each must end on the DLQ exactly once.

    Unique bytes (``tag``), so the DLQ topic can be matched against them. With ``hostile`` (the hostile image
    server, which the fault tests' worker may fetch from) two URL posts whose fetch must time out or hit the limit.
    """
    now = datetime.now(UTC).isoformat()
    t = tag or uuid.uuid4().hex[:6]
    out = [
        f"not json {t}".encode(),
        b"\xff\xfe\x00" + t.encode(),
        json.dumps({"id": 5, "created_at": now, "text": f"id is a number {t}"}).encode(),
        json.dumps({"id": f"no-time-{t}", "text": "hi"}).encode(),
        json.dumps({"id": f"empty-{t}", "created_at": now}).encode(),
        json.dumps({"id": f"not-an-image-{t}", "created_at": now,
                    "image": {"b64": base64.b64encode(b"this is not an image " + t.encode()).decode()}}).encode(),
    ]
    if hostile:
        out += [json.dumps({"id": f"slow-{t}", "created_at": now, "image": {"url": f"{hostile}/slow"}}).encode(),
                json.dumps({"id": f"endless-{t}", "created_at": now, "image": {"url": f"{hostile}/endless"}}).encode()]
    return out


class Feed:
    """The synthetic feed published live at ``rate`` posts/s from a thread until ``stop()`` (or ``limit`` posts).

    ``invalid`` messages are mixed in at random positions among the first posts. ``sent_ids`` / ``sent_invalid``
    hold what the broker acknowledged.
    """

    def __init__(self, env: dict[str, str], *, rate: float, seed: int, invalid: list[bytes] | None = None,
                 limit: int = 100_000) -> None:
        self.env, self.rate, self.seed, self.limit = env, rate, seed, limit
        self.invalid = list(invalid or [])
        self.prefix = f"f{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._yielded_ids: list[str] = []
        self._yielded_invalid: list[bytes] = []
        self.sent_ids: list[str] = []
        self.sent_invalid: list[bytes] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _items(self) -> Any:
        from ops.producers.synthetic import SyntheticFeed

        rng = random.Random(self.seed)
        slots = {rng.randrange(5, 60): m for m in self.invalid}
        extra = [m for m in self.invalid if m not in slots.values()]
        for i, sp in enumerate(SyntheticFeed(self.limit, seed=self.seed, id_prefix=self.prefix).posts()):
            if self._stop.is_set():
                return
            if i in slots:
                self._yielded_invalid.append(slots[i])
                yield slots[i]
            while extra and i >= 60:
                m = extra.pop()
                self._yielded_invalid.append(m)
                yield m
            post = {**sp.post, "created_at": datetime.now(UTC).isoformat()}
            self._yielded_ids.append(post["id"])
            yield post

    def _run(self) -> None:
        from moodstream.kafka import aiokafka_config
        from ops.producers.publisher import publish

        s = settings_from(self.env)
        try:
            asyncio.run(publish(self._items(), aiokafka_config(s), s.topic_posts, rate=self.rate, progress=False))
            self.sent_ids, self.sent_invalid = list(self._yielded_ids), list(self._yielded_invalid)
        except BaseException as e:  # reported by join()
            self.error = e

    def start(self) -> Feed:
        self._thread.start()
        return self

    @property
    def published(self) -> int:
        return len(self._yielded_ids)

    def stop(self) -> Feed:
        self._stop.set()
        self._thread.join(60)
        if self.error is not None:
            raise self.error
        return self


# ------------------------------------------------------------------------------------------ audit


def count(db: Any) -> int:
    return scalar(db, "select count(*) from predictions") or 0


def wait_growth(db: Any, since: int, timeout: float, worker: Any = None) -> float:
    """Seconds until the stored count exceeds ``since`` (the recovery time after a fault ends)."""
    from testkit.stream_helpers import wait_for

    t0 = time.monotonic()
    wait_for(lambda: count(db) > since, timeout, lambda: f"processing to resume (stored {count(db)})"
             + (f"\n{worker.tail()}" if worker else ""), worker=worker)
    return time.monotonic() - t0


def dlq_topic_messages(env: dict[str, str]) -> list[dict[str, Any]]:
    """Every dead letter on the test's DLQ topic (decoded)."""
    msgs = read_topic(env["MOODSTREAM_KAFKA_BROKERS"], env["MOODSTREAM_TOPIC_DLQ"], 10**9, timeout=3.0)
    return [json.loads(m.value) for m in msgs]


def settle(db: Any, env: dict[str, str], valid: int, invalid: int, timeout: float, workers: list[Any]) -> None:
    """Wait until every message has a fate: stored or dead-lettered (fails if every worker died).

    The deadline grows with the backlog (at least 1 s per 8 posts): the real models on a busy 2-core machine
    drain a feed slower than the stand-in classifier did.
    """
    deadline = time.monotonic() + max(timeout, (valid + invalid) / 8)
    while True:
        n, d = count(db), scalar(db, "select count(*) from dead_letters") or 0
        if n + d >= valid + invalid and d >= invalid:
            time.sleep(1.0)  # let a replayed batch land: it must not add rows
            return
        if workers and not any(w.alive() for w in workers):
            pytest.fail("every worker exited\n" + "\n".join(w.tail() for w in workers))
        if time.monotonic() > deadline:
            tails = "\n".join(w.tail(3000) for w in workers)
            pytest.fail(f"timed out: {n}/{valid} predictions, {d}/{invalid} dead letters\n"
                        f"{where_the_missing_are(db, env)}\n{tails}")
        time.sleep(0.3)


def where_the_missing_are(db: Any, env: dict[str, str]) -> str:
    """Per partition of the posts topic: high watermark, the group's committed offset, and the offsets of the
    messages with no fate yet (neither a stored prediction nor a dead letter) -- which tells a commit past
    unprocessed messages from a partition nobody fetches."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from sqlalchemy import text

    try:
        msgs = read_topic(env["MOODSTREAM_KAFKA_BROKERS"], env["MOODSTREAM_TOPIC_POSTS"], 10**9, timeout=5.0)
        with db.connect() as c:
            stored = {r[0] for r in c.execute(text("select post_id from predictions"))}
            dead = {":".join(r[0].split(":")[:3]) for r in c.execute(text("select source_key from dead_letters"))}

        async def committed() -> dict[int, Any]:
            cons = AIOKafkaConsumer(bootstrap_servers=env["MOODSTREAM_KAFKA_BROKERS"],
                                    group_id=env["MOODSTREAM_CONSUMER_GROUP"], enable_auto_commit=False)
            await cons.start()
            try:
                parts = range(int(env.get("MOODSTREAM_KAFKA_PARTITIONS", "4")))
                return {pt: await cons.committed(TopicPartition(env["MOODSTREAM_TOPIC_POSTS"], pt)) for pt in parts}
            finally:
                await cons.stop()

        committed_by = asyncio.run(committed())
        lines = []
        for pt in sorted(committed_by):
            own = [m for m in msgs if m.partition == pt]
            missing = []
            for m in own:
                key = m.key.decode(errors="replace") if m.key else ""
                if key not in stored and f"{m.topic}:{m.partition}:{m.offset}" not in dead:
                    missing.append(m.offset)
            span = f"{missing[0]}..{missing[-1]} ({len(missing)})" if missing else "none"
            hw = max((m.offset for m in own), default=-1) + 1
            lines.append(f"  partition {pt}: high watermark {hw}, committed {committed_by[pt]}, no fate: {span}")
        return "where the missing messages are:\n" + "\n".join(lines)
    except Exception as e:  # a diagnosis must never hide the failure it explains
        return f"(no diagnosis: {e!r})"


def audit(db: Any, env: dict[str, str], fault: str, form: str, valid_ids: list[str], invalid: list[bytes],
          recovery: list[float], notes: str = "") -> FaultRow:
    """Record the outcome (a table row) and assert the guarantees: each valid post once, trends = recount,
    the DLQ holds exactly the invalid messages (each with a reason)."""
    from storage.repository import duplicate_post_ids
    from storage.trends import recount_trend_windows, stored_trend_windows

    stored = {r[0] for r in rows(db, "select post_id from predictions")}
    dups = duplicate_post_ids(db)
    want = set(valid_ids)
    lost = want - stored
    extra = stored - want
    windows, recount = stored_trend_windows(db, 60), recount_trend_windows(db, 60)
    trends_ok = len(windows) == len(recount) > 0 and all(
        abs(a["mean_score"] - b["mean_score"]) < 1e-5 and {**a, "mean_score": 0} == {**b, "mean_score": 0}
        for a, b in zip(windows, recount, strict=True))
    letters = rows(db, "select source_key, stage, reason from dead_letters")
    topic = dlq_topic_messages(env)
    row = FaultRow(fault=fault, form=form, sent=len(valid_ids) + len(invalid), stored=len(stored),
                   duplicates=len(dups), lost=len(lost), dlq_expected=len(invalid), dlq_stored=len(letters),
                   dlq_topic=len(topic), trends_match=trends_ok, recovery_s=[round(r, 2) for r in recovery],
                   notes=notes)
    RESULTS.append(row)

    assert not lost, f"lost {len(lost)} posts, e.g. {sorted(lost)[:5]}"
    assert not extra, f"unexpected rows {sorted(extra)[:5]}"
    assert dups == []
    assert trends_ok, "stored trend windows differ from a recount"
    # the DLQ: the dead_letters table holds each invalid message once (keyed by its offset), with a reason ...
    assert len(letters) == len(invalid), [tuple(r) for r in letters]
    assert all(r[2] for r in letters)
    # ... and the DLQ topic holds exactly the invalid messages' bytes (a replay may repeat one: at least once)
    by_source: dict[str, bytes] = {}
    for m in topic:
        assert m["reason"]
        by_source[f"{m['topic']}:{m['partition']}:{m['offset']}"] = base64.b64decode(m["raw_b64"])
    assert Counter(by_source.values()) == Counter(invalid)
    assert set(by_source) == {r[0].rsplit(":", 1)[0] for r in letters}  # source_key = topic:part:offset:digest
    return row
