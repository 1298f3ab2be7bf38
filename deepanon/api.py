"""The Python entry point: :class:`Anonymizer` finds and replaces the faces of uint8 RGB arrays, one photo at a time
or a stream of video frames (faces tracked: one latent per person, a face missed for a frame or two stays covered).

    from deepanon import Anonymizer
    anonymizer = Anonymizer()                        # bundled weights, the default detector
    image, faces = anonymizer.anonymize(pixels)      # pixels: uint8 (H, W, 3) RGB
    image, faces = anonymizer.anonymize(pixels, boxes=[[40, 30, 120, 130]])   # exactly these faces, no detection
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

from deepanon.detection import Detector, DetectorName, Detections, create_detector
from deepanon.detection.factory import DEFAULT as DEFAULT_DETECTOR
from deepanon.detection.factory import DEFAULT_THREADS as DETECTOR_THREADS
from deepanon.detection.factory import DEFAULT_THRESHOLD, TRACK_THRESHOLD
from deepanon.keyframes import HOLD_FRAMES, KeyFaces
from deepanon.pipeline import FaceGenerator, FaceReplacer, Precision, Replacement, cover_frame, select_device
from deepanon.streaming import Worker
from deepanon.tracking import FaceTracker, SceneCuts
from deepanon.weights import WeightsError, crop_expand, default_weights_path, load_generator

log = logging.getLogger(__name__)
SUPPORTED_KEYPOINTS = (0, 5)  # the generator's pose input: none, or the detector's 5 landmarks
BATCH_FRAMES = 8  # video frames whose faces go through the generator together
BATCH_BYTES = 6 << 20  # but at most this many bytes of frames: 2 frames at 720p, 1 at 1080p (peak memory, NOTES)
MAX_FILES_PER_CALL = 16  # photos held decoded at once so that their faces share generator batches


def frames_per_batch(frame_bytes: int) -> int:
    """Video frames whose faces share generator calls: ``BATCH_FRAMES``, fewer where that many would hold more than
    ``BATCH_BYTES`` (several batches are in flight at once), at least 1."""
    return max(1, min(BATCH_FRAMES, BATCH_BYTES // frame_bytes))


def files_per_call(batch_size: int | None) -> int:
    """Photos worth anonymizing together: as many as one generator batch of ``batch_size`` holds faces (1-2 on the
    CPU, 8 compiled, 64 on CUDA), at most ``MAX_FILES_PER_CALL``; 1 without a generator (None: faces covered)."""
    return 1 if batch_size is None else min(MAX_FILES_PER_CALL, batch_size)


class SetupError(ValueError):
    """An option or the weights cannot be used; ``option`` names the command-line option concerned, if any."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


def face_replacer(weights: str | Path | None = None, replacement: Replacement | str = Replacement.GENERATE,
                  device: str = "auto", batch_size: int | None = None, truncation: float | None = None,
                  seeded: bool = False, precision: Precision | str = Precision.AUTO,
                  compile: bool = False) -> FaceReplacer:
    """The generator (unless faces are only covered) loaded from ``weights`` (default: the bundled ones), with the
    crop ratio it was trained with. Raises :class:`SetupError` with a one-line reason."""
    mode = Replacement(replacement)
    if mode is not Replacement.GENERATE:
        return FaceReplacer(None, replacement=mode)
    if truncation is not None and not seeded:
        raise SetupError("only applies to random latents: add --seed", "--truncation")
    path = Path(weights) if weights is not None else default_weights_path()
    if weights is None and not path.is_file():
        raise SetupError(f"no bundled generator weights at {path}; pass --weights FILE, or --replace blur to cover "
                         "faces instead")
    try:
        generator, metadata = load_generator(path)
    except WeightsError as err:
        raise SetupError(str(err)) from err
    if generator.config.num_keypoints not in SUPPORTED_KEYPOINTS:
        raise SetupError(f"{path}: the generator expects {generator.config.num_keypoints} keypoints; the detector "
                         "gives 5")
    try:
        target = select_device(device)
    except ValueError as err:
        raise SetupError(str(err), "--device") from err
    try:
        face_generator = FaceGenerator(generator, target, batch_size, Precision(precision), compile)
    except ValueError as err:
        raise SetupError(str(err), "--precision") from err
    return FaceReplacer(face_generator, replacement=mode, expand=crop_expand(metadata), truncation=truncation)


GivenFaces = Union[Detections, tuple[Detections, Sequence[int]], Sequence[Sequence[float]], np.ndarray]


