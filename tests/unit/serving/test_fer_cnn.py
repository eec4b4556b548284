"""The compact FER-2013 CNN: shapes, fp16 save/load round trip with its config."""

from __future__ import annotations

from pathlib import Path

import torch

from serving.fer_cnn import FerCNN, load_fer_cnn, save_fer_cnn


def test_forward_shape_and_size() -> None:
    net = FerCNN(width=8, size=40).eval()
    assert net(torch.zeros(3, 1, 40, 40)).shape == (3, 7)
    assert FerCNN(width=24).config() == {"width": 24, "size": 48, "num_classes": 7, "dropout": 0.3}


def test_save_load_round_trip_in_fp16(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = FerCNN(width=8, size=32).eval()
    with torch.no_grad():  # non-trivial BN statistics
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    save_fer_cnn(net, tmp_path / "cnn.safetensors", meta={"best_epoch": 3})
    back = load_fer_cnn(tmp_path / "cnn.safetensors")
    assert back.config() == net.config() and not back.training
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(back(x), net(x), atol=2e-2)
    assert all(v.dtype == torch.float32 for v in back.state_dict().values() if v.is_floating_point())
