"""How much the generator uses its latent z and its pose input (paper §3.3): the output change inside the hole."""

from __future__ import annotations

import torch

from deepanon.models import Generator


@torch.no_grad()
def conditioning_effect(
    generator: Generator, image: torch.Tensor, mask: torch.Tensor, pose: torch.Tensor, z: torch.Tensor
) -> dict[str, float]:
    """Mean |output change| inside the hole, on the 0-255 scale, of two changes of the input against z = 0:

    ``z_effect``: z = 0 replaced by ``z`` (B, latent, 4, 4); ``pose_effect``: each face given the keypoints of the
    next face in the batch (needs B >= 2). Near 0 means the generator ignores that input: no variety from z, or no
    control of the face by its keypoints.
    """
    if len(image) < 2:
        raise ValueError("the pose effect needs at least two faces")
    condition, hole = image * mask, (mask < 0.5).expand_as(image)
    base = generator(condition, mask, pose)
    changed = {"z_effect": generator(condition, mask, pose, z), "pose_effect": generator(condition, mask, pose.roll(1, 0))}
    return {name: float((out - base).abs()[hole].float().mean() * 127.5) for name, out in changed.items()}
