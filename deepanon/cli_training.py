"""Click commands ``train``, ``export`` and ``eval``; registered on the main group in ``deepanon.cli``."""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.console import Console
from rich.table import Table

from deepanon.files import atomic_write
from deepanon.training.config import (
    COMPILE_FROM_IMAGES, ENUM_FIELDS, PRESETS, DatasetKind, DiscriminatorKind, MaskKind, Penalty, Precision,
    TrainConfig, agreed_expand,
)

log = logging.getLogger(__name__)


def one_line(err: BaseException) -> str:
    """The line of an error message meant for the user; for an error re-raised from a data loader worker (its message
    holds the worker's traceback) the original error's own last line, without its class name."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()] or [type(err).__name__]
    if "Original Traceback" in str(err):
        return re.sub(r"^[\w.]+: ", "", lines[-1].strip())
    return lines[0]


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Any error of train, export or eval becomes one line and exit 1, never a traceback (``-v`` logs it)."""
    try:
        yield
    except (click.ClickException, click.Abort, KeyboardInterrupt):
        raise
    except (ValueError, OSError, RuntimeError) as err:  # bad data, files, devices: the message says what
        log.debug("error", exc_info=True)
        raise click.ClickException(one_line(err)) from err
    except Exception as err:  # noqa: BLE001 - a bug still ends in one line; -v shows where
        log.debug("unexpected error", exc_info=True)
        raise click.ClickException(f"unexpected error ({type(err).__name__}: {one_line(err)}); -v for details") from err


def exit_on_sigterm() -> None:
    """SIGTERM (a scheduler stopping the job, ``kill``) exits with 143 through the normal clean-up, like Ctrl-C: no
    temporary files are left behind."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


class StopRequest:
    """SIGINT or SIGTERM during training: the step under way finishes and a checkpoint is saved before the exit (130,
    143); a second signal exits at once."""

    def __init__(self) -> None:
        self.signal_number: int | None = None

    def __call__(self) -> bool:
        return self.signal_number is not None

    def _handle(self, number: int, _frame: Any) -> None:
        if self.signal_number is not None:
            sys.exit(128 + number)
        self.signal_number = number
        click.echo("stopping after this step to save a checkpoint (signal again to quit at once)", err=True)

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def _choice(enum: type[Enum]) -> click.Choice:
    return click.Choice([e.value for e in enum])


# CLI option name -> TrainConfig field, for options whose names differ.
_FIELD = {"keypoints": "num_keypoints", "plain_conv": "imputed"}
_NOT_FIELDS = {"config", "resume", "dry_run"}


def _to_field(name: str, value: Any) -> tuple[str, Any]:
    if name == "plain_conv":
        return "imputed", not value
    if name in ("data", "boxes", "landmarks", "init") and value is not None:
        value = str(Path(value).absolute())  # a resumed run finds its files from any working folder
    if name == "out" and value is not None:
        value = str(value)
    return _FIELD.get(name, name), ENUM_FIELDS[name](value) if name in ENUM_FIELDS and value is not None else value


def build_config(ctx: click.Context, options: dict[str, Any]) -> TrainConfig:
    """New run: preset, then every given option. ``--resume``: the run's config.json, then the options given here."""
    given = {k for k in options if ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE} - _NOT_FIELDS
    if options["resume"]:
        changes = dict(_to_field(k, options[k]) for k in given | {"out"})
        return TrainConfig.read(options["out"]).with_changes(**changes)
    if options["data"] is None:
        raise click.UsageError("--data is required (unless --resume)")
    values = dict(PRESETS[options["config"]])
    values.update(_to_field(k, v) for k, v in options.items() if k not in _NOT_FIELDS and v is not None)
    return TrainConfig(**values)


@click.command("train")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Dataset root: FDF layout (<root>/train/images/<S>/<i>.png, landmarks.npy, bounding_box/<S>.npy) "
                   "or, with --dataset folder, any folder of face images.")
