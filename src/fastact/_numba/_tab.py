"""float32 kernels from tables of polynomials picked per lane, for CPUs with
AVX-512: gelu and silu, forward and backward, tanh's, tanhshrink's and sigmoid's forward, and
log_sigmoid's backward from x and from y -- the Numba side of the Cython
build's ``fastact_gelu_f32`` / ``fastact_gelu_bwd_f32`` / ``fastact_tanh_f32`` / ``fastact_tanhshrink_f32``
/ ``fastact_sigmoid_f32`` / ``fastact_silu_f32`` / ``fastact_silu_bwd_f32`` /
``fastact_log_sigmoid_bwd_f32`` / ``_bwdy_f32``
(``_cython/_fastact_cpu.h``; the scheme, intervals and fit errors are
described there). Also the backwards of cheap arithmetic in float32 (relu's,
relu6's, hardtanh's, elu's from y and others), no table but the same one-pass
form, for its non-temporal stores (NT_BWD_LANES).

Why LLVM IR here: the tables' 32 polynomials are picked per lane with
``vpermt2ps`` (32 entries in two registers). LLVM's vectoriser cannot produce
a per-lane permute from scalar code -- an indexed load from a table became 7
``vgatherdps`` a vector, slower than the exp kernel it was to replace (190
against 125 us at 1e5 on one thread). So the kernels' loops are written in
vector LLVM IR (``llvm.x86.avx512.vpermi2var.ps.512`` and friends), emitted by
the intrinsics below, one operation for each of the C header's intrinsics:
the results are bit for bit the Cython kernels' (checked over all 2**32
inputs, gelu forward and backward, tanh). gelu's driver, ``fwd_f32`` /
``bwd_f32``, is Numba code.

gelu runs one block of ``BLOCK`` elements at a time, as the Cython kernel does:

1. ``_pass_fn``: every lane through the table (x clamped above, where phi or
   phi + x pdf rounds to 1); the lanes of the left tail (x below the table,
   or NaN) have their x -- and g, backward -- compressed (``vcompressps``)
   into ``tx`` (``tg``), so they sit in whole vectors however few they are.
2. ``_tail_fn``: those vectors, exp(-x^2/2) times the tail's table.
3. ``_expand_fn``: their results go back over the table's (``vexpandps``).

Which of the two computes an element depends on its x alone, so a result
never depends on its neighbours. A block after one without tail lanes tests
each vector and moves only those with tail lanes ("sparse"); after one with,
it moves every vector's without a test (x ~ N(0, 3): 73 % of the vectors of
16 hold a tail lane, a branch that mispredicts).

The coefficients are read from the Cython header (installed with the
package), so both backends use the same numbers. tanh needs no tail: one pass,
tanh(|x|) from its table and x's sign; nor do tanhshrink (x^3 times its
table's h(|x|)) and log_sigmoid's backward from y.
Its backward from x (and sigmoid and silu, the same kernel at -x, and silu's
backward, the same table) computes the rare
lanes with |x| >= 15.75 from an exp in the vectors that hold one (``_sigm_tail``).
The kernels are used only when Numba
compiles for a CPU with AVX-512F (``ENABLED``); elsewhere, and for float64,
the exp-based loops run.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic, overload

from ._math import _SPECS, own_names


HEADER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_cython", "_fastact_cpu.h")
BLOCK = 1024
# The pass prefetches this many elements ahead (x, g and out): the hardware
# prefetchers stop at 4 KB pages (a block), and fetch nothing while a block's
# tail is computed. 1e7 float32 on two threads, x ~ N(0, 3), interleaved
# runs: 5.2 -> 3.7 ms (only x and g: 4.5; 256 to 2048 ahead alike).
PREFETCH = 512

# (table, degree, 1/width, 1.5 * 2**23 + index of the interval at 0, clamp): _fastact_cpu.h
PHI = ("phi", 6, 3.2, 12582912.0 + 13.0, 5.75)
DPHI = ("dphi", 6, 2.90909091, 12582912.0 + 12.0, 6.5)
# where the tables end: the tail below (forward -4.1875, backward -4.125)
LO = {False: -4.1875, True: -4.125}


# the header's tables, by the names used here
C_NAMES = {"phi": "fastact_gelu_phi", "dphi": "fastact_gelu_dphi", "tail": "fastact_gelu_tail",
           "tanh": "fastact_tanh_tab", "sigm": "fastact_sigm_tab",
           "tanhshrink": "fastact_tanhshrink_tab"}


def read_tables(path=HEADER):
    """{'phi', 'dphi', 'tail', 'tanh', 'sigm', 'tanhshrink'}: the header's float32 tables, rows (centres, u^0, u^1, ...) x 32."""
    with open(path) as f:
        text = f.read()
    out = {}
    for name, cname in C_NAMES.items():
        m = re.search(r"%s\[(\d+)\]\[32\][^=]*=\s*\{(.*?)\n\};" % cname, text, re.S)
        if m is None:
            raise ValueError(f"{cname} not found in {path}")
        rows = re.findall(r"\{/\*[^*]*\*/(.*?)\}", m.group(2))
        tab = np.array([[float(v.strip().rstrip("f")) for v in r.split(",")] for r in rows], dtype=np.float32)
        if tab.shape != (int(m.group(1)), 32):
            raise ValueError(f"{cname} in {path}: shape {tab.shape}")
        out[name] = tab
    return out


def host_has_avx512():
    """Whether this machine's CPU has AVX-512F (whatever Numba is told to compile for)."""
    import llvmlite.binding as ll

    return bool(ll.get_host_cpu_features().get("avx512f"))


def host_is_amd():
    """Whether this machine's CPU is an AMD one, by the name LLVM gives it (znver1-5)."""
    import llvmlite.binding as ll

    return ll.get_host_cpu_name().startswith("znver")


def _targets_avx512():
    """Whether Numba compiles for a CPU with AVX-512F (its features as configured, else the host's)."""
    if os.environ.get("FASTACT_NUMBA_ZMM", "1").strip() == "0":
        return False
    feats = numba.config.CPU_FEATURES
    if feats:
        return "+avx512f" in feats.split(",")
    if numba.config.CPU_NAME:
        return False
    return host_has_avx512()


try:
    TABLES = read_tables() if _targets_avx512() else None
except (OSError, ValueError):
    TABLES = None
ENABLED = TABLES is not None

# tanh (forward): tanh(|x|) from its table (fastact_tanh_tab: intervals of 1/4
# from 0, degree 5, the last reaching to 9.125 where tanh rounds to 1), the
# interval from |x| clamped to 7.75 plus TANH_SHIFT and u from |x| clamped to
# 9.125 (_tanh_lane: additions, no FMA), x's sign put back; one pass. 6
# permutes, 5 FMAs and 7 other operations a vector; the exp-based loop
# (_math.tanh) has an exp and a division.
# (table, degree, 1/width, shift, the last centre): the centres k/4 as PHI's (k - i0) w
TANH = ("tanh", 5, 4.0, 12582912.0, 7.75)
TANH_SHIFT = 3145728.0  # 1.5 * 2^21: a + TANH_SHIFT is a's nearest multiple of 1/4 (the header's FASTACT_TANH_SHIFT)
TANH_CLAMP = 9.125  # |x| in u: the last interval's reach (_fitpoly.LAST_HI)
# tanhshrink (forward): x^3 h(|x|), h(a) = (a - tanh a) / a^3 from its table
# (fastact_tanhshrink_tab: intervals of 5/16 from 0, degree 6), formed as
# (x * x^2) * h; from |x| >= 9.5 (the clamp), x - sign(x), exact.
TANHSHRINK = ("tanhshrink", 6, 3.2, 12582912.0, 9.5)

# ------------------------------------------------------------------ LLVM IR
F32, I1, I16, I32, I64 = ir.FloatType(), ir.IntType(1), ir.IntType(16), ir.IntType(32), ir.IntType(64)
V, VI, VM, VL = ir.VectorType(F32, 16), ir.VectorType(I32, 16), ir.VectorType(I1, 16), ir.VectorType(I64, 16)
PF, PV = ir.PointerType(F32), ir.PointerType(ir.VectorType(F32, 16))
D64, VD = ir.DoubleType(), ir.VectorType(ir.DoubleType(), 8)  # _dot4_fn's float64 lane sums
ALIGN = ir.Constant(I32, 4)


def _vec(vals):
    return ir.Constant(V, [ir.Constant(F32, float(np.float32(v))) for v in vals])


def _splat(v):
    return _vec([v] * 16)


def _fn(mod, name, ret, args):
    return cgutils.get_or_insert_function(mod, ir.FunctionType(ret, args), name)


def _fma(b, x, y, z):
    return b.call(_fn(b.module, "llvm.fma.v16f32", V, [V, V, V]), [x, y, z])


