"""Detectors built from other detectors: rescaling and tiling, quarter turns, horizontal-flip test-time augmentation,
unions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from deepanon.detection.base import Detector
from deepanon.detection.boxes import best_source, fuse, merge_contained
from deepanon.detection.tiling import cut_by_tile, merge_tiles, tiles
from deepanon.detection.types import Detections

FUSE_IOU = 0.4  # duplicates of one face found by several passes
# The largest input of one CenterFace run: its activations take ~200 MiB at 1024 px a side against ~420 MiB at 1536,
# in the same time and with the same recall on the WIDER photos (benchmarks/NOTES.md).
TILE = 1024


def fused(parts: Sequence[Detections]) -> Detections:
    """Every face of ``parts`` (one detector's passes, turns, or members), duplicates fused into their enclosing box
    and boxes inside others merged."""
    return merge_contained(fuse(Detections.concatenate(list(parts)), FUSE_IOU))


def fused_turns(turns: Sequence[Detections]) -> Detections:
    """The faces found on several quarter turns of one image: a face found on more than one keeps only the finds of
    the turn that scored it highest (:func:`boxes.best_source`, at the IoU that makes duplicates), then duplicates
    are fused as by :func:`fused`."""
    return fused([best_source(list(turns), FUSE_IOU)])


def resize_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 HxWx3 resized to ``width`` x ``height`` (area averaging down, bilinear up); identity at its own size."""
    if (height, width) == image.shape[:2]:
        return image
    shrink = width < image.shape[1] or height < image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class Tiled(Detector):
    """Run ``inner`` on the image resized by ``scale``, cut into tiles of at most ``tile`` px a side.

    Bounds the input size of ``inner`` on large frames; faces keep ``scale`` times their size whatever the photo's
    size or aspect ratio, so a large photo costs time in proportion to its area, never faces. Each tile is resized
    from the source pixels under it, so memory is bounded by the tile, not by the scaled photo. Neighbouring tiles
    share ``overlap`` px (of the resized image): a face up to that size cut by a tile edge is whole in the neighbour;
    a larger one is kept cut (never dropped) unless another pass finds it whole. ``max_side`` (an overview pass only)
    lowers the scale so that the longest side is at most that; images whose longest side is at most ``skip_up_to``
    are not looked at (an overview, left to the other passes on small images).
    """

    def __init__(self, inner: Detector, scale: float = 1.0, tile: int = TILE, overlap: int = 128,
                 max_side: int | None = None, skip_up_to: int = 0) -> None:
        self.inner, self.scale, self.tile, self.overlap, self.max_side = inner, scale, tile, overlap, max_side
        self.skip_up_to = skip_up_to

    def _detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        if max(h, w) <= self.skip_up_to:
            return Detections.empty()
        scale = self.scale if self.max_side is None else min(self.scale, self.max_side / max(h, w))
        height, width = max(1, round(h * scale)), max(1, round(w * scale))
        parts, cut = [], []
        for rect in tiles(height, width, self.tile, self.overlap):
            x0, y0, x1, y1 = (int(v) for v in rect)
            # the source pixels under the tile, one more where the tile's edge falls between two of them
            sx0, sy0 = math.floor(x0 * w / width), math.floor(y0 * h / height)
            sx1, sy1 = min(w, math.ceil(x1 * w / width)), min(h, math.ceil(y1 * h / height))
            size = (max(1, round((sx1 - sx0) * width / w)), max(1, round((sy1 - sy0) * height / h)))
            piece = resize_to(image[sy0:sy1, sx0:sx1], *size)
            found = self.inner.detect(np.ascontiguousarray(piece))
            found = found.transformed((sx1 - sx0) / size[0], (sy1 - sy0) / size[1], sx0, sy0)
            cut.append(cut_by_tile(found.transformed(width / w, height / h).boxes, rect, height, width))
            parts.append(found)
        return parts[0] if len(parts) == 1 else merge_tiles(parts, cut, FUSE_IOU)


def unturn_points(points: np.ndarray, turns: int, height: int, width: int) -> np.ndarray:
    """Points (..., 2) of ``np.rot90(image, turns)`` -> the same points of the ``height`` x ``width`` image."""
    points = np.asarray(points, np.float64)
    h, w = (width, height) if turns % 2 else (height, width)  # the turned image's size
    for _ in range((4 - turns) % 4):  # one more turn maps (x, y) of an h x w image to (y, w - x) of a w x h one
        points = np.stack([points[..., 1], w - points[..., 0]], axis=-1)
        h, w = w, h
    return points


def unturn_boxes(boxes: np.ndarray, turns: int, height: int, width: int) -> np.ndarray:
    """float32 (N, 4) boxes of ``np.rot90(image, turns)`` -> the same boxes of the ``height`` x ``width`` image."""
    corners = unturn_points(np.asarray(boxes).reshape(-1, 2, 2), turns, height, width)
    return np.concatenate([corners.min(1), corners.max(1)], axis=1).astype(np.float32)


class Turned(Detector):
    """Faces of the image turned by ``turns`` quarter turns (``np.rot90``), mapped back: a photo scanned or saved
    sideways or upside down. Landmarks keep the order they have in the turned image (the face's own left eye first),
    so ``geometry.quarter_turns`` finds which way is up for each face."""

    def __init__(self, inner: Detector, turns: int) -> None:
        self.inner, self.turns = inner, turns

    def _detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        found = self.inner.detect(np.ascontiguousarray(np.rot90(image, self.turns)))
        landmarks = unturn_points(found.landmarks, self.turns, h, w).astype(np.float32)
        return Detections(unturn_boxes(found.boxes, self.turns, h, w), found.scores, landmarks, found.landmarks_estimated)


class Reoriented(Detector):
    """Faces of a photo that may be turned sideways or upside down, at little cost for one that is not.

    ``upright`` runs on the image as it is; where it finds at least ``settled[0]`` faces scoring ``settled[1]`` or
    more, the photo stands upright and that is all. Else a cheaper ``probe`` runs on each quarter turn of it, and where
    a probe finds more faces scoring at least ``confident`` than ``upright`` did, that turn is how the photo (or part
    of it) stands: ``upright`` runs on it in place of the probe. All faces found are kept, each in the orientation that
    scored it highest (:func:`fused_turns`).
    """

    def __init__(self, upright: Detector, probe: Detector, confident: float,
                 settled: tuple[int, float] | None = None) -> None:
        self.upright, self.probe, self.confident, self.settled = upright, probe, confident, settled

    def search(self, image: np.ndarray, settle: bool = True) -> tuple[Detections, tuple[int, ...]]:
        """The faces found, and the turns on which the full detector ran (``settle`` False: the probes run even where
        ``settled`` says the image stands upright)."""
        found = [self.upright.detect(image)]
        if settle and self.settled is not None and int((found[0].scores >= self.settled[1]).sum()) >= self.settled[0]:
            return found[0], ()
        upright_count, chosen = int((found[0].scores >= self.confident).sum()), []
        for turns in (1, 2, 3):
            probed = Turned(self.probe, turns).detect(image)
            if int((probed.scores >= self.confident).sum()) > upright_count:
                probed = Turned(self.upright, turns).detect(image)
                chosen.append(turns)
            found.append(probed)
        return fused_turns(found), tuple(chosen)

    def _detect(self, image: np.ndarray) -> Detections:
        return self.search(image)[0]

    def for_clip(self) -> Detector:
        return ReorientedClip(self)


class ReorientedClip(Detector):
    """:class:`Reoriented` for the frames of one video: the turn search runs on every ``SEARCH_EVERY``-th frame (a new
    scene may stand another way; it does not settle while the last search found turned faces); the frames between run
    the full detector's clip schedule (``for_clip``: e.g. :class:`Alternating`, restarted by each search) upright and
    on the turns the last search chose, without probes. Should a search fail, the frames after it run upright."""

    SEARCH_EVERY = 10

    def __init__(self, reoriented: Reoriented) -> None:
        self.reoriented, self.frame = reoriented, 0
        self.between: list[Detector] = [reoriented.upright.for_clip()]

    def _detect(self, image: np.ndarray) -> Detections:
        self.frame += 1
        if (self.frame - 1) % self.SEARCH_EVERY == 0:
            upright, settle = self.reoriented.upright, len(self.between) == 1
            self.between = [upright.for_clip()]
            found, turns = self.reoriented.search(image, settle)
            self.between += [Turned(upright.for_clip(), t) for t in turns]
            return found
        return fused_turns([detector.detect(image) for detector in self.between])


class Alternating(Detector):
    """``full`` on a photo; on the frames of a clip, ``full`` on every ``every``-th frame and the cheaper ``between``
    on the frames in between, where the tracker bridges a face that ``between`` misses (``every - 1`` must not
    exceed the tracker's gap)."""

    def __init__(self, full: Detector, between: Detector, every: int) -> None:
        self.full, self.between, self.every = full, between, every

    def _detect(self, image: np.ndarray) -> Detections:
        return self.full.detect(image)

    def for_clip(self) -> Detector:
        return AlternatingClip(self)


class AlternatingClip(Detector):
    """The frames of one clip through :class:`Alternating`: frame 1, 1 + every, ... get the full detector."""

    def __init__(self, alternating: Alternating) -> None:
        self.alternating, self.frame = alternating, 0

    def _detect(self, image: np.ndarray) -> Detections:
        self.frame += 1
        full = (self.frame - 1) % self.alternating.every == 0
        return (self.alternating.full if full else self.alternating.between).detect(image)


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
        return fused([m.detect(image) for m in self.members])
