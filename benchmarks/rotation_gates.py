"""Choosing the turn search of the default detector (``compose.Reoriented``) on half of the WIDER photos.

    python benchmarks/rotation_gates.py [--data ../shared/data/widerface-train-300] [--per-event 50] [--threads 1]

Each photo is turned by 0°, 90°, 180° and 270°; the default mode (upright) and probe passes at scales 0.5, 0.7 and
1.0 (floor 0.5) run once on each turn, timed, and every search rule is then put together from those detections: for a
photo turned by t, the mode on it, and on each further turn k either the probe or, where the rule fires, the mode
again. Rules: ``per turn`` (the probe kept everywhere), ``any`` (fires where the probe finds a face scoring at least
the gate), ``more`` (fires where the probe finds more faces scoring at least the gate than the mode upright) and
``settled`` (``more``, but no probe at all where the mode finds ``TURN_SETTLED`` sure faces upright; the default's
rule). Photos alternate between a tune half (even-numbered) and a report half (odd-numbered): choose on the
first, quote the second. Columns: recall at IoU >= 0.5 of faces of 16 px or more / false positives per photo at each
turn, the worst turned recall over the upright one, and the detection time of an upright and of a turned photo against
the mode alone on upright photos.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from rich.console import Console
from rich.table import Table

from deepanon.detection import Detections, create_detector
from deepanon.detection.centerface import CenterFace
from deepanon.detection.compose import Tiled, Turned, fused_turns
from deepanon.detection.factory import TURN_CONFIDENT, TURN_PROBE, TURN_SETTLED
from detection import DEFAULT_DATA, Image, match, read_ground_truth
from panorama import large_faces

PROBE_SCALES = (0.5, 0.7, 1.0)
GATES = (0.5, 0.7, 0.9)


def detect_all(photo: Image, upright, probes: dict[float, Tiled]) -> dict[tuple[str | float, int], tuple[Detections, float]]:
    """(detector, turn) -> (faces in the photo's own coordinates, seconds)."""
    pixels = np.ascontiguousarray(iio.imread(photo.path)[..., :3])
    found = {}
    for turn in range(4):
        for name, detector in [("mode", upright), *probes.items()]:
            start = time.perf_counter()
            faces = Turned(detector, turn).detect(pixels) if turn else detector.detect(pixels)
            found[name, turn] = (faces, time.perf_counter() - start)
    return found


def search(found, turn: int, rule: str, scale: float | None, gate: float | None) -> tuple[Detections, float]:
    """What a rule finds in the photo turned by ``turn``, and what it costs."""
    mode, seconds = found["mode", turn]
    parts = [mode]
    if rule == "settled" and int((mode.scores >= TURN_SETTLED[1]).sum()) >= TURN_SETTLED[0]:
        return mode, seconds
    confident = int((mode.scores >= gate).sum()) if gate is not None else 0
    for k in (1, 2, 3) if rule != "upright only" else ():
        probe, cost = found[scale, (turn + k) % 4]
        seconds += cost
        hits = int((probe.scores >= gate).sum()) if gate is not None else 0
        if (rule == "any" and hits > 0) or (rule in ("more", "settled") and hits > confident):
            probe, cost = found["mode", (turn + k) % 4]
            seconds += cost
        parts.append(probe)
    return fused_turns(parts), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--per-event", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    events: dict[str, list[Image]] = {}
    for image in read_ground_truth(args.data):
        events.setdefault(image.path.parent.name, []).append(image)
    photos = [i for group in events.values() for i in group[: args.per_event]]
    upright = create_detector(threads=args.threads)
    probes = {scale: Tiled(CenterFace(0.5, args.threads), scale) for scale in PROBE_SCALES}
    found = [detect_all(photo, upright, probes) for photo in photos]
    rules = [("upright only", None, None), *(("per turn", s, None) for s in PROBE_SCALES)]
    rules += [(rule, s, g) for rule in ("any", "more") for s in PROBE_SCALES for g in GATES]
    rules.append(("settled", TURN_PROBE[0], TURN_CONFIDENT))
    for half, name in ((0, "tune"), (1, "report")):
        table = Table(title=f"{name} half: {len(photos[half::2])} WIDER photos turned, faces >= 16 px: recall / false "
                            "positives per photo")
        for column in ["rule", "probe", "gate", "0°", "90°", "180°", "270°", "turned / upright", "× time upright",
                       "× time turned"]:
            table.add_column(column, justify="right")
        base = sum(found[n]["mode", 0][1] for n in range(half, len(photos), 2))
        for rule, scale, gate in rules:
            cells, recalls, seconds = [], [], [0.0] * 4
            for turn in range(4):
                hits = faces = false_positives = 0
                for n in range(half, len(photos), 2):
                    faces_found, cost = search(found[n], turn, rule, scale, gate)
                    hit, fp = match(faces_found, large_faces(photos[n]))
                    hits, faces, false_positives = hits + hit.sum(), faces + len(hit), false_positives + fp
                    seconds[turn] += cost
                recalls.append(hits / faces)
                cells.append(f"{hits / faces:.3f} / {false_positives / len(photos[half::2]):.2f}")
            table.add_row(rule, str(scale or "-"), str(gate or "-"), *cells, f"{min(recalls[1:]) / recalls[0]:.3f}",
                          f"{seconds[0] / base:.2f}", f"{sum(seconds[1:]) / 3 / base:.2f}")
        Console(width=160).print(table)


if __name__ == "__main__":
    main()