def _tab_at(b, tab, deg, x, inv_w, shift):
    """The table's polynomial for each lane's interval at x: the interval k from
    the low bits of kt = x * inv_w + shift, Horner over the rows in u = x -
    centre_k. The centres are multiples of the interval's width w (row 0 is
    (k - i0) w, checked here), so u is one FMA of kt - shift = k - i0, with
    the bits of x minus the picked centre, and one permute less a vector (the
    header's fastact_tab_at)."""
    w = float(tab[0][1] - tab[0][0])
    if not np.array_equal(tab[0], ((np.arange(32) - (shift - 12582912.0)) * w).astype(np.float32)):
        raise ValueError("a table's centres are not multiples of its width")
    kt = _fma(b, x, _splat(inv_w), _splat(shift))
    u = _fma(b, b.fsub(kt, _splat(shift)), _splat(-w), x)
    return _tab_poly(b, tab, deg, b.bitcast(kt, VI), u)


def _tab_poly(b, tab, deg, k, u):
    """sum_j tab[1 + j][k] u^j by Horner, each lane's coefficients picked from its interval k (k's low
    5 bits) with vpermt2ps: the header's fastact_tab_poly."""
    perm = _fn(b.module, "llvm.x86.avx512.vpermi2var.ps.512", V, [V, VI, V])

    def pick(row):
        return b.call(perm, [_vec(tab[row][:16]), k, _vec(tab[row][16:])])

    p = pick(deg + 1)
    for j in range(deg, 0, -1):
        p = _fma(b, p, u, pick(j))
    return p


def _tab_poly_lo(b, tab, deg, k, u, hi):
    """_tab_poly, with the first 16 entries picked by vpermps (one register, k's low 4 bits) in a vector
    whose mask hi (the lanes of k >= 16) is empty: the header's fastact_tab_poly_lo, the same bits."""
    perm = _fn(b.module, "llvm.x86.avx512.permvar.sf.512", V, [V, VI])
    slot = cgutils.alloca_once(b, V)
    with b.if_else(b.icmp_unsigned("!=", b.bitcast(hi, I16), ir.Constant(I16, 0))) as (upper, lower):
        with upper:
            b.store(_tab_poly(b, tab, deg, k, u), slot)
        with lower:
            p = b.call(perm, [_vec(tab[deg + 1][:16]), k])
            for j in range(deg, 0, -1):
                p = _fma(b, p, u, b.call(perm, [_vec(tab[j][:16]), k]))
            b.store(p, slot)
    return b.load(slot)


def _lane(b, v, gv, bwd):
    """Forward x * phi(x), backward g * (phi(x) + x pdf(x)), for x above the tail."""
    name, deg, inv_w, shift, clamp = DPHI if bwd else PHI
    xc = b.select(b.fcmp_ordered("<", v, _splat(clamp)), v, _splat(clamp))  # NaN: the clamp (a tail lane)
    p = _tab_at(b, TABLES[name], deg, xc, inv_w, shift)
    return b.fmul(gv if bwd else v, p)


def _popcount(b, t):
    c = b.call(_fn(b.module, "llvm.ctpop.i16", I16, [I16]), [b.bitcast(t, I16)])
    return b.zext(c, I64)


def _first_lanes(b, count):
    """The mask of the first `count` lanes (count < 16)."""
    iota = ir.Constant(VL, [ir.Constant(I64, i) for i in range(16)])
    cv = b.insert_element(ir.Constant(VL, None), count, ir.Constant(I32, 0))
    cv = b.shuffle_vector(cv, ir.Constant(VL, None), ir.Constant(VI, [0] * 16))
    return b.icmp_signed("<", iota, cv)


def _loads(b, ptr, j, lanes):
    """16 floats at ptr + j, or its first lanes (masked, 0 elsewhere)."""
    p = b.bitcast(b.gep(ptr, [j]), PV)
    if lanes is None:
        return b.load(p, align=4)
    return b.call(_fn(b.module, "llvm.masked.load.v16f32.p0", V, [PV, I32, VM, V]), [p, ALIGN, lanes, _splat(0.0)])


def _prefetch(b, ptr, j, write):
    """Prefetch ptr[j + PREFETCH] into L1, for reading or writing."""
    fn = _fn(b.module, "llvm.prefetch.p0", ir.VoidType(), [ir.PointerType(ir.IntType(8)), I32, I32, I32])
    p = b.bitcast(b.gep(ptr, [b.add(j, ir.Constant(I64, PREFETCH))]), ir.PointerType(ir.IntType(8)))
    b.call(fn, [p, ir.Constant(I32, write), ir.Constant(I32, 3), ir.Constant(I32, 1)])


def _stores(b, val, ptr, j, lanes, nt=False):
    """val to ptr + j (its first lanes only, masked); nt: a whole vector on a
    64-byte boundary, with a non-temporal store (_stream_vectors)."""
    p = b.bitcast(b.gep(ptr, [j]), PV)
    if nt:
        st = b.store(val, p, align=64)
        st.set_metadata("nontemporal", b.module.add_metadata([ir.Constant(I32, 1)]))
    elif lanes is None:
        b.store(val, p, align=4)
    else:
        b.call(_fn(b.module, "llvm.masked.store.v16f32.p0", ir.VoidType(), [V, PV, I32, VM]), [val, p, ALIGN, lanes])


def _vectors(b, n, body):
    """body(j, lanes) for every vector of n elements: whole ones (lanes None), then the last n % 16."""
    n16 = b.and_(n, ir.Constant(I64, -16))
    with cgutils.for_range_slice(b, ir.Constant(I64, 0), n16, ir.Constant(I64, 16)) as (j, _):
        body(j, None)
    with b.if_then(b.icmp_signed("<", n16, n)):
        body(n16, _first_lanes(b, b.sub(n, n16)))


def _stream_vectors(b, out, n, body, fence=True):
    """body(j, lanes, nt) for every vector of n elements, as _vectors, but the
    whole vectors from out's first 64-byte boundary on are stored with
    non-temporal stores (nt True), then an sfence (not with ``fence`` False:
    the caller fences once after many calls): the C header's
    FASTACT_MAP1_NT. The elements before the boundary (fewer than 16) and the
    last n % 16 after it go masked, plainly; out not 4-byte aligned: all plain."""
    zero, n64 = ir.Constant(I64, 0), ir.Constant(I64, 63)
    addr = b.ptrtoint(out, I64)
    h = b.lshr(b.and_(b.sub(zero, addr), n64), ir.Constant(I64, 2))  # elements to the boundary
    h = b.select(b.icmp_unsigned("<", h, n), h, n)
    h = b.select(b.icmp_unsigned("!=", b.and_(addr, ir.Constant(I64, 3)), zero), n, h)
    with b.if_then(b.icmp_signed(">", h, zero)):  # h < 16 unless out is misaligned
        _vectors(b, h, lambda j, lanes: body(j, lanes, False))
    n16 = b.add(h, b.and_(b.sub(n, h), ir.Constant(I64, -16)))
    with cgutils.for_range_slice(b, h, n16, ir.Constant(I64, 16)) as (j, _):
        body(j, None, True)
    with b.if_then(b.icmp_signed("<", n16, n)):
        body(n16, _first_lanes(b, b.sub(n, n16)), False)
    if fence:
        b.call(_fn(b.module, "llvm.x86.sse.sfence", ir.VoidType(), []), [])


def _if_any(b, t, test):
    """The block under `with` runs where the mask t has a lane set if test, else always."""
    if not test:
        return contextlib.nullcontext()
    return b.if_then(b.icmp_unsigned("!=", b.bitcast(t, I16), ir.Constant(I16, 0)))


def _define(mod, name, fnty, build):
    fn = cgutils.get_or_insert_function(mod, fnty, name)
    if fn.is_declaration:
        fn.linkage = "internal"
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        build(b, fn.args)
    return fn


def _pass_fn(mod, bwd, sparse):
    """i64 pass(g, x, out, n, tx, tg): every lane of x[:n] through the table into
    out; the tail lanes' x (and g) compressed into tx (tg); returns their count."""

    def build(b, args):
        g, x, out, n, tx, tg = args
        compress = _fn(mod, "llvm.x86.avx512.mask.compress.v16f32", V, [V, V, VM])
        nt = cgutils.alloca_once_value(b, ir.Constant(I64, 0))

        def body(j, lanes):
            if lanes is None:
                _prefetch(b, x, j, 0)
                _prefetch(b, out, j, 1)
                if bwd:
                    _prefetch(b, g, j, 0)
            v = _loads(b, x, j, lanes)
            gv = _loads(b, g, j, lanes) if bwd else None
            t = b.fcmp_unordered("<", v, _splat(LO[bwd]))  # x below the table or NaN
            if lanes is not None:
                t = b.and_(t, lanes)
            k = b.load(nt)
            with _if_any(b, t, sparse and lanes is None):
                b.store(b.call(compress, [v, _splat(0.0), t]), b.bitcast(b.gep(tx, [k]), PV), align=4)
                if bwd:
                    b.store(b.call(compress, [gv, _splat(0.0), t]), b.bitcast(b.gep(tg, [k]), PV), align=4)
                b.store(b.add(k, _popcount(b, t)), nt)
            _stores(b, _lane(b, v, gv, bwd), out, j, lanes)

        _vectors(b, n, body)
        b.ret(b.load(nt))

    name = f"fastact_gelu_tab_pass_{'b' if bwd else 'f'}{'s' if sparse else 'd'}"
    return _define(mod, name, ir.FunctionType(I64, [PF, PF, PF, I64, PF, PF]), build)