def given_faces(boxes: GivenFaces) -> tuple[Detections, np.ndarray]:
    """(faces, their track ids) from faces given by the caller: ``Detections`` (ids 0..N-1), a pair (``Detections``,
    ids), or (N, 4) boxes x0, y0, x1, y1 in pixels (score 1, landmarks estimated from the box, ids 0..N-1). Raises
    ValueError for boxes that are not finite or not x0 ≤ x1, y0 ≤ y1."""
    if isinstance(boxes, tuple) and len(boxes) == 2 and isinstance(boxes[0], Detections):
        detections, ids = boxes
        if len(ids) != len(detections):
            raise ValueError(f"{len(ids)} track ids for {len(detections)} faces")
        return detections, np.asarray(ids, np.int64)
    if isinstance(boxes, Detections):
        return boxes, np.arange(len(boxes))
    array = np.asarray(boxes, np.float64)
    if array.size == 0:
        return Detections.empty(), np.zeros(0, np.int64)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4) x0, y0, x1, y1; got shape {array.shape}")
    if not np.isfinite(array).all() or (array[:, 2] < array[:, 0]).any() or (array[:, 3] < array[:, 1]).any():
        raise ValueError("boxes must be finite with x0 <= x1 and y0 <= y1")
    return Detections.from_boxes(array.astype(np.float32), np.ones(len(array), np.float32)), np.arange(len(array))


@dataclass
class TrackedFrame:
    """One frame and its faces to replace: their track ids, how many the detector found in this frame (the rest are
    tracks bridged over a miss), whether detection failed (the frame is blacked out), and after anonymization one
    record per face as in the JSON report."""

    frame: np.ndarray
    detections: Detections
    tracks: np.ndarray
    found: int
    detection_failed: bool = False
    faces: list[dict] = field(default_factory=list)

    @property
    def bridged(self) -> int:
        return len(self.detections) - self.found


class FaceFinder:
    """The detector, and for video a tracker over it: the part of :class:`Anonymizer` that needs no generator (what
    ``--detect-only`` runs). In a video the named detectors also keep faces scoring down to ``TRACK_THRESHOLD``, which
    only continue tracks (``FaceTracker``'s ``confirm``)."""

    def __init__(self, detector: Detector | DetectorName | str = DEFAULT_DETECTOR, threshold: float | None = None,
                 turned: bool = True, threads: int = DETECTOR_THREADS, spin_wait: bool = True) -> None:
        if not isinstance(detector, str):  # a Detector (or any object with its ``detect``)
            self.detector = self.clip_detector = detector
            self.confirm = 0.0
            return
        try:
            name = DetectorName(detector)
            self.confirm = DEFAULT_THRESHOLD[name] if threshold is None else threshold
            self.detector, self.clip_detector = (
                create_detector(name, threshold=t, threads=threads, turns=turned, spin_wait=spin_wait)
                for t in (self.confirm, min(self.confirm, TRACK_THRESHOLD)))
        except (ImportError, ValueError) as err:
            raise SetupError(str(err)) from err

    def detect(self, image: np.ndarray) -> Detections:
        """The faces the detector finds in a uint8 (H, W, 3) RGB image."""
        return self.detector.detect(image)

    def track(self, frames: Iterable[np.ndarray], boxes: Iterable[GivenFaces] | None = None) -> Iterator[TrackedFrame]:
        """Each frame with its faces to replace: detected and tracked (a track missed for a frame or two is bridged
        at its predicted box), or ``boxes``' entry for that frame as it is (no detection, no tracking; frames past
        the end of ``boxes`` have none). A frame whose detection fails gets ``detection_failed``. At a scene cut the
        tracks end and the detector's clip schedule starts again (its full search on the cut's frame)."""
        tracker, cuts, detector = FaceTracker(confirm=self.confirm), SceneCuts(), None
        given = iter(boxes) if boxes is not None else None
        for frame in frames:
            if given is not None:
                detections, tracks = given_faces(next(given, []))
                yield TrackedFrame(frame, detections, tracks, len(detections))
                continue
            if cuts(frame) or detector is None:
                tracker.cut()
                detector = self.clip_detector
                detector = detector.for_clip() if isinstance(detector, Detector) else detector
            try:
                detections, failed = detector.detect(frame), False
            except Exception as err:  # noqa: BLE001 - a detector failure must not leave a frame unprotected
                log.warning("detection failed on a frame (%s); covering the whole frame", err)
                detections, failed = Detections.empty(), True
            detections, tracks, bridged = tracker.update(detections, frame.shape[:2])
            yield TrackedFrame(frame, detections, tracks, len(detections) - bridged, failed)


