"""Video detection: the default detector's clip schedule against running it in full on every frame, and deface's.

    python benchmarks/video_detection.py [--clips ../shared/data/videos/*.mp4] [--frames 150] [--threads 2]

Reference: the default detector (``accurate``) in full on every frame, faces scoring at least its threshold. Each
row is what a run covers on the same frames: the default clip schedule (``compose.Alternating``: in full on every
``CLIP_FULL_EVERY``-th frame, without its upscaled pass between) through the tracker, the full detector on every frame through the
tracker, and deface's CenterFace on every frame (no tracker, as deface runs). A reference face counts as covered in
a frame when at least 90 % of its box lies inside the boxes the run replaces there. Prints frame recall (covered
reference faces / all), boxes per frame and detection milliseconds per frame.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from rich.console import Console
from rich.table import Table

from deepanon.api import FaceFinder
from deepanon.detection import create_detector
from detection import DefaceBaseline
from paths import VIDEOS

COVERED = 0.9


def covered(reference: np.ndarray, boxes: np.ndarray, shape: tuple[int, ...]) -> int:
    """How many reference boxes have at least ``COVERED`` of their area inside the union of ``boxes``."""
    mask = np.zeros(shape[:2], bool)
    for x0, y0, x1, y1 in np.round(boxes).astype(int):
        mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
    count = 0
    for x0, y0, x1, y1 in np.round(reference).astype(int):
        area = mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)]
        count += bool(area.size and area.mean() >= COVERED)
    return count


def tracked_boxes(finder: FaceFinder, frames: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    start = time.perf_counter()
    boxes = [t.detections.boxes for t in finder.track(frames)]
    return boxes, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, nargs="*", default=sorted(VIDEOS.glob("*.mp4")))
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    table = Table(title=f"Video detection against the default detector in full on every frame ({COVERED:.0%} of a "
                        "face's box covered)")
    for column in ["clip", "run", "frame recall", "boxes/frame", "ms/frame"]:
        table.add_column(column, justify="right")
    for clip in args.clips:
        frames = [frame for frame, _ in zip(iio.imiter(clip), range(args.frames))]
        full = create_detector(threads=args.threads)
        start = time.perf_counter()
        reference = [full.detect(frame) for frame in frames]
        full_seconds = time.perf_counter() - start
        deface = DefaceBaseline(0.2, args.threads)
        start = time.perf_counter()
        deface_boxes = [deface.detect(frame).boxes for frame in frames]
        deface_seconds = time.perf_counter() - start
        runs = {
            "schedule (default)": tracked_boxes(FaceFinder(threads=args.threads, turned=False), frames),
            "full every frame, tracked": tracked_boxes(FaceFinder(full.full, turned=False), frames),
            "deface": (deface_boxes, deface_seconds),
        }
        faces = sum(len(r) for r in reference)
        table.add_row(clip.name, "full every frame (reference)", "1.000", f"{faces / len(frames):.2f}",
                      f"{1e3 * full_seconds / len(frames):.0f}")
        for name, (boxes, seconds) in runs.items():
            hits = sum(covered(r.boxes, b, f.shape) for r, b, f in zip(reference, boxes, frames))
            table.add_row(clip.name, name, f"{hits / max(faces, 1):.3f}", f"{sum(map(len, boxes)) / len(frames):.2f}",
                          f"{1e3 * seconds / len(frames):.0f}")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
