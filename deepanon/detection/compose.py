"""Detectors built from other detectors: rescaling and tiling, horizontal-flip test-time augmentation, unions."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from deepanon.detection.base import Detector
from deepanon.detection.boxes import drop_contained, fuse
from deepanon.detection.tiling import cut_by_tile, merge_tiles, tiles
from deepanon.detection.types import Detections

FUSE_IOU = 0.4  # duplicates of one face found by several passes
MAX_SIDE = 4096  # longest side of the (rescaled) image a pass looks at: bounds the time on very large photos


def resize(image: np.ndarray, scale: float) -> np.ndarray:
    """uint8 HxWx3 resized by ``scale`` (area averaging down, bilinear up); identity for scale 1."""
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


class Tiled(Detector):
    """Run ``inner`` on the image resized by ``scale``, cut into tiles of at most ``tile`` px a side.

    Bounds the input size of ``inner`` on large frames; small faces keep ``scale`` times their size. The resized
    image's longest side is capped at ``max_side`` (the scale is lowered for larger photos), so a 100-megapixel
    photo costs about as much as a 16-megapixel one; faces smaller than ~10 px at the capped scale may be missed. Neighbouring
    tiles share ``overlap`` px (of the resized image): a face up to that size cut by a tile edge is whole in the
    neighbour; a larger one is kept cut (never dropped) unless another pass finds it whole. Images whose longest side
    is at most ``skip_up_to`` are not looked at (an overview pass, left to the other passes on small images).
    """

    def __init__(self, inner: Detector, scale: float = 1.0, tile: int = 1536, overlap: int = 128,
                 max_side: int = MAX_SIDE, skip_up_to: int = 0) -> None:
        self.inner, self.scale, self.tile, self.overlap, self.max_side = inner, scale, tile, overlap, max_side
        self.skip_up_to = skip_up_to

    def _detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        if max(h, w) <= self.skip_up_to:
            return Detections.empty()
        scaled = resize(image, min(self.scale, self.max_side / max(h, w)))
        sx, sy = w / scaled.shape[1], h / scaled.shape[0]
        rects = tiles(scaled.shape[0], scaled.shape[1], self.tile, self.overlap)
        if len(rects) == 1:
            return self.inner.detect(scaled).transformed(sx, sy)
        parts, cut = [], []
        for rect in rects:
            x0, y0, x1, y1 = (int(v) for v in rect)
            found = self.inner.detect(np.ascontiguousarray(scaled[y0:y1, x0:x1])).transformed(1, 1, x0, y0)
            cut.append(cut_by_tile(found.boxes, rect, scaled.shape[0], scaled.shape[1]))
            parts.append(found.transformed(sx, sy))
        return merge_tiles(parts, cut, FUSE_IOU)


class Flipped(Detector):
    """Horizontal-flip test-time augmentation: faces of the image and of its mirror image, duplicates fused."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner

    def _detect(self, image: np.ndarray) -> Detections:
        mirrored = self.inner.detect(np.ascontiguousarray(image[:, ::-1])).flipped(image.shape[1])
        return fuse(Detections.concatenate([self.inner.detect(image), mirrored]), FUSE_IOU)


class Union(Detector):
    """Every face any of ``members`` finds, duplicates fused."""

    def __init__(self, members: Sequence[Detector]) -> None:
        self.members = list(members)

    def _detect(self, image: np.ndarray) -> Detections:
        return drop_contained(fuse(Detections.concatenate([m.detect(image) for m in self.members]), FUSE_IOU))
