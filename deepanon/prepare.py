"""Turn a folder of face photos into training data in the FDF layout, with our own detector's boxes and landmarks.

Each photo with exactly one confident face is re-cropped with the same ``FaceCrop`` geometry the anonymizer uses at
inference (box squared, grown by ``expand``, resized to ``size``²), so that the model trains on the crops it will see.
Written: ``<out>/<split>/images/<size>/<i>.png``, ``landmarks.npy`` (N×5×2 in [0, 1] of the crop),
``bounding_box/<size>.npy`` (N×4 hole bounds in crop pixels), ``sources.txt`` and ``prepare_report.json`` (with the
crop ratio ``expand``, which training records in its run and export writes into the weights).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from deepanon.detection.base import Detector
from deepanon.geometry import FaceCrop
from deepanon.files import InputError, current_umask, walk_files
from deepanon.images import IMAGE_SUFFIXES, read_image
from deepanon.training.data import PREPARE_REPORT

# The crop ratio (crop side / face box side) of new training data unless told otherwise: the bundled weights' (their
# model card, weights/README.md). The split's prepare report records it, the training run takes it from there, and
# the weights exported from the run carry it.
DEFAULT_EXPAND = 1.25


@dataclass
class PrepareReport:
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {"kept": self.kept, "dropped": dict(self.dropped)}


def source_photos(images: Path, limit: int | None = None) -> list[Path]:
    """The photos below ``images`` that ``prepare_split`` reads, in its order (sorted paths), the first ``limit``."""
    return sorted(p for p, skipped in walk_files(images) if skipped is None and p.suffix.lower() in IMAGE_SUFFIXES)[:limit]


def prepare_split(
    sources: list[Path],
    images: Path,
    out: Path,
    detector: Detector,
    *,
    split: str = "train",
    size: int = 128,
    expand: float = DEFAULT_EXPAND,
    on_image: Callable[[], None] | None = None,
) -> PrepareReport:
    """Detect, filter and re-crop the photos ``sources`` (below ``images``, see ``source_photos``) into ``out/split``;
    return what was kept and dropped.

    The split is built in a temporary folder beside it and put in place only when complete and not empty: an
    interrupted run, or one that keeps no face, leaves an existing ``out/split`` as it was.
    """
    out.mkdir(parents=True, exist_ok=True)
    target = (out / split).resolve() if (out / split).is_symlink() else out / split  # a linked split is rebuilt there
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{split}.partial-"))
    building.chmod(0o777 & ~current_umask())  # mkdtemp's 0700 would stay on the finished split
    try:
        report = _write_split(sources, images, building, detector, size=size, expand=expand, on_image=on_image)
        if report.kept:
            _replace_folder(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return report


def _replace_folder(new: Path, target: Path) -> None:
    """Put the folder ``new`` at ``target``, removing what was there only once ``new`` is in place (and putting it
    back if that fails)."""
    if not target.exists():
        new.rename(target)
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
    target.rename(old / target.name)
    try:
        new.rename(target)
    except BaseException:
        (old / target.name).rename(target)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _write_split(
    sources: list[Path],
    images: Path,
    split_dir: Path,
    detector: Detector,
    *,
    size: int,
    expand: float,
    on_image: Callable[[], None] | None,
) -> PrepareReport:
    image_dir = split_dir / "images" / str(size)
    image_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / "bounding_box").mkdir(exist_ok=True)
    report = PrepareReport()
    boxes, landmarks, kept_sources = [], [], []
    for source in sources:
        reason = None
        try:
            pixels = read_image(source).pixels
            faces = detector.detect(pixels)
            if len(faces) != 1:
                reason = "no face" if len(faces) == 0 else "more than one face"
            elif faces.landmarks_estimated[0]:
                reason = "no predicted landmarks"
            else:
                crop = FaceCrop.from_box(faces.boxes[0], size, expand=expand)
        except InputError:
            reason = "unreadable"
        except ValueError:
            reason = "degenerate box"
        if reason is None:
            Image.fromarray(crop.extract(pixels)).save(image_dir / f"{report.kept}.png")
            boxes.append(crop.hole_bounds())
            landmarks.append(np.clip(crop.to_crop(faces.landmarks[0]), 0, 1))
            kept_sources.append(str(source.relative_to(images)))
            report.kept += 1
        else:
            report.dropped[reason] += 1
        if on_image is not None:
            on_image()
    np.save(split_dir / "landmarks.npy", np.array(landmarks, np.float32).reshape(-1, 5, 2))
    np.save(split_dir / "bounding_box" / f"{size}.npy", np.array(boxes, np.float32).reshape(-1, 4))
    (split_dir / "sources.txt").write_text("".join(f"{s}\n" for s in kept_sources))
    meta = {"images": str(images), "size": size, "expand": expand, **report.to_dict()}
    (split_dir / PREPARE_REPORT).write_text(json.dumps(meta, indent=2) + "\n")
    return report
