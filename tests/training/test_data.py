"""Datasets, masks and the flip, on tiny data written by the tests."""

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from deepanon.training.config import MaskKind
from deepanon.training.data import (
    DataLayoutError,
    StreamSampler,
    flip_keypoints,
    fdf_dataset,
    folder_dataset,
    make_loader,
)
from deepanon.training.masks import box_mask, center_mask, free_form_mask
from tests.training.conftest import write_fdf


def test_flip_keypoints_swaps_left_and_right():
    # 5-point detector order: left eye, right eye, nose, left mouth, right mouth (image-left/right).
    pose = torch.tensor([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])
    flipped = flip_keypoints(pose)
    # The mirrored right eye (x 0.7 -> 0.3) becomes the new image-left eye: the layout is unchanged for a symmetric face.
    assert torch.allclose(flipped, pose)
    asymmetric = torch.rand(7, 2)
    f = flip_keypoints(asymmetric)
    assert torch.allclose(f[1], torch.tensor([1 - asymmetric[2, 0], asymmetric[2, 1]]))  # COCO r_eye <- mirrored l_eye
    assert torch.allclose(f[0, 0], 1 - asymmetric[0, 0])  # nose stays
    assert torch.allclose(flip_keypoints(f), asymmetric)  # an involution
    with pytest.raises(ValueError, match="K=3"):
        flip_keypoints(torch.rand(3, 2))


def test_masks():
    m = box_mask(16, np.array([2.0, 4.0, 10.0, 12.0]))
    assert m.shape == (1, 16, 16) and m.dtype == torch.float32
    assert m[0, 4:12, 2:10].sum() == 0 and m.sum() == 256 - 64
    c = center_mask(32)
    assert c[0, 8:24, 8:24].sum() == 0 and c.sum() == 1024 - 256
    rng = np.random.default_rng(0)
    holes = [1 - free_form_mask(64, rng).mean().item() for _ in range(20)]
    assert all(0.015 < h < 0.9 for h in holes)  # at least the rectangle (≥ 8×8 of 64×64) is missing
    a, b = free_form_mask(64, np.random.default_rng(5)), free_form_mask(64, np.random.default_rng(5))
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}


def test_fdf_sample_face_box_and_flip(fdf_root):
    ds = fdf_dataset(fdf_root, "train", image_size=32, mask=MaskKind.FACE_BOX, flip=True)
    assert len(ds) == 12 and ds.num_keypoints == 5
    plain = ds[3]
    assert plain["image"].shape == (3, 32, 32) and plain["image"].min() >= -1 and plain["image"].max() <= 1
    box = np.load(fdf_root / "train" / "bounding_box" / "32.npy")[3]
    assert torch.equal(plain["mask"], box_mask(32, box))
    flipped = [ds[(3, p)] for p in range(40)]
    mirrored = [s for s in flipped if not torch.equal(s["image"], plain["image"])]
    assert 5 < len(mirrored) < 35  # p = 0.5
    for s in mirrored:
        assert torch.equal(s["image"], plain["image"].flip(-1)) and torch.equal(s["mask"], plain["mask"].flip(-1))
        assert torch.allclose(s["pose"], flip_keypoints(plain["pose"]))


def test_fdf_errors_name_the_missing_file(tmp_path):
    root = write_fdf(tmp_path / "fdf", n=3, size=32)
    (root / "train" / "bounding_box" / "32.npy").unlink()
    with pytest.raises(DataLayoutError, match="bounding_box/32.npy"):
        fdf_dataset(root, "train", image_size=32, mask=MaskKind.FACE_BOX, flip=False)
    with pytest.raises(DataLayoutError, match="images/64"):
        fdf_dataset(root, "val", image_size=64, mask=MaskKind.FACE_BOX, flip=False)
    (root / "val" / "images" / "32" / "2.png").unlink()
    with pytest.raises(DataLayoutError, match="2.png"):
        fdf_dataset(root, "val", image_size=32, mask=MaskKind.FACE_BOX, flip=False)


