"""The shipped integer graph scores like its float graph, and alike on every x86 CPU.

x86 CPUs without VNNI (an AVX2-only EPYC, say) multiply the u8 activations by s8 weights with
vpmaddubsw, whose int16 sum of two products saturates once |w| > 64 (255 * 127 * 2 > 32767):
minilm-v4, quantised with full-range weights, scored "gg wp commend me" 0.82 there and 0.88 on a
VNNI Xeon. With 7-bit weights no pair sum can overflow, so every CPU computes the same integers;
the first test checks that property of the graph itself, which holds whatever CPU runs the suite.
The second holds the integer graph to what the float graph said of a few hundred messages when
the model was trained (float_reference.jsonl, written by ml.training.train_finetune).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ml.screening import DEFAULT_MODEL, MODELS_DIR, get_screener

FOLDER = MODELS_DIR / DEFAULT_MODEL
# minilm-v5 against its float graph on its 400 reference messages: max 0.127, mean 0.016 (the
# activations, quantised per run, cost as much as the 7-bit weights: full-range weights gave 0.228 / 0.016).
MAX_RISK_GAP = 0.15
MEAN_RISK_GAP = 0.025


def _integer_matmul_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The int8 weights of every integer product: MatMulInteger, and QAttention's q, k, v side by side."""
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    return {node.input[1]: numpy_helper.to_array(initializers[node.input[1]])
            for node in model.graph.node
            if node.op_type in ("MatMulInteger", "QAttention") and node.input[1] in initializers}


def test_integer_weights_are_7_bit_so_no_cpu_can_saturate() -> None:
    weights = _integer_matmul_weights(onnx.load(str(FOLDER / "model.onnx")))
    columns = sum(values.shape[1] for values in weights.values() if values.shape[0] == 384)
    assert columns >= 6 * (4 * 384 + 1536)  # 6 layers x (q, k, v, out, first feed-forward)
    assert len(weights) >= 24  # and the second feed-forward, whose rows are 1536
    for name, values in weights.items():
        assert values.dtype == np.int8, name
        assert int(np.abs(values.astype(np.int16)).max()) <= 64, name  # 255 * 64 * 2 = 32640 <= 32767


@pytest.mark.skipif(not (FOLDER / "float_reference.jsonl").exists(), reason="model has no float reference")
def test_the_shipped_graph_scores_within_tolerance_of_the_float_graph() -> None:
    screener = get_screener(DEFAULT_MODEL)
    rows = [json.loads(line) for line in (FOLDER / "float_reference.jsonl").read_text().splitlines()]
    assert len(rows) >= 300
    expected = np.array([row["probabilities"] for row in rows], dtype=np.float32)
    actual, _ = screener.forward([row["text"] for row in rows], [row["before"] for row in rows])
    gap = np.abs(screener.calibrate(actual) - screener.calibrate(expected))
    assert float(gap.max()) <= MAX_RISK_GAP, float(gap.max())
    assert float(gap.mean()) <= MEAN_RISK_GAP, float(gap.mean())
