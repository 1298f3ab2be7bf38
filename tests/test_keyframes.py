"""Key-frame reuse: a track's generated face carried over the frames where it holds still, never a real pixel."""

from dataclasses import replace

import numpy as np
import pytest

from deepanon.detection import Detections
from deepanon.geometry import FaceCrop
from deepanon.keyframes import (KEY_HOLE_MARGIN, MAX_SURROUNDINGS_CHANGE, RING_PX, SETTLE_PX, Carry, KeyFace,
                                KeyFaces, carried, hole_box, shift_and_zoom)
from deepanon.pipeline import FaceReplacer, Replacement

SIZE = 32
LANDMARKS = np.array([[0.4, 0.4], [0.6, 0.4], [0.5, 0.5], [0.42, 0.6], [0.58, 0.6]], np.float32)
GREY = 120  # a flat frame's level: bright enough that no exposure gain applies
IMAGE = np.full((160, 200, 3), GREY, np.uint8)  # a frame whose surroundings of the face never change
CONTEXT = np.full((SIZE, SIZE, 3), GREY, np.uint8)  # a key crop of it


def crop_of(box, turns=0):
    return FaceCrop.from_box(np.array(box, np.float32), SIZE, expand=2.0, turns=turns)


class CountingGenerator:
    """A stand-in face generator: every call paints each hole one flat colour, a new one per face generated."""

    def __init__(self):
        self.config = type("Config", (), {"image_size": SIZE, "num_keypoints": 0, "latent_channels": 4})()
        self.faces = 0

    def __call__(self, crops, certainty, keypoints, latents):
        out = crops.copy()
        for n in range(len(crops)):
            self.faces += 1
            out[n][certainty[n] == 0] = (40 + 10 * self.faces, 255 - 10 * self.faces, 7)
        return out


def face_at(box):
    return Detections.from_boxes(np.array([box], np.float32), np.array([0.9], np.float32))


def in_image(crop, points):
    return np.asarray(crop.crop[:2], np.float32) + np.asarray(points, np.float32) * crop.side


def test_a_key_is_carried_while_a_shift_and_a_zoom_explain_the_face():
    keys = KeyFaces(hold=4, max_motion=0.02, max_scale=1.1)
    key_crop = crop_of([40, 40, 80, 90])
    key = KeyFace(key_crop, LANDMARKS, frame=0, context=CONTEXT, pixels=np.zeros((SIZE, SIZE, 3), np.uint8))
    keys.remember(7, key)
    same = crop_of([41, 40, 81, 90])  # moved 1 px: the same place in its own crop
    still = in_image(same, LANDMARKS)

    def carry_of(track, crop, landmarks, frame):
        found = keys.reusable(track, crop, landmarks, frame, IMAGE)
        if found is None:
            return None
        assert found.key is key
        return "own" if found.crop.crop == key_crop.crop and found.scale == 1 else "follows"

    assert carry_of(7, same, still + 0.5, 1) == "own"
    assert carry_of(7, same, still, 3) == "own"
    assert carry_of(7, same, still, 4) is None  # held for 4 frames: 0, 1, 2, 3
    assert carry_of(8, same, still, 1) is None  # another track
    assert carry_of(7, crop_of([41, 40, 81, 90], turns=1), still, 1) is None
    assert carry_of(7, crop_of([38, 38, 86, 98]), still, 1) is None  # 20 % larger
    # every landmark 2.5 px (of 100) to the right inside the same box: the face moved in its crop and is followed
    assert carry_of(7, same, still + [2.5, 0], 1) == "follows"
    # only the nose and mouth moved 5 px: the head turns, which a shift and a zoom do not explain
    turned = still.copy()
    turned[2:] += [5, 0]
    assert carry_of(7, same, turned, 1) is None
    # a box 8 % larger and 3 px to the right with its landmarks: a zoom, and its hole reaches past the key's by 1 px
    zoomed = crop_of([41.4, 38, 84.6, 92])
    assert carry_of(7, zoomed, in_image(zoomed, LANDMARKS), 1) == "follows"
    # a box 14 px lower over landmarks that stayed: its hole reaches 4.5 px of the 32 px crop past the key's
    assert keys.reusable(7, crop_of([40, 54, 80, 104]), still, 1, IMAGE) is None
    assert carry_of(7, crop_of([42, 40, 78, 90]), still, 1) == "own"  # narrower: inside the key's hole
    # a box 4 % taller, inside a key's hole grown as the video path grows it: carried in the key's own crop
    keys.remember(9, KeyFace(replace(key_crop, hole_margin=KEY_HOLE_MARGIN), LANDMARKS, 0, CONTEXT, key.pixels))
    carry = keys.reusable(9, crop_of([41, 39, 81, 91]), still, 1, IMAGE)
    assert carry.crop.crop == key_crop.crop and carry.scale == 1 and carry.crop.box == (41, 39, 81, 91)


