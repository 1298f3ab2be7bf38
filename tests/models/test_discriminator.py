import torch

from tests.models.conftest import face_batch


def test_discriminator_scores_each_sample_and_sees_the_pose(models_k7):
    _, d = models_k7
    image, certainty, pose = face_batch(3, 7)
    cond = image * certainty
    with torch.no_grad():
        score = d(image, cond, certainty, pose)
        other_pose = d(image, cond, certainty, torch.rand_like(pose))
        single = d(image[:1], cond[:1], certainty[:1], pose[:1])
    assert score.shape == (3,)
    assert torch.allclose(single, score[:1], atol=1e-5)
    assert (score - other_pose).abs().max() > 1e-6
