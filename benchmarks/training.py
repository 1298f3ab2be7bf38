"""Training throughput on this machine: images/s of whole training steps and the fraction of the bf16 matmul peak.

    python benchmarks/training.py [--batch 8] [--penalty-interval 4] [--precision fp32 bf16] [--compile]
                                  [--repeats 2] [--image-size 128] [--device cpu|cuda] [--json out.json]

Synthetic batches (no data loading). One timed unit is ``--penalty-interval`` consecutive calls of
``deepanon.training.loop.train_step`` (G forward, D on real and fake, the eq. 11 penalty on the first of them, both
Adam steps, EMA), so images/s averages steps with and without the penalty as a run does. FLOPs are those of the same
unit counted by ``torch.utils.flop_counter`` (fp32 eager; every other row does the same arithmetic), and "of bf16 peak"
divides the achieved FLOP/s by a 2048² bf16 matmul timed in this process. Rows: the paper's recipe (residual D, WGAN,
improved penalty) in each precision, eager and (``--compile``) compiled. The last line is the default path of a full
``deepanon train`` run (``--precision auto``; on the CPU compiled, which costs minutes of compiling here) at the given
batch and penalty interval.
"""

from __future__ import annotations

import argparse
import json

import torch
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from deepanon.models.precision import Precision, autocast_dtype
from deepanon.training.config import TrainConfig
from deepanon.training.distributed import Process
from deepanon.training.loop import Models, train_step
from generator import matmul_gflops
from timing import median_seconds

RECIPE = "paper"  # residual D, WGAN loss, improved gradient penalty (eq. 10/11)


class TotalsOnly:
    """Stands in for FlopCounterMode's per-module tracker, whose hooks fail on ``autograd.grad`` with respect to a
    leaf module input (the penalty's x̂; pytorch/pytorch#131753): every FLOP counts towards the total alone."""

    parents = {"Global"}

    def __enter__(self) -> "TotalsOnly":
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def count_flops(run) -> int:
    """FLOPs of ``run()`` by ``torch.utils.flop_counter``."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = TotalsOnly()
    with counter:
        run()
    return counter.get_total_flops()


def synthetic_batch(batch: int, size: int, keypoints: int, device: torch.device) -> dict[str, torch.Tensor]:
    mask = torch.ones(batch, 1, size, size)
    mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 0
    data = {"image": torch.rand(batch, 3, size, size) * 2 - 1, "mask": mask, "pose": torch.rand(batch, keypoints, 2)}
    return {k: v.to(device) for k, v in data.items()}


def unit(args: argparse.Namespace, batch: int, precision: Precision, compile: bool):
    """A function running one penalty interval of training steps, and its TrainConfig."""
    cfg = TrainConfig(data="-", out="-", num_keypoints=5, image_size=args.image_size, batch_size=batch,
                      penalty_interval=args.penalty_interval, precision=precision, compile=compile, device=args.device)
    process = Process(0, 1, torch.device(args.device))
    models = Models.build(cfg.model_config(), cfg, process)
    data = synthetic_batch(batch, cfg.image_size, 5, process.device)

    def run() -> None:
        for step in range(cfg.penalty_interval):
            train_step(models, data, cfg, process, step * batch)

    return run, cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[8])
    parser.add_argument("--penalty-interval", type=int, default=4)
    parser.add_argument("--precision", choices=["fp32", "bf16"], nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--compile", action="store_true", help="also time the compiled rows (minutes of compiling each)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None

    peak = matmul_gflops(torch.bfloat16, 5, device, sync)
    rows = []
    for batch in args.batch:
        run, cfg = unit(args, batch, Precision.FP32, False)
        flops_per_image = count_flops(run) / (batch * cfg.penalty_interval)
        settings = [(Precision(p), c) for c in ([False, True] if args.compile else [False]) for p in args.precision]
        auto = Precision.BF16 if autocast_dtype(Precision.AUTO, device) is torch.bfloat16 else Precision.FP32
        default = (auto, TrainConfig(data="-", out="-").compiles(device))  # a full run's
        settings += [default] if default not in settings else []
        for precision, compile in settings:
            run, cfg = unit(args, batch, precision, compile)
            seconds = median_seconds(run, args.repeats, sync)
            images_per_s = batch * cfg.penalty_interval / seconds
            rows.append({"recipe": RECIPE, "batch": batch, "penalty_interval": cfg.penalty_interval,
                         "precision": precision.value, "compiled": compile, "images_per_s": images_per_s,
                         "gflop_per_image": flops_per_image / 1e9,
                         "fraction_of_bf16_peak": images_per_s * flops_per_image / 1e9 / peak,
                         "default": (precision, compile) == default})

    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {args.threads} threads"
    table = Table(title=f"Config E training steps, {args.image_size}², penalty every {args.penalty_interval} steps, "
                        f"{where}; bf16 matmul peak {peak:.0f} GFLOP/s")
    for column in ["recipe", "batch", "precision", "compiled", "images/s", "images/hour", "GFLOP/image", "of bf16 peak"]:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["recipe"], str(r["batch"]), r["precision"], "yes" if r["compiled"] else "no",
                      f"{r['images_per_s']:.2f}", f"{3600 * r['images_per_s']:,.0f}", f"{r['gflop_per_image']:.1f}",
                      f"{r['fraction_of_bf16_peak']:.1%}")
    console = Console(width=140)
    console.print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"bf16_matmul_gflops": peak, "rows": rows}, f, indent=2)
    best = max((r for r in rows if r["default"]), key=lambda r: r["images_per_s"])
    console.print(f"training step: {best['fraction_of_bf16_peak']:.3f} of bf16 peak, {best['images_per_s']:.2f} images/s "
                  f"({best['recipe']}; {best['precision']}, {'compiled' if best['compiled'] else 'eager'}, "
                  f"batch {best['batch']}, penalty every {best['penalty_interval']} steps)", soft_wrap=True)


if __name__ == "__main__":
    main()
