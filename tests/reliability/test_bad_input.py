"""Bad input (issue 9): every case is classified or dead-lettered with a reason; the worker never dies; bounded memory.

High volume goes straight through ``parse_post``, the thumbnailer and the URL fetcher (in-process); one real worker
subprocess takes a generated batch plus every named hostile case and each message's fate is checked.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings

from testkit import harness, hostile
from testkit.stream_helpers import publish, read_topic, rows, wait_for

pytestmark = pytest.mark.integration

FAST_CASES, SOAK_CASES = 200, 10_000
WORKER_FAST, WORKER_SOAK = 200, 10_000
HYPO = {"deadline": None, "database": None, "suppress_health_check": list(HealthCheck)}


def _fetch_refused(url: str) -> str:
    """The fetcher's reason for refusing ``url`` (production settings: no private addresses)."""
    from moodstream.config import Settings
    from streams.fetch import FetchError, ImageFetcher

    async def go() -> str:
        f = ImageFetcher(Settings(_env_file=None, image_fetch_timeout_s=2))
        try:
            await f.fetch(url)
        except FetchError as e:
            return e.reason
        finally:
            await f.close()
        return ""

    return asyncio.run(go())


def check_in_process(raw: bytes) -> str:
    """One raw message through validation, and its image through the thumbnailer or its URL through the fetcher."""
    from moodstream.schema import PostError, parse_post
    from streams.thumbs import thumbnail

    try:
        post = parse_post(raw)
    except PostError as e:
        assert e.reason and len(e.reason) < 2000
        return "rejected"
    if post.image is not None and post.image.b64 is not None:
        data = post.image.data()
        t0 = time.perf_counter()
        thumb = thumbnail(data)
        assert thumb is None or thumb[:2] == b"\xff\xd8"
        assert time.perf_counter() - t0 < 20, "thumbnailing took too long"
    elif post.image is not None and post.image.url is not None and post.image.url.startswith("http"):
        reason = _fetch_refused(post.image.url)
        assert reason, f"{post.image.url} was fetched"
    return "valid"


def _record(kind: str, counts: Counter) -> None:
    harness.BAD_INPUT.append({"test": kind, "cases": sum(counts.values()), **dict(counts)})


def _in_process(n: int) -> None:
    counts: Counter = Counter()

    print(f"random seed {harness.SEED} (hypothesis, {n} in-process cases)")

    @seed(harness.SEED)
    @settings(max_examples=n, **HYPO)
    @given(raw=hostile.raw_messages())
    def run(raw: bytes) -> None:
        counts[check_in_process(raw)] += 1

    run()
    _record(f"in-process parse/thumbnail/fetch ({n} generated)", counts)
    assert sum(counts.values()) >= n * 0.9


def test_in_process_generated_fast() -> None:
    _in_process(FAST_CASES)


@pytest.mark.soak
def test_in_process_generated_soak() -> None:
    _in_process(SOAK_CASES)


@pytest.mark.parametrize("name", sorted(hostile.explicit_cases()))
def test_in_process_named_case(name: str) -> None:
    check_in_process(hostile.explicit_cases()[name])


@pytest.mark.parametrize("url", hostile.internal_urls())
def test_internal_urls_refused(url: str) -> None:
    reason = _fetch_refused(url)
    assert any(w in reason for w in ("refused", "does not resolve", "not allowed")), reason


def test_dead_letter_of_the_largest_message_fits_the_dlq() -> None:
    """A message just under the input limit (16 MiB) must still make a publishable dead letter (it used to wedge
    the worker: MessageSizeTooLargeError retried forever)."""
    from moodstream.schema import MAX_RAW_BYTES
    from streams.dlq import dead_letter, dlq_message
    from streams.outputs import max_message_bytes
    from streams.records import RawRecord

    limit = max_message_bytes(10 * 1024 * 1024)
    for size in (1000, 7 * 1024 * 1024, 15 * 1024 * 1024, MAX_RAW_BYTES + 1):
        raw = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        letter = dead_letter(RawRecord(raw, "posts", 3, 17), "not valid JSON")
        _, value = dlq_message(letter, limit)
        assert len(value) < limit - 1024
        kept = base64.b64decode(json.loads(value)["raw_b64"])
        assert raw.startswith(kept) and (kept == raw) == (size < 7.5 * 1024 * 1024)
        assert (kept == raw) != ("cut to its first" in json.loads(value)["reason"])


def test_dead_letter_reason_with_nul_is_storable(pg_url: str) -> None:
    """Found by the soak run of ``test_worker_absorbs_bad_input_soak``: a JSON object with a NUL in an unknown
    field name. The post is invalid, so it must be dead-lettered; its dead letter must be storable."""
    from moodstream.schema import PostError, parse_post
    from storage.engine import make_engine
    from storage.migrate import upgrade
    from storage.repository import insert_dead_letters
    from streams.dlq import dead_letter
    from streams.records import RawRecord

    raw = b'{"id": "nul-key", "created_at": "2026-01-01T00:00:00Z", "text": "hi", "a\\u0000b": 1}'
    with pytest.raises(PostError) as err:
        parse_post(raw)
    upgrade(pg_url)
    eng = make_engine(pg_url)
    try:
        letter = dead_letter(RawRecord(raw, "posts", 0, 1), err.value.reason)
        assert "\x00" not in letter.reason and "\\x00" in letter.reason  # shown, not dropped
        assert insert_dead_letters(eng, [letter]) == 1
        raw_reason = letter.model_copy(update={"reason": err.value.reason, "offset": 2})  # storage guards too
        assert insert_dead_letters(eng, [raw_reason]) == 1
    finally:
        eng.dispose()


