"""Where the benchmark scripts find the project's shared data: ``../shared/data`` beside the repository."""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
VIDEOS = SHARED_DATA / "videos"  # the shared clips, the video benchmarks' default
