"""Does the fused label follow the evidence? Robustness rows of ``moodstream eval mvsa`` (issue #14).

On an MVSA split, for one fusion strategy:

* ``caption_blank_image``: every pair whose ``text_label`` is negative or positive, its caption with a flat grey
  image; scored against ``text_label``.
* ``caption_unrelated_photo``: the same captions, each with an unrelated everyday photo that carries no sentiment
  of its own (scikit-image's sample photos ``EVAL_PHOTOS``, assigned round-robin in row order); against
  ``text_label``.
* ``caption_only``: the same captions with no image (the reference).
* ``image_neutral_subset`` / ``text_neutral_subset``: real pairs where that modality's label is neutral and the
  other's polar (so, by MVSA's rule, the fused label is the polar one); against the fused ``label``.

Each row: ``n``, ``accuracy``, ``balanced_accuracy`` (mean per-class recall over the classes present),
``label_mix`` (share of each predicted label) and ``gold_mix``. The two uninformative-image rows also carry a
``flip_rate``: among captions whose caption-only prediction is polar with (calibrated) confidence ≥ 0.7, the share
whose fused label differs from it.

The uninformative images go through the real vision model (MobileNetV2 features + image head, faces), exactly as
served. Training uses *other* images (``TRAIN_PHOTOS``, other grey levels; ``modelling.training.augment``), so the
evaluation images are never seen in training.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from moodstream.labels import SENTIMENT_INDEX, SENTIMENTS

NEG, NEU, POS = SENTIMENT_INDEX["negative"], SENTIMENT_INDEX["neutral"], SENTIMENT_INDEX["positive"]
EVAL_GREY = 128
EVAL_PHOTOS = ("coffee", "rocket", "chelsea", "stereo_motorcycle", "clock", "camera")
TRAIN_GREYS = (0, 64, 96, 160, 200, 255)
TRAIN_PHOTOS = ("brick", "grass", "gravel", "coins", "moon", "colorwheel", "immunohistochemistry",
                "hubble_deep_field", "cell", "page", "text", "logo")
FLIP_CONFIDENCE = 0.7
ROWS = ("caption_only", "caption_blank_image", "caption_unrelated_photo", "image_neutral_subset",
        "text_neutral_subset")
# Targets of issue #14.
MAX_FLIP_RATE = 0.10
BALANCED_MARGIN = 0.02
MAX_LABEL_SHARE = 0.70
MIN_SUBSET_ACCURACY = 0.78


def grey_image(level: int, size: int = 256) -> bytes:
    """A flat grey ``size``×``size`` RGB PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (level, level, level)).save(buf, format="PNG")
    return buf.getvalue()


