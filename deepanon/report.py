"""The JSON report (schema ``SCHEMA``, documented in the README): what happened to each file and face, what was
skipped and why; and the same file read back as the faces to replace (``--boxes``) after a user edited it.

    {"schema": 1, "version": "0.1.0",
     "files": [{"input": "a.jpg", "output": "a_anonymized.jpg", "error": null, "frames": 1,
                "faces_found": 1, "boxes_bridged": 0, "faces_generated": 1, "faces_covered": 0, ...,
                "faces": [{"frame": 0, "track": 0, "box": [x0, y0, x1, y1], "score": 0.93,
                           "landmarks": [[x, y] × 5] or null, "replaced_by": "generate", "reason": null}]}],
     "skipped": [{"path": "b.heic", "reason": "unsupported suffix .heic"}],
     "errors": ["c.jpg: not a readable image (...)"]}
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepanon import __version__
from deepanon.detection import Detections
from deepanon.detection.types import canonical_order, landmarks_from_box
from deepanon.files import InputError

SCHEMA = 1


@dataclass
class FileReport:
    """What happened to one input file: counts, the frames that needed a fallback, and every face box (``faces``:
    the records of :class:`deepanon.pipeline.FaceRecord` with the frame and the track)."""

    input: str
    output: str | None = None
    error: str | None = None
    frames: int = 0
    faces_found: int = 0  # boxes the detector found (or the --boxes file gave)
    boxes_bridged: int = 0  # more boxes: tracks bridged over a detector miss
    faces_generated: int = 0
    faces_covered: int = 0
    bridged_frames: list[int] = field(default_factory=list)  # frames where a track's predicted box covered a missed face
    blacked_out_frames: list[int] = field(default_factory=list)  # frames whose detection failed, written all black
    warnings: list[str] = field(default_factory=list)
    faces: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def add_frame(self, faces: list[dict], tracks: Any, found: int, detection_failed: bool = False) -> None:
        """Count one frame's face records (found by the detector: the first ``found``; bridged: the rest)."""
        index = self.frames
        self.frames += 1
        self.faces_found += found
        if len(faces) > found:
            self.boxes_bridged += len(faces) - found
            self.bridged_frames.append(index)
        if detection_failed:
            self.blacked_out_frames.append(index)
        for face, track in zip(faces, tracks, strict=True):
            self.faces.append({"frame": index, "track": int(track)} | face)
            if face["replaced_by"] == "generate":
                self.faces_generated += 1
            elif face["replaced_by"] is not None:
                self.faces_covered += 1

    def to_dict(self) -> dict:
        return asdict(self)


def payload(reports: list[FileReport], errors: list[str], skipped: list[dict]) -> dict:
    """The whole report, ready for ``json.dumps``."""
    return {"schema": SCHEMA, "version": __version__, "files": [r.to_dict() for r in reports], "skipped": skipped,
            "errors": errors}


class BoxesFile:
    """A report read back for ``--boxes``: per input file, per frame, the faces to replace (with their tracks)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"{path}: not a readable JSON report ({err})") from err
        if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("files"), list):
            raise InputError(f"{path}: not a deepanon report of schema {SCHEMA} (write one with --detect-only --report)")
        self.files: dict[str, list[dict]] = {}
        for i, entry in enumerate(data["files"]):
            where = f"{path}: files[{i}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("input"), str):
                raise InputError(f"{where}: needs an \"input\" path")
            if entry.get("error") is None:  # a file that failed at detection has nothing to replace: not listed
                faces = entry.get("faces", [])
                if not isinstance(faces, list):
                    raise InputError(f"{where}.faces: must be a list")
                self.files[entry["input"]] = [_checked_face(face, f"{where}.faces[{j}]") for j, face in enumerate(faces)]
        self._resolved = {Path(name).resolve(): name for name in self.files}

    def faces_of(self, source: Path) -> list[dict]:
        """The faces listed for ``source`` (matched as written, else by resolved path); ``InputError`` if absent:
        a file the user did not review is not anonymized."""
        name = str(source) if str(source) in self.files else self._resolved.get(source.resolve())
        if name is None:
            raise InputError(f"{source}: not in {self.path} (run --detect-only on it first); nothing written")
        return self.files[name]

    def image_faces(self, source: Path) -> tuple[Detections, np.ndarray]:
        """The faces of a photo (every entry, whatever its frame) and their track ids."""
        return to_detections(self.faces_of(source))

    def video_faces(self, source: Path) -> list[tuple[Detections, np.ndarray]]:
        """Per frame (counted from the first frame processed), the faces and their track ids."""
        faces = self.faces_of(source)
        frames = max((face["frame"] for face in faces), default=-1) + 1
        per_frame: list[list[dict]] = [[] for _ in range(frames)]
        for face in faces:
            per_frame[face["frame"]].append(face)
        return [to_detections(f) for f in per_frame]


def _checked_face(face: Any, where: str) -> dict:
    """A face entry with a valid box (finite, x0 < x1, y0 < y1), optional score, landmarks (5 × 2), frame and
    track; ``InputError`` naming the entry otherwise."""
    if not isinstance(face, dict):
        raise InputError(f"{where}: must be an object with a \"box\"")
    box = face.get("box")
    if not (isinstance(box, list) and len(box) == 4 and all(_finite(v) for v in box)
            and box[0] < box[2] and box[1] < box[3]):
        raise InputError(f"{where}.box: must be [x0, y0, x1, y1] in pixels with x0 < x1 and y0 < y1, got {box}")
    landmarks = face.get("landmarks")
    if landmarks is not None and not (isinstance(landmarks, list) and len(landmarks) == 5 and all(
            isinstance(p, list) and len(p) == 2 and all(_finite(v) for v in p) for p in landmarks)):
        raise InputError(f"{where}.landmarks: must be null or 5 [x, y] points")
    score = face.get("score", 1.0)
    frame, track = face.get("frame", 0), face.get("track", -1)
    if not _finite(score) or not (isinstance(frame, int) and frame >= 0) or not isinstance(track, int):
        raise InputError(f"{where}: score must be a number, frame an integer ≥ 0 and track an integer")
    return {"box": box, "score": float(score), "landmarks": landmarks, "frame": frame, "track": track}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def to_detections(faces: list[dict]) -> tuple[Detections, np.ndarray]:
    """Checked face entries as ``Detections`` (landmarks estimated from the box where null) and track ids (an entry
    without a track gets one of its own, above the others)."""
    if not faces:
        return Detections.empty(), np.zeros(0, np.int64)
    boxes = np.array([f["box"] for f in faces], np.float32)
    estimated = np.array([f["landmarks"] is None for f in faces])
    landmarks = landmarks_from_box(boxes)
    if (~estimated).any():
        landmarks[~estimated] = canonical_order(np.array([f["landmarks"] for f in faces if f["landmarks"] is not None]))
    tracks = np.array([f["track"] for f in faces], np.int64)
    unknown = tracks < 0
    tracks[unknown] = max(int(tracks.max()), -1) + 1 + np.arange(unknown.sum())
    return Detections(boxes, np.array([f["score"] for f in faces], np.float32), landmarks, estimated), tracks
