"""Crop and paste geometry of one face: the single owner of the box -> crop -> box mapping.

A face's tight box is squared around its centre, grown by ``expand`` (crop side / box side, a model setting saved with
the weights), cut from the image with edge replication where it leaves the image (the face stays centred), and resized
to ``size``². The tight box, in crop pixels, is the hole the generator paints. Pasting maps the generated crop back
and blends it with a feathered edge that lies entirely outside the box: every pixel of the box is replaced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np


@dataclass(frozen=True)
class FaceCrop:
    """Geometry of one face. ``box`` = tight face box (x0, y0, x1, y1) in image pixels; ``crop`` = integer square
    (x0, y0, x1, y1) in image pixels, possibly reaching outside the image; ``size`` = model resolution."""

    box: tuple[float, float, float, float]
    crop: tuple[int, int, int, int]
    size: int
    turns: int = 0
    hole_margin: float = 0.0  # the hole grown by this fraction of the crop side on each side (video key frames)

    @classmethod
    def from_box(cls, box: np.ndarray, size: int = 128, *, expand: float, turns: int = 0) -> FaceCrop:
        """Square the box around its centre and grow it to ``expand`` × the box's longer side. ``turns``: quarter turns
        (``np.rot90``) that bring the face upright in the crop (see ``quarter_turns``); the generator always sees an
        upright face and its result is turned back when pasted."""
        x0, y0, x1, y1 = (float(v) for v in box)
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 - x0 < 1 or y1 - y0 < 1:
            raise ValueError("degenerate face box (under 1 px a side, or not finite)")
        side = max(2, int(math.ceil(max(x1 - x0, y1 - y0) * expand)))
        left = int(round((x0 + x1) / 2 - side / 2))
        top = int(round((y0 + y1) / 2 - side / 2))
        return cls((x0, y0, x1, y1), (left, top, left + side, top + side), size, turns % 4)

    def with_side(self, side: int) -> FaceCrop:
        """The same face in a square crop of ``side`` px with the same centre."""
        left = int(round((self.crop[0] + self.crop[2]) / 2 - side / 2))
        top = int(round((self.crop[1] + self.crop[3]) / 2 - side / 2))
        return replace(self, crop=(left, top, left + side, top + side))

    @property
    def side(self) -> int:
        return self.crop[2] - self.crop[0]

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return self.size / self.side

    def _unturned(self, points: np.ndarray) -> np.ndarray:
        """Image pixel coordinates (..., 2) -> coordinates in [0, 1] of the crop before any turn."""
        return (np.asarray(points, np.float32) - np.array(self.crop[:2], np.float32)) / self.side

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Image pixel coordinates (..., 2) -> coordinates in [0, 1] of the (upright) crop, relative to its side."""
        crop = self._unturned(points)
        for _ in range(self.turns):  # np.rot90 moves (x, y) of a unit square to (y, 1 - x)
            crop = np.stack([crop[..., 1], 1 - crop[..., 0]], axis=-1)
        return crop.astype(np.float32)

    def hole_bounds(self) -> tuple[int, int, int, int]:
        """The tight box in pixels of the crop before any turn, grown by ``hole_margin``, rounded outward so that it
        covers the whole face."""
        x0, y0 = (self._unturned(np.array(self.box[:2])) - self.hole_margin) * self.size
        x1, y1 = (self._unturned(np.array(self.box[2:])) + self.hole_margin) * self.size
        return (
            max(0, math.floor(x0)),
            max(0, math.floor(y0)),
            min(self.size, math.ceil(x1)),
            min(self.size, math.ceil(y1)),
        )

    def certainty(self) -> np.ndarray:
        """C⁰ of the crop: float32 (size, size), 0 inside the hole, 1 elsewhere."""
        mask = np.ones((self.size, self.size), np.float32)
        x0, y0, x1, y1 = self.hole_bounds()
        mask[y0:y1, x0:x1] = 0
        return np.ascontiguousarray(np.rot90(mask, self.turns))

    def extract(self, image: np.ndarray) -> np.ndarray:
        """Cut the crop from an HxWx3 uint8 image (edges replicated outside the image), resized to size²."""
        h, w = image.shape[:2]
        x0, y0, x1, y1 = self.crop
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            raise ValueError(f"face crop {self.crop} does not overlap the {w}x{h} image")
        inside = image[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
        padded = cv2.copyMakeBorder(
            inside, max(-y0, 0), max(y1 - h, 0), max(-x0, 0), max(x1 - w, 0), cv2.BORDER_REPLICATE
        )
        interpolation = cv2.INTER_AREA if self.side > self.size else cv2.INTER_CUBIC
        return np.ascontiguousarray(np.rot90(cv2.resize(padded, (self.size, self.size), interpolation=interpolation),
                                             self.turns))

    @property
    def feather(self) -> float:
        """Feather width: 10 % of the box's longer side, at most the margin between box and crop, at least 1 px."""
        x0, y0, x1, y1 = self.box
        margin = min(x0 - self.crop[0], y0 - self.crop[1], self.crop[2] - x1, self.crop[3] - y1)
        return max(1.0, min(0.1 * max(x1 - x0, y1 - y0), margin))

    def paste_region(self, image_shape: tuple[int, ...], feather: float) -> tuple[int, int, int, int]:
        """Image pixels (x0, y0, x1, y1) that pasting may change: the box grown by the feather, clipped to the image."""
        h, w = image_shape[:2]
        x0, y0, x1, y1 = self.box
        return (
            max(0, math.floor(x0 - feather)),
            max(0, math.floor(y0 - feather)),
            min(w, math.ceil(x1 + feather)),
            min(h, math.ceil(y1 + feather)),
        )

    def blend_weights(self, region: tuple[int, int, int, int], feather: float) -> np.ndarray:
        """Alpha (float32, region shape) = 1 on every pixel touching the box, falling linearly to 0 ``feather`` px away."""
        rx0, ry0, rx1, ry1 = region
        xs = np.arange(rx0, rx1, dtype=np.float32) + 0.5
        ys = np.arange(ry0, ry1, dtype=np.float32) + 0.5
        bx0, by0, bx1, by1 = self.box
        # distance of each pixel (its nearest edge, so partly covered pixels count as inside) to the box
        dx = np.maximum(np.maximum(bx0 - (xs + 0.5), (xs - 0.5) - bx1), 0)
        dy = np.maximum(np.maximum(by0 - (ys + 0.5), (ys - 0.5) - by1), 0)
        distance = np.maximum(dy[:, None], dx[None, :])
        if feather <= 0:
            return (distance <= 0).astype(np.float32)
        return np.clip(1 - distance / feather, 0, 1).astype(np.float32)

    def paste(self, image: np.ndarray, generated: np.ndarray, feather: float, protected: np.ndarray | None = None) -> None:
        """Blend a generated size² crop back into ``image`` in place; pixels outside ``paste_region`` are untouched.

        ``protected`` (bool, image shape): pixels of faces already replaced; the feathered edge outside this box leaves
        them alone (it carries the original surroundings, which would put a 2-3 px strip of a neighbour's face back).
        """
        if generated.shape != (self.size, self.size, 3) or generated.dtype != np.uint8:
            raise ValueError(f"a generated crop must be uint8 ({self.size}, {self.size}, 3), got {generated.dtype} "
                             f"{generated.shape}")
        generated = np.ascontiguousarray(np.rot90(generated, -self.turns))
        region = self.paste_region(image.shape, feather)
        rx0, ry0, rx1, ry1 = region
        if rx1 <= rx0 or ry1 <= ry0:
            return
        # the region's pixel centres mapped into crop pixel coordinates, where the generated crop is sampled
        region_to_crop = np.array([[self.scale, 0, (rx0 + 0.5 - self.crop[0]) * self.scale - 0.5],
                                   [0, self.scale, (ry0 + 0.5 - self.crop[1]) * self.scale - 0.5]])
        source = generated
        if self.scale > 1.5:  # shrinking a lot: low-pass first so that sampling does not alias
            sigma = 0.5 * self.scale
            source = cv2.GaussianBlur(generated, (0, 0), sigma)
        patch = cv2.warpAffine(source, region_to_crop, (rx1 - rx0, ry1 - ry0),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        alpha = self.blend_weights(region, feather)
        if protected is not None:
            alpha[protected[ry0:ry1, rx0:rx1] & (alpha < 1)] = 0
        target = image[ry0:ry1, rx0:rx1]
        changed = alpha > 0
        # blended in uint8 by OpenCV: no float copies of the region (a close-up's would be tens of MiB, NOTES)
        target[changed] = cv2.blendLinear(patch, target, alpha, 1 - alpha)[changed]


def quarter_turns(landmarks: np.ndarray) -> int:
    """The ``np.rot90`` turns (0-3) that bring a face upright: its mouth below its eyes.

    landmarks: (5, 2) pixel (x, y) in the order of ``detection.types.LANDMARK_NAMES`` (eyes, nose, mouth corners).
    """
    points = np.asarray(landmarks, np.float64)
    dx, dy = points[3:5].mean(0) - points[:2].mean(0)  # eyes -> mouth
    return int(np.argmax([dy, -dx, -dy, dx]))  # the downward part of eyes -> mouth after 0, 1, 2, 3 turns
