"""Track ids and gap bridging on hand-made detections."""

import numpy as np

from deepanon.detection import Detections
from deepanon.tracking import FaceTracker


def faces(*boxes) -> Detections:
    return Detections.from_boxes(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32))


def test_ids_follow_moving_faces_and_new_faces_get_new_ids():
    tracker = FaceTracker()
    _, ids, _ = tracker.update(faces([0, 0, 10, 10], [50, 50, 70, 70]))
    assert ids.tolist() == [0, 1]
    _, ids, _ = tracker.update(faces([52, 51, 72, 71], [1, 0, 11, 10], [100, 0, 120, 20]))
    assert ids.tolist() == [1, 0, 2]


def test_a_face_missed_for_two_frames_is_bridged_then_dropped():
    tracker = FaceTracker(max_gap=2)
    tracker.update(faces([10, 10, 30, 30]))
    for _ in range(2):
        det, ids, bridged = tracker.update(Detections.empty())
        assert bridged == 1 and ids.tolist() == [0]
        np.testing.assert_array_equal(det.boxes, [[10, 10, 30, 30]])
        assert det.scores.tolist() == [0.0]
    det, ids, bridged = tracker.update(Detections.empty())
    assert bridged == 0 and len(det) == 0


def test_bridged_face_keeps_its_id_when_found_again():
    tracker = FaceTracker(max_gap=2)
    tracker.update(faces([10, 10, 30, 30]))
    tracker.update(Detections.empty())
    _, ids, bridged = tracker.update(faces([11, 10, 31, 30]))
    assert ids.tolist() == [0] and bridged == 0
