"""Generic Numba drivers.

Elementwise drivers
-------------------
One loop template per arity (``map1``: forward; ``map2``: backward from x or y,
rrelu forward; ``map3``: rrelu backward), in a serial and a ``prange`` flavour,
instantiated for each scalar function of ``_scalar.py`` by name.

Why source templates and not a factory closure or a function argument: both
were measured (numba 0.68) to *save* a cache entry that the next process never
*hits* -- a closure's cache key pickles its cell contents (the scalar
dispatcher, whose pickle differs per process) and a dispatcher passed as an
argument is typed by identity. A function generated from source text with a
unique name, whose code object points at this file, caches like any top-level
``@njit(cache=True)`` function. The name carries a hash of the sources it
inlines, so editing ``_math.py`` or ``_scalar.py`` can never load a stale
cache entry.

The serial loops run ``range(a.shape[0])`` with ``error_model='numpy'`` --
PERF-NOTES: that form vectorises, ``range(a.size)`` did not. ``fastmath`` is
limited to ``contract`` (FMA): reassociation would undo the magic-number
rounding in ``_math`` and NaN/inf assumptions would break the edge semantics.
"""

from __future__ import annotations

import hashlib
import os

import numba
import numpy as np
from numba import njit, prange

from . import _scalar
from ._math import cst  # noqa: F401  (used by generated code)
from ._math import exp as _exp
from ._math import log as _log
from ._math import sigmoid as _sigmoid
from ._math import sigmoid2 as _sigmoid2

_HERE = os.path.dirname(os.path.abspath(__file__))
OPTS = dict(cache=True, error_model="numpy", fastmath={"contract"}, nogil=True)


def _source_hash():
    h = hashlib.sha256()
    for fn in ("_math.py", "_scalar.py", "_kernels.py"):
        with open(os.path.join(_HERE, fn), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:10]


_HASH = _source_hash()

_TEMPLATES = {
    1: (
        "def {name}_s(a, out, p0, p1, p2, p3):\n"
        "    for i in range(a.shape[0]):\n"
        "        out[i] = {op}(a[i], p0, p1, p2, p3)\n"
        "def {name}_p(a, out, p0, p1, p2, p3, nthreads):\n"
        "    for i in prange(a.shape[0]):\n"
        "        out[i] = {op}(a[i], p0, p1, p2, p3)\n"
    ),
    2: (
        "def {name}_s(a, b, out, p0, p1, p2, p3):\n"
        "    for i in range(a.shape[0]):\n"
        "        out[i] = {op}(a[i], b[i], p0, p1, p2, p3)\n"
        "def {name}_p(a, b, out, p0, p1, p2, p3, nthreads):\n"
        "    for i in prange(a.shape[0]):\n"
        "        out[i] = {op}(a[i], b[i], p0, p1, p2, p3)\n"
    ),
    3: (
        "def {name}_s(a, b, c, out, p0, p1, p2, p3):\n"
        "    for i in range(a.shape[0]):\n"
        "        out[i] = {op}(a[i], b[i], c[i], p0, p1, p2, p3)\n"
        "def {name}_p(a, b, c, out, p0, p1, p2, p3, nthreads):\n"
        "    for i in prange(a.shape[0]):\n"
        "        out[i] = {op}(a[i], b[i], c[i], p0, p1, p2, p3)\n"
    ),
}


INSTANCES = {}  # (op, arity) -> (serial, parallel); for tests and tools


def _instantiate(op, arity, cache=True):
    """(serial, parallel) dispatchers of the ``arity`` loop around ``_scalar.<op>``."""
    name = f"_k_{op}_{_HASH}"
    src = _TEMPLATES[arity].format(name=name, op=f"_scalar.{op}")
    ns = {}
    exec(compile(src, __file__, "exec"), globals(), ns)
    opts = dict(OPTS, cache=cache)
    pair = njit(**opts)(ns[name + "_s"]), njit(parallel=True, **opts)(ns[name + "_p"])
    if cache:
        INSTANCES[(op, arity)] = pair
    return pair


