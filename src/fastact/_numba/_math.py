"""Vectorisable transcendental functions for the Numba kernels, per dtype.

Style rule: in ``a if c else b`` both arms are plain values computed
beforehand. numba lowers a conditional expression to branches; LLVM turns a
branch into a select (and the loop into packed code) only when the arms are
cheap, so an expensive arm inside the ternary leaves the loop scalar
(measured: softplus, gelu and tanhshrink were not vectorised until this).

Numba >= 0.62 has no SVML: ``math.exp`` and friends inside a loop stay scalar
libm calls (PERF-NOTES: ten times slower than torch). Everything here is
branch-free arithmetic -- range reduction, a polynomial, the power of two built
from exponent bits -- so LLVM turns a loop over it into packed ymm/zmm code.
Edges (NaN, +-inf, overflow, underflow) are handled by selects, never branches.

Each public function is a Python stub with a Numba ``@overload`` that picks the
float32 or float64 implementation by argument type, so kernels write one
formula for both dtypes and float32 stays float32 (every constant is pre-cast
to the dtype; ``cst(x, v)`` does the same for kernel constants).

Measured maximum errors (``tests/test_numba_math.py`` measures and asserts
them; "rel" = max |a - r|/|r| over wide random ranges plus edges, r the
float64/libm value rounded to the dtype, so float32 figures include that
final rounding; 1 float32 ULP is 6e-8..1.2e-7):

==========  ============================  ===============  ===============
function    domain                        float32 max rel  float64 max rel
==========  ============================  ===============  ===============
exp         all (0 / inf / subnormal ok)  1.2e-7           2.2e-16
expm1       all                           1.2e-7           2.4e-16
expm1_neg   <= 0 (x > 0 gives 0)          1.2e-7           2.1e-16
log         positive                      1.2e-7           2.2e-16
log1p       >= -1                         1.2e-7           2.2e-16
tanh        all                           1.9e-7           4.3e-16
erf         all                           3.3e-7           2.6e-15
erfc        all, relative in the tail     3.5e-7           1.4e-14
phi         all, relative in the tail     3.5e-7           1.8e-13 (*)
sigmoid     all                           2.1e-7           2.8e-16
softplus    all                           1.7e-7           4.2e-16
tanhshrink  all                           4.2e-7           6.7e-16
==========  ============================  ===============  ===============

(*) against erfc(-x/sqrt2) in float64, whose own rounding of x/sqrt2 costs
up to ~x*x*eps; phi itself splits x*x exactly.
"""

from __future__ import annotations

import hashlib
import inspect
import math

import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.core import cgutils
from numba.core.extending import intrinsic, overload, register_jitable

__all__ = ["exp", "expm1", "expm1_neg", "log", "log1p", "tanh", "erf", "erfc", "sigmoid", "softplus", "phi", "normpdf", "sigmoid2", "tanhshrink", "gauss", "exp_hilo", "exp_parts", "exp_up", "exp_neg", "tail_scale", "mul_sigmoid_hilo", "silu_fwd", "silu_grad", "mul_phi", "gelu_dphi", "sigmoid_hilo", "softplus_hilo", "two_prod", "fma", "cst", "mul0", "is_f32"]


# ---------------------------------------------------------------- bit casts
@intrinsic
def _as_int(typingctx, x):
    """Reinterpret the bits of a float as the signed integer of the same width."""
    if x == types.float32:
        sig, ity = types.int32(types.float32), ir.IntType(32)
    elif x == types.float64:
        sig, ity = types.int64(types.float64), ir.IntType(64)
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ity)

    return sig, codegen


@intrinsic
def _as_f32(typingctx, i):
    if not isinstance(i, types.Integer):
        return None
    sig = types.float32(i)

    def codegen(context, builder, signature, args):
        v = context.cast(builder, args[0], signature.args[0], types.int32)
        return builder.bitcast(v, ir.FloatType())

    return sig, codegen


# elements per block of the float32 loops in stages (gelu_fwd_staged, softplus_fwd_staged)
GST = 256


@intrinsic
def _gelu_scratch(typingctx):
    """A pointer to 6 * GST float32 on the stack of the function it is compiled
    into (an alloca in its entry block, 32-byte aligned): the buffers of
    gelu_fwd_staged (softplus_fwd_staged uses the first), without a heap
    allocation per call."""
    sig = types.CPointer(types.float32)()

    def codegen(context, builder, signature, args):
        ptr = cgutils.alloca_once(builder, ir.FloatType(), size=6 * GST)
        ptr.align = 32
        return ptr

    return sig, codegen


@intrinsic
def _as_f64(typingctx, i):
    if not isinstance(i, types.Integer):
        return None
    sig = types.float64(i)

    def codegen(context, builder, signature, args):
        v = context.cast(builder, args[0], signature.args[0], types.int64)
        return builder.bitcast(v, ir.DoubleType())

    return sig, codegen


def _half_intrinsic(bits):
    # floor(k/2) as an arithmetic shift in the lane width. Written in numba,
    # `k >> 1` on the int64 that numba widens every int32 expression to came
    # out as zero-extend / 64-bit add / shift / pack sequences (9 extra ops
    # per zmm vector in the float32 exp loops).
    nbty = types.int32 if bits == 32 else types.int64

    @intrinsic
    def half(typingctx, k):
        if not isinstance(k, types.Integer):
            return None
        sig = nbty(k)

        def codegen(context, builder, signature, args):
            v = context.cast(builder, args[0], signature.args[0], nbty)
            return builder.ashr(v, ir.Constant(ir.IntType(bits), 1))

        return sig, codegen

    return half


_half32 = _half_intrinsic(32)
_half64 = _half_intrinsic(64)


@intrinsic
def _log_parts(typingctx, w):
    """(m, e, 2**-e) for w = 2**e * m, m in [sqrt(1/2), sqrt(2)), from the bits.

    e is returned as a float, 2**-e is 0 once e >= the exponent bias. For w
    positive and normal. In the lane width: written in numba, the integer
    steps ran on the int64 that numba widens int32 expressions to, and the
    float32 log1p loop ran in 8 lanes of ymm with 64-bit integer shuffles
    (softplus forward 1e5 one thread: 172 us against the Cython loop's 80).
    """
    if w == types.float32:
        bits, mant, bias, one, sqrt_half, fty = 32, 23, 127, 0x3F800000, 0x3F3504F3, ir.FloatType()
    elif w == types.float64:
        bits, mant, bias, one, sqrt_half, fty = 64, 52, 1023, 0x3FF0000000000000, 0x3FE6A09E667F3BCD, ir.DoubleType()
    else:
        return None
    sig = types.UniTuple(w, 3)(w)

    def codegen(context, builder, signature, args):
        ity = ir.IntType(bits)

        def c(v):
            return ir.Constant(ity, v)

        ix = builder.add(builder.bitcast(args[0], ity), c(one - sqrt_half))
        e = builder.sub(builder.ashr(ix, c(mant)), c(bias))
        m = builder.bitcast(builder.add(builder.and_(ix, c((1 << mant) - 1)), c(sqrt_half)), fty)
        k = builder.sub(c(bias), e)
        k = builder.select(builder.icmp_signed(">", k, c(0)), k, c(0))
        scale = builder.bitcast(builder.shl(k, c(mant)), fty)
        ef = builder.sitofp(e, fty)
        return context.make_tuple(builder, signature.return_type, (m, ef, scale))

    return sig, codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a*b + c with one rounding (llvm.fma: one instruction on FMA hardware)."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None
    sig = a(a, a, a)

    def codegen(context, builder, signature, args):
        ty = args[0].type
        name = "llvm.fma.f32" if isinstance(ty, ir.FloatType) else "llvm.fma.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty, ty, ty]), name)
        return builder.call(fn, args)

    return sig, codegen


