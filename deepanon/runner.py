"""File-level jobs: which outputs to write for which inputs, and one image or video file end to end.

Every job returns a ``FileReport``; an input problem becomes a failed report with a one-line reason, never a
traceback, and never a partial output.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepanon.detection import Detections
from deepanon.io import InputError, output_format, read_image, walk_files, write_image
from deepanon.pipeline import Anonymizer, FrameResult, Replacement, cover_frame
from deepanon.streaming import Worker, prefetched
from deepanon.tracking import FaceTracker
from deepanon.video import VideoWriter, probe, read_frames

if TYPE_CHECKING:
    from deepanon.detection import Detector

log = logging.getLogger(__name__)
OUTPUT_TAG = "_anonymized"
COMPARE_TAG = "_compare"
PREFETCH_FRAMES = 2  # decoded frames waiting for detection
SHORT_VIDEO_FRACTION = 0.9  # fewer decoded frames than this share of the header's duration × fps: warn


@dataclass
class FileReport:
    """What happened to one input file."""

    input: str
    output: str | None = None
    error: str | None = None
    frames: int = 0
    faces_found: int = 0
    faces_generated: int = 0
    faces_covered: int = 0
    boxes_bridged: int = 0
    bridged_frames: list[int] = field(default_factory=list)  # frames where a track's last box covered a missed face
    blacked_out_frames: list[int] = field(default_factory=list)  # frames whose detection failed, written all black
    warnings: list[str] = field(default_factory=list)
    faces: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def frames_detection_failed(self) -> int:
        return len(self.blacked_out_frames)

    def add(self, result: FrameResult, detected: int) -> None:
        self.frames += 1
        self.faces_found += detected
        for face in result.faces:
            if face.replacement is Replacement.GENERATE:
                self.faces_generated += 1
            else:
                self.faces_covered += 1

    def to_dict(self) -> dict:
        data = asdict(self) | {"frames_detection_failed": self.frames_detection_failed}
        if not data["faces"]:
            del data["faces"]
        return data


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


def find_inputs(paths: Iterable[Path], suffixes: set[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Expand files and folders (recursively) into (file, root) pairs; return them and one error per bad path.

    In folders, hidden files and folders (an interrupted run's temporary files, macOS ``._`` files) and this tool's own
    outputs (``*_anonymized``, ``*_anonymized_compare``) are skipped.
    """
    found: list[tuple[Path, Path]] = []
    errors: list[str] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in walk_files(path) if p.suffix.lower() in suffixes
                           and not p.stem.endswith((OUTPUT_TAG, OUTPUT_TAG + COMPARE_TAG)))
            if not files:
                errors.append(f"{path}: no {'/'.join(sorted(suffixes))} files in this folder")
            found += [(p, path) for p in files]
        elif path.exists():
            found.append((path, path.parent))
        else:
            errors.append(f"{path}: no such file or folder")
    unique: dict[Path, tuple[Path, Path]] = {}
    for source, root in found:  # a file given twice (or a folder and a file in it) is done once, as first found
        unique.setdefault(source.resolve(), (source, root))
    return list(unique.values()), errors


def plan_outputs(inputs: list[tuple[Path, Path]], out: Path | None, suffix: str | None = None,
                 media_suffixes: set[str] = frozenset(), folder: bool = False) -> list[Job]:
    """Without ``out``: ``<stem>_anonymized<ext>`` beside each input. With ``out``: the tree below each given folder is
    mirrored under ``out`` (a single file goes straight into ``out``, or to ``out`` itself if it has a file suffix,
    is no folder and was not given as one, ``folder``: the user typed a trailing slash).

    Several inputs need ``out`` to be a folder: an existing file, or a new name ending in one of ``media_suffixes``,
    is refused.
    """
    if out is not None and len(inputs) > 1 and not folder and (
            out.is_file() or (not out.exists() and out.suffix.lower() in media_suffixes)):
        raise InputError(f"{out}: {len(inputs)} inputs need an output folder, not a file name")
    jobs = []
    for source, root in inputs:
        ext = suffix or source.suffix
        if out is None:
            target = source.with_name(f"{source.stem}{OUTPUT_TAG}{ext}")
        elif len(inputs) == 1 and out.suffix and not out.is_dir() and not folder:
            target = out
        else:
            target = (out / source.relative_to(root)).with_suffix(ext)
        jobs.append(Job(source, target))
    return jobs


def compare_path(target: Path) -> Path:
    """Where ``--compare`` writes the before | after picture of ``target``."""
    return target.with_name(f"{target.stem}{COMPARE_TAG}{target.suffix}")


def check_plan(jobs: list[Job], *, compare: bool = False, report: Path | None = None) -> None:
    """Refuse, before any work, a plan that writes one path twice or over an input other than the job's own: two
    inputs onto one output, or an output, a compare picture or the report onto another input. (An output onto its
    own input is ``check_target``'s, per file, with ``--overwrite``.)"""
    inputs = {job.source.resolve(): job.source for job in jobs}
    written: dict[Path, str] = {}

    def claim(path: Path, what: str, own_input: Path | None = None) -> None:
        key = path.resolve()
        if key in written:
            raise InputError(f"{path}: {written[key]} and {what} would both be written there; choose other output names")
        if key in inputs and key != own_input:
            raise InputError(f"{path}: {what} would replace the input {inputs[key]}; choose another output")
        written[key] = what

    for job in jobs:
        claim(job.target, f"the output of {job.source}", job.source.resolve())
        if compare:
            claim(compare_path(job.target), f"the compare picture of {job.source}")
    if report is not None:
        claim(report, "the report")
        if report.is_dir():
            raise InputError(f"{report}: the report path is a folder")


