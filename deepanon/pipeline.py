"""Anonymize faces: crop each detected face, generate a new one with the IConv generator, paste it back.

Privacy fails closed: every detected face ends up either generated or covered (blur, pixelate or solid fill); a face
whose generation is impossible (degenerate box, generator error) is covered and its record says why.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import torch

from deepanon.detection import Detections
from deepanon.detection.types import canonical_order
from deepanon.exposure import brightened, darkened, exposure_gain
from deepanon.geometry import FaceCrop, quarter_turns
from deepanon.keyframes import KEY_HOLE_MARGIN, Carry, KeyFace, KeyFaces, carried
from deepanon.models import Generator, seeded_latent
from deepanon.models.compiled import CompiledForward
from deepanon.models.precision import Precision, autocast_dtype
from deepanon.monochrome import photo_tone

log = logging.getLogger(__name__)


class Replacement(enum.Enum):
    """How a face is replaced."""

    GENERATE = "generate"
    BLUR = "blur"
    PIXELATE = "pixelate"
    SOLID = "solid"


FALLBACK = Replacement.BLUR


@dataclass
class FaceRecord:
    """What happened to one detected face (for reports): its box and score, its landmarks (None when estimated from
    the box), how it was replaced (None: only detected) and why it was covered instead of generated."""

    box: list[float]
    score: float
    replacement: Replacement | None
    reason: str | None = None
    landmarks: list[list[float]] | None = None

    @staticmethod
    def of(detections: Detections, index: int, replacement: Replacement | None) -> FaceRecord:
        landmarks = None if detections.landmarks_estimated[index] else detections.landmarks[index].tolist()
        return FaceRecord([float(v) for v in detections.boxes[index]], float(detections.scores[index]), replacement,
                          landmarks=landmarks)

    def to_dict(self) -> dict:
        landmarks = None if self.landmarks is None else [[round(x, 2), round(y, 2)] for x, y in self.landmarks]
        return {"box": [round(v, 2) for v in self.box], "score": round(self.score, 4), "landmarks": landmarks,
                "replaced_by": self.replacement and self.replacement.value, "reason": self.reason}


@dataclass
class FrameResult:
    image: np.ndarray
    faces: list[FaceRecord] = field(default_factory=list)


def select_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise ValueError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but this PyTorch sees no CUDA GPU")
    return device


def default_batch_size(device: torch.device, dtype: torch.dtype | None, compiled: bool) -> int:
    """Faces per generator call, measured (benchmarks/NOTES.md): on the CPU, eager per-face time grows with the batch
    (the element-wise IConv work leaves the cache), fastest at 1 in fp32 and 2 in bf16; compiled, 8; on CUDA, 64."""
    if device.type == "cuda":
        return 64
    if compiled:
        return 8
    return 2 if dtype is not None else 1


# Compiled on the CPU, a batch filled to less than this fraction of ``batch_size`` runs eagerly: a padded compiled call
# of 8 faces costs about 3.5 faces of an NCHW eager generator (measured at 8 only; the channels_last eager path,
# ~40 % faster per face, is not measured against it: benchmarks/NOTES.md). Eager and compiled round differently
# (fp32: up to 2 levels; bf16: up to tens on a pixel, as any two bf16 paths), so a face's pixels depend a little on
# how many faces share its call.
EAGER_BELOW = 0.4


class FaceGenerator:
    """Runs the generator on batches of uint8 crops, in ``precision`` (autocast) and optionally ``torch.compile``d.

    Compiled, every batch is padded to ``batch_size`` so that one graph serves all calls (on the CPU, a batch less
    than ``EAGER_BELOW`` full runs eagerly instead); if compiling fails (no C++ compiler, an unsupported platform) the
    generator runs eagerly and a warning says so.
    """

    def __init__(self, generator: Generator, device: torch.device, batch_size: int | None = None,
                 precision: Precision = Precision.AUTO, compile: bool = False) -> None:
        self.device = device
        self.generator = generator.eval().to(device)
        self.config = generator.config
        self.dtype = autocast_dtype(precision, device)
        self.compiled = CompiledForward(self.generator, "generator") if compile else None
        self.batch_size = batch_size or default_batch_size(device, self.dtype, compile)

    def _eager(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The generator uncompiled; on the CPU in channels_last, where oneDNN's convolutions need no layout
        conversions (40 % less time per face in bf16, benchmarks/NOTES.md)."""
        if self.device.type == "cpu":
            inputs = tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in inputs)
        return self.generator(*inputs)

    def _run(self, *inputs: torch.Tensor) -> torch.Tensor:
        n = inputs[0].shape[0]
        if self.compiled is None or (self.device.type == "cpu" and n < EAGER_BELOW * self.batch_size):
            return self._eager(*inputs)
        padded = [torch.cat([t, t[:1].expand(self.batch_size - n, *t.shape[1:])]) for t in inputs]
        return self.compiled(*padded)[:n]

    @torch.no_grad()
    def __call__(self, crops: np.ndarray, certainty: np.ndarray, keypoints: np.ndarray, latents: torch.Tensor) -> np.ndarray:
        """crops uint8 (N,S,S,3), certainty float32 (N,S,S), keypoints float32 (N,K,2) in [0,1], latents (N,32,4,4)."""
        out = []
        for start in range(0, len(crops), self.batch_size):
            sl = slice(start, start + self.batch_size)
            image = torch.from_numpy(crops[sl]).to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1
            c = torch.from_numpy(certainty[sl]).to(self.device)[:, None]
            pose = torch.from_numpy(keypoints[sl]).to(self.device)
            z = latents[sl].to(self.device)
            with torch.autocast(self.device.type, dtype=self.dtype or torch.bfloat16, enabled=self.dtype is not None):
                generated = self._run(image * c, c, pose, z).float()
            pixels = ((generated + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
            out.append(pixels.permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, *crops.shape[1:]), np.uint8)


BLUR_SIDE = 32
PIXELATE_MIN_BLOCK = 3


def cover(image: np.ndarray, box: Sequence[float], method: Replacement) -> None:
    """Cover the box (grown by 10 %) in place with a strong blur, coarse pixelation or a solid fill."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(np.isfinite([x0, y0, x1, y1])) or x1 < x0 or y1 < y0:
        raise ValueError(f"cannot cover a non-finite or inside-out box {box}")
    mx, my = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
    ix0, iy0 = max(0, int(np.floor(x0 - mx))), max(0, int(np.floor(y0 - my)))
    ix1, iy1 = min(w, int(np.ceil(x1 + mx))), min(h, int(np.ceil(y1 + my)))
    if ix1 == ix0 < w:  # a box of no width covers the pixel column it lies on
        ix1 += 1
    if iy1 == iy0 < h:
        iy1 += 1
    if ix1 <= ix0 or iy1 <= iy0:
        return
    region = image[iy0:iy1, ix0:ix1]
    rh, rw = region.shape[:2]
    if method is Replacement.SOLID:
        region[:] = 0
    elif method is Replacement.PIXELATE:
        # about 8 blocks across the short side, but never blocks under PIXELATE_MIN_BLOCK px: a 1-px block would
        # leave a small face as it was
        block = max(PIXELATE_MIN_BLOCK, min(rh, rw) // 8)
        small = cv2.resize(region, (-(-rw // block), -(-rh // block)), interpolation=cv2.INTER_AREA)
        region[:] = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)
    else:
        # a Gaussian of sigma = 1/4 of the region, run on a copy at most BLUR_SIDE px a side (the same blur at a
        # fraction of the cost: a 400 px face takes ~50 ms at full size)
        scale = min(1.0, BLUR_SIDE / max(rh, rw))
        small = cv2.resize(region, (max(1, round(rw * scale)), max(1, round(rh * scale))), interpolation=cv2.INTER_AREA)
        sigma = max(2.0, 0.25 * max(rh, rw)) * scale
        blurred = cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE), (rw, rh),
                             interpolation=cv2.INTER_LINEAR)
        # a blur of a small region keeps its mean; also blend towards it so no detail survives
        region[:] = (0.3 * blurred + 0.7 * blurred.reshape(-1, 3).mean(0)).astype(np.uint8)


class FaceReplacer:
    """Replaces every detected face of a frame. One object owns detection results -> crops -> generator -> paste."""

    def __init__(
        self,
        face_generator: FaceGenerator | None,
        *,
        replacement: Replacement = Replacement.GENERATE,
        expand: float | None = None,
        truncation: float | None = None,
    ) -> None:
        if replacement is Replacement.GENERATE and (face_generator is None or expand is None):
            raise ValueError("generation needs a generator and the crop ratio it was trained with (expand)")
        self.face_generator = face_generator
        self.replacement = replacement
        self.expand = expand
        self.truncation = truncation

    def latent(self, seed: int | None) -> torch.Tensor:
        """z = 0 when ``seed`` is None (deterministic), else N(0,1) (truncated if asked) drawn from ``seed``."""
        shape = (self.face_generator.config.latent_channels, 4, 4) if self.face_generator else (32, 4, 4)
        if seed is None:
            return torch.zeros(shape)
        return seeded_latent(shape, seed, self.truncation)

    def anonymize(
        self, frames: Sequence[np.ndarray], detections: Sequence[Detections], seeds: Sequence[Sequence[int | None]] | None = None,
        tracks: Sequence[Sequence[int]] | None = None, keys: KeyFaces | None = None,
    ) -> list[FrameResult]:
        """Anonymize several frames at once (one generator batch for all their faces).

        frames: uint8 HxWx3 RGB; detections: one per frame; seeds: per frame, per face, a latent seed or None (z = 0).
        tracks and keys (consecutive video frames): per frame, per face, its track id, and the tracks' key faces,
        which a face carries instead of being generated while it holds still (``keyframes``).
        Returns new arrays; the inputs are not modified.
        """
        results = [FrameResult(frame.copy()) for frame in frames]
        jobs: list[tuple[int, int, FaceCrop]] = []
        carries: list[tuple[int, int, Carry]] = []
        new_keys: dict[tuple[int, int], KeyFace] = {}
        for i, det in enumerate(detections):
            frame = keys.advance() if keys is not None else 0
            for j in range(len(det.boxes)):
                record = FaceRecord.of(det, j, self.replacement)
                results[i].faces.append(record)
                if self.replacement is not Replacement.GENERATE:
                    continue
                turns = 0 if det.landmarks_estimated[j] else quarter_turns(det.landmarks[j])
                try:
                    crop = FaceCrop.from_box(det.boxes[j], self.face_generator.config.image_size, expand=self.expand,
                                             turns=turns)
                except ValueError as err:
                    record.replacement, record.reason = FALLBACK, str(err)
                    continue
                if keys is not None and tracks is not None:
                    carry = keys.reusable(int(tracks[i][j]), crop, det.landmarks[j], frame, frames[i])
                    if carry is not None:
                        carries.append((i, j, carry))
                        continue
                    crop = replace(crop, hole_margin=KEY_HOLE_MARGIN)
                    try:
                        context = crop.extract(frames[i])
                    except ValueError as err:  # the crop misses the frame: so does the face, covered as far as seen
                        record.replacement, record.reason = FALLBACK, str(err)
                        continue
                    new_keys[i, j] = KeyFace(crop, crop.to_crop(det.landmarks[j]), frame, context)
                    keys.remember(int(tracks[i][j]), new_keys[i, j])
                jobs.append((i, j, crop))

        generated, error = self._generate(frames, detections, seeds, jobs) if jobs else ({}, None)
        for (i, j), key in new_keys.items():
            key.pixels = generated[i, j][1] if (i, j) in generated else None
        if keys is not None:
            keys.forget_failed()
        for i, j, carry in carries:
            try:
                generated[i, j] = (carry.crop, carried(carry, carry.crop.extract(frames[i])))
            except ValueError as err:  # its key was not generated: covered like its key
                results[i].faces[j].reason = error or str(err)
        for i, result in enumerate(results):
            order = np.argsort([(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in result.faces], kind="stable")
            replaced = np.zeros(result.image.shape[:2], bool)  # boxes done so far: later feathered edges keep off
            for j in order:  # small faces first so that large ones win where they overlap
                record = result.faces[j]
                replace_face(result.image, record, generated.get((i, j)), error, replaced)
                x0, y0, x1, y1 = (max(0, int(v)) for v in np.nan_to_num(np.round(record.box)))
                replaced[y0:y1, x0:x1] = True
        return results

    def _generate(
        self,
        frames: Sequence[np.ndarray],
        detections: Sequence[Detections],
        seeds: Sequence[Sequence[int | None]] | None,
        jobs: list[tuple[int, int, FaceCrop]],
    ) -> tuple[dict[tuple[int, int], tuple[FaceCrop, np.ndarray]], str | None]:
        """Generate all jobs' faces in batches, in the exposure of a dark scene (``exposure``) and the tone of a
        black-and-white or toned photo (``monochrome``); on any error return no faces and the reason."""
        k = self.face_generator.config.num_keypoints
        try:
            crops = np.stack([crop.extract(frames[i]) for i, _, crop in jobs])
            certainty = np.stack([crop.certainty() for _, _, crop in jobs])
            # left/right pairs by their x in the (upright) crop: a sideways face's image order says nothing
            keypoints = canonical_order(np.stack([crop.to_crop(detections[i].landmarks[j]) for i, j, crop in jobs]))
            keypoints = keypoints[:, :k].reshape(len(jobs), k, 2)
            latents = torch.stack([self.latent(seeds[i][j] if seeds else None) for i, j, _ in jobs])
            gains = np.array([exposure_gain(crop, known) for crop, known in zip(crops, certainty)])
            pixels = self.face_generator(brightened(crops, gains), certainty, np.clip(keypoints, 0, 1), latents)
            pixels = darkened(pixels, crops, certainty, gains)
        except Exception as err:  # noqa: BLE001 - any failure must end in covered faces, never in visible ones
            log.warning("face generation failed (%s); covering %d face(s) instead", err, len(jobs))
            return {}, f"generation failed: {err}"
        tones = {i: photo_tone(frames[i]) for i, _, _ in jobs}
        toned = [tones[i] is not None and tones[i].fits(crops[n]) for n, (i, _, _) in enumerate(jobs)]
        return {(i, j): (crop, tones[i].apply(pixels[n]) if toned[n] else pixels[n])
                for n, (i, j, crop) in enumerate(jobs)}, None


def replace_face(
    image: np.ndarray,
    record: FaceRecord,
    generated: tuple[FaceCrop, np.ndarray] | None,
    error: str | None,
    replaced: np.ndarray,
) -> None:
    """Paste the face's generated crop into ``image``, or cover its box when there is none or pasting fails (the
    record says how and why); a box that cannot be covered blacks out the whole frame. ``replaced``: see
    ``FaceCrop.paste``."""
    if generated is not None:
        crop, pixels = generated
        try:
            crop.paste(image, pixels, crop.feather, replaced)
            return
        except Exception as err:  # noqa: BLE001 - a face that cannot be pasted is covered instead
            record.replacement, record.reason = FALLBACK, f"paste failed: {err}"
    if record.replacement is Replacement.GENERATE:
        record.replacement, record.reason = FALLBACK, record.reason or error
    try:
        cover(image, record.box, record.replacement)
    except ValueError as err:
        cover_frame(image)
        record.replacement, record.reason = Replacement.SOLID, f"{err}; whole frame covered"


def cover_frame(image: np.ndarray) -> None:
    """Last resort when faces cannot be located or covered one by one: the whole frame becomes solid black."""
    image[:] = 0