# --------------------------------------------------------------- constants
@register_jitable(error_model="numpy")
def mul0(a, b):
    """a*b, but 0 where either factor is 0 (the limit, not inf*0 = NaN)."""
    r = a * b
    # | not `or`: no short-circuit branch, so loops around this still vectorise
    return cst(r, 0.0) if (a == 0) | (b == 0) else r


def is_f32(x):
    """Compile-time True for float32 arguments, or arrays of float32 (a constant after typing)."""
    raise NotImplementedError("only callable from Numba code")


@overload(is_f32, inline="always")
def _ol_is_f32(x):
    flag = (x.dtype if isinstance(x, types.Array) else x) == types.float32

    def impl(x):
        return flag

    return impl


def cst(x, v):
    """``v`` as a constant of ``x``'s float type (avoids float64 promotion)."""
    raise NotImplementedError("only callable from Numba code")


@overload(cst, inline="always")
def _ol_cst(x, v):
    if isinstance(x, types.Float):
        t = x

        def impl(x, v):
            return t(v)

        return impl
    return None


# ----------------------------------------------------- per-dtype constants
# erfc tail: erfc(a) = exp(-a^2) * t * P(t), t = 1/(1 + a/2), for a >= 0.5;
# coefficients from _fitpoly.py (fit error 2.8e-9 for float32 over a <= 10.5,
# 1.4e-14 for float64 over a <= 28).
_ERFC_TAIL_F32 = (0.28208733719301377, 0.2822984472982009, 0.24446011948764523, 0.19170134969088445,
                  0.023159140130169835, 0.14174856887902676, -0.2566974118947711, 0.04920255066985728,
                  0.07396109933147231, -0.03195061546469092)
# phi(-|x|) = exp(-x*x/2) * t * P(t) / 2, t = 1/(1 + |x|*C), C = 1/(2 sqrt2)
# rounded to float32, on the whole line (|x|/sqrt2 <= 10.5): no small-argument
# series next to the tail, and no rounded x/sqrt2. P has degree 11,
# _fitpoly.fit_phi_tail(11, f32=True): float32 coefficients (halved here: they
# give P/2), fit error 4.3e-10. It replaces two degree-7 pieces (split at
# t = 0.55, fit errors 5.1e-10 and 6.9e-10) picked per lane: gcc evaluated
# both pieces and blended (16 FMAs), LLVM blended every coefficient (8 FMAs,
# 8 selects); this is 12 FMAs in one Horner chain (two chains, even and odd
# powers, were 5 % faster but cancelled: 11 ULP). float32 gelu at 1e5 on one
# thread: forward 161 -> 150 us, backward 162 -> 156 us.
# S(t) = alpha + beta*t ~ d ln(tP)/d ln t (max error 0.08 of its 1.2..2.3)
# corrects for t's rounding error. float32 only.
_PHI_TAIL_F32 = (0.2820986807346344, 0.28197115659713745, 0.2485644817352295, 0.1621801257133484,
                 0.158399298787117, -0.2723197937011719, 0.6069302558898926, -1.1752290725708008,
                 1.2256332635879517, -0.7110102772712708, 0.22243265807628632, -0.029650777578353882)
_PHI_TAIL_S = (0.980778888490985, 1.3547560995370236)
# gelu's float32 backward, phi(x) + x pdf(x): the same t, a P of degree 8 on
# |x| <= 14 (_fitpoly.fit_phi_dphi: as fit_phi_tail, but with P(1) = 1 and the
# top coefficient picked so that the float32 P(1)/2 is 1/2 exactly, gelu'(0) =
# 1/2 from both sides; unconstrained it was 1/2 - 1 ULP at x = -0): fit error
# 5.7e-8 (5.1e-8 unconstrained). No correction of t's rounding -- the
# backward's bound is 1e-6 relative and 2.4e-7 absolute
# (_registry._CANCELLING_BWD), not 4 ULP. The Cython backend's fastact_phi_d
# (_fastact_cpu.h) holds these halved.
_PHI_DPHI_F32 = (0.28208357095718384, 0.2824288606643677, 0.24269142746925354, 0.20438601076602936,
                 -0.030742838978767395, 0.2841036319732666, -0.49245455861091614, 0.28706857562065125,
                 -0.059564683586359024)
_ERFC_TAIL_F64 = (0.28209479185067354, 0.28209478596710325, 0.24683313773314394, 0.17630539319341423,
                  0.0837969537429322, -0.004860455373361965, -0.05381675258415669, -0.0672016515639436,
                  0.04260152355382511, -0.05885862199464925, 0.21264493414825886, -0.10014740428736117,
                  -0.19112428641591414, 0.10890353017172892, 0.16603021469383988, -0.07021664897217428,
                  -0.15011713960577672, 0.03125235090672787, 0.1365994387782483, -0.018482335781632397,
                  -0.1329981364090858, 0.10258425718844706, -0.023918409574828194)

# (x - tanh x)/x^3 as a polynomial in x^2 on |x| <= 1 (_fitpoly.fit_tanhshrink;
# fit error 5.7e-9 float32, 6.7e-16 float64).
_TANHSHRINK_F32 = (0.3333333314218495, -0.133333092993745, 0.053963205367326364, -0.02182832614059469,
                   0.008694428049327107, -0.0032018741006155952, 0.0009199668306444121, -0.00014179554321511683)
_TANHSHRINK_F64 = (0.33333333333333326, -0.13333333333330682, 0.05396825396627332, -0.021869488477589568,
                   0.008863234621243865, -0.0035921195019091023, 0.0014557817123675937, -0.0005898026415413137,
                   0.00023844370376852977, -9.53914076182684e-05, 3.67778324044431e-05, -1.287364982227659e-05,
                   3.69020311628293e-06, -7.360571416045797e-07, 7.374065684175237e-08)


def _taylor_expq(n):
    # (e^r - 1 - r)/r^2 = sum_{k>=0} r^k/(k+2)!; on |r| <= ln2/2 the truncated
    # Taylor series is already within an ULP (float32: 6 terms, float64: 12).
    from math import factorial

    return tuple(1.0 / factorial(k + 2) for k in range(n))


def _atanh_r(n):
    # log(1+f) = f - s*(f - R(s^2)), s = f/(2+f), R = sum_{k>=1} 2 s^(2k)/(2k+1)
    return tuple(2.0 / (2 * k + 1) for k in range(1, n + 1))


def _erf_taylor(n):
    # erf(a) = 2/sqrt(pi) * sum_k (-1)^k a^(2k+1) / (k! (2k+1)), used for a < 0.5
    from math import factorial, pi, sqrt

    return tuple(2.0 / sqrt(pi) * (-1) ** k / (factorial(k) * (2 * k + 1)) for k in range(n))