def sample_photo(name: str) -> bytes:
    """One of scikit-image's bundled sample photos (``skimage.data.<name>``) as RGB PNG bytes."""
    import skimage.data
    from PIL import Image

    img = getattr(skimage.data, name)()
    if isinstance(img, tuple):  # stereo pairs
        img = img[0]
    arr = np.asarray(img)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, -1)
    buf = io.BytesIO()
    Image.fromarray(arr[..., :3].astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def image_arrays(vision_model: Any, images: list[bytes]) -> dict[str, np.ndarray]:
    """``ip`` (N,3), ``iq`` (N,7), ``ie`` (N,1280), ``faces`` (N,) of images, through ``VisionModel.predict``."""
    results = vision_model.predict(images)
    for r in results:
        if not hasattr(r, "sentiment"):
            raise ValueError(f"an uninformative image failed in the vision model: {r}")
    return {"ip": np.stack([r.sentiment for r in results]).astype(np.float32),
            "iq": np.stack([r.emotion for r in results]).astype(np.float32),
            "ie": np.stack([r.embedding for r in results]).astype(np.float32),
            "faces": np.asarray([int(r.faces or 0) for r in results], np.int64)}


def with_images(feats: dict[str, Any], rows: np.ndarray, images: dict[str, np.ndarray],
                assign: np.ndarray | None) -> dict[str, np.ndarray]:
    """The rows' text arrays paired with images (``assign[k]``: image index of row k; ``None``: no image)."""
    n = len(rows)
    out = {k: np.ascontiguousarray(feats[k][rows]) for k in ("tp", "tq", "te")}
    if assign is None:
        out.update(ip=np.zeros((n, 3), np.float32), iq=np.zeros((n, 7), np.float32),
                   ie=np.zeros((n, feats["ie"].shape[1]), np.float32), faces=np.zeros(n, np.int64))
        out["mask"] = np.stack([feats["mask"][rows, 0], np.zeros(n)], 1).astype(np.float32)
    else:
        out.update({k: np.ascontiguousarray(images[k][assign]) for k in ("ip", "iq", "ie", "faces")})
        out["mask"] = np.stack([feats["mask"][rows, 0], np.ones(n)], 1).astype(np.float32)
    return out


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y``."""
    y, pred = np.asarray(y), np.asarray(pred)
    return float(np.mean([(pred[y == c] == c).mean() for c in np.unique(y)])) if len(y) else 0.0


def _mix(labels: np.ndarray) -> dict[str, float]:
    n = max(len(labels), 1)
    return {name: round(float((np.asarray(labels) == k).sum() / n), 4) for k, name in enumerate(SENTIMENTS)}


def row(y: np.ndarray, probs: np.ndarray, reference: np.ndarray | None = None,
        min_confidence: float = FLIP_CONFIDENCE) -> dict[str, Any]:
    """One robustness row: accuracy, balanced accuracy, label mixes (+ ``flip_rate`` against ``reference`` probs,
    the caption-only prediction, over items where it is polar with confidence ≥ ``min_confidence``)."""
    pred = np.asarray(probs).argmax(1)
    out: dict[str, Any] = {"n": len(y), "accuracy": round(float((pred == y).mean()), 4) if len(y) else 0.0,
                           "balanced_accuracy": round(balanced_accuracy(y, pred), 4),
                           "label_mix": _mix(pred), "gold_mix": _mix(y)}
    if reference is not None:
        ref = np.asarray(reference)
        ref_pred = ref.argmax(1)
        sure = (ref_pred != NEU) & (ref.max(1) >= min_confidence)
        out["flip_base"] = int(sure.sum())
        out["flip_rate"] = round(float((pred[sure] != ref_pred[sure]).mean()), 4) if sure.any() else 0.0
    return out


def robustness_rows(feats: dict[str, Any], fuse: Any, blank: dict[str, np.ndarray],
                    photos: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Every row of ``ROWS`` for one strategy. ``fuse(arrays) → (N,3)`` fused probabilities (``stack_inputs``
    arrays); ``blank``/``photos``: ``image_arrays`` of the grey image (1) and of the unrelated photos."""
    yt, yi, y = feats["y_text"], feats["y_image"], feats["y"]
    polar = np.flatnonzero(((yt == NEG) | (yt == POS)) & (feats["mask"][:, 0] > 0))
    only = fuse(with_images(feats, polar, blank, None))
    grey = fuse(with_images(feats, polar, blank, np.zeros(len(polar), np.int64)))
    assign = np.arange(len(polar)) % len(photos["ip"])
    photo = fuse(with_images(feats, polar, photos, assign))
    real = {k: feats[k] for k in ("tp", "tq", "te", "ip", "iq", "ie", "faces", "mask")}
    fused = fuse(real)
    both = (feats["mask"].sum(1) == 2)
    img_neu = np.flatnonzero(both & (yi == NEU) & (yt != NEU))
    txt_neu = np.flatnonzero(both & (yt == NEU) & (yi != NEU))
    return {
        "caption_only": row(yt[polar], only),
        "caption_blank_image": row(yt[polar], grey, reference=only),
        "caption_unrelated_photo": row(yt[polar], photo, reference=only),
        "image_neutral_subset": row(y[img_neu], fused[img_neu]),
        "text_neutral_subset": row(y[txt_neu], fused[txt_neu]),
    }


def targets_met(rows: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Issue #14's robustness targets, one boolean each."""
    ref = rows["caption_only"]["balanced_accuracy"]
    out: dict[str, bool] = {}
    for name in ("caption_blank_image", "caption_unrelated_photo"):
        r = rows[name]
        out[f"{name}.flip_rate<={MAX_FLIP_RATE}"] = r["flip_rate"] <= MAX_FLIP_RATE
        key = f"{name}.balanced_accuracy>=caption_only-{BALANCED_MARGIN}"
        out[key] = r["balanced_accuracy"] >= ref - BALANCED_MARGIN
        gold_max = max(r["gold_mix"].values())
        out[f"{name}.no_label>{MAX_LABEL_SHARE}"] = max(r["label_mix"].values()) <= max(MAX_LABEL_SHARE, gold_max)
    for name in ("image_neutral_subset", "text_neutral_subset"):
        out[f"{name}.accuracy>={MIN_SUBSET_ACCURACY}"] = rows[name]["accuracy"] >= MIN_SUBSET_ACCURACY
    return out


def evaluate_robustness(feats: dict[str, Any], fusion: Any, vision_model: Any,
                        strategies: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Rows (and targets) of every strategy; ``rows``/``targets`` of ``fusion.strategy`` at the top level."""
    blank = image_arrays(vision_model, [grey_image(EVAL_GREY)])
    photos = image_arrays(vision_model, [sample_photo(n) for n in EVAL_PHOTOS])
    by: dict[str, Any] = {}
    for s in strategies or fusion.strategies:
        rows = robustness_rows(feats, lambda a, s=s: fusion.sentiment(a, s), blank, photos)
        by[s] = {"rows": rows, "targets": targets_met(rows)}
    top = by[fusion.strategy]
    return {"strategy": fusion.strategy, "rows": top["rows"], "targets": top["targets"],
            "eval_images": {"blank": f"flat grey {EVAL_GREY}", "photos": list(EVAL_PHOTOS)},
            "image_probs": {"blank": blank["ip"].round(4).tolist(),
                            "photos": dict(zip(EVAL_PHOTOS, photos["ip"].round(4).tolist(), strict=True))},
            "by_strategy": by}


def markdown(rob: dict[str, Any]) -> list[str]:
    """Markdown lines of the robustness section."""
    lines = ["", f"## Robustness: does the fused label follow the evidence? (fusion `{rob['strategy']}`)", "",
             f"Blank image: {rob['eval_images']['blank']}; unrelated photos (scikit-image): "
             f"{', '.join(rob['eval_images']['photos'])}. Flip rate: share of captions whose caption-only label is "
             f"polar with confidence ≥ {FLIP_CONFIDENCE} and whose fused label differs.", "",
             "| row | n | accuracy | balanced acc. | flip rate | predicted neg/neu/pos | gold neg/neu/pos |",
             "|---|---|---|---|---|---|---|"]
    for name, r in rob["rows"].items():
        mix = " / ".join(f"{r['label_mix'][k]:.2f}" for k in SENTIMENTS)
        gold = " / ".join(f"{r['gold_mix'][k]:.2f}" for k in SENTIMENTS)
        flip = f"{r['flip_rate']:.3f} (of {r['flip_base']})" if "flip_rate" in r else "—"
        lines.append(f"| {name} | {r['n']} | {r['accuracy']:.4f} | {r['balanced_accuracy']:.4f} | {flip} | {mix} | "
                     f"{gold} |")
    lines += ["", "Targets: " + "; ".join(f"{k} {'met' if v else '**not met**'}" for k, v in rob["targets"].items()),
              "", "Every strategy (balanced accuracy blank / photo / caption-only; flip blank / photo; subset acc. "
              "image-neutral / text-neutral):", "",
              "| strategy | bal. blank | bal. photo | bal. caption | flip blank | flip photo | img-neu acc | "
              "txt-neu acc |", "|---|---|---|---|---|---|---|---|"]
    for s, v in rob["by_strategy"].items():
        r = v["rows"]
        lines.append(f"| {s} | {r['caption_blank_image']['balanced_accuracy']:.3f} | "
                     f"{r['caption_unrelated_photo']['balanced_accuracy']:.3f} | "
                     f"{r['caption_only']['balanced_accuracy']:.3f} | {r['caption_blank_image']['flip_rate']:.3f} | "
                     f"{r['caption_unrelated_photo']['flip_rate']:.3f} | {r['image_neutral_subset']['accuracy']:.3f} | "
                     f"{r['text_neutral_subset']['accuracy']:.3f} |")
    return lines
