"""Quality and privacy of a generator on held-out faces, against two baselines computed in the same run.

    python benchmarks/quality.py --data DATA_DIR --weights weights/default.safetensors [--limit 5000]
        [--json benchmarks/quality.json] [--grid examples/quality_grid.jpg] [--latent zero|random]

Needs ``pip install yuface dlib-bin face-recognition-models`` (dlib-bin: dlib's prebuilt wheel, no compiler; the
face-recognition-models files are read by path).

DATA_DIR is what ``deepanon prepare`` writes (its ``val`` split is read; never train on it). Every face is generated
with z = 0 (``--latent random``: z ~ N(0, 1), one per face) and its face-box hole (grown about its centre by
``--hole-scale``). Rows: ``ours`` (the weights), ``blur`` (the hole filled with a blur of the whole crop, what deface
does), ``random`` (the same generator with untrained weights), ``swap`` (the hole filled with the face of another real
person, resized into the hole: with ``--labels`` someone of the same gender, race and age group, else the next face;
what a perfect generator that keeps the context could reach) and ``real`` (the input itself, the ceiling for the
realism proxy). Columns:

* PSNR/L1 inside the hole, L1 outside it (must be 0: eq. 12), SSIM of the whole crop;
* realism proxy: the fraction of faces in which YuNet (not CenterFace, which made the masks) finds a face;
* privacy with dlib's 128-D face-recognition embedding (threshold 0.6): re-identification rate (anonymized vs its own
  original), the impostor rate of unrelated real pairs in the same run (with ``--labels``, FairFace's label CSV, also
  among pairs of unrelated people of the same gender, race and age group, and a second table of the re-id and realism
  rates by gender and by race), and rank-1 identification (nearest original among all originals is its own;
  chance = 1/N);
* Fréchet distance between the dlib embeddings of real and generated faces (an offline stand-in for FID, not FID);
* conditioning sensitivity of ``ours`` on the first ``--sensitivity-faces`` faces: the mean absolute change inside the
  hole (0-255 scale) when z = 0 is replaced by z ~ N(0, 1), and when each face's keypoints are replaced by those of
  another face. Near 0 means the generator ignores that input (no variety from z; no pose control).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from scipy import linalg

from deepanon.detection.yunet import YuNet
from deepanon.metrics import conditioning_effect, ssim
from deepanon.models import Generator, seeded_latent
from deepanon.training.config import MaskKind
from deepanon.training.data import fdf_dataset
from deepanon.training.masks import box_mask
from deepanon.weights import load_generator

MATCH_THRESHOLD = 0.6
GROUP_FIELDS = (("gender", 0), ("race", 1))  # the label fields broken down by, as (name, index in face_labels)
CHUNK = 256  # faces per SSIM call (the whole set at once needs tens of GB)


class DlibEmbedder:
    """dlib's ResNet face descriptor (face-recognition-models files, loaded by path) on a known face box."""

    def __init__(self) -> None:
        import importlib.util

        import dlib

        models = Path(importlib.util.find_spec("face_recognition_models").submodule_search_locations[0]) / "models"
        self.dlib = dlib
        self.shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self.net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def __call__(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Embedding of the face in ``box``; crops smaller than 128² are upscaled (bicubic) to 128² first, alike for
        real and generated faces, since dlib's network works on 150² chips."""
        scale = max(1.0, 128 / image.shape[0])
        if scale > 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        image = np.ascontiguousarray(image)
        rect = self.dlib.rectangle(*(int(round(v * scale)) for v in box))
        return np.array(self.net.compute_face_descriptor(image, self.shape(image, rect)))


def blur_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The hole filled with a strong box blur of the whole crop (deface-style), known pixels kept."""
    blurred = cv2.blur(image, (25, 25))
    return np.where(mask[..., None] > 0.5, image, blurred)


def swap_fill(real: np.ndarray, holes: list[np.ndarray], donors: np.ndarray) -> np.ndarray:
    """Each face's hole filled with the hole of face ``donors[i]`` (another real person), resized to fit."""
    out = real.copy()
    for i, donor in enumerate(donors):
        x0, y0, x1, y1 = holes[i].astype(int)
        dx0, dy0, dx1, dy1 = holes[donor].astype(int)
        out[i, y0:y1, x0:x1] = cv2.resize(real[donor, dy0:dy1, dx0:dx1], (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    return out


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def face_labels(data: Path, labels: Path, n: int) -> list[tuple[str, str, str]]:
    """(gender, race, age group) of each of the first ``n`` val faces, from FairFace's label CSV."""
    rows = {r["file"].split("/")[-1]: (r["gender"], r["race"], r["age"]) for r in csv.DictReader(labels.open())}
    sources = (data / "val" / "sources.txt").read_text().split()[:n]
    return [rows[Path(name).name] for name in sources]


def matched_pairs(groups_of_faces: list[tuple[str, str, str]]) -> np.ndarray:
    """Index pairs (i, j), i != j, of faces of the same gender, race and age group, each face paired with the next
    face of its group in file order (the last with the first); groups of one are left out."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, group in enumerate(groups_of_faces):
        groups.setdefault(group, []).append(i)
    return np.array([(a, b) for members in groups.values() if len(members) > 1
                     for a, b in zip(members, np.roll(members, -1))], dtype=int).reshape(-1, 2)


def by_group(values: np.ndarray, groups_of_faces: list[tuple[str, str, str]], field: int) -> dict[str, float]:
    """Mean of ``values`` per gender (field 0) or race (field 1)."""
    keys = np.array([g[field] for g in groups_of_faces])
    return {key: float(values[keys == key].mean()) for key in sorted(set(keys))}


def hole_box(hole: np.ndarray) -> np.ndarray:
    """(x0, y0, x1, y1) of a rectangular hole mask."""
    ys, xs = np.nonzero(hole)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def grown(box: np.ndarray, scale: float) -> np.ndarray:
    """The box scaled by ``scale`` about its centre."""
    centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2 * scale
    return np.concatenate([centre - half, centre + half])


def as_unit(faces: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float64 (N, 3, H, W) in [0, 1]."""
    return torch.from_numpy(faces).permute(0, 3, 1, 2).double() / 255


def to_uint8(batch: torch.Tensor) -> np.ndarray:
    return ((batch + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--grid", type=Path)
    parser.add_argument("--sensitivity-faces", type=int, default=64)
    parser.add_argument("--hole-scale", type=float, default=1.0,
                        help="grow the hole about the face box's centre (1 = the face box the model was trained with); "
                             "the dlib embedding still uses the face box")
    parser.add_argument("--latent", choices=["zero", "random"], default="zero",
                        help="ours with z = 0 (the default of deepanon without --seed) or z ~ N(0, 1), face i's from seed i")
    parser.add_argument("--labels", type=Path, help="FairFace labels_val.csv: adds the same-group impostor rate")
    args = parser.parse_args()

    ours, _ = load_generator(args.weights)
    torch.manual_seed(0)
    untrained = Generator(ours.config).eval()
    dataset = fdf_dataset(args.data, "val", image_size=ours.config.image_size, mask=MaskKind.FACE_BOX, flip=False)
    n = min(args.limit, len(dataset))
    methods = ["real", "ours", "blur", "random"]
    outputs: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    masks, boxes = [], []
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, n, args.batch_size):
            items = [dataset[i] for i in range(first, min(n, first + args.batch_size))]
            image, mask, pose = (torch.stack([it[k] for it in items]) for k in ("image", "mask", "pose"))
            face_boxes = [hole_box(m[0].numpy() < 0.5) for m in mask]
            boxes += face_boxes
            if args.hole_scale != 1:
                mask = torch.stack([box_mask(mask.shape[-1], grown(b, args.hole_scale)) for b in face_boxes])
            real = to_uint8(image)
            outputs["real"].append(real)
            z = None
            if args.latent == "random":  # face i's latent is the one --seed i gives
                shape = (ours.config.latent_channels, 4, 4)
                z = torch.stack([seeded_latent(shape, i) for i in range(first, first + len(items))])
            outputs["ours"].append(to_uint8(ours(image * mask, mask, pose, z)))
            outputs["random"].append(to_uint8(untrained(image * mask, mask, pose)))
            outputs["blur"].append(np.stack([blur_fill(r, m[0].numpy()) for r, m in zip(real, mask)]))
            masks.append(mask[:, 0].numpy())
    generate_seconds = time.perf_counter() - start
    picked = [dataset[i] for i in range(min(n, args.sensitivity_faces))]
    latent = torch.randn(len(picked), ours.config.latent_channels, 4, 4, generator=torch.Generator().manual_seed(0))
    conditioning = conditioning_effect(ours, *(torch.stack([it[k] for it in picked]) for k in ("image", "mask", "pose")), latent)
    faces = {m: np.concatenate(v) for m, v in outputs.items()}
    hole = np.concatenate(masks) < 0.5
    holes = [hole_box(h) for h in hole]
    labels = face_labels(args.data, args.labels, n) if args.labels else None
    pairs = matched_pairs(labels) if labels else None
    donors = (np.arange(n) + 1) % n
    if pairs is not None:
        donors[pairs[:, 0]] = pairs[:, 1]
    faces["swap"] = swap_fill(faces["real"], holes, donors)
    methods.append("swap")

    yunet, embed = YuNet(threshold=0.5), DlibEmbedder()
    real = faces["real"]
    real_embeddings = np.stack([embed(f, b) for f, b in zip(real, boxes)])
    rows, own_distance = {}, {}
    for method in methods:
        out = faces[method]
        diff = np.abs(out.astype(np.float64) - real.astype(np.float64)) / 255
        mse_in = np.array([(d[h] ** 2).mean() for d, h in zip(diff, hole)])
        l1_in = np.array([d[h].mean() for d, h in zip(diff, hole)])
        l1_out = np.array([d[~h].mean() if (~h).any() else 0.0 for d, h in zip(diff, hole)])
        ssim_all = np.concatenate([ssim(as_unit(out[i : i + CHUNK]), as_unit(real[i : i + CHUNK])).numpy()
                                   for i in range(0, n, CHUNK)])
        found_each = np.array([len(yunet.detect(np.ascontiguousarray(f))) > 0 for f in out], dtype=float)
        found = found_each.mean()
        emb = real_embeddings if method == "real" else np.stack([embed(f, b) for f, b in zip(out, boxes)])
        own = own_distance[method] = np.linalg.norm(emb - real_embeddings, axis=1)
        # pairwise distances by ‖a‖² + ‖b‖² − 2a·b (an (N, N, 128) difference tensor would not fit in memory)
        squared = (emb**2).sum(1)[:, None] + (real_embeddings**2).sum(1)[None] - 2 * emb @ real_embeddings.T
        distances = np.sqrt(np.maximum(squared, 0))
        rank1 = np.mean(distances.argmin(1) == np.arange(n))
        rows[method] = {
            "psnr_hole": float(np.mean(10 * np.log10(1 / np.maximum(mse_in, 1e-12)))),
            "l1_hole": float(l1_in.mean()),
            "l1_outside": float(l1_out.mean()),
            "ssim": float(ssim_all.mean()),
            "realism_yunet": float(found),
            "reid_rate": float(np.mean(own < MATCH_THRESHOLD)),
            "rank1": float(rank1),
            "frechet_dlib": frechet(real_embeddings, emb),
        }
        if labels:
            rows[method]["by_group"] = {
                name: {"reid_rate": by_group((own < MATCH_THRESHOLD).astype(float), labels, field),
                       "realism_yunet": by_group(found_each, labels, field)}
                for name, field in GROUP_FIELDS
            }
    impostor = np.linalg.norm(real_embeddings - np.roll(real_embeddings, 1, axis=0), axis=1)
    if pairs is not None:
        matched = np.linalg.norm(real_embeddings[pairs[:, 0]] - real_embeddings[pairs[:, 1]], axis=1)
        # faces alone in their group within the first n get the next face as donor: rate over the paired faces only
        rows["swap"]["reid_rate_same_group_donor"] = float(np.mean(own_distance["swap"][pairs[:, 0]] < MATCH_THRESHOLD))
        paired_labels = [labels[i] for i in pairs[:, 0]]
        same_group_by = {name: by_group((matched < MATCH_THRESHOLD).astype(float), paired_labels, field)
                         for name, field in GROUP_FIELDS}
    summary = {
        "faces": n,
        "impostor_rate": float(np.mean(impostor < MATCH_THRESHOLD)),
        "impostor_rate_same_group": float(np.mean(matched < MATCH_THRESHOLD)) if args.labels else None,
        "impostor_rate_same_group_by_group": same_group_by if args.labels else None,
        "rank1_chance": 1 / n,
        "swap_donors": (f"same gender, race and age group for {len(pairs)} of {n} faces, the rest the next face"
                        if pairs is not None else "next face"),
        "generate_seconds": generate_seconds,
        "sensitivity_ours": conditioning,
        "rows": rows,
        "weights": str(args.weights),
        "latent": args.latent,
        "hole_scale": args.hole_scale,
        "model": ours.config.to_dict(),
    }

    same_group = f", same gender/race/age {summary['impostor_rate_same_group']:.3f}" if args.labels else ""
    table = Table(title=f"{n} held-out faces; impostor rate (unrelated real pairs < {MATCH_THRESHOLD}): "
                  f"{summary['impostor_rate']:.3f}{same_group}; rank-1 chance {1 / n:.4f}")
    for column in ["method", "PSNR hole", "L1 hole", "L1 outside", "SSIM", "YuNet finds a face", "re-id rate", "rank-1", "Fréchet (dlib)"]:
        table.add_column(column, justify="right")
    for method, r in rows.items():
        table.add_row(method, f"{r['psnr_hole']:.2f}", f"{r['l1_hole']:.4f}", f"{r['l1_outside']:.4f}", f"{r['ssim']:.4f}",
                      f"{r['realism_yunet']:.3f}", f"{r['reid_rate']:.3f}", f"{r['rank1']:.4f}", f"{r['frechet_dlib']:.4f}")
    console = Console()
    console.print(table)
    console.print(f"swap donors: {summary['swap_donors']}")
    if pairs is not None:
        console.print(f"swap re-id over the {len(pairs)} faces with a same-group donor: "
                      f"{rows['swap']['reid_rate_same_group_donor']:.3f}")
        groups = Table(title="By FairFace label: re-id rate / YuNet finds a face (same-group impostor rate)")
        for column in ["group", "faces", "ours", "blur", "swap", "same-group impostor"]:
            groups.add_column(column, justify="right")
        for name, field in GROUP_FIELDS:
            for key in sorted({g[field] for g in labels}):
                cells = [f"{rows[m]['by_group'][name]['reid_rate'][key]:.3f} / "
                         f"{rows[m]['by_group'][name]['realism_yunet'][key]:.3f}" for m in ("ours", "blur", "swap")]
                size = sum(g[field] == key for g in labels)
                groups.add_row(key, str(size), *cells, f"{same_group_by[name].get(key, float('nan')):.3f}")
        console.print(groups)
    console.print(f"ours, mean |change| in the hole (0-255) on {len(picked)} faces: z=0 -> z~N(0,1) "
                  f"{conditioning['z_effect']:.2f}, keypoints of another face {conditioning['pose_effect']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if args.grid:
        picks = np.linspace(0, n - 1, 16).astype(int)
        masked = real * (~hole[..., None])
        rows_img = [np.concatenate([real[i], masked[i], faces["ours"][i]], 1) for i in picks]
        grid = np.concatenate([np.concatenate(rows_img[:8], 0), np.concatenate(rows_img[8:], 0)], 1)
        cv2.imwrite(str(args.grid), cv2.cvtColor(grid.astype(np.uint8), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
