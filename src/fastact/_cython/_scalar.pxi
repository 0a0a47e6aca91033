# Scalar math of the Cython backend: one small inline function per
# activation and direction, fused over float/double.  The loops that call them
# (_generated.pxi, _impl.pxi) are one per kernel, so gcc inlines these into a
# plain counted loop and vectorises it; the transcendental calls then become
# libmvec _ZGV... calls (see _fastact_cpu.h).
#
# Rules that keep the loops vectorisable and float32 in float32:
#  * every constant is cast to <floating>, or a float32 kernel silently
#    computes in double;
#  * no branch around a libm call: compute both sides, then select with a
#    conditional expression (gcc if-converts it; a call inside a branch stops
#    vectorisation);
#  * signatures are uniform, fwd(x, a, b), bwd(g, x, a, b), bwd_y(g, y, a, b),
#    with a and b the activation's scalar parameters, so one generated loop
#    shape serves every activation.  Parameters arrive as double: comparisons
#    against them (hardtanh, threshold, shrink) are made in double, as the
#    reference makes them, so x == float32(p) lands on the same side of a kink
#    as in the float64 reference; arithmetic casts them to <floating>.
#  * float32 is computed in float32.  Where the argument of an exp-like
#    function cannot be formed exactly in float32 (beta*x, x/alpha, -x/sqrt2,
#    the gelu-tanh cubic) and its rounding would be amplified by |argument| in
#    a tail, the argument is formed in double and split_ returns its float32
#    rounding error for a first-order correction.  Only a few kernels without
#    transcendentals or needing a long series are still "wide" (double loop,
#    see WIDE in _elementwise.pxi.in).  The zeros of the gelu/silu/swish/mish
#    derivatives are covered by the registry's absolute bound (_CANCELLING_BWD).
# Limits at +-inf are written as explicit selects where the plain formula
# gives inf*0 or inf/inf.

cdef extern from "_fastact_cpu.h" nogil:
    float expf(float)
    float expm1f(float)
    float log1pf(float)
    float logf(float)
    float tanhf(float)
    float erff(float)
    float erfcf(float)
    float sqrtf(float)
    float fabsf(float)
    float copysignf(float, float)
    double exp(double)
    double expm1(double)
    double log1p(double)
    double log(double)
    double tanh(double)
    double erf(double)
    double erfc(double)
    double sqrt(double)
    double fabs(double)
    double copysign(double, double)
    double INFINITY
    double NAN
    int fastact_f2i(float)
    float fastact_i2f(int)
    float fastact_sqr_err(float, float)
    float fastact_fmaf(float, float, float)
    const float fastact_phi_p[12]
    const float fastact_phi_d[9]
    void fastact_transpose16f(const float*, long, float*, long)
    int FASTACT_HAVE_TRANSPOSE16
    long fastact_dot4_f32(const float*, const float*, long, double*)
    void fastact_smax_apply_f32(const float*, const float*, float*, long, float, float)

ctypedef fused floating:
    float
    double

# ---------------------------------------------------------------- math helpers

# float32 exp, expm1 and log1p are written out here rather than called from
# libmvec: inlined into the loop they vectorise to straight-line FMA code with
# no call, no spill and no special-case slow path.  Measured on the
# development machine (AVX-512, one thread, 1e5 float32 in L2): libmvec expf
# 40 us, log1pf 560 us (its AVX-512 variant falls back to scalar calls);
# these: see the note at each.  Errors against float64 on the grids of
# tests/test_cython_backend.py::test_vectorised_math_accuracy: see each note.

cdef inline float _expf_arg(float x, float lo, float* kf) noexcept nogil:
    # exp's argument reduction: k = round(x/ln2) (a whole float, in kf) by the
    # 1.5*2^23 shifter (no rint call, vectorises on SSE2 too), and r = x -
    # k*ln2 + lo in [-ln2/2, ln2/2] returned (ln2 in two parts: k*_LN2_HI is
    # exact for |k| < 256).  x must keep k in range (the callers clamp).
    cdef float k = (x * <float>1.4426950408889634 + <float>12582912.0) - <float>12582912.0
    kf[0] = k
    return ((x - k * <float>0.693145751953125) - k * <float>1.4286068203094172e-06) + lo


# exp's and expm1's Taylor brackets in pieces of r^2 (Estrin's scheme)
# instead of one Horner chain: that chain of 6-7 FMAs bound the exp-based
# loops by its latency on an AMD EPYC (Zen 2, AVX2): 1e5 float32, one
# thread, silu backward 130 -> 114 us in a C model of the loop.  The
# callers still round 1 + r Q (r + r^2 Q) once; Q's own rounding moves.

cdef inline float _exp_q(float r) noexcept nogil:
    # Q with exp(r) = 1 + r Q: 1 + r/2 + r^2/6 + ... + r^6/5040
    cdef float r2 = r * r
    cdef float q2 = <float>0.008333333333333333 + r * (<float>0.001388888888888889 + r * <float>0.0001984126984126984)
    return (<float>1 + r * <float>0.5) + r2 * ((<float>0.16666666666666666 + r * <float>0.041666666666666664) + r2 * q2)


cdef inline float _expm1_q(float r) noexcept nogil:
    # Q with expm1(r) = r + r^2 Q: 1/2 + r/6 + r^2/24 + ... + r^5/5040
    cdef float r2 = r * r
    cdef float q2 = <float>0.001388888888888889 + r * <float>0.0001984126984126984
    return (<float>0.5 + r * <float>0.16666666666666666) + r2 * ((<float>0.041666666666666664 + r * <float>0.008333333333333333) + r2 * q2)


cdef inline float _expf_reduced(float x, float lo, float* kf) noexcept nogil:
    # exp(x + lo) = 2^k * p: returns p = exp(r) and k in kf (_expf_arg), for
    # the callers below to apply 2^k as they need; exp(r) = 1 + r Q(r) by its
    # Taylor polynomial to r^7 (truncation 5e-9 relative), 1 + r _exp_q(r).
    cdef float r = _expf_arg(x, lo, kf)
    return <float>1 + r * _exp_q(r)


cdef inline float _expf_parts(float x, float lo, float* s1, float* s2) noexcept nogil:
    # exp(x + lo) = p * s1 * s2: p = exp(r) (_expf_reduced), s1 = 2^(k//2) and
    # s2 = 2^(k - k//2) exact powers of two, normal while the caller's clamp
    # keeps |k| <= 256.  NaN gives k = 0 (p carries the NaN).
    cdef float kf
    cdef float p = _expf_reduced(x, lo, &kf)
    cdef int k = <int>(kf if kf == kf else <float>0)
    cdef int k1 = k >> 1
    s1[0] = fastact_i2f((k1 + 127) << 23)
    s2[0] = fastact_i2f((k - k1 + 127) << 23)
    return p


cdef inline float _expf2(float x, float lo) noexcept nogil:
    # exp(x + lo) for a small correction lo (|lo| <= ULP(x)), e.g. the
    # rounding error of an argument formed in float32: lo joins the reduced
    # argument r, so it costs one add and no extra rounding of the result.
    # exp(x) = 2^k * exp(r) (_expf_reduced), 2^k applied as two
    # exact factors 2^(k//2) * 2^(k - k//2) so that a subnormal result is
    # rounded once and an overflowing one becomes inf.  The clamp to
    # [-110, 90] keeps k in range (exp saturates to 0 / inf beyond); NaN
    # passes through the selects and the polynomial.  Max error 1.0e-7
    # relative (<= 1 ULP), 0.12 us per 1e3 elements per thread (AVX-512).
    cdef float xc = <float>90 if x > <float>90 else x
    xc = <float>-110 if xc < <float>-110 else xc
    cdef float s1, s2
    cdef float p = _expf_parts(xc, lo, &s1, &s2)
    return (p * s1) * s2


cdef inline float _exp_up26f(float hi, float lo) noexcept nogil:
    # exp(hi + lo) * 2^26 for hi in [-104, 0] (callers clamp): the scale keeps
    # the result normal where exp itself is subnormal (x*Phi(x) at x = -13 is
    # normal, Phi(x) is not), so no digits are lost before the last product;
    # one power of two, as no overflow is possible.
    cdef float kf
    cdef float r = _expf_arg(hi, lo, &kf)
    return _exp_fin26f(r, kf)


cdef inline float _exp_fin26f(float r, float kf) noexcept nogil:
    # the second half of _exp_up26f, apart for the kernels that run in stages
    # (gelu's, log_sigmoid's backward): exp(r) * 2^(k + 26) for r and k from
    # _expf_arg, as _expf_reduced's p times one power of two
    return (<float>1 + r * _exp_q(r)) * fastact_i2f((<int>kf + (127 + 26)) << 23)


cdef inline float _negabs_arg_f(float x, float* kf) noexcept nogil:
    # the first half of _exp_negabs_up26f: exp(-|x|)'s reduced argument r
    # (returned) and k (kf), |x| clamped at 104 (NaN passes)
    cdef float ax = fabsf(x)
    return _expf_arg(-(<float>104 if ax > <float>104 else ax), <float>-0.0, kf)


cdef inline float _exp_negabs_up26f(float x) noexcept nogil:
    # exp(-|x|) * 2^26, |x| clamped at 104 (NaN passes): silu's scaled exp
    cdef float kf
    cdef float r = _negabs_arg_f(x, &kf)
    return _exp_fin26f(r, kf)


cdef inline float _expf_neg(float x) noexcept nogil:
    # exp(x) for x <= 0 (or NaN), where exp(-|x|) is exp(x): _expf's value bit
    # for bit -- both round p*2^k once, normal or subnormal, and both give 0
    # below -104 -- with one power of two (_exp_up26f's, then 2^-26 exactly
    # or into the subnormals) instead of two, and no upper clamp.
    cdef float kf
    cdef float r = _negabs_arg_f(x, &kf)
    return _expf_neg_fin(r, kf)


cdef inline float _expf_neg_fin(float r, float kf) noexcept nogil:
    # _expf_neg's second half, from _negabs_arg_f's r and k (sigmoid's forward
    # and log_sigmoid's backward run the two in stages)
    return _exp_fin26f(r, kf) * <float>1.4901161193847656e-08


