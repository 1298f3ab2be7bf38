"""Large and wide photos lose no faces: WIDER FACE photos joined into a panorama, and a crowd photo inside a 50 MP
canvas, against the same photos run alone (the default detector, recall at IoU >= 0.5 of faces of 16 px or more).

    python benchmarks/panorama.py [--data ../shared/data/widerface-train-300] [--pieces 12] [--height 680]
                                  [--canvas 8660 5774] [--threads 2]

Panorama: the first ``--pieces`` photos of the parade event resized to ``--height`` px and placed side by side (their
ground truth moved with them). Canvas: the photo with the most faces of 16 px or more, at its own size, in the middle
of a grey ``--canvas`` (w h) image. Seconds are detection only, on this machine as it is (say whether it was idle).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
from rich.console import Console
from rich.table import Table

from deepanon.detection import create_detector
from detection import DEFAULT_DATA, Image, match, read_ground_truth

MIN_HEIGHT = 16


def large_faces(image: Image) -> Image:
    """The image with only its valid faces of at least ``MIN_HEIGHT`` px (smaller ones become ignored)."""
    tall = image.valid[:, 3] - image.valid[:, 1] >= MIN_HEIGHT
    return Image(image.path, image.valid[tall], np.concatenate([image.invalid, image.valid[~tall]]))


def detect(detector, pixels: np.ndarray, truth: Image) -> tuple[int, int, float]:
    """(faces found, false positives, seconds)."""
    start = time.perf_counter()
    found = detector.detect(pixels)
    seconds = time.perf_counter() - start
    hit, false_positives = match(found, truth)
    return int(hit.sum()), false_positives, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--pieces", type=int, default=12)
    parser.add_argument("--height", type=int, default=680)
    parser.add_argument("--canvas", type=int, nargs=2, default=[8660, 5774])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    detector = create_detector(threads=args.threads)
    images = read_ground_truth(args.data)
    table = Table(title="Default detector: joined or placed in a large canvas vs the same photos alone "
                        f"(faces >= {MIN_HEIGHT} px)")
    for column in ["case", "size", "faces", "found alone", "found in the large image", "FP alone", "FP large",
                   "s alone", "s large"]:
        table.add_column(column, justify="right")

    pieces, truths, offset = [], [], 0
    alone = np.zeros(3)
    for image in [i for i in images if "Parade" in i.path.name][: args.pieces]:
        pixels = iio.imread(image.path)[..., :3]
        scale = args.height / pixels.shape[0]
        pixels = cv2.resize(pixels, (round(pixels.shape[1] * scale), args.height), interpolation=cv2.INTER_AREA)
        truth = large_faces(Image(image.path, image.valid * scale, image.invalid * scale))
        alone += detect(detector, pixels, truth)
        shift = np.array([offset, 0, offset, 0], np.float32)
        truths.append(Image(image.path, truth.valid + shift, truth.invalid + shift))
        pieces.append(pixels)
        offset += pixels.shape[1]
    panorama = np.ascontiguousarray(np.concatenate(pieces, axis=1))
    joined = Image(truths[0].path, np.concatenate([t.valid for t in truths]), np.concatenate([t.invalid for t in truths]))
    large = detect(detector, panorama, joined)
    table.add_row(f"{len(pieces)} parade photos side by side", f"{panorama.shape[1]}×{panorama.shape[0]}",
                  str(len(joined.valid)), str(int(alone[0])), str(large[0]), str(int(alone[1])), str(large[1]),
                  f"{alone[2]:.1f}", f"{large[2]:.1f}")

    crowd = max(images, key=lambda i: len(large_faces(i).valid))
    pixels, truth = iio.imread(crowd.path)[..., :3], large_faces(crowd)
    alone = detect(detector, pixels, truth)
    width, height = args.canvas
    canvas = np.full((height, width, 3), 128, np.uint8)
    x0, y0 = (width - pixels.shape[1]) // 2, (height - pixels.shape[0]) // 2
    canvas[y0 : y0 + pixels.shape[0], x0 : x0 + pixels.shape[1]] = pixels
    shift = np.array([x0, y0, x0, y0], np.float32)
    large = detect(detector, canvas, Image(crowd.path, truth.valid + shift, truth.invalid + shift))
    table.add_row(f"{crowd.path.name} in a canvas", f"{width}×{height}", str(len(truth.valid)), str(alone[0]),
                  str(large[0]), str(alone[1]), str(large[1]), f"{alone[2]:.1f}", f"{large[2]:.1f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
