"""Imputed Convolution (IConv), paper eq. 2-5.

Shapes: features ``x`` (B, C_in, H, W); certainty ``C`` (B, 1, H, W) in [0, 1] with 1 = known, 0 = to inpaint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deepanon.models.depthwise import depthwise_conv2d
from deepanon.models.equalized import EqualizedConv2d, pixel_norm
from deepanon.models.shapes import check_shape

IMPUTATION_EPS = 0.01
CERTAINTY_EPS = 1e-6
LEAKY_SLOPE = 0.2


def impute(x: torch.Tensor, certainty: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """Expected input E[Ĩ] = C·x + (1 - C)·h (eq. 3) with h the certainty-weighted neighbourhood estimate (eq. 4).

    ``h = DWConv_ω(x·C) / (AvgPool_K(C) + 0.01)``: ``omega`` is the depthwise (C_in, 1, K, K) kernel (already scaled);
    zero padding; the average pool counts the padding, i.e. always divides by K². Computed as
    ``x·C + DWConv_ω(x·C) · (1 - C) / (AvgPool_K(C) + 0.01)``: the one-channel factor is cheap, and the full-width
    work is one product, the convolution and one fused multiply-add (eager inference 10-20 % faster, NOTES).
    """
    k = omega.shape[-1]
    known = x * certainty
    mass = F.avg_pool2d(certainty, k, stride=1, padding=k // 2, count_include_pad=True)
    return torch.addcmul(known, depthwise_conv2d(known, omega), (1 - certainty) / (mass + IMPUTATION_EPS))


def propagate_certainty(certainty: torch.Tensor, w_c: torch.Tensor) -> torch.Tensor:
    """Learned certainty propagation (eq. 5, reference form): C' = clamp(2·σ(W_C * C) - 1 + 1e-6, 0, 1).

    ``2σ - 1`` maps an all-unknown window to 0 and a window with large certain mass to ~1.
    """
    logits = F.conv2d(certainty, w_c, padding=w_c.shape[-1] // 2)
    return torch.clamp(2 * torch.sigmoid(logits) - 1 + CERTAINTY_EPS, 0.0, 1.0)


class ImputedConv2d(nn.Module):
    """One IConv layer (eq. 2): O = PixelNorm(LReLU(f(E[Ĩ]))) and the next certainty C' (eq. 5).

    Args:
        kernel_size: kernel of the ordinary conv f (and of W_C).
        impute_kernel: K of the imputation window (eq. 4); 3 at 4²/8², 5 from 16² in Config E.
        imputed: False gives a plain conv (Config C ablation): x is fed to f unchanged, certainty still propagates.
        update_certainty: False returns C unchanged (1×1 from-RGB layers, and a last layer whose C is unused).
        activation: False gives f alone (no LReLU, no PixelNorm).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        impute_kernel: int = 5,
        imputed: bool = True,
        update_certainty: bool = True,
        activation: bool = True,
    ) -> None:
        super().__init__()
        self.conv = EqualizedConv2d(in_channels, out_channels, kernel_size)
        self.imputation = (
            EqualizedConv2d(in_channels, in_channels, impute_kernel, groups=in_channels, bias=False) if imputed else None
        )
        self.certainty_weight = (
            nn.Parameter(torch.ones(1, 1, kernel_size, kernel_size)) if update_certainty else None
        )
        self.activation = activation

    def forward(self, x: torch.Tensor, certainty: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_shape("x", x, (None, None, None, None))
        check_shape("certainty", certainty, (x.shape[0], 1, *x.shape[2:]))
        if self.imputation is not None:
            x = impute(x, certainty, self.imputation.weight * self.imputation.scale)
        y = self.conv(x)
        if self.activation:
            y = pixel_norm(F.leaky_relu(y, LEAKY_SLOPE))
        if self.certainty_weight is not None:
            certainty = propagate_certainty(certainty, self.certainty_weight)
        return y, certainty