# rrelu in training mode: the slope is an array.
@numba.extending.register_jitable
def _rrelu_fwd(x, s, p0, p1, p2, p3):
    return x if x > 0 else x * s


@numba.extending.register_jitable
def _rrelu_bwd(g, x, s, p0, p1, p2, p3):
    return g if x > 0 else g * s


_scalar.fwd_rrelu = _rrelu_fwd
_scalar.bwd_rrelu = _rrelu_bwd


# Parallel kernels take ``nthreads`` but do not call numba.set_num_threads
# themselves: that call makes a function uncacheable ("uses dynamic globals",
# measured); backend._run sets the count from Python just before the call.

# ----------------------------------------------------------------- tasks
# Row-structured kernels split (rows x length) work into tasks of at most
# CHUNK elements so that a single long row still uses every thread.
CHUNK = 16384


@njit(cache=True)
def _cdiv(a, b):
    return (a + b - 1) // b


# ------------------------------------------------------------ softmax family
# x is (outer, n, inner). mode: 0 softmax, 1 log_softmax; sign -1 gives softmin.
# Rows (inner == 1) and columns (inner > 1) use different loops: columns are
# processed a block of inner positions at a time so the innermost loop is
# contiguous and vectorises across positions instead of reducing.


@njit(**OPTS)
def _row_max(x, lo, hi, sign):
    # NaN is skipped here; it still poisons the row through the sum.
    m = cst(sign, -np.inf)
    for j in range(lo, hi):
        v = sign * x[j]
        m = v if v > m else m
    return m


LANES = 8


@njit(**OPTS)
def _sum64(a, lo, hi):
    """Sum of a[lo:hi] in float64 with LANES independent accumulators.

    Float64 keeps long rows accurate; the lanes break the serial dependency
    that stops a plain reduction from vectorising (no reassociation allowed).
    """
    acc = np.zeros(LANES, dtype=np.float64)
    nb = (hi - lo) // LANES
    for b in range(nb):
        base = lo + b * LANES
        for l in range(LANES):
            acc[l] += np.float64(a[base + l])
    s = 0.0
    for j in range(lo + nb * LANES, hi):
        s += np.float64(a[j])
    for l in range(LANES):
        s += acc[l]
    return s


@njit(**OPTS)
def _exp_shift(x, out, lo, hi, sign, m):
    for j in range(lo, hi):
        out[j] = _exp(sign * x[j] - m)


@njit(**OPTS)
def _sumexp64(x, lo, hi, sign, m):
    # log_softmax cannot park exp(x - m) in out: out may be x (in-place).
    acc = np.zeros(LANES, dtype=np.float64)
    nb = (hi - lo) // LANES
    for b in range(nb):
        base = lo + b * LANES
        for l in range(LANES):
            acc[l] += np.float64(_exp(sign * x[base + l] - m))
    s = 0.0
    for j in range(lo + nb * LANES, hi):
        s += np.float64(_exp(sign * x[j] - m))
    for l in range(LANES):
        s += acc[l]
    return s


@njit(**OPTS)
def _row_sum(x, out, lo, hi, sign, mode, m):
    if mode == 1:
        return _sumexp64(x, lo, hi, sign, m)
    _exp_shift(x, out, lo, hi, sign, m)
    return _sum64(out, lo, hi)


@njit(**OPTS)
def _finish_row(x, out, lo, hi, sign, mode, m, s):
    if mode == 1:
        # (x - m) first: it is exact near the maximum, m + log(s) is not.
        ls = cst(m, _log(s))
        for j in range(lo, hi):
            out[j] = (sign * x[j] - m) - ls
    else:
        inv = cst(m, 1.0 / s)
        for j in range(lo, hi):
            out[j] = out[j] * inv