cdef inline float _expf(float x) noexcept nogil:
    # exp(x); gcc folds the "+ -0.0" away (an identity, signed zeros included)
    return _expf2(x, <float>-0.0)


cdef inline float _expm1f_reduced(float x, float* kf) noexcept nogil:
    # expm1(r) for x = k ln2 + r (_expf_arg; k in kf): r + r^2 (1/2 + r/6
    # + ...), Taylor to r^7, the bracket by _expm1_q
    cdef float r = _expf_arg(x, <float>-0.0, kf)
    return r + (r * r) * _expm1_q(r)


cdef inline float _expm1f(float x) noexcept nogil:
    # expm1(x) = 2^k (q + 1) - 1, q = expm1(r) = r + r^2 (1/2 + r/6 + ...)
    # (Taylor to r^7, r from _expf_arg), formed as 2^k1 (2^k2 q +
    # (2^k2 - 2^-k1)), k1 = k//2, k2 = k - k1: the difference is exact for
    # |k| < 24, so no cancellation near 0 (k = 0 gives q itself) and the
    # powers of two stay normal.  Clamped to [-30, 89] (expm1 is -1 to
    # float32 below; inf above 88.7 from the last product).  The Numba
    # backend's expm1, the same design.  Max error 1.4 ULP; against
    # libmvec's expm1f, elu's forward 95.5 -> 87.5 us, selu's 124 -> 106,
    # celu's 225 -> 211 (1e5 float32, one thread), and the all-inputs
    # accuracy rows of those forwards the same or better.
    cdef float xc = <float>89 if x > <float>89 else x
    xc = <float>-30 if xc < <float>-30 else xc
    cdef float k
    cdef float q = _expm1f_reduced(xc, &k)
    cdef int ki = <int>(k if k == k else <float>0)
    cdef int k1 = ki >> 1
    cdef float s2 = fastact_i2f((ki - k1 + 127) << 23)
    cdef float res = fastact_i2f((k1 + 127) << 23) * (s2 * q + (s2 - fastact_i2f((127 - k1) << 23)))
    return x if x == 0 else res


cdef inline float _expm1f_neg(float x) noexcept nogil:
    # expm1(min(x, 0)), for arguments that are never positive (elu and its
    # family below 0, log_sigmoid's backward from y <= 0): clamped to
    # [-30, 0], k is in [-44, 0], so s = 2^k is one normal power of two and
    # s - 1 is exact while k >= -25; one FMA rounds s q + (s - 1) (below,
    # s - 1 rounds to -1 and s q is under half an ULP of 1).  _expm1f's
    # second power of two, its upper clamp and three integer ops are not
    # needed.  x > 0 gives +0 (expm1(0)); -0 and NaN are kept.  The Numba
    # backend's expm1_neg.
    # The clamp on the bits, so that it is two vector ops and no NaN reaches
    # k: an arithmetic shift zeroes x with its sign bit clear (+0 for x >= 0
    # and such NaNs), and as unsigned integers the floats with the sign bit
    # set grow with |x| (-inf and the other NaNs above all), so an unsigned
    # min with -30's bits is the lower clamp.  (With float selects gcc
    # constant-folded each clamped case into its own blends: 38 instructions
    # a vector against 27.)
    cdef float k
    cdef float r = _em1neg_arg_f(x, &k)
    return _em1neg_out_f(x, r, k)


cdef inline float _em1neg_arg_f(float x, float* kf) noexcept nogil:
    # _expm1f_neg's first stage (log_sigmoid's backward from y runs the two
    # in stages, _elementwise.pxi.in STAGED_F32): the clamp, and exp's
    # reduced argument r (returned) and k (kf)
    cdef int xi = fastact_f2i(x)
    cdef unsigned int u = <unsigned int>(xi & (xi >> 31))
    u = u if u < 0xC1F00000u else 0xC1F00000u
    return _expf_arg(fastact_i2f(<int>u), <float>-0.0, kf)


cdef inline float _em1neg_out_f(float x, float r, float k) noexcept nogil:
    # the second: expm1(r) as _expm1f_reduced, then s q + (s - 1)
    cdef float q = r + (r * r) * _expm1_q(r)
    cdef float s = fastact_i2f((<int>k + 127) << 23)
    cdef float res = fastact_fmaf(s, q, s - <float>1)
    return res if (x < 0) | (x > 0) else x


cdef inline float _log1pf_r(float x, float* ru) noexcept nogil:
    # log1p(x), and 1/(1 + x) in ru (softplus reuses it for sigmoid).
    # u = 1 + x rounded, c = its rounding error relative to u (log(u + e) =
    # log(u) + e/u); u = 2^k * m with m in [sqrt(1/2), sqrt(2)) from the bits;
    # log(m) = log(1 + f) = 2 atanh(s), s = f/(2 + f), written as
    # f - s*(f - 2*(s^2/3 + s^4/5 + ...)) so that the rounding of s enters
    # only the small correction (|s| <= 0.172; truncation after s^10:
    # 2e-11 relative).  One division serves s and 1/u:
    # q = 1/((2 + f)*m), s = f*m*q, 1/u = 2^-k*(2 + f)*q -- divisions are
    # what this loop is bound by (vdivps is 5-10x an FMA).  Exact for
    # |x| < 2^-25 (u = 1, c = x).  Max error 1.2e-7 relative (<= 1 ULP) on
    # the test grid.  Domain: x < sqrt2 * 2^127 (there 2^-k's bits would be
    # -inf's and c NaN); its callers pass exp(-|z|) <= 1.  A clamp for the
    # rest cost softplus 2-3 % (the Numba math module's log1p, a general
    # helper tested to FLT_MAX, has it).
    cdef float u = <float>1 + x
    cdef int ix = fastact_f2i(u) - 0x3f3504f3
    cdef int k = ix >> 23
    cdef float m = fastact_i2f((ix & 0x7fffff) + 0x3f3504f3)
    cdef float f = m - <float>1
    cdef float d2 = <float>2 + f
    cdef float q = <float>1 / (d2 * m)
    cdef float s = f * (m * q)
    cdef float rinv = (d2 * q) * fastact_i2f((127 - k) << 23)
    cdef float c = (x - (u - <float>1)) * rinv
    cdef float z = s * s
    cdef float t = z * (<float>0.6666666666666666 + z * (<float>0.4 + z * (<float>0.2857142857142857
        + z * (<float>0.2222222222222222 + z * <float>0.18181818181818182))))
    cdef float kf = <float>k
    cdef float r = kf * <float>0.693145751953125 + ((f - s * (f - t)) + (kf * <float>1.4286068203094172e-06 + c))
    ru[0] = rinv
    r = r if x < <float>INFINITY else x             # +inf (c would be inf - inf)
    r = r if u != 0 else -<float>INFINITY           # x = -1
    return r if x >= <float>-1 else <float>NAN      # x < -1 (a NaN x stays NaN)


cdef inline float _log1pf(float x) noexcept nogil:
    cdef float ru
    return _log1pf_r(x, &ru)


cdef inline floating exp_(floating x) noexcept nogil:
    if floating is float:
        return _expf(x)
    else:
        return exp(x)

cdef inline floating expneg_(floating x) noexcept nogil:
    # exp_ for x <= 0 (or NaN)
    if floating is float:
        return _expf_neg(x)
    else:
        return exp(x)

cdef inline floating expm1_(floating x) noexcept nogil:
    if floating is float:
        return _expm1f(x)
    else:
        return expm1(x)

cdef inline floating expm1neg_(floating x) noexcept nogil:
    # expm1(min(x, 0))
    if floating is float:
        return _expm1f_neg(x)
    else:
        return expm1(<double>0 if x > 0 else x)

cdef inline floating log1p_(floating x) noexcept nogil:
    if floating is float:
        return _log1pf(x)
    else:
        return log1p(x)

cdef inline floating log_(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)

cdef inline floating tanh_(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)

cdef inline floating erf_(floating x) noexcept nogil:
    if floating is float:
        return erff(x)
    else:
        return erf(x)

cdef inline floating erfc_(floating x) noexcept nogil:
    if floating is float:
        return erfcf(x)
    else:
        return erfc(x)

cdef inline floating sqrt_(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)

cdef inline floating fabs_(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)

cdef inline floating copysign_(floating x, floating y) noexcept nogil:
    if floating is float:
        return copysignf(x, y)
    else:
        return copysign(x, y)

cdef inline floating inf_(floating x) noexcept nogil:
    return <floating>INFINITY

cdef inline floating nan_to_zero_(floating r, floating x) noexcept nogil:
    # r is a product like x*s(x) that is inf*0 = NaN only at x = +-inf, where
    # the true limit is 0; a NaN input still gives NaN.
    # (copysign here stops gcc 12 from vectorising the loop; a select does not)
    return r if ((r == r) | (x != x)) else (<floating>0 if x > 0 else -(<floating>0))

cdef inline float _kept_lo_f(float hi, float lo) noexcept nogil:
    # The correction split_ keeps: beyond |128| every user saturates (exp-like
    # -> 0 / inf, sigmoid -> 0 / 1) or is linear (softplus), and lo (up to 0.5
    # ULP of hi) could flip a sign; 0 also where hi is inf or NaN
    return lo if fabsf(hi) < <float>128 else <float>0

cdef inline floating split_(double v, floating* lo) noexcept nogil:
    # v rounded to the dtype; for float32 also the rounding error, in lo.
    # float32 kernels form the argument of a transcendental (beta*x, -x/sqrt2,
    # the gelu-tanh cubic) in double, round it, evaluate the transcendental in
    # float32 and correct to first order with lo: f(z + lo) = f(z) + f'(z)*lo.
    # Without it the argument's rounding (0.5 ULP) is amplified by |z| in
    # exp-like tails (40+ ULP at z = -87) -- that is why these kernels used to
    # run entirely in double.
    cdef floating hi = <floating>v
    if floating is float:
        lo[0] = _kept_lo_f(hi, <float>(v - <double>hi))
    else:
        lo[0] = 0
    return hi

