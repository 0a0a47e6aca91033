# Body of every ISA variant of the Cython backend (_k_base, _k_avx2,
# _k_avx512 are each one `include` of this file, compiled with different
# flags).  The variant to use is picked at import by fastact._cython.
#
# Structure: scalar math in _scalar.pxi; one vectorisable loop per
# elementwise kernel in the generated _elementwise.pxi; below, the drivers for
# the non-elementwise kinds (axis reductions, glu, maxout, prelu, rrelu) and
# the BACKEND object.  Python-visible entry points are plain `def` functions
# taking ndarrays and reading data pointers through the NumPy C API, so a call
# costs a dict lookup and a vectorcall, no buffer acquisition.

cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset
from libc.math cimport nextafterf

import os as _os
import numpy as _np

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    cdef enum:
        NPY_HALF  # (numpy's .pxd declares no float16)

cdef extern from "_fastact_cpu.h" nogil:
    int fastact_cpu_features()
    int fastact_cpu_is_amd()
    unsigned int fastact_mxcsr()
    int fastact_omp_version()
    int fastact_omp_max_threads()
    int fastact_omp_team()
    const char* FASTACT_ISA
    const char* FASTACT_CFLAGS
    int FASTACT_HAVE_MVEC
    int FASTACT_HAVE_OPENMP
    int FASTACT_HAVE_TABLES
    int FASTACT_HAVE_F16
    void fastact_h2f(const unsigned short* h, float* f, long n)
    void fastact_f2h(const float* f, unsigned short* h, long n)
    void fastact_h2f16(const unsigned short* h, float* f)
    void fastact_f2h16(const float* f, unsigned short* h)
    int FASTACT_HAVE_SMAX_BWD_H
    void fastact_smax_bwd_h(const unsigned short* g, const unsigned short* y, unsigned short* out, long n, float sign)
    void fastact_gelu_f32(const float* x, float* out, long n)
    void fastact_gelu_bwd_f32(const float* g, const float* x, float* out, long n)
    int FASTACT_HAVE_GELU_H
    void fastact_gelu_h(const unsigned short* x, unsigned short* out, long n)
    void fastact_gelu_bwd_h(const unsigned short* g, const unsigned short* x, unsigned short* out, long n)
    void fastact_exp_shift_f32(const float* x, float* dst, long n, float m, float sign)
    void fastact_exp_shift_arr_f32(const float* x, const float* mm, float* dst, long n, float sign)
    double fastact_sum64_f32(const float* v, long n)
    double fastact_sum8_f32(const float* v, long n)
    double fastact_dot8_f32(const float* a, const float* b, long n)
    float fastact_max64_f32(const float* x, long n, float sign)
    float fastact_max8_f32(const float* x, long n, float sign)
    void fastact_logsmax_bwd_f32(const float* g, const float* y, float* out, long n, float sg)
    void fastact_tanh_f32(const float* x, float* out, long n)
    void fastact_tanhshrink_f32(const float* x, float* out, long n)
    void fastact_log_sigmoid_bwd_f32(const float* g, const float* x, float* out, long n)
    void fastact_log_sigmoid_bwdy_f32(const float* g, const float* y, float* out, long n)
    void fastact_sigmoid_f32(const float* x, float* out, long n)
    void fastact_silu_f32(const float* x, float* out, long n)
    void fastact_silu_bwd_f32(const float* g, const float* x, float* out, long n)
    void fastact_sigmoid_bwd_f32(const float* g, const float* x, float* out, long n)
    void fastact_sigmoid_bwd_f32_nt(const float* g, const float* x, float* out, long n)
    void fastact_glu_f32(const float* a, const float* b, float* out, long n)
    void fastact_glu_f32_st(const float* a, const float* b, float* out, long n)
    void fastact_softplus_bwd1_f32(const float* g, const float* x, float* out, long n, float t)
    void fastact_softplus_bwd1_f32_nt(const float* g, const float* x, float* out, long n, float t)
    void fastact_tanh_f32_nt(const float* x, float* out, long n)
    void fastact_tanhshrink_f32_nt(const float* x, float* out, long n)
    void fastact_log_sigmoid_bwd_f32_nt(const float* g, const float* x, float* out, long n)
    void fastact_log_sigmoid_bwdy_f32_nt(const float* g, const float* y, float* out, long n)
    void fastact_sigmoid_f32_nt(const float* x, float* out, long n)
    void fastact_silu_f32_nt(const float* x, float* out, long n)
    void fastact_silu_bwd_f32_nt(const float* g, const float* x, float* out, long n)
    void fastact_relu_bwd_f32_nt(const float* g, const float* x, float* out, long n)
    void fastact_relu6_bwd_f32_nt(const float* g, const float* x, float* out, long n)
    void fastact_leaky_relu_bwd_f32_nt(const float* g, const float* x, float* out, long n, float slope)
    void fastact_hardsigmoid_bwd_f32_nt(const float* g, const float* x, float* out, long n)
    long fastact_stream_head(const void* out, long n, long size)
    void* fastact_place_buf(void* buf, const void* a, const void* b, const void* o)
    void fastact_stream_copy(const void* src, void* dst, long nbytes)
    void fastact_sfence()
    void fastact_prefetch(const void* p, long nbytes, long step)
    int FASTACT_HAVE_STREAM

include "_scalar.pxi"

# Below these sizes a call runs serially: starting the OpenMP team (about
# 1-2 us on 2 cores) costs more than it saves.  Measured with
# bench/cython_vs_torch.py --threshold (2 cores, AMD EPYC Zen 4, AVX-512
# variant; ratio serial time / 2-thread time, > 1: parallel wins):
#   n        relu fwd  relu bwd  sigmoid fwd  gelu bwd  softmax fwd (rows 1024)
#   2048     0.25      0.28      0.57         1.26      0.78
#   4096     0.37      0.42      0.84         1.51      1.08
#   8192     0.53      0.59      1.12         1.70      1.31
#   16384    0.73      0.84      1.43         1.89      1.57
#   32768    0.98      1.14      1.67         1.92      1.72
#   65536    1.28      1.57      1.81         1.97      1.90
# Crossovers: memory-bound kernels ~32k (relu fwd 33k, bwd 25k), exp-class
# kernels ~6k (sigmoid), softmax rows ~3.5k (uses COSTLY), gelu (erf) below
# 2k (HEAVY).
cdef Py_ssize_t THRESH_CHEAP = 32768
cdef Py_ssize_t THRESH_COSTLY = 6144
cdef Py_ssize_t THRESH_HEAVY = 2048
# float32 gelu from the tables (AVX-512 build, _fastact_cpu.h), forward:
# serial / 2-thread time 0.61 at 4096, 0.88-1.17 at 8192, 1.02-1.06 at 16384,
# 1.25-1.31 at 32768 (Intel Xeon, AVX-512, 2026-12-01)
cdef Py_ssize_t THRESH_GELU_TAB = 12288
# float32 tanh from its table: about the gelu table's cost per element; also
# sigmoid's forward and log_sigmoid's backward from their tables (serial /
# 2-thread time, x ~ N(0, 3): sigmoid 0.52-0.65 at 4096, 0.89-1.03 at 8192,
# 1.08-1.11 at 12288, 1.20-1.25 at 16384; log_sigmoid backward from x
# 0.59-0.84, 0.94-0.98, 1.10-1.13, 1.05-1.25; 2026-12-01)
cdef Py_ssize_t THRESH_TANH_TAB = 12288
# one long row split over threads (_axis.pxi): not re-measured
cdef Py_ssize_t THRESH_AXIS = 16384

# ------------------------------------------------------- non-temporal stores

# Elementwise results of at least this many bytes are written with
# non-temporal stores (_elementwise.pxi, _stream_u_): the setting of
# fastact._config (FASTACT_STREAM_MIN_BYTES), copied here when it changes.
cdef Py_ssize_t _stream_min = 8 << 20


def _set_stream_min(Py_ssize_t nbytes):
    global _stream_min
    _stream_min = nbytes


from fastact import _config as _cfg
_set_stream_min(_cfg.stream_min_bytes())
_cfg.on_stream_change(_set_stream_min)

# -------------------------------------------------------------- thread control

# GNU libgomp is not fork-safe: a child forked after the parent ran a
# parallel region can hang in its first one.  After such a fork the child runs
# everything serially.
cdef bint _parallel_used = False
cdef bint _serial_only = False
cdef object _get_num_threads = None


def _after_fork_in_child():
    global _serial_only
    if _parallel_used:
        _serial_only = True


if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_after_fork_in_child)


cdef inline void _mark_parallel() noexcept nogil:
    global _parallel_used
    _parallel_used = True


# The team size of the last parallel region that ran (1 after a serial call):
# lets tests check that `threads` is obeyed.  Written by every thread of a
# team with the same value; a debugging aid, not synchronised across calls.
cdef int _last_team = 1


cdef inline void _note_team() noexcept nogil:
    global _last_team
    _last_team = fastact_omp_team()


def last_team():
    """Threads in the last kernel call's parallel region (1 if it ran serially)."""
    return _last_team


cdef int _nthreads(Py_ssize_t n, Py_ssize_t thresh, int threads) except -1:
    # threads > 0: the dispatcher decided (1 = serial).  0: decide here from
    # the measured serial threshold and fastact._config.get_num_threads().
    global _get_num_threads
    global _last_team
    cdef int nt
    _last_team = 1
    if _serial_only or not FASTACT_HAVE_OPENMP:
        return 1
    if threads > 0:
        nt = threads
    elif n < thresh:
        return 1
    else:
        if _get_num_threads is None:
            from fastact._config import get_num_threads
            _get_num_threads = get_num_threads
        nt = _get_num_threads()
    if nt < 1:
        nt = 1
    if nt > 64:
        nt = 64
    return nt


