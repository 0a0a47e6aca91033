# cython: language_level=3
"""The checks that select the public functions' allocating fast path, in C.

A one-element call is all overhead, and in Python these checks (exact
ndarray, a float32/float64 dtype, a non-empty contiguous layout and, for a
backward, a second array of the same dtype, shape and layout) cost more than
the kernel.  Each function here does them in one call and then reads auto's
memo list for the array's dtype at the size's bit length (see
``fastact._backends.memo``).  It returns ``False`` when the array does not
qualify, else the memo entry: ``(backend, threads)``, or ``None`` when that
size has not been resolved yet.

``fastact._api`` has Python versions with the same results, used when this
module is not compiled; a test holds the two to each other.
"""

cimport numpy as cnp
from libc.string cimport memcmp

cnp.import_array()

cdef object F32 = cnp.dtype("float32")
cdef object F64 = cnp.dtype("float64")
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


def pair(g, s, list m32, list m64):
    """``g`` as :func:`one` asks of ``x``, and ``s`` of its dtype and shape, both C- or both F-contiguous."""
    if type(g) is not cnp.ndarray or type(s) is not cnp.ndarray:
        return False
    cdef cnp.ndarray a = <cnp.ndarray>g
    cdef cnp.ndarray b = <cnp.ndarray>s
    cdef int nd = cnp.PyArray_NDIM(a)
    if cnp.PyArray_DESCR(a) is not cnp.PyArray_DESCR(b) or nd != cnp.PyArray_NDIM(b):
        return False
    if nd and memcmp(cnp.PyArray_DIMS(a), cnp.PyArray_DIMS(b), nd * sizeof(cnp.npy_intp)):
        return False
    cdef int fa = cnp.PyArray_FLAGS(a)
    cdef int fb = cnp.PyArray_FLAGS(b)
    if not ((fa & fb & cnp.NPY_ARRAY_C_CONTIGUOUS)
            or (not (fa & cnp.NPY_ARRAY_C_CONTIGUOUS) and not (fb & cnp.NPY_ARRAY_C_CONTIGUOUS)
                and (fa & fb & cnp.NPY_ARRAY_F_CONTIGUOUS))):
        return False
    return memo_entry(a, m32, m64)
