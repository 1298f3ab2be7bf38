"""Still-image input and output: decode any common image to RGB uint8 in its displayed orientation, write atomically.

Errors are ``InputError`` with a one-line message; outputs appear only complete (temp file + rename).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
MAX_PIXELS = 120_000_000  # 10000 × 12000; larger images are refused rather than exhausting memory
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class InputError(RuntimeError):
    """An input cannot be processed; the message is one line meant for the user."""


@dataclass
class LoadedImage:
    """Pixels (uint8 HxWx3 RGB, EXIF orientation applied) plus what is needed to write a like-for-like output."""

    pixels: np.ndarray
    alpha: np.ndarray | None
    exif: bytes | None
    format: str | None


def read_image(path: Path) -> LoadedImage:
    """Decode ``path``; grayscale, palette, 16-bit, CMYK and alpha inputs become RGB (alpha kept aside)."""
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise InputError(f"{path}: {im.width}x{im.height} is larger than the {MAX_PIXELS:,}-pixel limit")
            if getattr(im, "n_frames", 1) > 1:
                raise InputError(f"{path}: animated images ({im.n_frames} frames) are not supported; convert to a video")
            im.load()
            fmt = im.format
            exif = im.info.get("exif")
            im = ImageOps.exif_transpose(im)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - a corrupt file can make any decoder raise anything; it is one bad input
        raise InputError(f"{path}: not a readable image ({type(err).__name__}: {err})") from err
    alpha = None
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        alpha = np.asarray(rgba)[..., 3].copy()
        im = rgba.convert("RGB")
    elif im.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        im = Image.fromarray(np.clip(array / peak * 255 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    else:
        im = im.convert("RGB")
    pixels = np.ascontiguousarray(np.asarray(im))
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise InputError(f"{path}: empty image")
    return LoadedImage(pixels, alpha, exif, fmt)


def publish(tmp: Path, path: Path) -> None:
    """Give a finished temporary file the usual permissions (0666 minus the umask; mkstemp makes 0600) and rename it
    onto ``path``."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temp_path)`` then rename onto ``path``; on any failure no file is left behind."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".partial{path.suffix}")
    os.close(fd)
    try:
        write(Path(tmp))
        publish(Path(tmp), path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_image(path: Path, pixels: np.ndarray, like: LoadedImage | None = None, keep_metadata: bool = False) -> None:
    """Write RGB uint8 pixels (with the input's alpha, if any) atomically; metadata is dropped unless kept."""
    im = Image.fromarray(pixels)
    if like is not None and like.alpha is not None and Path(path).suffix.lower() in {".png", ".webp", ".tif", ".tiff"}:
        im.putalpha(Image.fromarray(like.alpha))
    options: dict = {}
    suffix = Path(path).suffix.lower()
    if suffix in {".jpg", ".jpeg"}:
        options = {"quality": 95, "subsampling": 0}
    if keep_metadata and like is not None and like.exif:
        exif = Image.Exif()
        exif.load(like.exif)
        exif[0x0112] = 1  # pixels are already in display orientation
        options["exif"] = exif.tobytes()
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None:
        raise InputError(f"{path}: unknown output image format {suffix!r}")
    atomic_write(path, lambda tmp: im.save(tmp, format=fmt, **options))