cdef inline floating expnegabs_scaled_(floating x, floating* C) noexcept nogil:
    # exp(-|x|) = result * C[0].  For x < -64 the exponent is shifted by +64
    # (exact: x + 64 is representable) and C = exp(-64), so that x*exp(x) and
    # friends stay accurate where exp(x) alone would be subnormal but the
    # product is not (float32 x in [-103, -87], float64 x in [-745, -708]).
    cdef bint big = x < -64
    C[0] = <floating>1.6038108905486378e-28 if big else <floating>1
    return expneg_(-fabs_(x) + (<floating>64 if big else <floating>0))

cdef inline floating swish_core_(floating x, floating z) noexcept nogil:
    # x * sigmoid(z), accurate down to the smallest normal result
    cdef floating C
    cdef floating e = expnegabs_scaled_(z, &C)
    cdef floating p = <floating>1 / (<floating>1 + e * C)
    # z >= 0: (x*1*p)*1 = x*p; z < 0: (x*e*p)*C -- one chain, selected operand
    return ((x * (<floating>1 if z >= 0 else e)) * p) * C

cdef inline floating swish_core_c_(floating x, floating z, floating dz) noexcept nogil:
    # swish_core_(x, z + dz) for the dz of split_: s(z + dz) = s(z)*(1 + (1 - s(z))*dz)
    cdef floating C
    cdef floating e = expnegabs_scaled_(z, &C)
    cdef floating p = <floating>1 / (<floating>1 + e * C)
    cdef floating r = x * p if z >= 0 else (x * e * p) * C
    if floating is float:
        r = r * (<floating>1 + (e * C * p if z >= 0 else p) * dz)
    return r

cdef inline floating swish_grad_core_(floating z) noexcept nogil:
    # d/dz [z*sigmoid(z)] = s + z*s*(1-s), scaled like swish_core_:
    # z >= 0: s = p, 1-s = ec*p; z < 0: s = e*p*C, 1-s = p (C = 1 for z > -64).
    # One chain on selected operands (same roundings as evaluating both sides).
    cdef floating C
    cdef floating e = expnegabs_scaled_(z, &C)
    cdef floating ec = e * C
    cdef floating p = <floating>1 / (<floating>1 + ec)
    cdef floating sa = p if z >= 0 else e * p
    cdef floating om = ec * p if z >= 0 else p
    cdef floating r = (sa * (<floating>1 + nan_to_zero_(z * om, z))) * C
    # z = -inf: e*p*(1 + -inf*0...) -> the limit 0
    return r if ((r == r) | (z != z)) else <floating>0

cdef inline floating sig_(floating x) noexcept nogil:
    # (1 or e)/(1 + e), e = exp(-|x|): the one-sided exp (never overflows) is
    # cheaper than exp(-x)'s two-sided one (1e5 float32, one thread: sigmoid
    # 45.3 -> 37.3 us), and it is the Numba backend's form.  NaN passes in e.
    cdef floating e = expneg_(-fabs_(x))
    return (<floating>1 if x >= 0 else e) / (<floating>1 + e)

cdef inline floating sig_neg_(floating x) noexcept nogil:
    # 1 - sigmoid(x) without cancellation: sigmoid(-x), as sig_.
    cdef floating e = expneg_(-fabs_(x))
    return (<floating>1 if x <= 0 else e) / (<floating>1 + e)

cdef inline floating dsig_(floating x) noexcept nogil:
    # sigmoid'(x) = s*(1-s) = e/(1+e)^2 with e = exp(-|x|): symmetric, no
    # cancellation in 1-s for large x, no overflow.
    cdef floating e = expneg_(-fabs_(x))
    cdef floating d = <floating>1 + e
    return e / (d * d)

cdef inline floating softplus_(floating z) noexcept nogil:
    # log1p(exp(z)) = max(z, 0) + log1p(exp(-|z|)): no overflow.
    cdef floating m = z if z > 0 else <floating>0
    return m + log1p_(expneg_(-fabs_(z)))

# ------------------------------------------------------------------- relu family

cdef inline floating relu_fwd(floating x, double a, double b) noexcept nogil:
    return <floating>0 if x < 0 else x

cdef inline floating relu_bwd(floating g, floating x, double a, double b) noexcept nogil:
    return g if x > 0 else <floating>0

cdef inline floating relu_bwd_y(floating g, floating y, double a, double b) noexcept nogil:
    return g if y > 0 else <floating>0

cdef inline floating relu6_fwd(floating x, double a, double b) noexcept nogil:
    return <floating>0 if x < 0 else (<floating>6 if x > 6 else x)

cdef inline floating relu6_bwd(floating g, floating x, double a, double b) noexcept nogil:
    return g if ((x > 0) & (x < 6)) else <floating>0

cdef inline floating relu6_bwd_y(floating g, floating y, double a, double b) noexcept nogil:
    return g if ((y > 0) & (y < 6)) else <floating>0

# a = negative_slope
cdef inline floating leaky_relu_fwd(floating x, double a, double b) noexcept nogil:
    return x if x > 0 else x * <floating>a

cdef inline floating leaky_relu_bwd(floating g, floating x, double a, double b) noexcept nogil:
    return g if x > 0 else g * <floating>a

cdef inline floating leaky_relu_bwd_y(floating g, floating y, double a, double b) noexcept nogil:
    return g if y > 0 else g * <floating>a

# rrelu (training) and prelu: the slope is per element / per channel and
# already in the compute dtype.
cdef inline floating rrelu_fwd(floating x, floating s) noexcept nogil:
    return x if x > 0 else x * s

cdef inline floating rrelu_bwd(floating g, floating x, floating s) noexcept nogil:
    return g if x > 0 else g * s

# a = alpha
cdef inline floating elu_fwd(floating x, double a, double b) noexcept nogil:
    cdef floating t = <floating>a * expm1neg_(x)
    return x if x > 0 else t

cdef inline floating elu_bwd(floating g, floating x, double a, double b) noexcept nogil:
    # the factor alpha*e^x first: g*alpha can overflow where the product is
    # finite.  e^x by expneg_ (one power of two, no upper clamp), the same
    # bits where it is taken (x <= 0)
    cdef floating t = g * (<floating>a * expneg_(x))
    return g if x > 0 else t

cdef inline floating elu_bwd_y(floating g, floating y, double a, double b) noexcept nogil:
    # wide for float32: y + alpha cancels for y near -alpha
    return g if y > 0 else g * (y + <floating>a)

# selu: fixed alpha and scale (a, b unused)
cdef inline floating selu_fwd(floating x, double a, double b) noexcept nogil:
    cdef floating t = <floating>1.6732632423543772 * expm1neg_(x)
    if floating is float:
        # x > 0: scale*x in double, rounded once.  float32(scale)*x rounds
        # the scale first and overflowed to inf at x = 3.2386221e38, where the
        # exact product rounds to FLT_MAX (the exhaustive accuracy run).
        return <float>(<double>x * 1.0507009873554805) if x > 0 else <float>1.0507009873554805 * t
    else:
        return <floating>1.0507009873554805 * (x if x > 0 else t)

cdef inline floating selu_bwd(floating g, floating x, double a, double b) noexcept nogil:
    # scale*alpha*e^x first (scale*alpha rounded once); g*scale*alpha
    # overflowed for |g| > 1.9e38 float32
    cdef floating gs = g * <floating>1.0507009873554805
    cdef floating t = g * (<floating>1.7580993408473766 * expneg_(x))   # elu_bwd's e^x
    return gs if x > 0 else t

cdef inline floating selu_bwd_y(floating g, floating y, double a, double b) noexcept nogil:
    # scale*alpha = 1.7580993408473766 + 5.75014648756476e-17 exactly (the two
    # doubles' product): y + hi is exact where y ~ -scale*alpha; wide for float32
    return g * <floating>1.0507009873554805 if y > 0 else g * ((y + <floating>1.7580993408473766) + <floating>5.75014648756476e-17)

# a = alpha
cdef inline floating celu_neg_(floating x, double a) noexcept nogil:
    # alpha*expm1(x/alpha) for x <= 0 and any alpha a double holds (celu_fwd's
    # part below its large-argument branch).
    # float32: x/alpha formed in double and corrected (split_): with alpha < 0
    # the argument is positive and expm1 amplifies its rounding by x/alpha;
    # expm1(q + dq) = expm1(q) + (expm1(q) + 1)*dq.  alpha*(...) in double:
    # float32 cannot hold alpha.
    cdef floating dq, q, em, t
    cdef double qd
    if floating is float:
        qd = <double>x * (1.0 / a)
        q = split_(qd, &dq)
        em = expm1_(q)
        em = em + (em + <floating>1) * dq   # finite: celu_fwd takes its large-argument branch from q = 20
        t = <floating>(a * <double>em)
        # |x/alpha| < 2^-25: alpha*expm1(q) = x*(1 + q/2) rounds to x, and q
        # may have underflowed (alpha = 1e30 gave -0 for x = -1e-30)
        t = x if fabs(qd) < 2.9802322387695312e-08 else t
    else:
        qd = x / <floating>a
        t = <floating>a * expm1_(<floating>qd)
        t = x if fabs(qd) < 5.551115123125783e-17 else t   # the same for double: 2^-54
    return t

# The loop-invariant tests below pick a faster kernel (F32_FAST, the general
# one's results bit for bit, and FAST, not quite: _elementwise.pxi.in, whose
# loops ask this first); with this off (_impl.pxi's _set_fast_kernels, for
# the tests) every loop runs the general kernel, so the two can be compared.
cdef bint _fast_kernels = True

cdef inline bint celu_alpha_pos_ok_(double a, double b) noexcept nogil:
    # 2^-100 <= alpha <= 2^100: x/alpha <= 0 where x <= 0, so celu_fwd's
    # large-argument branch is never taken, and float32 holds alpha with room
    # for x/alpha's residual: celu_fwd_pos, all float32
    return a >= 7.888609052210118e-31 and a <= 1.2676506002282294e+30

