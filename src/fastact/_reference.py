"""The reference backend ``numpy``: plain NumPy, the oracle for every other backend.

Right first, fast second. Every formula is computed in float64 (float32 input
is widened and the result rounded once) and written so that it neither
overflows nor produces a NaN the true function does not have. Arrays arrive as
described in ``docs/backend-contract.md``: 1-D for elementwise functions,
``(outer, n, inner)`` for the along-axis ones.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

__all__ = ["BACKEND"]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
# scale*alpha of the two doubles above, exactly, as hi + lo: selu's backward from
# y is y + scale*alpha, and where y ~ -scale*alpha the sum y + hi is exact, so
# the product's rounding (5.75e-17) would be all the error of a tiny result
_SELU_AS = Fraction(SELU_SCALE) * Fraction(SELU_ALPHA)
SELU_AS_HI = float(_SELU_AS)
SELU_AS_LO = float(_SELU_AS - Fraction(SELU_AS_HI))
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_K1 = 0.044715

_erfc = np.frompyfunc(math.erfc, 1, 1)


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _mul0(a, b):
    """a*b, but 0 where either factor is 0 (a limit, not inf*0 = NaN)."""
    return np.where((a == 0) | (b == 0), 0.0, a * b)


# ------------------------------------------------------------ building blocks


def sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus1(x):
    """log1p(exp(x)) without overflow."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def one_minus_tanh2(u):
    """1 - tanh(u)^2 = 4e/(1 + e)^2 with e = exp(-2|u|): no cancellation near
    |tanh u| = 1 and no overflow. (1/cosh(u)^2 squared cosh, which overflows
    from |u| = 355.6 on: the result was 0 there, while 4e is a subnormal
    until |u| = 372.5 and g times it, for a g above 1, a normal number.)"""
    e = np.exp(-2.0 * np.abs(u))
    return (4.0 * e) / np.square(1.0 + e)


def _tanh_series() -> tuple[float, ...]:
    # tanh x = sum a_k x^(2k+1), a_0 = 1, from tanh' = 1 - tanh^2:
    # (2k+1) a_k = -sum_{i+j=k-1} a_i a_j.
    a = [Fraction(1)]
    for k in range(1, 26):
        a.append(-sum(a[i] * a[k - 1 - i] for i in range(k)) / (2 * k + 1))
    # x - tanh x = -sum_{k>=1} a_k x^(2k+1) = x^3 * sum_{k>=1} c_k (x^2)^(k-1)
    return tuple(float(-ak) for ak in a[1:])


_TANHSHRINK_COEFFS = _tanh_series()


def tanhshrink(x):
    small = np.abs(x) < 0.6
    z = np.where(small, x, 0.0)
    z2 = z * z
    acc = np.zeros_like(z)
    for c in reversed(_TANHSHRINK_COEFFS):
        acc = acc * z2 + c
    series = z * z2 * acc
    return np.where(small, series, x - np.tanh(x))


def _phi_cdf(x):
    """Phi(x) = erfc(-x/sqrt(2))/2 with the correctly rounded libm erfc."""
    return 0.5 * _f64(_erfc(-x * INV_SQRT_2)) if x.size else x.copy()


def gelu_erf(x):
    return _mul0(x, _phi_cdf(x))


def gelu_erf_grad(x):
    cdf = _phi_cdf(x)
    pdf_term = np.where(np.isinf(x), 0.0, x * np.exp(-0.5 * x * x) * INV_SQRT_2PI)
    return cdf + pdf_term


def _gelu_tanh_u(x):
    return SQRT_2_OVER_PI * (x + GELU_K1 * x * x * x)


def gelu_tanh(x):
    # (1 + tanh u)/2 = sigmoid(2u): no cancellation for very negative x.
    return _mul0(x, sigmoid(2.0 * _gelu_tanh_u(x)))


def gelu_tanh_grad(x):
    u = _gelu_tanh_u(x)
    half_1p_t = sigmoid(2.0 * u)
    du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_K1 * x * x)
    return half_1p_t + _mul0(_mul0(0.5 * x, one_minus_tanh2(u)), du)


