"""A user's own folder: a .txt beside each image, or a CSV of captions."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from moodstream.schema import parse_post
from ops.producers.folder import FolderError, count_folder, read_folder


def png(color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, "PNG")
    return buf.getvalue()


def stamped(post: dict) -> dict:
    return {**post, "created_at": "2026-11-30T12:00:00Z"}


def test_txt_beside_each_image(tmp_path):
    (tmp_path / "beach.png").write_bytes(png())
    (tmp_path / "beach.txt").write_text("Sunny day at the beach #summer\n")
    (tmp_path / "night.JPG").write_bytes(png((5, 5, 5)))  # no caption: image only
    (tmp_path / "notes.md").write_text("ignored")
    posts = list(read_folder(tmp_path))
    assert count_folder(tmp_path) == 2
    assert [p["id"] for p in posts] == ["folder-beach", "folder-night"]
    assert posts[0]["text"] == "Sunny day at the beach #summer" and posts[0]["image"]["mime"] == "image/png"
    assert base64.b64decode(posts[0]["image"]["b64"]) == (tmp_path / "beach.png").read_bytes()
    assert "text" not in posts[1] and posts[1]["image"]["mime"] == "image/jpeg"
    assert parse_post(stamped(posts[0])).hashtags == ["summer"]


def test_csv_of_captions(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(png())
    (tmp_path / "posts.csv").write_text("Image,Caption,id,hashtags\n"
                                        'imgs/a.png,"Love it, truly",p-1,#red fun\n'
                                        ",Just words here,,\n"
                                        ",,,\n")
    posts = list(read_folder(tmp_path))
    assert count_folder(tmp_path) is None
    assert [(p["id"], p.get("text"), "image" in p, p.get("hashtags")) for p in posts] == [
        ("p-1", "Love it, truly", True, ["red", "fun"]), ("folder-posts-2", "Just words here", False, None)]
    for p in posts:
        parse_post(stamped(p))


def test_clear_errors(tmp_path):
    with pytest.raises(FolderError, match="no images"):
        read_folder(tmp_path)
    (tmp_path / "x.csv").write_text("name,comment\na,b\n")
    with pytest.raises(FolderError, match="needs an image column"):
        list(read_folder(tmp_path))
    (tmp_path / "x.csv").write_text("file,text\nmissing.jpg,hi\n")
    with pytest.raises(FolderError, match=r"no image file 'missing\.jpg'"):
        list(read_folder(tmp_path))