class Anonymizer:
    """Find every face and replace it; see the module docstring. Options are those of ``deepanon image``.

    ``seed``: random latents drawn from this seed (face ``i`` of a photo, or track ``i`` of a video, gets ``seed + i``);
    None gives z = 0 (deterministic). Raises :class:`SetupError` for unusable options or weights.
    """

    def __init__(self, weights: str | Path | None = None, *, replacement: Replacement | str = Replacement.GENERATE,
                 detector: DetectorName | str = DEFAULT_DETECTOR, threshold: float | None = None, turned: bool = True,
                 seed: int | None = None, truncation: float | None = None, device: str = "auto",
                 batch_size: int | None = None, precision: Precision | str = Precision.AUTO, compile: bool = False,
                 detector_threads: int = DETECTOR_THREADS, detector_spin_wait: bool = True) -> None:
        self.replacer = face_replacer(weights, replacement, device, batch_size, truncation, seed is not None,
                                      precision, compile)
        self.finder = FaceFinder(detector, threshold, turned, detector_threads, detector_spin_wait)
        self.seed = seed

    @classmethod
    def from_parts(cls, finder: FaceFinder, replacer: FaceReplacer, seed: int | None = None) -> Anonymizer:
        """An anonymizer of an existing finder and replacer (e.g. a detector of your own in a :class:`FaceFinder`)."""
        anonymizer = cls.__new__(cls)
        anonymizer.finder, anonymizer.replacer, anonymizer.seed = finder, replacer, seed
        return anonymizer

    def seeds(self, ids: Iterable[int]) -> list[int | None]:
        """One latent seed per face (``seed + id``), or None everywhere for z = 0."""
        return [None if self.seed is None else self.seed + int(i) for i in ids]

    @property
    def files_per_call(self) -> int:
        """Photos worth anonymizing together (:meth:`anonymize_many`); see :func:`files_per_call`."""
        face_generator = self.replacer.face_generator
        return files_per_call(None if face_generator is None else face_generator.batch_size)

    def anonymize(self, image: np.ndarray, boxes: GivenFaces | None = None) -> tuple[np.ndarray, list[dict]]:
        """(new image, one record per face as in the JSON report) for a uint8 (H, W, 3) RGB image; ``boxes``:
        replace exactly these faces (see :func:`given_faces`) instead of detecting them. The input is not
        modified."""
        return self.anonymize_many([image], [boxes])[0]

    def anonymize_many(self, images: Sequence[np.ndarray],
                       boxes: Sequence[GivenFaces | None] | None = None) -> list[tuple[np.ndarray, list[dict]]]:
        """:meth:`anonymize` for several photos at once, their faces in shared generator batches (faster where a
        batch holds more faces than one photo has). ``boxes``: per photo, as in :meth:`anonymize`. A face's latent
        does not depend on the other photos; its pixels can differ by a few levels from a run alone, as a batch's
        size can change the rounding (bf16)."""
        found = [given_faces(self.finder.detect(image) if given is None else given)
                 for image, given in zip(images, [None] * len(images) if boxes is None else boxes, strict=True)]
        results = self.replacer.anonymize(images, [detections for detections, _ in found],
                                          [self.seeds(ids) for _, ids in found])
        return [(result.image, [face.to_dict() for face in result.faces]) for result in results]

    def anonymize_frames(self, frames: Iterable[np.ndarray], boxes: Iterable[GivenFaces] | None = None,
                         batch_frames: int | None = None, hold: int = HOLD_FRAMES) -> Iterator[tuple[np.ndarray, TrackedFrame]]:
        """Yield (new frame, its :class:`TrackedFrame`) for each uint8 RGB frame, in order (``boxes``: see
        :meth:`FaceFinder.track`). Detection runs in the calling thread while the generator works on the previous
        ``batch_frames`` frames (None: :func:`frames_per_batch` of the first frame) in another; a frame whose
        detection failed is blacked out. A track's generated face is carried to up to ``hold`` frames while it holds
        still (``keyframes``; 1 generates every face of every frame)."""
        done: list[tuple[np.ndarray, TrackedFrame]] = []
        keys = KeyFaces(hold) if hold > 1 else None

        def generate(batch: list[TrackedFrame]) -> None:
            results = self.replacer.anonymize([t.frame for t in batch], [t.detections for t in batch],
                                              [self.seeds(t.tracks) for t in batch], [t.tracks for t in batch], keys)
            for tracked, result in zip(batch, results, strict=True):
                if tracked.detection_failed:
                    cover_frame(result.image)
                tracked.faces = [face.to_dict() for face in result.faces]
                done.append((result.image, tracked))

        with Worker(generate, depth=1) as worker:
            batch: list[TrackedFrame] = []
            for tracked in self.finder.track(frames, boxes):
                batch.append(tracked)
                batch_frames = batch_frames or frames_per_batch(tracked.frame.nbytes)
                if len(batch) == batch_frames:
                    worker.submit(batch)
                    batch = []
                while done:
                    yield done.pop(0)
            if batch:
                worker.submit(batch)
            worker.join()
        while done:
            yield done.pop(0)
