"""Dead letters: rejected input with the reason, the original bytes and where they came from."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from moodstream.schema import DeadLetter
from streams import metrics
from streams.records import RawRecord

STAGES = ("validate", "fetch", "decode", "classify", "persist")


def dead_letter(record: RawRecord, reason: str, stage: str = "validate", post_id: str | None = None) -> DeadLetter:
    """A ``DeadLetter`` for ``record`` (unknown stages count as ``classify``)."""
    metrics.dead_lettered.labels(stage if stage in STAGES else "classify").inc()
    return DeadLetter(
        reason=reason[:1000],
        stage=stage if stage in STAGES else "classify",  # type: ignore[arg-type]
        post_id=post_id,
        raw_b64=base64.b64encode(record.value or b"").decode(),
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        failed_at=datetime.now(UTC),
    )


def dlq_message(letter: DeadLetter) -> tuple[bytes | None, bytes]:
    """(key, value) for the dead-letter topic: key = post id when known."""
    return (letter.post_id.encode() if letter.post_id else None, letter.to_json())
