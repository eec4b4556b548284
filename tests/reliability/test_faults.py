"""Faults a deployment meets (issue 9): the synthetic feed + a few invalid messages through real worker subprocesses.

Each test ends with ``harness.audit``: every valid post stored exactly once, stored trend windows equal a recount,
the DLQ (table and topic) holds exactly the invalid messages. Each test adds a row to the session's fault table.
Fast forms run in ``make test``; ``-m soak`` runs the long forms.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from typing import Any

import pytest

from testkit import harness
from testkit.harness import Feed, audit, count, invalid_messages, settle, synthetic
from testkit.stream_helpers import publish, wait_for

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Form:
    name: str
    rate: float  # posts/s of the live feed
    run_s: float  # feed time after the last fault
    kill_gap_s: tuple[float, float]  # random wait between SIGKILLs (after processing resumed)
    kills: int  # SIGKILLs of the single worker in test 1
    pg_outage_s: float
    redis_outage_s: float
    broker_posts: tuple[int, int]  # before / after the broker restart


FAST = Form("fast", rate=15, run_s=2, kill_gap_s=(0.3, 2.5), kills=3, pg_outage_s=20, redis_outage_s=4,
            broker_posts=(60, 200))
# The soak feed rate is near what the real in-process models sustain on the shared 2-core machine (~15-25 posts/s):
# at 80 posts/s the backlog took far longer to drain than the faults took to happen. The soak form is longer and
# harder in other ways: more kills spread over minutes, longer outages, more posts.
SOAK = Form("soak", rate=25, run_s=30, kill_gap_s=(3, 20), kills=5, pg_outage_s=45, redis_outage_s=30,
            broker_posts=(600, 2400))
FORMS = [pytest.param(FAST, id="fast"), pytest.param(SOAK, id="soak", marks=pytest.mark.soak)]
SEED = harness.SEED


def _rng(request: pytest.FixtureRequest) -> random.Random:
    print(f"random seed {SEED} ({request.node.name})")
    return random.Random(f"{SEED}:{request.node.name}")


def _in_flight(worker: Any) -> float:
    try:
        return worker.metric("moodstream_batches_in_flight")
    except Exception:  # the worker's web server is not up yet
        return 0.0


def _persisted(worker: Any) -> float:
    try:
        return worker.metric("moodstream_persisted_total")
    except Exception:
        return 0.0


def _sigkill_loop(form: Form, request: pytest.FixtureRequest, env: dict[str, str], worker_factory: Any,
                  hostile_server: str, db: Any, *, rate: float, in_flight: int, fault: str) -> None:
    """SIGKILL the worker ``form.kills`` times under a live feed, restarting it each time, then audit. With
    ``in_flight`` > 1 each kill waits until the worker's gauge shows that many batches in flight."""
    rng = _rng(request)
    feed = Feed(env, rate=rate, seed=rng.randrange(1000), invalid=invalid_messages(hostile_server))
    feed.start()
    worker = worker_factory(env)
    wait_for(lambda: count(db) > 0, 90, lambda: f"first predictions\n{worker.tail()}", worker=worker)
    recovery = []
    for _ in range(form.kills):
        time.sleep(rng.uniform(*form.kill_gap_s))
        if in_flight > 1:
            wait_for(lambda w=worker: _in_flight(w) >= in_flight, 90,
                     lambda w=worker: f"{in_flight} batches in flight\n{w.tail()}", every=0.01, worker=worker)
        worker.kill()
        killed_at, n = time.monotonic(), count(db)
        worker = worker_factory(env)
        wait_for(lambda n=n: count(db) > n, 90, lambda w=worker: f"processing after restart\n{w.tail()}",
                 worker=worker)
        recovery.append(time.monotonic() - killed_at)
    time.sleep(form.run_s)
    feed.stop()
    settle(db, env, len(feed.sent_ids), len(feed.sent_invalid), 90, [worker])
    audit(db, env, fault, form.name, feed.sent_ids, feed.sent_invalid, recovery,
          "recovery = kill -> first new row (includes the restart)")


@pytest.mark.parametrize("form", FORMS)
def test_worker_sigkilled_and_restarted(form: Form, request, stream_env, worker_factory, hostile_server, db) -> None:
    """1. SIGKILL the worker at random moments mid-stream (3 in the fast form, 5 in the soak); restart it each time."""
    _sigkill_loop(form, request, stream_env, worker_factory, hostile_server, db, rate=form.rate, in_flight=0,
                  fault=f"worker SIGKILLed x{form.kills}, restarted")


