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
    for missed in (1, 2):
        det, ids, bridged = tracker.update(Detections.empty())
        assert bridged == 1 and ids.tolist() == [0]
        grow = 20 * 0.1 * missed / 2  # a still face: the box grows by 10 % of its side per missed frame
        np.testing.assert_allclose(det.boxes, [[10 - grow, 10 - grow, 30 + grow, 30 + grow]])
        assert det.scores.tolist() == [0.0]
    det, ids, bridged = tracker.update(Detections.empty())
    assert bridged == 0 and len(det) == 0


def test_bridged_face_keeps_its_id_when_found_again():
    tracker = FaceTracker(max_gap=2)
    tracker.update(faces([10, 10, 30, 30]))
    tracker.update(Detections.empty())
    _, ids, bridged = tracker.update(faces([11, 10, 31, 30]))
    assert ids.tolist() == [0] and bridged == 0


def test_a_bridged_box_moves_on_with_a_fast_face():
    # a face moving 18 px a frame, missed in frames 3 and 4: where it really is then stays inside the bridged box
    tracker = FaceTracker(max_gap=2)
    truth = [np.array([18.0 * f, 40, 18.0 * f + 40, 90]) for f in range(6)]
    for f in range(3):
        tracker.update(faces(truth[f]))
    for f in (3, 4):
        det, _, bridged = tracker.update(Detections.empty())
        x0, y0, x1, y1 = det.boxes[0]
        assert bridged == 1 and x0 <= truth[f][0] and y0 <= truth[f][1] and x1 >= truth[f][2] and y1 >= truth[f][3]
    _, ids, _ = tracker.update(faces(truth[5]))
    assert ids.tolist() == [0]


def test_a_jittering_detection_gives_a_steadier_box_that_always_covers_it():
    rng = np.random.default_rng(0)
    tracker = FaceTracker()
    detected, replaced = [], []
    for _ in range(200):
        box = np.array([100, 100, 160, 170], np.float32) + rng.normal(0, 3, 4).astype(np.float32)
        out, ids, _ = tracker.update(faces(box))
        assert ids.tolist() == [0]
        detected.append(box)
        replaced.append(out.boxes[0])
    detected, replaced = np.array(detected), np.array(replaced)
    assert (replaced[:, :2] <= detected[:, :2]).all() and (replaced[:, 2:] >= detected[:, 2:]).all()
    centre = lambda b: (b[:, :2] + b[:, 2:]) / 2  # noqa: E731
    jitter = lambda b: np.abs(np.diff(centre(b), axis=0)).mean()  # noqa: E731
    assert jitter(replaced) < 0.8 * jitter(detected), (jitter(replaced), jitter(detected))
