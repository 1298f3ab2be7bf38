"""``deepanon image SRC -o DST --ray`` on a local Ray instance of 2 workers: the local path's outputs bit for bit,
one line for a corrupt file, and a run whose worker is killed completes on a rerun without redoing finished files."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from deepanon.cli import main

pytest.importorskip("ray.data")
pytestmark = pytest.mark.slow

COMMON = ["--quiet", "--detector", "centerface", "--upright-only", "--seed", "7"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory, astronaut, grace_hopper):
    """Six real photos in two folders, and a corrupt one."""
    root = tmp_path_factory.mktemp("tree") / "photos"
    (root / "more").mkdir(parents=True)
    pictures = [astronaut, grace_hopper, astronaut[:, ::-1], grace_hopper[::2, ::2], astronaut[64:448, 64:448],
                np.ascontiguousarray(grace_hopper[:, ::-1])]
    for i, pixels in enumerate(pictures):
        Image.fromarray(np.ascontiguousarray(pixels)).save(root / ("more" if i % 2 else ".") / f"p{i}.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


@pytest.fixture(scope="module")
def local(tree, weights, tmp_path_factory):
    """The local path's outputs and report (one torch thread, as each of the 2 workers on 2 CPUs)."""
    out = tmp_path_factory.mktemp("local") / "out"
    report = out.parent / "report.json"
    result = CliRunner().invoke(main, ["image", *COMMON, "--threads", "1", str(tree), "-o", str(out), "--weights",
                                       str(weights), "--report", str(report)])
    assert result.exit_code == 1 and "broken.png: not a readable image" in result.output, result.output
    return out, json.loads(report.read_text())


def tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def ray_command(tree, out, weights, report, *extra):
    return [sys.executable, "-m", "deepanon", "image", *COMMON, str(tree), "-o", str(out), "--weights", str(weights),
            "--report", str(report), "--ray", "--workers", "2", *extra]


def test_ray_outputs_equal_the_local_path_bit_for_bit(tree, weights, local, tmp_path):
    out, report = tmp_path / "out", tmp_path / "report.json"
    result = subprocess.run(ray_command(tree, out, weights, report), capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {tree / 'broken.png'}: not a readable image (UnidentifiedImageError: cannot identify "
                      f"image file '{tree / 'broken.png'}')"]
    assert "6 file(s) written, 1 failed" in result.stderr
    local_out, local_report = local
    assert tree_bytes(out) == tree_bytes(local_out) and len(tree_bytes(out)) == 6
    saved = json.loads(report.read_text())
    strip = lambda files: [{k: v for k, v in f.items() if k != "output"} for f in files]  # noqa: E731
    assert strip(saved["files"]) == strip(local_report["files"])


def test_a_killed_worker_loses_nothing_and_a_rerun_completes_the_tree(tree, weights, local, tmp_path):
    out, report = tmp_path / "out", tmp_path / "report.json"
    journal = tmp_path / "out.deepanon-journal"
    first = subprocess.Popen(ray_command(tree, out, weights, report), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (journal.is_dir() and any(journal.iterdir())) and first.poll() is None:
        time.sleep(0.2)
    workers = subprocess.run(["pgrep", "-f", "MapWorker"], capture_output=True, text=True).stdout.split()
    assert workers, "no Ray worker to kill"
    for pid in workers[:1]:
        os.kill(int(pid), signal.SIGKILL)  # one worker dies mid-run, perhaps mid-file
    try:
        first.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate()
    for path in out.rglob("*.png"):  # every output there is complete; a killed writer's temp file is hidden
        assert path.name.startswith(".") or Image.open(path).load() is not None

    again = subprocess.run(ray_command(tree, out, weights, report), capture_output=True, text=True, timeout=600)
    assert again.returncode == 1 and "6 file(s) written, 1 failed" in again.stderr, again.stderr
    assert "already done by an earlier run" in again.stderr
    assert tree_bytes(out) == tree_bytes(local[0])  # and no temporary file is left
