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


def test_a_bridged_box_of_a_shrinking_face_keeps_its_size_and_moves_with_its_centre():
    # 60 -> 40 px in one frame (a face turning away, or the detector's box shrinking): carried on at that rate, the
    # box would be inside out after three missed frames
    tracker = FaceTracker(max_gap=4)
    tracker.update(faces([100, 100, 160, 160]))
    _, ids, _ = tracker.update(faces([110, 100, 150, 140]))  # its centre moved by (0, -10)
    for missed in range(1, 5):
        det, bridged_ids, bridged = tracker.update(Detections.empty())
        grow = 40 * 0.1 * missed / 2
        centre = np.array([130, 120 - 10 * missed])
        assert bridged == 1 and bridged_ids.tolist() == ids.tolist() == [0]
        np.testing.assert_allclose(det.boxes[0], [*(centre - 20 - grow), *(centre + 20 + grow)], atol=1e-4)


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


def scored(box, score) -> Detections:
    return Detections.from_boxes(np.array([box], np.float32), np.array([score], np.float32))


def test_a_low_score_continues_a_track_but_never_starts_one():
    tracker = FaceTracker(confirm=0.3, max_gap=2)
    det, ids, _ = tracker.update(scored([300, 50, 340, 100], 0.12))  # alone and weak: dropped
    assert len(det) == 0
    tracker.update(scored([10, 10, 50, 60], 0.8))
    for frame in range(1, 6):  # the face turns away: its score falls under confirm, the track goes on
        det, ids, bridged = tracker.update(scored([10 + frame, 10, 50 + frame, 60], 0.12))
        assert ids.tolist() == [0] and bridged == 0 and det.scores.tolist() == [np.float32(0.12)]
    det, ids, bridged = tracker.update(faces([10, 10, 50, 60], [200, 10, 240, 60]))  # a strong new face: new track
    assert ids.tolist() == [0, 1] and bridged == 0


def test_a_strong_detection_takes_its_track_before_a_weak_one():
    tracker = FaceTracker(confirm=0.3)
    tracker.update(faces([10, 10, 50, 60]))
    both = Detections.concatenate([scored([10, 10, 50, 60], 0.15), scored([12, 10, 52, 60], 0.9)])
    det, ids, _ = tracker.update(both)  # the weak duplicate matches better but the strong one is matched first
    assert len(det) == 1 and ids.tolist() == [0] and det.scores.tolist() == [np.float32(0.9)]


def test_a_face_cut_by_the_frame_is_bridged_until_the_exit_gap_and_one_inside_for_two_frames():
    size = (360, 640)  # h, w
    tracker = FaceTracker(max_gap=2, exit_gap=10)
    # a face leaving on the right, its box cut by the frame: the cut box's velocity points out of the frame
    tracker.update(faces([560, 0, 640, 170], [200, 100, 260, 180]), size)
    tracker.update(faces([590, 0, 640, 170], [201, 100, 261, 180]), size)
    for missed in range(1, 11):
        det, ids, bridged = tracker.update(Detections.empty(), size)
        assert sorted(ids.tolist()) == ([0, 1] if missed <= 2 else [0])
        box = det.boxes[ids.tolist().index(0)]
        assert box[0] <= 590 and box[1] <= 0 and box[2] >= 640 and box[3] >= 170, (missed, box)  # the last box
    det, _, _ = tracker.update(Detections.empty(), size)
    assert len(det) == 0


def test_a_bridged_box_grows_for_at_most_growth_frames():
    size = (360, 640)
    tracker = FaceTracker(max_gap=2, exit_gap=20)
    tracker.update(faces([0, 100, 40, 150]), size)  # cut by the left edge, still
    widths = [tracker.update(Detections.empty(), size)[0].boxes[0, 2] for _ in range(12)]
    assert widths[4] == widths[11] > widths[3]  # 40 px grown by 5 % a side per frame for 5 frames, then held
    assert widths[4] == np.float32(40 + 40 * 0.1 * 5 / 2)
