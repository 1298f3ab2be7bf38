"""Faces in photos turned sideways or upside down: recall of the default detector with and without its turn search.

    python benchmarks/rotation.py [--data ../shared/data/widerface-train-300] [--per-event 10] [--threads 2]
                                  [--half all|tune|report]

The first ``--per-event`` photos of each WIDER event (``--half``: the even- or odd-numbered of them, the halves
``rotation_gates.py`` tunes and reports on), turned by 0°, 90°, 180° and 270° (``np.rot90``, ground truth turned with
them). Recall at IoU >= 0.5 of faces of 16 px or more, false positives per photo, seconds per upright photo (and its
ratio to upright-only detection) and per turned photo, for three detectors: the default mode upright only, the mode plus one pass per turn
at the image's own scale (floor 0.5; the previous default), and the default turn search (``compose.Reoriented``:
probes on each turn, the whole mode on a turn that the probe finds more confident faces in).
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
from deepanon.detection.centerface import CenterFace
from deepanon.detection.compose import Tiled, Turned, Union, unturn_boxes
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
    parser.add_argument("--half", choices=["all", "tune", "report"], default="all")
    args = parser.parse_args()
    events: dict[str, list[Image]] = {}
    for image in read_ground_truth(args.data):
        events.setdefault(image.path.parent.name, []).append(image)
    photos = [i for group in events.values() for i in group[: args.per_event]]
    if args.half != "all":
        photos = photos[args.half == "report" :: 2]
    upright = create_detector(threads=args.threads)
    per_turn = Union([upright, *(Turned(Tiled(CenterFace(0.5, args.threads), 1.0), k) for k in (1, 2, 3))])
    detectors = {"upright only": upright, "one 1.0x pass per turn (before)": per_turn,
                 "turn search (default)": create_detector(threads=args.threads, turns=True)}
    table = Table(title=f"{len(photos)} WIDER photos turned, faces >= 16 px: recall / false positives per photo")
    for column in ["detector", "0°", "90°", "180°", "270°", "turned / upright recall", "s/photo upright", "× upright only",
                   "s/photo turned"]:
        table.add_column(column, justify="right")
    base = None
    for name, detector in detectors.items():
        recalls, cells, seconds = [], [], [0.0] * 4
        for turns in range(4):
            hits = faces = false_positives = 0
            for photo in photos:
                pixels = iio.imread(photo.path)[..., :3]
                h, w = pixels.shape[:2]
                pixels = np.ascontiguousarray(np.rot90(pixels, turns))
                truth = large_faces(photo)
                turned = Image(photo.path, turn_boxes(truth.valid, turns, h, w), turn_boxes(truth.invalid, turns, h, w))
                start = time.perf_counter()
                found = detector.detect(pixels)
                seconds[turns] += time.perf_counter() - start
                hit, fp = match(found, turned)
                hits, faces, false_positives = hits + hit.sum(), faces + len(hit), false_positives + fp
            recalls.append(hits / faces)
            cells.append(f"{hits / faces:.3f} / {false_positives / len(photos):.2f}")
        per_photo, turned_per_photo = seconds[0] / len(photos), sum(seconds[1:]) / (3 * len(photos))
        base = base or per_photo
        table.add_row(name, *cells, f"{min(recalls[1:]) / recalls[0]:.3f}", f"{per_photo:.2f}", f"{per_photo / base:.2f}",
                      f"{turned_per_photo:.2f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
