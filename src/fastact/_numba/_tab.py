"""float32 kernels from tables of polynomials picked per lane, for CPUs with
AVX-512: gelu, forward and backward -- the Numba side of the Cython build's
``fastact_gelu_f32`` / ``fastact_gelu_bwd_f32`` (``_cython/_fastact_cpu.h``;
the scheme, intervals and fit errors are described there) -- and tanh's
forward (``TANH_TABLE`` below; the Cython backend's tanh is libmvec's).

Why LLVM IR here: the tables' 32 polynomials are picked per lane with
``vpermt2ps`` (32 entries in two registers). LLVM's vectoriser cannot produce
a per-lane permute from scalar code -- an indexed load from a table became 7
``vgatherdps`` a vector, slower than the exp kernel it was to replace (190
against 125 us at 1e5 on one thread). So the kernels' loops are written in
vector LLVM IR (``llvm.x86.avx512.vpermi2var.ps.512`` and friends), emitted by
the intrinsics below. gelu's are one operation for each of the C header's
intrinsics, and their results bit for bit the Cython kernel's (checked over
all 2**32 inputs, forward and backward); gelu's driver, ``fwd_f32`` /
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

gelu's coefficients are read from the Cython header (installed with the
package), so both backends use the same numbers. tanh needs no tail: one pass,
tanh(|x|) from its table and x's sign. The kernels are used only when Numba
compiles for a CPU with AVX-512F (``ENABLED``); elsewhere, and for float64,
gelu and tanh are the exp-based loops.
"""

from __future__ import annotations

import contextlib
import os
import re

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic, overload


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


def read_tables(path=HEADER):
    """{'phi', 'dphi', 'tail'}: the header's float32 tables, rows (centres, u^0, u^1, ...) x 32."""
    with open(path) as f:
        text = f.read()
    out = {}
    for name in ("phi", "dphi", "tail"):
        m = re.search(r"fastact_gelu_%s\[(\d+)\]\[32\][^=]*=\s*\{(.*?)\n\};" % name, text, re.S)
        if m is None:
            raise ValueError(f"fastact_gelu_{name} not found in {path}")
        rows = re.findall(r"\{/\*[^*]*\*/(.*?)\}", m.group(2))
        tab = np.array([[float(v.strip().rstrip("f")) for v in r.split(",")] for r in rows], dtype=np.float32)
        if tab.shape != (int(m.group(1)), 32):
            raise ValueError(f"fastact_gelu_{name} in {path}: shape {tab.shape}")
        out[name] = tab
    return out


def _targets_avx512():
    """Whether Numba compiles for a CPU with AVX-512F (its features as configured, else the host's)."""
    if os.environ.get("FASTACT_NUMBA_ZMM", "1").strip() == "0":
        return False
    feats = numba.config.CPU_FEATURES
    if feats:
        return "+avx512f" in feats.split(",")
    if numba.config.CPU_NAME:
        return False
    import llvmlite.binding as ll

    return bool(ll.get_host_cpu_features().get("avx512f"))


try:
    TABLES = read_tables() if _targets_avx512() else None
except (OSError, ValueError):
    TABLES = None
ENABLED = TABLES is not None

