"""The anonymizer: every detected face replaced, nothing else touched, failures covered."""

import numpy as np
import pytest
import torch

from deepanon.detection import Detections
from deepanon.pipeline import Anonymizer, FaceGenerator, Replacement, cover

BOX = np.array([[170, 60, 250, 170]], np.float32)


def one_face(box=BOX) -> Detections:
    return Detections.from_boxes(box, np.array([0.9] * len(box), np.float32))


def changed_mask(a, b):
    return (a != b).any(-1)


def test_generated_face_replaces_the_box_and_leaves_the_rest_bit_identical(astronaut, tiny_generator):
    anonymizer = Anonymizer(FaceGenerator(tiny_generator, torch.device("cpu")))
    result = anonymizer.anonymize([astronaut], [one_face()])[0]
    assert result.faces[0].replacement is Replacement.GENERATE and result.faces[0].reason is None
    changed = changed_mask(result.image, astronaut)
    ys, xs = np.nonzero(changed)
    feather = 0.1 * 110
    assert xs.min() >= 170 - feather - 1 and xs.max() <= 250 + feather + 1
    assert ys.min() >= 60 - feather - 1 and ys.max() <= 170 + feather + 1
    assert changed[60:170, 170:250].mean() > 0.9
    diff = np.abs(result.image[60:170, 170:250].astype(int) - astronaut[60:170, 170:250].astype(int))
    assert diff.mean() > 20  # the face is really gone, not nudged
    assert np.array_equal(astronaut, astronaut.copy())  # input untouched (anonymize works on a copy)


def test_latent_seed_changes_the_face_and_z0_is_deterministic(astronaut, tiny_generator):
    anonymizer = Anonymizer(FaceGenerator(tiny_generator, torch.device("cpu")))
    a = anonymizer.anonymize([astronaut], [one_face()])[0].image
    b = anonymizer.anonymize([astronaut], [one_face()])[0].image
    c = anonymizer.anonymize([astronaut], [one_face()], [[7]])[0].image
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_generator_failure_covers_the_face_and_says_why(astronaut, tiny_generator):
    class Broken(FaceGenerator):
        def __call__(self, *args):
            raise RuntimeError("out of memory")

    anonymizer = Anonymizer(Broken(tiny_generator, torch.device("cpu")))
    result = anonymizer.anonymize([astronaut], [one_face()])[0]
    face = result.faces[0]
    assert face.replacement is Replacement.BLUR and "out of memory" in face.reason
    region = result.image[60:170, 170:250].astype(float)
    assert region.std(axis=(0, 1)).max() < 0.5 * astronaut[60:170, 170:250].std(axis=(0, 1)).max()


def test_degenerate_box_is_covered_and_good_faces_still_generated(astronaut, tiny_generator):
    boxes = np.array([[170, 60, 250, 170], [300, 300, 300.2, 340]], np.float32)
    result = Anonymizer(FaceGenerator(tiny_generator, torch.device("cpu"))).anonymize([astronaut], [one_face(boxes)])[0]
    assert [f.replacement for f in result.faces] == [Replacement.GENERATE, Replacement.BLUR]
    assert "degenerate" in result.faces[1].reason


@pytest.mark.parametrize("method", [Replacement.BLUR, Replacement.PIXELATE, Replacement.SOLID])
def test_cover_modes_change_only_the_grown_box(astronaut, method):
    image = astronaut.copy()
    cover(image, [170, 60, 250, 170], method)
    changed = changed_mask(image, astronaut)
    ys, xs = np.nonzero(changed)
    assert xs.min() >= 162 and xs.max() < 258 and ys.min() >= 49 and ys.max() < 181
    assert changed[60:170, 170:250].mean() > 0.8
    if method is Replacement.SOLID:
        assert (image[60:170, 170:250] == 0).all()


def test_frames_without_faces_pass_through_unchanged(astronaut, tiny_generator):
    result = Anonymizer(FaceGenerator(tiny_generator, torch.device("cpu"))).anonymize([astronaut], [Detections.empty()])[0]
    assert result.faces == [] and np.array_equal(result.image, astronaut)


def test_batch_over_frames_matches_one_by_one(astronaut, tiny_generator):
    anonymizer = Anonymizer(FaceGenerator(tiny_generator, torch.device("cpu"), batch_size=3))
    frames = [astronaut, astronaut[:, ::-1].copy(), astronaut]
    dets = [one_face(), one_face(np.array([[262, 60, 342, 170]], np.float32)), one_face()]
    together = anonymizer.anonymize(frames, dets)
    for frame, det, res in zip(frames, dets, together):
        assert np.array_equal(anonymizer.anonymize([frame], [det])[0].image, res.image)


def test_paste_failure_covers_the_face(astronaut, tiny_generator, monkeypatch):
    from deepanon.geometry import FaceCrop

    def broken(self, image, generated, feather):
        raise MemoryError("no room")

    monkeypatch.setattr(FaceCrop, "paste", broken)
    result = Anonymizer(FaceGenerator(tiny_generator, torch.device("cpu"))).anonymize([astronaut], [one_face()])[0]
    assert result.faces[0].replacement is Replacement.BLUR and "paste failed" in result.faces[0].reason
    assert (result.image[60:170, 170:250] != astronaut[60:170, 170:250]).any(-1).mean() > 0.8


def test_non_finite_box_blacks_out_the_frame(astronaut):
    det = Detections.from_boxes(np.array([[np.nan, 0, 10, 10]], np.float32), np.array([0.9], np.float32))
    result = Anonymizer(None, replacement=Replacement.BLUR).anonymize([astronaut], [det])[0]
    assert result.faces[0].replacement is Replacement.SOLID and "whole frame" in result.faces[0].reason
    assert result.image.max() == 0
