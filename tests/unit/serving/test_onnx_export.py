"""serving.onnx_export: graphs are exported from the loaded modules into a cache keyed by pack version, exporter
version and weights; an existing graph is reused; a changed pack or module gets a new one."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from serving import onnx_export
from serving.faces import FaceDetector
from serving.fer_net import FER_INPUT, MiniXception
from serving.onnx_export import EXPORTER_VERSION, export_cnn, graph_dir, module_digest
from serving.onnx_models import fer_graph, pack_version
from serving.onnx_runtime import OrtModule
from serving.pack import DEFAULT_PACK_DIR, write_manifest


def test_export_writes_a_valid_graph_and_reuses_it(tmp_path: Path) -> None:
    import onnx

    pnet = FaceDetector().pnet
    path = export_cnn(pnet, torch.zeros(1, 3, 24, 32), tmp_path, "pnet", ["reg", "prob"], spatial=True)
    assert path.is_file() and path.parent == tmp_path
    onnx.checker.check_model(str(path))
    stamp = path.stat().st_mtime_ns
    again = export_cnn(pnet, torch.zeros(1, 3, 24, 32), tmp_path, "pnet", ["reg", "prob"], spatial=True)
    assert again == path and again.stat().st_mtime_ns == stamp  # reused, not exported again
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_changed_weights_give_a_new_graph(tmp_path: Path) -> None:
    net = MiniXception().eval()
    x = torch.zeros(2, 1, FER_INPUT, FER_INPUT)
    first = export_cnn(net, x, tmp_path, "fer", ["logits"])
    with torch.no_grad():
        net.classifier.bias.add_(1.0)
    second = export_cnn(net, x, tmp_path, "fer", ["logits"])
    assert first != second and first.is_file() and second.is_file()
    assert module_digest(net) in second.name


def test_graph_dir_is_keyed_by_pack_and_exporter_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = graph_dir("pack-aaa", tmp_path)
    assert a == tmp_path / f"pack-aaa-x{EXPORTER_VERSION}"
    assert graph_dir("pack-bbb", tmp_path) != a
    monkeypatch.setattr(onnx_export, "EXPORTER_VERSION", "999")
    assert graph_dir("pack-aaa", tmp_path) != a


def _graphs_of_two_pack_versions(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """The same expression net exported under a pack and under the same pack changed: (pack, cache, graph 1, 2)."""
    pack = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK_DIR, pack)
    cache = tmp_path / "cache"
    fer = MiniXception().eval()
    one = fer_graph(fer, pack, cache).path
    (pack / "fusion.json").write_text((pack / "fusion.json").read_text() + "\n")  # any change: a new version
    write_manifest(pack)
    return pack, cache, one, fer_graph(fer, pack, cache).path


def test_a_new_pack_version_exports_again(tmp_path: Path) -> None:
    """The same expression net under two packs: the second pack's version names a second graph folder."""
    pack, cache, one, two = _graphs_of_two_pack_versions(tmp_path)
    assert one.parent != two.parent and one.is_file() and two.is_file()
    assert two.parent == graph_dir(pack_version(pack), cache)


def test_prune_removes_other_versions_folders_only(tmp_path: Path) -> None:
    """Two pack versions' real graphs: pruning keeps the folder in use and files that are not graph folders."""
    _, cache, old, new = _graphs_of_two_pack_versions(tmp_path)
    (cache / "notes").mkdir()
    (cache / "notes" / "keep.txt").write_text("not a graph folder")
    old_size = sum(f.stat().st_size for f in old.parent.iterdir())
    removed = onnx_export.prune_graphs(new.parent, cache)
    assert removed == [(old.parent, old_size)] and old_size > 0
    assert not old.parent.exists() and new.is_file() and (cache / "notes" / "keep.txt").is_file()
    assert onnx_export.prune_graphs(new.parent, cache) == []
    assert onnx_export.prune_graphs(new.parent, tmp_path / "no-cache") == []


def test_exported_pnet_matches_torch_on_a_real_photo(tmp_path: Path) -> None:
    from skimage import data

    det = FaceDetector()
    img = torch.from_numpy(np.asarray(data.astronaut()[:200:2, :240:2], dtype=np.float32)).permute(2, 0, 1)[None]
    x = (img - 127.5) * 0.0078125
    ort = OrtModule(export_cnn(det.pnet, torch.zeros(1, 3, 24, 32), tmp_path, "pnet", ["reg", "prob"],
                               spatial=True), threads=1)
    with torch.inference_mode():
        ref = det.pnet(x)
    for got, want in zip(ort(x), ref, strict=True):
        assert got.shape == want.shape
        assert torch.allclose(got, want, atol=1e-4)
