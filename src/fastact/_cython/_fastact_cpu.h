/* fastact Cython backend: C-level helpers shared by every ISA variant.
 *
 * 1. Vector math: glibc declares the libmvec variants (_ZGV...) only under
 *    -ffast-math, which we refuse (crtfastmath.o turns on flush-to-zero for
 *    the whole process).  Redeclaring the scalar functions with
 *    simd("notinbranch") lets gcc call the vector variants from vectorised
 *    loops with IEEE semantics intact.  setup.py defines FASTACT_MVEC only
 *    when a probe program using these declarations compiled and linked.
 * 2. CPU features, for the run-time choice of the ISA variant.
 * 3. Build facts (flags, ISA) that info() reports.
 */
#ifndef FASTACT_CPU_H
#define FASTACT_CPU_H

#include <math.h>

#if defined(FASTACT_MVEC) && defined(__x86_64__) && defined(__GNUC__)
#define FA_SIMD __attribute__((simd("notinbranch")))
FA_SIMD extern float expf(float);
FA_SIMD extern float expm1f(float);
FA_SIMD extern float log1pf(float);
FA_SIMD extern float logf(float);
FA_SIMD extern float tanhf(float);
FA_SIMD extern float erff(float);
FA_SIMD extern float erfcf(float);
FA_SIMD extern double exp(double);
FA_SIMD extern double expm1(double);
FA_SIMD extern double log1p(double);
FA_SIMD extern double log(double);
FA_SIMD extern double tanh(double);
FA_SIMD extern double erf(double);
FA_SIMD extern double erfc(double);
#define FASTACT_HAVE_MVEC 1
#else
#define FASTACT_HAVE_MVEC 0
#endif

/* Bit casts for the float32 math helpers of _scalar.pxi (exponent
 * extraction and 2^n construction).  A union is the cast gcc vectorises. */
#include <stdint.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
static inline int32_t fastact_f2i(float f) { union { float f; int32_t i; } u; u.f = f; return u.i; }
static inline float fastact_i2f(int32_t i) { union { float f; int32_t i; } u; u.i = i; return u.f; }

#if defined(__GNUC__)
#define FASTACT_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define FASTACT_NOINLINE __declspec(noinline)
#else
#define FASTACT_NOINLINE
#endif
/* softmax's backward from y, out = sign * y * (g - d), float32 (_axis.pxi's
 * _smax_bwd_apply), kept out of line: inlined into _row (which holds every
 * pass of every row kind), gcc's loop stored the g vector to the stack and
 * reloaded a pointer from it on every step, and ran 2-3x slower than this
 * loop on its own.  1e5 float32 in rows of 1000, one thread, with
 * the exact dot of the time: 41-45 -> 22-29 us (Numba 24-32); the same bits. */
static FASTACT_NOINLINE void fastact_smax_apply_f32(const float* g, const float* y, float* out, long n, float d,
                                                    float sign)
{
    for (long i = 0; i < n; i++)
        out[i] = sign * y[i] * (g[i] - d);
}

/* a*a - p exactly, for p = float32(a*a) and |a| < 2^60 (no overflow): one FMA
 * where the ISA has it, else Veltkamp/Dekker (a = ah + al, 12-bit halves,
 * every partial product exact).  Both vectorise; gelu forms exp(-x^2/2)
 * from x^2 = p + err without going through double. */
static inline float fastact_sqr_err(float a, float p)
{
#if defined(__FMA__)
    return __builtin_fmaf(a, a, -p);
#else
    float c = 4097.0f * a;
    float ah = c - (c - a);
    float al = a - ah;
    return ((ah * ah - p) + 2.0f * ah * al) + al * al;
#endif
}

/* fma(a, b, c) in float32: one instruction where the ISA has it; else in
 * double, where a*b is exact (48 bits) and only the sum is rounded, twice
 * (double, then float: off by one ULP in rare ties).  The callers use it for
 * residuals that are exact either way and for corrections a ULP cannot upset. */
static inline float fastact_fmaf(float a, float b, float c)
{
#if defined(__FMA__)
    return __builtin_fmaf(a, b, c);
#else
    return (float)((double)a * (double)b + (double)c);
#endif
}

/* gelu's float32 Phi(-|x|) = E q 2^-26 with q = t P(t)/2 (_scalar.pxi,
 * _phi_arg_f): the coefficients of P/2 (the fitted ones halved, exactly),
 * lowest degree first, each rounded from its double as the Cython literal
 * <float>c was.  _phi_p reads them from here; tests/test_numba_math.py
 * checks them against the Numba backend's _math._PHI_TAIL_F32. */
static const float fastact_phi_p[12] = {
    (float)0.1410493403673172, (float)0.14098557829856873, (float)0.12428224086761475, (float)0.0810900628566742,
    (float)0.0791996493935585, (float)-0.13615989685058594, (float)0.3034651279449463, (float)-0.5876145362854004,
    (float)0.6128166317939758, (float)-0.3555051386356354, (float)0.11121632903814316, (float)-0.014825388789176941};
/* gelu's float32 backward (_scalar.pxi, _gelu_bwd_f): P/2 of degree 8 in the
 * same t, on |x| <= 14, halved exactly, lowest degree first
 * (_numba/_fitpoly.py, fit_phi_dphi: relative least squares with P(1) = 1,
 * the top coefficient picked so that _phi_d(1) is 1/2 exactly, gelu'(0) = 1/2
 * from both sides; fit error 5.7e-8, against 5.1e-8 unconstrained, which gave
 * 1/2 - 1 ULP at x = -0).  The Numba backend's _math._PHI_DPHI_F32 holds the same
 * numbers unhalved (tests/test_numba_math.py checks the two agree). */
static const float fastact_phi_d[9] = {
    (float)0.14104178547859192, (float)0.14121443033218384, (float)0.12134571373462677, (float)0.10219300538301468,
    (float)-0.015371419489383698, (float)0.1420518159866333, (float)-0.24622727930545807, (float)0.14353428781032562,
    (float)-0.029782341793179512};

/* Non-temporal ("streaming") stores, for results too large to stay in cache.
 * A plain store first reads the line it writes (read for ownership); a
 * non-temporal store writes whole lines without reading them, so a forward at
 * 1e7 float32 moves 2 arrays' bytes instead of 3.  Measured on the
 * development VM (2 threads, interleaved): a relu forward at 1e7 ran 1.6 ms
 * against 3.3 ms with plain stores, at 2e6 351 us against 631, at 5e5 (2 MB,
 * the size of a core's L2) even, at 2e5 slower (33 against 22 us): there the
 * result stays in cache, and a cached result is what the next reader wants.
 * _elementwise.pxi computes the cheap loops' blocks into a buffer on the
 * stack and copies each to out with these; the table kernels below store
 * their vectors straight (FASTACT_MAP1_NT): a costly kernel copying bursts of
 * 4 KB was 12-24 % slower than with plain stores, storing each vector as it
 * is computed 12-20 % faster (tanh, sigmoid at 1e7).  The results are the same
 * bits either way. */
#define FASTACT_STREAM_ALIGN 64

/* Elements of `size` bytes before out + k is 64-byte aligned (0..63/size);
 * n when out is not aligned to its element size (it never gets there). */
static inline long fastact_stream_head(const void *out, long n, long size)
{
    uintptr_t a = (uintptr_t)out;
    long k;
    if (a % (uintptr_t)size)
        return n;
    k = (long)(((FASTACT_STREAM_ALIGN - a % FASTACT_STREAM_ALIGN) % FASTACT_STREAM_ALIGN) / (uintptr_t)size);
    return k < n ? k : n;
}

/* A start for a block buffer, inside buf (4096 bytes longer than the
 * block), on a 64-byte line and at least 512 bytes from each of a, b and o
 * modulo 4 KiB.  The buffered loops' blocks are whole multiples of 4 KiB, so
 * the loads from the input and the stores to the buffer (and the buffer's
 * loads and the stores to out) keep one offset modulo 4 KiB for the whole
 * call; within a few hundred bytes the loads wait on stores with the same low
 * 12 bits (4K aliasing: the Numba backend's streamed hardtanh at 1e7 on one
 * thread, the buffer at the input's offset, 4.1 ms, from 128 bytes away
 * 2.8-3.0).  A stack buffer's offset depends on the thread and the call:
 * Cython's streamed cheap kernels at 1e7 ran 1.3 ms in one process and
 * 1.5-1.75 in another.  On a line, because gcc's loops store to the buffer
 * without aligning first: a buffer at the input's offset from a line, 16 or
 * 48 bytes off one wherever x is 16 or 48 bytes from out's line, stored every
 * vector across two lines, and relu's streamed forward at 1e7 took 1.9-2.4 ms
 * on two threads against 1.5-1.7 (3.1 against 1.6-1.9 on one).  Candidates
 * from a's line, the nearest 576 bytes past it: 513-576 from a itself.  a, b,
 * o aligned to the element size. */
static inline void *fastact_place_buf(void *buf, const void *a, const void *b, const void *o)
{
    static const int cand[7] = {2048, 1024, 3072, 576, 3584, 1536, 2560};
    uintptr_t pa = (uintptr_t)a & 4032, pb = (uintptr_t)b & 4095, po = (uintptr_t)o & 4095;
    uintptr_t t = (pa + 2048) & 4095;
    for (int i = 0; i < 7; i++) {
        uintptr_t db, dd;
        t = (pa + (uintptr_t)cand[i]) & 4095;
        db = (t - pb) & 4095;
        dd = (t - po) & 4095;
        if (db >= 512 && db <= 3584 && dd >= 512 && dd <= 3584)
            break;
    }
    return (char *)buf + ((t - ((uintptr_t)buf & 4095)) & 4095);
}

/* Prefetch p[0:nbytes] for reading, one instruction every `step` bytes
 * from p on (a no-op where the compiler has no __builtin_prefetch).  step
 * 4096, a page: _elementwise.pxi.in's PREFETCH_F32 loops, as the Numba
 * backend's _kernels.PREFETCH (one per page did as well as one per line);
 * step 64, every line: _axis.pxi's backward rows. */
static inline void fastact_prefetch(const void *p, long nbytes, long step)
{
#if defined(__GNUC__)
    const char *c = (const char *)p;
    for (long i = 0; i < nbytes; i += step)
        __builtin_prefetch(c + i, 0, 3);
#else
    (void)p; (void)nbytes; (void)step;
#endif
}

/* dst[:nbytes] = src[:nbytes] with non-temporal stores: dst 64-byte aligned,
 * nbytes a multiple of 64; src any alignment.  fastact_sfence() after the last
 * one orders them before the stores that follow (the end of the parallel region). */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <immintrin.h>
static inline void fastact_stream_copy(const void *src, void *dst, long nbytes)
{
    const char *s = (const char *)src;
    char *d = (char *)dst;
    long i;
#if defined(__AVX512F__)
    for (i = 0; i < nbytes; i += 64)
        _mm512_stream_si512((void *)(d + i), _mm512_loadu_si512((const void *)(s + i)));
#elif defined(__AVX__)
    for (i = 0; i < nbytes; i += 32)
        _mm256_stream_si256((__m256i *)(d + i), _mm256_loadu_si256((const __m256i *)(s + i)));
#else
    for (i = 0; i < nbytes; i += 16)
        _mm_stream_si128((__m128i *)(d + i), _mm_loadu_si128((const __m128i *)(s + i)));
#endif
}
static inline void fastact_sfence(void) { _mm_sfence(); }
#define FASTACT_HAVE_STREAM 1
#else
#include <string.h>
static inline void fastact_stream_copy(const void *src, void *dst, long nbytes) { memcpy(dst, src, (size_t)nbytes); }
static inline void fastact_sfence(void) { }
#define FASTACT_HAVE_STREAM 0
#endif

/* A 16 x 16 block of float32 transposed: dst[c * ds + r] = src[r * ss + c]
 * for r, c < 16 (strides in elements; the two blocks must not overlap).  The
 * softmax family's short rows (_axis.pxi, _short_block) turn a block of rows
 * into columns with it and back: as a scalar loop that was half their time.
 * Sixteen row loads, four rounds of sixteen two-vector shuffles, sixteen
 * stores: round s (8, 4, 2, 1) pairs rows i and i + s and exchanges their
 * off-diagonal s x s sub-blocks, which after the four rounds is the
 * transpose: one vpermt2ps a shuffle (gcc's generic vectors).  AVX-512 only:
 * with narrower vectors gcc lowers the 64-byte shuffles to element moves,
 * and the callers keep their scalar loop (FASTACT_HAVE_TRANSPOSE16 0).
 * From here to FASTACT_HAVE_TABLES: the _k_avx512 build (F, DQ, VL, BW). */
#if defined(__GNUC__) && defined(__AVX512F__) && defined(__AVX512DQ__)
typedef float fastact_v16f __attribute__((vector_size(64)));
typedef int32_t fastact_v16i __attribute__((vector_size(64)));
#define FASTACT_TR_PAIR(r, i, s, lo, hi)                                         \
    do {                                                                         \
        fastact_v16f a_ = r[i], b_ = r[(i) + (s)];                               \
        r[i] = __builtin_shuffle(a_, b_, lo);                                    \
        r[(i) + (s)] = __builtin_shuffle(a_, b_, hi);                            \
    } while (0)
#define FASTACT_TR_ROUND(r, s, i0, i1, i2, i3, i4, i5, i6, i7, lo, hi)           \
    do {                                                                         \
        FASTACT_TR_PAIR(r, i0, s, lo, hi); FASTACT_TR_PAIR(r, i1, s, lo, hi);    \
        FASTACT_TR_PAIR(r, i2, s, lo, hi); FASTACT_TR_PAIR(r, i3, s, lo, hi);    \
        FASTACT_TR_PAIR(r, i4, s, lo, hi); FASTACT_TR_PAIR(r, i5, s, lo, hi);    \
        FASTACT_TR_PAIR(r, i6, s, lo, hi); FASTACT_TR_PAIR(r, i7, s, lo, hi);    \
    } while (0)
static inline void fastact_transpose16f(const float* src, long ss, float* dst, long ds)
{
    const fastact_v16i lo8 = {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23};
    const fastact_v16i hi8 = {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31};
    const fastact_v16i lo4 = {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27};
    const fastact_v16i hi4 = {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31};
    const fastact_v16i lo2 = {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29};
    const fastact_v16i hi2 = {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31};
    const fastact_v16i lo1 = {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30};
    const fastact_v16i hi1 = {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31};
    fastact_v16f r[16];
    for (int i = 0; i < 16; i++)
        __builtin_memcpy(&r[i], src + i * ss, sizeof(fastact_v16f));
    FASTACT_TR_ROUND(r, 8, 0, 1, 2, 3, 4, 5, 6, 7, lo8, hi8);
    FASTACT_TR_ROUND(r, 4, 0, 1, 2, 3, 8, 9, 10, 11, lo4, hi4);
    FASTACT_TR_ROUND(r, 2, 0, 1, 4, 5, 8, 9, 12, 13, lo2, hi2);
    FASTACT_TR_ROUND(r, 1, 0, 2, 4, 6, 8, 10, 12, 14, lo1, hi1);
    for (int i = 0; i < 16; i++)
        __builtin_memcpy(dst + i * ds, &r[i], sizeof(fastact_v16f));
}
#define FASTACT_HAVE_TRANSPOSE16 1
/* _axis.pxi's _dot_f32 (float32 rows of 256 and more, softmax's and
 * softmin's backward from y): every step of 64 elements, the last one
 * padded with zeros (masked loads), lane k adding the float32
 * fma(a_{k+16}, b_{k+16}, a_k b_k) + fma(a_{k+48}, b_{k+48}, a_{k+32} b_{k+32})
 * to acc[k] (lanes 0-7 in one vector, 8-15 in the other), as _dot4_step.
 * One widening per 16 products where the exact products took four (every
 * float32 widened to double, 4 FMAs per 32; the widenings, two uops each
 * on the two 512-bit ports, set the pace): 1e5 float32 in rows of 1000,
 * one thread, the dot alone in C, 10.9 -> 7.1 us.  Returns n. */
