"""Train the face gate (``serving.face_gate``): which images the face detector may skip.

Labels come from the detector itself: an MVSA-Single image is "face" when the pack's MTCNN finds at least one face
in it. A logistic regression over the raw pooled MobileNetV2 features (standardised) is fit on train. The threshold
is chosen on val: the highest one at which the fused emotion (``serving.fusion.emotion_rule``, text emotion from the
pack's text model) of at most ``max_changed`` of the posts differs from the ungated pipeline's. Test reports, never
chooses: the share of images skipped, the recall of face images, the posts whose fused emotion changed, and the
detector CPU saved per image.

Run: ``python -m modelling.training.face_gate --data ../shared/data --pack serving/pack``
(writes ``face_gate.json`` into the pack and updates its manifest; ``--report`` a JSON record).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelling.training.data import read_mvsa
from serving.face_gate import FaceGate, save_face_gate
from serving.fusion import emotion_rule

MAX_CHANGED = 0.01
SEED = 0


@dataclass
class SplitOutputs:
    """Per image of one MVSA split: backbone features, detected faces, image emotion with faces and without, and
    the caption's text emotion."""

    features: np.ndarray  # (N, 1280)
    faces: np.ndarray  # (N,) faces found by the detector
    emotion_faces: np.ndarray  # (N, 7) the vision model's emotion as served today
    emotion_no_face: np.ndarray  # (N, 7) what it becomes when the detector is skipped
    text_emotion: np.ndarray  # (N, 7)
    detect_ms: float  # detector CPU per image on this split


def collect(vision: Any, text: Any | None, split: str, data_dir: str | Path, batch: int = 32,
            progress: bool = True) -> SplitOutputs:
    """Run the ungated vision model (and the text model, when given) over an MVSA split."""
    from tqdm.auto import tqdm

    from serving.vision_model import face_crop, faces_emotion, no_face_emotion

    data = read_mvsa(split, data_dir)
    rows = data.rows
    feats, faces, emo, emo0, temo = [], [], [], [], []
    detect_cpu = 0.0
    for i in tqdm(range(0, len(rows), batch), desc=f"face gate: {split}", disable=not progress, leave=False):
        chunk = rows[i:i + batch]
        ims = [vision.decode(data.image_bytes(r["id"])) for r in chunk]
        f = vision.features(ims)
        sent = vision.sentiment_head.predict_proba(f)
        t0 = time.process_time()
        found = vision.detect_all(ims)
        detect_cpu += time.process_time() - t0
        crops = [face_crop(im, fc) for im, fs in zip(ims, found, strict=True) for fc in fs]
        probs = vision.expressions(np.stack(crops)) if crops else None
        k = 0
        for j, fs in enumerate(found):
            none = no_face_emotion(sent[j])
            if fs:
                emo.append(faces_emotion(probs[k:k + len(fs)], fs))
                k += len(fs)
            else:
                emo.append(none)
            emo0.append(none)
        feats.append(f)
        faces += [len(fs) for fs in found]
        if text is not None:
            temo += [r.emotion for r in text.predict([r["text"] for r in chunk])]
    data.close()
    n_emo = emo0[0].shape[-1] if emo0 else 7
    return SplitOutputs(np.vstack(feats), np.asarray(faces), np.asarray(emo, np.float32),
                        np.asarray(emo0, np.float32),
                        np.asarray(temo, np.float32) if temo else np.zeros((len(faces), n_emo), np.float32),
                        1000 * detect_cpu / max(len(rows), 1))


