"""The 5×5 depthwise convolution of eq. 4 (IConv imputation), forward + backward, per dtype and memory layout.

    python benchmarks/depthwise.py [--shape 8 64 128 128] [--repeats 3]

Prints seconds per forward + backward for fp32/bf16 × NCHW/channels_last: the layout ``models.iconv.impute`` picks
for each dtype comes from this table (benchmarks/NOTES.md).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

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
    for column in ["dtype", "layout", "seconds"]:
        table.add_column(column, justify="right")
    for dtype in (torch.float32, torch.bfloat16):
        for layout in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(b, c, h, w, dtype=dtype).contiguous(memory_format=layout).requires_grad_(True)
            weight = torch.randn(c, 1, KERNEL, KERNEL, dtype=dtype, requires_grad=True)

            def step() -> None:
                F.conv2d(x, weight, padding=KERNEL // 2, groups=c).float().sum().backward()

            table.add_row(str(dtype).removeprefix("torch."), "channels_last" if layout is torch.channels_last else "NCHW",
                          f"{median_seconds(step, args.repeats):.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
