"""The bundled default generator: present, checksum-verified, and it really replaces the example photo's face."""

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from deepanon.cli import main
from deepanon.weights import config_path, default_weights_path, load_generator, sha256_of


def test_bundled_weights_load_with_their_checksum_and_crop_geometry():
    path = default_weights_path()
    record = json.loads(config_path(path).read_text())
    assert sha256_of(path) == record["sha256"]
    generator, metadata = load_generator(path)
    assert generator.config.num_keypoints == 5
    assert metadata["crop"]["expand"] == 1.25 and metadata["images_seen"] > 0
    assert path.stat().st_size < 8_000_000  # fp16, small enough to ship


def test_readme_command_on_the_bundled_example(tmp_path):
    """`deepanon image examples/astronaut.jpg` with no weights option (the README's first command)."""
    source = Path(__file__).resolve().parent.parent / "examples" / "astronaut.jpg"
    out = tmp_path / "out.png"
    report = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["image", str(source), "-o", str(out), "--quiet", "--report", str(report)])
    assert result.exit_code == 0, result.output
    faces = json.loads(report.read_text())["files"][0]["faces"]
    assert [f["replaced_by"] for f in faces] == ["generate"]
    x0, y0, x1, y1 = (int(v) for v in faces[0]["box"])
    before = np.asarray(Image.open(source).convert("RGB")).astype(int)
    after = np.asarray(Image.open(out)).astype(int)
    assert np.abs(after[y0:y1, x0:x1] - before[y0:y1, x0:x1]).mean() > 10  # the face is replaced
    assert np.abs(after[:, :100] - before[:, :100]).max() == 0  # far from the face: bit for bit (PNG output)
