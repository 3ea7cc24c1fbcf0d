"""Speed of a scorer on this machine, for ml.training.evaluate: a measurement printed beside the metrics,
never a timed test (the box is shared, so figures move with its load).

- cold start: a fresh interpreter imports the runtime, loads the model and screens one message;
- single message: one ``screen([text])`` call at a time (normalisation, tokenisation, rules
  included), p50 and p99 over real held-out messages;
- batched: messages per second through ``screen`` in batches of 64, on one onnxruntime thread
  (SCREENING_THREADS=1); a worker per core multiplies it by the number of cores.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

BATCH = 64

_COLD_START = """
import time
started = time.perf_counter()
from ml.screening import Screener
Screener.load({name!r}).screen(["hello there"])
print(time.perf_counter() - started)
"""


@dataclass(frozen=True)
class Speed:
    single_p50_ms: float
    single_p99_ms: float
    batched_per_s: float
    cold_start_s: float | None  # None where it was not measured (baselines)

    def line(self, name: str) -> str:
        cold = f"{self.cold_start_s:5.2f} s" if self.cold_start_s is not None else "    n/a"
        return (f"{name:20} single p50 {self.single_p50_ms:6.2f} ms  p99 {self.single_p99_ms:6.2f} ms  "
                f"batched {self.batched_per_s:7.0f} msg/s  cold start {cold}")


def measure(score: Callable[[Sequence[str]], object], texts: Sequence[str], *, singles: int = 300,
            batched: int = 2048, model_name: str | None = None) -> Speed:
    """Time ``score`` (a batch function) on ``texts``; ``model_name`` adds a cold-start run."""
    score(list(texts[:BATCH]))  # warm up: first-call allocations are not the steady state
    latencies = []
    for text in texts[:singles]:
        started = time.perf_counter()
        score([text])
        latencies.append(time.perf_counter() - started)
    sample = list(texts[:batched])
    started = time.perf_counter()
    for start in range(0, len(sample), BATCH):
        score(sample[start:start + BATCH])
    rate = len(sample) / (time.perf_counter() - started)
    p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
    cold = cold_start(model_name) if model_name else None
    return Speed(float(p50), float(p99), rate, cold)


def cold_start(model_name: str) -> float:
    """Seconds from a fresh interpreter to the first screened message (imports included)."""
    result = subprocess.run([sys.executable, "-c", _COLD_START.format(name=model_name)],
                            capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])
