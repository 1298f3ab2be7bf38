"""Inpainting metrics (paper §4, Tables 1 and 2): L1, L2, PSNR, SSIM per image, ``evaluate`` over a dataset, and how
much a generator uses z and its pose input (``conditioning_effect``)."""

from deepanon.metrics.conditioning import conditioning_effect
from deepanon.metrics.evaluate import evaluate
from deepanon.metrics.pixel import l1, l2, psnr
from deepanon.metrics.ssim import ssim

__all__ = ["conditioning_effect", "evaluate", "l1", "l2", "psnr", "ssim"]
