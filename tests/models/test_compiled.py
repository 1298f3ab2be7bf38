"""``narrow_cpu_vectors``: the compiled pattern whose AVX-512 code returned NaN in training agrees with fp64."""

import torch
import torch.nn.functional as F
from torch._inductor import config as inductor_config

from deepanon.models.compiled import TRAINING_VECTOR_BITS, narrow_cpu_vectors


def channel_sum(a: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The core of pixel norm's backward after a leaky ReLU: a contiguous fp32 gradient, channels_last bf16 ones."""
    return ((a + b) * F.leaky_relu(y, 0.2)).sum(1)


def test_compiled_channel_sum_beside_fp32_matches_fp64_after_narrowing():
    with inductor_config.patch({"cpp.simdlen": None}):  # the setting is restored after the test
        torch.manual_seed(0)
        a = torch.randn(8, 128, 32, 32)  # the 32² decoder layer where a 64² generator's gradient went NaN
        b, y = (torch.randn(8, 128, 32, 32).bfloat16().contiguous(memory_format=torch.channels_last) for _ in range(2))
        narrow_cpu_vectors()
        assert inductor_config.cpp.simdlen in (None, TRAINING_VECTOR_BITS)
        torch._dynamo.reset()
        got = torch.compile(channel_sum, dynamic=False)(a, b, y)
        assert torch.isfinite(got).all()
        exact = channel_sum(a.double(), b.double(), y.double())
        assert ((got - exact).norm() / exact.norm()).item() < 1e-3  # compiled 2e-7; eager 3e-4 (its leaky ReLU in bf16)
