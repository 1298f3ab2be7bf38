import dataclasses

import numpy as np
import pytest

from deepanon.detection import Detections, landmarks_from_box
from deepanon.detection.types import MEAN_LANDMARKS, canonical_order


def make(n: int, offset: float = 0.0) -> Detections:
    boxes = np.array([[10 * i + offset, 20, 10 * i + offset + 8, 30] for i in range(n)], np.float32).reshape(-1, 4)
    return Detections(boxes, np.linspace(0.9, 0.5, n, dtype=np.float32), landmarks_from_box(boxes), np.zeros(n, bool))


def test_empty_has_right_dtypes_and_shapes():
    e = Detections.empty()
    assert len(e) == 0
    assert (e.boxes.shape, e.boxes.dtype) == ((0, 4), np.float32)
    assert (e.scores.shape, e.scores.dtype) == ((0,), np.float32)
    assert (e.landmarks.shape, e.landmarks.dtype) == ((0, 5, 2), np.float32)
    assert (e.landmarks_estimated.shape, e.landmarks_estimated.dtype) == ((0,), np.bool_)


def test_frozen_and_validated():
    d = make(2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.boxes = d.boxes  # type: ignore[misc]
    with pytest.raises(ValueError, match="boxes"):
        Detections(d.boxes.astype(np.float64), d.scores, d.landmarks, d.landmarks_estimated)
    with pytest.raises(ValueError, match="scores"):
        Detections(d.boxes, d.scores[:1], d.landmarks, d.landmarks_estimated)


def test_concatenate_and_select():
    a, b = make(2), make(3, offset=100)
    c = Detections.concatenate([a, Detections.empty(), b])
    assert len(c) == 5
    np.testing.assert_array_equal(c.boxes[2:], b.boxes)
    assert len(Detections.concatenate([])) == 0
    picked = c[np.array([4, 0])]
    np.testing.assert_array_equal(picked.boxes, c.boxes[[4, 0]])
    np.testing.assert_array_equal(c[c.scores > 0.8].scores, c.scores[c.scores > 0.8])
    assert len(c[[]]) == 0 and len(c[np.zeros(5, bool)]) == 0
    assert len(c[1:3]) == 2 and len(c[0]) == 1


def test_transformed_maps_points_exactly():
    d = make(1)
    t = d.transformed(2.0, 0.5, 7.0, -3.0)
    np.testing.assert_array_equal(t.boxes, [[0 * 2 + 7, 20 * 0.5 - 3, 8 * 2 + 7, 30 * 0.5 - 3]])
    np.testing.assert_allclose(t.landmarks, d.landmarks * [2.0, 0.5] + [7.0, -3.0], rtol=0, atol=1e-5)


def test_flipped_mirrors_boxes_and_keeps_canonical_order():
    d = make(1)
    f = d.flipped(width=100)
    np.testing.assert_array_equal(f.boxes, [[92, 20, 100, 30]])
    assert f.landmarks[0, 0, 0] < f.landmarks[0, 1, 0] and f.landmarks[0, 3, 0] < f.landmarks[0, 4, 0]
    np.testing.assert_allclose(f.flipped(100).landmarks, d.landmarks, atol=1e-5)


def test_landmarks_from_box_geometry():
    boxes = np.array([[0, 0, 100, 100], [10, 20, 30, 60]], np.float32)
    lm = landmarks_from_box(boxes)
    assert lm.shape == (2, 5, 2) and lm.dtype == np.float32
    np.testing.assert_allclose(lm[0], MEAN_LANDMARKS * 100, atol=1e-4)
    np.testing.assert_allclose(lm[1], [10, 20] + MEAN_LANDMARKS * [20, 40], atol=1e-4)
    for face in lm:  # inside the box, canonical order, eyes above nose above mouth, symmetric about the centre
        assert face[0, 0] < face[2, 0] < face[1, 0] and face[3, 0] < face[4, 0]
        assert face[0, 1] == face[1, 1] < face[2, 1] < face[3, 1] == face[4, 1]
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    np.testing.assert_allclose(lm[:, 0, 0] + lm[:, 1, 0], 2 * centre_x, atol=1e-4)
    assert ((lm >= boxes[:, None, :2]) & (lm <= boxes[:, None, 2:])).all()
    assert landmarks_from_box(np.zeros((0, 4))).shape == (0, 5, 2)


def test_from_boxes_marks_landmarks_estimated():
    d = Detections.from_boxes(np.array([[0, 0, 10, 10]]), np.array([0.7]))
    assert d.landmarks_estimated.tolist() == [True] and d.scores.dtype == np.float32


def test_canonical_order_swaps_pairs():
    lm = np.array([[[30, 10], [10, 10], [20, 20], [28, 30], [12, 30]]], np.float32)
    out = canonical_order(lm)
    np.testing.assert_array_equal(out[0], [[10, 10], [30, 10], [20, 20], [12, 30], [28, 30]])
    np.testing.assert_array_equal(lm[0, 0], [30, 10])  # input untouched
