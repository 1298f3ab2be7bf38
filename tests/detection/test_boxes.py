import numpy as np

from deepanon.detection import Detections
from deepanon.detection.boxes import best_source, clusters, merge_contained, fuse, iou, ios, nms


def naive_iou(a, b) -> float:
    """IoU of two x0, y0, x1, y1 boxes, one pair at a time, in float64."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def naive_clusters(boxes, scores, iou_threshold) -> list[list[int]]:
    """Greedy NMS as a loop: take the best box left, and with it every box left whose IoU with it is above the
    threshold (highest score first, ties by index)."""
    left = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    out = []
    while left:
        best, *rest = left
        members = [j for j in rest if naive_iou(boxes[best].astype(float), boxes[j].astype(float)) > iou_threshold]
        out.append([best, *members])
        left = [j for j in rest if j not in members]
    return out


def random_boxes(rng, n):
    xy = rng.uniform(0, 60, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, 40, (n, 2))], 1).astype(np.float32)


def test_iou_nms_and_clusters_match_naive_loops():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 25))
        boxes, scores = random_boxes(rng, n), (rng.integers(0, 4, n) / 4).astype(np.float32)  # many tied scores
        threshold = float(rng.uniform(0.05, 0.95))
        expected_iou = [[naive_iou(a.astype(float), b.astype(float)) for b in boxes] for a in boxes]
        np.testing.assert_allclose(iou(boxes, boxes), expected_iou, rtol=1e-5, atol=1e-6)
        expected = naive_clusters(boxes, scores, threshold)
        assert [c.tolist() for c in clusters(boxes, scores, threshold)] == expected
        assert nms(boxes, scores, threshold).tolist() == [c[0] for c in expected]


def test_suppression_needs_iou_above_the_threshold():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32)  # IoU exactly 50 / 150
    scores = np.array([0.9, 0.8], np.float32)
    threshold = float(iou(boxes[:1], boxes[1:])[0, 0])
    assert nms(boxes, scores, threshold).tolist() == [0, 1]
    assert nms(boxes, scores, threshold - 1e-6).tolist() == [0]


def test_iou_of_two_empty_boxes_is_zero():
    empty = np.array([[3, 3, 3, 3]], np.float32)
    assert iou(empty, empty).tolist() == [[0.0]]


def test_iou_and_ios_hand_values():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30], [2, 2, 4, 4]], np.float32)
    # overlaps 50 of 100 and 100 -> 50 / 150; identical; disjoint; contained 4 / 100
    np.testing.assert_allclose(iou(a, b), [[1 / 3, 1, 0, 0.04]], rtol=1e-6)
    np.testing.assert_allclose(ios(a, b), [[0.5, 1, 0, 1]], rtol=1e-6)
    assert iou(a, np.zeros((0, 4), np.float32)).shape == (1, 0)


def test_nms_keeps_best_of_each_overlapping_group():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [0, 1, 10, 11]], np.float32)
    scores = np.array([0.5, 0.9, 0.7, 0.6], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.95).tolist() == [1, 2, 3, 0]


def test_nms_equals_a_naive_greedy_loop_on_random_boxes():
    rng = np.random.default_rng(3)
    corners = rng.uniform(0, 100, (200, 2)).astype(np.float32)
    boxes = np.concatenate([corners, corners + rng.uniform(1, 30, (200, 2)).astype(np.float32)], 1)
    scores = rng.choice([0.3, 0.5, 0.7, 0.9], 200).astype(np.float32)  # many ties
    for threshold in (0.1, 0.3, 0.5):
        kept = []
        for i in sorted(range(200), key=lambda i: -scores[i]):  # sorted() is stable: ties in index order
            if all(iou(boxes[i : i + 1], boxes[k : k + 1])[0, 0] <= threshold for k in kept):
                kept.append(i)
        assert nms(boxes, scores, threshold).tolist() == kept


def test_fuse_merges_duplicates_into_their_enclosing_box():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [100, 100, 110, 110]], np.float32)
    scores = np.array([0.75, 0.25, 0.5], np.float32)
    landmarks = np.zeros((3, 5, 2), np.float32)
    landmarks[1] = 7.0  # only the weaker duplicate has predicted landmarks
    found = Detections(boxes, scores, landmarks, np.array([True, False, True]))
    fused = fuse(found, iou_threshold=0.5)
    assert len(fused) == 2
    np.testing.assert_allclose(fused.boxes[0], [0, 0, 12, 10], rtol=1e-6)  # [0, 0, 10, 10] and [2, 0, 12, 10]
    np.testing.assert_array_equal(fused.scores, [0.75, 0.5])
    np.testing.assert_array_equal(fused.landmarks[0], landmarks[1])  # predicted landmarks win over estimated
    assert fused.landmarks_estimated.tolist() == [False, True]
    np.testing.assert_allclose(fused.landmarks[1], Detections.from_boxes(boxes[2:], scores[2:]).landmarks[0])


def test_best_source_keeps_each_face_as_the_part_that_scored_it_highest():
    upright = Detections.from_boxes(np.array([[0, 0, 10, 13], [50, 50, 60, 60]], np.float32),
                                    np.array([0.9, 0.4], np.float32))
    turned = Detections.from_boxes(np.array([[-1.5, 1.5, 11.5, 11.5], [49, 51, 61, 59], [100, 0, 110, 10]], np.float32),
                                   np.array([0.6, 0.8, 0.7], np.float32))
    # the tall face: upright scored it higher; the second: the turn did; the third only the turn found
    kept = best_source([upright, turned], iou_threshold=0.3)
    np.testing.assert_array_equal(kept.boxes, [[0, 0, 10, 13], [49, 51, 61, 59], [100, 0, 110, 10]])
    np.testing.assert_array_equal(kept.scores, np.array([0.9, 0.8, 0.7], np.float32))
    assert len(best_source([Detections.empty(), Detections.empty()], 0.3)) == 0
    # a neighbour found only by the other part, overlapping the first face below the threshold, is another face: kept
    neighbour = Detections.from_boxes(np.array([[5, 0, 15, 10]], np.float32), np.array([0.8], np.float32))
    kept = best_source([upright[:1], neighbour], iou_threshold=0.4)  # IoU 0.33
    assert len(kept) == 2


def test_fuse_of_nothing_is_empty():
    assert len(fuse(Detections.empty(), 0.4)) == 0


def test_merge_contained_keeps_the_larger_box_and_unrelated_faces():
    boxes = np.array([[100, 100, 300, 320],   # whole face
                      [150, 200, 250, 300],   # a piece of it, scored higher
                      [280, 100, 380, 200],   # a neighbour overlapping the face's edge, not inside it
                      [120, 120, 160, 160]],  # inside the face but far more confident than it
                     np.float32)
    scores = np.array([0.5, 0.9, 0.8, 1.0 + 0.1], np.float32)
    kept = merge_contained(Detections.from_boxes(boxes, scores))
    np.testing.assert_array_equal(kept.boxes, boxes[[0, 2, 3]])


def test_a_merged_piece_that_sticks_out_stays_covered():
    # the piece lies 85 % inside the face and 15 % below it: the face's box grows to cover it, in x and y alike
    boxes = np.array([[100, 100, 200, 200], [130, 115, 170, 215], [0, 0, 40, 40], [10, 5, 30, 44]], np.float32)
    merged = merge_contained(Detections.from_boxes(boxes, np.array([0.9, 0.8, 0.7, 0.7], np.float32)))
    np.testing.assert_array_equal(merged.boxes, [[100, 100, 200, 215], [0, 0, 40, 44]])
    np.testing.assert_allclose(merged.landmarks, Detections.from_boxes(merged.boxes, merged.scores).landmarks)


def test_merge_contained_of_one_box_is_itself():
    one = Detections.from_boxes(np.array([[0, 0, 10, 10]], np.float32), np.array([0.3], np.float32))
    assert merge_contained(one) is one
