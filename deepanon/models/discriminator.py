"""Residual discriminator of Config E (paper §3.3, Fig. 3) with the pose map entering at 32²."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepanon.models.config import ModelConfig
from deepanon.models.equalized import EqualizedConv2d, EqualizedLinear
from deepanon.models.iconv import LEAKY_SLOPE
from deepanon.models.pose import PoseFeatureBank
from deepanon.models.shapes import check_shape

POSE_RESOLUTION = 32
POSE_HIDDEN = 64


class ResidualBlock(nn.Module):
    """Two 3×3 conv + LReLU, a 1×1 residual branch, (y + r)/√2, then a 2×2 average pool."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv2 = EqualizedConv2d(in_channels, out_channels, 3)
        self.residual = EqualizedConv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), LEAKY_SLOPE)
        y = F.leaky_relu(self.conv2(y), LEAKY_SLOPE)
        return F.avg_pool2d((y + self.residual(x)) / math.sqrt(2), 2)


class Discriminator(nn.Module):
    """``discriminator(image, condition, certainty, pose) -> score`` of shape (B,).

    The input is concat(image, condition, certainty): 7 channels. No minibatch-stddev, no normalisation.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ModelConfig()
        top = cfg.image_size
        self.from_input = EqualizedConv2d(7, cfg.discriminator_width(top), 1)
        self.pose_bank = (
            PoseFeatureBank(cfg.num_keypoints, POSE_HIDDEN, 1, POSE_RESOLUTION)
            if cfg.num_keypoints > 0 and top >= POSE_RESOLUTION
            else None
        )
        self.blocks = nn.ModuleDict()
        for r in cfg.resolutions[:0:-1]:
            extra = 1 if self.pose_bank is not None and r == POSE_RESOLUTION else 0
            self.blocks[str(r)] = ResidualBlock(cfg.discriminator_width(r) + extra, cfg.discriminator_width(r // 2))
        width = cfg.discriminator_width(4)
        self.conv_4 = EqualizedConv2d(width, width, 3)
        self.conv_valid = EqualizedConv2d(width, width, 4, padding=0)
        self.score = EqualizedLinear(width, 1)

    def forward(
        self, image: torch.Tensor, condition: torch.Tensor, certainty: torch.Tensor, pose: torch.Tensor
    ) -> torch.Tensor:
        b, s = image.shape[0], self.config.image_size
        check_shape("image", image, (b, 3, s, s))
        check_shape("condition", condition, (b, 3, s, s))
        check_shape("certainty", certainty, (b, 1, s, s))
        x = F.leaky_relu(self.from_input(torch.cat([image, condition, certainty], dim=1)), LEAKY_SLOPE)
        for r, block in self.blocks.items():
            if self.pose_bank is not None and int(r) == POSE_RESOLUTION:
                x = torch.cat([x, self.pose_bank(pose).to(x.dtype)], dim=1)
            x = block(x)
        x = F.leaky_relu(self.conv_4(x), LEAKY_SLOPE)
        x = F.leaky_relu(self.conv_valid(x), LEAKY_SLOPE)
        return self.score(x.flatten(1)).squeeze(1)
