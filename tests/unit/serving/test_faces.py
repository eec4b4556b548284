"""MTCNN face detection (our modules and NMS over the facenet-pytorch weights) on scikit-image's sample photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from serving.faces import FaceDetector, nms


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_astronaut_has_one_face_where_it_is(detector: FaceDetector) -> None:
    faces = detector.detect(Image.fromarray(data.astronaut()))
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.99
    # Eileen Collins' face spans about x 175–270, y 55–180 in the 512×512 photo.
    assert 160 < f.x1 < 200 and 250 < f.x2 < 290 and 40 < f.y1 < 90 and 150 < f.y2 < 200


@pytest.mark.parametrize("name", ["coffee", "rocket"])
def test_no_face_in_objects(detector: FaceDetector, name: str) -> None:
    assert detector.detect(Image.fromarray(getattr(data, name)())) == []


def test_boxes_map_back_from_the_downscaled_copy(detector: FaceDetector) -> None:
    big = Image.fromarray(data.astronaut()).resize((1024, 1024), Image.BILINEAR)  # detection runs at 640
    faces = detector.detect(big)
    assert len(faces) == 1
    f = faces[0]
    assert 320 < f.x1 < 400 and 500 < f.x2 < 580 and 80 < f.y1 < 180 and 300 < f.y2 < 400


def test_tiny_and_gray_images_do_not_fail(detector: FaceDetector) -> None:
    assert detector.detect(Image.new("RGB", (5, 5))) == []
    assert detector.detect(Image.fromarray(data.camera()).convert("RGB"))  # the cameraman's face


def test_nms_union_and_min() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [2, 2, 5, 5]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert nms(boxes, scores, 0.5).tolist() == [0, 2, 3]  # the small box has low IoU with the first
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [0, 2]  # …but is inside it
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def _photos() -> list[Image.Image]:
    astro = Image.fromarray(data.astronaut())
    return [astro, Image.fromarray(data.coffee()), Image.fromarray(data.camera()).convert("RGB"),
            astro.resize((1024, 1024), Image.BILINEAR), astro.crop((100, 0, 400, 512)),  # portrait, face inside
            Image.new("RGB", (5, 5)), astro.resize((301, 173), Image.BILINEAR), Image.fromarray(data.rocket())]


def test_batch_detection_equals_one_image_at_a_time(detector: FaceDetector) -> None:
    images = _photos()
    batch = detector.detect_batch(images)
    assert len(batch) == len(images)
    for im, got in zip(images, batch, strict=True):
        alone = detector.detect(im)
        assert len(got) == len(alone)
        for a, b in zip(alone, got, strict=True):
            assert abs(a.score - b.score) < 1e-4
            assert max(abs(a.x1 - b.x1), abs(a.y1 - b.y1), abs(a.x2 - b.x2), abs(a.y2 - b.y2)) < 0.5
    assert [len(f) for f in batch][:2] == [1, 0] and len(batch[4]) == 1 and batch[5] == []
    assert detector.detect_batch([]) == []


def test_optimised_nets_equal_the_eager_ones(detector: FaceDetector) -> None:
    x24, x48 = torch.rand(37, 3, 24, 24) * 2 - 1, torch.rand(5, 3, 48, 48) * 2 - 1
    with torch.inference_mode():
        for fast, eager, x in ((detector.rnet_fn, detector.rnet, x24), (detector.onet_fn, detector.onet, x48)):
            for a, b in zip(fast(x), eager(x), strict=True):
                assert torch.allclose(a, b, atol=1e-5)
