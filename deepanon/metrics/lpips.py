"""LPIPS v0.1 with AlexNet (Zhang et al., CVPR 2018), backbone and linear layers from local files.

Files: torchvision's AlexNet state dict, and the LPIPS v0.1 linear layers in the official ``alex.pth`` layout
(keys ``lin{0..4}.model.1.weight`` of shape (1, C, 1, 1)). Both are loaded strictly; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import alexnet

from deepanon.metrics.backbones import load_backbone

CHANNELS = (64, 192, 384, 256, 256)
RELU_OUTPUTS = (1, 4, 7, 9, 11)  # indices in torchvision's alexnet.features after which LPIPS taps
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class _Linear(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class _Heads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        for i, c in enumerate(CHANNELS):
            setattr(self, f"lin{i}", _Linear(c))


def normalize_channels(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (x.square().sum(1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """Per-image distance between two batches of images in [-1, 1]; returns (B,)."""

    def __init__(self, alexnet_weights: Path, linear_weights: Path) -> None:
        super().__init__()
        self.features = load_backbone(alexnet(weights=None), alexnet_weights).features
        self.heads = load_backbone(_Heads(), linear_weights)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, x = [], (x.float() - self.shift) / self.scale
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in RELU_OUTPUTS:
                out.append(normalize_channels(x))
            if i == RELU_OUTPUTS[-1]:
                break
        return out

    @torch.no_grad()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(a.shape[0], device=a.device)
        for i, (fa, fb) in enumerate(zip(self.taps(a), self.taps(b))):
            head = getattr(self.heads, f"lin{i}").model[1]
            total = total + head((fa - fb).square()).mean((1, 2, 3))
        return total
