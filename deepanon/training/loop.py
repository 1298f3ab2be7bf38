"""The training loop: WGAN with the improved gradient penalty (paper §3.2), EMA generator, AMP, checkpoints, DDP.

One iteration: G makes x̃ once; D steps on [x, x̃, x̂] in one forward (eq. 11 penalty on x̂, every
``penalty_interval`` steps with its weight multiplied by the interval); then G steps against the updated D; then the
EMA generator follows with β = 0.5^(global batch / half-life). All per-step randomness (z, t) comes from a generator
seeded by (seed, rank, step), and the data stream is positioned by the images seen, so ``--resume`` continues exactly.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections import defaultdict
from contextlib import nullcontext
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from deepanon.files import atomic_write
from deepanon.metrics.conditioning import conditioning_effect
from deepanon.models import Discriminator, Generator, ModelConfig
from deepanon.models.compiled import CompiledForward, narrow_cpu_vectors
from deepanon.models.projected import ProjectedDiscriminator
from deepanon.models.precision import autocast_dtype
from deepanon.models.twice_differentiable import twice_differentiable
from deepanon.training import distributed, loss
from deepanon.training.checkpoint import checkpoint_path, latest_checkpoint, load_checkpoint, save_checkpoint
from deepanon.training.augment import augment
from deepanon.training.config import RESUMABLE, DatasetKind, DiscriminatorKind, Penalty, TrainConfig, agreed_expand
from deepanon.training.data import FaceDataset, fdf_dataset, folder_dataset, make_loader, prepared_expand
from deepanon.training.samples import sample_grid, save_png
from deepanon.weights import load_generator

log = logging.getLogger(__name__)
LOG_FILE = "log.jsonl"


def ema_beta(global_batch: int, half_life: int) -> float:
    """Per-step EMA decay β = 0.5^(global batch / half-life in images), so that a step's share of the average halves
    every ``half_life`` images."""
    return 0.5 ** (global_batch / half_life)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """θ_ema ← β·θ_ema + (1 − β)·θ; buffers are copied."""
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1 - beta)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


def step_rng(seed: int, rank: int, step: int) -> torch.Generator:
    """The CPU generator for the latent z and the interpolation t of one step of one process."""
    state = np.random.SeedSequence([seed, rank, step]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 | int(state[1]) >> 1)


def gradient_penalty(kind: Penalty, gradient: torch.Tensor, mask: torch.Tensor, weight: float) -> torch.Tensor:
    if kind is Penalty.IMPROVED:
        return loss.improved_gradient_penalty(gradient, mask, weight)
    if kind is Penalty.WGAN_GP_MASKED:
        return loss.masked_wgan_gradient_penalty(gradient, mask, weight)
    return loss.wgan_gradient_penalty(gradient, weight)


@dataclass
class Models:
    """Networks, their training views, optimizers and the AMP grad scaler.

    ``g_train`` and ``d_fast`` are the (DDP-wrapped, with ``compile`` compiled) views for G and D steps; ``d_train``
    is D's eager view for the eq. 11 penalty's forward of x̂ (compiled graphs have no double backward); ``d_score`` is D
    for the G step (no DDP: D is frozen there).
    """

    generator: Generator
    discriminator: Discriminator
    ema: Generator
    g_train: Callable[..., torch.Tensor]
    d_train: nn.Module
    d_fast: Callable[..., torch.Tensor]
    d_score: Callable[..., torch.Tensor]
    d_trainable: list[nn.Parameter]
    g_optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler

    @classmethod
    def build(cls, model_config: ModelConfig, cfg: TrainConfig, process: distributed.Process) -> Models:
        torch.manual_seed(cfg.seed)
        generator = Generator(model_config).to(process.device)
        projected = cfg.discriminator is DiscriminatorKind.PROJECTED
        discriminator = (ProjectedDiscriminator if projected else Discriminator)(model_config).to(process.device)
        d_trainable = [p for p in discriminator.parameters() if p.requires_grad]
        ema = copy.deepcopy(generator).eval().requires_grad_(False)
        wrap = (lambda m: DistributedDataParallel(m)) if process.distributed else (lambda m: m)
        compiles = cfg.compiles(process.device)
        fast = (lambda m, what: CompiledForward(m, what)) if compiles else (lambda m, what: m)
        if compiles:
            log.info("G and D run through torch.compile: the first steps take minutes while they compile (less once "
                     "inductor's cache holds them); --no-compile skips it")
        if compiles and process.device.type == "cpu":
            narrow_cpu_vectors()
        g_train, d_train = wrap(generator), wrap(discriminator)
        d_fast = fast(d_train, "discriminator")
        d_score = d_fast if d_train is discriminator else fast(discriminator, "discriminator")
        betas = (float(cfg.betas[0]), float(cfg.betas[1]))
        return cls(
            generator, discriminator, ema, fast(g_train, "generator"), d_train, d_fast, d_score, d_trainable,
            torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=betas),
            torch.optim.Adam(d_trainable, lr=cfg.lr, betas=betas),
            torch.amp.GradScaler(process.device.type,
                                 enabled=autocast_dtype(cfg.precision, process.device) is torch.float16),
        )

    def train_discriminator(self, on: bool) -> None:
        """Let D's trainable parameters take gradients (D step) or not (G step); a frozen backbone stays frozen."""
        for parameter in self.d_trainable:
            parameter.requires_grad_(on)

    def init_generator(self, path: Path) -> None:
        """Start G and its EMA from exported weights (``deepanon export``, e.g. the bundled default); D starts fresh."""
        weights, _ = load_generator(path)
        if weights.config != self.generator.config:
            raise ValueError(f"{path}: its model {weights.config.to_dict()} is not this run's "
                             f"{self.generator.config.to_dict()}")
        self.generator.load_state_dict(weights.state_dict(), strict=True)
        self.ema.load_state_dict(weights.state_dict(), strict=True)

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "ema": self.ema.state_dict(),
            "g_optimizer": self.g_optimizer.state_dict(),
            "d_optimizer": self.d_optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any], lr: float) -> None:
        """Restore a checkpoint; both optimizers keep their moments and take ``lr`` (which may change on resume)."""
        self.generator.load_state_dict(state["generator"], strict=True)
        self.discriminator.load_state_dict(state["discriminator"], strict=True)
        self.ema.load_state_dict(state["ema"], strict=True)
        for optimizer, key in ((self.g_optimizer, "g_optimizer"), (self.d_optimizer, "d_optimizer")):
            optimizer.load_state_dict(state[key])
            for group in optimizer.param_groups:
                group["lr"] = lr
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])


