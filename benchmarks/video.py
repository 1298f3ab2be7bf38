"""End-to-end video speed: deepanon against deface on the same files in the same run.

    python benchmarks/video.py [--clips ../shared/data/videos/*.mp4] [--synthetic 1 3 10] [--seconds 4]
        [--weights FILE] [--threads N] [--json out.json]

Each clip is processed by ``deepanon video`` (generated faces with the default ``accurate`` detector, also with
``--hold 1`` (every face of every frame generated), with ``fast`` and with single-scale ``centerface``, deface's own
detector setting, and ``--replace blur`` for a like-for-like cover) and by ``deface`` (CenterFace + blur, its
defaults), each as a separate process timed from start to exit, alternating so that machine load hits both alike.
Synthetic clips are 1280×720 with N real faces (scikit-image's astronaut face, moving) over a textured background.
Prints fps, ms per frame, the ratio to deface's time, peak memory (max RSS) and flicker.

Flicker: the face tracks of the input (``deepanon video --detect-only``, default detector) give, per track and pair of
consecutive frames, the face box in the later frame; inside it, the mean absolute change of the output from one frame
to the next, summed over the track's pairs, divided by the same for the input (1 = the face area changes as much as
in the source; a still blur gives less, a face that jitters more). The median over tracks with at least
``MIN_PAIRS`` pairs is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from rich.console import Console
from rich.table import Table

from paths import VIDEOS

FPS = 25
MIN_PAIRS = 5


def synthetic_clip(path: Path, faces: int, seconds: float) -> Path:
    """1280×720 clip with ``faces`` moving copies of the astronaut's face (128×150 px) on a noise background."""
    from skimage import data

    face = data.astronaut()[40:190, 160:288]
    rng = np.random.default_rng(0)
    background = (rng.random((720, 1280, 3)) * 60 + 80).astype(np.uint8)
    writer = imageio_ffmpeg.write_frames(str(path), (1280, 720), fps=FPS, quality=8, ffmpeg_log_level="error")
    writer.send(None)
    for t in range(int(seconds * FPS)):
        frame = background.copy()
        for k in range(faces):
            x = int(60 + (k % 5) * 240 + 20 * np.sin(t / 10 + k))
            y = int(60 + (k // 5) * 330 + 10 * np.cos(t / 12 + k))
            frame[y : y + 150, x : x + 128] = face
        writer.send(frame)
    writer.close()
    return path


def frame_count(path: Path) -> int:
    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process (``os.wait4`` gives that child's own rusage)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed")
    return seconds, usage.ru_maxrss / 1024


def face_tracks(clip: Path, work: Path) -> dict[int, dict[int, list[float]]]:
    """track -> frame -> box of the input's faces, from a ``--detect-only`` report."""
    report = work / f"{clip.stem}_faces.json"
    subprocess.run([sys.executable, "-m", "deepanon", "video", "--quiet", str(clip), "--detect-only", "--report",
                    str(report)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tracks: dict[int, dict[int, list[float]]] = {}
    for face in json.loads(report.read_text())["files"][0]["faces"]:
        tracks.setdefault(face["track"], {})[face["frame"]] = face["box"]
    return tracks


def flicker(source: Path, output: Path, tracks: dict[int, dict[int, list[float]]]) -> float:
    """Median over tracks of (output change / input change) inside the face box between consecutive frames."""
    sums = {t: [0.0, 0.0, 0] for t in tracks}  # output change, input change, pairs
    readers = [imageio_ffmpeg.read_frames(str(p), pix_fmt="rgb24") for p in (source, output)]
    sizes = [next(r)["size"] for r in readers]
    if sizes[1][0] < sizes[0][0] or sizes[1][1] < sizes[0][1]:
        raise RuntimeError(f"{output}: size {sizes[1]} is smaller than the source's {sizes[0]}")
    w, h = sizes[0]
    previous = None
    for index, raw in enumerate(zip(*readers)):
        # deface pads its output to whole 16-px macroblocks: the source's part is the top left
        frames = [np.frombuffer(x, np.uint8).reshape(sh, sw, 3)[:h, :w].astype(np.int16)
                  for x, (sw, sh) in zip(raw, sizes)]
        if previous is not None:
            for track, boxes in tracks.items():
                if index in boxes and index - 1 in boxes:
                    x0, y0, x1, y1 = (int(round(v)) for v in boxes[index])
                    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
                    if x1 <= x0 or y1 <= y0:
                        continue
                    cut = (slice(y0, y1), slice(x0, x1))
                    sums[track][0] += float(np.abs(frames[1][cut] - previous[1][cut]).mean())
                    sums[track][1] += float(np.abs(frames[0][cut] - previous[0][cut]).mean())
                    sums[track][2] += 1
        previous = frames
    ratios = [out / max(inp, 1e-6) for out, inp, pairs in sums.values() if pairs >= MIN_PAIRS]
    return float(np.median(ratios)) if ratios else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, nargs="*", default=sorted(VIDEOS.glob("*.mp4")))
    parser.add_argument("--synthetic", type=int, nargs="*", default=[1, 3, 10])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the synthetic clips")
    parser.add_argument("--weights", type=Path, help="generator weights (default: the bundled ones)")
    parser.add_argument("--threads", type=int, help="threads for both tools (default: each tool's own)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--tools", nargs="*", help="run only these rows' tools (names as in the table)")
    args = parser.parse_args()
    if args.threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    work = Path(tempfile.mkdtemp(prefix="deepanon-video-bench-"))
    clips = list(args.clips) + [synthetic_clip(work / f"synthetic_720p_{n}faces.mp4", n, args.seconds) for n in args.synthetic]
    beside = Path(sys.executable).with_name("deface")  # the deface of this environment, on PATH or not
    deface = str(beside) if beside.is_file() else shutil.which("deface") or "deface"
    deepanon = [sys.executable, "-m", "deepanon", "video", "--quiet"]
    if args.threads:
        deepanon += ["--threads", str(args.threads)]
    if args.weights:
        deepanon += ["--weights", str(args.weights)]
    runs = {
        "deface": lambda clip, out: [deface, str(clip), "-o", str(out)],
        "deepanon generate": lambda clip, out: [*deepanon, str(clip), "-o", str(out)],
        "deepanon generate, hold 1": lambda clip, out: [*deepanon, "--hold", "1", str(clip), "-o", str(out)],
        "deepanon blur": lambda clip, out: [*deepanon, "--replace", "blur", str(clip), "-o", str(out)],
        "deepanon generate, fast": lambda clip, out: [*deepanon, "--detector", "fast", str(clip), "-o", str(out)],
        "deepanon generate, centerface": lambda clip, out: [*deepanon, "--detector", "centerface", str(clip), "-o", str(out)],
    }
    runs = {name: command for name, command in runs.items() if not args.tools or name in args.tools or name == "deface"}
    rows = []
    for clip in clips:
        frames = frame_count(clip)
        tracks = face_tracks(clip, work)
        times = {}
        for name, command in runs.items():
            out = work / f"out_{name.replace(' ', '_').replace(',', '')}.mp4"
            seconds, peak = timed(command(clip, out))
            times[name] = seconds
            rows.append({"clip": clip.name, "frames": frames, "tool": name, "seconds": seconds, "fps": frames / seconds,
                         "ms_per_frame": 1e3 * seconds / frames, "peak_mib": peak, "flicker": flicker(clip, out, tracks)})
        for row in rows[-len(runs):]:
            row["vs_deface"] = row["seconds"] / times["deface"]

    table = Table(title=f"Video, {args.threads or 'default'} threads (process wall time, start-up included)")
    for column in ["clip", "frames", "tool", "fps", "ms/frame", "× deface time", "peak MiB", "flicker"]:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["clip"], str(r["frames"]), r["tool"], f"{r['fps']:.1f}", f"{r['ms_per_frame']:.0f}",
                      f"{r['vs_deface']:.2f}", f"{r['peak_mib']:.0f}", f"{r['flicker']:.2f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
