"""Photos turned sideways or upside down: faces found in every quarter turn, each painted in its own orientation."""

import numpy as np
import pytest
import torch

from deepanon.detection import Detections, create_detector
from deepanon.detection.compose import Alternating, Reoriented, Turned
from deepanon.geometry import FaceCrop, quarter_turns
from deepanon.pipeline import FaceReplacer, FaceGenerator

from tests.detection.test_tiling import WhiteRectangles, draw


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_turned_detector_maps_boxes_back(turns):
    image = draw(60, 90, [(10, 5, 40, 25)])  # a 30×20 'face', not square, off centre
    found = Turned(WhiteRectangles(), turns).detect(image)
    np.testing.assert_allclose(found.boxes, [[10, 5, 40, 25]])


class WideRectangles(WhiteRectangles):
    """Sees only the white rectangles wider than tall: 'upright faces'."""

    def _detect(self, image):
        found = super()._detect(image)
        wide = (found.boxes[:, 2] - found.boxes[:, 0]) > (found.boxes[:, 3] - found.boxes[:, 1])
        return Detections.from_boxes(found.boxes[wide], found.scores[wide])


def test_the_full_detector_runs_only_on_turns_where_the_probe_finds_more_than_upright():
    upright, probe = WideRectangles(), WideRectangles()
    sideways = draw(90, 120, [(10, 5, 30, 65), (50, 5, 70, 65)])  # two tall 'faces': upright finds none
    found = Reoriented(upright, probe, confident=0.5).detect(sideways)
    np.testing.assert_allclose(found.boxes[np.argsort(found.boxes[:, 0])], [[10, 5, 30, 65], [50, 5, 70, 65]])
    assert len(probe.inputs) == 3 and upright.inputs == [(90, 120), (120, 90), (120, 90)]  # itself, 90° and 270°

    upright, probe = WideRectangles(), WideRectangles()
    mixed = draw(90, 120, [(10, 5, 70, 25), (80, 5, 100, 65)])  # one wide, one tall: a tie, the probe's find is kept
    found = Reoriented(upright, probe, confident=0.5).detect(mixed)
    assert len(found) == 2 and upright.inputs == [(90, 120)]


def test_a_photo_with_enough_sure_upright_faces_is_not_searched_for_turns():
    """Scores are 0.9: two wide 'faces' settle (2, 0.9), so the tall one is not looked for; one wide face does not."""
    two_wide = draw(90, 160, [(10, 5, 60, 25), (70, 5, 120, 25), (130, 5, 150, 65)])
    upright, probe = WideRectangles(), WideRectangles()
    assert len(Reoriented(upright, probe, 0.5, settled=(2, 0.9)).detect(two_wide)) == 2 and probe.inputs == []
    assert len(Reoriented(upright, probe, 0.5, settled=(2, 0.95)).detect(two_wide)) == 3 and len(probe.inputs) == 3
    one_wide = draw(90, 160, [(10, 5, 60, 25), (130, 5, 150, 65)])
    upright, probe = WideRectangles(), WideRectangles()
    assert len(Reoriented(upright, probe, 0.5, settled=(2, 0.9)).detect(one_wide)) == 2 and len(probe.inputs) == 3


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_quarter_turns_of_a_face_turned_by_np_rot90(astronaut, turns):
    detector = create_detector(turns=True)
    found = detector.detect(np.ascontiguousarray(np.rot90(astronaut, turns)))
    assert len(found) == 1 and not found.landmarks_estimated[0]
    assert quarter_turns(found.landmarks[0]) == (4 - turns) % 4


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_turned_face_is_cut_upright_and_pasted_back_turned(astronaut, turns):
    box = np.array([176, 56, 273, 178], np.float32)
    upright = FaceCrop.from_box(box, 64, expand=1.25)
    turned_image = np.ascontiguousarray(np.rot90(astronaut, turns))
    corners = np.array([[176, 56], [273, 178]], np.float32)
    for _ in range(turns):  # np.rot90 maps (x, y) of a w-wide image to (y, w - x)
        corners = np.stack([corners[:, 1], astronaut.shape[1] - corners[:, 0]], 1)
    turned_box = np.concatenate([corners.min(0), corners.max(0)])
    turned = FaceCrop.from_box(turned_box, 64, expand=1.25, turns=(4 - turns) % 4)
    cut, expected = turned.extract(turned_image).astype(int), upright.extract(astronaut)
    # equal but for the crop's 1 px rounding in the other orientation; left turned, it would differ by ~10x that
    assert np.abs(cut - expected).mean() < 8 < 40 < np.abs(np.rot90(cut, turns) - expected).mean()
    np.testing.assert_array_equal(turned.certainty(), upright.certainty())
    eyes = np.array([[200, 100], [250, 100]], np.float32)
    turned_eyes = eyes
    for _ in range(turns):
        turned_eyes = np.stack([turned_eyes[:, 1], astronaut.shape[1] - turned_eyes[:, 0]], 1)
    np.testing.assert_allclose(turned.to_crop(turned_eyes), upright.to_crop(eyes), atol=0.02)
    painted = np.zeros((64, 64, 3), np.uint8)
    painted[:16] = 255  # a white forehead band: must land on the forehead in either orientation
    a, b = astronaut.copy(), turned_image.copy()
    upright.paste(a, painted, upright.feather)
    turned.paste(b, painted, turned.feather)
    assert np.abs(np.rot90(b, -turns).astype(int) - a).mean() < 1


