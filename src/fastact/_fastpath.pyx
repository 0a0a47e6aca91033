# cython: language_level=3
"""The checks that select the public functions' fast path, in C.

A one-element call is all overhead, and in Python these checks (exact
ndarray, a float32/float64 dtype, a non-empty contiguous layout and, for a
backward, a second array of the same dtype, shape and layout) cost more than
the kernel.  Each function here does them in one call and then reads auto's
memo list for the array's dtype at the size's bit length (see
``fastact._backends.memo``).  It returns ``False`` when the array does not
qualify, else the memo entry: ``(backend, threads)``, or ``None`` when that
size has not been resolved yet.  ``into`` and ``into2`` check an ``out=``
besides (np.may_share_memory alone cost 0.33 us).

``fastact._api`` has Python versions with the same results, used when this
module is not compiled; a test holds the two to each other.
"""

cimport numpy as cnp
from libc.math cimport isfinite
from libc.string cimport memcmp

cnp.import_array()

cdef object F32 = cnp.dtype("float32")
cdef object F64 = cnp.dtype("float64")
cdef object F16 = cnp.dtype("float16")
cdef int CONTIG = cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_F_CONTIGUOUS


cdef inline Py_ssize_t bit_length(cnp.npy_intp n) noexcept:
    cdef Py_ssize_t b = 0
    while n:
        n >>= 1
        b += 1
    return b


cdef inline object memo_entry(cnp.ndarray a, list m32, list m64):
    cdef object dt = <object>cnp.PyArray_DESCR(a)
    cdef cnp.npy_intp n = cnp.PyArray_SIZE(a)
    if n == 0:
        return False
    if dt is F32:
        return m32[bit_length(n)]
    if dt is F64:
        return m64[bit_length(n)]
    return False


def one(x, list m32, list m64):
    """``x``: an ndarray (not a subclass) of float32 or float64, non-empty, C- or F-contiguous."""
    if type(x) is not cnp.ndarray:
        return False
    cdef cnp.ndarray a = <cnp.ndarray>x
    if not (cnp.PyArray_FLAGS(a) & CONTIG):
        return False
    return memo_entry(a, m32, m64)


cdef inline bint alike(cnp.ndarray a, cnp.ndarray b) noexcept:
    # one dtype (the same descriptor, as `b.dtype is a.dtype`) and one shape
    cdef int nd = cnp.PyArray_NDIM(a)
    if cnp.PyArray_DESCR(a) is not cnp.PyArray_DESCR(b) or nd != cnp.PyArray_NDIM(b):
        return False
    return nd == 0 or memcmp(cnp.PyArray_DIMS(a), cnp.PyArray_DIMS(b), nd * sizeof(cnp.npy_intp)) == 0


def pair(g, s, list m32, list m64):
    """``g`` as :func:`one` asks of ``x``, and ``s`` of its dtype and shape, both C- or both F-contiguous."""
    if type(g) is not cnp.ndarray or type(s) is not cnp.ndarray:
        return False
    cdef cnp.ndarray a = <cnp.ndarray>g
    cdef cnp.ndarray b = <cnp.ndarray>s
    if not alike(a, b):
        return False
    cdef int fa = cnp.PyArray_FLAGS(a)
    cdef int fb = cnp.PyArray_FLAGS(b)
    if not ((fa & fb & cnp.NPY_ARRAY_C_CONTIGUOUS)
            or (not (fa & cnp.NPY_ARRAY_C_CONTIGUOUS) and not (fb & cnp.NPY_ARRAY_C_CONTIGUOUS)
                and (fa & fb & cnp.NPY_ARRAY_F_CONTIGUOUS))):
        return False
    return memo_entry(a, m32, m64)


cdef inline bint apart(cnp.ndarray a, cnp.ndarray b) noexcept:
    # the bytes of two contiguous arrays do not overlap
    cdef char* pa = <char*>cnp.PyArray_DATA(a)
    cdef char* pb = <char*>cnp.PyArray_DATA(b)
    return pa + cnp.PyArray_NBYTES(a) <= pb or pb + cnp.PyArray_NBYTES(b) <= pa


cdef inline bint writeable(cnp.ndarray a) noexcept:
    return (cnp.PyArray_FLAGS(a) & cnp.NPY_ARRAY_WRITEABLE) != 0


def into(x, out, list m32, list m64):
    """``out=``: ``x`` and ``out`` as :func:`pair` asks of ``g`` and ``s``, ``out`` writeable and apart from ``x``."""
    hit = pair(x, out, m32, m64)
    if hit is False or not writeable(<cnp.ndarray>out) or not apart(<cnp.ndarray>x, <cnp.ndarray>out):
        return False
    return hit


def into2(g, s, out, list m32, list m64):
    """The backward's ``out=``: ``g`` and ``s`` as :func:`pair` asks, ``out`` likewise with ``g``, writeable and
    apart from both."""
    hit = pair(g, s, m32, m64)
    if hit is False or pair(g, out, m32, m64) is False or not writeable(<cnp.ndarray>out):
        return False
    if not apart(<cnp.ndarray>g, <cnp.ndarray>out) or not apart(<cnp.ndarray>s, <cnp.ndarray>out):
        return False
    return hit


# ------------------------------------------------------------- along an axis
# The softmax family (softmax, log_softmax, softmin, sparsemax): an ndarray of
# float32/float64, non-empty and C-contiguous, with an ``int`` axis in range.
# Besides the memo entry they return the (outer, n, inner) views the kernels
# take and the result, allocated or ``out``: False, or (entry, x3, result,
# result3) for the forward and (entry, g3, s3, result, result3) for the
# backward.  ``out`` qualifies as a plain C-contiguous ndarray of the input's
# dtype and shape, writeable and apart from the inputs (else False: the
# general path takes it, in-place calls included).

