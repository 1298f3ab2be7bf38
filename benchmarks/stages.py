"""Time of each pipeline stage on real photos: detect, crop, generate, paste (ms per image and per face).

    python benchmarks/stages.py [--images ../shared/data/widerface-train-300/images] [--limit 30] [--weights FILE]
        [--detector accurate] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from deepanon.detection import DetectorName, create_detector
from deepanon.geometry import FaceCrop
from deepanon.images import IMAGE_SUFFIXES, read_image
from deepanon.pipeline import FaceGenerator
from deepanon.weights import crop_expand, default_weights_path, load_generator
from paths import SHARED_DATA


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=SHARED_DATA / "widerface-train-300" / "images")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--detector", default="accurate")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator, metadata = load_generator(args.weights or default_weights_path())
    expand = crop_expand(metadata)
    runner = FaceGenerator(generator, torch.device("cpu"), batch_size=16)
    detector = create_detector(DetectorName(args.detector), threads=args.threads)
    files = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[: args.limit]
    totals = {"detect": 0.0, "crop": 0.0, "generate": 0.0, "paste": 0.0}
    faces = 0
    for path in files:
        image = read_image(path).pixels
        t0 = time.perf_counter()
        found = detector.detect(image)
        t1 = time.perf_counter()
        crops = [FaceCrop.from_box(b, generator.config.image_size, expand=expand) for b in found.boxes]
        if crops:
            pixels = np.stack([c.extract(image) for c in crops])
            certainty = np.stack([c.certainty() for c in crops])
            pose = np.stack([np.clip(c.to_crop(l), 0, 1) for c, l in zip(crops, found.landmarks)])
        t2 = time.perf_counter()
        if crops:
            out = runner(pixels, certainty, pose, torch.zeros(len(crops), generator.config.latent_channels, 4, 4))
        t3 = time.perf_counter()
        canvas = image.copy()
        for c, o in zip(crops, out if crops else []):
            c.paste(canvas, o, c.feather)
        t4 = time.perf_counter()
        for key, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            totals[key] += seconds
        faces += len(crops)
    n = len(files)
    table = Table(title=f"{n} photos, {faces} faces, detector {args.detector}, generator {generator.config.image_size}² "
                        f"width {generator.config.width}, {args.threads} threads")
    for column in ["stage", "ms per image", "ms per face"]:
        table.add_column(column, justify="right")
    rows = {k: {"ms_per_image": 1e3 * v / n, "ms_per_face": 1e3 * v / max(faces, 1)} for k, v in totals.items()}
    for k, r in rows.items():
        table.add_row(k, f"{r['ms_per_image']:.1f}", f"{r['ms_per_face']:.1f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"images": n, "faces": faces, "stages": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
