"""`deepanon video` through the real CLI: the real detector on a real clip, and interruption leaving nothing behind."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from deepanon.cli import main
from deepanon.video import probe
from tests.conftest import make_clip


def test_video_cli_on_carphone(tmp_path, carphone_with_audio, weights):
    out = tmp_path / "anon.mp4"
    report = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["video", str(carphone_with_audio), "-o", str(out), "--weights", str(weights),
                                       "--report", str(report), "--quiet"])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())["files"][0]
    assert data["frames"] == 120
    assert data["faces_found"] >= 110  # the speaker's face, found in (nearly) every frame
    assert data["faces_generated"] + data["faces_covered"] == data["faces_found"] + data["boxes_bridged"]
    info, source = probe(out), probe(carphone_with_audio)
    assert info.has_audio and info.fps == pytest.approx(source.fps, abs=0.01) and info.size == source.size


def test_sigterm_mid_video_leaves_no_output_and_no_temporary_files(tmp_path):
    clip = tmp_path / "long.mp4"
    make_clip(clip, "-f", "lavfi", "-i", "testsrc=duration=60:size=320x240:rate=25", "-pix_fmt", "yuv420p")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    report = tmp_path / "r.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "deepanon", "video", str(clip), "-o", str(out_dir / "anon.mp4"), "--replace", "blur",
         "--quiet", "--report", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    deadline = time.time() + 120
    while not any(out_dir.iterdir()) and time.time() < deadline:  # wait until the encoder has started writing
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert list(out_dir.iterdir()) == []
    assert "stopped (SIGTERM): 1 file(s) not done" in stderr.decode() and "Traceback" not in stderr.decode()
    assert json.loads(report.read_text())["errors"] == ["stopped (SIGTERM): 1 file(s) not done"]


def test_ctrl_c_mid_folder_keeps_the_finished_files_and_reports_them(tmp_path, astronaut):
    from PIL import Image

    photos, out_dir, report = tmp_path / "photos", tmp_path / "out", tmp_path / "r.json"
    photos.mkdir()
    for i in range(40):
        Image.fromarray(astronaut).save(photos / f"{i:02d}.png")
    process = subprocess.Popen(
        [sys.executable, "-m", "deepanon", "image", str(photos), "-o", f"{out_dir}/", "--replace", "blur",
         "--upright-only", "--quiet", "--report", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    deadline = time.time() + 120
    while not (out_dir.is_dir() and len([p for p in out_dir.iterdir() if not p.name.startswith(".")]) >= 2) \
            and time.time() < deadline:  # two files published (temporary files are hidden)
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr.decode()[-1000:]
    written = sorted(p.name for p in out_dir.iterdir())
    assert 2 <= len(written) < 40 and all(p.endswith(".png") and not p.startswith(".") for p in written)
    data = json.loads(report.read_text())
    assert sorted(Path(f["output"]).name for f in data["files"] if f.get("output")) == written
    assert data["errors"] == [f"interrupted (Ctrl-C): {40 - len(written)} file(s) not done"]
    assert "Traceback" not in stderr.decode()


def peak_rss_mib(command: list[str]) -> float:
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "PYTHONPATH": os.getcwd()})
    _, status, usage = os.wait4(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return usage.ru_maxrss / 1024


def test_memory_stays_flat_with_video_length(tmp_path):
    peaks = {}
    for seconds in (2, 16):
        clip = tmp_path / f"{seconds}s.mp4"
        make_clip(clip, "-f", "lavfi", "-i", f"testsrc=duration={seconds}:size=320x240:rate=25", "-pix_fmt", "yuv420p")
        peaks[seconds] = peak_rss_mib([sys.executable, "-m", "deepanon", "video", str(clip), "-o",
                                       str(tmp_path / f"o{seconds}.mp4"), "--replace", "blur", "--quiet"])
    # 8× the frames (50 -> 400): streaming keeps the peak within a few MiB (a buffered video would add ~80 MiB)
    assert peaks[16] < peaks[2] + 25, peaks


def test_summary_names_blacked_out_and_bridged_frames(tmp_path, capsys):
    from deepanon.cli import Run, finish
    from deepanon.report import FileReport

    report = FileReport("clip.mp4", output="clip_anonymized.mp4", frames=40, blacked_out_frames=[7],
                        bridged_frames=list(range(3, 28)))
    path = tmp_path / "r.json"
    finish(Run([], [], [], path, detect_only=False, reports=[report]))
    err = capsys.readouterr().err
    assert "clip.mp4: detection failed on 1 frame(s), written all black: 7" in err
    assert "clip.mp4: 25 frame(s) with a face covered at its tracked box (missed by the detector): 3, 4," in err
    assert "22 … and 5 more" in err
    saved = json.loads(path.read_text())["files"][0]
    assert saved["blacked_out_frames"] == [7] and saved["bridged_frames"] == list(range(3, 28))


@pytest.mark.parametrize(("command", "options", "cores", "torch_threads", "detector_threads", "spin_wait"), [
    ("video", [], 2, 1, 2, False),  # detection runs while faces are generated: torch gets what the detector leaves
    ("video", [], 16, 14, 2, False),
    ("video", ["--threads", "3"], 2, 3, 3, False),
    ("video", ["--boxes", "BOXES"], 2, None, 2, True),  # nothing is detected: generation has the cores to itself
    ("image", [], 2, None, 2, True),
])
def test_thread_defaults_when_detection_and_generation_overlap(monkeypatch, tmp_path, astronaut, command, options,
                                                              cores, torch_threads, detector_threads, spin_wait):
    import imageio.v3 as iio
    import torch

    import deepanon.cli as cli
    from deepanon.api import SetupError
    from deepanon.report import SCHEMA

    source = tmp_path / ("clip.mp4" if command == "video" else "photo.png")
    if command == "video":
        make_clip(source, "-f", "lavfi", "-i", "testsrc=duration=1:size=64x48:rate=5", "-pix_fmt", "yuv420p")
    else:
        iio.imwrite(source, astronaut)
    boxes = tmp_path / "faces.json"
    boxes.write_text(json.dumps({"schema": SCHEMA, "files": [{"input": str(source), "faces": []}]}))
    seen = {"torch": None}
    monkeypatch.setattr(torch, "set_num_threads", lambda n: seen.update(torch=n))
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores)  # torch's default: one per core

    def anonymizer(**options):
        seen.update(options)
        raise SetupError("stop here")

    monkeypatch.setattr(cli, "Anonymizer", anonymizer)
    given = [str(boxes) if option == "BOXES" else option for option in options]
    result = CliRunner().invoke(main, [command, str(source), "--quiet", *given])
    assert result.exit_code == 1 and "stop here" in result.output, result.output
    assert (seen["torch"], seen["detector_threads"], seen["detector_spin_wait"]) == (torch_threads, detector_threads,
                                                                                   spin_wait)
