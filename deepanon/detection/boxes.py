"""Box maths on float (N, 4) x0, y0, x1, y1 arrays: overlap, suppression and fusion of duplicate faces."""

from __future__ import annotations

import numpy as np

from deepanon.detection.types import Detections, landmarks_from_box


def area(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) -> (N,) areas, 0 for degenerate boxes."""
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) -> (N, M) intersection areas."""
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(hi - lo, 0, None)
    return wh[..., 0] * wh[..., 1]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) -> (N, M) intersection over union in [0, 1]."""
    inter = intersection(a, b)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def ios(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) -> (N, M) intersection over the area of the smaller box, in [0, 1]."""
    inter = intersection(a, b)
    smaller = np.minimum(area(a)[:, None], area(b)[None, :])
    return np.where(smaller > 0, inter / np.maximum(smaller, 1e-12), 0.0)


def clusters(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[np.ndarray]:
    """Greedy non-maximum suppression that also returns what each kept box suppressed.

    Returns one index array per kept box, the kept (highest-scoring) box first, then every lower-scoring box not yet
    taken whose IoU with it is >= ``iou_threshold``. Clusters come in descending score order.
    """
    order = np.argsort(-scores, kind="stable")
    overlap = iou(boxes[order], boxes[order]) >= iou_threshold
    taken = np.zeros(len(order), bool)
    out = []
    for i in range(len(order)):
        if taken[i]:
            continue
        members = np.flatnonzero(overlap[i] & ~taken)
        taken[members] = True
        out.append(order[np.concatenate([[i], members[members != i]])])
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, in descending score order."""
    return np.array([c[0] for c in clusters(boxes, scores, iou_threshold)], dtype=np.int64)


def fuse(detections: Detections, iou_threshold: float) -> Detections:
    """Merge duplicate faces (IoU >= ``iou_threshold``) into one each.

    Each merged face gets the box that encloses all its duplicates (never less than any of them covered: a piece of
    a large face cut by a tile edge, fused with the whole face, once shrank the box and left an eye outside), their
    highest score, and the landmarks of the highest-scoring duplicate with predicted (not estimated) landmarks;
    estimated landmarks are re-estimated from the fused box. Output order: descending score.
    """
    if len(detections) == 0:
        return detections
    groups = clusters(detections.boxes, detections.scores, iou_threshold)
    boxes = np.empty((len(groups), 4), np.float32)
    keep_landmarks = np.empty(len(groups), np.int64)
    for k, group in enumerate(groups):
        members = detections.boxes[group]
        boxes[k] = [*members[:, :2].min(0), *members[:, 2:].max(0)]
        predicted = group[~detections.landmarks_estimated[group]]
        keep_landmarks[k] = predicted[0] if len(predicted) else group[0]
    best = np.array([g[0] for g in groups], dtype=np.int64)
    estimated = detections.landmarks_estimated[keep_landmarks]
    landmarks = detections.landmarks[keep_landmarks]
    if estimated.any():
        landmarks[estimated] = landmarks_from_box(boxes[estimated])
    return Detections(boxes, detections.scores[best], landmarks, estimated)


def merge_contained(detections: Detections, inside: float = 0.8) -> Detections:
    """Merge each box lying (``inside`` of its area or more) within a larger box that scores at least half as high
    into that box: the larger box grows to enclose it, the contained box goes.

    One pass at a coarse scale can find a whole large face while a finer pass finds a piece of it (an eye region,
    the lower face): the piece would get a second, smaller generated face inside the first. Up to 1 - ``inside`` of
    the piece may lie outside the larger box; growing the larger box keeps those pixels covered. Boxes are merged
    smallest first, each into its largest container; a container with estimated landmarks gets them re-estimated
    from its grown box.
    """
    if len(detections) < 2:
        return detections
    boxes = detections.boxes.copy()
    sizes = area(boxes)
    within = intersection(boxes, boxes) / np.maximum(sizes[:, None], 1e-12)
    container = (within >= inside) & (sizes[None, :] > sizes[:, None])
    container &= detections.scores[None, :] >= 0.5 * detections.scores[:, None]
    for i in np.argsort(sizes, kind="stable"):
        if container[i].any():
            j = np.flatnonzero(container[i])[np.argmax(sizes[container[i]])]
            boxes[j] = [*np.minimum(boxes[j, :2], boxes[i, :2]), *np.maximum(boxes[j, 2:], boxes[i, 2:])]
    keep = ~container.any(1)
    landmarks = detections.landmarks.copy()
    estimated = detections.landmarks_estimated
    landmarks[estimated] = landmarks_from_box(boxes[estimated])
    return Detections(boxes, detections.scores, landmarks, estimated)[keep]
