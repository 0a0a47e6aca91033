"""Offline fits of the polynomials used in ``_math`` and the Cython header (not imported at run time).

erfc(a) = exp(-a*a) * t * P(t) with t = 1/(1 + a/2), a >= ERFC_SPLIT. The scaled
tail t*P(t) is smooth on t in (0, 1/(1 + ERFC_SPLIT/2)], so an ordinary polynomial
fits it; the coefficients are a least-squares fit, in relative error, on Chebyshev
nodes with mpmath targets. Run ``python -m fastact._numba._fitpoly`` to reproduce
the tuples pasted into ``_math.py`` and the fit errors quoted there.
"""

import mpmath
import numpy as np

mpmath.mp.dps = 40
ERFC_SPLIT = 0.5


def _target(t):
    a = (1 / mpmath.mpf(t) - 1) * 2
    return mpmath.erfc(a) * mpmath.exp(a * a) / t


def fit(degree, tmin, tmax, nodes=400):
    k = np.arange(nodes)
    tt = 0.5 * (tmin + tmax) + 0.5 * (tmax - tmin) * np.cos(np.pi * (k + 0.5) / nodes)
    y = np.array([float(_target(mpmath.mpf(float(t)))) for t in tt])
    A = np.vander(tt, degree + 1, increasing=True) / y[:, None]
    c, *_ = np.linalg.lstsq(A, np.ones_like(y), rcond=None)
    dense = np.linspace(tmin, tmax, 4001)
    yd = np.array([float(_target(mpmath.mpf(float(t)))) for t in dense])
    err = np.max(np.abs(np.polyval(c[::-1], dense) / yd - 1))
    return c, err


if __name__ == "__main__":
    tmax = 1 / (1 + ERFC_SPLIT / 2)
    for label, deg, amax in (("f32", 9, 10.5), ("f32", 10, 10.5), ("f64", 18, 28.0), ("f64", 22, 28.0), ("f64", 26, 28.0)):
        tmin = 1 / (1 + amax / 2)
        c, err = fit(deg, tmin, tmax)
        print(label, deg, f"max rel fit error {err:.3g}")
        print("(" + ", ".join(repr(float(v)) for v in c) + ")")


def fit_tanhshrink(degree, xmax, nodes=400):
    """(x - tanh x)/x^3 as a polynomial in z = x^2 on [0, xmax^2]."""
    zmax = xmax * xmax
    k = np.arange(nodes)
    zz = 0.5 * zmax + 0.5 * zmax * np.cos(np.pi * (k + 0.5) / nodes)

    def tgt(z):
        x = mpmath.sqrt(mpmath.mpf(float(z)))
        return float((x - mpmath.tanh(x)) / x**3) if z > 0 else 1 / 3

    y = np.array([tgt(z) for z in zz])
    A = np.vander(zz, degree + 1, increasing=True) / y[:, None]
    c, *_ = np.linalg.lstsq(A, np.ones_like(y), rcond=None)
    dense = np.linspace(0, zmax, 4001)
    yd = np.array([tgt(z) for z in dense])
    return c, np.max(np.abs(np.polyval(c[::-1], dense) / yd - 1))


if __name__ == "__main__":
    for label, deg, xmax in (("f32", 7, 1.0), ("f32", 8, 1.0), ("f64", 14, 1.0), ("f64", 17, 1.0)):
        c, err = fit_tanhshrink(deg, xmax)
        print("tanhshrink", label, deg, xmax, f"max rel fit error {err:.3g}")
        print("(" + ", ".join(repr(float(v)) for v in c) + ")")


def _phi_tail_target(t, c32):
    """P(t) of phi(-|x|) = exp(-x*x/2) * t * P(t) / 2 at t = 1/(1 + |x|*c32) (c32 an mpf):
    erfc(a) exp(a*a) / t with a = |x|/sqrt2 (fit_phi_tail, fit_phi_dphi)."""
    t = mpmath.mpf(float(t))
    a = (1 / t - 1) / (c32 * mpmath.sqrt(2))
    return mpmath.erfc(a) * mpmath.exp(a * a) / t


