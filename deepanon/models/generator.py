"""Config E generator: IConv U-Net with MSG outputs (paper §3.3, Fig. 3) and the eq. 12 composite."""

from __future__ import annotations

import torch
from torch import nn

from deepanon.models.config import ModelConfig
from deepanon.models.equalized import EqualizedConv2d
from deepanon.models.iconv import ImputedConv2d
from deepanon.models.pose import PoseFeatureBank
from deepanon.models.resampling import UNetSkip, certainty_downsample, upsample
from deepanon.models.shapes import check_shape

POSE_HIDDEN = 128


def impute_kernel(resolution: int) -> int:
    """Imputation window K of eq. 4: 3 at 4² and 8², 5 from 16² up."""
    return 3 if resolution <= 8 else 5


class IConvBlock(nn.Module):
    """Two 3×3 IConvs: in -> in -> out."""

    def __init__(
        self, in_channels: int, out_channels: int, resolution: int, imputed: bool, update_last_certainty: bool = True
    ) -> None:
        super().__init__()
        k = impute_kernel(resolution)
        self.conv1 = ImputedConv2d(in_channels, in_channels, 3, impute_kernel=k, imputed=imputed)
        self.conv2 = ImputedConv2d(
            in_channels, out_channels, 3, impute_kernel=k, imputed=imputed, update_certainty=update_last_certainty
        )

    def forward(self, x: torch.Tensor, certainty: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.conv2(*self.conv1(x, certainty))


def truncated_latent(
    shape: tuple[int, ...], truncation: float | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """N(0, 1) latent; with ``truncation`` t, the normal truncated to (-t, t) (the truncation trick)."""
    if truncation is None:
        return torch.randn(shape, generator=generator)
    if truncation <= 0:
        raise ValueError(f"truncation must be > 0, got {truncation}")
    return torch.nn.init.trunc_normal_(torch.empty(shape), a=-truncation, b=truncation, generator=generator)


def seeded_latent(shape: tuple[int, ...], seed: int, truncation: float | None = None) -> torch.Tensor:
    """The latent ``--seed seed`` gives a face: :func:`truncated_latent` drawn from a generator seeded with ``seed``."""
    return truncated_latent(shape, truncation, torch.Generator().manual_seed(seed))


class Generator(nn.Module):
    """``generator(condition, certainty, pose, z=None) -> image``.

    Args of ``forward``:
        condition: (B, 3, S, S) float image in [-1, 1] already multiplied by the certainty (I·C⁰).
        certainty: (B, 1, S, S) binary C⁰, 1 = known pixel, 0 = to inpaint.
        pose: (B, K, 2) keypoints in [0, 1] of the crop (ignored shape (B, 0, 2) allowed when K = 0).
        z: (B, latent_channels, 4, 4) latent; None means z = 0 (deterministic).
    Returns (B, 3, S, S): G(I, C⁰)·(1 - C⁰) + I·C⁰ (eq. 12); pixels with C⁰ = 1 equal the input bit for bit.

    The pose feature bank has 16 channels at 4² (the reference code's choice; the paper's text says 32).
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ModelConfig()
        res = cfg.resolutions
        top = cfg.image_size
        # The 1×1 from-RGB layer does not impute: with a binary C⁰ and C left unchanged, the next IConv discards every
        # value it would impute (C·x + (1-C)·h takes nothing of x where C = 0, and x·C feeds h), so ω would get no
        # gradient.
        self.from_rgb = ImputedConv2d(3, cfg.generator_width(top), 1, imputed=False, update_certainty=False)
        self.encoder = nn.ModuleDict()
        for r in reversed(res):
            out = cfg.generator_width(r // 2) if r > 4 else cfg.generator_width(4)
            self.encoder[str(r)] = IConvBlock(cfg.generator_width(r), out, r, cfg.imputed)
        self.pose_bank = (
            PoseFeatureBank(cfg.num_keypoints, POSE_HIDDEN, cfg.pose_channels, 4) if cfg.num_keypoints > 0 else None
        )
        pose_channels = cfg.pose_channels if self.pose_bank is not None else 0
        bottleneck_in = cfg.generator_width(4) + cfg.latent_channels + pose_channels
        self.bottleneck = IConvBlock(bottleneck_in, cfg.generator_width(4), 4, cfg.imputed)
        self.skips = nn.ModuleDict()
        self.decoder = nn.ModuleDict()
        self.to_rgb = nn.ModuleDict({"4": EqualizedConv2d(cfg.generator_width(4), 3, 1)})
        for r in res[1:]:
            in_channels = self.encoder[str(r)].conv2.conv.weight.shape[0]
            self.skips[str(r)] = UNetSkip()
            self.decoder[str(r)] = IConvBlock(
                in_channels, cfg.generator_width(r), r, cfg.imputed, update_last_certainty=r < top
            )
            self.to_rgb[str(r)] = EqualizedConv2d(cfg.generator_width(r), 3, 1)

    def forward(
        self,
        condition: torch.Tensor,
        certainty: torch.Tensor,
        pose: torch.Tensor,
        z: torch.Tensor | None = None,
    ) -> torch.Tensor:
        cfg = self.config
        b, s = condition.shape[0], cfg.image_size
        check_shape("condition", condition, (b, 3, s, s))
        check_shape("certainty", certainty, (b, 1, s, s))
        if z is None:
            z = condition.new_zeros(b, cfg.latent_channels, 4, 4)
        check_shape("z", z, (b, cfg.latent_channels, 4, 4))

        x, c = self.from_rgb(condition, certainty)
        skips = {}
        for r in cfg.resolutions[::-1]:
            x, c = self.encoder[str(r)](x, c)
            if r > 4:
                skips[r] = (x, c)
                x, c = certainty_downsample(x, c)
        extra = [z.to(x.dtype)]
        if self.pose_bank is not None:
            extra.append(self.pose_bank(pose).to(x.dtype))
        x, c = self.bottleneck(torch.cat([x, *extra], dim=1), c)

        rgb = self.to_rgb["4"](x)
        for r in cfg.resolutions[1:]:
            x, c = upsample(x, c)
            x, c = self.skips[str(r)](*skips[r], x, c)
            x, c = self.decoder[str(r)](x, c)
            rgb = torch.nn.functional.interpolate(rgb, scale_factor=2.0, mode="nearest") + self.to_rgb[str(r)](x)
        generated = (rgb / len(cfg.resolutions)).to(condition.dtype)
        return generated * (1 - certainty) + condition * certainty
