"""Dead letters: rejected input with the reason, the original bytes and where they came from."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from moodstream.schema import DeadLetter
from streams import metrics
from streams.records import RawRecord

STAGES = ("validate", "fetch", "decode", "classify", "persist")


def printable(text: str) -> str:
    """``text`` with NUL written as ``\\x00``: a reason may echo hostile input, and PostgreSQL text refuses NUL."""
    return text.replace("\x00", "\\x00")


def dead_letter(record: RawRecord, reason: str, stage: str = "validate", post_id: str | None = None) -> DeadLetter:
    """A ``DeadLetter`` for ``record`` (unknown stages count as ``classify``)."""
    metrics.dead_lettered.labels(stage if stage in STAGES else "classify").inc()
    return DeadLetter(
        reason=printable(reason)[:1000],
        stage=stage if stage in STAGES else "classify",  # type: ignore[arg-type]
        post_id=printable(post_id) if post_id is not None else None,
        raw_b64=base64.b64encode(record.value or b"").decode(),
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        failed_at=datetime.now(UTC),
    )


DLQ_OVERHEAD_BYTES = 16_384  # room for the reason (<= 1000 chars), origin, JSON framing and the record's own overhead


def fit_raw(letter: DeadLetter, max_message_bytes: int) -> DeadLetter:
    """``letter`` with its raw value cut so the DLQ message fits one producer request; the reason says so.

    Without this, a message near the input size limit (its base64 is 4/3 larger) made a dead letter that the
    producer refused with ``MessageSizeTooLargeError`` forever, and the batch, so the worker, never moved on.
    """
    keep = max(0, max_message_bytes - DLQ_OVERHEAD_BYTES) // 4 * 4
    b64 = letter.raw_b64
    if len(b64) <= keep:
        return letter
    original = len(b64) // 4 * 3 - (len(b64) - len(b64.rstrip("=")))
    note = f" [raw value cut to its first {keep // 4 * 3} of {original} bytes to fit the dead-letter topic]"
    return letter.model_copy(update={"raw_b64": b64[:keep], "reason": letter.reason[: 1000 - len(note)] + note})


def dlq_message(letter: DeadLetter, max_message_bytes: int | None = None) -> tuple[bytes | None, bytes]:
    """(key, value) for the dead-letter topic: key = post id when known; raw value cut to ``max_message_bytes``."""
    if max_message_bytes is not None:
        letter = fit_raw(letter, max_message_bytes)
    return (letter.post_id.encode() if letter.post_id else None, letter.to_json())
