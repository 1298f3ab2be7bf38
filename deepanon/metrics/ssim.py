"""SSIM (Wang et al., IEEE TIP 2004): 11×11 Gaussian window, σ = 1.5, K₁ = 0.01, K₂ = 0.03, data range 1.

Computed per channel over the valid window positions (no padding) and averaged over channels and positions; this
equals ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

WINDOW, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalised (size, size) Gaussian."""
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image of (B, C, H, W) images in [0, data_range]; returns (B,). Images must be ≥ 11×11."""
    if prediction.ndim != 4 or prediction.shape != target.shape:
        raise ValueError(f"expected two (B, C, H, W) images of one shape, got {tuple(prediction.shape)} and "
                         f"{tuple(target.shape)}")
    c = prediction.shape[1]
    x, y = prediction.double(), target.double()
    window = gaussian_window().to(x.device).expand(c, 1, WINDOW, WINDOW)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1).float()
