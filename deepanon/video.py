"""Video codecs (the only module that touches them): stream frames in, stream frames out, carry the audio over.

Frames are decoded and encoded by the ffmpeg binary that ships in imageio-ffmpeg, one frame at a time, so memory does
not grow with the video's length. The output is written to a temporary file and renamed only when complete.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from deepanon.files import InputError, atomic_write


# Output containers that hold the H.264 video and AAC audio written here (WebM and AVI do not: refused by name).
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}


@dataclass(frozen=True)
class VideoInfo:
    fps: Fraction
    size: tuple[int, int]  # (width, height)
    duration: float
    has_audio: bool
    pixel_aspect: Fraction = Fraction(1)  # width / height of one pixel (SAR): 128/117 for PAL-like QCIF, else 1
    variable_rate: bool = False  # the stream's average rate differs from its base rate ("tbr"): phone videos


# ffmpeg applies a phone video's rotation while decoding, and imageio-ffmpeg then warns that the frame size differs
# from the stored one; that is the intended upright size, so the warning is only noise for the user.
logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)

_PRINTED_RATE = re.compile(r", (\d+(?:\.\d+)?)(k?) (fps|tbr)")
_PIXEL_ASPECT = re.compile(r"\[SAR (\d+):(\d+) ")


def _ffmpeg_path(path: Path) -> str:
    """``path`` as ffmpeg must see it: absolute, so a name like ``subfile:x.mp4`` is not taken for a protocol."""
    return str(Path(path).absolute())


def _streams(path: Path) -> list[str]:
    """ffmpeg's stream lines for ``path`` ("Stream #0:0…: Video: h264 …, 176x144 [SAR 128:117 …], 29.97 fps, …")."""
    result = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", _ffmpeg_path(path)],
                            capture_output=True, text=True, check=False)
    return [line for line in result.stderr.splitlines() if line.lstrip().startswith("Stream #")]


def _printed_rates(stream: str) -> dict[str, float]:
    """The average ("fps") and base ("tbr") frame rates on the stream line, also in the forms that imageio-ffmpeg does
    not parse ("1k fps" = 1000); the ones printed."""
    return {match[3]: float(match[1]) * (1000 if match[2] else 1) for match in _PRINTED_RATE.finditer(stream)}


def _pixel_aspect(stream: str) -> Fraction:
    """The sample aspect ratio on the stream line; 1 when absent or unset (0:1)."""
    match = _PIXEL_ASPECT.search(stream)
    return Fraction(int(match[1]), int(match[2])) if match and int(match[1]) and int(match[2]) else Fraction(1)


def _open(path: Path, **params: list[str]) -> tuple[Iterator[bytes], dict]:
    """Start ffmpeg on ``path``: (frame reader, stream metadata); ``InputError`` when no video stream decodes."""
    try:
        reader = imageio_ffmpeg.read_frames(_ffmpeg_path(path), **params)
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration, KeyError, ValueError) as err:
        first = str(err).strip().splitlines()
        raise InputError(f"{path}: not a readable video ({first[-1] if first else type(err).__name__})") from err
    if not meta.get("size"):
        reader.close()
        raise InputError(f"{path}: no video stream")
    return reader, meta


def frame_rate(printed: float) -> Fraction:
    """The exact rate behind the one ffmpeg prints with two decimals (30000/1001 prints as 29.97, 24000/1001 as 23.98).

    A non-integer rate within that rounding of an NTSC rate n·1000/1001 is taken as that rate; any other rate as the
    nearest fraction with a denominator up to 100. Encoding at the printed 23.98 would drift 0.6 s an hour from the
    source's audio.
    """
    ntsc = Fraction(round(printed * 1.001) * 1000, 1001)
    if printed != round(printed) and abs(printed - ntsc) < 0.005:
        return ntsc
    return Fraction(printed).limit_denominator(100)


def probe(path: Path) -> VideoInfo:
    """Read the stream metadata; ``InputError`` when the file has no decodable video stream."""
    streams = _streams(path)
    stream = next((line for line in streams if " Video: " in line), "")
    if streams and not stream:
        audio_only = any(" Audio: " in line for line in streams)
        raise InputError(f"{path}: no video stream{' (audio only)' if audio_only else ''}")
    reader, meta = _open(path)
    reader.close()
    rates = _printed_rates(stream)
    printed = meta.get("fps") or rates.get("fps") or rates.get("tbr")
    if not printed:
        raise InputError(f"{path}: no frame rate")
    aspect = _pixel_aspect(stream)
    size, stored = tuple(meta["size"]), tuple(meta.get("source_size") or meta["size"])
    if size != stored and size == stored[::-1]:  # ffmpeg turned a 90° phone video upright: its pixels turned too
        aspect = 1 / aspect
    variable = len(rates) == 2 and rates["fps"] != rates["tbr"]
    return VideoInfo(frame_rate(float(printed)), size, float(meta.get("duration") or 0.0), "audio_codec" in meta,
                     aspect, variable)


