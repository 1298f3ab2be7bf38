"""The detector interface."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from deepanon.detection.types import Detections


def check_image(image: np.ndarray) -> None:
    """Assert ``image`` is uint8 HxWx3 (RGB). Converting grayscale/RGBA/16-bit images is the caller's job."""
    assert isinstance(image, np.ndarray), type(image)
    assert image.dtype == np.uint8, f"expected uint8 RGB, got {image.dtype}"
    assert image.ndim == 3 and image.shape[2] == 3, f"expected HxWx3 RGB, got shape {image.shape}"
    assert image.shape[0] > 0 and image.shape[1] > 0, f"empty image {image.shape}"


class Detector(ABC):
    """Finds faces in an image. ``detect`` checks the input, ``_detect`` does the work."""

    def detect(self, image: np.ndarray) -> Detections:
        """image: uint8 HxWx3 RGB. Returns faces in pixels of ``image`` (``Detections.empty()`` when none)."""
        check_image(image)
        return self._detect(image)

    @abstractmethod
    def _detect(self, image: np.ndarray) -> Detections:
        """Faces in a checked uint8 HxWx3 RGB image."""
