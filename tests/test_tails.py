"""Backwards g*F(x) where F is subnormal in float32, or an intermediate product overflows.

sigmoid'(x) is below float32's smallest normal for x < -87; times a large
grad_output the true product is normal again (g = 1e30, x = -95: 5.5e-12),
and a kernel that forms F in float32 first keeps only F's few remaining digits
(or returns 0). The kernels compute such elements in float64 (``TAIL`` in
``_numba/_scalar.py`` and ``_cython/_elementwise.pxi.in``); these tests hold
every backend to the reference there, and check that doing so never changes
the result of any other element.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastact
from fastact._registry import SPECS

from _helpers import ELEMENTWISE_SPECS, assert_close, bound_for, default_params, grad_weight_atol, reference_backward, reference_forward, spec_ids

SPECS_BY_NAME = {s.name: s for s in SPECS}
TINY = float(np.finfo(np.float32).tiny)

# x over both tails (every float32 F of these functions turns subnormal
# somewhere in [-200, 200]) and the ordinary range, 20001 values: above the
# serial limit, so the parallel kernels run; the first 500 run serially.
X = np.linspace(-200.0, 200.0, 20001).astype(np.float32)
GRADS = [1e10, 1e30, 3e38, -3e38, 1e-30]
# parameters off their defaults (cuts that depend on them)
PARAMS = {"elu": [{"alpha": 1e-12}, {"alpha": 2.5}], "celu": [{"alpha": 0.3}, {"alpha": -2.0}],
          "softplus": [{"beta": 0.5, "threshold": 30.0}, {"beta": 3.0}]}


def _bound(spec, direction, g, dtype=np.float32):
    rtol, atol = bound_for(spec, direction, dtype)
    # A bound wider than the smallest normal is an absolute error of F near a
    # zero of F (a cancellation); the error of g*F is |g| times it.
    return rtol, (atol * abs(g) if atol > TINY else atol)


# products that overflow float32 are inf in both, and the reference warns
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("spec", ELEMENTWISE_SPECS, ids=spec_ids(ELEMENTWISE_SPECS))
def test_backward_with_large_grad_output(backend, spec):
    base = default_params(spec, "backward")
    for params in [base] + [{**base, **p} for p in PARAMS.get(spec.name, [])]:
        for gv in GRADS:
            for x in (X, X[:500]):
                g = np.full_like(x, gv)
                got = fastact.backward(spec.name, g, x, **params)
                exp = reference_backward(spec.name, g, x, **params)
                rtol, atol = _bound(spec, "backward", gv)
                assert_close(got, exp, rtol, atol, f"{spec.name} {params} g={gv:g} n={x.size}", inputs=x)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("av", [1.0, 1e20, 3e38, -3e38])
def test_glu_with_large_halves(backend, av):
    spec = SPECS_BY_NAME["glu"]
    x = np.stack([np.full_like(X, av), X])  # axis 0: a, then the gate b
    got = fastact.forward("glu", x, axis=0)
    exp = reference_forward("glu", x, axis=0)
    assert_close(got, exp, *bound_for(spec, "forward", np.float32), f"glu a={av:g}")
    for gv in (1.0, 1e30, 3e38, 1e-30):
        g = np.full((1, X.size), gv, np.float32)
        got = fastact.backward("glu", g, x, axis=0)
        exp = reference_backward("glu", g, x, axis=0)
        assert_close(got, exp, *bound_for(spec, "backward", np.float32), f"glu a={av:g} g={gv:g}")


TAIL_FUNCTIONS = ["sigmoid", "log_sigmoid", "tanh", "elu", "selu", "celu", "softplus"]


@pytest.mark.parametrize("name", TAIL_FUNCTIONS)
def test_tail_element_leaves_the_others_alone(backend, name):
    # An element past the cut is computed another way; the others must come
    # out bit for bit as they do without it, in place or not.
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(50000) * 3).astype(np.float32)
    g = rng.standard_normal(x.size).astype(np.float32)
    plain = fastact.backward(name, g, x)
    xt = x.copy()
    pos = [7, 1023, 1024, 30001, x.size - 1]
    xt[pos] = np.float32(-100.0) if name != "log_sigmoid" else np.float32(100.0)
    mixed = fastact.backward(name, g, xt)
    keep = np.ones(x.size, bool)
    keep[pos] = False
    np.testing.assert_array_equal(mixed[keep], plain[keep])
    g2 = g.copy()
    inplace = fastact.backward(name, g2, xt, out=g2)
    assert inplace is g2
    np.testing.assert_array_equal(inplace, mixed)
    big = np.full_like(x, 1e30)
    exp = reference_backward(name, big[pos], xt[pos])
    assert_close(fastact.backward(name, big, xt)[pos], exp, *bound_for(SPECS_BY_NAME[name], "backward", np.float32),
                 name)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("beta", [1.0, 0.5, 1e-30, 3e4])
def test_softplus_backward_from_small_y(backend, beta):
    # from y, F = -expm1(-beta y) ~ beta y is a float32 subnormal for tiny y
    # (or a tiny beta), while g * F is normal for a large g: such elements
    # are computed in float64 (TAIL "small"); the others bit for bit as
    # without them, in place too
    spec = SPECS_BY_NAME["softplus"]
    rng = np.random.default_rng(8)
    y = np.abs(rng.standard_normal(30000) * 3).astype(np.float32)
    y[::7] = np.geomspace(1e-44, 1e-20, y[::7].size).astype(np.float32)
    for gv in (1.0, 1e20, 3e38):
        g = np.full_like(y, gv)
        got = fastact.backward("softplus", g, y=y, beta=beta)
        assert_close(got, reference_backward("softplus", g, y=y, beta=beta), *bound_for(spec, "backward", np.float32),
                     f"softplus from y beta={beta:g} g={gv:g}", inputs=y)
    g = rng.standard_normal(y.size).astype(np.float32)
    plain = fastact.backward("softplus", g, y=y[1::7].repeat(7)[: y.size], beta=beta)
    yt = y[1::7].repeat(7)[: y.size].copy()
    pos = [5, 1024, 20000]
    yt[pos] = np.float32(1e-40)
    mixed = fastact.backward("softplus", g, y=yt, beta=beta)
    keep = np.ones(y.size, bool)
    keep[pos] = False
    np.testing.assert_array_equal(mixed[keep], plain[keep])
    g2 = g.copy()
    assert fastact.backward("softplus", g2, y=yt, beta=beta, out=g2) is g2
    np.testing.assert_array_equal(g2, mixed)


def test_glu_tail_element_leaves_the_others_alone(backend):
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((2, 40000)) * 3).astype(np.float32)
    g = rng.standard_normal((1, 40000)).astype(np.float32)
    xt = x.copy()
    pos = [3, 1024, 25000]
    xt[1, pos] = -100.0
    xt[0, 9] = 3e38  # g*a overflows in float32 at g = 2 (db is finite)
    g[0, 9] = 2.0
    keep = np.ones(40000, bool)
    keep[pos + [9]] = False
    f0, f1 = fastact.forward("glu", x, axis=0), fastact.forward("glu", xt, axis=0)
    np.testing.assert_array_equal(f1[:, keep], f0[:, keep])
    b0, b1 = fastact.backward("glu", g, x, axis=0), fastact.backward("glu", g, xt, axis=0)
    np.testing.assert_array_equal(b1[:, keep], b0[:, keep])
    exp = reference_backward("glu", g, xt, axis=0)
    assert_close(b1, exp, *bound_for(SPECS_BY_NAME["glu"], "backward", np.float32), "glu")


# ------------------------------------------------- along-axis edges, large values


@pytest.mark.parametrize("axis", [-1, 0])
def test_sparsemax_of_large_ties(backend, axis):
    # Five equal maxima of 3e38 share the mass: 0.2 each. Computed from the
    # values themselves, 1 vanished next to them (an empty support: NaN).
    row = np.concatenate([np.full(5, 3e38), np.linspace(-3.0, 3.0, 27)]).astype(np.float32)
    x = np.stack([row, row[::-1] * np.float32(0.5), np.linspace(-1, 1, 32, dtype=np.float32)])
    x = x if axis == -1 else np.ascontiguousarray(x.T)
    y = fastact.forward("sparsemax", x, axis=axis)
    top = y[0, :5] if axis == -1 else y[:5, 0]
    np.testing.assert_allclose(top, 0.2, rtol=1e-6)
    spec = SPECS_BY_NAME["sparsemax"]
    assert_close(y, reference_forward("sparsemax", x, axis=axis), *bound_for(spec, "forward", np.float32), "sparsemax")
    g = np.random.default_rng(2).uniform(-1, 1, x.shape).astype(np.float32) * np.float32(3e38)
    got = fastact.backward("sparsemax", g, x, axis=axis)
    assert np.isfinite(got).all()  # the mean over the support in float64: no overflow
    assert_close(got, reference_backward("sparsemax", g, x, axis=axis), *bound_for(spec, "backward", np.float32),
                 "sparsemax backward")


@pytest.mark.parametrize("axis", [-1, 0])
def test_sparsemax_float64_rows_spanning_the_range(backend, axis):
    # float64 rows holding values from -1.8e308 to 1.8e308: the support's sum
    # started from every element (tau = -inf) and x - max summed to -inf
    # (forward inf everywhere, backward g - mean); it starts at tau = -1 now
    big = np.finfo(np.float64).max
    rows = [[3.0, 0.78, 5e-324, big], [big, 7e3, -3.8e3, -2e3], [-big, big, 0.0, 1.0], [big, big * (1 - 2**-52), -big, 1.0],
            [-big, -big, 2.0, 2.5], [1e300, -1e300, 1e300 - 2**947, 0.0]]
    x = np.array(rows)
    x = x if axis == -1 else np.ascontiguousarray(x.T)
    spec = SPECS_BY_NAME["sparsemax"]
    y = fastact.forward("sparsemax", x, axis=axis)
    assert_close(y, reference_forward("sparsemax", x, axis=axis), *bound_for(spec, "forward", np.float64),
                 "sparsemax", inputs=x)
    g = np.random.default_rng(4).uniform(-1, 1, x.shape)
    assert_close(fastact.backward("sparsemax", g, x, axis=axis), reference_backward("sparsemax", g, x, axis=axis),
                 *bound_for(spec, "backward", np.float64), "sparsemax backward", inputs=x)


def test_log_softmax_row_with_inf_is_nan(backend):
    # as softmax's (and PyTorch's): inf - inf in the row
    x = np.array([[np.inf, 1.0, -2.0], [-np.inf, 1.0, 2.0]], np.float32)
    y = fastact.forward("log_softmax", x, axis=-1)
    assert np.isnan(y[0]).all()
    assert np.isnan(fastact.forward("softmax", x, axis=-1)[0]).all()
    assert y[1, 0] == -np.inf and np.isfinite(y[1, 1:]).all()
    assert np.isnan(fastact.backward("log_softmax", np.ones_like(x), x, axis=-1)[0]).all()


# log_softmax backward, float32: rows (columns) of n elements through every
# path of both backends -- the short rows' blocks, rows of 16, rows under
# 256, long rows, one row over the threads, column tiles, a serial call
_LSM_LAYOUTS = {"short rows": (7, 300), "rows of 16": (16, 200), "rows": (40, 60), "long rows": (300, 8),
                "one row": (400_000, 1), "columns": (40, 60), "one column block": (3000, 100), "small": (30, 3)}


@pytest.mark.parametrize("layout", list(_LSM_LAYOUTS))
def test_log_softmax_backward_large_grad_sum(backend, layout):
    # g - exp(y) * sum(g): a float32 row of |g| up to 3e38 / n sums past
    # float32's range while most results are finite (the reference sums in
    # float64). The sum was rounded to float32 first: inf and NaN. Every
    # other row (column) keeps its bits.
    n, rows = _LSM_LAYOUTS[layout]
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((rows, n)) * 3).astype(np.float32)
    scale = min(3e38, 1.2e39 / n)
    big = rng.uniform(0.5, 1.0, (rows, n)) * scale * rng.choice([-1.0, 1.0], (rows, 1))
    g = np.where(np.arange(rows)[:, None] % 2 == 0, big, rng.standard_normal((rows, n))).astype(np.float32)
    axis = -1
    if layout in ("columns", "one column block"):
        x, g, axis = np.ascontiguousarray(x.T), np.ascontiguousarray(g.T), 0
    y = fastact.forward("log_softmax", x, axis=axis)
    spec = SPECS_BY_NAME["log_softmax"]
    expected = reference_backward("log_softmax", g, x, axis=axis)
    assert np.isfinite(expected).mean() > 0.9
    keep = np.abs(g) <= 1e30
    g1 = np.where(keep, g, np.float32(1))
    in_place = g.copy()
    fastact.backward("log_softmax", in_place, y=y, axis=axis, out=in_place)
    for got, ordinary in ((fastact.backward("log_softmax", g, y=y, axis=axis), fastact.backward("log_softmax", g1, y=y, axis=axis)),
                          (fastact.backward("log_softmax", g, x, axis=axis), fastact.backward("log_softmax", g1, x, axis=axis)),
                          (in_place, fastact.backward("log_softmax", g1, y=y, axis=axis))):
        assert_close(got, expected, *_bound(spec, "backward", scale), "log_softmax backward", inputs=g)
        np.testing.assert_array_equal(got[keep], ordinary[keep])


@pytest.mark.parametrize("shape", [(3000, 100), (1000, 250), (8000, 25)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
def test_one_column_block_split_over_threads(backend, name, shape):
    # along axis 0, inner <= 256: one block of columns, whose rows the Numba
    # backend splits over the threads (partial maxima and sums combined
    # between the passes); a NaN and an inf column ride along
    rng = np.random.default_rng(12)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    x[5, 3] = np.nan
    x[-1, 7] = np.inf
    x[: shape[0] // 2, 9] = -np.inf
    g = rng.standard_normal(shape).astype(np.float32)
    spec = SPECS_BY_NAME[name]
    y = fastact.forward(name, x, axis=0)
    assert_close(y, reference_forward(name, x, axis=0), *bound_for(spec, "forward", np.float32), name, inputs=x)
    expected = reference_backward(name, g, x, axis=0)
    assert_close(fastact.backward(name, g, x, axis=0), expected, *bound_for(spec, "backward", np.float32),
                 name + " backward", inputs=x)
    assert_close(fastact.backward(name, g, y=y, axis=0), expected, *bound_for(spec, "backward", np.float32),
                 name + " backward from y", inputs=x)


# exact arguments x - max (max 0) whose softmax is a float32 subnormal, and two
# that underflow to 0; the rest of a row is filler
_SUBNORMAL_ROW = np.array([0.0, -87.5, -88.25, -90.0, -95.5, -100.0, -101.75, -103.0, -103.25,
                           -103.875, -104.5, -120.0, -np.inf], np.float32)
_LAYOUTS = {"blocks": (20, 400), "rows": (40, 60), "long rows": (300, 8), "one row": (400_000, 1),
            "columns": (40, 60)}


@pytest.mark.parametrize("layout", list(_LAYOUTS))
@pytest.mark.parametrize("name", ["softmax", "softmin"])
def test_softmax_subnormal_outputs_round_once(backend, name, layout):
    # exp(x - max) * (1/sum) where the result is a float32 subnormal: within
    # half a subnormal step of the exact value, plus a few ULP relative to it.
    # Formed from a subnormal exp (two roundings) it was off by up to 1.36 steps.
    n, rows = _LAYOUTS[layout]
    filler = np.linspace(-1.0, -60.0, n - len(_SUBNORMAL_ROW)).astype(np.float32)
    x = np.tile(np.concatenate([_SUBNORMAL_ROW, filler]), (rows, 1))
    axis = -1
    if layout == "columns":
        x, axis = np.ascontiguousarray(x.T), 0
    sign = 1.0 if name == "softmax" else -1.0
    y = fastact.forward(name, x * np.float32(sign), axis=axis)
    e = np.exp(x.astype(np.float64))
    ref = e / e.sum(axis=axis, keepdims=True)
    step = 2.0 ** -149
    err = np.abs(y.astype(np.float64) - ref)
    assert (err <= 0.5 * step + 4 * 2.0**-24 * ref).all(), float(np.max(err / step))
    assert (y[ref < step / 2] == 0).all()


def test_sparsemax_backward_nan_where_y_is_nan(backend):
    y = np.array([[np.nan, np.nan, np.nan], [0.5, 0.5, 0.0]], np.float32)
    got = fastact.backward("sparsemax", np.ones_like(y), y=y, axis=-1)
    assert np.isnan(got[0]).all()
    np.testing.assert_array_equal(got[1], [0.0, 0.0, 0.0])


# ------------------------------------------- extreme parameters and grad_output

_EXTREME = [1e-30, 1e-8, 0.3, 7.5, 1e8, 1e30, 3e38, -1e-30, -0.3, -7.5, -1e8, -1e30, 0.0]
# x: the edge values, a grid over the exp tails, and magnitudes from 1e-30 to 1e30
_XS = np.concatenate([np.linspace(-120, 120, 2401), np.geomspace(1e-30, 1e30, 200), -np.geomspace(1e-30, 1e30, 200),
                      [0.0, -0.0, np.inf, -np.inf, np.nan, 3e38, -3e38, 1e-45, -1e-45]]).astype(np.float32)


def _extreme_settings(spec, values):
    base = default_params(spec)
    out = [base]
    for p in spec.params:
        if p.kind != "float":
            continue
        for v in values:
            out.append({**base, p.name: v})
    return out


# float64: parameters across the whole range and x out to the largest values
# (Numba's swish at beta = 1e-300 gave -inf for x = -1e289, whose result is
# -5e288; Cython's squareplus at b = 1e300 lost b next to x^2 = 1e300)
_EXTREME64 = [1e-300, 1e-30, 1e-8, 0.3, 7.5, 1e8, 1e30, 1e300, -1e-300, -0.3, -7.5, -1e8, -1e30, -1e300, 0.0]
_M64 = np.geomspace(1e-300, 1e300, 601)
_XS64 = np.concatenate([np.linspace(-800, 800, 1601), _M64, -_M64,
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 1.7e308, -1.7e308, 5e-324, -5e-324]])
# dtype -> (x, parameter values, grad_output values); float64 without a large
# g: the reference, in float64 too, then loses g * F where F is subnormal
# (tanh's backward at x = -372, g = 1e200: 0 for 4e-123)
_EXTREME_CASES = {np.float32: (_XS, _EXTREME, (1.0, 1e20)), np.float64: (_XS64, _EXTREME64, (1.0, -2.5))}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spec", ELEMENTWISE_SPECS, ids=spec_ids(ELEMENTWISE_SPECS))
def test_extreme_parameters(backend, spec, dtype):
    # softplus' threshold 0.3 (float32(0.3) is above it), alpha = 1e30 (x/alpha
    # underflows), softsign and tanhshrink at g = 1e20 (d*d overflowed, t*t
    # underflowed), squareplus' factors (underflowed on Numba)
    xs, values, grads = _EXTREME_CASES[dtype]
    for params in _extreme_settings(spec, values):
        try:
            exp_f = reference_forward(spec.name, xs, **params)
        except (ValueError, TypeError):
            continue  # not a valid setting
        assert_close(fastact.forward(spec.name, xs, **params), exp_f, *bound_for(spec, "forward", dtype),
                     f"{spec.name} {params}", inputs=xs)
        for gv in grads:
            g = np.full_like(xs, gv)
            rtol, atol = _bound(spec, "backward", gv, dtype)
            assert_close(fastact.backward(spec.name, g, xs, **params), reference_backward(spec.name, g, xs, **params),
                         rtol, atol, f"{spec.name} backward {params} g={gv:g}", inputs=xs)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_squareplus_float64_huge_b(backend):
    # float64, |x| >= 1e150 with a b that x^2 does not dwarf: the Cython
    # kernel took sqrt(x^2 + b) as |x| there (b = 1e300 at x = 1e150: 18 %
    # off forward, 61 % backward); float32 beside it
    spec = SPECS_BY_NAME["squareplus"]
    for dtype in (np.float64, np.float32):
        m = np.geomspace(1e100, 1e200, 2001) if dtype == np.float64 else np.geomspace(1e10, 3e38, 2001)
        x = np.concatenate([m, -m, [np.inf, -np.inf, 1e308, -1e308]]).astype(dtype)
        g = np.linspace(-2.0, 2.0, x.size).astype(dtype)
        for b in (1e300, 1e250, 1e200, 3e38, 1e30, 4.0):
            assert_close(fastact.squareplus(x, b=b), reference_forward("squareplus", x, b=b),
                         *bound_for(spec, "forward", dtype), f"squareplus {dtype.__name__} b={b:g}", inputs=x)
            assert_close(fastact.squareplus_backward(g, x, b=b), reference_backward("squareplus", g, x, b=b),
                         *bound_for(spec, "backward", dtype), f"squareplus backward {dtype.__name__} b={b:g}", inputs=x)


@pytest.mark.parametrize("b", [5e-324, 1e-130, 1e-80, 1e-50, 1e-40, 2.0**-126, 1.5 * 2.0**-126, 1e-36, 2.0**-120, 1e-30])
def test_squareplus_float32_tiny_b(backend, b):
    # float32 with a b below its normal range: Numba's kernel took b as
    # float32(b), so that b = 1e-50 gave 0 for every negative x, and the
    # backward the relu slope there (the true results reach 5e-26 and 0.5);
    # from 1e-45 to 1.2e-38 it lost b's precision. Tiny x beside such b keep
    # the results normal.
    spec = SPECS_BY_NAME["squareplus"]
    m = np.geomspace(1.4e-45, 1e-10, 1500)
    x = np.concatenate([m, -m, [0.0, -0.0, 1.0, -1.0, -1e20, 3e38, -3e38, np.inf, -np.inf]]).astype(np.float32)
    g = np.linspace(-2.0, 2.0, x.size).astype(np.float32)
    assert_close(fastact.squareplus(x, b=b), reference_forward("squareplus", x, b=b),
                 *bound_for(spec, "forward", np.float32), f"squareplus b={b:g} [{backend}]", inputs=x)
    assert_close(fastact.squareplus_backward(g, x, b=b), reference_backward("squareplus", g, x, b=b),
                 *bound_for(spec, "backward", np.float32), f"squareplus backward b={b:g} [{backend}]", inputs=x)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_celu_negative_alpha_large_argument(backend, dtype):
    # alpha < 0: q = x/alpha > 0 and exp(q) overflows before alpha brings the
    # result back (float32: alpha = -0.0218, x = -2 is -1.35e38, was -inf), and
    # a rounded q cost q*eps (alpha = -0.0234375, x = -1: 1.2e-6). Cases found
    # by test_properties; the window is scaled to each dtype's overflow point.
    spec = SPECS_BY_NAME["celu"]
    top = 88.72 if dtype == np.float32 else 709.78
    for alpha in (-0.02182832614059469, -0.0234375, -0.3, -1e-8):
        q = np.concatenate([np.linspace(0.0, top - np.log(abs(alpha)) + 2.0, 4001), [20.0, 40.0, 42.67, 1e4]])
        x = np.concatenate([(-q * abs(alpha)).astype(dtype), np.array([-np.inf, np.nan, -0.0], dtype)])
        exp = reference_forward("celu", x, alpha=alpha)
        assert np.isfinite(exp[:4001][q[:4001] > top + 0.5]).any()  # the window past exp's overflow is sampled
        assert_close(fastact.forward("celu", x, alpha=alpha), exp, *bound_for(spec, "forward", dtype),
                     f"celu alpha={alpha}", inputs=x)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("alpha", [1e40, -1e40, 1e300])
def test_celu_alpha_beyond_float32(backend, alpha):
    # celu sees only x/alpha: an alpha float32 cannot hold still gives the
    # reference's answer (Numba: float32(1e40) was inf, celu(-3e38) came out
    # -3e38 instead of -2.955e38, with an overflow warning)
    spec = SPECS_BY_NAME["celu"]
    x = np.concatenate([-np.geomspace(1e-30, 3e38, 2000), np.geomspace(1e-30, 3e38, 20), [0.0, -0.0, np.nan]]).astype(np.float32)
    g = np.full_like(x, 0.7)
    exp_f = reference_forward("celu", x, alpha=alpha)
    y = exp_f.astype(np.float32)
    assert_close(fastact.forward("celu", x, alpha=alpha), exp_f, *bound_for(spec, "forward", np.float32), f"celu {alpha}", inputs=x)
    rtol, atol = bound_for(spec, "backward", np.float32)
    assert_close(fastact.backward("celu", g, x, alpha=alpha), reference_backward("celu", g, x, alpha=alpha), rtol, atol,
                 f"celu backward {alpha}", inputs=x)
    assert_close(fastact.backward("celu", g, y=y, alpha=alpha), reference_backward("celu", g, y=y, alpha=alpha), rtol, atol,
                 f"celu backward from y {alpha}", inputs=y)


_Y_CANCEL = [("elu", {"alpha": a}) for a in (1.0, 0.3, 2.5)] + [("selu", {})] + \
    [("celu", {"alpha": a}) for a in (0.9277777075855209, 0.3, 2.5, 1.0, -2.0)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, params", _Y_CANCEL, ids=[f"{n}-{p}" for n, p in _Y_CANCEL])
def test_backward_from_y_near_its_cancellation(backend, dtype, name, params):
    # From y the derivative of elu, selu and celu for y <= 0 is y + alpha,
    # y + scale*alpha and (y + alpha)/alpha. Far below 0, y ~ -alpha and the
    # sum is exact, so the result is a single rounding away from the true
    # value -- if nothing before the sum rounds. The reference and the Cython
    # backend computed celu's as y/alpha + 1, which cancels y/alpha's rounding
    # error (float32 y = -0.9277777, alpha = 0.9277777075855209: 9.451884e-12
    # for 9.451841e-12, 4.5e-6 off; the Numba backend was right), and every
    # float64 selu from y added the product scale*alpha rounded (5.75e-17 off,
    # x = -20: 1.6e-8 relative). The exact value is computed with fractions.
    from fractions import Fraction
    from fastact._reference import SELU_ALPHA, SELU_SCALE
    spec = SPECS_BY_NAME[name]
    alpha = params.get("alpha", 1.0)
    c = Fraction(SELU_SCALE) * Fraction(SELU_ALPHA) if name == "selu" else Fraction(alpha)
    x = (-np.geomspace(1e-3, 40.0, 1500) * abs(alpha)).astype(dtype)
    y = reference_forward(name, x, **params).astype(dtype)
    g = np.linspace(-2.0, 2.0, x.size).astype(dtype)
    exact = [Fraction(float(gi)) * (Fraction(float(yi)) + c) / (c if name == "celu" else 1) for gi, yi in zip(g, y)]
    ref = reference_backward(name, g, y=y, **params)
    assert_close(ref, np.array([float(e) for e in exact]), 2 * float(np.finfo(dtype).eps), 0.0,
                 f"reference {name} from y {params} {dtype.__name__}", inputs=y)
    got = fastact.backward(name, g, y=y, **params)
    assert_close(got, ref, *bound_for(spec, "backward", dtype), f"{name} from y {params} {dtype.__name__}", inputs=y)


def test_tanh_backward_float64_past_cosh_overflow(backend):
    # tanh'(x) = 1/cosh(x)^2: the reference squared cosh, which overflows
    # from |x| = 355.6 on, and returned 0 where 4 exp(-2|x|) is a subnormal
    # and g times it, g = 1e3, a normal number (x = 356: 2.42e-306). The
    # exact value: 4 exp(-2|x| + 700) exp(-700), every factor normal.
    import math
    x = np.concatenate([np.linspace(355.0, 358.0, 301), -np.linspace(355.0, 358.0, 31)])
    g = np.full_like(x, 1e3)
    exact = np.array([1e3 * 4.0 * math.exp(-2.0 * abs(v) + 700.0) * math.exp(-700.0) for v in x])
    assert exact.min() > 1e-308
    rtol, atol = bound_for(SPECS_BY_NAME["tanh"], "backward", np.float64)
    assert_close(reference_backward("tanh", g, x), exact, rtol, atol, "reference tanh backward", inputs=x)
    assert_close(fastact.backward("tanh", g, x), exact, rtol, atol, "tanh backward", inputs=x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_threshold_where_the_product_rounds_onto_it(backend, dtype):
    # x*beta > threshold with the product rounded in float64, as the reference
    # (and PyTorch, in the dtype) decides it: beta = 0.001, t = 1, x = 1000 is
    # exactly 1.00000000000000002, rounded 1.0, not above. Numba's float32
    # kernel formed x*(hi + lo) of beta's float32 split and landed above:
    # softplus 1000 for 1313.26, backward 0.836 for 0.611.
    spec = SPECS_BY_NAME["softplus"]
    for beta, t in ((0.001, 1.0), (0.1, 3.0), (0.3, 0.9), (7.0, 0.7), (1e-5, 0.01), (3.0, -0.3)):
        c = t / beta
        x = np.array([np.nextafter(np.nextafter(dtype(c), dtype(-np.inf)), dtype(-np.inf)),
                      np.nextafter(dtype(c), dtype(-np.inf)), dtype(c), np.nextafter(dtype(c), dtype(np.inf)),
                      np.nextafter(np.nextafter(dtype(c), dtype(np.inf)), dtype(np.inf))], dtype)
        p = {"beta": beta, "threshold": t}
        g = np.full_like(x, 0.75)
        y = reference_forward("softplus", x, **p).astype(dtype)
        what = f"softplus beta={beta} threshold={t} {dtype.__name__}"
        assert_close(fastact.forward("softplus", x, **p), reference_forward("softplus", x, **p),
                     *bound_for(spec, "forward", dtype), what, inputs=x)
        assert_close(fastact.backward("softplus", g, x, **p), reference_backward("softplus", g, x, **p),
                     *bound_for(spec, "backward", dtype), what + " backward", inputs=x)
        assert_close(fastact.backward("softplus", g, y=y, **p), reference_backward("softplus", g, y=y, **p),
                     *bound_for(spec, "backward", dtype), what + " backward from y", inputs=y)


# (name, direction) whose float32 result, g = 1, is a subnormal on a stretch of
# each tail; 200001 values over [-110, 110], above the serial limit
_SUBNORMAL_RESULTS = [("sigmoid", "forward"), ("softplus", "forward"), ("sigmoid", "backward"),
                      ("log_sigmoid", "backward"), ("tanh", "backward")]


@pytest.mark.parametrize("name, direction", _SUBNORMAL_RESULTS, ids=[f"{n}-{d}" for n, d in _SUBNORMAL_RESULTS])
def test_subnormal_results_are_kept(backend, name, direction):
    # Within half a subnormal step of the reference, plus a few ULP relative to
    # it: not flushed to 0. The Cython sigmoid, 1/(1 + exp(-x)), gave 0 for x
    # in [-104, -87.3] (exp(-x) overflowed), 2.1e6 steps off.
    x = np.linspace(-110.0, 110.0, 200_001).astype(np.float32)
    g = np.ones_like(x)
    with np.errstate(over="ignore", under="ignore"):
        if direction == "forward":
            y = fastact.forward(name, x)
            ref = reference_forward(name, x.astype(np.float64))
        else:
            y = fastact.backward(name, g, x)
            ref = reference_backward(name, g.astype(np.float64), x.astype(np.float64))
    sub = np.abs(ref) < TINY
    assert sub.sum() > 10_000
    err = np.abs(y[sub].astype(np.float64) - ref[sub])
    step = 2.0 ** -149
    assert (err <= 0.5 * step + 4 * 2.0**-24 * np.abs(ref[sub])).all(), float(np.max(err / step))


def test_log_sigmoid_backward_from_y_above_zero(backend):
    # log_sigmoid's y is never above 0; such a y counts as 0 (the limit at x =
    # +inf: derivative 0) on every backend, as in the reference -- the
    # compiled kernels compute expm1(min(y, 0)) with one power of two
    for dtype in (np.float32, np.float64):
        y = np.array([0.5, 3.0, 1e30, np.inf, 0.0, -0.0, np.nan, -1e-30, -1.0, -20.0, -np.inf], dtype)
        g = np.full_like(y, 2.0)
        exp = reference_backward("log_sigmoid", g, y=y)
        got = fastact.backward("log_sigmoid", g, y=y)
        assert np.array_equal(got[:5], np.zeros(5, dtype)), got
        assert_close(got, exp, *bound_for(SPECS_BY_NAME["log_sigmoid"], "backward", dtype), "log_sigmoid y > 0", inputs=y)


def _exact_dot(a, b):
    # sum of a*b rounded once: each product split exactly into p + e
    # (Dekker), then math.fsum over all the pieces
    p = a * b
    t = 134217729.0 * a
    ah = t - (t - a)
    al = a - ah
    t = 134217729.0 * b
    bh = t - (t - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return math.fsum(np.concatenate([p, e]))


def test_prelu_grad_weight_float64_when_the_sum_cancels(backend):
    # The registry's note for prelu: in float64 grad_weight's rounding depends
    # on the summation order, so backends agree to a small multiple of eps
    # times sum|x*g| over the channel, not to 1e-12 of a sum that cancels.
    # Each channel here sums to about 1e-11 of sum|x*g| (the reference and
    # both backends measured within 2e-17 of it on channels of 4e5 terms).
    rng = np.random.default_rng(7)
    C, L = 3, 30000
    x = -np.abs(rng.standard_normal((2, C, L)))
    g = rng.standard_normal((2, C, L)) * 1e3
    for c in range(C):
        g[0, c, 0] -= _exact_dot(x[:, c].ravel(), g[:, c].ravel()) / x[0, c, 0]
    exact = np.array([_exact_dot(x[:, c].ravel(), g[:, c].ravel()) for c in range(C)])
    mag = np.sum(np.abs(x * g), axis=(0, 2))
    assert np.all(np.abs(exact) < 1e-6 * mag)  # the sums do cancel
    params = {"weight": np.full(C, 0.25), "axis": 1}
    _, gw = fastact.prelu_backward(g, x, **params)
    err = np.abs(gw - exact)
    assert np.all(err <= grad_weight_atol(g, x, params)), (err / mag, backend)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_prelu_grad_weight_inf_and_overflow_without_warnings(backend, dtype):
    # A channel with -inf terms of both signs sums to NaN, and one beyond
    # float16's range rounds to -inf; the reference warns of neither, and
    # no backend may: the Cython backend's threads' partial sums, added up
    # by NumPy, warned "invalid value encountered in reduce" (session 25),
    # which is an error under -W error.
    import warnings

    x = np.full((4, 3, 50000), -1.0, dtype)
    x[0, 0, 0] = -np.inf
    x[3, 0, 5] = -np.inf
    g = np.ones_like(x)
    g[3, 0, 5] = -1.0
    x[:, 2] = -60000.0
    g[:, 2] = 60000.0
    w = np.array([0.25, 0.5, 0.125], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gx, gw = fastact.prelu_backward(g, x, w)
    assert gw.dtype == np.dtype(dtype)
    assert np.isnan(gw[0])
    assert float(gw[1]) == (-np.inf if dtype == np.float16 else -200000.0)  # -2e5 is beyond float16's range
    with np.errstate(over="ignore"):
        ref = reference_backward("prelu", g, x, weight=w)[1]
    assert_close(gw[2:], ref[2:], *bound_for(SPECS_BY_NAME["prelu"], "backward", dtype),
                 "prelu grad_weight, a channel of large terms")
