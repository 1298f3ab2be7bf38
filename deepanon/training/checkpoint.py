"""Training checkpoints: one ``.pt`` per save, written atomically, read back with ``weights_only=True``."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from deepanon.files import atomic_write

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^(\d{12})\.pt$")


def checkpoint_path(run_dir: Path, images_seen: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"{images_seen:012d}.pt"


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` (tensors, numbers, strings, lists, dicts only) atomically: a temp file renamed in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint with the most images seen, or None."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    found = sorted(p for p in folder.glob("*.pt") if _NAME.match(p.name)) if folder.is_dir() else []
    return found[-1] if found else None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint without unpickling code (``weights_only=True``); ``ValueError`` when it is cut short, not a
    checkpoint or holds anything but tensors and plain values."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, KeyError, pickle.UnpicklingError) as err:
        raise ValueError(f"{path}: not a readable checkpoint ({type(err).__name__}); delete it to use the one before") from err
    if not isinstance(state, dict) or "images_seen" not in state:
        raise ValueError(f"{path}: not a deepanon training checkpoint")
    return state