cdef inline floating celu_fwd_pos(floating x, double a, double b) noexcept nogil:
    # float32, all in float32 (the double form, celu_neg_, took 2x the time):
    # alpha = ah + al, q = x*(1/ah) <= 0, where expm1's slope e^q keeps q's
    # rounding below 0.6 ULP of the result (the Numba backend's fwd_celu).
    cdef float ah, al, inv, q, em, t
    if floating is float:
        ah = <float>a
        al = <float>(a - <double>ah)
        inv = <float>1 / ah   # loop-invariant: the loop multiplies
        q = x * inv
        em = expm1neg_(q)
        t = ah * em + al * em
        # |x/alpha| < 2^-25: alpha*expm1(q) = x*(1 + q/2) rounds to x, and q
        # may have underflowed (alpha = 1e30 gave -0 for x = -1e-30)
        t = x if fabsf(q) < <float>2.9802322387695312e-08 else t
        return x if x > 0 else t
    else:
        return x if x > 0 else celu_neg_(x, a)

cdef inline floating celu_fwd(floating x, double a, double b) noexcept nogil:
    # Any alpha (most alpha > 0 run celu_fwd_pos, FAST).  alpha < 0: for x <= 0,
    # q = x/alpha >= 0 and exp(q) grows; past q = 88.7 (float32) it overflows
    # where alpha*exp(q) need not (|alpha| < 1: alpha = -0.022, x = -2 is
    # -1.35e38).  From q = 20 (double: 40) on, expm1(q) is exp(q) to working
    # precision: float32 takes exp(q/2) = p*s1*s2 (_expf_parts), forms
    # alpha*p*p in double and then applies s1, s1, s2, s2 (exact,
    # growing from |alpha| to the result: nothing overflows before the
    # result does); double, (alpha*E)*E with E = exp(q/2).  The Numba
    # backend's fwd_celu_wide, the same design.
    cdef floating small = x if x > 0 else celu_neg_(x, a)
    cdef floating dq, q, h, p, big, e
    cdef float s1, s2
    cdef double qd
    if floating is float:
        qd = <double>x * (1.0 / a)
        q = <float>qd
        dq = <float>(qd - <double>q) if q < <float>200 else <float>0  # not split_: its lo stops at 128
        h = q * <float>0.5
        h = <float>89 if h > <float>89 else h
        h = <float>0 if h < <float>0 else h
        p = _expf_parts(h, dq * <float>0.5, &s1, &s2)
        big = (((<float>(a * <double>p * <double>p) * s1) * s1) * s2) * s2
        big = small if x > 0 else big  # x > 0: x itself (alpha > 0 gives q > 20 there)
        return big if q > <float>20 else small
    else:
        q = x / <floating>a
        e = exp_(q * <floating>0.5)
        big = (<floating>a * e) * e
        big = small if x > 0 else big
        return big if q > <floating>40 else small

cdef inline floating celu_bwd(floating g, floating x, double a, double b) noexcept nogil:
    # exp(x/alpha) amplifies the rounding of x/alpha by |x/alpha|: float32
    # forms x/alpha in double and corrects exp(q + dq) = exp(q)*(1 + dq).
    cdef floating dq, t
    cdef floating q
    if floating is float:
        q = split_(<double>x * (1.0 / a), &dq)
        t = g * (exp_(q) * (<floating>1 + dq))
    else:
        t = g * exp_(x / <floating>a)
    return g if x > 0 else t

cdef inline bint celu_alpha1_f32_ok_(double a, double b) noexcept nogil:
    # alpha = 1 (the default): x/alpha is x itself and split_'s correction 0,
    # so the kernel below gives celu_bwd's float32 results bit for bit
    return a == 1.0

cdef inline float celu_bwd_alpha1_f32_(float g, float x, double a, double b) noexcept nogil:
    return g if x > 0 else g * _expf_neg(x)   # elu_bwd's e^x

cdef inline floating celu_bwd_y(floating g, floating y, double a, double b) noexcept nogil:
    # (y + alpha)/alpha: where y ~ -alpha the sum is exact (y/alpha + 1 would
    # cancel y/alpha's rounding error); float32 calls this in double (WIDE)
    return g if y > 0 else g * ((y + <floating>a) / <floating>a)

# ------------------------------------------------------------------------ gelu
# float32 computes in float32: the forwards correct their argument's rounding
# (split_); the backwards need no correction, the registry's absolute bound
# (_CANCELLING_BWD, 2 ULP of 1.0) covers the tails where it would matter.

cdef inline float _phi_p(float t) noexcept nogil:
    # P(t)/2 of _phi_arg_f's q (fastact_phi_p, lowest degree first), one Horner
    # chain from the top: split in two chains (even and odd powers) it ran
    # 3-5 % faster but cancelled, 11 ULP in all.  gcc unrolls the constant
    # loops and folds the coefficients, as the literals they replace.  The
    # chain in three pieces (_phi_p_top, _phi_p_mid, _phi_p_bot), which the
    # forward's loop in stages runs one after the other.
    return _phi_p_bot(_phi_p_mid(_phi_p_top(t), t), t)


cdef inline float _phi_d(float t) noexcept nogil:
    # the backward's P(t)/2 (fastact_phi_d, degree 8) as L(t) + t^4 H(t),
    # four and five coefficients in two Horner chains side by side: one chain
    # bound gelu's loops by its latency on an AMD EPYC (Zen 2, AVX2)
    cdef float t2 = t * t
    cdef float hi = fastact_phi_d[8]
    cdef float lo = fastact_phi_d[3]
    cdef int k
    for k in range(7, 3, -1):
        hi = hi * t + fastact_phi_d[k]
    for k in range(2, -1, -1):
        lo = lo * t + fastact_phi_d[k]
    return fastact_fmaf(t2 * t2, hi, lo)


# Both float32 kernels below are compositions of stage functions, so that
# _impl.pxi's loops (_L_gelu_fwd_f_st, _L_gelu_bwd_f_st) can run each stage
# over a block of elements before the next, through buffers on the stack:
# the same operations on the same values, the same bits.  One loop of the
# whole kernel was bound by its dependency chains (exp's, P's, the
# division's) on an AMD EPYC (Zen 2, AVX2): its scheduler holds too few of
# them in flight; a stage's loop starts from values already computed.

cdef inline float _phi_arg_f(float x, float* s, float* t, float* eps, float* axc) noexcept nogil:
    # Phi(-|x|) = E * q * 2^-26 for float32 x, all in float32 (the forward's
    # first stages, _phi_exparg_f and _phi_t_f: returns exp's reduced
    # argument r, E = (1 + r Q(r)) * s, _phi_e_f; q from t and eps, _phi_q_f).
    #  * E = exp(-x^2/2) * 2^26 from the exact split x^2 = hh + hl (one FMA),
    #    hl joining exp's reduced argument; |x| <= 14.375 keeps it above
    #    exp's lower limit, so s is always normal.
    #  * q = t*P(t)/2 with t = 1/(1 + |x|/(2 sqrt2)) on the whole line (no
    #    rounded x/sqrt2, no small-argument series beside it): P of degree 11,
    #    fit error 4.3e-10 (relative).  The two degree-7 pieces it replaces,
    #    picked per lane (fit errors 5.1e-10, 6.9e-10), made gcc evaluate
    #    both and blend in the forward: 16 FMAs against 12 (1e5 on one
    #    thread: 169 -> 151 us).  In the backward gcc had picked the
    #    coefficients with blends (8 FMAs): 152 -> 157 us there.
    #  * t is rounded twice (the sum, the division) and t*P(t) amplifies its
    #    relative error eps by S(t) = d ln(tP)/d ln t = 1.2..2.3: eps is exact
    #    from two FMA residuals and q is corrected by S(t)*eps, S linear in t.
    # The same construction as the Numba backend's (_numba/_math.py,
    # phi_tail_parts), with this backend's exp.  |x| is clamped at 14.375
    # (_phi_exparg_f; no inf - inf), and NaN passes.
    cdef float r = _phi_exparg_f(x, s, axc)
    t[0] = _phi_t_f(axc[0], eps)
    return r


cdef inline float _phi_exparg_f(float x, float* s, float* axc) noexcept nogil:
    # stage 1a: |x| clamped (axc), exp's reduced argument r (returned) and
    # the scale s = 2^(k + 26), as _exp_fin26f's.  The clamp is 14.375:
    # beyond it gelu(x) rounds to -0 or to x (at the clamp w*2^-26 is
    # 5.3e-46, below half the smallest subnormal), and exp's argument stays
    # above -104, so neither it nor s needs a clamp of its own.  (Clamped at
    # 15.75, with s = 0 below -104, the loop took 3 more blends and a
    # compare: 1e5 on one thread 161 -> 145 us, Zen 2; the same bits except
    # gelu(x < -14.42), now -0 where it was +0.)
    cdef float ax = fabsf(x)
    cdef float a = <float>14.375 if ax > <float>14.375 else ax
    cdef float hh = a * a
    cdef float kf
    cdef float r = _expf_arg(<float>-0.5 * hh, <float>-0.5 * fastact_sqr_err(a, hh), &kf)
    s[0] = fastact_i2f((<int>kf + (127 + 26)) << 23)
    axc[0] = a
    return r


cdef inline float _phi_t_f(float a, float* eps) noexcept nogil:
    # stage 1b: t = 1/(1 + a/(2 sqrt2)) (returned) and its relative error eps
    cdef float d = fastact_fmaf(a, <float>0.3535533905932738, <float>1)
    cdef float tt = <float>1 / d
    cdef float e_d = fastact_fmaf(a, <float>0.3535533905932738, <float>1 - d)
    eps[0] = fastact_fmaf(-e_d, tt, fastact_fmaf(-tt, d, <float>1))
    return tt


cdef inline float _phi_e_f(float r, float s) noexcept nogil:
    # stage 2: E = exp(r) * s, as _exp_fin26f
    return (<float>1 + r * _exp_q(r)) * s


cdef inline float _phi_q_f(float t, float eps) noexcept nogil:
    # q = t*P(t)/2 corrected for t's rounding (_phi_arg_f)
    return _phi_q_fin(t, _phi_p(t), eps)


cdef inline float _phi_p_top(float t) noexcept nogil:
    # P's Horner chain from the top down to t^8's coefficient
    cdef float acc = fastact_phi_p[11]
    cdef int k
    for k in range(10, 7, -1):
        acc = acc * t + fastact_phi_p[k]
    return acc