@click.option("--dataset", type=_choice(DatasetKind), default="fdf", show_default=True, help="Layout of --data.")
@click.option("--boxes", type=click.Path(dir_okay=False, path_type=Path),
              help="Folder dataset: N×4 face boxes (.npy, pixels of each image); default <data>/boxes.npy.")
@click.option("--landmarks", type=click.Path(dir_okay=False, path_type=Path),
              help="Folder dataset: N×K×2 keypoints in [0, 1] (.npy); default <data>/landmarks.npy.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/train"), show_default=True,
              help="Run folder: config.json, log.jsonl, checkpoints/, samples/.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its latest checkpoint, exactly.")
@click.option("--config", type=click.Choice(sorted(PRESETS)), default="e", show_default=True,
              help="Preset: e = Config E on FDF (128², width 1, face-box masks); e-wide = 256², width 2, free-form.")
@click.option("--image-size", type=int, help="Override the preset's image size.")
@click.option("--width", type=float, help="Override the preset's width multiplier of every conv.")
@click.option("--expand", type=click.FloatRange(min=1.0),
              help="Crop side / face box side of the data's crops, for data without a prepare_report.json (FDF, "
                   "folder data); the run records it and export writes it into the weights [the data's report].")
@click.option("--keypoints", type=click.IntRange(0), help="Number of pose keypoints K; default: as many as the landmarks file "
              "has. 0 trains without pose input: FDF's K = 7 body keypoints do not exist at inference, where the detector "
              "gives 5 face landmarks, so FDF weights must be trained with --keypoints 0 to anonymize photos.")
@click.option("--init", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Start the generator (and its EMA) from these exported weights, e.g. weights/default.safetensors; "
                   "the discriminator starts fresh.")
@click.option("--plain-conv", is_flag=True, help="Ablation: plain convolutions instead of IConv.")
@click.option("--mask", type=_choice(MaskKind), help="Training masks; default from the preset.")
@click.option("--flip/--no-flip", default=True, show_default=True, help="Horizontal flip p=0.5 with keypoint left/right swap.")
@click.option("--batch-size", type=int, help="Global batch size over all processes [32].")
@click.option("--images", type=int, help="Stop after this many images shown to D (paper: 20M) [20000000].")
@click.option("--lr", type=float,
              help="Adam learning rate of G and D [0.001 with the residual D, 0.0002 with the projected; may change "
                   "on --resume].")
@click.option("--penalty", type=_choice(Penalty),
              help="Gradient penalty: improved = eq. 10/11 (paper); wgan-gp = eq. 8 (Config A); wgan-gp-masked = eq. 9.")
@click.option("--discriminator", type=_choice(DiscriminatorKind),
              help="residual = the paper's D, WGAN loss and gradient penalty [default]; projected = a frozen ImageNet "
                   "EfficientNet-Lite0 with trained heads per scale, hinge loss, differentiable augmentation, no "
                   "penalty (Sauer et al. 2021; pip install 'deepanon[projected]').")
@click.option("--penalty-interval", type=int, help="Lazy penalty: every n-th D step with weight ×n [1].")
@click.option("--l1-images", type=int, help="Reconstruction warm-up: L1 in the hole for the first N images [0 = off].")
@click.option("--l1-weight", type=float, help="Weight of the warm-up L1 term [1.0].")
@click.option("--diversity", "diversity_weight", type=float,
              help="Weight of a diversity term (Yang et al. 2019): G is rewarded when two latents give different faces "
                   "for the same context, up to --diversity-cap; against a G that ignores z [0 = off; may change on "
                   "--resume].")
@click.option("--diversity-cap", type=float,
              help="Mean hole change per unit of latent change past which the diversity term stops rewarding [0.2].")
@click.option("--ema-half-life", type=int,
              help="Half-life of the EMA generator in images [10000 with the residual D, 5000 with the projected; may "
                   "change on --resume].")
