"""The 5×5 depthwise convolution of eq. 4 (IConv imputation), forward + backward, per dtype and memory layout.

    python benchmarks/depthwise.py [--shape 8 64 128 128] [--repeats 3]

Prints seconds per forward + backward for fp32/bf16 × NCHW/channels_last, and bf16 NCHW through
``models.depthwise.BandedDepthwise`` (the weight gradient as banded matrix products), each also as a multiple of bf16
NCHW's time: the layout and the path ``models.iconv.impute`` picks for each dtype come from this table
(benchmarks/NOTES.md).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from deepanon.models.depthwise import BandedDepthwise
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
    for dtype, layout, banded in [(torch.float32, nchw, False), (torch.float32, channels_last, False),
                                  (torch.bfloat16, nchw, False), (torch.bfloat16, channels_last, False),
                                  (torch.bfloat16, nchw, True)]:
        x = torch.randn(b, c, h, w, dtype=dtype).contiguous(memory_format=layout).requires_grad_(True)
        weight = torch.randn(c, 1, KERNEL, KERNEL, dtype=dtype, requires_grad=True)

        def step() -> None:
            out = BandedDepthwise.apply(x, weight) if banded else F.conv2d(x, weight, padding=KERNEL // 2, groups=c)
            out.float().sum().backward()

        rows.append((str(dtype).removeprefix("torch."), "channels_last" if layout is channels_last else "NCHW",
                     "banded" if banded else "PyTorch", median_seconds(step, args.repeats)))
    reference = next(seconds for *names, seconds in rows if names == ["bfloat16", "NCHW", "PyTorch"])
    for *names, seconds in rows:
        table.add_row(*names, f"{seconds:.3f}", f"{seconds / reference:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