static inline __m512 fastact_four(__m512 a0, __m512 b0, __m512 a1, __m512 b1, __m512 a2, __m512 b2, __m512 a3,
                                  __m512 b3)
{
    /* a step's 16 float32 lane sums, fma(a1, b1, a0 b0) + fma(a3, b3, a2 b2) */
    return _mm512_add_ps(_mm512_fmadd_ps(a1, b1, _mm512_mul_ps(a0, b0)), _mm512_fmadd_ps(a3, b3, _mm512_mul_ps(a2, b2)));
}
static inline __mmask16 fastact_first_mask(long c)
{
    /* the first c (clamped to 0..16) of 16 lanes */
    return c >= 16 ? (__mmask16)0xFFFF : c > 0 ? (__mmask16)((1u << c) - 1u) : (__mmask16)0;
}
static inline __m512 fastact_four_tail(const float* a, const float* b, long r)
{
    /* fastact_four on the last step's r (< 64) elements at a and b, padded with zeros (masked loads) */
    __mmask16 m0 = fastact_first_mask(r), m1 = fastact_first_mask(r - 16);
    __mmask16 m2 = fastact_first_mask(r - 32), m3 = fastact_first_mask(r - 48);
    return fastact_four(_mm512_maskz_loadu_ps(m0, a), _mm512_maskz_loadu_ps(m0, b), _mm512_maskz_loadu_ps(m1, a + 16),
                        _mm512_maskz_loadu_ps(m1, b + 16), _mm512_maskz_loadu_ps(m2, a + 32),
                        _mm512_maskz_loadu_ps(m2, b + 32), _mm512_maskz_loadu_ps(m3, a + 48),
                        _mm512_maskz_loadu_ps(m3, b + 48));
}
static inline void fastact_add_four(__m512 q, __m512d* s0, __m512d* s1)
{
    /* lanes 0-7 and 8-15 of a step's float32 sums into their float64 sums */
    *s0 = _mm512_add_pd(*s0, _mm512_cvtps_pd(_mm512_castps512_ps256(q)));
    *s1 = _mm512_add_pd(*s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(q, 1)));
}
static inline long fastact_dot4_f32(const float* a, const float* b, long n, double* acc)
{
    __m512d s0 = _mm512_loadu_pd(acc), s1 = _mm512_loadu_pd(acc + 8);
    long i = 0;
    for (; i + 64 <= n; i += 64)
        fastact_add_four(fastact_four(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), _mm512_loadu_ps(a + i + 16),
                                      _mm512_loadu_ps(b + i + 16), _mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32),
                                      _mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48)),
                         &s0, &s1);
    if (i < n)
        fastact_add_four(fastact_four_tail(a + i, b + i, n - i), &s0, &s1);
    _mm512_storeu_pd(acc, s0);
    _mm512_storeu_pd(acc + 8, s1);
    return n;
}

/* _axis.pxi's row reductions on float32, in registers: gcc kept their
 * 64 lanes (and 8) in the stack array and went through it on every step;
 * 1e5 float32 softmax in rows of 64, one thread, the two reductions took
 * half the time.  The same lanes, the same steps, the same folds: the same
 * sums (and maxima) to the bit.
 * fastact_sum64_f32 is _sum_block (lane k sums elements k, k + 64, ...; the
 * fold adds lanes h apart for h = 32 .. 4, then (0 + 2) + (1 + 3));
 * fastact_sum8_f32 is _sum_short (8 lanes); fastact_max64_f32 and
 * fastact_max8_f32 are _row_max and _row_max_short (max of sign*x ignoring
 * NaN: vmaxps returns its second operand, the lane, where either is NaN or
 * both are zeros, as the loops' v > acc ? v : acc). */
static inline double fastact_fold4_pd(__m512d a)
{
    __m256d s = _mm256_add_pd(_mm512_castpd512_pd256(a), _mm512_extractf64x4_pd(a, 1));
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}
static inline __m512d fastact_widen8(const float* v, long cnt)
{
    /* 8 floats (cnt < 8: the first cnt, zeros after) as doubles */
    if (cnt >= 8)
        return _mm512_cvtps_pd(_mm256_loadu_ps(v));
    return _mm512_cvtps_pd(_mm256_maskz_loadu_ps((__mmask8)((1u << cnt) - 1u), v));
}
static inline double fastact_sum64_f32(const float* v, long n)
{
    __m512d a[8];
    long i = 0, r, j;
    for (j = 0; j < 8; j++)
        a[j] = _mm512_setzero_pd();
    for (; i + 64 <= n; i += 64)
        for (j = 0; j < 8; j++)
            a[j] = _mm512_add_pd(a[j], _mm512_cvtps_pd(_mm256_loadu_ps(v + i + 8 * j)));
    r = n - i;
    for (j = 0; j < 8 && 8 * j < r; j++) {
        long c = r - 8 * j < 8 ? r - 8 * j : 8;
        a[j] = _mm512_mask_add_pd(a[j], (__mmask8)((1u << c) - 1u), a[j], fastact_widen8(v + i + 8 * j, c));
    }
    for (j = 0; j < 4; j++)
        a[j] = _mm512_add_pd(a[j], a[j + 4]);
    a[0] = _mm512_add_pd(a[0], a[2]);
    a[1] = _mm512_add_pd(a[1], a[3]);
    return fastact_fold4_pd(_mm512_add_pd(a[0], a[1]));
}
static inline double fastact_sum8_f32(const float* v, long n)
{
    __m512d a = _mm512_setzero_pd();
    long i = 0;
    for (; i + 8 <= n; i += 8)
        a = _mm512_add_pd(a, _mm512_cvtps_pd(_mm256_loadu_ps(v + i)));
    if (i < n)
        a = _mm512_mask_add_pd(a, (__mmask8)((1u << (n - i)) - 1u), a, fastact_widen8(v + i, n - i));
    return fastact_fold4_pd(a);
}
/* _dot_block on float32 (8 lanes of double; the products of two floats are
 * exact in double), the product then the add with the product first, as gcc
 * compiled the loop: the same sums, NaNs to their sign */
static inline double fastact_dot8_f32(const float* a, const float* b, long n)
{
    __m512d acc = _mm512_setzero_pd();
    long i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm512_add_pd(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(b + i)),
                                          _mm512_cvtps_pd(_mm256_loadu_ps(a + i))), acc);
    if (i < n) {
        __mmask8 m = (__mmask8)((1u << (n - i)) - 1u);
        acc = _mm512_mask_add_pd(acc, m, _mm512_mul_pd(fastact_widen8(b + i, n - i), fastact_widen8(a + i, n - i)), acc);
    }
    return fastact_fold4_pd(acc);
}
static inline float fastact_hmax8_ps(__m256 a)
{
    /* the lanes' fold as _row_max's: h = 4, 2, 1, lane k taking lane k + h where it is greater */
    __m128 b = _mm_max_ps(_mm256_extractf128_ps(a, 1), _mm256_castps256_ps128(a));
    b = _mm_max_ps(_mm_movehl_ps(b, b), b);
    b = _mm_max_ss(_mm_movehdup_ps(b), b);
    return _mm_cvtss_f32(b);
}
static inline float fastact_max64_f32(const float* x, long n, float sign)
{
    const __m512 sv = _mm512_set1_ps(sign);
    __m512 a[4];
    long i = 0, r, j;
    for (j = 0; j < 4; j++)
        a[j] = _mm512_set1_ps(-__builtin_inff());
    for (; i + 64 <= n; i += 64)
        for (j = 0; j < 4; j++)
            a[j] = _mm512_max_ps(_mm512_mul_ps(sv, _mm512_loadu_ps(x + i + 16 * j)), a[j]);
    r = n - i;
    for (j = 0; j < 4 && 16 * j < r; j++) {
        long c = r - 16 * j < 16 ? r - 16 * j : 16;
        __mmask16 m = (__mmask16)((1u << c) - 1u);
        a[j] = _mm512_mask_max_ps(a[j], m, _mm512_mul_ps(sv, _mm512_maskz_loadu_ps(m, x + i + 16 * j)), a[j]);
    }
    a[0] = _mm512_max_ps(a[2], a[0]);
    a[1] = _mm512_max_ps(a[3], a[1]);
    a[0] = _mm512_max_ps(a[1], a[0]);
    return fastact_hmax8_ps(_mm256_max_ps(_mm512_extractf32x8_ps(a[0], 1), _mm512_castps512_ps256(a[0])));
}
static inline float fastact_max8_f32(const float* x, long n, float sign)
{
    const __m256 sv = _mm256_set1_ps(sign);
    __m256 a = _mm256_set1_ps(-__builtin_inff());
    long i = 0;
    for (; i + 8 <= n; i += 8)
        a = _mm256_max_ps(_mm256_mul_ps(sv, _mm256_loadu_ps(x + i)), a);
    if (i < n) {
        __mmask8 m = (__mmask8)((1u << (n - i)) - 1u);
        a = _mm256_mask_max_ps(a, m, _mm256_mul_ps(sv, _mm256_maskz_loadu_ps(m, x + i)), a);
    }
    return fastact_hmax8_ps(a);
}

/* float32 gelu, forward x * phi(x) and backward g * (phi(x) + x pdf(x)),
 * for the AVX-512 build: from tables of polynomials, 32 intervals each, a
 * lane's coefficients picked with vpermt2ps (32 entries in two registers).
 * Coefficients and fit errors: _numba/_fitpoly.py, fit_table.
 *
 * x >= -4.1875 (fastact_gelu_phi_v): phi(x) = P_i(x - c_i) on intervals of
 * width 5/16 centred on c_i = (i - 13) * 5/16, degree 6 (fit error 6.0e-8).
 * The index i = round(x * 3.2) + 13 is read from the low bits of
 * x * 3.2 + (13 + 1.5 * 2^23).  x - c_i is exact (Sterbenz) where phi's
 * relative error is sensitive to it.  Above the table (5.78) phi rounds to 1:
 * x is clamped to 5.75 in phi's argument, the product keeps x, +inf stays
 * +inf.  7 permutes, 8 FMAs and 4 other operations a vector, against about
 * 56 for the exp-based kernel of _scalar.pxi (gelu_fwd).
 *
 * Backward, x >= -4.125 (fastact_gelu_dphi_v): phi(x) + x pdf(x) = D_i(x - e_i)
 * on intervals of width 11/32 centred on e_i = (i - 12) * 11/32, degree 6
 * (fit error 5.9e-8, absolute below 1e-4 around its zero at -0.75); x is
 * clamped to 6.5, where it rounds to 1.
 *
 * x < -4.1875 (backward -4.125) and NaN (fastact_gelu_tail_w):
 * phi(x) = exp(-x^2/2) * m(x), and phi(x) + x pdf(x) = exp(-x^2/2) *
 * (m(x) + x / sqrt(2 pi)),
 * m = Q_i(x - d_i) on intervals of width 11/32 centred on
 * d_i = -(i + 12) * 11/32, degree 4 (fit error 5.5e-8).  x is clamped to
 * -14.9, where the result underflows to 0 (gelu(-inf) = -0); x*x is split
 * exactly with an FMA so exp keeps its relative accuracy; 2^k is applied by
 * vscalefps, which rounds once into the subnormals.  Which of the two
 * computes a lane depends on its x alone: a result never depends on the
 * neighbours of its element.
 *
 * The Numba backend reads the three tables below from this file
 * (_numba/_tab.py, read_tables: a row per line, its label in a comment,
 * then 32 numbers) and emits the same operations in LLVM IR: keep the two in
 * step (tests/test_numba_backend.py compares their results bit for bit). */