@njit(parallel=True, **OPTS)
def _softmax_rows(x, out, sign, mode, nchunk, nthreads):
    # x, out: (outer, n). Few long rows: nchunk > 1 splits each row; partial
    # maxima and sums are combined between the passes.
    outer, n = x.shape
    clen = _cdiv(n, nchunk)
    pm = np.empty((outer, nchunk), dtype=x.dtype)
    ps = np.empty((outer, nchunk), dtype=np.float64)
    for t in prange(outer * nchunk):
        o, c = t // nchunk, t % nchunk
        pm[o, c] = _row_max(x[o], c * clen, min(n, (c + 1) * clen), sign)
    for o in range(outer):
        m = pm[o, 0]
        for c in range(1, nchunk):
            m = pm[o, c] if pm[o, c] > m else m
        pm[o, 0] = m
    for t in prange(outer * nchunk):
        o, c = t // nchunk, t % nchunk
        lo, hi = c * clen, min(n, (c + 1) * clen)
        ps[o, c] = _row_sum(x[o], out[o], lo, hi, sign, mode, pm[o, 0])
    for o in range(outer):
        s = ps[o, 0]
        for c in range(1, nchunk):
            s += ps[o, c]
        ps[o, 0] = s
    for t in prange(outer * nchunk):
        o, c = t // nchunk, t % nchunk
        _finish_row(x[o], out[o], c * clen, min(n, (c + 1) * clen), sign, mode, pm[o, 0], ps[o, 0])


@njit(**OPTS)
def _softmax_rows_serial(x, out, sign, mode):
    outer, n = x.shape
    for o in range(outer):
        xo, oo = x[o], out[o]
        m = _row_max(xo, 0, n, sign)
        s = _row_sum(xo, oo, 0, n, sign, mode, m)
        _finish_row(xo, oo, 0, n, sign, mode, m, s)


@njit(**OPTS)
def _softmax_cols_block(x, out, o, i0, i1, sign, mode, m, s):
    # s is float64: sums over long columns stay accurate.
    n = x.shape[1]
    for i in range(i0, i1):
        m[i - i0] = cst(sign, -np.inf)
        s[i - i0] = 0.0
    for j in range(n):
        for i in range(i0, i1):
            v = sign * x[o, j, i]
            m[i - i0] = v if v > m[i - i0] else m[i - i0]
    for j in range(n):
        for i in range(i0, i1):
            s[i - i0] += np.float64(_exp(sign * x[o, j, i] - m[i - i0]))
    if mode == 1:
        for i in range(i0, i1):
            s[i - i0] = _log(s[i - i0])
        for j in range(n):
            for i in range(i0, i1):
                out[o, j, i] = (sign * x[o, j, i] - m[i - i0]) - cst(sign, s[i - i0])
    else:
        for i in range(i0, i1):
            s[i - i0] = 1.0 / s[i - i0]
        for j in range(n):
            for i in range(i0, i1):
                out[o, j, i] = _exp(sign * x[o, j, i] - m[i - i0]) * cst(sign, s[i - i0])


COLBLOCK = 256


@njit(parallel=True, **OPTS)
def _softmax_cols(x, out, sign, mode, nthreads):
    outer, inner = x.shape[0], x.shape[2]
    nb = _cdiv(inner, COLBLOCK)
    for t in prange(outer * nb):
        o, b = t // nb, t % nb
        m = np.empty(COLBLOCK, dtype=x.dtype)
        s = np.empty(COLBLOCK, dtype=np.float64)
        _softmax_cols_block(x, out, o, b * COLBLOCK, min(inner, (b + 1) * COLBLOCK), sign, mode, m, s)


@njit(**OPTS)
def _softmax_cols_serial(x, out, sign, mode):
    outer, inner = x.shape[0], x.shape[2]
    m = np.empty(COLBLOCK, dtype=x.dtype)
    s = np.empty(COLBLOCK, dtype=np.float64)
    for o in range(outer):
        for i0 in range(0, inner, COLBLOCK):
            _softmax_cols_block(x, out, o, i0, min(inner, i0 + COLBLOCK), sign, mode, m, s)


