"""ml.training.fuse_attention: one QAttention node per self-attention block, same answers.

The rewrite is checked on a small BERT layer built here the way torch.onnx.export spells it (the
q, k and v projections, heads split with Reshape/Transpose, a masked softmax, heads merged) and
quantised as ml.training.train_finetune quantises, so the test does not lean on the shipped
graph; the shipped graph is then checked to be fused (test_quantisation holds it to the float graph).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from ml.screening import DEFAULT_MODEL, MODELS_DIR
from ml.training import fuse_attention

HIDDEN, HEADS = 32, 4
PREFIX = "/inner/bert/encoder/layer.0/attention"


def _layer_graph(rng: np.random.Generator) -> onnx.ModelProto:
    head = HIDDEN // HEADS
    constants = {
        "split": np.array([0, 0, HEADS, head], dtype=np.int64),
        "merge": np.array([0, 0, HIDDEN], dtype=np.int64),
        "scale": np.array(1 / np.sqrt(head), dtype=np.float32),
        "one": np.array(1.0, dtype=np.float32),
        "filler": np.array(-10000.0, dtype=np.float32),
        "axes": np.array([1, 2], dtype=np.int64),
        "dense.weight": rng.normal(0, 0.3, (HIDDEN, HIDDEN)).astype(np.float32),
    }
    nodes = []
    for part in ("query", "key", "value"):
        constants[f"{part}.weight"] = rng.normal(0, 0.3, (HIDDEN, HIDDEN)).astype(np.float32)
        constants[f"{part}.bias"] = rng.normal(0, 0.1, HIDDEN).astype(np.float32)
        nodes += [
            helper.make_node("MatMul", ["x", f"{part}.weight"], [f"{part}.mm"], name=f"{PREFIX}/self/{part}/MatMul"),
            helper.make_node("Add", [f"{part}.bias", f"{part}.mm"], [f"{part}.out"], name=f"{PREFIX}/self/{part}/Add"),
            helper.make_node("Reshape", [f"{part}.out", "split"], [f"{part}.heads"],
                             name=f"{PREFIX}/self/{part}/Reshape"),
            helper.make_node("Transpose", [f"{part}.heads"], [f"{part}.t"], name=f"{PREFIX}/self/{part}/Transpose",
                             perm=[0, 2, 3, 1] if part == "key" else [0, 2, 1, 3]),
        ]
    nodes += [
        helper.make_node("Cast", ["attention_mask"], ["mask.f"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["one", "mask.f"], ["mask.inv"]),
        helper.make_node("Mul", ["mask.inv", "filler"], ["mask.add"]),
        helper.make_node("Unsqueeze", ["mask.add", "axes"], ["mask.bias"]),
        helper.make_node("MatMul", ["query.t", "key.t"], ["scores"], name=f"{PREFIX}/self/MatMul"),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "mask.bias"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["weights"], axis=-1),
        helper.make_node("MatMul", ["weights", "value.t"], ["context"], name=f"{PREFIX}/self/MatMul_1"),
        helper.make_node("Transpose", ["context"], ["context.t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["context.t", "merge"], ["merged"], name=f"{PREFIX}/self/Reshape_4"),
        helper.make_node("MatMul", ["merged", "dense.weight"], ["y"], name=f"{PREFIX}/output/dense/MatMul"),
    ]
    graph = helper.make_graph(
        nodes, "bert_layer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", HIDDEN]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", HIDDEN])],
        [numpy_helper.from_array(value, name) for name, value in constants.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture()
def quantised(tmp_path: Path) -> Path:
    float_path, int8_path = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(_layer_graph(np.random.default_rng(3)), str(float_path))
    quantize_dynamic(str(float_path), str(int8_path), per_channel=True, reduce_range=True,
                     weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    return int8_path


def _run(path: Path | onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    data = path.SerializeToString() if isinstance(path, onnx.ModelProto) else str(path)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


def test_a_quantised_attention_block_becomes_one_qattention_with_the_same_outputs(quantised: Path) -> None:
    model = onnx.load(str(quantised))
    assert fuse_attention.fuse(model, HEADS) == 1
    onnx.checker.check_model(model)
    kinds = [node.op_type for node in model.graph.node]
    assert kinds.count("QAttention") == 1
    assert "Softmax" not in kinds and "Transpose" not in kinds  # the float attention is gone
    assert kinds.count("MatMulInteger") == 1  # the output projection stays as it was
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, (3, 7, HIDDEN)).astype(np.float32)
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5], dtype=np.int64)  # padded rows
    feeds = {"x": x, "attention_mask": mask}
    expected, actual = _run(quantised, feeds), _run(model, feeds)
    assert np.allclose(actual, expected, atol=1e-4), float(np.abs(actual - expected).max())
    # the same integer weights, side by side: q, k, v in that order
    initializers = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    qkv = initializers[f"{PREFIX}/qkv.weight_quantized"]
    original = {tensor.name: numpy_helper.to_array(tensor) for tensor in onnx.load(str(quantised)).graph.initializer}
    assert np.array_equal(qkv[:, :HIDDEN], original["query.weight_quantized"])
    assert np.array_equal(qkv[:, 2 * HIDDEN:], original["value.weight_quantized"])


def test_a_fused_graph_is_left_alone(quantised: Path) -> None:
    model = onnx.load(str(quantised))
    fuse_attention.fuse(model, HEADS)
    assert fuse_attention.fuse(model, HEADS) == 0


def test_a_block_of_another_shape_is_refused_not_half_rewritten(quantised: Path) -> None:
    model = onnx.load(str(quantised))
    before = model.SerializeToString()
    with pytest.raises(ValueError, match="heads"):
        fuse_attention.fuse(model, 5)  # 32 does not split into 5 heads
    assert model.SerializeToString() == before


def test_the_shipped_graph_is_fused() -> None:
    model = onnx.load(str(MODELS_DIR / DEFAULT_MODEL / "model.onnx"))
    kinds = [node.op_type for node in model.graph.node]
    assert kinds.count("QAttention") == 6  # one per layer of MiniLM-L6
    assert kinds.count("Softmax") == 1 and "IsNaN" not in kinds  # only the head's softmax is left
    assert fuse_attention.fuse(model, 12) == 0
