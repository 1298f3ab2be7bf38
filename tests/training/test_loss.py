"""Losses of paper §3.2 on a hand-built linear critic D(x) = ⟨w, x⟩, whose gradient ∇_x D = w is known exactly."""

import math

import pytest
import torch

from deepanon.training import loss


def linear_critic_gradient(w: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    score = (x_hat * w).flatten(1).sum(1)
    return loss.critic_gradient(score, x_hat)


def hole_mask(size: int = 8) -> torch.Tensor:
    mask = torch.ones(1, 1, size, size)
    mask[..., 2:6, 2:6] = 0  # 4×4 hole: 3 × 16 = 48 gradient entries count
    return mask


@pytest.mark.parametrize("value, expected", [(0.1, 0.0), (0.2, 10 * (0.2 * math.sqrt(48) - 1))])
def test_improved_penalty_is_zero_below_one_and_exact_above(value, expected):
    # ‖w ⊙ (1 − M)‖₂ = value · √48: 0.69 < 1 → no penalty; 1.39 > 1 → λ·(norm − 1), not squared.
    mask = hole_mask()
    w = torch.full((1, 3, 8, 8), value)
    x_hat = torch.randn(1, 3, 8, 8, requires_grad=True)
    penalty = loss.improved_gradient_penalty(linear_critic_gradient(w, x_hat), mask, weight=10.0)
    assert penalty.item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_improved_penalty_ignores_known_pixels_and_their_gradient():
    mask = hole_mask()
    w = torch.full((1, 3, 8, 8), 0.2)
    w_outside = w.clone()
    w_outside[mask.expand_as(w) == 1] = 100.0  # a huge gradient where pixels are known changes nothing
    x_hat = torch.randn(1, 3, 8, 8, requires_grad=True)
    base = loss.improved_gradient_penalty(linear_critic_gradient(w, x_hat), mask)
    assert loss.improved_gradient_penalty(linear_critic_gradient(w_outside, x_hat), mask).item() == pytest.approx(base.item())

    weights = w_outside.clone().requires_grad_(True)
    loss.improved_gradient_penalty(linear_critic_gradient(weights, x_hat), mask).sum().backward()
    known = mask.expand_as(w) == 1
    assert torch.all(weights.grad[known] == 0)
    # d/dw of λ·‖w_hole‖ is λ·w_hole / ‖w_hole‖ inside the hole.
    norm = 0.2 * math.sqrt(48)
    assert torch.allclose(weights.grad[~known], torch.full((48,), 10 * 0.2 / norm))


def test_two_sided_penalties_eq8_eq9():
    mask = hole_mask()
    w = torch.full((1, 3, 8, 8), 0.1)
    x_hat = torch.randn(1, 3, 8, 8, requires_grad=True)
    gradient = linear_critic_gradient(w, x_hat)
    full_norm, hole_norm = 0.1 * math.sqrt(192), 0.1 * math.sqrt(48)
    assert loss.wgan_gradient_penalty(gradient).item() == pytest.approx(10 * (full_norm - 1) ** 2, rel=1e-5)
    assert loss.masked_wgan_gradient_penalty(gradient, mask).item() == pytest.approx(10 * (hole_norm - 1) ** 2, rel=1e-5)


def test_critic_gradient_divides_out_the_loss_scale():
    w = torch.randn(2, 3, 4, 4)
    x_hat = torch.randn(2, 3, 4, 4, requires_grad=True)
    score = (x_hat * w).flatten(1).sum(1)
    assert torch.allclose(loss.critic_gradient(score, x_hat, scale=1024.0), w)


def test_interpolation_and_wgan_terms():
    real, fake = torch.ones(2, 3, 2, 2), torch.zeros(2, 3, 2, 2)
    x_hat = loss.interpolate(real, fake, torch.tensor([0.25, 1.0]))
    assert torch.all(x_hat[0] == 0.25) and torch.all(x_hat[1] == 1.0)
    real_score, fake_score = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 0.5])
    assert loss.discriminator_loss(real_score, fake_score).tolist() == [-1.5, 1.5]
    assert loss.generator_loss(fake_score).tolist() == [-0.5, -0.5]
    assert loss.epsilon_penalty(real_score).tolist() == pytest.approx([0.004, 0.001])


def test_masked_l1_counts_only_the_hole():
    real = torch.zeros(1, 3, 4, 4)
    fake = torch.full((1, 3, 4, 4), 5.0)
    mask = torch.ones(1, 1, 4, 4)
    mask[..., :2, :] = 0
    fake[..., 2:, :] = 100.0  # known pixels: ignored
    assert loss.masked_l1(fake, real, mask).item() == pytest.approx(5.0)


def test_latent_diversity_against_a_loop_and_its_cap():
    gen = torch.Generator().manual_seed(3)
    fake_a, fake_b = torch.randn(2, 3, 5, 5, generator=gen), torch.randn(2, 3, 5, 5, generator=gen)
    z_a, z_b = torch.randn(2, 4, 2, 2, generator=gen), torch.randn(2, 4, 2, 2, generator=gen)
    mask = (torch.rand(2, 1, 5, 5, generator=gen) > 0.5).float()
    expected = []
    for i in range(2):
        change, holes = 0.0, 0
        for c in range(3):
            for y in range(5):
                for x in range(5):
                    if mask[i, 0, y, x] == 0:
                        change += abs(fake_a[i, c, y, x] - fake_b[i, c, y, x]).item()
                        holes += 1
        expected.append(change / holes / (z_a[i] - z_b[i]).abs().mean().item())
    diversity = loss.latent_diversity(fake_a, fake_b, z_a, z_b, mask)
    assert diversity.tolist() == pytest.approx(expected, rel=1e-5)
    assert loss.diversity_loss(torch.tensor([0.1, 0.5]), cap=0.2).tolist() == pytest.approx([-0.1, -0.2])
    capped = torch.tensor([0.5], requires_grad=True)
    loss.diversity_loss(capped, cap=0.2).sum().backward()
    assert capped.grad.item() == 0.0