static const float fastact_gelu_phi[8][32] __attribute__((aligned(64))) = {
    {/* c_i */ -4.0625e+00f, -3.75e+00f, -3.4375e+00f, -3.125e+00f, -2.8125e+00f, -2.5e+00f, -2.1875e+00f, -1.875e+00f, -1.5625e+00f, -1.25e+00f, -9.375e-01f, -6.25e-01f, -3.125e-01f, 0.e+00f, 3.125e-01f, 6.25e-01f, 9.375e-01f, 1.25e+00f, 1.5625e+00f, 1.875e+00f, 2.1875e+00f, 2.5e+00f, 2.8125e+00f, 3.125e+00f, 3.4375e+00f, 3.75e+00f, 4.0625e+00f, 4.375e+00f, 4.6875e+00f, 5.e+00f, 5.3125e+00f, 5.625e+00f},
    {/* u^0 */ 2.4274974e-05f, 8.8417284e-05f, 2.9355535e-04f, 8.890253e-04f, 2.4579011e-03f, 6.2096654e-03f, 1.4353022e-02f, 3.039636e-02f, 5.9085123e-02f, 1.0564978e-01f, 1.742507e-01f, 2.6598552e-01f, 3.7733027e-01f, 5.e-01f, 6.226697e-01f, 7.3401445e-01f, 8.257493e-01f, 8.9435023e-01f, 9.4091487e-01f, 9.6960366e-01f, 9.8564696e-01f, 9.937903e-01f, 9.975421e-01f, 9.99111e-01f, 9.9970645e-01f, 9.999116e-01f, 9.9997574e-01f, 9.999939e-01f, 9.999986e-01f, 9.999997e-01f, 9.9999994e-01f, 1.e+00f},
    {/* u^1 */ 1.04023755e-04f, 3.5259573e-04f, 1.083952e-03f, 3.022258e-03f, 7.6426053e-03f, 1.75283e-02f, 3.646083e-02f, 6.878628e-02f, 1.17697015e-01f, 1.8264909e-01f, 2.570739e-01f, 3.2816097e-01f, 3.7993062e-01f, 3.989423e-01f, 3.7993062e-01f, 3.2816097e-01f, 2.570739e-01f, 1.8264909e-01f, 1.17697015e-01f, 6.878628e-02f, 3.646083e-02f, 1.75283e-02f, 7.6426053e-03f, 3.022258e-03f, 1.083952e-03f, 3.5259573e-04f, 1.0402376e-04f, 2.783406e-05f, 6.754747e-06f, 1.4867237e-06f, 2.9678372e-07f, 5.37327e-08f},
    {/* u^2 */ 2.1129793e-04f, 6.6111685e-04f, 1.8630454e-03f, 4.722284e-03f, 1.0747426e-02f, 2.1910338e-02f, 3.9878923e-02f, 6.4487405e-02f, 9.195071e-02f, 1.1415475e-01f, 1.2050487e-01f, 1.0255348e-01f, 5.9366677e-02f, 2.4038178e-08f, -5.935747e-02f, -1.0254431e-01f, -1.205003e-01f, -1.1415702e-01f, -9.19484e-02f, -6.449315e-02f, -3.987432e-02f, -2.190847e-02f, -1.0742608e-02f, -4.72908e-03f, -1.8638098e-03f, -6.6840526e-04f, -2.1620409e-04f, -5.8400605e-05f, -1.9509032e-05f, -2.0444169e-07f, 9.2247944e-07f, -3.0160134e-06f},
    {/* u^3 */ 2.687827e-04f, 7.676141e-04f, 1.9540691e-03f, 4.415358e-03f, 8.802047e-03f, 1.533751e-02f, 2.3001917e-02f, 2.8839758e-02f, 2.8274182e-02f, 1.7122379e-02f, -5.188788e-03f, -3.3329204e-02f, -5.7138857e-02f, -6.6491365e-02f, -5.7138857e-02f, -3.3329207e-02f, -5.1887943e-03f, 1.7122386e-02f, 2.8274188e-02f, 2.883976e-02f, 2.3001919e-02f, 1.533751e-02f, 8.802047e-03f, 4.415358e-03f, 1.954069e-03f, 7.676138e-04f, 2.6878156e-04f, 8.414674e-05f, 2.3607372e-05f, 5.9455915e-06f, 1.346123e-06f, 2.7428422e-07f},
    {/* u^4 */ 2.3780882e-04f, 6.094898e-04f, 1.3685764e-03f, 2.6619863e-03f, 4.39674e-03f, 5.9370524e-03f, 5.941156e-03f, 2.7496663e-03f, -4.274505e-03f, -1.3604266e-02f, -2.141294e-02f, -2.2543523e-02f, -1.4552677e-02f, -2.9683565e-06f, 1.3841841e-02f, 2.1836817e-02f, 2.1060934e-02f, 1.3778432e-02f, 4.0957257e-03f, -2.3064753e-03f, -6.2967613e-03f, -6.0812505e-03f, -4.7687297e-03f, -2.137232e-03f, -1.3095383e-03f, -4.6680238e-05f, 1.410453e-04f, -2.738835e-04f, 2.5894717e-04f, -2.7802895e-04f, -1.3376103e-04f, 2.2085897e-04f},
    {/* u^5 */ 1.539132e-04f, 3.4327313e-04f, 6.485985e-04f, 9.996416e-04f, 1.1457058e-03f, 6.51981e-04f, -8.689136e-04f, -3.2775016e-03f, -5.546218e-03f, -5.936549e-03f, -3.183045e-03f, 2.2222702e-03f, 7.6733544e-03f, 9.96625e-03f, 7.673353e-03f, 2.222437e-03f, -3.1827576e-03f, -5.9368797e-03f, -5.5464627e-03f, -3.2775828e-03f, -8.689945e-04f, 6.5198104e-04f, 1.145706e-03f, 9.996416e-04f, 6.4860884e-04f, 3.4328602e-04f, 1.5394847e-04f, 5.962966e-05f, 2.0188572e-05f, 6.0210805e-06f, 1.5902268e-06f, 3.7341854e-07f},
    {/* u^6 */ 7.109753e-05f, 1.3168313e-04f, 1.9248777e-04f, 1.7537431e-04f, -2.7873664e-05f, -5.811644e-04f, -1.2905195e-03f, -9.1917213e-04f, -9.947931e-04f, -9.6361106e-04f, 4.8118415e-03f, 8.56528e-03f, 6.6060117e-03f, 8.1835846e-05f, 9.077205e-03f, 7.0042484e-03f, 2.9363036e-03f, -2.8598737e-03f, 4.9456623e-03f, -8.8532e-03f, 9.136654e-03f, 3.761624e-03f, 8.234427e-03f, -1.1752481e-02f, -1.4952144e-03f, -1.2548714e-02f, -8.429619e-03f, 4.2033996e-03f, -6.277447e-03f, 5.9795193e-03f, 2.9133267e-03f, -4.880874e-03f},
};
static const float fastact_gelu_dphi[8][32] __attribute__((aligned(64))) = {
    {/* c_i */ -4.125e+00f, -3.78125e+00f, -3.4375e+00f, -3.09375e+00f, -2.75e+00f, -2.40625e+00f, -2.0625e+00f, -1.71875e+00f, -1.375e+00f, -1.03125e+00f, -6.875e-01f, -3.4375e-01f, 0.e+00f, 3.4375e-01f, 6.875e-01f, 1.03125e+00f, 1.375e+00f, 1.71875e+00f, 2.0625e+00f, 2.40625e+00f, 2.75e+00f, 3.09375e+00f, 3.4375e+00f, 3.78125e+00f, 4.125e+00f, 4.46875e+00f, 4.8125e+00f, 5.15625e+00f, 5.5e+00f, 5.84375e+00f, 6.1875e+00f, 6.53125e+00f},
    {/* u^0 */ -3.136926e-04f, -1.1072189e-03f, -3.4325295e-03f, -9.316027e-03f, -2.2027534e-02f, -4.5024917e-02f, -7.8499824e-02f, -1.1371814e-01f, -1.2857614e-01f, -9.052514e-02f, 2.9339544e-02f, 2.3624833e-01f, 5.e-01f, 7.637517e-01f, 9.7066045e-01f, 1.0905252e+00f, 1.1285762e+00f, 1.1137182e+00f, 1.0784998e+00f, 1.0450249e+00f, 1.0220275e+00f, 1.0093161e+00f, 1.0034325e+00f, 1.0011072e+00f, 1.0003136e+00f, 1.0000782e+00f, 1.0000172e+00f, 1.0000033e+00f, 1.0000006e+00f, 1.0000001e+00f, 1.e+00f, 1.e+00f},
    {/* u^1 */ -1.2093651e-03f, -3.8547856e-03f, -1.0640511e-02f, -2.5217433e-02f, -5.058294e-02f, -8.361088e-02f, -1.07182026e-01f, -8.6901985e-02f, 1.6954482e-02f, 2.1953197e-01f, 4.8107284e-01f, 7.076733e-01f, 7.978845e-01f, 7.076733e-01f, 4.8107287e-01f, 2.1953197e-01f, 1.6954482e-02f, -8.6901985e-02f, -1.07182026e-01f, -8.361088e-02f, -5.058294e-02f, -2.5217433e-02f, -1.0640511e-02f, -3.8547853e-03f, -1.2093651e-03f, -3.304309e-04f, -7.893424e-05f, -1.6532565e-05f, -3.0424737e-06f, -4.927609e-07f, -7.032825e-08f, -8.854403e-09f},
    {/* u^2 */ -2.1620872e-03f, -6.102727e-03f, -1.4562332e-02f, -2.8704049e-02f, -4.454428e-02f, -4.7510576e-02f, -1.2451071e-02f, 8.186642e-02f, 2.2479856e-01f, 3.54933e-01f, 3.8191286e-01f, 2.509019e-01f, 5.704328e-08f, -2.5090566e-01f, -3.8191128e-01f, -3.5493478e-01f, -2.2480236e-01f, -8.187022e-02f, 1.245868e-02f, 4.7522e-02f, 4.4554748e-02f, 2.8688826e-02f, 1.4566727e-02f, 6.103496e-03f, 2.175608e-03f, 6.6558906e-04f, 1.8238665e-04f, 3.9995284e-05f, 1.9801341e-06f, -6.867689e-06f, 3.1888208e-06f, 3.8224368e-07f},
    {/* u^3 */ -2.341362e-03f, -5.6602587e-03f, -1.1004837e-02f, -1.588236e-02f, -1.2509363e-02f, 1.1053139e-02f, 6.08847e-02f, 1.2071555e-01f, 1.4622223e-01f, 9.037292e-02f, -4.8022673e-02f, -1.997324e-01f, -2.659529e-01f, -1.9973242e-01f, -4.8026416e-02f, 9.037291e-02f, 1.4622225e-01f, 1.2071555e-01f, 6.08847e-02f, 1.1053142e-02f, -1.2509359e-02f, -1.5882364e-02f, -1.100484e-02f, -5.660285e-03f, -2.3413622e-03f, -8.059951e-04f, -2.351553e-04f, -5.879695e-05f, -1.2691778e-05f, -2.3774046e-06f, -3.87924e-07f, -5.529814e-08f},
    {/* u^4 */ -1.666078e-03f, -3.2167078e-03f, -4.289965e-03f, -1.8516601e-03f, 8.333801e-03f, 2.6894506e-02f, 4.3685302e-02f, 3.76432e-02f, -6.938821e-03f, -7.4862644e-02f, -1.174819e-01f, -9.013395e-02f, -5.807277e-06f, 9.037142e-02f, 1.1739535e-01f, 7.4972674e-02f, 7.181168e-03f, -3.740084e-02f, -4.417094e-02f, -2.7624177e-02f, -9.002175e-03f, 2.8235042e-03f, 4.0096315e-03f, 3.1677505e-03f, 8.032536e-04f, 7.1539915e-05f, -4.3979005e-04f, 8.8900815e-06f, 3.8458328e-04f, 5.274507e-04f, -1.8984775e-04f, -2.2557786e-05f},
    {/* u^5 */ -7.6623756e-04f, -9.371765e-04f, 2.3159735e-05f, 3.3221382e-03f, 8.686963e-03f, 1.1836339e-02f, 5.224509e-03f, -1.4323245e-02f, -3.5919916e-02f, -3.7387516e-02f, -6.833862e-03f, 3.7954222e-02f, 5.931104e-02f, 3.7955303e-02f, -6.7389444e-03f, -3.7387244e-02f, -3.592045e-02f, -1.4323246e-02f, 5.22451e-03f, 1.1836236e-02f, 8.686827e-03f, 3.3222742e-03f, 2.3261133e-05f, -9.365505e-04f, -7.66229e-04f, -3.975971e-04f, -1.5706824e-04f, -5.017399e-05f, -1.3338346e-05f, -2.9994842e-06f, -5.765911e-07f, -9.54263e-08f},
    {/* u^6 */ -1.810384e-04f, 6.972834e-05f, 9.062043e-04f, 2.1523065e-03f, 2.585284e-03f, 6.033157e-05f, -5.9806705e-03f, -1.1884102e-02f, -6.8852296e-03f, 7.1758768e-03f, 2.0339336e-02f, 2.1008404e-02f, 1.3213491e-04f, -2.531049e-02f, -1.894498e-02f, -9.133922e-03f, 2.4681494e-03f, 7.4665574e-03f, 1.483621e-02f, 1.32504525e-02f, 9.605687e-03f, -1.987643e-02f, 4.203496e-03f, 8.212464e-04f, 1.5912887e-02f, 1.11572845e-02f, 1.2184435e-02f, 1.006815e-03f, -6.73297e-03f, -9.559815e-03f, 3.471683e-03f, 4.1286382e-04f},
};
static const float fastact_gelu_tail[6][32] __attribute__((aligned(64))) = {
    {/* c_i */ -4.125e+00f, -4.46875e+00f, -4.8125e+00f, -5.15625e+00f, -5.5e+00f, -5.84375e+00f, -6.1875e+00f, -6.53125e+00f, -6.875e+00f, -7.21875e+00f, -7.5625e+00f, -7.90625e+00f, -8.25e+00f, -8.59375e+00f, -8.9375e+00f, -9.28125e+00f, -9.625e+00f, -9.96875e+00f, -1.03125e+01f, -1.065625e+01f, -1.1e+01f, -1.134375e+01f, -1.16875e+01f, -1.203125e+01f, -1.2375e+01f, -1.271875e+01f, -1.30625e+01f, -1.340625e+01f, -1.375e+01f, -1.409375e+01f, -1.44375e+01f, -1.478125e+01f},
    {/* u^0 */ 9.181832e-02f, 8.534822e-02f, 7.970348e-02f, 7.473945e-02f, 7.03427e-02f, 6.642321e-02f, 6.290873e-02f, 5.9740655e-02f, 5.6870982e-02f, 5.426007e-02f, 5.1874913e-02f, 4.9687818e-02f, 4.767539e-02f, 4.5817744e-02f, 4.4097867e-02f, 4.2501137e-02f, 4.10149e-02f, 3.9628167e-02f, 3.8331356e-02f, 3.7116066e-02f, 3.597489e-02f, 3.4901302e-02f, 3.3889506e-02f, 3.2934356e-02f, 3.2031246e-02f, 3.1176059e-02f, 3.0365104e-02f, 2.959505e-02f, 2.8862895e-02f, 2.8165922e-02f, 2.7501663e-02f, 2.686788e-02f},
    {/* u^1 */ 2.019171e-02f, 1.7542427e-02f, 1.5369265e-02f, 1.356701e-02f, 1.2057461e-02f, 1.0781643e-02f, 9.694489e-03f, 8.761131e-03f, 7.954291e-03f, 7.2524017e-03f, 6.63825e-03f, 6.0979715e-03f, 5.620307e-03f, 5.1960414e-03f, 4.817581e-03f, 4.4786204e-03f, 4.1738967e-03f, 3.8989866e-03f, 3.650154e-03f, 3.4242258e-03f, 3.2184946e-03f, 3.030638e-03f, 2.8586572e-03f, 2.7008224e-03f, 2.5556327e-03f, 2.4217798e-03f, 2.2981195e-03f, 2.1836471e-03f, 2.0774794e-03f, 1.9788353e-03f, 1.8870232e-03f, 1.8014294e-03f},
    {/* u^2 */ 4.2636828e-03f, 3.4775431e-03f, 2.869778e-03f, 2.3918806e-03f, 2.0129173e-03f, 1.7093384e-03f, 1.4623362e-03f, 1.2596482e-03f, 1.092379e-03f, 9.531801e-04f, 8.36542e-04f, 7.378657e-04f, 6.540481e-04f, 5.821473e-04f, 5.2057457e-04f, 4.6676208e-04f, 4.2036807e-04f, 3.801591e-04f, 3.4480254e-04f, 3.130904e-04f, 2.8567715e-04f, 2.6118517e-04f, 2.397136e-04f, 2.1984629e-04f, 2.0248062e-04f, 1.8707858e-04f, 1.7288027e-04f, 1.6032335e-04f, 1.4867091e-04f, 1.382477e-04f, 1.2883589e-04f, 1.2030482e-04f},
    {/* u^3 */ 8.6924713e-04f, 6.6800526e-04f, 5.2064593e-04f, 4.1107388e-04f, 3.2837823e-04f, 2.651725e-04f, 2.1622988e-04f, 1.7791163e-04f, 1.4760911e-04f, 1.2344176e-04f, 1.0395999e-04f, 8.8118926e-05f, 7.515932e-05f, 6.44912e-05f, 5.561548e-05f, 4.821932e-05f, 4.1987867e-05f, 3.672924e-05f, 3.2262113e-05f, 2.8452449e-05f, 2.5178853e-05f, 2.237046e-05f, 1.992961e-05f, 1.7817552e-05f, 1.597686e-05f, 1.4365035e-05f, 1.2944168e-05f, 1.1706709e-05f, 1.0603922e-05f, 9.625336e-06f, 8.76611e-06f, 7.993586e-06f},
    {/* u^4 */ 1.7235382e-04f, 1.2906041e-04f, 8.302231e-05f, 7.863591e-05f, 6.2637744e-05f, 3.1230506e-05f, 2.3706714e-05f, 2.7389824e-05f, 2.5584204e-05f, 2.1215454e-05f, 1.348729e-05f, 1.0349663e-05f, 5.4984075e-06f, 6.6124376e-06f, 6.402752e-07f, 1.0185245e-05f, 9.2979035e-06f, 1.2859033e-06f, -2.8905845e-06f, 8.62597e-06f, 3.4153857e-06f, 3.5622982e-06f, -4.4119283e-06f, 6.4367214e-06f, 5.423758e-06f, -3.1838343e-07f, 2.983194e-06f, -6.54758e-07f, 3.443979e-06f, 3.4266961e-06f, 1.7731323e-06f, -8.574804e-07f},
};
/* Row `row` of a table, entry k of each lane (k's low 5 bits). */
static inline __m512 fastact_tab_pick(const float* row, __m512i k)
{
    return _mm512_permutex2var_ps(_mm512_load_ps(row), k, _mm512_load_ps(row + 16));
}
/* sum_j t[1 + j][k] u^j, j <= deg, by Horner, each lane's coefficients
 * those of its interval k */
static inline __m512 fastact_tab_poly(const float (*t)[32], int deg, __m512i k, __m512 u)
{
    __m512 p = fastact_tab_pick(t[deg + 1], k);
    for (int j = deg; j >= 1; j--)
        p = _mm512_fmadd_ps(p, u, fastact_tab_pick(t[j], k));
    return p;
}
/* fastact_tab_poly where no lane's k is 16 or more (hi, the lanes that are,
 * is 0): the same coefficients from the first 16 entries, picked with vpermps
 * from one register (k's low 4 bits).  A vector with a lane in the upper half
 * runs fastact_tab_poly.  The same bits either way (all 2^32 inputs).  Zen 4,
 * log_sigmoid's backward (degree 5, six picks), 5e4 float32 in the cache,
 * one thread: 13.1 us with vpermt2ps, 10.7 with vpermps.  Used by the sigmoid
 * table, whose upper half is |x| >= 7.75 (1e5 float32 on one thread, x ~
 * N(0, 1) or N(0, 9): sigmoid 4-6 % faster, silu 9-10 %, silu's backward
 * 13-15 %, log_sigmoid's from x 10-12 %).  Not tanh's, whose upper half is
 * |x| >= 3.875: 9 % faster for x ~ N(0, 1), 4-6 % slower for N(0, 9), where
 * most vectors hold such a lane and pay the test. */
static inline __m512 fastact_tab_poly_lo(const float (*t)[32], int deg, __m512i k, __m512 u, __mmask16 hi)
{
    if (hi)
        return fastact_tab_poly(t, deg, k, u);
    __m512 p = _mm512_permutexvar_ps(k, _mm512_load_ps(t[deg + 1]));
    for (int j = deg; j >= 1; j--)
        p = _mm512_fmadd_ps(p, u, _mm512_permutexvar_ps(k, _mm512_load_ps(t[j])));
    return p;
}
/* Table t's polynomial for the interval of x: k = round(x / w) + i0, read
 * from the low bits of kt = x * (1 / w) + shift (shift = 1.5 * 2^23 + i0;
 * 1 / w rounded to float32, folded by the compiler), then sum_j t[1 + j][k]
 * u^j, j <= deg, by Horner, in u = x - c_k.  Every table's centres are
 * multiples of its interval's width w, a float32 with few bits (5/16, 11/32;
 * negative for a table that runs leftwards; the sigmoid and tanh tables, of
 * widths 1/2 and 1/4, find k and u by additions instead: fastact_sigm_at,
 * fastact_tanh_v): c_k = (k - i0) w =
 * t[0][k], exact, and kt - shift = k - i0 exactly, so u is one FNMA, with
 * the bits of x - t[0][k], and row 0 is not read (tests/test_numba_backend.py
 * checks it against (k - i0) w, as _numba/_tab.py does when it builds a
 * kernel).  That saves a permute a vector: the permutes run on one of the
 * two ports that do the FMAs, and these loops are bound by their count of
 * instructions.  1e5 float32 log_sigmoid backward on one thread, alternating
 * runs of the two builds: 24.3-26.3 -> 22.9-23.8 us, with the masked
 * subtraction of fastact_lsig_bwd_v. */
