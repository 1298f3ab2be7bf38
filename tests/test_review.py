"""Review before publishing (--detect-only, then --boxes), the Python API, and what a run says it did not examine."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from deepanon import Anonymizer, FaceFinder, SetupError
from deepanon.cli import main
from deepanon.report import SCHEMA


def invoke(*args):
    return CliRunner().invoke(main, [*map(str, args)])


@pytest.fixture(scope="module")
def two_faces(astronaut, grace_hopper):
    """Eileen Collins and Grace Hopper side by side: a real photo with two faces."""
    hopper = grace_hopper[:512]
    return np.ascontiguousarray(np.concatenate([astronaut, hopper], axis=1))


def inside(box, image):
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return image[max(0, y0):y1, max(0, x0):x1]


def test_detect_edit_anonymize_round_trip_on_a_real_photo(tmp_path, two_faces, weights):
    source = tmp_path / "pair.png"
    Image.fromarray(two_faces).save(source)
    report = tmp_path / "faces.json"
    result = invoke("image", "--quiet", source, "--detect-only", "--report", report)
    assert result.exit_code == 0 and "no pictures written" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.json", "pair.png"]
    data = json.loads(report.read_text())
    assert data["schema"] == SCHEMA
    faces = data["files"][0]["faces"]
    assert all(f["replaced_by"] is None and len(f["landmarks"]) == 5 for f in faces)
    largest = sorted(faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))[-2:]
    collins, hopper = sorted(largest, key=lambda f: f["box"][0])
    assert collins["box"][2] < 512 < hopper["box"][0]

    added = {"box": [700, 400, 780, 480]}  # a "missed face" the reviewer adds, without landmarks
    data["files"][0]["faces"] = [collins, added]  # Hopper's box (and any other) deleted as false positives
    report.write_text(json.dumps(data))
    out = tmp_path / "out.png"
    result = invoke("image", "--quiet", source, "-o", out, "--boxes", report, "--weights", weights,
                    "--report", tmp_path / "after.json")
    assert result.exit_code == 0 and "2 face box(es): 2 found" in result.output, result.output
    anonymized = np.asarray(Image.open(out))
    assert np.array_equal(inside(hopper["box"], anonymized), inside(hopper["box"], two_faces))  # bit-identical
    for face in (collins, added):
        assert np.abs(inside(face["box"], anonymized).astype(int) - inside(face["box"], two_faces)).mean() > 5
    after = json.loads((tmp_path / "after.json").read_text())["files"][0]["faces"]
    assert [f["box"] for f in after] == [collins["box"], added["box"]]
    assert after[0]["landmarks"] == collins["landmarks"] and after[1]["landmarks"] is None


def test_a_file_missing_from_the_boxes_file_or_a_bad_entry_writes_nothing(tmp_path, astronaut):
    for name in ("a.png", "b.png"):
        Image.fromarray(astronaut).save(tmp_path / name)
    report = tmp_path / "faces.json"
    report.write_text(json.dumps({"schema": SCHEMA, "files": [{"input": str(tmp_path / "a.png"), "faces": []}]}))
    result = invoke("image", "--quiet", tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "out/", "--boxes",
                    report, "--replace", "blur")
    assert result.exit_code == 1 and f"b.png: not in {report}" in result.output, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "a.png")), astronaut)  # no box: untouched

    report.write_text(json.dumps({"schema": SCHEMA, "files": [{"input": "a.png", "faces": [{"box": [5, 5, 1, 1]}]}]}))
    result = invoke("image", "--quiet", tmp_path / "a.png", "-o", tmp_path / "again.png", "--boxes", report)
    assert result.exit_code == 1 and "files[0].faces[0].box: must be [x0, y0, x1, y1]" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "again.png").exists()


def test_detect_only_needs_a_report_and_writes_no_pictures(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    result = invoke("image", "--quiet", tmp_path / "a.png", "--detect-only")
    assert result.exit_code == 2 and "add --report" in result.output
    result = invoke("image", "--quiet", tmp_path / "a.png", "--detect-only", "--report", tmp_path / "r.json", "-o",
                    tmp_path / "o.png")
    assert result.exit_code == 2 and "writes no pictures" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_video_detect_then_boxes_replaces_exactly_the_listed_frames(tmp_path, carphone_with_audio):
    report = tmp_path / "faces.json"
    result = invoke("video", "--quiet", carphone_with_audio, "--end", "1", "--detect-only", "--report", report,
                    "--detector", "centerface")
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    entry = data["files"][0]
    assert entry["output"] is None and entry["frames"] >= 29
    faces = entry["faces"]
    assert len(faces) == entry["faces_found"] + entry["boxes_bridged"] >= 25
    assert len({f["track"] for f in faces}) <= 3 and all(0 <= f["frame"] < entry["frames"] for f in faces)
    entry["faces"] = [f for f in faces if f["frame"] < 10]
    report.write_text(json.dumps(data))
    result = invoke("video", "--quiet", carphone_with_audio, "--end", "1", "--boxes", report, "--replace", "solid",
                    "-o", tmp_path / "out.mp4", "--report", tmp_path / "after.json")
    assert result.exit_code == 0, result.output
    after = json.loads((tmp_path / "after.json").read_text())["files"][0]
    assert after["faces_covered"] == len(entry["faces"]) and after["boxes_bridged"] == 0
    assert sorted({f["frame"] for f in after["faces"]}) == sorted({f["frame"] for f in entry["faces"]})


def test_the_python_api_anonymizes_an_array_and_exactly_the_given_boxes(astronaut, weights):
    anonymizer = Anonymizer(weights, detector="centerface", turned=False)
    image, faces = anonymizer.anonymize(astronaut)
    assert len(faces) == 1 and faces[0]["replaced_by"] == "generate"
    box = faces[0]["box"]
    assert np.abs(inside(box, image).astype(int) - inside(box, astronaut)).mean() > 5
    assert np.array_equal(image[400:], astronaut[400:])  # far below the face: untouched

    given, faces = anonymizer.anonymize(astronaut, boxes=[[300, 300, 380, 380]])
    assert [f["box"] for f in faces] == [[300, 300, 380, 380]] and faces[0]["landmarks"] is None
    changed = np.argwhere((given != astronaut).any(2))
    assert changed.size and changed.min(0).tolist() >= [260, 260] and changed.max(0).tolist() <= [420, 420]

    jumped = astronaut.copy()  # the face moved 190 px to the right over the background, the rest of the shot as it was
    jumped[20:200, 340:490], jumped[20:200, 150:300] = astronaut[20:200, 150:300], astronaut[20:200, 0:150]
    frames = [astronaut, jumped, astronaut]  # the face jumps away and back: a new track, bridged
    out = list(anonymizer.anonymize_frames(frames, batch_frames=2, hold=1))  # hold 1: every frame painted anew
    assert [t.found for _, t in out] == [1, 1, 1] and [t.bridged for _, t in out] == [0, 1, 1]
    assert [t.tracks.tolist() for _, t in out] == [[0], [1, 0], [0, 1]]
    assert [len(t.faces) for _, t in out] == [1, 2, 2]
    assert np.abs(out[0][0].astype(int) - image).mean() < 0.5


def test_finder_alone_needs_no_generator(astronaut):
    detections = FaceFinder("centerface", turned=False).detect(astronaut)
    assert len(detections) == 1


def test_skipped_files_links_and_faceless_files_are_reported(tmp_path, astronaut):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(astronaut).save(photos / "a.png")
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photos / "grey.png")
    (photos / "phone.heic").write_bytes(b"not decoded by this tool")
    (photos / "gone.png").symlink_to(tmp_path / "deleted.png")
    (photos / "link.png").symlink_to(photos / "a.png")
    report = tmp_path / "r.json"
    result = invoke("image", "--quiet", photos, "-o", tmp_path / "out", "--replace", "blur", "--report", report)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "grey.png", "link.png"]
    assert "3 file(s) written" in result.output and "2 file(s) in the folders skipped" in result.output
    assert "no face found in 1 file(s):" in result.output and "grey.png" in result.output
    skipped = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in json.loads(report.read_text())["skipped"]}
    assert skipped == {"gone.png": "broken link", "phone.heic": "unsupported suffix .heic"}


def test_a_run_that_finds_nothing_says_so(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    result = invoke("image", "--quiet", tmp_path / "a.png", "--threshold", "1", "--replace", "blur")
    assert result.exit_code == 0 and "no face found in any file" in result.output, result.output


def test_standard_input_and_output_are_refused_in_one_line(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    result = invoke("image", "--quiet", "-", "--replace", "blur")
    assert result.exit_code == 1 and "standard input is not supported" in result.output
    result = invoke("image", "--quiet", tmp_path / "a.png", "-o", "-", "--replace", "blur")
    assert result.exit_code == 1 and "standard output is not supported" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "-").exists()


def test_ctrl_c_while_the_model_loads_is_the_usual_interrupted_summary(tmp_path, astronaut, monkeypatch):
    def interrupted(**options):
        raise KeyboardInterrupt

    monkeypatch.setattr("deepanon.cli.Anonymizer", interrupted)
    for name in ("a.png", "b.png"):
        Image.fromarray(astronaut).save(tmp_path / name)
    result = invoke("image", "--quiet", tmp_path / "a.png", tmp_path / "b.png", "--report", tmp_path / "r.json")
    assert result.exit_code == 130 and "interrupted (Ctrl-C): 2 file(s) not done" in result.output, result.output
    assert json.loads((tmp_path / "r.json").read_text())["errors"] == ["interrupted (Ctrl-C): 2 file(s) not done"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "r.json"]


def test_an_unknown_detector_name_is_a_setup_error():
    with pytest.raises(SetupError, match="not a valid DetectorName"):
        FaceFinder("nonesuch")


def test_photos_anonymized_together_get_the_faces_they_get_alone(astronaut, grace_hopper, weights):
    """One face per photo, batches of 1 in fp32: grouping changes nothing; batches of 2: the same latents (a face
    differs from its lone run only by the batch's rounding) and the same records."""
    photos = [astronaut, grace_hopper, astronaut[:, ::-1].copy()]
    for batch_size, tolerance in ((1, 0), (2, 3)):
        anonymizer = Anonymizer(weights, detector="centerface", turned=False, seed=5, precision="fp32",
                                batch_size=batch_size)
        assert anonymizer.files_per_call == batch_size
        together = anonymizer.anonymize_many(photos)
        alone = [anonymizer.anonymize(photo) for photo in photos]
        for (image, faces), (image_alone, faces_alone), photo in zip(together, alone, photos, strict=True):
            assert faces == faces_alone and len(faces) == 1
            assert np.abs(image.astype(int) - image_alone).max() <= tolerance
            assert (image != photo).any()
    other_seed = Anonymizer(weights, detector="centerface", turned=False, seed=6, precision="fp32", batch_size=1)
    assert (other_seed.anonymize_many(photos)[1][0] != together[1][0]).any()  # the seed reaches every photo


def test_a_folder_is_anonymized_in_groups_and_a_bad_file_fails_alone(astronaut, grace_hopper, weights, tmp_path):
    """Files per generator call = the batch size (4 here): a corrupt file inside a group is one error line, its
    group's other photos are written exactly as when each runs alone."""
    src = tmp_path / "src"
    src.mkdir()
    for name, pixels in (("a", astronaut), ("b", grace_hopper), ("d", astronaut[:, ::-1])):
        Image.fromarray(np.ascontiguousarray(pixels)).save(src / f"{name}.png")
    (src / "c.png").write_bytes(b"not a picture")
    common = ["--quiet", "--detector", "centerface", "--upright-only", "--seed", "3", "--precision", "fp32",
              "--weights", weights]
    grouped = invoke("image", *common, "--batch-size", "4", src, "-o", tmp_path / "grouped/", "--report",
                     tmp_path / "grouped.json")
    assert grouped.exit_code == 1 and "c.png: not a readable image" in grouped.output
    alone = invoke("image", *common, "--batch-size", "1", src, "-o", tmp_path / "alone/")
    assert alone.exit_code == 1
    for name in "abd":
        a = np.asarray(Image.open(tmp_path / "grouped" / f"{name}.png"), int)
        b = np.asarray(Image.open(tmp_path / "alone" / f"{name}.png"), int)
        assert np.abs(a - b).max() <= 3 and (a != np.asarray(Image.open(src / f"{name}.png"))).any()
    files = json.loads((tmp_path / "grouped.json").read_text())["files"]
    assert [f["faces_generated"] for f in files if f["error"] is None] == [1, 1, 1]
    assert not (tmp_path / "grouped" / "c.png").exists()


def test_a_group_that_fails_together_is_redone_one_photo_at_a_time(astronaut, grace_hopper, weights, tmp_path,
                                                                     monkeypatch):
    """An error raised for one photo of a group fails that photo only; each report comes as its file is written."""
    from deepanon.runner import Job, anonymize_images

    photos = {"a": astronaut, "bad": grace_hopper, "c": astronaut[:, ::-1]}
    jobs = []
    for name, pixels in photos.items():
        Image.fromarray(np.ascontiguousarray(pixels)).save(tmp_path / f"{name}.png")
        jobs.append(Job(tmp_path / f"{name}.png", tmp_path / "out" / f"{name}.png"))
    anonymizer = Anonymizer(weights, detector="centerface", turned=False, seed=1, precision="fp32", batch_size=4)
    alone = [anonymizer.anonymize(pixels)[0] for pixels in photos.values()]
    replace = anonymizer.replacer.anonymize

    def failing(frames, *args, **kwargs):
        if any(frame.shape == grace_hopper.shape for frame in frames):
            raise RuntimeError("boom")
        return replace(frames, *args, **kwargs)

    monkeypatch.setattr(anonymizer.replacer, "anonymize", failing)
    reports = anonymize_images(jobs, anonymizer)
    first = next(reports)
    assert first.ok and jobs[0].target.is_file() and not jobs[2].target.exists()
    rest = list(reports)
    assert "boom" in rest[0].error and not jobs[1].target.exists() and rest[1].ok
    for job, expected in ((jobs[0], alone[0]), (jobs[2], alone[2])):
        assert np.array_equal(np.asarray(Image.open(job.target)), expected)