# tanh(|x|) = P_i(|x| - c_i) on intervals of 5/16 centred on c_i = i * 5/16,
# degree 6 (_fitpoly.fit_table("tanh"), fit error 3.7e-8; the first
# interval's constant term 0, so tiny and subnormal x keep their relative
# accuracy); the last two intervals (|x| >= 9.22, where tanh rounds to 1) are
# the constant 1 and |x| is clamped to 9.75 (+-inf: +-1). 8 permutes, 7 FMAs
# and 4 other operations a vector; the exp-based loop (_math.tanh) has an exp
# and a division.
TANH_TABLE = np.array([
    [  # c_i
        0.0, 0.3125, 0.625, 0.9375, 1.25, 1.5625, 1.875, 2.1875, 2.5, 2.8125, 3.125, 3.4375, 3.75, 4.0625, 4.375,
        4.6875, 5.0, 5.3125, 5.625, 5.9375, 6.25, 6.5625, 6.875, 7.1875, 7.5, 7.8125, 8.125, 8.4375, 8.75, 9.0625,
        9.375, 9.6875,
    ],
    [  # u^0
        0.0, 0.30270973, 0.5545997, 0.7340715, 0.84828365, 0.91582453, 0.95404524, 0.9751367, 0.9866143, 0.9928128,
        0.99614656, 0.99793553, 0.99889445, 0.99940807, 0.99968314, 0.99983037, 0.9999092, 0.9999514, 0.999974,
        0.99998605, 0.99999255, 0.999996, 0.99999785, 0.99999887, 0.9999994, 0.9999997, 0.9999998, 0.9999999,
        0.99999994, 1.0, 1.0, 1.0,
    ],
    [  # u^1
        1.0, 0.9083668, 0.69241923, 0.46113902, 0.28041485, 0.1612654, 0.08979764, 0.04910842, 0.026592227,
        0.014322755, 0.00769209, 0.0041246624, 0.0022098923, 0.0011834782, 6.3364446e-04, 3.3921542e-04,
        1.8158324e-04, 9.71986e-05, 5.2027837e-05, 2.7848831e-05, 1.4906502e-05, 7.978903e-06, 4.270807e-06,
        2.2860006e-06, 1.2236086e-06, 6.5495067e-07, 3.5056988e-07, 1.8764655e-07, 1.0043996e-07, 5.376164e-08, 0.0,
        0.0,
    ],
    [  # u^2
        3.222092e-17, -0.27497125, -0.38400942, -0.33850092, -0.23787397, -0.14768721, -0.08566358, -0.047887113,
        -0.026232796, -0.014225216, -0.007671418, -0.004114787, -0.0022106376, -0.0011767546, -6.378131e-04,
        -3.3522423e-04, -1.8708421e-04, -1.0420398e-04, -6.0252245e-05, -2.0752354e-05, -1.5739712e-05,
        -6.727406e-06, -1.0704518e-06, -5.533036e-06, -6.0907805e-06, -9.7518305e-06, 7.3942726e-07, 7.653327e-06,
        2.7981991e-06, -8.3564355e-06, 0.0, 0.0,
    ],
    [  # u^3
        -0.33331773, -0.21954976, -0.017852124, 0.09477218, 0.108314425, 0.081505105, 0.05180229, 0.030327387,
        0.017020974, 0.009343261, 0.0050688228, 0.0027327174, 0.0014683721, 7.87571e-04, 4.2202589e-04,
        2.2602426e-04, 1.2102101e-04, 6.478918e-05, 3.468227e-05, 1.8564944e-05, 9.937359e-06, 5.3191234e-06,
        2.8471525e-06, 1.5239692e-06, 8.157248e-07, 4.3662666e-07, 2.3371035e-07, 1.250961e-07, 6.6959416e-08,
        3.584082e-08, 0.0, 0.0,
    ],
    [  # u^4
        -1.1671812e-15, 0.15809178, 0.13743526, 0.042645063, -0.012384805, -0.025691625, -0.021438278, -0.013634759,
        -0.0083161015, -0.004119181, -0.0018025805, -0.0014600675, -4.847307e-04, -8.579349e-04, 1.2665054e-04,
        -4.1668085e-04, 3.6555546e-04, 5.0891377e-04, 6.1783293e-04, -5.572239e-04, 5.937836e-05, -9.9294506e-05,
        -2.4854616e-04, 2.4996605e-04, 3.7542282e-04, 7.022196e-04, -8.428366e-05, -6.055226e-04, -2.2385901e-04,
        6.410934e-04, 0.0, 0.0,
    ],
    [  # u^5
        0.13139859, 0.04542788, -0.053715777, -0.052788652, -0.0194304, -4.4836907e-04, 0.0045764744, 0.004246851,
        0.0028604253, 0.0017132947, 9.709656e-04, 5.355709e-04, 2.907022e-04, 1.5719968e-04, 8.437703e-05,
        4.5355726e-05, 2.4286559e-05, 1.29984555e-05, 6.9604225e-06, 3.727347e-06, 1.9952067e-06, 1.0689981e-06,
        5.719403e-07, 3.0635522e-07, 1.6395131e-07, 8.775295e-08, 4.6948614e-08, 2.5132486e-08, 1.3443961e-08,
        7.1952737e-09, 0.0, 0.0,
    ],
    [  # u^6
        1.81623e-15, -0.071164556, -0.014013367, 0.030359786, 0.010689347, 0.011658711, 0.013320903, -1.4073342e-04,
        0.0052021546, -0.009700874, -0.015582803, 0.0021443926, -0.0055269534, 0.010208776, -0.0074716364,
        0.006686185, -0.009407518, -0.011946603, -0.014015571, 0.012087524, -0.0014202939, 0.0021316174,
        0.0054518604, -0.0055316966, -0.00829168, -0.015497306, 0.0018568834, 0.013357731, 0.004938063,
        -0.014144284, 0.0, 0.0,
    ],
], dtype=np.float32)
TANH = ("tanh", 6, 3.2, 12582912.0, 9.75)  # (table, degree, 1/width, shift, clamp), as PHI
if ENABLED:
    TABLES["tanh"] = TANH_TABLE

