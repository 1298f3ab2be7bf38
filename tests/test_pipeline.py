"""The anonymizer: every detected face replaced, nothing else touched, failures covered."""

import numpy as np
import pytest
import torch

from deepanon.detection import Detections
from deepanon.models.compiled import CompiledForward
from deepanon.models.iconv import ImputedConv2d
from deepanon.pipeline import FaceReplacer, FaceGenerator, Precision, Replacement, cover

BOX = np.array([[170, 60, 250, 170]], np.float32)


def one_face(box=BOX) -> Detections:
    return Detections.from_boxes(box, np.array([0.9] * len(box), np.float32))


def changed_mask(a, b):
    return (a != b).any(-1)


def test_generated_face_replaces_the_box_and_leaves_the_rest_bit_identical(astronaut, tiny_generator):
    anonymizer = FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu")), expand=2.0)
    result = anonymizer.anonymize([astronaut], [one_face()])[0]
    assert result.faces[0].replacement is Replacement.GENERATE and result.faces[0].reason is None
    changed = changed_mask(result.image, astronaut)
    ys, xs = np.nonzero(changed)
    feather = 0.1 * 110
    assert xs.min() >= 170 - feather - 1 and xs.max() <= 250 + feather + 1
    assert ys.min() >= 60 - feather - 1 and ys.max() <= 170 + feather + 1
    assert changed[60:170, 170:250].mean() > 0.9
    diff = np.abs(result.image[60:170, 170:250].astype(int) - astronaut[60:170, 170:250].astype(int))
    assert diff.mean() > 20  # the face is really gone, not nudged
    assert np.array_equal(astronaut, astronaut.copy())  # input untouched (anonymize works on a copy)


def test_latent_seed_changes_the_face_and_z0_is_deterministic(astronaut, tiny_generator):
    anonymizer = FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu")), expand=2.0)
    a = anonymizer.anonymize([astronaut], [one_face()])[0].image
    b = anonymizer.anonymize([astronaut], [one_face()])[0].image
    c = anonymizer.anonymize([astronaut], [one_face()], [[7]])[0].image
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_generator_failure_covers_the_face_and_says_why(astronaut, tiny_generator):
    class Broken(FaceGenerator):
        def __call__(self, *args):
            raise RuntimeError("out of memory")

    anonymizer = FaceReplacer(Broken(tiny_generator, torch.device("cpu")), expand=2.0)
    result = anonymizer.anonymize([astronaut], [one_face()])[0]
    face = result.faces[0]
    assert face.replacement is Replacement.BLUR and "out of memory" in face.reason
    region = result.image[60:170, 170:250].astype(float)
    assert region.std(axis=(0, 1)).max() < 0.5 * astronaut[60:170, 170:250].std(axis=(0, 1)).max()


def test_degenerate_box_is_covered_and_good_faces_still_generated(astronaut, tiny_generator):
    boxes = np.array([[170, 60, 250, 170], [300, 300, 300.2, 340]], np.float32)
    result = FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu")), expand=2.0).anonymize([astronaut], [one_face(boxes)])[0]
    assert [f.replacement for f in result.faces] == [Replacement.GENERATE, Replacement.BLUR]
    assert "degenerate" in result.faces[1].reason


def test_an_inside_out_box_blacks_out_the_frame(astronaut, tiny_generator):
    # covering x 300-340, y 340-300 would cover nothing: the face it stands for may be anywhere near
    boxes = np.array([[170, 60, 250, 170], [300, 340, 340, 300]], np.float32)
    result = FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu")), expand=2.0).anonymize([astronaut],
                                                                                                     [one_face(boxes)])[0]
    assert result.faces[1].replacement is Replacement.SOLID and "inside-out" in result.faces[1].reason
    assert (result.image[200:] == 0).all()  # black, but where the other face was pasted after


