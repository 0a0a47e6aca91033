"""Issue 7, part 5: arrays of more than 2**31 elements (opt-in: FASTACT_SLOW_TESTS=1).

A kernel that counts with a 32-bit int wraps around past 2**31 - 1 elements
and writes the wrong place (or crashes). These tests run in-place on float32
arrays of 2**31 + 2**20 elements (8.6 GB each; one array at a time) so that
the machine needs no second copy, and check a sample of the output -- the
first, the last and those on both sides of 2**31 in particular -- against the
reference. Each needs about 9 GB of free memory and some seconds per backend.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastact

from _helpers import assert_close, bound_for, reference_backward, reference_forward
from fastact._registry import get_spec

pytestmark = pytest.mark.skipif(
    os.environ.get("FASTACT_SLOW_TESTS") != "1", reason="opt-in: set FASTACT_SLOW_TESTS=1 (needs ~9 GB of memory)"
)

BLOCK = 1 << 20
N = (1 << 31) + BLOCK  # > 2**31 elements, a whole number of blocks


def _pattern(block=BLOCK):
    """One block of values repeated over the array: a spread of signs and magnitudes."""
    rng = np.random.default_rng(7)
    return (rng.standard_normal(block) * 4).astype(np.float32)


def _sample_index():
    rng = np.random.default_rng(8)
    edges = [0, 1, BLOCK - 1, (1 << 31) - 2, (1 << 31) - 1, 1 << 31, (1 << 31) + 1, N - 2, N - 1]
    return np.unique(np.concatenate([edges, rng.integers(0, N, 4000)]))


def _big():
    x = np.empty(N, np.float32)
    x.reshape(-1, BLOCK)[...] = _pattern()  # broadcast one block into every row: no temporary
    return x


@pytest.mark.parametrize("name", ["sigmoid", "gelu", "relu6"])
def test_elementwise_in_place_beyond_2_31(backend, name):
    # the numpy backend too: it computes elementwise calls in float64 blocks, not in one 17 GB temporary
    if backend == "numpy" and name == "gelu":
        pytest.skip("the reference's erfc is a per-element libm call: tens of minutes at this size")
    x = _big()
    idx = _sample_index()
    xin = x[idx].copy()
    res = fastact.forward(name, x, out=x)
    assert res is x
    exp = reference_forward(name, xin)
    assert_close(x[idx], exp, *bound_for(get_spec(name), "forward", np.float32), f"{name} in-place, N = {N} [{backend}]",
                 inputs=xin)


def test_backward_in_place_beyond_2_31(backend):
    """g and y: two 8.6 GB arrays; y-based sigmoid backward written into g."""
    y = _big()
    np.abs(y, out=y)
    y *= np.float32(1 / 16)  # in (0, 1): a sigmoid output
    idx = _sample_index()
    g = np.empty(N, np.float32)
    g.reshape(-1, BLOCK)[...] = np.linspace(-1, 1, BLOCK, dtype=np.float32)
    gin, yin = g[idx].copy(), y[idx].copy()
    fastact.sigmoid_backward(g, y=y, out=g)
    exp = reference_backward("sigmoid", gin, y=yin)
    assert_close(g[idx], exp, *bound_for(get_spec("sigmoid"), "backward", np.float32), f"sigmoid_backward N = {N}")


def test_softmax_one_row_beyond_2_31(backend):
    """One row longer than 2**31: the reduction and the row offsets need 64-bit indices."""
    if backend == "numpy":
        pytest.skip("the reference computes a row in float64: a 17 GB temporary for this one")
    x = _big()
    pat = _pattern().astype(np.float64)
    # the row holds the block N // BLOCK times: sum exp(x - max) = reps * sum over one block
    reps = N // BLOCK
    m = pat.max()
    log_total = np.log(np.sum(np.exp(pat - m))) + np.log(reps)
    idx = _sample_index()
    xin = x[idx].astype(np.float64)
    fastact.log_softmax(x, out=x)
    exp = (xin - m - log_total).astype(np.float32)
    # rtol as the registry's, plus row-sum rounding over 2**31 terms (absolute, a few ULP of |log_total|)
    assert_close(x[idx], exp, 2e-6, 2e-5 * abs(log_total), f"log_softmax of one row of {N} [{backend}]", inputs=xin)