cdef inline object geometry(cnp.ndarray a, object axis, cnp.npy_intp* d3):
    # 0 and the (outer, n, inner) of `a` along `axis` in d3, or False
    if type(axis) is not int:
        return False
    cdef int nd = cnp.PyArray_NDIM(a)
    cdef long ax
    try:
        ax = axis
    except OverflowError:
        return False
    if ax < -nd or ax >= nd:
        return False
    if ax < 0:
        ax += nd
    cdef cnp.npy_intp* dims = cnp.PyArray_DIMS(a)
    cdef cnp.npy_intp outer = 1, inner = 1
    cdef int i
    for i in range(ax):
        outer *= dims[i]
    for i in range(ax + 1, nd):
        inner *= dims[i]
    d3[0] = outer
    d3[1] = dims[ax]
    d3[2] = inner
    return 0


cdef inline cnp.ndarray empty_c(cnp.ndarray a):
    # a new C-contiguous array of a's shape and dtype (the result)
    return cnp.PyArray_EMPTY(cnp.PyArray_NDIM(a), cnp.PyArray_DIMS(a), cnp.PyArray_TYPE(a), 0)


cdef inline object view3(cnp.ndarray a, cnp.npy_intp* d3):
    cdef cnp.PyArray_Dims shape
    shape.ptr = d3
    shape.len = 3
    return cnp.PyArray_Newshape(a, &shape, cnp.NPY_CORDER)


cdef inline bint plain_c(object x):
    # an ndarray (not a subclass), C-contiguous
    return type(x) is cnp.ndarray and (cnp.PyArray_FLAGS(<cnp.ndarray>x) & cnp.NPY_ARRAY_C_CONTIGUOUS) != 0


cdef inline object prepare(cnp.ndarray a, object axis, list m32, list m64, cnp.npy_intp* d3):
    # the memo entry of `a` with its (outer, n, inner) along `axis` in d3, or False
    cdef object hit = memo_entry(a, m32, m64)
    if hit is False or geometry(a, axis, d3) is False:
        return False
    return hit


cdef inline bint out_for(object out, cnp.ndarray a):
    # out= for a result like `a`: a plain C-contiguous ndarray of a's dtype and
    # shape, writeable and apart from a
    return (plain_c(out) and alike(a, <cnp.ndarray>out) and writeable(<cnp.ndarray>out)
            and apart(a, <cnp.ndarray>out))


def axis_forward(x, axis, list m32, list m64, out=None):
    if not plain_c(x):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>x
    if out is not None and not out_for(out, a):
        return False
    cdef cnp.npy_intp d3[3]
    cdef object hit = prepare(a, axis, m32, m64, d3)
    if hit is False:
        return False
    cdef cnp.ndarray res = empty_c(a) if out is None else <cnp.ndarray>out
    return (hit, view3(a, d3), res, view3(res, d3))


def axis_backward(g, s, axis, list m32, list m64, out=None):
    if not plain_c(g) or not plain_c(s) or not alike(<cnp.ndarray>g, <cnp.ndarray>s):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>g
    if out is not None and not (out_for(out, a) and apart(<cnp.ndarray>s, <cnp.ndarray>out)):
        return False
    cdef cnp.npy_intp d3[3]
    cdef object hit = prepare(a, axis, m32, m64, d3)
    if hit is False:
        return False
    cdef cnp.ndarray res = empty_c(a) if out is None else <cnp.ndarray>out
    return (hit, view3(a, d3), view3(<cnp.ndarray>s, d3), res, view3(res, d3))


# float16 elementwise calls (the public functions' path to
# fastact._api._half_forward / _half_backward): x (with g for a backward:
# grad_output and x or y of one shape) a plain C-contiguous float16 ndarray,
# not empty: False, or (entry, result), the entry of the float32 memo list
# ``m`` at x's size (float16 calls take float32's tuning) and a new float16
# result of x's shape. The Python checks and np.empty took 0.45 us of relu's
# 1.25 on 1000 elements.

cdef inline bint plain_h(object x) noexcept:
    return plain_c(x) and <object>cnp.PyArray_DESCR(<cnp.ndarray>x) is F16 \
        and cnp.PyArray_SIZE(<cnp.ndarray>x) != 0


cdef inline object half_entry(cnp.ndarray a, list m):
    return (m[bit_length(cnp.PyArray_SIZE(a))], empty_c(a))


def half_one(x, list m):
    return half_entry(<cnp.ndarray>x, m) if plain_h(x) else False


def half_pair(g, s, list m):
    if not plain_h(g) or not plain_h(s) or not alike(<cnp.ndarray>g, <cnp.ndarray>s):
        return False
    return half_entry(<cnp.ndarray>g, m)


# float16 along the last axis (the softmax family's rows, _api._half_axis_forward /
# _half_axis_backward): x (grad_output, and x or y of its shape) as half_one
# asks, ``axis`` an int naming its last axis: False, or (entry, x3, result,
# result3) (backward: (entry, g3, s3, result, result3)), the views (outer, n, 1).

cdef inline object half_rows(object x, object axis, list m, cnp.npy_intp* d3):
    # the float32 memo entry of a float16 x along its last axis, (outer, n, 1) in d3; or False
    if not plain_h(x) or type(axis) is not int:
        return False
    cdef cnp.ndarray a = <cnp.ndarray>x
    cdef int nd = cnp.PyArray_NDIM(a)
    if nd == 0 or not (axis == -1 or axis == nd - 1):
        return False
    d3[1] = cnp.PyArray_DIMS(a)[nd - 1]
    d3[0] = cnp.PyArray_SIZE(a) // d3[1]
    d3[2] = 1
    return m[bit_length(cnp.PyArray_SIZE(a))]


def half_axis_forward(x, axis, list m):
    cdef cnp.npy_intp d3[3]
    cdef object hit = half_rows(x, axis, m, d3)
    if hit is False:
        return False
    cdef cnp.ndarray res = empty_c(<cnp.ndarray>x)
    return (hit, view3(<cnp.ndarray>x, d3), res, view3(res, d3))


