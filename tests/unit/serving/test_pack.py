"""The committed model pack: loads with no setting and no network, content-derived stable version, size budget."""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import pytest

from serving.fusion import STRATEGIES
from serving.pack import DEFAULT_PACK_DIR, PackError, load_pack, pack_size_problems


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv("MOODSTREAM_MODEL_DIR", raising=False)


def test_default_pack_loads_offline_and_version_is_stable(no_network: None) -> None:
    a, b = load_pack(), load_pack(None)
    assert a.dir == DEFAULT_PACK_DIR
    assert a.version == b.version
    assert a.version.startswith(f"{a.name}-") and len(a.version) == len(a.name) + 13
    assert a.default_fusion in STRATEGIES
    assert a.manifest["files"], "manifest lists no files"
    assert all((a.dir / f).is_file() for f in a.manifest["files"])
    for prefix in ("text_", "vision_", "fusion"):
        assert any(f.startswith(prefix) for f in a.manifest["files"]), prefix


def test_pack_is_within_size_budget() -> None:
    assert pack_size_problems(DEFAULT_PACK_DIR) == []
    assert (DEFAULT_PACK_DIR / "MODEL_CARD.md").is_file()


def test_version_depends_on_content_not_location(tmp_path: Path) -> None:
    copy = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK_DIR, copy)
    assert load_pack(copy).version == load_pack().version
    fusion_cfg = copy / "fusion.json"
    fusion_cfg.write_text(fusion_cfg.read_text() + " ", encoding="utf-8")
    assert load_pack(copy).version != load_pack().version


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    copy = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK_DIR, copy)
    victim = json.loads((copy / "manifest.json").read_text())["files"][0]
    (copy / victim).unlink()
    with pytest.raises(PackError, match=re.escape(victim)):
        load_pack(copy)
    with pytest.raises(PackError, match="does not exist"):
        load_pack(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackError, match=r"manifest\.json"):
        load_pack(tmp_path / "empty")
