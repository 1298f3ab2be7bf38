"""Key-frame reuse for video: a track's generated face is carried to the next frames while the face holds still.

Generating every face of every frame costs most of a video's time, and each generation paints a slightly different
face, so the painted face flickers. A track's face is therefore generated on a key frame and carried to the frames
after it: its generated hole, in the key's own crop while the current box fits the key's hole and the landmarks have
not moved (the painted face stands still while the head does, whatever the detector's jitter), else shifted and
scaled onto the current crop by the fit of the key's landmarks to the current ones (the face follows the head as it
moves and as the camera zooms; where that fit moves it by at most ``SETTLE_PX`` from where it was last shown, it stays
there, so the detector's jitter does not shake it), over the current frame's own pixels around it. The key's whole
hole is shown, not only the current one inside it: its edge is where the generator made the face meet the pixels
around it. A new key frame is generated when the face changes in a way a shift and a zoom do not explain (a landmark
off the fit by more than ``MAX_RESIDUAL`` of the crop side and ``MIN_MOTION_PX`` image pixels: the head turns, the
mouth opens), its crop changes size by more than ``max_scale``, the current hole reaches more than ``EDGE_FILL`` past
the key's hole, the pixels around the hole have changed by more than ``MAX_SURROUNDINGS_CHANGE`` since the key frame
(the head moved against its background, the light changed: the carried face would show a seam), or ``hold`` frames
have passed.

Privacy: every pixel of the current hole is interpolated from the key's generated hole alone (where the current hole
reaches past it, the band is inpainted from that and the current frame's pixels around the hole), so nothing of the
key frame's real face, nor of the current frame's inside the hole, is ever shown. A key's hole is grown by
``KEY_HOLE_MARGIN`` so that the holes of the next frames, which the crop's whole-pixel placement and the detector's
jitter shift by a pixel or two, mostly fit inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import cv2
import numpy as np

from deepanon.geometry import FaceCrop

HOLD_FRAMES = 50  # a generated face is shown on at most this many frames (two seconds at 25 fps)
MAX_MOTION = 0.04  # of the crop side: 5 px of a 128² crop; the key's own crop is kept while no landmark moves more
MAX_RESIDUAL = 0.02  # of the crop side: landmark motion that a shift and a zoom of the key's face leave unexplained
MIN_MOTION_PX = 2.0  # but at least this many image pixels: a small face's landmarks jitter by a pixel or two
MAX_SCALE = 1.2  # crop side change, either way
KEY_HOLE_MARGIN = 0.03  # a key's hole is grown by this fraction of its crop side: the next frames' holes fit inside
EDGE_FILL = 0.1  # of the crop side: a hole may reach this far past its key's hole (the band between is inpainted)
BAND_RADIUS = 3  # px of the crop that inpainting looks at around the band a carried hole reaches past its key's
SETTLE_PX = 1.0  # a followed face stays where it was shown while the fit would move it by at most this many image px
RING_PX = 2  # crop pixels around the hole whose change since the key frame is measured
MAX_SURROUNDINGS_CHANGE = 20.0  # grey levels: past this, a carried face would show a seam, so a new one is generated


def hole_box(crop: FaceCrop) -> tuple[int, int, int, int]:
    """Pixel bounds (x0, y0, x1, y1) of ``crop``'s hole in the upright crop; (0, 0, 0, 0) when it has none."""
    hole = crop.certainty() == 0
    cols, rows = np.flatnonzero(hole.any(0)), np.flatnonzero(hole.any(1))
    if not cols.size:
        return 0, 0, 0, 0
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


@dataclass
class KeyFace:
    """A track's last generated face: its crop, its landmarks in [0, 1] of the upright crop, the frame it was made
    on, that frame's own pixels in the crop (``context``: what the face was generated to fit), and the generated crop
    (None until generated, or when generation failed)."""

    crop: FaceCrop
    landmarks: np.ndarray
    frame: int
    context: np.ndarray
    pixels: np.ndarray | None = None

    @cached_property
    def hole(self) -> tuple[int, int, int, int]:
        """The key's hole in its upright crop (``hole_box``), made once: every carried frame is checked against it."""
        return hole_box(self.crop)


