"""Accuracy of the Numba backend's vectorisable math (``fastact._numba._math``).

Each function is compared, over wide ranges and at its edges, with a float64
(or mpmath) value; the maximum relative error found must stay below the bound
recorded in the module docstring. float32 results are compared with the
float64 truth rounded to float32, so the figures are in float32 ULP terms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from fastact._numba import _math as M  # noqa: E402

# name -> (float32 bound, float64 bound), the measured maxima rounded up
BOUNDS = {
    "exp": (1.2e-7, 2.3e-16),
    "expm1": (1.2e-7, 2.7e-16),
    "expm1_neg": (1.2e-7, 2.7e-16),
    "log1p": (1.2e-7, 2.3e-16),
    "log": (1.2e-7, 2.3e-16),
    "tanh": (2.4e-7, 4.5e-16),
    "erf": (3.6e-7, 3.0e-15),
    "erfc": (4.8e-7, 1.5e-14),
    # float64 phi: the comparison value erfc(-x/sqrt2) itself carries ~x^2*eps
    # from rounding x/sqrt2 (up to ~1e-13 at x = -37); ours splits x*x exactly.
    "phi": (4.8e-7, 2.5e-13),
    "sigmoid": (2.4e-7, 4.5e-16),
    "softplus": (2.4e-7, 4.5e-16),
    "tanhshrink": (4.8e-7, 1.0e-15),
}


def _erf64(x):
    return np.array([math.erf(v) for v in x])


def _erfc64(x):
    return np.array([math.erfc(v) for v in x])


def _sigmoid64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _tanhshrink64(x):
    import mpmath

    mpmath.mp.dps = 40
    return np.array([float(mpmath.mpf(float(v)) - mpmath.tanh(mpmath.mpf(float(v)))) for v in x])


TRUTH = {
    "exp": np.exp, "expm1": np.expm1, "expm1_neg": lambda x: np.expm1(np.minimum(x, 0.0)), "log1p": np.log1p, "log": np.log, "tanh": np.tanh,
    "erf": _erf64, "erfc": _erfc64, "phi": lambda x: 0.5 * _erfc64(-x / math.sqrt(2)),
    "sigmoid": _sigmoid64, "softplus": lambda x: np.logaddexp(0.0, x), "tanhshrink": _tanhshrink64,
}

_KERNELS = {}


def _kernel(name):
    if name not in _KERNELS:
        fn = getattr(M, name)

        @numba.njit(error_model="numpy")
        def k(x, out):
            for i in range(x.shape[0]):
                out[i] = fn(x[i])

        _KERNELS[name] = k
    return _KERNELS[name]


def _inputs(name, dtype, rng):
    f = np.finfo(dtype)
    lim = 88.0 if dtype == np.float32 else 709.0
    if name == "log":
        x = np.exp(rng.uniform(-80 if dtype == np.float32 else -700, 80 if dtype == np.float32 else 700, 20000))
        x = np.concatenate([x, [f.tiny, 1.0, 2.0, float(f.max)]])
    elif name == "log1p":
        x = np.concatenate([rng.uniform(-1, 1, 10000), np.exp(rng.uniform(-80, 80, 10000)),
                            -np.exp(rng.uniform(-80, 0, 2000)), [0.0, -0.0, f.tiny, float(f.max), -0.5]])
    elif name == "tanhshrink":
        x = np.concatenate([rng.uniform(-3, 3, 4000), np.exp(rng.uniform(-20, 2, 1000)), [0.0, -0.0, 1.0, -1.0]])
    else:
        x = np.concatenate([rng.uniform(-5, 5, 10000), rng.uniform(-lim - 20, lim + 20, 10000),
                            rng.uniform(-1e-3, 1e-3, 2000), np.exp(rng.uniform(-80, 0, 1000)),
                            [0.0, -0.0, f.tiny, -f.tiny, float(f.smallest_subnormal), 0.5, -0.5, 1.0, -1.0]])
    return x.astype(dtype)


def _measure(name, dtype):
    rng = np.random.default_rng(7)
    x = _inputs(name, dtype, rng)
    out = np.empty_like(x)
    _kernel(name)(x, out)
    with np.errstate(all="ignore"):
        truth = TRUTH[name](x.astype(np.float64))
        ref = truth.astype(dtype).astype(np.float64)  # what a perfect float32 result would be
        if dtype == np.float64:
            ref = truth
        tiny = np.finfo(dtype).tiny
        ok = np.isfinite(ref) & (np.abs(ref) >= tiny)
        rel = np.abs(out.astype(np.float64)[ok] - ref[ok]) / np.abs(ref[ok])
    # outside the normal range only the special values must agree
    nonfinite = ~np.isfinite(ref)
    assert np.array_equal(np.isnan(out[nonfinite]), np.isnan(ref[nonfinite])), name
    inf = np.isinf(ref)
    assert np.array_equal(out[inf], ref[inf]), f"{name}: infinities differ"
    sub = np.isfinite(ref) & (np.abs(ref) < tiny)
    assert np.all(np.abs(out[sub].astype(np.float64) - ref[sub]) <= tiny), f"{name}: subnormal range"
    return float(rel.max()) if rel.size else 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_max_relative_error(name, dtype):
    err = _measure(name, dtype)
    bound = BOUNDS[name][0 if dtype == np.float32 else 1]
    assert err <= bound, f"{name} {np.dtype(dtype).name}: max rel error {err:.3g} > recorded {bound:.3g}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_edges(dtype):
    f = np.finfo(dtype)
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1000.0, -1000.0], dtype=dtype)
    res = {}
    for name in ("exp", "expm1", "expm1_neg", "tanh", "sigmoid", "softplus", "erf", "erfc"):
        out = np.empty_like(x)
        _kernel(name)(x, out)
        res[name] = out
        assert np.isnan(out[0]), f"{name}(nan) must be nan"
    assert list(res["exp"][1:]) == [np.inf, 0.0, 1.0, 1.0, np.inf, 0.0]
    assert list(res["expm1"][1:]) == [np.inf, -1.0, 0.0, 0.0, np.inf, -1.0]
    assert list(res["expm1_neg"][1:]) == [0.0, -1.0, 0.0, 0.0, 0.0, -1.0]
    assert np.signbit(res["expm1"][4]) and np.signbit(res["expm1_neg"][4]) and np.signbit(res["tanh"][4])  # -0 kept
    assert list(res["tanh"][1:]) == [1.0, -1.0, 0.0, 0.0, 1.0, -1.0]
    assert list(res["sigmoid"][1:]) == [1.0, 0.0, 0.5, 0.5, 1.0, 0.0]
    assert list(res["softplus"][[1, 2, 5, 6]]) == [np.inf, 0.0, 1000.0, 0.0]
    assert list(res["erf"][1:3]) == [1.0, -1.0] and list(res["erfc"][1:3]) == [0.0, 2.0]
    # overflow/underflow points of exp
    lo, hi = (-103.97, 88.72) if dtype == np.float32 else (-745.13, 709.78)
    xs = np.array([hi * 0.9999, hi * 1.0001, lo * 1.0001], dtype=dtype)
    out = np.empty_like(xs)
    _kernel("exp")(xs, out)
    assert np.isfinite(out[0]) and out[1] == np.inf and out[2] == 0.0
    assert f.max > 0  # keep f used


def test_float32_stays_float32():
    """No float64 in the optimised IR of a float32 kernel built on the math module."""
    import re

    @numba.njit(error_model="numpy", fastmath={"contract"})
    def k(x, out):
        for i in range(x.shape[0]):
            out[i] = M.tanh(x[i]) + M.sigmoid(x[i]) + M.log1p(M.exp(x[i])) + M.phi(x[i])

    x = np.ones(8, dtype=np.float32)
    k(x, np.empty_like(x))
    ir = k.inspect_llvm(k.signatures[0])
    body = re.search(r"define[^\n]*_ZN[^\n]*\dkB[^\n]*\{(.*?)\n\}", ir, re.S).group(1)
    assert "double" not in body


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_silu_fwd_is_mul_sigmoid_hilo_bit_for_bit(dtype):
    """silu's own forward (silu_fwd) gives mul_sigmoid_hilo(x, x, 0)'s bits, the general kernel
    swish keeps: the left tail down to the clamp, the plain arm's |x| > 1, signed zeros, inf, NaN."""

    @numba.njit(error_model="numpy", fastmath={"contract"})
    def both(x, zero, a, b):
        for i in range(x.shape[0]):
            a[i] = M.silu_fwd(x[i])
            b[i] = M.mul_sigmoid_hilo(x[i], x[i], zero[i])

    rng = np.random.default_rng(11)
    lo = -110.0 if dtype == np.float32 else -760.0
    x = np.concatenate([rng.standard_normal(20000) * 10, rng.uniform(lo, 30.0, 20000), np.linspace(lo, 2.0, 20001),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e-40, -1e-40, 3e38, -3e38]]).astype(dtype)
    a, b = np.empty_like(x), np.empty_like(x)
    both(x, np.zeros_like(x), a, b)
    nan = np.isnan(b)
    assert np.array_equal(np.isnan(a), nan)
    u = np.uint32 if dtype == np.float32 else np.uint64
    assert np.array_equal(a[~nan].view(u), b[~nan].view(u))


@pytest.mark.parametrize("c_name,py_name,size", [("fastact_phi_p", "_PHI_TAIL_F32", 12),
                                                   ("fastact_phi_d", "_PHI_DPHI_F32", 9)],
                         ids=["forward", "backward"])
def test_gelu_polynomials_are_the_cython_ones(c_name, py_name, size):
    """gelu's float32 polynomials (_PHI_TAIL_F32 for the forward, _PHI_DPHI_F32 for the
    backward) are written twice, here and halved in the Cython header (fastact_phi_p,
    fastact_phi_d): the two must stay the same numbers."""
    import os
    import re

    header = os.path.join(os.path.dirname(M.__file__), os.pardir, "_cython", "_fastact_cpu.h")
    with open(header) as f:
        text = f.read()
    body = re.search(c_name + r"\[" + str(size) + r"\] = \{(.*?)\};", text, re.S).group(1)
    halved = [float(np.float32(float(v))) for v in re.findall(r"\(float\)(-?[0-9.e+-]+)", body)]
    coeffs = getattr(M, py_name)
    assert len(halved) == len(coeffs) == size
    assert halved == [float(np.float32(0.5 * c)) for c in coeffs]
