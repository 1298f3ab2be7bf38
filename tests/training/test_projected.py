"""The projected discriminator: the mapped ImageNet backbone is right, frozen, and only the heads learn."""

import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from deepanon.cli_training import train
from deepanon.models import Generator
from deepanon.models.precision import Precision
from deepanon.models.projected import BackboneError, ProjectedDiscriminator, backbone_file, classifier, load_backbone
from deepanon.training.checkpoint import latest_checkpoint, load_checkpoint
from deepanon.training.config import DiscriminatorKind, TrainConfig
from deepanon.training.distributed import Process
from deepanon.training.loop import Models, train_step

MILITARY_UNIFORM = 652  # ImageNet class index


def test_mapped_backbone_knows_a_uniform_when_it_sees_one(grace_hopper):
    image = torch.nn.functional.interpolate(torch.from_numpy(grace_hopper).permute(2, 0, 1)[None].float() / 127.5 - 1,
                                            size=(224, 224), mode="area")
    with torch.no_grad():
        top = classifier()(image).softmax(1).topk(2).indices[0].tolist()
    assert MILITARY_UNIFORM in top


def test_missing_or_wrong_backbone_file_is_one_clear_error(tmp_path):
    with pytest.raises(BackboneError, match="not found"):
        load_backbone(tmp_path / "none.pth")
    wrong = tmp_path / "wrong.pth"
    shutil.copy(backbone_file(), wrong)
    with open(wrong, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00" * 8)
    with pytest.raises(BackboneError, match="sha256"):
        load_backbone(wrong)


def test_only_the_heads_learn_and_no_gradient_reaches_the_backbone():
    cfg = TrainConfig(data="-", out="-", image_size=64, width=0.25, num_keypoints=5, batch_size=2,
                      discriminator=DiscriminatorKind.PROJECTED, precision=Precision.FP32, compile=False)
    models = Models.build(cfg.model_config(), cfg, Process(0, 1, torch.device("cpu")))
    d = models.discriminator
    assert isinstance(d, ProjectedDiscriminator)
    frozen = {id(p) for part in (d.backbone, d.channel_mixing, d.scale_mixing) for p in part.parameters()}
    backbone_before = {k: v.clone() for k, v in d.backbone.state_dict().items()}
    heads_before = {k: v.clone() for k, v in d.heads.state_dict().items()}
    mask = torch.ones(2, 1, 64, 64)
    mask[..., 16:48, 16:48] = 0
    batch = {"image": torch.rand(2, 3, 64, 64) * 2 - 1, "mask": mask, "pose": torch.rand(2, 5, 2)}
    d.train()
    stats = train_step(models, batch, cfg, Process(0, 1, torch.device("cpu")), 0)
    assert not d.backbone.training  # its batch-norm statistics stay ImageNet's
    assert all(np.isfinite(v.item()) for v in stats.values()) and "penalty" not in stats
    for p in d.parameters():
        if id(p) in frozen:
            assert p.grad is None and not p.requires_grad
        else:  # a logit's bias may get exactly 0 from the hinge loss (as many real as fake scores inside the margin)
            assert p.grad is not None and (p.ndim == 1 or p.grad.abs().sum() > 0)
    assert len(models.d_trainable) == sum(1 for _ in d.heads.parameters())
    assert all(torch.equal(v, backbone_before[k]) for k, v in d.backbone.state_dict().items())
    assert any(not torch.equal(v, heads_before[k]) for k, v in d.heads.state_dict().items())
    assert all(p.grad is not None for p in models.generator.parameters() if p.requires_grad)


def test_train_with_the_projected_discriminator_from_the_cli(fdf_root, tmp_path):
    args = ["--image-size", "32", "--width", "0.25", "--batch-size", "4", "--workers", "0", "--quiet", "--data",
            str(fdf_root), "--out", str(tmp_path / "run"), "--images", "8", "--discriminator", "projected"]
    result = CliRunner().invoke(train, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    state = load_checkpoint(latest_checkpoint(tmp_path / "run"))
    assert [g["lr"] for g in state["g_optimizer"]["param_groups"]] == [2e-4]
    assert state["config"]["lr"] == 2e-4 and state["config"]["ema_half_life"] == 5000


@pytest.mark.parametrize(("kind", "lr", "half_life"), [("residual", 1e-3, 10_000), ("projected", 2e-4, 5_000)])
def test_learning_rate_and_ema_half_life_default_by_discriminator_unless_given(kind, lr, half_life):
    cfg = TrainConfig(data="-", out="-", discriminator=DiscriminatorKind(kind))
    assert (cfg.lr, cfg.ema_half_life) == (lr, half_life)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    given = TrainConfig(data="-", out="-", discriminator=DiscriminatorKind(kind), lr=0.5, ema_half_life=7)
    assert (given.lr, given.ema_half_life) == (0.5, 7)
