# Along-axis functions: softmax, softmin, log_softmax, sparsemax.
# Arrays are (outer, n, inner); the reduction runs over n with stride inner.
#
# * inner == 1: a unit of work is one contiguous row.  Reductions keep 64
#   independent lanes (8 in rows under _SHORT_RED but 64, and in the short rows'
#   dot, 32 in the long float64 rows' dot; gcc
#   turns them into vector adds without being allowed to reassociate) summed
#   in double and restarted every 2048 elements, so a long float32 or
#   float64 row keeps about (256 + n/2048) eps of error.  The long float32
#   rows' dot (softmax's backward from y) sums float32 fours in 16 lanes
#   (_dot_f32: within 3 u sum|g y|).  Many rows: threads
#   take whole rows (rows under _SHORT_ROW in one loop per range of rows:
#   _logsmax_rows, _bwd_rows; rows of at most _SN, float32 forward rows
#   of at most _SN_TR, in transposed blocks).
#   Few long rows: each row is split over the threads (partial max / sum per
#   thread, then a combine).
# * inner > 1: a unit is a tile of up to _IB adjacent columns of one outer
#   index; every pass walks the rows of the tile and is vectorised across the
#   columns, with per-column running max / sum in small stack buffers.
#   Fewer tiles than threads: each tile's rows are split over the threads
#   (_tile_par; 1e5 float32 as (1000, 100) along axis 0, one tile, 2
#   threads: softmax forward 81 -> 53 us, backward 30 -> 21, log_softmax
#   73 -> 49 and 58 -> 38).

cdef enum:
    K_SOFTMAX = 0
    K_SOFTMIN = 1
    K_LOGSOFTMAX = 2
    K_SPARSEMAX = 3
    _IB = 256
    _BLK = 2048
    _VL = 64
    _SN = 24
    _SN_TR = 63
    _SN_TR_BWD = 23
    _SCR = 4096
    _SN_TR_LOG = 127
    _FLAT_MIN = 16
    _SCR_LOG = 8192
    _SN_BWD = 12
    _SB = 128
    _VS = 8
    _VD = 32
    _SHORT_ROW = 256
    _SHORT_RED = 128
    _LC = 64
    _SPC = 512
    _SPB = 32

# ------------------------------------------------------------ row reductions

# _VL = 64 independent lanes: the inner lane loop is not unrolled away (gcc
# fully peels only up to 16 iterations) and is loop-vectorised as a plain
# elementwise update of acc[]; 16 lanes went to SLP, which left _row_max
# scalar in the AVX-512 build and gave _sum_block only two vector
# accumulators (bound by the latency of vaddpd).

# Rows shorter than _SHORT_RED use _VS = 8 lanes instead (_row_max_short,
# _sum_short; the short rows' dot, _dot_block, under _SHORT_ROW): setting up
# and folding 64 lanes cost more than a short row's arithmetic. 1e5 float32,
# 2 threads: softmax backward rows of 32 91 -> 30 us, of 64 53 -> 23; forward
# rows of 64 114 -> 78.  From _SHORT_RED = 128 elements on, and at 64
# exactly (one whole step), the 8 lanes' one accumulator costs more than the
# 64 lanes' set-up and fold; between them the 64 lanes' remainder loops cost
# more (1e5 float32 softmax on one thread against 8 lanes up to 255: rows of
# 64 122 -> 104 us, of 128 135 -> 74, of 200 117 -> 81, of 255 127 -> 73;
# rows of 65 and 97 as before -- with the 64 lanes from 64 on they were
# 1.3-1.5x slower).

cdef inline bint _short_red(Py_ssize_t n) noexcept nogil:
    # a row that _row_max and _sum reduce in _VS lanes (see above)
    return n < _SHORT_RED and n != _VL


cdef inline double _fold_lanes(double* acc, Py_ssize_t lanes) noexcept nogil:
    # pairwise sum of the lanes (a power of two >= 4)
    cdef Py_ssize_t k, h = lanes // 2
    while h >= 4:
        for k in range(h):
            acc[k] += acc[k + h]
        h = h // 2
    return (acc[0] + acc[2]) + (acc[1] + acc[3])