def half_axis_backward(g, s, axis, list m):
    cdef cnp.npy_intp d3[3]
    cdef object hit = half_rows(g, axis, m, d3)
    if hit is False or not plain_h(s) or not alike(<cnp.ndarray>g, <cnp.ndarray>s):
        return False
    cdef cnp.ndarray res = empty_c(<cnp.ndarray>g)
    return (hit, view3(<cnp.ndarray>g, d3), view3(<cnp.ndarray>s, d3), res, view3(res, d3))


# glu and maxout: the output's axis is the input's divided by ``div`` (2, or
# the pieces).  The forward: x as axis_forward asks (no out=), its axis a
# multiple of div: False, or (entry, x3, result, result3) with result of x's
# shape but the axis divided, and result3 its (outer, n // div, inner).  The
# backward from x: g of x's dtype and of the result's shape, both
# C-contiguous: False, or (entry, g3, x3, result, result3), result like x.
# The entry is x's (its size's), as the Python path reads it.

cdef inline Py_ssize_t divisor(object div, cnp.npy_intp n) except -2:
    # div as a positive divisor of n, or -1
    cdef Py_ssize_t d
    if type(div) is not int:
        return -1
    try:
        d = div
    except OverflowError:
        return -1
    if d <= 0 or n % d != 0:
        return -1
    return d


cdef inline object shrink_prep(cnp.ndarray a, object axis, object div, list m32, list m64, cnp.npy_intp* d3,
                               cnp.npy_intp* r3):
    # the memo entry of `a`, its (outer, n, inner) along `axis` in d3 and the result's, n // div, in r3; or False
    cdef object hit = prepare(a, axis, m32, m64, d3)
    if hit is False:
        return False
    cdef Py_ssize_t d = divisor(div, d3[1])
    if d < 0:
        return False
    r3[0] = d3[0]
    r3[1] = d3[1] // d
    r3[2] = d3[2]
    return hit


cdef inline int copy_dims(cnp.ndarray a, object axis, cnp.npy_intp k, cnp.npy_intp* dims) except -1:
    # a's shape with the axis (in range) of length k, into dims; its length
    cdef int nd = cnp.PyArray_NDIM(a)
    cdef long ax = axis
    cdef int i
    for i in range(nd):
        dims[i] = cnp.PyArray_DIMS(a)[i]
    dims[ax + nd if ax < 0 else ax] = k
    return nd


def shrink_forward(x, axis, div, list m32, list m64):
    if not plain_c(x):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>x
    cdef cnp.npy_intp d3[3]
    cdef cnp.npy_intp r3[3]
    cdef object hit = shrink_prep(a, axis, div, m32, m64, d3, r3)
    if hit is False:
        return False
    cdef cnp.npy_intp dims[cnp.NPY_MAXDIMS]
    cdef int nd = copy_dims(a, axis, r3[1], dims)
    cdef cnp.ndarray res = cnp.PyArray_EMPTY(nd, dims, cnp.PyArray_TYPE(a), 0)
    return (hit, view3(a, d3), res, view3(res, r3))


def shrink_backward(g, x, axis, div, list m32, list m64):
    if not plain_c(g) or not plain_c(x):
        return False
    cdef cnp.ndarray b = <cnp.ndarray>x
    cdef cnp.ndarray ga = <cnp.ndarray>g
    cdef cnp.npy_intp d3[3]
    cdef cnp.npy_intp r3[3]
    cdef object hit = shrink_prep(b, axis, div, m32, m64, d3, r3)
    if hit is False or cnp.PyArray_DESCR(ga) is not cnp.PyArray_DESCR(b):
        return False
    cdef cnp.npy_intp dims[cnp.NPY_MAXDIMS]
    cdef int nd = copy_dims(b, axis, r3[1], dims)
    if cnp.PyArray_NDIM(ga) != nd or memcmp(cnp.PyArray_DIMS(ga), dims, nd * sizeof(cnp.npy_intp)) != 0:
        return False
    cdef cnp.ndarray res = empty_c(b)
    return (hit, view3(ga, r3), view3(b, d3), res, view3(res, d3))


# prelu: x as axis_forward asks (no out=) and a weight of x's dtype (the same
# descriptor), an ndarray, 1-D, C-contiguous, of one slope or x.shape[axis]
# of them, every one finite (a weight that is not goes on to the general
# path, which raises): False, or (entry, x3, result, result3), where one slope
# makes x3 and result3 (1, 1, n). The backward from x: grad_output of x's
# dtype and shape, C-contiguous too: False, or (entry, g3, x3, result,
# result3). In Python these checks took 1.3 of the public call's 2.2 us
# (1000 float32 elements, 64 channels).

cdef inline bint finite_weight(cnp.ndarray w) noexcept:
    cdef cnp.npy_intp i, c = cnp.PyArray_DIMS(w)[0]
    cdef float* f = <float*>cnp.PyArray_DATA(w)
    cdef double* d = <double*>cnp.PyArray_DATA(w)
    if cnp.PyArray_TYPE(w) == cnp.NPY_FLOAT:
        for i in range(c):
            if not isfinite(f[i]):
                return False
    else:
        for i in range(c):
            if not isfinite(d[i]):
                return False
    return True


cdef inline bint slopes_fit(cnp.ndarray w, cnp.ndarray a, cnp.npy_intp* d3) noexcept:
    # whether w is 1-D, of one slope or of d3[1] (a's axis, not empty) of them;
    # one slope makes d3 (1, 1, a's size)
    if cnp.PyArray_NDIM(w) != 1:
        return False
    cdef cnp.npy_intp c = cnp.PyArray_DIMS(w)[0]
    if c == 1:
        d3[0] = 1
        d3[1] = 1
        d3[2] = cnp.PyArray_SIZE(a)
        return True
    return c == d3[1]


cdef inline object prelu_prep(cnp.ndarray a, object weight, object axis, list m32, list m64, cnp.npy_intp* d3):
    # the memo entry of `a` with the (outer, n, inner) its weight takes in d3, or False
    cdef object hit = prepare(a, axis, m32, m64, d3)
    if hit is False or not plain_c(weight):
        return False
    cdef cnp.ndarray w = <cnp.ndarray>weight
    if cnp.PyArray_DESCR(w) is not cnp.PyArray_DESCR(a) or not slopes_fit(w, a, d3) or not finite_weight(w):
        return False
    return hit


