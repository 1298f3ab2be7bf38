"""The K×K depthwise convolution of IConv's imputation (eq. 4), with a faster backward for bf16 on the CPU.

PyTorch's CPU backward of a bf16 5×5 depthwise convolution spends ~10× its forward time on the weight gradient; here
it is a C kernel built at first use (``native.py``; 5× faster than the banded matrix products below at 128 px a side,
2-4× at 32-64, which are themselves 3-4× faster than PyTorch's and serve where no C compiler is found), and the input
gradient is the forward convolution with the flipped kernel (benchmarks/depthwise.py, benchmarks/NOTES.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepanon.models import native

ROW_ALIGN = 16  # padded row length of the matrix products' right operand: aligned rows multiply faster
# PyTorch's own bf16 backward is as fast as ours for 3×3 kernels (measured with the banded products), not from 5×5
OWN_BACKWARD_FROM_KERNEL = 5


def depthwise_conv2d(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.conv2d(x, weight, padding=K // 2, groups=C)`` for x (B, C, H, W) and weight (C, 1, K, K), K odd, in the
    dtype autocast gives it. Without a gradient to compute, PyTorch's, in x's memory layout (a channels_last
    generator stays channels_last). For training, returned contiguous: in bf16 on the CPU with K >= 5 through
    :class:`Bf16Depthwise`; otherwise PyTorch's, in the layout whose backward is fastest: channels_last for fp32 on
    the CPU and on CUDA (unmeasured there), NCHW for bf16 (channels_last is ~2× slower)."""
    dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype
    k = weight.shape[-1]
    if not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)):
        return F.conv2d(x.to(dtype), weight.to(dtype), padding=k // 2, groups=x.shape[1])
    if x.device.type == "cpu" and dtype == torch.bfloat16 and k >= OWN_BACKWARD_FROM_KERNEL and k % 2:
        return Bf16Depthwise.apply(x.to(dtype).contiguous(), weight.to(dtype))
    layout = torch.channels_last if dtype == torch.float32 or x.is_cuda else torch.contiguous_format
    out = F.conv2d(x.contiguous(memory_format=layout), weight.to(x.dtype), padding=k // 2, groups=x.shape[1])
    return out.contiguous()


def banded_weight_gradient(x: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
    """dL/dω (C, 1, k, k) of a depthwise k×k convolution with zero padding k // 2, from its input ``x`` and output
    gradient ``grad`` (both (B, C, H, W)): dL/dω[c, 0, i, j] = Σ_{b,y,x} grad[b,c,y,x] · x_pad[b,c,y+i,x+j].

    Per channel and kernel row i, the batch's image rows are stacked into one long matrix (each image padded by k - 1
    zero rows, so that the shift by i never mixes two images) and Gᵀ·X_i, X_i the stack shifted by i rows, gives
    every (column, column + j) product sum: the kernel row is the sum of its first k diagonals (summed in at least
    fp32).
    """
    p = k // 2
    b, c, h, w = grad.shape
    rows, width = h + 2 * p, -(-(w + 2 * p) // ROW_ALIGN) * ROW_ALIGN
    # contiguous operands (a strided one is copied by every product): the images' rows one after another, k - 1
    # more zero rows at the end so that each shifted view has as many rows as the gradient's matrix
    padded = x.new_zeros(c, b * rows + 2 * p, width)
    padded[:, : b * rows].view(c, b, rows, width)[:, :, p : p + h, p : p + w] = x.transpose(0, 1)
    grad_t = grad.new_zeros(c, w, b, rows)
    grad_t[..., :h] = grad.permute(1, 3, 0, 2)
    grad_t = grad_t.view(c, w, b * rows)
    kernel_rows = []
    for i in range(k):
        products = torch.bmm(grad_t, padded[:, i : i + b * rows])  # (C, W, width)
        products = products.to(torch.promote_types(products.dtype, torch.float32))
        kernel_rows.append(torch.stack([products.diagonal(j, -2, -1).sum(-1) for j in range(k)], -1))
    return torch.stack(kernel_rows, 1)[:, None]


@torch.library.custom_op("deepanon::depthwise_weight_gradient", mutates_args=())
def weight_gradient(x: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
    """dL/dω (C, 1, k, k) fp32 of a depthwise k×k convolution with zero padding k // 2 from its bf16 input ``x`` and
    output gradient ``grad`` (both (B, C, H, W)), as :func:`banded_weight_gradient` defines it: by the C kernel of
    ``depthwise_weight_gradient.c`` (fp32 sums of the exact products) for bf16 CPU tensors where this machine can
    build it, else by the banded products. An opaque operator to ``torch.compile``."""
    kernel_fits = x.device.type == grad.device.type == "cpu" and x.dtype == grad.dtype == torch.bfloat16
    library = native.depthwise_weight_gradient_library() if kernel_fits else None
    if library is None:
        return banded_weight_gradient(x, grad, k)
    x, grad = x.contiguous(), grad.contiguous()
    b, c, h, w = x.shape
    out = x.new_empty((c, 1, k, k), dtype=torch.float32)
    if library.depthwise_weight_gradient(x.data_ptr(), grad.data_ptr(), out.data_ptr(), b, c, h, w, k,
                                         torch.get_num_threads()):
        raise MemoryError("the depthwise weight gradient's buffers could not be allocated")
    return out


@weight_gradient.register_fake
def _weight_gradient_shape(x: torch.Tensor, grad: torch.Tensor, k: int) -> torch.Tensor:
    return x.new_empty((x.shape[1], 1, k, k), dtype=torch.float32)


class Bf16Depthwise(torch.autograd.Function):
    """Depthwise convolution (stride 1, zero padding K // 2) of bf16 tensors with :func:`weight_gradient` in its
    backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        return F.conv2d(x, weight, padding=weight.shape[-1] // 2, groups=x.shape[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        k = weight.shape[-1]
        grad = grad.contiguous()
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = F.conv2d(grad, weight.flip(-2, -1), padding=k // 2, groups=x.shape[1])
        if ctx.needs_input_grad[1]:
            grad_w = weight_gradient(x, grad, k).to(weight.dtype)
        return grad_x, grad_w