cdef floating _row_max_short(const floating* x, Py_ssize_t n, floating sign) noexcept nogil:
    cdef floating acc[_VS]
    cdef floating v
    cdef Py_ssize_t i = 0, k
    if floating is float:
        if FASTACT_HAVE_TABLES:  # the same lanes in registers (fastact_max8_f32)
            return fastact_max8_f32(x, n, sign)
    for k in range(_VS):
        acc[k] = -inf_(sign)
    while i + _VS <= n:
        for k in range(_VS):
            v = sign * x[i + k]
            acc[k] = v if v > acc[k] else acc[k]
        i += _VS
    for k in range(n - i):
        v = sign * x[i + k]
        acc[k] = v if v > acc[k] else acc[k]
    for k in range(_VS // 2):
        acc[k] = acc[k + _VS // 2] if acc[k + _VS // 2] > acc[k] else acc[k]
    for k in range(2):
        acc[k] = acc[k + 2] if acc[k + 2] > acc[k] else acc[k]
    return acc[1] if acc[1] > acc[0] else acc[0]


cdef double _sum_short(const floating* v, Py_ssize_t n) noexcept nogil:
    cdef double acc[_VS]
    cdef Py_ssize_t i = 0, k
    if floating is float:
        if FASTACT_HAVE_TABLES:  # the same lanes in registers (fastact_sum8_f32)
            return fastact_sum8_f32(v, n)
    for k in range(_VS):
        acc[k] = 0.0
    while i + _VS <= n:
        for k in range(_VS):
            acc[k] += <double>v[i + k]
        i += _VS
    for k in range(n - i):
        acc[k] += <double>v[i + k]
    return _fold_lanes(acc, _VS)


cdef double _dot_block(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    # _VS lanes (short rows, _bwd_rows): 64 lanes cost their set-up and fold
    # there (1e5 float32 softmax backward, rows of 1000, one thread: 35.7 ->
    # 31.0 us when every row took this)
    cdef double acc[_VS]
    cdef Py_ssize_t i = 0, k
    if floating is float:
        if FASTACT_HAVE_TABLES:  # the same lanes in registers (fastact_dot8_f32)
            return fastact_dot8_f32(a, b, n)
    for k in range(_VS):
        acc[k] = 0.0
    while i + _VS <= n:
        for k in range(_VS):
            acc[k] += <double>a[i + k] * <double>b[i + k]
        i += _VS
    for k in range(n - i):
        acc[k] += <double>a[i + k] * <double>b[i + k]
    return _fold_lanes(acc, _VS)


cdef double _dot_block_wide(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    # _VD lanes (float64 rows of _SHORT_ROW and more, blocks of _BLK): with
    # _VS the loop was bound by the latency of its one vector accumulator
    cdef double acc[_VD]
    cdef Py_ssize_t i = 0, k
    for k in range(_VD):
        acc[k] = 0.0
    while i + _VD <= n:
        for k in range(_VD):
            acc[k] += <double>a[i + k] * <double>b[i + k]
        i += _VD
    for k in range(n - i):
        acc[k] += <double>a[i + k] * <double>b[i + k]
    return _fold_lanes(acc, _VD)


# float32 rows of _SHORT_ROW and more (softmax's and softmin's backward from
# y): the sum of a*b in steps of 64 elements, the last one padded with zeros.
# In a step, lane k (of 16) adds the float32
#     fma(a_{k+16}, b_{k+16}, a_k b_k) + fma(a_{k+48}, b_{k+48}, a_{k+32} b_{k+32})
# to its float64 sum; the lanes fold as _fold_lanes. Each term carries at
# most three float32 roundings, so the sum is within 3 u sum|a_k b_k| (u =
# 2**-24) plus float64's share, the sum then rounded to float32 as before
# (the registry's note: a few ULP of the row's scale). The exact sum it
# replaced widened every float32 to double, four widenings (two uops each on
# the two 512-bit ports) per 16 products; this takes one. 1e5 float32 in
# rows of 1000, the public call from y, allocating: one thread 20-22 ->
# 15.1-16.8 us, two 12.6-13.3 -> 9.6-10.6 (PyTorch's, a float32 running sum
# in one vector: 15.1-17.6 and 8.7-9.8). The Numba backend runs the same
# steps in vector IR on AVX-512 (_tab.dot4), the same bits.

cdef inline void _dot4_step(const float* a, const float* b, double* acc) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(16):
        acc[k] += <double>(fastact_fmaf(a[k + 16], b[k + 16], a[k] * b[k])
                           + fastact_fmaf(a[k + 48], b[k + 48], a[k + 32] * b[k + 32]))


cdef double _dot_f32(const float* a, const float* b, Py_ssize_t n) noexcept nogil:
    cdef double acc[16]
    cdef float pa[64]
    cdef float pb[64]
    cdef Py_ssize_t i, k
    for k in range(16):
        acc[k] = 0.0
    i = fastact_dot4_f32(a, b, n, &acc[0])  # AVX-512 build: every step; else none
    while i + 64 <= n:
        _dot4_step(a + i, b + i, acc)
        i += 64
    if i < n:
        for k in range(64):
            pa[k] = a[i + k] if i + k < n else 0.0
            pb[k] = b[i + k] if i + k < n else 0.0
        _dot4_step(pa, pb, acc)
    return _fold_lanes(acc, 16)


cdef floating _row_max(const floating* x, Py_ssize_t n, floating sign) noexcept nogil:
    # max of sign*x ignoring NaN (a NaN still poisons the result through exp)
    cdef floating acc[_VL]
    cdef floating v
    cdef Py_ssize_t i = 0, k, h
    if _short_red(n):
        return _row_max_short(x, n, sign)
    if floating is float:
        if FASTACT_HAVE_TABLES:  # the same lanes in registers (fastact_max64_f32)
            return fastact_max64_f32(x, n, sign)
    for k in range(_VL):
        acc[k] = -inf_(sign)
    while i + _VL <= n:
        for k in range(_VL):
            v = sign * x[i + k]
            acc[k] = v if v > acc[k] else acc[k]
        i += _VL
    # the tail goes to lanes 0 .. n-i-1 (a vectorisable loop, not a scalar one)
    for k in range(n - i):
        v = sign * x[i + k]
        acc[k] = v if v > acc[k] else acc[k]
    h = _VL // 2
    while h >= 1:
        for k in range(h):
            acc[k] = acc[k + h] if acc[k + h] > acc[k] else acc[k]
        h = h // 2
    return acc[0]


cdef double _sum_block(const floating* v, Py_ssize_t n) noexcept nogil:
    cdef double acc[_VL]
    cdef Py_ssize_t i = 0, k
    if floating is float:
        if FASTACT_HAVE_TABLES:  # the same lanes in registers (fastact_sum64_f32)
            return fastact_sum64_f32(v, n)
    for k in range(_VL):
        acc[k] = 0.0
    while i + _VL <= n:
        for k in range(_VL):
            acc[k] += <double>v[i + k]
        i += _VL
    for k in range(n - i):
        acc[k] += <double>v[i + k]
    return _fold_lanes(acc, _VL)


cdef double _sum(const floating* v, Py_ssize_t n) noexcept nogil:
    cdef double s = 0.0
    cdef Py_ssize_t b0 = 0
    if _short_red(n):
        return _sum_short(v, n)
    while b0 < n:
        s += _sum_block(v + b0, n - b0 if n - b0 < _BLK else _BLK)
        b0 += _BLK
    return s


cdef double _dot(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    cdef double s = 0.0
    cdef Py_ssize_t b0 = 0
    if floating is float:
        s = _dot_f32(a, b, n)
    else:
        while b0 < n:
            s += _dot_block_wide(a + b0, b + b0, n - b0 if n - b0 < _BLK else _BLK)
            b0 += _BLK
    return s


cdef double _negdot(const floating* x, const floating* g, Py_ssize_t n) noexcept nogil:
    # sum of x*g over the x that are not > 0 (prelu's grad_weight), like _dot
    cdef double acc[_VL]
    cdef Py_ssize_t k
    for k in range(_VL):
        acc[k] = 0.0
    _negdot_acc(x, g, acc, n)
    return _fold_lanes(acc, _VL)


cdef inline void _negdot_acc(const floating* x, const floating* g, double* acc, Py_ssize_t n) noexcept nogil:
    # _negdot's lanes: x[i]*g[i] added to acc[i % _VL]; pieces of a multiple
    # of _VL elements (and one last piece) sum as the whole does
    cdef double v
    cdef Py_ssize_t i = 0, k
    while i + _VL <= n:
        for k in range(_VL):
            v = <double>x[i + k]
            acc[k] += 0.0 if x[i + k] > 0 else v * <double>g[i + k]
        i += _VL
    for k in range(n - i):
        v = <double>x[i + k]
        acc[k] += 0.0 if x[i + k] > 0 else v * <double>g[i + k]


# The forward's exps have arguments <= 0 (x - max; NaN passes): float32 forms
# them as exp * 2^26 with one power of two (_exp_up26f), normal down to exp's
# underflow, instead of _expf's two-sided clamp and two-factor 2^k.  softmax's
# e/s does not see the scale (out = e * (1/s) rounds once, also where it is
# subnormal); log_softmax scales its double sum back by the exact _up_inv
# before the log.  float64 keeps libmvec's exp (scale 1).  As the Numba
# backend's _exp_scaled.  Outputs are bit for bit as before except subnormal
# softmax outputs, now rounded once.  1e5 float32, one thread: rows of 1000
# softmax 69.5 -> 50 us, log_softmax 74 -> 55; rows of 100 135 -> 115 and
# 188 -> 170.

# On AVX-512 (FASTACT_HAVE_TABLES) the float32 exps of softmax's, softmin's
# and log_softmax's forwards and of log_softmax's backward from y run as
# intrinsics with vscalefps (_fastact_cpu.h, fastact_exp_shift_f32 and
# fastact_logsmax_bwd_f32), the scalar functions' bits; with this off
# (_impl.pxi's _set_vector_exps, for the tests) they run as below, so that
# the two can be compared.
cdef bint _vector_exps = True


cdef inline floating _exp_up(floating v) noexcept nogil:
    # float32: silu's scaled exp, exp(-|v|) * 2^26, is exp(v) * 2^26 for v <= 0
    if floating is float:
        return _exp_negabs_up26f(v)
    else:
        return exp(v)


cdef inline double _up_inv(floating v) noexcept nogil:
    # 1/scale of _exp_up for v's type
    if floating is float:
        return 1.4901161193847656e-08
    else:
        return 1.0


cdef inline void _exp_shift_loop(const floating* x, floating* dst, Py_ssize_t n, floating m,
                                 floating sign) noexcept nogil:
    # float32 on AVX-512: the same exps with vscalefps (_vector_exps)
    cdef Py_ssize_t i
    if floating is float:
        if FASTACT_HAVE_TABLES and _vector_exps:
            fastact_exp_shift_f32(x, dst, n, m, sign)
            return
    for i in range(n):
        dst[i] = _exp_up(sign * x[i] - m)


cdef void _exp_shift(const floating* x, floating* dst, Py_ssize_t n, floating m, floating sign) noexcept nogil:
    # dst = _exp_up(sign*x - m): exps scaled by 1/_up_inv.  The last n % _PAD
    # as one more vector, not in gcc's epilogue (scalar exps; 1e5 float32
    # softmax on one thread, rows of 255: 137 -> 88 us, with _SHORT_RED):
    # over the row's last _PAD elements, some computed again to the same
    # bits, where the row has them and dst is not x; else through a padded
    # buffer (_pad_tail; its copies made rows of 25-97 10-47 % slower
    # wherever it ran).
    cdef Py_ssize_t r = n % _PAD
    cdef Py_ssize_t k = n - r
    cdef floating xb[_PAD]
    cdef floating ob[_PAD]
    _exp_shift_loop(x, dst, k, m, sign)
    if r == 0:
        return
    if n >= _PAD and <const floating*>dst != x:
        _exp_shift_loop(x + n - _PAD, dst + n - _PAD, _PAD, m, sign)
        return
    _pad_tail(x + k, xb, r)
    _exp_shift_loop(&xb[0], &ob[0], _PAD, m, sign)
    memcpy(dst + k, &ob[0], r * sizeof(floating))


cdef double _expsum_nostore(const floating* x, Py_ssize_t n, floating m, floating sign) noexcept nogil:
    # for log_softmax, whose out may be x itself: exp goes to a stack block
    cdef floating tmp[_BLK]
    cdef double s = 0.0
    cdef Py_ssize_t b0 = 0, ln
    while b0 < n:
        ln = n - b0 if n - b0 < _BLK else _BLK
        _exp_shift(x + b0, tmp, ln, m, sign)
        s += _sum(tmp, ln)
        b0 += _BLK
    return s * _up_inv(m)


cdef void _div_by(floating* out, Py_ssize_t n, double s) noexcept nogil:
    # out / s.  float32: times the reciprocal rounded to float32 (no vector
    # division, no conversions to double and back: they made the row forward
    # 12 % slower than the Numba backend's, which does the same; error 1 ULP)
    cdef Py_ssize_t i
    cdef float rf = <float>(1.0 / s)
    cdef floating sf = <floating>s
    if floating is float:
        for i in range(n):
            out[i] = out[i] * rf
    else:
        for i in range(n):
            out[i] = out[i] / sf


cdef void _log_out(const floating* x, floating* out, Py_ssize_t n, floating m, floating ls,
                   floating sign) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = (sign * x[i] - m) - ls


cdef void _smax_bwd_apply(const floating* g, const floating* y, floating* out, Py_ssize_t n,
                          floating d, floating sign) noexcept nogil:
    cdef Py_ssize_t i
    if floating is float:
        fastact_smax_apply_f32(g, y, out, n, d, sign)
    else:
        for i in range(n):
            out[i] = sign * y[i] * (g[i] - d)


cdef inline bint _nonpos_f(const float* y, Py_ssize_t n) noexcept nogil:
    # every y[i] <= 0 (or a NaN with its sign bit set): the largest bit
    # pattern as an int32 is 0 (+0; a positive float, +inf or +NaN is a
    # positive int). An integer max, which gcc vectorises without
    # reassociating floats.
    cdef int m = 0
    cdef int b
    cdef Py_ssize_t i
    for i in range(n):
        b = fastact_f2i(y[i])
        m = b if b > m else m
    return m == 0


cdef inline void _logsmax_bwd_loop(const floating* g, const floating* y, floating* out, Py_ssize_t n,
                                   floating sg) noexcept nogil:
    # float32: by blocks of _BLK, exp(y) as expneg_ (_expf bit for bit, for y
    # <= 0, with one power of two and no upper clamp) where the block's y are
    # all <= 0, as every log_softmax output is; exp_ otherwise. The check
    # reads the block into L1 for the loop. 1e5 float32, one thread, rows
    # of 64-1e5: 1.20-1.30x (in-process A/B).  expneg_ runs in two stages
    # over pieces of _GST (exp's reduction, then the rest; _expf_neg's own
    # two halves, the same bits), as the STAGED_F32 elementwise loops:
    # 1e5 in rows of 1000, 2 threads, from y 44 -> 39 us; 1e7 6.1 -> 5.9 ms.
    cdef Py_ssize_t i, b0 = 0, ln, s0, m
    cdef float R[_GST]
    cdef float K[_GST]
    if floating is float:
        while b0 < n:
            ln = n - b0 if n - b0 < _BLK else _BLK
            if not _nonpos_f(y + b0, ln):
                for i in range(b0, b0 + ln):
                    out[i] = g[i] - exp_(y[i]) * sg
            elif FASTACT_HAVE_TABLES and _vector_exps:
                # AVX-512: one pass with vscalefps (see _vector_exps)
                fastact_logsmax_bwd_f32(g + b0, y + b0, out + b0, ln, sg)
            else:
                s0 = b0
                while s0 < b0 + ln:
                    m = b0 + ln - s0 if b0 + ln - s0 < _GST else _GST
                    for i in range(m):
                        R[i] = _negabs_arg_f(y[s0 + i], &K[i])
                    for i in range(m):
                        out[s0 + i] = g[s0 + i] - _expf_neg_fin(R[i], K[i]) * sg
                    s0 += m
            b0 += ln
    else:
        for i in range(n):
            out[i] = g[i] - exp_(y[i]) * sg


cdef inline bint _beyond_f32(floating* dummy, double s) noexcept nogil:
    # float32 only: a double s (a sum of g) that float32 holds only as inf,
    # from 2^128 - 2^103 on -- 64 elements of |g| ~ 1e37 pass 3.4e38. (s = inf
    # gives the same results either way.)
    if floating is float:
        return fabs(s) >= 3.4028235677973366e38
    else:
        return False


cdef inline floating _logsmax_bwd_wide(floating g, floating y, double s) noexcept nogil:
    # g - exp(y)*s in double, as the reference forms it: exp(y) <= 1, so the
    # result is finite wherever the reference's is
    return <floating>(<double>g - <double>exp_(y) * s)


cdef void _logsmax_bwd_wide_row(const floating* g, const floating* y, floating* out,
                                 Py_ssize_t n, double s) noexcept nogil:
    # not inlined: in _logsmax_bwd_apply this loop made rows of 100-1000
    # 3-5 % slower
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = _logsmax_bwd_wide(g[i], y[i], s)


cdef void _logsmax_bwd_apply(const floating* g, const floating* y, floating* out, Py_ssize_t n,
                             double s) noexcept nogil:
    # g - exp(y)*s, the last n % _PAD as in _exp_shift; s is the sum of g
    cdef Py_ssize_t r = n % _PAD
    cdef Py_ssize_t k = n - r
    cdef floating gb[_PAD]
    cdef floating yb[_PAD]
    cdef floating ob[_PAD]
    if _beyond_f32(out, s):
        _logsmax_bwd_wide_row(g, y, out, n, s)
        return
    _logsmax_bwd_loop(g, y, out, k, <floating>s)
    if r == 0:
        return
    if n >= _PAD and <const floating*>out != g and <const floating*>out != y:
        _logsmax_bwd_loop(g + n - _PAD, y + n - _PAD, out + n - _PAD, _PAD, <floating>s)
        return
    _pad_tail(g + k, gb, r)
    _pad_tail(y + k, yb, r)
    _logsmax_bwd_loop(&gb[0], &yb[0], &ob[0], _PAD, <floating>s)
    memcpy(out + k, &ob[0], r * sizeof(floating))


cdef void _sum_above(const floating* x, Py_ssize_t n, double m, double tau, double* S, Py_ssize_t* C) noexcept nogil:
    # sum and count of the x - m > tau (sparsemax support), in _VL lanes like
    # _sum_block; the counts are doubles (exact below 2^53) so that both
    # updates are the same vector select-and-add.  With 16 lanes and integer
    # counts the loop stayed scalar: 1e5 float32 in rows of 1000 on one
    # thread took 753 us against Numba's 203 (10 passes per row).
    cdef double acc[_VL]
    cdef double cnt[_VL]
    cdef double v
    cdef Py_ssize_t i = 0, k
    for k in range(_VL):
        acc[k] = 0.0
        cnt[k] = 0.0
    while i + _VL <= n:
        for k in range(_VL):
            v = <double>x[i + k] - m
            acc[k] += v if v > tau else 0.0
            cnt[k] += 1.0 if v > tau else 0.0
        i += _VL
    for k in range(n - i):
        v = <double>x[i + k] - m
        acc[k] += v if v > tau else 0.0
        cnt[k] += 1.0 if v > tau else 0.0
    S[0] = _fold_lanes(acc, _VL)
    C[0] = <Py_ssize_t>_fold_lanes(cnt, _VL)


cdef Py_ssize_t _sparsemax_cands(const floating* x, Py_ssize_t n, double m, double* cand,
                                 bint* nan) noexcept nogil:
    # The candidates x - m > -1 (every support _sparsemax_tau meets is among
    # them: its tau starts at -1 and only grows) gathered into cand, the
    # first _SPC of them; returns how many there are, and sets nan[0] if the
    # row holds a NaN.  Blocks of _SPB elements without a candidate or a NaN
    # are passed over by one vectorised test in x's type (against thr, a
    # bound below every candidate); the others go through the exact test
    # in double, element by element.  (m = +inf makes thr NaN: no block
    # passes the test but by a NaN, and no value is a candidate, inf - inf
    # being NaN.)
    cdef Py_ssize_t i = 0, k, c = 0, e
    cdef double v
    cdef int hit
    cdef double t = m - 1.0
    # below m - 1 (lowered by 2^-20 of itself before its rounding to x's
    # type, which moves it by at most 2^-24): x > thr for every candidate
    cdef floating thr = <floating>(t - fabs(t) * 9.5367431640625e-07)
    while i < n:
        e = i + _SPB
        if e <= n:
            hit = 0
            for k in range(_SPB):
                hit |= (x[i + k] > thr) | (x[i + k] != x[i + k])
            if not hit:
                i = e
                continue
        else:
            e = n
        for k in range(i, e):
            v = <double>x[k] - m
            if v > -1.0:
                if c < _SPC:
                    cand[c] = v
                c += 1
            elif x[k] != x[k]:
                nan[0] = True
        i = e
    return c


cdef double _michelot(const double* v, Py_ssize_t n) noexcept nogil:
    # Michelot's projection on values relative to the row's maximum, all of
    # them above -1 (_sparsemax_cands): tau = (sum of the support - 1) /
    # |support|, the support shrinking to {v > tau} until it stops changing
    cdef double tau = -1.0, S
    cdef Py_ssize_t c, prev = -1, it, k
    for it in range(n + 2):
        S = 0.0
        c = 0
        for k in range(n):
            S += v[k] if v[k] > tau else 0.0
            c += v[k] > tau
        if c == 0:
            return NAN
        if c == prev:
            break
        prev = c
        tau = (S - 1.0) / <double>c
    return tau


cdef double _sparsemax_tau(const floating* x, Py_ssize_t n, double* m) noexcept nogil:
    # Michelot's projection: tau = (sum of the support - 1)/|support|, the
    # support shrinking to {x > tau} until it stops changing.  tau only grows,
    # so each pass drops elements for good; a few passes in practice, at most
    # n.  Sums in double, of x - m with m the row's maximum (sparsemax(x + c)
    # = sparsemax(x)): with the values themselves, 1 vanished next to them in
    # a row of five 3e38 (tau = x, an empty support: NaN, not 0.2 each).
    # Returns tau relative to m, and m in m[0].  tau starts at -1 (the
    # support {x - m > -1}), not -inf: the answer's tau is at least -1 (the
    # maximum alone gives -1), so nothing further down is ever in the
    # support, and summing it overflowed (float64, a row of 3 and 1.8e308:
    # -inf everywhere).  The passes run over the candidates {x - m > -1}
    # gathered once (_sparsemax_cands) where there are at most _SPC of them,
    # else over the row (1e5 float32 in rows of 1024, one thread: 233 -> 125
    # us).
    cdef double tau = -1.0, S, mx = <double>_row_max(x, n, <floating>1)  # in lanes: vectorised
    cdef double cand[_SPC + 1]
    cdef Py_ssize_t c, prev = -1, it
    cdef bint nan = False
    m[0] = mx
    c = _sparsemax_cands(x, n, mx, cand, &nan)
    if nan:
        return NAN  # the whole row is NaN, as in the reference
    if c <= _SPC:
        return _michelot(cand, c)
    for it in range(n + 2):
        _sum_above(x, n, mx, tau, &S, &c)
        if c == 0:
            return NAN  # a +inf, or only -inf, in the row
        if c == prev:
            break
        prev = c
        tau = (S - 1.0) / <double>c
    return tau


cdef void _sparsemax_out(const floating* x, floating* out, Py_ssize_t n, double m, double tau) noexcept nogil:
    cdef Py_ssize_t i
    cdef double v
    for i in range(n):
        v = (<double>x[i] - m) - tau
        out[i] = <floating>(0.0 if v <= 0.0 else v)


cdef void _sparsemax_bwd_row(const floating* g, const floating* y, floating* out, Py_ssize_t n) noexcept nogil:
    # the mean of g over the support (y > 0) in index order; blocks of _SPB
    # without a y > 0 passed over by one vectorised test (1e5 float32 in rows
    # of 1024, 4 in the support, one thread: 175 -> 101 us)
    cdef double S = 0.0, mean
    cdef Py_ssize_t c = 0, i = 0, k, e
    cdef int hit
    while i < n:
        e = i + _SPB
        if e <= n:
            hit = 0
            for k in range(_SPB):
                hit |= y[i + k] > 0
            if not hit:
                i = e
                continue
        else:
            e = n
        for k in range(i, e):
            if y[k] > 0:
                S += <double>g[k]
                c += 1
        i = e
    mean = S / <double>c if c > 0 else 0.0
    for i in range(n):
        # NaN where y is NaN, as in the reference
        out[i] = <floating>(<double>g[i] - mean) if y[i] > 0 else (y[i] if y[i] != y[i] else <floating>0)

# ------------------------------------------------ streaming last passes
# A result of _stream_min bytes or more (rows of _SHORT_ROW and more): the
# pass that writes out -- softmax's and softmin's backward, log_softmax's
# forward -- stores whole 64-byte lines non-temporally, so out is not read
# for ownership first (the elementwise kernels' scheme, _elementwise.pxi.in
# _stream_b_): blocks of up to _STB elements, each a multiple of _PAD,
# through a buffer on the stack; the elements before out's first boundary
# and the last < _PAD plainly.  The same arithmetic on the same elements:
# the same bits.  1e7 float32 in rows of 1000, 2 threads, the setting
# toggled, interleaved, 21 rounds, plain / streamed by median (min): softmax
# backward from y 1.10-1.13 (0.98-1.14), log_softmax forward 1.07-1.09
# (0.95-1.14).  log_softmax's backward (an exp per element) lost, 0.87
# (0.88), as the costly elementwise kernels did: it stays plain, and so
# does softmax's forward, which writes out in its exp pass and then scales
# it in cache.

cdef inline Py_ssize_t _nt_block(Py_ssize_t left) noexcept nogil:
    cdef Py_ssize_t ln = left if left < _STB else _STB
    return ln - ln % _PAD


cdef inline void _last_pass(const floating* a, const floating* b, floating* out, Py_ssize_t n,
                            floating c0, floating c1, floating sign, bint logs) noexcept nogil:
    # logs: log_softmax's forward, _log_out (a = x, c0 = m, c1 = log s; b unused);
    # else softmax's backward from y, _smax_bwd_apply (a = g, b = y, c0 = sum(g*y))
    if logs:
        _log_out(a, out, n, c0, c1, sign)
    else:
        _smax_bwd_apply(a, b, out, n, c0, sign)


cdef void _last_pass_st(const floating* a, const floating* b, floating* out, Py_ssize_t n,
                        floating c0, floating c1, floating sign, bint logs, bint st) noexcept nogil:
    # _last_pass; st: the whole lines of out stored non-temporally, through buf
    # (placed against 4K aliasing: fastact_place_buf).  No sfence here: the
    # callers fence once per thread, after all its rows (_axis, _row_par).  A
    # fence after every row cost softmax's backward from y 10 % (1e7 float32
    # in rows of 1000, 2 threads, AMD EPYC Zen 2, two builds in alternating
    # processes: 3.68-3.98 ms against 4.19-4.38; plain stores there 3.55-3.80
    # either way) and log_softmax's forward 3 %.
    cdef floating bufm[_STB + 1024]
    cdef floating* buf
    cdef Py_ssize_t i, ln
    if not st:
        _last_pass(a, b, out, n, c0, c1, sign, logs)
        return
    i = fastact_stream_head(out, n, sizeof(floating))
    buf = <floating*>fastact_place_buf(&bufm[0], a + i, b + i, out + i)
    _last_pass(a, b, out, i, c0, c1, sign, logs)
    ln = _nt_block(n - i)
    while ln > 0:
        _last_pass(a + i, b + i, buf, ln, c0, c1, sign, logs)
        fastact_stream_copy(buf, out + i, ln * sizeof(floating))
        i += ln
        ln = _nt_block(n - i)
    _last_pass(a + i, b + i, out + i, n - i, c0, c1, sign, logs)

# ---------------------------------------------------------------- one row

cdef void _row(const floating* g, const floating* x, floating* out, Py_ssize_t n, int kind,
               bint fwd, bint st) noexcept nogil:
    # x is the input (forward) or y (backward); rows are contiguous; st: the
    # last pass streams (_last_pass_st)
    cdef floating sign = <floating>(-1 if kind == K_SOFTMIN else 1)
    cdef floating m
    cdef double s
    cdef double tau, mx
    if kind == K_SPARSEMAX:
        if fwd:
            tau = _sparsemax_tau(x, n, &mx)
            _sparsemax_out(x, out, n, mx, tau)
        else:
            _sparsemax_bwd_row(g, x, out, n)
        return
    if fwd:
        m = _row_max(x, n, sign)
        if kind == K_LOGSOFTMAX:
            s = _expsum_nostore(x, n, m, sign)
            _last_pass_st(x, x, out, n, m, <floating>log(s), sign, True, st)
        else:
            _exp_shift(x, out, n, m, sign)
            s = _sum(out, n)
            _div_by(out, n, s)
    elif kind == K_LOGSOFTMAX:
        _logsmax_bwd_apply(g, x, out, n, _sum(g, n))
    else:
        _last_pass_st(g, x, out, n, <floating>_dot(g, x, n), 0, sign, False, st)

# -------------------------------------------- one long row over all threads

cdef void _row_par(const floating* g, const floating* x, floating* out, Py_ssize_t n, int kind,
                   bint fwd, int nt, bint big) noexcept nogil:
    # big: the last pass streams (_last_pass_st)
    cdef double part[64]
    cdef floating pm[64]
    cdef floating sign = <floating>(-1 if kind == K_SOFTMIN else 1)
    cdef floating m
    cdef double s
    cdef Py_ssize_t c, st, en
    _mark_parallel()
    if fwd:
        for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
            _note_team()
            st = _split(n, nt, c)
            en = _split(n, nt, c + 1)
            pm[c] = _row_max(x + st, en - st, sign)
        m = pm[0]
        for c in range(1, nt):
            m = pm[c] if pm[c] > m else m
        for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
            _note_team()
            st = _split(n, nt, c)
            en = _split(n, nt, c + 1)
            if kind == K_LOGSOFTMAX:
                part[c] = _expsum_nostore(x + st, en - st, m, sign)
            else:
                _exp_shift(x + st, out + st, en - st, m, sign)
                part[c] = _sum(out + st, en - st)
        s = 0.0
        for c in range(nt):
            s += part[c]
        for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
            _note_team()
            st = _split(n, nt, c)
            en = _split(n, nt, c + 1)
            if kind == K_LOGSOFTMAX:
                _last_pass_st(x + st, x + st, out + st, en - st, m, <floating>log(s), sign, True, big)
                if big:
                    fastact_sfence()
            else:
                _div_by(out + st, en - st, s)
    else:
        for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
            _note_team()
            st = _split(n, nt, c)
            en = _split(n, nt, c + 1)
            if kind == K_LOGSOFTMAX:
                part[c] = _sum(g + st, en - st)
            else:
                part[c] = _dot(g + st, x + st, en - st)
        s = 0.0
        for c in range(nt):
            s += part[c]
        for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
            _note_team()
            st = _split(n, nt, c)
            en = _split(n, nt, c + 1)
            if kind == K_LOGSOFTMAX:
                _logsmax_bwd_apply(g + st, x + st, out + st, en - st, s)
            else:
                _last_pass_st(g + st, x + st, out + st, en - st, <floating>s, 0, sign, False, big)
                if big:
                    fastact_sfence()

# ------------------------------------------------------ tile of columns

cdef void _tile(const floating* g, const floating* x, floating* out, Py_ssize_t n,
                Py_ssize_t inner, Py_ssize_t w, int kind, bint fwd) noexcept nogil:
    # x, g, out point at element [o, 0, i0]; columns i0 .. i0+w-1, w <= _IB
    cdef double A[_IB]
    cdef double B[_IB]
    cdef double M[_IB]
    cdef Py_ssize_t P[_IB]
    cdef floating sign = <floating>(-1 if kind == K_SOFTMIN else 1)
    cdef Py_ssize_t i, j, it, it2
    cdef const floating* r
    cdef const floating* gr
    cdef floating* ro
    cdef floating v
    cdef double dv
    cdef bint changed
    if kind == K_SPARSEMAX:
        if fwd:
            # A = tau, B = support sum, P = previous support size (Michelot per
            # column), M = the column's maximum: the sums are of x - M, as in
            # _sparsemax_tau (A is relative to M, and starts at -1 as there)
            for i in range(w):
                A[i] = -1.0
                M[i] = -INFINITY
                P[i] = -1
            for j in range(n):
                # a NaN makes its whole column NaN, as in the reference
                r = x + j * inner
                for i in range(w):
                    M[i] = r[i] if r[i] > M[i] else M[i]
                    if r[i] != r[i]:
                        A[i] = NAN
                        P[i] = -2
            for it in range(n + 2):
                for i in range(w):
                    B[i] = 0.0
                for j in range(n):
                    r = x + j * inner
                    for i in range(w):
                        dv = <double>r[i] - M[i]
                        B[i] += dv if dv > A[i] else 0.0
                # counts in a second sweep keep the sum loop a pure vector add
                changed = False
                for i in range(w):
                    if P[i] == -2:
                        continue
                    j = 0
                    for it2 in range(n):
                        j += 1 if <double>x[it2 * inner + i] - M[i] > A[i] else 0
                    if j == 0:
                        A[i] = NAN
                        P[i] = -2
                    elif j == P[i]:
                        P[i] = -2
                    else:
                        P[i] = j
                        A[i] = (B[i] - 1.0) / <double>j
                        changed = True
                if not changed:
                    break
            for j in range(n):
                r = x + j * inner
                ro = out + j * inner
                for i in range(w):
                    dv = (<double>r[i] - M[i]) - A[i]
                    ro[i] = <floating>(0.0 if dv <= 0.0 else dv)
        else:
            for i in range(w):
                A[i] = 0.0
                B[i] = 0.0
            for j in range(n):
                r = x + j * inner
                gr = g + j * inner
                for i in range(w):
                    A[i] += <double>gr[i] if r[i] > 0 else 0.0
                    B[i] += 1.0 if r[i] > 0 else 0.0
            for i in range(w):
                A[i] = A[i] / B[i] if B[i] > 0 else 0.0
            for j in range(n):
                r = x + j * inner
                gr = g + j * inner
                ro = out + j * inner
                for i in range(w):
                    # NaN where y is NaN, as in the reference
                    ro[i] = <floating>(<double>gr[i] - A[i]) if r[i] > 0 else (r[i] if r[i] != r[i] else <floating>0)
        return
    if fwd:
        _tile_max(x, n, inner, w, sign, A)
        _tile_expsum(x, out, n, inner, w, kind, sign, A, B)
        if kind == K_LOGSOFTMAX:
            _tile_logsum(B, w, sign)
        _tile_fwd_out(x, out, n, inner, w, kind, sign, A, B)
    else:
        _tile_bwd_sum(g, x, n, inner, w, kind, A)
        _tile_bwd_out(g, x, out, n, inner, w, kind, sign, A)


# The passes of a tile (softmax, softmin, log_softmax) over n of its rows,
# each along the rows and vectorised across the w columns: _tile runs them
# over all rows, _tile_par over pieces of the rows, combining the maxima
# and sums between them.

cdef inline void _tile_max(const floating* x, Py_ssize_t n, Py_ssize_t inner, Py_ssize_t w, floating sign,
                    double* A) noexcept nogil:
    # A = the columns' max of sign*x (exact in double; a NaN is passed over,
    # and makes its column NaN through the sums)
    cdef Py_ssize_t i, j
    cdef const floating* r
    cdef floating v
    for i in range(w):
        A[i] = -INFINITY
    for j in range(n):
        r = x + j * inner
        for i in range(w):
            v = sign * r[i]
            A[i] = <double>v if v > A[i] else A[i]


cdef inline void _tile_expsum(const floating* x, floating* out, Py_ssize_t n, Py_ssize_t inner, Py_ssize_t w,
                       int kind, floating sign, double* A, double* B) noexcept nogil:
    # B = the columns' sums of exp(sign*x - A), scaled (_exp_up); softmax
    # keeps the exps in out. (A, and the other passes' A and B, are not
    # const: passed to a const pointer after a loop that sets them, gcc
    # warned they may be uninitialised.)
    cdef Py_ssize_t i, j
    cdef const floating* r
    cdef floating* ro
    cdef floating v
    for i in range(w):
        B[i] = 0.0
    for j in range(n):
        r = x + j * inner
        if kind == K_LOGSOFTMAX:
            for i in range(w):
                B[i] += <double>_exp_up(sign * r[i] - <floating>A[i])
        else:
            ro = out + j * inner
            for i in range(w):
                v = _exp_up(sign * r[i] - <floating>A[i])
                ro[i] = v
                B[i] += <double>v


cdef inline void _tile_logsum(double* B, Py_ssize_t w, floating sign) noexcept nogil:
    # log_softmax: the columns' scaled sums (_tile_expsum) -> the logs of the sums
    cdef Py_ssize_t i
    for i in range(w):
        B[i] = log(B[i] * _up_inv(sign))


cdef inline void _tile_fwd_out(const floating* x, floating* out, Py_ssize_t n, Py_ssize_t inner, Py_ssize_t w,
                        int kind, floating sign, double* A, double* B) noexcept nogil:
    # B: the log of the sum (log_softmax) or the sum (softmax: out holds the exps)
    cdef Py_ssize_t i, j
    cdef const floating* r
    cdef floating* ro
    for j in range(n):
        r = x + j * inner
        ro = out + j * inner
        if kind == K_LOGSOFTMAX:
            for i in range(w):
                ro[i] = (sign * r[i] - <floating>A[i]) - <floating>B[i]
        else:
            for i in range(w):
                ro[i] = ro[i] / <floating>B[i]


cdef inline void _tile_bwd_sum(const floating* g, const floating* x, Py_ssize_t n, Py_ssize_t inner,
                        Py_ssize_t w, int kind, double* A) noexcept nogil:
    # A = the columns' sums of g (log_softmax) or of g*y
    cdef Py_ssize_t i, j
    cdef const floating* r
    cdef const floating* gr
    for i in range(w):
        A[i] = 0.0
    for j in range(n):
        r = x + j * inner
        gr = g + j * inner
        if kind == K_LOGSOFTMAX:
            for i in range(w):
                A[i] += <double>gr[i]
        else:
            for i in range(w):
                A[i] += <double>gr[i] * <double>r[i]


cdef inline void _tile_bwd_out(const floating* g, const floating* x, floating* out, Py_ssize_t n,
                        Py_ssize_t inner, Py_ssize_t w, int kind, floating sign,
                        double* A) noexcept nogil:
    cdef double B[_IB]
    cdef Py_ssize_t i, j
    cdef const floating* r
    cdef const floating* gr
    cdef floating* ro
    cdef int nw = 0     # log_softmax: a column's sum beyond float32 (_logsmax_bwd_apply)
    cdef bint wide
    if kind == K_LOGSOFTMAX:
        for i in range(w):
            nw = nw | _beyond_f32(out, A[i])
    wide = nw != 0
    for j in range(n):
        r = x + j * inner
        gr = g + j * inner
        ro = out + j * inner
        if kind == K_LOGSOFTMAX:
            if wide:    # B: the row in double, read before out (which may be g or y) is written
                for i in range(w):
                    B[i] = <double>_logsmax_bwd_wide(gr[i], r[i], A[i])
            for i in range(w):
                ro[i] = gr[i] - exp_(r[i]) * <floating>A[i]
            if wide:    # only those columns: the others keep the vector loop's bits
                for i in range(w):
                    if _beyond_f32(out, A[i]):
                        ro[i] = <floating>B[i]
        else:
            for i in range(w):
                ro[i] = sign * r[i] * (gr[i] - <floating>A[i])


cdef void _tile_par(const floating* g, const floating* x, floating* out, Py_ssize_t n,
                    Py_ssize_t inner, Py_ssize_t w, int kind, bint fwd, int nt) noexcept nogil:
    # one tile (softmax, softmin, log_softmax) whose rows are split into 2 nt
    # pieces over the threads: where the tiles alone leave a thread idle
    # ((1000, 100) along axis 0 is one tile). Partial maxima and sums per
    # piece in PA / PB, combined between the passes.
    cdef double A[_IB]
    cdef double B[_IB]
    cdef Py_ssize_t nc = 2 * nt
    cdef double* PA = <double*>malloc(2 * nc * _IB * sizeof(double))
    cdef double* PB
    cdef floating sign = <floating>(-1 if kind == K_SOFTMIN else 1)
    cdef Py_ssize_t c, i, j0, j1
    if PA == NULL:
        _tile(g, x, out, n, inner, w, kind, fwd)
        return
    PB = PA + nc * _IB
    _mark_parallel()
    if fwd:
        for c in prange(nc, num_threads=nt, schedule='static'):
            _note_team()
            j0 = _split(n, nc, c)
            j1 = _split(n, nc, c + 1)
            _tile_max(x + j0 * inner, j1 - j0, inner, w, sign, PA + c * _IB)
        for i in range(w):
            A[i] = PA[i]
        for c in range(1, nc):
            for i in range(w):
                A[i] = PA[c * _IB + i] if PA[c * _IB + i] > A[i] else A[i]
        for c in prange(nc, num_threads=nt, schedule='static'):
            _note_team()
            j0 = _split(n, nc, c)
            j1 = _split(n, nc, c + 1)
            _tile_expsum(x + j0 * inner, out + j0 * inner, j1 - j0, inner, w, kind, sign, A, PB + c * _IB)
        for i in range(w):
            B[i] = PB[i]
        for c in range(1, nc):
            for i in range(w):
                B[i] += PB[c * _IB + i]
        if kind == K_LOGSOFTMAX:
            _tile_logsum(B, w, sign)
        for c in prange(nc, num_threads=nt, schedule='static'):
            _note_team()
            j0 = _split(n, nc, c)
            j1 = _split(n, nc, c + 1)
            _tile_fwd_out(x + j0 * inner, out + j0 * inner, j1 - j0, inner, w, kind, sign, A, B)
    else:
        for c in prange(nc, num_threads=nt, schedule='static'):
            _note_team()
            j0 = _split(n, nc, c)
            j1 = _split(n, nc, c + 1)
            _tile_bwd_sum(g + j0 * inner, x + j0 * inner, j1 - j0, inner, w, kind, PA + c * _IB)
        for i in range(w):
            A[i] = PA[i]
        for c in range(1, nc):
            for i in range(w):
                A[i] += PA[c * _IB + i]
        for c in prange(nc, num_threads=nt, schedule='static'):
            _note_team()
            j0 = _split(n, nc, c)
            j1 = _split(n, nc, c + 1)
            _tile_bwd_out(g + j0 * inner, x + j0 * inner, out + j0 * inner, j1 - j0, inner, w, kind, sign, A)
    free(PA)

# --------------------------------------- log_softmax forward, rows < 256
# By chunks of _LC rows: each row's max and sum of exps, then the chunk's
# logs in one vectorised loop (float32: log1p of s - 1, formed in double,
# with _log1pf), then the rows. As the Numba backend's _rows_range (which
# logs a chunk's float64 sums with its vectorised log). 1e5 float32, 2
# threads, a libm log per row -> this: rows of 32 113 -> 94 us, of 64 88 ->
# 78.

cdef void _log_sums(const double* s, floating* ls, Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t k
    if floating is float:
        for k in range(c):
            ls[k] = _log1pf(<float>(s[k] - 1.0))
    else:
        for k in range(c):
            ls[k] = log(s[k])


cdef void _logsmax_rows(const floating* x, floating* out, Py_ssize_t r0, Py_ssize_t r1,
                        Py_ssize_t n) noexcept nogil:
    cdef floating ms[_LC]
    cdef double ss[_LC]
    cdef floating ls[_LC]
    cdef Py_ssize_t c0 = r0, c, k
    while c0 < r1:
        c = r1 - c0 if r1 - c0 < _LC else _LC
        for k in range(c):
            ms[k] = _row_max(x + (c0 + k) * n, n, <floating>1)
            ss[k] = _expsum_nostore(x + (c0 + k) * n, n, ms[k], <floating>1)
        _log_sums(ss, ls, c)
        for k in range(c):
            _log_out(x + (c0 + k) * n, out + (c0 + k) * n, n, ms[k], ls[k], <floating>1)
        c0 += c


# ------------------------------------------ backward from y, rows < 256
# Rows r0..r1 in one loop, the reductions in 8 lanes: through _axis_unit and
# _row per row, the dispatch cost about as much as a row of 16's arithmetic.
# As the Numba backend's _bwd_rows_range. 1e5 float32, 2 threads: softmax
# rows of 16 46 -> 36 us, of 32 32 -> 28, of 64 25 -> 22 (rows of at most
# _SN_BWD stay in blocks: rows of 10 71 us against 107 this way).

cdef void _bwd_rows(const floating* g, const floating* y, floating* out, Py_ssize_t r0,
                    Py_ssize_t r1, Py_ssize_t n, int kind) noexcept nogil:
    cdef floating sign = <floating>(-1 if kind == K_SOFTMIN else 1)
    cdef Py_ssize_t o
    if kind == K_LOGSOFTMAX:
        for o in range(r0, r1):
            _logsmax_bwd_apply(g + o * n, y + o * n, out + o * n, n, _sum_short(g + o * n, n))
    else:
        for o in range(r0, r1):
            _smax_bwd_apply(g + o * n, y + o * n, out + o * n, n,
                            <floating>_dot_block(g + o * n, y + o * n, n), sign)


# ----------------------------------------------------------- short rows
# inner == 1, n <= _SN (the backward: _SN_BWD <= _SN): per row, the passes
# are too short for their vector loops (rows of 10: 55 ns a row against
# torch's 20). A block of _SB rows is copied transposed into (n, _SB)
# scratch, _tile runs on it vectorised across the rows, and the result is
# copied back: the same arithmetic as inner > 1, and out may be an input (a
# block is read whole first). As the Numba backend's _short_fwd_blocks
# (whose backward rows beat the blocks at every length). Measured, 1e5
# float32, 2 threads, rows (8-lane sums, chunked logs) -> blocks: softmax
# forward rows of 10 317 -> 122 us, of 16 147 -> 126, of 24 114 -> 110, of
# 32 97 -> 110 (log_softmax of 24 109 -> 120: so _SN = 24); backward rows
# of 10 111 -> 75, of 16 46 -> 44.
# float32 forward rows of 16 to _SN_TR = 63 elements (AVX-512 build): the
# copies are 16 x 16 register transposes (fastact_transpose16f; a row's last
# 16 columns taken again where n % 16 != 0), which made blocks win up to 63;
# blocks of 128 rows, of 64 from 33 elements on (_SCR-element scratch).
# Against the scalar copies and the row passes, 1e5 float32, one thread,
# best of 4 alternating rounds, us, softmax / log_softmax: rows of 16 230 ->
# 108 / 243 -> 103, of 25 319 -> 115 / 318 -> 107, of 32 165 -> 108 / 147 ->
# 100, of 48 127 -> 118 / 136 -> 107, of 49 177 -> 117 / 171 -> 108, of 63
# 155 -> 120 / 182 -> 109.  At 64 the rows stay (a whole 64-lane step:
# blocks 106 -> 121), and from 65 on blocks of 32 or fewer rows lost to
# them in softmax (rows of 80 115 -> 148, of 127 120 -> 161).  Rows under
# 16 take the transposes too, 16 elements from each row's start (into the
# next rows) for every group of 16 rows whose reads and writes stay inside
# the block, the scalar copies for the rest: rows of 4 267 -> 160 / 312 ->
# 177, of 10 191 -> 125 / 190 -> 126.  The float32 backward blocks go up to
# _SN_TR_BWD = 23 elements but 16 (one whole vector, where the row passes
# win; so do they at 24 and beyond), against the row passes and the scalar
# copies, softmax / log_softmax backward from y: rows of 7 199 -> 101 / 234
# -> 137, of 13 192 -> 75 / 467 -> 109 (the row passes' padded tail), of
# 20 129 -> 73 / 130 -> 107.
# log_softmax forward rows of 72 to _SN_TR_LOG = 127 but those whose n % 64
# is under 8 go through blocks too, of up to _SCR_LOG elements (80 rows of
# 100, 64 of 127): one thread, best of 4, rows of 72 160 -> 119 us, of 100
# 162 -> 113, of 127 137 -> 123; two threads rows of 72 91 -> 65, of 100
# 80 -> 64.  softmax there lost to its row passes (1.09-1.13x), and rows of
# 33-63 in blocks of 128 (1.08-1.13x).

cdef inline bint _tr16(floating* dummy, Py_ssize_t n) noexcept nogil:
    # float32 blocks go through 16 x 16 register transposes (AVX-512 build)
    if floating is float:
        return FASTACT_HAVE_TRANSPOSE16 != 0 and n >= 2
    else:
        return False


cdef inline bint _tr16_group(Py_ssize_t r, Py_ssize_t b, Py_ssize_t n) noexcept nogil:
    # rows r .. r+15 of a block of b rows of n go through the transposes: the
    # 16 elements from the start of each (the row, then the next rows' first
    # 16 - n where n < 16) stay inside the block
    return (r + 15) * n + (n if n >= 16 else 16) <= b * n


cdef inline bint _short_ok(floating* dummy, Py_ssize_t n, bint fwd, int kind) noexcept nogil:
    # rows of n go through the blocks: float32 with the register transposes
    # up to _SN_TR (forward; log_softmax also up to _SN_TR_LOG where the
    # row passes' 64-lane steps leave 8 or more), or up to _SN_TR_BWD but
    # 16 (backward: the row passes' one whole vector beats them); else up
    # to _SN (_SN_BWD)
    if floating is float:
        if FASTACT_HAVE_TRANSPOSE16 != 0:
            if not fwd:
                return n <= _SN_TR_BWD and n != 16
            return n <= _SN_TR or (kind == K_LOGSOFTMAX and n <= _SN_TR_LOG and n % 64 >= 8)
    return n <= (_SN if fwd else _SN_BWD)


cdef inline Py_ssize_t _short_rows(Py_ssize_t n) noexcept nogil:
    # rows in a block of n-element rows: _SB, or as many multiples of 16 as
    # the _SCR-element scratch holds (64 rows of up to 64), _SCR_LOG past 63
    # (log_softmax: 80 rows of 100, 64 of 127)
    cdef Py_ssize_t sb = (_SCR if n <= _SN_TR else _SCR_LOG) // n
    return _SB if sb >= _SB else sb - sb % 16


cdef void _transpose(const floating* src, floating* dst, Py_ssize_t b, Py_ssize_t n,
                     Py_ssize_t sb, bint to_rows) noexcept nogil:
    # The block's b rows of n elements (row-major, stride n) and its columns
    # (t[j * sb + r]): into the columns, t = dst[j * sb + r] = src[r * n + j],
    # or back into the rows (to_rows), dst[r * n + j] = src[j * sb + r].
    # n < 16: the 16 elements at each row's start run into the next rows --
    # into the columns, t's rows n .. 15 get their elements (_tile ignores
    # them); back, the stores after them, the next group's or the scalar
    # loop's, write those rows again.
    cdef Py_ssize_t r = 0, j, j0
    if _tr16(dst, n):
        while _tr16_group(r, b, n):
            j0 = 0
            while j0 < n:
                j = j0 if j0 + 16 <= n else (n - 16 if n >= 16 else 0)   # the last 16 columns, some again
                if to_rows:
                    fastact_transpose16f(<const float*>(src + j * sb + r), sb, <float*>(dst + r * n + j), n)
                else:
                    fastact_transpose16f(<const float*>(src + r * n + j), n, <float*>(dst + j * sb + r), sb)
                j0 += 16
            r += 16
    if to_rows:
        for r in range(r, b):
            for j in range(n):
                dst[r * n + j] = src[j * sb + r]
    else:
        for r in range(r, b):
            for j in range(n):
                dst[j * sb + r] = src[r * n + j]


cdef void _short_block(const floating* g, const floating* x, floating* out, Py_ssize_t b,
                       Py_ssize_t n, Py_ssize_t sb, int kind, bint fwd) noexcept nogil:
    # the b <= sb rows of n elements at x (g, out); n * sb <= _SCR_LOG, and
    # <= _SCR where there is a g (the backward's rows are short)
    cdef floating tx[_SCR_LOG]
    cdef floating tg[_SCR]
    cdef floating to[_SCR_LOG]
    _transpose(x, &tx[0], b, n, sb, False)
    if g != NULL:
        _transpose(g, &tg[0], b, n, sb, False)
    _tile(&tg[0] if g != NULL else NULL, &tx[0], &to[0], n, sb, b, kind, fwd)
    _transpose(&to[0], out, b, n, sb, True)


cdef void _short_blocks(const floating* g, const floating* x, floating* out, Py_ssize_t k0,
                        Py_ssize_t k1, Py_ssize_t outer, Py_ssize_t n, Py_ssize_t sb, int kind,
                        bint fwd) noexcept nogil:
    # blocks k0 .. k1 of sb rows (_short_rows(n))
    cdef Py_ssize_t k, off, b
    for k in range(k0, k1):
        off = k * sb * n
        b = outer - k * sb if outer - k * sb < sb else sb
        _short_block(g + off if g != NULL else NULL, x + off, out + off, b, n, sb, kind, fwd)

# ------------------------------------------------------- flat row blocks
# float32 forward rows of _FLAT_MIN .. _SHORT_ROW - 1 on AVX-512 (the vector
# exps): per row the passes of _row (max, exps, sum, scaling) each paid their
# set-up and short loops, and the transposed blocks their transposes (1e5
# float32 softmax, 2 threads, rows of 64: 61.5 us against the Numba
# backend's 30.8 and PyTorch's 38.6). A block of rows instead takes each
# row's maximum, spreads it over a scratch of the block's size, and runs the
# exps as one loop over the whole block (fastact_exp_shift_arr_f32); then per
# row the sum and the scaling (log_softmax: the sums' logs in one loop, then
# x - m - log s per row), as the Numba backend's _flat_fwd_blocks. The
# reductions are the 8-lane ones in registers at every length here
# (fastact_max8_f32, fastact_sum8_f32): their 64 lanes' set-up and fold cost
# more than rows this short (2 threads, softmax / log_softmax, 64 lanes -> 8:
# rows of 128 28.6 -> 22.9 / 29.2 -> 24.8 us, of 255 27.7 -> 24.9 / 28.2 ->
# 25.9). The row passes summed rows of 64 and of 128-255 in 64 lanes and
# rows under 64 (log_softmax's under 128) went through the transposed blocks,
# whose column sums add in another order: the sums' rounding may differ
# from before (the registry's bounds hold). 1e5 float32, 2 threads,
# transposed -> flat, softmax / log_softmax, us: rows of 16 45.5 -> 38.7 /
# 49.7 -> 39.4, of 32 46.9 -> 29.9 / 48.9 -> 29.7, of 63 49.7 -> 30.2 / 50.9
# -> 30.3, log_softmax of 100 51.3 -> 26.8; under 16 the transposes win
# (rows of 8: 57.0 against 59.1, of 2: 98 against 223).

cdef inline Py_ssize_t _flat_rows(Py_ssize_t n) noexcept nogil:
    # rows in a flat block: as many as _SCR_LOG elements hold, at most _LC
    cdef Py_ssize_t b = _SCR_LOG // n
    return _LC if b >= _LC else b


cdef inline bint _flat_ok(floating* dummy, Py_ssize_t n, bint fwd, int kind) noexcept nogil:
    # the forward rows of n go through the flat blocks (before the transposed ones):
    # float32 in the AVX-512 build, the softmax family, rows of _FLAT_MIN .. _SHORT_ROW - 1
    if floating is float:
        return fwd and FASTACT_HAVE_TABLES != 0 and kind != K_SPARSEMAX and _FLAT_MIN <= n < _SHORT_ROW
    return False


cdef inline void _exp_shift_arr(const float* x, const float* mm, float* dst, Py_ssize_t n, float sign) noexcept nogil:
    # _exp_shift_loop with m per element: the vector exps, or the scalar functions' (_vector_exps, tests)
    cdef Py_ssize_t j
    if _vector_exps:
        fastact_exp_shift_arr_f32(x, mm, dst, n, sign)
        return
    for j in range(n):
        dst[j] = _exp_up(sign * x[j] - mm[j])


cdef void _flat_block(const float* x, float* out, Py_ssize_t b, Py_ssize_t n, int kind) noexcept nogil:
    # the b <= _flat_rows(n) rows of n elements at x (out)
    cdef float mb[_SCR_LOG]
    cdef float eb[_SCR_LOG]
    cdef float ms[_LC]
    cdef double ss[_LC]
    cdef float ls[_LC]
    cdef float sign = <float>(-1 if kind == K_SOFTMIN else 1)
    cdef Py_ssize_t r, j
    cdef float m
    for r in range(b):
        m = fastact_max8_f32(x + r * n, n, sign)
        ms[r] = m
        for j in range(n):
            mb[r * n + j] = m
    if kind == K_LOGSOFTMAX:
        _exp_shift_arr(x, &mb[0], &eb[0], b * n, sign)
        for r in range(b):
            ss[r] = fastact_sum8_f32(&eb[r * n], n) * _up_inv(ms[r])
        _log_sums(&ss[0], &ls[0], b)
        for r in range(b):
            _log_out(x + r * n, out + r * n, n, ms[r], ls[r], sign)
    else:
        _exp_shift_arr(x, &mb[0], out, b * n, sign)
        for r in range(b):
            _div_by(out + r * n, n, fastact_sum8_f32(out + r * n, n))


cdef void _flat_blocks(const float* x, float* out, Py_ssize_t k0, Py_ssize_t k1, Py_ssize_t outer,
                       Py_ssize_t n, Py_ssize_t sb, int kind) noexcept nogil:
    # blocks k0 .. k1 of sb rows (_flat_rows(n))
    cdef Py_ssize_t k, off, b
    for k in range(k0, k1):
        off = k * sb * n
        b = outer - k * sb if outer - k * sb < sb else sb
        _flat_block(x + off, out + off, b, n, kind)

# ------------------------------------------------------------------ driver

cdef void _axis_unit(const floating* g, const floating* x, floating* out, Py_ssize_t u,
                     Py_ssize_t n, Py_ssize_t inner, Py_ssize_t tpo, int kind, bint fwd, bint big,
                     bint pf) noexcept nogil:
    # unit u: row u (inner == 1) or tile (u // tpo, u % tpo); big: rows stream their last pass;
    # pf: row u first prefetches every line of row u + 1 of g and x (see _axis)
    cdef Py_ssize_t o, t, off, w
    if inner == 1:
        if pf:
            fastact_prefetch(g + (u + 1) * n, n * <long>sizeof(floating), 64)
            fastact_prefetch(x + (u + 1) * n, n * <long>sizeof(floating), 64)
        _row(g + u * n if g != NULL else NULL, x + u * n, out + u * n, n, kind, fwd, big)
    else:
        o = u // tpo
        t = u - o * tpo
        off = o * n * inner + t * _IB
        w = inner - t * _IB
        if w > _IB:
            w = _IB
        _tile(g + off if g != NULL else NULL, x + off, out + off, n, inner, w, kind, fwd)


# On an AMD EPYC with AVX-512 (Zen 4) log_softmax's backward rows lost with
# their prefetches (in _axis below), in both builds. 1e7 float32 in rows of
# 1000, 2 threads, min / p25 of 90 calls in turns with PyTorch's kernel
# (2.83-3.07 / 2.96-3.42 ms), three or four runs: AVX-512 build 3.35-3.48 /
# 3.56-3.90 with them, 2.78-3.01 / 2.95-3.29 without; AVX2 build 3.42-4.56 /
# 3.55-4.70 against 2.49-3.23 / 2.60-3.43. One prefetch per page ran as none
# (2.49-2.73 / 2.57-2.91), one per other line worse (5.40-5.71 / 5.55-5.90).
# On an Intel Xeon with AVX-512 (2 cores, 2026-12-06) they win, as on the
# AVX2 EPYC (Zen 2): the same shape, min of 15 rounds of 3 calls in turns,
# two runs, ms: AVX-512 build 3.49-3.62 without, 2.82-2.86 with, PyTorch
# 3.78-3.80. So they run unless the CPU is an AMD one with AVX-512
# (fastact_cpu_is_amd, fastact_cpu_features), the one CPU where they lost;
# _set_rows_prefetch switches them for the tests.
cdef bint _rows_prefetch = not (fastact_cpu_is_amd() and (fastact_cpu_features() & 2))


cdef void _axis(const floating* g, const floating* x, floating* out, Py_ssize_t outer,
                Py_ssize_t n, Py_ssize_t inner, int kind, bint fwd, int nt) noexcept nogil:
    cdef Py_ssize_t tpo = (inner + _IB - 1) // _IB
    cdef Py_ssize_t units = outer * tpo
    cdef Py_ssize_t u, c, t, w
    cdef Py_ssize_t nbk, sb
    # a result of _stream_min bytes or more: the long rows' last pass streams
    cdef bint big = outer * n * inner * <Py_ssize_t>sizeof(floating) >= _stream_min
    if inner == 1 and outer > 1 and _flat_ok(<floating*>x, n, fwd, kind):
        sb = _flat_rows(n)
        nbk = (outer + sb - 1) // sb
        if nt <= 1 or nbk < 2:
            _flat_blocks(<const float*>x, <float*>out, 0, nbk, outer, n, sb, kind)
            return
        _mark_parallel()
        for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
            _note_team()
            _flat_blocks(<const float*>x, <float*>out, (nbk * c) // nt, (nbk * (c + 1)) // nt, outer, n, sb, kind)
        return
    if inner == 1 and _short_ok(<floating*>x, n, fwd, kind) and outer > 1 and kind != K_SPARSEMAX:
        sb = _short_rows(n)
        nbk = (outer + sb - 1) // sb
        if nt <= 1 or nbk < 2:
            _short_blocks(g, x, out, 0, nbk, outer, n, sb, kind, fwd)
            return
        _mark_parallel()
        for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
            _note_team()
            _short_blocks(g, x, out, (nbk * c) // nt, (nbk * (c + 1)) // nt, outer, n, sb, kind, fwd)
        return
    if not fwd and kind != K_SPARSEMAX and inner == 1 and n < _SHORT_ROW and outer > 1:
        if nt <= 1 or outer < 2 * nt:
            _bwd_rows(g, x, out, 0, outer, n, kind)
            return
        _mark_parallel()
        for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
            _note_team()
            _bwd_rows(g, x, out, (outer * c) // nt, (outer * (c + 1)) // nt, n, kind)
        return
    if fwd and kind == K_LOGSOFTMAX and inner == 1 and n < _SHORT_ROW and outer > 1:
        if nt <= 1 or outer < 2 * nt:
            _logsmax_rows(x, out, 0, outer, n)
            return
        _mark_parallel()
        for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
            _note_team()
            _logsmax_rows(x, out, (outer * c) // nt, (outer * (c + 1)) // nt, n)
        return
    if nt > 1 and inner == 1 and units < 2 * nt and kind != K_SPARSEMAX and n >= THRESH_AXIS:
        for u in range(outer):
            _row_par(g + u * n if g != NULL else NULL, x + u * n, out + u * n, n, kind, fwd, nt, big)
        return
    if nt > 1 and inner > 1 and units < nt and kind != K_SPARSEMAX and n >= 64 * nt:
        # fewer tiles than threads: each tile's rows over the threads
        for u in range(units):
            t = u % tpo
            w = inner - t * _IB if inner - t * _IB < _IB else _IB
            c = (u // tpo) * n * inner + t * _IB
            _tile_par(g + c if g != NULL else NULL, x + c, out + c, n, inner, w, kind, fwd, nt)
        return
    # log_softmax's backward rows from _PF_ROWS_MIN elements on (data beyond
    # the caches), unless on an AMD CPU with AVX-512 (_rows_prefetch): each row starts
    # by prefetching every line of the next row's g and y, as the Numba
    # backend's _bwd_rows_range. 1e7 float32 in rows of 1000, 2 threads,
    # allocating, alternating runs, on an AMD EPYC with AVX2 (Zen 2): 3.7-4.3
    # -> 3.0-3.6 ms (1e5 and 1e6 unchanged). softmax and softmin lost with it
    # (2.98 -> 3.15-3.17 ms: their last pass streams its stores at that size)
    # and run without.
    cdef bint pf = (not fwd and inner == 1 and kind == K_LOGSOFTMAX and _rows_prefetch
                    and outer * n >= <Py_ssize_t>_PF_ROWS_MIN)
    if nt <= 1 or units < 2:
        for u in range(units):
            _axis_unit(g, x, out, u, n, inner, tpo, kind, fwd, big, pf and u + 1 < units)
        if big:
            fastact_sfence()
        return
    _mark_parallel()
    for c in prange(nt, num_threads=nt, schedule='static', chunksize=1):
        _note_team()
        for u in range((units * c) // nt, (units * (c + 1)) // nt):
            _axis_unit(g, x, out, u, n, inner, tpo, kind, fwd, big, pf and u + 1 < units)
        if big:
            fastact_sfence()


# ------------------------------------------------------------ float16 rows
# The softmax family's float16 rows (inner == 1, n <= _HROW_MAX) in groups
# (_impl.pxi, _rows_h): _axis runs on each group serially in float32 (the
# backward from x: the forward into a buffer first, as _axis_backward does).
# A group of k rows takes the path _axis takes for k rows, which is within
# the registry's bounds as every float32 call is, but not always the bits of
# the float32 call on the whole array (its blocks of rows fall elsewhere).
# softmax's and softmin's backward from y on rows of _SHORT_ROW to
# _HROW_MAX, which _axis runs one by one (_row), run straight from float16
# memory in the AVX-512 build (fastact_smax_bwd_h), with the float32 rows'
# bits: the group's widening, the float32 dot's two widenings to double per
# product and the narrowing each took the CPU's two vector ports (1e5 in
# rows of 1000, 2 threads: 22.2 -> 11.8 us, PyTorch's float16 kernel 12.4;
# 1e6 211 -> 135 us, PyTorch 125-141).
cdef void _axis_h_group(const unsigned short* g, const unsigned short* x, unsigned short* out,
                        Py_ssize_t k, Py_ssize_t n, int kind, int mode) noexcept nogil:
    # k rows of n; mode 0: forward, 1: backward from y (x holds y), 2: backward from x
    cdef float mem[3 * _HROWSG + 16]
    cdef float* xb = _align64(&mem[0])
    cdef float* gb = xb + _HROWSG
    cdef float* ob = xb + 2 * _HROWSG
    cdef Py_ssize_t m = k * n, r
    if mode == 1 and (kind == K_SOFTMAX or kind == K_SOFTMIN) and n >= _SHORT_ROW and FASTACT_HAVE_SMAX_BWD_H:
        # rows that _axis runs one by one (_row): straight from float16
        # memory, the same bits (_fastact_cpu.h, fastact_smax_bwd_h)
        for r in range(k):
            fastact_smax_bwd_h(g + r * n, x + r * n, out + r * n, n, -1.0 if kind == K_SOFTMIN else 1.0)
        return
    fastact_h2f(x, xb, m)
    if mode == 0:
        _axis(<const float*>NULL, xb, ob, k, n, 1, kind, True, 1)
        fastact_f2h(ob, out, m)
        return
    fastact_h2f(g, gb, m)
    if mode == 2:
        _axis(<const float*>NULL, xb, ob, k, n, 1, kind, True, 1)  # y, in float32
        _axis(<const float*>gb, <const float*>ob, xb, k, n, 1, kind, False, 1)
        fastact_f2h(xb, out, m)
    else:
        _axis(<const float*>gb, <const float*>xb, ob, k, n, 1, kind, False, 1)
        fastact_f2h(ob, out, m)


cdef int _run_axis(cnp.ndarray g, cnp.ndarray x, cnp.ndarray out, int kind, bint fwd, int threads,
                   bint from_x=False) except -1:
    # from_x: float16 rows only, the backward from x (x given for y)
    cdef Py_ssize_t outer = cnp.PyArray_DIM(x, 0)
    cdef Py_ssize_t n = cnp.PyArray_DIM(x, 1)
    cdef Py_ssize_t inner = cnp.PyArray_DIM(x, 2)
    cdef int nt = _nthreads(cnp.PyArray_SIZE(x), THRESH_COSTLY, threads)
    cdef int typ = cnp.PyArray_TYPE(x)
    cdef void* pg = cnp.PyArray_DATA(g) if g is not None else NULL
    cdef void* px = cnp.PyArray_DATA(x)
    cdef void* po = cnp.PyArray_DATA(out)
    if cnp.PyArray_SIZE(x) == 0:
        return 0
    if typ == NPY_HALF and _half_rows(x):
        if cnp.PyArray_TYPE(out) != typ or (g is not None and cnp.PyArray_TYPE(g) != typ):
            raise TypeError(f"fastact cython backend: float16 rows need float16 arrays throughout, not out {out.dtype}")
        with nogil:
            _rows_h(_axis_h_group, <const unsigned short*>pg, <const unsigned short*>px, <unsigned short*>po,
                    outer, n, n, n, n, kind, 0 if fwd else (2 if from_x else 1), nt)
    elif typ == cnp.NPY_FLOAT:
        with nogil:
            _axis(<const float*>pg, <const float*>px, <float*>po, outer, n, inner, kind, fwd, nt)
    elif typ == cnp.NPY_DOUBLE:
        with nogil:
            _axis(<const double*>pg, <const double*>px, <double*>po, outer, n, inner, kind, fwd, nt)
    else:
        _bad_dtype(x)
    return 0


cdef inline bint _half_rows(cnp.ndarray x):
    # x's (outer, n, inner) take the float16 row groups (_rows_h)
    return FASTACT_HAVE_F16 and cnp.PyArray_DIM(x, 2) == 1 and cnp.PyArray_DIM(x, 1) <= _HROW_MAX


cdef int _axis_backward(str name, int kind, cnp.ndarray g, x, y, cnp.ndarray out, int threads) except -1:
    # from x: recompute y first (into a fresh array: out may be g itself);
    # float16 rows recompute it per group, in float32 (_axis_h_group)
    if y is None and cnp.PyArray_TYPE(x) == NPY_HALF and _half_rows(x):
        _run_axis(g, x, out, kind, False, threads, True)
        return 0
    if y is None:
        y = _np.empty_like(x)
        _run_axis(None, x, y, kind, True, threads)
    _run_axis(g, y, out, kind, False, threads)
    return 0


def _f_softmax(cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
    _run_axis(None, x, out, K_SOFTMAX, True, threads)

def _f_softmin(cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
    _run_axis(None, x, out, K_SOFTMIN, True, threads)

def _f_log_softmax(cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
    _run_axis(None, x, out, K_LOGSOFTMAX, True, threads)

def _f_sparsemax(cnp.ndarray x, cnp.ndarray out, dict params, int threads=0):
    _run_axis(None, x, out, K_SPARSEMAX, True, threads)

def _b_softmax(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    _axis_backward("softmax", K_SOFTMAX, g, x, y, out, threads)

def _b_softmin(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    _axis_backward("softmin", K_SOFTMIN, g, x, y, out, threads)

def _b_log_softmax(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    _axis_backward("log_softmax", K_LOGSOFTMAX, g, x, y, out, threads)

def _b_sparsemax(cnp.ndarray g, x, y, cnp.ndarray out, dict params, int threads=0):
    _axis_backward("sparsemax", K_SPARSEMAX, g, x, y, out, threads)