# the tail's table, as PHI; x is clamped from below to -14.9, where the result is 0
TAIL = ("tail", 4, -2.90909091, 12582912.0 - 12.0, -14.9)
# expm1(r) = r + r^2 q(r) for |r| <= 0.35 (_expm1_small), q's coefficients highest first: Taylor, 6
# terms (the header's fastact_expm1_taylor, gelu's tail), and 5 fitted (fastact_expm1_fit,
# _fitpoly.fit_expm1_q: log_sigmoid's backward from y)
EXP_Q = (1.98412698e-4, 1.38888889e-3, 8.33333333e-3, 4.16666667e-2, 1.66666667e-1, 0.5)
EXPM1_FIT = (1.3862157e-03, 8.366693e-03, 4.166753e-02, 1.6666542e-01, 4.9999997e-01)
LN2_HI, LN2_LO, LOG2E, INV_SQRT_2PI = 0.693359375, -2.12194440e-4, 1.44269504, 0.398942280


def _ln2_reduce(b, v):
    """(k as a float, r) with v = k ln2 + r, |r| <= ln2/2 (ln2 in two parts): the header's fastact_ln2_reduce."""
    rint = _fn(b.module, "llvm.rint.v16f32", V, [V])
    kf = b.call(rint, [b.fmul(v, _splat(LOG2E))])
    r = _fma(b, b.fneg(kf), _splat(LN2_HI), v)
    return kf, _fma(b, b.fneg(kf), _splat(LN2_LO), r)


def _expm1_small(b, r, coeffs=EXP_Q):
    """expm1(r) = r + r^2 q(r) for |r| <= 0.35, q's coefficients highest first: the header's
    fastact_expm1_q (EXP_Q: fastact_expm1_small)."""
    q = _splat(coeffs[0])
    for c in coeffs[1:]:
        q = _fma(b, q, r, _splat(c))
    return _fma(b, b.fmul(r, r), q, r)


def _tail_fn(mod, bwd):
    """void tail(tx, tg, n): tx[:n] (n a multiple of 16) replaced by the forward
    x phi(x), or the backward g (phi(x) + x pdf(x)), for x in the left tail:
    exp(-x^2/2) * m(x), m from the tail's table; x*x split exactly, the power of
    two applied last (vscalefps: one rounding into the subnormals)."""

    def build(b, args):
        tx, tg, n = args
        scalef = _fn(mod, "llvm.x86.avx512.mask.scalef.ps.512", V, [V, V, V, I16, I32])
        name, deg, inv_w, shift, lo = TAIL
        with cgutils.for_range_slice(b, ir.Constant(I64, 0), n, ir.Constant(I64, 16)) as (j, _):
            v = _loads(b, tx, j, None)
            xc = b.select(b.fcmp_ordered(">", _splat(lo), v), _splat(lo), v)  # max(lo, v); NaN: v
            # exp(-x^2/2) = 2^k e^r: x^2 = h + l exactly, r = -h/2 - k ln2 - l/2
            hh = b.fmul(xc, xc)
            hl = _fma(b, xc, xc, b.fneg(hh))
            g = b.fmul(hh, _splat(-0.5))
            kf, r = _ln2_reduce(b, g)
            r = _fma(b, hl, _splat(-0.5), r)
            e = b.fadd(_expm1_small(b, r), _splat(1.0))  # e^r
            m = _tab_at(b, TABLES[name], deg, xc, inv_w, shift)
            # pdf(x) = exp(-x^2/2) / sqrt(2 pi)
            w = b.fmul(_fma(b, xc, _splat(INV_SQRT_2PI), m), e) if bwd else b.fmul(b.fmul(xc, m), e)
            res = b.call(scalef, [w, kf, _splat(0.0), ir.Constant(I16, -1), ir.Constant(I32, 4)])
            if bwd:
                res = b.fmul(_loads(b, tg, j, None), res)
            _stores(b, res, tx, j, None)
        b.ret_void()

    name = f"fastact_gelu_tab_tail_{'b' if bwd else 'f'}"
    return _define(mod, name, ir.FunctionType(ir.VoidType(), [PF, PF, I64]), build)


def _expand_fn(mod, bwd, sparse):
    """void expand(x, out, n, ty): the tail lanes' results, ty in order, into out."""

    def build(b, args):
        x, out, n, ty = args
        expand = _fn(mod, "llvm.masked.expandload.v16f32", V, [PF, VM, V])
        nt = cgutils.alloca_once_value(b, ir.Constant(I64, 0))

        def body(j, lanes):
            v = _loads(b, x, j, lanes)
            t = b.fcmp_unordered("<", v, _splat(LO[bwd]))
            if lanes is not None:
                t = b.and_(t, lanes)
            with _if_any(b, t, sparse and lanes is None):
                k = b.load(nt)
                _stores(b, b.call(expand, [b.gep(ty, [k]), t, _splat(0.0)]), out, j, t)
                b.store(b.add(k, _popcount(b, t)), nt)

        _vectors(b, n, body)
        b.ret_void()

    name = f"fastact_gelu_tab_expand_{'b' if bwd else 'f'}{'s' if sparse else 'd'}"
    return _define(mod, name, ir.FunctionType(ir.VoidType(), [PF, PF, I64, PF]), build)


def _unary_fn(mod, cname, lane, nt):
    """void f(x, out, n): out[:n] = lane(b, x[:n]), a vector at a time (nt: non-temporal stores, _stream_vectors)."""

    def build(b, args):
        x, out, n = args

        def body(j, lanes, nts=False):
            _stores(b, lane(b, _loads(b, x, j, lanes)), out, j, lanes, nts)

        _stream_vectors(b, out, n, body) if nt else _vectors(b, n, body)
        b.ret_void()

    return _define(mod, cname + ("_nt" if nt else ""), ir.FunctionType(ir.VoidType(), [PF, PF, I64]), build)


def _splat_arg(b, p):
    """A float argument in every lane."""
    v = b.insert_element(ir.Constant(V, None), p, ir.Constant(I32, 0))
    return b.shuffle_vector(v, ir.Constant(V, None), ir.Constant(VI, [0] * 16))


def _nt_bwd_fn(mod, cname, lane):
    """void f(g, x, out, n, p0, p1, p2, p3): out[:n] = lane(b, g, x, (p0..p3) in
    every lane), a vector at a time, with non-temporal stores (_stream_vectors)."""

    def build(b, args):
        g, x, out, n = args[:4]
        ps = [_splat_arg(b, p) for p in args[4:]]

        def body(j, lanes, nts):
            xv = _loads(b, x, j, lanes)
            _stores(b, lane(b, _loads(b, g, j, lanes), xv, ps), out, j, lanes, nts)

        _stream_vectors(b, out, n, body)
        b.ret_void()

    fnty = ir.FunctionType(ir.VoidType(), [PF, PF, PF, I64, F32, F32, F32, F32])
    return _define(mod, cname + "_nt", fnty, build)


# The lanes of the backwards streamed in one pass (NT_BWD_LANES), each as its
# _scalar.bwd_<op> or bwdy_<op> (the same bits): g, or 0, or g times a factor,
# by compares of x (or y). Ordered compares are false for NaN x. ps: p0..p3.
def _outside(b, xv, lo, hi):
    """x <= lo, x >= hi, or NaN."""
    return b.or_(b.or_(b.fcmp_ordered("<=", xv, lo), b.fcmp_ordered(">=", xv, hi)), b.fcmp_unordered("uno", xv, xv))


def _fabs(b, v):
    return b.call(_fn(b.module, "llvm.fabs.v16f32", V, [V]), [v])


def _fma_v(b, x, y, z):
    """x*y + z rounded once: the scalar loops' contracted product and sum (fastmath "contract")."""
    return b.call(_fn(b.module, "llvm.fma.v16f32", V, [V, V, V]), [x, y, z])


def _celu_bwdy(b, g, y, ps):
    # g for y > 0, else g ((y alpha_hi' + alpha_hi) + alpha_lo) / alpha (_scalar.bwdy_celu)
    d = b.fdiv(b.fadd(_fma_v(b, y, ps[2], ps[0]), ps[1]), b.fadd(ps[0], ps[1]))
    return b.select(b.fcmp_ordered(">", y, _splat(0.0)), g, b.fmul(g, d))


