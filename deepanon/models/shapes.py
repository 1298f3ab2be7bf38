"""Shape checks where tensors enter a model: a wrong shape is the caller's error, a ValueError (kept by ``python -O``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_shape(name: str, tensor: torch.Tensor, expected: Sequence[int | None]) -> None:
    """Raise ValueError unless ``tensor`` has ``expected``'s rank and sizes (None: any size on that axis)."""
    shape = tuple(tensor.shape)
    if len(shape) != len(expected) or any(e is not None and s != e for s, e in zip(shape, expected)):
        wanted = ", ".join("*" if e is None else str(e) for e in expected)
        raise ValueError(f"{name}: expected shape ({wanted}), got {shape}")
