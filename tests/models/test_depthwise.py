"""The imputation's depthwise convolution: the C kernel's and the banded weight gradients against a naive loop, and
autograd against PyTorch's own convolution."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepanon.models import native
from deepanon.models.depthwise import Bf16Depthwise, banded_weight_gradient, depthwise_conv2d, weight_gradient

needs_compiler = pytest.mark.skipif(native.c_compiler() is None, reason="no C compiler")


def naive_weight_gradient(x: np.ndarray, grad: np.ndarray, k: int) -> np.ndarray:
    """ω[c, i, j] = Σ_{b,y,x} grad[b,c,y,x] · x[b,c,y+i-p,x+j-p], zero outside the image (float64 loops)."""
    b, c, h, w = x.shape
    p = k // 2
    out = np.zeros((c, 1, k, k))
    for n in range(b):
        for ch in range(c):
            for i in range(k):
                for j in range(k):
                    for y in range(h):
                        for xx in range(w):
                            sy, sx = y + i - p, xx + j - p
                            if 0 <= sy < h and 0 <= sx < w:
                                out[ch, 0, i, j] += grad[n, ch, y, xx] * x[n, ch, sy, sx]
    return out


def bf16_pair(shape, seed):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator).to(torch.bfloat16) for _ in range(2)]


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (3, 2, 9, 4)])
def test_banded_weight_gradient_matches_naive_loops(k, shape):
    x, grad = bf16_pair(shape, seed=k)
    expected = naive_weight_gradient(x.double().numpy(), grad.double().numpy(), k)
    got = banded_weight_gradient(x, grad, k)
    assert got.shape == (shape[1], 1, k, k) and got.dtype == torch.float32
    # each (column, column + j) sum of bf16 products is rounded to bf16 once before the fp32 sums
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-2 * np.abs(expected).max())


@needs_compiler
@pytest.mark.parametrize("k", [3, 5, 7])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (3, 2, 9, 4), (1, 2, 17, 33), (1, 1, 1, 1)])  # widths off 16 lanes
@pytest.mark.parametrize("threads", [1, 2])
def test_native_weight_gradient_matches_naive_loops(k, shape, threads):
    assert native.depthwise_weight_gradient_library() is not None
    x, grad = bf16_pair(shape, seed=k)
    expected = naive_weight_gradient(x.double().numpy(), grad.double().numpy(), k)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = weight_gradient(x, grad, k)
    finally:
        torch.set_num_threads(previous)
    assert got.shape == (shape[1], 1, k, k) and got.dtype == torch.float32
    # bf16 products are exact in fp32; only the fp32 lane sums round
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_without_a_compiler_the_banded_products_serve(monkeypatch):
    monkeypatch.setattr(native, "depthwise_weight_gradient_library", lambda: None)
    x, grad = bf16_pair((2, 3, 9, 8), seed=2)
    torch.testing.assert_close(weight_gradient(x, grad, 5), banded_weight_gradient(x, grad, 5), rtol=0, atol=0)


def test_a_compiler_that_fails_leaves_no_library(monkeypatch, tmp_path):
    broken = tmp_path / "broken.c"
    broken.write_text("this is not C")
    assert native.build(broken) is None
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert native.build(native.DEPTHWISE_SOURCE) is None


def test_bf16_autograd_matches_pytorch_convolution():
    x, grad = bf16_pair((3, 4, 16, 12), seed=0)
    weight = torch.randn(4, 1, 5, 5, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    x_ours, w_ours = x.clone().requires_grad_(), weight.clone().requires_grad_()
    out = Bf16Depthwise.apply(x_ours, w_ours)
    out.backward(grad)
    x_ref, w_ref = x.double().requires_grad_(), weight.double().requires_grad_()
    F.conv2d(x_ref, w_ref, padding=2, groups=4).backward(grad.double())
    for ours, ref in ((out, F.conv2d(x.double(), weight.double(), padding=2, groups=4)), (x_ours.grad, x_ref.grad),
                      (w_ours.grad, w_ref.grad)):
        assert ours.dtype == torch.bfloat16
        assert (ours.double() - ref).abs().max() <= 1e-2 * ref.abs().max()


@pytest.mark.parametrize("dtype, autocast, k, ours", [
    (torch.bfloat16, False, 5, True), (torch.bfloat16, False, 3, False), (torch.float32, False, 5, False),
    (torch.float32, True, 5, True),  # fp32 features under bf16 autocast: the convolution computes in bf16
])
def test_own_backward_only_for_bf16_kernels_of_5_or_more(dtype, autocast, k, ours):
    x = torch.randn(1, 2, 8, 8, dtype=dtype, requires_grad=True)
    weight = torch.randn(2, 1, k, k, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = depthwise_conv2d(x, weight)
        expected = F.conv2d(x, weight.to(dtype), padding=k // 2, groups=2)
    assert ("Bf16Depthwise" in type(out.grad_fn).__name__) == ours
    assert out.dtype == expected.dtype and out.is_contiguous()
    torch.testing.assert_close(out, expected)
    out.float().sum().backward()
    assert x.grad.dtype == dtype and weight.grad.dtype == torch.float32


@pytest.mark.parametrize("autocast", [False, True])
def test_without_gradient_the_convolution_keeps_the_input_layout(autocast):
    x = torch.randn(2, 4, 9, 9).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(4, 1, 5, 5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = depthwise_conv2d(x, weight)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        trained = depthwise_conv2d(x.clone().requires_grad_(), weight)  # the training path: contiguous
    assert out.is_contiguous(memory_format=torch.channels_last) and trained.is_contiguous()
    assert out.dtype == trained.dtype == (torch.bfloat16 if autocast else torch.float32)
    torch.testing.assert_close(out, trained.detach())
