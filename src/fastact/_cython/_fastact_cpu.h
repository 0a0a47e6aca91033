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
static inline int32_t fastact_f2i(float f) { union { float f; int32_t i; } u; u.f = f; return u.i; }
static inline float fastact_i2f(int32_t i) { union { float f; int32_t i; } u; u.i = i; return u.f; }

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

/* A 16 x 16 block of float32 transposed: dst[c * ds + r] = src[r * ss + c]
 * for r, c < 16 (strides in elements; the two blocks must not overlap).  The
 * softmax family's short rows (_axis.pxi, _short_block) turn a block of rows
 * into columns with it and back: as a scalar loop that was half their time.
 * Sixteen row loads, four rounds of sixteen two-vector shuffles, sixteen
 * stores: round s (8, 4, 2, 1) pairs rows i and i + s and exchanges their
 * off-diagonal s x s sub-blocks, which after the four rounds is the
 * transpose: one vpermt2ps a shuffle (gcc's generic vectors).  AVX-512 only:
 * with narrower vectors gcc lowers the 64-byte shuffles to element moves,
 * and the callers keep their scalar loop (FASTACT_HAVE_TRANSPOSE16 0). */
#if defined(__GNUC__) && defined(__AVX512F__)
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
#else
static inline void fastact_transpose16f(const float* src, long ss, float* dst, long ds)
{
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            dst[c * ds + r] = src[r * ss + c];
}
#define FASTACT_HAVE_TRANSPOSE16 0
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

/* Returns a bit set: 1 = avx2+fma, 2 = avx512 f/dq/vl/bw.  gcc's
 * __builtin_cpu_supports also checks that the OS saves the wide registers
 * (XCR0), so a "yes" here means the instructions are usable. */
static int fastact_cpu_features(void)
{
    int f = 0;
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        f |= 1;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")
        && (f & 1))
        f |= 2;
#endif
    return f;
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