_SPECS = {
    "f32": dict(
        T=np.float32, I=np.int32, as_float=_as_f32, half=_half32, mant=23, bias=127,
        magic=1.5 * 2.0**23, exp_lo=-104.0, exp_hi=89.0, em1_lo=-30.0,
        ln2hi=0.693145751953125, ln2lo=1.428606765330187e-06,
        expq=_taylor_expq(6), logr=_atanh_r(4), erf_small=_erf_taylor(8),
        erfc_tail=_ERFC_TAIL_F32, phi_tail=_PHI_TAIL_F32, phi_dphi=_PHI_DPHI_F32, tanhshrink=_TANHSHRINK_F32, erfc_max=10.5, split_mask=-4096,
        tanh_max=9.5,
        min_normal=float(np.finfo(np.float32).tiny),
    ),
    "f64": dict(
        T=np.float64, I=np.int64, as_float=_as_f64, half=_half64, mant=52, bias=1023,
        magic=1.5 * 2.0**52, exp_lo=-746.0, exp_hi=710.0, em1_lo=-60.0,
        ln2hi=6.93147180369123816490e-01, ln2lo=1.90821492927058770002e-10,
        expq=_taylor_expq(12), logr=_atanh_r(10), erf_small=_erf_taylor(13),
        erfc_tail=_ERFC_TAIL_F64, phi_tail=None, phi_dphi=None, tanhshrink=_TANHSHRINK_F64, erfc_max=27.5, split_mask=-(2**27),
        tanh_max=19.5,
        min_normal=float(np.finfo(np.float64).tiny),
    ),
}


# error_model='numpy' matters most: with numba's default ('python') every
# division gets a zero check that can raise, the helper becomes an
# out-of-line call returning a status, and the loop around it stays scalar
# (measured on erf/erfc/phi/softplus_hilo). IR-level inlining on top keeps
# LLVM from leaving the bigger helpers as calls.
JIT_OPTS = {"error_model": "numpy", "fastmath": {"contract"}}


def own_names(fns, tag):
    """Name each of a factory's closures after its variant (``tag``).

    Numba names a compiled function by its qualname and a counter of the
    process (``B2v4``), not by the constants it closes over. Two closures of
    one factory with the same argument types -- _build's float32 and float64
    pow2, two Horner polynomials, _tab's span overloads for tanh and sigmoid
    -- compiled in two processes can get the same symbol; loaded from the
    cache into one process, the first one loaded served both (2026-12-02:
    tanh's forward ran sigmoid's table after a test run had filled the
    cache). With the variant in the qualname the symbols differ.
    """
    for f in fns:
        f.__qualname__ = f.__qualname__.replace("<locals>", tag)
    return fns


def _inline(fn):
    # a fresh decorator each time: register_jitable pops 'inline' from its kwargs
    return register_jitable(**JIT_OPTS)(fn)


def _inline_ir(fn):
    # inlined by numba itself: LLVM's inliner left phi_tail_parts out of line
    # (the loop then stayed scalar, 16x slower) once its body grew.
    return register_jitable(inline="always", **JIT_OPTS)(fn)