static inline __m512 fastact_tab_at(const float (*t)[32], int deg, __m512 x, float w, float shift)
{
    __m512 kt = _mm512_fmadd_ps(x, _mm512_set1_ps(1.0f / w), _mm512_set1_ps(shift));
    __m512 u = _mm512_fnmadd_ps(_mm512_sub_ps(kt, _mm512_set1_ps(shift)), _mm512_set1_ps(w), x);
    return fastact_tab_poly(t, deg, _mm512_castps_si512(kt), u);
}
static inline __m512 fastact_gelu_phi_v(__m512 v)
{
    __m512 xc = _mm512_min_ps(v, _mm512_set1_ps(5.75f));
    return _mm512_mul_ps(v, fastact_tab_at(fastact_gelu_phi, 6, xc, 0.3125f, 12582912.0f + 13.0f));
}
static inline __m512 fastact_gelu_dphi_v(__m512 v)
{
    __m512 xc = _mm512_min_ps(v, _mm512_set1_ps(6.5f));
    return fastact_tab_at(fastact_gelu_dphi, 6, xc, 0.34375f, 12582912.0f + 12.0f);
}
/* v = k ln2 + r, |r| <= ln2/2 (ln2 in two parts): r, and k as a float in *kf */
static inline __m512 fastact_ln2_reduce(__m512 v, __m512* kf)
{
    *kf = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(*kf, _mm512_set1_ps(0.693359375f), v);
    return _mm512_fnmadd_ps(*kf, _mm512_set1_ps(-2.12194440e-4f), r);
}
/* expm1(r) = r + r^2 q(r) for |r| <= 0.35, q's n coefficients highest first */
static inline __m512 fastact_expm1_q(__m512 r, const float* q, int n)
{
    __m512 p = _mm512_set1_ps(q[0]);
    for (int j = 1; j < n; j++)
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(q[j]));
    return _mm512_fmadd_ps(_mm512_mul_ps(r, r), p, r);
}
/* q: Taylor, 6 terms (relative error of expm1 1.8e-8), for gelu's tail */
static const float fastact_expm1_taylor[6] = {1.98412698e-4f, 1.38888889e-3f, 8.33333333e-3f, 4.16666667e-2f,
                                              1.66666667e-1f, 0.5f};
static inline __m512 fastact_expm1_small(__m512 r)
{
    return fastact_expm1_q(r, fastact_expm1_taylor, 6);
}
/* q: 5 terms fitted in expm1's relative error (_fitpoly.fit_expm1_q: 1.4e-8),
 * for log_sigmoid's backward from y */
static const float fastact_expm1_fit[5] = {1.3862157e-03f, 8.366693e-03f, 4.166753e-02f, 1.6666542e-01f, 4.9999997e-01f};
/* x < -4.125: returns w and sets kf with x phi(x) = w * 2^kf (bwd = 0) or
 * phi(x) + x pdf(x) = w * 2^kf (bwd = 1), where kf is far below 0. */
static inline __m512 fastact_gelu_tail_w(__m512 v, int bwd, __m512* kf_out)
{
    __m512 xc = _mm512_max_ps(_mm512_set1_ps(-14.9f), v);  /* NaN: v */
    /* exp(-x^2/2) = 2^k e^r: x^2 = h + l exactly, r = -h/2 - k ln2 - l/2 */
    __m512 hh = _mm512_mul_ps(xc, xc);
    __m512 hl = _mm512_fmsub_ps(xc, xc, hh);
    __m512 g = _mm512_mul_ps(hh, _mm512_set1_ps(-0.5f));
    __m512 kf;
    __m512 r = _mm512_fmadd_ps(hl, _mm512_set1_ps(-0.5f), fastact_ln2_reduce(g, &kf));
    __m512 e = _mm512_add_ps(fastact_expm1_small(r), _mm512_set1_ps(1.0f));   /* e^r */
    __m512 m = fastact_tab_at(fastact_gelu_tail, 4, xc, -0.34375f, 12582912.0f - 12.0f);
    *kf_out = kf;
    /* pdf(x) = exp(-x^2/2) / sqrt(2 pi) */
    return bwd ? _mm512_mul_ps(_mm512_fmadd_ps(xc, _mm512_set1_ps(0.398942280f), m), e) : _mm512_mul_ps(_mm512_mul_ps(xc, m), e);
}
/* float32 tanh (AVX-512 build): tanh(|x|) = T_i(|x| - c_i) on intervals of
 * width 1/4 centred on c_i = i/4, degree 5 (_numba/_fitpoly.py,
 * fit_table("tanh"): fit error 5.3e-8; the first interval's constant term 0,
 * so tiny and subnormal x keep their relative accuracy, the others' the
 * float32 nearest tanh(c_i)); the last interval, centred on 7.75, reaches to
 * 9.125, past 9.01 where tanh rounds to 1.  The interval's index is |x|
 * clamped to 7.75 plus 1.5 * 2^21 (its nearest multiple of 1/4, ties to
 * even, plus 1.5 * 2^21: the low bits are the interval), u = |x| clamped to
 * 9.125 minus the centre, kt - 1.5 * 2^21 (exact): additions, no FMA, as
 * fastact_sigm_at (NaN stays NaN: vminps returns its second operand).  x's
 * sign put back.  All 2**32 inputs within 1.19 ULP of tanh (the table of
 * 5/16 at degree 6 before: 1.58), 1 ULP from the correctly rounded result
 * (python -m fastact accuracy; before: 2).
 * 6 permutes and 5 FMAs a vector, where the table before took 7 and 8:
 * 50,000 elements on one thread 20.2 -> 17.5 us (AMD Zen 4, 2026-12-05).
 * One pass, no tail.  The Numba backend reads this table too
 * (_numba/_tab.py). */
static const float fastact_tanh_tab[7][32] __attribute__((aligned(64))) = {
    {/* c_i */ 0.e+00f, 2.5e-01f, 5.e-01f, 7.5e-01f, 1.e+00f, 1.25e+00f, 1.5e+00f, 1.75e+00f, 2.e+00f, 2.25e+00f, 2.5e+00f, 2.75e+00f, 3.e+00f, 3.25e+00f, 3.5e+00f, 3.75e+00f, 4.e+00f, 4.25e+00f, 4.5e+00f, 4.75e+00f, 5.e+00f, 5.25e+00f, 5.5e+00f, 5.75e+00f, 6.e+00f, 6.25e+00f, 6.5e+00f, 6.75e+00f, 7.e+00f, 7.25e+00f, 7.5e+00f, 7.75e+00f},
    {/* u^0 */ 0.e+00f, 2.4491866e-01f, 4.6211717e-01f, 6.3514894e-01f, 7.615942e-01f, 8.4828365e-01f, 9.0514827e-01f, 9.4137555e-01f, 9.640276e-01f, 9.780261e-01f, 9.866143e-01f, 9.9185973e-01f, 9.950548e-01f, 9.9699765e-01f, 9.981779e-01f, 9.9889445e-01f, 9.993293e-01f, 9.9959314e-01f, 9.9975324e-01f, 9.9985033e-01f, 9.999092e-01f, 9.999449e-01f, 9.999666e-01f, 9.9997973e-01f, 9.999877e-01f, 9.9999255e-01f, 9.9999547e-01f, 9.9999726e-01f, 9.9999833e-01f, 9.99999e-01f, 9.999994e-01f, 9.9999964e-01f},
    {/* u^1 */ 1.e+00f, 9.400151e-01f, 7.864479e-01f, 5.965858e-01f, 4.1997436e-01f, 2.8041488e-01f, 1.8070664e-01f, 1.138121e-01f, 7.065082e-02f, 4.3464918e-02f, 2.6592227e-02f, 1.6214287e-02f, 9.866037e-03f, 5.995715e-03f, 3.6408848e-03f, 2.2098923e-03f, 1.3409507e-03f, 8.135424e-04f, 4.9351744e-04f, 2.9936252e-04f, 1.8158324e-04f, 1.1013973e-04f, 6.6804576e-05f, 4.0519553e-05f, 2.4576548e-05f, 1.4906502e-05f, 9.041277e-06f, 5.4838215e-06f, 3.3261094e-06f, 2.0173886e-06f, 1.2236086e-06f, 7.683954e-07f},
    {/* u^2 */ -1.8414414e-17f, -2.3021837e-01f, -3.6342692e-01f, -3.7891832e-01f, -3.1985715e-01f, -2.3787522e-01f, -1.6357055e-01f, -1.0714381e-01f, -6.8110175e-02f, -4.2504262e-02f, -2.623347e-02f, -1.6084522e-02f, -9.823899e-03f, -5.9822574e-03f, -3.6314328e-03f, -2.2099286e-03f, -1.3469933e-03f, -8.114337e-04f, -4.996482e-04f, -3.0539502e-04f, -1.858763e-04f, -1.0933447e-04f, -7.2651834e-05f, -3.916787e-05f, -2.693906e-05f, -1.5557343e-05f, -6.795992e-06f, -5.5080895e-06f, -1.9086635e-06f, -9.112008e-07f, -5.0260796e-06f, -1.2388472e-06f},
    {/* u^3 */ -3.333269e-01f, -2.5700513e-01f, -9.423991e-02f, 4.1806575e-02f, 1.0360056e-01f, 1.0830885e-01f, 8.7817304e-02f, 6.292148e-02f, 4.210936e-02f, 2.7087756e-02f, 1.7021019e-02f, 1.0546566e-02f, 6.4799334e-03f, 3.961135e-03f, 2.4139897e-03f, 1.4683772e-03f, 8.9215516e-04f, 5.416955e-04f, 3.2875867e-04f, 1.9947991e-04f, 1.21020785e-04f, 7.341482e-05f, 4.4530814e-05f, 2.7011372e-05f, 1.638363e-05f, 9.937383e-06f, 6.027414e-06f, 3.6558047e-06f, 2.2173733e-06f, 1.3449172e-06f, 8.1572205e-07f, 1.6667002e-06f},
    {/* u^4 */ -1.2270272e-15f, 1.380545e-01f, 1.636053e-01f, 9.96096e-02f, 2.8384045e-02f, -1.2136443e-02f, -2.4635583e-02f, -2.3297044e-02f, -1.7853651e-02f, -1.2603574e-02f, -8.195423e-03f, -5.0021713e-03f, -2.8610334e-03f, -1.7416538e-03f, -1.3368372e-03f, -6.129303e-04f, -1.10880734e-04f, -3.568234e-04f, 1.3715556e-04f, 1.9338341e-04f, 1.4735355e-04f, -7.535424e-05f, 2.5998714e-04f, -7.872987e-05f, 1.058211e-04f, 2.6435464e-05f, -1.11378184e-04f, -6.6021505e-07f, -6.9518224e-05f, -5.4059554e-05f, 1.8310193e-04f, -1.2272586e-06f},
    {/* u^5 */ 1.3208996e-01f, 7.467497e-02f, -2.4900923e-02f, -6.3539125e-02f, -4.6078727e-02f, -1.9198421e-02f, -2.775718e-03f, 3.666539e-03f, 4.7546076e-03f, 3.9691576e-03f, 2.8573931e-03f, 1.9080281e-03f, 1.2251312e-03f, 7.677089e-04f, 4.733638e-04f, 2.9035454e-04f, 1.7799485e-04f, 1.0816552e-04f, 6.610969e-05f, 4.0150575e-05f, 2.4303652e-05f, 1.4678302e-05f, 8.970283e-06f, 5.4109223e-06f, 3.2883127e-06f, 1.993651e-06f, 1.2082933e-06f, 7.344322e-07f, 4.4515244e-07f, 2.696265e-07f, 1.6415167e-07f, 3.410212e-07f},
};
#define FASTACT_TANH_SHIFT 3145728.0f
static inline __m512 fastact_tanh_v(__m512 v)
{
    const __m512 sign = _mm512_set1_ps(-0.0f), shift = _mm512_set1_ps(FASTACT_TANH_SHIFT);
    __m512 a = _mm512_andnot_ps(sign, v);
    __m512 kt = _mm512_add_ps(_mm512_min_ps(_mm512_set1_ps(7.75f), a), shift);
    __m512 u = _mm512_sub_ps(_mm512_min_ps(_mm512_set1_ps(9.125f), a), _mm512_sub_ps(kt, shift));
    __m512 p = fastact_tab_poly(fastact_tanh_tab, 5, _mm512_castps_si512(kt), u);
    return _mm512_or_ps(_mm512_andnot_ps(sign, p), _mm512_and_ps(sign, v));  /* copysign(p, x) */
}
/* out[:n] = f(x[:n]), whole vectors then the last n % 16 (masked) */
#define FASTACT_MAP1(f, x, out, n)                                                              \
    do {                                                                                        \
        long j_ = 0;                                                                            \
        for (; j_ + 16 <= (n); j_ += 16)                                                        \
            _mm512_storeu_ps((out) + j_, f(_mm512_loadu_ps((x) + j_)));                         \
        if (j_ < (n)) {                                                                         \
            __mmask16 in_ = (__mmask16)((1u << ((n) - j_)) - 1u);                               \
            _mm512_mask_storeu_ps((out) + j_, in_, f(_mm512_maskz_loadu_ps(in_, (x) + j_)));    \
        }                                                                                       \
    } while (0)
/* The same with non-temporal stores from out's first 64-byte boundary on (a
 * result of _stream_min bytes or more: _elementwise.pxi's _par_u_, fn_nt): out
 * 4-byte aligned */
#define FASTACT_MAP1_NT(f, x, out, n)                                                           \
    do {                                                                                        \
        long h_ = fastact_stream_head((out), (n), 4), k_;                                       \
        FASTACT_MAP1(f, x, out, h_);                                                            \
        for (k_ = h_; k_ + 16 <= (n); k_ += 16)                                                 \
            _mm512_stream_ps((out) + k_, f(_mm512_loadu_ps((x) + k_)));                         \
        _mm_sfence();                                                                           \
        FASTACT_MAP1(f, (x) + k_, (out) + k_, (n) - k_);                                        \
    } while (0)
static inline void fastact_tanh_f32(const float* x, float* out, long n)
{
    FASTACT_MAP1(fastact_tanh_v, x, out, n);
}
static inline void fastact_tanh_f32_nt(const float* x, float* out, long n)
{
    FASTACT_MAP1_NT(fastact_tanh_v, x, out, n);
}
/* float32 tanhshrink (AVX-512 build): x - tanh(x) = x^3 h(|x|) with h(a) =
 * (a - tanh a) / a^3 = H_i(a - c_i) on intervals of width 5/16 centred on c_i
 * = i * 5/16, degree 6 (_numba/_fitpoly.py, fit_table("tanhshrink"): fit
 * error 5.0e-8; h is even, 1/3 at 0, about 1/a^2 far out, so no interval
 * needs a fixed term and nothing cancels), formed as (x * x^2) * h like the
 * series of _scalar.pxi's _tanhshrink_f.  From |x| >= 9.5 (and +-inf, and
 * where x^3 would overflow) x - sign(x), exact: tanh rounds to 1 and
 * 2 e^-2|x| is far below half an ULP of |x| - 1.  NaN stays NaN (through
 * the table, as tanh's).  One pass, no tail; the Numba backend reads this
 * table too (_numba/_tab.py). */
