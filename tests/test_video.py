"""Video end to end with a stand-in detector: frame count, fps, audio, atomic output, fail-closed frames."""

import logging
from fractions import Fraction

import numpy as np
import pytest
import torch

from deepanon.api import Anonymizer, FaceFinder, frames_per_batch
from deepanon.files import InputError
from deepanon.pipeline import FaceReplacer, FaceGenerator
from deepanon.runner import Job, anonymize_video
from deepanon.video import frame_rate, probe, read_frames
from tests.conftest import FixedDetector, make_clip

FACE = [60, 30, 120, 110]


def using(detector, replacer):
    return Anonymizer.from_parts(FaceFinder(detector), replacer)


@pytest.fixture
def anonymizer(tiny_generator):
    return FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu")), expand=2.0)


def test_video_keeps_frames_fps_duration_and_audio(tmp_path, carphone_with_audio, anonymizer):
    out = tmp_path / "out.mp4"
    report = anonymize_video(Job(carphone_with_audio, out), using(FixedDetector([FACE]), anonymizer), batch_frames=7)
    source, result = probe(carphone_with_audio), probe(out)
    assert report.frames == 120 and report.faces_found == 120 and report.faces_generated == 120
    assert result.has_audio and source.has_audio
    assert source.fps == result.fps == Fraction(30000, 1001)  # exact NTSC rate, not the printed 29.97
    assert result.size == source.size
    assert result.duration == pytest.approx(source.duration, abs=0.1)
    frames_in = list(read_frames(carphone_with_audio))
    frames_out = list(read_frames(out))
    assert len(frames_out) == len(frames_in) == 120
    face = (slice(30, 110), slice(60, 120))
    diff_face = np.mean([np.abs(a[face].astype(int) - b[face].astype(int)).mean() for a, b in zip(frames_in, frames_out)])
    far = (slice(0, 20), slice(140, 176))
    diff_far = np.mean([np.abs(a[far].astype(int) - b[far].astype(int)).mean() for a, b in zip(frames_in, frames_out)])
    assert diff_face > 15 and diff_far < 4  # the face replaced; elsewhere only re-encoding noise
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temporary files left


@pytest.mark.parametrize(("height", "width", "frames"),
                         [(144, 176, 8), (360, 640, 8), (720, 1280, 2), (1080, 1920, 1), (2160, 3840, 1)])
def test_large_frames_go_to_the_generator_in_smaller_batches(anonymizer, height, width, frames):
    assert frames_per_batch(height * width * 3) == frames
    sizes = []
    anonymize = anonymizer.anonymize
    anonymizer.anonymize = lambda batch, *args: sizes.append(len(batch)) or anonymize(batch, *args)
    clip = (np.zeros((height, width, 3), np.uint8) for _ in range(9))
    out = list(using(FixedDetector([FACE]), anonymizer).anonymize_frames(clip))
    assert len(out) == 9 and sizes == [frames] * (9 // frames) + ([9 % frames] if 9 % frames else [])


def test_start_and_end_trim_video_and_audio(tmp_path, carphone_with_audio, anonymizer):
    out = tmp_path / "cut.mp4"
    report = anonymize_video(Job(carphone_with_audio, out), using(FixedDetector([FACE]), anonymizer), start=1.0, end=2.0)
    assert abs(report.frames - 30) <= 1
    info = probe(out)
    assert info.has_audio and info.duration == pytest.approx(1.0, abs=0.1)


def test_failed_detection_blacks_out_the_frame(tmp_path, carphone_with_audio, anonymizer):
    out = tmp_path / "out.mp4"
    report = anonymize_video(Job(carphone_with_audio, out), using(FixedDetector([FACE], fail_on={5}), anonymizer), end=0.5)
    assert len(report.blacked_out_frames) == 1 and report.blacked_out_frames == [5]
    frames = list(read_frames(out))
    assert frames[5].mean() < 3 and frames[4].mean() > 30


def test_a_crash_mid_video_leaves_no_output(tmp_path, carphone_with_audio, anonymizer):
    class Exploding(FixedDetector):
        def detect(self, image):
            if self.calls == 40:
                raise KeyboardInterrupt
            return super().detect(image)

    out = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        anonymize_video(Job(carphone_with_audio, out), using(Exploding([FACE]), anonymizer))
    assert list(tmp_path.iterdir()) == []


def test_not_a_video_is_an_input_error(tmp_path, anonymizer):
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("hello")
    with pytest.raises(InputError, match="notes.mp4"):
        anonymize_video(Job(bogus, tmp_path / "o.mp4"), using(FixedDetector([FACE]), anonymizer))
    assert not (tmp_path / "o.mp4").exists()


def test_face_missed_by_the_detector_for_two_frames_is_still_covered(tmp_path, carphone_with_audio, anonymizer):
    from deepanon.detection import Detections

    class Blinking(FixedDetector):
        def detect(self, image):
            found = super().detect(image)
            return Detections.empty() if self.calls - 1 in (10, 11) else found

    out = tmp_path / "out.mp4"
    report = anonymize_video(Job(carphone_with_audio, out), using(Blinking([FACE]), anonymizer), end=1.0)
    assert report.boxes_bridged == 2 and report.faces_found == report.frames - 2
    assert report.bridged_frames == [10, 11]
    face = (slice(35, 105), slice(65, 115))
    for before, after in zip(list(read_frames(carphone_with_audio, end=1.0))[9:13], list(read_frames(out))[9:13]):
        assert np.abs(before[face].astype(int) - after[face].astype(int)).mean() > 15


@pytest.mark.parametrize(
    ("printed", "exact"),
    [(29.97, Fraction(30000, 1001)), (23.98, Fraction(24000, 1001)), (59.94, Fraction(60000, 1001)),
     (119.88, Fraction(120000, 1001)), (30.0, Fraction(30)), (25.0, Fraction(25)), (5.0, Fraction(5)),
     (12.5, Fraction(25, 2)), (14.99, Fraction(15000, 1001)), (7.25, Fraction(29, 4))],
)
def test_frame_rate_recovers_the_exact_rate_from_two_decimals(printed, exact):
    assert frame_rate(printed) == exact


def test_a_1000_fps_video_is_read_at_its_rate(tmp_path):
    """ffmpeg prints 1000 fps as "1k fps", which imageio-ffmpeg does not parse: the rate is read from that line."""
    clip = make_clip(tmp_path / "fast.mp4", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=1000", "-t", "0.05",
                     "-pix_fmt", "yuv420p")
    info = probe(clip)
    assert info.fps == Fraction(1000) and info.size == (64, 48)
    assert len(list(read_frames(clip))) == 50


def test_a_rotated_phone_video_comes_out_upright_without_warnings(tmp_path, anonymizer, caplog):
    """A clip stored 160×120 with a 90° display rotation is decoded upright (120×160) and written that way."""
    stored = make_clip(tmp_path / "stored.mp4", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "0.4",
                       "-pix_fmt", "yuv420p")
    rotated = make_clip(tmp_path / "rotated.mp4", "-display_rotation", "90", "-i", str(stored), "-c", "copy")
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING):
        report = anonymize_video(Job(rotated, out), using(FixedDetector([]), anonymizer))
    assert report.frames == 10 and probe(rotated).size == probe(out).size == (120, 160)
    assert list(read_frames(out))[0].shape == (160, 120, 3)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records


