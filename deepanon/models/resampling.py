"""Certainty-aware resampling and the U-Net skip connection (paper §3.3, eq. 6-7)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepanon.models.iconv import IMPUTATION_EPS

SKIP_EPS = 1e-8


def certainty_downsample(x: torch.Tensor, certainty: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Certainty-weighted 2×2 average pool: x ← AvgPool2(x·C) / (AvgPool2(C) + 0.01), C ← AvgPool2(C)."""
    pooled_certainty = F.avg_pool2d(certainty, 2)
    return F.avg_pool2d(x * certainty, 2) / (pooled_certainty + IMPUTATION_EPS), pooled_certainty


def upsample(x: torch.Tensor, certainty: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-neighbour ×2 up-sampling of features and certainty."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest"), F.interpolate(certainty, scale_factor=2.0, mode="nearest")


def skip_merge(
    x_skip: torch.Tensor,
    c_skip: torch.Tensor,
    x_dec: torch.Tensor,
    c_dec: torch.Tensor,
    beta_skip: torch.Tensor,
    beta_dec: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 6-7: γ = β₁C_skip / (β₁C_skip + β₂C_dec + ε); x = γ·x_skip + (1-γ)·x_dec, and C likewise."""
    a = beta_skip * c_skip
    gamma = a / (a + beta_dec * c_dec + SKIP_EPS)
    return gamma * x_skip + (1 - gamma) * x_dec, gamma * c_skip + (1 - gamma) * c_dec


class UNetSkip(nn.Module):
    """Learned U-Net skip of eq. 6-7; β₁ and β₂ are scalars initialised to 1 and kept ≥ 0 by a ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.beta_skip = nn.Parameter(torch.ones(()))
        self.beta_dec = nn.Parameter(torch.ones(()))

    def forward(
        self, x_skip: torch.Tensor, c_skip: torch.Tensor, x_dec: torch.Tensor, c_dec: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return skip_merge(x_skip, c_skip, x_dec, c_dec, F.relu(self.beta_skip), F.relu(self.beta_dec))