cdef inline float _phi_p_mid(float acc, float t) noexcept nogil:
    # on from _phi_p_top's acc, down to t^4's coefficient
    cdef int k
    for k in range(7, 3, -1):
        acc = acc * t + fastact_phi_p[k]
    return acc


cdef inline float _phi_p_bot(float acc, float t) noexcept nogil:
    # the chain's rest, from _phi_p_mid's acc: _phi_p(t)'s value
    cdef int k
    for k in range(3, -1, -1):
        acc = acc * t + fastact_phi_p[k]
    return acc


cdef inline float _phi_q_fin(float t, float p, float eps) noexcept nogil:
    # q = t*p, p = P(t)/2, corrected for t's rounding (_phi_arg_f)
    cdef float q = t * p
    return fastact_fmaf(q, fastact_fmaf(<float>1.3547560995370236, t, <float>0.980778888490985) * eps, q)


cdef inline float _gelu_out_f(float x, float a, float E, float q) noexcept nogil:
    # the last stage, x*Phi(x): w = xc*E*q in about one rounding (xc*E exact
    # as hi + lo by an FMA; plain x*(E*q) had 4.4 ULP at x = -2.8), xc = x clamped
    # like a; then x < 0: w*2^-26 (the power of two last: no subnormal Phi
    # on the way), x >= 0: x - w*2^-26 = x*(1 - Phi(-x)), one FMA.  No
    # special cases: beyond the clamp xc is finite and w*2^-26 rounds to 0
    # (not inf*0): -0 left of it, x right of it (inf too); x = +-0 gives
    # w = +0 and x - 0 keeps x's sign; NaN stays NaN.
    cdef float xc = copysignf(a, x)
    cdef float h = xc * E
    cdef float w = fastact_fmaf(h, q, fastact_fmaf(xc, E, -h) * q)
    return w * <float>1.4901161193847656e-08 if x < 0 else fastact_fmaf(-w, <float>1.4901161193847656e-08, x)


cdef inline float _gelu_fwd_f(float x) noexcept nogil:
    # x*Phi(x), the stages in one
    cdef float s, t, eps, a
    cdef float r = _phi_arg_f(x, &s, &t, &eps, &a)
    return _gelu_out_f(x, a, _phi_e_f(r, s), _phi_q_f(t, eps))


# gelu's float32 backward, g*(Phi(x) + x*pdf(x)) from one exp, E =
# exp(-x^2/2) * 2^26 (x^2 split as in _phi_arg_f), pdf = E*2^-26/sqrt(2 pi),
# Phi(-|x|) = E*2^-26*q with q = t*P(t)/2 as in the forward, but a shorter P
# (_phi_d, degree 8, on |x| <= 14) and no correction of t's rounding (up to
# 2.3 ULP of q): the backward's bound is wider than the forward's, 1e-6
# relative and 2.4e-7 absolute (_registry, _CANCELLING_BWD).  Both signs
# share w = q - |x|/sqrt(2 pi): x with its sign bit set (-0 too) gives
# E*2^-26*w, the others 1 - E*2^-26*w, one FMA with E*2^-26 signed like -x
# and 1 or 0 as copysign(1/2, x) + 1/2; P(1)/2 is 1/2 exactly
# (fastact_phi_d), so -0 and +0 both give 1/2.  Beyond |x| = 14 the pdf term
# is 0 (the result 1, or 0 for x < -14, where the reference's is a subnormal
# or 0), and |x| is clamped there (no inf*0; exp's argument stays above
# -98, no clamp in the exp).  NaN stays NaN (0*NaN in the FMA).  1e5 on one
# thread, against the forward's polynomial and its correction of t: 177 ->
# 133 us (Zen 2, AVX2), as one loop.

cdef inline float _min_abs_f(float x, int c) noexcept nogil:
    # min(|x|, c's float) for c >= 0 as an integer min of the bit patterns
    # (NaN gives c's float): one vpminsd, where gcc turned the float select
    # into a compare and a blend for each value computed from it (4 in
    # _dphi_arg_f: a*a, its error, exp's k and r).  1e5 on one thread, the
    # backward: 124 -> 119 us (Zen 2).  The forward's first stage gained
    # nothing from it.
    cdef int i = fastact_f2i(x) & 0x7fffffff
    return fastact_i2f(i if i < c else c)


cdef inline float _dphi_arg_f(float x, float* kf, float* t) noexcept nogil:
    # stage 1 of 3: exp's reduced argument r (returned) and k (kf), t; NaN
    # x gives a = 14 here (stage 2 masks its E to 0, stage 3's w is NaN)
    cdef float a = _min_abs_f(x, 0x41600000)  # min(|x|, 14)
    cdef float hh = a * a
    t[0] = <float>1 / fastact_fmaf(a, <float>0.3535533905932738, <float>1)
    return _expf_arg(<float>-0.5 * hh, <float>-0.5 * fastact_sqr_err(a, hh), kf)


cdef inline float _dphi_es_f(float x, float r, float kf) noexcept nogil:
    # stage 2: E*2^-26 (E = _exp_fin26f), 0 beyond |x| = 14 (and for NaN)
    # by a mask -- as a select, gcc's blend cost 141 against 138 us -- and
    # signed like -x
    cdef float E = _exp_fin26f(r, kf)
    return copysignf(fastact_i2f(fastact_f2i(E * <float>1.4901161193847656e-08) & -(<int>(fabsf(x) <= <float>14))), -x)


cdef inline float _dphi_tp_f(float t) noexcept nogil:
    # stage 2: t*P(t)/2 = q
    return t * _phi_d(t)


cdef inline float _gelu_dout_f(float g, float x, float es, float q) noexcept nogil:
    # stage 3: g*(1/2 + 1/2 sign(x) + es*(q - |x|/sqrt(2 pi))), |x| clamped
    cdef float ax = fabsf(x)
    cdef float a = <float>14 if ax > <float>14 else ax
    cdef float w = fastact_fmaf(-a, <float>0.3989422804014327, q)
    return g * fastact_fmaf(es, w, copysignf(<float>0.5, x) + <float>0.5)


cdef inline float _gelu_bwd_f(float g, float x) noexcept nogil:
    # the three stages in one
    cdef float kf, t
    cdef float r = _dphi_arg_f(x, &kf, &t)
    return _gelu_dout_f(g, x, _dphi_es_f(x, r, kf), _dphi_tp_f(t))


cdef inline floating gelu_fwd(floating x, double a, double b) noexcept nogil:
    # x*Phi(x), Phi(x) = erfc(-x/sqrt2)/2: erfc keeps the relative accuracy of
    # the tiny tail for x << 0 (1 + erf(x/sqrt2) would cancel).  float32:
    # _gelu_fwd_f; float64: libm erfc.
    if floating is float:
        return _gelu_fwd_f(x)
    else:
        return nan_to_zero_(x * <floating>0.5 * erfc_(x * <floating>-0.70710678118654752440), x)

cdef inline floating gelu_bwd(floating g, floating x, double a, double b) noexcept nogil:
    cdef floating cdf, pdf
    if floating is float:
        return _gelu_bwd_f(g, x)
    else:
        cdf = <floating>0.5 * erfc_(x * <floating>-0.70710678118654752440)
        pdf = exp_(<floating>-0.5 * x * x) * <floating>0.39894228040143267794
        return g * (cdf + nan_to_zero_(x * pdf, x))

cdef inline float _gelu_tanh_2u_f(float x, float* lo) noexcept nogil:
    # 2u = A*x + B*x^3 as hi + lo, in float32 double-float arithmetic (FMA
    # error terms, A and B split into float32 hi + lo; all packed float32):
    # in the left tail sigmoid(2u) ~ exp(2u) with |2u| up to ~90, so a
    # rounded 2u costs |2u|*eps relative (125 ULP at x = -9.1).  Formed in
    # double instead (cvtps2pd both halves of the vector and back) the
    # forward took 54 us at 1e5 against the Numba backend's 42 this way.  lo
    # is 0 where split_ gives 0 (|hi| >= 128), and where x^3 overflows.
    cdef float x2 = x * x
    cdef float x2l = fastact_fmaf(x, x, -x2)
    cdef float x3 = x2 * x
    cdef float x3l = fastact_fmaf(x2, x, -x3) + x2l * x
    cdef float t1 = <float>1.5957691669464111 * x
    cdef float t1l = fastact_fmaf(<float>1.5957691669464111, x, -t1) + <float>-4.534068054340423e-08 * x
    cdef float t2 = <float>0.07135481387376785 * x3
    cdef float t2l = (fastact_fmaf(<float>0.07135481387376785, x3, -t2)
                      + (<float>0.07135481387376785 * x3l + <float>2.3988324659995897e-09 * x3))
    cdef float hi = t1 + t2                       # two-sum: hi + err = t1 + t2
    cdef float bb = hi - t1
    cdef float err = (t1 - (hi - bb)) + (t2 - bb)
    lo[0] = _kept_lo_f(hi, err + (t1l + t2l))
    return hi

cdef inline floating gelu_tanh_fwd(floating x, double a, double b) noexcept nogil:
    # (1 + tanh u)/2 = sigmoid(2u): no cancellation for x << 0.  float32: the
    # cubic as hi + lo (_gelu_tanh_2u_f), the sigmoid with split_'s
    # first-order correction; float64 plainly.
    cdef double xd = x
    cdef floating dz
    cdef floating z
    if floating is float:
        z = _gelu_tanh_2u_f(x, &dz)
    else:
        z = split_(1.5957691216057307118 * (xd + 0.044715 * xd * xd * xd), &dz)
    return nan_to_zero_(swish_core_c_(x, z, dz), x)

cdef inline floating gelu_tanh_bwd(floating g, floating x, double a, double b) noexcept nogil:
    cdef floating x2 = x * x
    cdef floating u = <floating>0.79788456080286535588 * (x + <floating>0.044715 * x2 * x)
    cdef floating s = sig_(<floating>2 * u)
    # 1 - tanh(u)^2 = 4 s (1 - s), s = sigmoid(2u)
    cdef floating sech2 = <floating>4 * dsig_(<floating>2 * u)
    cdef floating du = <floating>0.79788456080286535588 * (<floating>1 + <floating>0.134145 * x2)
    return g * (s + nan_to_zero_(<floating>0.5 * x * sech2 * du, x))

