"""Per-activation scalar arithmetic for the Numba backend.

Every elementwise activation ``<name>`` defines up to three small functions

* ``fwd_<name>(x, p0, p1, p2, p3)``      -> y
* ``bwd_<name>(g, x, p0, p1, p2, p3)``   -> dL/dx from the input
* ``bwdy_<name>(g, y, p0, p1, p2, p3)``  -> dL/dx from the output (where valid)

and ``PARAMS[name]``: the parameter names (in p0..p3 order, each cast to the
array dtype) or ``_derived(names, fn)``, ``fn(values, T) -> tuple`` of derived
parameters in dtype ``T``. ``_kernels.py`` builds the loops
around these by name, so adding an activation means adding functions here
and nothing else in this backend.

Parameters arrive already cast to the array dtype and constants go through
``cst(x, v)``, so float32 stays float32. Formulas follow
``docs/backend-contract.md``; where the literal formula loses accuracy
(1 - s for s near 1, 1 + tanh(u) for u near -inf, exp(-x^2/2) in the tail)
an algebraically equal, cancellation-free form is used instead.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from numba.core.extending import register_jitable


def jit(fn):
    # error_model='numpy': no zero-division checks, so no exception paths that
    # would keep the helper out of line and the loop scalar.
    # inline='always': numba inlines at its IR level; LLVM's inliner left the
    # bigger bodies (erf, softplus) as calls, which kept the loop scalar.
    return register_jitable(error_model="numpy", fastmath={"contract"}, inline="always")(fn)


from . import _math as M
from ._math import cst

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
GELU_K0 = 0.7978845608028654  # sqrt(2/pi)
GELU_C = 0.044715



_SPLITS = {}


def _split(v, T):
    """v as hi + lo in dtype T: y + hi + lo is exact where y + v would cancel.

    Memoised: it runs on every call and parameter values repeat.
    """
    r = _SPLITS.get((v, T))
    if r is None:
        hi = T(v)  # beyond T's range +-inf (backend.prepare silences the warning), lo 0: no inf - inf
        r = (hi, T(v - float(hi)) if np.isfinite(hi) else T(0.0))
        if len(_SPLITS) < 4096:
            _SPLITS[(v, T)] = r
    return r


def _split_cut(v, T):
    """_split for a cut at +-v (the shrinks' finite lambd >= 0).

    Beyond T's range hi is T's largest finite value and lo is clamped to it
    too: with hi = inf, x = inf gave x - hi = NaN (softshrink(inf) against
    lambd = 3.5e38 was NaN, not inf). The cut still falls beyond every finite
    x, as v does.
    """
    big = float(np.finfo(T).max)
    if v <= big:
        return _split(v, T)
    return T(big), T(min(v - big, big))


def _floor_to(v, T):
    """The largest T value <= v: for x of dtype T, x <= v exactly when x <= _floor_to(v, T).

    (T(v) rounds to nearest and may round up past an x just above v: threshold
    1e-30 would swallow float32(1e-30) = 1.0000000031710769e-30.)
    """
    r = _FLOORS.get((v, T))
    if r is None:
        with np.errstate(over="ignore"):  # beyond T's range: +-inf, then stepped down
            r = T(v)
        if float(r) > v:
            r = np.nextafter(r, T(-np.inf))
        if len(_FLOORS) < 4096:
            _FLOORS[(v, T)] = r
    return r


_FLOORS = {}


def _product_cut(beta, t, T):
    """The largest T value c with beta*c <= t as float64 rounds the product
    (beta > 0): for x of dtype T, x*beta > t, the product rounded in
    float64 as the reference rounds it, exactly when x > c. softplus'
    threshold test in x's own dtype: as a float32 hi + lo, beta's product
    with x came out above t where the reference's rounded product is t
    (beta = 0.001, t = 1, x = 1000: softplus 1000 for 1313.26)."""
    r = _CUTS.get((beta, t, T))
    if r is None:
        def above(c):
            return float(c) * beta > t
        # beta finite > 0, t not NaN (the registry): t/beta is a number or
        # +-inf, a few steps from the cut
        with np.errstate(over="ignore"):
            r = T(t / beta)
        down, up = T(-np.inf), T(np.inf)
        while above(r) and r != down:
            r = np.nextafter(r, down)
        while r != up and not above(np.nextafter(r, up)):
            r = np.nextafter(r, up)
        if len(_CUTS) < 4096:
            _CUTS[(beta, t, T)] = r
    return r


_CUTS = {}


def _near(v, T):
    """T(v), rounded to nearest; beyond T's range +-inf without an overflow warning."""
    with np.errstate(over="ignore"):
        return T(v)


def _celu_params(a, T):
    """(alpha hi, alpha lo, 2^-S, 2^S): celu only sees x/alpha, so an alpha beyond
    float32's range is scaled, alpha = (hi + lo)*2^S, and x*2^-S takes its place
    (alpha = 1e40: float32(alpha) was inf, x/inf = 0, and celu(-3e38) came out
    -3e38 instead of -2.955e38, with an overflow warning). Past 2^160 |x/alpha|
    < 2^-32 for every float32 x, and alpha is clamped there.
    """
    if T is np.float32 and abs(a) > 2.0**100:
        a = math.copysign(min(abs(a), 2.0**160), a)
        return _split(a * 2.0**-64, T) + (T(2.0**-64), T(2.0**64))
    return _split(a, T) + (T(1.0), T(1.0))


def _split_exact(v, T):
    """An exact rational v as hi + lo in dtype T (_split for a value no float holds)."""
    hi = T(float(v))
    return hi, T(float(v - Fraction(float(hi))))


# scale*alpha of the two doubles exactly, as hi + lo (bwdy_selu: y + hi is exact
# where y ~ -scale*alpha, and float64's rounded product was 5.75e-17 off)
_SELU = {T: (T(SELU_ALPHA), T(SELU_SCALE)) + _split_exact(Fraction(SELU_ALPHA) * Fraction(SELU_SCALE), T)
         for T in (np.float32, np.float64)}

def _squareplus_params(b, T):
    """(b, sqrt(b)) in T. For float32 and 0 < b < 2**-120, which float32 holds
    inexactly or as 0 (b = 1e-50: every negative x gave 0, and the backward
    relu's slope), or whose b/4 in fwd_squareplus would be subnormal: b's
    significand as hi + lo, its exponent, and 1, for fwd_/bwd_squareplus_wide,
    which compute in float64 and round once (as the Cython backend's float32
    loops do for every b)."""
    if T is np.float32 and 0 < b < 2.0**-120:
        m, e = math.frexp(b)
        hi = T(m)
        return hi, T(m - float(hi)), T(e), T(1.0)
    return T(b), T(math.sqrt(b))


def _derived(names, fn):
    """A derived-parameter spec: ``fn(values, T)`` gets the values of ``names`` in order.

    The backend memoises on those values, so ``fn`` runs once per distinct
    parameter setting and dtype, not per call.
    """
    return (tuple(names), fn)


PARAMS = {
    "relu": (), "relu6": (), "leaky_relu": ("negative_slope",),
    "elu": _derived(("alpha",), lambda v, T: _split(v[0], T)),
    "selu": _derived((), lambda v, T: _SELU[T]),
    "celu": _derived(("alpha",), lambda v, T: _celu_params(v[0], T)),
    "gelu_none": (), "gelu_tanh": (), "sigmoid": (), "log_sigmoid": (), "hardsigmoid": (),
    "hardswish": (), "silu": (), "swish": _derived(("beta",), lambda v, T: _split(v[0], T)), "mish": (), "tanh": (),
    "hardtanh": _derived(("min_val", "max_val"), lambda v, T: (_near(v[0], T), _near(v[1], T),
                                                              _floor_to(v[0], T), -_floor_to(-v[1], T))),
    "softplus": _derived(("beta", "threshold"), lambda v, T: _split(v[0], T) + (_product_cut(v[0], v[1], T), T(0.0))),
    "softsign": (),
    "hardshrink": _derived(("lambd",), lambda v, T: (_floor_to(v[0], T),)),
    "softshrink": _derived(("lambd",), lambda v, T: _split_cut(v[0], T) + (_floor_to(v[0], T),)), "tanhshrink": (),
    "threshold": _derived(("threshold", "value"), lambda v, T: (_floor_to(v[0], T), T(v[1]))),
    "squareplus": _derived(("b",), lambda v, T: _squareplus_params(v[0], T)),
}


# Kernels for common or special parameter settings: name -> ((test on the
# derived parameters (p0, p1, p2, p3), suffix), ...). Where fwd_/bwd_<name>_
# <suffix> exists the backend runs it instead of the general kernel, for the
# first test that holds; it decides once per dtype and parameter setting, not
# per call or element.
SPECIAL = {
    # beta = 1: x*beta = x, no split product needed
    "softplus": ((lambda p: p[0] == 1 and p[1] == 0, "beta1"),),
    "celu": (
        # alpha < 0 (exp(x/alpha) grows) or beyond float32's range (scaled by
        # _celu_params): fwd_celu_wide, bwd_celu_wide
        (lambda p: p[0] < 0 or p[3] != 1, "wide"),
        # alpha = 1 (the default), unscaled: bwd_celu_alpha1
        (lambda p: p[0] == 1 and p[1] == 0 and p[3] == 1, "alpha1"),
    ),
    # lambda exact in the dtype (p1 = 0; the default 0.5): fwd_softshrink_exact
    "softshrink": ((lambda p: p[1] == 0, "exact"),),
    # float32 with b below its normal range (_squareplus_params): fwd_squareplus_wide
    "squareplus": ((lambda p: p[3] == 1, "wide"),),
}


# ------------------------------------------------------------- relu family
@jit
def fwd_relu(x, p0, p1, p2, p3):
    return cst(x, 0.0) if x < 0 else x


@jit
def bwd_relu(g, x, p0, p1, p2, p3):
    return g if x > 0 else cst(g, 0.0)


bwdy_relu = bwd_relu


@jit
def fwd_relu6(x, p0, p1, p2, p3):
    six = cst(x, 6.0)
    return cst(x, 0.0) if x < 0 else (six if x > six else x)


# The backwards that pass g inside an open interval (relu6, hardtanh,
# hardsigmoid) test for the outside, NaN included: the bits of
# g if lo < x < hi else 0, but LLVM then builds the mask under which it loads
# g from three compares and two ORs, where from (x > lo) & (x < hi) it built
# it from two dependent compares, and on Zen 4 a loop streaming from memory
# ran 1.25-1.6x faster so (1e7 float32, 2 threads, hardtanh 2.8-3.8 ms ->
# 2.1-2.3; the same at 1e5): the fewer operations between x's load and the
# load of g that waits on it, the slower the loop streamed (docs/benchmarks.md,
# session 41). The tests on one side only (relu, threshold, hardshrink) gained
# nothing from a redundant NaN test, which LLVM folds.
@jit
def bwd_relu6(g, x, p0, p1, p2, p3):
    return cst(g, 0.0) if (x <= 0) | (x >= cst(x, 6.0)) | (x != x) else g


bwdy_relu6 = bwd_relu6


@jit
def fwd_leaky_relu(x, p0, p1, p2, p3):
    return x if x > 0 else x * p0


@jit
def bwd_leaky_relu(g, x, p0, p1, p2, p3):
    return g if x > 0 else g * p0


bwdy_leaky_relu = bwd_leaky_relu


@jit
def fwd_hardtanh(x, p0, p1, p2, p3):
    return p0 if x < p0 else (p1 if x > p1 else x)


# p0, p1: min_val and max_val rounded (the clamp values); p2, p3: the largest T
# <= min_val and the smallest T >= max_val, so that x <= p2 or x >= p3 exactly
# when x is outside (min_val, max_val) (a rounded bound may land on x itself;
# the test of the outside: see bwd_relu6)
@jit
def bwd_hardtanh(g, x, p0, p1, p2, p3):
    return cst(g, 0.0) if (x <= p2) | (x >= p3) | (x != x) else g


@jit
def fwd_threshold(x, p0, p1, p2, p3):
    return p1 if x <= p0 else x


@jit
def bwd_threshold(g, x, p0, p1, p2, p3):
    return cst(g, 0.0) if x <= p0 else g


# The dead zone is a comparison: p0 = the largest T <= lambda (_floor_to), and
# |x| <= p0 exactly when |x| <= lambda. Two operations where the split test
# ((x - hi) <= lo) & ((x + hi) >= -lo) took five (hardshrink, 1e5 float32
# forward, 2 threads: 13.1 -> 9.6 us; torch 9.0-10.6).
@jit
def fwd_hardshrink(x, p0, p1, p2, p3):
    return cst(x, 0.0) if abs(x) <= p0 else x


@jit
def bwd_hardshrink(g, x, p0, p1, p2, p3):
    return cst(g, 0.0) if abs(x) <= p0 else g


# softshrink: lambda arrives split (p0 + p1 = lambda) for the forward's
# x - lambda (x - p0 is exact near the kink, x - p0 - p1 keeps the digits a
# rounded lambda would lose), and floored (p2, as hardshrink's p0) for the
# backward's dead zone.
@jit
def fwd_softshrink(x, p0, p1, p2, p3):
    # 0*x keeps NaN (and the sign of zero) in the dead zone.
    d = x - p0
    e = x + p0
    return d - p1 if d > p1 else (e + p1 if e < -p1 else cst(x, 0.0) * x)


@jit
def fwd_softshrink_exact(x, p0, p1, p2, p3):
    # p1 = 0 (SPECIAL): fwd_softshrink with its d - p1 and e + p1 folded away,
    # the same bits (d > 0 and e < -0 are the same tests; e = -0 is never
    # taken). Two fewer operations a vector, as the Cython backend's
    # softshrink_fwd_f32_: 1e5 float32 on two threads 10.3 -> 9.3 us.
    d = x - p0
    e = x + p0
    return d if d > 0 else (e if e < 0 else cst(x, 0.0) * x)


@jit
def bwd_softshrink(g, x, p0, p1, p2, p3):
    return bwd_hardshrink(g, x, p2, p1, p2, p3)


# The float32 kernels multiply by float32(1/6) where the reference divides by
# 6, as the Cython backend's: a packed division bound these loops (1e5 on one
# thread, hardswish 18 us against 10 multiplying), and the multiply adds at
# most one ULP to the result's rounding (the recorded bound is about 8).
# float64 keeps the reference's divisions.
@jit
def fwd_hardsigmoid(x, p0, p1, p2, p3):
    three = cst(x, 3.0)
    # float32: (x+3)/6 is exact near the kink at -3 where x/6 + 1/2 cancels;
    # float64 keeps the reference's x/6 + 1/2 (differences there are ~1e-11).
    mid = (x + three) * cst(x, 0.16666666666666666) if M.is_f32(x) else x / cst(x, 6.0) + cst(x, 0.5)
    return cst(x, 0.0) if x <= -three else (cst(x, 1.0) if x >= three else mid)


@jit
def bwd_hardsigmoid(g, x, p0, p1, p2, p3):
    three = cst(x, 3.0)
    d = g * cst(g, 0.16666666666666666) if M.is_f32(g) else g / cst(g, 6.0)
    return cst(g, 0.0) if (x <= -three) | (x >= three) | (x != x) else d


@jit
def fwd_hardswish(x, p0, p1, p2, p3):
    three = cst(x, 3.0)
    p = x * (x + three)
    mid = p * cst(x, 0.16666666666666666) if M.is_f32(x) else p / cst(x, 6.0)
    return cst(x, 0.0) if x <= -three else (x if x >= three else mid)


@jit
def bwd_hardswish(g, x, p0, p1, p2, p3):
    # x/3 + 1/2 as (2x + 3)/6 in float32: exact numerator near the zero at x = -1.5.
    three = cst(x, 3.0)
    d = (x + x + three) * cst(x, 0.16666666666666666) if M.is_f32(x) else x / three + cst(x, 0.5)
    return cst(g, 0.0) if x <= -three else (g * d if x < three else g)


# -------------------------------------------------------------- elu family
@jit
def fwd_elu(x, p0, p1, p2, p3):
    neg = p0 * M.expm1_neg(x)
    return x if x > 0 else neg


@jit
def bwd_elu(g, x, p0, p1, p2, p3):
    # the factor alpha*e^x first: g*alpha can overflow where the product is
    # finite. e^x as e^-|x| (exp_neg: one power of two), the same bits where
    # it is taken (x <= 0)
    neg = g * (p0 * M.exp_neg(-abs(x), cst(x, 0.0)))
    return g if x > 0 else neg


@jit
def bwdy_elu(g, y, p0, p1, p2, p3):
    return g if y > 0 else g * ((y + p0) + p1)


@jit
def _selu_pos(x, p1):
    # scale*x, rounded once: float32(scale)*x rounds the scale first, and
    # overflowed to inf at x = 3.2386221e38, where the exact product rounds to
    # the largest float32 (the exhaustive accuracy run). float32: in float64.
    if M.is_f32(x):
        return np.float32(np.float64(x) * SELU_SCALE)
    return x * p1


@jit
def fwd_selu(x, p0, p1, p2, p3):
    neg = p1 * (p0 * M.expm1_neg(x))
    return _selu_pos(x, p1) if x > 0 else neg


@jit
def bwd_selu(g, x, p0, p1, p2, p3):
    # scale*alpha*e^x first (p2: scale*alpha rounded once); g*scale*alpha
    # overflowed for |g| > 1.9e38 float32, and gave inf*0 = NaN past x = -104
    neg = g * (p2 * M.exp_neg(-abs(x), cst(x, 0.0)))  # bwd_elu's e^x
    return g * p1 if x > 0 else neg


@jit
def bwdy_selu(g, y, p0, p1, p2, p3):
    return g * p1 if y > 0 else g * ((y + p2) + p3)


@jit
def _celu_q(x, p0, p1):
    # (q, r): x/alpha = q + r, r the quotient's rounding error (and alpha's,
    # p1). A rounded x/alpha costs |x/alpha|*eps relative error in exp(x/alpha).
    inv = cst(x, 1.0) / p0  # loop-invariant: the loop multiplies; q's rounding goes into r
    q = x * inv
    r = (M.fma(-q, p0, x) - q * p1) * inv
    ok = (r == r) & (abs(q) < cst(q, math.inf))  # q = +-inf: inf - inf
    return q, (r if ok else cst(r, 0.0))


@jit
def _celu_neg(x, q, r, p0, p1, p3):
    # alpha*expm1(q + r) = alpha*(expm1(q) + (expm1(q) + 1)*r): with alpha < 0
    # the argument is positive and the plain x/alpha cost up to 1.2e-6
    # (x/alpha = 42.7). Only for q <= 20 (fwd_celu_wide takes its large-
    # argument branch beyond), so expm1(q) is finite. p3: _celu_params.
    em = M.expm1(q)
    em1 = em + (em + cst(em, 1.0)) * r
    neg = (p0 * em1 + p1 * em1) * p3
    # |x/alpha| < 2^-25 (float64: 2^-54): alpha*expm1(q) = x*(1 + q/2) rounds
    # to x, and q itself may have underflowed (alpha = 1e30 gave -0 for x = -1e-30)
    return x if abs(q) < cst(x, 2.0 ** -25 if M.is_f32(x) else 2.0 ** -54) else neg


@jit
def fwd_celu(x, p0, p1, p2, p3):
    # 0 < alpha <= 2^100 in float32 (else fwd_celu_wide), so q = x/alpha <= 0:
    # there expm1's slope e^q keeps q's rounding below 0.6 ULP of the result,
    # and the residual r (and the scaling p2, p3) would only cost time (30 %
    # at 1e6).
    q = x * (cst(x, 1.0) / p0)
    em = M.expm1_neg(q)
    neg = p0 * em + p1 * em
    neg = x if abs(q) < cst(x, 2.0 ** -25 if M.is_f32(x) else 2.0 ** -54) else neg
    return x if x > 0 else neg


@jit
def fwd_celu_wide(x, p0, p1, p2, p3):
    # Any alpha (SPECIAL: alpha < 0 or scaled by _celu_params). alpha < 0:
    # for x <= 0, q = x/alpha >= 0 and exp(q) grows. Past q = 88.7 (float32)
    # it overflows where alpha*exp(q) need not (|alpha| < 1: alpha = -0.022,
    # x = -2 is -1.35e38). From q = 20 (float64: 40) on,
    # expm1(q) is exp(q) to working precision, taken as exp(q/2) = p*s1*s2
    # (exact powers of two s1, s2) and formed as alpha*p*p, then times s1,
    # s1, s2, s2: growing from |alpha| to the result, so nothing overflows
    # before the result does (q beyond exp_parts' clamp: it overflows for any
    # normal alpha).
    q, r = _celu_q(x * p2, p0, p1)
    p, s1, s2 = M.exp_parts(q * cst(q, 0.5), r * cst(r, 0.5))
    big = ((((((p0 * p + p1 * p) * p) * s1) * s1) * s2) * s2)
    # (q > 20 means |alpha| < 1: p3 = 1 there)
    neg = big if q > cst(q, 20.0 if M.is_f32(q) else 40.0) else _celu_neg(x, q, r, p0, p1, p3)
    return x if x > 0 else neg


@jit
def bwd_celu(g, x, p0, p1, p2, p3):
    # alpha > 0, not scaled (else bwd_celu_wide): q = x/alpha <= 0 where it
    # is taken, so exp_neg (one power of two) gives bwd_celu_wide's bits
    q, r = _celu_q(x, p0, p1)
    neg = g * M.exp_neg(-abs(q), r)
    return g if x > 0 else neg


@jit
def bwd_celu_alpha1(g, x, p0, p1, p2, p3):
    # alpha = 1: bwd_celu's quotient is x and its residual +-0 (0 where x is
    # +-inf or NaN), so exp_neg(-|x|, 0) gives its bits without the division
    # and the FMA (1e5 float32, one thread: bwd_celu 30.9 us, this 24.0-24.8)
    neg = g * M.exp_neg(-abs(x), cst(x, 0.0))
    return g if x > 0 else neg


@jit
def bwd_celu_wide(g, x, p0, p1, p2, p3):
    # Any alpha. exp(x/alpha) with the quotient's rounding error carried as a
    # low part. For alpha < 0 exp overflows past x/alpha = 88.7 where g*exp
    # may not: the float32 tail pass (TAIL, cut -80|alpha|) computes those in
    # float64.
    q, r = _celu_q(x * p2, p0, p1)
    neg = g * M.exp_hilo(q, r)
    return g if x > 0 else neg


@jit
def bwdy_celu(g, y, p0, p1, p2, p3):
    # (y + alpha)/alpha: where y ~ -alpha the sum is exact (y/alpha + 1 would
    # cancel y/alpha's rounding error); alpha split in float32, p2: _celu_params
    d = ((y * p2 + p0) + p1) / (p0 + p1)
    return g if y > 0 else g * d


# ------------------------------------------------------------ smooth ones
@jit
def fwd_gelu_none(x, p0, p1, p2, p3):
    # x*phi(x) with the tail's power of two applied last (no subnormal phi).
    return M.mul_phi(x)


@jit
def bwd_gelu_none(g, x, p0, p1, p2, p3):
    return g * M.gelu_dphi(x)


@jit
def _gelu_tanh_s(x):
    # 0.5*(1 + tanh(u)) = sigmoid(2u): no cancellation for u -> -inf.
    u = cst(x, GELU_K0) * (x + cst(x, GELU_C) * (x * x * x))
    return M.sigmoid2(u + u)


def _hl(v):
    hi = np.float32(v)
    return float(hi), float(np.float32(v - float(hi)))


GELU_A = _hl(2.0 * GELU_K0)  # 2u = A*x + B*x^3, A and B as float32 hi + lo
GELU_B = _hl(2.0 * GELU_K0 * GELU_C)


@jit
def _gelu_tanh_2u(x):
    # 2u as hi + lo. In the left tail s = sigmoid(2u) ~ exp(2u) with |2u| up
    # to ~90, so a rounded float32 u costs |2u|*eps relative error (125 ULP
    # at x = -9.1): float32 forms it in double-float arithmetic (FMA error
    # terms, split constants; all packed float32, no float64 conversion).
    # float64 keeps the plain formula.
    if M.is_f32(x):
        ah, al = cst(x, GELU_A[0]), cst(x, GELU_A[1])
        bh, bl = cst(x, GELU_B[0]), cst(x, GELU_B[1])
        x2 = x * x
        x2l = M.fma(x, x, -x2)
        x3 = x2 * x
        x3l = M.fma(x2, x, -x3) + x2l * x
        t1 = ah * x
        t1l = M.fma(ah, x, -t1) + al * x
        t2 = bh * x3
        t2l = M.fma(bh, x3, -t2) + (bh * x3l + bl * x3)
        s = t1 + t2  # two_sum
        bb = s - t1
        err = (t1 - (s - bb)) + (t2 - bb)
        lo = err + (t1l + t2l)
        lo = lo if lo == lo else cst(x, 0.0)  # |x^3| overflows: inf - inf
        return s, lo
    else:
        u = cst(x, GELU_K0) * (x + cst(x, GELU_C) * (x * x * x))
        return u + u, cst(x, 0.0)


@jit
def fwd_gelu_tanh(x, p0, p1, p2, p3):
    hi, lo = _gelu_tanh_2u(x)
    return M.mul_sigmoid_hilo(x, hi, lo)


@jit
def bwd_gelu_tanh(g, x, p0, p1, p2, p3):
    # 0.5*(1+t) = s and 0.5*x*(1-t^2) = 2*x*s*(1-s).
    s, oms = _gelu_tanh_s(x)
    k = cst(x, GELU_K0) * (cst(x, 1.0) + cst(x, 3.0 * GELU_C) * (x * x))
    # At |x| ~ 1e19 k (from x*x) overflows while s*(1-s) is 0: the term's
    # limit is 0, not inf*0 = NaN (a NaN x still propagates through s).
    t = cst(x, 2.0) * x * (s * oms) * k
    t = cst(x, 0.0) if (s * oms == 0) & (s == s) else t
    d = s + t
    d = d if s != 0 else s
    return g * d


@jit
def fwd_sigmoid(x, p0, p1, p2, p3):
    return M.sigmoid(x)


@jit
def bwd_sigmoid(g, x, p0, p1, p2, p3):
    # s*(1-s) from both accurate halves; 1 - s itself cancels for s near 1.
    s, oms = M.sigmoid2(x)
    return g * (s * oms)


@jit
def bwdy_sigmoid(g, y, p0, p1, p2, p3):
    return g * y * (cst(y, 1.0) - y)


@jit
def fwd_log_sigmoid(x, p0, p1, p2, p3):
    return -M.softplus(-x)


@jit
def bwd_log_sigmoid(g, x, p0, p1, p2, p3):
    return g * M.sigmoid(-x)


@jit
def bwdy_log_sigmoid(g, y, p0, p1, p2, p3):
    # sigmoid(-x) = 1 - exp(y): -expm1(y) keeps y's relative accuracy where
    # y -> 0- (x large, where 1 - exp(y) would cancel). y <= 0 (a y above 0
    # is no output of log_sigmoid: it counts as 0, the limit at x = +inf)
    return -g * M.expm1_neg(y)


@jit
def fwd_silu(x, p0, p1, p2, p3):
    # x*sigmoid(x) without a subnormal sigmoid in the left tail
    return M.silu_fwd(x)


@jit
def bwd_silu(g, x, p0, p1, p2, p3):
    return g * M.silu_grad(x)


@jit
def _beta_x(x, p0, p1):
    # beta*x = hi + lo (beta = p0 + p1): keeps the sigmoid tail accurate.
    hi, lo = M.two_prod(p0, x)
    lo = lo + p1 * x
    return hi, (lo if lo == lo else cst(lo, 0.0))  # x = +-inf: inf - inf


@jit
def fwd_swish(x, p0, p1, p2, p3):
    hi, lo = _beta_x(x, p0, p1)
    return M.mul_sigmoid_hilo(x, hi, lo)


@jit
def bwd_swish(g, x, p0, p1, p2, p3):
    hi, lo = _beta_x(x, p0, p1)
    s, oms = M.sigmoid_hilo(hi, lo)
    return g * (s + M.mul0(p0 * M.mul0(x, s), oms))


@jit
def _mish_t(x):
    # tanh(log1p(e^x)) = n/(n+2) with n = e^x (e^x + 2); 1 - t^2 = 4(n+1)/(n+2)^2.
    # Beyond x = 20 both are 1 and 0 to working precision (and n would overflow).
    e = M.exp(x)
    n = e * (e + cst(x, 2.0))
    d = n + cst(x, 2.0)
    big = x > cst(x, 20.0)
    t = n / d
    t = cst(x, 1.0) if big else t
    omt2 = cst(x, 4.0) * (n + cst(x, 1.0)) / (d * d)
    omt2 = cst(x, 0.0) if big else omt2
    return t, omt2


@jit
def fwd_mish(x, p0, p1, p2, p3):
    # x*n/(n + 2) with n = e(e + 2), e = exp(x). For x < 0 the numerator
    # uses exp(x)*2**S and the 2**-S goes on last, so a normal result does
    # not pass through a subnormal e (46 ULP at x = -91).
    two = cst(x, 2.0)
    xe = cst(x, 20.0) if x > cst(x, 20.0) else x  # beyond 20 the result is x
    big_e = M.exp_up(xe, cst(x, 0.0))  # exp(x) * 2**S, normal
    sc = M.tail_scale(x)
    e = big_e * sc
    n = e * (e + two)
    d = n + two
    big = x > cst(x, 20.0)
    left = x < 0
    num_neg = (x * big_e) * (e + two)
    num_pos = x * n
    num = num_neg if left else num_pos  # plain-value arms: stays a select
    v = num / d  # one division for both sides
    vs = v * sc
    v = vs if left else v
    r = x if big else v
    lim = cst(x, -104.0) if M.is_f32(x) else cst(x, -746.0)  # _math's EXP_LO: exp clamped below
    r = cst(x, 0.0) if (x < lim) | (x == 0) else r  # the product is 0 there
    return r if x == x else x


@jit
def bwd_mish(g, x, p0, p1, p2, p3):
    t, omt2 = _mish_t(x)
    return g * (t + M.mul0(M.mul0(x, M.sigmoid(x)), omt2))


@jit
def fwd_tanh(x, p0, p1, p2, p3):
    return M.tanh(x)


@jit
def bwd_tanh(g, x, p0, p1, p2, p3):
    # 1 - t^2 = 4e/(1+e)^2 with e = exp(-2|x|): no cancellation for large |x|.
    a = abs(x)
    e = M.exp_neg(-(a + a), cst(x, 0.0))
    d = cst(x, 1.0) + e
    return g * (cst(x, 4.0) * e / (d * d))


@jit
def bwdy_tanh(g, y, p0, p1, p2, p3):
    return g * ((cst(y, 1.0) - y) * (cst(y, 1.0) + y))


# p0 + p1 = beta (split), p2 = the cut in x of the threshold test (_product_cut)
@jit
def _above(x, p0, p1, p2, p3):
    # x*beta > threshold, the product rounded in float64 as the reference
    # rounds it: x > p2, one compare in x's dtype (no product to round across
    # the threshold or to underflow for a subnormal x)
    return x > p2


@jit
def fwd_softplus(x, p0, p1, p2, p3):
    hi, lo = _beta_x(x, p0, p1)
    sp = M.softplus_hilo(hi, lo) / p0
    return x if _above(x, p0, p1, p2, p3) else sp


@jit
def bwd_softplus(g, x, p0, p1, p2, p3):
    hi, lo = _beta_x(x, p0, p1)
    s, _ = M.sigmoid_hilo(hi, lo)
    gs = g * s
    return g if _above(x, p0, p1, p2, p3) else gs


# beta = 1, the default: x*beta = x exactly, so the split product and its
# NaN guard drop out (the threshold test is x > p2 in both). Same results
# bit for bit as the general kernels (a test holds them to it); picked once
# per dtype and parameter setting (SPECIAL).
@jit
def fwd_softplus_beta1(x, p0, p1, p2, p3):
    sp = M.softplus_hilo(x, cst(x, -0.0))
    return x if x > p2 else sp


@jit
def bwd_softplus_beta1(g, x, p0, p1, p2, p3):
    s, _ = M.sigmoid_hilo(x, cst(x, -0.0))
    gs = g * s
    return g if x > p2 else gs


@jit
def bwdy_softplus(g, y, p0, p1, p2, p3):
    d = -g * M.expm1(-p0 * y)
    return g if _above(y, p0, p1, p2, p3) else d


@jit
def fwd_softsign(x, p0, p1, p2, p3):
    a = abs(x)
    r = x / (cst(x, 1.0) + a)
    one = math.copysign(cst(x, 1.0), x)
    return one if a == cst(x, math.inf) else r


@jit
def bwd_softsign(g, x, p0, p1, p2, p3):
    # g*r*r, r = 1/(1 + |x|): d*d overflowed past |x| = 1.8e19 (float32),
    # where g/d^2 is normal for a large g
    r = cst(x, 1.0) / (cst(x, 1.0) + abs(x))
    return (g * r) * r


@jit
def fwd_tanhshrink(x, p0, p1, p2, p3):
    return M.tanhshrink(x)


@jit
def bwd_tanhshrink(g, x, p0, p1, p2, p3):
    t = M.tanh(x)
    return (g * t) * t  # t*t underflowed to 0 where g*t*t is normal


@jit
def _squareplus_r(x, c):
    # hypot(x, c) with c = sqrt(b): where the larger term is 2^60 or more (2^500
    # float64) or below 2^-60 (2^-500) in units of 2^-64 or 2^64 (2^-600,
    # 2^600), exact powers of two, so that x*x neither overflows nor
    # underflows; c = 0: |x| exactly. (It took two divisions, a/m and c/m.)
    a = abs(x)
    m = a if a > c else c
    if M.is_f32(x):
        hi, lo, down, up = cst(x, 2.0**60), cst(x, 2.0**-60), cst(x, 2.0**-64), cst(x, 2.0**64)
    else:
        hi, lo, down, up = cst(x, 2.0**500), cst(x, 2.0**-500), cst(x, 2.0**-600), cst(x, 2.0**600)
    one = cst(x, 1.0)
    s = down if m >= hi else (up if m < lo else one)
    u = a * s
    v = c * s
    r = math.sqrt(u * u + v * v) * (up if m >= hi else (down if m < lo else one))
    return r if c != 0 else a


@jit
def fwd_squareplus(x, p0, p1, p2, p3):
    r = _squareplus_r(x, p1)
    # x < 0: b/(2(r - x)) = (b/4)/d, d = (r - x)/2 in halves (r - x overflows near the
    # max); 0 at -inf; b = 0 is relu (its d is 0 at the least subnormal x); a b beyond
    # T's range (float32): x/r ~ 0, no cancellation, the plain form
    neg = (p0 * cst(x, 0.25)) / (r * cst(x, 0.5) - x * cst(x, 0.5))
    pos = x * cst(x, 0.5) + r * cst(x, 0.5)
    neg = pos if p0 == cst(x, math.inf) else neg
    neg = cst(x, 0.0) if (x == -cst(x, math.inf)) | (p0 == 0) else neg
    return neg if x < 0 else pos


@jit
def bwd_squareplus(g, x, p0, p1, p2, p3):
    r = _squareplus_r(x, p1)
    ir = cst(x, 1.0) / r
    # 1 + x/r = b/(r(r - x)) as two factors <= 1: nothing overflows or
    # underflows to 0/0; b = 0 is relu, whose negative side has slope 0. g
    # first, then each factor <= 1: every partial product is at least the
    # result (the factors' own product underflowed where g times it is normal).
    # r - x in halves: it overflowed near the max. 1/r once: two divisions, not three.
    half = cst(x, 0.5)
    neg = ((g * half) * (p1 * ir)) * ((half * p1) / (half * r - half * x))
    neg = (g * cst(x, 0.0) if x == x else x) if p0 == 0 else neg  # 0 (relu's slope), but NaN stays NaN
    # x/r = +-1 at b = 0 (r = |x|, whose 1/r overflows below 2.9e-39 in float32) and at +-inf;
    # else r >= sqrt(b) keeps 1/r finite
    ratio = math.copysign(cst(x, 1.0), x) if (abs(x) == cst(x, math.inf)) | (p0 == 0) else x * ir
    ratio = cst(x, 0.0) if r == 0 else ratio
    pos = g * ((cst(x, 1.0) + ratio) * cst(x, 0.5))  # g*(1 + ratio) overflowed near the max
    neg = pos if p1 == cst(x, math.inf) else neg  # b beyond T's range: x/r ~ 0, no cancellation
    return pos if x >= 0 else neg  # NaN takes the neg branch, as in the reference


@jit
def _squareplus_wide_r(x, p0, p1, p2):
    # float32 x and b = (p0 + p1) 2**p2 (_squareplus_params) in float64:
    # x^2 + b cannot overflow nor x^2 underflow; (x, b, r)
    xd = np.float64(x)
    b = (np.float64(p0) + np.float64(p1)) * np.float64(2.0) ** np.float64(p2)  # loop-invariant: hoisted
    return xd, b, math.sqrt(xd * xd + b)


@jit
def fwd_squareplus_wide(x, p0, p1, p2, p3):
    # the Cython backend's squareplus_fwd_w: x < 0, b/(2(r - x)) =
    # (b/4)/((r - x)/2), without (x + r)/2's cancellation; 0 at -inf
    xd, b, r = _squareplus_wide_r(x, p0, p1, p2)
    pos = xd * 0.5 + r * 0.5
    neg = (b * 0.25) / (r * 0.5 - xd * 0.5)
    return cst(x, pos if xd >= 0 else neg)


@jit
def bwd_squareplus_wide(g, x, p0, p1, p2, p3):
    # the Cython backend's squareplus_bwd_w: g w, w = (1 + x/r)/2 as one
    # quotient, (x/2 + r/2)/r for x >= 0, (b/4)/(r (r - x)/2) below; 1/2 at
    # r = 0 cannot occur (b > 0), 1 at x = +inf
    xd, b, r = _squareplus_wide_r(x, p0, p1, p2)
    pos = xd >= 0
    num = xd * 0.5 + r * 0.5 if pos else b * 0.25
    den = r if pos else r * (r * 0.5 - xd * 0.5)
    w = num / den
    w = 1.0 if xd == math.inf else w
    return cst(x, np.float64(g) * w)


# ------------------------------------------------------------ float32 tails
# A backward g*F(x) whose factor F underflows to a subnormal in float32 keeps
# only F's few remaining digits, or none where F flushes to 0, while the true
# product is normal for a large g: sigmoid_backward at g = 1e30, x = -95 is
# 5.5e-12 and came out 6e-6 off (Numba) or 0 (Cython). F is normal with room to
# spare (e^-80 = 1.8e-35, 2^10 above the smallest normal) while x stays on the
# near side of a cut; beyond it the loop computes the element in float64, with
# the float32 parameters widened, and rounds once (_kernels._tail_template).
# TAIL[op] = (test, cut function of p0..p3): "abs" |x| > cut, "below" x < cut,
# "above" x > cut, "small" x < cut for a cut > 0 (softplus' backward from y,
# whose F ~ beta y); x is the op's second argument (glu: b, the gate). The cut
# functions run for float32 only (float64 runs the plain loop; its F is normal
# far past the x that matter here); -inf: no tail for these parameters (F = 0).
@jit
def cut_80(p0, p1, p2, p3):  # F ~ e^-|x|: sigmoid, log_sigmoid
    return cst(p0, 80.0)


@jit
def cut_neg80(p0, p1, p2, p3):  # F ~ e^x: selu, glu's gate
    return cst(p0, -80.0)


@jit
def cut_tanh(p0, p1, p2, p3):  # F = 4 e^(-2|x|)
    return cst(p0, 40.0)


@jit
def cut_elu(p0, p1, p2, p3):
    # F = alpha e^x: a small alpha moves the cut up by -ln|alpha| (to 0 at most)
    a = abs(p0)
    lo = min(0.0, -80.0 - min(0.0, math.log(a))) if a > 0 else -math.inf
    return cst(p0, lo)


@jit
def cut_celu(p0, p1, p2, p3):
    # F = e^(x/alpha) for x <= 0: below -80 for alpha > 0 past x = -80 alpha;
    # for alpha < 0 F grows instead, and overflows past 88|alpha|. alpha =
    # |p0|*p3 (_celu_params); beyond float32's range the cut is -inf: no tail.
    return -cst(p0, 80.0) * abs(p0) * p3


@jit
def cut_softplus(p0, p1, p2, p3):  # F = sigmoid(beta x), beta > 0
    return cst(p0, -80.0) / p0


@jit
def cut_softplus_y(p0, p1, p2, p3):  # F = -expm1(-beta y) ~ beta y, y >= 0
    return cst(p0, 1.8e-35) / p0


TAIL = {
    "bwdy_softplus": ("small", "cut_softplus_y"),
    "bwd_sigmoid": ("abs", "cut_80"),
    "bwd_log_sigmoid": ("above", "cut_80"),
    "bwd_tanh": ("abs", "cut_tanh"),
    "bwd_elu": ("below", "cut_elu"),
    "bwd_selu": ("below", "cut_neg80"),
    "bwd_celu": ("below", "cut_celu"),
    "bwd_celu_wide": ("below", "cut_celu"),
    "bwd_celu_alpha1": ("below", "cut_celu"),
    "bwd_softplus": ("below", "cut_softplus"),
    "bwd_softplus_beta1": ("below", "cut_softplus"),
}
