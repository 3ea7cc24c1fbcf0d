"""The baselines a team would otherwise reach for, behind one small interface, for ml.training.evaluate.

- ``alt-profanity-check``: a linear SVM on word TF-IDF trained on profanity; risk = its probability.
- ``hatesonar``: logistic regression on n-grams trained on Davidson et al. 2017 (one of our own
  sources, so its numbers on Davidson's held-out rows are flattered: it may have seen them);
  risk = 1 - p(neither), i.e. hate speech or offensive language.

Both run offline from their PyPI packages (requirements-train.txt). A baseline that cannot be
imported is reported as missing, not raised, so the evaluation of our own models still runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Risk = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Baseline:
    name: str
    risk: Risk  # texts -> risk in [0, 1], one per text


def load_baselines() -> tuple[list[Baseline], list[str]]:
    """The baselines that load, and a 'name: reason' line for each one that does not."""
    loaded, missing = [], []
    for name, loader in (("alt-profanity-check", _profanity_check), ("hatesonar", _hatesonar)):
        try:
            loaded.append(Baseline(name, loader()))
        except Exception as error:
            missing.append(f"{name}: {type(error).__name__}: {error}")
    return loaded, missing


def _profanity_check() -> Risk:
    from profanity_check import predict_prob

    return lambda texts: np.asarray(predict_prob(list(texts)), dtype=np.float64)


def _hatesonar() -> Risk:
    """HateSonar's ONNX graph asks its StringNormalizer for the en_US.UTF-8 locale, which slim
    images lack (onnxruntime then refuses the model); C.UTF-8 lowercases ASCII the same way."""
    import onnx
    import onnxruntime as ort
    from hatesonar.api import DEFAULT_MODEL_FILE

    model = onnx.load(str(DEFAULT_MODEL_FILE))
    for node in model.graph.node:
        if node.op_type == "StringNormalizer":
            kept = [attribute for attribute in node.attribute if attribute.name != "locale"]
            del node.attribute[:]
            node.attribute.extend([*kept, onnx.helper.make_attribute("locale", "C.UTF-8")])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    neither = 2  # classes: 0 hate_speech, 1 offensive_language, 2 neither

    def risk(texts: Sequence[str]) -> np.ndarray:
        probabilities = session.run(None, {"text": np.array(list(texts), dtype=object)})[1]
        return 1.0 - np.array([row[neither] for row in probabilities], dtype=np.float64)

    return risk