# ------------------------------------------------------------------------------------------ real worker


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in kB, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def _generate(n: int, hostile_url: str) -> list[bytes]:
    out: list[bytes] = []

    print(f"random seed {harness.SEED} (hypothesis, {n} cases for the worker)")

    @seed(harness.SEED)
    @settings(max_examples=n, phases=[Phase.generate], **HYPO)
    @given(raw=hostile.raw_messages(hostile_url))
    def collect(raw: bytes) -> None:
        out.append(raw)

    collect()
    # hypothesis repeats values (uuids included) across examples: give every generated post id its own number
    return [re.sub(rb"h-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", f"h-{i:06d}".encode(), raw)
            for i, raw in enumerate(out)]


def _worker_run(n: int, stream_env: dict[str, str], worker_factory: Any, hostile_server: str, db: Any) -> None:
    from moodstream.schema import PostError, parse_post

    env = {**stream_env, "MOODSTREAM_IMAGE_ALLOW_PRIVATE_URLS": "false"}  # production default
    cases = list(hostile.explicit_cases(hostile_server).values()) + _generate(n, hostile_server)
    worker = worker_factory(env)
    warm = harness.synthetic(40, seed=7)
    publish(env, warm)
    wait_for(lambda: harness.count(db) == len(warm), 120, lambda: f"warm-up\n{worker.tail()}", worker=worker)
    rss0, _ = rss_kb(worker.proc.pid)

    expect_dead: Counter = Counter()  # raw -> times it must be on the DLQ
    maybe: dict[str, bytes] = {}  # valid Post v1: classified (stored) or dead-lettered later (fetch/decode)
    for raw in cases:
        try:
            maybe[parse_post(raw).id] = raw
        except PostError:
            expect_dead[raw] += 1
    t0 = time.monotonic()
    publish(env, cases)

    def fates() -> tuple[set[str], int, set[str]]:
        stored = {r[0] for r in rows(db, "select post_id from predictions")}
        letters = rows(db, "select stage, post_id from dead_letters")
        return stored, sum(1 for s, _ in letters if s == "validate"), {p for s, p in letters if s != "validate"}

    def done() -> bool:
        stored, n_invalid, later = fates()
        return n_invalid >= sum(expect_dead.values()) and all(i in stored or i in later for i in maybe)

    def progress() -> str:
        stored, n_invalid, later = fates()
        missing = [i for i in maybe if i not in stored and i not in later]
        return (f"{n_invalid}/{sum(expect_dead.values())} invalid dead-lettered, {len(missing)} valid without a "
                f"fate (e.g. {missing[:3]})\n{worker.tail(6000)}")

    wait_for(done, 300, progress, every=1.0, worker=worker)
    elapsed = time.monotonic() - t0
    assert worker.alive(), worker.tail()
    rss1, hwm = rss_kb(worker.proc.pid)

    stored, _, later = fates()
    topic = [json.loads(m.value) for m in read_topic(env["MOODSTREAM_KAFKA_BROKERS"], env["MOODSTREAM_TOPIC_DLQ"],
                                                     10**9, timeout=5.0)]
    by_source = {f"{m['topic']}:{m['partition']}:{m['offset']}": m for m in topic}
    assert all(m["reason"] for m in by_source.values())
    dead_raw: Counter = Counter()
    for m in by_source.values():
        if m["stage"] != "validate":
            continue
        raw = base64.b64decode(m["raw_b64"])
        if "raw value cut" in m["reason"]:  # too big for the DLQ topic: a prefix is kept (streams.dlq.fit_raw)
            raw = next(r for r in expect_dead if len(r) > len(raw) and r.startswith(raw))
        dead_raw[raw] += 1
    assert dead_raw == expect_dead
    for pid, raw in maybe.items():  # classified or dead-lettered, never both
        assert (pid in stored) != (pid in later), raw[:200]
    refused = [m for m in by_source.values() if m["stage"] == "fetch"]
    why = ("refused", "resolve", "not allowed")
    assert all(any(w in m["reason"] for w in why) for m in refused), \
        [m["reason"] for m in refused if not any(w in m["reason"] for w in why)]
    stages = Counter(m["stage"] for m in by_source.values())
    growth_mb = (rss1 - rss0) / 1024
    harness.BAD_INPUT.append({
        "test": f"real worker ({len(cases)} cases: {n} generated + named)", "classified": len(stored) - len(warm),
        **{f"dead:{k}": v for k, v in sorted(stages.items())}, "seconds": round(elapsed, 1),
        "rss_before_mb": round(rss0 / 1024), "rss_after_mb": round(rss1 / 1024), "rss_peak_mb": round(hwm / 1024),
        "persist_reasons": sorted({m["reason"][:120] for m in by_source.values() if m["stage"] == "persist"}),
    })
    assert growth_mb < 600, f"worker RSS grew by {growth_mb:.0f} MB"


def test_worker_absorbs_bad_input_fast(stream_env, worker_factory, hostile_server, db) -> None:
    _worker_run(WORKER_FAST, stream_env, worker_factory, hostile_server, db)


@pytest.mark.soak
def test_worker_absorbs_bad_input_soak(stream_env, worker_factory, hostile_server, db) -> None:
    _worker_run(WORKER_SOAK, stream_env, worker_factory, hostile_server, db)
