"""Faces in dark scenes: the generator sees a brightened context and its face is darkened back to the scene's."""

import numpy as np
import pytest

from deepanon.detection import Detections
from deepanon.exposure import FLOOR, LEVEL_PERCENTILE, MAX_GAIN, brightened, darkened, exposure_gain
from deepanon.geometry import FaceCrop
from deepanon.monochrome import LUMA
from deepanon.pipeline import FaceReplacer

SIZE = 32
BOX = np.array([[60, 40, 100, 90]], np.float32)


def hole_certainty():
    certainty = np.ones((SIZE, SIZE), np.float32)
    certainty[8:24, 10:22] = 0
    return certainty


@pytest.mark.parametrize("level, gain", [(12.0, MAX_GAIN), (FLOOR / 2, 2.0), (FLOOR / 1.25, 1.25), (FLOOR, 1.0),
                                         (200.0, 1.0)])
def test_the_gain_brings_the_contexts_level_up_to_the_floor(level, gain):
    rng = np.random.default_rng(0)
    certainty = hole_certainty()
    crop = np.full((SIZE, SIZE, 3), 250, np.uint8)  # the hole is bright: only the context counts
    context = certainty == 1
    crop[context] = np.clip(rng.normal(level * 0.8, 3, (int(context.sum()), 1)), 0, 255).astype(np.uint8)
    luma = crop[context].astype(np.float64) @ LUMA
    # shift the context so that its percentile is the level asked for
    crop[context] = np.clip(crop[context].astype(np.float64) + level - np.percentile(luma, LEVEL_PERCENTILE), 0,
                            255).round().astype(np.uint8)
    measured = np.percentile(crop[context].astype(np.float64) @ LUMA, LEVEL_PERCENTILE)
    expected = min(max(FLOOR / measured, 1.0), MAX_GAIN)
    assert exposure_gain(crop, certainty) == pytest.approx(expected, rel=1e-4)
    assert expected == pytest.approx(gain, rel=0.03)


def test_darkened_restores_the_context_bit_exactly_and_divides_the_hole():
    rng = np.random.default_rng(1)
    crops = rng.integers(0, 30, (2, SIZE, SIZE, 3), dtype=np.uint8)
    certainty = np.stack([hole_certainty()] * 2)
    gains = np.array([4.0, 1.0])
    bright = brightened(crops, gains)
    assert np.array_equal(bright[0], crops[0].astype(np.int32) * 4) and np.array_equal(bright[1], crops[1])
    generated = bright.copy()
    generated[certainty == 0] = 200  # a generator that paints the hole one colour and keeps eq. 12
    out = darkened(generated, crops, certainty, gains)
    assert np.array_equal(out[certainty == 1], crops[certainty == 1])
    assert np.all(out[0][certainty[0] == 0] == 50) and np.all(out[1][certainty[1] == 0] == 200)


class FlatGenerator:
    """Paints every hole grey 160 and records the crops it was given."""

    def __init__(self):
        self.config = type("Config", (), {"image_size": SIZE, "num_keypoints": 0, "latent_channels": 4})()
        self.seen = []

    def __call__(self, crops, certainty, keypoints, latents):
        self.seen.append(crops.copy())
        out = crops.copy()
        out[certainty == 0] = 160
        return out


def anonymize(image):
    generator = FlatGenerator()
    faces = Detections.from_boxes(BOX, np.array([0.9], np.float32))
    return FaceReplacer(generator, expand=2.0).anonymize([image], [faces])[0].image, generator.seen[0][0]


def test_a_face_in_a_dark_scene_is_painted_as_dark_as_the_scene():
    dark = np.random.default_rng(2).integers(15, 31, (160, 200, 3), dtype=np.uint8)
    out, seen = anonymize(dark)
    crop = FaceCrop.from_box(BOX[0], SIZE, expand=2.0)
    context = crop.certainty() == 1

    def level(pixels):
        return np.percentile(pixels[context].astype(np.float64) @ LUMA, LEVEL_PERCENTILE)

    gain = FLOOR / level(crop.extract(dark))
    assert 2 < gain < MAX_GAIN
    assert level(seen) == pytest.approx(FLOOR, abs=1)  # the generator saw the context brought up to the floor
    face = out[50:80, 70:90].astype(float)
    assert np.abs(face - 160 / gain).max() <= 1  # the flat 160 divided by the gain
    assert np.array_equal(out[:14], dark[:14])  # outside the face's crop, untouched


def test_a_face_in_a_bright_scene_is_painted_as_generated(astronaut):
    image = np.ascontiguousarray(astronaut[:160, 100:300])
    out, seen = anonymize(image)
    assert np.array_equal(seen, FaceCrop.from_box(BOX[0], SIZE, expand=2.0).extract(image))  # not brightened
    assert np.all(out[50:80, 70:90] == 160)