static const float fastact_tanhshrink_tab[8][32] __attribute__((aligned(64))) = {
    {/* c_i */ 0.e+00f, 3.125e-01f, 6.25e-01f, 9.375e-01f, 1.25e+00f, 1.5625e+00f, 1.875e+00f, 2.1875e+00f, 2.5e+00f, 2.8125e+00f, 3.125e+00f, 3.4375e+00f, 3.75e+00f, 4.0625e+00f, 4.375e+00f, 4.6875e+00f, 5.e+00f, 5.3125e+00f, 5.625e+00f, 5.9375e+00f, 6.25e+00f, 6.5625e+00f, 6.875e+00f, 7.1875e+00f, 7.5e+00f, 7.8125e+00f, 8.125e+00f, 8.4375e+00f, 8.75e+00f, 9.0625e+00f, 9.375e+00f, 9.6875e+00f},
    {/* u^0 */ 3.3333334e-01f, 3.2080758e-01f, 2.8835952e-01f, 2.4688683e-01f, 2.0567878e-01f, 1.6952209e-01f, 1.3971224e-01f, 1.1582135e-01f, 9.685668e-02f, 8.179357e-02f, 6.975827e-02f, 6.005984e-02f, 5.2169114e-02f, 4.568566e-02f, 4.0306993e-02f, 3.580372e-02f, 3.2000728e-02f, 2.8763197e-02f, 2.598643e-02f, 2.3588344e-02f, 2.150403e-02f, 1.968169e-02f, 1.8079646e-02f, 1.6664095e-02f, 1.5407409e-02f, 1.4286849e-02f, 1.3283568e-02f, 1.2381853e-02f, 1.1568513e-02f, 1.0832424e-02f, 1.0164148e-02f, 9.555638e-03f},
    {/* u^1 */ 1.0461394e-17f, -7.711679e-02f, -1.24274604e-01f, -1.360602e-01f, -1.2520148e-01f, -1.0561317e-01f, -8.5458525e-02f, -6.799867e-02f, -5.3929925e-02f, -4.2941023e-02f, -3.4451995e-02f, -2.7898323e-02f, -2.2814233e-02f, -1.883987e-02f, -1.5704956e-02f, -1.3208638e-02f, -1.1201888e-02f, -9.573744e-03f, -8.241065e-03f, -7.1410816e-03f, -6.2259957e-03f, -5.4590935e-03f, -4.8119277e-03f, -4.2622676e-03f, -3.792596e-03f, -3.3889993e-03f, -3.0403426e-03f, -2.73765e-03f, -2.473636e-03f, -2.2423496e-03f, -2.0388977e-03f, -1.8592357e-03f},
    {/* u^2 */ -1.3333637e-01f, -1.046185e-01f, -4.5151334e-02f, 3.5091292e-03f, 2.7370552e-02f, 3.3184484e-02f, 3.050935e-02f, 2.5216179e-02f, 1.9904263e-02f, 1.5421332e-02f, 1.1894277e-02f, 9.200471e-03f, 7.1633533e-03f, 5.6257294e-03f, 4.4586053e-03f, 3.5686009e-03f, 2.882009e-03f, 2.3497844e-03f, 1.9314556e-03f, 1.6010371e-03f, 1.3373065e-03f, 1.1244974e-03f, 9.522315e-04f, 8.110935e-04f, 6.953962e-04f, 5.9914077e-04f, 5.1905494e-04f, 4.5158944e-04f, 3.9493895e-04f, 3.4667505e-04f, 3.0550838e-04f, 2.7023337e-04f},
    {/* u^3 */ 5.130805e-17f, 5.5467997e-02f, 6.309296e-02f, 3.8535055e-02f, 1.39362225e-02f, 2.5770382e-04f, -4.9432544e-03f, -5.9150937e-03f, -5.286357e-03f, -4.260891e-03f, -3.2876115e-03f, -2.4927137e-03f, -1.881222e-03f, -1.4229554e-03f, -1.0825127e-03f, -8.3016773e-04f, -6.422663e-04f, -5.013871e-04f, -3.9508616e-04f, -3.140222e-04f, -2.5173777e-04f, -2.0346692e-04f, -1.6575759e-04f, -1.3602876e-04f, -1.12379435e-04f, -9.346086e-05f, -7.819568e-05f, -6.581659e-05f, -5.57167e-05f, -4.7389432e-05f, -4.051763e-05f, -3.4784527e-05f},
    {/* u^4 */ 5.4197643e-02f, 2.6896995e-02f, -1.2181317e-02f, -2.259007e-02f, -1.54583715e-02f, -6.89986e-03f, -2.0126624e-03f, 1.8390248e-04f, 7.2229275e-04f, 8.785538e-04f, 7.882131e-04f, 5.7833124e-04f, 4.603917e-04f, 3.083329e-04f, 2.7728046e-04f, 1.5945957e-04f, 1.673414e-04f, 7.853801e-05f, 8.73174e-05f, 5.080683e-05f, 2.2286129e-05f, 4.114713e-05f, 2.6497644e-05f, 3.9024235e-05f, 1.0422814e-05f, 1.4251838e-05f, 1.5451321e-06f, 1.1033648e-05f, -2.8547406e-06f, 9.333301e-07f, 5.2181435e-06f, 9.407189e-06f},
    {/* u^5 */ -8.018581e-15f, -2.7726775e-02f, -1.6836416e-02f, 1.0354999e-03f, 6.058985e-03f, 4.360612e-03f, 2.085066e-03f, 7.710384e-04f, 1.745688e-04f, -3.7097718e-05f, -9.856255e-05f, -9.374463e-05f, -7.675686e-05f, -5.71358e-05f, -4.6582627e-05f, -3.3199023e-05f, -2.3382237e-05f, -1.801916e-05f, -1.1346269e-05f, -8.980226e-06f, -7.148891e-06f, -5.6263284e-06f, -3.7628909e-06f, -2.4821725e-06f, -2.3200773e-06f, -1.8443916e-06f, -1.7782494e-06f, -1.3538345e-06f, -5.901476e-07f, -6.146622e-07f, -2.3441449e-07f, -4.3829405e-07f},
    {/* u^6 */ -2.6633777e-02f, 3.091121e-03f, 1.887558e-02f, 4.4187168e-03f, 2.970375e-04f, -1.9023886e-03f, -5.924728e-04f, -2.3576063e-03f, 5.659552e-04f, -1.1292009e-03f, -1.6745566e-03f, -4.048218e-04f, -8.122278e-04f, 1.5506257e-04f, -9.5827004e-04f, 3.1415248e-04f, -8.2970987e-04f, 4.2048615e-04f, -2.9326347e-04f, 1.2872346e-04f, 4.7288722e-04f, -1.567238e-04f, 5.0121953e-06f, -3.942969e-04f, 1.4228268e-04f, -1.5294629e-05f, 2.0796248e-04f, -4.6231115e-05f, 2.2457688e-04f, 1.1268526e-04f, -4.5987895e-06f, -1.1536123e-04f},
};
#define FASTACT_TANHSHRINK_BIG 9.5f
static inline __m512 fastact_tanhshrink_v(__m512 v)
{
    const __m512 sign = _mm512_set1_ps(-0.0f);
    __m512 a = _mm512_andnot_ps(sign, v);
    __m512 ac = _mm512_min_ps(_mm512_set1_ps(FASTACT_TANHSHRINK_BIG), a);  /* NaN: a */
    __m512 h = fastact_tab_at(fastact_tanhshrink_tab, 6, ac, 0.3125f, 12582912.0f);
    __m512 r = _mm512_mul_ps(_mm512_mul_ps(v, _mm512_mul_ps(v, v)), h);
    __m512 big = _mm512_sub_ps(v, _mm512_or_ps(_mm512_and_ps(sign, v), _mm512_set1_ps(1.0f)));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(FASTACT_TANHSHRINK_BIG), _CMP_GE_OQ), r, big);
}
static inline void fastact_tanhshrink_f32(const float* x, float* out, long n)
{
    FASTACT_MAP1(fastact_tanhshrink_v, x, out, n);
}
static inline void fastact_tanhshrink_f32_nt(const float* x, float* out, long n)
{
    FASTACT_MAP1_NT(fastact_tanhshrink_v, x, out, n);
}
/* float32 log_sigmoid backward (AVX-512 build), from tables of the same kind.
 *
 * From x, g * sigmoid(-x) (fastact_log_sigmoid_bwd_f32): s(a) = sigmoid(-a)
 * = S_i(a - c_i) for a = |x| on intervals of width 1/2 centred on c_i = i/2,
 * degree 5 (fit_table("sigm"): fit error 5.5e-8; degree 6 had 4.9e-8 and the
 * same largest ULP errors over all 2^32 inputs, and took one permute and one
 * FMA more a vector: 1e5 elements on one thread, 15.6 -> 13.5 us, AMD Zen 4,
 * 2026-12-04); sigmoid(-x) is s(|x|) for
 * x >= 0 and 1 - s(|x|) for x < 0 (at least 1/2: no cancellation).  The
 * interval's index and u come from additions, not FMAs (fastact_sigm_at):
 * the width is a power of two.  Lanes with |x| >= 15.75, past the last
 * interval (rare: s < 1.5e-7 there), and +-inf take the tail, which runs
 * only for a vector holding one; their table result, from the wrong
 * interval, is finite and discarded (NaN stays NaN through the table)
 * (fastact_sigm_tail_v): s = e / (1 + e), e = exp(-|x|), is e (1 - e) to
 * float32's precision; with e = 2^-k p, p = exp(-r), r = |x| - k ln2, the
 * backward is 2^(1-k) (g (p/2 - (p/2) e)), the power of two applied last by
 * vscalefps, so the product is rounded once even where s or the result is
 * subnormal and however large g is (|x| clamped to 200; beyond 192.7 any
 * float32 g times s rounds to 0).
 *
 * From y = log_sigmoid(x) <= 0, -g * expm1(y) (fastact_log_sigmoid_bwdy_f32):
 * y = k ln2 + r, |r| <= ln2/2, expm1(y) = 2^k expm1(r) + (2^k - 1), one
 * rounding (fastact_expm1_fit, 5 terms: with g = 1, at most 1 ULP from the
 * correctly rounded result over all 2^31 y <= 0, 0.20 % of them at 1 ULP; the
 * Taylor q of 6 terms before, with a compare and a blend for the clamp at 0,
 * 1 ULP too, 0.14 % of them, and took 1.19x the time, 1e5 elements on one
 * thread, AMD Zen 4, 2026-12-04; the 32-interval table before that had 1.10
 * ULP and took 1.10x that one's time); y clamped to [-17.7, 0] (expm1 rounds to -1 below
 * -17.33; a y above 0, no output of log_sigmoid, counts as 0, the limit at x =
 * +inf, and gives -0 as -expm1(+0) does).  One pass, no tail.
 *
 * The forward sigmoid(x) is the first at -x with g = 1 (fastact_sigmoid_f32),
 * silu(x) the first at -x with g = x (fastact_silu_f32).
 * The Numba backend reads the table from this file (_numba/_tab.py) and emits
 * the same operations. */
static const float fastact_sigm_tab[7][32] __attribute__((aligned(64))) = {
    {/* c_i */ 0.e+00f, 5.e-01f, 1.e+00f, 1.5e+00f, 2.e+00f, 2.5e+00f, 3.e+00f, 3.5e+00f, 4.e+00f, 4.5e+00f, 5.e+00f, 5.5e+00f, 6.e+00f, 6.5e+00f, 7.e+00f, 7.5e+00f, 8.e+00f, 8.5e+00f, 9.e+00f, 9.5e+00f, 1.e+01f, 1.05e+01f, 1.1e+01f, 1.15e+01f, 1.2e+01f, 1.25e+01f, 1.3e+01f, 1.35e+01f, 1.4e+01f, 1.45e+01f, 1.5e+01f, 1.55e+01f},
    {/* u^0 */ 5.e-01f, 3.7754068e-01f, 2.6894143e-01f, 1.8242553e-01f, 1.1920292e-01f, 7.585818e-02f, 4.7425874e-02f, 2.931223e-02f, 1.798621e-02f, 1.0986943e-02f, 6.692851e-03f, 4.0701376e-03f, 2.4726233e-03f, 1.5011822e-03f, 9.110512e-04f, 5.5277866e-04f, 3.3535014e-04f, 2.0342697e-04f, 1.2339458e-04f, 7.4846226e-05f, 4.539787e-05f, 2.753569e-05f, 1.6701422e-05f, 1.0129991e-05f, 6.1441747e-06f, 3.7266393e-06f, 2.2603242e-06f, 1.3709572e-06f, 8.3152804e-07f, 5.043474e-07f, 3.0590223e-07f, 1.8553911e-07f},
    {/* u^1 */ -2.5e-01f, -2.350037e-01f, -1.9661194e-01f, -1.4914647e-01f, -1.0499359e-01f, -7.010373e-02f, -4.5176663e-02f, -2.8453024e-02f, -1.7662706e-02f, -1.0866229e-02f, -6.648056e-03f, -4.0535713e-03f, -2.4665094e-03f, -1.4989285e-03f, -9.102211e-04f, -5.5247307e-04f, -3.3523765e-04f, -2.0338557e-04f, -1.2337934e-04f, -7.484062e-05f, -4.5395802e-05f, -2.753493e-05f, -1.6701142e-05f, -1.0129887e-05f, -6.1441365e-06f, -3.7266252e-06f, -2.2603188e-06f, -1.3709551e-06f, -8.315273e-07f, -5.0434704e-07f, -3.0590212e-07f, -1.8553907e-07f},
    {/* u^2 */ 2.5248855e-11f, 2.8776826e-02f, 4.5427464e-02f, 4.7364786e-02f, 3.9981697e-02f, 2.9733948e-02f, 2.0445868e-02f, 1.3392527e-02f, 8.513659e-03f, 5.313707e-03f, 3.279521e-03f, 2.0102845e-03f, 1.2271446e-03f, 7.4721343e-04f, 4.5428026e-04f, 2.7592856e-04f, 1.6750509e-04f, 1.0165133e-04f, 6.1673854e-05f, 3.7414593e-05f, 2.2695753e-05f, 1.3766667e-05f, 8.350222e-06f, 5.0648077e-06f, 3.0720098e-06f, 1.8632876e-06f, 1.1301539e-06f, 6.85473e-07f, 4.1575996e-07f, 2.521735e-07f, 1.5294978e-07f, 9.276866e-08f},
    {/* u^3 */ 2.083285e-02f, 1.6058369e-02f, 5.8881897e-03f, -2.6120518e-03f, -6.475032e-03f, -6.768789e-03f, -5.488364e-03f, -3.932594e-03f, -2.6318342e-03f, -1.6929789e-03f, -1.0638377e-03f, -6.5918895e-04f, -4.0499758e-04f, -2.475855e-04f, -1.508811e-04f, -9.1773814e-05f, -5.5761502e-05f, -3.3857727e-05f, -2.054822e-05f, -1.246835e-05f, -7.56423e-06f, -4.588553e-06f, -2.7832807e-06f, -1.6882612e-06f, -1.0240049e-06f, -6.211011e-07f, -3.7673925e-07f, -2.2850058e-07f, -1.3858903e-07f, -8.4063856e-08f, -5.09843e-08f, -3.0923243e-08f},
    {/* u^4 */ -4.5658965e-10f, -4.3084193e-03f, -5.101774e-03f, -3.1127338e-03f, -8.816197e-04f, 3.847772e-04f, 7.7530835e-04f, 7.334619e-04f, 5.5928796e-04f, 3.8572605e-04f, 2.52039e-04f, 1.597049e-04f, 9.957492e-05f, 6.1288105e-05f, 3.7539103e-05f, 2.2924647e-05f, 1.395047e-05f, 8.470801e-06f, 5.1509724e-06f, 3.1237184e-06f, 1.8957464e-06f, 1.1500028e-06f, 6.9818526e-07f, 4.2340554e-07f, 2.5682968e-07f, 1.5576337e-07f, 9.440197e-08f, 5.7287565e-08f, 3.4763417e-08f, 2.1060929e-08f, 1.2789798e-08f, 7.7588505e-09f},
    {/* u^5 */ -2.0624937e-03f, -1.1133135e-03f, 4.1088747e-04f, 9.826382e-04f, 7.199234e-04f, 2.9343637e-04f, 4.0783656e-05f, -5.7265665e-05f, -7.43028e-05f, -6.211847e-05f, -4.43786e-05f, -2.9465476e-05f, -1.9112567e-05f, -1.1817217e-05f, -7.316469e-06f, -4.5326456e-06f, -2.7591434e-06f, -1.6688722e-06f, -1.0236765e-06f, -6.1713865e-07f, -3.7458238e-07f, -2.2772812e-07f, -1.3892122e-07f, -8.395923e-08f, -5.103958e-08f, -3.0968877e-08f, -1.8575559e-08f, -1.13259455e-08f, -6.918128e-09f, -4.135806e-09f, -2.544892e-09f, -1.5473922e-09f},
};
/* s(a) from the table for 0 <= a < 15.75, and in *tail the lanes with a >=
 * 15.75 (or +inf), those of kt > FASTACT_SIGM_SHIFT + 15.5.  kt = a +
 * 1.5 * 2^22 is a's nearest multiple of 1/2 (ties to even) plus 1.5 * 2^22:
 * its low bits are 2a's nearest integer k, the interval; u = a - k/2 is
 * vreduceps (exact, and 0 at +inf, where a - (kt - 1.5 * 2^22) would raise
 * the invalid flag).  The FMA that scaled a in fastact_tab_at and the FMA
 * of u took a port the table's permutes and FMAs need: 50,000 elements on
 * one thread, 13.9 -> 12.0 us with the clamp of a dropped as well (AMD Zen
 * 4, 2026-12-05); the same bits for every |x| <= 15.5, and within 1 ULP
 * where the table replaces the tail (over all 2^32 inputs: sigmoid 1 ULP,
 * silu 2, as before). */
