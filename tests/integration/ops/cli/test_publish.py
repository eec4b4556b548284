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


def test_publish_demo_and_a_folder(stream_env, tmp_path):
    import io

    from PIL import Image

    r = run_publish(stream_env, "--demo", "--count", "12", "--rate", "100")
    assert r.returncode == 0, r.stderr
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (250, 200, 40)).save(buf, "JPEG")
    (tmp_path / "sunny.jpg").write_bytes(buf.getvalue())
    (tmp_path / "sunny.txt").write_text("What a lovely morning #sun")
    r = run_publish(stream_env, "--folder", str(tmp_path))
    assert r.returncode == 0, r.stderr
    msgs = read_topic(stream_env["MOODSTREAM_KAFKA_BROKERS"], stream_env["MOODSTREAM_TOPIC_POSTS"], 13)
    posts = [parse_post(m.value) for m in msgs]
    assert sum(p.source is not None and p.source.startswith("demo:") for p in posts) == 12
    (mine,) = [p for p in posts if p.source == "folder"]
    assert mine.id == "folder-sunny" and mine.text == "What a lovely morning #sun" and mine.hashtags == ["sun"]
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_publish(stream_env, "--folder", str(empty))
    assert r.returncode == 1 and "no images" in " ".join(r.stderr.split())
