"""Fine-tuned top layers in a pack: saved fp16, swapped into the packaged MiniLM at load (real weights)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from serving.encoders import TextEncoder
from serving.text_model import DEFAULT_PACK_DIR, TextModel
from serving.top_layers import (
    apply_branch,
    apply_top_layers,
    encoder_layers,
    save_branch,
    save_top_layers,
    top_layer_files,
)

TEXTS = ["I love this, best day ever!", "This is awful, I hate it", "ok"]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder.load(None)


def _perturbed(encoder: TextEncoder) -> torch.nn.Module:
    layer = encoder_layers(encoder.model)[-1]
    import copy

    new = copy.deepcopy(layer)
    with torch.no_grad():
        for p in new.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
    return new


def test_round_trip_changes_the_encoder(encoder: TextEncoder, tmp_path: Path) -> None:
    before = encoder.encode(TEXTS, ["mean", "mean@4"])
    new = _perturbed(encoder)
    paths = save_top_layers({5: new}, tmp_path)
    assert [p.name for p in paths] == ["text_top_layer_5.safetensors"]
    assert top_layer_files(tmp_path) == {5: paths[0]}
    enc = TextEncoder.load(None)
    assert apply_top_layers(enc, tmp_path) == [5]
    assert "+top5:" in enc.name
    got = dict(encoder_layers(enc.model)[5].named_parameters())
    for k, v in new.named_parameters():
        assert torch.equal(got[k], v.detach().half().float())
    after = enc.encode(TEXTS, ["mean", "mean@4"])
    assert np.allclose(after[:, 384:], before[:, 384:], atol=1e-6)  # layer 4 untouched
    assert not np.allclose(after[:, :384], before[:, :384], atol=1e-3)  # the top layer swapped in


def test_no_files_no_change(encoder: TextEncoder, tmp_path: Path) -> None:
    name = encoder.name
    assert apply_top_layers(encoder, tmp_path) == []
    assert encoder.name == name


def test_text_model_loads_a_pack_with_top_layers(encoder: TextEncoder, tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK_DIR, pack)
    save_top_layers({5: _perturbed(encoder)}, pack)
    model = TextModel.load(pack)
    assert "+top5:" in model.encoder.name
    ref = TextModel.load(DEFAULT_PACK_DIR)
    assert not np.allclose(model.embed(TEXTS), ref.embed(TEXTS), atol=1e-3)
    by_path = TextModel.load(pack, encoder=str(encoder.name))  # another encoder (by path): no swap
    assert "+top" not in by_path.encoder.name


def test_onnx_export_carries_the_fine_tuned_layer(encoder: TextEncoder, tmp_path: Path) -> None:
    """The ONNX graph is exported from the encoder as loaded: with the pack's top layer swapped in."""
    from serving.pack import write_manifest

    pack = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK_DIR, pack)
    save_top_layers({5: _perturbed(encoder)}, pack)
    write_manifest(pack)
    torch_model = TextModel.load(pack)
    onnx_model = TextModel.load(pack, runtime="onnx", onnx_cache=tmp_path / "onnx")
    a, b = torch_model.embed(TEXTS), onnx_model.embed(TEXTS)
    assert np.all((a * b).sum(1) > 0.99)  # same (fine-tuned) encoder, up to int8
    plain = TextModel.load(DEFAULT_PACK_DIR).embed(TEXTS)
    assert np.all((a * plain).sum(1) < (a * b).sum(1))


def _copy_of_top(encoder: TextEncoder) -> torch.nn.Module:
    import copy

    return copy.deepcopy(encoder_layers(encoder.model)[-1])


def test_a_branch_equal_to_the_top_layer_gives_the_same_views(encoder: TextEncoder, tmp_path: Path) -> None:
    """The branch runs on the top layer's input with the mask as the model does: an unchanged copy matches."""
    save_branch(_copy_of_top(encoder), 5, tmp_path)
    enc = TextEncoder.load(None)
    assert apply_branch(enc, tmp_path) == 5 and "+ft5:" in enc.name
    v = enc.encode(TEXTS, ["mean", "max", "mean+ft", "max+ft", "mean@4"])
    assert np.abs(v[:, :768] - v[:, 768:1536]).max() < 2e-3  # fp16 copy of the same layer


def test_a_fine_tuned_branch_leaves_the_own_views_alone(encoder: TextEncoder, tmp_path: Path) -> None:
    save_branch(_perturbed(encoder), 5, tmp_path)
    enc = TextEncoder.load(None)
    apply_branch(enc, tmp_path)
    got = enc.encode(TEXTS, ["mean", "mean+ft"])
    ref = encoder.encode(TEXTS, ["mean"])
    assert np.allclose(got[:, :384], ref, atol=1e-6)  # the model's own top layer still serves ``mean``
    assert not np.allclose(got[:, 384:], ref, atol=1e-3)


def test_branch_views_need_a_branch_and_the_top_layer(encoder: TextEncoder, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="has none"):
        encoder.encode(TEXTS, ["mean+ft"])
    assert apply_branch(encoder, tmp_path) is None
    save_branch(_perturbed(encoder), 3, tmp_path)
    with pytest.raises(ValueError, match="copies the top layer"):
        apply_branch(TextEncoder.load(None), tmp_path)


def test_onnx_export_carries_the_branch(encoder: TextEncoder, tmp_path: Path) -> None:
    from serving.onnx_export import export_text
    from serving.onnx_runtime import OrtModule

    save_branch(_perturbed(encoder), 5, tmp_path)
    enc = TextEncoder.load(None)
    apply_branch(enc, tmp_path)
    pools = ["mean", "mean+ft"]
    path = export_text(enc, pools, tmp_path / "onnx", quantize=False)
    batch = enc.tokenize(TEXTS)
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch]
    (got,) = OrtModule(path).run(*(batch[n].numpy() for n in names))
    with torch.no_grad():
        want = enc.pool(batch, pools).numpy()
    assert np.abs(got - want).max() < 1e-4
    assert not np.allclose(got[:, :384], got[:, 384:], atol=1e-3)  # the branch's own views, not a copy of mean