def train_step(
    m: Models, batch: dict[str, torch.Tensor], cfg: TrainConfig, process: distributed.Process, images_seen: int
) -> dict[str, torch.Tensor]:
    """One D step and one G step on this process's share of the batch; returns detached per-step statistics."""
    device = process.device
    image, mask, pose = (batch[k].to(device, non_blocking=True) for k in ("image", "mask", "pose"))
    condition, b = image * mask, image.shape[0]
    step = images_seen // cfg.batch_size
    rng = step_rng(cfg.seed, process.rank, step)
    z = torch.randn((b, m.generator.config.latent_channels, 4, 4), generator=rng).to(device)
    t = torch.rand((b,), generator=rng).to(device)
    amp = autocast_dtype(cfg.precision, device)
    autocast = (lambda: torch.autocast(device.type, dtype=amp)) if amp is not None else nullcontext
    scale = m.scaler.get_scale() if m.scaler.is_enabled() else 1.0
    stats: dict[str, torch.Tensor] = {}

    diverse, diversity = (b // 2 if cfg.diversity_weight > 0 else 0), None
    inputs = (condition, mask, pose, z)
    if diverse:  # the first half of the batch again with other latents, in the same forward
        z_other = torch.randn((diverse, *z.shape[1:]), generator=rng).to(device)
        inputs = tuple(torch.cat([t, t[:diverse]]) for t in inputs[:3]) + (torch.cat([z, z_other]),)
    with autocast():
        fakes = m.g_train(*inputs)
    fake = fakes[:b]
    if diverse:
        diversity = loss.latent_diversity(fake[:diverse].float(), fakes[b:].float(), z[:diverse], z_other,
                                          mask[:diverse]).mean()
    if cfg.discriminator is DiscriminatorKind.PROJECTED:
        return projected_step(m, cfg, image, fake, mask, condition, pose, rng, autocast, images_seen, diversity)
    fake_d = fake.detach().float()
    m.train_discriminator(True)
    with autocast():
        scores = m.d_fast(torch.cat([image, fake_d]), condition.repeat(2, 1, 1, 1), mask.repeat(2, 1, 1, 1),
                          pose.repeat(2, 1, 1)).float()
    real_score, fake_score = scores[:b], scores[b:]
    epsilon = loss.epsilon_penalty(real_score, cfg.epsilon_weight).mean()
    d_loss = loss.discriminator_loss(real_score, fake_score).mean() + epsilon
    if step % cfg.penalty_interval == 0:  # D's own eager forward of x̂ alone: only its scores are differentiated twice
        x_hat = loss.interpolate(image, fake_d, t).requires_grad_(True)
        with autocast(), twice_differentiable():
            hat_score = m.d_train(x_hat, condition, mask, pose).float()
        gradient = loss.critic_gradient(hat_score, x_hat, scale)
        penalty = gradient_penalty(cfg.penalty, gradient, mask, cfg.penalty_weight).mean()
        d_loss = d_loss + penalty * cfg.penalty_interval
        stats["penalty"] = penalty.detach()
    m.d_optimizer.zero_grad(set_to_none=True)
    m.scaler.scale(d_loss).backward()
    m.scaler.step(m.d_optimizer)

    m.train_discriminator(False)
    with autocast():
        g_score = m.d_score(fake, condition, mask, pose).float()
    g_loss = generator_step(m, cfg, g_score, fake, image, mask, images_seen, diversity, stats)
    stats.update(d_loss=d_loss.detach(), g_loss=g_loss.detach(), d_real=real_score.detach().mean(),
                 d_fake=fake_score.detach().mean(), epsilon=epsilon.detach())
    return stats


def generator_step(m: Models, cfg: TrainConfig, g_score: torch.Tensor, fake: torch.Tensor, image: torch.Tensor,
                   mask: torch.Tensor, images_seen: int, diversity: torch.Tensor | None,
                   stats: dict[str, torch.Tensor]) -> torch.Tensor:
    """G's loss −D(x̃) (plus the optional L1 warm-up and the diversity term on ``diversity``, the batch's
    :func:`loss.latent_diversity`), its Adam step and the EMA update; returns the loss."""
    g_loss = loss.generator_loss(g_score).mean()
    if diversity is not None:
        g_loss = g_loss + cfg.diversity_weight * loss.diversity_loss(diversity, cfg.diversity_cap)
        stats["diversity"] = diversity.detach()
    if images_seen < cfg.l1_images:
        l1 = loss.masked_l1(fake.float(), image, mask).mean()
        g_loss = g_loss + cfg.l1_weight * l1
        stats["l1"] = l1.detach()
    m.g_optimizer.zero_grad(set_to_none=True)
    m.scaler.scale(g_loss).backward()
    m.scaler.step(m.g_optimizer)
    m.scaler.update()
    update_ema(m.ema, m.generator, ema_beta(cfg.batch_size, cfg.ema_half_life))
    return g_loss


def projected_step(m: Models, cfg: TrainConfig, image: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor,
                   condition: torch.Tensor, pose: torch.Tensor, rng: torch.Generator, autocast: Callable,
                   images_seen: int, diversity: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """One step against the projected discriminator: hinge loss, differentiable augmentation of real and fake
    alike (each batch its own draws), no gradient penalty."""
    b = image.shape[0]
    real_in, real_mask, real_pose = augment(image, mask, pose, rng)
    fake_in, fake_mask, fake_pose = augment(fake.detach().float(), mask, pose, rng)
    m.train_discriminator(True)
    with autocast():
        scores = m.d_fast(torch.cat([real_in, fake_in]), condition.repeat(2, 1, 1, 1), torch.cat([real_mask, fake_mask]),
                          torch.cat([real_pose, fake_pose])).float()
    real_score, fake_score = scores[:b], scores[b:]
    d_loss = loss.hinge_discriminator_loss(real_score, fake_score).mean()
    m.d_optimizer.zero_grad(set_to_none=True)
    m.scaler.scale(d_loss).backward()
    m.scaler.step(m.d_optimizer)

    m.train_discriminator(False)
    g_in, g_mask, g_pose = augment(fake, mask, pose, rng)
    with autocast():
        g_score = m.d_score(g_in, condition, g_mask, g_pose).float()
    stats: dict[str, torch.Tensor] = {}
    g_loss = generator_step(m, cfg, g_score, fake, image, mask, images_seen, diversity, stats)
    stats.update(d_loss=d_loss.detach(), g_loss=g_loss.detach(), d_real=real_score.detach().mean(),
                 d_fake=fake_score.detach().mean())
    return stats


def datasets(cfg: TrainConfig) -> tuple[FaceDataset, FaceDataset]:
    """(train, val). Without a val split (folder data, or FDF without ``val/``) the train images serve as val."""
    common = {"image_size": cfg.image_size, "mask": cfg.mask, "seed": cfg.seed}
    if cfg.dataset is DatasetKind.FOLDER:
        train_set = folder_dataset(Path(cfg.data), flip=cfg.flip, boxes=cfg.boxes, landmarks=cfg.landmarks, **common)
        return train_set, train_set
    train_set = fdf_dataset(Path(cfg.data), "train", flip=cfg.flip, **common)
    if not (Path(cfg.data) / "val").is_dir():
        log.warning("%s has no val/ split: sample grids use training images", cfg.data)
        return train_set, train_set
    return train_set, fdf_dataset(Path(cfg.data), "val", flip=False, **common)


def resolve(cfg: TrainConfig, train_set: FaceDataset, process: distributed.Process) -> TrainConfig:
    """Fill K from the landmarks file (``--keypoints 0``: no pose input, the landmarks unused) and the crop ratio from
    the data's prepare report or ``--expand``, and check the batch divides over the processes."""
    k = train_set.num_keypoints
    if cfg.num_keypoints is None:
        cfg = cfg.with_changes(num_keypoints=k)
    elif cfg.num_keypoints not in (0, k):
        raise ValueError(f"--keypoints {cfg.num_keypoints} but the landmarks file has K={k} (0: train without pose)")
    recorded = prepared_expand(Path(cfg.data)) if cfg.dataset is DatasetKind.FDF else None
    cfg = cfg.with_changes(expand=agreed_expand(recorded, cfg.expand, f"the data in {cfg.data}"))
    if cfg.batch_size % process.world_size:
        raise ValueError(f"batch size {cfg.batch_size} does not divide over {process.world_size} processes")
    return cfg


def check_resume(cfg: TrainConfig, saved: dict[str, Any]) -> None:
    """Refuse a resume that changes a non-resumable option; an option the run predates counts as its default, and a
    run that predates the recorded crop ratio takes the one resolved from its data."""
    current = cfg.to_dict()
    saved = TrainConfig(data=cfg.data, out=cfg.out, expand=cfg.expand).to_dict() | saved
    changed = sorted(k for k in current if k not in RESUMABLE and current[k] != saved.get(k))
    if changed:
        raise ValueError(f"cannot resume with changed options: {', '.join(changed)}")


def crossed(images_seen: int, every: int, batch: int) -> bool:
    return images_seen // every > (images_seen - batch) // every


def train(cfg: TrainConfig, *, resume: bool = False, stop: Callable[[], bool] | None = None) -> Path:
    """Train until ``cfg.images`` images were shown to D, or until ``stop`` turns true (checked after each step; a
    checkpoint is saved then); returns the run folder. Works alone or under torchrun."""
    process = distributed.start(cfg.device)
    try:
        run(cfg, process, resume=resume, stop=stop)
    finally:
        distributed.stop(process)
    return Path(cfg.out)


def run(cfg: TrainConfig, process: distributed.Process, *, resume: bool = False,
        stop: Callable[[], bool] | None = None) -> Models:
    """The loop of :func:`train` inside an already started process; returns the trained models."""
    run_dir = Path(cfg.out)
    if not resume and latest_checkpoint(run_dir) is not None:
        raise ValueError(f"{run_dir} already holds a run: --resume it, or train into a new --out")
    train_set, val_set = datasets(cfg)
    cfg = resolve(cfg, train_set, process)
    models = Models.build(cfg.model_config(), cfg, process)
    images_seen = 0
    if cfg.init is not None and not resume:
        models.init_generator(Path(cfg.init))
    if resume:
        path = latest_checkpoint(run_dir)
        if path is None:
            raise FileNotFoundError(f"{run_dir}: no checkpoint to resume from")
        state = load_checkpoint(path, map_location=process.device)
        check_resume(cfg, state["config"])
        models.load_state_dict(state, cfg.lr)
        torch.set_rng_state(state["rng"]["torch"].cpu())
        images_seen = state["images_seen"]
        log.info("resumed %s at %d images", path, images_seen)
        if process.is_main:
            drop_log_after(run_dir / LOG_FILE, images_seen)
    if process.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:  # a run that stopped before its first checkpoint starts over: its log records go too
            drop_log_after(run_dir / LOG_FILE, 0)
        cfg.write(run_dir)
    loader = make_loader(
        train_set, batch_size=cfg.batch_size // process.world_size, rank=process.rank, world_size=process.world_size,
        seed=cfg.seed, start=images_seen // process.world_size, workers=cfg.workers,
        pin_memory=process.device.type == "cuda",
    )
    grid_batch = {k: v.to(process.device) for k, v in next(iter(_fixed_batch(val_set, cfg.grid_size))).items()}
    grid_z = torch.randn((len(grid_batch["image"]), models.generator.config.latent_channels, 4, 4),
                         generator=torch.Generator().manual_seed(cfg.seed)).to(process.device)

    def save(images: int) -> None:
        state = models.state_dict() | {
            "images_seen": images, "config": cfg.to_dict(), "model": cfg.model_config().to_dict(),
            "world_size": process.world_size, "rng": {"torch": torch.get_rng_state()},
        }
        save_checkpoint(state, checkpoint_path(run_dir, images))

    sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=process.device))
    counts: dict[str, int] = defaultdict(int)
    tick, tick_images = time.perf_counter(), images_seen
    with _progress(process.is_main and not cfg.quiet) as progress:
        task = progress.add_task("train", total=cfg.images, completed=images_seen)
        batches = iter(loader)
        while images_seen < cfg.images:
            stats = train_step(models, next(batches), cfg, process, images_seen)
            images_seen += cfg.batch_size
            for key, value in stats.items():
                sums[key] += value
                counts[key] += 1
            progress.update(task, completed=images_seen)
            if crossed(images_seen, cfg.log_every, cfg.batch_size) or images_seen >= cfg.images:
                rate = (images_seen - tick_images) / (time.perf_counter() - tick)
                record = {"images": images_seen, **{k: (sums[k] / counts[k]).item() for k in sums}, "images_per_s": rate}
                if process.is_main and len(grid_batch["image"]) > 1:
                    record |= conditioning_effect(models.ema, grid_batch["image"], grid_batch["mask"], grid_batch["pose"], grid_z)
                progress.update(task, description=f"D {record['d_loss']:+.3f} G {record['g_loss']:+.3f} {rate:.1f} img/s")
                if process.is_main:
                    with open(run_dir / LOG_FILE, "a") as f:
                        f.write(json.dumps(record) + "\n")
                check_finite(record.values(), images_seen)
                sums.clear()
                counts.clear()
                tick, tick_images = time.perf_counter(), images_seen
            stopping = distributed.any_process(process, stop is not None and stop())
            checkpoint = (crossed(images_seen, cfg.checkpoint_every, cfg.batch_size) or images_seen >= cfg.images
                          or stopping)
            if process.is_main and (checkpoint or crossed(images_seen, cfg.grid_every, cfg.batch_size)):
                check_finite([v.item() for v in sums.values()], images_seen)
                save_png(sample_grid(models.ema, grid_batch, grid_z), run_dir / "samples" / f"{images_seen:012d}.png")
            if process.is_main and checkpoint:
                save(images_seen)
            if stopping:
                break
    return models