def test_a_box_of_no_width_covers_its_pixel_column_and_one_outside_the_image_nothing():
    image = np.full((64, 64, 3), 200, np.uint8)
    cover(image, [30, 10, 30, 40], Replacement.SOLID)
    assert (image[7:43, 30] == 0).all() and (image[:, 31:] == 200).all() and (image[:, :30] == 200).all()
    for outside in ([-50, 10, -10, 40], [70, 10, 90, 40], [10, -40, 30, -5]):
        untouched = np.full((64, 64, 3), 200, np.uint8)
        cover(untouched, outside, Replacement.SOLID)
        assert (untouched == 200).all(), outside


@pytest.mark.parametrize("method", [Replacement.BLUR, Replacement.PIXELATE, Replacement.SOLID])
def test_cover_modes_change_only_the_grown_box(astronaut, method):
    image = astronaut.copy()
    cover(image, [170, 60, 250, 170], method)
    changed = changed_mask(image, astronaut)
    ys, xs = np.nonzero(changed)
    assert xs.min() >= 162 and xs.max() < 258 and ys.min() >= 49 and ys.max() < 181
    assert changed[60:170, 170:250].mean() > 0.8
    if method is Replacement.SOLID:
        assert (image[60:170, 170:250] == 0).all()


@pytest.mark.parametrize("method", [Replacement.BLUR, Replacement.PIXELATE, Replacement.SOLID])
@pytest.mark.parametrize("side", [2, 5, 8, 12, 15, 16, 24, 40])
def test_cover_modes_change_small_faces_too(method, side):
    # noise, so a pixel left as it was shows; pixelate once left faces under 16 px untouched (1-px blocks)
    noise = np.random.default_rng(side).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    image = noise.copy()
    cover(image, [20, 20, 20 + side, 20 + side], method)
    inside = changed_mask(image, noise)[20:20 + side, 20:20 + side]
    assert inside.mean() > 0.9, f"{method.value} left {1 - inside.mean():.0%} of a {side}-px face unchanged"


def test_frames_without_faces_pass_through_unchanged(astronaut, tiny_generator):
    result = FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu")), expand=2.0).anonymize([astronaut], [Detections.empty()])[0]
    assert result.faces == [] and np.array_equal(result.image, astronaut)


def test_batch_over_frames_matches_one_by_one(astronaut, tiny_generator):
    # fp32 kernels may pick another summation order by batch size (oneDNN on AMX CPUs: the generator's output moves by
    # ~2e-6), which rounds a few pixels to the neighbouring grey level; nothing more may differ
    anonymizer = FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu"), batch_size=3, precision=Precision.FP32), expand=2.0)
    frames = [astronaut, astronaut[:, ::-1].copy(), astronaut]
    dets = [one_face(), one_face(np.array([[262, 60, 342, 170]], np.float32)), one_face()]
    together = anonymizer.anonymize(frames, dets)
    for frame, det, res in zip(frames, dets, together):
        difference = np.abs(anonymizer.anonymize([frame], [det])[0].image.astype(int) - res.image)
        assert difference.max() <= 1 and (difference > 0).mean() < 0.001


def test_paste_failure_covers_the_face(astronaut, tiny_generator, monkeypatch):
    from deepanon.geometry import FaceCrop

    def broken(self, image, generated, feather):
        raise MemoryError("no room")

    monkeypatch.setattr(FaceCrop, "paste", broken)
    result = FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu")), expand=2.0).anonymize([astronaut], [one_face()])[0]
    assert result.faces[0].replacement is Replacement.BLUR and "paste failed" in result.faces[0].reason
    assert (result.image[60:170, 170:250] != astronaut[60:170, 170:250]).any(-1).mean() > 0.8


def test_non_finite_box_blacks_out_the_frame(astronaut):
    det = Detections.from_boxes(np.array([[np.nan, 0, 10, 10]], np.float32), np.array([0.9], np.float32))
    result = FaceReplacer(None, replacement=Replacement.BLUR).anonymize([astronaut], [det])[0]
    assert result.faces[0].replacement is Replacement.SOLID and "whole frame" in result.faces[0].reason
    assert result.image.max() == 0