def test_the_generator_sees_a_sideways_face_upright(astronaut, tiny_generator):
    seen = []

    class Recording(FaceGenerator):
        def __call__(self, crops, certainty, keypoints, latents):
            seen.append(keypoints.copy())
            return super().__call__(crops, certainty, keypoints, latents)

    anonymizer = FaceReplacer(Recording(tiny_generator, torch.device("cpu")), expand=1.25)
    sideways = np.ascontiguousarray(np.rot90(astronaut, 1))
    found = create_detector(turns=True).detect(sideways)
    result = anonymizer.anonymize([sideways], [found])[0]
    eyes_y, mouth_y = seen[0][0, :2, 1].mean(), seen[0][0, 3:5, 1].mean()
    assert mouth_y - eyes_y > 0.1  # in the crop the generator gets, the mouth is below the eyes
    assert seen[0][0, 0, 0] < seen[0][0, 1, 0] and seen[0][0, 3, 0] < seen[0][0, 4, 0]  # and left comes first
    x0, y0, x1, y1 = (int(v) for v in found.boxes[0])
    assert np.abs(result.image[y0:y1, x0:x1].astype(int) - sideways[y0:y1, x0:x1]).mean() > 10


def test_estimated_landmarks_are_taken_as_upright():
    det = Detections.from_boxes(np.array([[0, 0, 10, 10]], np.float32), np.array([0.9], np.float32))
    assert quarter_turns(det.landmarks[0]) == 0


def test_a_clip_is_searched_every_tenth_frame_and_the_frames_between_use_the_chosen_turns():
    upright, probe = WideRectangles(), WideRectangles()
    clip = Reoriented(upright, probe, confident=0.5).for_clip()
    sideways = draw(90, 120, [(10, 5, 30, 65)])
    found = [clip.detect(sideways) for _ in range(12)]
    assert all(len(f) == 1 for f in found)
    assert len(probe.inputs) == 6  # 3 turns on frames 1 and 11
    # frames 2-10 and 12: upright and the two turns that showed the face (90° and 270°), no probe
    assert len(upright.inputs) == 3 + 9 * 3 + 3 + 3
    reoriented = Reoriented(upright, probe, 0.5)
    first, second = reoriented.for_clip(), reoriented.for_clip()
    first.detect(sideways), second.detect(sideways)
    assert len(probe.inputs) == 6 + 3 + 3  # each clip starts with a search