def fit_gate(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> FaceGate:
    """Logistic regression (balanced classes, L2, C chosen by 5-fold log-loss on train) on standardised features;
    threshold 0.5 until ``choose_threshold`` sets it."""
    from sklearn.linear_model import LogisticRegressionCV

    mean = x.mean(0)
    scale = x.std(0) + 1e-6
    clf = LogisticRegressionCV(Cs=[0.001, 0.003, 0.01, 0.03, 0.1], cv=5, scoring="neg_log_loss",
                               class_weight="balanced", max_iter=2000, random_state=seed)
    clf.fit((x - mean) / scale, y)
    return FaceGate(mean, scale, clf.coef_[0].astype(np.float64), float(clf.intercept_[0]), 0.5,
                    {"C": float(clf.C_[0])})


def fused_emotion_changed(out: SplitOutputs, skipped: np.ndarray) -> np.ndarray:
    """(N,) booleans: posts whose fused emotion argmax differs when the detector skips ``skipped`` images."""
    mask = np.ones((len(out.faces), 2), np.float32)
    ref = emotion_rule(out.text_emotion, out.emotion_faces, mask, out.faces)
    faces = np.where(skipped, 0, out.faces)
    iq = np.where(skipped[:, None], out.emotion_no_face, out.emotion_faces)
    gated = emotion_rule(out.text_emotion, iq, mask, faces)
    return ref.argmax(1) != gated.argmax(1)


def gate_figures(gate: FaceGate, out: SplitOutputs, threshold: float | None = None) -> dict[str, float]:
    """Skip rate, face-image recall and changed fused emotions of a gate (at ``threshold``) on one split."""
    p = gate.probability(out.features)
    t = gate.threshold if threshold is None else threshold
    skipped = p < t
    has = out.faces > 0
    return {"threshold": float(t), "n": len(p), "face_images": int(has.sum()),
            "skipped": round(float(skipped.mean()), 4),
            "face_image_recall": round(float((~skipped & has).sum() / max(has.sum(), 1)), 4),
            "faces_missed": int(out.faces[skipped].sum()), "faces": int(out.faces.sum()),
            "fused_emotion_changed": round(float(fused_emotion_changed(out, skipped).mean()), 4),
            "detect_ms_per_image": round(out.detect_ms, 2),
            "detect_ms_saved_per_image": round(out.detect_ms * float(skipped.mean()), 2)}


def choose_threshold(gate: FaceGate, val: SplitOutputs, max_changed: float = MAX_CHANGED) -> float:
    """The highest threshold at which at most ``max_changed`` of val posts change fused emotion."""
    p = gate.probability(val.features)
    best = 0.0
    for t in np.unique(np.concatenate([[0.0], p])):
        if fused_emotion_changed(val, p < t).mean() <= max_changed:
            best = float(t)
        else:
            break
    return best


def train_face_gate(data_dir: str | Path, pack_dir: str | Path, max_changed: float = MAX_CHANGED,
                    progress: bool = True) -> dict[str, Any]:
    """Fit, choose the threshold on val, report on test, write ``face_gate.json`` into the pack."""
    from serving.pack import write_manifest
    from serving.text_model import TextModel
    from serving.vision_model import VisionModel

    vision = VisionModel.load(pack_dir, face_gate=False)
    text = TextModel.load(pack_dir=pack_dir)
    train = collect(vision, None, "train", data_dir, progress=progress)
    val = collect(vision, text, "val", data_dir, progress=progress)
    test = collect(vision, text, "test", data_dir, progress=progress)
    gate = fit_gate(train.features, (train.faces > 0).astype(np.int64))
    t = choose_threshold(gate, val, max_changed)
    command = "python -m modelling.training.face_gate " + shlex.join(sys.argv[1:]) if sys.argv[1:] else \
        "python -m modelling.training.face_gate --data ../shared/data --pack serving/pack"
    meta = {**gate.meta, "labels": "the pack's MTCNN finds >= 1 face (MVSA-Single train images)",
            "threshold_rule": f"highest with <= {max_changed:.0%} of val posts changing fused emotion",
            "train_face_share": round(float((train.faces > 0).mean()), 4), "command": command}
    gate = FaceGate(gate.mean, gate.scale, gate.weights, gate.bias, t, meta)
    save_face_gate(gate, pack_dir)
    write_manifest(Path(pack_dir))
    return {"threshold": t, "val": gate_figures(gate, val), "test": gate_figures(gate, test),
            "test_if_every_image_skipped": gate_figures(gate, test, threshold=1.01), "command": command}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--pack", default="serving/pack")
    ap.add_argument("--max-changed", type=float, default=MAX_CHANGED)
    ap.add_argument("--report", type=Path, default=None, help="also write the figures here as JSON")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    rec = train_face_gate(a.data, a.pack, a.max_changed, progress=not a.quiet)
    text = json.dumps(rec, indent=2)
    print(text)
    if a.report:
        a.report.parent.mkdir(parents=True, exist_ok=True)
        a.report.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