def swish(x, beta):
    return _mul0(x, sigmoid(beta * x))


def swish_grad(x, beta):
    s = sigmoid(beta * x)
    return s + _mul0(beta * _mul0(x, s), 1.0 - s)


# ------------------------------------------------------- elementwise formulas
# Each entry: forward(x, p), backward(g, x, p) and, where allowed, backward_y(g, y, p).
# p is the dict of validated parameters. All arguments are float64 arrays.

def _where_pos(x, a, b):
    return np.where(x > 0, a, b)


def _celu_neg(x, alpha):
    # alpha*expm1(x/alpha) for x <= 0. With alpha < 0, q = x/alpha >= 0 and
    # exp(q) overflows past q = 709.8 where alpha*exp(q) need not (|alpha| <
    # 1); from q = 40 on expm1(q) = exp(q) in float64, taken as (alpha*e)*e
    # with e = exp(q/2). Where |q| < 2^-54, alpha*expm1(q) = x*(1 + q/2)
    # rounds to x (and q may have underflowed: alpha = 1e300 gave -0 for x =
    # -1e-30).
    q = np.where(x > 0, 0.0, x / alpha)
    e = np.exp(q * 0.5)
    r = np.where(q > 40, (alpha * e) * e, alpha * np.expm1(q))
    return np.where(np.abs(q) < 2.0**-54, x, r)


_EW_FWD = {
    "relu": lambda x, p: np.where(x < 0, 0.0, x),
    "relu6": lambda x, p: np.where(x < 0, 0.0, np.where(x > 6, 6.0, x)),
    "leaky_relu": lambda x, p: _where_pos(x, x, x * p["negative_slope"]),
    "rrelu": lambda x, p: _where_pos(x, x, x * p["slopes"]),
    "elu": lambda x, p: _where_pos(x, x, p["alpha"] * np.expm1(np.minimum(x, 0.0))),
    "selu": lambda x, p: SELU_SCALE * _where_pos(x, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
    "celu": lambda x, p: _where_pos(x, x, _celu_neg(x, p["alpha"])),
    "gelu": lambda x, p: gelu_erf(x) if p["approximate"] == "none" else gelu_tanh(x),
    "sigmoid": lambda x, p: sigmoid(x),
    "log_sigmoid": lambda x, p: -softplus1(-x),
    "hardsigmoid": lambda x, p: np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, x / 6.0 + 0.5)),
    "hardswish": lambda x, p: np.where(x <= -3, 0.0, np.where(x >= 3, x, x * (x + 3.0) / 6.0)),
    "silu": lambda x, p: swish(x, 1.0),
    "swish": lambda x, p: swish(x, p["beta"]),
    "mish": lambda x, p: _mul0(x, np.tanh(softplus1(x))),
    "tanh": lambda x, p: np.tanh(x),
    "hardtanh": lambda x, p: np.where(x < p["min_val"], p["min_val"], np.where(x > p["max_val"], p["max_val"], x)),
    "softplus": lambda x, p: np.where(x * p["beta"] > p["threshold"], x, softplus1(p["beta"] * x) / p["beta"]),
    "softsign": lambda x, p: np.where(np.isinf(x), np.sign(x), x / (1.0 + np.abs(x))),
    "hardshrink": lambda x, p: np.where((x >= -p["lambd"]) & (x <= p["lambd"]), 0.0, x),
    "softshrink": lambda x, p: np.where(x > p["lambd"], x - p["lambd"], np.where(x < -p["lambd"], x + p["lambd"], 0.0 * x)),
    "tanhshrink": lambda x, p: tanhshrink(x),
    "threshold": lambda x, p: np.where(x <= p["threshold"], p["value"], x),
    "squareplus": lambda x, p: _squareplus(x, p["b"]),
}


def _squareplus(x, b):
    r = np.hypot(x, math.sqrt(b))
    pos = 0.5 * x + 0.5 * r  # (x + r)/2 would overflow near the largest double
    neg = 0.5 * (b / r) / (1.0 - x / r)  # b / (2 (r - x)); r - x overflows near the largest double
    return np.where(x >= 0, pos, np.where(np.isneginf(x), 0.0, neg))


