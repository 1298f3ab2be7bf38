"""Photos anonymized together (``Anonymizer.files_per_call``) against one at a time, in the same process.

    python benchmarks/grouping.py [--data ../shared/data/fairface-128/val] [--photos 32] [--side 384]
                                  [--modes eager compiled] [--threads 2]

Each photo is a held-out FairFace face scaled to ``--side`` px (a portrait: one face, the case where one photo
cannot fill a generator batch). For each generator mode the same anonymizer runs the photos in groups of 1 (every
photo's faces in their own generator call) and in groups of its ``files_per_call``; a warm-up group first. Prints
seconds, photos/s and the ratio, and the largest pixel difference between the two outputs (a batch's size can change
the rounding of bf16 work).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from deepanon import Anonymizer

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fairface-128" / "val"


def portraits(data: Path, count: int, side: int) -> list[np.ndarray]:
    """The first ``count`` faces (sorted by name), each scaled to ``side`` px."""
    paths = sorted(data.glob("*.jpg"))[:count]
    return [np.asarray(Image.open(p).convert("RGB").resize((side, side), Image.BICUBIC)) for p in paths]


def timed(anonymizer: Anonymizer, photos: list[np.ndarray], size: int) -> tuple[float, list[np.ndarray]]:
    """Seconds to anonymize ``photos`` in consecutive groups of ``size``, and the outputs."""
    anonymizer.anonymize_many(photos[:size])
    start = time.perf_counter()
    out = [image for first in range(0, len(photos), size)
           for image, _ in anonymizer.anonymize_many(photos[first:first + size])]
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--photos", type=int, default=32)
    parser.add_argument("--side", type=int, default=384)
    parser.add_argument("--modes", nargs="+", choices=["eager", "compiled"], default=["eager", "compiled"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    photos = portraits(args.data, args.photos, args.side)
    table = Table(title=f"{len(photos)} portraits of {args.side}² px, {args.threads} thread(s)")
    for column in ("generator", "files per call", "seconds", "photos/s", "vs 1 per call", "max |diff|"):
        table.add_column(column, justify="left" if column == "generator" else "right")
    for mode in args.modes:
        anonymizer = Anonymizer(detector="centerface", turned=False, seed=0, compile=mode == "compiled",
                                detector_threads=args.threads)
        alone, alone_out = timed(anonymizer, photos, 1)
        group = anonymizer.files_per_call
        together, together_out = timed(anonymizer, photos, group)
        diff = max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(alone_out, together_out, strict=True))
        table.add_row(mode, "1", f"{alone:.2f}", f"{len(photos) / alone:.2f}", "1.00x", "")
        table.add_row(mode, str(group), f"{together:.2f}", f"{len(photos) / together:.2f}", f"{alone / together:.2f}x",
                      str(diff))
    Console().print(table)


if __name__ == "__main__":
    main()
