"""Every function, forward and backward, on every backend, against the NumPy reference.

The expected result is the reference backend's, computed on a C-contiguous
copy of the same input; the tolerance is the registry's bound for the function,
direction and dtype. For the ``numpy`` backend itself these tests check that
layout, dtype and ``out=`` handling never change a result.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from fastact._registry import AXIS, ELEMENTWISE, GLU, MAXOUT, PRELU, RRELU, SPECS, get_spec

from _helpers import (
    ELEMENTWISE_SPECS,
    assert_close,
    bound_for,
    edge_values,
    grad_shape,
    grad_weight_atol,
    make_case,
    out_dtype,
    random_params,
    reference_backward,
    reference_forward,
    spec_ids,
)

AXIS_LIKE = [s for s in SPECS if s.kind in (AXIS, GLU, MAXOUT)]
SPECS_BY_NAME = {s.name: s for s in SPECS}


def _as_list(r):
    return list(r) if isinstance(r, tuple) else [r]


def _check_forward(spec, x, params, what):
    got = _as_list(fastact.forward(spec.name, x, **params))
    exp = _as_list(reference_forward(spec.name, x, **params))
    rtol, atol = bound_for(spec, "forward", got[0].dtype)
    assert got[0].dtype == exp[0].dtype == out_dtype(x.dtype), what
    for a, e in zip(got, exp):
        assert_close(a, e, rtol, atol, what, inputs=x if a.shape == x.shape else None)
    return got[0]


def _check_backward(spec, g, x, params, what, y=None):
    got = _as_list(fastact.backward(spec.name, g, None if y is not None else x, y=y, **params))
    exp = _as_list(reference_backward(spec.name, g, None if y is not None else x, y=y, **params))
    rtol, atol = bound_for(spec, "backward", got[0].dtype)
    for i, (a, e) in enumerate(zip(got, exp)):
        assert a.dtype == e.dtype, what
        at = grad_weight_atol(g, x, params, atol) if spec.kind == PRELU and i == 1 else atol
        assert_close(a, e, rtol, at, what, inputs=x if a.shape == x.shape else None)


def _grad_for(spec, x, params, rng):
    if spec.kind in (GLU, MAXOUT):
        shape = grad_shape(spec, x.shape, params["axis"], params)
    else:
        shape = x.shape
    return rng.standard_normal(shape).astype(x.dtype)


# ------------------------------------------------------------ random inputs


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_forward_backward_random(spec, backend, dtype):
    rng = np.random.default_rng(1)
    for params in (None, random_params(spec, rng)):
        if spec.kind == RRELU:
            params = dict(params or {}, training=True)
        x, params = make_case(spec, rng, dtype=dtype, size=999, params=params)
        what = f"{spec.name} [{backend}, {dtype}, {params}]"
        y = _check_forward(spec, x, params, "forward " + what)
        g = _grad_for(spec, x, params, rng)
        _check_backward(spec, g, x, params, "backward " + what)
        if spec.kind in (ELEMENTWISE, AXIS) and spec.allows_y(params):
            y_ref = _as_list(reference_forward(spec.name, x, **params))[0]
            _check_backward(spec, g, x, params, "backward(y=) " + what, y=y_ref)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_large_arrays_take_the_parallel_path(spec, backend, dtype):
    """Sizes past every backend's serial threshold; along-axis also as one long row."""
    rng = np.random.default_rng(2)
    params = {"training": True} if spec.kind == RRELU else None
    shapes = [None]
    if spec.kind in (AXIS, GLU, MAXOUT):
        shapes = [(300, 512), (1, 131072)]
    for shape in shapes:
        x, p = make_case(spec, rng, dtype=dtype, size=200_003, shape=shape, params=params)
        what = f"{spec.name} [{backend}, {dtype}, shape {x.shape}]"
        _check_forward(spec, x, p, "forward " + what)
        _check_backward(spec, _grad_for(spec, x, p, rng), x, p, "backward " + what)


# ---------------------------------------------------------------- edges


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("spec", ELEMENTWISE_SPECS, ids=spec_ids(ELEMENTWISE_SPECS))
def test_edge_values(spec, backend, dtype):
    x = edge_values(dtype)
    rng = np.random.default_rng(3)
    for params in ({k: v for k, v in make_case(spec, rng)[1].items()}, random_params(spec, rng)):
        what = f"{spec.name} [{backend}, {dtype}, {params}] edge values"
        _check_forward(spec, x, params, "forward " + what)
        g = np.ones_like(x)
        _check_backward(spec, g, x, params, "backward " + what)
        if spec.allows_y(params):
            y = reference_forward(spec.name, x, **params)
            _check_backward(spec, g, x, params, "backward(y=) " + what, y=y)


