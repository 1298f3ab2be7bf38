"""Safetensors weights: round trip, strict loading, checksums, clear errors."""

import json

import pytest
import torch

from deepanon.models import Generator, ModelConfig
from deepanon.weights import WeightsError, config_path, load_generator, save_generator, sha256_of
from tests.models.conftest import face_batch

SMALL = ModelConfig(image_size=32, num_keypoints=5, width=0.25)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    g = Generator(SMALL).eval()
    path = tmp_path / "g.safetensors"
    digest = save_generator(path, g, expand=1.5, metadata={"images_seen": 7})
    return g, path, digest


def test_round_trip_gives_identical_outputs(saved):
    g, path, digest = saved
    loaded, metadata = load_generator(path, sha256=digest)
    assert metadata == {"images_seen": 7, "crop": {"expand": 1.5}}
    assert loaded.config == SMALL
    image, certainty, pose = face_batch(2, 5, size=32)
    with torch.no_grad():
        assert torch.equal(g(image * certainty, certainty, pose), loaded(image * certainty, certainty, pose))
    assert json.loads(config_path(path).read_text())["sha256"] == digest == sha256_of(path)


def test_fp16_file_loads_into_an_fp32_model(tmp_path, saved):
    g, _, _ = saved
    path = tmp_path / "half.safetensors"
    save_generator(path, g, expand=1.25, dtype=torch.float16)
    loaded, _ = load_generator(path)
    assert next(loaded.parameters()).dtype == torch.float32
    assert torch.equal(loaded.to_rgb["4"].weight, g.to_rgb["4"].weight.half().float())


def test_wrong_checksum_is_refused(saved):
    _, path, _ = saved
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_generator(path, sha256="0" * 64)


def test_corrupted_file_is_refused(saved):
    _, path, _ = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_generator(path)


def test_truncated_file_without_checksum_is_refused(saved):
    _, path, _ = saved
    path.write_bytes(path.read_bytes()[:100])
    record = json.loads(config_path(path).read_text())
    record["sha256"] = None
    config_path(path).write_text(json.dumps(record))
    with pytest.raises(WeightsError, match="not a readable safetensors"):
        load_generator(path)


def test_config_that_does_not_fit_the_tensors_is_refused(saved):
    _, path, _ = saved
    record = json.loads(config_path(path).read_text())
    record["model"]["width"] = 0.5
    config_path(path).write_text(json.dumps(record))
    with pytest.raises(WeightsError, match="do not fit the model config"):
        load_generator(path)


def test_missing_files_are_named(tmp_path, saved):
    _, path, _ = saved
    with pytest.raises(WeightsError, match="weights file not found"):
        load_generator(tmp_path / "nope.safetensors")
    config_path(path).unlink()
    with pytest.raises(WeightsError, match="config file g.json is missing"):
        load_generator(path)


@pytest.mark.parametrize("crop", [None, {}, {"expand": None}, {"expand": "1.25"}, {"expand": 0.8}, {"expand": True}])
def test_weights_without_a_valid_crop_ratio_are_refused(saved, crop):
    _, path, _ = saved
    record = json.loads(config_path(path).read_text())
    if crop is None:
        del record["metadata"]["crop"]
    else:
        record["metadata"]["crop"] = crop
    config_path(path).write_text(json.dumps(record))
    with pytest.raises(WeightsError, match=r"g\.json: not a valid deepanon weights config \(metadata\.crop\.expand"):
        load_generator(path)


def test_weights_are_not_written_without_a_valid_crop_ratio(tmp_path):
    with pytest.raises(ValueError, match="metadata.crop.expand"):
        save_generator(tmp_path / "g.safetensors", Generator(SMALL), expand=0.5)
    assert not list(tmp_path.iterdir())


def test_the_bundled_weights_carry_their_crop_ratio():
    from deepanon.weights import crop_expand, default_weights_path, read_record

    assert crop_expand(read_record(default_weights_path())["metadata"]) == 1.25  # weights/README.md, the model card
