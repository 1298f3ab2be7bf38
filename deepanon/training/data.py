"""Face datasets for training and evaluation, masks per sample, horizontal flip, and the data loader.

Accepted layouts (also in the README's training section):

* **FDF** (``--dataset fdf``), the reference layout, also what ``deepanon prepare`` writes::

      <root>/<split>/images/<S>/<i>.png          i = 0 … N-1, S×S RGB face crops (S = image size, 128 for FDF)
      <root>/<split>/landmarks.npy                N×K×2 (or N×2K) float keypoints in [0, 1] of the crop
      <root>/<split>/bounding_box/<S>.npy         N×4 face boxes x0, y0, x1, y1 in pixels of the S×S crop
                                                  (or <S>.torch, the reference file, read with weights_only=True)
      <root>/<split>/prepare_report.json          optional: ``expand``, the crop ratio (crop side / face box side)
                                                  of the crops; written by ``deepanon prepare``, else ``--expand``

  with ``<split>`` = ``train`` and ``val``. K is read from the landmarks file: 7 for FDF's COCO keypoints
  (nose, r_eye, l_eye, r_ear, l_ear, r_shoulder, l_shoulder), 5 for our detector's landmarks (image-left eye,
  image-right eye, nose, image-left mouth corner, image-right mouth corner).

* **Folder** (``--dataset folder``): any face images (png, jpg, jpeg, webp, bmp) anywhere under ``<root>``, taken in
  sorted order of their relative paths and resized to S×S, plus two optional ``.npy`` files in that same order:
  ``boxes`` N×4 face boxes in pixels of each *original* image (needed for face-box masks) and ``landmarks`` N×K×2 in
  [0, 1] of the image (needed for K > 0). Defaults: ``<root>/boxes.npy`` and ``<root>/landmarks.npy``. The crop
  ratio of these images is given with ``--expand``.

Every sample is a dict: ``image`` (3, S, S) float32 in [-1, 1], ``mask`` (1, S, S) float32 C⁰ (1 = known), ``pose``
(K, 2) float32 in [0, 1]. A training key is ``(index, position)``: the position in the sample stream seeds that
sample's mask and flip, so augmentation does not depend on the worker count and a resumed run sees the same samples.
An evaluation key is a plain index: no flip and a fixed mask (face box, or the centre square for free-form masks).
"""

from __future__ import annotations

import json
import pickle
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from deepanon.training.config import MaskKind
from deepanon.training.masks import box_mask, center_mask, free_form_mask

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}
# Keypoint order after a horizontal flip, by K: 5 = our detector, 7 = FDF's COCO keypoints.
FLIP_PERMUTATIONS: dict[int, list[int]] = {0: [], 5: [1, 0, 2, 4, 3], 7: [0, 2, 1, 4, 3, 6, 5]}

SampleKey = int | tuple[int, int]


# Written by ``deepanon prepare`` into each split; its ``expand`` is the crop ratio (crop side / face box side).
PREPARE_REPORT = "prepare_report.json"


class DataLayoutError(FileNotFoundError):
    """The data folder does not have the expected layout; the message names the missing or malformed file."""


def flip_keypoints(pose: torch.Tensor) -> torch.Tensor:
    """Mirror (…, K, 2) keypoints in [0, 1]: x -> 1 - x, and swap left/right keypoints (``FLIP_PERMUTATIONS``)."""
    k = pose.shape[-2]
    if k not in FLIP_PERMUTATIONS:
        raise ValueError(f"no left/right keypoint pairing known for K={k}; train with --no-flip")
    flipped = pose[..., FLIP_PERMUTATIONS[k], :].clone()
    flipped[..., 0] = 1 - flipped[..., 0]
    return flipped


