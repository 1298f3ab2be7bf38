"""Running out of disk while writing: a clear error and no partial output (a tiny tmpfs; needs root to mount)."""

import os
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from deepanon.cli import main


@pytest.fixture
def tiny_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("tmpfs mount not permitted here")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_image_output_on_a_full_disk_fails_cleanly(tmp_path, tiny_disk, astronaut):
    source = tmp_path / "a.png"
    Image.fromarray(astronaut).save(source)  # ~500 kB of PNG does not fit in 64 kB
    small = tmp_path / "small.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(small)
    result = CliRunner().invoke(main, ["image", str(source), str(small), "-o", str(tiny_disk), "--replace", "blur", "--quiet"])
    assert result.exit_code == 1
    assert "a.png" in result.output and "No space left" in result.output
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["small.png"]  # the other file is done, no partial a.png
