"""Evaluate a generator on a dataset with the reference protocol: z = 0, fixed masks, the first ``limit`` images."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from deepanon.metrics.fid import InceptionFeatures, frechet_distance, statistics
from deepanon.metrics.lpips import LPIPS
from deepanon.metrics.pixel import l1, l2, psnr, to_unit
from deepanon.metrics.ssim import ssim
from deepanon.models import Generator

log = logging.getLogger(__name__)

PIXEL_METRICS = {"l1": l1, "l2": l2, "psnr": psnr, "ssim": ssim}
NO_BACKBONE = "needs backbone weights from a local file (nothing is downloaded): pass {option}"


@torch.no_grad()
def evaluate(
    generator: Generator,
    dataset: Dataset,
    *,
    batch_size: int = 32,
    limit: int | None = 10_000,
    device: str | torch.device = "cpu",
    workers: int = 0,
    lpips: LPIPS | None = None,
    fid: InceptionFeatures | None = None,
) -> dict[str, Any]:
    """Mean L1, L2, PSNR and SSIM (images in [0, 1], per image, then averaged) of ``generator(condition, mask, pose)``.

    ``dataset`` yields evaluation samples (``image``, ``mask``, ``pose``; see ``deepanon.training.data``). LPIPS and
    FID are computed when their networks (built from local weight files) are given, else listed under ``skipped``.
    """
    n = len(dataset) if limit is None else min(limit, len(dataset))
    loader = DataLoader(Subset(dataset, range(n)), batch_size=batch_size, num_workers=workers)
    generator = generator.eval().to(device)
    totals = {name: 0.0 for name in PIXEL_METRICS}
    lpips_total = 0.0
    real_features, fake_features = [], []
    for batch in loader:
        image, mask, pose = (batch[k].to(device) for k in ("image", "mask", "pose"))
        generated = generator(image * mask, mask, pose)
        real, fake = to_unit(image), to_unit(generated)
        for name, metric in PIXEL_METRICS.items():
            totals[name] += metric(fake, real).double().sum().item()
        if lpips is not None:
            lpips_total += lpips.to(device)(generated, image).double().sum().item()
        if fid is not None:
            real_features.append(fid.to(device)(image).cpu())
            fake_features.append(fid(generated).cpu())
    results: dict[str, Any] = {"images": n, **{k: v / max(n, 1) for k, v in totals.items()}}
    skipped = {}
    if lpips is not None:
        results["lpips"] = lpips_total / max(n, 1)
    else:
        skipped["lpips"] = NO_BACKBONE.format(option="--lpips-alexnet and --lpips-linear (AlexNet + LPIPS v0.1 layers)")
    if fid is not None and n > 1:
        results["fid"] = frechet_distance(*statistics(torch.cat(real_features)), *statistics(torch.cat(fake_features)))
    else:
        skipped["fid"] = NO_BACKBONE.format(option="--fid-inception (Inception v3)") if fid is None else "needs ≥ 2 images"
    results["skipped"] = skipped
    return results
