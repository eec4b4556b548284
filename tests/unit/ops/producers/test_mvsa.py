"""The MVSA producer reads the shared split and a plain folder of N.txt + N.jpg."""

from __future__ import annotations

from ops.producers.mvsa import read_mvsa


def test_mvsa_directory_forms(tmp_path, data_dir):
    shared = list(read_mvsa(data_dir / "mvsa_single", limit=3))
    assert len(shared) == 3 and all(p["image"]["b64"] and p["id"].startswith("mvsa-") for p in shared)
    (tmp_path / "7.txt").write_text("hello #x")
    (tmp_path / "7.jpg").write_bytes(b"\xff\xd8jpeg")
    [post] = read_mvsa(tmp_path)
    assert post["id"] == "mvsa-7" and post["text"] == "hello #x"
