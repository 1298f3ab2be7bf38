"""Image codecs: decode any common image to RGB uint8 in its displayed orientation, write it back like the input.

Errors are ``InputError`` with a one-line message; outputs appear only complete (``files.atomic_write``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from deepanon.files import InputError, atomic_write

# single-channel modes beyond 8-bit grey: scaled to 8 bits by ``to_uint8``
DEEP_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".avif"}
MAX_PIXELS = 120_000_000  # 10000 × 12000; larger images are refused rather than exhausting memory
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# EXIF tags that --keep-metadata still drops: they can hold a preview picture of the original face (camera makers
# put JPEG previews in the MakerNote; XMP can carry thumbnails; PrintIM is opaque). IFD1 (the thumbnail) is never
# written by Pillow.
EXIF_IFD = 0x8769
OPAQUE_EXIF_TAGS = {EXIF_IFD: (0x927C,), None: (0x02BC, 0xC4A5)}  # MakerNote in the Exif IFD; XMP, PrintIM in IFD0



@dataclass
class LoadedImage:
    """Pixels (uint8 HxWx3 RGB, EXIF orientation applied) plus what is needed to write a like-for-like output."""

    pixels: np.ndarray
    alpha: np.ndarray | None
    exif: bytes | None
    format: str | None
    icc_profile: bytes | None = None
    grayscale: bool = False  # written back as grayscale (not 3× the size as RGB)
    lossless: bool = False  # a lossless WebP: written back lossless


def read_image(path: Path) -> LoadedImage:
    """Decode ``path``; grayscale, palette, 16-bit, float, CMYK and alpha inputs become RGB (alpha kept aside).

    A JPEG with extra pictures inside (MPO: a phone's depth or gain map, a stereo pair) is read as its primary picture;
    animations and multi-page files are refused.
    """
    try:
        with warnings.catch_warnings():
            # Pillow warns on big images (refused below with a message) and on corrupt EXIF (ignored): not user news
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise InputError(f"{path}: {im.width}x{im.height} is larger than the {MAX_PIXELS:,}-pixel limit")
                frames = getattr(im, "n_frames", 1)
                if frames > 1 and im.format != "MPO":
                    kind = "multi-page images" if im.format == "TIFF" else "animated images"
                    advice = "save the page to anonymize as its own file" if im.format == "TIFF" else "convert to a video"
                    raise InputError(f"{path}: {kind} ({frames} frames) are not supported; {advice}")
                im.load()
                fmt = im.format
                grayscale = im.mode in ("L", "LA", *DEEP_GRAY_MODES)
                lossless = fmt == "WEBP" and webp_is_lossless(path)
                exif = im.info.get("exif")
                icc_profile = im.info.get("icc_profile")
                im = ImageOps.exif_transpose(im)
    except InputError:
        raise
    except Image.DecompressionBombError as err:
        raise InputError(f"{path}: declares more than twice the {MAX_PIXELS:,}-pixel limit (a decompression bomb?); "
                         "not decoded") from err
    except Exception as err:  # noqa: BLE001 - a corrupt file can make any decoder raise anything; it is one bad input
        raise InputError(f"{path}: not a readable image ({type(err).__name__}: {err})") from err
    alpha = None
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        alpha = np.asarray(rgba)[..., 3].copy()
        im = rgba.convert("RGB")
    elif im.mode in DEEP_GRAY_MODES:
        im = Image.fromarray(to_uint8(np.asarray(im), im.mode)).convert("RGB")
    else:
        im = im.convert("RGB")
    pixels = np.ascontiguousarray(np.asarray(im))
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise InputError(f"{path}: empty image")
    return LoadedImage(pixels, alpha, exif, fmt, icc_profile, grayscale, lossless)


def webp_is_lossless(path: Path) -> bool:
    """Whether the WebP file's image chunk is VP8L (lossless) rather than VP8 (lossy), read from its RIFF chunks."""
    with open(path, "rb") as f:
        if f.read(12)[8:] != b"WEBP":
            return False
        while header := f.read(8):
            if len(header) < 8:
                return False
            fourcc, size = header[:4], int.from_bytes(header[4:], "little")
            if fourcc in (b"VP8L", b"VP8 "):
                return fourcc == b"VP8L"
            f.seek(size + size % 2, os.SEEK_CUR)
    return False


def to_uint8(array: np.ndarray, mode: str) -> np.ndarray:
    """8-bit values of a 16-bit (full range 65535, however dark the picture), 32-bit integer (65535 when any value
    exceeds 255, else 255) or float (1.0, or the maximum when it exceeds 1) single-channel image."""
    values = array.astype(np.float64)
    if mode.startswith("I;16"):
        peak = 65535.0
    elif mode == "I":
        peak = 65535.0 if values.max() > 255 else 255.0
    else:
        finite = values[np.isfinite(values)]
        peak = max(1.0, float(finite.max())) if finite.size else 1.0
        values = np.nan_to_num(values, nan=0.0, posinf=peak, neginf=0.0)
    return np.clip(values / peak * 255 + 0.5, 0, 255).astype(np.uint8)


def output_format(path: Path) -> str:
    """Pillow's format for the output name ``path``; ``InputError`` when the suffix names none."""
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        suffix = Path(path).suffix
        raise InputError(f"{path}: cannot write an image named {f'*{suffix}' if suffix else 'without a suffix'}; "
                         f"use one of {', '.join(sorted(IMAGE_SUFFIXES))}")
    return fmt


def write_image(path: Path, pixels: np.ndarray, like: LoadedImage | None = None, keep_metadata: bool = False) -> None:
    """Write RGB uint8 pixels (with the input's alpha, if any) atomically; metadata is dropped unless kept."""
    fmt = output_format(path)
    im = Image.fromarray(pixels)
    if like is not None and like.grayscale:
        im = im.convert("L")
    if like is not None and like.alpha is not None and fmt in {"PNG", "WEBP", "TIFF", "GIF"}:
        im.putalpha(Image.fromarray(like.alpha))
    options: dict = {"quality": 95, "subsampling": 0} if fmt == "JPEG" else {}
    if fmt == "WEBP" and like is not None and like.lossless:
        options["lossless"] = True
    if like is not None and like.icc_profile and fmt in {"JPEG", "PNG", "TIFF", "WEBP"} and (
            like.icc_profile[16:20] == (b"GRAY" if im.mode.startswith("L") else b"RGB ")):
        # colours, not identity: kept so wide-gamut photos keep their look (a CMYK input's profile does not fit)
        options["icc_profile"] = like.icc_profile
    if keep_metadata and like is not None and like.exif:
        options["exif"] = kept_exif(like.exif)
    atomic_write(path, lambda tmp: im.save(tmp, format=fmt, **options))


def kept_exif(raw: bytes) -> bytes:
    """The EXIF that --keep-metadata writes: everything but the tags that can hide a picture of the face, with the
    orientation reset (the pixels are already upright)."""
    exif = Image.Exif()
    exif.load(raw)
    exif[0x0112] = 1
    for ifd, tags in OPAQUE_EXIF_TAGS.items():
        block = exif if ifd is None else exif.get_ifd(ifd)
        for tag in tags:
            block.pop(tag, None)
    return exif.tobytes()