cdef inline Py_ssize_t _split(Py_ssize_t n, Py_ssize_t parts, Py_ssize_t k) noexcept nogil:
    # Chunk boundaries on multiples of 64 elements: no two threads write the
    # same cache line and every chunk starts vector-aligned if the array does.
    if k >= parts:
        return n
    return ((n * k) // parts) & ~(<Py_ssize_t>63)


cdef int _bad_dtype(cnp.ndarray x) except -1:
    raise TypeError(f"fastact cython backend: unsupported dtype {x.dtype} (float32 and float64; float16 where "
                    f"this build lists the function in HALF_FUNCTIONS, or HALF_ROWS for rows of HALF_ROW_MAX at most)")


cdef int _no_y(str name) except -1:
    raise ValueError(f"fastact cython backend: {name} has no y-based backward")


# Four float32 forwards (_elementwise.pxi.in, PREFETCH_F32: gelu's tanh
# form, softplus, log_sigmoid, mish): from _PF_MIN elements a span runs in
# blocks of _PF_BLOCK, each block's loop preceded by a prefetch of the first
# line of every 4 KiB page of the next block of x (fastact_prefetch, a step of 4096).
# Their loops are slow enough per element that they waited on memory at 1e7
# where 1e6 calls ran from the cache (gelu's tanh form most: the cubic in
# double-float arithmetic). 1e7 float32 on 2 threads, allocating, two
# alternating runs, ms: gelu tanh 6.3-9.9 -> 4.2-4.3, log_sigmoid 4.7-5.2 ->
# 4.5-4.6, softplus 4.8-5.0 -> 4.6-4.9, mish 3.2-3.3 -> 3.1-3.3; at 1e6 mish
# 0.34 -> 0.29, the others unchanged, elu (not in the list) unchanged. A
# prefetch per line did as well for gelu's tanh form (11.6-13.7 -> 4.7-5.0 in
# its runs). float64 lost with it (gelu tanh 1e7 8.3-8.4 -> 9.3-9.6 ms) and
# runs the plain loops. The Numba backend does the same (_kernels.PREFETCH),
# measured there on other ops too.
cdef enum:
    _PF_MIN = 131072
    _PF_BLOCK = 4096
    _PF_ROWS_MIN = 4194304  # the softmax family's backward rows (_axis.pxi, _axis)

include "_elementwise.pxi"

# ------------------------------------------------------------------------ gelu

cdef void _L_gelu_fwd_f_tab(const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    # AVX-512 build: gelu from tables of polynomials (_fastact_cpu.h,
    # fastact_gelu_f32) instead of gelu_fwd's exp and division.
    fastact_gelu_f32(x, out, n)


cdef void _L_gelu_bwd_f_tab(const float* g, const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    # the same for the backward (fastact_gelu_bwd_f32)
    fastact_gelu_bwd_f32(g, x, out, n)


# float16 in the AVX-512 build: the same lanes between a widening load and a
# narrowing store (fastact_gelu_h), as _half_u's fused loops (fh) but not
# among the _H_ loops, which keep to registers: the kernel moves its tail
# lanes through stack arrays. The bits of the blocks through buffers.
cdef void _Hg_gelu_fwd(const unsigned short* x, unsigned short* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_gelu_h(x, out, n)


cdef void _Hg_gelu_bwd(const unsigned short* g, const unsigned short* x, unsigned short* out, Py_ssize_t n, double a,
                       double b) noexcept nogil:
    fastact_gelu_bwd_h(g, x, out, n)


# Builds without the tables: the float32 kernels' stages (_scalar.pxi,
# _gelu_fwd_f, _gelu_bwd_f) one after the other over blocks of _GST
# elements, each stage's results in buffers on the stack.  The same bits as
# one loop of the whole kernel (1.2e7 inputs, AVX2 and base builds; a NaN
# now keeps its sign in the forward, as PyTorch's does), which they run
# with _staged_kernels off (for the tests).  1e5 float32 on
# one thread, AMD EPYC (Zen 2, AVX2), one loop -> stages: forward 181 -> 158
# us, backward 134 -> 116.  The Numba backend keeps one loop: in a model of
# its backward loop the stages (numba arrays as the buffers) were slower,
# 112 -> 123 us.  The forward's first stage in two (exp's reduction, then t
# and its error) and P's Horner chain in three pieces, each in its own pass
# or beside E's: 158 -> 142 us (all 2**32 inputs give one loop's bits); its
# other splits measured 142-151.

cdef void _L_gelu_fwd_f_st(const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    cdef float R[_GST]
    cdef float S[_GST]
    cdef float T[_GST]
    cdef float EP[_GST]
    cdef float A[_GST]
    cdef float H[_GST]
    cdef Py_ssize_t s0 = 0, m, i
    if not _staged_kernels:
        _L_gelu_fwd_f(x, out, n, a, b)
        return
    while s0 < n:
        m = n - s0 if n - s0 < _GST else _GST
        for i in range(m):
            R[i] = _phi_exparg_f(x[s0 + i], &S[i], &A[i])
        for i in range(m):
            T[i] = _phi_t_f(A[i], &EP[i])
        for i in range(m):
            R[i] = _phi_e_f(R[i], S[i])
            H[i] = _phi_p_top(T[i])
        for i in range(m):
            H[i] = _phi_p_mid(H[i], T[i])
        for i in range(m):
            T[i] = _phi_q_fin(T[i], _phi_p_bot(H[i], T[i]), EP[i])
        for i in range(m):
            out[s0 + i] = _gelu_out_f(x[s0 + i], A[i], R[i], T[i])
        s0 += m


cdef void _L_gelu_bwd_f_st(const float* g, const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    cdef float R[_GST]
    cdef float K[_GST]
    cdef float T[_GST]
    cdef Py_ssize_t s0 = 0, m, i
    if not _staged_kernels:
        _L_gelu_bwd_f(g, x, out, n, a, b)
        return
    while s0 < n:
        m = n - s0 if n - s0 < _GST else _GST
        for i in range(m):
            R[i] = _dphi_arg_f(x[s0 + i], &K[i], &T[i])
        for i in range(m):
            R[i] = _dphi_es_f(x[s0 + i], R[i], K[i])
            T[i] = _dphi_tp_f(T[i])
        for i in range(m):
            out[s0 + i] = _gelu_dout_f(g[s0 + i], x[s0 + i], R[i], T[i])
        s0 += m


cdef inline Py_ssize_t _gelu_thresh(cnp.ndarray a):
    # serial below this: the tables' threshold where they run (float32), else the exp kernel's
    return THRESH_GELU_TAB if FASTACT_HAVE_TABLES and _f32_loops(a) else THRESH_HEAVY


def _f_gelu(cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
    if params["approximate"] == "tanh":
        _run_u(_L_gelu_tanh_fwd_f_pf, _L_gelu_tanh_fwd_d, x, out, 0.0, 0.0, THRESH_COSTLY, threads)
    else:
        _run_u(_L_gelu_fwd_f_tab if FASTACT_HAVE_TABLES else _L_gelu_fwd_f_st, _L_gelu_fwd_d, x, out, 0.0, 0.0,
               _gelu_thresh(x), threads, False, NULL, _Hg_gelu_fwd if FASTACT_HAVE_GELU_H else <uloop_h>NULL)


def _b_gelu(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    if y is not None:
        _no_y("gelu")
    if params["approximate"] == "tanh":
        _run_b(_L_gelu_tanh_bwd_f, _L_gelu_tanh_bwd_d, g, x, out, 0.0, 0.0, THRESH_COSTLY, threads)
    else:
        _run_b(_L_gelu_bwd_f_tab if FASTACT_HAVE_TABLES else _L_gelu_bwd_f_st, _L_gelu_bwd_d, g, x, out, 0.0, 0.0,
               _gelu_thresh(g), threads, False, NULL, _Hg_gelu_bwd if FASTACT_HAVE_GELU_H else <bloop_h>NULL)

# ----------------------------------------------------------------------- tanh

cdef void _L_tanh_fwd_f_tab(const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    # AVX-512 build: tanh from a table of polynomials (_fastact_cpu.h,
    # fastact_tanh_f32) instead of libmvec's tanhf.
    fastact_tanh_f32(x, out, n)


# The one-pass table kernels' _nt loops store each vector non-temporally as
# they compute it (FASTACT_MAP1_NT), for a result of _stream_min bytes or more
# (_par_u_'s fn_nt; _run_u's ff_nt, after stream = False, no buffer): not
# through _stream_u_'s buffer, which made them slower.
cdef void _L_tanh_fwd_f_tab_nt(const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_tanh_f32_nt(x, out, n)


cdef inline Py_ssize_t _tab_thresh(cnp.ndarray a):
    # serial below this: the one-pass tables' threshold (tanh, tanhshrink, sigmoid, silu, log_sigmoid's backward) for float32, else the exp kernels'
    return THRESH_TANH_TAB if _f32_loops(a) else THRESH_COSTLY


def _f_tanh_tab(cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
    _run_u(_L_tanh_fwd_f_tab, _L_tanh_fwd_d, x, out, 0.0, 0.0, _tab_thresh(x), threads,
           False, _L_tanh_fwd_f_tab_nt)


# float32 tanhshrink from its table (fastact_tanhshrink_f32: x^3 (|x| - tanh|x|)/|x|^3,
# one pass) instead of _tanhshrink_f's series and exp-based branch, both computed:
# 1e5 on two threads 34 against 51 us (PyTorch 49).
cdef void _L_tanhshrink_fwd_f_tab(const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_tanhshrink_f32(x, out, n)


cdef void _L_tanhshrink_fwd_f_tab_nt(const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_tanhshrink_f32_nt(x, out, n)


def _f_tanhshrink_tab(cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
    _run_u(_L_tanhshrink_fwd_f_tab, _L_tanhshrink_fwd_d, x, out, 0.0, 0.0, _tab_thresh(x), threads,
           False, _L_tanhshrink_fwd_f_tab_nt)

# ------------------------------------------------------- sigmoid, log_sigmoid

cdef void _L_sigmoid_fwd_f_tab(const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    # AVX-512 build: sigmoid(x) from the table of sigmoid(-|x|) (_fastact_cpu.h,
    # fastact_sigmoid_f32: log_sigmoid's backward at -x, g = 1)
    fastact_sigmoid_f32(x, out, n)


cdef void _L_silu_fwd_f_tab(const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    # silu(x) = x * sigmoid(x) from the same table (fastact_silu_f32: at -x, g = x)
    fastact_silu_f32(x, out, n)


cdef void _L_sigmoid_fwd_f_tab_nt(const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_sigmoid_f32_nt(x, out, n)


cdef void _L_silu_fwd_f_tab_nt(const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_silu_f32_nt(x, out, n)


def _f_sigmoid_tab(cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
    _run_u(_L_sigmoid_fwd_f_tab, _L_sigmoid_fwd_d, x, out, 0.0, 0.0, _tab_thresh(x), threads,
           False, _L_sigmoid_fwd_f_tab_nt)


def _f_silu_tab(cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
    _run_u(_L_silu_fwd_f_tab, _L_silu_fwd_d, x, out, 0.0, 0.0, _tab_thresh(x), threads,
           False, _L_silu_fwd_f_tab_nt)


cdef void _L_silu_bwd_f_tab(const float* g, const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    # g * silu'(x) from the same table (fastact_silu_bwd_f32)
    fastact_silu_bwd_f32(g, x, out, n)


cdef void _L_silu_bwd_f_tab_nt(const float* g, const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_silu_bwd_f32_nt(g, x, out, n)


cdef void _L_relu_bwd_f_nt(const float* g, const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_relu_bwd_f32_nt(g, x, out, n)


cdef void _L_relu6_bwd_f_nt(const float* g, const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_relu6_bwd_f32_nt(g, x, out, n)


cdef void _L_leaky_relu_bwd_f_nt(const float* g, const float* x, float* out, Py_ssize_t n, double a,
                                 double b) noexcept nogil:
    fastact_leaky_relu_bwd_f32_nt(g, x, out, n, <float>a)


cdef void _L_hardsigmoid_bwd_f_nt(const float* g, const float* x, float* out, Py_ssize_t n, double a,
                                  double b) noexcept nogil:
    fastact_hardsigmoid_bwd_f32_nt(g, x, out, n)


def _b_relu_nt(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    # AVX-512 build: a streamed float32 result in one pass storing each vector
    # non-temporally (fastact_relu_bwd_f32_nt); float64, and every result
    # below _stream_min, as the generated _b_relu
    if y is not None:
        _run_b(_L_relu_bwd_y_f, _L_relu_bwd_y_d, g, y, out, 0.0, 0.0, THRESH_CHEAP, threads, True, _L_relu_bwd_f_nt,
               _H_relu_bwd_y)
    else:
        _run_b(_L_relu_bwd_f, _L_relu_bwd_d, g, x, out, 0.0, 0.0, THRESH_CHEAP, threads, True, _L_relu_bwd_f_nt,
               _H_relu_bwd)


def _b_relu6_nt(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    # as _b_relu_nt
    if y is not None:
        _run_b(_L_relu6_bwd_y_f, _L_relu6_bwd_y_d, g, y, out, 0.0, 0.0, THRESH_CHEAP, threads, True,
               _L_relu6_bwd_f_nt, _H_relu6_bwd_y)
    else:
        _run_b(_L_relu6_bwd_f, _L_relu6_bwd_d, g, x, out, 0.0, 0.0, THRESH_CHEAP, threads, True, _L_relu6_bwd_f_nt,
               _H_relu6_bwd)


def _b_leaky_relu_nt(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    # as _b_relu_nt
    cdef double a = params['negative_slope']
    if y is not None:
        _run_b(_L_leaky_relu_bwd_y_f, _L_leaky_relu_bwd_y_d, g, y, out, a, 0.0, THRESH_CHEAP, threads, True,
               _L_leaky_relu_bwd_f_nt, _H_leaky_relu_bwd_y)
    else:
        _run_b(_L_leaky_relu_bwd_f, _L_leaky_relu_bwd_d, g, x, out, a, 0.0, THRESH_CHEAP, threads, True,
               _L_leaky_relu_bwd_f_nt, _H_leaky_relu_bwd)


def _b_hardsigmoid_nt(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    # as _b_relu_nt (no backward from y)
    if y is not None:
        _no_y("hardsigmoid")
    _run_b(_L_hardsigmoid_bwd_f, _L_hardsigmoid_bwd_d, g, x, out, 0.0, 0.0, THRESH_CHEAP, threads, True,
           _L_hardsigmoid_bwd_f_nt, _H_hardsigmoid_bwd)


def _b_silu_tab(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    if y is not None:
        _no_y("silu")
    _run_b(_L_silu_bwd_f_tab, _L_silu_bwd_d, g, x, out, 0.0, 0.0, _tab_thresh(g), threads,
           False, _L_silu_bwd_f_tab_nt)


# softplus's float32 backward with beta = 1 on AVX-512: g sigmoid(x) from
# log_sigmoid's table at -x (fastact_softplus_bwd1_f32), one pass, instead of
# softplus_bwd's exp and division, and g where x > t, t the largest float32
# not above the threshold (x > threshold exactly then, as the reference tests
# the product x * 1 in float64; the Numba backend's p2, _product_cut); the
# same bits as the Numba backend's bwd_softplus_beta1 table.  Another beta,
# float64 and the backward from y as the generated _b_softplus.  1e7 float32,
# 2 threads, alternating builds: 2.57-2.66 -> 1.47-1.96 ms; 1e5 22.1-22.6 ->
# 15.7-16.0 us.
cdef void _L_softplus_bwd1_f_tab(const float* g, const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_softplus_bwd1_f32(g, x, out, n, <float>b)


cdef void _L_softplus_bwd1_f_tab_nt(const float* g, const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_softplus_bwd1_f32_nt(g, x, out, n, <float>b)


def _b_softplus_tab(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    cdef double a = params['beta']
    cdef double b = params['threshold']
    cdef float t = <float>b
    if y is not None or not _f32_loops(g) or a != 1.0:
        return _b_softplus(g, x, y, out, params, threads)
    if <double>t > b:
        t = nextafterf(t, -INFINITY)
    _run_b(_L_softplus_bwd1_f_tab, _L_softplus_bwd_d, g, x, out, a, <double>t, _tab_thresh(g), threads,
           False, _L_softplus_bwd1_f_tab_nt)


# sigmoid's float32 backward from x on AVX-512: g t (1 - t) from the sigmoid
# table, t = sigmoid(-|x|) (fastact_sigmoid_bwd_f32), one pass, instead of an
# exp, a division and the float64 tail pass; from y and float64 as the
# generated _b_sigmoid.  2 ULP (4 before).  1e5 float32, x ~ N(0, 9), 2
# threads, alternating builds: 20.0-21.7 -> 16.5-16.8 us; 1e7 2.09-2.14 ->
# 1.84-1.85 ms.
cdef void _L_sigmoid_bwd_f_tab(const float* g, const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_sigmoid_bwd_f32(g, x, out, n)


cdef void _L_sigmoid_bwd_f_tab_nt(const float* g, const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_sigmoid_bwd_f32_nt(g, x, out, n)


def _b_sigmoid_tab(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    if y is not None:
        return _b_sigmoid(g, x, y, out, params, threads)
    _run_b(_L_sigmoid_bwd_f_tab, _L_sigmoid_bwd_d, g, x, out, 0.0, 0.0, _tab_thresh(g), threads,
           False, _L_sigmoid_bwd_f_tab_nt)


cdef void _L_log_sigmoid_bwd_f_tab(const float* g, const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    # AVX-512 build: g * sigmoid(-x) from a table of polynomials
    # (_fastact_cpu.h, fastact_log_sigmoid_bwd_f32) instead of an exp and a
    # division; its tail (|x| >= 15.75) scales last, so no float64 second pass.
    fastact_log_sigmoid_bwd_f32(g, x, out, n)


cdef void _L_log_sigmoid_bwd_y_f_tab(const float* g, const float* y, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    # -g * expm1(min(y, 0)) from a table (fastact_log_sigmoid_bwdy_f32)
    fastact_log_sigmoid_bwdy_f32(g, y, out, n)


cdef void _L_log_sigmoid_bwd_f_tab_nt(const float* g, const float* x, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_log_sigmoid_bwd_f32_nt(g, x, out, n)


cdef void _L_log_sigmoid_bwd_y_f_tab_nt(const float* g, const float* y, float* out, Py_ssize_t n, double a, double b) noexcept nogil:
    fastact_log_sigmoid_bwdy_f32_nt(g, y, out, n)


def _b_log_sigmoid_tab(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    cdef Py_ssize_t th = _tab_thresh(g)
    if y is not None:
        _run_b(_L_log_sigmoid_bwd_y_f_tab, _L_log_sigmoid_bwd_y_d, g, y, out, 0.0, 0.0, th, threads,
               False, _L_log_sigmoid_bwd_y_f_tab_nt)
    else:
        _run_b(_L_log_sigmoid_bwd_f_tab, _L_log_sigmoid_bwd_d, g, x, out, 0.0, 0.0, th, threads,
               False, _L_log_sigmoid_bwd_f_tab_nt)

# ----------------------------------------------------------------------- rrelu

cdef void _rrelu_fwd_range(const floating* x, const floating* s, floating* out, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = rrelu_fwd(x[i], s[i])


cdef void _rrelu_bwd_range(const floating* g, const floating* x, const floating* s, floating* out,
                           Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = rrelu_bwd(g[i], x[i], s[i])


cdef void _rrelu(const floating* g, const floating* x, const floating* s, floating* out,
                 Py_ssize_t n, int nt, bint fwd) noexcept nogil:
    cdef Py_ssize_t c, st, en
    if nt <= 1:
        if fwd:
            _rrelu_fwd_range(x, s, out, n)
        else:
            _rrelu_bwd_range(g, x, s, out, n)
        return
    _mark_parallel()
    for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        _note_team()
        st = _split(n, nt, c)
        en = _split(n, nt, c + 1)
        if en > st:
            if fwd:
                _rrelu_fwd_range(x + st, s + st, out + st, en - st)
            else:
                _rrelu_bwd_range(g + st, x + st, s + st, out + st, en - st)


cdef int _run_rrelu(cnp.ndarray g, cnp.ndarray x, cnp.ndarray s, cnp.ndarray out, bint fwd, int threads) except -1:
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef int nt = _nthreads(n, THRESH_CHEAP, threads)
    cdef void* pg = cnp.PyArray_DATA(g) if g is not None else NULL
    cdef void* px = cnp.PyArray_DATA(x)
    cdef void* ps = cnp.PyArray_DATA(s)
    cdef void* po = cnp.PyArray_DATA(out)
    cdef int typ = cnp.PyArray_TYPE(x)
    if cnp.PyArray_TYPE(s) != typ or cnp.PyArray_SIZE(s) != n:
        raise ValueError("rrelu: slopes must have the input's dtype and size")
    if typ == cnp.NPY_FLOAT:
        with nogil:
            _rrelu(<const float*>pg, <const float*>px, <const float*>ps, <float*>po, n, nt, fwd)
    elif typ == cnp.NPY_DOUBLE:
        with nogil:
            _rrelu(<const double*>pg, <const double*>px, <const double*>ps, <double*>po, n, nt, fwd)
    else:
        _bad_dtype(x)
    return 0


def _f_rrelu(cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
    _run_rrelu(None, x, params["slopes"], out, True, threads)


def _b_rrelu(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    if y is not None:
        _no_y("rrelu")
    _run_rrelu(g, x, params["slopes"], out, False, threads)

# ----------------------------------------------------------------------- prelu
# x (outer, C, inner).  A thread takes a contiguous range of flat indices and
# walks it in runs: with inner == 1 a run is a stretch of one row and the
# weight varies along it; with inner > 1 a run shares one weight.

cdef inline Py_ssize_t _prelu_run(Py_ssize_t f, Py_ssize_t end, Py_ssize_t C, Py_ssize_t inner,
                                   Py_ssize_t* c) noexcept nogil:
    # the run that starts at flat index f: its channel (into c) and its
    # length, to the row's end (inner == 1) or the end of f's run of one weight
    cdef Py_ssize_t seg
    if inner == 1:
        c[0] = f % C
        seg = C - c[0]
    else:
        c[0] = (f // inner) % C
        seg = inner - f % inner
    return seg if seg < end - f else end - f


cdef inline void _prelu_bwd_run(const floating* g, const floating* x, const floating* w, floating* out,
                                double* acc, Py_ssize_t n) noexcept nogil:
    # the input's gradient against weights w[k], and the weight's gradient
    # per position added to acc[k] in double; g read once, before out[k],
    # which may be g[k] (in place)
    cdef Py_ssize_t k
    cdef floating xv, gv
    for k in range(n):
        xv = x[k]
        gv = g[k]
        acc[k] += 0.0 if xv > 0 else <double>xv * <double>gv
        out[k] = rrelu_bwd(gv, xv, w[k])


cdef inline void _prelu_fwd_one(const floating* x, floating wc, floating* out, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        out[k] = rrelu_fwd(x[k], wc)


cdef inline void _prelu_bwd_one(const floating* g, const floating* x, floating wc, floating* out,
                                Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(n):
        out[k] = rrelu_bwd(g[k], x[k], wc)


cdef void _prelu_range(const floating* g, const floating* x, const floating* w, floating* out,
                       double* gw, Py_ssize_t start, Py_ssize_t end, Py_ssize_t C,
                       Py_ssize_t inner, bint fwd) noexcept nogil:
    cdef Py_ssize_t f = start, c, seg
    while f < end:
        seg = _prelu_run(f, end, C, inner, &c)
        if inner == 1:
            if fwd:
                _rrelu_fwd_range(x + f, w + c, out + f, seg)
            else:
                _prelu_bwd_run(g + f, x + f, w + c, out + f, gw + c, seg)
        elif fwd:
            _prelu_fwd_one(x + f, w[c], out + f, seg)
        else:
            # in vector lanes (_axis.pxi): a running double sum in the
            # loop below was one dependent add per element (1e5 float32,
            # inner 1e5: 530 us against the forward's 23); before it, as
            # its stores may be to g (in place)
            gw[c] += _negdot(x + f, g + f, seg)
            _prelu_bwd_one(g + f, x + f, w[c], out + f, seg)
        f += seg


cdef enum:
    _WREP = 2000
    _WFWD = _STB  # the forward's blocks: whole 64-byte lines of float or double
    _PRELU_ROWS_C = 100


cdef Py_ssize_t _prelu_rep(floating* wr, const floating* w, Py_ssize_t C) noexcept nogil:
    # w (C,) repeated into wr: L = _WREP - _WREP % C elements (whole rows); returns L
    cdef Py_ssize_t L = _WREP - _WREP % C
    _prelu_fill(wr, w, C, L)
    return L


cdef void _prelu_fill(floating* wr, const floating* w, Py_ssize_t C, Py_ssize_t n) noexcept nogil:
    # wr[k] = w[k % C] for k < n
    cdef Py_ssize_t k = 0
    while k < n:
        memcpy(&wr[k], w, (C if n - k > C else n - k) * sizeof(floating))
        k += C


cdef void _prelu_fwd_rows(const floating* x, const floating* w, floating* out, Py_ssize_t start,
                          Py_ssize_t end, Py_ssize_t C, bint stream) noexcept nogil:
    # The forward with inner == 1 and C <= _PRELU_ROWS_C: the weights
    # repeated into wr (as many whole rows as fit in _WREP), so that whole
    # rows go through _rrelu_fwd_range L elements at a time instead of one
    # row (a call and a vector loop of C elements) at a time. 1e5 float32, 2
    # threads, in-process A/B: C = 3 352 -> 12 us, 16 35 -> 10, 32 18 -> 9,
    # 64 9.7-14 -> 8.1-12, 100 12 -> 9; 1e7: C = 16 2.9 -> 1.8 ms, 64 0.96-
    # 0.97x (C >= 128 lost 0-7 % and stays on _prelu_range; so does the
    # backward's, _prelu_bwd_rows, for the same C). _WREP is not a
    # multiple of 1024: with L = 2048 every block of out sat at the same
    # offset modulo 4 KiB from wr, and the loads from wr waited on the stores
    # to out (4K aliasing: 1e7, C = 32, 0.70x; with 2000, 0.99x).
    # wr holds a block and one row more, so a block may start at any column
    # c (its weights: wr[c:]). The first block ends at out's first 64-byte
    # line (_aligned_from), and the blocks after it, _WFWD elements (whole
    # lines), store aligned: a result from np.empty sits 16 bytes off a
    # line (1e5 float32 in rows of 64, 2 threads, out 16 bytes off a line:
    # 7.4-7.6 -> 6.5-6.9 us; on a line 6.0-6.1 -> 6.3-6.5).
    # With stream (a result of _stream_min bytes or more), each whole block on
    # a line is computed into ob and copied to out with non-temporal stores,
    # as the cheap elementwise forwards are (_stream_u_): the stores then do
    # not read out's lines first, wherever those lines are. 1e7 float32 in rows
    # of 64, 2 threads, best of 5 calls timed in turns with torch's prelu as
    # bench/cython_vs_torch.py does, three runs of each build: 2.06-2.70 ->
    # 1.54-1.95 ms (torch's 1.65-2.98); in calls of its own, 1.43-1.87 ->
    # 1.52-1.60 (relu, streamed: 1.46-1.69). As the Numba backend's
    # _prelu_fwd_stream, whose blocks of 1024 beat 1984 (_WFWD before; here
    # 1e7 one thread 2.70-2.87 -> 2.49-2.77 ms, 1e5 unchanged). ob is placed
    # as the elementwise buffers are (fastact_place_buf: on a line, away from
    # x, wr and out modulo 4 KiB);
    # on the stack as it came, gcc's unaligned stores to it split lines in
    # the processes where it sat off one: 1e7 float32 in rows of 64,
    # alternating processes, 2 threads 1.62-3.17 -> 1.58-1.80 ms (relu's
    # 1.52-1.77), one thread 2.74-3.00 -> 2.54-2.72.
    cdef floating wr[_WFWD + _PRELU_ROWS_C]
    cdef floating obm[_WFWD + 1024]  # 4 KiB of slack or more
    cdef floating* ob
    cdef Py_ssize_t f = start, ln = _aligned_from(out + start, end - start, sizeof(floating))
    _prelu_fill(&wr[0], w, C, (_WFWD if end - start > _WFWD else end - start) + C)
    ob = <floating*>fastact_place_buf(&obm[0], x + start + ln, &wr[(start + ln) % C], out + start + ln)
    if ln == 0:
        ln = _WFWD
    while f < end:
        if ln > end - f:
            ln = end - f
        if stream and ln == _WFWD and fastact_stream_head(out + f, ln, sizeof(floating)) == 0:
            _rrelu_fwd_range(x + f, &wr[f % C], ob, ln)
            fastact_stream_copy(ob, out + f, ln * sizeof(floating))
        else:
            _rrelu_fwd_range(x + f, &wr[f % C], out + f, ln)
        f += ln
        ln = _WFWD
    if stream:
        fastact_sfence()


cdef inline Py_ssize_t _prelu_head(Py_ssize_t start, Py_ssize_t end, Py_ssize_t C) noexcept nogil:
    # the elements from start to the next row's start (or end)
    cdef Py_ssize_t h = (C - start % C) % C
    return h if h < end - start else end - start


cdef inline Py_ssize_t _prelu_span(Py_ssize_t L, Py_ssize_t start, Py_ssize_t end, Py_ssize_t C,
                                   Py_ssize_t h) noexcept nogil:
    # the positions of gr a range uses: L, or the whole rows it reaches after its head h
    return L if end - start - h >= L else (end - start - h + C - 1) // C * C


cdef inline void _prelu_fold(double* gw, const double* gr, Py_ssize_t L, Py_ssize_t C) noexcept nogil:
    # gw[k] += gr[k], gr[C + k], ... over the L // C rows of gr
    cdef Py_ssize_t f = 0, k
    while f < L:
        for k in range(C):
            gw[k] += gr[f + k]
        f += C


cdef void _prelu_bwd_rows(const floating* g, const floating* x, const floating* w, floating* out,
                          double* gw, Py_ssize_t start, Py_ssize_t end, Py_ssize_t C) noexcept nogil:
    # The backward as _prelu_fwd_rows: the input's gradient against the
    # repeated weights, the weight's gradient summed per position of the
    # block in double (gr, independent lanes) and folded into gw[c] at the
    # end (the head's partial row straight into gw). 1e5 float32, 2 threads,
    # in-process A/B: C = 3 461 -> 35 us, 20 154 -> 28, 64 1.44x, 100 1.26x;
    # 1e7 C = 3 51 -> 3.7 ms, 64 1.61x, 100 1.79x. (Folding gr with k % C
    # per element cost 6 us a call.)
    # A range shorter than the block clears and folds only the rows it
    # reaches (960 float32 in rows of 64: 1.22-1.25 -> 1.17 us a call).
    cdef floating wr[_WREP]
    cdef double gr[_WREP]
    cdef Py_ssize_t f = start, h = _prelu_head(start, end, C), ln
    cdef Py_ssize_t L = _prelu_span(_prelu_rep(&wr[0], w, C), start, end, C, h)
    memset(&gr[0], 0, L * sizeof(double))
    _prelu_bwd_run(g + f, x + f, w + f % C, out + f, gw + f % C, h)
    f += h
    while f < end:
        ln = end - f if end - f < L else L
        _prelu_bwd_run(g + f, x + f, &wr[0], out + f, &gr[0], ln)
        f += ln
    _prelu_fold(gw, &gr[0], L, C)


cdef void _prelu(const floating* g, const floating* x, const floating* w, floating* out,
                 double* part, Py_ssize_t n, Py_ssize_t C, Py_ssize_t inner, int nt,
                 bint fwd) noexcept nogil:
    cdef Py_ssize_t c
    cdef bint rows = inner == 1 and C <= _PRELU_ROWS_C
    cdef bint stream = n * <Py_ssize_t>sizeof(floating) >= _stream_min
    if nt <= 1:
        if rows and fwd:
            _prelu_fwd_rows(x, w, out, 0, n, C, stream)
        elif rows:
            _prelu_bwd_rows(g, x, w, out, part, 0, n, C)
        else:
            _prelu_range(g, x, w, out, part, 0, n, C, inner, fwd)
        return
    _mark_parallel()
    for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        _note_team()
        if rows and fwd:
            _prelu_fwd_rows(x, w, out, _split(n, nt, c), _split(n, nt, c + 1), C, stream)
        elif rows:
            _prelu_bwd_rows(g, x, w, out, part + c * C, _split(n, nt, c), _split(n, nt, c + 1), C)
        else:
            _prelu_range(g, x, w, out, part + c * C, _split(n, nt, c), _split(n, nt, c + 1), C, inner, fwd)


# float16 (HALF_FUNCTIONS): x, g and out float16, the weight float32 (which
# holds float16's values exactly). The walks above, with every run of
# elements widened into buffers on the stack at most _HB at a time, run
# through the float32 loops, and narrowed into out (_half_store): one pass
# over float16 memory instead of three over float32 temporaries. The
# loops, and the order of every sum of the weight's gradient (per position;
# _negdot's lanes in pieces of a multiple of _VL), are those of float32:
# the same bits as the float32 kernel on x.astype(float32), the weight's
# gradient too, returned in float32 as that kernel's. The forwards go in
# blocks of out as _half_u's, streaming a large result as it does; the
# backwards run by run (the sums' order), storing plainly as float32's do.

cdef void _prelu_bwd_h(const unsigned short* g, const unsigned short* x, const float* w, bint one,
                       unsigned short* out, double* acc, Py_ssize_t n) noexcept nogil:
    # _prelu_bwd_run on float16 g, x and out; with one, against w[0] for
    # all, and the weight's gradient in _negdot's lanes added to acc[0]
    cdef float mem[3 * _HGAP + 16]
    cdef float* gb = _align64(&mem[0])
    cdef float* xb = gb + _HGAP
    cdef float* ob = gb + 2 * _HGAP
    cdef double lanes[_VL]
    cdef Py_ssize_t i = 0, m
    if one:
        memset(&lanes[0], 0, sizeof(lanes))
    while i < n:
        m = n - i if n - i < _HB else _HB
        fastact_h2f(g + i, gb, m)
        fastact_h2f(x + i, xb, m)
        if one:
            _negdot_acc(xb, gb, &lanes[0], m)
            _prelu_bwd_one(gb, xb, w[0], ob, m)
        else:
            _prelu_bwd_run(gb, xb, w + i, ob, acc + i, m)
        fastact_f2h(ob, out + i, m)
        i += m
    if one:
        acc[0] += _fold_lanes(&lanes[0], _VL)


cdef void _prelu_bwd_range_h(const unsigned short* g, const unsigned short* x, const float* w,
                             unsigned short* out, double* gw, Py_ssize_t start, Py_ssize_t end, Py_ssize_t C,
                             Py_ssize_t inner) noexcept nogil:
    # _prelu_range's backward walk, run by run
    cdef Py_ssize_t f = start, c, seg
    while f < end:
        seg = _prelu_run(f, end, C, inner, &c)
        _prelu_bwd_h(g + f, x + f, w + c, inner > 1, out + f, gw + c, seg)
        f += seg


cdef void _prelu_fwd_h(const unsigned short* x, const float* w, unsigned short* out, Py_ssize_t start,
                       Py_ssize_t end, Py_ssize_t C, Py_ssize_t inner, bint st) noexcept nogil:
    # the forward in blocks of out as _half_u's (whole ones streamed with
    # st): as _prelu_fwd_rows for rows of at most _PRELU_ROWS_C (inner == 1;
    # the weights repeated into wr), else _prelu_range's walk over the runs
    # each block holds
    cdef float wr[_HB + _PRELU_ROWS_C]
    cdef float mem[2 * _HGAP + 16]
    cdef unsigned short hb[_HB]
    cdef float* xb = _align64(&mem[0])
    cdef float* ob = xb + _HGAP
    cdef bint rows = inner == 1 and C <= _PRELU_ROWS_C
    cdef Py_ssize_t n = end - start, i = 0, m, k, c, seg
    cdef Py_ssize_t h = fastact_stream_head(out + start, n, 2) if st else n
    if not FASTACT_HAVE_F16:  # (never called there; no code)
        return
    if rows:
        _prelu_fill(&wr[0], w, C, (_HB if n > _HB else n) + C)
    while i < n:
        m = _half_block(i, n, h)
        fastact_h2f(x + start + i, xb, m)
        if rows:
            _rrelu_fwd_range(xb, &wr[(start + i) % C], ob, m)
        else:
            k = 0
            while k < m:
                seg = _prelu_run(start + i + k, start + i + m, C, inner, &c)
                if inner == 1:
                    _rrelu_fwd_range(xb + k, w + c, ob + k, seg)
                else:
                    _prelu_fwd_one(xb + k, w[c], ob + k, seg)
                k += seg
        _half_store(ob, hb, out + start + i, m, i >= h and m == _HB)
        i += m
    if st:
        fastact_sfence()


cdef void _prelu_bwd_rows_h(const unsigned short* g, const unsigned short* x, const float* w, unsigned short* out,
                            double* gw, Py_ssize_t start, Py_ssize_t end, Py_ssize_t C) noexcept nogil:
    # _prelu_bwd_rows, each run through _prelu_bwd_h
    cdef float wr[_WREP]
    cdef double gr[_WREP]
    cdef Py_ssize_t f = start, h = _prelu_head(start, end, C), ln
    cdef Py_ssize_t L = _prelu_span(_prelu_rep(&wr[0], w, C), start, end, C, h)
    memset(&gr[0], 0, L * sizeof(double))
    _prelu_bwd_h(g + f, x + f, w + f % C, False, out + f, gw + f % C, h)
    f += h
    while f < end:
        ln = end - f if end - f < L else L
        _prelu_bwd_h(g + f, x + f, &wr[0], False, out + f, &gr[0], ln)
        f += ln
    _prelu_fold(gw, &gr[0], L, C)


cdef void _prelu_part_h(const unsigned short* g, const unsigned short* x, const float* w, unsigned short* out,
                        double* gw, Py_ssize_t start, Py_ssize_t end, Py_ssize_t C, Py_ssize_t inner, bint fwd,
                        bint st) noexcept nogil:
    # one thread's share [start, end), as _prelu's
    if fwd:
        _prelu_fwd_h(x, w, out, start, end, C, inner, st)
    elif inner == 1 and C <= _PRELU_ROWS_C:
        _prelu_bwd_rows_h(g, x, w, out, gw, start, end, C)
    else:
        _prelu_bwd_range_h(g, x, w, out, gw, start, end, C, inner)


cdef void _prelu_h(const unsigned short* g, const unsigned short* x, const float* w, unsigned short* out,
                   double* part, Py_ssize_t n, Py_ssize_t C, Py_ssize_t inner, int nt, bint fwd) noexcept nogil:
    cdef Py_ssize_t c
    cdef bint st = n * 2 >= _stream_min
    if nt <= 1:
        _prelu_part_h(g, x, w, out, part, 0, n, C, inner, fwd, st)
        return
    _mark_parallel()
    for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        _note_team()
        _prelu_part_h(g, x, w, out, part + c * C, _split(n, nt, c), _split(n, nt, c + 1), C, inner, fwd, st)


cdef object _run_prelu(cnp.ndarray g, cnp.ndarray x, cnp.ndarray out, dict params, bint fwd, int threads):
    cdef cnp.ndarray w = params["weight"]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef Py_ssize_t C = cnp.PyArray_DIM(x, 1)
    cdef Py_ssize_t inner = cnp.PyArray_DIM(x, 2)
    cdef int nt = _nthreads(n, THRESH_CHEAP, threads)
    cdef int typ = cnp.PyArray_TYPE(x)
    cdef cnp.ndarray part = None
    cdef double* pp = NULL
    cdef void* pg = cnp.PyArray_DATA(g) if g is not None else NULL
    cdef void* px = cnp.PyArray_DATA(x)
    cdef void* pw = cnp.PyArray_DATA(w)
    cdef void* po = cnp.PyArray_DATA(out)
    cdef Py_ssize_t fold = 1
    cdef bint half = typ == NPY_HALF and FASTACT_HAVE_F16
    if half:
        _same_kind(x, out, typ, n)
        if g is not None:
            _same_kind(g, out, typ, n)
    if cnp.PyArray_SIZE(w) != C or cnp.PyArray_TYPE(w) != (cnp.NPY_FLOAT if half else typ):
        raise ValueError("prelu: weight must have C elements of the input's dtype (float32 for float16)")
    if 1 < inner < 64:
        # short runs of one weight: rows of C*inner with a weight per column
        # instead, the inner == 1 walk (1e5 float32 as (3000, 7, 5): 105 ->
        # 43 us forward, 604 -> 90 us backward), as the Numba backend does
        w = _np.repeat(w, inner)
        pw = cnp.PyArray_DATA(w)
        fold = inner
        C = C * inner
        inner = 1
    cdef cnp.ndarray gw = None
    cdef void* pgw = NULL
    if not fwd:
        part = _np.zeros((nt, C), dtype=_np.float64)
        pp = <double*>cnp.PyArray_DATA(part)
        gw = cnp.PyArray_EMPTY(1, [C // fold], cnp.NPY_FLOAT if half else typ, 0)
        pgw = cnp.PyArray_DATA(gw)
    if half:
        with nogil:
            _prelu_h(<const unsigned short*>pg, <const unsigned short*>px, <const float*>pw, <unsigned short*>po, pp,
                     n, C, inner, nt, fwd)
            if not fwd:
                _prelu_gw(pp, nt, C, fold, <float*>pgw)
    elif typ == cnp.NPY_FLOAT:
        with nogil:
            _prelu(<const float*>pg, <const float*>px, <const float*>pw, <float*>po, pp, n, C, inner, nt, fwd)
            if not fwd:
                _prelu_gw(pp, nt, C, fold, <float*>pgw)
    elif typ == cnp.NPY_DOUBLE:
        with nogil:
            _prelu(<const double*>pg, <const double*>px, <const double*>pw, <double*>po, pp, n, C, inner, nt, fwd)
            if not fwd:
                _prelu_gw(pp, nt, C, fold, <double*>pgw)
    else:
        _bad_dtype(x)
    return gw


cdef void _prelu_gw(const double* part, int nt, Py_ssize_t C, Py_ssize_t fold, floating* gw) noexcept nogil:
    # grad_weight from the threads' partial sums part (nt, C): per column the
    # threads' sums in thread order, then per channel its fold columns in 8
    # lanes (as NumPy's pairwise sum of fewer than 128), rounded once to the
    # dtype. inf + -inf is NaN and a sum can pass the float range, as in the
    # one sum of the reference, which warns of neither. (It was NumPy's sums
    # and an errstate: 2.9 of a 960-element call's 4.5 us.)
    cdef double lane[8]
    cdef double v
    cdef Py_ssize_t k, j
    cdef int t
    for k in range(C // fold):
        for j in range(8):
            lane[j] = 0.0
        for j in range(fold):
            v = part[k * fold + j]
            for t in range(1, nt):
                v += part[t * C + k * fold + j]
            lane[j % 8] += v
        gw[k] = <floating>(((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])))


def _f_prelu(cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
    _run_prelu(None, x, out, params, True, threads)


def _b_prelu(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    if y is not None:
        _no_y("prelu")
    return _run_prelu(g, x, out, params, False, threads)

# ------------------------------------------------------------------------- glu
# forward: x (outer, 2L) viewed flat per outer row, out (outer, L), L = m*inner

cdef void _glu_fwd_seg(const floating* a, const floating* b, floating* out, Py_ssize_t n, bint st) noexcept nogil:
    # the elementwise loop of glu_fwd_ab: float32's with its tail (b < -80,
    # a subnormal sigmoid, in double; TAIL in _elementwise.pxi.in); on
    # AVX-512 float32 from log_sigmoid's table at -b instead
    # (fastact_glu_f32, one pass), st: out's whole lines stored
    # non-temporally (no fence: _glu fences once per thread)
    if floating is float:
        if FASTACT_HAVE_TABLES and st:
            fastact_glu_f32_st(a, b, out, n)
        elif FASTACT_HAVE_TABLES:
            fastact_glu_f32(a, b, out, n)
        else:
            _whole_b_f(_L_glu_fwd_ab_f, a, b, out, n, 0.0, 0.0)
    else:
        _whole_b_d(_L_glu_fwd_ab_d, a, b, out, n, 0.0, 0.0)


cdef void _glu_bwd_seg(const floating* g, const floating* a, const floating* b, floating* da,
                       floating* db, Py_ssize_t n) noexcept nogil:
    # _glu_bwd_loop with the last n % _PAD elements padded (_whole_b_* of
    # _elementwise.pxi.in: no result depends on its place)
    cdef Py_ssize_t m = n - n % _PAD
    cdef floating gb[_PAD]
    cdef floating ab[_PAD]
    cdef floating bb[_PAD]
    cdef floating dab[_PAD]
    cdef floating dbb[_PAD]
    if m > 0:
        _glu_bwd_loop(g, a, b, da, db, m)
    if m == n:
        return
    _pad_tail(g + m, gb, n - m)
    _pad_tail(a + m, ab, n - m)
    _pad_tail(b + m, bb, n - m)
    _glu_bwd_loop(gb, ab, bb, dab, dbb, _PAD)
    memcpy(da + m, dab, (n - m) * sizeof(floating))
    memcpy(db + m, dbb, (n - m) * sizeof(floating))


cdef void _glu_bwd_loop(const floating* g, const floating* a, const floating* b, floating* da,
                        floating* db, Py_ssize_t n) noexcept nogil:
    # float32: |b| > 80 (s or 1 - s subnormal) and db = inf (g*a may have
    # overflowed) again in double, found by the largest keys of |b| and |db|
    # (as the TAIL loops of _elementwise.pxi.in; x never overlaps out: the
    # caller copies it)
    cdef Py_ssize_t i
    cdef unsigned int u, w, mb = 0, md = 0
    cdef double dbw
    if floating is float:
        for i in range(n):
            da[i] = glu_bwd(g[i], a[i], b[i], &db[i])
            u = abs_key_(b[i])
            w = abs_key_(db[i])
            mb = u if u > mb else mb
            md = w if w > md else md
        if mb > abs_key_(<float>80.0) or md > abs_key_(<float>3.4028234663852886e38):
            for i in range(n):
                if (fabsf(b[i]) > <float>80.0) | (fabsf(db[i]) > <float>3.4028234663852886e38):
                    da[i] = <float>glu_bwd(<double>g[i], <double>a[i], <double>b[i], &dbw)
                    db[i] = <float>dbw
    else:
        for i in range(n):
            da[i] = glu_bwd(g[i], a[i], b[i], &db[i])


cdef enum:
    _GLU_SHORT = 64     # rows of L below this go through _glu_rows
    _GLU_BLK = 1024     # _glu_rows' block, in elements of a half


cdef void _glu_rows(const floating* g, const floating* x, floating* out, Py_ssize_t o0,
                    Py_ssize_t o1, Py_ssize_t L, bint fwd) noexcept nogil:
    # whole rows o0..o1 of short halves (L < _GLU_SHORT): the halves of a
    # block of rows copied into two contiguous buffers, one call of the
    # elementwise loop for the block, the backward's two results copied back
    # into their halves. Per row, the loop's padded tail alone cost more than
    # a short row. 1e5 float32 along the last axis, 2 threads, forward /
    # backward: rows of 2 1110 / 1436 -> 19 / 29 us, of 4 557 / 733 -> 33 /
    # 52, of 14 180 / 211 -> 33 / 57, of 34 80 / 101 -> 23 / 39 (rows of
    # 1000: 17 / 23). Half rows under 16 are copied a column at a time
    # across the rows (a row at a time, 2.5-4x slower), of 1 as a deinterleave.
    cdef floating ab[_GLU_BLK]
    cdef floating bb[_GLU_BLK]
    cdef floating da[_GLU_BLK]
    cdef floating db[_GLU_BLK]
    cdef Py_ssize_t rows = _GLU_BLK // L, o, r, j, b1
    while o0 < o1:
        b1 = o0 + rows if o0 + rows < o1 else o1
        if L == 1:  # (a loop gcc deinterleaves in vectors)
            for o in range(o0, b1):
                ab[o - o0] = x[2 * o]
                bb[o - o0] = x[2 * o + 1]
        elif L < 16:  # across the rows, a column at a time
            for j in range(L):
                for o in range(o0, b1):
                    ab[(o - o0) * L + j] = x[o * 2 * L + j]
                    bb[(o - o0) * L + j] = x[o * 2 * L + L + j]
        else:
            for o in range(o0, b1):
                r = (o - o0) * L
                for j in range(L):
                    ab[r + j] = x[o * 2 * L + j]
                    bb[r + j] = x[o * 2 * L + L + j]
        if fwd:
            _glu_fwd_seg(&ab[0], &bb[0], out + o0 * L, (b1 - o0) * L, False)
        else:
            _glu_bwd_seg(g + o0 * L, &ab[0], &bb[0], &da[0], &db[0], (b1 - o0) * L)
            if L == 1:
                for o in range(o0, b1):
                    out[2 * o] = da[o - o0]
                    out[2 * o + 1] = db[o - o0]
            elif L < 16:
                for j in range(L):
                    for o in range(o0, b1):
                        out[o * 2 * L + j] = da[(o - o0) * L + j]
                        out[o * 2 * L + L + j] = db[(o - o0) * L + j]
            else:
                for o in range(o0, b1):
                    r = (o - o0) * L
                    for j in range(L):
                        out[o * 2 * L + j] = da[r + j]
                        out[o * 2 * L + L + j] = db[r + j]
        o0 = b1


cdef void _glu_range(const floating* g, const floating* x, floating* out, Py_ssize_t start,
                     Py_ssize_t end, Py_ssize_t L, bint fwd, bint st) noexcept nogil:
    # flat indices of the half-size array (out for forward, g for backward)
    cdef Py_ssize_t f = start, o, k, seg, o1
    if L < _GLU_SHORT:
        # the partial row at the start, then whole rows by blocks, then the
        # partial row at the end
        o = (f + L - 1) // L
        o1 = end // L
        if o < o1:
            if o * L > f:
                _glu_range(g, x, out, f, o * L, L, fwd, st)
            _glu_rows(g, x, out, o, o1, L, fwd)
            f = o1 * L
    while f < end:
        o = f // L
        k = f - o * L
        seg = L - k
        if seg > end - f:
            seg = end - f
        if fwd:
            _glu_fwd_seg(x + o * 2 * L + k, x + o * 2 * L + L + k, out + f, seg, st)
        else:
            _glu_bwd_seg(g + f, x + o * 2 * L + k, x + o * 2 * L + L + k,
                         out + o * 2 * L + k, out + o * 2 * L + L + k, seg)
        f += seg


cdef void _glu(const floating* g, const floating* x, floating* out, Py_ssize_t n, Py_ssize_t L,
               int nt, bint fwd) noexcept nogil:
    # a forward's float32 result of _stream_min bytes or more, on AVX-512: rows of
    # _GLU_SHORT or more store out non-temporally (_glu_fwd_seg).  1e7 float32,
    # 2 threads, alternating builds (before: glu_fwd_ab's exp loop, plain
    # stores): rows of 1000 2.60-2.67 -> 1.46-2.01 ms, one row 1.02-1.06 ->
    # 0.65-0.75 (PyTorch 2.85-3.20 and 1.15-1.19); 1e5 14.5-14.8 -> 9.3-10.0 us.
    cdef Py_ssize_t c
    cdef bint st = fwd and FASTACT_HAVE_TABLES and sizeof(floating) == 4 and n * 4 >= _stream_min
    if nt <= 1:
        _glu_range(g, x, out, 0, n, L, fwd, st)
        if st:
            fastact_sfence()
        return
    _mark_parallel()
    for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        _note_team()
        _glu_range(g, x, out, _split(n, nt, c), _split(n, nt, c + 1), L, fwd, st)
        if st:
            fastact_sfence()


# ------------------------------------------------------- float16 row groups
# float16 rows of x of at most _HROW_MAX elements (glu's here, the softmax
# family's in _axis.pxi), where the build converts (FASTACT_HAVE_F16): per
# thread, groups of _HROWS // (x's row) rows (one or more) go through a
# group function, which widens them into buffers on the stack, runs the
# float32 kernel on the group serially and narrows the result into out: one
# pass over float16 memory, where the whole-array path widened x (and g)
# into float32 temporaries, ran the kernel into another and narrowed it.
# The buffers sit _HROWSG floats apart (a multiple of 64 bytes, 1408 mod
# 4096: see _HGAP). Groups of 2048 elements, not 4096: the backwards' three
# buffers then fit in a 48 KiB L1 (Intel Xeon, rows of 1000, 2 threads,
# three alternating runs against 4096, us: log_softmax's backward from y
# 1e5 27 -> 21, 1e6 273-279 -> 219-226; glu's backward 43-45 -> 35-36;
# softmax's backward from x 37 -> 33; the forwards 3-8 % faster, but glu's
# at 1e5, 18.1 -> 18.9-19.5, whose rows of x (2000) now go one a group).
cdef enum:
    _HROWS = 2048
    _HROWSG = 2400
    _HROW_MAX = 2048

# (g, x, out, k rows, n, kind, mode): g, x and out at the group's first row
ctypedef void (*hgroup)(const unsigned short*, const unsigned short*, unsigned short*, Py_ssize_t, Py_ssize_t,
                        int, int) noexcept nogil

cdef void _rows_h_groups(hgroup fn, const unsigned short* g, const unsigned short* x, unsigned short* out,
                         Py_ssize_t q0, Py_ssize_t q1, Py_ssize_t outer, Py_ssize_t kk, Py_ssize_t gl, Py_ssize_t xl,
                         Py_ssize_t ol, Py_ssize_t n, int kind, int mode) noexcept nogil:
    # groups q0..q1 of kk rows; rows of gl, xl and ol elements in g, x and out
    cdef Py_ssize_t q, r, k
    for q in range(q0, q1):
        r = q * kk
        k = outer - r if outer - r < kk else kk
        fn(g + r * gl if g != NULL else NULL, x + r * xl, out + r * ol, k, n, kind, mode)

cdef void _rows_h(hgroup fn, const unsigned short* g, const unsigned short* x, unsigned short* out,
                  Py_ssize_t outer, Py_ssize_t gl, Py_ssize_t xl, Py_ssize_t ol, Py_ssize_t n, int kind, int mode,
                  int nt) noexcept nogil:
    cdef Py_ssize_t kk = _HROWS // xl
    cdef Py_ssize_t ng = (outer + kk - 1) // kk
    cdef Py_ssize_t c
    if nt <= 1 or ng < 2:
        _rows_h_groups(fn, g, x, out, 0, ng, outer, kk, gl, xl, ol, n, kind, mode)
        return
    _mark_parallel()
    for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        _note_team()
        _rows_h_groups(fn, g, x, out, (ng * c) // nt, (ng * (c + 1)) // nt, outer, kk, gl, xl, ol, n, kind, mode)

# glu (HALF_ROWS): x's rows are 2L long, g's L, out's L (forward) or 2L
cdef void _glu_h_group(const unsigned short* g, const unsigned short* x, unsigned short* out, Py_ssize_t k,
                       Py_ssize_t L, int kind, int mode) noexcept nogil:
    # mode 0: forward, 1: backward (kind: unused)
    cdef float mem[3 * _HROWSG + 16]
    cdef float* xb = _align64(&mem[0])
    cdef float* gb = xb + _HROWSG
    cdef float* ob = xb + 2 * _HROWSG
    fastact_h2f(x, xb, 2 * k * L)
    if mode == 0:
        _glu(<const float*>NULL, xb, ob, k * L, L, 1, True)
        fastact_f2h(ob, out, k * L)
    else:
        fastact_h2f(g, gb, k * L)
        _glu(<const float*>gb, xb, ob, k * L, L, 1, False)
        fastact_f2h(ob, out, 2 * k * L)


cdef int _run_glu(cnp.ndarray g, cnp.ndarray x, cnp.ndarray out, bint fwd, int threads) except -1:
    cdef Py_ssize_t half = cnp.PyArray_DIM(x, 1) // 2
    cdef Py_ssize_t L = half * cnp.PyArray_DIM(x, 2)
    cdef Py_ssize_t n = cnp.PyArray_DIM(x, 0) * L
    cdef int nt = _nthreads(n, THRESH_COSTLY, threads)
    cdef int typ = cnp.PyArray_TYPE(x)
    cdef void* pg = cnp.PyArray_DATA(g) if g is not None else NULL
    cdef void* px = cnp.PyArray_DATA(x)
    cdef void* po = cnp.PyArray_DATA(out)
    if n == 0:
        return 0
    if typ == NPY_HALF and FASTACT_HAVE_F16 and 2 * L <= _HROW_MAX:
        if cnp.PyArray_TYPE(out) != typ or (g is not None and cnp.PyArray_TYPE(g) != typ):
            raise TypeError(f"fastact cython backend: float16 rows need float16 arrays throughout, not out {out.dtype}")
        with nogil:
            _rows_h(_glu_h_group, <const unsigned short*>pg, <const unsigned short*>px, <unsigned short*>po,
                    cnp.PyArray_DIM(x, 0), L, 2 * L, L if fwd else 2 * L, L, 0, 0 if fwd else 1, nt)
    elif typ == cnp.NPY_FLOAT:
        with nogil:
            _glu(<const float*>pg, <const float*>px, <float*>po, n, L, nt, fwd)
    elif typ == cnp.NPY_DOUBLE:
        with nogil:
            _glu(<const double*>pg, <const double*>px, <double*>po, n, L, nt, fwd)
    else:
        _bad_dtype(x)
    return 0


def _f_glu(cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
    _run_glu(None, x, out, True, threads)


def _b_glu(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    if y is not None:
        _no_y("glu")
    _run_glu(g, x, out, False, threads)

# ---------------------------------------------------------------------- maxout
# x (outer, m*k, inner) -> out (outer, m, inner); group q = o*m + j owns the k
# rows q*k .. q*k+k-1 of x (each `inner` long) and row q of out.

cdef inline bint _takes(floating v, floating cur) noexcept nogil:
    # v replaces the running max if larger, or if it is the first NaN.  The
    # bitwise form: with `or`/`and` gcc's branches kept float64's block loop
    # scalar (1e5 float64, k = 2, forward: 46 us, Numba 35)
    return ((v > cur) | (v != v)) & (cur == cur)


cdef inline void _maxout_scan(const floating* x, floating* out, Py_ssize_t q0, Py_ssize_t q1,
                              Py_ssize_t k) noexcept nogil:
    # the forward with the channel axis last, k literal: a k-long scan per
    # group, which gcc unrolls, and the loop over groups vectorises (as the
    # Numba backend's _maxout_scan). Called for k = 2 only: for k = 3 and 4
    # gcc kept the scan's branches (1e5 float32 on two threads, 18 -> 200 us;
    # LLVM's scans are fast there)
    cdef Py_ssize_t q, p
    cdef floating v, cur
    for q in range(q0, q1):
        cur = x[q * k]
        for p in range(1, k):
            v = x[q * k + p]
            cur = v if _takes(v, cur) else cur
        out[q] = cur


cdef inline void _maxout_bwd_scan(const floating* g, const floating* x, floating* out, Py_ssize_t q0,
                                  Py_ssize_t q1, Py_ssize_t k) noexcept nogil:
    # the backward's, k literal: g to the first largest piece (or first NaN),
    # the index a float (one vector width), as the Numba backend's
    # _maxout_bwd_scan
    cdef Py_ssize_t q, p
    cdef floating v, cur, best, gq
    cdef bint t
    for q in range(q0, q1):
        cur = x[q * k]
        best = 0
        for p in range(1, k):
            v = x[q * k + p]
            t = _takes(v, cur)
            cur = v if t else cur
            best = <floating>p if t else best
        gq = g[q]
        for p in range(k):
            out[q * k + p] = gq if best == <floating>p else <floating>0


cdef void _maxout_fwd_cols(const floating* x, floating* out, Py_ssize_t q0, Py_ssize_t q1,
                           Py_ssize_t k) noexcept nogil:
    # the forward with the channel axis last: a k-long scan per group would
    # be scalar, so the loops run across a block of groups (stride k)
    # instead, as the Numba backend's _maxout_cols (1e5 float32, k = 2: 256
    # -> 30 us). A function of its own: as a branch of _maxout_range its
    # speed hung on gcc cloning that function per constant (1e5 float32 as
    # (100, 1000), k = 2: 16 us with the clone, 23.5 without).
    cdef Py_ssize_t q, p, b0, b1
    cdef floating v, cur
    b0 = q0
    while b0 < q1:
        b1 = b0 + 4096 if b0 + 4096 < q1 else q1
        for q in range(b0, b1):
            out[q] = x[q * k]
        for p in range(1, k):
            for q in range(b0, b1):
                v = x[q * k + p]
                cur = out[q]
                out[q] = v if _takes(v, cur) else cur
        b0 = b1


cdef void _maxout_range(const floating* g, const floating* x, floating* out, Py_ssize_t q0,
                        Py_ssize_t q1, Py_ssize_t k, Py_ssize_t inner, bint fwd) noexcept nogil:
    cdef Py_ssize_t q, p, i, best
    cdef const floating* r0
    cdef const floating* r
    cdef floating* o_
    cdef floating v, cur
    cdef Py_ssize_t b0, b1
    if fwd and inner == 1:
        if k == 2:
            _maxout_scan(x, out, q0, q1, 2)
        else:
            _maxout_fwd_cols(x, out, q0, q1, k)
        return
    cdef floating bv[1024]
    cdef floating bi[1024]   # the index, as a float: one vector width throughout
    cdef bint take
    if inner == 1 and k == 2:
        _maxout_bwd_scan(g, x, out, q0, q1, 2)
        return
    if inner == 1 and k <= 16777216:
        # the same across a block of groups: the running best and its index
        # (a float, exact up to 2^24: with an int index the loops mixed
        # vector widths and ran 4x slower) in scratch, then every output of
        # the block by a select (a k-long scan per group with its branches:
        # 1e5 float32, k = 2, 215 -> 34 us)
        b0 = q0
        while b0 < q1:
            b1 = b0 + 1024 if b0 + 1024 < q1 else q1
            for q in range(b0, b1):
                bv[q - b0] = x[q * k]
                bi[q - b0] = <floating>0
            for p in range(1, k):
                for q in range(b0, b1):
                    v = x[q * k + p]
                    cur = bv[q - b0]
                    take = _takes(v, cur)
                    bv[q - b0] = v if take else cur
                    bi[q - b0] = <floating>p if take else bi[q - b0]
            for p in range(k):
                for q in range(b0, b1):
                    out[q * k + p] = g[q] if bi[q - b0] == <floating>p else <floating>0
            b0 = b1
        return
    for q in range(q0, q1):
        r0 = x + q * k * inner
        if fwd:
            o_ = out + q * inner
            for i in range(inner):
                o_[i] = r0[i]
            for p in range(1, k):
                r = r0 + p * inner
                for i in range(inner):
                    v = r[i]
                    cur = o_[i]
                    o_[i] = v if _takes(v, cur) else cur
        elif k <= 16777216:
            # the block loop above across up to 1024 columns of the group
            # (a k-long scan per column with its branches: 1e5 float32, k =
            # 2, as (1000, 10, 10) on axis 1 236 -> 88 us, as (2, 50000) on
            # axis 0 449 -> 22)
            o_ = out + q * k * inner
            b0 = 0
            while b0 < inner:
                b1 = b0 + 1024 if b0 + 1024 < inner else inner
                for i in range(b1 - b0):
                    bv[i] = r0[b0 + i]
                    bi[i] = <floating>0
                for p in range(1, k):
                    r = r0 + p * inner + b0
                    for i in range(b1 - b0):
                        v = r[i]
                        cur = bv[i]
                        take = _takes(v, cur)
                        bv[i] = v if take else cur
                        bi[i] = <floating>p if take else bi[i]
                for p in range(k):
                    for i in range(b1 - b0):
                        o_[p * inner + b0 + i] = g[q * inner + b0 + i] if bi[i] == <floating>p else <floating>0
                b0 = b1
        else:
            o_ = out + q * k * inner
            for i in range(inner):
                best = 0
                cur = r0[i]
                for p in range(1, k):
                    v = r0[p * inner + i]
                    if _takes(v, cur):
                        best = p
                        cur = v
                for p in range(k):
                    o_[p * inner + i] = g[q * inner + i] if p == best else <floating>0


cdef void _maxout(const floating* g, const floating* x, floating* out, Py_ssize_t G, Py_ssize_t k,
                  Py_ssize_t inner, int nt, bint fwd) noexcept nogil:
    cdef Py_ssize_t c
    if nt <= 1 or G < nt:
        _maxout_range(g, x, out, 0, G, k, inner, fwd)
        return
    _mark_parallel()
    for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        _note_team()
        _maxout_range(g, x, out, (G * c) // nt, (G * (c + 1)) // nt, k, inner, fwd)


cdef int _run_maxout(cnp.ndarray g, cnp.ndarray x, cnp.ndarray out, dict params, bint fwd, int threads) except -1:
    cdef Py_ssize_t k = params["pieces"]
    cdef Py_ssize_t inner = cnp.PyArray_DIM(x, 2)
    cdef Py_ssize_t G = cnp.PyArray_DIM(x, 0) * (cnp.PyArray_DIM(x, 1) // k)
    cdef int nt = _nthreads(cnp.PyArray_SIZE(x), THRESH_CHEAP, threads)
    cdef int typ = cnp.PyArray_TYPE(x)
    cdef void* pg = cnp.PyArray_DATA(g) if g is not None else NULL
    cdef void* px = cnp.PyArray_DATA(x)
    cdef void* po = cnp.PyArray_DATA(out)
    if k < 1 or cnp.PyArray_DIM(x, 1) % k:
        raise ValueError("maxout: the axis length must be a multiple of pieces")
    if typ == cnp.NPY_FLOAT:
        with nogil:
            _maxout(<const float*>pg, <const float*>px, <float*>po, G, k, inner, nt, fwd)
    elif typ == cnp.NPY_DOUBLE:
        with nogil:
            _maxout(<const double*>pg, <const double*>px, <double*>po, G, k, inner, nt, fwd)
    else:
        _bad_dtype(x)
    return 0


def _f_maxout(cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
    _run_maxout(None, x, out, params, True, threads)


def _b_maxout(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    if y is not None:
        _no_y("maxout")
    _run_maxout(g, x, out, params, False, threads)


include "_axis.pxi"

# --------------------------------------------------------------------- backend

cdef dict _FWD = dict(_GEN_FWD)
cdef dict _BWD = dict(_GEN_BWD)
if FASTACT_HAVE_TABLES:
    _FWD["tanh"] = _f_tanh_tab
    _FWD["tanhshrink"] = _f_tanhshrink_tab
    _BWD["log_sigmoid"] = _b_log_sigmoid_tab
    _FWD["sigmoid"] = _f_sigmoid_tab
    _FWD["silu"] = _f_silu_tab
    _BWD["silu"] = _b_silu_tab
    _BWD["softplus"] = _b_softplus_tab
    _BWD["sigmoid"] = _b_sigmoid_tab
    _BWD["relu"] = _b_relu_nt
    _BWD["relu6"] = _b_relu6_nt
    _BWD["leaky_relu"] = _b_leaky_relu_nt
    _BWD["hardsigmoid"] = _b_hardsigmoid_nt
_FWD.update(gelu=_f_gelu, rrelu=_f_rrelu, prelu=_f_prelu, glu=_f_glu, maxout=_f_maxout,
            softmax=_f_softmax, log_softmax=_f_log_softmax, softmin=_f_softmin, sparsemax=_f_sparsemax)
_BWD.update(gelu=_b_gelu, rrelu=_b_rrelu, prelu=_b_prelu, glu=_b_glu, maxout=_b_maxout,
            softmax=_b_softmax, log_softmax=_b_log_softmax, softmin=_b_softmin, sparsemax=_b_sparsemax)

FUNCTIONS = tuple(sorted(_FWD))
# the elementwise functions whose loops take float16 arrays themselves,
# converting block by block (_elementwise.pxi, _par_u_h): every one that runs
# through _run_u / _run_b; and prelu (x, g, out float16 of (outer, C, inner),
# its weight float32: _prelu_h); none where this build has no conversions
HALF_FUNCTIONS = (frozenset(_GEN_FWD) | {"gelu", "prelu"}) if FASTACT_HAVE_F16 else frozenset()
# the along-axis functions whose rows take float16 themselves, converting
# groups of rows (_rows_h, _axis.pxi's _axis_h_group): (outer, n, 1) arrays with n <= HALF_ROW_MAX
# (and glu: rows of x, 2 * half * inner elements, along any axis; _glu_h_group)
HALF_ROWS = frozenset({"softmax", "log_softmax", "softmin", "sparsemax", "glu"}) if FASTACT_HAVE_F16 else frozenset()
HALF_ROW_MAX = _HROW_MAX
cdef frozenset _CHEAP = frozenset(_GEN_CHEAP) | {"rrelu", "prelu", "maxout"}


def cpu_features():
    """Bit set of usable ISA extensions: 1 = AVX2+FMA+F16C, 2 = AVX-512 (F/DQ/VL/BW) besides."""
    return fastact_cpu_features()


def cpu_is_amd():
    """Whether the CPU is an AMD one (its cpuid vendor)."""
    return bool(fastact_cpu_is_amd())


def mxcsr():
    """The calling thread's MXCSR (bit 15 = flush-to-zero, bit 6 = denormals-are-zero)."""
    return fastact_mxcsr()


def _set_staged_kernels(bint on):
    """Run the float32 kernels that have stages in their stages (on, the
    default) or as one loop (for the tests that compare the two)."""
    global _staged_kernels
    _staged_kernels = on


def _set_vector_exps(bint on):
    """Let the softmax family's float32 loops take their AVX-512 exps (on,
    the default; the same bits) or run the scalar functions' vector code (for
    the tests that compare the two; _axis.pxi, _vector_exps)."""
    global _vector_exps
    _vector_exps = on


def _set_rows_prefetch(bint on):
    """Let log_softmax's backward rows beyond the caches prefetch the next
    row (on: the default unless the CPU is an AMD one with AVX-512; the same
    results either way; _axis.pxi, _rows_prefetch)."""
    global _rows_prefetch
    _rows_prefetch = on


def _set_fast_kernels(bint on):
    """Let the loops pick their faster bit-for-bit kernels (on, the default)
    or always run the general ones (for the tests that compare the two)."""
    global _fast_kernels
    _fast_kernels = on


def _place_buf_offset(size_t buf, size_t a, size_t b, size_t o):
    """fastact_place_buf's start for a buffer at address buf and arrays at a,
    b, o, as a byte offset from buf (for the tests; nothing is dereferenced)."""
    return <size_t>fastact_place_buf(<void*>buf, <const void*>a, <const void*>b, <const void*>o) - buf


def build_info():
    return {
        "isa": FASTACT_ISA.decode(),
        "cflags": FASTACT_CFLAGS.decode(),
        "libmvec": bool(FASTACT_HAVE_MVEC),
        "openmp": bool(FASTACT_HAVE_OPENMP),
        "openmp_version": fastact_omp_version(),
        "openmp_max_threads": fastact_omp_max_threads(),
        "stream_stores": bool(FASTACT_HAVE_STREAM),
        "float16_blocks": bool(FASTACT_HAVE_F16),  # elementwise float16 in blocks (_par_u_h, HALF_FUNCTIONS)
        "stream_min_bytes": _stream_min,
        "rows_prefetch": bool(_rows_prefetch),
        "serial_threshold": {"cheap": THRESH_CHEAP, "costly": THRESH_COSTLY, "heavy": THRESH_HEAVY,
                             "axis": THRESH_AXIS},
    }


# ------------------------------------------------- float16 <-> float32

cdef void _convert(const void* src, void* dst, Py_ssize_t n, bint widen, int nt) noexcept nogil:
    cdef Py_ssize_t c, st, en
    if nt <= 1:
        if widen:
            fastact_h2f(<const unsigned short*>src, <float*>dst, n)
        else:
            fastact_f2h(<const float*>src, <unsigned short*>dst, n)
        return
    _mark_parallel()
    for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        _note_team()
        st = _split(n, nt, c)
        en = _split(n, nt, c + 1)
        if en > st:
            if widen:
                fastact_h2f(<const unsigned short*>src + st, <float*>dst + st, en - st)
            else:
                fastact_f2h(<const float*>src + st, <unsigned short*>dst + st, en - st)


def convert(cnp.ndarray src, cnp.ndarray dst, int threads=0):
    """float16 ``src`` into float32 ``dst``, or float32 into float16, both
    contiguous in one element order and of one size, as NumPy's astype
    (_fastact_cpu.h). False, and nothing written, where this build has no
    conversion instructions."""
    cdef Py_ssize_t n = cnp.PyArray_SIZE(src)
    cdef int ts = cnp.PyArray_TYPE(src), td = cnp.PyArray_TYPE(dst)
    cdef bint widen = ts == NPY_HALF
    if not FASTACT_HAVE_F16:
        return False
    if not ((widen and td == cnp.NPY_FLOAT) or (ts == cnp.NPY_FLOAT and td == NPY_HALF)):
        raise TypeError(f"convert: float16 to float32 or back, not {src.dtype} to {dst.dtype}")
    if cnp.PyArray_SIZE(dst) != n or not (cnp.PyArray_ISCONTIGUOUS(src) and cnp.PyArray_ISCONTIGUOUS(dst)):
        raise ValueError("convert: src and dst must be C-contiguous and of one size")
    cdef int nt = _nthreads(n, THRESH_CHEAP, threads)
    cdef const void* ps = cnp.PyArray_DATA(src)
    cdef void* pd = cnp.PyArray_DATA(dst)
    with nogil:
        _convert(ps, pd, n, widen, nt)
    return True


cdef class CythonBackend:
    """The Cython backend (see docs/backend-contract.md)."""

    cdef readonly str name
    cdef readonly str module

    def __init__(self):
        self.name = "cython"
        self.module = __name__

    def forward(self, str name, cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
        _FWD[name](x, out, params, threads)

    def backward(self, str name, cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
        return _BWD[name](g, x, y, out, params, threads)

    def threads_for(self, Py_ssize_t n, str name=None):
        """Threads this backend uses for n elements when left to decide (threads=0)."""
        return _nthreads(n, THRESH_CHEAP if name in _CHEAP else THRESH_COSTLY, 0)

    def set_num_threads(self, n):
        """Threads come from fastact._config at every call; nothing to keep here."""
        pass

    def info(self):
        d = build_info()
        d["module"] = self.module
        d["serial_after_fork"] = bool(_serial_only)
        return d

    def __repr__(self):
        return f"<fastact cython backend ({FASTACT_ISA.decode()})>"


BACKEND = CythonBackend()


# ------------------------------------------------------ math probe (tests)

cdef void _probe_loop(const floating* x, floating* out, Py_ssize_t n, int which) noexcept nogil:
    # the same inlined helpers the kernels use, in the same kind of loop, so
    # tests measure the vectorised (libmvec) versions
    cdef Py_ssize_t i
    if which == 0:
        for i in range(n):
            out[i] = exp_(x[i])
    elif which == 1:
        for i in range(n):
            out[i] = expm1_(x[i])
    elif which == 2:
        for i in range(n):
            out[i] = log1p_(x[i])
    elif which == 3:
        for i in range(n):
            out[i] = tanh_(x[i])
    elif which == 4:
        for i in range(n):
            out[i] = erf_(x[i])
    elif which == 5:
        for i in range(n):
            out[i] = erfc_(x[i])
    elif which == 6:
        for i in range(n):
            out[i] = log_(x[i])
    elif which == 7:
        for i in range(n):
            out[i] = expm1neg_(x[i])


_PROBES = ("exp", "expm1", "log1p", "tanh", "erf", "erfc", "log", "expm1_neg")


def probe_math(str fn, cnp.ndarray x, cnp.ndarray out):
    """out = fn(x) with the backend's vectorised math helper (for accuracy tests)."""
    cdef int which = _PROBES.index(fn)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    if not (cnp.PyArray_IS_C_CONTIGUOUS(x) and cnp.PyArray_IS_C_CONTIGUOUS(out)) or cnp.PyArray_SIZE(out) != n \
            or cnp.PyArray_TYPE(out) != cnp.PyArray_TYPE(x):
        raise ValueError("probe_math: contiguous x and out of one dtype and size")
    if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT:
        _probe_loop(<const float*>cnp.PyArray_DATA(x), <float*>cnp.PyArray_DATA(out), n, which)
    elif cnp.PyArray_TYPE(x) == cnp.NPY_DOUBLE:
        _probe_loop(<const double*>cnp.PyArray_DATA(x), <double*>cnp.PyArray_DATA(out), n, which)
    else:
        _bad_dtype(x)