@click.option("--precision", type=_choice(Precision),
              help="auto = bf16 on CUDA and on CPUs with native bf16 (AVX-512 BF16/AMX), else fp32 (fp16 on GPUs "
                   "without bf16); fp16 uses a grad scaler.")
@click.option("--compile/--no-compile", default=None,
              help="torch.compile G and D (all but the penalty's forward of x̂); a failing compile falls back to eager "
                   f"[on for CPU runs of {COMPILE_FROM_IMAGES:,} images or more: minutes of compiling at the start, "
                   "faster steps after].")
@click.option("--device", type=str, help="auto, cpu or cuda (under torchrun: one GPU per process) [auto].")
@click.option("--workers", type=int, help="Data loader worker processes per training process [2].")
@click.option("--seed", type=int, help="Seed for initialisation, data order, masks and latents [0].")
@click.option("--checkpoint-every", type=int, help="Checkpoint every N images [500000].")
@click.option("--grid-every", type=int, help="Sample grid every N images [100000].")
@click.option("--log-every", type=int, help="Log line every N images [2000].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--dry-run", is_flag=True, help="Check the data and options, print the resolved config, do not train.")
@click.pass_context
def train(ctx: click.Context, **options: Any) -> None:
    """Train the inpainting GAN (paper Config E). Multi-GPU: torchrun --nproc_per_node N -m deepanon train ..."""
    from deepanon.training import loop
    from deepanon.training.distributed import Process, resolve_device

    stop = StopRequest()
    with one_line_errors(), stop.installed():
        cfg = build_config(ctx, options)
        if options["dry_run"]:
            train_set, _ = loop.datasets(cfg)
            cfg = loop.resolve(cfg, train_set, Process(0, 1, resolve_device(cfg.device)))
            click.echo(json.dumps(cfg.to_dict(), indent=2))
            click.echo(f"{len(train_set)} training images, K={train_set.num_keypoints}")
            return
        run_dir = loop.train(cfg, resume=options["resume"], stop=stop)
    log.info("run folder: %s", run_dir)
    if stop.signal_number is not None:
        click.echo(f"stopped and saved a checkpoint in {run_dir}: --resume continues", err=True)
        sys.exit(128 + stop.signal_number)


@click.command("export")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Weights file to write (.safetensors; the config JSON is written beside it).")
@click.option("--expand", type=click.FloatRange(min=1.0), default=None,
              help="Crop side / face box side the model was trained on, for a run that does not record it [the run's]. "
                   "The anonymizer crops faces with it.")
@click.option("--half", is_flag=True, help="Store the tensors as float16 (half the size; loaded back as float32).")
def export(run_dir: Path, output: Path, expand: float | None, half: bool) -> None:
    """Export the EMA generator of RUN_DIR's latest checkpoint as safetensors weights."""
    import torch

    from deepanon.training.checkpoint import latest_checkpoint, load_checkpoint
    from deepanon.training.loop import ema_generator
    from deepanon.weights import save_generator

    exit_on_sigterm()
    if output.suffix != ".safetensors":
        raise click.BadParameter("name the weights file *.safetensors (its config is written beside it as .json)",
                                 param_hint="-o")
    path = latest_checkpoint(run_dir)
    if path is None:
        raise click.ClickException(f"{run_dir}: no checkpoint found")
    with one_line_errors():
        state = load_checkpoint(path)
        expand = agreed_expand(state["config"].get("expand"), expand, f"the run in {run_dir}")
        output.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"images_seen": state["images_seen"], "checkpoint": path.name, "train_config": state["config"]}
        digest = save_generator(output, ema_generator(state), expand=expand, metadata=metadata,
                                dtype=torch.float16 if half else None)
    click.echo(f"{output}  sha256 {digest}  ({state['images_seen']} images, crop expand {expand})")


