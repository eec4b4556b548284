"""Replay a JSONL file: one message per non-empty line, bytes as they are (invalid lines included, on purpose)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

Message = tuple[bytes | None, bytes]


def key_of(line: bytes) -> bytes | None:
    """The post id as the message key, when the line is a JSON object with a string id."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    pid = obj.get("id") if isinstance(obj, dict) else None
    return pid.encode() if isinstance(pid, str) and pid else None


def read_jsonl(path: Path | str) -> Iterator[Message]:
    """(key, value) per line of ``path``; ``-`` is not supported (give a file)."""
    with Path(path).open("rb") as f:
        for raw in f:
            line = raw.rstrip(b"\r\n")
            if line.strip():
                yield key_of(line), line


def count_lines(path: Path | str) -> int:
    with Path(path).open("rb") as f:
        return sum(1 for raw in f if raw.strip())
