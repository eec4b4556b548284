"""`moodstream publish` against the real broker: synthetic and JSONL feeds land on the topic, keyed by post id."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from moodstream.schema import parse_post
from testkit.stream_helpers import ROOT, read_topic

pytestmark = pytest.mark.integration


def run_publish(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops.cli", "publish", "--no-progress", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_publish_synthetic_and_jsonl(stream_env, tmp_path):
    r = run_publish(stream_env, "--synthetic", "--count", "25", "--seed", "3", "--rate", "200")
    assert r.returncode == 0, r.stderr
    f = tmp_path / "posts.jsonl"
    f.write_text(json.dumps({"id": "j1", "created_at": "2024-05-01T10:00:00Z", "text": "hi #x"}) + "\nnot json\n")
    r = run_publish(stream_env, "--jsonl", str(f))
    assert r.returncode == 0, r.stderr
    msgs = read_topic(stream_env["MOODSTREAM_KAFKA_BROKERS"], stream_env["MOODSTREAM_TOPIC_POSTS"], 27)
    assert len(msgs) == 27
    good = [m for m in msgs if m.value != b"not json"]
    assert all(parse_post(m.value).id == m.key.decode() for m in good)
    assert {m.key for m in msgs if m.value == b"not json"} == {None}
