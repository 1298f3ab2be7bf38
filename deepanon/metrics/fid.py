"""Fréchet distance (Heusel et al. 2017) on Inception-v3 pool features, with the backbone from a local file.

The network is torchvision's Inception v3: its ImageNet weights give FIDs that are not comparable to numbers computed
with the TensorFlow FID Inception (``pt_inception-2015-12-05``) used by the paper; state which file you used.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.models import inception_v3

from deepanon.metrics.backbones import load_backbone

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½), with tr((Σ₁Σ₂)^½) = Σ √eig(Σ₁^½ Σ₂ Σ₁^½) (symmetric, float64)."""
    mu1, sigma1, mu2, sigma2 = (t.double() for t in (mu1, sigma1, mu2, sigma2))
    values, vectors = torch.linalg.eigh(sigma1)
    root1 = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    middle = torch.linalg.eigvalsh(root1 @ sigma2 @ root1).clamp(min=0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * middle)


def statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance (N − 1) of (N, D) features."""
    features = features.double()
    return features.mean(0), torch.cov(features.T)


class InceptionFeatures(torch.nn.Module):
    """2048-d pool3 features of images in [-1, 1] (resized to 299², ImageNet-normalised)."""

    def __init__(self, weights: Path) -> None:
        super().__init__()
        net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
        self.net = load_backbone(net, weights)
        self.net.fc = torch.nn.Identity()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate((images.float() + 1) / 2, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std)
