"""Faces in dark scenes: the generator sees its context brightened to the exposure it learned, and its face is darkened
back to the scene's.

The generator learned faces from well-exposed photos (FairFace); given the crop of a dark scene (a stage's audience,
a night shot) it still paints a face about as bright as those, which glows in the dark. A crop whose context (its
pixels around the hole) has a ``LEVEL_PERCENTILE``-th luma percentile under ``FLOOR`` is multiplied by
``gain = FLOOR / level`` (at most ``MAX_GAIN``) before generation, and the generated hole is divided by the same gain
after; the pixels around the hole are returned as they were. Crops as bright as most training crops are untouched.
"""

from __future__ import annotations

import numpy as np

from deepanon.monochrome import LUMA

LEVEL_PERCENTILE = 90
FLOOR = 96.0  # ~10th percentile of the context level over the FairFace training crops (benchmarks/NOTES.md)
MAX_GAIN = 8.0


def exposure_gain(crop: np.ndarray, certainty: np.ndarray) -> float:
    """The gain that brings ``crop``'s context (uint8 (S, S, 3) where ``certainty`` is 1) up to ``FLOOR``; 1 for a
    context at least that bright."""
    context = crop[certainty == 1].astype(np.float32) @ LUMA.astype(np.float32)
    if context.size == 0:
        return 1.0
    level = float(np.percentile(context, LEVEL_PERCENTILE))
    return float(np.clip(FLOOR / max(level, 1.0), 1.0, MAX_GAIN))


def brightened(crops: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S, 3) crops, each multiplied by its gain (clipped to 255)."""
    scaled = crops.astype(np.float32) * gains.astype(np.float32)[:, None, None, None]
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def darkened(generated: np.ndarray, crops: np.ndarray, certainty: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """The generated holes divided by their gains, with ``crops``' own pixels around the holes."""
    scaled = generated.astype(np.float32) / gains.astype(np.float32)[:, None, None, None]
    back = np.clip(np.round(scaled), 0, 255).astype(np.uint8)
    return np.where(certainty[..., None] == 1, crops, back)