def _squareplus_grad(x, b):
    r = np.hypot(x, math.sqrt(b))
    ratio = np.where(np.isinf(x), np.sign(x), np.where(r == 0, 0.0, x / r))
    pos = 0.5 * (1.0 + ratio)
    # 1 + x/r = b / (r (r - x)), written as two factors <= 1 so that nothing
    # underflows to 0/0 (b = 0 gives 0: squareplus is then relu)
    sb = math.sqrt(b)
    neg = np.where(np.isneginf(x), 0.0, 0.0 * x if b == 0 else 0.5 * (sb / r) * (sb / (r - x)))
    return np.where(x >= 0, pos, neg)


def _softplus_grad(x, p):
    z = p["beta"] * x
    return np.where(x * p["beta"] > p["threshold"], 1.0, sigmoid(z))


def _mish_grad(x):
    sp = softplus1(x)
    t = np.tanh(sp)
    return t + _mul0(_mul0(x, sigmoid(x)), one_minus_tanh2(sp))


_EW_BWD = {  # derivative f'(x); the caller multiplies by g
    "relu": lambda x, p: np.where(x > 0, 1.0, 0.0),
    "relu6": lambda x, p: np.where((x > 0) & (x < 6), 1.0, 0.0),
    "leaky_relu": lambda x, p: _where_pos(x, 1.0, p["negative_slope"]),
    "rrelu": lambda x, p: _where_pos(x, 1.0, p["slopes"]),
    "elu": lambda x, p: _where_pos(x, 1.0, p["alpha"] * np.exp(np.minimum(x, 0.0))),
    "selu": lambda x, p: SELU_SCALE * _where_pos(x, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0.0))),
    "celu": lambda x, p: _where_pos(x, 1.0, np.exp(np.where(x > 0, 0.0, x / p["alpha"]))),
    "gelu": lambda x, p: gelu_erf_grad(x) if p["approximate"] == "none" else gelu_tanh_grad(x),
    "sigmoid": lambda x, p: sigmoid(x) * sigmoid(-x),
    "log_sigmoid": lambda x, p: sigmoid(-x),
    "hardsigmoid": lambda x, p: np.where((x > -3) & (x < 3), 1.0 / 6.0, 0.0),
    "hardswish": lambda x, p: np.where(x <= -3, 0.0, np.where(x < 3, x / 3.0 + 0.5, 1.0)),
    "silu": lambda x, p: swish_grad(x, 1.0),
    "swish": lambda x, p: swish_grad(x, p["beta"]),
    "mish": lambda x, p: _mish_grad(x),
    "tanh": lambda x, p: one_minus_tanh2(x),
    "hardtanh": lambda x, p: np.where((x > p["min_val"]) & (x < p["max_val"]), 1.0, 0.0),
    "softplus": _softplus_grad,
    "softsign": lambda x, p: 1.0 / np.square(1.0 + np.abs(x)),
    "hardshrink": lambda x, p: np.where((x >= -p["lambd"]) & (x <= p["lambd"]), 0.0, 1.0),
    "softshrink": lambda x, p: np.where((x >= -p["lambd"]) & (x <= p["lambd"]), 0.0, 1.0),
    "tanhshrink": lambda x, p: np.square(np.tanh(x)),
    "threshold": lambda x, p: np.where(x <= p["threshold"], 0.0, 1.0),
    "squareplus": lambda x, p: _squareplus_grad(x, p["b"]),
}

