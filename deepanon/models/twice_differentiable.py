"""Convolutions for D's forward of x̂ in the eq. 11 penalty: differentiable twice, with respect to the input only.

The penalty needs ∇_x̂ D(x̂) with a graph, then that gradient's derivative with respect to D's weights. PyTorch
differentiates a convolution's input gradient with respect to the weight by another convolution whose kernel is a
whole feature map (``mkldnn_convolution`` with a 128×128 kernel on the CPU: 5× the weight gradient's own time,
benchmarks/NOTES.md). Here the input gradient is ``conv_transpose2d(grad, weight)``, whose weight gradient is
PyTorch's weight-gradient kernel. D is piecewise linear in its input (convolutions, leaky ReLU, average pools), so the
input gradient depends on the weights only through those transposed convolutions: the forward's own weight gradient
is never needed and is not computed (D's scores of x̂ enter no loss but through their gradient).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

_ENABLED = contextvars.ContextVar("twice_differentiable", default=False)


@contextmanager
def twice_differentiable() -> Iterator[None]:
    """Within the block, equalized convolutions run through :class:`InputDifferentiableConv2d`."""
    token = _ENABLED.set(True)
    try:
        yield
    finally:
        _ENABLED.reset(token)


class InputDifferentiableConv2d(torch.autograd.Function):
    """``F.conv2d(x, weight, bias, padding=padding, groups=groups)``, stride 1, in the dtype autocast gives it.

    Backward: dL/dx = conv_transpose2d(g, weight), itself differentiable in g and weight; no gradient for weight and
    bias (see the module's docstring for why the penalty needs none).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # type: ignore[override]
                padding: int, groups: int) -> torch.Tensor:
        ctx.save_for_backward(weight)
        ctx.padding, ctx.groups = padding, groups
        return F.conv2d(x, weight, bias, padding=padding, groups=groups)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (weight,) = ctx.saved_tensors
        grad_x = F.conv_transpose2d(grad, weight.to(grad.dtype), padding=ctx.padding, groups=ctx.groups)
        return grad_x, None, None, None, None


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int,
           groups: int) -> torch.Tensor:
    """``F.conv2d`` (stride 1); through :class:`InputDifferentiableConv2d` inside :func:`twice_differentiable`."""
    if _ENABLED.get() and torch.is_grad_enabled():
        return InputDifferentiableConv2d.apply(x, weight, bias, padding, groups)
    return F.conv2d(x, weight, bias, padding=padding, groups=groups)
