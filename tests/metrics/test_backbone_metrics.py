"""LPIPS and FID with backbone files written by the test (random weights: the maths and the loading, not ImageNet)."""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import alexnet, inception_v3

from deepanon.metrics.backbones import BackboneError
from deepanon.metrics.fid import InceptionFeatures, frechet_distance, statistics
from deepanon.metrics.lpips import CHANNELS, LPIPS


@pytest.fixture(scope="module")
def lpips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lpips")
    torch.manual_seed(0)
    save_file(alexnet(weights=None).state_dict(), str(folder / "alexnet.safetensors"))
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(CHANNELS)}
    torch.save(heads, folder / "alex.pth")
    return LPIPS(folder / "alexnet.safetensors", folder / "alex.pth")


def test_lpips_is_zero_for_identical_images_symmetric_and_grows_with_noise(lpips):
    g = torch.Generator().manual_seed(1)
    a = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
    assert torch.allclose(lpips(a, a), torch.zeros(3), atol=1e-7)
    small = (a + 0.05 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    large = (a + 0.5 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    assert torch.allclose(lpips(a, small), lpips(small, a), rtol=1e-5)
    assert (lpips(a, small) < lpips(a, large)).all() and (lpips(a, small) > 0).all()


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    # diagonal covariances: d = |μ1-μ2|² + Σ (σ1 - σ2)² with σ the standard deviations
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    s1, s2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 9.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0
    assert frechet_distance(mu1, torch.diag(s1), mu2, torch.diag(s2)) == pytest.approx(expected, abs=1e-9)
    rng = np.random.default_rng(0)
    features = torch.from_numpy(rng.normal(size=(500, 8)))
    assert frechet_distance(*statistics(features), *statistics(features)) == pytest.approx(0, abs=1e-8)


def test_inception_features_from_a_local_file(tmp_path):
    torch.manual_seed(0)
    net = inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path / "inception.pt"
    torch.save(net.state_dict(), path)
    features = InceptionFeatures(path)
    out = features(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert out.shape == (2, 2048) and torch.isfinite(out).all()


def test_wrong_or_missing_backbone_files_are_clear_errors(tmp_path):
    with pytest.raises(BackboneError, match="not found"):
        InceptionFeatures(tmp_path / "none.pt")
    wrong = tmp_path / "wrong.safetensors"
    save_file({"x": torch.zeros(1)}, str(wrong))
    with pytest.raises(BackboneError, match="does not fit"):
        LPIPS(wrong, wrong)


def test_evaluate_reports_lpips_and_fid_when_backbones_are_given(lpips, tmp_path):
    from deepanon.metrics import evaluate
    from deepanon.models import Generator, ModelConfig

    torch.manual_seed(0)
    net = inception_v3(weights=None, aux_logits=True, init_weights=False)
    torch.save(net.state_dict(), tmp_path / "inception.pt")
    mask = torch.ones(1, 32, 32)
    mask[:, 8:24, 8:24] = 0
    samples = [{"image": torch.rand(3, 32, 32) * 2 - 1, "mask": mask, "pose": torch.rand(5, 2)} for _ in range(6)]
    generator = Generator(ModelConfig(image_size=32, width=0.25))
    results = evaluate(generator, samples, batch_size=3, limit=None, lpips=lpips, fid=InceptionFeatures(tmp_path / "inception.pt"))
    assert results["images"] == 6 and results["skipped"] == {}
    assert results["lpips"] > 0 and results["fid"] > 0
