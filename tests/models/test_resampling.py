"""Certainty-weighted pooling, up-sampling and the eq. 6-7 skip against hand-computed values."""

import pytest
import torch

from deepanon.models.resampling import UNetSkip, certainty_downsample, upsample


def test_certainty_weighted_pooling_hand_values():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)
    c = torch.tensor([[[[1.0, 0.0], [0.5, 0.0]]]], dtype=torch.float64)
    xd, cd = certainty_downsample(x, c)
    # AvgPool(x·C) = (1 + 1.5)/4 = 0.625, AvgPool(C) = 1.5/4 = 0.375
    assert cd.item() == pytest.approx(0.375)
    assert xd.item() == pytest.approx(0.625 / (0.375 + 0.01))


def test_pooling_ignores_unknown_values():
    x = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    c = (torch.rand(1, 1, 8, 8) > 0.3).double()
    a, _ = certainty_downsample(x, c)
    b, _ = certainty_downsample(x + 100 * (1 - c), c)
    assert torch.allclose(a, b, atol=1e-12)


def test_nearest_upsampling_of_features_and_certainty():
    x = torch.arange(4.0).view(1, 1, 2, 2)
    xu, cu = upsample(x, x / 4)
    assert xu[0, 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    assert torch.equal(cu, xu / 4)


def test_skip_hand_values_and_gamma():
    skip = UNetSkip().double()
    with torch.no_grad():
        skip.beta_skip.fill_(2.0)
        skip.beta_dec.fill_(0.5)
    xs, xd = torch.full((1, 2, 1, 3), 10.0, dtype=torch.float64), torch.full((1, 2, 1, 3), -2.0, dtype=torch.float64)
    cs = torch.tensor([[[[1.0, 0.0, 0.25]]]], dtype=torch.float64)
    cdec = torch.tensor([[[[0.0, 1.0, 0.5]]]], dtype=torch.float64)
    x, c = skip(xs, cs, xd, cdec)
    gamma = torch.tensor([1.0 / (1.0 + 1e-8), 0.0, 0.5 / (0.5 + 0.25 + 1e-8)], dtype=torch.float64)
    assert torch.allclose(x[0, 0, 0], gamma * 10 + (1 - gamma) * -2, atol=1e-12)
    assert torch.allclose(c[0, 0, 0], gamma * cs[0, 0, 0] + (1 - gamma) * cdec[0, 0, 0], atol=1e-12)
    assert x[0, 0, 0, 0].item() == pytest.approx(10.0)  # γ = 1 where only the skip is certain


def test_skip_betas_pass_through_relu():
    skip = UNetSkip().double()
    with torch.no_grad():
        skip.beta_dec.fill_(-3.0)  # ReLU -> 0: the decoder branch is ignored wherever the skip has any certainty
    x, _ = skip(
        torch.ones(1, 1, 1, 1, dtype=torch.float64),
        torch.full((1, 1, 1, 1), 0.1, dtype=torch.float64),
        torch.zeros(1, 1, 1, 1, dtype=torch.float64),
        torch.ones(1, 1, 1, 1, dtype=torch.float64),
    )
    assert x.item() == pytest.approx(1.0)
