import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_fdf(root: Path, n: int = 12, size: int = 32, keypoints: int = 5, seed: int = 0,
              expand: float | None = 1.25) -> Path:
    """A tiny dataset in the FDF layout: smooth random images, a centred face box and K landmarks per image, and (unless
    ``expand`` is None) the prepare report of each split with that crop ratio, as ``deepanon prepare`` writes it."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        base = root / split
        (base / "images" / str(size)).mkdir(parents=True)
        (base / "bounding_box").mkdir()
        for i in range(n):
            low = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
            Image.fromarray(low).resize((size, size), Image.BILINEAR).save(base / "images" / str(size) / f"{i}.png")
        boxes = np.tile(np.array([size / 4, size / 4, 3 * size / 4, 3 * size / 4], dtype=np.float32), (n, 1))
        boxes += rng.integers(-2, 3, size=(n, 4)).astype(np.float32)
        np.save(base / "bounding_box" / f"{size}.npy", boxes)
        np.save(base / "landmarks.npy", rng.uniform(0.3, 0.7, size=(n, keypoints, 2)).astype(np.float32))
        if expand is not None:
            (base / "prepare_report.json").write_text(json.dumps({"size": size, "expand": expand, "kept": n}))
    return root


@pytest.fixture(scope="session")
def fdf_root(tmp_path_factory) -> Path:
    return write_fdf(tmp_path_factory.mktemp("fdf"))
