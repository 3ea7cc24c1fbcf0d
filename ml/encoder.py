"""The sentence encoder at run time: all-MiniLM-L6-v2 in ONNX, text -> unit vector of 384 floats.

Only onnxruntime and ``tokenizers``: the graph (ml/export_encoder.py) already does mean pooling
and L2 normalisation, so the dot product of two embeddings is their cosine similarity. One
``Encoder`` per process (``get_encoder()``), loaded on first use and kept warm.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

MODEL_DIR = Path(__file__).resolve().parent / "models" / "minilm-encoder"
BATCH_SIZE = 64


@dataclass(frozen=True)
class Encoder:
    session: ort.InferenceSession
    tokenizer: Tokenizer
    meta: dict[str, Any]

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @property
    def version(self) -> str:
        return str(self.meta["version"])

    @classmethod
    def load(cls, model_dir: Path = MODEL_DIR, *, threads: int = 1) -> Encoder:
        """``threads`` is onnxruntime's intra-op pool; 1 suits one worker process per core."""
        meta = json.loads((model_dir / "meta.json").read_text())
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(int(meta["max_length"]))
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a vocabulary token, not a secret
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
        return cls(session, tokenizer, meta)

    def encode(self, texts: Sequence[str], *, batch_size: int = BATCH_SIZE) -> np.ndarray:
        """Unit-length float32 embeddings, shape (len(texts), dim), in the order given."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Similar lengths batch together so a long message does not pad the short ones.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            out[chunk] = self._run([texts[i] for i in chunk])
        return out

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        feeds = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                 "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}
        return np.asarray(self.session.run([self.meta["output"]], feeds)[0], dtype=np.float32)


_encoder: Encoder | None = None
_lock = threading.Lock()


def get_encoder() -> Encoder:
    """The process-wide encoder, loaded on first use."""
    global _encoder
    if _encoder is None:
        with _lock:
            if _encoder is None:
                _encoder = Encoder.load()
    return _encoder
