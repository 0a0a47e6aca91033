"""examples/mlp_digits.py trains, in a few epochs, to a useful accuracy with fastact's activations."""

from __future__ import annotations

import importlib.util
import pathlib
import re

import pytest

pytest.importorskip("sklearn")

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "mlp_digits.py"


def _load():
    spec = importlib.util.spec_from_file_location("mlp_digits", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mlp_digits_learns(capsys):
    # 8 epochs reach about 0.95 on the 450 test images (0.1 would be chance);
    # the full 30 epochs reach about 0.975 -- see docs/interop.md.
    assert _load().main(["--epochs", "8", "--no-compare"]) == 0
    text = capsys.readouterr().out
    m = re.search(r"test accuracy (\d\.\d+)", text)
    assert m, text
    assert float(m.group(1)) >= 0.9, text


def test_mlp_digits_compares_backends(capsys):
    assert _load().main(["--epochs", "1", "--batch", "256"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"backend +numpy: test accuracy", text), text
    assert "speed-up over the NumPy reference" in text
