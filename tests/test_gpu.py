"""GPU paths (skipped without CUDA): the generator and the anonymizer on CUDA agree with the CPU."""

import copy

import numpy as np
import pytest
import torch

from deepanon.detection import Detections
from deepanon.models import Generator, ModelConfig
from deepanon.pipeline import FaceReplacer, FaceGenerator, select_device
from tests.models.conftest import face_batch

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.gpu
@cuda
def test_generator_on_cuda_matches_cpu_and_keeps_known_pixels():
    torch.manual_seed(0)
    g = Generator(ModelConfig()).eval()
    image, certainty, pose = face_batch(4, 5)
    # TF32 (on by default for cuDNN convolutions) rounds inputs to 10 mantissa bits: compare true fp32 on both sides
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        cpu = g(image * certainty, certainty, pose)
        gpu = g.cuda()(*(t.cuda() for t in (image * certainty, certainty, pose))).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-3)
    known = certainty.expand_as(gpu) == 1
    assert torch.equal(gpu[known], image[known])


@pytest.mark.gpu
@cuda
def test_anonymizer_with_autocast_on_cuda_is_close_to_cpu(astronaut, tiny_generator):
    det = Detections.from_boxes(np.array([[170, 60, 250, 170]], np.float32), np.array([0.9], np.float32))
    cpu = FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu")), expand=2.0).anonymize([astronaut], [det])[0].image
    gpu_generator = copy.deepcopy(tiny_generator)  # FaceGenerator moves its module to the device
    gpu = FaceReplacer(FaceGenerator(gpu_generator, torch.device("cuda")), expand=2.0).anonymize([astronaut], [det])[0].image
    assert np.abs(cpu.astype(int) - gpu.astype(int)).mean() < 3  # bf16/fp16 autocast inside the hole only


def test_asking_for_cuda_without_it_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        select_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        select_device("tpu7")
