"""Shared fixtures: real photos that ship inside packages, and tiny generators."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepanon.models import Generator, ModelConfig

TINY = ModelConfig(image_size=32, num_keypoints=5, width=0.25)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins): 512×512 RGB, one face around x 170-250, y 60-170."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """matplotlib's grace_hopper.jpg: 512×600 RGB portrait, one face."""
    from matplotlib import cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB")).copy()


@pytest.fixture(scope="session")
def tiny_generator() -> Generator:
    torch.manual_seed(0)
    return Generator(TINY).eval()
