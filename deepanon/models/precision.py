"""Autocast arithmetic shared by training and inference: the modes and the dtype each explicit mode stands for."""

from __future__ import annotations

from enum import Enum

import torch


class Precision(str, Enum):
    """Autocast mode of training and inference; AUTO is resolved by :func:`autocast_dtype`."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


# autocast dtype of each explicit mode; None = plain fp32, no autocast
AUTOCAST_DTYPES: dict[Precision, torch.dtype | None] = {
    Precision.FP32: None, Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16,
}


def autocast_dtype(precision: Precision, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, None for fp32. ``auto``: bf16 on CUDA GPUs that have it (else fp16) and on CPUs with native
    bf16 (AVX-512 BF16 / AMX: 1.3-2.5× faster there for inference and training, benchmarks/NOTES.md), fp32 on other
    CPUs."""
    if precision is Precision.AUTO:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
    if precision is Precision.FP16 and device.type != "cuda":
        raise ValueError("fp16 needs CUDA; use bf16 or fp32 on the CPU")
    return AUTOCAST_DTYPES[precision]
