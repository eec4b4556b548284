"""Heads: shapes, save/load round trip with metadata, the eval-only bias adjustment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from serving.heads import Head, load_head, read_head_meta, save_head


@pytest.mark.parametrize("hidden", [None, 16])
def test_round_trip(tmp_path: Path, hidden: int | None) -> None:
    torch.manual_seed(0)
    head = Head(8, 3, hidden=hidden).eval()
    head.bias_adjust.copy_(torch.tensor([0.5, 0.0, -0.5]))
    x = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    path = save_head(tmp_path / "h.safetensors", head, {"labels": ["a", "b", "c"]})
    loaded, meta = load_head(path)
    assert meta == {"labels": ["a", "b", "c"]}
    assert read_head_meta(path)[0] == {"in_dim": 8, "out_dim": 3, "hidden": hidden, "dropout": 0.1}
    assert not loaded.training
    np.testing.assert_allclose(loaded.predict_proba(x), head.predict_proba(x), atol=1e-6)


def test_probabilities_and_bias_adjust() -> None:
    head = Head(4, 3)
    x = torch.randn(6, 4)
    p = head.predict_proba(x)
    assert p.shape == (6, 3) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    head.bias_adjust.copy_(torch.tensor([0.0, 0.0, 50.0]))
    assert (head.predict_proba(x).argmax(1) == 2).all()  # eval mode applies the offset
    head.train()
    assert not torch.allclose(head(x), head.eval()(x))  # training logits do not include it


def test_saved_bytes_are_deterministic_and_old_layout_reads(tmp_path: Path) -> None:
    import json

    from safetensors.torch import save_file

    torch.manual_seed(0)
    head = Head(8, 3, hidden=4)
    meta = {"labels": ["a", "b", "c"], "pools": ["mean", "max"], "features": ["vader"]}
    a = save_head(tmp_path / "a.safetensors", head, meta).read_bytes()
    assert all(save_head(tmp_path / "b.safetensors", head, meta).read_bytes() == a for _ in range(5))
    # the earlier layout: config and meta under separate metadata keys
    state = {k: v.contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(tmp_path / "old.safetensors"),
              metadata={"config": json.dumps(head.config()), "meta": json.dumps(meta)})
    loaded, loaded_meta = load_head(tmp_path / "old.safetensors")
    assert loaded_meta == meta and loaded.hidden == 4


def test_head_temperature_softens_without_changing_the_label() -> None:
    torch.manual_seed(0)
    head = Head(8, 3, hidden=None, dropout=0.0).eval()
    x = np.random.default_rng(0).normal(0, 3, (20, 8)).astype(np.float32)
    p1 = head.predict_proba(x)
    head.temperature = 2.0
    p2 = head.predict_proba(x)
    assert (p1.argmax(1) == p2.argmax(1)).all()
    assert p2.max(1).mean() < p1.max(1).mean()