# prelu on float16 (_api._half_prelu_forward / _half_prelu_backward): x as
# half_one asks (with grad_output of its shape for the backward), an int axis
# in range, a float16 weight, 1-D, of one slope or x.shape[axis] of them,
# every one finite: False, or (entry, x3, result, result3, the weight as a
# new float32 array) (backward: (entry, g3, x3, result, result3, weight)),
# the entry of the float32 memo list ``m``.

cdef inline object half_prelu_prep(cnp.ndarray a, object weight, object axis, list m, cnp.npy_intp* d3):
    # (entry, the weight as float32), with the (outer, n, inner) its weight takes in d3; or False
    if type(weight) is not cnp.ndarray or geometry(a, axis, d3) is False:
        return False
    cdef cnp.ndarray w = <cnp.ndarray>weight
    if <object>cnp.PyArray_DESCR(w) is not F16 or not slopes_fit(w, a, d3):
        return False
    cdef cnp.ndarray wf = cnp.PyArray_Cast(w, cnp.NPY_FLOAT)
    if not finite_weight(wf):
        return False
    return (m[bit_length(cnp.PyArray_SIZE(a))], wf)


cdef object half_prelu(object g, object x, object weight, object axis, list m):
    # half_prelu_forward (g None) and half_prelu_backward
    if not plain_h(x) or (g is not None and not (plain_h(g) and alike(<cnp.ndarray>g, <cnp.ndarray>x))):
        return False
    cdef cnp.ndarray b = <cnp.ndarray>x
    cdef cnp.npy_intp d3[3]
    cdef object t = half_prelu_prep(b, weight, axis, m, d3)
    if t is False:
        return False
    cdef cnp.ndarray res = empty_c(b)
    if g is None:
        return (t[0], view3(b, d3), res, view3(res, d3), t[1])
    return (t[0], view3(<cnp.ndarray>g, d3), view3(b, d3), res, view3(res, d3), t[1])


def half_prelu_forward(x, weight, axis, list m):
    return half_prelu(None, x, weight, axis, m)


def half_prelu_backward(g, x, weight, axis, list m):
    return half_prelu(g, x, weight, axis, m)


cdef object prelu_call(object g, object x, object weight, object axis, list m32, list m64):
    # prelu_forward (g None) and prelu_backward
    if not plain_c(x) or (g is not None and not (plain_c(g) and alike(<cnp.ndarray>g, <cnp.ndarray>x))):
        return False
    cdef cnp.ndarray b = <cnp.ndarray>x
    cdef cnp.npy_intp d3[3]
    cdef object hit = prelu_prep(b, weight, axis, m32, m64, d3)
    if hit is False:
        return False
    cdef cnp.ndarray res = empty_c(b)
    if g is None:
        return (hit, view3(b, d3), res, view3(res, d3))
    return (hit, view3(<cnp.ndarray>g, d3), view3(b, d3), res, view3(res, d3))


def prelu_forward(x, weight, axis, list m32, list m64):
    return prelu_call(None, x, weight, axis, m32, m64)


def prelu_backward(g, x, weight, axis, list m32, list m64):
    return prelu_call(g, x, weight, axis, m32, m64)


# ------------------------------------------------------------- Numba spans
# The serial call of a Numba elementwise kernel, made through its span
# function (the numba cfunc that the kernel's prange threads call: input and
# output pointers, the length, four parameters of the dtype) instead of
# through the serial kernel's compiled Python entry point, which unboxes every
# ndarray: relu on 1e3 float32 0.24 -> 0.11 us a call, softshrink 0.30 ->
# 0.16 (fastact._numba.backend._ew_handler). The caller holds the backend
# contract: contiguous arrays of one dtype and size, out writeable; f is the
# span function for that dtype, and the parameters are values of it (Python
# floats here, exact). The GIL is released for NOGIL_MIN elements and more:
# below, the call is shorter than two hand-overs of the GIL (~0.04 us).

ctypedef void (*span1_f)(float*, float*, cnp.npy_intp, float, float, float, float) noexcept nogil
ctypedef void (*span1_d)(double*, double*, cnp.npy_intp, double, double, double, double) noexcept nogil
ctypedef void (*span2_f)(float*, float*, float*, cnp.npy_intp, float, float, float, float) noexcept nogil
ctypedef void (*span2_d)(double*, double*, double*, cnp.npy_intp, double, double, double, double) noexcept nogil

NOGIL_MIN = 4096
cdef cnp.npy_intp _nogil_min = NOGIL_MIN


cdef inline int span_type(cnp.ndarray a, cnp.ndarray out, cnp.npy_intp n) except -1:
    cdef int t = cnp.PyArray_TYPE(a)
    if (t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE) or cnp.PyArray_TYPE(out) != t or cnp.PyArray_SIZE(out) != n:
        raise ValueError("span call: arrays of one size and dtype, float32 or float64")
    return t


cdef inline void call1(int t, size_t f, void* pa, void* po, cnp.npy_intp n,
                       double p0, double p1, double p2, double p3) noexcept nogil:
    if t == cnp.NPY_FLOAT:
        (<span1_f>f)(<float*>pa, <float*>po, n, <float>p0, <float>p1, <float>p2, <float>p3)
    else:
        (<span1_d>f)(<double*>pa, <double*>po, n, p0, p1, p2, p3)


cdef inline void call2(int t, size_t f, void* pa, void* pb, void* po, cnp.npy_intp n,
                       double p0, double p1, double p2, double p3) noexcept nogil:
    if t == cnp.NPY_FLOAT:
        (<span2_f>f)(<float*>pa, <float*>pb, <float*>po, n, <float>p0, <float>p1, <float>p2, <float>p3)
    else:
        (<span2_d>f)(<double*>pa, <double*>pb, <double*>po, n, p0, p1, p2, p3)


