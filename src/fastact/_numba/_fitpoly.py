"""Offline fit of the erfc tail polynomial used in ``_math`` (not imported at run time).

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
