import pytest
import torch

from deepanon.models import Discriminator, Generator, ModelConfig


def face_batch(batch: int, keypoints: int, size: int = 128, seed: int = 0):
    """Random image in [-1, 1], a centre-box hole (C⁰ = 0 inside) and keypoints in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    certainty = torch.ones(batch, 1, size, size)
    certainty[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 0
    pose = torch.rand(batch, keypoints, 2, generator=g)
    return image, certainty, pose


@pytest.fixture(scope="module")
def models_k7():
    torch.manual_seed(0)
    cfg = ModelConfig(num_keypoints=7)
    return Generator(cfg), Discriminator(cfg)