def test_a_key_is_not_carried_where_its_surroundings_changed():
    key_crop = crop_of([40, 40, 80, 90])
    keys = KeyFaces(hold=4)
    keys.remember(5, KeyFace(key_crop, LANDMARKS, 0, CONTEXT, np.zeros((SIZE, SIZE, 3), np.uint8)))
    still = in_image(key_crop, LANDMARKS)
    x0, y0, x1, y1 = (round(v) for v in key_crop.box)
    ring = 12  # image px: RING_PX crop px are 6.25 px of this 100 px crop, plus the resampling's reach
    for change, carried_on in [(MAX_SURROUNDINGS_CHANGE - 2, True), (MAX_SURROUNDINGS_CHANGE + 2, False)]:
        image = IMAGE.copy()
        image[y0 - ring:y1 + ring, x0 - ring:x1 + ring] += np.uint8(change)  # around the face (and the face itself)
        image[y0:y1, x0:x1] = 0  # the real face may change at will: it is never looked at
        assert (keys.reusable(5, key_crop, still, 1, image) is not None) is carried_on, change
    # the crop's ring as measured: against a naive mean over the pixels within RING_PX of the hole
    carry = Carry(keys.keys[5], key_crop)
    current = key_crop.extract(image)
    hx0, hy0, hx1, hy1 = hole_box(key_crop)
    near = [(v, u) for v in range(SIZE) for u in range(SIZE)
            if not (hy0 <= v < hy1 and hx0 <= u < hx1)
            and hy0 - RING_PX <= v < hy1 + RING_PX and hx0 - RING_PX <= u < hx1 + RING_PX]
    naive = np.mean([np.abs(current[v, u].astype(int) - GREY).mean() for v, u in near])
    assert carry.surroundings_change(current) == pytest.approx(naive)


def test_a_shift_and_a_zoom_fit_the_landmarks_by_least_squares():
    points = np.random.default_rng(0).random((5, 2))
    scale, offset, residual = shift_and_zoom(points, 1.15 * points + [0.1, -0.05])
    assert scale == pytest.approx(1.15) and offset == pytest.approx([0.1, -0.05]) and residual < 1e-9
    target = points.copy()
    target[0] += [0.1, 0]
    scale, offset, residual = shift_and_zoom(points, target)
    # against the normal equations solved naively: x = (scale, offset_x, offset_y) minimising |A x - target|
    rows = [[px, 1, 0] for px, _ in points] + [[py, 0, 1] for _, py in points]
    solution = np.linalg.lstsq(np.array(rows), np.concatenate([target[:, 0], target[:, 1]]), rcond=None)[0]
    assert [scale, *offset] == pytest.approx(solution)
    assert residual == pytest.approx(np.linalg.norm(scale * points + offset - target, axis=1).max())


def test_old_keys_are_dropped_and_failed_ones_forgotten():
    keys = KeyFaces(hold=3)
    keys.remember(1, KeyFace(crop_of([0, 0, 10, 10]), LANDMARKS, frame=keys.advance(), context=CONTEXT))
    keys.remember(2, KeyFace(crop_of([0, 0, 10, 10]), LANDMARKS, frame=0, context=CONTEXT,
                             pixels=np.zeros((SIZE, SIZE, 3), np.uint8)))
    keys.forget_failed()
    assert list(keys.keys) == [2]
    keys.advance(), keys.advance()
    assert list(keys.keys) == [2]
    keys.advance()
    assert keys.keys == {}


