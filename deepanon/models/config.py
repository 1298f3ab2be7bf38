"""Model configuration shared by the generator, the discriminator and the weight files."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

# Generator conv width per resolution at width multiplier 1: Config E on FDF (paper §4.1, Fig. 3), with the widths of
# the code the paper links to (its footnote 1).
BASE_WIDTHS = {4: 128, 8: 128, 16: 128, 32: 128, 64: 64, 128: 32, 256: 16}


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters that fix the shape of the generator and discriminator.

    ``num_keypoints`` K: 5 for the inference detector's landmarks (eyes, nose, mouth corners), 7 for FDF's COCO
    keypoints, 0 for no pose input. ``width`` multiplies every conv width (2 gives the paper's free-form variant).
    ``imputed`` False replaces every IConv by a plain conv (ablation Config C vs D).
    """

    image_size: int = 128
    num_keypoints: int = 5
    width: float = 1.0
    imputed: bool = True
    latent_channels: int = 32
    pose_channels: int = 16

    def __post_init__(self) -> None:
        if self.image_size not in BASE_WIDTHS or self.image_size < 8:
            raise ValueError(f"image_size must be one of {sorted(r for r in BASE_WIDTHS if r >= 8)}, got {self.image_size}")
        if self.num_keypoints < 0 or self.width <= 0 or self.latent_channels < 0 or self.pose_channels < 0:
            raise ValueError(f"invalid model config: {self}")

    @property
    def resolutions(self) -> list[int]:
        """Resolutions from 4 up to the image size."""
        return [2**i for i in range(2, int(math.log2(self.image_size)) + 1)]

    def generator_width(self, resolution: int) -> int:
        return max(1, round(BASE_WIDTHS[resolution] * self.width))

    def discriminator_width(self, resolution: int) -> int:
        """ceil(√2 · G width / 8) · 8, as the reference code sizes the residual discriminator."""
        return int(math.ceil(math.sqrt(2) * self.generator_width(resolution) / 8) * 8)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)