EXACT = [
    ("sigmoid", {}, -1000.0, 0.0),
    ("sigmoid", {}, 1000.0, 1.0),
    ("softplus", {}, 1000.0, 1000.0),
    ("softplus", {}, -1000.0, 0.0),
    ("softplus", {"threshold": 1e6}, 1000.0, 1000.0),
    ("log_sigmoid", {}, -1000.0, -1000.0),
    ("log_sigmoid", {}, 1000.0, 0.0),
    ("mish", {}, 1e4, 1e4),
    ("mish", {}, -1e4, 0.0),
    ("silu", {}, -1e4, 0.0),
    ("silu", {}, 1e4, 1e4),
    ("swish", {"beta": 2.0}, -1e4, 0.0),
    ("gelu", {}, -1e4, 0.0),
    ("gelu", {"approximate": "tanh"}, -1e4, 0.0),
    ("gelu", {}, np.inf, np.inf),
    ("gelu", {}, -np.inf, 0.0),
    ("silu", {}, -np.inf, 0.0),
    ("mish", {}, -np.inf, 0.0),
    ("elu", {}, -np.inf, -1.0),
    ("tanh", {}, np.inf, 1.0),
    ("softsign", {}, -np.inf, -1.0),
    ("squareplus", {}, -np.inf, 0.0),
    ("squareplus", {}, 1e30, 1e30),
    ("tanhshrink", {}, np.inf, np.inf),
    ("relu6", {}, np.inf, 6.0),
    ("hardsigmoid", {}, np.inf, 1.0),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,params,x,expected", EXACT, ids=[f"{n}({x})" for n, _, x, _ in EXACT])
def test_exact_limits(backend, dtype, name, params, x, expected):
    with np.errstate(all="raise"):
        got = fastact.forward(name, np.full(5, x, dtype=dtype), **params)
    assert np.all(got == expected), f"{name}({x}) on {backend}: got {got[0]!r}, expected {expected!r}"


EXACT_BWD = [
    ("gelu", {}, 0.0, 0.5),
    ("gelu", {}, -0.0, 0.5),
    ("gelu", {}, 1e-30, 0.5),
    ("gelu", {}, -1e-30, 0.5),
    ("gelu", {}, 1e4, 1.0),
    ("gelu", {}, -1e4, 0.0),
    ("gelu", {}, np.inf, 1.0),
    ("gelu", {}, -np.inf, 0.0),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,params,x,expected", EXACT_BWD, ids=[f"{n}'({x})" for n, _, x, _ in EXACT_BWD])
def test_exact_derivatives(backend, dtype, name, params, x, expected):
    # gelu'(0) is 1/2 from both sides (float32's backward polynomial is fitted
    # with that constraint: _numba/_fitpoly.py, fit_phi_dphi), and the limits
    # at +-inf are taken
    g = np.ones(5, dtype=dtype)
    with np.errstate(all="raise"):
        got = fastact.backward(name, g, np.full(5, x, dtype=dtype), **params)
    assert np.all(got == expected), f"{name}'({x}) on {backend}: got {got[0]!r}, expected {expected!r}"


def test_selu_rounds_once_near_float32_max(backend):
    # scale*x for this x rounds to the largest float32; a float32(scale)*x
    # product overflowed to inf (found by the exhaustive accuracy run).
    # One step up, the exact product overflows.
    x = np.array([3.2386221488365256e38, 3.4e38], np.float32)
    with np.errstate(over="ignore"):
        got = fastact.selu(np.repeat(x, 40))
    assert np.all(got[:40] == np.finfo(np.float32).max), got[:3]
    assert np.all(got[40:] == np.inf), got[40:43]


# Piecewise functions whose float32 kernels compare x with a parameter in
# float32 (its nearest float32 and a loop-invariant flag for the one input
# where that differs from comparing in double, as the reference does).
_CUT_CASES = [
    ("threshold", lambda p: {"threshold": p, "value": 2.0}),
    ("hardtanh", lambda p: {"min_val": p, "max_val": 1e39}),
    ("hardtanh", lambda p: {"min_val": -1e39, "max_val": p}),
    ("hardshrink", lambda p: {"lambd": abs(p)}),
    ("softshrink", lambda p: {"lambd": abs(p)}),
]


@pytest.mark.parametrize("name,make", _CUT_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(_CUT_CASES)])
def test_float32_cuts_fall_where_the_double_comparison_puts_them(backend, name, make):
    # The 50 float32 values either side of float32(p), for parameters float32
    # rounds up, rounds down, holds exactly, or overflows: forward and backward
    # must equal the reference bit for bit.
    rng = np.random.default_rng(3)
    for p in (0.1, 1 / 3, -0.3, 0.7, 0.5, 1e-40, 3.5e38, 1e39, -1e39):
        c = np.float32(np.clip(p, -3.4e38, 3.4e38))
        x = (np.arange(-50, 50, dtype=np.int32) + np.array([c]).view(np.int32)[0]).view(np.float32)
        x = np.concatenate([x, np.float32([np.inf, -np.inf, np.nan, 0.0, -0.0])])
        g = rng.standard_normal(x.size).astype(np.float32)
        params = make(p)
        for got, exp in ((fastact.forward(name, x, **params), reference_forward(name, x, **params)),
                         (fastact.backward(name, g, x, **params), reference_backward(name, g, x, **params))):
            same = (got == exp) | (np.isnan(got) & np.isnan(exp))
            assert same.all(), f"{name}{params} on {backend}: x={x[~same][:3]}, got {got[~same][:3]}, expected {exp[~same][:3]}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", ELEMENTWISE_SPECS, ids=spec_ids(ELEMENTWISE_SPECS))
def test_nan_in_gives_nan_out(spec, backend, dtype):
    x = np.full(37, np.nan, dtype=dtype)
    assert np.isnan(fastact.forward(spec.name, x, **make_case(spec, np.random.default_rng(0))[1])).all()


def test_tanhshrink_has_no_cancellation(backend):
    x = np.array([1e-30, 1e-10, 1e-4, 1e-2, 0.1, 0.3, 0.59, 0.61], dtype=np.float64)
    got = fastact.tanhshrink(x)
    lx = x.astype(np.longdouble)
    # the series, summed in long double for the small ones
    exp_small = lx**3 / 3 - 2 * lx**5 / 15 + 17 * lx**7 / 315 - 62 * lx**9 / 2835
    ok = np.abs(x) < 1e-2
    assert_close(got[ok], exp_small[ok].astype(np.float64), 1e-12, 0, f"tanhshrink near 0 [{backend}]")
    x32 = np.float32([1e-20, 1e-6, 1e-3, 0.05])
    got32 = fastact.tanhshrink(x32)
    lx = x32.astype(np.float64)
    assert_close(got32, (lx**3 / 3 - 2 * lx**5 / 15 + 17 * lx**7 / 315).astype(np.float32), 1e-6, 0, "float32")


