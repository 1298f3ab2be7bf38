"""ImputedConv2d against a naive per-pixel implementation of eq. 3-5 (float64)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepanon.models.equalized import pixel_norm
from deepanon.models.iconv import ImputedConv2d


def naive_iconv(x, c, omega, weight, bias, w_c):
    """Per-pixel loops: h (eq. 4 with K²-normalised pool + 0.01), mix (eq. 3), conv, LReLU, PixelNorm, C' (eq. 5)."""
    b, cin, hgt, wid = x.shape
    k = omega.shape[-1]
    kf = weight.shape[-1]
    r, rf = k // 2, kf // 2

    def at(a, i, j):
        return a[..., i, j] if 0 <= i < hgt and 0 <= j < wid else np.zeros(a.shape[:-2])

    mixed = np.zeros_like(x)
    for n in range(b):
        for i in range(hgt):
            for j in range(wid):
                num = np.zeros(cin)
                mass = 0.0
                for di in range(-r, r + 1):
                    for dj in range(-r, r + 1):
                        cv = at(c[n, 0], i + di, j + dj)
                        num += at(x[n], i + di, j + dj) * cv * omega[:, 0, di + r, dj + r]
                        mass += cv
                h = num / (mass / k**2 + 0.01)
                mixed[n, :, i, j] = c[n, 0, i, j] * x[n, :, i, j] + (1 - c[n, 0, i, j]) * h
    out = np.zeros((b, weight.shape[0], hgt, wid))
    c_next = np.zeros_like(c)
    for n in range(b):
        for i in range(hgt):
            for j in range(wid):
                acc = bias.copy()
                s = 0.0
                for di in range(-rf, rf + 1):
                    for dj in range(-rf, rf + 1):
                        acc += weight[:, :, di + rf, dj + rf] @ at(mixed[n], i + di, j + dj)
                        s += w_c[0, 0, di + rf, dj + rf] * at(c[n, 0], i + di, j + dj)
                acc = np.where(acc > 0, acc, 0.2 * acc)
                out[n, :, i, j] = acc / math.sqrt(np.mean(acc**2) + 1e-7)
                c_next[n, 0, i, j] = min(max(2 / (1 + math.exp(-s)) - 1 + 1e-6, 0.0), 1.0)
    return out, c_next


def make_layer(cin=3, cout=4, kernel=3, impute=5, seed=0):
    torch.manual_seed(seed)
    layer = ImputedConv2d(cin, cout, kernel, impute_kernel=impute).double()
    with torch.no_grad():
        layer.conv.bias.normal_()
        layer.certainty_weight.add_(0.3 * torch.randn_like(layer.certainty_weight))
    return layer


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("impute", [3, 5])
def test_forward_matches_naive_loops(binary, impute):
    layer = make_layer(impute=impute)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 7, 6, generator=g, dtype=torch.float64)
    c = torch.rand(2, 1, 7, 6, generator=g, dtype=torch.float64)
    if binary:
        c = (c > 0.5).double()
    y, c_next = layer(x, c)
    omega = (layer.imputation.weight * layer.imputation.scale).detach().numpy()
    weight = (layer.conv.weight * layer.conv.scale).detach().numpy()
    ref_y, ref_c = naive_iconv(
        x.numpy(), c.numpy(), omega, weight, layer.conv.bias.detach().numpy(), layer.certainty_weight.detach().numpy()
    )
    np.testing.assert_allclose(y.detach().numpy(), ref_y, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(c_next.detach().numpy(), ref_c, rtol=1e-12, atol=1e-12)


def test_all_certain_input_is_a_plain_conv():
    layer = make_layer()
    plain_layer = ImputedConv2d(3, 4, 3, imputed=False).double()
    plain_layer.load_state_dict({k: v for k, v in layer.state_dict().items() if not k.startswith("imputation")})
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    ones = torch.ones(2, 1, 9, 9, dtype=torch.float64)
    y, _ = layer(x, ones)
    assert torch.equal(y, plain_layer(x, ones)[0])  # imputation has no effect where C = 1, bit for bit
    plain = F.leaky_relu(F.conv2d(x, layer.conv.weight * layer.conv.scale, layer.conv.bias, padding=1), 0.2)
    plain = plain / torch.sqrt(plain.pow(2).mean(1, keepdim=True) + 1e-7)
    assert torch.allclose(y, plain, rtol=1e-12, atol=1e-12)


def test_certainty_vanishes_inside_a_large_hole_and_saturates_far_from_it():
    layer = ImputedConv2d(3, 4, 3).double()
    c = torch.ones(1, 1, 32, 32, dtype=torch.float64)
    c[..., 8:24, 8:24] = 0
    _, c_next = layer(torch.randn(1, 3, 32, 32, dtype=torch.float64), c)
    inside, far = c_next[..., 10:22, 10:22], c_next[..., :5, :]
    assert inside.max().item() == pytest.approx(1e-6, abs=1e-12)  # 2σ(0) - 1 + 1e-6
    assert far[..., 1:4, 1:-1].min().item() == pytest.approx(2 / (1 + math.exp(-9)) - 1 + 1e-6, rel=1e-12)
    # at the hole's edge the certainty lies strictly between
    edge = c_next[0, 0, 8, 8].item()
    assert 0.5 < edge < 0.999


def test_plain_variant_ignores_certainty_in_features():
    layer = ImputedConv2d(3, 4, 3, imputed=False).double()
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    y1, _ = layer(x, torch.ones(1, 1, 8, 8, dtype=torch.float64))
    y0, c0 = layer(x, torch.zeros(1, 1, 8, 8, dtype=torch.float64))
    assert torch.equal(y1, y0)
    assert c0.max().item() == pytest.approx(1e-6)


def test_one_by_one_layer_imputes_without_updating_certainty():
    layer = ImputedConv2d(3, 8, 1, impute_kernel=5, update_certainty=False).double()
    c = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    c[..., 3:5, 3:5] = 0
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    y, c_out = layer(x, c)
    assert c_out is c
    y_unknown_changed, _ = layer(x + 5 * (1 - c), c)
    assert torch.equal(y, y_unknown_changed)  # values under C = 0 never reach the output
    x_known_changed = x.clone()
    x_known_changed[..., 2, 2] += 5  # a known neighbour feeds the imputed estimate h at (3, 3)
    y_known_changed, _ = layer(x_known_changed, c)
    assert not torch.equal(y[..., 3, 3], y_known_changed[..., 3, 3])
    assert torch.equal(y[..., 6:, 6:], y_known_changed[..., 6:, 6:])  # a 1×1 f touches nothing far away


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.bfloat16, 1e-2)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_pixel_norm_matches_a_loop_over_pixels_in_either_layout(dtype, tolerance, layout):
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = torch.empty_like(x)
    for b in range(2):
        for y in range(3):
            for i in range(4):
                v = x[b, :, y, i]
                expected[b, :, y, i] = v / torch.sqrt((v * v).sum() / 6 + 1e-7)
    got = pixel_norm(x.to(dtype).contiguous(memory_format=layout))
    assert got.dtype == dtype and got.is_contiguous(memory_format=layout)
    assert (got.double() - expected).abs().max() <= tolerance * expected.abs().max()