class FaceDataset(Dataset):
    """Face crops with boxes and keypoints; build it with :func:`fdf_dataset` or :func:`folder_dataset`."""

    def __init__(
        self,
        images: list[Path],
        landmarks: np.ndarray,
        boxes: np.ndarray | None,
        *,
        image_size: int,
        mask: MaskKind,
        flip: bool,
        seed: int = 0,
    ) -> None:
        n = len(images)
        if landmarks.shape[0] != n or (boxes is not None and boxes.shape != (n, 4)):
            raise DataLayoutError(
                f"{n} images but landmarks {landmarks.shape} and boxes {None if boxes is None else boxes.shape}"
            )
        if mask is MaskKind.FACE_BOX and boxes is None:
            raise DataLayoutError("face-box masks need a boxes file (boxes.npy beside the images, or --boxes; or "
                                  "--mask center)")
        if boxes is not None:
            empty = ~np.isfinite(boxes).all(1) | (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
            if empty.any():  # a face box without area makes an empty hole: nothing to learn, no error either
                raise DataLayoutError(f"{int(empty.sum())} face boxes have no area or are not finite (first: image "
                                      f"{int(np.argmax(empty))}, {boxes[np.argmax(empty)].tolist()})")
        if flip and landmarks.shape[1] not in FLIP_PERMUTATIONS:
            raise ValueError(f"no left/right keypoint pairing known for K={landmarks.shape[1]}; train with --no-flip")
        self.images, self.landmarks, self.boxes = images, landmarks.astype(np.float32), boxes
        self.image_size, self.mask, self.flip, self.seed = image_size, mask, flip, seed

    @property
    def num_keypoints(self) -> int:
        return self.landmarks.shape[1]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        index, position = key if isinstance(key, tuple) else (key, None)
        s = self.image_size
        path = self.images[index]
        if not path.is_file():
            raise DataLayoutError(f"{path}: image file is missing")
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                original = im.size
                if im.size != (s, s):
                    im = im.resize((s, s), Image.BICUBIC)
                image = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 127.5 - 1
        except (OSError, ValueError, SyntaxError) as err:  # Pillow's errors for corrupt and truncated files
            raise DataLayoutError(f"{path}: not a readable image ({type(err).__name__}: {err})") from err
        pose = torch.from_numpy(self.landmarks[index])
        if position is None:
            mask = box_mask(s, self._box(index, original)) if self.mask is MaskKind.FACE_BOX else center_mask(s)
            return {"image": image, "mask": mask, "pose": pose}
        rng = np.random.default_rng([self.seed, position])
        if self.mask is MaskKind.FACE_BOX:
            mask = box_mask(s, self._box(index, original))
        elif self.mask is MaskKind.FREE_FORM:
            mask = free_form_mask(s, rng)
        else:
            mask = center_mask(s)
        if self.flip and rng.random() < 0.5:
            image, mask, pose = image.flip(-1), mask.flip(-1), flip_keypoints(pose)
        return {"image": image, "mask": mask, "pose": pose}

    def _box(self, index: int, original: tuple[int, int]) -> np.ndarray:
        assert self.boxes is not None
        sx, sy = self.image_size / original[0], self.image_size / original[1]
        return self.boxes[index] * np.array([sx, sy, sx, sy], dtype=np.float32)


def _load_array(path: Path) -> np.ndarray:
    """An array file: ``.npy`` (no pickles) or the reference code's ``.torch`` tensor (tensors only)."""
    try:
        if path.suffix == ".torch":
            return torch.load(path, map_location="cpu", weights_only=True).numpy()
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, RuntimeError, EOFError, AttributeError, pickle.UnpicklingError) as err:
        raise DataLayoutError(f"{path}: not a readable array file ({type(err).__name__}); expected .npy or a .torch tensor") from err


def _keypoints(array: np.ndarray, path: Path) -> np.ndarray:
    """N×K×2 keypoints from an N×K×2 or N×2K array; ``DataLayoutError`` for another shape or a value that is not
    finite, ValueError when a face's keypoints leave [0, 1] (pixels given instead of fractions of the crop)."""
    if array.ndim == 2 and array.shape[1] % 2 == 0:
        array = array.reshape(array.shape[0], -1, 2)
    if array.ndim != 3 or array.shape[2] != 2 or not np.isfinite(array).all():
        raise DataLayoutError(f"{path}: expected N×K×2 finite keypoints in [0, 1], got shape {array.shape}")
    outside = ((array < 0) | (array > 1)).any(axis=(1, 2))
    if outside.any():
        first = int(np.argmax(outside))
        values = np.round(array[first].astype(float), 3).tolist()
        raise ValueError(f"{path}: keypoints of {int(outside.sum())} of {len(array)} faces lie outside [0, 1] (first: "
                         f"face {first}, {values}); keypoints are fractions of the crop side, not pixels")
    return array


def stored_size(images: Path, image_size: int) -> int:
    """The crop size to read: ``image_size`` itself, else the smallest larger one stored (resized when loaded)."""
    sizes = sorted(int(p.name) for p in images.iterdir() if p.name.isdigit()) if images.is_dir() else []
    return image_size if image_size in sizes else next((s for s in sizes if s > image_size), image_size)


def prepared_expand(root: Path) -> float | None:
    """The crop ratio (crop side / face box side) that ``deepanon prepare`` recorded for the FDF-layout data at
    ``root`` (the ``PREPARE_REPORT`` of its train and val splits); None when neither split has a report.

    Raises ``DataLayoutError`` for a report without a number >= 1 and ValueError when the splits disagree.
    """
    found = {}
    for split in ("train", "val"):
        path = Path(root) / split / PREPARE_REPORT
        if path.is_file():
            try:
                found[split] = float(json.loads(path.read_text())["expand"])
            except (ValueError, KeyError, TypeError) as err:
                raise DataLayoutError(f"{path}: no crop ratio 'expand' in it ({type(err).__name__}: {err})") from err
            if not found[split] >= 1:
                raise DataLayoutError(f"{path}: crop ratio 'expand' {found[split]} is below 1")
    if len(set(found.values())) > 1:
        raise ValueError(f"{root}: train and val were prepared with different crop ratios ({found['train']} and "
                         f"{found['val']}); prepare both splits with one --expand")
    return next(iter(found.values()), None)