#define FASTACT_SIGM_SHIFT 6291456.0f
static inline __m512 fastact_sigm_at(__m512 a, __mmask16* tail)
{
    __m512 kt = _mm512_add_ps(a, _mm512_set1_ps(FASTACT_SIGM_SHIFT));
    __m512 u = _mm512_reduce_ps(a, (1 << 4) | _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    *tail = _mm512_cmp_ps_mask(kt, _mm512_set1_ps(FASTACT_SIGM_SHIFT + 15.5f), _CMP_GT_OQ);
    /* intervals 16..31: a from 7.75 on (NaN: NaN through u either way) */
    __mmask16 hi = _mm512_cmp_ps_mask(kt, _mm512_set1_ps(FASTACT_SIGM_SHIFT + 7.5f), _CMP_GT_OQ);
    return fastact_tab_poly_lo(fastact_sigm_tab, 5, _mm512_castps_si512(kt), u, hi);
}
/* exp(-r) / 2 for |r| <= ln2 / 2: Taylor, 8 terms (error < 8e-9 relative),
 * highest first */
static const float fastact_exp_neg_half[8] = {-9.92063492e-05f, 6.94444444e-04f, -4.16666667e-03f, 2.08333333e-02f,
                                              -8.33333333e-02f, 2.5e-01f, -5.e-01f, 5.e-01f};
/* For a = |x| > 15.5: sh and k1 with sigmoid(-a) = 2^k1 sh, sh = h - h e,
 * h = exp(-r) / 2, e = exp(-a) = 2^k1 h, r = a - k ln2, k1 = 1 - k (a
 * clamped to 200) */
static inline __m512 fastact_sigm_tail_sh(__m512 a, __m512* k1)
{
    __m512 ac = _mm512_min_ps(a, _mm512_set1_ps(200.0f));
    __m512 kf;
    __m512 r = fastact_ln2_reduce(ac, &kf);
    __m512 h = _mm512_set1_ps(fastact_exp_neg_half[0]);
    for (int j = 1; j < 8; j++)
        h = _mm512_fmadd_ps(h, r, _mm512_set1_ps(fastact_exp_neg_half[j]));
    *k1 = _mm512_sub_ps(_mm512_set1_ps(1.0f), kf);
    __m512 e = _mm512_scalef_ps(h, *k1);               /* exp(-|x|) */
    return _mm512_fnmadd_ps(h, e, h);                  /* s * 2^(k-1) */
}
/* Beyond this |x| the reference's exp(-|x|) is 0 in float64 (745.1332 is the
 * largest float32 where it is not), and so the factor sigmoid(-|x|): the
 * result is g * 0, NaN for an infinite g, as the reference's, where the
 * tail's clamp at 200 gave g's infinity */
#define FASTACT_EXP_ZERO 745.1332f
/* g * sigmoid(-x) for the lanes with |x| >= 15.75 (a = |x|) */
static inline __m512 fastact_sigm_tail_v(__m512 v, __m512 a, __m512 gv)
{
    __m512 k1;
    __m512 sh = fastact_sigm_tail_sh(a, &k1);
    __m512 pos = _mm512_scalef_ps(_mm512_mul_ps(gv, sh), k1);
    __m512 neg = _mm512_mul_ps(gv, _mm512_sub_ps(_mm512_set1_ps(1.0f), _mm512_scalef_ps(sh, k1)));
    __m512 r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GE_OQ), neg, pos);
    return _mm512_mask_mul_ps(r, _mm512_cmp_ps_mask(v, _mm512_set1_ps(FASTACT_EXP_ZERO), _CMP_GT_OQ), gv,
                              _mm512_setzero_ps());
}
static inline __m512 fastact_lsig_bwd_v(__m512 v, __m512 gv)
{
    const __m512 sign = _mm512_set1_ps(-0.0f);
    __m512 a = _mm512_andnot_ps(sign, v);
    __mmask16 t;
    __m512 s = fastact_sigm_at(a, &t);
    /* x < 0 by the sign bit: 1 - s, in one masked subtraction (-0: 1 - s(0)
     * = s(0) = 1/2; NaN: the NaN of s either way) */
    __m512 f = _mm512_mask_sub_ps(s, _mm512_movepi32_mask(_mm512_castps_si512(v)), _mm512_set1_ps(1.0f), s);
    __m512 res = _mm512_mul_ps(gv, f);
    if (t)
        res = _mm512_mask_blend_ps(t, res, fastact_sigm_tail_v(v, a, gv));
    return res;
}
/* g sigmoid(v): log_sigmoid's backward at -v (sigmoid, silu, softplus's
 * backward, glu) */
static inline __m512 fastact_gsig_v(__m512 v, __m512 gv)
{
    return fastact_lsig_bwd_v(_mm512_xor_ps(v, _mm512_set1_ps(-0.0f)), gv);
}
static inline __m512 fastact_lsig_bwdy_v(__m512 y, __m512 gv)
{
    /* y clamped to [-17.7, 0]; NaN stays y (vmaxps and vminps return their
     * second operand then); -0 stays -0, which gives r = +0 and the result of
     * +0 */
    __m512 yc = _mm512_min_ps(_mm512_setzero_ps(), _mm512_max_ps(_mm512_set1_ps(-17.7f), y));
    __m512 kf;
    __m512 em = fastact_expm1_q(fastact_ln2_reduce(yc, &kf), fastact_expm1_fit, 5);
    __m512 s = _mm512_scalef_ps(_mm512_set1_ps(1.0f), kf);        /* 2^k */
    /* -expm1(y) = -(2^k expm1(r) + (2^k - 1)), one rounding; -0 at y = +0 */
    __m512 e = _mm512_fnmsub_ps(s, em, _mm512_sub_ps(s, _mm512_set1_ps(1.0f)));
    return _mm512_mul_ps(gv, e);
}
/* silu's backward, g * s (1 + x (1 - s)) with s = sigmoid(x), from t =
 * sigmoid(-|x|) (the table): x >= 0, s = 1 - t and 1 - s = t; x < 0, s = t
 * and 1 - s = 1 - t.  For |x| >= 15.75, t from the tail, x clamped to +-200
 * (beyond, t rounds to 0 and the result is g, or 0): x > 0 as above; x <
 * 0, 2^(k1 + 8) (g (sh f 2^-8)), f = 1 + x (1 - t), so the product is
 * rounded once where it is subnormal and g f cannot overflow. */
static inline __m512 fastact_silu_bwd_tail_v(__m512 v, __m512 a, __m512 gv)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 k1;
    __m512 sh = fastact_sigm_tail_sh(a, &k1);
    __m512 t = _mm512_scalef_ps(sh, k1);
    __m512 xc = _mm512_max_ps(_mm512_set1_ps(-200.0f), _mm512_min_ps(_mm512_set1_ps(200.0f), v));
    __m512 pos = _mm512_mul_ps(gv, _mm512_mul_ps(_mm512_sub_ps(one, t), _mm512_fmadd_ps(xc, t, one)));
    __m512 f = _mm512_fmadd_ps(xc, _mm512_sub_ps(one, t), one);
    __m512 w = _mm512_mul_ps(_mm512_mul_ps(sh, f), _mm512_set1_ps(0.00390625f));
    __m512 neg = _mm512_scalef_ps(_mm512_mul_ps(gv, w), _mm512_add_ps(k1, _mm512_set1_ps(8.0f)));
    __m512 r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GE_OQ), neg, pos);
    /* x below -FASTACT_EXP_ZERO: the reference's factor is +0 (g * 0, NaN for an infinite g) */
    return _mm512_mask_mul_ps(r, _mm512_cmp_ps_mask(v, _mm512_set1_ps(-FASTACT_EXP_ZERO), _CMP_LT_OQ), gv,
                              _mm512_setzero_ps());
}
static inline __m512 fastact_silu_bwd_v(__m512 v, __m512 gv)
{
    const __m512 sign = _mm512_set1_ps(-0.0f), one = _mm512_set1_ps(1.0f);
    __m512 a = _mm512_andnot_ps(sign, v);
    __mmask16 tl;
    __m512 t = fastact_sigm_at(a, &tl);
    __m512 u = _mm512_sub_ps(one, t);
    __mmask16 neg = _mm512_movepi32_mask(_mm512_castps_si512(v));  /* the sign bit, as fastact_lsig_bwd_v */
    __m512 s_ = _mm512_mask_blend_ps(neg, u, t);
    __m512 oms = _mm512_mask_blend_ps(neg, t, u);
    __m512 res = _mm512_mul_ps(gv, _mm512_mul_ps(s_, _mm512_fmadd_ps(v, oms, one)));
    if (tl)
        res = _mm512_mask_blend_ps(tl, res, fastact_silu_bwd_tail_v(v, a, gv));
    return res;
}
/* out[:n] = f(x[:n], g[:n]), whole vectors then the last n % 16 (masked) */
#define FASTACT_MAP2(f, g, x, out, n)                                                           \
    do {                                                                                        \
        long j_ = 0;                                                                            \
        for (; j_ + 16 <= (n); j_ += 16)                                                        \
            _mm512_storeu_ps((out) + j_, f(_mm512_loadu_ps((x) + j_), _mm512_loadu_ps((g) + j_))); \
        if (j_ < (n)) {                                                                         \
            __mmask16 in_ = (__mmask16)((1u << ((n) - j_)) - 1u);                               \
            _mm512_mask_storeu_ps((out) + j_, in_, f(_mm512_maskz_loadu_ps(in_, (x) + j_),      \
                                                     _mm512_maskz_loadu_ps(in_, (g) + j_)));    \
        }                                                                                       \
    } while (0)
/* FASTACT_MAP2_NT without its sfence: for a caller that fences once after
 * many calls (glu's forward rows, _impl.pxi) */
#define FASTACT_MAP2_STREAM(f, g, x, out, n)                                                    \
    do {                                                                                        \
        long h_ = fastact_stream_head((out), (n), 4), k_;                                       \
        FASTACT_MAP2(f, g, x, out, h_);                                                         \
        for (k_ = h_; k_ + 16 <= (n); k_ += 16)                                                 \
            _mm512_stream_ps((out) + k_, f(_mm512_loadu_ps((x) + k_), _mm512_loadu_ps((g) + k_))); \
        FASTACT_MAP2(f, (g) + k_, (x) + k_, (out) + k_, (n) - k_);                              \
    } while (0)
#define FASTACT_MAP2_NT(f, g, x, out, n)                                                        \
    do {                                                                                        \
        FASTACT_MAP2_STREAM(f, g, x, out, n);                                                   \
        _mm_sfence();                                                                           \
    } while (0)
static inline void fastact_log_sigmoid_bwd_f32(const float* g, const float* x, float* out, long n)
{
    FASTACT_MAP2(fastact_lsig_bwd_v, g, x, out, n);
}
static inline void fastact_log_sigmoid_bwd_f32_nt(const float* g, const float* x, float* out, long n)
{
    FASTACT_MAP2_NT(fastact_lsig_bwd_v, g, x, out, n);
}
/* softplus's backward for beta = 1: g sigmoid(x), log_sigmoid's backward
 * at -x (the same table, the same tail), and g where x > t, t the largest
 * float32 not above the threshold (_impl.pxi, _b_softplus_tab); NaN: the
 * table's NaN */
static inline __m512 fastact_softplus_bwd1_v(__m512 v, __m512 gv, __m512 tv)
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, tv, _CMP_GT_OQ), fastact_gsig_v(v, gv), gv);
}
static inline void fastact_softplus_bwd1_f32(const float* g, const float* x, float* out, long n, float t)
{
    const __m512 tv = _mm512_set1_ps(t);
#define FASTACT_SOFTPLUS_BWD1_(v, gv) fastact_softplus_bwd1_v((v), (gv), tv)
    FASTACT_MAP2(FASTACT_SOFTPLUS_BWD1_, g, x, out, n);
#undef FASTACT_SOFTPLUS_BWD1_
}
static inline void fastact_softplus_bwd1_f32_nt(const float* g, const float* x, float* out, long n, float t)
{
    const __m512 tv = _mm512_set1_ps(t);
#define FASTACT_SOFTPLUS_BWD1_(v, gv) fastact_softplus_bwd1_v((v), (gv), tv)
    FASTACT_MAP2_NT(FASTACT_SOFTPLUS_BWD1_, g, x, out, n);
#undef FASTACT_SOFTPLUS_BWD1_
}
/* glu's forward on its halves: a sigmoid(b) (fastact_gsig_v with g = a: the
 * same table and tail, a sigmoid(b) rounded once, also where sigmoid(b) is
 * subnormal) */
static inline void fastact_glu_f32(const float* a, const float* b, float* out, long n)
{
    FASTACT_MAP2(fastact_gsig_v, a, b, out, n);
}
/* the same, out's whole lines stored non-temporally, no sfence (the caller fences) */
static inline void fastact_glu_f32_st(const float* a, const float* b, float* out, long n)
{
    FASTACT_MAP2_STREAM(fastact_gsig_v, a, b, out, n);
}
/* sigmoid's backward from x, g t (1 - t) with t = sigmoid(-|x|) from the
 * table (sigmoid(x) sigmoid(-x) is even in x).  The tail (|x| >= 15.75):
 * 2^k1 (g (sh (1 - t))), one rounding where it is subnormal, and g * 0
 * beyond FASTACT_EXP_ZERO.  (tanh's, 4 g t (1 - t) at 2x, was no faster
 * for x ~ N(0, 9): 2x reaches the tail in a vector of 16 one time in eight.) */
static inline __m512 fastact_dsig_v(__m512 v, __m512 gv)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 a = _mm512_andnot_ps(_mm512_set1_ps(-0.0f), v);
    __mmask16 tl;
    __m512 t = fastact_sigm_at(a, &tl);
    __m512 res = _mm512_mul_ps(gv, _mm512_mul_ps(t, _mm512_sub_ps(one, t)));
    if (tl) {
        __m512 k1;
        __m512 sh = fastact_sigm_tail_sh(a, &k1);
        __m512 w = _mm512_mul_ps(gv, _mm512_mul_ps(sh, _mm512_sub_ps(one, _mm512_scalef_ps(sh, k1))));
        __m512 r = _mm512_mask_mul_ps(_mm512_scalef_ps(w, k1),
                                      _mm512_cmp_ps_mask(a, _mm512_set1_ps(FASTACT_EXP_ZERO), _CMP_GT_OQ), gv,
                                      _mm512_setzero_ps());
        res = _mm512_mask_blend_ps(tl, res, r);
    }
    return res;
}
static inline void fastact_sigmoid_bwd_f32(const float* g, const float* x, float* out, long n)
{
    FASTACT_MAP2(fastact_dsig_v, g, x, out, n);
}
static inline void fastact_sigmoid_bwd_f32_nt(const float* g, const float* x, float* out, long n)
{
    FASTACT_MAP2_NT(fastact_dsig_v, g, x, out, n);
}
static inline void fastact_log_sigmoid_bwdy_f32(const float* g, const float* y, float* out, long n)
{
    FASTACT_MAP2(fastact_lsig_bwdy_v, g, y, out, n);
}
static inline void fastact_log_sigmoid_bwdy_f32_nt(const float* g, const float* y, float* out, long n)
{
    FASTACT_MAP2_NT(fastact_lsig_bwdy_v, g, y, out, n);
}
static inline void fastact_silu_bwd_f32(const float* g, const float* x, float* out, long n)
{
    FASTACT_MAP2(fastact_silu_bwd_v, g, x, out, n);
}
static inline void fastact_silu_bwd_f32_nt(const float* g, const float* x, float* out, long n)
{
    FASTACT_MAP2_NT(fastact_silu_bwd_v, g, x, out, n);
}
/* relu's and relu6's backwards (from x, or from y: the same tests), as
 * _scalar.pxi's relu_bwd and relu6_bwd (leaky_relu's and hardsigmoid's
 * below): g where x > 0 (and x < 6), else 0 (NaN x: 0).  Only their streamed form is here: one pass storing each
 * vector non-temporally, where _stream_b_ computes blocks into a buffer and
 * copies them (1e7 float32 relu backward, a C model, 2 threads 2.7-3.0 ->
 * 2.1-2.3 ms, one thread 4.1-5.0 -> 3.0-3.5). */
