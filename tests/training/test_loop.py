"""End-to-end CLI training on a tiny FDF-layout dataset: artefacts, exact resume, ablation switches, export, eval."""

import json

import pytest
import torch
from click.testing import CliRunner

from deepanon.cli_training import evaluate, export, train
from deepanon.training.checkpoint import latest_checkpoint, load_checkpoint
from deepanon.training.loop import ema_beta, update_ema
from deepanon.weights import load_generator

TINY = ["--image-size", "32", "--width", "0.25", "--batch-size", "4", "--workers", "0", "--quiet"]


def run_train(*args: str) -> None:
    result = CliRunner().invoke(train, [*TINY, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def trained_run(fdf_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run_train("--data", str(fdf_root), "--out", str(out), "--images", "12", "--log-every", "4", "--grid-every", "8")
    return out


def test_training_writes_log_checkpoint_grid_and_config(trained_run):
    records = [json.loads(line) for line in (trained_run / "log.jsonl").read_text().splitlines()]
    assert [r["images"] for r in records] == [4, 8, 12]
    for r in records:
        for key in ("d_loss", "g_loss", "penalty", "d_real", "d_fake", "epsilon", "images_per_s", "z_effect", "pose_effect"):
            assert torch.isfinite(torch.tensor(r[key])), (key, r)
    assert sorted(p.name for p in (trained_run / "samples").glob("*.png")) == ["000000000008.png", "000000000012.png"]
    state = load_checkpoint(latest_checkpoint(trained_run))
    assert state["images_seen"] == 12 and state["model"]["num_keypoints"] == 5
    assert set(state) >= {"generator", "discriminator", "ema", "g_optimizer", "d_optimizer", "scaler", "rng", "config"}
    assert json.loads((trained_run / "config.json").read_text())["num_keypoints"] == 5


def test_resume_continues_exactly(fdf_root, tmp_path):
    common = ["--data", str(fdf_root), "--seed", "7"]
    run_train(*common, "--out", str(tmp_path / "split"), "--images", "12")
    result = CliRunner().invoke(train, ["--out", str(tmp_path / "split"), "--resume", "--images", "24"])
    assert result.exit_code == 0, result.output
    run_train(*common, "--out", str(tmp_path / "whole"), "--images", "24")
    split, whole = (load_checkpoint(latest_checkpoint(tmp_path / name)) for name in ("split", "whole"))
    assert split["images_seen"] == whole["images_seen"] == 24
    for part in ("generator", "discriminator", "ema"):
        for key, value in whole[part].items():
            assert torch.equal(split[part][key], value), (part, key)
    for part in ("g_optimizer", "d_optimizer"):
        for index, slots in whole[part]["state"].items():
            for name, value in slots.items():
                assert torch.equal(split[part]["state"][index][name], value), (part, index, name)


def test_resume_drops_log_records_past_the_checkpoint(fdf_root, tmp_path):
    run_train("--data", str(fdf_root), "--out", str(tmp_path), "--images", "12", "--log-every", "4", "--checkpoint-every", "8")
    latest_checkpoint(tmp_path).unlink()  # as if the run died after logging 12 images but before saving them
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('\n{"images": 16, "d_lo')  # a damaged line, and the run died in the middle of writing the next one
    run_train("--out", str(tmp_path), "--resume", "--images", "16", "--log-every", "4", "--checkpoint-every", "8")
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["images"] for r in records] == [4, 8, 12, 16]


@pytest.mark.parametrize("discriminator", ["residual", "projected"])
def test_the_diversity_term_is_logged_and_may_change_on_resume(fdf_root, tmp_path, discriminator):
    common = ["--log-every", "4", "--discriminator", discriminator]
    run_train("--data", str(fdf_root), "--out", str(tmp_path), "--images", "8", *common)
    run_train("--out", str(tmp_path), "--resume", "--images", "16", "--diversity", "2", *common)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert ["diversity" in r for r in records] == [False, False, True, True]
    assert all(0 < r["diversity"] < 10 for r in records[2:])
    assert json.loads((tmp_path / "config.json").read_text())["diversity_weight"] == 2


def test_resume_refuses_changed_options(trained_run):
    result = CliRunner().invoke(train, ["--out", str(trained_run), "--resume", "--width", "0.5"])
    assert result.exit_code != 0 and "width" in result.output


def test_a_resumed_run_takes_a_new_learning_rate_and_ema_half_life(fdf_root, tmp_path):
    run_train("--data", str(fdf_root), "--out", str(tmp_path), "--images", "8")
    before = load_checkpoint(latest_checkpoint(tmp_path))
    run_train("--out", str(tmp_path), "--resume", "--images", "12", "--lr", "0.0002", "--ema-half-life", "500")
    after = load_checkpoint(latest_checkpoint(tmp_path))
    for key in ("g_optimizer", "d_optimizer"):
        assert [g["lr"] for g in before[key]["param_groups"]] == [0.001]
        assert [g["lr"] for g in after[key]["param_groups"]] == [0.0002]
    assert after["config"]["lr"] == 0.0002 and after["config"]["ema_half_life"] == 500


@pytest.mark.parametrize(
    "switches",
    [
        ["--plain-conv"],
        ["--penalty", "wgan-gp"],
        ["--penalty", "wgan-gp-masked", "--penalty-interval", "2", "--l1-images", "8", "--precision", "bf16"],
        ["--mask", "free-form", "--no-flip"],
    ],
)
def test_ablation_switches_train(fdf_root, tmp_path, switches):
    run_train("--data", str(fdf_root), "--out", str(tmp_path), "--images", "8", "--log-every", "4", *switches)
    state = load_checkpoint(latest_checkpoint(tmp_path))
    assert all(torch.isfinite(v).all() for v in state["generator"].values())
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["d_loss"])) for r in records)
    if "--plain-conv" in switches:
        assert state["model"]["imputed"] is False
    if "--penalty-interval" in switches:
        assert "penalty" in records[0] and "penalty" not in records[1] and "l1" in records[0]


