"""MTCNN face detection (our modules and NMS over the facenet-pytorch weights) on scikit-image's sample photos."""

from __future__ import annotations

import numpy as np
import pytest
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