@pytest.mark.parametrize("form", FORMS)
def test_two_workers_one_killed_rebalance(form: Form, request, stream_env, worker_factory, hostile_server,
                                          db) -> None:
    """2. Two workers share the group; one is SIGKILLed and its partitions move to the other."""
    from ops.localhost import free_port

    rng = _rng(request)
    feed = Feed(stream_env, rate=form.rate, seed=rng.randrange(1000), invalid=invalid_messages(hostile_server))
    a = worker_factory(stream_env)
    b = worker_factory({**stream_env, "MOODSTREAM_WORKER_WEB_PORT": str(free_port())})
    feed.start()

    wait_for(lambda: _persisted(a) > 0 and _persisted(b) > 0, 120,
             lambda: f"both workers to own partitions and store posts\n{a.tail()}\n{b.tail()}", worker=a)
    time.sleep(rng.uniform(*form.kill_gap_s))

    def assignments() -> int:
        return len(re.findall("_on_partitions_assigned", a.tail(10**8)))

    before = assignments()
    b.kill()
    killed_at = time.monotonic()
    wait_for(lambda: assignments() > before, 90, lambda: f"the survivor to take the partitions\n{a.tail()}", worker=a)
    rebalance_s = time.monotonic() - killed_at
    time.sleep(form.run_s)
    feed.stop()
    settle(db, stream_env, len(feed.sent_ids), len(feed.sent_invalid), 90, [a])
    audit(db, stream_env, "2 workers, one SIGKILLed (rebalance)", form.name, feed.sent_ids, feed.sent_invalid,
          [rebalance_s], "recovery = kill -> survivor reassigned")


@pytest.mark.parametrize("form", FORMS)
def test_worker_sigkilled_with_two_batches_in_flight(form: Form, request, stream_env, worker_factory, hostile_server,
                                                     db) -> None:
    """1b. SIGKILL the worker each time its gauge shows two batches in flight (the default worker_concurrency 2), so
    the kill lands while one batch may be done and the other not: no commit may pass the unfinished one."""
    _sigkill_loop(form, request, stream_env, worker_factory, hostile_server, db, rate=form.rate * 2, in_flight=2,
                  fault=f"worker SIGKILLed x{form.kills} with 2 batches in flight")


@pytest.mark.parametrize("form", FORMS)
def test_scaled_one_to_three_and_back(form: Form, request, stream_env, worker_factory, hostile_server, db) -> None:
    """2b. Under load, one worker becomes three (two rebalances while batches are in flight), then the two new ones
    are stopped as a scale-down does (SIGTERM) and the first takes every partition back."""
    from ops.localhost import free_port

    rng = _rng(request)
    feed = Feed(stream_env, rate=form.rate, seed=rng.randrange(1000), invalid=invalid_messages(hostile_server))
    feed.start()
    a = worker_factory(stream_env)
    wait_for(lambda: count(db) > 0, 90, lambda: f"first predictions\n{a.tail()}", worker=a)
    started = time.monotonic()
    extra = [worker_factory({**stream_env, "MOODSTREAM_WORKER_WEB_PORT": str(free_port())}) for _ in range(2)]
    wait_for(lambda: all(_persisted(w) > 0 for w in extra), 120,
             lambda: "the new workers to own partitions and store posts\n" + "\n".join(w.tail() for w in extra),
             worker=a)
    scaled_up_s = time.monotonic() - started
    time.sleep(rng.uniform(*form.kill_gap_s))
    for w in extra:
        w.stop()
    stopped_at, n = time.monotonic(), count(db)
    wait_for(lambda: count(db) > n + 5, 90, lambda: f"the first worker to go on alone\n{a.tail()}", worker=a)
    scaled_down_s = time.monotonic() - stopped_at
    time.sleep(form.run_s)
    feed.stop()
    settle(db, stream_env, len(feed.sent_ids), len(feed.sent_invalid), 90, [a])
    audit(db, stream_env, "1 -> 3 -> 1 workers under load", form.name, feed.sent_ids, feed.sent_invalid,
          [scaled_up_s, scaled_down_s], "recovery = scale-up -> new workers storing; scale-down -> rows again")


@pytest.mark.parametrize("form", FORMS)
def test_postgres_unreachable(form: Form, request, stream_env, worker_factory, proxy_factory, hostile_server,
                              db, pg_url) -> None:
    """4. PostgreSQL unreachable for 20 s mid-stream (a TCP proxy drops every connection), then back."""
    from sqlalchemy.engine import make_url

    rng = _rng(request)
    url = make_url(pg_url)
    proxy = proxy_factory(url.host or "127.0.0.1", url.port or 5432)
    env = {**stream_env, "MOODSTREAM_DATABASE_URL": url.set(host="127.0.0.1", port=proxy.port)
           .render_as_string(hide_password=False)}
    feed = Feed(env, rate=form.rate, seed=rng.randrange(1000), invalid=invalid_messages(hostile_server))
    worker = worker_factory(env)
    feed.start()
    wait_for(lambda: count(db) > 20, 90, lambda: f"first predictions\n{worker.tail()}", worker=worker)
    proxy.stop()
    during0 = count(db)
    time.sleep(form.pg_outage_s)
    assert worker.alive(), worker.tail()
    assert count(db) == during0
    proxy.start()
    back_at = time.monotonic()
    wait_for(lambda: count(db) > during0, 90, lambda: f"writes after the outage\n{worker.tail()}", worker=worker)
    recovery = time.monotonic() - back_at
    time.sleep(form.run_s)
    feed.stop()
    settle(db, env, len(feed.sent_ids), len(feed.sent_invalid), 90, [worker])
    retries = worker.metric("moodstream_db_retries_total")
    assert retries > 0
    audit(db, env, f"PostgreSQL unreachable {form.pg_outage_s:g} s", form.name, feed.sent_ids, feed.sent_invalid,
          [recovery], f"recovery = proxy back -> first new row; {retries:g} DB retries")