def _build(spec):
    """Return the float32 or float64 implementations as plain Python functions.

    They close over constants already cast to the dtype, so Numba types every
    literal as that dtype; overloads below hand them to Numba.
    """
    T, I = spec["T"], spec["I"]
    tag = np.dtype(T).name
    as_float = spec["as_float"]
    half = spec["half"]
    MANT = I(spec["mant"])
    BIAS = I(spec["bias"])
    MAGIC = T(spec["magic"])
    MAGIC_BITS = I(np.array(spec["magic"], dtype=T).view(I))
    EXP_LO, EXP_HI, EM1_LO = T(spec["exp_lo"]), T(spec["exp_hi"]), T(spec["em1_lo"])
    TANH_MAX = T(spec["tanh_max"])
    LOG2E = T(1.4426950408889634)
    LN2HI, LN2LO = T(spec["ln2hi"]), T(spec["ln2lo"])
    EXPQ = tuple(T(c) for c in spec["expq"])[::-1]
    LOGR = tuple(T(c) for c in spec["logr"])[::-1]
    ERF_SMALL = tuple(T(c) for c in spec["erf_small"])[::-1]
    ERFC_TAIL = tuple(T(c) for c in spec["erfc_tail"])[::-1]
    TANHSHRINK = tuple(T(c) for c in spec["tanhshrink"])[::-1]
    SPLIT_MASK = I(spec["split_mask"])
    ZERO, HALF, ONE, TWO = T(0), T(0.5), T(1), T(2)
    NEG0 = T(-0.0)
    INF, NAN = T(np.inf), T(np.nan)
    ERF_SPLIT = T(0.5)
    ERFC_MAX = T(spec["erfc_max"])
    GAUSS_MAX = T(spec["erfc_max"] * 1.5)
    INV_SQRT2 = T(0.7071067811865476)
    HALF_INV_SQRT2 = T(0.3535533905932738)
    TAIL_S = I(26 if spec["mant"] == 23 else 64)
    TAIL_INV = T(2.0 ** -(26 if spec["mant"] == 23 else 64))
    INV_SQRT_2PI = T(0.3989422804014327)

    # Straight-line Horner code, generated per coefficient tuple: a loop over
    # a constant tuple was not always unrolled, and an inner loop left in the
    # body keeps LLVM from vectorising the element loop (erf/phi were scalar).
    _hcache = {}

    def _generated(kind, key, coeffs, body):
        # h(t) from body (straight-line code ending in acc) over C0, C1, ...
        # = coeffs, once per key, named after its kind and key (own_names).
        if key not in _hcache:
            g = {f"C{i}": c for i, c in enumerate(coeffs)}
            exec("def h(t):\n" + body + "    return acc\n", g)
            g["h"].__qualname__ = f"{kind}_{tag}_" + hashlib.sha256(repr(key).encode()).hexdigest()[:12]
            _hcache[key] = _inline(g["h"])
        return _hcache[key]

    def make_horner(coeffs):
        # coeffs highest degree first
        body = "    acc = C0\n" + "".join(f"    acc = acc * t + C{i}\n" for i in range(1, len(coeffs)))
        return _generated("horner", tuple(float(c) for c in coeffs), coeffs, body)

    def make_horner_on(coeffs):
        # h(a, t): make_horner's chain continued from a (coeffs highest degree first)
        key = ("on",) + tuple(float(c) for c in coeffs)
        if key not in _hcache:
            g = {f"C{i}": c for i, c in enumerate(coeffs)}
            body = "    acc = a\n" + "".join(f"    acc = acc * t + C{i}\n" for i in range(len(coeffs)))
            exec("def h(a, t):\n" + body + "    return acc\n", g)
            g["h"].__qualname__ = f"horner_on_{tag}_" + hashlib.sha256(repr(key).encode()).hexdigest()[:12]
            _hcache[key] = _inline(g["h"])
        return _hcache[key]

    def make_estrin(coeffs):
        # The polynomial of make_horner (coeffs highest degree first) in pieces
        # of t**2 (Estrin's scheme): pairs c_2j + t c_2j+1, then Horner in t**2
        # over the pairs -- half the chain of dependent FMAs. For exp's bracket
        # (H_EXPQ): its chain bound the exp-based loops by its latency on an
        # AMD EPYC (Zen 2, AVX2), as the Cython backend's (_scalar.pxi,
        # _expm1_q). 1e5 float32 one thread: silu backward 127 -> 116 us,
        # sigmoid 81 -> 73, tanh 77 -> 69, mish 137 -> 126.
        up = list(coeffs)[::-1]  # lowest degree first
        pairs = [f"C{i} + t * C{i + 1}" if i + 1 < len(up) else f"C{i}" for i in range(0, len(up), 2)]
        body = "    t2 = t * t\n" + f"    acc = {pairs[-1]}\n" + "".join(f"    acc = acc * t2 + ({p})\n" for p in pairs[-2::-1])
        return _generated("estrin", ("estrin",) + tuple(float(c) for c in coeffs), up, body)

    H_EXPQ, H_LOGR = make_estrin(EXPQ), make_horner(LOGR)
    H_ERF_SMALL, H_ERFC_TAIL = make_horner(ERF_SMALL), make_horner(ERFC_TAIL)
    H_TANHSHRINK = make_horner(TANHSHRINK)
    PHI_TAIL = spec["phi_tail"]
    # The backward's P(t)/2 (_PHI_DPHI_F32) as L(t) + t**4 H(t), four and five
    # coefficients in two Horner chains side by side (the Cython backend's
    # _phi_d): one chain bound gelu's loops by its latency on an AMD EPYC
    # (Zen 2, AVX2). The forward keeps its one chain: split, it reached 5 ULP
    # (x = -2.5076).
    PHI_DPHI = spec["phi_dphi"]
    H_DPHI_LO = make_horner(tuple(T(0.5 * c) for c in PHI_DPHI[:4])[::-1]) if PHI_DPHI else None
    H_DPHI_HI = make_horner(tuple(T(0.5 * c) for c in PHI_DPHI[4:])[::-1]) if PHI_DPHI else None
    DPHI_MAX = T(14)
    # The forward's clamp of |x| (phi_exparg): beyond it gelu(x) rounds to -0
    # or to x (at the clamp w*2**-S is 5.3e-46, below half the smallest
    # subnormal), and exp's argument stays above EXP_LO (no clamp in it).
    PHI_MAX = T(14.375)
    PT_ALPHA, PT_BETA = T(_PHI_TAIL_S[0]), T(_PHI_TAIL_S[1])

    def pow2(k):
        # 2**k for integer k in the normal range, straight from the exponent bits.
        return as_float((k + BIAS) << MANT)

    pow2 = _inline(pow2)

    def reduce(x):
        # x = k*ln2 + r, |r| <= ln2/2. The magic-number add rounds to an
        # integer without fptosi (NaN-safe, vectorises); k comes from the bits.
        t = x * LOG2E + MAGIC
        kf = t - MAGIC
        k = _as_int(t) - MAGIC_BITS
        r = (x - kf * LN2HI) - kf * LN2LO
        return k, r

    reduce = _inline(reduce)

    def expm1_r(r):
        return r + (r * r) * H_EXPQ(r)

    expm1_r = _inline(expm1_r)

    def exp_parts(hi, lo):
        # exp(hi + lo) = p * s1 * s2 with p in [sqrt(.5), sqrt(2)] and s1, s2
        # normal powers of two (two factors: 2**k alone is not representable
        # where the result overflows or is subnormal). |lo| << |hi|: lo joins
        # after the exact reduction of hi, so a hi that is exact (e.g. -a*a
        # split) loses nothing. Outside the range lo cannot matter, and once
        # hi is clamped it would no longer be small next to it.
        lo = lo if (hi >= EXP_LO) & (hi <= EXP_HI) else ZERO
        hi = EXP_LO if hi < EXP_LO else hi
        hi = EXP_HI if hi > EXP_HI else hi
        k, r = reduce(hi)
        p = ONE + expm1_r(r + lo)
        k1 = half(k)
        return p, pow2(k1), pow2(k - k1)

    exp_parts = _inline(exp_parts)

    def exp_hilo(hi, lo):
        p, s1, s2 = exp_parts(hi, lo)
        return p * s1 * s2

    exp_hilo = _inline(exp_hilo)

    def exp_up(hi, lo):
        # exp(hi + lo) * 2**TAIL_S for hi <= ~60 (float32), clamped at EXP_LO:
        # normal (no lost digits) wherever exp itself is normal or subnormal.
        lo = lo if hi >= EXP_LO else ZERO
        hi = EXP_LO if hi < EXP_LO else hi
        k, r = reduce(hi)
        return (ONE + expm1_r(r + lo)) * pow2(k + TAIL_S)

    exp_up = _inline(exp_up)

    def exp_neg(hi, lo):
        # exp(hi + lo) for hi <= 0 (or NaN): exp_up's one power of two, then
        # 2**-S. Bit for bit exp_hilo's value there (both round p*2**k once,
        # normal or subnormal), without its upper clamp and split power.
        return exp_up(hi, lo) * TAIL_INV

    exp_neg = _inline(exp_neg)

    def tail_scale(x):
        return TAIL_INV

    tail_scale = _inline(tail_scale)

    def mul_sigmoid_hilo(m, hi, lo):
        # m * s(z), z = hi + lo, with the mul0 convention (0 where m or s(z)
        # is 0). For z < 0, s(z) = p*2^k/(1 + e): m*p/(1 + e) is formed first
        # and the power of two applied last, so a product that is normal does
        # not pass through a subnormal s(z) (which keeps only a few digits:
        # silu at x = -91 lost 46 ULP that way).
        # exp(-|z|) = E * 2**-S with E = p*2**(k+S) normal down to EXP_LO.
        a = abs(hi)
        alo = lo if hi >= ZERO else -lo
        big_e = exp_up(-a, -alo)
        e = big_e * TAIL_INV
        pos = hi >= ZERO
        # |m| > 1 with e >= 2**-S: m*e directly, normal, the same value as
        # (m*E)*2**-S -- and m*E overflowed there for |m| > ~2**(maxexp - S - 1)
        # (float64 swish, beta = 1e-300, x = -1e289: -inf for -5e288)
        plain = (abs(m) > ONE) & (e >= TAIL_INV)
        me = m * e if plain else m * big_e
        num = m if pos else me  # plain-value arms: a select, not a branch
        v = num / (ONE + e)
        vs = v * TAIL_INV
        r = v if pos | plain else vs
        # below EXP_LO, exp_parts clamped: s(z)*|m| is 0 for any finite m;
        # that 0 takes m's sign, as m * s(z) does (silu(-1e4) = -0)
        return math.copysign(ZERO, m) if (hi < EXP_LO) | (m == ZERO) else r

    mul_sigmoid_hilo = _inline(mul_sigmoid_hilo)

    def silu_fwd(x):
        # x*s(x): mul_sigmoid_hilo's arms for m = z = x (no lo, |m| small
        # where s(x) is not 1), as the Cython backend's _silu_fwd_f: E =
        # exp(-|x|)*2**S; x >= 0: x/(1 + e); x < 0: x*E/(1 + e), the power of
        # two last; -0 below EXP_LO (s(x)*|x| rounds to 0 there). The same
        # bits as mul_sigmoid_hilo(x, x, 0), where the plain arm's x*e is x*E
        # scaled exactly. 1e5 float32 on an AMD EPYC (Zen 2, AVX2), one
        # thread: 125 -> 92 us (Cython 93), two: 64 -> 48.
        big_e = exp_up(-abs(x), ZERO)
        pos = x >= ZERO
        v = (x if pos else x * big_e) / (ONE + big_e * TAIL_INV)
        r = v if pos else v * TAIL_INV
        return -ZERO if x < EXP_LO else r

    silu_fwd = _inline(silu_fwd)

    def silu_grad(x):
        # s + x*s*(1-s) from one scaled exp, as the Cython backend's
        # _silu_grad_f: E = exp(-|x|)*2**S (normal down to EXP_LO), e =
        # E*2**-S, p = 1/(1 + e); x >= 0: s = p, 1-s = e*p; x < 0: s = e*p =
        # E*p*2**-S (the power of two last), 1-s = p. x is clamped at -EXP_LO
        # inside the products (x*e is 0 beyond: no inf*0 at +inf). Below
        # EXP_LO it returns -0: the true value is a subnormal there (under
        # 7.1e-44 float32, 2**-1066 float64), within the registry's absolute
        # bound. NaN stays NaN. sigmoid2 and two mul0 took 1.24x the time of
        # the Cython kernel at 1e7 float32.
        big_e = exp_up(-abs(x), ZERO)
        e = big_e * TAIL_INV
        p = ONE / (ONE + e)
        xc = -EXP_LO if x > -EXP_LO else x
        right = p * (ONE + (xc * e) * p)
        left = ((big_e * p) * (ONE + xc * p)) * TAIL_INV
        r = right if x >= ZERO else left
        return -ZERO if x < EXP_LO else r

    silu_grad = _inline(silu_grad)

    @_inline
    def exp(x):
        return exp_hilo(x, ZERO)

    @_inline
    def expm1(x):
        x = EM1_LO if x < EM1_LO else x
        x = EXP_HI if x > EXP_HI else x
        k, r = reduce(x)
        p = expm1_r(r)
        k1 = half(k)
        k2 = k - k1
        s2 = pow2(k2)
        # 2**k * (p + 1) - 1 = 2**k1 * (2**k2 * p + (2**k2 - 2**-k1)); the
        # difference is exact for |k| below the mantissa width, so no
        # cancellation for small arguments (k = 0 gives p itself).
        r = pow2(k1) * (s2 * p + (s2 - pow2(-k1)))
        return x if x == ZERO else r  # keeps the sign of zero

    @_inline
    def expm1_neg(x):
        # expm1(min(x, 0)), for callers whose argument is never positive (elu
        # and its family below 0, log_sigmoid's backward from y <= 0): from
        # a = max(min(x, 0), EM1_LO), k is in [-44, 0] (float64 [-87, 0]), so
        # 2**k is one normal power of two and s - 1 is exact while k is above
        # -(mantissa + 2); one FMA rounds s*p + (s - 1). Below that s - 1
        # rounds to -1 and s*p < ULP(1)/2. expm1's split powers and upper
        # clamp are not needed: 2 of its 3 powers of two and 3 integer ops
        # fewer. x > 0 gives +0 (expm1(0)), -0 stays -0, NaN stays NaN.
        a = ZERO if x > ZERO else x
        a = EM1_LO if a < EM1_LO else a
        k, r = reduce(a)
        s = pow2(k)
        m = fma(s, expm1_r(r), s - ONE)
        return x if x == ZERO else m

    def log1p_s(f, s):
        # log(1+f) for f in [sqrt(.5)-1, sqrt(2)-1], given s = f/(2 + f)
        z = s * s
        return f - s * (f - z * H_LOGR(z))

    log1p_s = _inline(log1p_s)

    def log_sum(ef, lm, c):
        # log(2**e * m) + c from e (as a float) and lm = log(m), ln2 in two parts
        return ef * LN2HI + ((lm + c) + ef * LN2LO)

    log_sum = _inline(log_sum)

    def log_w(w, c):
        # log(w) + c for w normal and positive; c a small correction term.
        m, ef, _ = _log_parts(w)
        f = m - ONE
        return log_sum(ef, log1p_s(f, f / (TWO + f)), c)

    log_w = _inline(log_w)

    @_inline
    def log(x):
        r = log_w(x, ZERO)
        r = -INF if x == ZERO else r
        r = NAN if x < ZERO else r
        r = x if x == INF else r
        return x if x != x else r

    @_inline
    def log1p(x):
        # log(w) + (x - (w - 1))/w for w = 1 + x rounded: (x - (w - 1)) is
        # the rounding error of 1 + x, divided by w the first-order
        # correction. As log_w, w = 2**e * m, log(m) = log1p_s(f, s), f = m - 1,
        # but one division serves both quotients (the loop is bound by
        # them: a packed division is 5-10 FMAs): q = 1/((2 + f)*m), so
        # f/(2 + f) = f*m*q and 1/w = 2**-e * (2 + f)*q (2**-e taken as 0
        # for e >= BIAS, where the correction is far below an ULP).
        w = ONE + x
        m, ef, pw = _log_parts(w)
        f = m - ONE
        d2 = TWO + f
        q = ONE / (d2 * m)
        s = f * (m * q)
        c = (x - (w - ONE)) * ((d2 * q) * pw)
        r = log_sum(ef, log1p_s(f, s), c)
        r = -INF if w == ZERO else r
        r = NAN if w < ZERO else r
        r = x if x == INF else r
        r = x if x != x else r
        return r

    def exp_neg2(a):
        # exp(-2a) = s*(1 + p) for a in [0, TANH_MAX] (callers clamp there,
        # where tanh rounds to 1: float32 8.7, float64 18.8; NaN passes in p):
        # -2a = k ln2 + r with k >= -56, so s = 2**k is one normal power and
        # s - 1 is exact while k is above -(mantissa + 1). The general exp's
        # second clamp and split power are not needed.
        k, r = reduce(-(a + a))
        return pow2(k), expm1_r(r)

    exp_neg2 = _inline(exp_neg2)

    @_inline
    def tanh(x):
        # tanh|x| = -m/(2 + m), m = expm1(-2|x|) = s*p + (s - 1); copysign
        # keeps -0.
        a = abs(x)
        s, p = exp_neg2(TANH_MAX if a > TANH_MAX else a)
        m = s * p + (s - ONE)
        return math.copysign(-m / (TWO + m), x)

    def erfc_pos(a):
        # erfc(a) for a >= ERF_SPLIT (NaN-safe, 0 for large a). exp(-a*a) is
        # formed from an exactly squared head of a, otherwise the rounding of
        # a*a would cost a*a*eps relative error in the tail.
        a = ERFC_MAX if a > ERFC_MAX else a  # beyond: erfc underflows to 0
        ah = as_float(_as_int(a) & SPLIT_MASK)
        lo = -(a - ah) * (a + ah)
        t = ONE / (ONE + HALF * a)
        return exp_neg(-(ah * ah), lo) * (t * H_ERFC_TAIL(t))

    erfc_pos = _inline(erfc_pos)

    def erf_small(a):
        return a * H_ERF_SMALL(a * a)

    erf_small = _inline(erf_small)

    @_inline
    def erf(x):
        a = abs(x)
        big = ONE - erfc_pos(a)
        small = erf_small(a)
        r = small if a < ERF_SPLIT else big
        return math.copysign(r, x)

    @_inline
    def erfc(x):
        a = abs(x)
        tail = erfc_pos(a)
        small = ONE - math.copysign(erf_small(a), x)
        big = TWO - tail if x < ZERO else tail
        r = big if a >= ERF_SPLIT else small
        return r if x == x else x

    @_inline
    def phi(x):
        # Normal CDF 0.5*erfc(-x/sqrt2) with relative accuracy in the left tail.
        # The tail's exp(-x*x/2) is split on x itself: rounding x/sqrt2 first
        # would cost |x|^2 * eps relative error.
        z = x * INV_SQRT2
        a = abs(z)
        t = ONE / (ONE + HALF * a)
        tail = HALF * gauss(x) * (t * H_ERFC_TAIL(t))
        mid = HALF + HALF * math.copysign(erf_small(a), z)
        big = ONE - tail if z > ZERO else tail
        r = big if a >= ERF_SPLIT else mid
        return r if x == x else x

    @_inline
    def tanhshrink(x):
        # x - tanh(x) cancels for small |x|: a fitted series there. From
        # |x| = 1 on, |x| - tanh|x| = (|x| - 1) + 2E/(1 + E), E = exp(-2|x|):
        # |x| - 1 is exact and both terms are >= 0, so nothing cancels (the
        # plain difference lost up to 8 ULP just above |x| = 1).
        z = x * x
        series = (x * z) * H_TANHSHRINK(z)
        a = abs(x)
        s, p = exp_neg2(TANH_MAX if a > TANH_MAX else a)  # E/(1 + E) < eps (a - 1) there
        e = s * p + s
        direct = math.copysign((a - ONE) + (e + e) / (ONE + e), x)
        return series if a < ONE else direct

    def mul3(a, b, c):
        # a*b*c with about one rounding: a*b = h + l exactly (FMA), then h*c + l*c.
        h = a * b
        return fma(h, c, fma(a, b, -h) * c)

    mul3 = _inline(mul3)

    def mul_phi_split(x):
        # x * phi(x) as m * phi(x), m = x (mul0 convention). In the left tail
        # the power of two of exp(-x*x/2) is applied after the product with
        # m, so a normal result does not pass through a subnormal phi(x)
        # (gelu at x = -13: 8 ULP).
        m = x
        z = x * INV_SQRT2
        a = abs(z)
        ax = abs(x)
        # 1 + |x|/(2 sqrt2) in one rounding (not via the rounded z)
        t = ONE / fma(ax, HALF_INV_SQRT2, ONE)
        axc = GAUSS_MAX if ax > GAUSS_MAX else ax
        ah = as_float(_as_int(axc) & SPLIT_MASK)
        lo = -HALF * ((axc - ah) * (axc + ah))
        g = -HALF * (ah * ah)
        big_e = exp_up(g, lo)
        q = HALF * (t * H_ERFC_TAIL(t))
        tail = (big_e * TAIL_INV) * q
        tail_m = mul3(m, big_e, q) * TAIL_INV
        tail_m = ZERO if g < EXP_LO else tail_m  # beyond: 0 (exp_up clamped)
        mid = HALF + HALF * math.copysign(erf_small(a), z)
        left = (z < ZERO) & (a >= ERF_SPLIT)
        ph = ONE - tail if a >= ERF_SPLIT else mid
        r = m * ph
        r = ZERO if ph == ZERO else r
        r = tail_m if left else r
        r = ZERO if m == ZERO else r
        return r if x == x else x

    mul_phi_split = _inline(mul_phi_split)

    def gelu_dphi_split(x):
        return phi(x) + mul0(x, normpdf(x))

    gelu_dphi_split = _inline(gelu_dphi_split)

    # gelu's float32 forward: the Cython backend's kernel (_scalar.pxi,
    # _phi_arg_f and the stages after it), operation for operation -- the
    # same bits (tests/test_numba_backend.py). phi(-|x|) = E * 2**-S * q:
    #  * E = exp(-x*x/2) * 2**S kept normal (|x| <= PHI_MAX: no underflow),
    #    x*x split exactly with an FMA (its error joins exp's reduced
    #    argument); exp(r) = 1 + r Q(r), Q Taylor's to r**6 by Estrin's
    #    scheme, as _exp_q;
    #  * q = t P(t)/2, t = 1/d, d = 1 + axc*C: t is rounded twice, and t*P(t)
    #    amplifies its relative error eps by S(t) = 1.2..2.3; eps is exact
    #    from two FMA residuals (1 - d is exact for d in [1, 8]) and q is
    #    corrected by S*eps.
    # axc = min(|x|, PHI_MAX). The stages are apart so that the loop in
    # stages (gelu_fwd_staged) and the one-loop form (mul_phi_one) share them.
    EQ = tuple(T(c) for c in spec["expq"])  # Q's coefficients above its 1, lowest degree first
    # P(t)/2's Horner chain in three pieces (the Cython backend's _phi_p_top,
    # _phi_p_mid, _phi_p_bot): from the top to t**8's coefficient, on to
    # t**4's, the rest
    PHI_P = tuple(T(0.5 * c) for c in PHI_TAIL) if PHI_TAIL else ()
    H_PHI_TOP = make_horner(PHI_P[8:][::-1]) if PHI_TAIL else None
    H_PHI_MID = make_horner_on(PHI_P[4:8][::-1]) if PHI_TAIL else None
    H_PHI_BOT = make_horner_on(PHI_P[:4][::-1]) if PHI_TAIL else None

    def phi_exparg(x):
        # (r, s, axc): exp's reduced argument r, the scale s = 2**(k + S) and
        # axc = min(|x|, PHI_MAX) (_phi_exparg_f)
        ax = abs(x)
        a = PHI_MAX if ax > PHI_MAX else ax
        hh = a * a
        k, r = reduce(-HALF * hh)
        return r + -HALF * fma(a, a, -hh), pow2(k + TAIL_S), a

    phi_exparg = _inline(phi_exparg)

    def phi_t(a):
        # (t, eps): t = 1/(1 + a*C) and its relative error (_phi_t_f)
        d = fma(a, HALF_INV_SQRT2, ONE)
        t = ONE / d
        e_d = fma(a, HALF_INV_SQRT2, ONE - d)  # (1 + a*C) - d
        return t, fma(-e_d, t, fma(-t, d, ONE))

    phi_t = _inline(phi_t)

    def phi_e(r, s):
        # E = exp(r) * s (_phi_e_f)
        r2 = r * r
        q2 = EQ[3] + r * (EQ[4] + r * EQ[5])
        return (ONE + r * ((ONE + r * EQ[0]) + r2 * ((EQ[1] + r * EQ[2]) + r2 * q2))) * s

    phi_e = _inline(phi_e)

    def phi_q_fin(t, p, eps):
        # q = t*p, p = P(t)/2, corrected for t's rounding (_phi_q_fin)
        q = t * p
        return fma(q, fma(PT_BETA, t, PT_ALPHA) * eps, q)

    phi_q_fin = _inline(phi_q_fin)

    def gelu_out(x, a, big_e, q):
        # x*phi(x) (_gelu_out_f): w = xc*E*q in about one rounding (plain
        # x*(E*q) had 4.4 ULP at x = -2.8), xc = x clamped like axc; left:
        # w*2**-S (power of two last: no subnormal phi on the way), right: x -
        # w*2**-S = x*(1 - phi(-|x|)). No special cases: beyond the clamp xc
        # is finite and w*2**-S rounds to 0 (not inf*0): -0 left of it, x
        # right of it (inf too); x = +-0 gives w = +0 and x - 0 keeps x's
        # sign; NaN stays NaN.
        w = mul3(math.copysign(a, x), big_e, q)
        return w * TAIL_INV if x < ZERO else fma(-w, TAIL_INV, x)

    gelu_out = _inline(gelu_out)

    def mul_phi_one(x):
        # x*phi(x), float32: the stages in one
        r, s, a = phi_exparg(x)
        t, eps = phi_t(a)
        return gelu_out(x, a, phi_e(r, s), phi_q_fin(t, H_PHI_BOT(H_PHI_MID(H_PHI_TOP(t), t), t), eps))

    mul_phi_one = _inline(mul_phi_one)

    def gelu_fwd_staged(x, out):
        # out = gelu(x) for 1-D float32 arrays: the stages one after the other
        # over blocks of GST elements, through buffers on the stack (the
        # Cython backend's _L_gelu_fwd_f_st, the same passes), each result
        # mul_phi_one's. One loop of the whole kernel was bound by its
        # dependency chains (exp's, P's, the division's) on an AMD EPYC (Zen
        # 2, AVX2): its scheduler holds too few of them in flight.
        buf = carray(_gelu_scratch(), (6, GST))
        rb, sb, ab, tb, eb, hb = buf[0], buf[1], buf[2], buf[3], buf[4], buf[5]
        n = x.shape[0]
        s0 = 0
        while s0 < n:
            m = min(n - s0, GST)
            xs, os = x[s0:s0 + m], out[s0:s0 + m]
            for i in range(m):
                rb[i], sb[i], ab[i] = phi_exparg(xs[i])
            for i in range(m):
                tb[i], eb[i] = phi_t(ab[i])
            for i in range(m):
                rb[i] = phi_e(rb[i], sb[i])
                hb[i] = H_PHI_TOP(tb[i])
            for i in range(m):
                hb[i] = H_PHI_MID(hb[i], tb[i])
            for i in range(m):
                tb[i] = phi_q_fin(tb[i], H_PHI_BOT(hb[i], tb[i]), eb[i])
            for i in range(m):
                os[i] = gelu_out(xs[i], ab[i], rb[i], tb[i])
            s0 += m

    gelu_fwd_staged = _inline(gelu_fwd_staged)

    def softplus_fwd_staged(x, out, thr, lsig):
        # For 1-D float32 arrays: out = softplus(x), x itself where x > thr
        # (_scalar.fwd_softplus_beta1), or with lsig -softplus(-x)
        # (_scalar.fwd_log_sigmoid). In two passes over blocks of GST
        # elements: e = exp(-|x|) into a buffer on the stack, then the log1p
        # and the rest. softplus_hilo(x, -0.0)'s and softplus(-x)'s operations
        # on the same values: the same bits. As the Cython backend's
        # STAGED_F32_E.
        eb = carray(_gelu_scratch(), (GST,))
        n = x.shape[0]
        s0 = 0
        while s0 < n:
            m = min(n - s0, GST)
            xs, os = x[s0:s0 + m], out[s0:s0 + m]
            if lsig:
                for i in range(m):
                    eb[i] = exp_neg(-abs(-xs[i]), ZERO)
                for i in range(m):
                    z = -xs[i]
                    r = (z if z > ZERO else ZERO) + log1p(eb[i])
                    os[i] = -(r if z == z else z)
            else:
                for i in range(m):
                    v = xs[i]
                    eb[i] = exp_neg(-abs(v), -(NEG0 if v >= ZERO else -NEG0))
                for i in range(m):
                    v = xs[i]
                    r = ((v + NEG0) if v > ZERO else ZERO) + log1p(eb[i])
                    sp = r if v == v else v
                    os[i] = v if v > thr else sp
            s0 += m

    softplus_fwd_staged = _inline(softplus_fwd_staged)

    def gelu_dphi_one(x):
        # phi(x) + x*pdf(x) from one exp, E = exp(-x*x/2) * 2**S (x*x split
        # exactly), pdf = E*2**-S/sqrt(2 pi), phi(-|x|) = E*2**-S*q, q =
        # t*P(t)/2 as in phi_tail_parts but with the shorter P (_PHI_DPHI_F32,
        # |x| <= 14) and no correction of t's rounding (the backward's bound
        # is wider). Both signs share w = q - |x|/sqrt(2 pi): x with its sign
        # bit set (-0 too) gives E*2**-S*w, the others 1 - E*2**-S*w, one FMA
        # with E*2**-S signed like -x and 1 or 0 as copysign(1/2, x) + 1/2;
        # P(1)/2 is 1/2 exactly (_PHI_DPHI_F32), so -0 and +0 both give 1/2.
        # Beyond |x| = 14 the pdf term is 0 (the result 1, or 0 where the
        # reference's is a subnormal or 0), and |x| is clamped there (no
        # inf*0). exp's argument then stays above EXP_LO: no clamp in the
        # exp, phi_e's (the forward's). NaN stays NaN. 1e5 on one thread,
        # against the forward's polynomial and correction: 168 -> 128 us (Zen
        # 2, AVX2). The Cython backend's _gelu_bwd_f operation for operation
        # (the same bits; as exp_up's 1 + expm1_r(r) the exp had differed:
        # 128.9 us against 119.5 for these operations in a model), which runs
        # in three stages over blocks of 256 (_impl.pxi, _L_gelu_bwd_f_st);
        # here one loop: in a model of it the stages took 132 us (and in
        # session 33's, through numba arrays, 123 against 112).
        ax = abs(x)
        a = DPHI_MAX if ax > DPHI_MAX else ax
        hh = a * a
        t = ONE / fma(a, HALF_INV_SQRT2, ONE)
        k, r = reduce(-HALF * hh)
        big_e = phi_e(r + -HALF * fma(a, a, -hh), pow2(k + TAIL_S))
        e_s = math.copysign(as_float(_as_int(big_e * TAIL_INV) & -I(ax <= DPHI_MAX)), -x)
        t2 = t * t
        w = fma(-a, INV_SQRT_2PI, t * fma(t2 * t2, H_DPHI_HI(t), H_DPHI_LO(t)))
        return fma(e_s, w, math.copysign(HALF, x) + HALF)

    gelu_dphi_one = _inline(gelu_dphi_one)

    if PHI_TAIL:
        mul_phi, gelu_dphi = mul_phi_one, gelu_dphi_one
    else:
        mul_phi, gelu_dphi = mul_phi_split, gelu_dphi_split

    @_inline
    def normpdf(x):
        # exp(-x*x/2)/sqrt(2pi) with the square split like erfc_pos, so the
        # tail keeps its relative accuracy.
        return gauss(x) * INV_SQRT_2PI

    @_inline
    def gauss(x):
        # exp(-x*x/2), x*x split into an exact head and a small tail.
        a = abs(x)
        a = GAUSS_MAX if a > GAUSS_MAX else a  # beyond: 0; also inf-inf
        ah = as_float(_as_int(a) & SPLIT_MASK)
        lo = -HALF * ((a - ah) * (a + ah))
        return exp_neg(-HALF * (ah * ah), lo)

    @_inline
    def sigmoid2(x):
        # (s(x), 1 - s(x)), both without cancellation.
        e = exp_neg(-abs(x), ZERO)
        d = ONE / (ONE + e)
        ed = e * d
        return (d, ed) if x >= ZERO else (ed, d)

    def sigmoid_hilo(hi, lo):
        # (s(z), 1 - s(z)) for z = hi + lo, |lo| <= ulp(hi): the tail keeps
        # lo, which a rounded z = beta*x would have lost (|z|*eps relative).
        a = abs(hi)
        alo = lo if hi >= ZERO else -lo
        e = exp_neg(-a, -alo)
        d = ONE / (ONE + e)
        ed = e * d
        return (d, ed) if hi >= ZERO else (ed, d)

    sigmoid_hilo = _inline(sigmoid_hilo)

    def softplus_hilo(hi, lo):
        a = abs(hi)
        alo = lo if hi >= ZERO else -lo
        s = hi + lo
        m = s if hi > ZERO else ZERO
        r = m + log1p(exp_neg(-a, -alo))
        return r if hi == hi else hi

    softplus_hilo = _inline(softplus_hilo)

    def two_prod(a, b):
        # a*b = hi + lo exactly (b split in two for a parameter rounded to T).
        hi = a * b
        return hi, fma(a, b, -hi)

    two_prod = _inline(two_prod)

    def sigmoid(x):
        # e = exp(-|x|) never overflows; e/(1+e) for x < 0 keeps the
        # subnormal tail that 1/(1+exp(-x)) would flush.
        e = exp_neg(-abs(x), ZERO)
        num = ONE if x >= ZERO else e
        r = num / (ONE + e)
        return r if x == x else x

    @_inline
    def softplus(x):
        # log(1 + e^x) = max(x, 0) + log1p(e^-|x|): never overflows.
        m = x if x > ZERO else ZERO
        r = m + log1p(exp_neg(-abs(x), ZERO))
        return r if x == x else x

    own_names([v for v in list(locals().values()) if inspect.isfunction(v) and v.__qualname__.startswith("_build.<locals>.")],
              tag)
    return dict(exp=exp, expm1=expm1, expm1_neg=expm1_neg, log=log, log1p=log1p, tanh=tanh, erf=erf, erfc=erfc,
                phi=phi, sigmoid=sigmoid, softplus=softplus, normpdf=normpdf, sigmoid2=sigmoid2, tanhshrink=tanhshrink,
                gauss=gauss, exp_hilo=exp_hilo, exp_parts=exp_parts, exp_up=exp_up, exp_neg=exp_neg, tail_scale=tail_scale, mul_sigmoid_hilo=mul_sigmoid_hilo, silu_fwd=silu_fwd, silu_grad=silu_grad, mul_phi=mul_phi, gelu_dphi=gelu_dphi, sigmoid_hilo=sigmoid_hilo, softplus_hilo=softplus_hilo,
                two_prod=two_prod, gelu_fwd_staged=gelu_fwd_staged if PHI_TAIL else None,
                softplus_fwd_staged=softplus_fwd_staged)


