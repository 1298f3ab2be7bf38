"""The detector interface."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from deepanon.detection.types import Detections


def check_image(image: np.ndarray) -> None:
    """Raise TypeError unless ``image`` is a numpy array and ValueError unless it is a non-empty uint8 HxWx3 (RGB)
    one. Converting grayscale/RGBA/16-bit images is the caller's job."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected HxWx3 RGB, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"empty image {image.shape}")


class Detector(ABC):
    """Finds faces in an image. ``detect`` checks the input, ``_detect`` does the work."""

    def detect(self, image: np.ndarray) -> Detections:
        """image: uint8 HxWx3 RGB. Returns faces in pixels of ``image`` (``Detections.empty()`` when none)."""
        check_image(image)
        return self._detect(image)

    @abstractmethod
    def _detect(self, image: np.ndarray) -> Detections:
        """Faces in a checked uint8 HxWx3 RGB image."""

    def for_clip(self) -> Detector:
        """The detector for the consecutive frames of one video: this one, or a fresh one that may use what earlier
        frames of the clip showed."""
        return self