def test_carried_pixels_show_the_keys_whole_hole_and_keep_the_current_surroundings():
    key_crop, crop = crop_of([40, 40, 80, 90]), crop_of([42, 40, 78, 90])
    key = KeyFace(key_crop, LANDMARKS, 0, CONTEXT, np.full((SIZE, SIZE, 3), 200, np.uint8))
    current = np.full((SIZE, SIZE, 3), 50, np.uint8)
    pixels = carried(Carry(key, replace(crop, crop=key_crop.crop)), current)
    hole, key_hole = crop.certainty() == 0, key_crop.certainty() == 0
    assert key_hole.sum() > hole.sum()  # the key's hole is wider: the face meets the surroundings where it was made to
    assert np.all(pixels[key_hole] == 200) and np.all(pixels[~key_hole] == 50)
    with pytest.raises(ValueError, match="not generated"):
        carried(Carry(KeyFace(key_crop, LANDMARKS, 0, CONTEXT), crop), current)


def test_a_followed_face_is_the_key_resampled_and_never_a_real_pixel_of_the_key_frame():
    size = 64
    key_crop = FaceCrop.from_box(np.array([40, 40, 80, 90], np.float32), size, expand=2.0)
    hole = key_crop.certainty() == 0
    # the key's generated hole holds values up to 100; the key frame's real pixels around it are 255
    pixels = np.full((size, size, 3), 255, np.uint8)
    pixels[hole] = np.random.default_rng(1).integers(0, 100, (int(hole.sum()), 3))
    key = KeyFace(key_crop, LANDMARKS, 0, np.zeros_like(pixels), pixels)
    crop = FaceCrop.from_box(np.array([44, 43, 87, 96], np.float32), size, expand=2.0)  # moved and 7 % larger
    scale, shift = 0.93, (1.7, -2.4)
    carry = Carry(key, crop, scale, shift)
    assert carry.reach() > 1  # the hole reaches past the key's: the band between is inpainted
    out = carried(carry, np.zeros((size, size, 3), np.uint8))
    current_hole = crop.certainty() == 0
    band = current_hole & ~carry.inside()
    assert band.sum() > size and out[current_hole].max() < 100
    # the band's pixels are a blend of the key's face (1-99) and the current pixels around the hole (0)
    assert 0 < out[band].mean() < out[current_hole & ~band].mean()
    # elsewhere against bilinear sampling written out, the key's hole clamped at its edges
    x0, y0, x1, y1 = hole_box(key_crop)
    for v, u in zip(*np.nonzero(current_hole & ~band)):
        x = min(max(scale * u + shift[0], x0), x1 - 1)
        y = min(max(scale * v + shift[1], y0), y1 - 1)
        xa, ya = int(np.floor(x)), int(np.floor(y))
        xb, yb = min(xa + 1, x1 - 1), min(ya + 1, y1 - 1)
        fx, fy = x - xa, y - ya
        expected = ((1 - fy) * ((1 - fx) * pixels[ya, xa] + fx * pixels[ya, xb])
                    + fy * ((1 - fx) * pixels[yb, xa] + fx * pixels[yb, xb]))
        assert np.abs(out[v, u] - expected).max() <= 1.5, (u, v)


def key_place(carry, points):
    """Where in the key's crop (pixels) ``carry`` samples for image ``points``, written out from the crops."""
    pixels = carry.crop.to_crop(points).astype(np.float64) * carry.crop.size - 0.5
    return carry.scale * pixels + np.asarray(carry.shift)


