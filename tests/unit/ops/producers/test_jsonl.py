"""The JSONL producer keeps bad lines (they go to the dead-letter topic downstream)."""

from __future__ import annotations

import json

from ops.producers.jsonl import read_jsonl


def test_jsonl_keeps_bad_lines(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_bytes(json.dumps({"id": "a", "created_at": "2024-01-01T00:00:00Z", "text": "x"}).encode()
                  + b"\n\nnot json\n")
    assert [k for k, _ in read_jsonl(f)] == [b"a", None]