NT_BWD_LANES = {
    "relu_bwd": lambda b, g, x, ps: b.select(b.fcmp_ordered(">", x, _splat(0.0)), g, _splat(0.0)),
    "relu6_bwd": lambda b, g, x, ps: b.select(_outside(b, x, _splat(0.0), _splat(6.0)), _splat(0.0), g),
    "leaky_relu_bwd": lambda b, g, x, ps: b.select(b.fcmp_ordered(">", x, _splat(0.0)), g, b.fmul(g, ps[0])),
    "threshold_bwd": lambda b, g, x, ps: b.select(b.fcmp_ordered("<=", x, ps[0]), _splat(0.0), g),
    "hardshrink_bwd": lambda b, g, x, ps: b.select(b.fcmp_ordered("<=", _fabs(b, x), ps[0]), _splat(0.0), g),
    "softshrink_bwd": lambda b, g, x, ps: b.select(b.fcmp_ordered("<=", _fabs(b, x), ps[2]), _splat(0.0), g),
    "hardtanh_bwd": lambda b, g, x, ps: b.select(_outside(b, x, ps[2], ps[3]), _splat(0.0), g),
    "hardsigmoid_bwd": lambda b, g, x, ps: b.select(_outside(b, x, _splat(-3.0), _splat(3.0)), _splat(0.0),
                                                    b.fmul(g, _splat(1.0 / 6.0))),
    # 0 for x <= -3, g * (2x + 3)/6 below 3, else g (NaN x too)
    "hardswish_bwd": lambda b, g, x, ps: b.select(
        b.fcmp_ordered("<=", x, _splat(-3.0)), _splat(0.0),
        b.select(b.fcmp_ordered("<", x, _splat(3.0)),
                 b.fmul(g, b.fmul(b.fadd(b.fadd(x, x), _splat(3.0)), _splat(1.0 / 6.0))), g)),
    # from y: elu g or g ((y + alpha_hi) + alpha_lo); selu g scale or g ((y + p2) + p3); celu above;
    # sigmoid (g y)(1 - y); tanh g ((1 - y)(1 + y))
    "elu_bwdy": lambda b, g, y, ps: b.select(b.fcmp_ordered(">", y, _splat(0.0)), g,
                                             b.fmul(g, b.fadd(b.fadd(y, ps[0]), ps[1]))),
    "selu_bwdy": lambda b, g, y, ps: b.select(b.fcmp_ordered(">", y, _splat(0.0)), b.fmul(g, ps[1]),
                                              b.fmul(g, b.fadd(b.fadd(y, ps[2]), ps[3]))),
    "celu_bwdy": _celu_bwdy,
    "sigmoid_bwdy": lambda b, g, y, ps: b.fmul(b.fmul(g, y), b.fsub(_splat(1.0), y)),
    "tanh_bwdy": lambda b, g, y, ps: b.fmul(g, b.fmul(b.fsub(_splat(1.0), y), b.fadd(_splat(1.0), y))),
}


def _min_nan(b, a, clamp):
    """min(a, clamp), NaN staying NaN (vminps with a second)."""
    return b.select(b.fcmp_unordered("<", a, _splat(clamp)), a, _splat(clamp))


def _abs_clamped(b, v, clamp):
    """(|v|, min(|v|, clamp)); NaN stays NaN in the second, through the table."""
    a = b.call(_fn(b.module, "llvm.fabs.v16f32", V, [V]), [v])
    return a, _min_nan(b, a, clamp)


def _tanh_lane(b, v):
    """tanh(x): the header's fastact_tanh_v (the interval from min(|x|, 7.75) + TANH_SHIFT, u = min(|x|, 9.125)
    minus its centre; NaN: NaN through u)."""
    name, deg, _inv_w, _shift, last = TANH
    a, ai = _abs_clamped(b, v, last)
    kt = b.fadd(ai, _splat(TANH_SHIFT))
    au = _min_nan(b, a, TANH_CLAMP)
    p = _tab_poly(b, TABLES[name], deg, b.bitcast(kt, VI), b.fsub(au, b.fsub(kt, _splat(TANH_SHIFT))))
    copysign = _fn(b.module, "llvm.copysign.v16f32", V, [V, V])
    return b.call(copysign, [p, v])


def _tanhshrink_lane(b, v):
    """x - tanh(x): the header's fastact_tanhshrink_v."""
    name, deg, inv_w, shift, clamp = TANHSHRINK
    a, ac = _abs_clamped(b, v, clamp)
    h = _tab_at(b, TABLES[name], deg, ac, inv_w, shift)
    r = b.fmul(b.fmul(v, b.fmul(v, v)), h)
    copysign = _fn(b.module, "llvm.copysign.v16f32", V, [V, V])
    big = b.fsub(v, b.call(copysign, [_splat(1.0), v]))
    return b.select(b.fcmp_ordered(">=", a, _splat(clamp)), big, r)


# log_sigmoid's backward (fastact_log_sigmoid_bwd_f32 / _bwdy_f32): from x,
# g * sigmoid(-x), sigmoid(-|x|) from its table (intervals of 1/2 from 0) and
# 1 - that for x < 0, the lanes with |x| >= 15.75 from an exp, scaled last
# (_sigm_tail), only in a vector that holds one; from y, -g * expm1(y), y
# clamped to [-17.7, 0], from 2^k and expm1(r) (_neg_expm1).
# sigmoid's forward is the first at -x with g = 1 (both exact), silu's at -x with g = x.
# (table, degree, 1/width, shift, last centre): the centres k/2 as PHI's (k - i0) w; the kernels read k
# from a + SIGM_SHIFT instead (_sigm_at)
SIGM = ("sigm", 5, 2.0, 12582912.0, 15.5)
SIGM_SHIFT = 6291456.0  # 1.5 * 2^22: a + SIGM_SHIFT is a's nearest multiple of 1/2 (the header's FASTACT_SIGM_SHIFT)
EXPM1_LO = -17.7  # expm1 rounds to -1 below -17.33
FLT_MAX = 3.4028234663852886e38
SIGM_CLAMP = 200.0  # the tail's |x| (beyond 192.7: g * sigmoid(-x) rounds to 0 for any float32 g)
# beyond this |x| the reference's exp(-|x|) is 0 in float64 (the largest float32 where it is not), and so the
# factor: the tail gives g * 0, NaN for an infinite g as the reference's (the header's FASTACT_EXP_ZERO)
EXP_ZERO = float(np.float32(745.1332))
# exp(-r) / 2 for |r| <= ln2 / 2: Taylor, 8 terms, highest first (the header's fastact_exp_neg_half)
EXP_NEG_HALF = (-9.92063492e-05, 6.94444444e-04, -4.16666667e-03, 2.08333333e-02, -8.33333333e-02, 0.25, -0.5, 0.5)


def _scalef(b, w, k):
    """w * 2^k (vscalefps: one rounding, into the subnormals too)."""
    scalef = _fn(b.module, "llvm.x86.avx512.mask.scalef.ps.512", V, [V, V, V, I16, I32])
    return b.call(scalef, [w, k, _splat(0.0), ir.Constant(I16, -1), ir.Constant(I32, 4)])


def _neg_expm1(b, y):
    """-expm1(min(y, 0)) for y >= -17.7 (clamped there): with y = k ln2 + r, -(2^k expm1(r) + (2^k - 1)),
    one rounding; -0 at y = +0, NaN stays NaN (the header's fastact_lsig_bwdy_v)."""
    yc = b.select(b.fcmp_ordered(">", _splat(EXPM1_LO), y), _splat(EXPM1_LO), y)  # max(lo, y); NaN: y
    yc = b.select(b.fcmp_ordered(">", yc, _splat(0.0)), _splat(0.0), yc)  # min(0, y): NaN and -0 stay
    kf, r = _ln2_reduce(b, yc)
    em = _expm1_small(b, r, EXPM1_FIT)
    s = _scalef(b, _splat(1.0), kf)  # 2^k
    return _fma(b, b.fneg(s), em, b.fneg(b.fsub(s, _splat(1.0))))


def _sigm_at(b, a):
    """(s, tail): sigmoid(-a) from the table for 0 <= a < 15.75, and the lanes with a >= 15.75 or +inf.
    kt = a + SIGM_SHIFT, a's nearest multiple of 1/2 plus 1.5 * 2^22, has 2a's nearest integer k, the
    interval, in its low bits; the tail's lanes are those of kt > SIGM_SHIFT + 15.5. u = a - k/2 by
    vreduceps (0 at +inf). An addition and no FMA: the header's fastact_sigm_at."""
    name, deg = SIGM[:2]
    reduce = _fn(b.module, "llvm.x86.avx512.mask.reduce.ps.512", V, [V, I32, V, I16, I32])
    kt = b.fadd(a, _splat(SIGM_SHIFT))
    u = b.call(reduce, [a, ir.Constant(I32, 0x18), _splat(0.0), ir.Constant(I16, -1), ir.Constant(I32, 4)])
    tail = b.fcmp_ordered(">", kt, _splat(SIGM_SHIFT + SIGM[4]))
    hi = b.fcmp_ordered(">", kt, _splat(SIGM_SHIFT + 7.5))  # intervals 16..31: a from 7.75 on
    return _tab_poly_lo(b, TABLES[name], deg, b.bitcast(kt, VI), u, hi), tail