static inline __m512 fastact_relu_bwd_v(__m512 v, __m512 gv)
{
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), gv);
}
static inline __m512 fastact_relu6_bwd_v(__m512 v, __m512 gv)
{
    __mmask16 in = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ);
    in = _mm512_mask_cmp_ps_mask(in, v, _mm512_set1_ps(6.0f), _CMP_LT_OQ);
    return _mm512_maskz_mov_ps(in, gv);
}
static inline void fastact_relu_bwd_f32_nt(const float* g, const float* x, float* out, long n)
{
    FASTACT_MAP2_NT(fastact_relu_bwd_v, g, x, out, n);
}
static inline void fastact_relu6_bwd_f32_nt(const float* g, const float* x, float* out, long n)
{
    FASTACT_MAP2_NT(fastact_relu6_bwd_v, g, x, out, n);
}
/* leaky_relu's (g where x > 0, else g * slope) and hardsigmoid's (g / 6 as
 * g * float(1/6) where -3 < x < 3, else 0) the same way */
static inline __m512 fastact_leaky_relu_bwd_v(__m512 v, __m512 gv, __m512 slope)
{
    return _mm512_mask_mov_ps(_mm512_mul_ps(gv, slope), _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), gv);
}
static inline __m512 fastact_hardsigmoid_bwd_v(__m512 v, __m512 gv)
{
    __mmask16 in = _mm512_cmp_ps_mask(v, _mm512_set1_ps(-3.0f), _CMP_GT_OQ);
    in = _mm512_mask_cmp_ps_mask(in, v, _mm512_set1_ps(3.0f), _CMP_LT_OQ);
    return _mm512_maskz_mov_ps(in, _mm512_mul_ps(gv, _mm512_set1_ps((float)0.16666666666666666)));
}
static inline void fastact_leaky_relu_bwd_f32_nt(const float* g, const float* x, float* out, long n, float slope)
{
    __m512 s_ = _mm512_set1_ps(slope);
#define FASTACT_LEAKY_V_(v, gv) fastact_leaky_relu_bwd_v(v, gv, s_)
    FASTACT_MAP2_NT(FASTACT_LEAKY_V_, g, x, out, n);
#undef FASTACT_LEAKY_V_
}
static inline void fastact_hardsigmoid_bwd_f32_nt(const float* g, const float* x, float* out, long n)
{
    FASTACT_MAP2_NT(fastact_hardsigmoid_bwd_v, g, x, out, n);
}
/* sigmoid(x) = sigmoid(-(-x)): the backward above at -x with g = 1 (both
 * exact), so the same table and tail (a subnormal sigmoid(x), x < -87.3,
 * rounded once by vscalefps) */
static inline __m512 fastact_sigmoid_v(__m512 v)
{
    return fastact_gsig_v(v, _mm512_set1_ps(1.0f));
}
static inline void fastact_sigmoid_f32(const float* x, float* out, long n)
{
    FASTACT_MAP1(fastact_sigmoid_v, x, out, n);
}
static inline void fastact_sigmoid_f32_nt(const float* x, float* out, long n)
{
    FASTACT_MAP1_NT(fastact_sigmoid_v, x, out, n);
}
/* silu(x) = x * sigmoid(x): the same at -x with g = x, clamped to -FLT_MAX
 * (x = -inf gives -0, silu's limit, not -inf * 0; NaN stays NaN through the
 * table), so x * sigmoid(x) is rounded once where sigmoid(x) is subnormal */
static inline __m512 fastact_silu_v(__m512 v)
{
    return fastact_gsig_v(v, _mm512_max_ps(v, _mm512_set1_ps(-3.40282347e+38f)));
}
static inline void fastact_silu_f32(const float* x, float* out, long n)
{
    FASTACT_MAP1(fastact_silu_v, x, out, n);
}
static inline void fastact_silu_f32_nt(const float* x, float* out, long n)
{
    FASTACT_MAP1_NT(fastact_silu_v, x, out, n);
}
/* forward (bwd = 0): x * phi(x); backward: g * (phi(x) + x pdf(x)) */
static inline __m512 fastact_gelu_lane_v(__m512 v, __m512 gv, int bwd)
{
    return bwd ? _mm512_mul_ps(gv, fastact_gelu_dphi_v(v)) : fastact_gelu_phi_v(v);
}
static inline __m512 fastact_gelu_tail_lane_v(__m512 v, __m512 gv, int bwd)
{
    __m512 kf;
    __m512 w = fastact_gelu_tail_w(v, bwd, &kf);
    return bwd ? _mm512_mul_ps(gv, _mm512_scalef_ps(w, kf)) : _mm512_scalef_ps(w, kf);
}
/* Block by block (FASTACT_GELU_BLOCK elements): every lane through the phi
 * table; the tail lanes' x compressed (vcompressps) into tx, so the tail's
 * exp runs on whole vectors of tail lanes however few there are, and
 * expanded back (vexpandps) over the table's result.  x ~ N(0, 3): 73 % of
 * the vectors of 16 have a tail lane, 8 % of the lanes are one; one thread,
 * 1e5, against the phi table alone: the tail blended into each such vector
 * 2.4x its time, compressed 1.6x (x ~ N(0, 1): 1.0x and 1.05x).  A block
 * after one without tail lanes tests each vector and moves only those with
 * tail lanes (sparse); after one with, it moves every vector's, empty or not
 * (a branch taken 73 % of the time mispredicts). */
#define FASTACT_GELU_BLOCK 1024
/* Elements ahead that the first pass prefetches (x, g, out): the hardware
 * prefetchers stop at 4 KB pages (a block) and fetch nothing while a block's
 * tail is computed.  Numba's kernel, same scheme, 1e7 float32, two threads,
 * x ~ N(0, 3), interleaved runs: 5.2 -> 3.7 ms (x and g only: 4.5). */
#define FASTACT_GELU_PREFETCH 512
/* 16 elements from p[j] (float32, or float16 with h: widened) as float32,
 * all or the lanes of m (zeros elsewhere); and back, narrowed with h as
 * fastact_f2h narrows.  h is a constant in every copy (always inlined). */
