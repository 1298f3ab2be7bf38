"""Where in the generator do z and the keypoints stop mattering? One column per generator, one row per stage.

    python benchmarks/conditioning_stages.py --data DATA_DIR [--weights FILE ...] [RUN ...] [--faces 32]

z and the pose feature map enter only at the 4×4 bottleneck (paper Fig. 3); from there the decoder goes up through
a U-Net skip (eq. 6-7) and an IConv block at every resolution. For each generator (a weight file, or the EMA generator
of a run's latest checkpoint) on the first ``--faces`` held-out faces of ``DATA_DIR/val``, the table gives, after each
stage, the relative change ‖f(z) - f(0)‖ / ‖f(0)‖ of the feature map when z = 0 becomes z ~ N(0, 1) (fixed seed), and
the same when each face gets the keypoints of the next face. Also printed per generator:

* the certainty C that reaches the bottleneck (min / mean): the IConv multiplies its input by C before imputing
  (eq. 3-4), so a C near 0 there would erase z and the pose map before any conv sees them;
* the share of the bottleneck's first conv output that comes from each input group (features, z, pose): rms of that
  conv applied to the group alone, with the others zeroed;
* the skip weights β_skip / β_dec (eq. 6) per resolution.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from conditioning import held_out_batch
from deepanon.models import Generator
from deepanon.training.checkpoint import latest_checkpoint, load_checkpoint
from deepanon.training.loop import ema_generator
from deepanon.weights import load_generator


def stage_modules(generator: Generator) -> dict[str, torch.nn.Module]:
    """Bottleneck, then per decoder resolution its skip and its block, in forward order."""
    stages = {"bottleneck 4²": generator.bottleneck}
    for r in generator.config.resolutions[1:]:
        stages[f"skip {r}²"] = generator.skips[str(r)]
        stages[f"decoder {r}²"] = generator.decoder[str(r)]
    return stages


@torch.no_grad()
def stage_changes(generator: Generator, batch: dict[str, torch.Tensor], z: torch.Tensor) -> dict[str, dict[str, float]]:
    """Relative change of every stage's features under a new z and under swapped keypoints (see module doc)."""
    image, mask, pose = batch["image"], batch["mask"], batch["pose"]
    features: dict[str, list[torch.Tensor]] = {}

    def keep(name: str):
        return lambda module, inputs, output: features.setdefault(name, []).append(output[0].float())

    hooks = [module.register_forward_hook(keep(name)) for name, module in stage_modules(generator).items()]
    try:
        for latent, keypoints in ((None, pose), (z, pose), (None, pose.roll(1, 0))):
            generator(image * mask, mask, keypoints, latent)
    finally:
        for hook in hooks:
            hook.remove()
    return {
        name: {"z": float((z_run - base).norm() / base.norm()), "pose": float((pose_run - base).norm() / base.norm())}
        for name, (base, z_run, pose_run) in features.items()
    }


@torch.no_grad()
def bottleneck_inputs(generator: Generator, batch: dict[str, torch.Tensor], z: torch.Tensor) -> dict[str, float]:
    """Certainty reaching the bottleneck and the rms share of each input group in its first conv's output."""
    captured = {}
    hook = generator.bottleneck.conv1.register_forward_hook(
        lambda module, inputs, output: captured.update(x=inputs[0].float(), c=inputs[1].float()))
    try:
        generator(batch["image"] * batch["mask"], batch["mask"], batch["pose"], z)
    finally:
        hook.remove()
    conv = generator.bottleneck.conv1.conv
    weight = (conv.weight * conv.scale).float()
    cfg = generator.config
    width = cfg.generator_width(4)
    groups = {"features": slice(0, width), "z": slice(width, width + cfg.latent_channels),
              "pose": slice(width + cfg.latent_channels, None)}
    out = {"certainty min": float(captured["c"].min()), "certainty mean": float(captured["c"].mean())}
    for name, channels in groups.items():
        alone = F.conv2d(captured["x"][:, channels], weight[:, channels], padding=conv.padding)
        out[f"conv1 rms from {name}"] = float(alone.pow(2).mean().sqrt())
    for r in cfg.resolutions[1:]:
        skip = generator.skips[str(r)]
        out[f"β_skip / β_dec {r}²"] = f"{float(skip.beta_skip):.2f} / {float(skip.beta_dec):.2f}"
    return out


def load(source: Path) -> tuple[str, Generator]:
    if source.is_dir():
        path = latest_checkpoint(source)
        if path is None:
            raise SystemExit(f"{source}: no checkpoint")
        state = load_checkpoint(path)
        return f"{source.name} @{state['images_seen']:,}", ema_generator(state)
    generator, _ = load_generator(source)
    return source.name, generator.float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="*", help="run folders (their latest checkpoint's EMA generator)")
    parser.add_argument("--weights", type=Path, action="append", default=[], help="a generator weight file")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--faces", type=int, default=32)
    args = parser.parse_args()
    if not args.runs and not args.weights:
        parser.error("give at least one run folder or --weights file")

    columns, stages, inputs = [], {}, {}
    for source in [*args.weights, *args.runs]:
        name, generator = load(source)
        cfg = generator.config
        batch = held_out_batch(args.data, cfg.image_size, "face-box", args.faces)
        z = torch.randn((len(batch["image"]), cfg.latent_channels, 4, 4), generator=torch.Generator().manual_seed(0))
        columns.append(name)
        for stage, change in stage_changes(generator, batch, z).items():
            stages.setdefault(stage, {})[name] = f"{change['z']:.3f} / {change['pose']:.3f}"
        for key, value in bottleneck_inputs(generator, batch, z).items():
            inputs.setdefault(key, {})[name] = value if isinstance(value, str) else f"{value:.3f}"

    console = Console()
    for title, rows in ((f"Relative feature change, z / keypoints ({args.faces} held-out faces)", stages),
                        ("What reaches the bottleneck", inputs)):
        table = Table(title=title)
        table.add_column("stage")
        for name in columns:
            table.add_column(name, justify="right")
        for stage, values in rows.items():
            table.add_row(stage, *(values.get(name, "—") for name in columns))
        console.print(table)


if __name__ == "__main__":
    main()
