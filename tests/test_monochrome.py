"""Black-and-white and toned photos get faces in their own tone; colour photos keep the generator's colours."""

import numpy as np
import torch

from deepanon.detection import Detections
from deepanon.monochrome import MAX_RESIDUAL, photo_tone
from deepanon.pipeline import FaceReplacer, FaceGenerator

BOX = np.array([[170, 60, 250, 170]], np.float32)


def grey(image: np.ndarray) -> np.ndarray:
    luma = np.round(image.astype(np.float64) @ [0.299, 0.587, 0.114])
    return np.repeat(luma[..., None], 3, axis=2).astype(np.uint8)


def sepia(image: np.ndarray) -> np.ndarray:
    luma = grey(image)[..., :1].astype(np.float64)
    return np.clip(np.round(luma * [1.0, 0.85, 0.62] + [20, 12, 4]), 0, 255).astype(np.uint8)


def anonymize(image: np.ndarray, generator) -> np.ndarray:
    faces = Detections.from_boxes(BOX, np.array([0.9], np.float32))
    return FaceReplacer(FaceGenerator(generator, torch.device("cpu")), expand=2.0).anonymize([image], [faces])[0].image


def test_colour_photos_are_not_monochrome(astronaut, grace_hopper):
    assert photo_tone(astronaut) is None and photo_tone(grace_hopper) is None


def test_grey_and_sepia_tones_are_fitted(astronaut):
    tone = photo_tone(grey(astronaut))
    np.testing.assert_allclose(tone.scale, [1, 1, 1], atol=0.01)
    np.testing.assert_allclose(tone.offset, [0, 0, 0], atol=1.0)
    tone = photo_tone(sepia(astronaut))
    np.testing.assert_allclose(tone.scale / tone.scale[0], [1.0, 0.85, 0.62], atol=0.01)  # per unit of the sepia's luma
    assert np.abs(tone.apply(sepia(astronaut)).astype(int) - sepia(astronaut)).mean() < MAX_RESIDUAL


def test_a_grey_photo_gets_a_grey_face(astronaut, tiny_generator):
    photo = grey(astronaut)
    out = anonymize(photo, tiny_generator)
    face = out[60:170, 170:250].astype(int)
    assert np.abs(face - photo[60:170, 170:250]).mean() > 10  # replaced
    assert np.abs(face[..., 0] - face[..., 1]).max() <= 1 and np.abs(face[..., 1] - face[..., 2]).max() <= 1


def test_a_colour_photo_keeps_the_generated_colours(astronaut, tiny_generator):
    face = anonymize(astronaut, tiny_generator)[60:170, 170:250].astype(int)
    assert np.abs(face[..., 0] - face[..., 2]).mean() > 3


def test_a_colour_face_in_a_mostly_grey_photo_keeps_its_colours(astronaut, tiny_generator):
    # a colour ID photo on a big grey page: the page is monochrome within the tolerance, the face's crop is not
    page = np.full((3000, 3000, 3), 235, np.uint8)
    page += np.random.default_rng(0).integers(0, 3, page.shape[:2], dtype=np.uint8)[..., None]
    page[1000:1512, 1000:1512] = grey(astronaut)
    page[1040:1200, 1150:1280] = astronaut[40:200, 150:280]  # the face and its surroundings in colour
    tone = photo_tone(page)
    assert tone is not None and not tone.fits(page[1040:1200, 1150:1280]) and tone.fits(page[1300:1400, 1300:1400])
    faces = Detections.from_boxes(BOX + 1000, np.array([0.9], np.float32))
    out = FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu")), expand=2.0).anonymize([page], [faces])[0].image
    face = out[1060:1170, 1170:1250].astype(int)
    assert np.abs(face[..., 0] - face[..., 2]).mean() > 3
