"""Face detection: every backend returns ``Detections`` (boxes, scores, five landmarks) in input pixels."""

from deepanon.detection.base import Detector
from deepanon.detection.factory import DetectorName, create_detector
from deepanon.detection.types import Detections, landmarks_from_box

__all__ = ["Detections", "Detector", "DetectorName", "create_detector", "landmarks_from_box"]
