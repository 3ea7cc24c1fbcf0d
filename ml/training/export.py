"""Build the ONNX graph of the n-gram model: IDF weighting, per-block L2 norm, linear layer, softmax.

The graph takes the hashed n-gram occurrences of a batch (``ml.features.hash_batch``: bucket ids
sorted by segment, and the offset where each segment starts) rather than a dense feature matrix:
a [batch, 2**18] input would cost far more to build and copy than the model costs to run.

A message's logits are bias + sum over its occurrences of (idf / norm) * W[id], where norm is
the L2 norm of the idf values of its block. The norm is constant within a block, so the graph
gathers one table row per occurrence, [idf * W[id], idf**2], sums the rows per segment as
differences of a running sum (CumSum in double precision, Gather at the offsets), and only then
divides by sqrt(sum of idf**2): one gather and no per-occurrence arithmetic. ScatterND with
reduction="add" would be shorter, but onnxruntime runs it racily on more than one thread, and
the screener's thread count is configurable. Run time needs only onnxruntime and numpy; this
module (the ``onnx`` package) is needed for training only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 18
NORM_EPSILON = 1e-12


def build_model(
    idf: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray,
    n_blocks: int,
    class_names: Sequence[str],
    metadata: Mapping[str, str],
) -> onnx.ModelProto:
    """Return the ONNX model; ``weights`` is [n_buckets, n_classes], ``idf`` is [n_buckets]."""
    n_classes = weights.shape[1]
    table = np.concatenate([idf[:, None] * weights, (idf**2)[:, None]], axis=1).astype(np.float32)
    constants = {
        "table": table,
        "bias": bias.astype(np.float32).reshape(1, n_classes),
        "epsilon": np.array(NORM_EPSILON, dtype=np.float64),
        "axis0": np.array(0, dtype=np.int64),
        "axes0": np.array([0], dtype=np.int64),
        "axes1": np.array([1], dtype=np.int64),
        "zero": np.array([0], dtype=np.int64),
        "one": np.array([1], dtype=np.int64),
        "minus_one": np.array([-1], dtype=np.int64),
        "end": np.array([np.iinfo(np.int64).max], dtype=np.int64),
        "n_classes": np.array([n_classes], dtype=np.int64),
        "zero_row": np.zeros((1, n_classes + 1), dtype=np.float64),
        "row_shape": np.array([-1, n_blocks, n_classes], dtype=np.int64),
    }
    graph = helper.make_graph(
        _segment_sum_nodes() + _output_nodes(),
        "ngram_linear",
        inputs=[
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("offsets", TensorProto.INT64, ["S_plus_1"]),
        ],
        outputs=[helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["B", n_classes])],
        initializer=[numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="ml.training.train_ngram")
    model.ir_version = 8
    helper.set_model_props(model, {"class_names": ",".join(class_names), **metadata})
    onnx.checker.check_model(model)
    return model


def _segment_sum_nodes() -> list[onnx.NodeProto]:
    """sums[s] = sum of table[ids[j]] for offsets[s] <= j < offsets[s+1], via a running sum."""
    node = helper.make_node
    return [
        node("Gather", ["table", "ids"], ["rows"], axis=0),
        node("Cast", ["rows"], ["rows_double"], to=TensorProto.DOUBLE),
        node("CumSum", ["rows_double", "axis0"], ["running"]),
        node("Concat", ["zero_row", "running"], ["padded"], axis=0),
        node("Gather", ["padded", "offsets"], ["at_offsets"], axis=0),
        node("Slice", ["at_offsets", "one", "end", "axes0"], ["upper"]),
        node("Slice", ["at_offsets", "zero", "minus_one", "axes0"], ["lower"]),
        node("Sub", ["upper", "lower"], ["sums"]),
    ]


def _output_nodes() -> list[onnx.NodeProto]:
    """Divide each segment's weighted sum by its norm, add the blocks of a row, bias, softmax."""
    node = helper.make_node
    return [
        node("Slice", ["sums", "zero", "n_classes", "axes1"], ["weighted"]),
        node("Slice", ["sums", "n_classes", "end", "axes1"], ["squares"]),
        node("Add", ["squares", "epsilon"], ["squares_safe"]),
        node("Sqrt", ["squares_safe"], ["norms"]),
        node("Div", ["weighted", "norms"], ["segment_logits"]),
        node("Reshape", ["segment_logits", "row_shape"], ["block_logits"]),
        node("ReduceSum", ["block_logits", "axes1"], ["row_logits_double"], keepdims=0),
        node("Cast", ["row_logits_double"], ["row_logits"], to=TensorProto.FLOAT),
        node("Add", ["row_logits", "bias"], ["logits"]),
        node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