def _sigm_tail_sh(b, a):
    """(sh, k1) with sigmoid(-a) = 2^k1 sh for a = |x| > 15.5: sh = h - h e,
    h = exp(-r)/2, e = exp(-a) = 2^k1 h, r = a - k ln2, k1 = 1 - k (a clamped
    to SIGM_CLAMP)."""
    ac = b.select(b.fcmp_ordered("<", a, _splat(SIGM_CLAMP)), a, _splat(SIGM_CLAMP))
    kf, r = _ln2_reduce(b, ac)
    h = _splat(EXP_NEG_HALF[0])
    for c in EXP_NEG_HALF[1:]:
        h = _fma(b, h, r, _splat(c))
    k1 = b.fsub(_splat(1.0), kf)
    e = _scalef(b, h, k1)
    return _fma(b, b.fneg(h), e, h), k1


def _sigm_tail(b, v, a, gv):
    """g * sigmoid(-x) for |x| = a >= 15.75: 2^k1 (g sh); x < 0: g (1 - 2^k1 sh)."""
    sh, k1 = _sigm_tail_sh(b, a)
    pos = _scalef(b, b.fmul(gv, sh), k1)
    neg = b.fmul(gv, b.fsub(_splat(1.0), _scalef(b, sh, k1)))
    r = b.select(b.fcmp_ordered(">=", v, _splat(0.0)), pos, neg)
    return b.select(b.fcmp_ordered(">", v, _splat(EXP_ZERO)), b.fmul(gv, _splat(0.0)), r)


def _dsig_tail(b, v, a, gv):
    """sigmoid's backward from x for |x| = a >= 15.75 (the header's fastact_dsig_v): 2^k1 (g (sh (1 - t))),
    t = 2^k1 sh; g * 0 beyond EXP_ZERO (the factor is even in x: v unused)."""
    sh, k1 = _sigm_tail_sh(b, a)
    w = b.fmul(gv, b.fmul(sh, b.fsub(_splat(1.0), _scalef(b, sh, k1))))
    r = _scalef(b, w, k1)
    return b.select(b.fcmp_ordered(">", a, _splat(EXP_ZERO)), b.fmul(gv, _splat(0.0)), r)


def _silu_bwd_tail(b, v, a, gv):
    """silu's backward for |x| = a >= 15.75 (fastact_silu_bwd_tail_v): t = 2^k1 sh, x clamped to +-200;
    x > 0: g ((1 - t)(1 + x t)); x < 0: 2^(k1 + 8) (g (sh f 2^-8)), f = 1 + x (1 - t)."""
    one = _splat(1.0)
    sh, k1 = _sigm_tail_sh(b, a)
    t = _scalef(b, sh, k1)
    xc = b.select(b.fcmp_ordered("<", _splat(200.0), v), _splat(200.0), v)  # min(200, v); NaN: v
    xc = b.select(b.fcmp_ordered(">", _splat(-200.0), xc), _splat(-200.0), xc)  # max(-200, .); NaN: .
    pos = b.fmul(gv, b.fmul(b.fsub(one, t), _fma(b, xc, t, one)))
    f = _fma(b, xc, b.fsub(one, t), one)
    w = b.fmul(b.fmul(sh, f), _splat(0.00390625))
    neg = _scalef(b, b.fmul(gv, w), b.fadd(k1, _splat(8.0)))
    r = b.select(b.fcmp_ordered(">=", v, _splat(0.0)), pos, neg)
    return b.select(b.fcmp_ordered("<", v, _splat(-EXP_ZERO)), b.fmul(gv, _splat(0.0)), r)  # the reference's +0 factor


def _lsig_fn(mod, kind, nt=False, fence=True):
    """void f(g, x, out, n): out[:n] = g * sigmoid(-x) (kind "x"), -g * expm1(min(y, 0)) for y in x's place
    ("y"); "sigmoid": void f(x, out, n), out[:n] = sigmoid(x), "x" at -x with g = 1; "silu": x * sigmoid(x),
    "x" at -x with g = x clamped to -FLT_MAX (silu(-inf) = -0, not -inf * 0); "silu_bwd": f(g, x, out, n),
    g * silu'(x) from the same table (_silu_bwd_tail beyond it); "softplus_bwd1": f(g, x, out, n, p0, p1, p2,
    p3), softplus's backward for beta = 1, "x" at -x and g where x > p2 (the header's
    fastact_softplus_bwd1_v; the Cython backend tests the largest float32 not above the threshold); "glu":
    f(a, b, out, n), a * sigmoid(b), "x" at -b with g = a; "sigmoid_bwd": f(g, x, out, n), g t (1 - t),
    t = sigmoid(-|x|) (_dsig_tail beyond the table). nt: non-temporal stores (_stream_vectors), with an
    sfence at the end unless not ``fence``."""
    unary = kind in ("sigmoid", "silu")
    from_y = kind == "y"
    dsig = kind == "sigmoid_bwd"
    with_params = kind == "softplus_bwd1"

    def build(b, args):
        if unary:
            x, out, n = args
        elif with_params:
            g, x, out, n, _, _, p2, _ = args
            tv = _splat_arg(b, p2)
        else:
            g, x, out, n = args
        fabs = _fn(mod, "llvm.fabs.v16f32", V, [V])
        slot = cgutils.alloca_once(b, V)

        def body(j, lanes, nts=False):
            v = _loads(b, x, j, lanes)
            above = None
            if kind == "sigmoid":
                v, gv = b.fneg(v), _splat(1.0)
            elif kind == "glu":  # a * sigmoid(b): "x" at -b with g = a (g is a, x is b)
                v, gv = b.fneg(v), _loads(b, g, j, lanes)
            elif with_params:  # g * sigmoid(x), g where x > p2 (NaN: the table's NaN)
                above = b.fcmp_ordered(">", v, tv)
                v, gv = b.fneg(v), _loads(b, g, j, lanes)
            elif kind == "silu":  # max(x, -FLT_MAX); NaN: -FLT_MAX (the table's NaN decides)
                gv = b.select(b.fcmp_ordered(">", v, _splat(-FLT_MAX)), v, _splat(-FLT_MAX))
                v = b.fneg(v)
            else:
                gv = _loads(b, g, j, lanes)
            if from_y:
                _stores(b, b.fmul(gv, _neg_expm1(b, v)), out, j, lanes, nts)
                return
            a = b.call(fabs, [v])
            s, t = _sigm_at(b, a)  # NaN: NaN, through the table; masked-off lanes loaded 0: never in t
            # x >= 0 by the sign bit (vpmovd2m; -0 and NaN give the same values either way, as in the header)
            pos = b.icmp_signed(">=", b.bitcast(v, VI), ir.Constant(VI, [ir.Constant(I32, 0)] * 16))
            u = b.fsub(_splat(1.0), s)
            if kind == "silu_bwd":  # g * s (1 + x (1 - s)): s = 1 - t, 1 - s = t for x >= 0, else t, 1 - t
                f = b.fmul(b.select(pos, u, s), _fma(b, v, b.select(pos, s, u), _splat(1.0)))
            elif dsig:  # g t (1 - t), t = sigmoid(-|x|): sigmoid(x) sigmoid(-x), even in x
                f = b.fmul(s, u)
            else:
                f = b.select(pos, s, u)
            b.store(b.fmul(gv, f), slot)
            tail = _silu_bwd_tail if kind == "silu_bwd" else _dsig_tail if dsig else _sigm_tail
            with _if_any(b, t, True):
                b.store(b.select(t, tail(b, v, a, gv), b.load(slot)), slot)
            r = b.load(slot)
            _stores(b, r if above is None else b.select(above, gv, r), out, j, lanes, nts)

        _stream_vectors(b, out, n, body, fence) if nt else _vectors(b, n, body)
        b.ret_void()

    name = {"x": "fastact_log_sigmoid_bwd_tab", "y": "fastact_log_sigmoid_bwdy_tab", "sigmoid": "fastact_sigmoid_tab",
            "silu": "fastact_silu_tab", "silu_bwd": "fastact_silu_bwd_tab",
            "softplus_bwd1": "fastact_softplus_bwd1_tab", "glu": "fastact_glu_tab",
            "sigmoid_bwd": "fastact_sigmoid_bwd_tab"}[kind] + (("_nt" if fence else "_st") if nt else "")
    return _define(mod, name, ir.FunctionType(ir.VoidType(), [PF] * (2 if unary else 3) + [I64] + [F32] * (4 * with_params)),
                   build)


