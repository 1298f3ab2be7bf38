"""File-level jobs: which outputs to write for which inputs, and one image or video file end to end.

Every job returns a ``FileReport``; an input problem becomes a failed report with a one-line reason, never a
traceback, and never a partial output.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar
from pathlib import Path

import numpy as np

from deepanon.api import Anonymizer, FaceFinder, given_faces
from deepanon.keyframes import HOLD_FRAMES
from deepanon.detection import Detections
from deepanon.files import InputError, walk_files
from deepanon.images import LoadedImage, output_format, read_image, write_image
from deepanon.pipeline import FaceRecord
from deepanon.report import BoxesFile, FileReport
from deepanon.streaming import prefetched
from deepanon.video import VideoInfo, VideoWriter, probe, read_frames

log = logging.getLogger(__name__)
OUTPUT_TAG = "_anonymized"
COMPARE_TAG = "_compare"
T = TypeVar("T")
PREFETCH_FRAMES = 2  # decoded frames waiting for detection
SHORT_VIDEO_FRACTION = 0.9  # fewer decoded frames than this share of the header's duration × fps: warn


@dataclass(frozen=True)
class Job:
    """One input file, its output and, with ``--compare DIR``, where its before | after picture goes."""

    source: Path
    target: Path
    compare: Path | None = None


def find_inputs(paths: Iterable[Path], suffixes: set[str]) -> tuple[list[tuple[Path, Path]], list[str], list[dict]]:
    """Expand files and folders (recursively) into (file, root) pairs; return them, one error per bad path, and the
    files found in folders but skipped, each with the reason (another suffix, hidden, a broken link, an output of
    this tool: ``*_anonymized``, ``*_compare``).

    A file reached twice under the same path (given twice, or a folder and a file in it) is done once; a link and
    its target are two inputs with two outputs.
    """
    found: list[tuple[Path, Path]] = []
    errors: list[str] = []
    skipped: list[dict] = []
    for path in paths:
        if str(path) == "-":
            errors.append("-: reading from standard input is not supported; save the input to a file first")
        elif path.is_dir():
            files = []
            for p, reason in walk_files(path):
                if reason is None and p.suffix.lower() not in suffixes:
                    reason = f"unsupported suffix {p.suffix}" if p.suffix else "no file suffix"
                elif reason is None and p.stem.endswith((OUTPUT_TAG, COMPARE_TAG)):
                    reason = "an output of deepanon"
                if reason is None:
                    files.append(p)
                else:
                    skipped.append({"path": str(p), "reason": reason})
            if not files:
                errors.append(f"{path}: no {'/'.join(sorted(suffixes))} files in this folder")
            found += [(p, path) for p in sorted(files)]
        elif path.exists():
            found.append((path, path.parent))
        else:
            errors.append(f"{path}: no such file or folder")
    unique: dict[str, tuple[Path, Path]] = {}
    for source, root in found:
        unique.setdefault(os.path.abspath(source), (source, root))
    return list(unique.values()), errors, skipped


def plan_outputs(inputs: list[tuple[Path, Path]], out: Path | None, suffix: str | None = None,
                 media_suffixes: set[str] = frozenset(), folder: bool = False, compare: Path | None = None) -> list[Job]:
    """Without ``out``: ``<stem>_anonymized<ext>`` beside each input. With ``out``: the tree below each given folder is
    mirrored under ``out`` (a single file goes straight into ``out``, or to ``out`` itself if it has a file suffix,
    is no folder and was not given as one, ``folder``: the user typed a trailing slash). ``compare``: the before |
    after pictures mirror the same tree under that folder, as ``<name>_compare<ext>``.

    Several inputs need ``out`` to be a folder: an existing file, or a new name ending in one of ``media_suffixes``,
    is refused.
    """
    if out is not None and str(out) == "-":
        raise InputError("-: writing to standard output is not supported; give an output file or folder")
    if out is not None and len(inputs) > 1 and not folder and (
            out.is_file() or (not out.exists() and out.suffix.lower() in media_suffixes)):
        raise InputError(f"{out}: {len(inputs)} inputs need an output folder, not a file name")
    jobs = []
    for source, root in inputs:
        ext = suffix or source.suffix
        relative = source.relative_to(root).with_suffix(ext)
        if out is None:
            target = source.with_name(f"{source.stem}{OUTPUT_TAG}{ext}")
        elif len(inputs) == 1 and out.suffix and not out.is_dir() and not folder:
            target = out
        else:
            target = out / relative
        picture = None if compare is None else (compare / relative).with_stem(f"{relative.stem}{COMPARE_TAG}")
        jobs.append(Job(source, target, picture))
    return jobs


def check_plan(jobs: list[Job], *, report: Path | None = None, compare: Path | None = None) -> None:
    """Refuse, before any work, a plan that writes one path twice or over an input other than the job's own: two
    inputs onto one output, or an output, a compare picture or the report onto another input. (An output onto its
    own input is ``check_target``'s, per file, with ``--overwrite``.) The ``compare`` folder holds the original faces:
    it must not be, or lie inside, a folder that receives outputs, nor hold one."""
    inputs = {job.source.resolve(): job.source for job in jobs}
    written: dict[Path, str] = {}

    def claim(path: Path, what: str, own_input: Path | None = None) -> None:
        key = path.resolve()
        if key in written:
            raise InputError(f"{path}: {written[key]} and {what} would both be written there; choose other output names")
        if key in inputs and key != own_input:
            raise InputError(f"{path}: {what} would replace the input {inputs[key]}; choose another output")
        written[key] = what

    if compare is not None:
        folder = compare.resolve()
        for job in jobs:
            outputs = job.target.parent.resolve()
            if folder == outputs or folder.is_relative_to(outputs) or outputs.is_relative_to(folder):
                raise InputError(f"{compare}: the before | after pictures show the original faces and must not go "
                                 f"into or around the output folder {job.target.parent}; choose a folder outside it")
    for job in jobs:
        claim(job.target, f"the output of {job.source}", job.source.resolve())
        if job.compare is not None:
            claim(job.compare, f"the compare picture of {job.source}")
    if report is not None:
        claim(report, "the report")
        if report.is_dir():
            raise InputError(f"{report}: the report path is a folder")


def guarded(job: Job, work: Callable[[], FileReport], *, check_output: bool = True,
            overwrite: bool = False) -> FileReport:
    """``work()``'s report; an input, OS or unexpected error becomes a failed report with a one-line error instead
    (outputs are written atomically, so a failed file leaves none). ``check_output``: first ``check_target``."""
    try:
        if check_output:
            check_target(job, overwrite)
        return work()
    except (InputError, OSError) as err:
        message = str(err) if isinstance(err, InputError) else f"{job.source}: {err}"
    except Exception as err:  # noqa: BLE001 - a bug hit by one file is that file's error, never a traceback
        log.debug("unexpected error on %s", job.source, exc_info=True)
        message = f"{job.source}: unexpected error ({type(err).__name__}: {err}); nothing written (-v for details)"
    return FileReport(str(job.source), error=message)


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


def side_by_side(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    gap = np.full((before.shape[0], max(4, before.shape[1] // 100), 3), 255, np.uint8)
    return np.concatenate([before, gap, after], axis=1)


def _detections_or_fail(finder: FaceFinder, job: Job, pixels: np.ndarray) -> Detections:
    try:
        return finder.detect(pixels)
    except Exception as err:  # noqa: BLE001 - without detections no face can be protected: write nothing
        raise InputError(f"{job.source}: face detection failed ({type(err).__name__}: {err}); nothing written") from err


def detect_image(job: Job, finder: FaceFinder) -> FileReport:
    """``--detect-only``: the faces of one photo, for the report; nothing is written."""
    report = FileReport(str(job.source))
    detections = _detections_or_fail(finder, job, read_image(job.source).pixels)
    report.add_frame([FaceRecord.of(detections, j, None).to_dict() for j in range(len(detections))],
                     range(len(detections)), len(detections))
    return report


def groups(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """``items`` in consecutive groups of ``size`` (the last one shorter): the photos anonymized together."""
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def anonymize_images(jobs: Sequence[Job], anonymizer: Anonymizer, *, boxes: BoxesFile | None = None,
                     keep_metadata: bool = False, overwrite: bool = False) -> Iterator[FileReport]:
    """Read each photo and find its faces (or take those ``boxes`` lists for it), replace the faces of all of them
    together (:meth:`Anonymizer.anonymize_many`; if that raises, one photo at a time, so that an error stays with
    its photo), then write each atomically (and its before | after picture to ``job.compare``). Yields one report
    per job, in order, each as soon as its file is written: a file's problem is that file's failed report (see
    :func:`guarded`), the others go on."""
    found: dict[int, tuple[LoadedImage, tuple[Detections, np.ndarray]]] = {}

    def read(n: int) -> FileReport:
        job = jobs[n]
        output_format(job.target)
        given = boxes.image_faces(job.source) if boxes is not None else None
        image = read_image(job.source)
        found[n] = image, given or given_faces(_detections_or_fail(anonymizer.finder, job, image.pixels))
        return FileReport(str(job.source))

    reports = [guarded(job, partial(read, n), overwrite=overwrite) for n, job in enumerate(jobs)]
    ready = sorted(found)
    together = {}
    if len(ready) > 1:
        try:
            together = dict(zip(ready, anonymizer.anonymize_many([found[n][0].pixels for n in ready],
                                                                 [found[n][1] for n in ready]), strict=True))
        except Exception:  # noqa: BLE001 - each photo is tried alone below
            log.debug("anonymizing %d photos together failed; one at a time", len(ready), exc_info=True)

    def finish(n: int) -> FileReport:
        image, faces = found[n]
        pixels, records = together.get(n) or anonymizer.anonymize_many([image.pixels], [faces])[0]
        return write_result(jobs[n], image, pixels, records, faces[1], keep_metadata)

    for n, job in enumerate(jobs):
        if n in found:
            reports[n] = guarded(job, partial(finish, n), check_output=False)
        yield reports[n]


def write_result(job: Job, image: LoadedImage, pixels: np.ndarray, records: list[dict], ids: np.ndarray,
                 keep_metadata: bool) -> FileReport:
    """Write the anonymized ``pixels`` of ``image`` to ``job.target`` (and the before | after picture first: removed
    again if the output fails, so a failed file leaves nothing); its report."""
    if job.compare is not None:
        writable_folder(job.compare.parent, "compare folder")
        write_image(job.compare, side_by_side(image.pixels, pixels))
    try:
        write_image(job.target, pixels, like=image, keep_metadata=keep_metadata)
    except BaseException:
        if job.compare is not None:
            job.compare.unlink(missing_ok=True)
        raise
    report = FileReport(str(job.source), output=str(job.target))
    report.add_frame(records, ids, len(records))
    return report


def _video_frames(job: Job, start: float | None, end: float | None,
                  on_start: Callable[[float], None] | None) -> tuple[VideoInfo, Iterator[np.ndarray]]:
    """The video's header and its decoded frames in [start, end), decoded ahead in a thread."""
    info = probe(job.source)
    span = (end if end is not None else info.duration) - (start or 0.0)
    if on_start is not None:
        on_start(max(0.0, span) * info.fps)
    frames = read_frames(job.source, start, end, info.fps if info.variable_rate else None)
    return info, prefetched(frames, depth=PREFETCH_FRAMES)


def _check_frames(job: Job, report: FileReport, info: VideoInfo, start: float | None, end: float | None) -> None:
    """No frame decoded: ``InputError``; far fewer than the header promises: a warning in the report."""
    if report.frames == 0:
        raise InputError(f"{job.source}: the video has no frames in the requested range")
    expected = max(0.0, min(end or info.duration, info.duration) - (start or 0.0)) * info.fps
    if report.frames < SHORT_VIDEO_FRACTION * expected - 1:
        report.warnings.append(f"only {report.frames} of the ~{round(expected)} frames that its duration suggests "
                               "were decoded: the file may be cut short or damaged (or its audio runs longer)")


def detect_video(job: Job, finder: FaceFinder, *, start: float | None = None, end: float | None = None,
                 on_frames: Callable[[int], None] | None = None,
                 on_start: Callable[[float], None] | None = None) -> FileReport:
    """``--detect-only``: every frame's faces as the anonymizer would replace them (tracked, bridged boxes
    included), for the report; nothing is written."""
    report = FileReport(str(job.source))
    info, frames = _video_frames(job, start, end, on_start)
    for tracked in finder.track(frames):
        records = [FaceRecord.of(tracked.detections, j, None).to_dict() for j in range(len(tracked.detections))]
        report.add_frame(records, tracked.tracks, tracked.found, tracked.detection_failed)
        if on_frames is not None:
            on_frames(1)
    _check_frames(job, report, info, start, end)
    return report


def anonymize_video(
    job: Job,
    anonymizer: Anonymizer,
    *,
    boxes: BoxesFile | None = None,
    start: float | None = None,
    end: float | None = None,
    batch_frames: int | None = None,
    hold: int = HOLD_FRAMES,
    on_frames: Callable[[int], None] | None = None,
    on_start: Callable[[float], None] | None = None,
) -> FileReport:
    """Stream frames through detection and tracking (or the faces ``boxes`` lists per frame) and the anonymizer;
    decoding, detection and generation overlap in threads; the output appears only when complete."""
    report = FileReport(str(job.source))
    given = boxes.video_faces(job.source) if boxes is not None else None
    info, frames = _video_frames(job, start, end, on_start)
    writer = VideoWriter(job.target, info, job.source, start, end)
    try:
        for image, tracked in anonymizer.anonymize_frames(frames, given, batch_frames, hold):
            writer.write(image)
            report.add_frame(tracked.faces, tracked.tracks, tracked.found, tracked.detection_failed)
            if on_frames is not None:
                on_frames(1)
        _check_frames(job, report, info, start, end)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    report.output = str(job.target)
    return report
