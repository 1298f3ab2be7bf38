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
    """(N, 4), (M, 4) -> (N, M) intersection over union in [0, 1] (0 where both boxes are empty)."""
    inter = intersection(a, b)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def ios(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) -> (N, M) intersection over the area of the smaller box, in [0, 1]."""
    inter = intersection(a, b)
    smaller = np.minimum(area(a)[:, None], area(b)[None, :])
    return np.where(smaller > 0, inter / np.maximum(smaller, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """int64 indices of the boxes kept by greedy non-maximum suppression (a box goes when its IoU with a
    higher-scoring kept box is above ``iou_threshold``), in descending score order, ties in index order.

    NumPy rather than ``torchvision.ops``: importing torchvision's ops loads torch's compiler stack, 170 MiB of every
    run's memory (benchmarks/NOTES.md)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    kept: list[int] = []
    while order.size:
        best, order = order[0], order[1:]
        kept.append(int(best))
        order = order[iou(boxes[best : best + 1], boxes[order])[0] <= iou_threshold]
    return np.array(kept, np.int64)


def clusters(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[np.ndarray]:
    """Greedy non-maximum suppression (:func:`nms`) that also returns what each kept box suppressed.

    Returns one index array per kept box, in descending score order: the kept box first, then every box it suppressed,
    that is every box whose IoU with it is above ``iou_threshold`` and with no higher-scoring kept box, by descending
    score (ties in index order).
    """
    kept = nms(boxes, scores, iou_threshold)
    if len(kept) == 0:
        return []
    order = np.argsort(-scores, kind="stable")
    overlap = iou(boxes[kept], boxes[order]) > iou_threshold
    overlap[np.arange(len(kept)), np.argsort(order)[kept]] = True
    owner = overlap.argmax(0)
    return [order[owner == k] for k in range(len(kept))]


def best_source(parts: list[Detections], iou_threshold: float) -> Detections:
    """The faces of all ``parts``, where faces of different parts overlap (IoU above ``iou_threshold``, :func:`clusters`)
    only those of the part that found the highest-scoring of them.

    Parts are views of one image that disagree on a face's shape, such as its quarter turns: a face's box in the wrong
    orientation has the other aspect ratio, and fusing it with the right one would give a box too large for either.
    The finds dropped may reach past the kept ones (the wrong orientation's box is wider than the face): the kept box
    is the face's box as the most confident view sees it, not the union of every view's.
    """
    found = Detections.concatenate(parts)
    if len(found) == 0:
        return found
    part = np.concatenate([np.full(len(p), k) for k, p in enumerate(parts)])
    keep = np.concatenate([group[part[group] == part[group[0]]]
                           for group in clusters(found.boxes, found.scores, iou_threshold)])
    return found[np.sort(keep)]


def fuse(detections: Detections, iou_threshold: float) -> Detections:
    """Merge duplicate faces (IoU above ``iou_threshold``, :func:`clusters`) into one each.

    Each merged face gets the box that encloses all its duplicates (never less than any of them covers, so that a
    piece of a large face cut by a tile edge, fused with the whole face, cannot shrink the box and leave an eye
    outside), their highest score, and the landmarks of the highest-scoring duplicate with predicted (not estimated)
    landmarks; estimated landmarks are re-estimated from the fused box. Output order: descending score.
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