ASTRONAUT_BOX = np.array([[170, 60, 260, 180]], np.float32)


def test_bf16_on_the_cpu_is_within_tolerance_in_the_face_and_exact_elsewhere(astronaut):
    """The bundled weights in bf16 autocast against fp32: mean |Δ| < 2 and max |Δ| <= 32 (of 255) in the face box,
    bit-identical outside the pasted region (measured: mean 0.99, max 11)."""
    from deepanon.weights import default_weights_path, load_generator

    generator, metadata = load_generator(default_weights_path())
    det = Detections.from_boxes(ASTRONAUT_BOX, np.array([0.9], np.float32))
    out = {}
    for precision in (Precision.FP32, Precision.BF16):
        anonymizer = FaceReplacer(FaceGenerator(generator, torch.device("cpu"), precision=precision),
                                expand=metadata["crop"]["expand"])
        out[precision] = anonymizer.anonymize([astronaut], [det])[0].image.astype(int)
    diff = np.abs(out[Precision.FP32] - out[Precision.BF16])
    assert diff[60:180, 170:260].mean() < 2 and diff.max() <= 32
    assert diff[:, :140].max() == 0 and diff[:40].max() == 0 and diff[:, 290:].max() == 0
    assert np.abs(out[Precision.FP32] - astronaut)[60:180, 170:260].mean() > 10  # and the face was replaced at all


def test_precision_and_batch_defaults():
    from deepanon.models.precision import autocast_dtype
    from deepanon.pipeline import default_batch_size

    cpu = torch.device("cpu")
    assert autocast_dtype(Precision.FP32, cpu) is None and autocast_dtype(Precision.BF16, cpu) is torch.bfloat16
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert autocast_dtype(Precision.AUTO, cpu) is (torch.bfloat16 if native else None)
    with pytest.raises(ValueError, match="fp16 needs CUDA"):
        autocast_dtype(Precision.FP16, cpu)
    assert [default_batch_size(cpu, None, False), default_batch_size(cpu, torch.bfloat16, False),
            default_batch_size(cpu, None, True), default_batch_size(torch.device("cuda"), torch.bfloat16, False)] == [1, 2, 8, 64]


