"""Generator weights on disk: a safetensors file plus a JSON beside it holding the model config and metadata, which
always include the crop ratio the generator was trained with (``metadata["crop"]["expand"]``, crop side / face box
side: the anonymizer crops faces with it).

Loading is strict: a missing file, a wrong sha256, a config that does not build, no crop ratio, or a tensor whose
name, shape or dtype does not fit the model raises ``WeightsError`` with the path and the reason. Nothing is ever
unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from deepanon.files import atomic_write, sha256_of
from deepanon.models import Generator, ModelConfig

PACKAGE_ROOT = Path(__file__).resolve().parent


class WeightsError(RuntimeError):
    """A weights file cannot be used; the message names the file and the reason."""


def config_path(weights_path: Path) -> Path:
    """The JSON that sits beside ``weights_path`` (``x.safetensors`` -> ``x.json``)."""
    return Path(weights_path).with_suffix(".json")


def crop_expand(metadata: dict[str, Any]) -> float:
    """The crop ratio in a weights file's metadata, ``metadata["crop"]["expand"]``; ValueError unless it is a number
    >= 1."""
    crop = metadata.get("crop")
    value = crop.get("expand") if isinstance(crop, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 1:
        raise ValueError(f"metadata.crop.expand (crop side / face box side, >= 1) is {value!r}")
    return float(value)


def save_generator(
    path: Path,
    generator: Generator,
    *,
    expand: float,
    metadata: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> str:
    """Write ``generator`` to ``path`` (safetensors, optionally cast to ``dtype``) and its config JSON with ``metadata``
    and the crop ratio ``expand`` it was trained with; return the sha256."""
    path = Path(path)
    metadata = {**(metadata or {}), "crop": {"expand": expand}}
    crop_expand(metadata)  # raises for an invalid ratio before anything is written
    tensors = {k: (v.to(dtype) if dtype is not None else v).detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))
    digest = sha256_of(path)
    record = {"model": generator.config.to_dict(), "sha256": digest, "metadata": metadata}
    atomic_write(config_path(path), lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))
    return digest


def read_record(path: Path) -> dict[str, Any]:
    """The JSON record beside a weights file: ``{"model": {...}, "sha256": str, "metadata": {"crop": {"expand": float},
    ...}}``."""
    cfg_file = config_path(path)
    if not cfg_file.is_file():
        raise WeightsError(f"{path}: config file {cfg_file.name} is missing beside the weights")
    try:
        record = json.loads(cfg_file.read_text())
        ModelConfig.from_dict(record["model"])
        crop_expand(record["metadata"])
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise WeightsError(f"{cfg_file}: not a valid deepanon weights config ({err})") from err
    return record


def load_generator(
    path: Path, *, sha256: str | None = None, map_location: str | torch.device = "cpu"
) -> tuple[Generator, dict[str, Any]]:
    """Build the generator described by the JSON beside ``path`` and load its tensors strictly.

    ``sha256`` (else the one recorded in the JSON) must match the file. Returns (generator in eval mode, metadata);
    the metadata hold the crop ratio (:func:`crop_expand`).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    record = read_record(path)
    expected = sha256 or record.get("sha256")
    if expected and sha256_of(path) != expected:
        raise WeightsError(f"{path}: sha256 mismatch (file is corrupted or not the expected weights)")
    generator = Generator(ModelConfig.from_dict(record["model"]))
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"{path}: not a readable safetensors file ({err})") from err
    reference = generator.state_dict()
    problems = [
        f"{k}: {tuple(v.shape)} in file, {tuple(reference[k].shape)} in model"
        for k, v in tensors.items()
        if k in reference and v.shape != reference[k].shape
    ]
    missing = sorted(set(reference) - set(tensors))
    unexpected = sorted(set(tensors) - set(reference))
    if problems or missing or unexpected:
        detail = "; ".join(problems + [f"missing {m}" for m in missing[:5]] + [f"unexpected {u}" for u in unexpected[:5]])
        raise WeightsError(f"{path}: tensors do not fit the model config ({detail})")
    generator.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    return generator.eval().to(map_location), record["metadata"]


DEFAULT_WEIGHTS_NAME = "default.safetensors"


def default_weights_path() -> Path:
    """The bundled default generator: package data ``deepanon.bundled`` once installed, else ``weights/`` beside the
    package in a source checkout."""
    from importlib.resources import files

    candidates = [PACKAGE_ROOT.parent / "weights" / DEFAULT_WEIGHTS_NAME]
    try:
        candidates.insert(0, Path(str(files("deepanon.bundled") / DEFAULT_WEIGHTS_NAME)))
    except ModuleNotFoundError:
        pass
    return next((p for p in candidates if p.is_file()), candidates[-1])
