"""Equalized learning-rate layers (Karras et al., ProGAN): weights stored as N(0, 1), scaled by the He constant at run time."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepanon.models import twice_differentiable


class EqualizedConv2d(nn.Module):
    """Conv2d, stride 1, zero 'same' padding, with the weight multiplied by ``gain / sqrt(fan_in)`` in ``forward``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        groups: int = 1,
        bias: bool = True,
        padding: int | None = None,
        gain: float = 1.0,
    ) -> None:
        super().__init__()
        self.groups = groups
        self.padding = kernel_size // 2 if padding is None else padding
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels // groups, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = gain / math.sqrt(in_channels // groups * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return twice_differentiable.conv2d(x, self.weight * self.scale, self.bias, self.padding, self.groups)

    def extra_repr(self) -> str:
        out_c, in_c, k, _ = self.weight.shape
        return f"{in_c * self.groups}, {out_c}, kernel_size={k}, groups={self.groups}, bias={self.bias is not None}"


class EqualizedLinear(nn.Module):
    """Linear layer with the weight multiplied by ``gain / sqrt(in_features)`` in ``forward``."""

    def __init__(self, in_features: int, out_features: int, *, gain: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Normalise each pixel's feature vector to unit RMS over channels (ProGAN PixelNorm): x / sqrt(mean_c(x²) + eps).

    In channels_last (eager inference on the CPU) the mean comes from the channels' L2 norm, one reduction along
    contiguous memory without a squared copy of x, and the scale is rounded to x's dtype once: 2-3× faster in bf16.
    In NCHW (training) that reduction is 28 % slower than squaring first, so x² is averaged (benchmarks/NOTES.md).
    """
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        norm = norm.to(torch.promote_types(norm.dtype, torch.float32))
        return x * torch.rsqrt(norm.square() / x.shape[1] + eps).to(x.dtype)
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)
