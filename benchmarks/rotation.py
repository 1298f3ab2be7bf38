"""Faces in photos turned sideways or upside down: recall of the default detector with and without its turned passes.

    python benchmarks/rotation.py [--data ../shared/data/widerface-train-300] [--per-event 10] [--threads 2]
                                  [--turned-pass 1.0 0.5 ...]

The first ``--per-event`` photos of each WIDER event, turned by 0°, 90°, 180° and 270° (``np.rot90``, ground truth
turned with them). Recall at IoU >= 0.5 of faces of 16 px or more, false positives per photo and seconds per photo,
for the default detector alone and with each turned-pass setting (scale and lowest threshold of the one pass per
turn that ``create_detector(turns=True)`` adds).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from rich.console import Console
from rich.table import Table

from deepanon.detection import create_detector
from deepanon.detection import factory
from deepanon.detection.compose import unturn_boxes
from detection import DEFAULT_DATA, Image, match, read_ground_truth
from panorama import large_faces


def turn_boxes(boxes: np.ndarray, turns: int, height: int, width: int) -> np.ndarray:
    """Boxes of an ``height`` x ``width`` image -> the same boxes in ``np.rot90(image, turns)``: the image is
    ``np.rot90`` of the turned one by the remaining turns."""
    turned_size = (width, height) if turns % 2 else (height, width)
    return unturn_boxes(boxes, (4 - turns) % 4, *turned_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--per-event", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--turned-pass", type=float, nargs="+", default=[1.0, 0.5],
                        help="pairs of scale and lowest threshold of the turned passes to compare")
    args = parser.parse_args()
    events: dict[str, list[Image]] = {}
    for image in read_ground_truth(args.data):
        events.setdefault(image.path.parent.name, []).append(image)
    photos = [i for group in events.values() for i in group[: args.per_event]]
    settings = [None] + [tuple(args.turned_pass[k : k + 2]) for k in range(0, len(args.turned_pass), 2)]
    table = Table(title=f"{len(photos)} WIDER photos turned, faces >= 16 px: recall / false positives per photo")
    table.add_column("turned passes (scale, floor)")
    for turns in range(4):
        table.add_column(f"{90 * turns}°", justify="right")
    table.add_column("s/photo", justify="right")
    for setting in settings:
        if setting is not None:
            factory.TURNED_PASS = setting
        detector = create_detector(threads=args.threads, turns=setting is not None)
        cells, seconds = [], 0.0
        for turns in range(4):
            hits = faces = false_positives = 0
            for photo in photos:
                upright = iio.imread(photo.path)[..., :3]
                h, w = upright.shape[:2]
                pixels = np.ascontiguousarray(np.rot90(upright, turns))
                truth = large_faces(photo)
                turned = Image(photo.path, turn_boxes(truth.valid, turns, h, w), turn_boxes(truth.invalid, turns, h, w))
                start = time.perf_counter()
                found = detector.detect(pixels)
                seconds += time.perf_counter() - start
                hit, fp = match(found, turned)
                hits, faces, false_positives = hits + hit.sum(), faces + len(hit), false_positives + fp
            cells.append(f"{hits / faces:.3f} / {false_positives / len(photos):.2f}")
        table.add_row("none" if setting is None else f"{setting[0]}, {setting[1]}", *cells,
                      f"{seconds / (4 * len(photos)):.2f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