@dataclass(frozen=True)
class Carry:
    """How a frame shows its track's key face: pasted at ``crop``, whose pixel (u, v) shows the key's generated
    pixels at ``scale`` · (u, v) + ``shift`` of the key's crop (scale 1, shift 0: the key's own crop)."""

    key: KeyFace
    crop: FaceCrop
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)

    def moved(self, other: Carry) -> float:
        """How far (image px) ``other``, a carry of the same key onto the same crop, shows any pixel of the current
        hole from another place of the key's face than this one does."""
        # the difference of the two sampled places is linear in (u, v): largest at the hole's first or last pixel
        x0, y0, x1, y1 = hole_box(self.crop)
        first, last = np.array([x0, y0], float), np.array([x1 - 1, y1 - 1], float)
        offset, scale = np.subtract(self.shift, other.shift), self.scale - other.scale
        largest = max(np.abs(scale * first + offset).max(), np.abs(scale * last + offset).max())
        return float(largest) * self.key.crop.side / self.crop.size

    def onto(self, crop: FaceCrop) -> Carry:
        """This carry's placement of the key's face in the image, seen through ``crop`` (same turns and size)."""
        a, b = crop_to_crop(crop, self.crop)
        s, n = self.scale, crop.size
        shift = np.asarray(self.shift) + s * (0.5 * a + n * b - 0.5)
        return Carry(self.key, crop, s * a, (float(shift[0]), float(shift[1])))

    def reach(self) -> float:
        """How far (key crop pixels) this crop's hole reaches past the key's hole where it is sampled."""
        x0, y0, x1, y1 = hole_box(self.crop)
        kx0, ky0, kx1, ky1 = self.key.hole
        (sx, sy), s = self.shift, self.scale
        first, last = (s * x0 + sx, s * y0 + sy), (s * (x1 - 1) + sx, s * (y1 - 1) + sy)  # sampled pixel centres
        return max(kx0 - first[0], ky0 - first[1], last[0] - (kx1 - 1), last[1] - (ky1 - 1), 0.0)

    def sample(self) -> np.ndarray:
        """The key's generated hole seen through this carry: size² pixels, each interpolated from the key's hole
        alone (its edge pixels repeated past it), never from the key frame's real pixels around the hole."""
        if self.key.pixels is None:
            raise ValueError("the key frame's face was not generated")
        x0, y0, x1, y1 = self.key.hole
        return self.seen(self.key.pixels[y0:y1, x0:x1], (x0, y0))

    def seen(self, source: np.ndarray, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
        """size² pixels of this crop, each sampled (bilinearly, edges repeated) from ``source``: a part of the key's
        crop whose first pixel lies at ``origin`` there, at the place this carry shows at that crop pixel."""
        (sx, sy), s, size = self.shift, self.scale, self.crop.size
        warp = np.array([[s, 0, sx - origin[0]], [0, s, sy - origin[1]]], np.float32)
        return cv2.warpAffine(np.ascontiguousarray(source), warp, (size, size),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)

    def surroundings_change(self, current: np.ndarray) -> float:
        """Mean absolute change (grey levels) of the pixels within ``RING_PX`` around the key's face as this carry
        shows it (``shown``), from the key frame (the same places of the face in the key's crop) to ``current`` (this
        crop of the current frame): the key's face was generated to fit what surrounded it then, so a large change
        shows as a seam at its edge."""
        shown = self.shown()
        ring = cv2.dilate(shown.astype(np.uint8), np.ones((2 * RING_PX + 1, 2 * RING_PX + 1), np.uint8)) > 0
        ring &= ~shown
        if not ring.any():
            return 0.0
        then = self.seen(self.key.context)
        return float(np.abs(then[ring].astype(np.int16) - current[ring]).mean())

    def shown(self) -> np.ndarray:
        """size² bool: the crop pixels that show the key's face: the current hole, and the key's whole hole where it
        reaches past it (so that the face meets the pixels around it where the key's face was generated to)."""
        return (self.crop.certainty() == 0) | self.inside()

    def inside(self) -> np.ndarray:
        """size² bool: the crop pixels whose sampled place lies within the key's hole (at most half a pixel out)."""
        x0, y0, x1, y1 = self.key.hole
        places = self.scale * np.arange(self.crop.size)
        xs, ys = places + self.shift[0], places + self.shift[1]
        return ((ys >= y0 - 0.5) & (ys <= y1 - 0.5))[:, None] & ((xs >= x0 - 0.5) & (xs <= x1 - 0.5))[None, :]


def shift_and_zoom(points: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, float]:
    """Least-squares fit of ``target ≈ scale · points + offset`` ((K, 2) each, no rotation); returns (scale, offset,
    the largest distance of a target point from its fitted place)."""
    centred = points - points.mean(0)
    spread = float((centred**2).sum())
    scale = float((centred * (target - target.mean(0))).sum()) / spread if spread > 0 else 1.0
    offset = target.mean(0) - scale * points.mean(0)
    residual = float(np.linalg.norm(scale * points + offset - target, axis=1).max())
    return scale, offset, residual


def crop_to_crop(source: FaceCrop, target: FaceCrop) -> tuple[float, np.ndarray]:
    """(scale, offset) with ``target``'s upright [0, 1] coordinates = scale · ``source``'s + offset (same turns)."""
    x0, y0, x1, y1 = source.crop
    corners = np.array([[x0, y0], [x1, y0], [x0, y1]], np.float64)
    scale, offset, _ = shift_and_zoom(source.to_crop(corners).astype(np.float64),
                                      target.to_crop(corners).astype(np.float64))
    return scale, offset


class KeyFaces:
    """Per track, the key face that the following frames may carry (see the module docstring)."""

    def __init__(self, hold: int = HOLD_FRAMES, max_motion: float = MAX_MOTION, max_scale: float = MAX_SCALE) -> None:
        self.hold, self.max_motion, self.max_scale = hold, max_motion, max_scale
        self.keys: dict[int, KeyFace] = {}
        self.shown: dict[int, Carry] = {}  # per track, where its key's face was last placed
        self.frame = -1

    def advance(self) -> int:
        """Move on to the next frame; returns its number. Keys too old to be carried to it are dropped."""
        self.frame += 1
        self.keys = {t: k for t, k in self.keys.items() if self.frame - k.frame < self.hold}
        self.shown = {t: c for t, c in self.shown.items() if t in self.keys}
        return self.frame

    def reusable(self, track: int, crop: FaceCrop, landmarks: np.ndarray, frame: int,
                 image: np.ndarray) -> Carry | None:
        """How ``track``'s face in ``frame`` (its crop, its landmarks in image pixels, the frame's ``image``) may show
        the track's key face: in the key's own crop while the face fits it unmoved, else the key's face shifted and
        zoomed onto ``crop``; None when a new face must be generated."""
        key = self.keys.get(track)
        if key is None or not 0 < frame - key.frame < self.hold or key.crop.turns != crop.turns:
            return None
        if not 1 / self.max_scale <= crop.side / key.crop.side <= self.max_scale:
            return None
        own = Carry(key, replace(crop, crop=key.crop.crop))
        if self.unmoved(own, landmarks) and self.fits(own, image):
            self.shown[track] = own
            return own
        scale, offset, residual = shift_and_zoom(crop.to_crop(landmarks), key.landmarks)
        if residual > max(MAX_RESIDUAL, MIN_MOTION_PX / crop.side):
            return None
        # pixel (u, v) of a crop has its centre at ((u, v) + 0.5) / size in [0, 1] of the crop
        shift = crop.size * offset + 0.5 * scale - 0.5
        follow = Carry(key, crop, scale, (float(shift[0]), float(shift[1])))
        last = self.shown.get(track)
        if last is not None and last.key is key:
            held = last.onto(crop)
            if held.moved(follow) <= SETTLE_PX and self.fits(held, image):
                return held
        if not self.fits(follow, image):
            return None
        self.shown[track] = follow
        return follow

    def unmoved(self, carry: Carry, landmarks: np.ndarray) -> bool:
        """Whether the face lies in the key's crop as it did: the box inside the crop, no landmark moved too far."""
        x0, y0, x1, y1 = carry.crop.box
        if x0 < carry.crop.crop[0] or y0 < carry.crop.crop[1] or x1 > carry.crop.crop[2] or y1 > carry.crop.crop[3]:
            return False
        moved = np.abs(carry.crop.to_crop(landmarks) - carry.key.landmarks).max()
        return bool(moved <= max(self.max_motion, MIN_MOTION_PX / carry.crop.side))

    @staticmethod
    def fits(carry: Carry, image: np.ndarray) -> bool:
        """Whether the key's hole covers the carry's hole, but for an edge of at most ``EDGE_FILL``, and the
        surroundings of the hole in ``image`` have changed by at most ``MAX_SURROUNDINGS_CHANGE`` since the key."""
        if carry.reach() > EDGE_FILL * carry.crop.size:
            return False
        try:
            current = carry.crop.extract(image)
        except ValueError:  # the crop has left the frame: a new face, or its cover, is made for this frame
            return False
        return carry.surroundings_change(current) <= MAX_SURROUNDINGS_CHANGE

    def remember(self, track: int, key: KeyFace) -> None:
        self.keys[track] = key

    def forget_failed(self) -> None:
        """Drop the keys whose generation failed: their tracks generate again on their next frame."""
        self.keys = {t: k for t, k in self.keys.items() if k.pixels is not None}


def carried(carry: Carry, current: np.ndarray) -> np.ndarray:
    """The size² crop to paste for a face that carries a key: the key's generated pixels (``Carry.sample``) where the
    carry shows them (``Carry.shown``), the current frame's own crop (``current``, from ``carry.crop.extract``)
    around them. Where the hole reaches past the key's, the band is inpainted (Telea) from the key's face inside it
    and the current pixels around the hole, never from the current frame's pixels in the hole."""
    pixels = current.copy()
    shown = carry.shown()
    pixels[shown] = carry.sample()[shown]
    band = shown & ~carry.inside()
    if band.any():
        pixels = cv2.inpaint(pixels, band.astype(np.uint8), BAND_RADIUS, cv2.INPAINT_TELEA)
    return pixels