def _time_params(start: float | None, end: float | None) -> tuple[list[str], list[str]]:
    before = ["-ss", f"{start:.3f}"] if start else []
    after = ["-t", f"{end - (start or 0.0):.3f}"] if end is not None else []
    return before, after


def read_frames(
    path: Path, start: float | None = None, end: float | None = None, fps: Fraction | None = None
) -> Iterator[np.ndarray]:
    """Yield uint8 HxWx3 RGB frames between ``start`` and ``end`` seconds, resampled to the constant rate ``fps`` if
    given (for variable-rate videos only: a constant-rate one is read frame for frame).

    A variable-frame-rate video (most phone videos) is resampled to ``fps`` by its timestamps, frames repeated or
    dropped, so that frame n is shown at n / fps as in the source: the writer encodes at that rate, and without this
    ffmpeg's own choice of rate (the stream's "tbr") stretches a 30-then-24 fps clip by 10 % against its audio.
    """
    before, after = _time_params(start, end)
    if fps is not None:
        after += ["-fps_mode", "cfr", "-r", f"{fps.numerator}/{fps.denominator}"]
    reader, meta = _open(path, input_params=before, output_params=after)
    w, h = meta["size"]
    try:
        for buffer in reader:
            yield np.frombuffer(buffer, np.uint8).reshape(h, w, 3)
    except RuntimeError as err:
        raise InputError(f"{path}: decoding failed ({str(err).strip().splitlines()[-1]})") from err
    finally:
        reader.close()


class VideoWriter:
    """Encode frames (H.264, yuv420p) to a temporary file; ``finish`` muxes the source's audio and renames."""

    def __init__(self, path: Path, info: VideoInfo, source: Path, start: float | None = None, end: float | None = None) -> None:
        self.path = Path(path)
        self.container = CONTAINERS.get(self.path.suffix.lower())
        if self.container is None:
            raise InputError(f"{path}: videos are written as H.264 + AAC, which {self.path.suffix or 'a name without a suffix'}"
                             f" cannot hold; name the output {', '.join(CONTAINERS)}")
        self.source = Path(source)
        self.info = info
        self.start, self.end = start, end
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=".video.mp4")
        os.close(fd)
        self.video_tmp = Path(tmp)
        aspect = info.pixel_aspect
        self.writer = imageio_ffmpeg.write_frames(
            _ffmpeg_path(self.video_tmp),
            info.size,
            fps=info.fps,
            quality=8,
            macro_block_size=1,
            # yuv420p needs even sizes: pad, never resample; keep the source's pixel shape (else a 9 % squeeze on QCIF)
            output_params=["-vf", f"pad=ceil(iw/2)*2:ceil(ih/2)*2,setsar=sar={aspect.numerator}/{aspect.denominator}:max=65535"],
            ffmpeg_log_level="error",
        )
        self.writer.send(None)
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        expected = (self.info.size[1], self.info.size[0], 3)
        if frame.dtype != np.uint8 or frame.shape != expected:
            raise ValueError(f"expected a uint8 frame of shape {expected}, got {frame.dtype} {frame.shape}")
        self.writer.send(np.ascontiguousarray(frame))
        self.frames += 1

    def finish(self) -> None:
        """Close the encoder, add the audio track (if the source has one) and move the result to ``path``."""
        self.writer.close()
        before, after = _time_params(self.start, self.end)
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", _ffmpeg_path(self.video_tmp)]
        if self.info.has_audio:
            cmd += [*before, "-i", _ffmpeg_path(self.source), *after, "-map", "0:v:0", "-map", "1:a?", "-c:a", "aac"]
        # nothing of the source's metadata: no global tags, no chapter titles, no stream titles ("Recorded by …")
        cmd += ["-map_metadata", "-1", "-map_metadata:s:a", "-1", "-map_chapters", "-1"]
        cmd += ["-c:v", "copy", "-movflags", "+faststart", "-f", self.container]

        def mux(tmp: Path) -> None:
            result = subprocess.run([*cmd, _ffmpeg_path(tmp)], capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise InputError(f"{self.path}: muxing failed ({result.stderr.strip().splitlines()[-1:]})")

        try:
            atomic_write(self.path, mux)
        finally:
            self.video_tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        """Stop the encoder and delete every temporary file; the output path is left untouched."""
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - the encoder may already be dead; cleanup must go on
            pass
        if self.video_tmp.exists():
            self.video_tmp.unlink()
