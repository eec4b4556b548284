"""What the agent hands the pipeline: raw message bytes with their origin (no deserialisation in Faust)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, frozen=True)
class RawRecord:
    """One message of the posts topic, exactly as read."""

    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: float | None = None  # broker/producer timestamp, seconds since the epoch
    key: bytes | None = None

    @classmethod
    def from_event(cls, event: Any) -> RawRecord:
        """From a Faust event (``value_serializer='raw'``)."""
        m = event.message
        ts = m.timestamp
        if ts is not None and ts > 1e11:  # milliseconds
            ts = ts / 1000.0
        value = event.value if isinstance(event.value, bytes | None) else m.value
        return cls(value=value, topic=m.topic, partition=m.partition, offset=m.offset, timestamp=ts, key=m.key)

    @property
    def source_key(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"
