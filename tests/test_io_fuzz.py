"""Random and mutated image bytes through the image decoder: an InputError or pixels, never anything else."""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from deepanon.files import InputError
from deepanon.images import read_image


def encoded(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


SEEDS = {fmt: encoded(fmt) for fmt in ("JPEG", "PNG", "BMP", "WEBP", "TIFF")}


def check(tmp_path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        image = read_image(path)
    except InputError as err:
        assert str(path) in str(err)
        return
    assert image.pixels.dtype == np.uint8 and image.pixels.ndim == 3 and image.pixels.shape[2] == 3


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(sorted(SEEDS)), cuts=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
       truncate=st.integers(0, 10**6))
def test_mutated_images_never_crash(tmp_path, fmt, cuts, truncate):
    data = bytearray(SEEDS[fmt])
    for position, value in cuts:
        data[position % len(data)] = value
    data = bytes(data[: max(1, truncate % (len(data) + 1))])
    check(tmp_path, data, ".jpg" if fmt == "JPEG" else f".{fmt.lower()}")


@settings(max_examples=100, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048))
def test_random_bytes_never_crash(tmp_path, data):
    check(tmp_path, data, ".png")


def test_animated_gif_is_refused_with_a_clear_message(tmp_path):
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (0, 255)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(InputError, match="animated"):
        read_image(path)


def test_huge_image_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (12000, 11000)).save(path, optimize=False)
    with pytest.raises(InputError, match="12000x11000 is larger than"):
        read_image(path)