# log_softmax's backward from y: exp as the header's fastact_exp_negabs_p_v
# (the scalar _expf_arg / _exp_q's operations, in their order), with
# _math's float32 constants: the shifter, ln2 in two parts and Q's Taylor
# coefficients 1/2, 1/6, ..., 1/5040
_F32 = _SPECS["f32"]


def _lsm_bwd_fn(mod):
    """void f(g, y, out, n, s): out[:n] = g - exp(-|y|) s, for rows whose y are all <= 0 or NaN (the
    caller checks), the header's fastact_logsmax_bwd_f32 operation for operation: |y| clamped at 104,
    k by the shifter, r = (-|y| - k ln2_hi) - k ln2_lo, p = 1 + r Q(r) by Estrin's scheme, exp =
    vscalefps(p, k), one rounding -- the Cython AVX-512 build's bits."""

    def build(b, args):
        g, y, out, n, s = args
        fabs = _fn(mod, "llvm.fabs.v16f32", V, [V])
        sv = _splat_arg(b, s)
        c2, c6, c24, c120, c720, c5040 = (_splat(c) for c in _F32["expq"])
        shifter = _splat(_F32["magic"])

        def body(j, lanes):
            v = _loads(b, y, j, lanes)
            gv = _loads(b, g, j, lanes)
            a = b.call(fabs, [v])
            a = b.select(b.fcmp_ordered("<", _splat(104.0), a), _splat(104.0), a)  # min(104, a); NaN: a
            k = b.fsub(_fma(b, a, _splat(-LOG2E), shifter), shifter)
            r = _fma(b, b.fneg(k), _splat(_F32["ln2hi"]), b.fneg(a))
            r = _fma(b, b.fneg(k), _splat(_F32["ln2lo"]), r)
            r2 = b.fmul(r, r)
            q2 = _fma(b, r, _fma(b, r, c5040, c720), c120)
            q1 = _fma(b, r2, q2, _fma(b, r, c24, c6))
            q = _fma(b, r2, q1, _fma(b, r, c2, _splat(1.0)))
            e = _scalef(b, _fma(b, r, q, _splat(1.0)), k)
            _stores(b, _fma(b, b.fneg(e), sv, gv), out, j, lanes)

        _vectors(b, n, body)
        b.ret_void()

    return _define(mod, "fastact_logsmax_bwd_tab", ir.FunctionType(ir.VoidType(), [PF] * 3 + [I64, F32]), build)


@intrinsic
def _lsm_bwd_span(typingctx, g, y, out, n, s):
    """out[:n] = g - exp(y) s (_lsm_bwd_fn) on 1-D contiguous float32 arrays, s a float32."""
    if not all(isinstance(v, types.Array) and v.dtype == types.float32 for v in (g, y, out)) or s != types.float32:
        return None
    sig = types.void(g, y, out, n, s)

    def codegen(context, builder, sig, args):
        ptrs = [_data(context, builder, sig.args[i], args[i]) for i in range(3)]
        builder.call(_lsm_bwd_fn(builder.module), ptrs + [args[3], args[4]])
        return context.get_dummy_value()

    return sig, codegen


def _dot4_fn(mod):
    """double f(a, b, n): the sum of a[:n]*b[:n] as the header's fastact_dot4_f32 and _axis.pxi's _dot_f32
    fold it (softmax's and softmin's float32 rows of DOT4_MIN and more): steps of 64 elements, the last
    padded with zeros (masked loads); in a step lane k's float32 fma(a_{k+16}, b_{k+16}, a_k b_k) +
    fma(a_{k+48}, b_{k+48}, a_{k+32} b_{k+32}), widened and added to lane k's float64 sum (lanes 0-7 in
    one vector, 8-15 in another); the 16 lanes folded as fastact_fold4_pd -- the Cython AVX-512 build's
    bits."""

    def build(b, args):
        a, bb, n = args
        sums = [cgutils.alloca_once_value(b, ir.Constant(VD, [ir.Constant(D64, 0.0)] * 8)) for _ in range(2)]
        halves = [ir.Constant(ir.VectorType(I32, 8), list(range(h, h + 8))) for h in (0, 8)]

        def step(j, masks):
            v = [(_loads(b, a, b.add(j, ir.Constant(I64, 16 * k)), masks[k]),
                  _loads(b, bb, b.add(j, ir.Constant(I64, 16 * k)), masks[k])) for k in range(4)]
            q = b.fadd(_fma(b, v[1][0], v[1][1], b.fmul(v[0][0], v[0][1])),
                       _fma(b, v[3][0], v[3][1], b.fmul(v[2][0], v[2][1])))
            for slot, idx in zip(sums, halves):
                half = b.fpext(b.shuffle_vector(q, ir.Constant(V, None), idx), VD)
                b.store(b.fadd(b.load(slot), half), slot)

        n64 = b.and_(n, ir.Constant(I64, -64))
        with cgutils.for_range_slice(b, ir.Constant(I64, 0), n64, ir.Constant(I64, 64)) as (j, _):
            step(j, [None] * 4)
        with b.if_then(b.icmp_signed("<", n64, n)):
            r = b.sub(n, n64)
            step(n64, [_first_lanes(b, b.sub(r, ir.Constant(I64, 16 * k))) for k in range(4)])
        t = b.fadd(b.load(sums[0]), b.load(sums[1]))

        def fold(v, m):  # lanes 0..m-1 plus lanes m..2m-1
            lo = b.shuffle_vector(v, ir.Constant(v.type, None), ir.Constant(ir.VectorType(I32, m), list(range(m))))
            hi = b.shuffle_vector(v, ir.Constant(v.type, None), ir.Constant(ir.VectorType(I32, m), list(range(m, 2 * m))))
            return b.fadd(lo, hi)

        t = fold(fold(t, 4), 2)
        b.ret(b.fadd(b.extract_element(t, ir.Constant(I32, 0)), b.extract_element(t, ir.Constant(I32, 1))))

    return _define(mod, "fastact_dot4_tab", ir.FunctionType(D64, [PF, PF, I64]), build)


@intrinsic
def _dot4_span(typingctx, a, b, n):
    """The sum of a[:n]*b[:n] (_dot4_fn) on 1-D contiguous float32 arrays, as a float64."""
    if not all(isinstance(v, types.Array) and v.dtype == types.float32 for v in (a, b)):
        return None
    sig = types.float64(a, b, n)

    def codegen(context, builder, sig, args):
        ptrs = [_data(context, builder, sig.args[i], args[i]) for i in range(2)]
        return builder.call(_dot4_fn(builder.module), ptrs + [args[2]])

    return sig, codegen


def _smax_apply_fn(mod):
    """void f(g, y, out, n, d, sign): out[:n] = sign y (g - d), (sign y) first: the header's
    fastact_smax_apply_f32 (softmax's and softmin's backward from y, float32), the last n % 16 masked."""

    def build(b, args):
        g, y, out, n, d, sign = args
        dv, sv = _splat_arg(b, d), _splat_arg(b, sign)

        def body(j, lanes):
            _stores(b, b.fmul(b.fmul(sv, _loads(b, y, j, lanes)), b.fsub(_loads(b, g, j, lanes), dv)), out, j, lanes)

        _vectors(b, n, body)
        b.ret_void()

    return _define(mod, "fastact_smax_apply_tab", ir.FunctionType(ir.VoidType(), [PF] * 3 + [I64, F32, F32]), build)


@intrinsic
def _smax_apply_span(typingctx, g, y, out, n, d, sign):
    """out[:n] = sign y (g - d) (_smax_apply_fn) on 1-D contiguous float32 arrays, d and sign float32."""
    if not all(isinstance(v, types.Array) and v.dtype == types.float32 for v in (g, y, out)):
        return None
    if d != types.float32 or sign != types.float32:
        return None
    sig = types.void(g, y, out, n, d, sign)

    def codegen(context, builder, sig, args):
        ptrs = [_data(context, builder, sig.args[i], args[i]) for i in range(3)]
        builder.call(_smax_apply_fn(builder.module), ptrs + list(args[3:]))
        return context.get_dummy_value()

    return sig, codegen


def _data(context, builder, ty, val, offset=None):
    p = context.make_array(ty)(context, builder, val).data
    return p if offset is None else builder.gep(p, [offset])


def _sparse_or_dense(builder, sparse, call):
    with builder.if_else(sparse) as (then, otherwise):
        with then:
            call(True)
        with otherwise:
            call(False)