_EW_BWD_Y = {  # derivative written from y = f(x)
    "relu": lambda y, p: np.where(y > 0, 1.0, 0.0),
    "relu6": lambda y, p: np.where((y > 0) & (y < 6), 1.0, 0.0),
    "leaky_relu": lambda y, p: _where_pos(y, 1.0, p["negative_slope"]),
    "elu": lambda y, p: _where_pos(y, 1.0, y + p["alpha"]),
    "selu": lambda y, p: _where_pos(y, SELU_SCALE, (y + SELU_AS_HI) + SELU_AS_LO),
    # (y + alpha)/alpha, not y/alpha + 1: where y ~ -alpha the sum is exact and
    # rounds once; y/alpha + 1 cancels the rounding error of y/alpha (float32 y
    # = -0.9277777, alpha = 0.9277777075855209: 4.5e-6 off)
    "celu": lambda y, p: _where_pos(y, 1.0, (y + p["alpha"]) / p["alpha"]),
    "sigmoid": lambda y, p: y * (1.0 - y),
    # y <= 0 always; a y above 0 (no output of log_sigmoid) counts as 0, the limit at x = +inf
    "log_sigmoid": lambda y, p: -np.expm1(np.minimum(y, 0.0)),
    "tanh": lambda y, p: (1.0 - y) * (1.0 + y),
    "softplus": lambda y, p: np.where(y * p["beta"] > p["threshold"], 1.0, -np.expm1(-p["beta"] * y)),
}


# ------------------------------------------------------ along-axis formulas
# x has shape (outer, n, inner); the reduction runs along axis 1.


def _softmax(x):
    m = np.max(x, axis=1, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=1, keepdims=True)


def _log_softmax(x):
    m = np.max(x, axis=1, keepdims=True)
    shifted = x - m
    e = np.exp(shifted)
    # log(sum e) = log1p(sum of all but one maximum): exact near 0, where one
    # entry dominates and a plain log(1 + tiny) would lose the tiny part.
    if x.shape[1]:
        idx = np.argmax(x, axis=1)[:, None, :]
        np.put_along_axis(e, idx, 0.0, axis=1)
    out = shifted - np.log1p(np.sum(e, axis=1, keepdims=True))
    # a +inf in the row (inf - inf) makes it all NaN, as softmax's and PyTorch's
    return np.where(np.any(np.isnan(shifted), axis=1, keepdims=True), np.nan, out)