def check_finite(values: Iterable[float], images_seen: int) -> None:
    """Raise RuntimeError when a logged loss or measure is NaN or infinite: the run stops before a checkpoint can keep
    the diverged weights, and ``--resume`` continues from the last finite one."""
    if not all(math.isfinite(v) for v in values):
        raise RuntimeError(f"training diverged by {images_seen:,} images (a loss is NaN or infinite); no checkpoint was "
                           "written after it: --resume continues from the last one")


def drop_log_after(path: Path, images_seen: int) -> None:
    """Remove the log records past the checkpoint a run resumes from (the resumed run logs those steps again) and any
    line that does not parse (cut short by a crash); the file is replaced atomically."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = []
    for number, line in enumerate(lines, 1):
        try:
            if line.endswith("\n") and json.loads(line)["images"] <= images_seen:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            log.warning("%s:%d: dropped a damaged log line", path, number)
    if len(kept) < len(lines):
        atomic_write(path, lambda tmp: tmp.write_text("".join(kept)))


def _fixed_batch(dataset: FaceDataset, size: int) -> torch.utils.data.DataLoader:
    """The first ``size`` evaluation samples (fixed masks, no flip) as one batch."""
    indices = list(range(min(size, len(dataset))))
    return torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=len(indices))


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), disable=not enabled
    )


def ema_generator(state: dict[str, Any]) -> Generator:
    """The EMA generator of a checkpoint, in eval mode on the CPU."""
    generator = Generator(ModelConfig.from_dict(state["model"]))
    generator.load_state_dict(state["ema"], strict=True)
    return generator.eval()