cdef int run_span(size_t f, cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, double p0, double p1, double p2,
                  double p3) except -1:
    # out = op(a) (b None) or op(a, b) through span function f
    cdef cnp.npy_intp n = cnp.PyArray_SIZE(a)
    cdef int t = span_type(a, out, n)
    cdef void* pa = cnp.PyArray_DATA(a)
    cdef void* po = cnp.PyArray_DATA(out)
    cdef void* pb = NULL
    if b is not None:
        span_type(a, b, n)
        pb = cnp.PyArray_DATA(b)
    if n < _nogil_min:
        if pb == NULL:
            call1(t, f, pa, po, n, p0, p1, p2, p3)
        else:
            call2(t, f, pa, pb, po, n, p0, p1, p2, p3)
    else:
        with nogil:
            if pb == NULL:
                call1(t, f, pa, po, n, p0, p1, p2, p3)
            else:
                call2(t, f, pa, pb, po, n, p0, p1, p2, p3)
    return 0


def span1(size_t f, cnp.ndarray a, cnp.ndarray out, double p0, double p1, double p2, double p3):
    """out = op(a) through span function ``f`` (a numba cfunc's address)."""
    run_span(f, a, None, out, p0, p1, p2, p3)


def span2(size_t f, cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, double p0, double p1, double p2, double p3):
    """out = op(a, b) through span function ``f``, as :func:`span1`."""
    run_span(f, a, b, out, p0, p1, p2, p3)


# The parallel call of a Numba elementwise kernel, through a cfunc of its
# pointer kernel (fastact._numba._kernels.par_cfunc: span function f's address,
# the pointers, the length, four parameters of the dtype, the thread count)
# instead of through the kernel's compiled Python entry point. The GIL stays
# held: numba's parallel region releases it around the threads' work itself
# (numba/np/ufunc/parallel.py), and releasing it here too would hand it over
# twice more. The caller holds what span1 asks, and has set numba's thread
# count for this thread to nthreads.

ctypedef void (*par1_f)(size_t, float*, float*, cnp.npy_intp, float, float, float, float, cnp.npy_intp) noexcept
ctypedef void (*par1_d)(size_t, double*, double*, cnp.npy_intp, double, double, double, double, cnp.npy_intp) noexcept
ctypedef void (*par2_f)(size_t, float*, float*, float*, cnp.npy_intp, float, float, float, float, cnp.npy_intp) noexcept
ctypedef void (*par2_d)(size_t, double*, double*, double*, cnp.npy_intp, double, double, double, double,
                        cnp.npy_intp) noexcept


cdef int run_par(size_t k, size_t f, cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, double p0, double p1,
                 double p2, double p3, cnp.npy_intp nthreads) except -1:
    # out = op(a) (b None) or op(a, b) on nthreads threads: parallel kernel cfunc k running span function f
    cdef cnp.npy_intp n = cnp.PyArray_SIZE(a)
    cdef int t = span_type(a, out, n)
    cdef void* pa = cnp.PyArray_DATA(a)
    cdef void* po = cnp.PyArray_DATA(out)
    if b is None:
        if t == cnp.NPY_FLOAT:
            (<par1_f>k)(f, <float*>pa, <float*>po, n, <float>p0, <float>p1, <float>p2, <float>p3, nthreads)
        else:
            (<par1_d>k)(f, <double*>pa, <double*>po, n, p0, p1, p2, p3, nthreads)
        return 0
    span_type(a, b, n)
    cdef void* pb = cnp.PyArray_DATA(b)
    if t == cnp.NPY_FLOAT:
        (<par2_f>k)(f, <float*>pa, <float*>pb, <float*>po, n, <float>p0, <float>p1, <float>p2, <float>p3, nthreads)
    else:
        (<par2_d>k)(f, <double*>pa, <double*>pb, <double*>po, n, p0, p1, p2, p3, nthreads)
    return 0


def par1(size_t k, size_t f, cnp.ndarray a, cnp.ndarray out, double p0, double p1, double p2, double p3,
         cnp.npy_intp nthreads):
    """out = op(a) on nthreads threads: parallel kernel cfunc ``k`` running span function ``f``."""
    run_par(k, f, a, None, out, p0, p1, p2, p3, nthreads)


def par2(size_t k, size_t f, cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, double p0, double p1, double p2,
         double p3, cnp.npy_intp nthreads):
    """out = op(a, b) on nthreads threads, as :func:`par1`."""
    run_par(k, f, a, b, out, p0, p1, p2, p3, nthreads)


ctypedef void (*rows_f)(float*, float*, cnp.npy_intp, cnp.npy_intp, float, cnp.npy_intp) noexcept nogil
ctypedef void (*rows_d)(double*, double*, cnp.npy_intp, cnp.npy_intp, double, cnp.npy_intp) noexcept nogil


cdef inline void call_rows(int t, size_t f, void* px, void* po, cnp.npy_intp outer, cnp.npy_intp n,
                           double sign, cnp.npy_intp mode) noexcept nogil:
    if t == cnp.NPY_FLOAT:
        (<rows_f>f)(<float*>px, <float*>po, outer, n, <float>sign, mode)
    else:
        (<rows_d>f)(<double*>px, <double*>po, outer, n, sign, mode)


def rows(size_t f, cnp.ndarray x, cnp.ndarray out, double sign, cnp.npy_intp mode):
    """The softmax family's serial forward along the last axis through row
    function ``f`` (fastact._numba._kernels.softmax_rows_cfunc): x and out
    C-contiguous (outer, n, 1) of one dtype, as :func:`span1` asks."""
    cdef cnp.npy_intp size = cnp.PyArray_SIZE(x)
    cdef int t = span_type(x, out, size)
    if cnp.PyArray_NDIM(x) != 3 or cnp.PyArray_DIMS(x)[2] != 1:
        raise ValueError("rows: x must be (outer, n, 1)")
    cdef cnp.npy_intp outer = cnp.PyArray_DIMS(x)[0]
    cdef cnp.npy_intp n = cnp.PyArray_DIMS(x)[1]
    cdef void* px = cnp.PyArray_DATA(x)
    cdef void* po = cnp.PyArray_DATA(out)
    if size < _nogil_min:
        call_rows(t, f, px, po, outer, n, sign, mode)
    else:
        with nogil:
            call_rows(t, f, px, po, outer, n, sign, mode)