# Backward from y. mode 0 (softmax/softmin): out = sign*y*(g - sum(g*y));
# mode 1 (log_softmax): out = g - exp(y)*sum(g).
@njit(**OPTS)
def _bwd_line(g, y, out, o, i, n, sign, mode):
    acc = 0.0
    if mode == 1:
        for j in range(n):
            acc += np.float64(g[o, j, i])
        a = cst(sign, acc)
        for j in range(n):
            out[o, j, i] = g[o, j, i] - _exp(y[o, j, i]) * a
    else:
        for j in range(n):
            acc += np.float64(g[o, j, i]) * np.float64(y[o, j, i])
        a = cst(sign, acc)
        for j in range(n):
            out[o, j, i] = sign * (y[o, j, i] * (g[o, j, i] - a))


@njit(parallel=True, **OPTS)
def _softmax_bwd(g, y, out, sign, mode, nthreads):
    outer, n, inner = y.shape
    for t in prange(outer * inner):
        _bwd_line(g, y, out, t // inner, t % inner, n, sign, mode)


@njit(**OPTS)
def _bwd_partial(g, y, o, lo, hi, mode):
    acc = 0.0
    if mode == 1:
        for j in range(lo, hi):
            acc += np.float64(g[o, j, 0])
    else:
        for j in range(lo, hi):
            acc += np.float64(g[o, j, 0]) * np.float64(y[o, j, 0])
    return acc


@njit(parallel=True, **OPTS)
def _softmax_bwd_rows(g, y, out, sign, mode, nchunk, nthreads):
    # inner == 1 with few long rows: chunk each row, reduce the partial sums.
    outer, n = y.shape[0], y.shape[1]
    clen = _cdiv(n, nchunk)
    ps = np.empty((outer, nchunk), dtype=np.float64)
    for t in prange(outer * nchunk):
        o, c = t // nchunk, t % nchunk
        ps[o, c] = _bwd_partial(g, y, o, c * clen, min(n, (c + 1) * clen), mode)
    for o in range(outer):
        s = ps[o, 0]
        for c in range(1, nchunk):
            s += ps[o, c]
        ps[o, 0] = s
    for t in prange(outer * nchunk):
        o, c = t // nchunk, t % nchunk
        lo, hi = c * clen, min(n, (c + 1) * clen)
        acc = cst(sign, ps[o, 0])
        if mode == 1:
            for j in range(lo, hi):
                out[o, j, 0] = g[o, j, 0] - _exp(y[o, j, 0]) * acc
        else:
            for j in range(lo, hi):
                out[o, j, 0] = sign * (y[o, j, 0] * (g[o, j, 0] - acc))


@njit(**OPTS)
def _softmax_bwd_serial(g, y, out, sign, mode):
    outer, n, inner = y.shape
    for o in range(outer):
        for i in range(inner):
            _bwd_line(g, y, out, o, i, n, sign, mode)


# ---------------------------------------------------------------- sparsemax
@njit(**OPTS)
def _sparsemax_line(x, out, o, i, buf):
    n = x.shape[1]
    for j in range(n):
        buf[j] = x[o, j, i]
    z = np.sort(buf)[::-1]  # NaN sorts last; descending puts it first
    has_nan = False
    for j in range(n):
        if buf[j] != buf[j]:
            has_nan = True
    if has_nan:
        for j in range(n):
            out[o, j, i] = np.nan
        return
    # support size k = max{j : 1 + j*z_j > cumsum_j}; tau = (cumsum_k - 1)/k,
    # in float64: a float32 running sum of a long row loses tau entirely.
    cs = 0.0
    k = 0
    csk = 0.0
    for j in range(n):
        zj = np.float64(z[j])
        cs += zj
        if 1.0 + (j + 1) * zj > cs:
            k = j + 1
            csk = cs
    if k == 0 or z[0] == np.inf:
        for j in range(n):
            out[o, j, i] = np.nan
        return
    tau = (csk - 1.0) / k
    for j in range(n):
        v = np.float64(x[o, j, i]) - tau
        out[o, j, i] = v if v > 0 else 0.0


@njit(parallel=True, **OPTS)
def _sparsemax_fwd(x, out, nthreads):
    outer, n, inner = x.shape
    for t in prange(outer * inner):
        buf = np.empty(n, dtype=x.dtype)
        _sparsemax_line(x, out, t // inner, t % inner, buf)


@njit(**OPTS)
def _sparsemax_fwd_serial(x, out):
    outer, n, inner = x.shape
    buf = np.empty(n, dtype=x.dtype)
    for o in range(outer):
        for i in range(inner):
            _sparsemax_line(x, out, o, i, buf)


@njit(**OPTS)
def _sparsemax_bwd_line(g, y, out, o, i):
    n = y.shape[1]
    acc = cst(y[o, 0, i], 0.0)
    cnt = 0
    for j in range(n):
        if y[o, j, i] > 0:
            acc += g[o, j, i]
            cnt += 1
    mean = acc / cnt if cnt > 0 else acc
    for j in range(n):
        out[o, j, i] = g[o, j, i] - mean if y[o, j, i] > 0 else cst(mean, 0.0)


@njit(parallel=True, **OPTS)
def _sparsemax_bwd(g, y, out, nthreads):
    outer, n, inner = y.shape
    for t in prange(outer * inner):
        _sparsemax_bwd_line(g, y, out, t // inner, t % inner)


@njit(**OPTS)
def _sparsemax_bwd_serial(g, y, out):
    outer, n, inner = y.shape
    for o in range(outer):
        for i in range(inner):
            _sparsemax_bwd_line(g, y, out, o, i)


# --------------------------------------------------------------------- glu
# x viewed as (outer, 2, L): a = x[:, 0], b = x[:, 1], L = m*inner.

@njit(**OPTS)
def _glu_fwd_span(x, out, o, lo, hi):
    for j in range(lo, hi):
        out[o, j] = x[o, 0, j] * _sigmoid(x[o, 1, j])


@njit(**OPTS)
def _glu_bwd_span(g, x, out, o, lo, hi):
    for j in range(lo, hi):
        s, oms = _sigmoid2(x[o, 1, j])
        gs = g[o, j] * s
        out[o, 0, j] = gs
        out[o, 1, j] = gs * x[o, 0, j] * oms


@njit(parallel=True, **OPTS)
def _glu_fwd(x, out, nthreads):
    outer, L = out.shape
    nc = _cdiv(L, CHUNK)
    for t in prange(outer * nc):
        o, c = t // nc, t % nc
        _glu_fwd_span(x, out, o, c * CHUNK, min(L, (c + 1) * CHUNK))


@njit(**OPTS)
def _glu_fwd_serial(x, out):
    for o in range(out.shape[0]):
        _glu_fwd_span(x, out, o, 0, out.shape[1])


@njit(parallel=True, **OPTS)
def _glu_bwd(g, x, out, nthreads):
    outer, L = g.shape
    nc = _cdiv(L, CHUNK)
    for t in prange(outer * nc):
        o, c = t // nc, t % nc
        _glu_bwd_span(g, x, out, o, c * CHUNK, min(L, (c + 1) * CHUNK))


@njit(**OPTS)
def _glu_bwd_serial(g, x, out):
    for o in range(g.shape[0]):
        _glu_bwd_span(g, x, out, o, 0, g.shape[1])


# ------------------------------------------------------------------ maxout
# x viewed as (R, k, inner) with R = outer*m; out (R, inner).
@njit(**OPTS)
def _maxout_row(x, out, r):
    k, inner = x.shape[1], x.shape[2]
    for i in range(inner):
        out[r, i] = x[r, 0, i]
    for p in range(1, k):
        for i in range(inner):
            v = x[r, p, i]
            cur = out[r, i]
            # NaN propagates: keep a NaN once seen, take a NaN when it comes.
            out[r, i] = v if (v > cur or v != v) and cur == cur else cur


@njit(**OPTS)
def _maxout_bwd_row(g, x, out, r):
    k, inner = x.shape[1], x.shape[2]
    for i in range(inner):
        best = 0
        bv = x[r, 0, i]
        for p in range(1, k):
            v = x[r, p, i]
            if bv == bv and (v > bv or v != v):
                best = p
                bv = v
        for p in range(k):
            out[r, p, i] = g[r, i] if p == best else cst(g[r, i], 0.0)


@njit(parallel=True, **OPTS)
def _maxout_fwd(x, out, nthreads):
    for r in prange(x.shape[0]):
        _maxout_row(x, out, r)


@njit(**OPTS)
def _maxout_fwd_serial(x, out):
    for r in range(x.shape[0]):
        _maxout_row(x, out, r)


@njit(parallel=True, **OPTS)
def _maxout_bwd(g, x, out, nthreads):
    for r in prange(x.shape[0]):
        _maxout_bwd_row(g, x, out, r)


@njit(**OPTS)
def _maxout_bwd_serial(g, x, out):
    for r in range(x.shape[0]):
        _maxout_bwd_row(g, x, out, r)


# ------------------------------------------------------------------- prelu
# x (outer, C, inner), weight (C,). grad_weight accumulated in float64 per
# task, then reduced, so the result does not depend on the thread count.
@njit(**OPTS)
def _prelu_fwd_span(x, w, out, o, c, lo, hi):
    wc = w[c]
    for i in range(lo, hi):
        v = x[o, c, i]
        out[o, c, i] = v if v > 0 else wc * v


@njit(**OPTS)
def _prelu_bwd_span(g, x, w, out, o, c, lo, hi):
    wc = w[c]
    acc = 0.0
    for i in range(lo, hi):
        v = x[o, c, i]
        gi = g[o, c, i]
        pos = v > 0
        out[o, c, i] = gi if pos else wc * gi
        acc += 0.0 if pos else np.float64(v) * np.float64(gi)
    return acc


@njit(parallel=True, **OPTS)
def _prelu_fwd(x, w, out, nthreads):
    outer, C, inner = x.shape
    nc = _cdiv(inner, CHUNK)
    for t in prange(outer * C * nc):
        oc, k = t // nc, t % nc
        _prelu_fwd_span(x, w, out, oc // C, oc % C, k * CHUNK, min(inner, (k + 1) * CHUNK))


@njit(**OPTS)
def _prelu_fwd_serial(x, w, out):
    outer, C, inner = x.shape
    for o in range(outer):
        for c in range(C):
            _prelu_fwd_span(x, w, out, o, c, 0, inner)


@njit(parallel=True, **OPTS)
def _prelu_bwd(g, x, w, out, nthreads):
    outer, C, inner = x.shape
    nc = _cdiv(inner, CHUNK)
    part = np.empty(outer * C * nc, dtype=np.float64)
    for t in prange(outer * C * nc):
        oc, k = t // nc, t % nc
        part[t] = _prelu_bwd_span(g, x, w, out, oc // C, oc % C, k * CHUNK, min(inner, (k + 1) * CHUNK))
    gw = np.zeros(C, dtype=np.float64)
    for t in range(outer * C * nc):
        gw[(t // nc) % C] += part[t]
    return gw


@njit(**OPTS)
def _prelu_bwd_serial(g, x, w, out):
    outer, C, inner = x.shape
    gw = np.zeros(C, dtype=np.float64)
    for o in range(outer):
        for c in range(C):
            gw[c] += _prelu_bwd_span(g, x, w, out, o, c, 0, inner)
    return gw


# -------------------------------------------------------------------- copy
@njit(parallel=True, **OPTS)
def parallel_copy(a, out, nthreads):
    """The bandwidth limit for elementwise kernels (bench reference)."""
    for i in prange(a.shape[0]):
        out[i] = a[i]
