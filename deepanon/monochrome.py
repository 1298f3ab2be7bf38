"""Black-and-white and toned photos: a generated face gets the photo's tone instead of the generator's colours.

A photo counts as monochrome when each of its channels is an affine function of its luma (grey: R = G = B = Y;
sepia, cyanotype and other toned prints: a tint that follows the brightness), to within ``MAX_RESIDUAL`` grey levels
rms. The generator paints colour faces; in a monochrome photo the face's luma is mapped through the photo's own
functions, so no colour appears that the photo does not have.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, the luma of JPEG's YCbCr
MAX_RESIDUAL = 2.0
SAMPLES = 65_536


@dataclass(frozen=True)
class Tone:
    """Channel c = ``scale[c]``·Y + ``offset[c]`` over the photo."""

    scale: np.ndarray
    offset: np.ndarray

    def fits(self, pixels: np.ndarray) -> bool:
        """Whether (..., 3) pixels are in this tone (rms residual at most ``MAX_RESIDUAL``): a face's own crop
        must be, so that a colour face in a mostly grey photo (a colour ID photo on a white page) keeps its colours."""
        sample = pixels.reshape(-1, 3).astype(np.float64)
        residual = sample - (sample @ LUMA)[:, None] * self.scale - self.offset
        return bool(np.sqrt(np.mean(residual**2)) <= MAX_RESIDUAL)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (..., 3) pixels in this tone: their luma through each channel's function."""
        luma = pixels.astype(np.float32) @ LUMA.astype(np.float32)
        toned = luma[..., None] * self.scale.astype(np.float32) + self.offset.astype(np.float32)
        return np.clip(np.round(toned), 0, 255).astype(np.uint8)


def photo_tone(image: np.ndarray) -> Tone | None:
    """The tone of a monochrome uint8 RGB image (least squares on an even sample of its pixels), None for colour."""
    step = max(1, int(np.ceil(np.sqrt(image.shape[0] * image.shape[1] / SAMPLES))))
    sample = image[::step, ::step].reshape(-1, 3).astype(np.float64)
    luma = sample @ LUMA
    (scale, offset), *_ = np.linalg.lstsq(np.stack([luma, np.ones_like(luma)], axis=1), sample, rcond=None)
    tone = Tone(scale, offset)
    return tone if tone.fits(sample) else None
