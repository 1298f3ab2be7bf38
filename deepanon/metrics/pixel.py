"""Pixel metrics per image. Inputs (B, C, H, W) float in [0, 1] (map [-1, 1] images with ``to_unit``); output (B,)."""

from __future__ import annotations

import torch


def to_unit(image: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return (image.float() + 1) / 2


def l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image."""
    return (prediction - target).abs().flatten(1).mean(1)


def l2(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image."""
    return (prediction - target).square().flatten(1).mean(1)


def psnr(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """10·log10(R² / MSE) per image with data range R = 1; +inf for identical images."""
    return 10 * torch.log10(data_range**2 / l2(prediction.double(), target.double())).float()
