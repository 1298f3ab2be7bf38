"""Privacy of generated faces in video against the same frames anonymized as photos.

    python benchmarks/video_privacy.py [--clips ../shared/data/videos/*.mp4] [--every 5] [--min-side 48]
                                       [--hold N] [--pairs DIR --key FILE --limit 48]

Needs ``pip install dlib-bin face-recognition-models`` (as ``quality.py``).

Each clip runs through ``deepanon video`` (default settings: faces tracked and carried between key frames) with a
``--report``; every ``--every``-th frame is also written out as a PNG and the folder runs through ``deepanon image``
(the photo path: its own detection, every face generated anew). On those frames, each face the video run found
(score > 0, box at least ``--min-side`` px tall: dlib's descriptor needs a face it can see) is embedded by dlib's
face recogniser in the input frame and in both outputs at the same box. A face is re-identified when its
anonymized embedding lies within 0.6 of its original (dlib's same-person threshold; ``quality.py``'s measure), so a
face either path leaves visible counts against it. Prints, per clip and path, the re-identification rate and the
mean distance to the original, beside the impostor rate of the same clip: how often the originals of two different
tracks lie within the threshold (each face against the next face of another track; a person whose track a scene cut
restarts counts as another), the rate at which dlib cannot tell this clip's people apart at all.

With ``--pairs``, the realism half of the comparison: for up to ``--limit`` of those faces (drawn at random over all
clips, at most ``PAIRS_PER_TRACK`` of one track: a track's frames share one latent, so they are nearly one draw), one
picture of the same face as the video run and the photo run painted it (the box grown 1.5×, 192 px a side), left and
right at random, for a blind judge who is asked which of the two looks more like an unaltered photograph; the sides
go to ``--key`` (keep it where the judge cannot read it). Half of the judge's picks for the video side means video
faces look as real as faces generated anew for each photo.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from rich.console import Console
from rich.table import Table

from deepanon.geometry import FaceCrop
from paths import VIDEOS
from quality import MATCH_THRESHOLD, DlibEmbedder

PAIR_SIDE = 192  # px a side of each picture of a blind pair
PAIR_EXPAND = 1.5  # its square's side / the face box's longer side
PAIRS_PER_TRACK = 2  # a track's frames share one latent: more of them would be nearly the same draw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, nargs="*", default=sorted(VIDEOS.glob("*.mp4")))
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--min-side", type=float, default=48)
    parser.add_argument("--hold", type=int, help="the video run's --hold (default: deepanon's own)")
    parser.add_argument("--pairs", type=Path, help="write blind pairs (video vs photo path) into this folder")
    parser.add_argument("--key", type=Path, help="where the pairs' sides are written (with --pairs)")
    parser.add_argument("--limit", type=int, default=48, help="pairs at most")
    args = parser.parse_args()
    if (args.pairs is None) != (args.key is None):
        parser.error("--pairs and --key go together")
    pairs: list[tuple[str, np.ndarray, np.ndarray]] = []  # (track, video picture, photo picture)
    embed = DlibEmbedder()
    work = Path(tempfile.mkdtemp(prefix="deepanon-video-privacy-"))
    deepanon = [sys.executable, "-m", "deepanon"]
    table = Table(title=f"Re-identification (dlib distance < {MATCH_THRESHOLD}) of faces at least "
                        f"{args.min_side:.0f} px tall on every {args.every}th frame")
    for column in ["clip", "path", "faces", "re-identified", "mean distance"]:
        table.add_column(column, justify="right")
    for clip in args.clips:
        video_out, report = work / f"{clip.stem}_video.mp4", work / f"{clip.stem}.json"
        hold = [] if args.hold is None else ["--hold", str(args.hold)]
        subprocess.run([*deepanon, "video", "--quiet", *hold, str(clip), "-o", str(video_out), "--report", str(report)],
                       check=True)
        sampled, photos = work / f"{clip.stem}_frames", work / f"{clip.stem}_photos"
        sampled.mkdir()
        frames = {i: frame for i, frame in enumerate(iio.imiter(clip)) if i % args.every == 0}
        for i, frame in frames.items():
            iio.imwrite(sampled / f"{i:05d}.png", frame)
        subprocess.run([*deepanon, "image", "--quiet", str(sampled), "-o", str(photos)], check=True)
        outputs = {i: frame for i, frame in enumerate(iio.imiter(video_out)) if i in frames}
        photo_outputs = {i: iio.imread(next(photos.glob(f"{i:05d}*"))) for i in frames}
        faces = [f for f in json.loads(report.read_text())["files"][0]["faces"]
                 if f["frame"] in frames and f["score"] > 0 and f["box"][3] - f["box"][1] >= args.min_side]
        distances: dict[str, list[float]] = {"video": [], "photos": [], "impostors": []}
        originals = [embed(frames[f["frame"]], np.array(f["box"])) for f in faces]
        for n, face in enumerate(faces):
            others = (m % len(faces) for m in range(n + 1, n + len(faces)))
            other = next((m for m in others if faces[m]["track"] != face["track"]), None)
            if other is not None:
                distances["impostors"].append(float(np.linalg.norm(originals[other] - originals[n])))
        for face, original in zip(faces, originals):
            i, box = face["frame"], np.array(face["box"])
            for path, image in (("video", outputs[i]), ("photos", photo_outputs[i])):
                distances[path].append(float(np.linalg.norm(embed(image, box) - original)))
            picture = FaceCrop.from_box(box, PAIR_SIDE, expand=PAIR_EXPAND)
            pairs.append((f"{clip.name}:{face['track']}", picture.extract(outputs[i]),
                          picture.extract(photo_outputs[i])))
        for path, values in distances.items():
            values = np.array(values)
            rates = (f"{(values < MATCH_THRESHOLD).mean():.3f}", f"{values.mean():.3f}") if len(values) else ("-", "-")
            table.add_row(clip.name, path, str(len(values)), *rates)
    Console(width=140).print(table)
    if args.pairs is not None:
        write_pairs(pairs, args.pairs, args.key, args.limit)


def write_pairs(pairs: list[tuple[str, np.ndarray, np.ndarray]], folder: Path, key: Path, limit: int) -> None:
    """Up to ``limit`` of (video, photo) pictures side by side, sides at random; the sides (where the video face is)
    go to ``key``."""
    rng = np.random.default_rng(0)
    by_track: dict[str, list[int]] = {}
    for index, (track, _, _) in enumerate(pairs):
        by_track.setdefault(track, []).append(index)
    eligible = [int(i) for indices in by_track.values()
                for i in rng.choice(indices, min(PAIRS_PER_TRACK, len(indices)), replace=False)]
    chosen = sorted(rng.choice(eligible, min(limit, len(eligible)), replace=False))
    folder.mkdir(parents=True, exist_ok=True)
    sides = {}
    gap = np.full((PAIR_SIDE, 8, 3), 255, np.uint8)
    for n, index in enumerate(chosen):
        _, video, photo = pairs[index]
        video_left = bool(rng.integers(2))
        sides[f"pair_{n:02d}.png"] = "left" if video_left else "right"
        iio.imwrite(folder / f"pair_{n:02d}.png", np.hstack([video, gap, photo] if video_left else [photo, gap, video]))
    key.write_text(json.dumps(sides, indent=1))
    print(f"{len(chosen)} pairs of {len(by_track)} tracks in {folder}; the video side of each in {key}")


if __name__ == "__main__":
    main()
