"""`deepanon prepare`: training crops agree with the crops the anonymizer cuts from photos."""

import json
import os

import numpy as np
from click.testing import CliRunner
from PIL import Image

from deepanon.cli import main
from deepanon.detection import create_detector
from deepanon.geometry import FaceCrop
from deepanon.training.config import MaskKind
from deepanon.training.data import fdf_dataset

EXPAND = 1.25


def test_prepare_writes_the_fdf_layout_and_reports_drops(tmp_path, astronaut, grace_hopper):
    photos = tmp_path / "photos"
    photos.mkdir()
    # a FairFace-like tight face photo cut from the astronaut, scaled to 128²
    Image.fromarray(astronaut[30:230, 110:310]).resize((128, 128), Image.BICUBIC).save(photos / "a.png")
    Image.fromarray(grace_hopper).save(photos / "b.jpg")
    Image.fromarray(np.full((128, 128, 3), 120, np.uint8)).save(photos / "c_noface.png")
    (photos / "d_broken.jpg").write_bytes(b"\xff\xd8garbage")
    out = tmp_path / "data"
    result = CliRunner().invoke(main, ["prepare", "--images", str(photos), "--out", str(out), "--split", "val",
                                       "--expand", str(EXPAND), "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "val" / "prepare_report.json").read_text())
    assert report["kept"] == 2 and report["dropped"] == {"no face": 1, "unreadable": 1} and report["expand"] == EXPAND
    assert (out / "val" / "sources.txt").read_text().split() == ["a.png", "b.jpg"]
    dataset = fdf_dataset(out, "val", image_size=128, mask=MaskKind.FACE_BOX, flip=False)
    sample = dataset[0]
    assert sample["image"].shape == (3, 128, 128) and sample["pose"].shape == (5, 2)
    hole = sample["mask"][0] == 0
    assert 0.3 < hole.float().mean() < 0.9  # the face box fills most of a tight crop

    # the same face, cut from the full photo by the anonymizer's geometry, has its hole in the same place
    detections = create_detector().detect(astronaut)
    assert len(detections) == 1
    inference = FaceCrop.from_box(detections.boxes[0], 128, expand=EXPAND)
    training_box = np.load(out / "val" / "bounding_box" / "128.npy")[0]
    np.testing.assert_allclose(np.array(inference.hole_bounds()), training_box, atol=4)
    pose = inference.to_crop(detections.landmarks[0])
    np.testing.assert_allclose(pose, np.load(out / "val" / "landmarks.npy")[0], atol=0.05)  # ≤ 6 px
    pixels_training = np.asarray(Image.open(out / "val" / "images" / "128" / "0.png")).astype(float)
    pixels_inference = inference.extract(astronaut).astype(float)
    # inside the face (outside it the training photo is edge-padded): the same face up to the few pixels the box
    # check allows (this face moved 4 px down differs by 24, 8 px by 34; mirrored 54, RGB as BGR 49)
    x0, y0, x1, y1 = (int(v) for v in training_box)
    assert np.abs(pixels_training - pixels_inference)[y0:y1, x0:x1].mean() < 30


def test_a_failed_or_interrupted_prepare_leaves_the_existing_split_as_it_was(tmp_path, astronaut, monkeypatch):
    photos, empty = tmp_path / "photos", tmp_path / "noface"
    photos.mkdir()
    empty.mkdir()
    for i in range(3):
        Image.fromarray(astronaut[30:230, 110:310]).resize((128, 128)).save(photos / f"{i}.png")
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(empty / "grey.png")
    out = tmp_path / "data"

    def prepare(images):
        return CliRunner().invoke(main, ["prepare", "--images", str(images), "--out", str(out), "--quiet"])

    assert prepare(photos).exit_code == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert len(before) == 3 + 4  # 3 crops, landmarks, boxes, sources, report
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "train").stat().st_mode & 0o777 == 0o777 & ~umask  # not the temporary folder's 0700
    result = prepare(empty)  # keeps no face: nothing replaced
    assert result.exit_code == 1 and "no usable face photos" in result.output

    calls = []

    def interrupted(self, pixels):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, pixels)

    detector_type = type(create_detector())
    original = detector_type.detect
    monkeypatch.setattr(detector_type, "detect", interrupted)
    assert prepare(photos).exit_code != 0  # stopped after one new crop was written
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # no half-built split, no temporary folders left


def test_a_linked_split_is_rebuilt_where_it_points(tmp_path, astronaut):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(astronaut[30:230, 110:310]).resize((128, 128)).save(photos / "a.png")
    elsewhere = tmp_path / "big_disk" / "train"
    elsewhere.mkdir(parents=True)
    (elsewhere / "old.txt").write_text("previous split")
    out = tmp_path / "data"
    out.mkdir()
    (out / "train").symlink_to(elsewhere, target_is_directory=True)
    result = CliRunner().invoke(main, ["prepare", "--images", str(photos), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (out / "train").is_symlink() and (elsewhere / "landmarks.npy").is_file()
    assert not (elsewhere / "old.txt").exists()
    assert sorted(p.name for p in (tmp_path / "big_disk").iterdir()) == ["train"]  # no temporary folders left
