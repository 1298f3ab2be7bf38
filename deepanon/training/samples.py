"""Sample grids: per row one validation face: input | masked | generated with z = 0 | generated with fixed random z."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from deepanon.models import Generator


@torch.no_grad()
def sample_grid(generator: Generator, batch: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    """(3, H, W) float grid in [0, 1] of the columns above; ``z`` is (B, latent, 4, 4)."""
    image, mask, pose = batch["image"], batch["mask"], batch["pose"]
    condition = image * mask
    columns = [image, condition, generator(condition, mask, pose), generator(condition, mask, pose, z)]
    tiles = torch.stack(columns, dim=1).flatten(0, 1).float().cpu()
    return make_grid((tiles + 1) / 2, nrow=len(columns), padding=2, pad_value=1.0).clamp(0, 1)


def save_png(grid: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(array).save(path)
