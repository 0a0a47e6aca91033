"""The standalone benchmark scripts still run (tiny sizes; nothing here is timed or compared)."""

from __future__ import annotations

import os
import sys

import pytest

import fastact
from fastact import _backends

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dispatch_check  # noqa: E402
import gil_threads  # noqa: E402


@pytest.mark.parametrize("backend", ["numpy", "numba", "cython"])
def test_gil_threads_measures_both_threads(backend):
    if not _backends.available(backend)[0]:
        pytest.skip(f"{backend} unavailable")
    before = fastact.get_num_threads()
    r = gil_threads.measure(backend, "sigmoid", 10_000, 8)
    assert fastact.get_num_threads() == before
    assert r["t_one"] > 0 and r["t_two"] > 0 and r["busy"] >= 0.0


def test_dispatch_check_runs(capsys):
    assert dispatch_check.main(["--functions", "relu", "--sizes", "10", "--dtypes", "float32", "--rounds", "1", "--alloc", "system"]) == 0
    out = capsys.readouterr().out
    assert "| relu | forward | float32 | 1e+01 |" in out and "dispatch overhead" in out


def test_short_rows_runs(capsys):
    import short_rows

    assert short_rows.main(["--size", "64", "--rows", "2,40", "--target", "0.0001"]) == 0
    out = capsys.readouterr().out
    assert "| softmax | 2 | fwd |" in out and "| log_softmax | 40 | bwd |" in out
