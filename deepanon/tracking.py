"""Face tracks across video frames: one identity keeps one latent, and a face missed for a few frames stays covered."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepanon.detection import Detections
from deepanon.detection.boxes import iou


BRIDGE_GROWTH = 0.1  # a bridged box grows by this share of its size per missed frame: the face may have turned
STEADINESS = 0.8  # weight of a track's steady box and landmarks against this frame's detection (0: no smoothing)


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    landmarks: np.ndarray
    landmarks_estimated: bool
    steady_box: np.ndarray  # exponentially smoothed box (``STEADINESS``): the crop window jitters less than detections
    steady_landmarks: np.ndarray
    missed: int = 0
    velocity: np.ndarray | None = None  # box change per frame between the last two detections

    def follow(self, box: np.ndarray, landmarks: np.ndarray, estimated: bool) -> tuple[np.ndarray, np.ndarray]:
        """Take this frame's detection; return the box and landmarks to replace: the steady box grown to contain the
        detected one (the hole always covers the face found in this frame) and the steady landmarks."""
        self.velocity = (box - self.box) / (self.missed + 1)
        self.box, self.landmarks, self.landmarks_estimated, self.missed = box, landmarks, estimated, 0
        self.steady_box = STEADINESS * self.steady_box + (1 - STEADINESS) * box
        self.steady_landmarks = STEADINESS * self.steady_landmarks + (1 - STEADINESS) * landmarks
        covering = np.concatenate([np.minimum(self.steady_box[:2], box[:2]), np.maximum(self.steady_box[2:], box[2:])])
        return covering.astype(np.float32), self.steady_landmarks.astype(np.float32)

    def bridged_box(self, frames: int | None = None) -> np.ndarray:
        """Where the face probably is ``frames`` (default: ``missed``) frames after its last detection: the last box
        moved on at the last velocity and grown by ``BRIDGE_GROWTH`` per frame (so that a fast face's eye corners stay
        inside it)."""
        frames = self.missed if frames is None else frames
        box = self.box + (self.velocity if self.velocity is not None else 0) * frames
        margin = BRIDGE_GROWTH * frames / 2 * np.array([-1, -1, 1, 1]) * np.tile(box[2:] - box[:2], 2)
        return (box + margin).astype(np.float32)


class FaceTracker:
    """Greedy IoU matching of each frame's detections to the live tracks.

    A matched face is replaced at its track's steady box (``Track.follow``), which always contains the detected one.
    A track not matched in a frame is *bridged*: its box, moved on at its last velocity and grown
    (``Track.bridged_box``), is added to that frame's detections (score 0) for up to ``max_gap`` consecutive frames,
    so a one- or two-frame detector miss does not leave the face visible.
    """

    def __init__(self, max_gap: int = 2, iou_threshold: float = 0.3) -> None:
        self.max_gap = max_gap
        self.iou_threshold = iou_threshold
        self.tracks: list[Track] = []
        self.next_id = 0

    def update(self, detections: Detections) -> tuple[Detections, np.ndarray, int]:
        """Return (detections plus bridged boxes, track id per box, number of bridged boxes)."""
        n = len(detections.boxes)
        ids = np.full(n, -1, np.int64)
        matched_tracks: set[int] = set()
        if self.tracks and n:
            overlap = iou(detections.boxes, np.stack([t.bridged_box(t.missed + 1) for t in self.tracks]))
            for flat in np.argsort(-overlap, axis=None):
                d, t = np.unravel_index(flat, overlap.shape)
                if overlap[d, t] < self.iou_threshold:
                    break
                if ids[d] >= 0 or t in matched_tracks:
                    continue
                ids[d] = self.tracks[t].track_id
                matched_tracks.add(int(t))
        live: list[Track] = []
        bridged: list[Track] = []
        for t, track in enumerate(self.tracks):
            if t in matched_tracks:
                continue
            track.missed += 1
            if track.missed <= self.max_gap:
                bridged.append(track)
                live.append(track)
        by_id = {t.track_id: t for t in self.tracks}
        boxes, landmarks = detections.boxes.copy(), detections.landmarks.copy()
        for d in range(n):
            estimated = bool(detections.landmarks_estimated[d])
            if ids[d] < 0:
                ids[d] = self.next_id
                self.next_id += 1
                track = Track(int(ids[d]), boxes[d], landmarks[d], estimated, boxes[d].copy(), landmarks[d].copy())
            else:
                track = by_id[int(ids[d])]
                boxes[d], landmarks[d] = track.follow(detections.boxes[d], detections.landmarks[d], estimated)
            live.append(track)
        self.tracks = live
        detections = Detections(boxes, detections.scores, landmarks, detections.landmarks_estimated)
        if not bridged:
            return detections, ids, 0
        extra = Detections(
            boxes=np.stack([t.bridged_box() for t in bridged]),
            scores=np.zeros(len(bridged), np.float32),
            landmarks=np.stack([t.landmarks for t in bridged]).astype(np.float32),
            landmarks_estimated=np.array([t.landmarks_estimated for t in bridged]),
        )
        return Detections.concatenate([detections, extra]), np.concatenate([ids, [t.track_id for t in bridged]]), len(bridged)