def test_eager_cpu_generation_runs_channels_last_and_matches_nchw(tiny_generator):
    """The convolutions above 4×4 get channels_last inputs (no layout conversions in oneDNN), and the faces equal
    those of the generator run on NCHW inputs (fp32, within one level)."""
    cfg, rng = tiny_generator.config, np.random.default_rng(0)
    s = cfg.image_size
    crops = rng.integers(0, 256, (3, s, s, 3), np.uint8)
    certainty = np.ones((3, s, s), np.float32)
    certainty[:, s // 4 : 3 * s // 4, s // 4 : 3 * s // 4] = 0
    keypoints = rng.random((3, cfg.num_keypoints, 2)).astype(np.float32)
    latents = torch.randn(3, cfg.latent_channels, 4, 4, generator=torch.Generator().manual_seed(0))
    layouts = []
    hooks = [layer.conv.register_forward_pre_hook(
        lambda module, args: layouts.append((args[0].shape[-1], args[0].is_contiguous(memory_format=torch.channels_last))))
        for layer in tiny_generator.modules() if isinstance(layer, ImputedConv2d)]
    try:
        faces = FaceGenerator(tiny_generator, torch.device("cpu"), precision=Precision.FP32)(crops, certainty, keypoints,
                                                                                            latents)
    finally:
        for hook in hooks:
            hook.remove()
    image = torch.from_numpy(crops).permute(0, 3, 1, 2).float().contiguous() / 127.5 - 1
    c = torch.from_numpy(certainty)[:, None].contiguous()
    with torch.no_grad():
        reference = tiny_generator(image * c, c, torch.from_numpy(keypoints), latents)
    expected = ((reference + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    # one call per face (the fp32 batch); the 4×4 bottleneck takes the pose features' layout from its concatenation
    assert len(layouts) == 3 * len(hooks) and all(last for side, last in layouts if side > 4)
    assert np.abs(faces.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.slow
def test_compiled_generator_matches_eager_and_pads_partial_batches(astronaut, tiny_generator):
    det = Detections.from_boxes(np.array([[170, 60, 260, 180], [20, 300, 90, 390], [400, 40, 470, 120]], np.float32),
                                np.full(3, 0.9, np.float32))
    eager = FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu"), precision=Precision.FP32), expand=2.0)
    compiled = FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu"), batch_size=2, precision=Precision.FP32,
                                        compile=True), expand=2.0)
    expected = eager.anonymize([astronaut], [det])[0].image.astype(int)
    result = compiled.anonymize([astronaut], [det])[0]  # 3 faces in batches of 2: the second batch is padded
    assert compiled.face_generator.compiled.active  # compiled for real, not the eager fallback
    assert np.abs(result.image.astype(int) - expected).max() <= 2
    assert [f.replacement for f in result.faces] == [Replacement.GENERATE] * 3


def test_compiled_generator_runs_nearly_empty_batches_eagerly(tiny_generator, monkeypatch):
    calls = []

    def counted(self, *inputs):
        calls.append(len(inputs[0]))
        return self.module(*inputs)

    monkeypatch.setattr(CompiledForward, "__call__", counted)
    face_generator = FaceGenerator(tiny_generator, torch.device("cpu"), batch_size=8, precision=Precision.FP32,
                                   compile=True)
    size = tiny_generator.config.image_size
    for n in (1, 3, 4, 8, 11):  # 11 = a full batch of 8, then 3 eagerly
        latents = torch.zeros(n, tiny_generator.config.latent_channels, 4, 4)
        out = face_generator(np.zeros((n, size, size, 3), np.uint8), np.ones((n, size, size), np.float32),
                             np.full((n, 5, 2), 0.5, np.float32), latents)
        assert out.shape == (n, size, size, 3)
    assert calls == [8, 8, 8]  # padded compiled calls for 4, 8 and the first 8 of 11


def test_failing_compile_falls_back_to_eager_with_a_warning(astronaut, tiny_generator, monkeypatch, caplog):
    def broken_compile(module, **kwargs):
        def run(*args):
            raise RuntimeError("no C++ compiler")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    det = Detections.from_boxes(ASTRONAUT_BOX, np.array([0.9], np.float32))
    face_generator = FaceGenerator(tiny_generator, torch.device("cpu"), batch_size=1, precision=Precision.FP32,
                                   compile=True)
    result = FaceReplacer(face_generator, expand=2.0).anonymize([astronaut], [det])[0]
    expected = FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu"), precision=Precision.FP32), expand=2.0).anonymize(
        [astronaut], [det])[0]
    assert not face_generator.compiled.active and "running the generator eagerly" in caplog.text
    assert np.array_equal(result.image, expected.image)


def test_a_large_face_edge_does_not_bring_back_a_neighbour_face(astronaut, tiny_generator):
    # face A (small) sits just beside face B (large, pasted last): B's feathered edge, which carries the original
    # surroundings, overlapped A's box and put 2-3 px of A's original pixels back
    anonymizer = FaceReplacer(FaceGenerator(tiny_generator, torch.device("cpu"), precision=Precision.FP32), expand=2.0)
    small, large = [100, 200, 140, 250], [142, 150, 300, 330]
    both = anonymizer.anonymize([astronaut], [one_face(np.array([small, large], np.float32))])[0].image
    alone = anonymizer.anonymize([astronaut], [one_face(np.array([small], np.float32))])[0].image
    x0, y0, x1, y1 = small
    assert np.array_equal(both[y0:y1, x0:x1], alone[y0:y1, x0:x1])  # A's box as A's own paste left it
    assert not np.array_equal(both[y0:y1, x0:x1], astronaut[y0:y1, x0:x1])
