"""Shared test machinery, generated from the registry (inputs, parameters, comparisons).

Every test that takes ``backend`` runs once per registered backend. A backend
that cannot load is skipped -- unless ``FASTACT_REQUIRE_BACKENDS`` (a comma
list, set by CI) names it, and then the test fails: CI proves every backend.
"""

from __future__ import annotations

import contextlib
import math
import os

import numpy as np
import pytest

import fastact
from fastact import _backends
from fastact._registry import AXIS, ELEMENTWISE, GLU, MAXOUT, PRELU, RRELU, SPECS, Spec, get_spec

BACKENDS = [name for name in _backends.BACKEND_NAMES if name != "auto"]

# Where the fastact under test lives (the installed package in CI, src/ in a
# checkout): subprocesses get it first on PYTHONPATH so they test the same one.
FASTACT_PATH = os.path.dirname(os.path.dirname(os.path.abspath(fastact.__file__)))


def subprocess_env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = FASTACT_PATH + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env
REQUIRED_BACKENDS = {b.strip() for b in os.environ.get("FASTACT_REQUIRE_BACKENDS", "").split(",") if b.strip()}


@contextlib.contextmanager
def backend_or_skip(name: str):
    """``name`` as the backend for the block; skip the test where it is unavailable
    (fail instead if FASTACT_REQUIRE_BACKENDS names it)."""
    ok, why = _backends.available(name)
    if not ok:
        if name in REQUIRED_BACKENDS:
            pytest.fail(f"backend {name!r} is required (FASTACT_REQUIRE_BACKENDS) but unavailable: {why}")
        pytest.skip(f"backend {name!r} unavailable: {why}")
    with fastact.use_backend(name):
        yield name
FLOAT_DTYPES = ["float16", "float32", "float64"]

ELEMENTWISE_SPECS = [s for s in SPECS if s.kind == ELEMENTWISE]
ALL_NAMES = [s.name for s in SPECS]


def spec_ids(specs):
    return [s.name for s in specs]


# ------------------------------------------------------------------ inputs


def default_params(spec: Spec, direction: str = "forward") -> dict:
    """The parameters a test passes: defaults, plus required ones chosen valid."""
    params = {}
    for p in spec.forward_params() if direction == "forward" else spec.backward_params():
        if p.kind in ("rng",):
            continue
        if p.name == "slopes":
            continue
        if p.required:
            if p.name == "pieces":
                params[p.name] = 2
            elif p.name == "weight":
                params[p.name] = np.float64(0.25)
            else:
                params[p.name] = {"threshold": 0.5, "value": -1.5}[p.name]
    return params


def random_params(spec: Spec, rng: np.random.Generator) -> dict:
    params = default_params(spec)
    for p in spec.params:
        if p.sample is not None:
            params[p.name] = p.sample(rng)
    return params


def random_values(rng: np.random.Generator, n: int, scale: float = 3.0) -> np.ndarray:
    """Mostly normal values, with a tail of log-uniform magnitudes (1e-6 .. 1e3) and both signs."""
    x = rng.standard_normal(n) * scale
    k = n // 8
    if k:
        idx = rng.choice(n, size=k, replace=False)
        x[idx] = np.sign(rng.standard_normal(k)) * 10.0 ** rng.uniform(-6, 3, size=k)
    return x


def edge_values(dtype) -> np.ndarray:
    dt = np.dtype(dtype)
    fi = np.finfo(dt)
    base = [0.0, -0.0, np.inf, -np.inf, np.nan, float(fi.max), -float(fi.max), float(fi.tiny), -float(fi.tiny),
            float(fi.smallest_subnormal), -float(fi.smallest_subnormal), float(fi.eps), -float(fi.eps),
            1.0, -1.0, 0.5, -0.5, 3.0, -3.0, 6.0, -6.0, 20.0, -20.0, 1e-4, -1e-4, 1e-8, -1e-8]
    big = [10.0, -10.0, 15.0, -15.0, 30.0, -30.0, 88.0, -88.0, 89.0, -89.0, 100.0, -100.0, 104.0, -104.0,
           1000.0, -1000.0, 1e4, -1e4, 1e19, -1e19, 1e20, -1e20, 3e38, -3e38]
    if dt == np.float64:
        big += [709.0, -709.0, 710.0, -710.0, 745.0, -745.0, 1e154, -1e154, 1e155, -1e155, 1e300, -1e300, 1e-310, -1e-310]
    if dt == np.float16:
        big = [v for v in big if abs(v) < 6e4]
    with np.errstate(over="ignore"):
        return np.array(base + big, dtype=dt)


