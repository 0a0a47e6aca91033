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


@pytest.mark.parametrize("order", ["turns", "phases"])
def test_numba_vs_torch_runs(capsys, order):
    # prelu against F.prelu and ATen's backward, softsign's backward against
    # autograd (marked ag); ours and torch's in turns per case, or in phases
    pytest.importorskip("torch")
    if not _backends.available("numba")[0]:
        pytest.skip("numba unavailable")
    import numba_vs_torch

    numba_vs_torch.run([1000], ["prelu", "softsign"], order)
    out = capsys.readouterr().out
    rows = {tuple(c.strip() for c in line.split("|")[1:4]): line for line in out.splitlines() if line.startswith("| ")}
    for key in (("prelu", "fwd", "1e+03"), ("prelu", "bwd", "1e+03"), ("softsign", "bwd", "1e+03")):
        cells = [c.strip() for c in rows[key].split("|")]
        assert cells[5] != "—", rows[key]  # the torch time
    assert " ag |" in rows[("softsign", "bwd", "1e+03")] and " ag |" not in rows[("prelu", "bwd", "1e+03")]
    assert "over 3 cases" in out  # the autograd row left out of the geometric mean


def test_float16_bench_runs(capsys):
    # fastact's float16 calls (block kernels and the conversions before them:
    # the same bits, which the script asserts) against PyTorch's float16 kernels
    pytest.importorskip("torch")
    if not _backends.available("cython")[0]:
        pytest.skip("cython unavailable")
    from fastact import _api

    with fastact.use_backend("cython"):
        if _api._half_kernels("relu", _backends.load("cython")) is None:
            pytest.skip("no float16 block kernels in this build")
        import float16

        float16.run([1000], {"relu", "gelu"})
    out = capsys.readouterr().out
    for key in ("| relu | fwd | 1e+03 |", "| relu | bwd | 1e+03 |", "| gelu | fwd | 1e+03 |", "| gelu | bwd | 1e+03 |"):
        assert key in out, out
    assert "over 4" in out