# --------------------------------------------------------------- sigmoid family

cdef inline float _sig_out_f(float x, float r, float kf) noexcept nogil:
    # sigmoid_fwd's float32 kernel, stage 2 (_elementwise.pxi.in,
    # STAGED_F32_U; stage 1 is _negabs_arg_f): e = exp(-|x|) as _expf_neg's,
    # then sig_'s quotient
    cdef float e = _expf_neg_fin(r, kf)
    return (<float>1 if x >= 0 else e) / (<float>1 + e)

cdef inline floating sigmoid_fwd(floating x, double a, double b) noexcept nogil:
    return sig_(x)

cdef inline floating sigmoid_bwd(floating g, floating x, double a, double b) noexcept nogil:
    return g * dsig_(x)

cdef inline floating sigmoid_bwd_y(floating g, floating y, double a, double b) noexcept nogil:
    return g * (y * (<floating>1 - y))

cdef inline floating log_sigmoid_fwd(floating x, double a, double b) noexcept nogil:
    # -softplus(-x) = min(x, 0) - log1p(exp(-|x|))
    cdef floating m
    if floating is float:
        return _lsig_fwd_e_f(x, _expf_negabs(x), a, b)  # its stages, composed
    m = x if x < 0 else <floating>0
    return m - log1p_(expneg_(-fabs_(x)))

cdef inline float _expf_negabs(float x) noexcept nogil:
    # exp(-|x|) (_expf_neg): stage 1 of the forwards in STAGED_F32_E
    return _expf_neg(-fabsf(x))


cdef inline float _lsig_fwd_e_f(float x, float e, double a, double b) noexcept nogil:
    # log_sigmoid_fwd's float32 kernel, stage 2 (STAGED_F32_E): from e =
    # exp(-|x|), min(x, 0) - log1p(e)
    cdef float m = x if x < 0 else <float>0
    return m - _log1pf(e)

cdef inline float _lsig_out_f(float g, float x, float r, float kf) noexcept nogil:
    # log_sigmoid_bwd's float32 kernel in two stages (_elementwise.pxi.in,
    # STAGED_F32): stage 1 is _negabs_arg_f, this the second: e = exp(-|x|)
    # as _expf_neg's, then g*sigmoid(-x) as sig_neg_
    cdef float e = _expf_neg_fin(r, kf)
    return g * ((<float>1 if x <= 0 else e) / (<float>1 + e))

cdef inline floating log_sigmoid_bwd(floating g, floating x, double a, double b) noexcept nogil:
    return g * sig_neg_(x)

cdef inline float _lsigy_out_f(float g, float y, float r, float k) noexcept nogil:
    # log_sigmoid_bwd_y's float32 kernel in stages (STAGED_F32): stage 1 is
    # _em1neg_arg_f, this the second
    return -g * _em1neg_out_f(y, r, k)

cdef inline floating log_sigmoid_bwd_y(floating g, floating y, double a, double b) noexcept nogil:
    # sigmoid(-x) = 1 - exp(y): -expm1(y) keeps y's relative accuracy where
    # y -> 0- (x large, where 1 - exp(y) would cancel). y <= 0 (a y above 0
    # is no output of log_sigmoid: it counts as 0, the limit at x = +inf)
    return -g * expm1neg_(y)

# The float32 kernels multiply by float32(1/6) where the reference divides by
# 6: a packed division bound these loops (1e5 on one thread, hardsigmoid 17
# us against 10 multiplying, hardswish 18 against 10), and the multiply adds
# at most one ULP to the result's rounding (the recorded bound is about 8).
# float64 keeps the reference's divisions.

cdef inline floating hardsigmoid_fwd(floating x, double a, double b) noexcept nogil:
    # float32: (x + 3)/6, exact near the kink at -3 where x/6 + 1/2 cancels;
    # float64: the reference's own x/6 + 1/2, so both round alike.
    cdef floating mid
    if floating is float:
        mid = (x + <floating>3) * <floating>0.16666666666666666
    else:
        mid = x / <floating>6 + <floating>0.5
    return <floating>0 if x <= -3 else (<floating>1 if x >= 3 else mid)

cdef inline floating hardsigmoid_bwd(floating g, floating x, double a, double b) noexcept nogil:
    cdef floating d
    if floating is float:
        d = g * <floating>0.16666666666666666
    else:
        d = g / <floating>6
    return d if ((x > -3) & (x < 3)) else <floating>0

cdef inline floating hardswish_fwd(floating x, double a, double b) noexcept nogil:
    if floating is float:
        return <floating>0 if x <= -3 else (x if x >= 3 else (x * (x + <floating>3)) * <floating>0.16666666666666666)
    else:
        return <floating>0 if x <= -3 else (x if x >= 3 else x * (x + <floating>3) / <floating>6)

cdef inline floating hardswish_bwd(floating g, floating x, double a, double b) noexcept nogil:
    # kinks as in the reference: 0 at x <= -3, g at x >= 3.  float32: (2x + 3)/6
    # is exact near the zero at -1.5, where x/3 + 1/2 cancels.
    cdef floating mid
    if floating is float:
        mid = (x + x + <floating>3) * <floating>0.16666666666666666
    else:
        mid = x / <floating>3 + <floating>0.5
    return <floating>0 if x <= -3 else (g * mid if x < 3 else g)

cdef inline float _silu_fwd_f(float x) noexcept nogil:
    # x*sigmoid(x) in float32 from one scaled exp: E = exp(-|x|)*2^26 stays
    # normal down to x = -104, so for x < 0 the product x*E/(1 + e) is formed
    # first and the power of two applied last -- a normal result never
    # passes through a subnormal sigmoid (the Numba backend's
    # mul_sigmoid_hilo).  One exp, one division, no two-factor 2^k.  Below
    # -104 the result rounds to -0; +inf gives inf/1; NaN passes.
    return _silu_fwd_e_f(x, _exp_negabs_up26f(x))


cdef inline float _silu_fwd_e_f(float x, float E) noexcept nogil:
    # _silu_fwd_f from its E: the float32 loop runs in two stages
    # (_elementwise.pxi.in, STAGED_F32_U), _negabs_arg_f, then _silu_out_f
    cdef bint pos = x >= 0
    cdef float v = (x if pos else x * E) / (<float>1 + E * <float>1.4901161193847656e-08)
    cdef float r = v if pos else v * <float>1.4901161193847656e-08
    return <float>-0.0 if x < <float>-104 else r


cdef inline float _silu_out_f(float x, float r, float kf) noexcept nogil:
    # silu_fwd's float32 kernel, stage 2 (STAGED_F32_U): E from stage 1's r, k
    return _silu_fwd_e_f(x, _exp_fin26f(r, kf))

cdef inline floating silu_fwd(floating x, double a, double b) noexcept nogil:
    # float64: x below -800 is clamped there (NaN passes): the result rounds
    # to -0 either way, and x*e stays finite*0, so x = -inf needs no NaN
    # fix-up (x = +inf: inf*1*1 = inf)
    if floating is float:
        return _silu_fwd_f(x)
    cdef floating xc = <floating>-800 if x < <floating>-800 else x
    return swish_core_(xc, xc)

cdef inline float _silu_grad_f(float x) noexcept nogil:
    # s + x*s*(1-s) in float32 from the scaled exp of _silu_fwd_f, E =
    # exp(-|x|)*2^26, e = E*2^-26, p = 1/(1 + e): x >= 0: s = p, 1-s = e*p;
    # x < 0: s = e*p = E*p*2^-26 (the power of two last), 1-s = p.  x is
    # clamped to +-104 inside the products (x*e is below 1e-43 beyond: no
    # inf*0 at +-inf); below -104 it returns -0 (the true value is a
    # subnormal under 7.1e-44, within the registry's absolute bound).  (The
    # derivative has a zero near x = -1.28: see _CANCELLING_BWD.)
    return _silu_grad_e_f(x, _exp_negabs_up26f(x))


cdef inline float _silu_grad_e_f(float x, float E) noexcept nogil:
    # _silu_grad_f from its E: the backward runs in two stages
    # (_elementwise.pxi.in, STAGED_F32), _negabs_arg_f, then _silu_bwd_out_f
    cdef float e = E * <float>1.4901161193847656e-08
    cdef float p = <float>1 / (<float>1 + e)
    cdef float xc = <float>104 if x > <float>104 else x
    cdef float r = p * (<float>1 + (xc * e) * p) if x >= 0 else ((E * p) * (<float>1 + xc * p)) * <float>1.4901161193847656e-08
    return <float>-0.0 if x < <float>-104 else r


cdef inline float _silu_bwd_out_f(float g, float x, float r, float kf) noexcept nogil:
    # silu_bwd's float32 kernel, stage 2 (STAGED_F32): E from stage 1's r, k
    return g * _silu_grad_e_f(x, _exp_fin26f(r, kf))

cdef inline floating silu_bwd(floating g, floating x, double a, double b) noexcept nogil:
    # s + x*s*(1-s), with s*(1-s) from dsig_ (no cancellation for x >> 0);
    # (the derivative has a zero near x = -1.28: see _CANCELLING_BWD)
    if floating is float:
        return g * _silu_grad_f(x)
    return g * swish_grad_core_(x)

# a = beta; float32 cannot hold beta exactly: beta*x is formed in double (split_)
cdef inline floating swish_fwd(floating x, double a, double b) noexcept nogil:
    cdef floating dz
    cdef floating z = split_(a * <double>x, &dz)
    return nan_to_zero_(swish_core_c_(x, z, dz), z)

cdef inline floating swish_bwd(floating g, floating x, double a, double b) noexcept nogil:
    # d/dx x*s(beta x) = s(z) + z*s(z)*(1-s(z)), z = beta*x formed in double:
    # a beta below float32's range must not become 0 (0*inf = NaN at x = inf)
    cdef floating dz
    return g * swish_grad_core_(split_(a * <double>x, &dz))