def _make_pass(bwd):
    @intrinsic
    def tab_pass(typingctx, g, x, out, lo, n, tx, tg, sparse):
        """The table pass over x[lo:lo + n] (g: the backward's gradient; the forward ignores it)."""
        if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (g, x, out, tx, tg)):
            return None
        sig = types.int64(g, x, out, lo, n, tx, tg, sparse)

        def codegen(context, builder, sig, args):
            ag, ax, aout, lo, n, atx, atg, sp = args
            ptrs = [_data(context, builder, sig.args[i], a, lo) for i, a in ((0, ag), (1, ax), (2, aout))]
            ptrs += [_data(context, builder, sig.args[5], atx), _data(context, builder, sig.args[6], atg)]
            res = cgutils.alloca_once(builder, I64)
            _sparse_or_dense(builder, sp, lambda s: builder.store(
                builder.call(_pass_fn(builder.module, bwd, s), ptrs[:3] + [n] + ptrs[3:]), res))
            return builder.load(res)

        return sig, codegen

    return tab_pass


def _make_expand(bwd):
    @intrinsic
    def tab_expand(typingctx, x, out, lo, n, ty, sparse):
        """The tail lanes' results, ty in order, into out[lo:lo + n] where x is in the tail."""
        if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (x, out, ty)):
            return None
        sig = types.void(x, out, lo, n, ty, sparse)

        def codegen(context, builder, sig, args):
            ax, aout, lo, n, aty, sp = args
            ptrs = [_data(context, builder, sig.args[0], ax, lo), _data(context, builder, sig.args[1], aout, lo)]
            pty = _data(context, builder, sig.args[4], aty)
            _sparse_or_dense(builder, sp, lambda s: builder.call(_expand_fn(builder.module, bwd, s), ptrs + [n, pty]))
            return context.get_dummy_value()

        return sig, codegen

    return tab_expand


def _on_arrays(make_fn, count=2):
    """An intrinsic f(a, b, n) -- or f(a, b, c, n) for count 3 -- on 1-D
    contiguous float32 arrays: the IR function make_fn(module) called on their
    data and n."""

    def typer(arrays, n):
        if not all(isinstance(v, types.Array) and v.dtype == types.float32 for v in arrays):
            return None
        sig = types.void(*arrays, n)

        def codegen(context, builder, sig, args):
            ptrs = [_data(context, builder, sig.args[i], args[i]) for i in range(count)]
            builder.call(make_fn(builder.module), ptrs + [args[count]])
            return context.get_dummy_value()

        return sig, codegen

    if count == 2:
        return intrinsic(lambda typingctx, a, b, n: typer((a, b), n))
    return intrinsic(lambda typingctx, a, b, c, n: typer((a, b, c), n))


def _on_span(make_fn, arity, params):
    """An intrinsic with a span function's arguments -- ``arity`` input pointers,
    out, n, p0..p3, float32 -- that calls the IR function make_fn(module) on the
    pointers and n, and on p0..p3 where ``params``."""

    def typer(ptrs, n, ps):
        if not all(v == types.CPointer(types.float32) for v in ptrs):
            return None
        if not all(p == types.float32 for p in ps):
            return None
        sig = types.void(*ptrs, n, *ps)

        def codegen(context, builder, sig, args):
            builder.call(make_fn(builder.module), list(args) if params else list(args[:arity + 2]))
            return context.get_dummy_value()

        return sig, codegen

    if arity == 1:
        return intrinsic(lambda typingctx, x, out, n, p0, p1, p2, p3: typer((x, out), n, (p0, p1, p2, p3)))
    return intrinsic(lambda typingctx, g, x, out, n, p0, p1, p2, p3: typer((g, x, out), n, (p0, p1, p2, p3)))


_pass_f, _pass_b = _make_pass(False), _make_pass(True)
# tx[:n] (n a multiple of 16) replaced by the results of the tail lanes whose x (and g: tg) it holds
_tail_f = _on_arrays(lambda mod: _tail_fn(mod, False))
_tail_b = _on_arrays(lambda mod: _tail_fn(mod, True))
# the one-pass kernels: on arrays with plain stores (the loops' table guard,
# _kernels._table_guard), and <table>_nt on pointers with non-temporal stores
# (the streamed span function of its ops: _kernels.NT_OPS, p0..p3 unused)
_UNARY_TABS = {"tanh": ("fastact_tanh_tab", _tanh_lane),  # out[:n] = tanh(x[:n])
               "tanhshrink": ("fastact_tanhshrink_tab", _tanhshrink_lane)}  # x[:n] - tanh(x[:n])
_LSIG_TABS = {"lsig_bwd": ("x", 2),  # out[:n] = g * sigmoid(-x)
              "lsig_bwdy": ("y", 2),  # out[:n] = -g * expm1(min(y, 0))
              "sigmoid": ("sigmoid", 1),  # out[:n] = sigmoid(x)
              "silu": ("silu", 1),  # out[:n] = x * sigmoid(x)
              "silu_bwd": ("silu_bwd", 2),  # out[:n] = g * silu'(x)
              "glu": ("glu", 2),  # out[:n] = a * sigmoid(b) (glu's forward on its halves a, b)
              "sigmoid_bwd": ("sigmoid_bwd", 2)}  # out[:n] = g * sigmoid'(x)
_tanh_span, _tanhshrink_span = (_on_arrays(lambda mod, cname=cname, lane=lane: _unary_fn(mod, cname, lane, False))
                                for cname, lane in _UNARY_TABS.values())
_lsig_bwd_span, _lsig_bwdy_span, _sigmoid_span, _silu_span, _silu_bwd_span, _glu_span, _dsig_span = (
    _on_arrays(lambda mod, kind=kind: _lsig_fn(mod, kind, False), arity + 1) for kind, arity in _LSIG_TABS.values())
for _nt_name, (_nt_c, _nt_lane) in _UNARY_TABS.items():
    globals()[_nt_name + "_nt"] = _on_span(lambda mod, cname=_nt_c, lane=_nt_lane: _unary_fn(mod, cname, lane, True),
                                           1, False)
for _nt_name, (_nt_kind, _nt_arity) in _LSIG_TABS.items():
    globals()[_nt_name + "_nt"] = _on_span(lambda mod, kind=_nt_kind: _lsig_fn(mod, kind, True), _nt_arity, False)
# glu's forward on pointers with non-temporal stores and no sfence (_kernels._glu_fwd_nt fences once per thread)
glu_st = _on_span(lambda mod: _lsig_fn(mod, "glu", True, False), 2, False)
# softplus's backward for beta = 1 (_scalar.bwd_softplus_beta1, whose p2 is the threshold as a float32 cut):
# on pointers and p0..p3 (the streamed span function), and softplus_bwd1 below on arrays. Against the
# exp and division of bwd_softplus_beta1, float32, 2 threads, alternating processes: 1e5 23.4-26.0 ->
# 17.3-19.9 us, 1e7 2.18-2.64 -> 1.47-2.25 ms (PyTorch 2.64-2.99 in the same runs).
softplus_bwd1_nt = _on_span(lambda mod: _lsig_fn(mod, "softplus_bwd1", True), 2, True)


@intrinsic
def _softplus_bwd1_span(typingctx, g, x, out, p0, p1, p2, p3):
    """out = softplus's backward for beta = 1 (_lsig_fn "softplus_bwd1") on 1-D contiguous float32 arrays."""
    if not all(isinstance(v, types.Array) and v.dtype == types.float32 for v in (g, x, out)):
        return None
    if not all(p == types.float32 for p in (p0, p1, p2, p3)):
        return None
    sig = types.void(g, x, out, p0, p1, p2, p3)

    def codegen(context, builder, sig, args):
        ptrs = [_data(context, builder, sig.args[i], args[i]) for i in range(3)]
        n = context.make_array(sig.args[1])(context, builder, args[1]).nitems
        builder.call(_lsig_fn(builder.module, "softplus_bwd1", False), ptrs + [n] + list(args[3:]))
        return context.get_dummy_value()

    return sig, codegen


# Backwards whose streamed float32 result is computed in one pass, each vector
# stored non-temporally as it is computed: the cheap ones (relu's, from x and
# from y, relu6's, leaky_relu's, threshold's, hardshrink's, softshrink's,
# hardtanh's, hardsigmoid's, hardswish's) and the arithmetic ones from y
# (elu's, selu's, celu's, sigmoid's, tanh's). The block scheme (_kernels._buf2:
# the span function into a buffer, then copied with non-temporal stores) ran
# them slower: relu's, 1e7 float32, in-process A/B, 2 threads 2.42-2.93 ->
# 2.13-2.41 ms, one thread 3.55-4.17 -> 2.81-3.14. Streamed calls only: each is
# the span function of a streamed call (_kernels.NT_OPS), the op's own loop the
# plain call's, which LLVM unrolls by four (the one-pass loop with plain stores
# was as fast at 1e5 and slower at 1e3: relu's backward, 2 threads, 1.04-1.06
# -> 1.14-1.15 us). <name>_nt(g, x, out, n, p0, p1, p2, p3) on pointers.
for _nt_name, _nt_lane in NT_BWD_LANES.items():
    globals()[_nt_name + "_nt"] = _on_span(lambda mod, name=_nt_name, lane=_nt_lane: _nt_bwd_fn(mod, "fastact_" + name, lane),
                                           2, True)
