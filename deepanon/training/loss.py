"""WGAN losses and gradient penalties for inpainting (paper §3.2, eq. 8–11), as small pure functions.

Scores are per-sample (B,) critic outputs; every function returns per-sample values (B,) so the caller chooses the
reduction. Masks are the certainty C⁰ = M of the paper: 1 = known pixel, 0 = to inpaint.
"""

from __future__ import annotations

import torch


def discriminator_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """Wasserstein critic loss L_adv for D: D(x̃) − D(x)."""
    return fake_score - real_score


def hinge_discriminator_loss(real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """Hinge loss for D (the projected discriminator): max(0, 1 − D(x)) + max(0, 1 + D(x̃))."""
    return torch.relu(1 - real_score) + torch.relu(1 + fake_score)


def generator_loss(fake_score: torch.Tensor) -> torch.Tensor:
    """Generator loss −D(x̃): Wasserstein L_adv, and the hinge GAN's generator loss alike."""
    return -fake_score


def epsilon_penalty(real_score: torch.Tensor, weight: float = 0.001) -> torch.Tensor:
    """Drift penalty ε·D(x)² that keeps the critic's scores near zero (Karras et al., ProGAN; ε = 0.001)."""
    return weight * real_score.square()


def interpolate(real: torch.Tensor, fake: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x̂ = t·x + (1 − t)·x̃ with one t per sample, t ~ U[0, 1] (Gulrajani et al.; paper below eq. 8)."""
    return torch.lerp(fake, real, t.view(-1, *([1] * (real.ndim - 1))))


def critic_gradient(score: torch.Tensor, x_hat: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """∇_x̂ D(x̂) with a graph for the second backward; ``scale`` is a GradScaler's loss scale, divided out again."""
    (gradient,) = torch.autograd.grad((score * scale).sum(), x_hat, create_graph=True)
    return gradient / scale


def _norm(gradient: torch.Tensor) -> torch.Tensor:
    return gradient.flatten(1).norm(p=2, dim=1)


def improved_gradient_penalty(gradient: torch.Tensor, mask: torch.Tensor, weight: float = 10.0) -> torch.Tensor:
    """λ·max(0, ‖∇D(x̂) ⊙ (1 − M)‖₂ − 1), eq. 10/11: one-sided, not squared, only the pixels to inpaint count."""
    return weight * (_norm(gradient * (1 - mask)) - 1).clamp(min=0)


def wgan_gradient_penalty(gradient: torch.Tensor, weight: float = 10.0) -> torch.Tensor:
    """λ·(‖∇D(x̂)‖₂ − 1)², eq. 8: the two-sided WGAN-GP of Gulrajani et al. over the whole image (Config A)."""
    return weight * (_norm(gradient) - 1).square()


def masked_wgan_gradient_penalty(gradient: torch.Tensor, mask: torch.Tensor, weight: float = 10.0) -> torch.Tensor:
    """λ·(‖∇D(x̂) ⊙ (1 − M)‖₂ − 1)², eq. 9: the two-sided penalty restricted to the hole (Yu et al.)."""
    return weight * (_norm(gradient * (1 - mask)) - 1).square()


def latent_diversity(fake_a: torch.Tensor, fake_b: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
    """Mean |x̃(z_a) − x̃(z_b)| over the pixels to inpaint divided by mean |z_a − z_b|: how far the same context's
    faces move per unit of latent, the ratio that the diversity-sensitive term of Yang et al. (ICLR 2019) raises."""
    hole = (1 - mask).expand_as(fake_a)
    change = ((fake_a - fake_b).abs() * hole).flatten(1).sum(1) / hole.flatten(1).sum(1).clamp(min=1)
    return change / (z_a - z_b).abs().flatten(1).mean(1)


def diversity_loss(diversity: torch.Tensor, cap: float) -> torch.Tensor:
    """−min(diversity, cap): rewards a latent that changes the face, up to ``cap`` (past it the term is flat, so it
    cannot push faces into noise)."""
    return -diversity.clamp(max=cap)


def masked_l1(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |x̃ − x| over the pixels to inpaint (optional warm-up; the paper trains on the adversarial loss only)."""
    hole = (1 - mask).expand_as(real)
    return ((fake - real).abs() * hole).flatten(1).sum(1) / hole.flatten(1).sum(1).clamp(min=1)