def check_target(job: Job, overwrite: bool) -> None:
    """Refuse to replace the input itself unless ``overwrite``; create the output folder."""
    if job.target.resolve() == job.source.resolve() and not overwrite:
        raise InputError(f"{job.source}: output path equals the input; pass --overwrite to replace the input")
    writable_folder(job.target.parent, "output folder")


def writable_folder(folder: Path, what: str) -> None:
    """Create ``folder`` (and its parents) if needed; ``InputError`` naming ``what`` when that fails or it is not
    writable."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{folder}: cannot create {what} ({err.strerror})") from err
    if not os.access(folder, os.W_OK):
        raise InputError(f"{folder}: {what} is not writable")


def face_seeds(seed: int | None, ids: Iterable[int]) -> list[int | None]:
    """One latent seed per face (``seed + id``), or None everywhere for z = 0."""
    return [None if seed is None else seed + int(i) for i in ids]


def side_by_side(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    gap = np.full((before.shape[0], max(4, before.shape[1] // 100), 3), 255, np.uint8)
    return np.concatenate([before, gap, after], axis=1)


def anonymize_image(
    job: Job,
    detector: Detector,
    anonymizer: Anonymizer,
    *,
    seed: int | None = None,
    keep_metadata: bool = False,
    compare: bool = False,
) -> FileReport:
    """Read, detect, replace every face, write atomically. Raises ``InputError`` for unusable inputs."""
    report = FileReport(str(job.source))
    output_format(job.target)
    image = read_image(job.source)
    try:
        detections = detector.detect(image.pixels)
    except Exception as err:  # noqa: BLE001 - without detections no face can be protected: write nothing
        raise InputError(f"{job.source}: face detection failed ({type(err).__name__}: {err}); nothing written") from err
    result = anonymizer.anonymize([image.pixels], [detections], [face_seeds(seed, range(len(detections.boxes)))])[0]
    if compare:  # written first and removed again if the output fails: a failed file leaves nothing
        write_image(compare_path(job.target), side_by_side(image.pixels, result.image))
    try:
        write_image(job.target, result.image, like=image, keep_metadata=keep_metadata)
    except BaseException:
        if compare:
            compare_path(job.target).unlink(missing_ok=True)
        raise
    report.output = str(job.target)
    report.add(result, len(detections.boxes))
    report.faces = [face.to_dict() for face in result.faces]
    return report


def anonymize_video(
    job: Job,
    detector: Detector,
    anonymizer: Anonymizer,
    *,
    seed: int | None = None,
    start: float | None = None,
    end: float | None = None,
    batch_frames: int = 8,
    on_frames: Callable[[int], None] | None = None,
    on_start: Callable[[float], None] | None = None,
) -> FileReport:
    """Stream frames through detection, tracking and the anonymizer; the output appears only when complete."""
    report = FileReport(str(job.source))
    info = probe(job.source)
    span = (end if end is not None else info.duration) - (start or 0.0)
    if on_start is not None:
        on_start(max(0.0, span) * info.fps)
    tracker = FaceTracker()
    writer = VideoWriter(job.target, info, job.source, start, end)

    def flush(batch: list[tuple[np.ndarray, Detections, np.ndarray, int, bool]]) -> None:
        _flush(batch, anonymizer, writer, report, seed)
        if on_frames is not None:
            on_frames(len(batch))

    try:
        # decoding (ffmpeg reader thread) | detection + tracking (this thread) | generation, paste, encoding (worker)
        with Worker(flush, depth=1) as worker:
            batch: list[tuple[np.ndarray, Detections, np.ndarray, int, bool]] = []
            for index, frame in enumerate(prefetched(read_frames(job.source, start, end, info.fps if info.variable_rate else None), depth=PREFETCH_FRAMES)):
                failed = False
                try:
                    detections = detector.detect(frame)
                except Exception as err:  # noqa: BLE001 - a detector failure must not leave a frame unprotected
                    log.warning("%s: detection failed on frame %d (%s); covering the whole frame", job.source, index, err)
                    detections, failed = Detections.empty(), True
                found = len(detections.boxes)
                detections, ids, bridged = tracker.update(detections)
                report.boxes_bridged += bridged
                if bridged:
                    report.bridged_frames.append(index)
                batch.append((frame, detections, ids, found, failed))
                if len(batch) == batch_frames:
                    worker.submit(batch)
                    batch = []
            if batch:
                worker.submit(batch)
            worker.join()
        if report.frames == 0:
            raise InputError(f"{job.source}: the video has no frames in the requested range")
        expected = max(0.0, min(end or info.duration, info.duration) - (start or 0.0)) * info.fps
        if report.frames < SHORT_VIDEO_FRACTION * expected - 1:
            report.warnings.append(f"only {report.frames} of the ~{round(expected)} frames that its duration suggests "
                                   "were decoded: the file may be cut short or damaged (or its audio runs longer)")
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    report.output = str(job.target)
    return report


def _flush(batch, anonymizer: Anonymizer, writer: VideoWriter, report: FileReport, seed: int | None) -> None:
    results = anonymizer.anonymize([b[0] for b in batch], [b[1] for b in batch], [face_seeds(seed, b[2]) for b in batch])
    for (_, _, _, found, failed), result in zip(batch, results):
        if failed:
            cover_frame(result.image)
            report.blacked_out_frames.append(report.frames)
        writer.write(result.image)
        report.add(result, found)

