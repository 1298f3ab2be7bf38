"""Crop and paste geometry on hand-made boxes."""

import numpy as np
import pytest

from deepanon.geometry import FaceCrop


def test_square_crop_centred_on_the_box():
    crop = FaceCrop.from_box(np.array([40, 20, 80, 100]), size=128, expand=2.0)
    assert crop.crop == (-20, -20, 140, 140)  # side 2 × 80, centre (60, 60)
    assert crop.side == 160 and crop.scale == pytest.approx(0.8)
    # hole = box in crop pixels: ((40+20)·0.8, (20+20)·0.8, (80+20)·0.8, (100+20)·0.8)
    assert crop.hole_bounds() == (48, 32, 80, 96)
    c = crop.certainty()
    assert c.dtype == np.float32 and c.shape == (128, 128)
    assert c[32:96, 48:80].max() == 0 and c.sum() == 128 * 128 - 64 * 32


def test_keypoints_map_into_the_crop():
    crop = FaceCrop.from_box(np.array([40, 20, 80, 100]), expand=2.0)
    np.testing.assert_allclose(crop.to_crop(np.array([[60, 60], [-20, -20], [140, 140]])), [[0.5, 0.5], [0, 0], [1, 1]])


def test_border_face_is_padded_not_shifted():
    image = np.zeros((100, 100, 3), np.uint8)
    image[:, :50] = 200
    crop = FaceCrop.from_box(np.array([0, 0, 20, 20]), size=64, expand=2.0)
    assert crop.crop == (-10, -10, 30, 30)  # the face stays centred: the crop leaves the image
    patch = crop.extract(image)
    assert patch.shape == (64, 64, 3)
    assert (patch == 200).all()  # edge replication of the image's left part, no black border


def test_box_larger_than_the_image():
    image = np.full((10, 12, 3), 7, np.uint8)
    crop = FaceCrop.from_box(np.array([-5, -5, 20, 20]), size=32, expand=2.0)
    assert (crop.extract(image) == 7).all()
    out = image.copy()
    crop.paste(out, np.full((32, 32, 3), 99, np.uint8), feather=2)
    assert (out == 99).all()


@pytest.mark.parametrize("box", [[-60, 10, -20, 50], [10, -60, 50, -20], [250, 10, 300, 60], [10, 200, 60, 250]])
def test_a_crop_that_misses_the_image_on_any_side_is_refused(box):
    crop = FaceCrop.from_box(np.array(box, np.float32), size=32, expand=1.5)
    with pytest.raises(ValueError, match="does not overlap"):
        crop.extract(np.zeros((100, 120, 3), np.uint8))


@pytest.mark.parametrize("box", [[10, 10, 10.5, 30], [np.nan, 0, 10, 10], [20, 20, 10, 10]])
def test_degenerate_boxes_are_refused(box):
    with pytest.raises(ValueError, match="degenerate"):
        FaceCrop.from_box(np.array(box, np.float32), expand=2.0)


def test_paste_replaces_the_whole_box_and_nothing_beyond_the_feather():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    box = np.array([100.3, 50.7, 160.2, 130.9])
    crop = FaceCrop.from_box(box, size=128, expand=2.0)
    out = image.copy()
    feather = crop.feather
    crop.paste(out, np.full((128, 128, 3), 255, np.uint8), feather)
    # every pixel that touches the box is fully replaced
    assert (out[50:131, 100:161] == 255).all()
    # outside box + feather nothing changed, bit for bit
    x0, y0, x1, y1 = crop.paste_region(image.shape, feather)
    mask = np.ones(image.shape[:2], bool)
    mask[y0:y1, x0:x1] = False
    assert np.array_equal(out[mask], image[mask])
    # the feather blends: values strictly between the original and 255 just outside the box
    ring = out[90, 163].astype(int)
    assert (ring >= image[90, 163]).all() and (ring <= 255).all()
    assert x1 - x0 <= (160.2 - 100.3) + 2 * feather + 2


def test_paste_is_the_feathered_blend_of_the_bilinear_sample():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    generated = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    crop = FaceCrop.from_box(np.array([40.4, 20.2, 75.9, 61.3]), size=64, expand=1.5)
    out = image.copy()
    crop.paste(out, generated, crop.feather)
    region = crop.paste_region(image.shape, crop.feather)
    alpha = crop.blend_weights(region, crop.feather)
    x0, y0 = region[:2]
    for y, x in [(y0 + dy, x0 + dx) for dy in range(0, alpha.shape[0], 5) for dx in range(0, alpha.shape[1], 5)]:
        # the crop pixel under this image pixel's centre, sampled bilinearly by hand
        u, v = (x + 0.5 - crop.crop[0]) * crop.scale - 0.5, (y + 0.5 - crop.crop[1]) * crop.scale - 0.5
        u0, v0 = int(np.floor(u)), int(np.floor(v))
        fu, fv = u - u0, v - v0
        px = [generated[np.clip(v0 + j, 0, 63), np.clip(u0 + i, 0, 63)].astype(float) for j in (0, 1) for i in (0, 1)]
        sample = (1 - fv) * ((1 - fu) * px[0] + fu * px[1]) + fv * ((1 - fu) * px[2] + fu * px[3])
        a = alpha[y - y0, x - x0]
        expected = a * sample + (1 - a) * image[y, x]
        assert np.abs(out[y, x] - expected).max() <= 1.0  # OpenCV's 1/32 px fixed point and uint8 rounding


def test_paste_round_trip_of_an_unchanged_crop_is_close():
    yy, xx = np.mgrid[0:240, 0:320]
    image = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)
    crop = FaceCrop.from_box(np.array([100, 60, 180, 160]), size=128, expand=2.0)
    out = image.copy()
    crop.paste(out, crop.extract(image), crop.feather)
    diff = np.abs(out.astype(int) - image.astype(int))
    assert diff.mean() < 2.0  # resampling error only


def test_feather_stays_inside_the_crop_margin():
    wide = FaceCrop.from_box(np.array([0, 0, 100, 100]), expand=2.0)
    assert wide.feather == pytest.approx(10.0)
    tight = FaceCrop.from_box(np.array([0, 0, 100, 100]), expand=1.1)
    assert tight.feather == pytest.approx(5.0)  # crop (-5, -5, 105, 105): 5 px margin
    assert FaceCrop.from_box(np.array([0, 0, 4, 4]), expand=1.0).feather == 1.0
