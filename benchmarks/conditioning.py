"""Does a training recipe teach the generator to use z and the keypoints? One row per checkpoint of each run.

    python benchmarks/conditioning.py RUN [RUN ...] --data DATA_DIR [--faces 64]

For every checkpoint in ``RUN/checkpoints`` the EMA generator is run on the first ``--faces`` held-out faces of
``DATA_DIR/val`` (at the run's image size and with its mask kind, no flip) and the table gives, next to the images seen:

* ``z effect`` / ``pose effect``: :func:`deepanon.metrics.conditioning_effect`, the mean absolute change inside the
  hole (0-255) when z = 0 becomes z ~ N(0, 1) (fixed seed), and when each face gets the keypoints of another face;
* ``L1 hole``: mean |output - original| inside the hole (0-255), how close the fill stays to the real face.

Runs are compared at equal images seen; the same faces and the same z serve every checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from deepanon.metrics import conditioning_effect
from deepanon.training.checkpoint import CHECKPOINT_DIR, load_checkpoint
from deepanon.training.config import MaskKind
from deepanon.training.data import fdf_dataset
from deepanon.training.loop import ema_generator


def held_out_batch(data: Path, image_size: int, mask: str, faces: int) -> dict[str, torch.Tensor]:
    dataset = fdf_dataset(data, "val", image_size=image_size, mask=MaskKind(mask), flip=False)
    items = [dataset[i] for i in range(min(faces, len(dataset)))]
    return {key: torch.stack([item[key] for item in items]) for key in ("image", "mask", "pose")}


@torch.no_grad()
def measure(state: dict, batch: dict[str, torch.Tensor], z: torch.Tensor) -> dict[str, float]:
    generator = ema_generator(state)
    image, mask, pose = batch["image"], batch["mask"], batch["pose"]
    hole = (mask < 0.5).expand_as(image)
    fill = generator(image * mask, mask, pose)
    l1_hole = float((fill - image).abs()[hole].mean() * 127.5)
    return conditioning_effect(generator, image, mask, pose, z) | {"l1_hole": l1_hole}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--faces", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)

    table = Table(title=f"Conditioning of the EMA generator on {args.faces} held-out faces (0-255 scale)")
    for column in ("run", "images", "z effect", "pose effect", "L1 hole"):
        table.add_column(column, justify="left" if column == "run" else "right")
    rows, batches = [], {}
    for run in args.runs:
        for path in sorted((run / CHECKPOINT_DIR).glob("*.pt")):
            state = load_checkpoint(path)
            config = state["config"]
            key = (config["image_size"], config["mask"])
            if key not in batches:
                batches[key] = held_out_batch(args.data, *key, args.faces)
            batch = batches[key]
            latent = state["model"]["latent_channels"]
            z = torch.randn((len(batch["image"]), latent, 4, 4), generator=torch.Generator().manual_seed(0))
            row = {"run": run.name, "images": state["images_seen"], **measure(state, batch, z)}
            rows.append(row)
            table.add_row(row["run"], f"{row['images']:,}", f"{row['z_effect']:.2f}", f"{row['pose_effect']:.2f}",
                          f"{row['l1_hole']:.1f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