@pytest.mark.parametrize("turns", [0, 1])
def test_a_placement_seen_through_another_crop_samples_the_same_place_for_each_image_point(turns):
    key = KeyFace(crop_of([40, 40, 80, 90], turns), LANDMARKS, 0, CONTEXT)
    shown = Carry(key, crop_of([43, 41, 84, 92], turns), 0.97, (1.3, -0.8))
    other = crop_of([45, 44, 88, 97], turns)
    points = np.random.default_rng(2).uniform(40, 95, (50, 2))
    assert np.abs(key_place(shown.onto(other), points) - key_place(shown, points)).max() < 1e-3


def test_a_followed_face_stays_where_it_was_shown_while_the_fit_moves_it_by_at_most_settle_px():
    keys = KeyFaces(hold=10, max_motion=0.02, max_scale=1.1)
    key_crop = crop_of([40, 40, 80, 90])
    keys.remember(3, KeyFace(key_crop, LANDMARKS, 0, CONTEXT, np.zeros((SIZE, SIZE, 3), np.uint8)))
    still = in_image(key_crop, LANDMARKS)
    first = keys.reusable(3, crop_of([43, 40, 83, 90]), still + [3, 0], 1, IMAGE)  # moved 3 px: followed
    assert first.scale == pytest.approx(1) and first.crop.crop != key_crop.crop
    points = still + [3, 0]
    for frame, (dx, box) in enumerate([(3 + 0.8 * SETTLE_PX, [43, 40, 83, 90]), (3.4, [44, 40, 84, 90])], start=2):
        held = keys.reusable(3, crop_of(box), still + [dx, 0], frame, IMAGE)  # the fit moves it by under SETTLE_PX
        assert held.crop.crop == crop_of(box).crop
        assert np.abs(key_place(held, points) - key_place(first, points)).max() < 1e-3
    moved = keys.reusable(3, crop_of([45, 40, 85, 90]), still + [5, 0], 4, IMAGE)  # 2 px on: follows again
    assert np.abs(key_place(moved, still + [5, 0]) - key_place(first, points)).max() < 0.3


def still_frame(t):
    """A flat frame with noise, another on each frame, only in rows 110-119: the faces' surroundings never change."""
    frame = np.full((120, 160, 3), GREY, np.uint8)
    frame[110:] = np.random.default_rng(t).integers(0, 255, (10, 160, 3), dtype=np.uint8)
    return frame


def run(boxes, hold):
    generator = CountingGenerator()
    replacer = FaceReplacer(generator, expand=2.0)
    keys = KeyFaces(hold) if hold > 1 else None
    frames = [still_frame(t) for t in range(len(boxes))]
    outputs = []
    for start in range(0, len(frames), 4):  # batches of 4 frames, as the video path sends them
        batch = slice(start, start + 4)
        detections = [face_at(b) for b in boxes[batch]]
        results = replacer.anonymize(frames[batch], detections, None, [[0]] * len(detections), keys)
        outputs += results
    return generator, frames, outputs