# ------------------------------------------------------------------ LLVM IR
F32, I1, I16, I32, I64 = ir.FloatType(), ir.IntType(1), ir.IntType(16), ir.IntType(32), ir.IntType(64)
V, VI, VM, VL = ir.VectorType(F32, 16), ir.VectorType(I32, 16), ir.VectorType(I1, 16), ir.VectorType(I64, 16)
PF, PV = ir.PointerType(F32), ir.PointerType(ir.VectorType(F32, 16))
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
    the low bits of x * inv_w + shift, u = x - centre_k, Horner over the rows."""
    perm = _fn(b.module, "llvm.x86.avx512.vpermi2var.ps.512", V, [V, VI, V])
    k = b.bitcast(_fma(b, x, _splat(inv_w), _splat(shift)), VI)

    def pick(row):
        return b.call(perm, [_vec(tab[row][:16]), k, _vec(tab[row][16:])])

    u = b.fsub(x, pick(0))
    p = pick(deg + 1)
    for j in range(deg, 0, -1):
        p = _fma(b, p, u, pick(j))
    return p


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


def _stores(b, val, ptr, j, lanes):
    p = b.bitcast(b.gep(ptr, [j]), PV)
    if lanes is None:
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


# the tail's table: x clamped to TAIL_MIN, where the result is 0
TAIL = ("tail", 4, -2.90909091, 12582912.0 - 12.0, -14.9)
# exp(r) = 1 + r + r^2 q(r), q: Taylor, 6 terms (|r| <= 0.35: < 1e-8), highest first
EXP_Q = (1.98412698e-4, 1.38888889e-3, 8.33333333e-3, 4.16666667e-2, 1.66666667e-1, 0.5)
LN2_HI, LN2_LO, LOG2E, INV_SQRT_2PI = 0.693359375, -2.12194440e-4, 1.44269504, 0.398942280


def _tail_fn(mod, bwd):
    """void tail(tx, tg, n): tx[:n] (n a multiple of 16) replaced by the forward
    x phi(x), or the backward g (phi(x) + x pdf(x)), for x in the left tail:
    exp(-x^2/2) * m(x), m from the tail's table; x*x split exactly, the power of
    two applied last (vscalefps: one rounding into the subnormals)."""

    def build(b, args):
        tx, tg, n = args
        scalef = _fn(mod, "llvm.x86.avx512.mask.scalef.ps.512", V, [V, V, V, I16, I32])
        rint = _fn(mod, "llvm.rint.v16f32", V, [V])
        name, deg, inv_w, shift, lo = TAIL
        with cgutils.for_range_slice(b, ir.Constant(I64, 0), n, ir.Constant(I64, 16)) as (j, _):
            v = _loads(b, tx, j, None)
            xc = b.select(b.fcmp_ordered(">", _splat(lo), v), _splat(lo), v)  # max(lo, v); NaN: v
            # exp(-x^2/2) = 2^k e^r: x^2 = h + l exactly, r = -h/2 - k ln2 - l/2
            hh = b.fmul(xc, xc)
            hl = _fma(b, xc, xc, b.fneg(hh))
            g = b.fmul(hh, _splat(-0.5))
            kf = b.call(rint, [b.fmul(g, _splat(LOG2E))])
            r = _fma(b, b.fneg(kf), _splat(LN2_HI), g)
            r = _fma(b, b.fneg(kf), _splat(LN2_LO), r)
            r = _fma(b, hl, _splat(-0.5), r)
            q = _splat(EXP_Q[0])
            for c in EXP_Q[1:]:
                q = _fma(b, q, r, _splat(c))
            e = b.fadd(_fma(b, b.fmul(r, r), q, r), _splat(1.0))
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


def _tanh_fn(mod):
    """void tanh(x, out, n): out[:n] = tanh(x[:n])."""

    def build(b, args):
        x, out, n = args
        fabs = _fn(mod, "llvm.fabs.v16f32", V, [V])
        copysign = _fn(mod, "llvm.copysign.v16f32", V, [V, V])
        name, deg, inv_w, shift, clamp = TANH

        def body(j, lanes):
            v = _loads(b, x, j, lanes)
            a = b.call(fabs, [v])
            ac = b.select(b.fcmp_unordered("<", a, _splat(clamp)), a, _splat(clamp))  # NaN: NaN, through P
            _stores(b, b.call(copysign, [_tab_at(b, TABLES[name], deg, ac, inv_w, shift), v]), out, j, lanes)

        _vectors(b, n, body)
        b.ret_void()

    return _define(mod, "fastact_tanh_tab", ir.FunctionType(ir.VoidType(), [PF, PF, I64]), build)


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


def _make_tail(bwd):
    @intrinsic
    def tab_tail(typingctx, tx, tg, n):
        """tx[:n] (n a multiple of 16) replaced by the results for the tail lanes whose x (and g) it holds."""
        if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (tx, tg)):
            return None
        sig = types.void(tx, tg, n)

        def codegen(context, builder, sig, args):
            atx, atg, n = args
            ptrs = [_data(context, builder, sig.args[0], atx), _data(context, builder, sig.args[1], atg)]
            builder.call(_tail_fn(builder.module, bwd), ptrs + [n])
            return context.get_dummy_value()

        return sig, codegen

    return tab_tail


_pass_f, _pass_b = _make_pass(False), _make_pass(True)
_tail_f, _tail_b = _make_tail(False), _make_tail(True)


@intrinsic
def _tanh_span(typingctx, x, out, n):
    """out[:n] = tanh(x[:n]), both 1-D contiguous float32."""
    if not all(isinstance(a, types.Array) and a.dtype == types.float32 for a in (x, out)):
        return None
    sig = types.void(x, out, n)

    def codegen(context, builder, sig, args):
        ax, aout, n = args
        ptrs = [_data(context, builder, sig.args[0], ax), _data(context, builder, sig.args[1], aout)]
        builder.call(_tanh_fn(builder.module), ptrs + [n])
        return context.get_dummy_value()

    return sig, codegen
_expand_f, _expand_b = _make_expand(False), _make_expand(True)

OPTS = dict(error_model="numpy", fastmath={"contract"}, nogil=True)


@numba.njit(cache=True, **OPTS)
def fwd_f32(x, out):
    """out = gelu(x), float32, 1-D contiguous, out not x."""
    n = x.shape[0]
    tx = np.empty(BLOCK + 16, np.float32)
    sparse = True
    for b in range(0, n, BLOCK):
        m = min(n - b, BLOCK)
        nt = _pass_f(x, x, out, b, m, tx, tx, sparse)
        if nt > 0:
            _tail_f(tx, tx, (nt + 15) & ~15)  # whole vectors: tx past nt holds zeros
            _expand_f(x, out, b, m, tx, sparse)
        sparse = nt == 0


@numba.njit(cache=True, **OPTS)
def bwd_f32(g, x, out):
    """out = g * gelu'(x), float32, 1-D contiguous, out neither g nor x."""
    n = x.shape[0]
    tx = np.empty(BLOCK + 16, np.float32)
    tg = np.empty(BLOCK + 16, np.float32)
    sparse = True
    for b in range(0, n, BLOCK):
        m = min(n - b, BLOCK)
        nt = _pass_b(g, x, out, b, m, tx, tg, sparse)
        if nt > 0:
            _tail_b(tx, tg, (nt + 15) & ~15)
            _expand_b(x, out, b, m, tx, sparse)
        sparse = nt == 0


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


def bwd(g, x, out):
    """In Numba code: out = g * gelu'(x) from the tables and True where they apply, else False."""
    raise NotImplementedError("only callable from Numba code")


@overload(fwd, jit_options=OPTS)
def _ol_fwd(x, out):
    if _applies(x, out):
        def run(x, out):
            fwd_f32(x, out)
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


@overload(tanh, jit_options=OPTS)
def _ol_tanh(x, out):
    if _applies(x, out):
        def run(x, out):
            _tanh_span(x, out, x.shape[0])
            return True
        return run
    return lambda x, out: False
