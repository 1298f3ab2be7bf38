"""Shape checks where tensors enter the models: ValueError naming the input, under ``python -O`` too."""

import subprocess
import sys

import pytest
import torch

from deepanon.models import Discriminator, Generator, ImputedConv2d, ModelConfig
from deepanon.models.shapes import check_shape


def test_check_shape_accepts_wildcards_and_names_the_input():
    check_shape("x", torch.zeros(2, 3, 4), (None, 3, 4))
    with pytest.raises(ValueError, match=r"pose: expected shape \(\*, 5, 2\), got \(2, 7, 2\)"):
        check_shape("pose", torch.zeros(2, 7, 2), (None, 5, 2))
    with pytest.raises(ValueError, match="rank|expected"):
        check_shape("x", torch.zeros(2, 3), (None, 3, 1))


def test_models_refuse_wrong_shapes():
    cfg = ModelConfig(image_size=16, num_keypoints=5, width=0.25)
    generator, discriminator = Generator(cfg), Discriminator(cfg)
    image, certainty, pose = torch.zeros(2, 3, 16, 16), torch.ones(2, 1, 16, 16), torch.zeros(2, 5, 2)
    with pytest.raises(ValueError, match="certainty"):
        generator(image, certainty[:, :, :8], pose)
    with pytest.raises(ValueError, match="pose"):
        generator(image, certainty, pose[:, :4])
    with pytest.raises(ValueError, match="z"):
        generator(image, certainty, pose, torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="condition"):
        discriminator(image, image[:1], certainty, pose)
    with pytest.raises(ValueError, match="certainty"):
        ImputedConv2d(3, 4, 3)(image, certainty[:1])


def test_generator_shape_check_fires_under_python_O():
    code = ("import torch; from deepanon.models import Generator, ModelConfig; "
            "Generator(ModelConfig(image_size=16, num_keypoints=0, width=0.25))"
            "(torch.zeros(1, 3, 8, 8), torch.ones(1, 1, 8, 8), torch.zeros(1, 0, 2))")
    run = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True)
    assert run.returncode == 1 and "ValueError: condition: expected shape (1, 3, 16, 16)" in run.stderr, run.stderr