def _sparsemax(x):
    n = x.shape[1]
    if n == 0:
        return x.copy()
    # Shifted by the maximum (sparsemax(x + c) = sparsemax(x)): with x itself,
    # 1 + k*z > csum lost the 1 next to large values (a row of five 3e38 had
    # an empty support: NaN, not 0.2 each).
    m = np.max(x, axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        x = x - m  # a +inf (or only -inf) gives NaN: caught below
    z = -np.sort(-x, axis=1)  # descending
    csum = np.cumsum(z, axis=1)
    k = np.arange(1, n + 1, dtype=np.float64)[None, :, None]
    support = 1.0 + k * z > csum
    kmax = np.sum(support, axis=1, keepdims=True)  # the support is a prefix
    safe = np.maximum(kmax, 1)
    tau = (np.take_along_axis(csum, safe - 1, axis=1) - 1.0) / safe
    bad = (kmax == 0) | np.any(np.isnan(x), axis=1, keepdims=True)  # x - m: a +inf is NaN now
    tau = np.where(bad, np.nan, tau)
    return np.maximum(x - tau, 0.0) + np.where(bad, np.nan, 0.0)


def _softmax_grad_y(g, y):
    return y * (g - np.sum(g * y, axis=1, keepdims=True))


def _sparsemax_grad_y(g, y):
    mask = y > 0
    cnt = np.sum(mask, axis=1, keepdims=True)
    mean = np.sum(np.where(mask, g, 0.0), axis=1, keepdims=True) / np.maximum(cnt, 1)
    out = np.where(mask, g - mean, 0.0)
    return np.where(np.isnan(y), np.nan, out)


_AX_FWD = {
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "softmin": lambda x: _softmax(-x),
    "sparsemax": _sparsemax,
}

_AX_BWD_Y = {
    "softmax": _softmax_grad_y,
    "log_softmax": lambda g, y: g - np.exp(y) * np.sum(g, axis=1, keepdims=True),
    "softmin": lambda g, y: -_softmax_grad_y(g, y),
    "sparsemax": _sparsemax_grad_y,
}


def _glu_split(x):
    m = x.shape[1] // 2
    return x[:, :m], x[:, m:]


def _maxout_groups(x, pieces):
    outer, n, inner = x.shape
    return x.reshape(outer, n // pieces, pieces, inner)


# ---------------------------------------------------------------- the backend


# Elementwise calls run in blocks of this many elements, so that the float64
# temporaries stay small (and in cache) whatever the array's size.
_BLOCK = 1 << 16


def _block_params(p: dict, n: int, i: int) -> dict:
    """The parameters for elements i..i+_BLOCK: per-element arrays (rrelu's slopes) are cut too."""
    return {k: v[i:i + _BLOCK] if isinstance(v, np.ndarray) and v.size == n else v for k, v in p.items()}


class ReferenceBackend:
    """NumPy formulas behind the backend contract."""

    name = "numpy"

    def info(self) -> dict:
        return {"numpy": np.__version__, "precision": "float64 internally"}

    def threads_for(self, n: int) -> int:  # NumPy's own ufuncs are serial
        return 1

    def forward(self, name, x, out, params, threads=0):
        with np.errstate(all="ignore"):
            if name in _EW_FWD and x.size > _BLOCK:  # flat arrays (the backend contract)
                for i in range(0, x.size, _BLOCK):
                    out[i:i + _BLOCK] = self._forward(name, _f64(x[i:i + _BLOCK]), _block_params(params, x.size, i))
                return
            out[...] = self._forward(name, _f64(x), params)

    def backward(self, name, g, x, y, out, params, threads=0):
        if name in _EW_BWD and g.size > _BLOCK:
            # elementwise in blocks: float64 temporaries of one block, not of the whole array
            cut = lambda a, i: None if a is None else a[i:i + _BLOCK]  # noqa: E731
            for i in range(0, g.size, _BLOCK):
                self.backward(name, g[i:i + _BLOCK], cut(x, i), cut(y, i), out[i:i + _BLOCK],
                              _block_params(params, g.size, i))
            return None
        with np.errstate(all="ignore"):
            res = self._backward(name, _f64(g), None if x is None else _f64(x), None if y is None else _f64(y), params)
        if isinstance(res, tuple):
            out[...] = res[0]
            return res[1].astype(out.dtype)
        out[...] = res
        return None

    # -- float64 in, float64 out

    def _forward(self, name, x, p):
        if name in _EW_FWD:
            return _EW_FWD[name](x, p)
        if name in _AX_FWD:
            return _AX_FWD[name](x)
        if name == "glu":
            a, b = _glu_split(x)
            return a * sigmoid(b)
        if name == "maxout":
            return np.max(_maxout_groups(x, p["pieces"]), axis=2)
        if name == "prelu":
            w = _f64(p["weight"])[None, :, None]
            return np.where(x > 0, x, w * x)
        raise KeyError(name)

    def _backward(self, name, g, x, y, p):
        if name in _EW_BWD:
            if y is not None:
                return g * _EW_BWD_Y[name](y, p)
            return g * _EW_BWD[name](x, p)
        if name in _AX_FWD:
            if y is None:
                y = _AX_FWD[name](x)
            return _AX_BWD_Y[name](g, y)
        if name == "glu":
            a, b = _glu_split(x)
            s = sigmoid(b)
            return np.concatenate([g * s, g * a * s * sigmoid(-b)], axis=1)
        if name == "maxout":
            k = p["pieces"]
            groups = _maxout_groups(x, k)
            idx = np.argmax(groups, axis=2)  # the first maximum (the first NaN if any)
            out = np.zeros_like(groups)
            np.put_along_axis(out, idx[:, :, None, :], g[:, :, None, :], axis=2)
            return out.reshape(x.shape)
        if name == "prelu":
            w = _f64(p["weight"])[None, :, None]
            pos = x > 0
            grad_in = np.where(pos, g, w * g)
            grad_w = np.sum(np.where(pos, 0.0, x * g), axis=(0, 2))
            return grad_in, grad_w
        raise KeyError(name)


BACKEND = ReferenceBackend()
