"""Pose feature bank (paper §3.3): K keypoints -> two fully-connected layers -> a small spatial feature map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepanon.models.equalized import EqualizedLinear
from deepanon.models.iconv import LEAKY_SLOPE
from deepanon.models.shapes import check_shape


class PoseFeatureBank(nn.Module):
    """Map keypoints (B, K, 2) in [0, 1] of the crop to a (B, channels, size, size) feature map.

    Keypoints are moved to [-1, 1], flattened to 2K values, then FC -> LReLU -> FC -> LReLU -> reshape.
    """

    def __init__(self, num_keypoints: int, hidden: int, channels: int, size: int) -> None:
        super().__init__()
        self.num_keypoints = num_keypoints
        self.shape = (channels, size, size)
        self.fc1 = EqualizedLinear(2 * num_keypoints, hidden)
        self.fc2 = EqualizedLinear(hidden, channels * size * size)

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        check_shape("pose", pose, (None, self.num_keypoints, 2))
        p = (pose * 2 - 1).flatten(1)
        p = F.leaky_relu(self.fc1(p), LEAKY_SLOPE)
        p = F.leaky_relu(self.fc2(p), LEAKY_SLOPE)
        return p.view(-1, *self.shape)
