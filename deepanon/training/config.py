"""Training options: one typed dataclass, validated once, written to the run folder as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

import torch

from deepanon.models import ModelConfig
from deepanon.models.precision import Precision

CONFIG_FILE = "config.json"
# `compile` left unset compiles CPU runs of at least this many images: compiling G and D takes ~10 minutes on one core
# the first time (a minute from inductor's cache) and then saves ~0.12 s an image (1.28×, benchmarks/NOTES.md), so it
# pays from ~5,000 images
COMPILE_FROM_IMAGES = 50_000


class DatasetKind(str, Enum):
    FDF = "fdf"
    FOLDER = "folder"


class MaskKind(str, Enum):
    """FACE_BOX: the hole is the face box (FDF). FREE_FORM: random rectangle + strokes after Yu et al. (training) and
    the fixed centre square W/4…3W/4 (validation). CENTER: the centre square always."""

    FACE_BOX = "face-box"
    FREE_FORM = "free-form"
    CENTER = "center"


class DiscriminatorKind(str, Enum):
    """RESIDUAL: the paper's residual D with WGAN loss and gradient penalty (Config E). PROJECTED: a frozen ImageNet
    backbone with trained heads, hinge loss and differentiable augmentation (``models.projected``)."""

    RESIDUAL = "residual"
    PROJECTED = "projected"


# Adam's learning rate and the EMA generator's half-life (images) when not given, by discriminator: the paper's for
# its residual D; for the projected D the recipe of the bundled weights' second stage (Sauer et al.'s learning rate):
# runs at 1e-3 from the bundled weights fell behind them in blind tests (benchmarks/NOTES.md)
OPTIMIZER_DEFAULTS: dict[DiscriminatorKind, dict[str, Any]] = {
    DiscriminatorKind.RESIDUAL: {"lr": 1e-3, "ema_half_life": 10_000},
    DiscriminatorKind.PROJECTED: {"lr": 2e-4, "ema_half_life": 5_000},
}


class Penalty(str, Enum):
    """IMPROVED: eq. 10/11 (Config B onwards). WGAN_GP: eq. 8 on the whole image (Config A). WGAN_GP_MASKED: eq. 9."""

    IMPROVED = "improved"
    WGAN_GP = "wgan-gp"
    WGAN_GP_MASKED = "wgan-gp-masked"


# The options whose values are enums, by field name (JSON and the CLI give their string values).
ENUM_FIELDS: dict[str, type[Enum]] = {"dataset": DatasetKind, "mask": MaskKind, "penalty": Penalty,
                                      "precision": Precision, "discriminator": DiscriminatorKind}

# Presets of ``--config``: Config E on FDF (paper §4.1) and the 2× wide free-form variant (paper §4.2).
PRESETS: dict[str, dict[str, Any]] = {
    "e": {"image_size": 128, "width": 1.0, "mask": MaskKind.FACE_BOX},
    "e-wide": {"image_size": 256, "width": 2.0, "mask": MaskKind.FREE_FORM},
}

# Options that may change when a run is resumed (folders may move, the reconstruction and diversity terms may be
# re-weighted, the learning rate and the EMA's half-life lowered for a late stage); everything else must match the
# checkpoint.
RESUMABLE = frozenset(
    {"data", "out", "images", "workers", "checkpoint_every", "grid_every", "log_every", "quiet", "device",
     "l1_images", "l1_weight", "diversity_weight", "diversity_cap", "precision", "compile", "lr", "ema_half_life"}
)


def agreed_expand(recorded: float | None, given: float | None, source: str) -> float:
    """The crop ratio (crop side / face box side) that ``source`` (the data, a run) records, else the ``--expand``
    given; ValueError when neither gives one or the two disagree."""
    if recorded is None and given is None:
        raise ValueError(f"{source} does not record the crop ratio of its crops; pass --expand (crop side / face box "
                         "side)")
    if recorded is not None and given is not None and recorded != given:
        raise ValueError(f"--expand {given} but {source} records {recorded}")
    return given if recorded is None else recorded


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on. Image counts are global (summed over all processes).

    ``batch_size`` is the global batch; each of N processes gets ``batch_size / N``. ``num_keypoints`` None means
    "as many as the landmarks file has", ``expand`` (crop side / face box side of the data's crops) None means "as the
    data's prepare report says"; both are resolved before the config is written. ``lr`` and ``ema_half_life`` None
    take the discriminator's ``OPTIMIZER_DEFAULTS`` at once.
    """

    data: str
    out: str
    dataset: DatasetKind = DatasetKind.FDF
    boxes: str | None = None
    landmarks: str | None = None
    expand: float | None = None
    image_size: int = 128
    width: float = 1.0
    num_keypoints: int | None = None
    imputed: bool = True
    init: str | None = None
    mask: MaskKind = MaskKind.FACE_BOX
    discriminator: DiscriminatorKind = DiscriminatorKind.RESIDUAL
    flip: bool = True
    batch_size: int = 32
    images: int = 20_000_000
    lr: float | None = None
    betas: tuple[float, float] = (0.0, 0.99)
    penalty: Penalty = Penalty.IMPROVED
    penalty_weight: float = 10.0
    penalty_interval: int = 1
    epsilon_weight: float = 0.001
    ema_half_life: int | None = None
    l1_weight: float = 1.0
    l1_images: int = 0
    diversity_weight: float = 0.0
    diversity_cap: float = 0.2
    precision: Precision = Precision.AUTO
    compile: bool | None = None
    device: str = "auto"
    workers: int = 2
    seed: int = 0
    checkpoint_every: int = 500_000
    grid_every: int = 100_000
    log_every: int = 2_000
    grid_size: int = 8
    quiet: bool = False

    def __post_init__(self) -> None:
        for name, value in OPTIMIZER_DEFAULTS[DiscriminatorKind(self.discriminator)].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        positive = ["batch_size", "images", "lr", "penalty_interval", "ema_half_life", "checkpoint_every", "grid_every",
                    "log_every", "grid_size"]
        bad = [name for name in positive if not getattr(self, name) > 0]
        non_negative = ["penalty_weight", "epsilon_weight", "l1_weight", "l1_images", "diversity_weight",
                        "diversity_cap", "workers"]
        bad += [n for n in non_negative if getattr(self, n) < 0]
        if self.expand is not None and not self.expand >= 1:
            bad.append("expand")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            bad.append("betas")
        if bad:
            raise ValueError(f"invalid training options: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")
        if self.num_keypoints is not None:
            self.model_config()  # raises on an impossible model shape
        if self.precision is Precision.FP16 and self.device == "cpu":
            raise ValueError("fp16 needs CUDA; use --precision bf16 or fp32 on the CPU")

    def compiles(self, device: torch.device) -> bool:
        """Whether G and D run through ``torch.compile``: ``compile`` if set, else on the CPU for runs of at least
        ``COMPILE_FROM_IMAGES`` images (on CUDA unmeasured, so off)."""
        if self.compile is not None:
            return self.compile
        return device.type == "cpu" and self.images >= COMPILE_FROM_IMAGES

    def model_config(self) -> ModelConfig:
        if self.num_keypoints is None:
            raise ValueError("num_keypoints is not resolved yet")
        return ModelConfig(
            image_size=self.image_size, num_keypoints=self.num_keypoints, width=self.width, imputed=self.imputed
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.value if isinstance(v, Enum) else list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        types = {f.name: f.type for f in fields(cls)}
        unknown = set(data) - set(types)
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        values = {k: ENUM_FIELDS[k](v) if k in ENUM_FIELDS else tuple(v) if k == "betas" else v for k, v in data.items()}
        return cls(**values)

    def with_changes(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    def write(self, run_dir: Path) -> Path:
        path = Path(run_dir) / CONFIG_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, run_dir: Path) -> TrainConfig:
        path = Path(run_dir) / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no training config in the run folder (nothing to resume)")
        return cls.from_dict(json.loads(path.read_text()))
