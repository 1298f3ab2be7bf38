"""Overlapping tiles: cut an image into tiles of bounded size and merge the faces found in them."""

from __future__ import annotations

import math

import numpy as np

from deepanon.detection.boxes import fuse, ios
from deepanon.detection.types import Detections

CUT_MARGIN = 2.0  # px: a box this close to an inner tile edge is taken as cut by that edge
COVERED_IOS = 0.5  # a cut face is dropped when this much of it lies inside an uncut face


def tile_spans(length: int, tile: int, overlap: int) -> np.ndarray:
    """int64 (K, 2) ``[start, end)`` spans of at most ``tile`` px covering ``[0, length)``, neighbours sharing at
    least ``overlap`` px.

    K is the fewest spans that fit, and they are balanced (all the same size), so that a length just above ``tile``
    is cut into two halves rather than two full tiles (1664 px: 2 × 896, not 2 × 1536). One span when ``length <= tile``.
    """
    if not 0 <= overlap < tile:
        raise ValueError(f"tile overlap must be in [0, tile), got overlap {overlap} and tile {tile}")
    if length <= tile:
        return np.array([[0, length]], np.int64)
    count = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (count - 1) * overlap) / count)
    starts = np.array([k * (length - size) // (count - 1) for k in range(count)], np.int64)
    return np.stack([starts, starts + size], 1)


def tiles(height: int, width: int, tile: int, overlap: int) -> np.ndarray:
    """int64 (K, 4) tile rectangles x0, y0, x1, y1 (exclusive ends) covering a ``height`` x ``width`` image."""
    xs, ys = tile_spans(width, tile, overlap), tile_spans(height, tile, overlap)
    return np.array([[x0, y0, x1, y1] for y0, y1 in ys for x0, x1 in xs], dtype=np.int64).reshape(-1, 4)


def cut_by_tile(boxes: np.ndarray, rect: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool (N,): boxes touching an edge of tile ``rect`` that is not an edge of the ``height`` x ``width`` image.

    boxes (N, 4) and rect (x0, y0, x1, y1) in pixels of the tiled image.
    """
    x0, y0, x1, y1 = rect
    return (
        ((x0 > 0) & (boxes[:, 0] <= x0 + CUT_MARGIN))
        | ((y0 > 0) & (boxes[:, 1] <= y0 + CUT_MARGIN))
        | ((x1 < width) & (boxes[:, 2] >= x1 - CUT_MARGIN))
        | ((y1 < height) & (boxes[:, 3] >= y1 - CUT_MARGIN))
    )


def merge_tiles(parts: list[Detections], cut: list[np.ndarray], iou_threshold: float) -> Detections:
    """Faces of all tiles (in image pixels) merged into one set; cut: per part, bool (N,) from ``cut_by_tile``.

    A face cut by an inner tile edge is dropped where an uncut detection covers it (it is whole in the neighbouring
    tile); it is kept otherwise, so no face is lost. Remaining duplicates are fused (``boxes.fuse``).
    """
    found = Detections.concatenate(parts)
    cut_mask = np.concatenate(cut) if cut else np.zeros(0, bool)
    whole = found.boxes[~cut_mask]
    covered = np.zeros(len(found), bool)
    if cut_mask.any() and len(whole):
        covered[cut_mask] = ios(found.boxes[cut_mask], whole).max(1) >= COVERED_IOS
    return fuse(found[~covered], iou_threshold)