def test_a_clip_whose_first_search_fails_still_finds_faces_upright_until_the_next():
    class FailingOnce(WideRectangles):
        def _detect(self, image):
            if not self.inputs:
                self.inputs.append(image.shape[:2])
                raise RuntimeError("out of memory")
            return super()._detect(image)

    clip = Reoriented(FailingOnce(), WideRectangles(), 0.5).for_clip()
    upright_face = draw(90, 120, [(10, 5, 70, 25)])
    with pytest.raises(RuntimeError):
        clip.detect(upright_face)
    assert all(len(clip.detect(upright_face)) == 1 for _ in range(9))


def test_a_clip_does_not_settle_while_its_last_search_found_turned_faces():
    """A clip turned sideways, then two sure upright faces join three sideways ones: the search on frame 11 still
    probes (settling would drop the three until frame 21)."""
    tall = [(130, 5, 145, 65), (150, 5, 165, 65), (170, 5, 185, 65)]
    sideways_only, mixed = draw(90, 200, tall), draw(90, 200, [(10, 5, 60, 25), (70, 5, 120, 25), *tall])
    upright, probe = WideRectangles(), WideRectangles()
    clip = Reoriented(upright, probe, 0.5, settled=(2, 0.9)).for_clip()
    found = [clip.detect(sideways_only if t < 10 else mixed) for t in range(16)]
    assert len(found[9]) == 3 and len(found[10]) == 5 and len(found[15]) == 5
    assert len(Reoriented(WideRectangles(), WideRectangles(), 0.5, settled=(2, 0.9)).detect(mixed)) == 2  # a photo


def test_a_clips_frames_between_searches_follow_the_full_detectors_own_clip_schedule():
    """An upright detector that alternates (full on every 3rd of its frames, a cheaper one between) keeps doing so on
    the frames between searches, upright and on the chosen turns alike; each search restarts it, and no run of
    cheap frames is longer than the tracker bridges."""
    from deepanon.detection.factory import CLIP_FULL_EVERY

    class Logged(WideRectangles):
        def __init__(self, log, mark):
            super().__init__()
            self.log, self.mark = log, mark

        def _detect(self, image):
            if image.shape[:2] == (90, 120):  # upright only: one letter per frame
                self.log.append(self.mark)
            return super()._detect(image)

    log = []
    full, cheap, probe = Logged(log, "F"), Logged(log, "c"), WideRectangles()
    clip = Reoriented(Alternating(full, cheap, 3), probe, confident=0.5).for_clip()
    sideways = draw(90, 120, [(10, 5, 30, 65)])
    assert all(len(clip.detect(sideways)) == 1 for _ in range(31))
    # the search on frame 1 runs the full detector upright, on 90° and on 270° (the turns it chooses); frames 2-10,
    # each upright, at 90° and at 270°: full on the 1st, 4th and 7th of them, cheap on the other 6
    assert "".join(log) == "FFccFccFcc" * 3 + "F"
    assert len(full.inputs) == 4 * (3 + 3 * 3) - 3 * 3 and len(cheap.inputs) == 3 * 6 * 3
    assert max(len(run) for run in "".join(log).split("F")) <= CLIP_FULL_EVERY - 1


def test_a_clip_alternates_the_full_detector_with_the_cheaper_one_within_the_trackers_gap():
    from deepanon.detection.factory import CLIP_FULL_EVERY
    from deepanon.tracking import FaceTracker

    full, between = WideRectangles(), WideRectangles()
    alternating = Alternating(full, between, every=3)
    image = draw(90, 120, [(10, 5, 70, 25)])
    assert len(alternating.detect(image)) == 1 and len(full.inputs) == 1  # a photo: the full detector
    clip = alternating.for_clip()
    for _ in range(7):
        clip.detect(image)
    assert len(full.inputs) == 1 + 3 and len(between.inputs) == 4  # frames 1, 4, 7 in full
    assert CLIP_FULL_EVERY - 1 <= FaceTracker().max_gap  # a face only the full detector sees stays bridged
    assert isinstance(create_detector("accurate"), Alternating) and not isinstance(create_detector("fast"), Alternating)
