"""Key-frame reuse for video: a track's generated face is carried to the next frames while the face holds still.

Generating every face of every frame costs most of a video's time, and each generation paints a slightly different
face, so the painted face flickers. A track's face is therefore generated on a key frame and carried to the frames
after it: its generated hole, in the key's own crop while the current box fits the key's hole (the painted face stands
still while the head does, whatever the detector's jitter), else at the same place in a crop of the key's size
centred on the current box (the face follows the head, not the jitter of the box's size), over the current frame's
own pixels around the hole. A new key frame is generated when the face moves (a landmark shifts by more than
``max_motion`` of the crop side and ``MIN_MOTION_PX`` image pixels), its crop changes size by more than
``max_scale``, its box outgrows the key's hole, or ``hold`` frames have passed.

Privacy: every pixel of the current hole comes from the key's generated hole (a hole that is not inside the key's
generates a new key), so nothing of the key frame's real face is ever carried along. A key's hole is grown by
``KEY_HOLE_MARGIN`` so that the holes of the next frames, which the crop's whole-pixel placement shifts by a pixel
or two, fit inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from deepanon.geometry import FaceCrop

HOLD_FRAMES = 25  # a generated face is shown on at most this many frames (a second at 25 fps)
MAX_MOTION = 0.04  # of the crop side: 5 px of a 128² crop
MIN_MOTION_PX = 2.0  # but at least this many image pixels: a small face's landmarks jitter by a pixel or two
MAX_SCALE = 1.2  # crop side change, either way
KEY_HOLE_MARGIN = 0.03  # a key's hole is grown by this fraction of its crop side: the next frames' holes fit inside


@dataclass
class KeyFace:
    """A track's last generated face: its crop, its landmarks in [0, 1] of the upright crop, the frame it was made
    on, and the generated crop (None until generated, or when generation failed)."""

    crop: FaceCrop
    landmarks: np.ndarray
    frame: int
    pixels: np.ndarray | None = None

    @cached_property
    def hole(self) -> np.ndarray:
        """bool (size, size): the key's hole in its crop, made once (every carried frame checks its hole against it)."""
        return self.crop.certainty() == 0


class KeyFaces:
    """Per track, the key face that the following frames may carry (see the module docstring)."""

    def __init__(self, hold: int = HOLD_FRAMES, max_motion: float = MAX_MOTION, max_scale: float = MAX_SCALE) -> None:
        self.hold, self.max_motion, self.max_scale = hold, max_motion, max_scale
        self.keys: dict[int, KeyFace] = {}
        self.frame = -1

    def advance(self) -> int:
        """Move on to the next frame; returns its number. Keys too old to be carried to it are dropped."""
        self.frame += 1
        self.keys = {t: k for t, k in self.keys.items() if self.frame - k.frame < self.hold}
        return self.frame

    def reusable(self, track: int, crop: FaceCrop, landmarks: np.ndarray, frame: int) -> tuple[KeyFace, FaceCrop] | None:
        """The key face that ``track``'s face in ``frame`` (its crop, its landmarks in image pixels) may carry and
        the crop to carry it in: the key's own crop while the face fits it, else one of the key's side centred where
        ``crop`` is; None when a new face must be generated."""
        key = self.keys.get(track)
        if key is None or not 0 < frame - key.frame < self.hold or key.crop.turns != crop.turns:
            return None
        if not 1 / self.max_scale <= crop.side / key.crop.side <= self.max_scale:
            return None
        for carry in (replace(crop, crop=key.crop.crop), crop.with_side(key.crop.side)):
            if self.fits(key, carry, landmarks):
                return key, carry
        return None

    def fits(self, key: KeyFace, carry: FaceCrop, landmarks: np.ndarray) -> bool:
        """Whether ``carry`` (the current box in a crop of the key's side) can show ``key``'s face: the box lies in the
        crop, no landmark moved too far from the key's, and the hole lies inside the key's hole."""
        x0, y0, x1, y1 = carry.box
        if x0 < carry.crop[0] or y0 < carry.crop[1] or x1 > carry.crop[2] or y1 > carry.crop[3]:
            return False
        moved = np.abs(carry.to_crop(landmarks) - key.landmarks).max()
        if moved > max(self.max_motion, MIN_MOTION_PX / carry.side):
            return False
        return bool(np.all(key.hole[carry.certainty() == 0]))

    def remember(self, track: int, key: KeyFace) -> None:
        self.keys[track] = key

    def forget_failed(self) -> None:
        """Drop the keys whose generation failed: their tracks generate again on their next frame."""
        self.keys = {t: k for t, k in self.keys.items() if k.pixels is not None}


def carried(key: KeyFace, crop: FaceCrop, current: np.ndarray) -> np.ndarray:
    """The size² crop to paste for a face that carries ``key``: the key's generated pixels in the current hole, the
    current frame's own crop (``current``, from ``crop.extract``) around it."""
    if key.pixels is None:
        raise ValueError("the key frame's face was not generated")
    hole = crop.certainty() == 0
    pixels = current.copy()
    pixels[hole] = key.pixels[hole]
    return pixels