def test_softmax_masked_rows(backend):
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [-np.inf, 5.0, -np.inf]])
    for dtype in (np.float32, np.float64):
        y = fastact.softmax(x.astype(dtype))
        assert y[0, 1] == 0 and y[2, 1] == 1 and np.isnan(y[1]).all(), y
        ly = fastact.log_softmax(x.astype(dtype))
        assert ly[0, 1] == -np.inf and ly[2, 1] == 0 and np.isnan(ly[1]).all(), ly
        sm = fastact.sparsemax(x.astype(dtype))
        assert sm[0, 1] == 0 and sm[2, 1] == 1 and np.isnan(sm[1]).all(), sm
        mn = fastact.softmin(-x.astype(dtype))
        np.testing.assert_allclose(mn[[0, 2]], y[[0, 2]], rtol=1e-6)


@pytest.mark.parametrize("name", ["softmax", "softmin"])
def test_softmax_backward_from_y_float32_row_sum_bound(backend, name):
    """float32 softmax's and softmin's backward from y, out = sign y (g - d), d = sum(g y) rounded to
    float32: the compiled backends form d from float32 sums of four products (_axis.pxi's _dot_f32,
    _kernels' DOT4_MIN), the reference exactly. The registry's note promises a few ULP of the row's
    scale; here each output is held to the bound that form gives, y (4u S + u|s| + u|g - s|) + u|out|
    (S = sum|g y|, s the exact sum, u = 2**-24), on rows of 256 to 4097: sums that cancel (g of both
    signs, up to 1e4), one near 0, and a row of positive g with every seventh equal to s, where the
    output is d's error alone. A step or lane of the sum lost or added twice is off by far more."""
    rng = np.random.default_rng(31)
    u = 2.0**-24
    sign = -1.0 if name == "softmin" else 1.0
    for n in (256, 1000, 1001, 4097):
        x = rng.standard_normal((6, n)).astype(np.float32)
        y = getattr(fastact, name)(x, axis=-1)
        g = (rng.standard_normal((6, n)) * np.logspace(0, 4, 6)[:, None]).astype(np.float32)
        g[1] -= np.float32((g[1].astype(np.float64) * y[1]).sum())  # an exact sum near 0
        g[2] = rng.uniform(1, 2, n).astype(np.float32)
        for _ in range(2):
            g[2, ::7] = np.float32((g[2].astype(np.float64) * y[2]).sum())  # g - s about 0 there
        out = getattr(fastact, name + "_backward")(g, y=y, axis=-1)
        g64, y64 = g.astype(np.float64), y.astype(np.float64)
        s = (g64 * y64).sum(axis=-1, keepdims=True)
        S = np.abs(g64 * y64).sum(axis=-1, keepdims=True)
        want = sign * y64 * (g64 - s)
        bound = np.abs(y64) * (4 * u * S + u * np.abs(s) + u * np.abs(g64 - s)) + u * np.abs(want)
        err = np.abs(out.astype(np.float64) - want)
        assert (err <= bound).all(), f"{name} rows of {n}: worst error / bound {float((err / bound).max()):.3g}"