def fit_phi_tail(degree, c32, amax=10.5, nodes=400, f32=False, interval=None):
    """phi(-|x|) = exp(-x*x/2) * t * P(t) / 2 with t = 1/(1 + |x|*c32) on the whole line.

    c32 is 1/(2*sqrt2) as the float the kernel multiplies by: the fit absorbs
    its rounding, so the kernel's t is exactly the variable P was fitted in.
    t runs over (1/(1 + amax/2), 1]: a = |x|/sqrt2 from 0 to amax. With f32,
    the coefficients are fixed one at a time as float32 values and the rest
    refitted (rounding them afterwards cost up to ~1 ULP near t = 1, where
    the powers of t do not shrink).
    Returns (coefficients, max rel fit error, (alpha, beta)) with
    alpha + beta*t the least-squares line through t*F'(t)/F(t), F = t*P(t):
    the kernel's correction for the rounding error of t.
    """
    c32 = mpmath.mpf(float(c32))
    tmin, tmax = interval or (1 / (1 + amax / 2), 1.0)

    def tgt(t):
        return _phi_tail_target(t, c32)

    k = np.arange(nodes)
    tt = 0.5 * (tmin + tmax) + 0.5 * (tmax - tmin) * np.cos(np.pi * (k + 0.5) / nodes)
    y = np.array([float(tgt(t)) for t in tt])
    V = np.vander(tt, degree + 1, increasing=True)
    fixed = []
    while len(fixed) <= degree:
        m = len(fixed)
        rest = np.ones_like(y) - (V[:, :m] @ np.array(fixed, dtype=float)) / y if m else np.ones_like(y)
        c, *_ = np.linalg.lstsq(V[:, m:] / y[:, None], rest, rcond=None)
        if not f32:
            fixed += list(c)
            break
        fixed.append(float(np.float32(c[0])))
    c = np.array(fixed)
    dense = np.linspace(tmin, tmax, 4001)
    yd = np.array([float(tgt(t)) for t in dense])
    err = np.max(np.abs(np.polyval(c[::-1], dense) / yd - 1))
    # s(t) = d ln(t P(t)) / d ln t = 1 + t P'(t)/P(t)
    P = np.polyval(c[::-1], dense)
    dP = np.polyval((c[1:] * np.arange(1, degree + 1))[::-1], dense)
    sd = 1 + dense * dP / P
    beta, alpha = np.polyfit(dense, sd, 1)
    return c, err, (alpha, beta), np.max(np.abs(alpha + beta * dense - sd))


if __name__ == "__main__":
    c32 = np.float32(0.3535533905932738)
    # the polynomial _math and the Cython backend use: degree 11 (degree 10: 5.5e-9)
    c, err, (alpha, beta), serr = fit_phi_tail(11, c32, f32=True)
    print("phi_tail f32 11", f"max rel fit error {err:.3g}; s(t) ~ {alpha!r} + {beta!r}*t, max error {serr:.3g}")
    print("(" + ", ".join(repr(float(v)) for v in c) + ")")


# Tables of 32 polynomials, one per interval of width W centred on c_i, picked
# per lane with vpermt2ps (32 entries, two registers per coefficient).
# The Cython AVX-512 build's float32 gelu, forward and backward (_fastact_cpu.h,
# fastact_gelu_f32 / _bwd_f32; the Numba backend's _tab reads them from there):
#   x >= -4.1875: phi(c_i + u), c_i = (i - 13) * 5/16, degree 6;
#   backward, x >= -4.125: phi(x) + x * pdf(x), c_i = (i - 12) * 11/32, degree 6
#   (relative error, but absolute below 1e-4: it crosses 0 at x = -0.75);
#   x < -4.125 (both): phi(x) = exp(-x*x/2) * m(x), m(x) = erfcx(-x/sqrt2)/2,
#   m(c_i + u), c_i = -(i + 12) * 11/32 (x down to -14.9), degree 4.
# float32 tanh on AVX-512, both backends (_fastact_cpu.h, fastact_tanh_tab): tanh(c_i + u) for
# |x|, c_i = i/4, degree 5, u^0 fixed at 0 on the first interval (relative
# error at tiny x) and at the float32 nearest tanh(c_i) elsewhere (NEAREST_U0:
# over all 2**32 inputs at most 1.19 ULP from tanh, against 1.23 without);
# the last interval reaches to 9.125 (LAST_HI), past 9.01 where tanh rounds to
# 1. Fit error 5.3e-8; the table before, intervals of 5/16 at degree 6, fitted
# to 3.7e-8 and came within 1.58 ULP.
# float32 log_sigmoid backward from x on AVX-512, both backends (fastact_sigm_tab):
# sigmoid(-(c_i + u)) for |x|, c_i = i/2 (to 15.75; beyond, an exp), degree 5 --
# also sigmoid's forward, at -x, and silu's. Degree 6 fitted to 4.9e-8, degree 5
# to 5.5e-8 with u^0 the float32 nearest sigmoid(-c_i) (NEAREST_U0), 6.4e-8
# without: the float32 coefficients' rounding, not the degree, sets the error
# (float64 coefficients: 1.5e-8 at degree 5); over all 2**32 inputs sigmoid
# stays within 1 ULP and silu within 2, as at degree 6.
# float32 tanhshrink's forward on AVX-512, both backends (fastact_tanhshrink_tab):
# (a - tanh a) / a^3 for a = |x|, c_i = i * 5/16, degree 6 (even and 1/3 at 0, so
# no interval needs a fixed term); from |x| >= 9.5 the result is x - sign(x).
TABLES = {"phi": (lambda i: (i - 13) * 0.3125, 0.3125, 6, lambda v: mpmath.ncdf(v), 0.0),
          "dphi": (lambda i: (i - 12) * 0.34375, 0.34375, 6, lambda v: mpmath.ncdf(v) + v * mpmath.npdf(v), 1e-4),
          "tail": (lambda i: -(i + 12) * 0.34375, 0.34375, 4,
                   lambda v: mpmath.erfc(-v / mpmath.sqrt(2)) / 2 * mpmath.exp(v * v / 2), 0.0),
          "tanh": (lambda i: i * 0.25, 0.25, 5, lambda v: mpmath.tanh(v), 0.0),
          "sigm": (lambda i: i * 0.5, 0.5, 5, lambda v: 1 / (1 + mpmath.exp(v)), 0.0),
          "tanhshrink": (lambda i: i * 0.3125, 0.3125, 6,
                         lambda v: (v - mpmath.tanh(v)) / v**3 if v else mpmath.mpf(1) / 3, 0.0)}


