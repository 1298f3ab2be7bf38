"""Detector names and the factory that builds each configuration (choices measured in benchmarks/NOTES.md)."""

from __future__ import annotations

import enum

from deepanon.detection.base import Detector
from deepanon.detection.centerface import CenterFace
from deepanon.detection.compose import Alternating, Reoriented, Tiled, Union


class DetectorName(str, enum.Enum):
    """``fast``, ``accurate`` and ``thorough`` run CenterFace at several image scales; the others run one backend once."""

    FAST = "fast"
    ACCURATE = "accurate"
    THOROUGH = "thorough"
    CENTERFACE = "centerface"
    YUNET = "yunet"


DEFAULT = DetectorName.ACCURATE
DEFAULT_THREADS = 2  # onnxruntime intra-op threads: 0.090 s a WIDER photo against 0.127 with 1 (benchmarks/NOTES.md)

# Per multi-scale mode: (image scale, lowest score threshold) of each CenterFace pass. Upscaled passes find small
# faces; the pass at the image's own scale finds the 32-64 px faces that upscaling loses, the 0.5x pass the largest
# ones; the coarser passes are confident on what they find, so their thresholds are floored to keep their false
# positives out. On 300 WIDER FACE photos (benchmarks/NOTES.md, fifth detection run): recall 0.766 at 1.65 false
# positives/photo for fast, 0.800 at 1.81 for accurate (deface: 0.743 at 2.68). Thorough is measured in the fourth
# run only, with duplicates fused into a score-weighted mean box rather than their enclosing box: 0.833 at 1.82. Time
# against deface's on the same photos (fourth run): fast 0.97x, accurate 1.80x, thorough 2.25x.
PASSES: dict[DetectorName, tuple[tuple[float, float], ...]] = {
    DetectorName.FAST: ((1.3, 0.0), (0.5, 0.5)),
    DetectorName.ACCURATE: ((1.7, 0.0), (1.0, 0.3), (0.5, 0.5)),
    DetectorName.THOROUGH: ((2.0, 0.0), (1.0, 0.3), (0.5, 0.5)),
}
# Plus, in every CenterFace mode, an overview of the whole image at OVERVIEW_SIDE px, only for images at least twice
# that size (1280 px: 720p frames too; below that, the 0.5x pass already sees them that small): CenterFace sizes faces
# up to ~500 px, and the 0.5x pass cuts a 12-megapixel photo into tiles, so without the overview a close-up face of
# 1,000+ px is found only in part (an eye and the mouth left as they are) or not at all.
OVERVIEW_SIDE, OVERVIEW_FLOOR = 640, 0.5
# In a video, ``accurate`` and ``thorough`` run in full on every CLIP_FULL_EVERY-th frame and without their upscaled
# first pass (the costliest; it finds the smallest faces) on the frames between, where tracking bridges the faces
# that are missed (``compose.Alternating``; CLIP_FULL_EVERY must not exceed the tracker's gap + 1). Measured against
# every frame in full by benchmarks/video_detection.py (benchmarks/NOTES.md).
CLIP_FULL_EVERY = 5
# With ``turns``, every CenterFace mode also looks for photos turned by 90°, 180° and 270° (scanned or saved sideways
# or upside down), unless the mode finds at least TURN_SETTLED = (count, score) faces upright (in a video: on a
# search frame, and not while the last search found turned faces): a probe pass at (scale, lowest threshold) on each
# turn, and the whole mode on a turn where the probe finds more faces scoring at least TURN_CONFIDENT than the mode
# finds upright (``compose.Reoriented``). Chosen on half of the WIDER photos turned those ways and reported on the
# other half (benchmarks/rotation_gates.py, benchmarks/NOTES.md).
TURN_PROBE = (0.7, 0.5)
TURN_CONFIDENT = 0.5
TURN_SETTLED = (2, 0.9)

DEFAULT_THRESHOLD: dict[DetectorName, float] = {
    DetectorName.FAST: 0.25,
    DetectorName.ACCURATE: 0.3,
    DetectorName.THOROUGH: 0.3,
    DetectorName.CENTERFACE: 0.2,
    DetectorName.YUNET: 0.5,
}

# In a video, faces scoring down to TRACK_THRESHOLD (or the threshold, if lower) are kept, but they only continue a
# track that a face scoring at least the threshold started (``tracking.FaceTracker``'s ``confirm``): a face turning
# into profile or leaving the frame keeps its cover while its score falls (benchmarks/NOTES.md).
TRACK_THRESHOLD = 0.1

YUNET_TILE = 960  # yuface warns above this size


def create_detector(name: DetectorName | str = DEFAULT, threshold: float | None = None,
                    threads: int = DEFAULT_THREADS, turns: bool = False, spin_wait: bool = True) -> Detector:
    """Build a detector by name.

    threshold: score threshold in [0, 1] (None: the measured default of that detector, ``DEFAULT_THRESHOLD``).
    threads: onnxruntime intra-op threads for CenterFace (YuNet uses OpenMP's own threads).
    turns: also find faces in photos turned by 90°, 180° and 270° (``TURN_PROBE``; CenterFace modes only).
    spin_wait: False when other work shares the cores at the same time (``centerface.session``).
    Raises ValueError for an unknown name and ImportError when YuNet's optional package is missing.
    """
    name = DetectorName(name)
    threshold = DEFAULT_THRESHOLD[name] if threshold is None else threshold
    if name is DetectorName.YUNET:
        from deepanon.detection.yunet import YuNet

        return Tiled(YuNet(threshold), tile=YUNET_TILE)

    def centerface(floor: float = 0.0) -> CenterFace:
        return CenterFace(max(threshold, floor), threads, spin_wait)

    overview = Tiled(centerface(OVERVIEW_FLOOR), max_side=OVERVIEW_SIDE, skip_up_to=2 * OVERVIEW_SIDE - 1)

    def multiscale(passes: tuple[tuple[float, float], ...]) -> Detector:
        return Union([*(Tiled(centerface(floor), scale) for scale, floor in passes), overview])

    if name is DetectorName.CENTERFACE:
        upright = Union([Tiled(centerface()), overview])
    elif name is DetectorName.FAST:
        upright = multiscale(PASSES[name])
    else:
        upright = Alternating(multiscale(PASSES[name]), multiscale(PASSES[name][1:]), CLIP_FULL_EVERY)
    if not turns:
        return upright
    probe_scale, probe_floor = TURN_PROBE
    return Reoriented(upright, Tiled(centerface(probe_floor), probe_scale), TURN_CONFIDENT, TURN_SETTLED)
