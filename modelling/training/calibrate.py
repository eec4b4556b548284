"""Fit the calibration temperatures of a pack's heads on val and store them in its meta JSONs (issue #14).

* text sentiment head: TweetEval sentiment val; text emotion head: GoEmotions val (``text_meta.json`` →
  ``calibration``: ``{"sentiment": T, "emotion": T}``);
* image-sentiment head: MVSA-Single val ``image_label``; FER mini-Xception (mirror-averaged, as served): FER-2013 val
  (``vision_meta.json`` → ``calibration``: ``{"sentiment": T, "fer": T}``).

The fusion strategies' temperatures are fit by ``moodstream train fusion`` (``fusion.json``), on fusion inputs that
already carry these calibrated modality probabilities, so run this first, then train fusion.

Run: ``python -m modelling.training.calibrate --data ../shared/data --pack serving/pack``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from serving.calibration import calibration_summary, fit_temperature


def _update_meta(path: Path, key: str, value: dict[str, Any]) -> None:
    meta = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    meta[key] = value
    path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def calibrate_pack(data_dir: str | Path, pack_dir: str | Path, progress: bool = True,
                   parts: tuple[str, ...] = ("text", "vision")) -> dict[str, Any]:
    """Fit and store the temperatures of the heads of ``parts``; returns ``{head: {temperature, val_before,
    val_after}}``."""
    import numpy as np

    from modelling.training.data import read_fer, read_text_dataset
    from modelling.training.embed_cache import cached_embed
    from modelling.training.vision import _pack_fer, fer_probs, mvsa_features
    from serving.calibration import apply_temperature
    from serving.heads import load_head
    from serving.text_model import META as TEXT_META
    from serving.text_model import TextModel
    from serving.vision_model import META as VISION_META
    from serving.vision_model import SENTIMENT_HEAD

    pack = Path(pack_dir)
    out: dict[str, Any] = {}

    def fit(name: str, probs: np.ndarray, y: np.ndarray) -> float:
        t = fit_temperature(probs, y)
        out[name] = {"temperature": t, "val_before": calibration_summary(probs, y),
                     "val_after": calibration_summary(apply_temperature(probs, t), y)}
        return t

    if "text" in parts:
        text = TextModel.load(pack)
        text.sentiment_head.temperature = text.emotion_head.temperature = 1.0
        for task, ds in (("sentiment", "tweeteval-sentiment"), ("emotion", "goemotions")):
            val = read_text_dataset(ds, "val", data_dir)
            emb = cached_embed(text.encoder, val.texts, f"{ds}-val", progress=progress, pools=text.pools)
            sent, emo = text.heads(emb, val.texts)
            fit(f"text_{task}", sent if task == "sentiment" else emo, val.labels)
        _update_meta(pack / TEXT_META, "calibration", {"sentiment": out["text_sentiment"]["temperature"],
                                                        "emotion": out["text_emotion"]["temperature"],
                                                        "fit_on": {"sentiment": "tweeteval sentiment val",
                                                                   "emotion": "goemotions val"}})
    if "vision" not in parts:
        return out
    head, _ = load_head(pack / SENTIMENT_HEAD)
    x, y = mvsa_features(data_dir, "val", progress=progress)
    fit("image_sentiment", head.predict_proba(x), y)
    fx, fy = read_fer("val", data_dir)
    fit("fer", fer_probs(_pack_fer(pack), fx), fy)
    _update_meta(pack / VISION_META, "calibration", {"sentiment": out["image_sentiment"]["temperature"],
                                                      "fer": out["fer"]["temperature"],
                                                      "fit_on": {"sentiment": "mvsa_single val image_label",
                                                                 "fer": "fer2013 val (PublicTest)"}})
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--pack", required=True, type=Path)
    p.add_argument("--parts", nargs="+", default=["text", "vision"], choices=["text", "vision"])
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    for name, r in calibrate_pack(a.data, a.pack, progress=not a.quiet, parts=tuple(a.parts)).items():
        print(f"{name:16s} T={r['temperature']:.4f}  val ECE {r['val_before']['ece']:.4f} -> "
              f"{r['val_after']['ece']:.4f}  NLL {r['val_before']['nll']:.4f} -> {r['val_after']['nll']:.4f}")


if __name__ == "__main__":
    main()
