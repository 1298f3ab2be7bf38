"""Differentiable augmentation: the keypoints and the certainty move with the image under translation."""

import torch

from deepanon.training.augment import augment


def test_keypoints_and_certainty_follow_the_translated_image():
    b, side = 16, 64
    image = -torch.ones(b, 3, side, side)
    certainty = torch.ones(b, 1, side, side)
    pose = torch.rand(b, 1, 2) * 0.5 + 0.25
    cols, rows = (pose[:, 0] * side).long().unbind(1)
    for i in range(b):
        image[i, :, rows[i], cols[i]] = 1
        certainty[i, :, rows[i], cols[i]] = 0
    out, out_certainty, out_pose = augment(image, certainty, pose, torch.Generator().manual_seed(3))
    moved = (out_pose[:, 0] * side).long()
    for i in range(b):
        x, y = moved[i].tolist()
        assert out_certainty[i, 0, y, x] == 0 and out_certainty[i].sum() == side * side - 1
        grey = out[i].mean(0)
        if grey[y, x] != 0:  # not cut out: still the brightest pixel (colour changes are monotonic, shared by all)
            assert grey[y, x] == grey[grey != 0].max() and (grey == grey[y, x]).sum() == 1