def test_a_still_face_is_generated_once_per_hold_and_every_frame_is_covered():
    boxes = [[50 + t % 2, 30, 90 + t % 2, 80] for t in range(10)]  # a 1 px jitter
    generator, frames, outputs = run(boxes, hold=4)
    assert generator.faces == 3  # frames 0, 4 and 8
    generator_every, _, _ = run(boxes, hold=1)
    assert generator_every.faces == 10
    for t, (frame, result) in enumerate(zip(frames, outputs)):
        assert result.faces[0].replacement is Replacement.GENERATE and result.faces[0].reason is None
        x0, y0, x1, y1 = boxes[t]
        painted = result.image[y0 + 3 : y1 - 3, x0 + 3 : x1 - 3].reshape(-1, 3)  # the edge mixes in resampling
        key_colour = (40 + 10 * (t // 4 + 1), 255 - 10 * (t // 4 + 1), 7)
        assert np.all(painted == key_colour), t  # the key's face, no real pixel
        outside = np.ones(frame.shape[:2], bool)
        outside[y0 - 5 : y1 + 5, x0 - 5 : x1 + 5] = False  # the box and its feathered edge (4 px)
        assert np.array_equal(result.image[outside], frame[outside]), t  # bit-exact elsewhere


def test_a_face_whose_box_jitters_inside_the_keys_hole_is_shown_unmoved():
    class NoiseGenerator(CountingGenerator):
        """Paints each hole with noise: a carried face shifted by a pixel would not match its key."""

        def __call__(self, crops, certainty, keypoints, latents):
            out = crops.copy()
            for n in range(len(crops)):
                self.faces += 1
                hole = certainty[n] == 0
                out[n][hole] = np.random.default_rng(self.faces).integers(0, 255, (int(hole.sum()), 3))
            return out

    generator, keys = NoiseGenerator(), KeyFaces(4)
    replacer = FaceReplacer(generator, expand=2.0)
    boxes = [[50 + t % 2, 30 + t % 2, 90 + t % 2, 80] for t in range(4)]  # 1 px jitter, inside the key's grown hole
    frames = [still_frame(t) for t in range(4)]
    results = replacer.anonymize(frames, [face_at(b) for b in boxes], None, [[0]] * 4, keys)
    assert generator.faces == 1
    inner = (slice(35, 75), slice(55, 85))  # inside every frame's box, clear of the feathered edge
    for result in results[1:]:
        assert np.array_equal(result.image[inner], results[0].image[inner])


def test_a_face_that_turns_is_generated_on_every_frame_and_one_that_slides_is_carried():
    def turning(t):  # the nose and mouth move 5 px a frame (of a 100 px crop) inside a still box: the head turns
        points = np.array([[60, 45], [80, 45], [70 + 5 * t, 55], [62 + 5 * t, 65], [78 + 5 * t, 65]], np.float32)
        return Detections(np.array([[50, 30, 90, 80]], np.float32), np.array([0.9], np.float32), points[None],
                          np.array([False]))

    generator, keys = CountingGenerator(), KeyFaces(4)
    replacer = FaceReplacer(generator, expand=2.0)
    frames = [np.full((120, 160, 3), 90, np.uint8)] * 6
    replacer.anonymize(frames, [turning(t) for t in range(6)], None, [[0]] * 6, keys)
    assert generator.faces == 6
    sliding, _, _ = run([[20 + 8 * t, 30, 60 + 8 * t, 80] for t in range(8)], hold=4)
    assert sliding.faces == 2  # the crop follows the box: the face moves with the head


def test_a_face_whose_crop_misses_the_frame_is_covered_and_the_others_carried():
    generator, keys = CountingGenerator(), KeyFaces(4)
    replacer = FaceReplacer(generator, expand=2.0)
    boxes = np.array([[50, 30, 90, 80], [300, 30, 350, 80]], np.float32)  # the second one's crop starts at x 275
    detections = Detections.from_boxes(boxes, np.array([0.9, 0.9], np.float32))
    frames = [still_frame(t) for t in range(3)]
    results = replacer.anonymize(frames, [detections] * 3, None, [[0, 1]] * 3, keys)
    assert generator.faces == 1  # the first face, carried to frames 1 and 2
    for result in results:
        assert result.faces[0].replacement is Replacement.GENERATE
        assert result.faces[1].replacement is Replacement.BLUR and "does not overlap" in result.faces[1].reason


def test_a_failed_key_covers_its_carried_frames_and_the_next_batch_generates_again():
    class FailingOnce(CountingGenerator):
        def __call__(self, *args):
            if self.faces == 0:
                self.faces = -1
                raise RuntimeError("out of memory")
            return super().__call__(*args)

    generator = FailingOnce()
    replacer, keys = FaceReplacer(generator, expand=2.0), KeyFaces(8)
    frames = [np.full((120, 160, 3), 90, np.uint8)] * 8
    first = replacer.anonymize(frames[:4], [face_at([50, 30, 90, 80])] * 4, None, [[0]] * 4, keys)
    assert all(r.faces[0].replacement is Replacement.BLUR and "out of memory" in r.faces[0].reason for r in first)
    second = replacer.anonymize(frames[4:], [face_at([50, 30, 90, 80])] * 4, None, [[0]] * 4, keys)
    assert all(r.faces[0].replacement is Replacement.GENERATE for r in second) and generator.faces == 0