# Tables whose u^0 is fixed first at the float32 nearest f(c_i) rather than at
# the first least-squares fit's rounded constant (which can round the other
# way). The rule reproduces the other tables too, but for dphi's interval 2,
# so those keep the first.
NEAREST_U0 = {"sigm", "tanh"}

# Tables whose last interval reaches further right than W/2 from its centre: u
# up to this on it. The kernels clamp the interval's index at the last one and
# |x| at its centre plus this (tanh: 7.75 + 1.375 = 9.125).
LAST_HI = {"tanh": 1.375}


def _fix_f32(V, y, w, fixed=()):
    """Coefficients c of y ~ V @ c in error relative to w, after the given fixed ones: fixed as
    float32 values one at a time, lowest first, the rest refitted each time."""
    fixed = list(fixed)
    while len(fixed) < V.shape[1]:
        m = len(fixed)
        rest = (y - (V[:, :m] @ np.array(fixed) if m else 0)) / w
        cf, *_ = np.linalg.lstsq(V[:, m:] / w[:, None], rest, rcond=None)
        fixed.append(float(np.float32(cf[0])))
    return fixed


def fit_table(which, margin=1.03, nodes=200):
    """Per interval i, f(c_i + u) on |u| <= margin*W/2 (the last interval of a table in LAST_HI: up to
    u = LAST_HI) in relative error (absolute below the table's floor).

    The coefficients are fixed one at a time as float32 values, lowest
    first, and the rest refitted (as fit_phi_tail); where f(c_i) = 0 the
    constant term is 0, for the tables in NEAREST_U0 the float32 nearest
    f(c_i). Returns a (degree + 2, 32) float32 array (row 0: the
    centres c_i, row 1 + j: the coefficients of u**j) and the largest
    relative fit error.
    """
    centre, width, degree, f, floor = TABLES[which]
    h = width / 2 * margin
    k = np.arange(nodes)
    tab = np.zeros((degree + 2, 32), np.float32)
    worst = 0.0
    for i in range(32):
        hi = LAST_HI[which] if i == 31 and which in LAST_HI else h
        uu = (hi - h) / 2 + (hi + h) / 2 * np.cos(np.pi * (k + 0.5) / nodes)  # never 0 for hi = h
        dense = np.linspace(-h, hi, 1000)  # an even count: no u = 0 either for hi = h
        V = np.vander(uu, degree + 1, increasing=True)
        c = centre(i)
        y = np.array([float(f(mpmath.mpf(c) + mpmath.mpf(float(u)))) for u in uu])
        w = np.copysign(np.maximum(np.abs(y), floor), y)  # relative, absolute near a zero
        f0 = f(mpmath.mpf(c))
        u0 = [0.0] if f0 == 0 else [float(np.float32(float(f0)))] if which in NEAREST_U0 else []
        fixed = _fix_f32(V, y, w, u0)
        tab[0, i] = c
        tab[1:, i] = fixed
        yd = np.array([float(f(mpmath.mpf(c) + mpmath.mpf(float(u)))) for u in dense])
        wd = np.maximum(np.abs(yd), floor)
        worst = max(worst, float(np.max(np.abs(np.polyval(np.array(fixed)[::-1], dense) - yd) / wd)))
    return tab, worst


if __name__ == "__main__":
    for which in TABLES:
        tab, err = fit_table(which)
        print(f"table {which}, degree {tab.shape[0] - 2}: max rel fit error {err:.3g}")
        for j, row in enumerate(tab):
            label = "c_i" if j == 0 else f"u^{j - 1}"
            print(f"    {{/* {label} */ " + ", ".join(np.format_float_scientific(v, unique=True) + "f" for v in row) + "},")


