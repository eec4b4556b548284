"""A fine-tuned top layer written as a branch beside the pack's own, with blended heads (real MiniLM and pack)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch

from modelling.training.text_branch import BRANCH, PLAIN, POOLS, blended, columns, write
from modelling.training.text_top import TopTuner
from serving.encoders import TextEncoder
from serving.heads import load_head
from serving.text_features import extra_features
from serving.text_model import DEFAULT_PACK_DIR, EMOTION_HEAD, SENTIMENT_HEAD, TextModel
from serving.top_layers import encoder_layers

TEXTS = ["I love this, best day ever!", "This is awful, I hate it", "ok", "meh... the bus was late again #monday"]


def test_columns_share_the_lower_views_and_the_features() -> None:
    plain, branch = columns(PLAIN, 2, 1), columns(BRANCH, 2, 1)
    assert plain == [0, 1, 2, 3, 4, 5, 6, 7, 12]
    assert branch == [8, 9, 2, 3, 4, 5, 10, 11, 12]


def test_written_pack_serves_the_blend(tmp_path: Path) -> None:
    enc = TextEncoder.load(None)
    tuned_layer = copy.deepcopy(encoder_layers(enc.model)[-1])
    with torch.no_grad():
        for p in tuned_layer.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
    base_s, _ = load_head(DEFAULT_PACK_DIR / SENTIMENT_HEAD)
    base_e, _ = load_head(DEFAULT_PACK_DIR / EMOTION_HEAD)
    tuned_s, tuned_e = copy.deepcopy(base_s), copy.deepcopy(base_e)
    with torch.no_grad():
        tuned_s.net[0].weight.mul_(-1.0)  # a different head on the branch views
    tuner = TopTuner(enc.model, tuned_s, tuned_e)
    tuner.layers[0].load_state_dict(tuned_layer.state_dict())
    n_extra = extra_features(["vader"], ["x"]).shape[1]
    heads = {"sentiment": blended(base_s, tuned_s, 0.3, [0.1, -0.2, 0.0], 384, n_extra),
             "emotion": blended(base_e, tuned_e, 0.6, [0.0] * 7, 384, n_extra)}
    chosen = {t: {"w": w, "offsets": heads[t].bias_adjust.tolist(), "val": {}, "trials": []}
              for t, w in (("sentiment", 0.3), ("emotion", 0.6))}
    out = tmp_path / "pack"
    write(out, DEFAULT_PACK_DIR, tuner, heads, chosen, "test")
    assert (out / "text_branch_layer_5.safetensors").is_file()
    meta = json.loads((out / "text_meta.json").read_text())
    assert meta["mode"] == "branch_blend" and meta["heads"]["sentiment"]["pools"] == POOLS

    model = TextModel.load(out)
    assert "+ft5:" in model.encoder.name and model.pools == ["mean", "mean@4", "mean@2", "max", "mean+ft", "max+ft"]
    sent, _ = model.heads(model.represent(TEXTS), TEXTS)
    vader = extra_features(["vader"], TEXTS)
    xb = np.hstack([model.encoder.encode(TEXTS, PLAIN), vader])
    xt = np.hstack([model.encoder.encode(TEXTS, BRANCH), vader])
    with torch.no_grad():
        logits = (0.3 * base_s.net(torch.from_numpy(xb)) + 0.7 * tuned_s.net(torch.from_numpy(xt))
                  + torch.tensor([0.1, -0.2, 0.0]))
    want = torch.softmax(logits, -1).numpy()
    assert np.abs(sent - want).max() < 1e-3  # the branch layer is stored in fp16
    plain = TextModel.load(DEFAULT_PACK_DIR)
    assert np.allclose(model.embed(TEXTS), plain.embed(TEXTS), atol=1e-6)  # the embedding is the pack's own
