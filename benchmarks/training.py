"""Training throughput on this machine: images/s of full WGAN steps and the share of G, D and the gradient penalty.

    python benchmarks/training.py [--batch 8 32] [--steps 3] [--width 1.0] [--image-size 128] [--precision fp32]
                                  [--device cpu|cuda] [--json out.json]

Synthetic batches (no data loading). One timed step = ``deepanon.training.loop.train_step`` (G forward, D on
[real, fake, x̂], eq. 11 penalty, both Adam steps, EMA). The parts are timed on their own, each forward + backward:
G (generator, loss on its output), D (critic on real and fake), GP (critic on x̂ with the double backward).
"probe" is the conditioning check that every log line adds (three EMA generator forwards on the grid faces), with
its share of the training time at the default log interval. Medians over ``--steps`` after one warm-up step.
"""

from __future__ import annotations

import argparse
import json

import torch
from rich.console import Console
from rich.table import Table

from deepanon.metrics.conditioning import conditioning_effect
from deepanon.training import loss
from deepanon.training.config import Precision, TrainConfig
from deepanon.training.distributed import Process
from deepanon.training.loop import Models, autocast_dtype, train_step
from timing import median_seconds


def synthetic_batch(batch: int, size: int, keypoints: int, device: torch.device) -> dict[str, torch.Tensor]:
    mask = torch.ones(batch, 1, size, size)
    mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 0
    data = {"image": torch.rand(batch, 3, size, size) * 2 - 1, "mask": mask, "pose": torch.rand(batch, keypoints, 2)}
    return {k: v.to(device) for k, v in data.items()}


def measure(batch: int, args: argparse.Namespace) -> dict[str, float]:
    device = torch.device(args.device)
    cfg = TrainConfig(data="-", out="-", num_keypoints=5, image_size=args.image_size, width=args.width,
                      batch_size=batch, precision=Precision(args.precision), device=args.device)
    process = Process(0, 1, device)
    m = Models.build(cfg.model_config(), cfg, process)
    data = synthetic_batch(batch, cfg.image_size, 5, device)
    image, mask, pose = data["image"], data["mask"], data["pose"]
    condition = image * mask
    amp = autocast_dtype(cfg.precision, process.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None

    def autocast() -> torch.autocast:
        return torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None)

    def g_part() -> None:
        with autocast():
            out = m.generator(condition, mask, pose, torch.randn(batch, 32, 4, 4, device=device))
        out.float().mean().backward()

    def d_part() -> None:
        with autocast():
            scores = m.discriminator(torch.cat([image, image.flip(0)]), condition.repeat(2, 1, 1, 1),
                                     mask.repeat(2, 1, 1, 1), pose.repeat(2, 1, 1))
        scores.float().mean().backward()

    def gp_part() -> None:
        x_hat = image.clone().requires_grad_(True)
        with autocast():
            score = m.discriminator(x_hat, condition, mask, pose).float()
        loss.improved_gradient_penalty(loss.critic_gradient(score, x_hat), mask).mean().backward()

    images_seen = 0

    def step() -> None:
        nonlocal images_seen
        train_step(m, data, cfg, process, images_seen)
        images_seen += batch

    step_s = median_seconds(step, args.steps, sync)
    m.discriminator.requires_grad_(True)  # train_step leaves D frozen after its G step
    parts = {name: median_seconds(fn, args.steps, sync) for name, fn in (("G", g_part), ("D", d_part), ("GP", gp_part))}
    grid = synthetic_batch(cfg.grid_size, cfg.image_size, 5, device)  # the loop probes grid_size faces, whatever the batch
    z = torch.randn(cfg.grid_size, m.ema.config.latent_channels, 4, 4, device=device)
    probe_s = median_seconds(lambda: conditioning_effect(m.ema, grid["image"], grid["mask"], grid["pose"], z), args.steps, sync)
    return {"batch": batch, "step_s": step_s, "images_per_s": batch / step_s, **{f"{k}_s": v for k, v in parts.items()},
            "probe_s": probe_s, "probe_share": probe_s / (probe_s + cfg.log_every / batch * step_s),
            "log_every": cfg.log_every}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows = [measure(batch, args) for batch in args.batch]
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} threads"
    table = Table(title=f"Config E training, {args.image_size}², width ×{args.width}, {args.precision}, {where}")
    for column in ["batch", "step s", "images/s", "images/hour", "G fwd+bwd", "D fwd+bwd (real+fake)", "GP (x̂, 2nd bwd)", "probe per log line"]:
        table.add_column(column, justify="right")
    for r in rows:
        parts = r["G_s"] + r["D_s"] + r["GP_s"]
        table.add_row(
            str(r["batch"]), f"{r['step_s']:.2f}", f"{r['images_per_s']:.2f}", f"{3600 * r['images_per_s']:,.0f}",
            *(f"{r[f'{k}_s']:.2f} s ({r[f'{k}_s'] / parts:.0%})" for k in ("G", "D", "GP")),
            f"{r['probe_s']:.2f} s ({r['probe_share']:.2%} at one per {r['log_every']:,} images)",
        )
    Console().print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