cdef inline void call_glu_rows(int t, size_t f, char* px, char* po, cnp.npy_intp outer, cnp.npy_intp L,
                               Py_ssize_t w) noexcept nogil:
    # per outer index o: out[o] = op(a, b) on x[o]'s halves, L elements of w bytes each
    cdef cnp.npy_intp o
    for o in range(outer):
        call2(t, f, px + 2 * o * L * w, px + (2 * o + 1) * L * w, po + o * L * w, L, 0, 0, 0, 0)


def glu_rows(size_t f, cnp.ndarray x, cnp.ndarray out):
    """glu's serial forward through span function ``f`` (the Numba backend's
    a * sigmoid(b) over n elements, fastact._numba._kernels.GLU_FWD): x
    C-contiguous (outer, 2 m, inner) and out (outer, m, inner) of its dtype;
    per outer index its halves a and b are contiguous runs of m * inner
    elements (against the serial kernel's entry point, a row of 1000 float32:
    1.24 -> 0.4 us)."""
    cdef cnp.npy_intp size = cnp.PyArray_SIZE(out)
    cdef int t = span_type(out, out, size)
    if cnp.PyArray_NDIM(x) != 3 or cnp.PyArray_NDIM(out) != 3 or cnp.PyArray_TYPE(x) != t \
            or cnp.PyArray_SIZE(x) != 2 * size or cnp.PyArray_DIMS(x)[0] != cnp.PyArray_DIMS(out)[0]:
        raise ValueError("glu_rows: x (outer, 2 m, inner) and out (outer, m, inner) of one dtype")
    cdef cnp.npy_intp outer = cnp.PyArray_DIMS(x)[0]
    if outer == 0:
        return
    cdef cnp.npy_intp L = size // outer
    cdef Py_ssize_t w = cnp.PyArray_ITEMSIZE(x)
    cdef char* px = <char*>cnp.PyArray_DATA(x)
    cdef char* po = <char*>cnp.PyArray_DATA(out)
    if size < _nogil_min:
        call_glu_rows(t, f, px, po, outer, L, w)
    else:
        with nogil:
            call_glu_rows(t, f, px, po, outer, L, w)


# The Numba backend's common elementwise calls, dispatched in C. Between the
# public function and the kernel, such a call went through three Python frames
# (NumbaBackend.forward or backward, the op's handler from
# backend._ew_handler, _direct_threads), where the Cython backend's goes
# through none; after a kernel has swept the caches they cost more than when
# warm. Ew holds an op's handler table and makes the handler's common calls
# itself: a table hit, out none of the inputs, a result below the streaming
# size (or an op that never streams), then the op's span function on the
# calling thread, or its pointer kernel on the thread count _direct_threads
# gives. Every other call goes to the handler, which makes the same call of
# the same arguments; PreluFwd and RowsPar do the same for prelu's forward and
# the softmax family's parallel rows. Dispatch is the backend's forward and
# backward over its handlers: these, and the other handlers called without
# the Python methods' frame.

cdef Py_ssize_t _ew_stream_min = 0


def set_stream_min(Py_ssize_t nbytes):
    """The result size from which the handlers stream (the Numba backend's
    _stream_min): Ew leaves such calls to its op's handler."""
    global _ew_stream_min
    _ew_stream_min = nbytes


cdef class Handler:
    """A Numba backend handler's calls made in C (Dispatch): ``run`` returns
    1 after making the call, 0 when the Python handler ``py`` is to make it."""
    cdef public object py

    cdef int run(self, cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, object params, int threads) except -1:
        return 0


cdef class Ew(Handler):
    """An op's elementwise calls as its handler makes them (see above):
    ``table`` is the handler's dtype -> {parameter key: entry}, ``names`` the
    parameters that make the key, ``arity`` the op's input arrays, ``streams``
    whether the handler streams a large result, ``limit`` the size above which
    a call with ``threads`` 0 is parallel, ``direct`` backend._direct_threads.
    The handler makes its serial calls through span1 or span2 and its parallel
    ones through par1 or par2 (backend._ew_handler makes an Ew only then)."""
    cdef dict table
    cdef object direct, n0, n1
    cdef int nk, arity
    cdef bint streams
    cdef cnp.npy_intp limit

    def __init__(self, dict table, direct, tuple names, int arity, bint streams, cnp.npy_intp limit):
        self.table = table
        self.direct = direct
        self.nk = len(names)
        self.n0 = names[0] if self.nk > 0 else None
        self.n1 = names[1] if self.nk > 1 else None
        self.arity = arity
        self.streams = streams
        self.limit = limit

    cdef object entry(self, cnp.ndarray a, object params):
        # the handler's table entry for a's dtype and these parameters, or None
        cdef object k, d
        try:
            if self.nk == 0:
                k = None
            elif self.nk == 1:
                k = params[self.n0]
            else:
                k = (params[self.n0], params[self.n1])
            d = self.table.get(<object>cnp.PyArray_DESCR(a))
            return None if d is None else (<dict>d).get(k)
        except (KeyError, TypeError):  # the handler raises the error, or keeps no memo
            return None

    cdef int run(self, cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, object params, int threads) except -1:
        """1 after making the call; 0 when the handler is to make it."""
        cdef object c, pe
        cdef cnp.npy_intp nt
        if (b is None) != (self.arity == 1) or out is a or out is b or cnp.PyArray_NDIM(a) != 1:
            return 0
        if self.streams and cnp.PyArray_NBYTES(out) >= _ew_stream_min:
            return 0
        c = self.entry(a, params)
        if c is None:
            return 0
        if threads > 1 or (threads == 0 and cnp.PyArray_DIMS(a)[0] > self.limit):
            pe = c[1]  # (par1 or par2, the pointer kernel, the span function)
            if pe is None:
                return 0
            nt = self.direct(threads)
            if nt == 0:
                return 0
            run_par(pe[1], pe[2], a, b, out, c[2], c[3], c[4], c[5], nt)
            return 1
        if c[9] is None:
            return 0
        run_span(c[9], a, b, out, c[2], c[3], c[4], c[5])
        return 1