#if defined(__AVX512BW__) && defined(__AVX512VL__)
#define FASTACT_HAVE_GELU_H 1
#define FASTACT_LD_H(m, p, j) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16((m), (const uint16_t *)(p) + (j)))
#define FASTACT_ST_H(m, p, j, v) \
    _mm256_mask_storeu_epi16((uint16_t *)(p) + (j), (m), _mm512_cvtps_ph((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#else
#define FASTACT_HAVE_GELU_H 0
#define FASTACT_LD_H(m, p, j) _mm512_setzero_ps()
#define FASTACT_ST_H(m, p, j, v) ((void)0)
#endif
static inline __attribute__((always_inline)) __m512 fastact_ld16(const void* p, long j, int h)
{
    return h ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + j)))
             : _mm512_loadu_ps((const float *)p + j);
}
static inline __attribute__((always_inline)) __m512 fastact_ld16m(__mmask16 m, const void* p, long j, int h)
{
    return h ? FASTACT_LD_H(m, p, j) : _mm512_maskz_loadu_ps(m, (const float *)p + j);
}
static inline __attribute__((always_inline)) void fastact_st16(void* p, long j, __m512 v, int h)
{
    if (h)
        _mm256_storeu_si256((__m256i *)((uint16_t *)p + j), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    else
        _mm512_storeu_ps((float *)p + j, v);
}
static inline __attribute__((always_inline)) void fastact_st16m(__mmask16 m, void* p, long j, __m512 v, int h)
{
    if (h)
        FASTACT_ST_H(m, p, j, v);
    else
        _mm512_mask_storeu_ps((float *)p + j, m, v);
}
/* always inlined: g == 0 (forward), sparse and h (float16 arrays: the
 * float32 lanes between a widening load and a narrowing store, the same
 * bits as the float32 kernel on the widened x, rounded) must be constants
 * in each copy */
static inline __attribute__((always_inline)) int fastact_gelu_block(const void* g, const void* x, void* out, long n, int sparse, float lo_, int h)
{
    /* n a multiple of 16; g != 0: the backward (its tail lanes' g moved along) */
    float tx[FASTACT_GELU_BLOCK + 16], tg[FASTACT_GELU_BLOCK + 16];
    __mmask16 tm[FASTACT_GELU_BLOCK / 16];
    const __m512 lo = _mm512_set1_ps(lo_);
    const int bwd = g != 0;
    const long sz = h ? 2 : 4;
    __m512 gv = _mm512_setzero_ps();
    int nt = 0;
    for (long j = 0; j < n; j += 16) {
        __builtin_prefetch((const char *)x + (j + FASTACT_GELU_PREFETCH) * sz, 0, 3);
        __builtin_prefetch((const char *)out + (j + FASTACT_GELU_PREFETCH) * sz, 1, 3);
        if (bwd)
            __builtin_prefetch((const char *)g + (j + FASTACT_GELU_PREFETCH) * sz, 0, 3);
        __m512 v = fastact_ld16(x, j, h);
        if (bwd)
            gv = fastact_ld16(g, j, h);
        __mmask16 t = _mm512_cmp_ps_mask(v, lo, _CMP_NGE_UQ);  /* x < lo or NaN */
        tm[j / 16] = t;
        if (!sparse || t) {  /* the whole vector is stored: tx[nt, nt + 16) is always set */
            _mm512_storeu_ps(tx + nt, _mm512_maskz_compress_ps(t, v));
            if (bwd)
                _mm512_storeu_ps(tg + nt, _mm512_maskz_compress_ps(t, gv));
            nt += __builtin_popcount(t);
        }
        fastact_st16(out, j, fastact_gelu_lane_v(v, gv, bwd), h);
    }
    if (nt) {
        for (int i = 0; i < nt; i += 16)
            _mm512_storeu_ps(tx + i, fastact_gelu_tail_lane_v(_mm512_loadu_ps(tx + i), bwd ? _mm512_loadu_ps(tg + i) : gv, bwd));
        int k = 0;
        for (long j = 0; j < n; j += 16) {
            __mmask16 t = tm[j / 16];
            if (!sparse || t) {
                fastact_st16m(t, out, j, _mm512_maskz_expandloadu_ps(t, tx + k), h);
                k += __builtin_popcount(t);
            }
        }
    }
    return nt;
}
/* The first block's mode: dense if one of its first 64 x is in the tail.  A
 * streamed call (_elementwise.pxi, _stream_u_) runs one block at a time, so
 * every block is a first one: starting sparse on x ~ N(0, 3) made gelu's
 * forward at 1e7 1.5x slower. */
static inline __attribute__((always_inline)) int fastact_gelu_sparse0(const void* x, long n16, float lo_, int h)
{
    __mmask16 t = 0;
    for (long j = 0; j < n16 && j < 64; j += 16)
        t |= _mm512_cmp_ps_mask(fastact_ld16(x, j, h), _mm512_set1_ps(lo_), _CMP_NGE_UQ);
    return t == 0;
}
static inline __attribute__((always_inline)) void fastact_gelu_run(const void* g, const void* x, void* out, long n, int h)
{
    const float lo_ = g ? -4.125f : -4.1875f;  /* where the dphi / phi table ends */
    const int bwd = g != 0;
    const long sz = h ? 2 : 4;
    long n16 = n & ~15L;
    int sparse = fastact_gelu_sparse0(x, n16, lo_, h);
    for (long b = 0; b < n16; b += FASTACT_GELU_BLOCK) {
        long nb = n16 - b < FASTACT_GELU_BLOCK ? n16 - b : FASTACT_GELU_BLOCK;
        const char* gb = bwd ? (const char *)g + b * sz : 0;
        const char* xb = (const char *)x + b * sz;
        char* ob = (char *)out + b * sz;
        sparse = (sparse ? fastact_gelu_block(gb, xb, ob, nb, 1, lo_, h)
                         : fastact_gelu_block(gb, xb, ob, nb, 0, lo_, h)) == 0;
    }
    if (n16 < n) {  /* the last n % 16 */
        __mmask16 in = (__mmask16)((1u << (n - n16)) - 1u);
        __m512 v = fastact_ld16m(in, x, n16, h);
        __m512 gv = bwd ? fastact_ld16m(in, g, n16, h) : _mm512_setzero_ps();
        __mmask16 t = _mm512_mask_cmp_ps_mask(in, v, _mm512_set1_ps(lo_), _CMP_NGE_UQ);
        __m512 r = fastact_gelu_lane_v(v, gv, bwd);
        if (t)
            r = _mm512_mask_blend_ps(t, r, fastact_gelu_tail_lane_v(v, gv, bwd));
        fastact_st16m(in, out, n16, r, h);
    }
}
static inline void fastact_gelu_f32(const float* x, float* out, long n) { fastact_gelu_run(0, x, out, n, 0); }
static inline void fastact_gelu_bwd_f32(const float* g, const float* x, float* out, long n) { fastact_gelu_run(g, x, out, n, 0); }
/* float16 gelu (_elementwise.pxi.in's _half_u, fh): the same lanes on x
 * widened as it is loaded and narrowed as it is stored, no buffer */
static inline void fastact_gelu_h(const uint16_t* x, uint16_t* out, long n) { fastact_gelu_run(0, x, out, n, 1); }
static inline void fastact_gelu_bwd_h(const uint16_t* g, const uint16_t* x, uint16_t* out, long n) { fastact_gelu_run(g, x, out, n, 1); }
/* The softmax family's float32 exps (_axis.pxi) on AVX-512: _scalar.pxi's
 * _exp_negabs_up26f and _expf_neg written with vscalefps.  The reduction and
 * the polynomial are _expf_arg's and _exp_q's operations in their order (the
 * shifter's k, ln2 in two parts, Q by Estrin's scheme, 1 + r Q rounded once;
 * the constants, like Cython's, are doubles rounded to float);
 * the power of two is one vscalefps, which rounds p 2^k once, normal or
 * subnormal, where gcc's vector code of the scalar functions built 2^k from
 * integers and took a compare and blends for each clamp.  The same bits as
 * the scalar functions, NaNs included, over every float32 input (softmax's
 * and log_softmax's forwards in rows of 300, 1000, 4096 and 2^24, softmin's
 * in rows of 100, log_softmax's backward from y in rows of 100, 1000 and
 * 2^24, against the build before them) and on the probes of
 * tests/test_cython_backend.py (_set_vector_exps).  1e5 float32 in rows of
 * 1000 on an AMD EPYC (Zen 4), one thread, three runs of each build in
 * alternating processes, us: softmax forward 50.6-50.8 -> 48.9-49.6,
 * log_softmax forward 55.5-56.1 -> 52.6-53.1, log_softmax backward from y
 * (whose exps ran in two stages) 45.6-45.8 -> 37.8-44.0.  The Numba backend
 * emits fastact_logsmax_bwd_f32's operations as vector IR (_numba/_tab.py,
 * lsm_bwd): the same bits. */
static inline __m512 fastact_exp_q_v(__m512 r)
{
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 q2 = _mm512_fmadd_ps(r, _mm512_fmadd_ps(r, _mm512_set1_ps((float)0.0001984126984126984), _mm512_set1_ps((float)0.001388888888888889)),
                                _mm512_set1_ps((float)0.008333333333333333));
    __m512 q1 = _mm512_fmadd_ps(r2, q2, _mm512_fmadd_ps(r, _mm512_set1_ps((float)0.041666666666666664), _mm512_set1_ps((float)0.16666666666666666)));
    return _mm512_fmadd_ps(r2, q1, _mm512_fmadd_ps(r, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
}
/* exp(-|v|) = p 2^k, |v| clamped at 104 (NaN passes): p = 1 + r Q(r), k in *kf */
static inline __m512 fastact_exp_negabs_p_v(__m512 v, __m512* kf)
{
    __m512 a = _mm512_min_ps(_mm512_set1_ps(104.0f), _mm512_andnot_ps(_mm512_set1_ps(-0.0f), v));  /* NaN: a */
    /* x = -a, folded into the operations as gcc does: k = round(x / ln2), r = (x - k ln2_hi) - k ln2_lo */
    __m512 k = _mm512_sub_ps(_mm512_fmadd_ps(a, _mm512_set1_ps(-(float)1.4426950408889634), _mm512_set1_ps(12582912.0f)),
                             _mm512_set1_ps(12582912.0f));
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps((float)1.4286068203094172e-06), _mm512_fnmsub_ps(k, _mm512_set1_ps((float)0.693145751953125), a));
    *kf = k;
    return _mm512_fmadd_ps(r, fastact_exp_q_v(r), _mm512_set1_ps(1.0f));
}
/* exp(-|sign x - m|) 2^26 (_axis.pxi's _exp_up) */
static inline __m512 fastact_exp_shift_v(__m512 x, __m512 mv, __m512 sv, __m512 up)
{
    __m512 kf;
    __m512 p = fastact_exp_negabs_p_v(_mm512_fmsub_ps(sv, x, mv), &kf);
    return _mm512_scalef_ps(p, _mm512_add_ps(kf, up));
}
/* The vector lanes' scalars (m, sign; sg) are the locals the FASTACT_MAP
 * macros' f sees: a macro of one or two vectors around the _v function. */
static inline void fastact_exp_shift_f32(const float* x, float* dst, long n, float m, float sign)
{
    const __m512 mv = _mm512_set1_ps(m), sv = _mm512_set1_ps(sign), up = _mm512_set1_ps(26.0f);
#define FASTACT_EXP_SHIFT_(v) fastact_exp_shift_v((v), mv, sv, up)
    FASTACT_MAP1(FASTACT_EXP_SHIFT_, x, dst, n);
#undef FASTACT_EXP_SHIFT_
}
/* fastact_exp_shift_f32 with m per element (mm: each row's maximum spread
 * over its row): _axis.pxi's flat forward blocks, one loop over a block of
 * short rows; the same values row by row */
static inline void fastact_exp_shift_arr_f32(const float* x, const float* mm, float* dst, long n, float sign)
{
    const __m512 sv = _mm512_set1_ps(sign), up = _mm512_set1_ps(26.0f);
#define FASTACT_EXP_SHIFT_M_(v, mv) fastact_exp_shift_v((v), (mv), sv, up)
    FASTACT_MAP2(FASTACT_EXP_SHIFT_M_, mm, x, dst, n);
#undef FASTACT_EXP_SHIFT_M_
}
/* out = g - exp(y) sg for y <= 0 (exp(-|y|); the caller checks the sign):
 * log_softmax's backward from y */
static inline __m512 fastact_logsmax_bwd_v(__m512 y, __m512 gv, __m512 sg)
{
    __m512 kf;
    __m512 p = fastact_exp_negabs_p_v(y, &kf);
    return _mm512_fnmadd_ps(_mm512_scalef_ps(p, kf), sg, gv);
}
static inline void fastact_logsmax_bwd_f32(const float* g, const float* y, float* out, long n, float sg)
{
    const __m512 sv = _mm512_set1_ps(sg);
#define FASTACT_LSM_BWD_(v, gv) fastact_logsmax_bwd_v((v), (gv), sv)
    FASTACT_MAP2(FASTACT_LSM_BWD_, g, y, out, n);
#undef FASTACT_LSM_BWD_
}
#define FASTACT_HAVE_TABLES 1
#else
static inline void fastact_tanh_f32(const float* x, float* out, long n) { (void)x; (void)out; (void)n; }
static inline void fastact_log_sigmoid_bwd_f32(const float* g, const float* x, float* out, long n) { (void)g; (void)x; (void)out; (void)n; }
static inline void fastact_log_sigmoid_bwdy_f32(const float* g, const float* y, float* out, long n) { (void)g; (void)y; (void)out; (void)n; }
static inline void fastact_sigmoid_f32(const float* x, float* out, long n) { (void)x; (void)out; (void)n; }
static inline void fastact_silu_f32(const float* x, float* out, long n) { (void)x; (void)out; (void)n; }
static inline void fastact_silu_bwd_f32(const float* g, const float* x, float* out, long n) { (void)g; (void)x; (void)out; (void)n; }
static inline void fastact_tanh_f32_nt(const float* x, float* out, long n) { (void)x; (void)out; (void)n; }
static inline void fastact_tanhshrink_f32(const float* x, float* out, long n) { (void)x; (void)out; (void)n; }
static inline void fastact_tanhshrink_f32_nt(const float* x, float* out, long n) { (void)x; (void)out; (void)n; }
static inline void fastact_log_sigmoid_bwd_f32_nt(const float* g, const float* x, float* out, long n) { (void)g; (void)x; (void)out; (void)n; }
static inline void fastact_sigmoid_bwd_f32(const float* g, const float* x, float* out, long n) { (void)g; (void)x; (void)out; (void)n; }
static inline void fastact_sigmoid_bwd_f32_nt(const float* g, const float* x, float* out, long n) { (void)g; (void)x; (void)out; (void)n; }
static inline void fastact_glu_f32(const float* a, const float* b, float* out, long n) { (void)a; (void)b; (void)out; (void)n; }
static inline void fastact_glu_f32_st(const float* a, const float* b, float* out, long n) { (void)a; (void)b; (void)out; (void)n; }
static inline void fastact_softplus_bwd1_f32(const float* g, const float* x, float* out, long n, float t) { (void)g; (void)x; (void)out; (void)n; (void)t; }
static inline void fastact_softplus_bwd1_f32_nt(const float* g, const float* x, float* out, long n, float t) { (void)g; (void)x; (void)out; (void)n; (void)t; }
static inline void fastact_log_sigmoid_bwdy_f32_nt(const float* g, const float* y, float* out, long n) { (void)g; (void)y; (void)out; (void)n; }
static inline void fastact_sigmoid_f32_nt(const float* x, float* out, long n) { (void)x; (void)out; (void)n; }
static inline void fastact_silu_f32_nt(const float* x, float* out, long n) { (void)x; (void)out; (void)n; }
static inline void fastact_silu_bwd_f32_nt(const float* g, const float* x, float* out, long n) { (void)g; (void)x; (void)out; (void)n; }
static inline void fastact_relu_bwd_f32_nt(const float* g, const float* x, float* out, long n) { (void)g; (void)x; (void)out; (void)n; }
static inline void fastact_relu6_bwd_f32_nt(const float* g, const float* x, float* out, long n) { (void)g; (void)x; (void)out; (void)n; }
static inline void fastact_leaky_relu_bwd_f32_nt(const float* g, const float* x, float* out, long n, float slope) { (void)g; (void)x; (void)out; (void)n; (void)slope; }
static inline void fastact_hardsigmoid_bwd_f32_nt(const float* g, const float* x, float* out, long n) { (void)g; (void)x; (void)out; (void)n; }
static inline void fastact_transpose16f(const float* src, long ss, float* dst, long ds)
{
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            dst[c * ds + r] = src[r * ss + c];
}
#define FASTACT_HAVE_TRANSPOSE16 0
static inline long fastact_dot4_f32(const float* a, const float* b, long n, double* acc) { (void)a; (void)b; (void)n; (void)acc; return 0; }
static inline double fastact_sum64_f32(const float* v, long n) { (void)v; (void)n; return 0.0; }
static inline double fastact_sum8_f32(const float* v, long n) { (void)v; (void)n; return 0.0; }
static inline double fastact_dot8_f32(const float* a, const float* b, long n) { (void)a; (void)b; (void)n; return 0.0; }
static inline float fastact_max64_f32(const float* x, long n, float sign) { (void)x; (void)n; (void)sign; return 0.0f; }
static inline float fastact_max8_f32(const float* x, long n, float sign) { (void)x; (void)n; (void)sign; return 0.0f; }
static inline void fastact_gelu_f32(const float* x, float* out, long n) { (void)x; (void)out; (void)n; }
static inline void fastact_gelu_bwd_f32(const float* g, const float* x, float* out, long n) { (void)g; (void)x; (void)out; (void)n; }
static inline void fastact_gelu_h(const uint16_t* x, uint16_t* out, long n) { (void)x; (void)out; (void)n; }
static inline void fastact_gelu_bwd_h(const uint16_t* g, const uint16_t* x, uint16_t* out, long n) { (void)g; (void)x; (void)out; (void)n; }
#define FASTACT_HAVE_GELU_H 0
static inline void fastact_exp_shift_f32(const float* x, float* dst, long n, float m, float sign) { (void)x; (void)dst; (void)n; (void)m; (void)sign; }
static inline void fastact_exp_shift_arr_f32(const float* x, const float* mm, float* dst, long n, float sign) { (void)x; (void)mm; (void)dst; (void)n; (void)sign; }
static inline void fastact_logsmax_bwd_f32(const float* g, const float* y, float* out, long n, float sg) { (void)g; (void)y; (void)out; (void)n; (void)sg; }
#define FASTACT_HAVE_TABLES 0
#endif

#ifndef FASTACT_ISA
#define FASTACT_ISA "generic"
#endif
#ifndef FASTACT_CFLAGS
#define FASTACT_CFLAGS ""
#endif
#ifdef _OPENMP
#include <omp.h>
#define FASTACT_HAVE_OPENMP 1
static int fastact_omp_version(void) { return _OPENMP; }
static int fastact_omp_max_threads(void) { return omp_get_max_threads(); }
static int fastact_omp_team(void) { return omp_get_num_threads(); }
#else
#define FASTACT_HAVE_OPENMP 0
static int fastact_omp_version(void) { return 0; }
static int fastact_omp_max_threads(void) { return 1; }
static int fastact_omp_team(void) { return 1; }
#endif

/* float16 <-> float32 for the public functions' float16 arrays (computed
 * in float32): IEEE binary16 as its bits.  Widening is exact; narrowing
 * rounds to nearest even, beyond float16's range to inf, below it to
 * subnormals and zero: NumPy's astype, bit for bit except NaN payloads
 * (quieted here).  NumPy converts one element at a time: 1e6 float16 to
 * float32 1.6 ms, back 2.4 ms, against 45 us for relu's kernel.  The F16C
 * and AVX-512 builds convert 8 or 16 at a time; the baseline build has no
 * conversion (FASTACT_HAVE_F16 0) and fastact keeps NumPy's. */
#if defined(__F16C__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define FASTACT_HAVE_F16 1
static void fastact_h2f(const uint16_t *h, float *f, long n)
{
    long i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(f + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
#endif
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++)
        f[i] = _cvtsh_ss(h[i]);
}
static void fastact_f2h(const float *f, uint16_t *h, long n)
{
    long i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(h + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(f + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(f + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        h[i] = _cvtss_sh(f[i], _MM_FROUND_TO_NEAREST_INT);
}
/* Sixteen elements, for the float16 loops fused with a kernel
 * (_elementwise.pxi.in, _H_ loops): inlined into a loop whose kernel gcc
 * vectorises, f[] stays in registers, no store and reload between them. */
static inline void fastact_h2f16(const uint16_t *h, float *f)
{
#if defined(__AVX512F__)
    _mm512_storeu_ps(f, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h)));
#else
    _mm256_storeu_ps(f, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h)));
    _mm256_storeu_ps(f + 8, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + 8))));
#endif
}
static inline void fastact_f2h16(const float *f, uint16_t *h)
{
#if defined(__AVX512F__)
    _mm256_storeu_si256((__m256i *)h, _mm512_cvtps_ph(_mm512_loadu_ps(f), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#else
    _mm_storeu_si128((__m128i *)h, _mm256_cvtps_ph(_mm256_loadu_ps(f), _MM_FROUND_TO_NEAREST_INT));
    _mm_storeu_si128((__m128i *)(h + 8), _mm256_cvtps_ph(_mm256_loadu_ps(f + 8), _MM_FROUND_TO_NEAREST_INT));
#endif
}
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
/* softmax's (and softmin's) backward from y on one float16 row of 256 to
 * 2048 (_axis.pxi, _axis_h_group): out = sign * y * (g - d), d the float
 * of the double sum of g*y, in two passes over the row, where the group
 * path widened the rows into buffers, ran _axis on them and narrowed the
 * result.  The same bits as the float32 row (_row: _dot_f32, then
 * _smax_bwd_apply) on the widened values: fastact_dot4_f32's steps of 64
 * (the last padded with zeros), lanes and fold, in their order; the last
 * pass's operations in float32, rounded to float16 as fastact_f2h does. */
static inline void fastact_smax_bwd_h(const uint16_t *g, const uint16_t *y, uint16_t *out, long n, float sign)
{
    /* n <= 2048.  The first pass keeps the widened g and y in gf and yf
     * for the second (on this CPU's two vector ports a store and a load
     * cost less than widening again); softmin's sign flips the product
     * (exactly -(y (g - d))). */
    float gf[2048 + 64] __attribute__((aligned(64))), yf[2048 + 64] __attribute__((aligned(64)));
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    __m512 gv[4], yv[4];
    long i = 0, j;
    for (; i + 64 <= n; i += 64) {
        for (j = 0; j < 4; j++) {
            gv[j] = fastact_ld16(g, i + 16 * j, 1);
            yv[j] = fastact_ld16(y, i + 16 * j, 1);
            _mm512_store_ps(gf + i + 16 * j, gv[j]);
            _mm512_store_ps(yf + i + 16 * j, yv[j]);
        }
        fastact_add_four(fastact_four(gv[0], yv[0], gv[1], yv[1], gv[2], yv[2], gv[3], yv[3]), &s0, &s1);
    }
    fastact_h2f(g + i, gf + i, n - i);
    fastact_h2f(y + i, yf + i, n - i);
    if (i < n)
        fastact_add_four(fastact_four_tail(gf + i, yf + i, n - i), &s0, &s1);
    const double s = fastact_fold4_pd(_mm512_add_pd(s0, s1));  /* _fold_lanes' order */
    const __m512 d = _mm512_set1_ps((float)s), neg = _mm512_set1_ps(sign < 0 ? -0.0f : 0.0f);
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 r = _mm512_mul_ps(_mm512_load_ps(yf + i), _mm512_sub_ps(_mm512_load_ps(gf + i), d));
        if (sign < 0)
            r = _mm512_xor_ps(r, neg);
        fastact_st16(out, i, r, 1);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 r = _mm512_mul_ps(_mm512_maskz_load_ps(m, yf + i), _mm512_sub_ps(_mm512_maskz_load_ps(m, gf + i), d));
        if (sign < 0)
            r = _mm512_xor_ps(r, neg);
        fastact_st16m(m, out, i, r, 1);
    }
}
#define FASTACT_HAVE_SMAX_BWD_H 1
#else
static inline void fastact_smax_bwd_h(const uint16_t *g, const uint16_t *y, uint16_t *out, long n, float sign)
{ (void)g; (void)y; (void)out; (void)n; (void)sign; }
#define FASTACT_HAVE_SMAX_BWD_H 0
#endif
#else
#define FASTACT_HAVE_F16 0
#define FASTACT_HAVE_SMAX_BWD_H 0
static inline void fastact_smax_bwd_h(const uint16_t *g, const uint16_t *y, uint16_t *out, long n, float sign)
{ (void)g; (void)y; (void)out; (void)n; (void)sign; }
static void fastact_h2f(const uint16_t *h, float *f, long n) { (void)h; (void)f; (void)n; }
static void fastact_f2h(const float *f, uint16_t *h, long n) { (void)h; (void)f; (void)n; }
static inline void fastact_h2f16(const uint16_t *h, float *f) { (void)h; (void)f; }
static inline void fastact_f2h16(const float *f, uint16_t *h) { (void)h; (void)f; }
#endif

/* Returns a bit set: 1 = avx2+fma(+f16c), 2 = avx512 f/dq/vl/bw.  gcc's
 * __builtin_cpu_supports also checks that the OS saves the wide registers
 * (XCR0), so a "yes" here means the instructions are usable. */
static int fastact_cpu_features(void)
{
    int f = 0;
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        f |= 1;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")
        && (f & 1))
        f |= 2;
#endif
    return f;
}

/* Whether the CPU is AMD's (gcc's cpuid vendor check), for the choices that
 * were measured to go one way on AMD CPUs and the other on Intel ones. */
static int fastact_cpu_is_amd(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_is("amd") != 0;
#else
    return 0;
#endif
}

/* MXCSR flush-to-zero / denormals-are-zero bits, for the FTZ-leak test. */
static unsigned int fastact_mxcsr(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    unsigned int m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    return m;
#else
    return 0;
#endif
}

#endif