def test_fdf_reads_reference_torch_boxes_and_flat_landmarks(tmp_path):
    root = write_fdf(tmp_path / "fdf", n=3, size=32, keypoints=7)
    base = root / "train"
    boxes = np.load(base / "bounding_box" / "32.npy")
    torch.save(torch.from_numpy(boxes), base / "bounding_box" / "32.torch")
    (base / "bounding_box" / "32.npy").unlink()
    np.save(base / "landmarks.npy", np.load(base / "landmarks.npy").reshape(3, 14))
    ds = fdf_dataset(root, "train", image_size=32, mask=MaskKind.FACE_BOX, flip=True)
    assert ds.num_keypoints == 7 and torch.equal(ds[1]["mask"], box_mask(32, boxes[1]))


def test_folder_dataset_scales_boxes_to_the_image_size(tmp_path):
    for i, size in enumerate([(40, 40), (80, 80)]):
        Image.new("RGB", size, (i * 100, 50, 50)).save(tmp_path / f"face{i}.jpg")
    np.save(tmp_path / "boxes.npy", np.array([[10, 10, 30, 30], [20, 20, 60, 60]], dtype=np.float32))
    np.save(tmp_path / "landmarks.npy", np.full((2, 5, 2), 0.5, dtype=np.float32))
    ds = folder_dataset(tmp_path, image_size=16, mask=MaskKind.FACE_BOX, flip=True)
    for i in range(2):
        assert torch.equal(ds[i]["mask"], box_mask(16, np.array([4, 4, 12, 12])))
    free = folder_dataset(tmp_path, image_size=16, mask=MaskKind.FREE_FORM, flip=False)
    assert torch.equal(free[0]["mask"], center_mask(16))  # evaluation keys use the fixed centre square
    (tmp_path / "landmarks.npy").unlink()
    assert folder_dataset(tmp_path, image_size=16, mask=MaskKind.CENTER, flip=True).num_keypoints == 0
    with pytest.raises(DataLayoutError, match="nope.npy"):
        folder_dataset(tmp_path, image_size=16, mask=MaskKind.CENTER, flip=True, boxes=tmp_path / "nope.npy")


def test_stream_sampler_resumes_mid_epoch_and_shards_ranks(fdf_root):
    ds = fdf_dataset(fdf_root, "train", image_size=32, mask=MaskKind.FACE_BOX, flip=True)
    full = list(itertools.islice(StreamSampler(ds, 0, 1, seed=3), 30))
    assert sorted(i for i, _ in full[:12]) == list(range(12)) and [p for _, p in full] == list(range(30))
    assert list(itertools.islice(StreamSampler(ds, 0, 1, seed=3, start=17), 13)) == full[17:]
    ranks = [list(itertools.islice(StreamSampler(ds, r, 2, seed=3), 6)) for r in range(2)]
    assert sorted(i for rank in ranks for i, _ in rank) == list(range(12))


def test_loader_with_workers_matches_in_process(fdf_root):
    ds = fdf_dataset(fdf_root, "train", image_size=32, mask=MaskKind.FACE_BOX, flip=True)
    common = dict(batch_size=4, rank=0, world_size=1, seed=1, start=4, pin_memory=False)
    a = next(iter(make_loader(ds, workers=0, **common)))
    b = next(iter(make_loader(ds, workers=1, **common)))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fdf_smaller_model_reads_larger_stored_crops(fdf_root):
    ds = fdf_dataset(fdf_root, "train", image_size=16, mask=MaskKind.FACE_BOX, flip=False)
    sample = ds[3]
    assert sample["image"].shape == (3, 16, 16)
    box = np.load(fdf_root / "train" / "bounding_box" / "32.npy")[3]
    assert torch.equal(sample["mask"], box_mask(16, box / 2))  # boxes scaled from the stored 32² crops


def test_face_boxes_without_area_are_refused(tmp_path):
    root = write_fdf(tmp_path / "data", n=4)
    boxes = np.load(root / "train" / "bounding_box" / "32.npy")
    boxes[2] = [10, 10, 10, 20]  # zero width
    np.save(root / "train" / "bounding_box" / "32.npy", boxes)
    with pytest.raises(DataLayoutError, match=r"1 face boxes have no area .* image 2"):
        fdf_dataset(root, "train", image_size=32, mask=MaskKind.FACE_BOX, flip=False)
