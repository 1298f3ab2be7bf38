"""Face tracks across video frames: one identity keeps one latent, and a face missed for a few frames stays covered."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepanon.detection import Detections
from deepanon.detection.boxes import iou


BRIDGE_GROWTH = 0.1  # a bridged box grows by this share of its size per missed frame: the face may have turned


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    landmarks: np.ndarray
    landmarks_estimated: bool
    missed: int = 0
    velocity: np.ndarray | None = None  # box change per frame between the last two detections

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
        for d in range(n):
            if ids[d] < 0:
                ids[d] = self.next_id
                self.next_id += 1
                track = Track(int(ids[d]), detections.boxes[d], detections.landmarks[d], bool(detections.landmarks_estimated[d]))
            else:
                track = by_id[int(ids[d])]
                track.velocity = (detections.boxes[d] - track.box) / (track.missed + 1)
                track.box, track.landmarks = detections.boxes[d], detections.landmarks[d]
                track.landmarks_estimated, track.missed = bool(detections.landmarks_estimated[d]), 0
            live.append(track)
        self.tracks = live
        if not bridged:
            return detections, ids, 0
        extra = Detections(
            boxes=np.stack([t.bridged_box() for t in bridged]),
            scores=np.zeros(len(bridged), np.float32),
            landmarks=np.stack([t.landmarks for t in bridged]).astype(np.float32),
            landmarks_estimated=np.array([t.landmarks_estimated for t in bridged]),
        )
        return Detections.concatenate([detections, extra]), np.concatenate([ids, [t.track_id for t in bridged]]), len(bridged)
