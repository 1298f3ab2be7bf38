"""Scaling out with Ray Data: images/s of ``deepanon image --ray`` with 1 and 2 workers against the local path on the
same photos, in the same script, and a paper estimate of the cost per million photos.

    python benchmarks/scale.py [--data ../shared/data/widerface-train-300/images] [--photos 24] [--workers 1 2]
                               [--price 0.05]

Every run is the CLI in a fresh process (model loading and, for Ray, starting Ray included: what a user waits for),
into a fresh output folder and journal. The estimate divides a million photos by the measured steady rate per CPU
core (2-worker run, Ray's start-up removed by subtracting the time of a 1-photo run) at ``--price`` dollars per
core-hour; it assumes photos like these (WIDER FACE crowds, ~1 MP) and machines like this one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "widerface-train-300" / "images"


def sample(data: Path, count: int, folder: Path) -> Path:
    """The first ``count`` photos (sorted by path) copied into ``folder``."""
    photos = sorted(p for p in data.rglob("*.jpg"))[:count]
    if len(photos) < count:
        sys.exit(f"{data}: {len(photos)} photos, {count} asked for")
    folder.mkdir(parents=True)
    for i, photo in enumerate(photos):
        shutil.copy(photo, folder / f"{i:04d}.jpg")
    return folder


def timed_run(photos: Path, work: Path, name: str, extra: list[str]) -> float:
    """Seconds of one ``deepanon image`` run over ``photos``; exits if it fails."""
    out = work / name
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "deepanon", "image", str(photos), "-o", str(out), "--quiet", *extra],
                            capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{name} failed:\n{result.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--price", type=float, default=0.05, help="dollars per CPU core-hour for the estimate")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photos = sample(args.data, args.photos, work / "photos")
        one = sample(args.data, 1, work / "one")
        runs = {"local (one process)": timed_run(photos, work, "local", [])}
        for n in args.workers:
            runs[f"--ray, {n} worker(s)"] = timed_run(photos, work, f"ray{n}", ["--ray", "--workers", str(n)])
        startup = timed_run(one, work, "ray-one", ["--ray", "--workers", str(max(args.workers))])
    table = Table(title=f"{args.photos} WIDER FACE photos, {cores} CPU cores")
    for column in ("run", "seconds", "images/s", "vs local"):
        table.add_column(column, justify="right" if column != "run" else "left")
    base = runs["local (one process)"]
    for name, seconds in runs.items():
        table.add_row(name, f"{seconds:.1f}", f"{args.photos / seconds:.2f}", f"{base / seconds:.2f}x")
    table.add_row(f"--ray, {max(args.workers)} worker(s), 1 photo (start-up)", f"{startup:.1f}", "", "")
    Console().print(table)
    widest = runs[f"--ray, {max(args.workers)} worker(s)"]
    per_photo_core_s = (widest - startup) * cores / max(1, args.photos - 1)
    core_hours = 1e6 * per_photo_core_s / 3600
    print(f"steady cost: {per_photo_core_s:.2f} core-seconds a photo -> a million photos = {core_hours:,.0f} "
          f"core-hours = ${core_hours * args.price:,.0f} at ${args.price}/core-hour; on N machines of {cores} cores: "
          f"{core_hours / cores:,.0f}/N hours")


if __name__ == "__main__":
    main()
