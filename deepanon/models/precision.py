"""Autocast arithmetic shared by training and inference: the modes and the dtype each explicit mode stands for."""

from __future__ import annotations

from enum import Enum

import torch


class Precision(str, Enum):
    """Autocast mode. AUTO is resolved by each caller: training (``training.loop.autocast_dtype``: bf16 on CUDA, fp32
    on the CPU) and inference (``pipeline.inference_dtype``: also bf16 on CPUs with native bf16) choose differently."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


# autocast dtype of each explicit mode; None = plain fp32, no autocast
AUTOCAST_DTYPES: dict[Precision, torch.dtype | None] = {
    Precision.FP32: None, Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16,
}
