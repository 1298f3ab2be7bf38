"""The fixed result type of every detector, and landmarks estimated from a box."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Canonical landmark order: eye on the image-left, eye on the image-right, nose, mouth corner on the image-left,
# mouth corner on the image-right.
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")

# Mean landmark positions as fractions of the box (x from x0, y from y0) for the boxes our CenterFace backend puts
# around faces: the per-coordinate median of its predicted landmarks over its 440 detections scored >= 0.7 on 100
# WIDER FACE training photos, made left-right symmetric.
MEAN_LANDMARKS = np.array(
    [[0.27, 0.37], [0.73, 0.37], [0.50, 0.58], [0.31, 0.74], [0.69, 0.74]], dtype=np.float32
)


@dataclass(frozen=True)
class Detections:
    """Faces found in one image, in pixels of that image.

    boxes: float32 (N, 4) x0, y0, x1, y1 with x0 <= x1, y0 <= y1.
    scores: float32 (N,) in [0, 1].
    landmarks: float32 (N, 5, 2) pixel (x, y) in the canonical order of ``LANDMARK_NAMES``.
    landmarks_estimated: bool (N,), True where the landmarks come from ``landmarks_from_box``, not a model.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray
    landmarks_estimated: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.boxes)
        expected = {"boxes": (np.float32, (n, 4)), "scores": (np.float32, (n,)), "landmarks": (np.float32, (n, 5, 2)),
                    "landmarks_estimated": (np.bool_, (n,))}
        for name, (dtype, shape) in expected.items():
            value = getattr(self, name)
            if value.dtype != dtype or value.shape != shape:
                raise ValueError(f"Detections.{name}: expected {np.dtype(dtype)} {shape}, got {value.dtype} "
                                 f"{value.shape}")

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> Detections:
        """Select faces by an index, an index array, a boolean mask or a slice (always returns ``Detections``)."""
        if not isinstance(index, slice):
            index = np.atleast_1d(np.asarray(index))
            index = index if index.size else index.astype(np.int64)
        return Detections(self.boxes[index], self.scores[index], self.landmarks[index], self.landmarks_estimated[index])

    @staticmethod
    def empty() -> Detections:
        """No faces: arrays of length 0 with the right dtypes and shapes."""
        return Detections(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32), np.zeros(0, bool)
        )

    @staticmethod
    def from_boxes(boxes: np.ndarray, scores: np.ndarray) -> Detections:
        """Faces without trustworthy landmarks: landmarks estimated from the boxes."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        return Detections(boxes, np.asarray(scores, np.float32), landmarks_from_box(boxes), np.ones(len(boxes), bool))

    @staticmethod
    def concatenate(parts: Sequence[Detections]) -> Detections:
        """All faces of ``parts`` in order; ``Detections.empty()`` for no parts."""
        if not parts:
            return Detections.empty()
        return Detections(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.landmarks for p in parts]),
            np.concatenate([p.landmarks_estimated for p in parts]),
        )

    def transformed(self, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> Detections:
        """Coordinates mapped by ``(x, y) -> (x * sx + dx, y * sy + dy)``, e.g. from a tile or a resized image."""
        scale, shift = np.array([sx, sy], np.float64), np.array([dx, dy], np.float64)
        boxes = self.boxes.reshape(-1, 2, 2) * scale + shift
        landmarks = self.landmarks * scale + shift
        return Detections(
            boxes.reshape(-1, 4).astype(np.float32), self.scores, landmarks.astype(np.float32), self.landmarks_estimated
        )

    def flipped(self, width: int) -> Detections:
        """Faces of the horizontally mirrored image of ``width`` pixels, landmarks kept in canonical order."""
        boxes = np.stack([width - self.boxes[:, 2], self.boxes[:, 1], width - self.boxes[:, 0], self.boxes[:, 3]], 1)
        landmarks = self.landmarks.copy()
        landmarks[:, :, 0] = width - landmarks[:, :, 0]
        return Detections(boxes, self.scores, canonical_order(landmarks), self.landmarks_estimated)


def landmarks_from_box(boxes: np.ndarray) -> np.ndarray:
    """Mean face landmarks placed inside each box.

    boxes: (N, 4) x0, y0, x1, y1. Returns float32 (N, 5, 2) pixel (x, y) in canonical order.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    origin = boxes[:, None, :2]
    size = (boxes[:, 2:] - boxes[:, :2])[:, None, :]
    return (origin + MEAN_LANDMARKS[None] * size).astype(np.float32)


def canonical_order(landmarks: np.ndarray) -> np.ndarray:
    """Swap each eye pair and mouth-corner pair so that the image-left point comes first.

    landmarks: float (N, 5, 2) pixel (x, y). Returns a new float32 array of the same shape.
    """
    out = np.array(landmarks, np.float32).reshape(-1, 5, 2)
    for a, b in ((0, 1), (3, 4)):
        swap = out[:, a, 0] > out[:, b, 0]
        out[swap, a], out[swap, b] = out[swap, b].copy(), out[swap, a].copy()
    return out