@pytest.mark.parametrize("axis", [1, 0])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin", "sparsemax"])
def test_a_nan_makes_its_whole_line_nan(backend, name, axis):
    # Lines of 300 (the row kernels) and of 3 (axis=0, the column tiles); one
    # NaN in a line, and in another an infinity that leaves it finite (-inf;
    # +inf for softmin, which is softmax of -x).
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        x = (rng.standard_normal((3, 300)) * 3).astype(dtype)
        x = x if axis == 1 else np.ascontiguousarray(x.T)
        idx = (1, 17) if axis == 1 else (17, 1)
        x[idx] = np.nan
        x[(2, 5) if axis == 1 else (5, 2)] = np.inf if name == "softmin" else -np.inf
        got = fastact.forward(name, x, axis=axis)
        exp = reference_forward(name, x, axis=axis)
        nan_line = np.take(np.isnan(got), idx[0] if axis == 1 else idx[1], axis=1 - axis)
        assert nan_line.all(), f"{name} on {backend} {dtype.__name__}: {nan_line.sum()} of {nan_line.size} NaN"
        assert np.isnan(got).sum() == np.isnan(exp).sum() == nan_line.size
        rtol, atol = bound_for(SPECS_BY_NAME[name], "forward", got.dtype)
        assert_close(got, exp, rtol, atol, f"{name} on {backend}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sparsemax_rows_candidates_and_fallback(backend, dtype):
    # Cython's rows gather the candidates x - max > -1 once, passing over
    # blocks of 32 with none by a test in x's type, and run Michelot's
    # passes over them (over the whole row when there are more than 512);
    # both backends' backwards pass over blocks of 32 without a y > 0. Rows of odd
    # lengths, spreads that give a few candidates (scale 3) or all of them
    # (1e-3: the fallback for rows over 512), huge values, and NaN, +inf
    # or -inf in a late block; the backward from x and from y.
    rng = np.random.default_rng(21)
    spec = SPECS_BY_NAME["sparsemax"]
    rtol, atol = bound_for(spec, "forward", np.dtype(dtype))
    brtol, batol = bound_for(spec, "backward", np.dtype(dtype))
    for n in (1, 31, 33, 700, 1500):
        for scale in (1e-3, 3.0, 1e30):
            x = (rng.standard_normal((6, n)) * scale).astype(dtype)
            x[1, -1] = np.nan
            x[2, n // 2] = np.inf
            x[3, : n // 2] = -np.inf
            x[4] = np.round(x[4] / scale)  # ties
            y = fastact.sparsemax(x)
            assert_close(y, reference_forward("sparsemax", x), rtol, atol, f"sparsemax n={n} scale={scale} [{backend}]")
            g = rng.standard_normal(x.shape).astype(dtype)
            gx = fastact.sparsemax_backward(g, x)
            assert_close(gx, reference_backward("sparsemax", g, x), brtol, batol, f"backward n={n} [{backend}]")
            np.testing.assert_array_equal(fastact.sparsemax_backward(g, y=y), gx)


@pytest.mark.parametrize("n", [1, 2, 7, 12, 13, 15, 16, 20, 23, 24, 25, 33, 40, 63, 64, 65, 72, 100, 127, 300, 600, 601])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
def test_short_rows_in_blocks(backend, name, n):
    # Forward rows of at most SHORT_N (600) on Numba go through blocks of
    # SHORT_B rows (fewer past SHORT_SCRATCH elements): under 16 copied
    # transposed, from 16 on with the exps in one loop over the block
    # (_flat_fwd_blocks); on Cython forward rows of
    # at most 24 and backward rows of at most 12 (_SN, _SN_BWD, blocks of
    # _SB rows), float32 with AVX-512 forward rows of at most 63 and
    # backward rows of at most 23 but 16 (_SN_TR, _SN_TR_BWD) by 16 x 16
    # register transposes -- the last 16 columns taken again, or under 16
    # reads and writes into the next rows -- in blocks of 128 rows to 32
    # elements, 64 beyond; and float32 log_softmax forward rows of 72-127
    # (_SN_TR_LOG, the rows' 64-lane steps leaving 8 or more) in blocks of
    # up to _SCR_LOG elements -- except that float32 forward rows of 16-255
    # on AVX-512 go through flat blocks (_flat_blocks, the exps in one loop
    # over the block, as Numba's). Longer ones go through the row passes,
    # log_softmax's in chunks of 64 rows (LOGCHUNK, _LC) with 8-lane sums in
    # Cython. 300 rows are full blocks and a partial one whose last 12 rows
    # are no whole group of 16; 20000 rows of 7, 12, 20 or 40 split over the
    # threads. Lines with NaN, +inf and only -inf keep their
    # reference result; out= the input itself must give the same bits.
    rng = np.random.default_rng(n)
    spec = SPECS_BY_NAME[name]
    for rows in (300, 20000 if n in (7, 12, 20, 40, 100) else 3):
        for dtype in (np.float32, np.float64):
            x = (rng.standard_normal((rows, n)) * 4).astype(dtype)
            x[1, 0] = np.nan
            x[2, -1] = np.inf
            if rows > 3:
                x[3] = -np.inf
            what = f"{name} rows of {n} x {rows} {dtype.__name__} on {backend}"
            y = _check_forward(spec, x, {"axis": -1}, what)
            xi = x.copy()
            fastact.forward(name, xi, axis=-1, out=xi)
            np.testing.assert_array_equal(xi, y, err_msg=what + " in place")
            g = rng.standard_normal(x.shape).astype(dtype)
            _check_backward(spec, g, x, {"axis": -1}, what + " backward", y=y)
            gi = g.copy()
            b = fastact.backward(name, g, y=y, axis=-1)
            fastact.backward(name, gi, y=y, axis=-1, out=gi)
            np.testing.assert_array_equal(gi, b, err_msg=what + " backward in place")


@pytest.mark.parametrize("shape,axis", [((50001, 2), -1), ((33333, 6), -1), ((7001, 30), -1), ((2000, 4, 13), 1)],
                         ids=["half1", "half3", "half15", "inner13"])
def test_glu_short_halves(backend, shape, axis):
    # glu where a half row is short (L < 64 elements, the inner length
    # included): its rows go by blocks with their halves copied into
    # buffers; large enough for two threads, the second starting inside a
    # row for half3 and half15. Values out to |b| > 80 reach float32's
    # double-precision tail.
    rng = np.random.default_rng(13)
    spec = SPECS_BY_NAME["glu"]
    x = (rng.standard_normal(shape) * 30).astype(np.float32)
    y = _check_forward(spec, x, {"axis": axis}, f"glu{shape}")
    g = rng.standard_normal(y.shape).astype(np.float32)
    _check_backward(spec, g, x, {"axis": axis}, f"glu{shape} backward")


@pytest.mark.parametrize("pieces", [2, 3, 5])
@pytest.mark.parametrize("shape,axis", [((40, 30, 700), 1), ((30, 17000), 0), ((9000, 30), 1)],
                         ids=["inner700", "axis0", "inner1"])
def test_maxout_backward_ties_and_nans(backend, shape, axis, pieces):
    # The backward routes g to the first largest piece of each group, and to
    # the first NaN where a group holds one: the block loops keep a running
    # best and its index per column (inner > 1) or per group (inner 1; for
    # some pieces counts a scan per group with the count a constant).
    # Values from a small set make ties common; NaNs and infinities mixed in.
    rng = np.random.default_rng(11 + pieces)
    x = rng.integers(-2, 3, size=shape).astype(np.float32)
    flat = x.reshape(-1)
    spots = rng.choice(flat.size, flat.size // 50, replace=False)
    flat[spots[: len(spots) // 3]] = np.nan
    flat[spots[len(spots) // 3: 2 * len(spots) // 3]] = np.inf
    flat[spots[2 * len(spots) // 3:]] = -np.inf
    y = fastact.maxout(x, pieces, axis=axis)
    g = rng.standard_normal(y.shape).astype(np.float32)
    got = fastact.maxout_backward(g, x, pieces, axis=axis)
    want = reference_backward("maxout", g, x, pieces=pieces, axis=axis)
    assert np.array_equal(got, want, equal_nan=True), f"maxout backward {shape} axis {axis} pieces {pieces}"
    assert np.array_equal(y, reference_forward("maxout", x, pieces=pieces, axis=axis), equal_nan=True)


@pytest.mark.parametrize("shape", [(3000, 7, 5), (1562, 64), (2, 3, 20000), (33333, 3), (1001, 100), (51, 9, 333)],
                         ids=["inner5", "inner1", "inner20000", "inner1_c3", "inner1_c100", "inner333"])
def test_prelu_layouts_large(backend, shape):
    # The three forms of the accelerated kernels (rows with a weight per
    # column for inner < 64, runs of one weight beyond: Numba's forward takes
    # whole runs shorter than 4096 by one loop nest, and a thread's share
    # starts inside one with inner333), each big enough to
    # run in parallel; Numba's grad_weight does not depend on the threads.
    # Rows of few channels go by blocks of whole rows against repeated
    # weights (C = 3 and 100: the second thread's half starts inside a row).
    rng = np.random.default_rng(7)
    spec = SPECS_BY_NAME["prelu"]
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    w = rng.uniform(-0.5, 0.5, shape[1]).astype(np.float32)
    _check_forward(spec, x, {"weight": w}, f"prelu{shape}")
    _check_backward(spec, g, x, {"weight": w}, f"prelu{shape}")
    if backend == "numba":
        before = fastact.get_num_threads()
        try:
            fastact.set_num_threads(1)
            one = fastact.prelu_backward(g, x, w)
            fastact.set_num_threads(2)
            two = fastact.prelu_backward(g, x, w)
        finally:
            fastact.set_num_threads(before)
        assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])


@pytest.mark.parametrize("name,params", [("sigmoid", {}), ("hardtanh", {"min_val": -0.5, "max_val": 2.0}),
                                         ("gelu", {"approximate": "none"})], ids=["sigmoid", "hardtanh", "gelu"])
def test_in_place_equals_out_of_place(backend, name, params):
    # Sizes on both sides of the serial/parallel cut, 1-D and 2-D; the forward
    # into x, the backward into grad_output and into x. (The Numba backend runs
    # these through a buffer: its plain loop, reading and writing one array,
    # ran scalar.)
    rng = np.random.default_rng(9)
    f, b = getattr(fastact, name), getattr(fastact, name + "_backward")
    for shape in [(1000,), (200_003,), (301, 700)]:
        x = (rng.standard_normal(shape) * 3).astype(np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        y, gx = f(x, **params), b(g, x, **params)
        xi = x.copy()
        assert f(xi, **params, out=xi) is xi
        np.testing.assert_array_equal(xi, y)
        gi = g.copy()
        assert b(gi, x, **params, out=gi) is gi
        np.testing.assert_array_equal(gi, gx)
        xi = x.copy()
        assert b(g, xi, **params, out=xi) is xi
        np.testing.assert_array_equal(xi, gx)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", ELEMENTWISE_SPECS + [SPECS_BY_NAME["glu"]], ids=spec_ids(ELEMENTWISE_SPECS) + ["glu"])
def test_element_alone_as_in_the_array(spec, backend, dtype):
    # An element's result does not depend on its neighbours, the array's
    # length or its place in it: f(x[i:i+1]) == f(x)[i], bit for bit, and the
    # same with one thread or two. (Cython's float64 loops call libmvec's
    # vector exp/tanh/... in their vector body and libm's scalar ones in the
    # remainder, which differ in the last bit: the remainder goes through a
    # padded buffer, _PAD in _elementwise.pxi.in.)
    rng = np.random.default_rng(12)
    params = {"training": False} if spec.kind == RRELU else None
    if spec.kind == GLU:
        x, p = (rng.standard_normal(106) * 4).astype(dtype), {"axis": -1}
    else:
        x, p = make_case(spec, rng, dtype=dtype, size=53, params=params)
        x = (x * 4).astype(dtype)
    g = rng.standard_normal(x.shape if spec.kind != GLU else (x.shape[0] // 2,)).astype(dtype)
    f = lambda v: fastact.forward(spec.name, v, **p)  # noqa: E731
    b = lambda gg, v: fastact.backward(spec.name, gg, v, **p)  # noqa: E731
    if spec.kind == GLU:  # the two halves of each element
        h = x.shape[0] // 2
        pair = lambda i: np.array([x[i], x[h + i]], dtype)  # noqa: E731
        alone_f = np.concatenate([f(pair(i)) for i in range(h)])
        alone_b = [np.concatenate(r) for r in zip(*[_as_list(b(g[i:i + 1], pair(i))) for i in range(h)])]
        whole_b = _as_list(b(g, x))[0]
        np.testing.assert_array_equal(f(x), alone_f)
        np.testing.assert_array_equal(whole_b[:h], alone_b[0][0::2])
        np.testing.assert_array_equal(whole_b[h:], alone_b[0][1::2])
        return
    alone_f = np.concatenate([f(x[i:i + 1]) for i in range(x.size)])
    alone_b = np.concatenate([b(g[i:i + 1], x[i:i + 1]) for i in range(x.size)])
    np.testing.assert_array_equal(f(x), alone_f)
    np.testing.assert_array_equal(f(x[5:]), alone_f[5:])
    np.testing.assert_array_equal(b(g, x), alone_b)
    np.testing.assert_array_equal(b(g[3:], x[3:]), alone_b[3:])
    big = np.resize(x, 200_003)  # past the serial threshold: chunk edges at odd places
    gb = np.resize(g, 200_003)
    before = fastact.get_num_threads()
    try:
        fastact.set_num_threads(1)
        one = f(big), b(gb, big)
        fastact.set_num_threads(2)
        two = f(big), b(gb, big)
    finally:
        fastact.set_num_threads(before)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    np.testing.assert_array_equal(two[0][:53], alone_f)
    np.testing.assert_array_equal(two[1][:53], alone_b)


def _placed(values, offset):
    """A copy of ``values`` that starts ``offset`` elements past a 64-byte boundary."""
    item = values.dtype.itemsize
    buf = np.empty(values.size + 64 // item + offset, values.dtype)
    s = ((-buf.ctypes.data) % 64) // item + offset
    a = buf[s:s + values.size]
    a[...] = values
    return a


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", ELEMENTWISE_SPECS, ids=spec_ids(ELEMENTWISE_SPECS))
def test_results_do_not_depend_on_alignment(spec, backend, dtype):
    # The elementwise loops start their stores at out's 64-byte boundary
    # (Cython: the elements before it through the padded buffer; Numba: a
    # loop of their own, _kernels._wrap_aligned): the same bits wherever x, g
    # and out sit, in place too.
    if spec.kind == RRELU:
        pytest.skip("rrelu's slopes are drawn per call")
    rng = np.random.default_rng(5)
    x, p = make_case(spec, rng, dtype=dtype, size=1000)
    x = (x * 4).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    f = getattr(fastact, spec.name)
    b = getattr(fastact, spec.name + "_backward")
    want_f = f(_placed(x, 0), **p, out=_placed(np.zeros_like(x), 0))
    want_b = b(_placed(g, 0), _placed(x, 0), **p, out=_placed(np.zeros_like(x), 0))
    for xo, oo in ((1, 1), (3, 0), (0, 5), (2, 7), (4, 4)):
        np.testing.assert_array_equal(f(_placed(x, xo), **p, out=_placed(np.zeros_like(x), oo)), want_f)
        np.testing.assert_array_equal(b(_placed(g, xo), _placed(x, xo), **p, out=_placed(np.zeros_like(x), oo)), want_b)
        xi = _placed(x, xo)
        np.testing.assert_array_equal(f(xi, **p, out=xi), want_f)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin", "prelu"])
def test_in_place_rows_and_columns(backend, name):
    # The row kernels (axis last) and the column kernels (axis 0 of a 2-D
    # array, axis 1 of a 4-D one), each with out=x, against out of place; for
    # the softmax family the backward from y too, with out=g and out=y.
    rng = np.random.default_rng(10)
    # (3000, 100) along axis 0 is one block of columns, its rows split over
    # the threads (Numba's _softmax_cols_split)
    for shape, axis in [((300, 1000), 1), ((1000, 300), 0), ((4, 16, 30, 30), 1), ((3000, 100), 0)]:
        x = (rng.standard_normal(shape) * 3).astype(np.float32)
        kw = {"weight": rng.uniform(-0.5, 0.5, shape[axis]).astype(np.float32), "axis": axis} if name == "prelu" \
            else {"axis": axis}
        expected = fastact.forward(name, x, **kw)
        xi = x.copy()
        assert fastact.forward(name, xi, out=xi, **kw) is xi
        np.testing.assert_array_equal(xi, expected)
        if name != "prelu":
            # the backward from y, into grad_output and into y
            g = rng.standard_normal(shape).astype(np.float32)
            gx = fastact.backward(name, g, y=expected, **kw)
            gi = g.copy()
            assert fastact.backward(name, gi, y=expected, out=gi, **kw) is gi
            np.testing.assert_array_equal(gi, gx)
            yi = expected.copy()
            assert fastact.backward(name, g, y=yi, out=yi, **kw) is yi
            np.testing.assert_array_equal(yi, gx)


# --------------------------------------------------------------- shapes


def _layouts(spec, rng, dtype):
    """(label, x, params) for 0-d, empty, 1-D, 4-D, strided, reversed and Fortran inputs."""
    _, params = make_case(spec, rng, dtype=dtype, size=64)
    base = rng.standard_normal((4, 6, 5, 8)) * 3
    if spec.kind == PRELU:
        p4 = dict(params, weight=rng.uniform(-0.5, 0.5, 6), axis=1)
        yield "4d", base.astype(dtype), p4
        yield "fortran", np.asfortranarray(base.astype(dtype)), p4
        yield "reversed", base.astype(dtype)[::-1, :, ::-1], p4
        yield "strided", base.astype(dtype)[:, :, ::2, 1::3], p4
        yield "channels-last", base.astype(dtype), dict(p4, weight=rng.uniform(-0.5, 0.5, 8), axis=-1)
        ps = dict(params, weight=0.3)
        yield "0d", np.array(-1.5, dtype=dtype), ps
        yield "empty", np.zeros((0, 6), dtype=dtype), dict(ps, weight=rng.uniform(-0.5, 0.5, 6))
        return
    if spec.kind in (GLU, MAXOUT):
        k = 2 if spec.kind == GLU else params["pieces"]
        base = rng.standard_normal((4, 6 * k, 5)) * 3
        for axis in (0, 1, 2, -1):
            shape = list(base.shape)
            shape[axis] = 2 * k
            arr = rng.standard_normal(shape) * 3
            yield f"axis{axis}", arr.astype(dtype), dict(params, axis=axis)
            yield f"axis{axis}-fortran", np.asfortranarray(arr.astype(dtype)), dict(params, axis=axis)
        yield "reversed", np.ascontiguousarray(base.astype(dtype))[::-1, ::-1], dict(params, axis=1)
        yield "strided", (rng.standard_normal((4, 2 * k, 10)) * 3).astype(dtype)[:, :, ::2], dict(params, axis=1)
        yield "empty", np.zeros((0, 2 * k), dtype=dtype), dict(params, axis=-1)
        if spec.kind == MAXOUT:
            yield "0d", np.array(1.5, dtype=dtype), dict(params, pieces=1, axis=0)
        return
    if spec.kind == AXIS:
        for axis in (0, 1, 2, 3, -1):
            yield f"axis{axis}", base.astype(dtype), dict(params, axis=axis)
        yield "fortran", np.asfortranarray(base.astype(dtype)), dict(params, axis=2)
        yield "reversed", base.astype(dtype)[::-1, :, ::-1], dict(params, axis=-1)
        yield "strided", base.astype(dtype)[:, ::2, :, 1::3], dict(params, axis=1)
        yield "0d", np.array(2.5, dtype=dtype), dict(params, axis=0)
        yield "empty", np.zeros((3, 0), dtype=dtype), dict(params, axis=-1)
        yield "empty-rows", np.zeros((0, 3), dtype=dtype), dict(params, axis=-1)
        return
    if spec.kind == RRELU:
        params = dict(params, training=False)
    yield "0d", np.array(-1.25, dtype=dtype), params
    yield "empty", np.zeros((3, 0, 2), dtype=dtype), params
    yield "1d", base.reshape(-1).astype(dtype), params
    yield "4d", base.astype(dtype), params
    yield "fortran", np.asfortranarray(base.astype(dtype)), params
    yield "reversed", base.astype(dtype)[::-1, :, ::-1], params
    yield "strided", base.astype(dtype)[:, ::2, :, 1::3], params
    yield "1d-strided", base.reshape(-1).astype(dtype)[::-3], params


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_shapes_and_layouts(spec, backend, dtype):
    rng = np.random.default_rng(4)
    for label, x, params in _layouts(spec, rng, dtype):
        what = f"{spec.name} [{backend}, {dtype}, {label} {x.shape} {x.strides}]"
        y = _check_forward(spec, x, params, "forward " + what)
        assert y.shape == _as_list(reference_forward(spec.name, x, **params))[0].shape
        ax = params.get("axis", -1)
        gshape = grad_shape(spec, x.shape, ax, params) if spec.kind in (GLU, MAXOUT) else x.shape
        g = rng.standard_normal(gshape).astype(dtype)
        _check_backward(spec, g, x, params, "backward " + what)


INT_DTYPES = ["int8", "uint8", "int16", "int32", "int64", "bool"]


@pytest.mark.parametrize("idt", INT_DTYPES)
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_integer_and_bool_inputs(spec, backend, idt):
    rng = np.random.default_rng(5)
    _, params = make_case(spec, rng, size=8)
    if spec.kind == RRELU:
        params["training"] = False
    shape = (3, 8)
    if spec.kind == PRELU:
        params["weight"] = rng.uniform(-0.5, 0.5, 8)
        params["axis"] = 1
    if "axis" in params and spec.kind != PRELU:
        params["axis"] = -1
    if idt == "bool":
        xi = rng.integers(0, 2, shape).astype(bool)
    else:
        xi = rng.integers(-5 if idt[0] != "u" else 0, 6, shape).astype(idt)
    expected_dtype = np.sin(xi).dtype
    y = fastact.forward(spec.name, xi, **params)
    y = y[0] if isinstance(y, tuple) else y
    assert y.dtype == expected_dtype, f"{spec.name}({idt}) -> {y.dtype}, NumPy's ufuncs give {expected_dtype}"
    ref = _as_list(reference_forward(spec.name, xi.astype(expected_dtype), **params))[0]
    rtol, atol = bound_for(spec, "forward", expected_dtype)
    assert_close(y, ref, rtol, atol, f"{spec.name} [{backend}, {idt}]")


# ------------------------------------------------------ out= and in-place


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_out_and_inplace(spec, backend, dtype):
    rng = np.random.default_rng(6)
    params = {"training": False} if spec.kind == RRELU else None
    x, params = make_case(spec, rng, dtype=dtype, size=4096, params=params)
    expected = _as_list(reference_forward(spec.name, x, **params))[0]
    rtol, atol = bound_for(spec, "forward", dtype)

    out = np.empty_like(expected)
    res = fastact.forward(spec.name, x, out=out, **params)
    assert res is out
    assert_close(out, expected, rtol, atol, f"{spec.name} out= [{backend}]")

    # a strided out (a view into a larger array) leaves the rest untouched
    big = np.full(expected.shape[:-1] + (expected.shape[-1] * 2,), 7.0, dtype=dtype)
    view = big[..., ::2]
    fastact.forward(spec.name, x, out=view, **params)
    assert_close(view, expected, rtol, atol, f"{spec.name} strided out= [{backend}]")
    assert np.all(big[..., 1::2] == 7.0)

    if expected.shape == x.shape:
        xi = x.copy()
        res = fastact.forward(spec.name, xi, out=xi, **params)
        assert res is xi
        assert_close(xi, expected, rtol, atol, f"{spec.name} in-place [{backend}]")

        # partial overlap: the result must be as if the input had been copied first
        buf = np.concatenate([x.reshape(-1), x.reshape(-1)[:1]])
        if spec.kind in (ELEMENTWISE, RRELU):
            src, dst = buf[:-1], buf[1:]
            exp_shift = _as_list(reference_forward(spec.name, src.copy(), **params))[0]
            fastact.forward(spec.name, src, out=dst, **params)
            assert_close(dst, exp_shift, rtol, atol, f"{spec.name} overlapping out= [{backend}]")

    # backward in-place into grad_output
    g_shape = expected.shape
    g = rng.standard_normal(g_shape).astype(dtype)
    exp_all = _as_list(reference_backward(spec.name, g, x, **params))
    exp_g = exp_all[0]
    brtol, batol = bound_for(spec, "backward", dtype)
    if exp_g.shape == g.shape:
        gi = g.copy()
        res = _as_list(fastact.backward(spec.name, gi, x, out=gi, **params))
        assert res[0] is gi
        assert_close(gi, exp_g, brtol, batol, f"{spec.name} backward in-place [{backend}]")
        # and the other results (prelu's weight's gradient): from g as it was,
        # not as the stores into out = g left it
        for got, want in zip(res[1:], exp_all[1:]):
            assert_close(got, want, brtol, batol, f"{spec.name} backward in-place, second result [{backend}]")
    if spec.allows_y(params) and spec.kind in (ELEMENTWISE, AXIS):
        yv = expected.copy()
        exp_y = reference_backward(spec.name, g, y=yv, **params)
        res = fastact.backward(spec.name, g, y=yv, out=yv, **params)
        assert res is yv
        assert_close(yv, exp_y, brtol, batol, f"{spec.name} backward(y=, out=y) [{backend}]")


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_prelu_backward_in_place_weight_gradient(backend, dtype):
    # out=grad_output: the weight's gradient sums x * g over the g the call
    # was given. The Cython kernels summed g after their stores into out had
    # replaced it (every walk), and so did the Numba kernel for runs of one
    # weight (inner of 64 and more); the input's gradient was right
    # (found by a review; test_out_and_inplace checked only that one).
    rng = np.random.default_rng(13)
    for shape, axis in [((50, 64), 1), ((20, 300), 1), ((6, 5, 7), 1), ((4, 3, 300), 1), ((2, 3, 40000), 1),
                        ((700,), 0)]:
        x = rng.standard_normal(shape).astype(dtype)
        g = rng.standard_normal(shape).astype(dtype)
        w = rng.uniform(-1, 1, shape[axis]).astype(dtype)
        gx, gw = reference_backward("prelu", g, x, weight=w, axis=axis)
        gi = g.copy()
        gx_i, gw_i = fastact.prelu_backward(gi, x, w, axis=axis, out=gi)
        assert gx_i is gi
        what = f"prelu {shape} [{backend}, {dtype}]"
        rtol, atol = bound_for(get_spec("prelu"), "backward", dtype)
        assert_close(gi, gx, rtol, atol, "input's gradient in place " + what)
        assert_close(gw_i, gw, rtol, atol, "weight's gradient in place " + what)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_maxout_one_piece_backward_in_place(backend, dtype):
    # pieces = 1: g has x's shape, so out=g is an in-place call. Numba's
    # kernel along a non-last axis parked its running maximum in out's first
    # piece, which then was g: every result was x, not g (found by a random
    # run; the last axis, whose rows take another kernel, was right).
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 6, 7)).astype(dtype)
    for axis in (0, 1, 2, -1):
        g = rng.standard_normal(x.shape).astype(dtype)
        exp = reference_backward("maxout", g, x, pieces=1, axis=axis)
        np.testing.assert_array_equal(exp, g)  # the identity
        gi = g.copy()
        assert fastact.backward("maxout", gi, x, pieces=1, axis=axis, out=gi) is gi
        np.testing.assert_array_equal(gi, g, err_msg=f"axis {axis} [{backend}]")


@pytest.mark.parametrize("inner", [1, 2])
def test_maxout_backward_index_beyond_float32(backend, inner):
    # The backward's block loops keep each group's best index as a float of
    # the data's type; float32 holds integers exactly only up to 2**24. With
    # more pieces, Numba's kernel stored index 2**24 + 1 as 2**24 and routed
    # g to both pieces; now the index is a float64 beyond 2**24 (Cython's
    # kernel scans with an integer index there).
    k = (1 << 24) + 3
    x = np.zeros((k, inner), np.float32)
    x[k - 2] = 1.0
    g = np.full((1, inner), 5.0, np.float32)
    got = fastact.maxout_backward(g, x, k, axis=0)
    for i in range(inner):
        np.testing.assert_array_equal(np.flatnonzero(got[:, i]), [k - 2], err_msg=f"column {i} [{backend}]")
        assert got[k - 2, i] == 5.0


@pytest.mark.parametrize("spec", [s for s in SPECS if s.kind in (ELEMENTWISE, AXIS)], ids=lambda s: s.name)
def test_y_backward_equals_x_backward(spec, backend):
    rng = np.random.default_rng(7)
    for params in (make_case(spec, rng)[1], random_params(spec, rng)):
        if not spec.allows_y(params):
            continue
        x, params = make_case(spec, rng, params=params)
        kinks = spec.kinks(spec.with_defaults(params))
        if kinks and spec.kind == ELEMENTWISE:
            near = np.min(np.abs(x[:, None] - np.asarray(kinks)[None, :]), axis=1) < 1e-2
            x = np.where(near, x + 0.05, x)
        g = rng.standard_normal(x.shape)
        y = fastact.forward(spec.name, x, **params)
        by_x = fastact.backward(spec.name, g, x, **params)
        by_y = fastact.backward(spec.name, g, y=y, **params)
        assert_close(by_y, by_x, 1e-9, 1e-12, f"{spec.name} y= vs x= [{backend}, {params}]")
