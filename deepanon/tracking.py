"""Face tracks across video frames: one identity keeps one latent, and a face missed for a few frames stays covered."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from deepanon.detection import Detections
from deepanon.detection.boxes import intersection, iou


BRIDGE_GROWTH = 0.1  # a bridged box grows by this share of its size per missed frame: the face may have turned
GROWTH_FRAMES = 5  # for at most this many missed frames (a box bridged longer keeps that size)
MAX_GAP = 4  # a track missed for up to this many frames is bridged: the video detector's full pass comes every 5th
EXIT_GAP = 25  # a track last seen cut by the frame's edge is bridged up to this many frames while its box is in frame
EDGE_PX = 2.0  # "cut by the edge": the box reaches this close to the frame's border
CUT_SIZE = (64, 36)  # (w, h) of the thumbnails compared to find a scene cut
CUT_DIFF = 20.0  # mean change (0-255) between two thumbnails at a cut; on the shared clips moves < 14, cuts 27-30
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
    at_edge: bool = False  # the last detection was cut by the frame's edge (``EDGE_PX``)

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
        moved on at the last velocity (its centre's; its size's only where it grows: a shrinking box, carried on,
        would turn inside out) and grown by ``BRIDGE_GROWTH`` per frame for up to ``GROWTH_FRAMES`` (so that a fast
        face's eye corners stay inside it). At the frame's edge the velocity of boxes cut by the frame says little (a
        face leaving it stays at the edge, cut ever more): the box enclosing the moved and the last one."""
        frames = self.missed if frames is None else frames
        velocity = np.zeros(4) if self.velocity is None else self.velocity
        size = self.box[2:] - self.box[:2]
        centre = (self.box[:2] + self.box[2:]) / 2 + (velocity[:2] + velocity[2:]) / 2 * frames
        size = np.maximum(size, size + (velocity[2:] - velocity[:2]) * frames)
        box = np.concatenate([centre - size / 2, centre + size / 2])
        if self.at_edge:
            box = np.concatenate([np.minimum(box[:2], self.box[:2]), np.maximum(box[2:], self.box[2:])])
        growth = BRIDGE_GROWTH * min(frames, GROWTH_FRAMES) / 2
        margin = growth * np.array([-1, -1, 1, 1]) * np.tile(box[2:] - box[:2], 2)
        return (box + margin).astype(np.float32)


def at_edge(box: np.ndarray, frame_size: tuple[int, int] | None) -> bool:
    """Whether ``box`` reaches within ``EDGE_PX`` of the border of a frame of ``frame_size`` (h, w)."""
    if frame_size is None:
        return False
    h, w = frame_size
    x0, y0, x1, y1 = (float(v) for v in box)
    return min(x0, y0, w - x1, h - y1) <= EDGE_PX


def in_frame(box: np.ndarray, frame_size: tuple[int, int]) -> bool:
    """Whether ``box`` still covers some of a frame of ``frame_size`` (h, w)."""
    frame = np.array([[0, 0, frame_size[1], frame_size[0]]], np.float32)
    return bool(intersection(box[None], frame)[0, 0] > 0)


class SceneCuts:
    """Finds hard cuts between consecutive frames: the mean absolute change of a small thumbnail over ``CUT_DIFF``."""

    def __init__(self) -> None:
        self.last: np.ndarray | None = None

    def __call__(self, frame: np.ndarray) -> bool:
        """Whether ``frame`` (uint8 (H, W, 3)) starts a new scene; the first frame does not."""
        thumb = cv2.resize(frame, CUT_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
        cut = self.last is not None and float(np.abs(thumb - self.last).mean()) > CUT_DIFF
        self.last = thumb
        return cut


class FaceTracker:
    """Greedy IoU matching of each frame's detections to the live tracks.

    A matched face is replaced at its track's steady box (``Track.follow``), which always contains the detected one.
    Detections scoring under ``confirm`` (a face turning away, blurred or cut by the frame scores low) only continue
    a track they match, after the confident ones have been matched, and never start one (as ByteTrack, Zhang et al.,
    ECCV 2022). A track not matched in a frame is *bridged*: its box, moved on at its last velocity and grown
    (``Track.bridged_box``), is added to that frame's detections (score 0) for up to ``max_gap`` consecutive frames,
    or ``exit_gap`` while the box stays in the frame for a track last seen cut by the frame's edge (``EDGE_PX``), where
    a face leaving the frame or cut by it is missed for longer; so a detector miss does not leave the face visible.
    """

    def __init__(self, max_gap: int = MAX_GAP, iou_threshold: float = 0.3, confirm: float = 0.0,
                 exit_gap: int = EXIT_GAP) -> None:
        self.max_gap, self.exit_gap = max_gap, exit_gap
        self.iou_threshold = iou_threshold
        self.confirm = confirm
        self.tracks: list[Track] = []
        self.next_id = 0

    def cut(self) -> None:
        """A new scene: no track goes on, so no bridged box outlives the shot it was in."""
        self.tracks = []

    def _match(self, boxes: np.ndarray, rows: np.ndarray, ids: np.ndarray, matched: set[int]) -> None:
        """Greedily give the detections ``rows`` (indices into ``boxes``) the ids of unmatched tracks they overlap."""
        free = [t for t in range(len(self.tracks)) if t not in matched]
        if not free or not rows.size:
            return
        overlap = iou(boxes[rows], np.stack([self.tracks[t].bridged_box(self.tracks[t].missed + 1) for t in free]))
        for flat in np.argsort(-overlap, axis=None):
            d, t = np.unravel_index(flat, overlap.shape)
            if overlap[d, t] < self.iou_threshold:
                break
            if ids[rows[d]] >= 0 or free[t] in matched:
                continue
            ids[rows[d]] = self.tracks[free[t]].track_id
            matched.add(free[t])

    def update(self, detections: Detections,
               frame_size: tuple[int, int] | None = None) -> tuple[Detections, np.ndarray, int]:
        """Return (this frame's detections that start or continue a track, plus bridged boxes; track id per box;
        number of bridged boxes). ``frame_size`` (h, w): the frame's, for the longer bridge at its edge."""
        confident = detections.scores >= self.confirm
        ids = np.full(len(detections), -1, np.int64)
        matched: set[int] = set()
        self._match(detections.boxes, np.flatnonzero(confident), ids, matched)
        self._match(detections.boxes, np.flatnonzero(~confident), ids, matched)
        kept = confident | (ids >= 0)  # a weak face that continues no track is dropped
        detections, ids = detections[kept], ids[kept]
        live: list[Track] = []
        bridged: list[Track] = []
        for t, track in enumerate(self.tracks):
            if t in matched:
                continue
            track.missed += 1
            gap = self.exit_gap if track.at_edge and frame_size and in_frame(track.bridged_box(), frame_size) else 0
            if track.missed <= max(self.max_gap, gap):
                bridged.append(track)
                live.append(track)
        by_id = {t.track_id: t for t in self.tracks}
        boxes, landmarks = detections.boxes.copy(), detections.landmarks.copy()
        for d in range(len(detections)):
            estimated = bool(detections.landmarks_estimated[d])
            if ids[d] < 0:
                ids[d] = self.next_id
                self.next_id += 1
                track = Track(int(ids[d]), boxes[d], landmarks[d], estimated, boxes[d].copy(), landmarks[d].copy())
            else:
                track = by_id[int(ids[d])]
                boxes[d], landmarks[d] = track.follow(detections.boxes[d], detections.landmarks[d], estimated)
            track.at_edge = at_edge(detections.boxes[d], frame_size)
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
