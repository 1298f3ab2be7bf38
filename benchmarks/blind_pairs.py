"""A blind two-alternative test of realism: pairs of a real held-out face and a generated face of another person.

    python benchmarks/blind_pairs.py make --data DATA --weights W.safetensors --out PAIRS_DIR --key KEY.json [--pairs 48]
    python benchmarks/blind_pairs.py score --key KEY.json --answers ANSWERS.json

``make`` writes ``PAIRS_DIR/pair_NN.png`` (two 128² crops side by side, 16 px apart, upscaled 2×) and, elsewhere,
``KEY.json`` saying which side is generated. Pair k shows the real val face 2k or 2k+1 and the other one with its
face-box hole painted by the generator (z = 0), sides at random (seed 0): the generated face is never of the person
beside it. Give a judge only PAIRS_DIR and the words "one face in each pair was generated; say which, left or right,
and rate the generated one's naturalness 1-5"; keep the key where the judge cannot read it. ``score`` reads the
judge's answers (``{"pair_00": {"generated": "left", "naturalness": 2}, ...}``) and prints the accuracy (0.5 =
indistinguishable) and the mean naturalness.

    python benchmarks/blind_pairs.py make --data DATA --weights A.safetensors --versus B.safetensors --out DIR --key K

compares two generators instead: pair k shows held-out face k with its hole painted by A and by B (z = 0), sides at
random. Tell the judge "both faces in each pair were generated; say which looks more like a real photo, left or
right, and rate each 1-5"; ``score`` reads ``{"pair_00": {"better": "left", "left": 2, "right": 1}, ...}`` and prints
how often A was preferred and both mean ratings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from deepanon.training.config import MaskKind
from deepanon.training.data import fdf_dataset
from deepanon.weights import load_generator
from quality import to_uint8

GAP = 16


def paint(generator: torch.nn.Module, face: dict[str, torch.Tensor]) -> np.ndarray:
    """The face's crop with its face-box hole painted by the generator (z = 0)."""
    with torch.no_grad():
        out = generator(face["image"][None] * face["mask"][None], face["mask"][None],
                        face["pose"][None][:, : generator.config.num_keypoints])
    return to_uint8(out)[0]


def save_pair(left: np.ndarray, right: np.ndarray, path: Path) -> None:
    size = left.shape[0]
    canvas = np.full((size, 2 * size + GAP, 3), 255, np.uint8)
    canvas[:, :size], canvas[:, size + GAP :] = left, right
    Image.fromarray(canvas).resize((2 * canvas.shape[1], 2 * size), Image.LANCZOS).save(path)


def make(args: argparse.Namespace) -> None:
    generator, _ = load_generator(args.weights)
    other = load_generator(args.versus)[0] if args.versus else None
    faces = fdf_dataset(args.data, "val", image_size=generator.config.image_size, mask=MaskKind.FACE_BOX, flip=False,
                        seed=0)
    rng = np.random.default_rng(0)
    args.out.mkdir(parents=True, exist_ok=True)
    key = {}
    for k in range(args.pairs):
        name = f"pair_{k:02d}"
        if other is None:
            real_index, painted_index = (2 * k, 2 * k + 1) if rng.random() < 0.5 else (2 * k + 1, 2 * k)
            first, second = paint(generator, faces[painted_index]), to_uint8(faces[real_index]["image"][None])[0]
        else:
            first, second = paint(generator, faces[k]), paint(other, faces[k])
        key[name] = "left" if rng.random() < 0.5 else "right"
        save_pair(*((first, second) if key[name] == "left" else (second, first)), args.out / f"{name}.png")
    args.key.parent.mkdir(parents=True, exist_ok=True)
    record = {"weights": str(args.weights), "generated": key} if other is None else \
        {"weights": str(args.weights), "versus": str(args.versus), "first": key}
    args.key.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{args.pairs} pairs in {args.out}; key in {args.key}")


def score(args: argparse.Namespace) -> None:
    record = json.loads(args.key.read_text())
    answers = json.loads(args.answers.read_text())
    if "first" in record:
        key = record["first"]
        judged = [name for name in key if name in answers]
        preferred = sum(answers[name]["better"] == key[name] for name in judged)
        other_side = {"left": "right", "right": "left"}
        first = np.mean([answers[name][key[name]] for name in judged])
        second = np.mean([answers[name][other_side[key[name]]] for name in judged])
        print(f"blind versus: {record['weights']} preferred in {preferred}/{len(judged)} pairs to {record['versus']}; "
              f"naturalness {first:.2f} against {second:.2f} of 5")
        return
    key = record["generated"]
    judged = [name for name in key if name in answers]
    correct = sum(answers[name]["generated"] == key[name] for name in judged)
    naturalness = [answers[name]["naturalness"] for name in judged if "naturalness" in answers[name]]
    print(f"blind pairs: {correct}/{len(judged)} = {correct / len(judged):.2f} picked the generated face "
          f"(0.5 = indistinguishable); naturalness {np.mean(naturalness):.2f} of 5 ({len(naturalness)} rated)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("make")
    made.add_argument("--data", type=Path, required=True)
    made.add_argument("--weights", type=Path, required=True)
    made.add_argument("--out", type=Path, required=True)
    made.add_argument("--key", type=Path, required=True)
    made.add_argument("--versus", type=Path, help="a second generator: pairs of the same face painted by each")
    made.add_argument("--pairs", type=int, default=48)
    scored = commands.add_parser("score")
    scored.add_argument("--key", type=Path, required=True)
    scored.add_argument("--answers", type=Path, required=True)
    args = parser.parse_args()
    make(args) if args.command == "make" else score(args)


if __name__ == "__main__":
    main()