cdef inline bint swish_beta_f32_ok_(double a, double b) noexcept nogil:
    # beta exact in float32: the product of two float32 is exact in double, so
    # split_(beta*x)'s hi is float32's own product beta*x and its lo the FMA
    # residual (exact; 0 where split_ gives 0), and the kernels below give
    # swish_fwd/bwd's float32 results bit for bit without the double steps
    return <double><float>a == a

cdef inline float swish_fwd_f32_(float x, double a, double b) noexcept nogil:
    cdef float af = <float>a
    cdef float z = af * x
    cdef float dz = _kept_lo_f(z, fastact_fmaf(af, x, -z))
    return nan_to_zero_(swish_core_c_(x, z, dz), z)

cdef inline float swish_bwd_f32_(float g, float x, double a, double b) noexcept nogil:
    return g * swish_grad_core_(<float>a * x)

cdef inline floating mish_t_(floating x, floating* omt, floating* C) noexcept nogil:
    # tanh(softplus(x)) from one exp: with E = exp(x), tanh(log(1+E)) =
    # (E^2 + 2E)/(E^2 + 2E + 2).  For x >= 0 divide through by E^2 (e =
    # exp(-x)) so nothing overflows; 1 - t comes out without cancellation.
    # For x < 0 the result is t/C (see expnegabs_scaled_), C = 1 for x > -64.
    cdef floating e = expnegabs_scaled_(x, C)
    cdef floating ec = e * C[0]
    cdef floating npos = <floating>1 + <floating>2 * e
    cdef floating dpos = npos + <floating>2 * e * e
    cdef floating dneg = ec * (ec + <floating>2) + <floating>2
    cdef floating nneg = e * (ec + <floating>2)
    cdef floating num = npos if x >= 0 else nneg
    cdef floating den = dpos if x >= 0 else dneg
    omt[0] = (<floating>2 * e * e if x >= 0 else <floating>2) / den
    return num / den

cdef inline floating mish_fwd(floating x, double a, double b) noexcept nogil:
    cdef floating omt, C
    cdef floating t = mish_t_(x, &omt, &C)
    return nan_to_zero_((x * t) * C, x)

cdef inline floating mish_bwd(floating g, floating x, double a, double b) noexcept nogil:
    # t + x*s*sech^2(sp); for x < 0 both terms carry the factor C.
    # (zero of the derivative near x = -1.19: see _CANCELLING_BWD)
    cdef floating omt, C
    cdef floating tc = mish_t_(x, &omt, &C)
    cdef floating sech2 = omt * (<floating>2 - omt)
    cdef floating ce
    cdef floating e = expnegabs_scaled_(x, &ce)
    cdef floating p = <floating>1 / (<floating>1 + e * ce)
    cdef floating sc = p if x >= 0 else e * p       # sigmoid(x) / C
    cdef floating r = (tc + nan_to_zero_(x * sc * sech2, x)) * C
    return g * r

# ------------------------------------------------------------------------ tanh

cdef inline floating tanh_fwd(floating x, double a, double b) noexcept nogil:
    return tanh_(x)

cdef inline floating tanh_bwd(floating g, floating x, double a, double b) noexcept nogil:
    # 1 - tanh^2 = sech^2 = 4e/(1+e)^2, e = exp(-2|x|): 1 - t*t would cancel
    return g * (<floating>4 * dsig_(<floating>2 * x))

cdef inline floating tanh_bwd_y(floating g, floating y, double a, double b) noexcept nogil:
    return g * ((<floating>1 - y) * (<floating>1 + y))

# a = min_val, b = max_val (compared in double, see the top of the file)
cdef inline floating hardtanh_fwd(floating x, double a, double b) noexcept nogil:
    # float32 compares with af = float32(a) (nearest), which gives the same
    # result as comparing in double: if af > a, no float32 lies in [a, af);
    # if af < a, the one float32 where the tests disagree is x = af, and
    # there both return af.  Same for b.  (Saves the widening to double.)
    cdef double xd = x
    cdef floating af = <floating>a
    cdef floating bf = <floating>b
    if floating is float:
        return af if x < af else (bf if x > bf else x)
    else:
        return af if xd < a else (bf if xd > b else x)

cdef inline floating hardtanh_bwd(floating g, floating x, double a, double b) noexcept nogil:
    if floating is float:
        return g if (gt_bound_f_(x, <float>a, <double><float>a > a)
                     & le_bound_f_(x, <float>b, <double><float>b < b)) else <floating>0
    else:
        return g if ((x > a) & (x < b)) else <floating>0

cdef inline float _tanhshrink_f(float x) noexcept nogil:
    # float32 in float32, as the Numba backend's (_numba/_math.py tanhshrink):
    # |x| < 1: x^3 * P(x^2), P fitted (_fitpoly.fit_tanhshrink, 5.7e-9);
    # from 1 on |x| - tanh|x| = (|x| - 1) + 2E/(1 + E), E = exp(-2|x|): both
    # terms >= 0, nothing cancels.  NaN and +-inf pass through the second.
    cdef float z = x * x
    cdef float p = <float>-0.00014179554321511683
    p = p * z + <float>0.0009199668306444121
    p = p * z + <float>-0.0032018741006155952
    p = p * z + <float>0.008694428049327107
    p = p * z + <float>-0.02182832614059469
    p = p * z + <float>0.053963205367326364
    p = p * z + <float>-0.133333092993745
    p = p * z + <float>0.3333333314218495
    cdef float series = (x * z) * p
    cdef float a = fabsf(x)
    cdef float e = _expf_neg(-(a + a))
    cdef float d = (a - <float>1) + (e + e) / (<float>1 + e)
    cdef float direct = -d if x < 0 else d
    return series if a < <float>1 else direct

cdef inline floating tanhshrink_fwd(floating x, double a, double b) noexcept nogil:
    # x - tanh(x) cancels for small |x|: below 1/16 use the odd series
    # x^3 * P(x^2) (Taylor coefficients of x - tanh x, 7 terms reach 1e-17
    # there); above it the cancellation costs less than 1e-12 in double.
    # float32: _tanhshrink_f (x - tanh(x) in float32 would lose up to 8 ULP
    # up to |x| ~ 2; it was computed in double, 4x slower).
    if floating is float:
        return _tanhshrink_f(x)
    cdef floating x2 = x * x
    cdef floating sf = x * x2 * (<floating>0.33333333333333333 + x2 * (<floating>-0.13333333333333333
        + x2 * (<floating>0.053968253968253968 + x2 * (<floating>-0.021869488536155203
        + x2 * (<floating>0.0088632355299021966 + x2 * (<floating>-0.0035921280365724810
        + x2 * <floating>0.0014558343870513183))))))
    return sf if fabs_(x) < <floating>0.0625 else x - tanh_(x)

cdef inline floating tanhshrink_bwd(floating g, floating x, double a, double b) noexcept nogil:
    cdef floating t = tanh_(x)
    return (g * t) * t   # t*t underflowed to 0 where g*t*t is normal

# ---------------------------------------------------------------- softplus etc.

# a = beta, b = threshold.  float32: beta*x is formed in double (float32
# cannot hold beta; the rounding of beta*x is amplified by |beta*x| in the
# tails) and the transcendental corrected with split_'s dz; the threshold test
# uses the double product, as the reference does.
cdef inline floating softplus_fwd(floating x, double a, double b) noexcept nogil:
    cdef double zd = <double>x * a
    cdef floating dz
    cdef floating z = split_(zd, &dz)
    cdef floating e = expneg_(-fabs_(z))
    cdef floating m = z if z > 0 else <floating>0
    cdef floating r, ru
    if floating is float:
        # sp'(z) = sigmoid(z) = (1 or e)/(1 + e); 1/(1 + e) comes with the log1p.
        # 1/beta is a loop invariant: a multiply, not a division, per element.
        r = m + _log1pf_r(e, &ru)
        r = r + ((<floating>1 if z >= 0 else e) * ru) * dz
        return x if zd > b else <floating>(<double>r * (1.0 / a))
    else:
        r = m + log1p_(e)
        return x if zd > b else r / a

cdef inline floating softplus_bwd(floating g, floating x, double a, double b) noexcept nogil:
    cdef double zd = <double>x * a
    cdef floating dz
    cdef floating z = split_(zd, &dz)
    cdef floating e = expneg_(-fabs_(z))
    cdef floating p = <floating>1 / (<floating>1 + e)
    cdef floating s = p if z >= 0 else e * p
    if floating is float:
        s = s * (<floating>1 + (e * p if z >= 0 else p) * dz)
    cdef floating r = g * s
    return g if zd > b else r

cdef inline bint softplus_beta1_f32_ok_(double a, double b) noexcept nogil:
    # beta = 1 (the default) and a threshold float32 holds: z = beta*x is x
    # itself, split_'s correction is 0, and x > threshold can be tested in
    # float32 -- the kernels below give softplus_fwd/bwd's results bit for bit
    # without the double steps
    return a == 1.0 and <double><float>b == b

cdef inline float softplus_fwd_beta1_f32_(float x, double a, double b) noexcept nogil:
    return _softplus_fwd_e_f(x, _expf_negabs(x), a, b)

cdef inline float _softplus_fwd_e_f(float x, float e, double a, double b) noexcept nogil:
    # softplus_fwd_beta1_f32_ from e = exp(-|x|): its stage 2 (STAGED_F32_E)
    cdef float ru
    cdef float r = (x if x > 0 else <float>0) + _log1pf_r(e, &ru)
    return x if x > <float>b else r

cdef inline float softplus_bwd_beta1_f32_(float g, float x, double a, double b) noexcept nogil:
    cdef float e = _expf_neg(-fabsf(x))
    cdef float p = <float>1 / (<float>1 + e)
    return g if x > <float>b else g * (p if x >= 0 else e * p)

cdef inline floating softplus_bwd_y(floating g, floating y, double a, double b) noexcept nogil:
    # -g*expm1(-beta*y); expm1(w + dw) = expm1(w) + (expm1(w) + 1)*dw
    cdef floating dw
    cdef floating w = split_(-a * <double>y, &dw)
    cdef floating em = expm1_(w)
    if floating is float:
        em = em + ((em + <floating>1) * dw if em < inf_(em) else <floating>0)   # inf*0: keep inf
    cdef floating r = -g * em
    return g if <double>y * a > b else r