cdef inline bint c_alike(cnp.ndarray a, cnp.ndarray b) noexcept:
    # a and b C-contiguous, of one dtype (descriptor) and shape
    return alike(a, b) and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_IS_C_CONTIGUOUS(b)


ctypedef void (*prelu_f)(float*, float*, float*, cnp.npy_intp, cnp.npy_intp, cnp.npy_intp, cnp.npy_intp, int,
                         cnp.npy_intp) noexcept nogil
ctypedef void (*prelu_d)(double*, double*, double*, cnp.npy_intp, cnp.npy_intp, cnp.npy_intp, cnp.npy_intp, int,
                         cnp.npy_intp) noexcept nogil


cdef inline void call_prelu(int t, size_t f, void* px, void* pw, void* po, cnp.npy_intp* d, cnp.npy_intp nw,
                            int stream, cnp.npy_intp nthreads) noexcept nogil:
    if t == cnp.NPY_FLOAT:
        (<prelu_f>f)(<float*>px, <float*>pw, <float*>po, d[0], d[1], d[2], nw, stream, nthreads)
    else:
        (<prelu_d>f)(<double*>px, <double*>pw, <double*>po, d[0], d[1], d[2], nw, stream, nthreads)


cdef class PreluFwd(Handler):
    """prelu's forward as its handler (backend._prelu_handler) makes it, for
    C-contiguous (outer, C, inner) x and out of one dtype and shape and a
    contiguous weight of C values of it, where the kernels take the weight as
    it is (inner 1, or ``rows_below`` and more): ``table`` is the handler's
    dtype -> [serial cfunc's address, parallel cfunc's address]
    (_kernels.prelu_fwd_cfunc; 0 until the handler has made such a call),
    ``limit`` the size above which a call with ``threads`` 0 is parallel,
    ``direct`` backend._direct_threads. The serial call releases the GIL from
    NOGIL_MIN elements; the parallel one holds it, as par1 does."""
    cdef dict table
    cdef object direct
    cdef cnp.npy_intp limit, rows_below

    def __init__(self, dict table, direct, cnp.npy_intp limit, cnp.npy_intp rows_below):
        self.table, self.direct, self.limit, self.rows_below = table, direct, limit, rows_below

    cdef int run(self, cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, object params, int threads) except -1:
        cdef cnp.npy_intp* d = cnp.PyArray_DIMS(a)
        cdef cnp.npy_intp n = cnp.PyArray_SIZE(a), nt = 1
        cdef size_t f
        cdef int t = cnp.PyArray_TYPE(a), st
        cdef void *px
        cdef void *pw
        cdef void *po
        cdef object w, e
        if b is not None or cnp.PyArray_NDIM(a) != 3 or type(params) is not dict or not c_alike(a, out):
            return 0
        w = (<dict>params).get("weight")
        if not isinstance(w, cnp.ndarray) or cnp.PyArray_NDIM(w) != 1 or cnp.PyArray_DIMS(w)[0] != d[1] \
                or 1 < d[2] < self.rows_below:
            return 0
        if (t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE) or cnp.PyArray_TYPE(w) != t \
                or not cnp.PyArray_IS_C_CONTIGUOUS(w):
            return 0
        e = self.table.get(<object>cnp.PyArray_DESCR(a))
        if e is None:
            return 0
        st = cnp.PyArray_NBYTES(out) >= _ew_stream_min
        px, pw, po = cnp.PyArray_DATA(a), cnp.PyArray_DATA(<cnp.ndarray>w), cnp.PyArray_DATA(out)
        if threads == 1 or (threads == 0 and n <= self.limit):
            f = e[0]
            if f == 0:
                return 0
            if n < _nogil_min:
                call_prelu(t, f, px, pw, po, d, d[1], st, 1)
            else:
                with nogil:
                    call_prelu(t, f, px, pw, po, d, d[1], st, 1)
            return 1
        f = e[1]
        if f == 0:
            return 0
        nt = self.direct(threads)
        if nt == 0:
            return 0
        call_prelu(t, f, px, pw, po, d, d[1], st, nt)
        return 1


ctypedef void (*rows_par_f)(float*, float*, float*, cnp.npy_intp, cnp.npy_intp, float, cnp.npy_intp,
                            cnp.npy_intp) noexcept
ctypedef void (*rows_par_d)(double*, double*, double*, cnp.npy_intp, cnp.npy_intp, double, cnp.npy_intp,
                            cnp.npy_intp) noexcept
ctypedef void (*rows_bwd_f)(float*, float*, float*, cnp.npy_intp, cnp.npy_intp, float, cnp.npy_intp) noexcept nogil
ctypedef void (*rows_bwd_d)(double*, double*, double*, cnp.npy_intp, cnp.npy_intp, double, cnp.npy_intp) noexcept nogil


cdef inline void call_rows_ser(bint backward, int t, size_t f, void* pa, void* py, void* po, cnp.npy_intp outer,
                               cnp.npy_intp n, double sign, cnp.npy_intp mode) noexcept nogil:
    # the forward's rows (softmax_rows_cfunc: a = x, py not read) or the backward's (softmax_bwd_rows_cfunc: a = g)
    if not backward:
        call_rows(t, f, pa, po, outer, n, sign, mode)
    elif t == cnp.NPY_FLOAT:
        (<rows_bwd_f>f)(<float*>pa, <float*>py, <float*>po, outer, n, <float>sign, mode)
    else:
        (<rows_bwd_d>f)(<double*>pa, <double*>py, <double*>po, outer, n, sign, mode)


