"""ml.training.sweep's choice and the way a model comes back from a lent machine in parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.training.sweep import choose, write_parts


def test_the_highest_calibration_auc_wins_whatever_the_held_out_says() -> None:
    results = {"a": {"calibration_auc": 0.86, "held_out_auc": 0.95},
               "b": {"calibration_auc": 0.87, "held_out_auc": 0.5},
               "c": {"calibration_auc": 0.87, "held_out_auc": 0.9}}
    assert choose(results) == "b"  # the first of equals; the held-out figure is never read


def test_parts_put_back_together_give_the_same_bytes(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(bytes(range(256)) * 41)  # 10,496 bytes
    out = tmp_path / "out"
    out.mkdir()
    parts = write_parts(model, out, size=1500)
    assert [p.name for p in parts] == [f"model.onnx.part{i}" for i in range(7)]
    assert all(p.stat().st_size <= 1500 for p in parts)
    assert b"".join(p.read_bytes() for p in sorted(out.glob("model.onnx.part*"))) == model.read_bytes()


def test_more_parts_than_sort_by_name_is_an_error(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"x" * 1100)
    with pytest.raises(ValueError, match="11 parts"):
        write_parts(model, tmp_path, size=100)
    assert not list(tmp_path.glob("model.onnx.part*"))  # refused before anything was written