# ------------------------------------------------------------ comparisons


def bound_for(spec: Spec, direction: str, dtype) -> tuple[float, float]:
    return spec.bound(direction, np.dtype(dtype).name)


def grad_weight_atol(g, x, params, atol=0.0):
    """The absolute part of prelu's grad_weight bound, per channel (the
    registry's note): the sum's rounding depends on its order, which differs
    between backends, so they agree to a small multiple of float64's eps
    times the sum of |x*g| over the channel (x <= 0), not to a relative bound
    where the sum cancels. 8 eps of it (measured: up to 0.18 eps of it),
    plus the caller's atol."""
    w = np.asarray(params["weight"])
    x64 = np.asarray(x, dtype=np.float64)
    t = np.where(x64 > 0, 0.0, np.abs(x64 * np.asarray(g, dtype=np.float64)))
    if w.size == 1:
        mag = np.full(w.shape, t.sum())
    else:
        ax = params.get("axis", 1) % x64.ndim
        mag = t.sum(axis=tuple(i for i in range(x64.ndim) if i != ax))
    return 8 * np.finfo(np.float64).eps * mag + atol


def assert_close(actual, expected, rtol, atol, what="", inputs=None):
    a = np.asarray(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    a64 = a.astype(np.float64)
    e64 = e.astype(np.float64)
    nan_a, nan_e = np.isnan(a64), np.isnan(e64)
    bad = nan_a != nan_e
    both = ~nan_a & ~nan_e
    inf = both & (np.isinf(a64) | np.isinf(e64))
    bad |= inf & (a64 != e64)
    fin = both & ~inf
    with np.errstate(all="ignore"):
        err = np.abs(a64 - e64)
        bad |= fin & (err > rtol * np.abs(e64) + atol)
    if bad.any():
        idx = np.argwhere(bad)[:6]
        at = f"{float(np.max(atol)):g}" if np.ndim(atol) == 0 else f"(up to) {float(np.max(atol)):g}"
        lines = [f"{what}: {int(bad.sum())} of {bad.size} values outside |a-r| <= {rtol:g}*|r| + {at}"]
        flat_in = None if inputs is None else np.asarray(inputs)
        for i in idx:
            i = tuple(i)
            src = ""
            if flat_in is not None and flat_in.shape == a.shape:
                src = f" input={flat_in[i]!r}"
            rel = float(err[i] / abs(e64[i])) if e64[i] != 0 and np.isfinite(err[i]) else float("nan")
            lines.append(f"  at {i}:{src} got {a64[i]!r} expected {e64[i]!r} (rel err {rel:.3g})")
        raise AssertionError("\n".join(lines))


def _contig(a):
    return np.array(a, order="C", copy=True)  # unlike ascontiguousarray, keeps 0-d arrays 0-d


def reference_forward(name: str, x, **params):
    with fastact.use_backend("numpy"):
        return fastact.forward(name, _contig(x), **params)


def reference_backward(name: str, g, x=None, y=None, **params):
    with fastact.use_backend("numpy"):
        return fastact.backward(
            name, _contig(g), None if x is None else _contig(x), y=None if y is None else _contig(y), **params
        )


def axis_input(spec: Spec, rng, shape, axis, params, dtype=np.float64):
    """A random input for an along-axis function whose axis length suits it."""
    shape = list(shape)
    if spec.kind == GLU and shape[axis] % 2:
        shape[axis] += 1
    if spec.kind == MAXOUT:
        k = params["pieces"]
        shape[axis] = max(1, shape[axis] // k) * k
    x = random_values(rng, math.prod(shape)).reshape(shape) if math.prod(shape) else np.zeros(shape)
    return x.astype(dtype)


def grad_shape(spec: Spec, x_shape, axis, params):
    shape = list(x_shape)
    if not shape:
        return ()
    if spec.kind == GLU:
        shape[axis] //= 2
    elif spec.kind == MAXOUT:
        shape[axis] //= params["pieces"]
    return tuple(shape)


def make_case(spec: Spec, rng, dtype=np.float64, size=1000, shape=None, axis=None, params=None):
    """(x, params) for one call of ``spec``: elementwise 1-D, along-axis 2-D, prelu 3-D."""
    params = dict(default_params(spec) if params is None else params)
    if spec.kind in (ELEMENTWISE, RRELU):
        shape = shape or (size,)
        x = random_values(rng, math.prod(shape)).reshape(shape).astype(dtype)
        if spec.kind == RRELU and params.get("training"):
            params["slopes"] = rng.uniform(params.get("lower", 0.125), params.get("upper", 1 / 3), size=shape).astype(dtype)
        return x, params
    if spec.kind == PRELU:
        shape = shape or (4, 7, max(1, size // 28))
        ch = shape[params.get("axis", 1)] if len(shape) > 1 else 1
        params["weight"] = rng.uniform(-0.5, 0.5, size=ch)
        return random_values(rng, math.prod(shape)).reshape(shape).astype(dtype), params
    shape = shape or (max(1, size // 64), 64)
    ax = -1 if axis is None else axis
    params["axis"] = ax
    return axis_input(spec, rng, shape, ax, params, dtype), params


def out_dtype(x_dtype) -> np.dtype:
    dt = np.dtype(x_dtype)
    return dt if dt.kind == "f" else np.result_type(dt, np.float16)


F32_SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-38, -1e-38, 3e38, -3e38], np.float32)


def with_neighbours(edges, steps=3):
    """[edges, edges one float32 step up, one down, two up, two down, ...]: a table's interval edges and the
    inputs either side of them."""
    up = down = edges
    out = [edges]
    for _ in range(steps):
        up, down = np.nextafter(up, np.float32(np.inf)), np.nextafter(down, np.float32(-np.inf))
        out += [up, down]
    return out


def gelu_table_inputs():
    # Both tables' interval edges (phi: centres (i - 13) * 5/16, tail:
    # -(i + 12) * 11/32, half a width either side) with their float32
    # neighbours, the switch between them at -4.1875, the clamps (5.75,
    # -14.9), the underflow, specials, a dense grid and random bit patterns.
    f32 = np.float32
    edges = [(i - 13) * 0.3125 + s * 0.15625 for i in range(32) for s in (-1, 0, 1)]
    edges += [-(i + 12) * 0.34375 + s * 0.171875 for i in range(32) for s in (-1, 0, 1)]
    edges += [(i - 12) * 0.34375 + s * 0.171875 for i in range(32) for s in (-1, 0, 1)]  # backward's
    edges += [-4.1875, -4.125, 5.75, 5.78125, 6.5, 6.703125, -14.9, -13.2, -13.0, -12.5]
    near = with_neighbours(np.array(edges, f32))
    rng = np.random.default_rng(15)
    bits = rng.integers(0, 2**32, 1 << 16, dtype=np.uint64).astype(np.uint32).view(f32)
    return np.concatenate(near + [F32_SPECIALS, np.linspace(-16, 8, 100_003).astype(f32), bits])


def check_gelu_f32(be, what):
    """float32 gelu, forward and backward, on backend object ``be`` (the
    tables of polynomials of the Cython AVX-512 variant and of the Numba
    backend on AVX-512, or an exp-based loop): within the 4 ULP target of the
    correctly rounded x * phi(x) where that is normal (the exhaustive
    measurement: python -m fastact accuracy), within the smallest normal where
    it is not; the backward (grad 1) within its 8 ULP target away from its
    zero crossing at -0.75 and everywhere within the registry's bound; a
    lane's result does not depend on its neighbours (tail lanes, which need
    the exp, mixed into vectors of table lanes) nor on its place in a partial
    last vector; in place on x (g) gives the same. Returns the forward and
    backward (random grad) results, the inputs (gelu_table_inputs()) and the grad."""
    from fastact._accuracy import ulp_distance
    from fastact._reference import BACKEND as REF

    x = gelu_table_inputs()
    ref64 = np.empty(x.shape, np.float64)
    with np.errstate(invalid="ignore"):  # signalling NaNs among the random bits
        REF.forward("gelu", x.astype(np.float64), ref64, {"approximate": "none"})
    r32 = ref64.astype(np.float32)
    normal = np.abs(r32) >= np.finfo(np.float32).tiny
    nan = np.isnan(r32)
    dref = np.empty(x.shape, np.float64)
    with np.errstate(invalid="ignore"):
        REF.backward("gelu", np.ones(x.shape), x.astype(np.float64), None, dref, {"approximate": "none"})
    d32 = dref.astype(np.float32)
    dnormal = np.abs(d32) >= np.finfo(np.float32).tiny
    dnan = np.isnan(d32)
    rtol, atol = get_spec("gelu").bound("backward", "float32")
    g = np.random.default_rng(17).standard_normal(x.size).astype(np.float32)
    rng = np.random.default_rng(16)
    perm = rng.permutation(x.size)
    out = np.empty_like(x)
    be.forward("gelu", x, out, {"approximate": "none"}, 1)
    assert np.array_equal(np.isnan(out), nan), what
    ulp = ulp_distance(out[normal], r32[normal])
    assert ulp.max() <= 4, (what, x[normal][ulp.argmax()], int(ulp.max()))
    small = ~normal & ~nan
    assert np.all(np.abs(out[small].astype(np.float64) - ref64[small]) <= np.finfo(np.float32).tiny), what
    mixed = np.empty_like(x)
    be.forward("gelu", x[perm], mixed, {"approximate": "none"}, 2)
    np.testing.assert_array_equal(mixed, out[perm], err_msg=what)
    for n in range(1, 18):  # every length of a partial last vector
        part = np.empty(n, np.float32)
        be.forward("gelu", x[-n:], part, {"approximate": "none"}, 1)
        np.testing.assert_array_equal(part, out[-n:], err_msg=f"{what} n={n}")
    inplace = x.copy()
    be.forward("gelu", inplace, inplace, {"approximate": "none"}, 1)
    np.testing.assert_array_equal(inplace, out, err_msg=what)

    # backward, grad 1 against phi(x) + x pdf(x); then a random grad
    gx = np.empty_like(x)
    be.backward("gelu", np.ones_like(x), x, None, gx, {"approximate": "none"}, 1)
    assert np.array_equal(np.isnan(gx), dnan), what
    far = dnormal & ((x < -1.0) | (x > -0.5))
    ulp = ulp_distance(gx[far], d32[far])
    assert ulp.max() <= 8, (what, x[far][ulp.argmax()], int(ulp.max()))
    fin = np.isfinite(dref)
    assert np.all(np.abs(gx[fin] - dref[fin]) <= rtol * np.abs(dref[fin]) + atol), what
    gx = np.empty_like(x)
    be.backward("gelu", g, x, None, gx, {"approximate": "none"}, 1)
    mixed = np.empty_like(x)
    be.backward("gelu", g[perm], x[perm], None, mixed, {"approximate": "none"}, 2)
    np.testing.assert_array_equal(mixed, gx[perm], err_msg=what)
    check_backward_lanes(be, "gelu", g, x, gx, what, {"approximate": "none"})
    return out, gx, x, g


def check_unary_lanes(be, name, x, out, what):
    """The forward of ``name`` (no parameters) on 2 threads, on every partial last vector (the last 1-17
    elements) and in place gives ``out``, its one-thread result on x."""
    both = np.empty_like(x)
    be.forward(name, x, both, {}, 2)
    np.testing.assert_array_equal(both, out, err_msg=what)
    for n in range(1, 18):
        part = np.empty(n, x.dtype)
        be.forward(name, x[-n:], part, {}, 1)
        np.testing.assert_array_equal(part, out[-n:], err_msg=f"{what} n={n}")
    inplace = x.copy()
    be.forward(name, inplace, inplace, {}, 1)
    np.testing.assert_array_equal(inplace, out, err_msg=what)


def check_backward_lanes(be, name, g, v, out, what, params=None, y=False):
    """The backward of ``name`` from x = v (or, ``y``, from y = v) on 2 threads, on every partial last vector
    (the last 1-17 elements) and in place on g and on v gives ``out``, its one-thread result."""
    params = {} if params is None else params

    def run(gi, vi, dst, threads):
        be.backward(name, gi, *((None, vi) if y else (vi, None)), dst, params, threads)

    both = np.empty_like(v)
    run(g, v, both, 2)
    np.testing.assert_array_equal(both, out, err_msg=what)
    for n in range(1, 18):
        part = np.empty(n, v.dtype)
        run(g[-n:], v[-n:], part, 1)
        np.testing.assert_array_equal(part, out[-n:], err_msg=f"{what} n={n}")
    for which in ("g", "v"):
        gi, vi = g.copy(), v.copy()
        dst = gi if which == "g" else vi
        run(gi, vi, dst, 1)
        np.testing.assert_array_equal(dst, out, err_msg=f"{what} in place on {which}")


def check_tanh_f32(be, what):
    """float32 tanh on backend object ``be`` (the table of polynomials of the
    Cython AVX-512 variant and of the Numba backend on AVX-512, libmvec's
    tanhf, or Numba's exp-based loop): within 2 ULP of the
    correctly rounded tanh (the exhaustive measurement over all 2**32 inputs
    found 2 for the table of 5/16, 1 for that of 1/4) on the table's interval edges and their float32 neighbours, the
    clamps (the index at the last interval, 7.75, u at 9.125; 9.01, where tanh
    rounds to 1), specials, a dense grid and random bit patterns; -0 stays -0; every
    partial last vector and in place give the same results. Returns the
    results and the inputs."""
    from fastact._accuracy import ulp_distance

    f32 = np.float32
    edges = np.array([i * 0.25 + s * 0.125 for i in range(32) for s in (-1, 0, 1)] + [9.0109, 9.125, 9.75], f32)
    near = with_neighbours(edges)
    bits = np.random.default_rng(18).integers(0, 2**32, 1 << 16, dtype=np.uint64).astype(np.uint32).view(f32)
    x = np.concatenate(near + [-e for e in near] + [F32_SPECIALS, np.linspace(-12, 12, 100_001).astype(f32), bits])
    with np.errstate(invalid="ignore"):
        r = np.tanh(x.astype(np.float64)).astype(f32)
    out = np.empty_like(x)
    be.forward("tanh", x, out, {}, 1)
    nan = np.isnan(r)
    assert np.array_equal(np.isnan(out), nan), what
    ulp = ulp_distance(out[~nan], r[~nan])
    assert ulp.max() <= 2, (what, x[~nan][ulp.argmax()], int(ulp.max()))
    assert np.array_equal(np.signbit(out[x == 0]), np.signbit(x[x == 0])), what
    check_unary_lanes(be, "tanh", x, out, what)
    return out, x


def check_tanhshrink_f32(be, what, bound):
    """float32 tanhshrink on backend object ``be`` (the table of polynomials of
    the Cython AVX-512 variant and of the Numba backend on AVX-512, or the
    series and exp-based loops): within ``bound`` ULP of the correctly rounded
    x - tanh(x) (the float64 reference) on the table's interval edges and
    their float32 neighbours, the switch to x - sign(x) at 9.5, where x^3
    overflows, tiny and subnormal x (x^3/3 underflows), specials, a dense grid
    and random bit patterns; odd to the bit (-0 stays -0); every partial last
    vector and in place give the same results. Returns the results and the inputs."""
    from fastact._accuracy import ulp_distance
    from fastact._reference import tanhshrink

    f32 = np.float32
    edges = np.array([i * 0.3125 + s * 0.15625 for i in range(32) for s in (-1, 0, 1)]
                     + [0.6, 1.0, 9.5, 2.0**42, 6.98e12, 1e-13, 1e-30, 3e-39], f32)
    near = with_neighbours(edges)
    bits = np.random.default_rng(19).integers(0, 2**32, 1 << 16, dtype=np.uint64).astype(np.uint32).view(f32)
    pos = np.concatenate(near + [np.linspace(0, 12, 100_001).astype(f32)])
    x = np.concatenate([pos, -pos, F32_SPECIALS, bits])
    with np.errstate(invalid="ignore", over="ignore"):
        r = tanhshrink(x.astype(np.float64)).astype(f32)
    out = np.empty_like(x)
    be.forward("tanhshrink", x, out, {}, 1)
    nan = np.isnan(r)
    assert np.array_equal(np.isnan(out), nan), what
    ulp = ulp_distance(out[~nan], r[~nan])
    assert ulp.max() <= bound, (what, x[~nan][ulp.argmax()], int(ulp.max()))
    n = len(pos)
    assert np.array_equal(out[n:2 * n].view(np.uint32), (-out[:n]).view(np.uint32)), what
    assert np.array_equal(np.signbit(out[x == 0]), np.signbit(x[x == 0])), what
    check_unary_lanes(be, "tanhshrink", x, out, what)
    return out, x


def check_log_sigmoid_bwd_f32(be, what, bound=2):
    """float32 log_sigmoid backward on backend object ``be``, from x (g *
    sigmoid(-x)) and from y (-g * expm1(min(y, 0))): the table of
    polynomials (from x) and the 2^k expm1(r) loop (from y) of the Cython
    AVX-512 variant and of the Numba backend on AVX-512, or the exp-based
    loops. Within ``bound`` ULP of the correctly rounded float64 product on
    the table's interval edges, the range reduction's and their float32
    neighbours (x: |x| = (i +- 1/2) / 2, the switch to the exp tail at 15.75,
    its clamp at 200; y: (k +- 1/2) ln2, the clamp at -17.7), where
    expm1 rounds to -1, specials, grids and random bit patterns, with g of
    every magnitude up to 3e38 (the tail scales last: g * sigmoid(-x) stays
    exact where sigmoid(-x) is subnormal); signs of zero as the reference
    (but from y = -0, where the exp loops keep -0 and the reference's
    np.minimum(-0, 0) gives +0);
    2 threads, every partial last vector and in place give the same
    results. Returns {"x": (out, g, x), "y": (out, g, y)}."""
    from fastact._accuracy import ulp_distance

    f32 = np.float32
    rng = np.random.default_rng(19)
    bits = rng.integers(0, 2**32, 1 << 16, dtype=np.uint64).astype(np.uint32).view(f32)
    xe = np.array([(i + s * 0.5) * 0.5 for i in range(32) for s in (-1, 0, 1)] + [15.5, 17.33, 87.3, 88.7, 103.9, 150.0,
                                                                                 192.0, 192.7, 200.0, 250.0], f32)
    ye = np.array([-(k + s * 0.5) * np.log(2) for k in range(27) for s in (-1, 0, 1)] + [-17.33, -17.7, -17.8, -30.0], f32)
    cases = {
        "x": np.concatenate(with_neighbours(xe) + [-e for e in with_neighbours(xe)]
                            + [F32_SPECIALS, np.linspace(-40, 40, 100_001).astype(f32), bits]),
        "y": np.concatenate(with_neighbours(ye) + [-e for e in with_neighbours(ye)]
                            + [F32_SPECIALS, np.linspace(-25, 5, 100_001).astype(f32), -np.abs(bits), bits]),
    }
    res = {}
    for kind, v in cases.items():
        n = v.size
        g = (rng.standard_normal(n) * np.exp2(rng.integers(-60, 60, n))).astype(f32)
        g[: n // 8] = f32(3e38) * np.sign(g[: n // 8])
        g[n // 8: n // 4] = 1
        with np.errstate(all="ignore"):  # the random bits' signalling NaNs
            v64, g64 = v.astype(np.float64), g.astype(np.float64)
            if kind == "x":
                r = (g64 * np.where(v64 >= 0, np.exp(-v64) / (1 + np.exp(-v64)), 1 / (1 + np.exp(v64)))).astype(f32)
            else:
                r = (g64 * -np.expm1(np.minimum(v64, 0.0))).astype(f32)
        xy = (v, None) if kind == "x" else (None, v)
        out = np.empty_like(v)
        be.backward("log_sigmoid", g, *xy, out, {}, 1)
        nan = np.isnan(r)
        assert np.array_equal(np.isnan(out), nan), (what, kind, v[np.isnan(out) != nan][:5])
        ulp = ulp_distance(out[~nan], r[~nan])
        worst = int(ulp.argmax())
        assert ulp[worst] <= bound, (what, kind, v[~nan][worst], g[~nan][worst], int(ulp[worst]))
        zero = (r == 0) & ((v != 0) | (kind == "x"))  # y = -0: the reference's np.minimum(-0, 0) is +0
        assert np.array_equal(np.signbit(out[zero]), np.signbit(r[zero])), (what, kind)
        check_backward_lanes(be, "log_sigmoid", g, v, out, f"{what} {kind}", y=kind == "y")
        res[kind] = (out, g, v)
    return res


def check_sigmoid_f32(be, what, bound=2, name="sigmoid", subnormal_ulps=True):
    """float32 sigmoid forward, or silu's (x * sigmoid(x)), on backend object
    ``be`` (on AVX-512 the table of sigmoid(-|x|) that log_sigmoid's backward
    uses, at -x; else the exp-based loops): within ``bound`` ULP of the
    correctly rounded result on the table's interval edges and their float32
    neighbours (|x| = (i +- 1/2) / 2), the switch to the exp tail at |x| =
    15.75, the subnormal sigmoid below x = -87.3, specials, a grid and random
    bit patterns (subnormal results too, unless ``subnormal_ulps`` is False:
    the exp loops' silu returns -0 below x = -103.97 and is held to the
    smallest normal float32 in absolute error there, the registry's bound);
    silu's signs of zero as the reference's (silu(-inf) = -0);
    2 threads, every partial last vector and in place give the same results.
    Returns the results and the inputs."""
    from fastact._accuracy import ulp_distance

    f32 = np.float32
    edges = np.array([(i + s * 0.5) * 0.5 for i in range(32) for s in (-1, 0, 1)] + [15.5, 17.33, 87.3, 88.7, 103.3,
                                                                                    103.9, 104.0, 192.7, 200.0], f32)
    near = with_neighbours(edges)
    bits = np.random.default_rng(20).integers(0, 2**32, 1 << 16, dtype=np.uint64).astype(np.uint32).view(f32)
    x = np.concatenate(near + [-e for e in near] + [F32_SPECIALS, np.linspace(-110, 110, 100_001).astype(f32), bits])
    with np.errstate(all="ignore"):
        x64 = x.astype(np.float64)
        r = np.where(x64 >= 0, 1 / (1 + np.exp(-x64)), np.exp(x64) / (1 + np.exp(x64)))
        if name == "silu":
            r = np.where(x64 == -np.inf, -0.0, x64 * r)
        r = r.astype(f32)
    out = np.empty_like(x)
    be.forward(name, x, out, {}, 1)
    nan = np.isnan(r)
    assert np.array_equal(np.isnan(out), nan), what
    tiny = np.zeros_like(nan) if subnormal_ulps else np.abs(r) < np.finfo(f32).tiny
    assert np.all(np.abs(out[tiny] - r[tiny]) <= np.finfo(f32).tiny), (what, name)
    ulp = ulp_distance(out[~nan & ~tiny], r[~nan & ~tiny])
    assert ulp.max() <= bound, (what, name, x[~nan & ~tiny][ulp.argmax()], int(ulp.max()))
    zero = r == 0
    assert np.array_equal(np.signbit(out[zero]), np.signbit(r[zero])), (what, name)
    check_unary_lanes(be, name, x, out, what)
    return out, x


def check_silu_bwd_f32(be, what, bound, wide_g=True):
    """float32 silu backward, g * s (1 + x (1 - s)), on backend object ``be``
    (on AVX-512 the table of sigmoid(-|x|), else the exp-based loops): with
    grad 1, within ``bound`` ULP of the correctly rounded result where that is
    normal and x is 0.5 or more from the zero crossing at -1.2785, and within the
    registry's bound everywhere; with ``wide_g``, g of every magnitude up to
    3e38 held to the same ULP bound against g times the float64 result (the
    tables' tail scales last; the exp loops return 0 below x = -103.97 however
    large g is); inputs: the table's interval edges and their neighbours, the
    switch to the tail at |x| = 15.75, the clamps at +-200, specials, a grid and
    random bits; 2 threads, every partial last vector and in place on g and x
    give the same results. Returns the results, g and x."""
    from fastact._accuracy import ulp_distance
    from fastact._reference import BACKEND as REF

    f32 = np.float32
    rng = np.random.default_rng(21)
    edges = np.array([(i + s * 0.5) * 0.5 for i in range(32) for s in (-1, 0, 1)] + [15.5, 87.3, 103.9, 192.7, 200.0,
                                                                                    250.0], f32)
    near = with_neighbours(edges)
    bits = rng.integers(0, 2**32, 1 << 16, dtype=np.uint64).astype(np.uint32).view(f32)
    x = np.concatenate(near + [-e for e in near] + [F32_SPECIALS, np.linspace(-250, 250, 200_001).astype(f32), bits])
    tiny = np.finfo(f32).tiny
    with np.errstate(all="ignore"):  # the random bits' signalling NaNs
        x64 = x.astype(np.float64)
        dref = np.empty(x.shape, np.float64)
        REF.backward("silu", np.ones(x.shape), x64, None, dref, {})
    d32 = dref.astype(f32)
    rtol, atol = get_spec("silu").bound("backward", "float32")
    far = (np.abs(d32) >= tiny) & (np.abs(x64 + 1.2785) > 0.5)  # the cancellation grows towards the crossing
    gx = np.empty_like(x)
    be.backward("silu", np.ones_like(x), x, None, gx, {}, 1)
    assert np.array_equal(np.isnan(gx), np.isnan(d32)), what
    ulp = ulp_distance(gx[far], d32[far])
    assert ulp.max() <= bound, (what, "grad 1", x[far][ulp.argmax()], int(ulp.max()))
    fin = np.isfinite(dref)
    assert np.all(np.abs(gx[fin] - dref[fin]) <= rtol * np.abs(dref[fin]) + atol), what
    g = (rng.standard_normal(x.size) * np.exp2(rng.integers(-60, 60, x.size))).astype(f32)
    g[: x.size // 8] = f32(3e38) * np.sign(g[: x.size // 8])
    out = np.empty_like(x)
    be.backward("silu", g, x, None, out, {}, 1)
    if wide_g:
        with np.errstate(all="ignore"):
            r = (g.astype(np.float64) * dref).astype(f32)
        ok = far & np.isfinite(r) & (np.abs(r) >= tiny)
        ulp = ulp_distance(out[ok], r[ok])
        assert ulp.max() <= bound + 1, (what, "wide g", x[ok][ulp.argmax()], g[ok][ulp.argmax()], int(ulp.max()))
    check_backward_lanes(be, "silu", g, x, out, what)
    return out, g, x


def no_general_path(monkeypatch, fn):
    """Make the general path of the public function ``fn`` fail: what still runs took the fast path."""
    def general(*a, **k):
        raise AssertionError("took the general path")
    monkeypatch.setitem(fn.__globals__, "_run", general)
