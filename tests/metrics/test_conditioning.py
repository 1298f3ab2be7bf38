"""conditioning_effect: exactly 0 for an input the generator cannot see, positive for one it uses, checked by hand."""

import pytest
import torch

from deepanon.metrics import conditioning_effect
from deepanon.models import Generator, ModelConfig


def inputs(batch: int = 3, size: int = 32):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    mask = torch.ones(batch, 1, size, size)
    mask[:, :, 8:24, 8:24] = 0
    pose = torch.rand(batch, 5, 2, generator=g)
    z = torch.randn(batch, 32, 4, 4, generator=g)
    return image, mask, pose, z


def test_effects_match_a_direct_computation():
    torch.manual_seed(0)
    generator = Generator(ModelConfig(image_size=32, width=0.25)).eval()
    image, mask, pose, z = inputs()
    effect = conditioning_effect(generator, image, mask, pose, z)
    with torch.no_grad():
        base = generator(image * mask, mask, pose)
        moved = generator(image * mask, mask, pose[[2, 0, 1]])
    hole = mask.expand_as(image) == 0
    assert effect["pose_effect"] == pytest.approx(float((moved - base).abs()[hole].mean() * 127.5), rel=1e-6)
    assert effect["z_effect"] > 0 and effect["pose_effect"] > 0


def test_a_generator_blind_to_pose_has_zero_pose_effect():
    torch.manual_seed(0)
    generator = Generator(ModelConfig(image_size=32, width=0.25)).eval()
    for p in generator.pose_bank.parameters():
        torch.nn.init.zeros_(p)
    image, mask, pose, z = inputs()
    effect = conditioning_effect(generator, image, mask, pose, z)
    assert effect["pose_effect"] == 0.0
    assert effect["z_effect"] > 0


def test_needs_two_faces():
    generator = Generator(ModelConfig(image_size=32, width=0.25)).eval()
    image, mask, pose, z = inputs(batch=1)
    with pytest.raises(ValueError, match="two faces"):
        conditioning_effect(generator, image, mask, pose, z)