@click.command("eval")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Dataset root (same layouts as train).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Generator weights (.safetensors with its .json beside it).")
@click.option("--dataset", type=_choice(DatasetKind), default="fdf", show_default=True)
@click.option("--split", default="val", show_default=True, help="FDF split to evaluate.")
@click.option("--boxes", type=click.Path(dir_okay=False, path_type=Path), help="Folder dataset: boxes file.")
@click.option("--landmarks", type=click.Path(dir_okay=False, path_type=Path), help="Folder dataset: landmarks file.")
@click.option("--mask", type=_choice(MaskKind), help="face-box (FDF default) or center (folder default).")
@click.option("--limit", type=click.IntRange(1), default=10_000, show_default=True, help="Evaluate the first N images.")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write results here.")
@click.option("--lpips-alexnet", type=click.Path(dir_okay=False, path_type=Path),
              help="torchvision AlexNet weights (local file) for LPIPS; with --lpips-linear.")
@click.option("--lpips-linear", type=click.Path(dir_okay=False, path_type=Path),
              help="LPIPS v0.1 linear layers for AlexNet (the official alex.pth layout), local file.")
@click.option("--fid-inception", type=click.Path(dir_okay=False, path_type=Path),
              help="torchvision Inception-v3 weights (local file) for FID (not the TF FID Inception: not comparable "
                   "to the paper's FID).")
def evaluate(data: Path, weights: Path, dataset: str, split: str, boxes: Path | None, landmarks: Path | None,
             mask: str | None, limit: int, batch_size: int, device: str, json_path: Path | None,
             lpips_alexnet: Path | None, lpips_linear: Path | None, fid_inception: Path | None) -> None:
    """L1, L2, PSNR, SSIM of a generator (z = 0) on the first --limit images; prints a table and optionally JSON."""
    from deepanon.metrics import evaluate as run_evaluation
    from deepanon.metrics.fid import InceptionFeatures
    from deepanon.metrics.lpips import LPIPS
    from deepanon.training.data import fdf_dataset, folder_dataset
    from deepanon.training.distributed import resolve_device
    from deepanon.weights import load_generator

    exit_on_sigterm()
    if (lpips_alexnet is None) != (lpips_linear is None):
        raise click.UsageError("LPIPS needs both --lpips-alexnet and --lpips-linear")
    kind = DatasetKind(dataset)
    mask_kind = MaskKind(mask) if mask else MaskKind.FACE_BOX if kind is DatasetKind.FDF else MaskKind.CENTER
    with one_line_errors():
        generator, _ = load_generator(weights)
        size = generator.config.image_size
        if kind is DatasetKind.FDF:
            data_set = fdf_dataset(data, split, image_size=size, mask=mask_kind, flip=False)
        else:
            data_set = folder_dataset(data, image_size=size, mask=mask_kind, flip=False, boxes=boxes, landmarks=landmarks)
        if data_set.num_keypoints != generator.config.num_keypoints:
            raise ValueError(f"weights expect K={generator.config.num_keypoints}, data has K={data_set.num_keypoints}")
        lpips = LPIPS(lpips_alexnet, lpips_linear) if lpips_alexnet else None
        fid = InceptionFeatures(fid_inception) if fid_inception else None
        results = run_evaluation(generator, data_set, batch_size=batch_size, limit=limit, device=resolve_device(device),
                                 lpips=lpips, fid=fid)
    table = Table(title=f"{weights.name} on {data} ({results['images']} images, z = 0)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in ("l1", "l2", "psnr", "ssim", "lpips", "fid"):
        if name in results:
            table.add_row(name.upper(), f"{results[name]:.4f}")
    for name, reason in results["skipped"].items():
        table.add_row(name.upper(), f"skipped: {reason}")
    Console().print(table)
    if json_path is not None:
        with one_line_errors():
            json_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(json_path, lambda tmp: tmp.write_text(json.dumps(results, indent=2) + "\n"))
