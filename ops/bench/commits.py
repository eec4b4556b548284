"""When each post's row is committed: a PostgreSQL trigger NOTIFYs the post id, delivered at COMMIT.

``install_trigger`` adds the trigger to the benchmark's own database; ``CommitLog`` listens and records, per post id,
when it was sent and when its prediction row was first committed, on one clock (this process's ``time.time``).
Both the moodstream worker and the naive peer are timed this way, so their latencies compare like for like.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np

CHANNEL = "bench_commits"

TRIGGER_SQL = [
    f"""CREATE OR REPLACE FUNCTION bench_notify_commit() RETURNS trigger AS $$
        BEGIN PERFORM pg_notify('{CHANNEL}', NEW.post_id); RETURN NULL; END $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS bench_commit ON predictions",
    """CREATE TRIGGER bench_commit AFTER INSERT OR UPDATE ON predictions
        FOR EACH ROW EXECUTE FUNCTION bench_notify_commit()""",
]


def install_trigger(dsn: str) -> None:
    """Create the NOTIFY trigger on ``predictions`` (the schema must exist)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for sql in TRIGGER_SQL:
            conn.execute(sql)


class CommitLog:
    """Send and commit times by post id; ``wait_change`` wakes a publisher that keeps a bounded backlog."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.committed: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    async def start(self, dsn: str) -> CommitLog:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        await conn.execute(f"LISTEN {CHANNEL}")
        self._task = asyncio.create_task(self._listen(conn))
        return self

    async def _listen(self, conn: object) -> None:
        try:
            async for note in conn.notifies():  # type: ignore[attr-defined]
                now = time.time()
                pid = note.payload
                if pid in self.sent and pid not in self.committed:
                    self.committed[pid] = now
                    self._changed.set()
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # reported by the row that waits on it
            self.error = e
            self._changed.set()
        finally:
            with contextlib.suppress(Exception):
                await conn.close()  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def mark_sent(self, pid: str) -> None:
        self.sent[pid] = time.time()

    def reset(self) -> None:
        """Forget everything (a new row)."""
        self.sent.clear()
        self.committed.clear()

    @property
    def outstanding(self) -> int:
        return len(self.sent) - len(self.committed)

    async def wait_change(self, timeout: float = 1.0) -> None:
        if self.error is not None:
            raise RuntimeError(f"the commit listener failed: {self.error}") from self.error
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def first_commit(self) -> float | None:
        return min(self.committed.values()) if self.committed else None

    def commits_between(self, t0: float, t1: float) -> int:
        return sum(1 for t in self.committed.values() if t0 <= t < t1)

    def sent_between(self, t0: float, t1: float) -> list[str]:
        return [pid for pid, t in self.sent.items() if t0 <= t < t1]

    def latencies_ms(self, ids: list[str]) -> np.ndarray:
        """Send → commit of those ``ids`` that were committed (ms)."""
        return np.asarray([(self.committed[i] - self.sent[i]) * 1000 for i in ids if i in self.committed])
