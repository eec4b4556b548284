"""TextModel on the committed pack (real weights), and the by-name encoder path with a tiny model built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moodstream import labels
from serving.encoders import TextEncoder, normalize_text
from serving.heads import Head, save_head
from serving.text_model import EMOTION_HEAD, SENTIMENT_HEAD, TextModel

SENT = labels.SENTIMENT_INDEX
EMO = labels.EMOTION_INDEX


@pytest.fixture(scope="module")
def model() -> TextModel:
    return TextModel.load()


def test_clear_captions(model: TextModel) -> None:
    pos, neg = model.predict(["I love this, best day ever!", "This is awful, I hate it"])
    assert pos.sentiment.argmax() == SENT["positive"]
    assert neg.sentiment.argmax() == SENT["negative"]
    assert pos.emotion.argmax() == EMO["joy"]


def test_emotions(model: TextModel) -> None:
    scared, sad, angry = model.predict(
        ["I am so scared", "I miss her so much, I can't stop crying", "I am furious, this makes me so angry"]
    )
    assert EMO["fear"] in np.argsort(scared.emotion)[-2:]
    assert sad.emotion.argmax() == EMO["sadness"]
    assert angry.emotion.argmax() == EMO["anger"]


def test_shapes_probabilities_and_embedding(model: TextModel) -> None:
    (r,) = model.predict(["just a normal tuesday"])
    assert r.sentiment.shape == (3,) and r.emotion.shape == (7,) and r.embedding.shape == (384,)
    assert r.sentiment.sum() == pytest.approx(1.0, abs=1e-5) and r.emotion.sum() == pytest.approx(1.0, abs=1e-5)
    assert (r.sentiment >= 0).all() and (r.emotion >= 0).all()
    assert np.linalg.norm(r.embedding) == pytest.approx(1.0, abs=1e-4)


def test_batch_order_preserved(model: TextModel) -> None:
    texts = ["This is awful, I hate it", "ok", "I love this, best day ever!", "x " * 500]  # last one is truncated
    batch = model.predict(texts)
    single = [model.predict([t])[0] for t in texts]
    for b, s in zip(batch, single, strict=True):
        np.testing.assert_allclose(b.sentiment, s.sentiment, atol=1e-4)
        np.testing.assert_allclose(b.embedding, s.embedding, atol=1e-4)


def test_empty_input(model: TextModel) -> None:
    assert model.predict([]) == []


def test_escapes_decoded_before_tokenising(model: TextModel) -> None:
    assert normalize_text(r"I\u2019m here \ud83d\ude02 \u002c ok &amp; more") == "I’m here 😂 , ok & more"
    a, b = model.predict([r"I\u2019m so happy today", "I’m so happy today"])
    np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-5)


def test_pooled_views(model: TextModel) -> None:
    texts = ["I love this, best day ever!", "ok", "This is awful, I hate it"]
    rep = model.represent(texts)
    assert model.pools[0] == "mean" and rep.shape == (3, 384 * len(model.pools))
    np.testing.assert_allclose(rep[:, :384], model.embed(texts), atol=1e-5)  # the embedding comes first
    norms = np.linalg.norm(rep.reshape(3, len(model.pools), 384), axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)  # each view is L2-normalised
    # heads from the embedding alone compute the other views from the texts: same probabilities
    for a, b in zip(model.heads(rep, texts), model.heads(rep[:, :384], texts), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="expected"):
        model.heads(rep[:, :100], texts)


def test_pool_names(model: TextModel) -> None:
    enc = model.encoder
    texts = ["one short text", "and a somewhat longer second text to pad the batch"]
    last = enc.encode(texts, [f"mean@{enc.n_layers}", "max", "cls", "mean@0"])
    np.testing.assert_allclose(last[:, :384], enc.embed(texts), atol=1e-5)  # mean@<last layer> is mean
    assert last.shape == (2, 4 * 384) and enc.encode([], ["mean", "max"]).shape == (0, 768)
    for bad in ("avg", f"mean@{enc.n_layers + 1}", "max@x"):
        with pytest.raises(ValueError, match="unknown pooling"):
            enc.encode(texts, [bad])


def _tiny_bert(path: Path) -> Path:
    """A 2-layer, 32-d BERT with a small WordPiece vocab, saved like a hub checkpoint."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ["i", "love", "this", "hate", "it", "awful", "best", "day", "ever", "so", "scared", "the", "a", "is",
             "##s", "##ing"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *"abcdefghijklmnopqrstuvwxyz!,."]
    (path / "vocab.txt").parent.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt")).save_pretrained(path)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(path)
    return path


def test_encoder_by_local_dir_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc_dir = _tiny_bert(tmp_path / "tiny")
    pack = tmp_path / "pack"
    save_head(pack / SENTIMENT_HEAD, Head(32, 3, hidden=8), {})
    save_head(pack / EMOTION_HEAD, Head(32, 7), {})
    m = TextModel.load(pack_dir=pack, encoder=str(enc_dir), max_tokens=16)
    assert m.dim == 32
    out = m.predict(["i love this", "awful day " * 40])
    assert len(out) == 2 and out[0].embedding.shape == (32,)
    assert all(r.sentiment.sum() == pytest.approx(1.0, abs=1e-5) for r in out)
    with pytest.raises(ValueError, match="sentiment head"):
        TextModel(TextEncoder.load(str(enc_dir)), Head(384, 3), Head(32, 7))


def test_unknown_hub_id_fails_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError):
        TextEncoder.load("nobody/no-such-model-here")
