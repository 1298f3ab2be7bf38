"""Pixel metrics and SSIM against analytic values and scikit-image."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from deepanon.metrics import l1, l2, psnr, ssim
from deepanon.metrics.pixel import to_unit


def test_identical_images_give_infinite_psnr_and_unit_ssim():
    x = torch.rand(2, 3, 32, 32)
    assert torch.isinf(psnr(x, x)).all() and torch.allclose(ssim(x, x), torch.ones(2))
    assert l1(x, x).tolist() == [0, 0] and l2(x, x).tolist() == [0, 0]


@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.1])
def test_known_noise_gives_the_analytic_psnr(sigma):
    # ±σ noise with random signs: MSE = σ² exactly, so PSNR = 10·log10(1/σ²) = −20·log10 σ.
    target = torch.full((1, 3, 16, 16), 0.5, dtype=torch.float64)
    signs = torch.randint(0, 2, target.shape).double() * 2 - 1
    noisy = target + sigma * signs
    assert psnr(noisy, target).item() == pytest.approx(-20 * math.log10(sigma), abs=1e-4)
    assert l1(noisy, target).item() == pytest.approx(sigma) and l2(noisy, target).item() == pytest.approx(sigma**2)


def test_ssim_matches_scikit_image():
    rng = np.random.default_rng(0)
    a = rng.random((3, 40, 48))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    expected = structural_similarity(a, b, channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    ours = ssim(torch.from_numpy(b)[None].float(), torch.from_numpy(a)[None].float())
    assert ours.item() == pytest.approx(expected, abs=1e-5)


def test_to_unit_maps_the_model_range():
    assert to_unit(torch.tensor([-1.0, 0.0, 1.0])).tolist() == [0.0, 0.5, 1.0]
