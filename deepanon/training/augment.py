"""Differentiable augmentation (Zhao et al., *Differentiable Augmentation for Data-Efficient GAN Training*, NeurIPS
2020) for the projected discriminator: colour, translation and cutout, drawn per image, applied alike to real and
generated images (each batch its own draws) so that D cannot tell them apart by the augmentation, and G's gradient
flows through it. Images in [-1, 1]; the certainty map and the keypoints move with the image under translation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

TRANSLATION = 1 / 8  # of the side, at most, each way
CUTOUT = 1 / 2  # side of the cut-out square, of the image side


def _uniform(b: int, rng: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.rand((b, 1, 1, 1), generator=rng).to(like.device, like.dtype)


def augment(image: torch.Tensor, certainty: torch.Tensor, pose: torch.Tensor, rng: torch.Generator
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image, certainty, pose) after brightness ±0.5, saturation ×[0, 2], contrast ×[0.5, 1.5], an integer translation of
    up to ``TRANSLATION`` of the side (zeros come in; outside the image counts as known), and a ``CUTOUT`` square set
    to 0."""
    b, _, h, w = image.shape
    image = image + (_uniform(b, rng, image) - 0.5)
    grey = image.mean(1, keepdim=True)
    image = (image - grey) * (2 * _uniform(b, rng, image)) + grey
    mean = image.mean((1, 2, 3), keepdim=True)
    image = (image - mean) * (_uniform(b, rng, image) + 0.5) + mean

    limit = torch.tensor([int(w * TRANSLATION), int(h * TRANSLATION)])
    shift = (torch.rand((b, 2), generator=rng) * (2 * limit + 1)).floor() - limit  # integer pixels, x then y
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = -2 * shift / torch.tensor([w, h])
    grid = F.affine_grid(theta, (b, 1, h, w), align_corners=False).to(image.device, image.dtype)
    image = F.grid_sample(image, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    certainty = 1 - F.grid_sample(1 - certainty, grid.to(certainty.dtype), mode="nearest", padding_mode="zeros",
                                  align_corners=False)

    side = torch.tensor([int(w * CUTOUT), int(h * CUTOUT)])
    corner = (torch.rand((b, 2), generator=rng) * (torch.tensor([w, h]) - side + 1)).floor()
    xs, ys = torch.arange(w).view(1, 1, w), torch.arange(h).view(1, h, 1)
    inside = ((xs >= corner[:, 0].view(b, 1, 1)) & (xs < (corner[:, 0] + side[0]).view(b, 1, 1))
              & (ys >= corner[:, 1].view(b, 1, 1)) & (ys < (corner[:, 1] + side[1]).view(b, 1, 1)))
    pose = pose + (shift / torch.tensor([w, h])).unsqueeze(1).to(pose.device, pose.dtype)
    return image * (~inside).unsqueeze(1).to(image.device, image.dtype), certainty, pose