def fdf_dataset(root: Path, split: str, *, image_size: int, mask: MaskKind, flip: bool, seed: int = 0) -> FaceDataset:
    """The FDF layout of the module docstring; raises ``DataLayoutError`` naming the first missing file."""
    base = Path(root) / split
    landmarks_path = base / "landmarks.npy"
    stored = stored_size(base / "images", image_size)
    image_dir = base / "images" / str(stored)
    box_candidates = [base / "bounding_box" / f"{stored}{ext}" for ext in (".npy", ".torch")]
    for required in (landmarks_path, image_dir):
        if not required.exists():
            raise DataLayoutError(f"{required}: missing (expected the FDF layout, see deepanon.training.data)")
    box_path = next((p for p in box_candidates if p.is_file()), None)
    if box_path is None and mask is MaskKind.FACE_BOX:
        raise DataLayoutError(f"{box_candidates[0]} (or {box_candidates[1].name}): missing; face-box masks need it")
    landmarks = _keypoints(_load_array(landmarks_path), landmarks_path)
    boxes = None if box_path is None else _load_array(box_path).astype(np.float32)
    images = [image_dir / f"{i}.png" for i in range(landmarks.shape[0])]
    for required in (images[0], images[-1]) if images else ():
        if not required.is_file():
            raise DataLayoutError(f"{required}: missing ({len(images)} images expected from {landmarks_path.name})")
    return FaceDataset(images, landmarks, boxes, image_size=image_size, mask=mask, flip=flip, seed=seed)


def folder_dataset(
    root: Path,
    *,
    image_size: int,
    mask: MaskKind,
    flip: bool,
    boxes: Path | None = None,
    landmarks: Path | None = None,
    seed: int = 0,
) -> FaceDataset:
    """Any images under ``root`` (sorted relative paths) with optional boxes/landmarks ``.npy`` files in that order."""
    root = Path(root)
    if not root.is_dir():
        raise DataLayoutError(f"{root}: not a folder")
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DataLayoutError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    boxes_path = Path(boxes) if boxes else root / "boxes.npy"
    landmarks_path = Path(landmarks) if landmarks else root / "landmarks.npy"
    for given, path in ((boxes, boxes_path), (landmarks, landmarks_path)):
        if given and not path.is_file():
            raise DataLayoutError(f"{path}: missing")
    box_array = _load_array(boxes_path).astype(np.float32) if boxes_path.is_file() else None
    if landmarks_path.is_file():
        keypoints = _keypoints(_load_array(landmarks_path), landmarks_path)
    else:
        keypoints = np.zeros((len(images), 0, 2), dtype=np.float32)
    return FaceDataset(images, keypoints, box_array, image_size=image_size, mask=mask, flip=flip, seed=seed)


@dataclass(frozen=True)
class StreamSampler(Sampler[tuple[int, int]]):
    """An endless stream of ``(index, position)`` keys for one process, resumable at any position.

    Epoch e is ``DistributedSampler(seed, epoch=e)``'s shuffled shard for this rank (one process: the whole dataset);
    ``position`` counts this rank's samples from the start of training and is made unique across ranks.
    """

    dataset: Dataset
    rank: int
    world_size: int
    seed: int
    start: int = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        shard = DistributedSampler(self.dataset, self.world_size, self.rank, shuffle=True, seed=self.seed)
        epoch, offset = divmod(self.start, len(shard))
        position = self.start
        while True:
            shard.set_epoch(epoch)
            for index in list(shard)[offset:]:
                yield index, position * self.world_size + self.rank
                position += 1
            epoch, offset = epoch + 1, 0


def seed_worker(worker_id: int) -> None:
    """Seed numpy and Python in each loader worker from torch's per-worker seed (base seed + worker id)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    dataset: FaceDataset,
    *,
    batch_size: int,
    rank: int,
    world_size: int,
    seed: int,
    start: int,
    workers: int,
    pin_memory: bool,
) -> DataLoader:
    """Per-process loader of ``batch_size`` samples, continuing the sample stream at per-rank position ``start``."""
    generator = torch.Generator().manual_seed(seed * 1_000 + rank)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=StreamSampler(dataset, rank, world_size, seed, start),
        num_workers=workers,
        pin_memory=pin_memory,
        worker_init_fn=seed_worker,
        generator=generator,
        persistent_workers=workers > 0,
        prefetch_factor=2 if workers > 0 else None,
    )

