"""YuNet (libfacedetection, BSD-3) through the optional ``yuface`` package; its weights are compiled in."""

from __future__ import annotations

import numpy as np

from deepanon.detection.base import Detector
from deepanon.detection.types import Detections, canonical_order

INSTALL_HINT = (
    "the YuNet detector needs the optional package 'yuface' (wheels for CPython 3.10/3.11 on x86-64 Linux): "
    "pip install yuface, or choose another detector"
)


class YuNet(Detector):
    """YuNet on the whole image at its own resolution (it is meant for images up to about 960 px a side).

    ``yuface`` runs its own OpenMP threads (set ``OMP_NUM_THREADS`` before start-up to bound them) and does its own
    non-maximum suppression; its scores are whole percents, so thresholds have a 0.01 resolution.
    """

    def __init__(self, threshold: float = 0.5) -> None:
        try:
            from yuface import c_detect
        except ImportError as err:
            raise ImportError(INSTALL_HINT) from err
        self.threshold = threshold
        self._c_detect = c_detect

    def _detect(self, image: np.ndarray) -> Detections:
        # rows: score in percent, x, y, w, h, five landmark (x, y) pairs, one more value (unused); int16
        raw = self._c_detect(np.ascontiguousarray(image[:, :, ::-1])).astype(np.float32)
        raw = raw[raw[:, 0] >= self.threshold * 100]
        if len(raw) == 0:
            return Detections.empty()
        h, w = image.shape[:2]
        xywh = raw[:, 1:5]
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
        boxes = np.clip(boxes, 0, np.array([w, h, w, h], np.float32))
        landmarks = canonical_order(raw[:, 5:15].reshape(-1, 5, 2))
        return Detections(boxes, raw[:, 0] / 100, landmarks, np.zeros(len(raw), bool))