cdef class RowsPar(Handler):
    """The softmax family's rows along the last axis as its handlers
    (backend._softmax_handler, _softmax_bwd_handler) make them: C-contiguous
    (outer, n, 1) arrays of one dtype and shape; a parallel call (``threads``
    above 1, or 0 above ``limit`` elements) on as many threads as
    _direct_threads (``direct``) gives, at least as many rows as threads, and
    a serial one on the calling thread (``serial`` below).
    ``table``: the handler's dtype -> (the cfunc's address,
    _kernels.softmax_rows_par_cfunc; the sign as a float), filled by its first
    such call; ``mode`` the family's; ``backward``: the backward from y
    (a = g, b = y), whose softmax and softmin rows of at least ``stream_row``
    leave a result of the streaming size to the handler; else the forward,
    whose rows of at most ``short_n`` (more than one) are the handler's too.
    ``serial``: dtype -> (the address of the serial rows' cfunc,
    _kernels.softmax_rows_cfunc or softmax_bwd_rows_cfunc; the sign as a
    float), for the calls that are not parallel (the forward's short rows
    excepted, as above), filled by the handler's first such call."""
    cdef dict table, serial
    cdef object direct
    cdef cnp.npy_intp limit, mode, stream_row, short_n
    cdef bint backward

    def __init__(self, dict table, direct, cnp.npy_intp limit, cnp.npy_intp mode, bint backward,
                 cnp.npy_intp stream_row, cnp.npy_intp short_n, dict serial=None):
        self.table, self.direct, self.limit, self.mode = table, direct, limit, mode
        self.backward, self.stream_row, self.short_n = backward, stream_row, short_n
        self.serial = serial

    cdef int run(self, cnp.ndarray a, cnp.ndarray b, cnp.ndarray out, object params, int threads) except -1:
        cdef cnp.npy_intp* d = cnp.PyArray_DIMS(a)
        cdef cnp.npy_intp n = cnp.PyArray_SIZE(a), nt
        cdef int t = cnp.PyArray_TYPE(a)
        cdef object e
        cdef void* pb
        cdef void* pa
        cdef void* po
        cdef size_t f
        cdef double sign
        if (b is None) == self.backward or cnp.PyArray_NDIM(a) != 3 or cnp.PyArray_NDIM(out) != 3 or d[2] != 1:
            return 0
        if (t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE) or not c_alike(a, out):
            return 0
        if self.backward:
            if not c_alike(a, b):
                return 0
            pb = cnp.PyArray_DATA(b)
        else:
            if d[1] <= self.short_n and d[0] > 1:
                return 0
            pb = cnp.PyArray_DATA(a)  # (the forward's cfuncs do not read it)
        pa, po = cnp.PyArray_DATA(a), cnp.PyArray_DATA(out)
        if not (threads > 1 or (threads == 0 and n > self.limit)):
            # serial: the rows through their cfunc, on the calling thread
            e = None if self.serial is None else self.serial.get(<object>cnp.PyArray_DESCR(a))
            if e is None:
                return 0
            f, sign = <size_t>e[0], <double>e[1]
            if n < _nogil_min:
                call_rows_ser(self.backward, t, f, pa, pb, po, d[0], d[1], sign, self.mode)
            else:
                with nogil:
                    call_rows_ser(self.backward, t, f, pa, pb, po, d[0], d[1], sign, self.mode)
            return 1
        if self.backward and self.mode == 0 and d[1] >= self.stream_row and cnp.PyArray_NBYTES(out) >= _ew_stream_min:
            return 0
        e = self.table.get(<object>cnp.PyArray_DESCR(a))
        if e is None:
            return 0
        nt = self.direct(threads)
        if nt == 0 or d[0] < nt:
            return 0
        if t == cnp.NPY_FLOAT:
            (<rows_par_f><size_t>e[0])(<float*>pa, <float*>pb, <float*>po, d[0], d[1], <float>e[1], self.mode, nt)
        else:
            (<rows_par_d><size_t>e[0])(<double*>pa, <double*>pb, <double*>po, d[0], d[1], <double>e[1], self.mode, nt)
        return 1


cdef class Dispatch:
    """The Numba backend's forward and backward over its handlers by name
    (``fwd``, backward from x ``bwd_x``, from y ``bwd_y``): a Handler (an
    op's Ew, prelu's PreluFwd, the softmax family's RowsPar) makes the calls
    it knows in C and leaves the rest to its Python handler; another handler
    is called straight; a name with none goes to the backend's Python
    methods ``forward_py`` and ``backward_py``."""
    cdef dict fwd, bwd_x, bwd_y
    cdef object forward_py, backward_py

    def __init__(self, dict fwd, dict bwd_x, dict bwd_y, forward_py, backward_py):
        self.fwd, self.bwd_x, self.bwd_y = fwd, bwd_x, bwd_y
        self.forward_py, self.backward_py = forward_py, backward_py

    def forward(self, name, x, out, params, int threads=0):
        h = self.fwd.get(name)
        if isinstance(h, Handler):
            if isinstance(x, cnp.ndarray) and isinstance(out, cnp.ndarray) \
                    and (<Handler>h).run(x, None, out, params, threads):
                return None
            h = (<Handler>h).py
        if h is None:
            return self.forward_py(name, x, out, params, threads)
        h(x, out, params, threads)

    def backward(self, name, g, x, y, out, params, int threads=0):
        s = x if x is not None else y
        h = (self.bwd_x if x is not None else self.bwd_y).get(name)
        if isinstance(h, Handler):
            if isinstance(g, cnp.ndarray) and isinstance(s, cnp.ndarray) and isinstance(out, cnp.ndarray) \
                    and (<Handler>h).run(g, s, out, params, threads):
                return None
            h = (<Handler>h).py
        if h is None:
            return self.backward_py(name, g, x, y, out, params, threads)
        h(g, s, out, params, threads)
