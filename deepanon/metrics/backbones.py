"""Backbone weights for LPIPS and FID, read only from files the user gives (nothing is ever downloaded)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn


class BackboneError(ValueError):
    """A backbone file is missing or does not fit the network; the message names the file."""


def load_backbone(module: nn.Module, path: Path) -> nn.Module:
    """Load a state dict (``.safetensors``, else ``torch.load(weights_only=True)``) into ``module`` strictly."""
    path = Path(path)
    if not path.is_file():
        raise BackboneError(f"{path}: backbone weights file not found")
    try:
        state = load_file(str(path)) if path.suffix == ".safetensors" else torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict(state, strict=True)
    except Exception as err:  # noqa: BLE001 - any unreadable or mismatched file is the same user error
        raise BackboneError(f"{path}: does not fit {type(module).__name__} ({type(err).__name__}: {err})") from err
    return module.eval().requires_grad_(False)