def test_export_then_eval(trained_run, fdf_root, tmp_path):
    weights = tmp_path / "g.safetensors"
    result = CliRunner().invoke(export, [str(trained_run), "-o", str(weights)])
    assert result.exit_code == 0, result.output
    generator, metadata = load_generator(weights)
    ema = load_checkpoint(latest_checkpoint(trained_run))["ema"]
    assert metadata["images_seen"] == 12
    assert metadata["crop"] == {"expand": 1.25}  # the data's prepare report, recorded by the run
    assert all(torch.equal(generator.state_dict()[k], v) for k, v in ema.items())
    half = tmp_path / "half.safetensors"
    result = CliRunner().invoke(export, [str(trained_run), "-o", str(half), "--half", "--expand", "1.25"])  # agrees
    assert result.exit_code == 0, result.output
    assert half.stat().st_size < 0.6 * weights.stat().st_size
    generator_half, metadata_half = load_generator(half)
    assert metadata_half["crop"] == {"expand": 1.25}
    assert all(torch.equal(generator_half.state_dict()[k], v.half().float()) for k, v in ema.items())
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(evaluate, ["--data", str(fdf_root), "--weights", str(weights), "--device", "cpu",
                                           "--limit", "8", "--json", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads(out.read_text())
    assert results["images"] == 8 and 0 < results["ssim"] < 1 and results["psnr"] > 0
    assert set(results["skipped"]) == {"lpips", "fid"} and "--fid-inception" in results["skipped"]["fid"]


def test_dry_run_resolves_keypoints_from_the_data(fdf_root, tmp_path):
    result = CliRunner().invoke(train, [*TINY, "--data", str(fdf_root), "--out", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert '"num_keypoints": 5' in result.output and not (tmp_path / "checkpoints").exists()


def test_ema_follows_a_ten_thousand_image_half_life():
    assert ema_beta(10_000, 10_000) == 0.5
    assert ema_beta(32, 10_000) ** (10_000 / 32) == pytest.approx(0.5)
    ema, model = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    expected = 0.25 * ema.weight.detach() + 0.75 * model.weight.detach()
    update_ema(ema, model, 0.25)
    assert torch.allclose(ema.weight, expected)


def test_a_new_run_into_an_existing_run_folder_is_refused(trained_run, fdf_root):
    before = sorted(p.name for p in (trained_run / "checkpoints").iterdir())
    config = (trained_run / "config.json").read_text()
    result = CliRunner().invoke(train, [*TINY, "--data", str(fdf_root), "--out", str(trained_run), "--seed", "7"])
    assert result.exit_code == 1 and "already holds a run: --resume it" in result.output
    assert sorted(p.name for p in (trained_run / "checkpoints").iterdir()) == before
    assert (trained_run / "config.json").read_text() == config


def test_a_run_that_stopped_before_its_first_checkpoint_can_be_started_again(fdf_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / "log.jsonl").write_text('{"images": 4}\n')  # left by a run that failed at its first step
    run_train("--data", str(fdf_root), "--out", str(out), "--images", "8", "--log-every", "4")
    assert [json.loads(line)["images"] for line in (out / "log.jsonl").read_text().splitlines()] == [4, 8]


def test_broken_data_and_checkpoints_are_one_line_errors(fdf_root, tmp_path, trained_run):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(fdf_root, broken)
    (broken / "train" / "images" / "32" / "5.png").write_bytes(b"junk")
    for workers in ("0", "2"):  # with workers the error comes back wrapped in the worker's traceback
        result = CliRunner().invoke(train, [*TINY, "--workers", workers, "--data", str(broken), "--out",
                                            str(tmp_path / f"run{workers}"), "--images", "12"])
        assert result.exit_code == 1, result.output
        assert "5.png: not a readable image" in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    run = tmp_path / "cut"
    shutil.copytree(trained_run, run)
    last = latest_checkpoint(run)
    last.write_bytes(last.read_bytes()[:1000])
    result = CliRunner().invoke(export, [str(run), "-o", str(tmp_path / "g.safetensors")])
    assert result.exit_code == 1 and f"{last}: not a readable checkpoint" in result.output
    result = CliRunner().invoke(train, ["--out", str(run), "--resume", "--images", "24"])
    assert result.exit_code == 1 and "not a readable checkpoint" in result.output


def test_a_diverged_run_stops_in_one_line_without_a_checkpoint(fdf_root, tmp_path, monkeypatch):
    import deepanon.training.loop as loop

    real_step = loop.train_step

    def diverging_step(models, batch, cfg, process, images_seen):
        stats = real_step(models, batch, cfg, process, images_seen)
        return stats | {"g_loss": torch.tensor(float("nan"))} if images_seen >= 8 else stats

    monkeypatch.setattr(loop, "train_step", diverging_step)
    out = tmp_path / "run"
    result = CliRunner().invoke(train, [*TINY, "--data", str(fdf_root), "--out", str(out), "--images", "16",
                                        "--log-every", "8", "--checkpoint-every", "4"])
    assert result.exit_code == 1 and "training diverged by 12 images" in result.output  # the step of 8-12 is NaN
    assert len(result.output.strip().splitlines()) == 1
    assert latest_checkpoint(out).name == f"{8:012d}.pt"  # the checkpoint at 12 images was not written
    assert len(list((out / "checkpoints").glob("*.pt"))) == 2
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == [f"{4:012d}.png", f"{8:012d}.png"]


def test_landmarks_in_pixels_are_refused_in_one_line(fdf_root, tmp_path):
    import shutil

    import numpy as np

    data = tmp_path / "pixels"
    shutil.copytree(fdf_root, data)
    landmarks = np.load(data / "train" / "landmarks.npy")
    landmarks[[3, 7]] *= 32  # two faces' keypoints in pixels of the 32² crop
    np.save(data / "train" / "landmarks.npy", landmarks)
    result = CliRunner().invoke(train, [*TINY, "--data", str(data), "--out", str(tmp_path / "run"), "--images", "4"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
    first = str(np.round(landmarks[3].astype(float), 3).tolist())
    assert "landmarks.npy: keypoints of 2 of 12 faces lie outside [0, 1]" in result.output
    assert f"(first: face 3, {first})" in result.output and "not pixels" in result.output
    assert not (tmp_path / "run" / "config.json").exists()


def test_the_run_records_its_data_crop_ratio_and_export_reads_it_from_the_run(fdf_root, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(fdf_root, data)
    for split in ("train", "val"):
        (data / split / "prepare_report.json").write_text('{"expand": 1.5}')
    run_train("--data", str(data), "--out", str(tmp_path / "run"), "--images", "4")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["expand"] == 1.5
    assert load_checkpoint(latest_checkpoint(tmp_path / "run"))["config"]["expand"] == 1.5
    data.rename(tmp_path / "moved")  # the data folder moves (or is re-prepared) after training
    (tmp_path / "moved" / "train" / "prepare_report.json").write_text('{"expand": 2.0}')
    weights = tmp_path / "g.safetensors"
    result = CliRunner().invoke(export, [str(tmp_path / "run"), "-o", str(weights)])
    assert result.exit_code == 0, result.output
    assert load_generator(weights)[1]["crop"] == {"expand": 1.5}
    result = CliRunner().invoke(export, [str(tmp_path / "run"), "-o", str(weights), "--expand", "2.0"])
    assert result.exit_code == 1 and "--expand 2.0 but the run in" in result.output and "records 1.5" in result.output


def test_data_without_a_prepare_report_needs_expand_and_a_report_must_agree_with_it(fdf_root, tmp_path):
    import shutil

    data = tmp_path / "fdf"
    shutil.copytree(fdf_root, data)
    for split in ("train", "val"):
        (data / split / "prepare_report.json").unlink()
    result = CliRunner().invoke(train, [*TINY, "--data", str(data), "--out", str(tmp_path / "a"), "--images", "4"])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "does not record the crop ratio of its crops; pass --expand" in result.output
    assert not (tmp_path / "a" / "config.json").exists()
    run_train("--data", str(data), "--out", str(tmp_path / "b"), "--images", "4", "--expand", "1.7")
    assert json.loads((tmp_path / "b" / "config.json").read_text())["expand"] == 1.7
    result = CliRunner().invoke(train, [*TINY, "--data", str(fdf_root), "--out", str(tmp_path / "c"), "--expand", "1.7"])
    assert result.exit_code == 1 and "--expand 1.7 but the data in" in result.output and "records 1.25" in result.output


def test_a_run_that_does_not_record_its_crop_ratio_exports_with_expand_and_resumes(trained_run, tmp_path):
    import shutil

    from deepanon.training.checkpoint import save_checkpoint

    run = tmp_path / "older"
    shutil.copytree(trained_run, run)
    path = latest_checkpoint(run)
    state = load_checkpoint(path)
    del state["config"]["expand"]
    save_checkpoint(state, path)
    config = json.loads((run / "config.json").read_text())
    del config["expand"]
    (run / "config.json").write_text(json.dumps(config))
    weights = tmp_path / "g.safetensors"
    result = CliRunner().invoke(export, [str(run), "-o", str(weights)])
    assert result.exit_code == 1 and "does not record the crop ratio of its crops; pass --expand" in result.output
    assert CliRunner().invoke(export, [str(run), "-o", str(weights), "--expand", "1.3"]).exit_code == 0
    assert load_generator(weights)[1]["crop"] == {"expand": 1.3}
    run_train("--out", str(run), "--resume", "--images", "16")  # takes the crop ratio its data gives now
    assert json.loads((run / "config.json").read_text())["expand"] == 1.25


def test_export_names_and_eval_limits_are_checked(trained_run, fdf_root, tmp_path, monkeypatch):
    result = CliRunner().invoke(export, [str(trained_run), "-o", str(tmp_path / "w.json")])
    assert result.exit_code == 2 and "*.safetensors" in result.output and not (tmp_path / "w.json").exists()
    import shutil

    weights = tmp_path / "g.safetensors"
    prepared = tmp_path / "prepared"
    shutil.copytree(fdf_root, prepared)
    monkeypatch.chdir(tmp_path)
    run_train("--data", "prepared", "--out", str(tmp_path / "relative"), "--images", "4")
    assert json.loads((tmp_path / "relative" / "config.json").read_text())["data"] == str(prepared.absolute())
    assert CliRunner().invoke(export, [str(tmp_path / "relative"), "-o", str(weights)]).exit_code == 0
    for option, value in (("--limit", "0"), ("--limit", "-1"), ("--batch-size", "0")):
        result = CliRunner().invoke(evaluate, ["--data", str(fdf_root), "--weights", str(weights), option, value])
        assert result.exit_code == 2 and option in result.output
    out = tmp_path / "new" / "deep" / "eval.json"
    result = CliRunner().invoke(evaluate, ["--data", str(fdf_root), "--weights", str(weights), "--device", "cpu",
                                           "--limit", "4", "--json", str(out)])
    assert result.exit_code == 0 and json.loads(out.read_text())["images"] == 4


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_signal_during_training_saves_a_checkpoint_and_exits_143_or_130(fdf_root, tmp_path, signal_name):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "deepanon", "train", *TINY, "--data", str(fdf_root), "--out", str(out),
         "--images", "100000", "--checkpoint-every", "100000", "--log-every", "4", "--grid-every", "100000",
         "--no-compile"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    deadline = time.time() + 120
    while not (out / "log.jsonl").is_file() and time.time() < deadline:  # a step is done: the signal comes mid-run
        time.sleep(0.1)
    process.send_signal(getattr(signal, signal_name))
    process.wait(timeout=60)
    stderr = process.stderr.read().decode()
    assert process.returncode == 128 + getattr(signal, signal_name), stderr[-2000:]
    assert "saved a checkpoint" in stderr and "Traceback" not in stderr
    checkpoints = out / "checkpoints"
    assert not [p.name for p in checkpoints.iterdir() if p.name.startswith(".")]
    umask = os.umask(0)
    os.umask(umask)
    assert latest_checkpoint(out).stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any output, not 0600
    stopped_at = load_checkpoint(latest_checkpoint(out))["images_seen"]
    assert stopped_at >= 4
    run_train("--out", str(out), "--resume", "--images", str(stopped_at + 4))
    assert load_checkpoint(latest_checkpoint(out))["images_seen"] == stopped_at + 4


def test_fdf_keypoints_need_keypoints_0_and_such_weights_anonymize_photos(tmp_path, astronaut):
    from PIL import Image

    from deepanon.cli import main
    from tests.training.conftest import write_fdf

    fdf = write_fdf(tmp_path / "fdf", n=4, keypoints=7)  # FDF's 7 COCO body keypoints: none at inference
    run_train("--data", str(fdf), "--out", str(tmp_path / "run"), "--images", "4", "--keypoints", "0")
    weights = tmp_path / "g.safetensors"
    assert CliRunner().invoke(export, [str(tmp_path / "run"), "-o", str(weights)]).exit_code == 0
    assert load_generator(weights)[0].config.num_keypoints == 0
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    result = CliRunner().invoke(main, ["image", str(tmp_path / "a.png"), "--weights", str(weights), "--quiet",
                                       "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["files"][0]["faces"][0]["replaced_by"] == "generate"
    result = CliRunner().invoke(train, [*TINY, "--data", str(fdf), "--out", str(tmp_path / "r2"), "--keypoints", "5"])
    assert result.exit_code == 1 and "0: train without pose" in result.output
