"""Still-image decoding and writing: odd pixel formats, pictures inside files, what --keep-metadata keeps."""

import io
import re

import numpy as np
import pytest
from PIL import Image, ImageCms

from deepanon.files import InputError
from deepanon.images import read_image, write_image


def test_dark_16_bit_stays_dark_and_full_range_maps_to_8_bit(tmp_path):
    ramp = np.arange(256, dtype=np.uint16).reshape(16, 16)
    Image.fromarray(ramp).save(tmp_path / "dark.png")  # a 16-bit picture that only uses 0-255 of 0-65535
    Image.fromarray(ramp * 257).save(tmp_path / "full.png")
    dark, full = read_image(tmp_path / "dark.png").pixels, read_image(tmp_path / "full.png").pixels
    assert dark.max() == 1  # 255 / 65535 of full scale, not stretched to white
    assert np.array_equal(full[..., 0], ramp.astype(np.uint8))


def test_float_image_in_0_1_is_scaled_to_8_bit(tmp_path):
    values = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(values, mode="F").save(tmp_path / "float.tif")
    pixels = read_image(tmp_path / "float.tif").pixels
    assert np.abs(pixels[..., 0].astype(int) - np.round(values * 255)).max() <= 1


def test_jpeg_with_a_second_picture_is_read_as_its_primary_one(tmp_path, astronaut):
    # MPO: what phones and cameras write when they add a depth map, gain map or stereo view to a JPEG
    second = Image.fromarray(np.zeros_like(astronaut))
    Image.fromarray(astronaut).save(tmp_path / "phone.jpg", format="MPO", save_all=True, append_images=[second], quality=95)
    pixels = read_image(tmp_path / "phone.jpg").pixels
    assert np.abs(pixels.astype(int) - astronaut).mean() < 3


def test_multi_page_tiff_is_refused_as_such(tmp_path):
    pages = [Image.new("RGB", (8, 8), (v, v, v)) for v in (0, 255)]
    pages[0].save(tmp_path / "scan.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(InputError, match="multi-page images .2 frames. are not supported; save the page"):
        read_image(tmp_path / "scan.tif")


def test_colour_profile_is_kept_even_without_metadata(tmp_path, astronaut):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(astronaut).save(tmp_path / "p3.jpg", icc_profile=profile)
    write_image(tmp_path / "out.png", astronaut, like=read_image(tmp_path / "p3.jpg"))
    with Image.open(tmp_path / "out.png") as out:
        assert out.info.get("icc_profile") == profile


def test_keep_metadata_drops_the_maker_note_that_can_hold_a_face_preview(tmp_path, astronaut):
    preview = io.BytesIO()
    Image.fromarray(astronaut[60:180, 170:260]).save(preview, format="JPEG")
    exif = Image.Exif()
    exif[0x010F] = "TestCamera"
    exif.get_ifd(0x8769)[0x927C] = b"Maker\x00" + preview.getvalue()
    Image.fromarray(astronaut).save(tmp_path / "camera.jpg", exif=exif.tobytes())
    assert preview.getvalue() in (tmp_path / "camera.jpg").read_bytes()
    write_image(tmp_path / "kept.jpg", astronaut, like=read_image(tmp_path / "camera.jpg"), keep_metadata=True)
    data = (tmp_path / "kept.jpg").read_bytes()
    assert preview.getvalue()[:200] not in data and data.count(b"\xff\xd8") == 1  # one picture in the file: ours
    with Image.open(tmp_path / "kept.jpg") as kept:
        assert kept.getexif()[0x010F] == "TestCamera"


def test_every_jpeg_name_gets_the_same_quality(tmp_path, astronaut):
    for name in ("a.jpg", "a.jfif", "a.jpe"):
        write_image(tmp_path / name, astronaut)
    tables = [Image.open(tmp_path / name).quantization for name in ("a.jpg", "a.jfif", "a.jpe")]
    assert tables[0] == tables[1] == tables[2]


def test_grayscale_lossless_webp_and_transparent_gif_are_written_like_their_source(tmp_path, astronaut):
    rgba = np.dstack([astronaut, np.where(np.arange(512)[:, None] < 256, 0, 255).repeat(512, 1).astype(np.uint8)])
    Image.fromarray(astronaut).convert("L").save(tmp_path / "gray.png")
    Image.fromarray(astronaut).save(tmp_path / "lossless.webp", lossless=True)
    Image.fromarray(astronaut).save(tmp_path / "lossy.webp", quality=80)
    Image.fromarray(rgba).save(tmp_path / "clear.gif")
    for name in ("gray.png", "lossless.webp", "lossy.webp", "clear.gif"):
        source = read_image(tmp_path / name)
        write_image(tmp_path / f"out_{name}", source.pixels, like=source)
    with Image.open(tmp_path / "out_gray.png") as out:
        assert out.mode == "L" and np.array_equal(np.asarray(out), np.asarray(Image.open(tmp_path / "gray.png")))
    with Image.open(tmp_path / "out_lossless.webp") as out:
        assert np.array_equal(np.asarray(out.convert("RGB")), astronaut)  # bit for bit, as the source was
    assert read_image(tmp_path / "lossless.webp").lossless and not read_image(tmp_path / "lossy.webp").lossless
    alpha = np.asarray(Image.open(tmp_path / "out_clear.gif").convert("RGBA"))[..., 3]
    assert (alpha[:256] == 0).all() and (alpha[256:] == 255).all()  # the transparent half stays transparent


def test_a_profile_for_another_colour_space_is_not_attached(tmp_path, astronaut):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cmyk = srgb[:16] + b"CMYK" + srgb[20:]  # what a CMYK JPEG carries; its pixels are written as RGB here
    Image.fromarray(astronaut).save(tmp_path / "print.jpg", icc_profile=cmyk)
    source = read_image(tmp_path / "print.jpg")
    assert source.icc_profile == cmyk
    write_image(tmp_path / "out.jpg", source.pixels, like=source)
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.info.get("icc_profile") is None


def forged_png(path, width, height):
    """A 1×1 PNG whose header claims ``width`` × ``height`` (the CRC fixed, so decoders trust the header)."""
    import struct
    import zlib

    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("side, message", [(11_000, "is larger than the 120,000,000-pixel limit"),
                                           (20_000, "a decompression bomb?); not decoded")])
def test_huge_and_bomb_images_get_our_own_one_line_message(tmp_path, side, message):
    with pytest.raises(InputError, match=re.escape(message)) as err:
        read_image(forged_png(tmp_path / "big.png", side, side))
    assert "\n" not in str(err.value) and "DOS attack" not in str(err.value)


def test_partial_files_finds_what_a_killed_atomic_write_leaves_and_nothing_else(tmp_path):
    from deepanon.files import partial_files

    target = tmp_path / "a [1].png"
    left = tmp_path / ".a [1].k3x9q.partial.png"
    for path in (left, tmp_path / "a [1].png", tmp_path / ".b.k3x9q.partial.png", tmp_path / ".a [1].k3x9q.partial.jpg"):
        path.write_bytes(b"x")
    assert partial_files(target) == [left]
