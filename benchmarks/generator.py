"""Generator forward speed on this machine: ms per face and the fraction of measured matmul throughput reached.

    python benchmarks/generator.py [--batch 1 8 32] [--dtype fp32 bf16] [--channels-last] [--compile] [--repeats 7]
                                   [--threads 2] [--json out.json]
    python benchmarks/generator.py --device cuda --batch 256 --dtype fp32 bf16 fp16

Prints one row per (batch, dtype, memory format, compiled or not) with the median of ``--repeats`` timed runs after a
warm-up, the generator's FLOPs per face (torch.utils.flop_counter) and its GFLOP/s as a fraction of two ceilings
measured in the same run: a large matmul (2048² on the CPU, 8192² on CUDA) and a 3×3 convolution of 128 channels.
"""

from __future__ import annotations

import argparse
import json

import torch
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from deepanon.models import Generator, ModelConfig
from timing import median_seconds

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def matmul_gflops(dtype: torch.dtype, repeats: int, device: torch.device, sync) -> float:
    n = 8192 if device.type == "cuda" else 2048
    a, b = (torch.randn(n, n, dtype=dtype, device=device) for _ in range(2))
    return 2 * n**3 / median_seconds(lambda: a @ b, repeats, sync) / 1e9


def conv3x3_gflops(dtype: torch.dtype, repeats: int, device: torch.device, sync) -> float:
    """A 3×3, 128 -> 128 channel convolution on 8×128×64×64 (channels_last: the faster layout on CPUs)."""
    conv = torch.nn.Conv2d(128, 128, 3, padding=1, bias=False).to(device, dtype, memory_format=torch.channels_last)
    x = torch.randn(8, 128, 64, 64, device=device, dtype=dtype).to(memory_format=torch.channels_last)
    flops = 2 * 8 * 128 * 128 * 9 * 64 * 64

    def run() -> None:
        with torch.no_grad():
            conv(x)

    return flops / median_seconds(run, repeats, sync) / 1e9


def generator_inputs(batch: int, cfg: ModelConfig, device: torch.device = torch.device("cpu")):
    image = torch.rand(batch, 3, cfg.image_size, cfg.image_size) * 2 - 1
    certainty = torch.ones(batch, 1, cfg.image_size, cfg.image_size)
    q = cfg.image_size // 4
    certainty[..., q : 3 * q, q : 3 * q] = 0
    return tuple(t.to(device) for t in (image * certainty, certainty, torch.rand(batch, cfg.num_keypoints, 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--dtype", choices=list(DTYPES), nargs="+", default=["fp32"])
    parser.add_argument("--channels-last", action="store_true", help="also time the channels_last memory format")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(generator) (inductor)")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    cfg = ModelConfig(image_size=args.image_size, width=args.width)
    generator = Generator(cfg).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        generator(*generator_inputs(1, cfg))
    flops_per_face = counter.get_total_flops()
    generator.to(device)
    peaks = {name: matmul_gflops(DTYPES[name], args.repeats, device, sync) for name in args.dtype}
    convs = {name: conv3x3_gflops(DTYPES[name], args.repeats, device, sync) for name in args.dtype}
    formats = [torch.contiguous_format] + ([torch.channels_last] if args.channels_last else [])
    variants = [(f, c) for f in formats for c in ([False, True] if args.compile else [False])]

    rows = []
    for name in args.dtype:
        for memory_format, compiled in variants:
            model = generator.to(memory_format=memory_format)
            if compiled:
                model = torch.compile(model, dynamic=False)
            for batch in args.batch:
                cond, certainty, pose = generator_inputs(batch, cfg, device)
                cond, certainty = cond.to(memory_format=memory_format), certainty.to(memory_format=memory_format)

                def run() -> None:
                    with torch.no_grad(), torch.autocast(device.type, DTYPES[name], enabled=name != "fp32"):
                        model(cond, certainty, pose)

                seconds = median_seconds(run, args.repeats, sync)
                gflops = flops_per_face * batch / seconds / 1e9
                rows.append(
                    {
                        "batch": batch,
                        "dtype": name,
                        "channels_last": memory_format is torch.channels_last,
                        "compiled": compiled,
                        "ms_per_face": 1e3 * seconds / batch,
                        "faces_per_s": batch / seconds,
                        "gflops": gflops,
                        "fraction_of_matmul": gflops / peaks[name],
                        "fraction_of_conv3x3": gflops / convs[name],
                    }
                )

    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {args.threads} threads"
    table = Table(title=f"Generator {args.image_size}², width ×{args.width}: {flops_per_face / 1e9:.2f} GFLOP per face, "
                        f"{where}")
    for column in ["batch", "dtype", "channels_last", "compiled", "ms/face", "faces/s", "GFLOP/s", "of matmul",
                   "of conv3x3"]:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["batch"]), r["dtype"], str(r["channels_last"]), str(r["compiled"]), f"{r['ms_per_face']:.1f}",
            f"{r['faces_per_s']:.1f}", f"{r['gflops']:.0f}", f"{r['fraction_of_matmul']:.0%}",
            f"{r['fraction_of_conv3x3']:.0%}",
        )
    console = Console()
    console.print(table)
    console.print("matmul GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
    console.print("conv3x3 GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in convs.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"flops_per_face": flops_per_face, "matmul_gflops": peaks, "conv3x3_gflops": convs, "rows": rows},
                      f, indent=2)


if __name__ == "__main__":
    main()
