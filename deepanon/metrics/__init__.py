"""Inpainting metrics (paper §4, DESIGN.md §4): L1, L2, PSNR, SSIM per image, and ``evaluate`` over a dataset."""

from deepanon.metrics.evaluate import evaluate
from deepanon.metrics.pixel import l1, l2, psnr
from deepanon.metrics.ssim import ssim

__all__ = ["evaluate", "l1", "l2", "psnr", "ssim"]