_IMPL = {types.float32: _build(_SPECS["f32"]), types.float64: _build(_SPECS["f64"])}


def _stub(name, doc):
    def f(x):
        raise NotImplementedError("only callable from Numba code")

    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc

    @overload(f, jit_options=JIT_OPTS, inline="always")
    def _ol(x):
        impls = _IMPL.get(x)
        return None if impls is None else impls[name]

    return f


def _stub2(name, doc):
    # overload insists on the implementation's argument names: reuse them.
    # Any number of arguments, all of one float type.
    import inspect

    names = list(inspect.signature(_IMPL[types.float32][name]).parameters)
    args = ", ".join(names)
    same = " or ".join(f"{names[0]} != {b}" for b in names[1:]) or "False"
    ns = {}
    exec(f"def f({args}):\n    raise NotImplementedError('only callable from Numba code')\n"
         f"def ol({args}):\n    impls = IMPL.get({names[0]})\n"
         f"    return None if impls is None or {same} else impls[NAME]\n", {"IMPL": _IMPL, "NAME": name}, ns)
    f = ns["f"]
    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc
    overload(f, jit_options=JIT_OPTS, inline="always")(ns["ol"])
    return f


exp = _stub("exp", "e**x; 0 below the underflow point, inf above overflow, NaN kept.")
expm1 = _stub("expm1", "e**x - 1 without cancellation near 0.")
expm1_neg = _stub("expm1_neg", "expm1(min(x, 0)): one power of two; +0 for x > 0.")
log = _stub("log", "Natural log of a positive normal number (0 -> -inf, <0 -> NaN).")
log1p = _stub("log1p", "log(1 + x) without cancellation near 0.")
tanh = _stub("tanh", "Hyperbolic tangent via expm1(-2|x|); odd, keeps -0.")
erf = _stub("erf", "Error function.")
erfc = _stub("erfc", "Complementary error function, relatively accurate in the right tail.")
phi = _stub("phi", "Standard normal CDF, relatively accurate in the left tail.")
sigmoid = _stub("sigmoid", "1/(1 + e**-x), no overflow.")
softplus = _stub("softplus", "log(1 + e**x), no overflow.")
normpdf = _stub("normpdf", "Standard normal density, relatively accurate in the tails.")
sigmoid2 = _stub("sigmoid2", "(s(x), 1 - s(x)), both relatively accurate.")
tanhshrink = _stub("tanhshrink", "x - tanh(x) without cancellation near 0.")
gauss = _stub("gauss", "exp(-x*x/2), relatively accurate in the tails.")
exp_hilo = _stub2("exp_hilo", "exp(hi + lo) for an argument carried as two floats.")
sigmoid_hilo = _stub2("sigmoid_hilo", "(s(z), 1 - s(z)) for z = hi + lo.")
softplus_hilo = _stub2("softplus_hilo", "log(1 + e**z) for z = hi + lo.")
exp_parts = _stub2("exp_parts", "(p, s1, s2) with exp(hi + lo) = p*s1*s2, s1 and s2 normal powers of two.")
exp_up = _stub2("exp_up", "exp(hi + lo) * 2**S (S = 26 float32, 64 float64; tail_scale(x) = 2**-S), hi <= ~60, kept normal.")
exp_neg = _stub2("exp_neg", "exp(hi + lo) for hi <= 0: exp_hilo's value, one power of two.")
tail_scale = _stub("tail_scale", "2**-S for exp_up, in x's type.")
mul_sigmoid_hilo = _stub2("mul_sigmoid_hilo", "m * sigmoid(hi + lo) without a subnormal intermediate (0 where m is 0).")
gelu_dphi = _stub("gelu_dphi", "phi(x) + x * pdf(x), the derivative of x * phi(x).")
mul_phi = _stub("mul_phi", "x * phi(x) (gelu) without a subnormal intermediate in the left tail.")
silu_fwd = _stub("silu_fwd", "x*s(x) (silu) from one scaled exp, without a subnormal intermediate.")
silu_grad = _stub("silu_grad", "s(x) + x*s(x)*(1 - s(x)) (silu's derivative) from one scaled exp.")
two_prod = _stub2("two_prod", "(hi, lo) with hi + lo = a*b exactly (FMA).")