@pytest.mark.parametrize("form", FORMS)
def test_redis_stopped_and_started(form: Form, request, stream_env, worker_factory, private_redis, hostile_server,
                                   db) -> None:
    """5. The Redis cache (a private redis-server) killed mid-stream, started again later on the same port."""
    import redis

    rng = _rng(request)
    env = {**stream_env, "MOODSTREAM_REDIS_URL": f"redis://127.0.0.1:{private_redis.port}/0"}
    feed = Feed(env, rate=form.rate, seed=rng.randrange(1000), invalid=invalid_messages(hostile_server))
    worker = worker_factory(env)
    feed.start()
    r = redis.Redis(port=private_redis.port)
    wait_for(lambda: count(db) > 20 and r.dbsize() > 0, 90, lambda: f"first cached predictions\n{worker.tail()}",
             worker=worker)
    private_redis.stop()
    n = count(db)
    wait_for(lambda: count(db) > n + 10, 60, lambda: f"processing with Redis down\n{worker.tail()}", worker=worker)
    time.sleep(form.redis_outage_s)
    private_redis.start()
    back_at = time.monotonic()
    wait_for(lambda: r.dbsize() > 0, 60, lambda: f"the cache to be written again\n{worker.tail()}", worker=worker)
    recovery = time.monotonic() - back_at
    time.sleep(form.run_s)
    feed.stop()
    settle(db, env, len(feed.sent_ids), len(feed.sent_invalid), 90, [worker])
    assert "cache unavailable" in worker.tail(10**8)
    audit(db, env, "Redis killed, restarted", form.name, feed.sent_ids, feed.sent_invalid, [recovery],
          "processing never stopped; recovery = Redis back -> cache written again (retry after 10 s)")


GAP_BROKER = ("KNOWN GAP (docs/RELIABILITY.md #1): posts published before the worker re-joined the restarted broker "
              "can be skipped (it fetches at its pre-restart positions in the new, empty log)")


@pytest.mark.parametrize("form,publish_at", [
    pytest.param(FAST, "after-rejoin", id="fast"),
    pytest.param(SOAK, "after-rejoin", id="soak", marks=pytest.mark.soak),
    pytest.param(FAST, "immediately", id="fast-publish-immediately",
                 marks=[pytest.mark.soak, pytest.mark.xfail(strict=False, reason=GAP_BROKER)]),
])
def test_broker_restarted(form: Form, publish_at: str, request, stream_env, worker_factory, hostile_server, db,
                          tmp_path) -> None:
    """6. The (in-memory) Tansu broker restarted under a running worker; the operator recreates the topics.

    Lost at the broker: every topic, every message not yet consumed, and the group's committed offsets. The worker
    must reconnect by itself and process every post published after the restart.
    """
    from ops.broker import EmbeddedBroker
    from streams.topics import create_topics

    rng = _rng(request)
    brk = EmbeddedBroker(log_path=tmp_path / "tansu.log").start()
    try:
        env = {**stream_env, "MOODSTREAM_KAFKA_BROKERS": brk.bootstrap}
        topics = [v for k, v in env.items() if k.startswith("MOODSTREAM_TOPIC_")]
        create_topics(brk.bootstrap, topics, int(env["MOODSTREAM_KAFKA_PARTITIONS"]))
        first = synthetic(form.broker_posts[0], seed=rng.randrange(1000))
        worker = worker_factory(env)
        publish(env, first)
        wait_for(lambda: count(db) == len(first), max(90, len(first) / 5), lambda: f"the first posts\n{worker.tail()}",
                 worker=worker)
        time.sleep(2.0)  # let the worker commit its offsets (they are lost with the broker anyway)

        brk.close()
        time.sleep(3.0)
        assert worker.alive(), worker.tail()
        rejoins = len(re.findall("_on_partitions_assigned", worker.tail(10**8)))
        brk.start()
        create_topics(brk.bootstrap, topics, int(env["MOODSTREAM_KAFKA_PARTITIONS"]))
        up_at = time.monotonic()
        if publish_at == "after-rejoin":
            wait_for(lambda: len(re.findall("_on_partitions_assigned", worker.tail(10**8))) > rejoins, 60,
                     "the worker to rejoin the group", worker=worker)
        second = synthetic(form.broker_posts[1], seed=rng.randrange(1000))
        invalid = invalid_messages(hostile_server)
        publish(env, [*second[:10], *invalid, *second[10:]])
        wait_for(lambda: count(db) > len(first), 120, lambda: f"posts after the restart\n{worker.tail()}",
                 worker=worker)
        recovery = time.monotonic() - up_at
        settle(db, env, len(first) + len(second), len(invalid), 120, [worker])
        audit(db, env, f"broker restarted (memory lost), publish {publish_at}", form.name,
              [p["id"] for p in first + second], invalid, [recovery],
              "recovery = broker up + topics recreated -> first new row; no operator action on the worker")
    finally:
        brk.close()
