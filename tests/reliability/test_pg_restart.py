"""7. PostgreSQL restarted while batches commit: a private server (``private_pg``, not the machine's service) is
stopped with ``pg_ctl -m immediate`` (every backend killed mid-transaction, crash recovery on start) or ``-m fast``
and started again under a running worker. The worker must retry each failed batch, unacknowledged, and the audit
must hold. In this module ``pg_url`` (so ``stream_env`` and ``db``, the audit's engine) is the private server.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from testkit import harness
from testkit.harness import Feed, audit, count, invalid_messages, settle
from testkit.stream_helpers import wait_for

pytestmark = pytest.mark.integration

# (form, feed posts/s, restarts as (pg_ctl stop mode, seconds down), feed seconds after the last restart)
FAST = ("fast", 15, [("immediate", 0.0), ("fast", 2.0)], 2.0)
SOAK = ("soak", 25, [("immediate", 10.0), ("fast", 20.0), ("immediate", 30.0)], 30.0)


@pytest.fixture
def pg_url(private_pg: Any) -> str:
    """The private server's database (overrides the shared-server ``pg_url`` for this module)."""
    return str(private_pg.url)


def _metric(worker: Any, name: str) -> float:
    try:
        return float(worker.metric(name))
    except Exception:  # the worker's web server is not up yet
        return 0.0


@pytest.mark.parametrize("form,rate,restarts,tail_s", [pytest.param(*FAST, id="fast"),
                                                       pytest.param(*SOAK, id="soak", marks=pytest.mark.soak)])
def test_postgres_restarted(form: str, rate: float, restarts: list[tuple[str, float]], tail_s: float, request,
                            private_pg, stream_env, worker_factory, hostile_server, db) -> None:
    """Restart the worker's PostgreSQL while it writes: each restart comes when a batch is in flight."""
    rng = random.Random(f"{harness.SEED}:{request.node.name}")
    print(f"random seed {harness.SEED} ({request.node.name})")
    feed = Feed(stream_env, rate=rate, seed=rng.randrange(1000), invalid=invalid_messages(hostile_server)).start()
    worker = worker_factory(stream_env)
    wait_for(lambda: count(db) > 20, 180, lambda: f"first predictions\n{worker.tail()}", worker=worker)
    recovery: list[float] = []
    downtime: list[float] = []
    for mode, down_s in restarts:
        n = count(db)
        wait_for(lambda n=n: count(db) > n and _metric(worker, "moodstream_batches_in_flight") >= 1, 120,
                 lambda: f"a batch in flight while rows are written\n{worker.tail()}", every=0.02, worker=worker)
        retries = _metric(worker, "moodstream_db_retries_total")
        private_pg.stop(mode)
        down_at = time.monotonic()
        # down for down_s, and at least until a write failed: a quick restart could fall between two writes
        # (the pool's pre-ping reconnects silently), and then the fault would not have been met
        wait_for(lambda r=retries: _metric(worker, "moodstream_db_retries_total") > r, 120,
                 lambda: f"a failed write while PostgreSQL is down\n{worker.tail()}", worker=worker)
        time.sleep(max(0.0, down_s - (time.monotonic() - down_at)))
        private_pg.start()
        back_at = time.monotonic()
        downtime.append(back_at - down_at)
        n = wait_for(lambda: count(db), 60, "the audit engine to reconnect")  # count() is 0 while unreachable
        wait_for(lambda n=n: count(db) > n, 180, lambda m=mode: f"writes after the {m} restart\n{worker.tail()}",
                 worker=worker)
        recovery.append(time.monotonic() - back_at)
    time.sleep(tail_s)
    feed.stop()
    settle(db, stream_env, len(feed.sent_ids), len(feed.sent_invalid), 180, [worker])
    total = _metric(worker, "moodstream_db_retries_total")
    assert "retrying" in worker.tail(10**8)
    modes = " + ".join(f"-m {m}" for m, _ in restarts)
    audit(db, stream_env, f"PostgreSQL restarted ({modes})", form, feed.sent_ids, feed.sent_invalid, recovery,
          f"recovery = server up again -> first new row; down {', '.join(f'{d:.1f}' for d in downtime)} s "
          f"(stop -> started, crash recovery included); {total:g} DB retries")
