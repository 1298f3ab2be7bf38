"""The 5×5 depthwise convolution of eq. 4 (IConv imputation), forward + backward, per dtype and memory layout.

    python benchmarks/depthwise.py [--shape 8 64 128 128] [--repeats 3]

Prints seconds per forward + backward for fp32/bf16 × NCHW/channels_last, and bf16 NCHW through
``models.depthwise.Bf16Depthwise`` (its own weight gradient), each also as a multiple of bf16 NCHW's time: the layout
and the path ``models.iconv.impute`` picks for each dtype come from this table (benchmarks/NOTES.md). A second table
times the bf16 weight gradient alone: PyTorch's, the banded matrix products, and the C kernel of ``models.native``.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from deepanon.models import native
from deepanon.models.depthwise import Bf16Depthwise, banded_weight_gradient, weight_gradient
from timing import median_seconds

KERNEL = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=4, default=[8, 64, 128, 128])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    b, c, h, w = args.shape
    table = Table(title=f"{KERNEL}×{KERNEL} depthwise conv, {b}×{c}×{h}×{w}, forward + backward, "
                        f"{torch.get_num_threads()} threads")
    for column in ["dtype", "layout", "backward", "seconds", "× bf16 NCHW"]:
        table.add_column(column, justify="right")
    rows = []
    nchw, channels_last = torch.contiguous_format, torch.channels_last
    for dtype, layout, ours in [(torch.float32, nchw, False), (torch.float32, channels_last, False),
                                (torch.bfloat16, nchw, False), (torch.bfloat16, channels_last, False),
                                (torch.bfloat16, nchw, True)]:
        x = torch.randn(b, c, h, w, dtype=dtype).contiguous(memory_format=layout).requires_grad_(True)
        weight = torch.randn(c, 1, KERNEL, KERNEL, dtype=dtype, requires_grad=True)

        def step() -> None:
            out = Bf16Depthwise.apply(x, weight) if ours else F.conv2d(x, weight, padding=KERNEL // 2, groups=c)
            out.float().sum().backward()

        rows.append((str(dtype).removeprefix("torch."), "channels_last" if layout is channels_last else "NCHW",
                     "ours" if ours else "PyTorch", median_seconds(step, args.repeats)))
    reference = next(seconds for *names, seconds in rows if names == ["bfloat16", "NCHW", "PyTorch"])
    for *names, seconds in rows:
        table.add_row(*names, f"{seconds:.3f}", f"{seconds / reference:.2f}")
    Console().print(table)
    Console().print(weight_gradient_table(args.shape, args.repeats))


def weight_gradient_table(shape: list[int], repeats: int) -> Table:
    """Seconds of the bf16 weight gradient alone, each path also as a multiple of PyTorch's."""
    b, c, h, w = shape
    table = Table(title=f"bf16 weight gradient alone, {b}×{c}×{h}×{w}, {torch.get_num_threads()} threads")
    for column in ["path", "seconds", "× PyTorch"]:
        table.add_column(column, justify="right")
    x, grad = torch.randn(b, c, h, w, dtype=torch.bfloat16), torch.randn(b, c, h, w, dtype=torch.bfloat16)
    paths = {"PyTorch": lambda: torch.nn.grad.conv2d_weight(x, (c, 1, KERNEL, KERNEL), grad, padding=KERNEL // 2,
                                                             groups=c),
             "banded": lambda: banded_weight_gradient(x, grad, KERNEL)}
    if native.depthwise_weight_gradient_library() is not None:
        paths["C kernel"] = lambda: weight_gradient(x, grad, KERNEL)
    seconds = {name: median_seconds(path, repeats) for name, path in paths.items()}
    for name, value in seconds.items():
        table.add_row(name, f"{value:.4f}", f"{value / seconds['PyTorch']:.2f}")
    return table


if __name__ == "__main__":
    main()