def _staged(name, impl_name, doc, lsig=None):
    """A function (x, out, p0, p1, p2, p3) for Numba code that runs _build's
    float32 loop in stages ``impl_name`` on 1-D float32 x and out and returns
    True (gelu's: (x, out); softplus_fwd_staged: (x, out, p2, lsig)); for
    other types it does nothing and returns False. The span loops call it
    first (_kernels, STAGED_OPS)."""
    def f(x, out, p0, p1, p2, p3):
        raise NotImplementedError("only callable from Numba code")

    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc

    @overload(f, jit_options=JIT_OPTS)
    def _ol(x, out, p0, p1, p2, p3):
        impl = _IMPL[types.float32][impl_name]
        if impl is not None and all(isinstance(a, types.Array) and a.dtype == types.float32 and a.ndim == 1
                                    for a in (x, out)):
            if lsig is None:
                def run(x, out, p0, p1, p2, p3):
                    impl(x, out)
                    return True
            else:
                def run(x, out, p0, p1, p2, p3):
                    impl(x, out, p2, lsig)
                    return True
            return run

        def skip(x, out, p0, p1, p2, p3):
            return False
        return skip

    return f


gelu_fwd_staged = _staged("gelu_fwd_staged", "gelu_fwd_staged",
                          "out = gelu(x) by the float32 loop in stages (mul_phi's bits).")
softplus1_fwd_staged = _staged("softplus1_fwd_staged", "softplus_fwd_staged",
                               "out = softplus(x) (beta 1, x above the threshold p2) in stages (softplus_hilo's bits).",
                               False)
log_sigmoid_fwd_staged = _staged("log_sigmoid_fwd_staged", "softplus_fwd_staged",
                                 "out = -softplus(-x) in stages (softplus' bits).", True)
