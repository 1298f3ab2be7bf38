"""End-to-end video speed: deepanon against deface on the same files in the same run.

    python benchmarks/video.py [--clips ../shared/data/videos/*.mp4] [--synthetic 1 3 10] [--seconds 4]
        [--weights FILE] [--threads 2] [--json out.json]

Each clip is processed by ``deepanon video`` (generated faces with the default ``accurate`` detector, with ``fast``
and with single-scale ``centerface``, deface's own detector setting, and ``--replace blur`` for a like-for-like cover) and
by ``deface`` (CenterFace + blur, its defaults), each as a separate process timed from start to exit, alternating so
that machine load hits both alike. Synthetic clips are 1280×720 with N real faces (scikit-image's astronaut face,
moving) over a textured background. Prints fps, ms per frame, the ratio to deface's time, and peak memory (max RSS).
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

from paths import SHARED_DATA

FPS = 25
VIDEOS = SHARED_DATA / "videos"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, nargs="*", default=sorted(VIDEOS.glob("*.mp4")))
    parser.add_argument("--synthetic", type=int, nargs="*", default=[1, 3, 10])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the synthetic clips")
    parser.add_argument("--weights", type=Path, help="generator weights (default: the bundled ones)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    work = Path(tempfile.mkdtemp(prefix="deepanon-video-bench-"))
    clips = list(args.clips) + [synthetic_clip(work / f"synthetic_720p_{n}faces.mp4", n, args.seconds) for n in args.synthetic]
    beside = Path(sys.executable).with_name("deface")  # the deface of this environment, on PATH or not
    deface = str(beside) if beside.is_file() else shutil.which("deface") or "deface"
    deepanon = [sys.executable, "-m", "deepanon", "video", "--quiet", "--threads", str(args.threads)]
    if args.weights:
        deepanon += ["--weights", str(args.weights)]
    runs = {
        "deface": lambda clip, out: [deface, str(clip), "-o", str(out)],
        "deepanon generate": lambda clip, out: [*deepanon, str(clip), "-o", str(out)],
        "deepanon blur": lambda clip, out: [*deepanon, "--replace", "blur", str(clip), "-o", str(out)],
        "deepanon generate, fast": lambda clip, out: [*deepanon, "--detector", "fast", str(clip), "-o", str(out)],
        "deepanon generate, centerface": lambda clip, out: [*deepanon, "--detector", "centerface", str(clip), "-o", str(out)],
    }
    rows = []
    for clip in clips:
        frames = frame_count(clip)
        times = {}
        for name, command in runs.items():
            seconds, peak = timed(command(clip, work / f"out_{name.replace(' ', '_')}.mp4"))
            times[name] = seconds
            rows.append({"clip": clip.name, "frames": frames, "tool": name, "seconds": seconds, "fps": frames / seconds,
                         "ms_per_frame": 1e3 * seconds / frames, "peak_mib": peak})
        for row in rows[-len(runs):]:
            row["vs_deface"] = row["seconds"] / times["deface"]

    table = Table(title=f"Video, {args.threads} threads (process wall time, start-up included)")
    for column in ["clip", "frames", "tool", "fps", "ms/frame", "× deface time", "peak MiB"]:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["clip"], str(r["frames"]), r["tool"], f"{r['fps']:.1f}", f"{r['ms_per_frame']:.0f}",
                      f"{r['vs_deface']:.2f}", f"{r['peak_mib']:.0f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
