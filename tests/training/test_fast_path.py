"""The CPU fast path (bf16 autocast, compiled G and D) trains the same step as fp32 eager; --init starts from weights."""

import pytest
import torch
from click.testing import CliRunner

from deepanon.cli_training import train
from deepanon.models import Generator, ModelConfig
from deepanon.models.precision import Precision
from deepanon.training.config import COMPILE_FROM_IMAGES, DiscriminatorKind, TrainConfig
from deepanon.training.distributed import Process
from deepanon.training.loop import Models, train_step
from deepanon.weights import save_generator

BATCH = 4


def tiny_config(**changes) -> TrainConfig:
    changes = {"compile": False} | changes  # a TrainConfig of 20M images compiles unless told not to
    return TrainConfig(data="-", out="-", image_size=32, width=0.25, num_keypoints=5, batch_size=BATCH,
                       penalty_interval=2, **changes)


def one_step(cfg: TrainConfig, images_seen: int) -> tuple[Models, dict[str, float]]:
    torch.manual_seed(1)
    mask = torch.ones(BATCH, 1, 32, 32)
    mask[..., 2:30, 2:30] = 0  # a large hole: D's loss is D(fake) - D(real), which bf16 resolves poorly when both
    # images are nearly the same (a small hole gives gradient cosines of 0.84 at init, eager bf16 alike)
    batch = {"image": torch.rand(BATCH, 3, 32, 32) * 2 - 1, "mask": mask, "pose": torch.rand(BATCH, 5, 2)}
    models = Models.build(cfg.model_config(), cfg, Process(0, 1, torch.device("cpu")))
    stats = train_step(models, batch, cfg, Process(0, 1, torch.device("cpu")), images_seen)
    return models, {k: v.item() for k, v in stats.items()}


def gradients(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])


@pytest.mark.slow
@pytest.mark.parametrize("images_seen", [0, BATCH])  # a step with the eq. 11 penalty (D's eager view of x̂), one without
def test_bf16_compiled_step_agrees_with_fp32_eager(images_seen):
    reference, expected = one_step(tiny_config(precision=Precision.FP32), images_seen)
    fast, got = one_step(tiny_config(precision=Precision.BF16, compile=True), images_seen)
    assert fast.g_train.active and fast.d_fast.active  # compiled for real, not the eager fallback
    assert ("penalty" in got) == ("penalty" in expected) == (images_seen == 0)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=0.05, abs=0.02), key
    for name in ("generator", "discriminator"):
        a, b = gradients(getattr(reference, name)), gradients(getattr(fast, name))
        assert a.numel() == b.numel() == sum(p.numel() for p in getattr(reference, name).parameters())
        assert torch.nn.functional.cosine_similarity(a, b, dim=0) > 0.95, name  # fp32 against itself: 1.00001
        assert (b.norm() / a.norm()).item() == pytest.approx(1.0, abs=0.08), name


def test_compile_is_on_by_default_for_long_cpu_runs_only():
    cfg = TrainConfig(data="-", out="-")
    cpu = torch.device("cpu")
    assert cfg.compile is None and cfg.compiles(cpu) and not cfg.compiles(torch.device("cuda"))
    assert not cfg.with_changes(images=COMPILE_FROM_IMAGES - 1).compiles(cpu)
    assert cfg.with_changes(images=COMPILE_FROM_IMAGES).compiles(cpu)
    assert not cfg.with_changes(compile=False).compiles(cpu)
    assert cfg.with_changes(images=8, compile=True).compiles(cpu)


def test_init_starts_generator_and_ema_from_weights_and_refuses_another_shape(tmp_path):
    cfg = tiny_config()
    source = Generator(cfg.model_config())
    torch.nn.init.normal_(source.to_rgb["32"].weight)
    save_generator(tmp_path / "g.safetensors", source, expand=1.25)
    models = Models.build(cfg.model_config(), cfg, Process(0, 1, torch.device("cpu")))
    models.init_generator(tmp_path / "g.safetensors")
    for part in (models.generator, models.ema):
        for key, value in source.state_dict().items():
            assert torch.equal(part.state_dict()[key], value), key
    save_generator(tmp_path / "wide.safetensors", Generator(ModelConfig(image_size=32, width=0.5, num_keypoints=5)),
                   expand=1.25)
    with pytest.raises(ValueError, match="is not this run's"):
        models.init_generator(tmp_path / "wide.safetensors")


def test_train_init_with_weights_of_another_shape_is_one_line(fdf_root, tmp_path):
    save_generator(tmp_path / "wide.safetensors", Generator(ModelConfig(image_size=32, width=0.5, num_keypoints=5)),
                   expand=1.25)
    args = ["--image-size", "32", "--width", "0.25", "--batch-size", "4", "--workers", "0", "--quiet", "--data",
            str(fdf_root), "--out", str(tmp_path / "run"), "--images", "4", "--init", str(tmp_path / "wide.safetensors")]
    result = CliRunner().invoke(train, args)
    assert result.exit_code != 0 and "is not this run's" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_run_from_before_an_option_existed_resumes_with_its_default():
    from deepanon.training.loop import check_resume

    saved = tiny_config().to_dict()
    del saved["discriminator"], saved["init"]
    check_resume(tiny_config(), saved)
    with pytest.raises(ValueError, match="discriminator"):
        check_resume(tiny_config(discriminator=DiscriminatorKind.PROJECTED), saved)
