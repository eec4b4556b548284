"""Top-layer fine-tuning over cached activations (real MiniLM weights, a few texts)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modelling.training.text_top import TopTuner, extended_mask, round_fp16
from modelling.training.top_cache import SplitCache, cache_split
from serving.encoders import TextEncoder
from serving.heads import Head

TEXTS = ["I love this, best day ever!", "This is awful, I hate it", "ok", "meh... the bus was late again #monday"]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder.load(None)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> SplitCache:
    out = tmp_path_factory.mktemp("cache") / "demo_train"
    cache_split(TextEncoder.load(None), TEXTS, out, n_top=1, batch_size=3)
    return SplitCache(out)


def test_cache_is_ragged_fp16(cache: SplitCache, encoder: TextEncoder) -> None:
    assert cache.hidden.dtype == np.float16
    lens = [len(encoder.tokenize([t])["input_ids"][0]) for t in TEXTS]
    assert cache.lengths.tolist() == lens
    assert cache.meta["layer"] == 5 and cache.views.shape == (4, 768)
    h, mask = cache.batch(np.array([2, 0]))
    assert h.shape == (2, max(lens[2], lens[0]), 384) and mask.sum(1).tolist() == [lens[2], lens[0]]
    assert float(h[0, lens[2]:].abs().sum()) == 0.0


def test_top_layer_over_cache_matches_the_encoder(cache: SplitCache, encoder: TextEncoder) -> None:
    tuner = TopTuner(encoder.model, Head(1540, 3), Head(1540, 7)).eval()
    h, mask = cache.batch(np.arange(4))
    views = torch.from_numpy(cache.views)
    with torch.no_grad():
        x = tuner.features(h, mask, views, torch.zeros(4, 4)).numpy()
    ref = encoder.encode(TEXTS, ["mean", "mean@4", "mean@2", "max"])
    assert np.abs(x[:, :1536] - ref).max() < 2e-3  # fp16 cache
    assert tuner.layer_state().keys() == {5}


def test_gradients_reach_the_top_layer_only(cache: SplitCache, encoder: TextEncoder) -> None:
    tuner = TopTuner(encoder.model, Head(1540, 3), Head(1540, 7))
    h, mask = cache.batch(np.arange(4))
    loss = tuner.sentiment(tuner.features(h, mask, torch.from_numpy(cache.views), torch.zeros(4, 4))).sum()
    loss.backward()
    assert all(p.grad is not None for p in tuner.layers.parameters())
    assert all(p.grad is None for p in encoder.model.parameters())
    round_fp16(tuner)
    w = next(tuner.layers.parameters())
    assert torch.equal(w, w.half().float())


def test_extended_mask() -> None:
    m = extended_mask(torch.tensor([[1, 1, 0]]), torch.float32)
    assert m.shape == (1, 1, 1, 3) and m[0, 0, 0, 0] == 0 and m[0, 0, 0, 2] < -1e30


def test_length_batches_cover_every_row_once() -> None:
    from modelling.training.text_top import length_batches

    lengths = np.random.default_rng(0).integers(3, 60, size=1000)
    batches = length_batches(lengths, 32, np.random.default_rng(1), pool=5)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    assert max(len(b) for b in batches) == 32
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    assert spread < 20  # similar lengths within a batch (random batches: ~50)


def test_teacher_logits_are_the_untrained_heads_and_distillation_is_zero_on_them(cache: SplitCache,
                                                                                 encoder: TextEncoder) -> None:
    from modelling.training.text_top import Part, distill_loss, teacher_logits

    torch.manual_seed(0)
    tuner = TopTuner(encoder.model, Head(1540, 3, hidden=16, dropout=0.5), Head(1540, 7))
    tuner.sentiment.bias_adjust.fill_(5.0)  # offsets are not part of the teacher
    part = Part(cache, np.zeros((4, 4), np.float32), np.array([2, 0, 1, 0]))
    t = teacher_logits(tuner, part, torch.device("cpu"), progress=False)
    assert tuner.training  # handed back in training mode
    h, mask = cache.batch(np.arange(4))
    with torch.no_grad():
        tuner.eval()
        ref = tuner.sentiment.net(tuner.features(h, mask, torch.from_numpy(cache.views), torch.zeros(4, 4)))
    assert torch.allclose(t, ref, atol=1e-5)
    assert float(distill_loss(t, t)) == pytest.approx(0.0, abs=1e-6)
    other = t.clone()
    other[:, 0] += 2.0
    assert float(distill_loss(other, t)) > 0.01