def test_named_detectors_keep_weak_faces_in_video_only_to_continue_tracks(monkeypatch):
    import deepanon.api as api
    from deepanon.detection import Detections
    from deepanon.detection.factory import DEFAULT_THRESHOLD, TRACK_THRESHOLD

    built = []
    monkeypatch.setattr(api, "create_detector", lambda name, threshold, **_: built.append((name, threshold)) or object())
    finder = FaceFinder("accurate")
    assert built == [("accurate", DEFAULT_THRESHOLD["accurate"]), ("accurate", TRACK_THRESHOLD)]
    assert finder.confirm == DEFAULT_THRESHOLD["accurate"] > TRACK_THRESHOLD
    built.clear()
    assert FaceFinder("fast", threshold=0.05).confirm == 0.05 and built[1] == ("fast", 0.05)  # never above the threshold

    scores = iter([0.9, 0.15, 0.15, 0.15, 0.9])
    weak_alone = Detections.from_boxes(np.array([[200, 20, 240, 70]], np.float32), np.array([0.15], np.float32))

    class Fading:
        def detect(self, image):
            face = Detections.from_boxes(np.array([[20, 20, 60, 70]], np.float32), np.array([next(scores)], np.float32))
            return Detections.concatenate([face, weak_alone])

    finder.clip_detector = Fading()
    tracked = list(finder.track([np.zeros((120, 320, 3), np.uint8)] * 5))
    assert [len(t.detections) for t in tracked] == [1] * 5  # the face on every frame, the lone weak box never
    assert [t.tracks.tolist() for t in tracked] == [[0]] * 5 and all(t.bridged == 0 for t in tracked)


def test_a_scene_cut_ends_the_tracks_and_restarts_the_clip_schedule():
    from deepanon.detection import Detections, Detector
    from deepanon.tracking import CUT_DIFF, SceneCuts

    import cv2

    cuts, rng = SceneCuts(), np.random.default_rng(0)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (72, 128, 3), dtype=np.uint8), (0, 0), 3)  # a shot: smooth shapes
    moved = np.roll(scene, 2, axis=1)  # a small camera move
    assert [cuts(f) for f in (scene, scene, moved)] == [False, False, False]
    assert cuts(np.clip(moved.astype(int) + int(2 * CUT_DIFF), 0, 255).astype(np.uint8))  # another shot

    class EdgeFaceOnce(Detector):
        """Finds a face cut by the frame's left edge on the first frame of each clip schedule, nothing after."""

        schedules = 0

        def for_clip(self):
            EdgeFaceOnce.schedules += 1
            return EdgeFaceOnce()

        def _detect(self, image):
            self.calls = getattr(self, "calls", 0) + 1
            boxes = [[0, 10, 30, 60]] if self.calls == 1 else []
            return Detections.from_boxes(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32))

    finder = FaceFinder(EdgeFaceOnce())
    shot = [np.full((72, 128, 3), 60, np.uint8)] * 4
    other = [np.full((72, 128, 3), 200, np.uint8)] * 4
    tracked = list(finder.track(shot + other))
    # the edge face is bridged over the rest of its shot; the new shot has its own schedule, whose first frame
    # finds the face again as a new track, bridged over the new shot
    assert [len(t.detections) for t in tracked] == [1] * 8 and EdgeFaceOnce.schedules == 2
    assert [t.tracks.tolist() for t in tracked] == [[0]] * 4 + [[1]] * 4
    assert [t.bridged for t in tracked] == [0, 1, 1, 1, 0, 1, 1, 1]