_expand_f, _expand_b = _make_expand(False), _make_expand(True)

# Not cached on their own: they are compiled into the kernels of _kernels that
# call them, whose cache names carry a hash of the tables (a cached fwd_f32
# would keep old tables after an edit of the header alone).
OPTS = dict(error_model="numpy", fastmath={"contract"}, nogil=True)


def _gelu_driver(bwd):
    """The block loop of gelu's forward (bwd False; g is not read) or backward:
    per block, the table pass, then the tail's vectors and their expansion
    where it found tail lanes. out is neither g nor x. The first block's mode
    is the C kernel's (fastact_gelu_sparse0): a streamed or in-place call
    (_kernels._buf) runs one block at a time."""
    tab_pass, tail, expand = (_pass_b, _tail_b, _expand_b) if bwd else (_pass_f, _tail_f, _expand_f)
    lo = np.float32(LO[bwd])

    def run(g, x, out):
        n = x.shape[0]
        tx = np.empty(BLOCK + 16, np.float32)
        tg = np.empty(BLOCK + 16, np.float32) if bwd else tx
        sparse = True  # the first block's mode: dense if one of its first 64 x is in the tail (_sparse0)
        for i in range(min(n & ~15, 64)):
            if not x[i] >= lo:
                sparse = False
        for b in range(0, n, BLOCK):
            m = min(n - b, BLOCK)
            nt = tab_pass(g, x, out, b, m, tx, tg, sparse)
            if nt > 0:
                tail(tx, tg, (nt + 15) & ~15)  # whole vectors: tx past nt holds zeros
                expand(x, out, b, m, tx, sparse)
            sparse = nt == 0

    own_names([run], "bwd" if bwd else "fwd")  # two closures, one argument list
    return numba.njit(**OPTS)(run)


# fwd_f32(x, x, out): out = gelu(x); bwd_f32(g, x, out): out = g * gelu'(x) (float32, 1-D contiguous)
fwd_f32, bwd_f32 = _gelu_driver(False), _gelu_driver(True)


def _applies(*arrays):
    return ENABLED and all(isinstance(a, types.Array) and a.dtype == types.float32 and a.ndim == 1 and a.layout == "C"
                           for a in arrays)


def fwd(x, out):
    """In Numba code: out = gelu(x) from the tables and True where they apply
    (1-D contiguous float32 on AVX-512, out not x), else False (nothing done)."""
    raise NotImplementedError("only callable from Numba code")


def tanh(x, out):
    """In Numba code: out = tanh(x) from the table and True where it applies, else False."""
    raise NotImplementedError("only callable from Numba code")


def tanhshrink(x, out):
    """In Numba code: out = x - tanh(x) from the table and True where it applies, else False."""
    raise NotImplementedError("only callable from Numba code")


def bwd(g, x, out):
    """In Numba code: out = g * gelu'(x) from the tables and True where they apply, else False."""
    raise NotImplementedError("only callable from Numba code")


@overload(fwd, jit_options=OPTS)
def _ol_fwd(x, out):
    if _applies(x, out):
        def run(x, out):
            fwd_f32(x, x, out)
            return True
        return run
    return lambda x, out: False


@overload(bwd, jit_options=OPTS)
def _ol_bwd(g, x, out):
    if _applies(g, x, out):
        def run(g, x, out):
            bwd_f32(g, x, out)
            return True
        return run
    return lambda g, x, out: False


def _span_overload(stub, span):
    """Register the overload of ``stub(x, out)`` or ``stub(g, x, out)``: ``span``
    (plain stores) on the arrays and their length, and True, where the table
    applies; else False (nothing done)."""
    nargs = len(inspect.signature(stub).parameters)
    if nargs == 2:
        @overload(stub, jit_options=OPTS)
        def _ol2(x, out):
            if _applies(x, out):
                def run(x, out):
                    span(x, out, x.shape[0])
                    return True
                return own_names([run], stub.__name__)[0]  # one closure per table, one argument list
            return lambda x, out: False
    else:
        @overload(stub, jit_options=OPTS)
        def _ol3(g, x, out):
            if _applies(g, x, out):
                def run(g, x, out):
                    span(g, x, out, x.shape[0])
                    return True
                return own_names([run], stub.__name__)[0]
            return lambda g, x, out: False


def lsig_bwd(g, x, out):
    """In Numba code: out = g * sigmoid(-x) (log_sigmoid's backward) from the
    table and True where it applies, else False."""
    raise NotImplementedError("only callable from Numba code")


def lsig_bwdy(g, y, out):
    """In Numba code: out = -g * expm1(min(y, 0)) (log_sigmoid's backward from
    y) from the table and True where it applies, else False."""
    raise NotImplementedError("only callable from Numba code")


def sigmoid(x, out):
    """In Numba code: out = sigmoid(x) from the table and True where it applies, else False."""
    raise NotImplementedError("only callable from Numba code")


def silu(x, out):
    """In Numba code: out = silu(x) from the table and True where it applies, else False."""
    raise NotImplementedError("only callable from Numba code")


def silu_bwd(g, x, out):
    """In Numba code: out = g * silu'(x) from the table and True where it applies, else False."""
    raise NotImplementedError("only callable from Numba code")


def sigmoid_bwd(g, x, out):
    """In Numba code: out = g * sigmoid'(x) from the table and True where it applies, else False."""
    raise NotImplementedError("only callable from Numba code")


def glu(a, b, out):
    """In Numba code: out = a * sigmoid(b) (glu's forward on its halves) from log_sigmoid's table at -b and
    True where it applies, else False."""
    raise NotImplementedError("only callable from Numba code")


def softplus_bwd1(g, x, out, p0, p1, p2, p3):
    """In Numba code: out = softplus's backward for beta = 1 (g where x > p2, else g * sigmoid(x), from
    log_sigmoid's table at -x) and True where the table applies (1-D contiguous float32 on AVX-512), else
    False (nothing done)."""
    raise NotImplementedError("only callable from Numba code")


@overload(softplus_bwd1, jit_options=OPTS)
def _ol_softplus_bwd1(g, x, out, p0, p1, p2, p3):
    if _applies(g, x, out) and p2 == types.float32:
        def run(g, x, out, p0, p1, p2, p3):
            _softplus_bwd1_span(g, x, out, p0, p1, p2, p3)
            return True
        return run
    return lambda g, x, out, p0, p1, p2, p3: False


def lsm_bwd(g, y, out, s):
    """In Numba code: out = g - exp(y) s (log_softmax's backward from y, for y all <= 0 or NaN) as the
    Cython AVX-512 build computes it, and True where it applies (1-D contiguous float32 on AVX-512), else
    False (nothing done)."""
    raise NotImplementedError("only callable from Numba code")


@overload(lsm_bwd, jit_options=OPTS)
def _ol_lsm_bwd(g, y, out, s):
    if _applies(g, y, out) and s == types.float32:
        def run(g, y, out, s):
            _lsm_bwd_span(g, y, out, y.shape[0], s)
            return True
        return run
    return lambda g, y, out, s: False


def dot4(a, b):
    """In Numba code: the sum of a*b (1-D, contiguous) as a float64, as the Cython AVX-512 build's
    _dot_f32 forms it (_dot4_fn) on float32 where the tables apply, else exactly (_kernels._dot64)."""
    raise NotImplementedError("only callable from Numba code")


@overload(dot4, jit_options=OPTS, inline="always")
def _ol_dot4(a, b):
    if _applies(a, b):
        return lambda a, b: _dot4_span(a, b, a.shape[0])
    from ._kernels import _dot64  # (typed from _kernels' functions: loaded by then)

    return lambda a, b: _dot64(a, b)


def smax_apply(g, y, out, d, sign):
    """In Numba code: out = sign y (g - d) as the Cython AVX-512 build computes it (fastact_smax_apply_f32)
    and True where it applies (1-D contiguous float32 on AVX-512; out may be g or y), else False (nothing
    done)."""
    raise NotImplementedError("only callable from Numba code")


@overload(smax_apply, jit_options=OPTS, inline="always")
def _ol_smax_apply(g, y, out, d, sign):
    if _applies(g, y, out) and d == types.float32 and sign == types.float32:
        def run(g, y, out, d, sign):
            _smax_apply_span(g, y, out, y.shape[0], d, sign)
            return True
        return run
    return lambda g, y, out, d, sign: False


for _stub, _span in ((tanh, _tanh_span), (tanhshrink, _tanhshrink_span), (lsig_bwd, _lsig_bwd_span), (lsig_bwdy, _lsig_bwdy_span),
                     (sigmoid, _sigmoid_span), (silu, _silu_span), (silu_bwd, _silu_bwd_span), (glu, _glu_span),
                     (sigmoid_bwd, _dsig_span)):
    _span_overload(_stub, _span)