cdef inline floating softsign_fwd(floating x, double a, double b) noexcept nogil:
    cdef floating r = x / (<floating>1 + fabs_(x))
    return r if fabs_(x) != inf_(x) else (<floating>1 if x > 0 else <floating>-1)

cdef inline floating softsign_bwd(floating g, floating x, double a, double b) noexcept nogil:
    # g*r*r, r = 1/(1 + |x|): d*d overflowed past |x| = 1.8e19 (float32),
    # where g/d^2 is normal for a large g
    cdef floating r = <floating>1 / (<floating>1 + fabs_(x))
    return (g * r) * r

# a = lambd
cdef inline bint le_bound_f_(float x, float af, bint dn) noexcept nogil:
    # x <= a for float32 x, with af = float32(a) (nearest) and dn = (af <= a):
    # if af > a no float32 lies in [a, af), so x <= a <=> x < af; else x <= af.
    # (a = NaN: false, as in double; |a| beyond float32: af = +-inf, still right)
    # With dn = (af < a) the same test is x < a: x = af then lies below a
    # exactly when af does.
    return (x < af) | ((x == af) & dn)

cdef inline bint gt_bound_f_(float x, float af, bint up) noexcept nogil:
    # x > a for float32 x, af = float32(a) (nearest), up = (af > a): the
    # negation of le_bound_f_ except that NaN gives false, as in double
    return (x > af) | ((x == af) & up)

cdef inline floating hardshrink_fwd(floating x, double a, double b) noexcept nogil:
    cdef double xd = x
    cdef float af = <float>a
    cdef bint dn = <double>af <= a
    if floating is float:
        # -a <= x <= a  <=>  |x| <= a (both false for a < 0 or NaN), compared
        # in float32 with the same results as in double (le_bound_f_)
        return <floating>0 if le_bound_f_(fabsf(x), af, dn) else x
    else:
        return <floating>0 if ((xd >= -a) & (xd <= a)) else x

cdef inline floating hardshrink_bwd(floating g, floating x, double a, double b) noexcept nogil:
    cdef double xd = x
    cdef float af = <float>a
    cdef bint dn = <double>af <= a
    if floating is float:
        return <floating>0 if le_bound_f_(fabsf(x), af, dn) else g
    else:
        return <floating>0 if ((xd >= -a) & (xd <= a)) else g

cdef inline bint softshrink_f32_ok_(double a, double b) noexcept nogil:
    # lambd exact in float32: then |x| > lambd and x -+ lambd in float32 give
    # the double results (one rounding of x -+ lambd; double rounding through
    # double is innocuous for float32 +-)
    return <double><float>a == a

cdef inline float softshrink_fwd_f32_(float x, double a, double b) noexcept nogil:
    # softshrink_fwd for float32 x when softshrink_f32_ok_(a)
    cdef float af = <float>a
    cdef float r = x - (af if x > 0 else -af)
    return r if fabsf(x) > af else <float>0 * x

cdef inline floating softshrink_fwd(floating x, double a, double b) noexcept nogil:
    # x -+ lambd in double: near the kink it cancels, and float32 cannot hold lambd
    cdef double xd = x
    cdef double r = xd - (a if xd > 0 else -a)
    return <floating>r if fabs(xd) > a else <floating>0 * x

cdef inline floating softshrink_bwd(floating g, floating x, double a, double b) noexcept nogil:
    return hardshrink_bwd(g, x, a, b)

# a = threshold, b = value
# float32 compares in float32 with the double results (le_bound_f_): the
# double comparison halved the vector width (1e5: 14.5 us against relu's 7.1)
cdef inline floating threshold_fwd(floating x, double a, double b) noexcept nogil:
    if floating is float:
        return <floating>b if le_bound_f_(x, <float>a, <double><float>a <= a) else x
    else:
        return <floating>b if x <= a else x

cdef inline floating threshold_bwd(floating g, floating x, double a, double b) noexcept nogil:
    # written as the reference writes it: a NaN input passes the gradient
    if floating is float:
        return <floating>0 if le_bound_f_(x, <float>a, <double><float>a <= a) else g
    else:
        return <floating>0 if x <= a else g

# a = b (the squareplus parameter)
cdef inline floating sqp_r_(floating x, floating b) noexcept nogil:
    # sqrt(x^2 + b).  From |x| = big on (1e18 float32, 1e150 float64) in
    # units of 2^k (k = 64, 600), so that x^2 cannot overflow: b itself can
    # outweigh x^2 there (float64, b = 1e300 at x = 1e150 gave |x|, 20 % off).
    # b == 0: r = |x| exactly, also where x*x underflows.
    cdef floating ax = fabs_(x)
    cdef floating big, s, si
    if floating is float:
        big = <floating>1e18
        s = <floating>5.421010862427522e-20        # 2^-64
        si = <floating>1.8446744073709552e19       # 2^64
    else:
        big = <floating>1e150
        s = <floating>2.409919865102884e-181       # 2^-600
        si = <floating>4.149515568880993e180       # 2^600
    cdef bint far = ax >= big
    cdef floating sc = s if far else <floating>1
    cdef floating xs = ax * sc
    cdef floating r = sqrt_(xs * xs + (b * sc) * sc) * (si if far else <floating>1)
    return r if b != 0 else ax

cdef inline floating squareplus_fwd(floating x, double a, double b) noexcept nogil:
    # x < 0: (x + r)/2 cancels; b/(2(r - x)) is the same value without it.
    cdef floating bb = <floating>a
    cdef floating r = sqp_r_(x, bb)
    cdef floating pos = x * <floating>0.5 + r * <floating>0.5   # no overflow near the max
    # r - x overflows near the max: b/(2(r - x)) = ((b/2)/r) / (1 - x/r), and 0 at -inf
    cdef floating neg = ((bb * <floating>0.5) / r) / (<floating>1 - x / r)
    neg = <floating>0 if x == -inf_(x) else neg
    return pos if x >= 0 else neg

cdef inline floating squareplus_bwd(floating g, floating x, double a, double b) noexcept nogil:
    cdef floating bb = <floating>a
    cdef floating r = sqp_r_(x, bb)
    cdef floating q = (x / r if x < inf_(x) else <floating>1) if r != 0 else <floating>0
    cdef floating pos = g * ((<floating>1 + q) * <floating>0.5)
    cdef floating neg = g * ((bb / (<floating>2 * r)) / (r - x))   # r*(r-x) may overflow
    return pos if x >= 0 else neg

# The float32 loops' kernels (_elementwise.pxi.in, WIDE): x a float32 value
# in double, so x^2 + b cannot overflow (|x| <= 3.4e38) nor x^2 underflow,
# and one division each.
cdef inline double squareplus_fwd_w(double x, double a, double b) noexcept nogil:
    # x < 0: (x + r)/2 cancels; b/(2(r - x)) = (b/4)/((r - x)/2) is the same
    # value without it (0 at x = -inf; d > 0: x is 0 or at least 1.4e-45)
    cdef double r = sqrt(x * x + a)
    cdef double pos = x * 0.5 + r * 0.5
    cdef double neg = (a * 0.25) / (r * 0.5 - x * 0.5)
    return pos if x >= 0 else neg

cdef inline double squareplus_bwd_w(double g, double x, double a, double b) noexcept nogil:
    # g w, w = (1 + x/r)/2 as one quotient: x >= 0, (x/2 + r/2)/r; x < 0,
    # where 1 + x/r cancels, b/(2r(r - x)) = (b/4)/(r (r - x)/2).  w = 1/2
    # at r = 0 (x = 0, b = 0: relu's slope 1/2 at 0), 1 at x = +inf; 0 at x =
    # -inf.
    cdef double r = sqrt(x * x + a)
    cdef double num = x * 0.5 + r * 0.5
    cdef double den = r
    if not x >= 0:
        num = a * 0.25
        den = r * (r * 0.5 - x * 0.5)
    cdef double w = num / den
    w = 0.5 if r == 0 else w
    w = 1.0 if x == INFINITY else w
    return g * w

# ------------------------------------------------------------------------- glu

cdef inline floating glu_fwd_ab(floating a, floating b, double p, double q) noexcept nogil:
    # a * sigmoid(b), in the elementwise loops' form (p, q unused)
    return a * sig_(b)

cdef inline floating glu_bwd(floating g, floating a, floating b, floating* db) noexcept nogil:
    # da = g*s (returned), db = g*a*s*(1 - s); s and 1 - s from one exp, as the
    # Numba backend's sigmoid2 (sig_ and dsig_ took two: 1e5 float32 51 us,
    # torch 47).  db as (g*a)*s': g*s can underflow where db is normal, and
    # where g*a overflows (db = inf) _glu_bwd_seg computes db again in double.
    cdef floating e = expneg_(-fabs_(b))
    cdef floating p = <floating>1 / (<floating>1 + e)
    cdef floating s = p if b >= 0 else e * p
    cdef floating oms = e * p if b >= 0 else p
    db[0] = (g * a) * (s * oms)
    return g * s

# ------------------------------------------------------------- float32 tails
# A backward g*F(x) whose factor F underflows to a subnormal in float32 keeps
# only F's few remaining digits, or none where F flushes to 0, while the true
# product is normal for a large g: sigmoid_bwd at g = 1e30, x = -95 is 5.5e-12
# and came out 0.  F is normal with room to spare (e^-80 = 1.8e-35, 2^10 above
# the smallest normal) while x stays on the near side of a cut; beyond it the
# float32 loop computes the element again in double and rounds once (TAIL in
# _elementwise.pxi.in; the Numba backend's _scalar.TAIL, same cuts).
cdef inline unsigned int abs_key_(float v) noexcept nogil:
    # |v|'s order as an unsigned integer of its bits (the "abs" key of TAIL)
    return <unsigned int>fastact_f2i(v) & 0x7fffffffu

cdef inline float cut_elu_(double a) noexcept nogil:
    # F = alpha e^x: a small alpha moves the cut up by -ln|alpha| (to 0 at most)
    cdef double m = fabs(a)
    if m == 0:
        return -INFINITY
    return <float>min(0.0, -80.0 - min(0.0, log(m)))