def fit_phi_dphi(degree=8, xmax=14.0, nodes=400):
    """gelu's float32 backward polynomial (_math._PHI_DPHI_F32, the Cython header's
    fastact_phi_d halved): P in phi(-|x|) = exp(-x*x/2) * t * P(t) / 2, t =
    1/(1 + |x|*C), |x| <= xmax, fitted in relative error with P(1) = 1 (the
    constraint eliminates the top coefficient); the coefficients are fixed as
    float32 values one at a time, lowest first, the rest refitted, and the top
    one is then moved by a few float32 steps to the value, of those that make
    the float32 evaluation (_phi_d: the upper five and the lower four in two
    Horner chains, joined by one FMA) give exactly 1/2 at t = 1, with the
    smallest fit error -- so gelu'(-0) = gelu'(+0) = 1/2. Returns (unhalved
    coefficients, fit error)."""
    f = np.float32
    c32 = float(f(0.3535533905932738))
    tmin = 1 / (1 + xmax * c32)
    k = np.arange(nodes)
    tt = 0.5 * (tmin + 1) + 0.5 * (1 - tmin) * np.cos(np.pi * (k + 0.5) / nodes)

    def tgt(t):
        return _phi_tail_target(t, mpmath.mpf(c32))

    y = np.array([float(tgt(t)) for t in tt])
    V = np.vander(tt, degree + 1, increasing=True)
    fixed = []
    for m in range(degree):
        A = (V[:, m:degree] - V[:, [degree]]) / y[:, None]
        b = (y - (V[:, :m] @ np.array(fixed) if m else 0) - (1 - sum(fixed)) * V[:, degree]) / y
        sol, *_ = np.linalg.lstsq(A, b, rcond=None)
        fixed.append(float(f(sol[0])))
    half = [f(0.5 * v) for v in fixed] + [f(0.5 * (1 - sum(fixed)))]

    def at_one(h):
        hi, lo = h[degree], h[3]
        for j in range(degree - 1, 3, -1):
            hi = f(hi + h[j])
        for j in (2, 1, 0):
            lo = f(lo + h[j])
        return f(hi + lo)

    dense = np.linspace(tmin, 1.0, 4001)
    yd = np.array([float(tgt(t)) for t in dense])

    def fit_err(h):
        return float(np.max(np.abs(np.polyval(np.array(h, float)[::-1] * 2, dense) / yd - 1)))

    best, v = None, half[degree]
    for s in range(-40, 41):
        w = v
        for _ in range(abs(s)):
            w = np.nextafter(w, f(np.sign(s)), dtype=f)
        h = half[:degree] + [w]
        if at_one(h) == f(0.5) and (best is None or fit_err(h) < best[0]):
            best = (fit_err(h), h)
    return [2 * float(v) for v in best[1]], best[0]


def fit_expm1_q(degree=4, nodes=400):
    """q in expm1(r) = r + r^2 q(r) for |r| <= ln2/2 (1.001 times it): log_sigmoid's float32
    backward from y on AVX-512 (the header's fastact_expm1_fit, _tab.EXPM1_FIT). Fitted in
    expm1's relative error on Chebyshev nodes, the coefficients fixed as float32 values one at
    a time, lowest first, the rest refitted. Degree 4 fits to 1.4e-8, where the Taylor
    coefficients of degree 5 (fastact_expm1_small) give 1.8e-8. Returns (q's coefficients,
    highest first, and the largest relative error on a dense grid)."""
    h = 0.34657359 * 1.001
    rr = h * np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes)
    em = np.array([float(mpmath.expm1(mpmath.mpf(float(r)))) for r in rr])
    fixed = _fix_f32(np.vander(rr, degree + 1, increasing=True) * (rr * rr)[:, None], em - rr, em)
    dense = np.linspace(-h, h, 20000)  # an even count: no r = 0
    ed = np.array([float(mpmath.expm1(mpmath.mpf(float(r)))) for r in dense])
    got = dense + dense * dense * np.polyval(np.array(fixed)[::-1], dense)
    return tuple(fixed[::-1]), float(np.max(np.abs(got / ed - 1)))


if __name__ == "__main__":
    q, err = fit_expm1_q()
    print("expm1 q f32 4", f"max rel fit error {err:.3g}")
    print("(" + ", ".join(np.format_float_scientific(np.float32(v), unique=True) for v in q) + ")")
    c, err = fit_phi_dphi()
    print("phi_dphi f32 8", f"max rel fit error {err:.3g}")
    print("(" + ", ".join(repr(v) for v in c) + ")")
