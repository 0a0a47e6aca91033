"""Generic Numba drivers.

Elementwise drivers
-------------------
One loop template per arity (``map1``: forward; ``map2``: backward from x or y,
rrelu forward; ``map3``: rrelu backward), in a serial and a ``prange`` flavour,
instantiated for each scalar function of ``_scalar.py`` by name.

Why source templates and not a factory closure or a function argument: both
were measured (numba 0.68) to *save* a cache entry that the next process never
*hits* -- a closure's cache key pickles its cell contents (the scalar
dispatcher, whose pickle differs per process) and a dispatcher passed as an
argument is typed by identity. A function generated from source text with a
unique name, whose code object points at this file, caches like any top-level
``@njit(cache=True)`` function. The name carries a hash of the sources it
inlines, so editing ``_math.py`` or ``_scalar.py`` can never load a stale
cache entry.

The serial loops run ``range(a.shape[0])`` with ``error_model='numpy'`` --
PERF-NOTES: that form vectorises, ``range(a.size)`` did not. ``fastmath`` is
limited to ``contract`` (FMA): reassociation would undo the magic-number
rounding in ``_math`` and NaN/inf assumptions would break the edge semantics.
"""

from __future__ import annotations

import hashlib
import os
import platform

import numba
from numba.core import cgutils
from llvmlite import ir as llvmir
import numpy as np
from numba import carray, njit, prange  # noqa: F401  (carray: used by generated code)

from . import _tab  # noqa: F401  (used by generated code)
from . import _scalar
from ._math import cst  # noqa: F401  (used by generated code)
from ._math import _as_int  # noqa: F401  (used by generated code)
from ._math import exp as _exp
from ._math import exp_up as _exp_up
from ._math import exp_neg as _exp_neg
from ._math import gelu_fwd_staged as _gelu_fwd_staged  # noqa: F401  (used by generated code)
from ._math import log_sigmoid_fwd_staged as _log_sigmoid_fwd_staged  # noqa: F401  (used by generated code)
from ._math import softplus1_fwd_staged as _softplus1_fwd_staged  # noqa: F401  (used by generated code)
from ._math import tail_scale as _tail_scale
from ._math import is_f32 as _is_f32
from ._math import log as _log
from ._math import sigmoid as _sigmoid
from ._math import sigmoid2 as _sigmoid2

_HERE = os.path.dirname(os.path.abspath(__file__))
OPTS = dict(cache=True, error_model="numpy", fastmath={"contract"}, nogil=True)
# The parallel kernels hold the GIL on entry (nogil=False) and still run their
# loops without it: numba's parallel region wrapper takes the GIL and releases
# it around the threads' work (numba/np/ufunc/parallel.py, gil_ensure and
# save_thread). With nogil=True the dispatcher released it first, so the
# wrapper took it back and released it again, and again on the way out: two
# more hand-overs per call. 2 threads, float32 relu, the entry point alone,
# three alternating runs: 16 elements 2.01-2.03 -> 1.83-1.87 us, 1e5
# 6.94-7.09 -> 6.71-7.01 us. tests/test_threads_processes.py holds that
# other Python threads still run while a kernel does.
PAR_OPTS = dict(OPTS, nogil=False)


def _source_hash():
    h = hashlib.sha256()
    for fn in ("_math.py", "_scalar.py", "_kernels.py", "_tab.py"):
        with open(os.path.join(_HERE, fn), "rb") as f:
            h.update(f.read())
    if _tab.ENABLED:  # its coefficients
        h.update(repr({k: v.tolist() for k, v in _tab.TABLES.items()}).encode())
    return h.hexdigest()[:10]


_HASH = _source_hash()


def _stamp_caches_with_the_hash():
    """Make every cache entry of a function defined in this package's numba
    directory stale when _HASH changes.

    numba checks a cache entry against the file that defines the function
    (_kernels.py) only; the generated elementwise kernels carry _HASH in
    their names, but the module-level ones (softmax, glu, maxout, ...) inline
    _math and _tab too, and an edit of _math.py alone left them running the
    old code from the cache (log_softmax along axis 0 with exp_up doubled:
    right in a fresh cache directory, the old results in the used one). A
    locator placed before numba's own adds _HASH to the stamp of the one
    numba would pick (the same directories: NUMBA_CACHE_DIR, next to the
    file, the per-user one). If numba's internals move, nothing changes.
    """
    try:
        from numba.core import caching

        impl, base = caching.CacheImpl, caching._CacheLocator
        impl._locator_classes
    except (ImportError, AttributeError):  # pragma: no cover - numba internals moved
        return

    class HashStampedLocator(base):
        def __init__(self, inner):
            self._inner = inner

        def ensure_cache_path(self):
            self._inner.ensure_cache_path()

        def get_cache_path(self):
            return self._inner.get_cache_path()

        def get_source_stamp(self):
            return (self._inner.get_source_stamp(), _HASH)

        def get_disambiguator(self):
            return self._inner.get_disambiguator()

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.dirname(os.path.abspath(py_file)) != _HERE:
                return None
            for loc in impl._locator_classes:
                if loc is not cls and loc.__name__ != cls.__name__:
                    inner = loc.from_function(py_func, py_file)
                    if inner is not None:
                        return cls(inner)
            return None

    if not any(c.__name__ == HashStampedLocator.__name__ for c in impl._locator_classes):
        impl._locator_classes.insert(0, HashStampedLocator)


_stamp_caches_with_the_hash()

# The parallel kernel runs the serial loop on one contiguous span per thread (as the
# Cython backend does): a prange over the elements themselves compiled to a loop
# over [lo, hi) that LLVM vectorised worse -- measured at 1e6 float32, 2 threads:
# sigmoid 494 us against 773 serial (1.56x), tanh 640 against 810 (1.27x), where the
# Cython backend's spans gave 2.0x.
# The span loop is not inlined into the prange body but called through a function
# pointer: a cfunc per op and dtype (``<name>_c``, the serial kernel on the span's
# memory). Inlined, it shared the registers of numba's parallel wrapper and LLVM
# reloaded the polynomials' constants inside the loop (their addresses no longer fit
# in registers): 68 instructions per 8 elements against the serial kernel's 41.
# Measured at 1e6 float32: sigmoid 962 us on one thread of the parallel kernel
# against 776 serial; called through the pointer 813, and 416 on two threads
# (481 inlined). One parallel kernel per arity (_spans1/2/3) serves every op.
def _table_guard(table, args):
    """The first lines of a span loop whose op has a table kernel: table is a
    function of _tab that computes the span where it applies (float32 on
    AVX-512), with plain stores, and returns whether it did; then the loop has
    nothing to do. A streamed result runs the op's streamed span function
    instead (NT_OPS)."""
    if not table:
        return ""
    params = ", p0, p1, p2, p3" if table in TABLE_PARAMS else ""
    return f"    if _tab.{table}({args}, out{params}):\n        return\n"


def _template(arity, table=None, staged=None):
    args = ", ".join("abc"[:arity])
    elems = ", ".join(f"{v}[i]" for v in "abc"[:arity])
    ptrs = ", ".join(f"{v}p" for v in "abc"[:arity])
    views = ", ".join(f"carray({v}p, n)" for v in "abc"[:arity])
    stage = f"    if {staged}({args}, out, p0, p1, p2, p3):\n        return\n" if staged else ""
    return (
        f"def {{name}}_s({args}, out, p0, p1, p2, p3):\n"
        f"{_table_guard(table, args)}"
        f"{stage}"
        f"    for i in range(a.shape[0]):\n"
        f"        out[i] = {{op}}({elems}, p0, p1, p2, p3)\n"
        f"def {{name}}_c({ptrs}, outp, n, p0, p1, p2, p3):\n"
        f"    {{name}}_s({views}, carray(outp, n), p0, p1, p2, p3)\n"
    )


_TEMPLATES = {k: _template(k) for k in (1, 2, 3)}

# float32 loops that run in stages where the tables do not apply (_math):
# gelu's forward, the Cython backend's passes and bits. 1e5 float32 on one
# thread, AMD EPYC (Zen 2, AVX2): the previous kernel, one loop, 180 us;
# this one in stages 147 (as one loop, in a model, 169); 2 threads 93 -> 79.
STAGED_OPS = {("fwd_gelu_none", 1): "_gelu_fwd_staged"} if not _tab.ENABLED else {}
# float32 forwards of an exp and a log1p: e = exp(-|x|) over a block, then
# the rest (_math's softplus1_fwd_staged, log_sigmoid_fwd_staged), the same
# bits as one loop; as the Cython backend's STAGED_F32_E.
STAGED_OPS.update({("fwd_softplus_beta1", 1): "_softplus1_fwd_staged",
                   ("fwd_log_sigmoid", 1): "_log_sigmoid_fwd_staged"})

# float32 loops on CPUs with AVX-512 from tables of polynomials (_tab): gelu's
# and silu's forward and backward, tanh's, tanhshrink's and sigmoid's forward, log_sigmoid's backward from x and from y,
# softplus's backward with beta 1 (log_sigmoid's table at -x; the special kernel bwd_softplus_beta1's loop),
# glu's forward on its halves (a sigmoid(b): that table at -b with g = a), sigmoid's backward from x
# (g t (1 - t), t = sigmoid(-|x|)).
TABLE_OPS = {("fwd_gelu_none", 1): "fwd", ("bwd_gelu_none", 2): "bwd", ("fwd_tanh", 1): "tanh", ("fwd_tanhshrink", 1): "tanhshrink", ("fwd_sigmoid", 1): "sigmoid",
             ("fwd_silu", 1): "silu", ("bwd_silu", 2): "silu_bwd",
             ("bwd_log_sigmoid", 2): "lsig_bwd", ("bwdy_log_sigmoid", 2): "lsig_bwdy",
             ("bwd_softplus_beta1", 2): "softplus_bwd1", ("fwd_glu_halves", 2): "glu",
             ("bwd_sigmoid", 2): "sigmoid_bwd"} if _tab.ENABLED else {}
# the table functions that take the loop's p0..p3 too (softplus_bwd1: its threshold)
TABLE_PARAMS = {"softplus_bwd1"}

# Ops whose streamed float32 result (AVX-512) is computed in one pass, each
# vector stored non-temporally as it is computed: the span function of their
# streamed calls is Spans.span(float32, True), which runs _tab.<kernel>_nt on
# the span; their plain calls run the op's own loop. The table ops (TABLE_OPS'
# one-pass tables, whose plain loop runs the same table with plain stores; not
# gelu's, which run in blocks, nor glu's halves, whose rows _glu_fwd_nt streams),
# and the backwards of _tab.NT_BWD_LANES. float64 streams as the handler's
# ``stream`` says (backend._ew_handler).
NT_OPS = {**{k: v for k, v in TABLE_OPS.items() if v not in ("fwd", "bwd", "glu")},  # gelu's block tables; glu's rows
          ("bwd_relu", 2): "relu_bwd", ("bwdy_relu", 2): "relu_bwd", ("bwd_relu6", 2): "relu6_bwd",
          ("bwdy_relu6", 2): "relu6_bwd", ("bwd_leaky_relu", 2): "leaky_relu_bwd",
          ("bwdy_leaky_relu", 2): "leaky_relu_bwd", ("bwd_threshold", 2): "threshold_bwd",
          ("bwd_hardshrink", 2): "hardshrink_bwd", ("bwd_softshrink", 2): "softshrink_bwd",
          ("bwd_hardtanh", 2): "hardtanh_bwd", ("bwd_hardsigmoid", 2): "hardsigmoid_bwd",
          ("bwd_hardswish", 2): "hardswish_bwd", ("bwdy_elu", 2): "elu_bwdy", ("bwdy_selu", 2): "selu_bwdy",
          ("bwdy_celu", 2): "celu_bwdy", ("bwdy_sigmoid", 2): "sigmoid_bwdy",
          ("bwdy_tanh", 2): "tanh_bwdy"} if _tab.ENABLED else {}

# The backward loop of an op with a float32 tail (_scalar.TAIL): the float32
# loop also takes the largest of a key of x's bits, an unsigned integer that
# orders x the way the op's test does (abs: |x|, unsigned; below, c < 0: the
# negative x by magnitude, above every positive one, unsigned; above: the bits
# as a signed integer, which order the positive x; small, c > 0: the bits'
# complement, unsigned, which orders the positive x downwards) -- one or
# two integer operations per vector beside the stores. Only if it exceeds the
# cut's key, a second pass computes the elements beyond the cut (by the float
# test) in float64, parameters widened, and writes them over the first pass's
# results: no result depends on its neighbours, and where no x is beyond the
# cut -- every ordinary input -- the cost is the key in the loop (a float
# compare and an or there cost 6-10 % of softplus' backward; NaN's key is the
# largest, and the float test picks nothing). The second pass reads x and g
# again: a span function never writes its inputs (in place runs through a
# buffer, _buf2). float64 runs the plain loop.
_TESTS = {"abs": "abs({v}) > c", "below": "{v} < c", "above": "{v} > c", "small": "{v} < c"}
_KEYS = {"abs": "_abs_key({v})", "below": "np.uint32(_as_int({v}))", "above": "_as_int({v})",
         "small": "np.uint32(~_as_int({v}))"}


@numba.extending.register_jitable(inline="always")
def _abs_key(v):
    """|v|'s order as an unsigned integer of float32 bits (the "abs" key)."""
    return np.uint32(_as_int(v) & np.int32(0x7fffffff))
_KEY0 = {"abs": "np.uint32(0)", "below": "np.uint32(0)", "above": "np.int32(-0x80000000)", "small": "np.uint32(0)"}


def _tail_template(test, cut, table=None):
    hit = _TESTS[test].format(v="b[i]")
    key = _KEYS[test]
    return (
        f"def {{name}}_f(a, b, out, p0, p1, p2, p3):\n"
        f"    m = {_KEY0[test]}\n"
        f"    for i in range(a.shape[0]):\n"
        f"        out[i] = {{op}}(a[i], b[i], p0, p1, p2, p3)\n"
        f"        m = max(m, {key.format(v='b[i]')})\n"
        f"    return m\n"
        f"def {{name}}_w(a, b, p0, p1, p2, p3):\n"
        f"    return {{op}}(np.float64(a), np.float64(b), np.float64(p0), np.float64(p1), np.float64(p2),\n"
        f"                  np.float64(p3))\n"
        f"def {{name}}_s(a, b, out, p0, p1, p2, p3):\n"
        f"{_table_guard(table, 'a, b')}"  # the table kernel computes the tail itself
        f"    if not _is_f32(b):\n"
        f"        for i in range(a.shape[0]):\n"
        f"            out[i] = {{op}}(a[i], b[i], p0, p1, p2, p3)\n"
        f"        return\n"
        f"    c = _scalar.{cut}(p0, p1, p2, p3)\n"
        f"    if {{name}}_f(a, b, out, p0, p1, p2, p3) > {key.format(v='c')}:\n"
        f"        for i in range(a.shape[0]):\n"
        f"            if {hit}:\n"
        f"                out[i] = {{name}}_w(a[i], b[i], p0, p1, p2, p3)\n"
        f"def {{name}}_c(ap, bp, outp, n, p0, p1, p2, p3):\n"
        f"    {{name}}_s(carray(ap, n), carray(bp, n), carray(outp, n), p0, p1, p2, p3)\n"
    )


@numba.extending.intrinsic
def _ptr(typingctx, arr, i):
    """The address of arr[i] (1-D, C-contiguous) as a pointer, for a span function."""
    sig = numba.types.CPointer(arr.dtype)(arr, i)

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        return builder.gep(ary.data, [args[1]])

    return sig, codegen


@numba.extending.intrinsic
def _same_data(typingctx, a, b):
    """Whether two arrays start at the same address (an in-place call: out is x)."""
    sig = numba.types.boolean(a, b)

    def codegen(context, builder, sig, args):
        pa = context.make_array(sig.args[0])(context, builder, args[0]).data
        pb = context.make_array(sig.args[1])(context, builder, args[1]).data
        return builder.icmp_unsigned("==", builder.ptrtoint(pa, llvmir.IntType(64)), builder.ptrtoint(pb, llvmir.IntType(64)))

    return sig, codegen


def _float_max_intrinsic(llvm_name, fastmath, doc):
    """An intrinsic (a, b) -> llvm.<llvm_name>(a, b) for two floats of one
    type, the call carrying the fast-math flags ``fastmath``."""
    @numba.extending.intrinsic
    def fmax(typingctx, a, b):
        sig = a(a, b)

        def codegen(context, builder, sig, args):
            t = args[0].type
            name = f"llvm.{llvm_name}.f32" if t == llvmir.FloatType() else f"llvm.{llvm_name}.f64"
            fn = cgutils.get_or_insert_function(builder.module, llvmir.FunctionType(t, [t, t]), name)
            return builder.call(fn, args, fastmath=fastmath)

        return sig, codegen

    fmax.__doc__ = doc
    return fmax


_maximum = _float_max_intrinsic("maximum", (), """llvm.maximum: the larger of two floats, NaN if either is NaN.

    ``m[k] = v if v > m[k] else m[k]`` stores the old value back where the
    test fails, and LLVM turns that into a conditional store, vectorised as
    vmaskmovps, which is microcoded on AMD CPUs (a column max over 1e5
    float32: 48 us; with this, 8.6 us).
    """)

_maxnum_loose = _float_max_intrinsic("maxnum", ("nnan", "nsz"), """llvm.maxnum with the nnan and nsz flags: the
    larger of two floats where neither is NaN, either zero of two; LLVM
    vectorises it as a reduction to one vmaxps a vector, where llvm.maximum
    (_maximum) takes seven. With a NaN operand the result is unspecified:
    only for a row maximum whose NaN reaches the result anyway (_max_row).
    """)


@numba.extending.intrinsic
def _call_at(typingctx, addr, args):
    """Call the C function at address ``addr`` with the values of the tuple ``args``, returning nothing.

    The span functions' address is passed as an integer: a cfunc object as the
    argument costs ~4 us a call to unbox.
    """
    sig = numba.types.void(addr, args)

    def codegen(context, builder, sig, llargs):
        vals = [builder.extract_value(llargs[1], i) for i in range(len(sig.args[1]))]
        fnty = llvmir.FunctionType(llvmir.VoidType(), [v.type for v in vals])
        builder.call(builder.inttoptr(llargs[0], fnty.as_pointer()), vals)
        return context.get_dummy_value()

    return sig, codegen


@numba.extending.intrinsic
def _at(typingctx, p, i):
    """p + i, for a pointer p: the start of a thread's span in a pointer kernel."""
    sig = p(p, i)

    def codegen(context, builder, sig, args):
        return builder.gep(args[0], [args[1]])

    return sig, codegen


# The parallel kernels of the elementwise ops, one per arity: thread t runs the
# span function f on its share of the n elements. They take pointers, and
# numba.cfunc wrappers of them (par_cfunc) are what the backend calls, from C
# (fastact._fastpath.par1/par2), when that is built: a numba entry point
# unboxes every argument, two ndarrays among them. _spans1..3 take the arrays,
# for the calls through numba's dispatcher (the workqueue layer, no _fastpath).
@njit(parallel=True, **PAR_OPTS)
def _pspans1(f, ap, op, n, p0, p1, p2, p3, nthreads):
    for t in prange(nthreads):
        lo = t * n // nthreads
        hi = (t + 1) * n // nthreads
        _call_at(f, (_at(ap, lo), _at(op, lo), hi - lo, p0, p1, p2, p3))


@njit(parallel=True, **PAR_OPTS)
def _pspans2(f, ap, bp, op, n, p0, p1, p2, p3, nthreads):
    for t in prange(nthreads):
        lo = t * n // nthreads
        hi = (t + 1) * n // nthreads
        _call_at(f, (_at(ap, lo), _at(bp, lo), _at(op, lo), hi - lo, p0, p1, p2, p3))


@njit(parallel=True, **PAR_OPTS)
def _pspans3(f, ap, bp, cp, op, n, p0, p1, p2, p3, nthreads):
    for t in prange(nthreads):
        lo = t * n // nthreads
        hi = (t + 1) * n // nthreads
        _call_at(f, (_at(ap, lo), _at(bp, lo), _at(cp, lo), _at(op, lo), hi - lo, p0, p1, p2, p3))


@njit(**PAR_OPTS)
def _spans1(f, a, out, p0, p1, p2, p3, nthreads):
    _pspans1(f, _ptr(a, 0), _ptr(out, 0), a.shape[0], p0, p1, p2, p3, nthreads)


@njit(**PAR_OPTS)
def _spans2(f, a, b, out, p0, p1, p2, p3, nthreads):
    _pspans2(f, _ptr(a, 0), _ptr(b, 0), _ptr(out, 0), a.shape[0], p0, p1, p2, p3, nthreads)


@njit(**PAR_OPTS)
def _spans3(f, a, b, c, out, p0, p1, p2, p3, nthreads):
    _pspans3(f, _ptr(a, 0), _ptr(b, 0), _ptr(c, 0), _ptr(out, 0), a.shape[0], p0, p1, p2, p3, nthreads)


_SPANS = {1: _spans1, 2: _spans2, 3: _spans3}


# The span function f on the whole arrays, on the calling thread (where
# fastact._fastpath's span1/span2 are not built).
@njit(**OPTS)
def _span_serial1(f, a, out, p0, p1, p2, p3):
    _call_at(f, (_ptr(a, 0), _ptr(out, 0), a.shape[0], p0, p1, p2, p3))


@njit(**OPTS)
def _span_serial2(f, a, b, out, p0, p1, p2, p3):
    _call_at(f, (_ptr(a, 0), _ptr(b, 0), _ptr(out, 0), a.shape[0], p0, p1, p2, p3))


@njit(**OPTS)
def _span_serial3(f, a, b, c, out, p0, p1, p2, p3):
    _call_at(f, (_ptr(a, 0), _ptr(b, 0), _ptr(c, 0), _ptr(out, 0), a.shape[0], p0, p1, p2, p3))


_SPAN_SERIAL = {1: _span_serial1, 2: _span_serial2, 3: _span_serial3}


def _par_c1(f, ap, op, n, p0, p1, p2, p3, nthreads):
    _pspans1(f, ap, op, n, p0, p1, p2, p3, nthreads)


def _par_c2(f, ap, bp, op, n, p0, p1, p2, p3, nthreads):
    _pspans2(f, ap, bp, op, n, p0, p1, p2, p3, nthreads)


_PAR_C = {1: _par_c1, 2: _par_c2}


def _cfunc_of(memo, key, fn, dtype, params):
    """fn as a cfunc returning nothing, for ``dtype`` (compiled or loaded from
    the cache on first use), kept in memo[key]; ``params`` spells its
    parameters: P a pointer to the dtype, T the dtype, i intp, 4 int32."""
    f = memo.get(key)
    if f is None:
        T = numba.from_dtype(dtype)
        kinds = {"P": numba.types.CPointer(T), "T": T, "i": numba.types.intp, "4": numba.types.int32}
        f = memo[key] = numba.cfunc(numba.types.void(*(kinds[c] for c in params)), **OPTS)(fn)
    return f


_PAR_CFUNCS = {}  # (arity, dtype) -> cfunc


def par_cfunc(arity, dtype):
    """The cfunc (f, in..., out, n, p0, p1, p2, p3, nthreads) of the parallel
    kernel of ``arity`` (1 or 2) input arrays of ``dtype``: pointers, the
    span function's address f, the parameters in the dtype. Compiled (or
    loaded from the cache) on first use. It holds the GIL on entry, as the
    parallel kernels do (PAR_OPTS)."""
    dtype = np.dtype(dtype)
    return _cfunc_of(_PAR_CFUNCS, (arity, dtype), _PAR_C[arity], dtype, "i" + "P" * (arity + 1) + "iTTTTi")


# Through a buffer: the span function writes BUF elements at a time into a
# small buffer, copied to out after each block. Two uses:
# - In place (out is one of the inputs): a loop that reads an array and writes
#   the same one fails the vectoriser's runtime alias check and runs its scalar
#   version (sigmoid at 1e5 float32: 267 us against 46 out of place); the
#   caller passes the identical array object for out and the aliased input.
# - Streaming (``stream``, a result of at least _config.stream_min_bytes()):
#   each whole block on a 64-byte boundary of out is copied with non-temporal
#   stores (_stream_copy), which do not read the lines they overwrite; the
#   blocks before out's first boundary, and the last, with plain stores. The
#   Cython backend's _stream_u_ (_elementwise.pxi) is the same scheme.
# The block is the buffer's length: BUF when streaming; INPLACE_BUF in place,
# where every block pays a call of the span function and its set-up (gelu's
# driver: about 1.1 us a block), which a longer block spreads.
BUF = 1024
INPLACE_BUF = 8192


def _offset_within(mask, doc):
    """An intrinsic (arr, i) -> the byte offset of arr[i]'s address masked by
    ``mask`` (its place within an aligned unit of mask + 1 bytes; the address
    of an element one past the end is fine: nothing is read)."""
    @numba.extending.intrinsic
    def offset(typingctx, arr, i):
        sig = numba.types.intp(arr, i)

        def codegen(context, builder, sig, args):
            p = context.make_array(sig.args[0])(context, builder, args[0]).data
            a = builder.ptrtoint(builder.gep(p, [args[1]]), llvmir.IntType(64))
            return builder.and_(a, llvmir.Constant(llvmir.IntType(64), mask))

        return sig, codegen

    offset.__doc__ = doc
    return offset


_line_offset = _offset_within(63, "The byte offset of arr[i] within its 64-byte cache line.")
_page_offset = _offset_within(4095, "The byte offset of arr[i] within its 4 KiB page.")


# Elementwise loops start their stores at out's 64-byte boundary: a vector
# store that straddles two cache lines costs two, and NumPy's allocations are
# 16-byte aligned (torch's, 64). Each serial loop (<op>_s, which the span
# functions call for each thread's span) runs the elements before the boundary
# as a loop of their own, then the rest from it (_wrap_aligned). 1e5 float32
# relu forward, out at 16 mod 64 against 0 mod 64, before: one thread 11.3
# against 8.9 us, two threads 8.1 against 6.9; after, 8.9-9.7 and 6.8-7.0
# for either. Short arrays (below ALIGN_MIN) run as they are.
ALIGN_MIN = 256


@njit(**OPTS)
def _to_line(out, s):
    """Elements from out[s] to out's next 64-byte boundary (0: out[s] is on
    one, or out is not aligned to its element size and never gets there)."""
    off = _line_offset(out, s)
    if off % out.itemsize:
        return 0
    return ((64 - off) % 64) // out.itemsize


@njit(**OPTS)
def _store_head(out):
    """Elements of out before its first 64-byte boundary (0 also for a short array)."""
    return 0 if out.shape[0] < ALIGN_MIN else _to_line(out, 0)


# The ops in PREFETCH run a float32 span of at least PF_MIN elements in
# blocks of PF_BLOCK, each block's loop preceded by a software prefetch of
# the first line of every 4 KiB page of the next block of every input
# (_prefetch_range). Their loops are slow enough per element that they
# waited on memory at 1e7 where 1e6 calls ran from the cache; gelu's tanh
# form most (its forward: the cubic in double-float arithmetic, the sigmoid
# with a first-order correction). 1e7 float32, ms, alternating runs, 2
# threads allocating: gelu tanh 6.0-12.6 -> 3.7-4.6 (one thread 27.5-28.6 ->
# 8.5-8.6), mish 2.8-3.3 -> 2.3-2.6, softplus (beta = 1) 5.5-5.8 ->
# 4.7-5.1, log_sigmoid 4.9-5.3 -> 4.7-4.9; at 1e6 mish 0.30-0.31 ->
# 0.21-0.23, gelu tanh 0.38-0.44 -> 0.34-0.39, the others unchanged. The
# same blocks with a prefetch per 64-byte line did as well for gelu's tanh
# form (4.4-4.7) and cost more where the data came from the cache: given to every elementwise op
# (blocks of 2048) they slowed the others (1e6: gelu 0.14 -> 0.19, softplus
# backward 0.21 -> 0.33; 1e7: sigmoid 1.46 -> 1.7-1.8); one per page slowed
# the table kernels (sigmoid 1e7 1.45 -> 1.6-1.7). float64 came out mixed
# (gelu tanh, per line: allocating 8.6-8.8 -> 10.4-10.5, into one out
# 12.9-17.8 -> 10.2) and runs as it was, as in the Cython backend
# (_elementwise.pxi.in, PREFETCH_F32). Prefetching out as well (for writing)
# was slower than no prefetch; blocks of 512 to 8192 and prefetching 1 to 8
# blocks ahead came within a few per cent of each other.
PREFETCH = ("fwd_gelu_tanh", "fwd_softplus", "fwd_softplus_beta1", "fwd_log_sigmoid", "fwd_mish")
PF_MIN = 1 << 17
PF_BLOCK = 4096
PF_ROWS_MIN = 1 << 22  # the softmax family's backward rows (_bwd_rows_range)


# log_softmax's backward rows prefetch the next row (_bwd_rows_range) unless
# the CPU is an AMD one with AVX-512, as the Cython backend's (_axis.pxi,
# _rows_prefetch): on an AMD EPYC with AVX-512 (Zen 4) they lost. 1e7 float32
# in rows of 1000, 2 threads, min / p25 of 90 calls in turns with PyTorch's
# kernel (2.70-2.84 / 2.88-2.96 ms), two runs each: 3.86-4.27 / 3.97-4.44
# with them, 2.68-2.75 / 2.89-2.93 without. On an Intel Xeon with AVX-512
# (2026-12-06) they win, as on the AVX2 EPYC (Zen 2): min of 15 rounds of 3
# calls in turns, two runs, ms: 3.25-3.41 without, 2.98-3.05 with, PyTorch
# 3.74-4.03. The CPU's, not numba's target: a constant of the compiled code,
# as numba's cache is per CPU.
ROWS_PF = not (_tab.host_has_avx512() and _tab.host_is_amd())


@numba.extending.intrinsic
def _prefetch(typingctx, arr, i):
    """Prefetch arr[i]'s line for reading, into every cache level (prefetcht0)."""
    sig = numba.types.void(arr, i)

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        p8 = builder.bitcast(builder.gep(ary.data, [args[1]]), llvmir.IntType(8).as_pointer())
        i32 = llvmir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, llvmir.FunctionType(llvmir.VoidType(), [p8.type, i32, i32, i32]),
                                            "llvm.prefetch.p0i8")
        builder.call(fn, [p8, i32(0), i32(3), i32(1)])  # read, highest locality, data
        return context.get_dummy_value()

    return sig, codegen


@njit(**OPTS)
def _prefetch_range(a, lo, hi, step):
    """Prefetch a[lo:hi] for reading, one line every ``step`` bytes from a[lo]
    on: 4096, a page (the PREFETCH ops' blocks), or 64, every line (the
    softmax family's backward rows). As _fastact_cpu.h's fastact_prefetch."""
    for j in range(lo, hi, step // a.itemsize):
        _prefetch(a, j)


def _wrap_aligned(src, name, arity, prefetch=False):
    """The generated source with its ``<name>_s`` renamed ``<name>_l`` and a
    new ``<name>_s`` that calls it on the part of the arrays before out's
    first 64-byte boundary and on the rest (_store_head); with ``prefetch``,
    the rest in blocks with the inputs prefetched from PF_MIN elements on."""
    args = ", ".join("abc"[:arity])
    head = ", ".join(f"{v}[:h]" for v in "abc"[:arity])
    rest = ", ".join(f"{v}[h:]" for v in "abc"[:arity])
    block = ", ".join(f"{v}[s:e]" for v in "abc"[:arity])
    fetch = "".join(f"            _prefetch_range({v}, e, min(e + PF_BLOCK, n), 4096)\n" for v in "abc"[:arity])
    src = src.replace(f"def {name}_s(", f"def {name}_l(")
    blocks = (
        f"    n = out.shape[0]\n"
        f"    if out.itemsize == 4 and n >= PF_MIN:\n"
        f"        if h > 0:\n"
        f"            {name}_l({head}, out[:h], p0, p1, p2, p3)\n"
        f"        s = h\n"
        f"        while s < n:\n"
        f"            e = min(s + PF_BLOCK, n)\n"
        f"{fetch}"
        f"            {name}_l({block}, out[s:e], p0, p1, p2, p3)\n"
        f"            s = e\n"
        f"        return\n"
    ) if prefetch else ""
    return src + (
        f"def {name}_s({args}, out, p0, p1, p2, p3):\n"
        f"    h = _store_head(out)\n"
        f"{blocks}"
        f"    if h == 0:\n"
        f"        {name}_l({args}, out, p0, p1, p2, p3)\n"
        f"    else:\n"
        f"        {name}_l({head}, out[:h], p0, p1, p2, p3)\n"
        f"        {name}_l({rest}, out[h:], p0, p1, p2, p3)\n"
    )


# The buffered drivers' blocks (BUF, INPLACE_BUF) are whole multiples of 4 KiB,
# so a block's loads from the input and its stores to the buffer (and the
# buffer's loads and the stores to out) keep one offset from each other modulo
# 4 KiB for the whole call. Where that offset is within a few hundred bytes the
# loads wait on stores to other addresses with the same low 12 bits (4K
# aliasing): 1e7 float32 hardtanh, one thread, the buffer at the input's offset
# 4.1 ms, anywhere from 128 bytes away 2.8-3.0 ms (a buffer from np.empty
# lands wherever the heap puts it: Numba's streamed cheap kernels ran 1.4-1.6x
# slower than Cython's in some processes and runs, not in others). So the
# buffer is placed: 4 KiB of slack, and a start on a 64-byte line, half a page
# (or a quarter) from every array the call reads or writes, as the Cython
# backend's fastact_place_buf (whose loops store to the buffer unaligned: off a
# line, each vector's store spanned two). The span functions align their
# stores to the buffer themselves; a buffer on a line spares them the head.
def _far(t, p):
    d = (t - p) % 4096
    return 512 <= d <= 3584


_far = njit(**OPTS)(_far)


@njit(**OPTS)
def _place_buf(row, blen, pa, pb, po):
    """A blen-element view of row (blen + 4096 bytes long) starting on a 64-byte
    line at least 512 bytes from the page offsets pa, pb, po (bytes) modulo 4 KiB
    (candidates from pa's line: the nearest, 576 bytes on, is 513-576 from pa)."""
    pa -= pa % 64
    t = (pa + 2048) % 4096
    for c in (2048, 1024, 3072, 576, 3584, 1536, 2560):
        t = (pa + c) % 4096
        if _far(t, pb) and _far(t, po):
            break
    k = ((t - _page_offset(row, 0)) % 4096) // row.itemsize
    return row[k:k + blen]


@numba.extending.intrinsic
def _stream_copy(typingctx, buf, out, s, m):
    """out[s:s + m] = buf[:m] with non-temporal stores of 64 bytes: out[s] on a
    64-byte boundary, m elements a multiple of 64 bytes; buf any alignment."""
    sig = numba.types.void(buf, out, s, m)

    def codegen(context, builder, sig, args):
        i64 = llvmir.IntType(64)
        vt = llvmir.VectorType(llvmir.IntType(32), 16).as_pointer()
        src = builder.bitcast(context.make_array(sig.args[0])(context, builder, args[0]).data, vt)
        dst = context.make_array(sig.args[1])(context, builder, args[1]).data
        dst = builder.bitcast(builder.gep(dst, [args[2]]), vt)
        size = context.get_abi_sizeof(context.get_data_type(sig.args[1].dtype))
        count = builder.udiv(builder.mul(args[3], llvmir.Constant(i64, size)), llvmir.Constant(i64, 64))
        nt = builder.module.add_metadata([llvmir.Constant(llvmir.IntType(32), 1)])
        with cgutils.for_range(builder, count) as loop:
            v = builder.load(builder.gep(src, [loop.index]), align=4)
            st = builder.store(v, builder.gep(dst, [loop.index]), align=64)
            st.set_metadata("nontemporal", nt)
        return context.get_dummy_value()

    return sig, codegen


_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")


@numba.extending.intrinsic
def _sfence(typingctx):
    """sfence: the non-temporal stores before it are ordered before the stores after it
    (elsewhere than x86, LLVM's sequentially consistent fence)."""
    sig = numba.types.void()

    def codegen(context, builder, sig, args):
        if _X86:
            fn = cgutils.get_or_insert_function(builder.module, llvmir.FunctionType(llvmir.VoidType(), []),
                                                "llvm.x86.sse.sfence")
            builder.call(fn, [])
        else:  # pragma: no cover - not x86
            builder.fence("seq_cst")
        return context.get_dummy_value()

    return sig, codegen


@njit(**OPTS)
def _block(out, s, hi, stream, blk):
    """The length of the block at out[s]: blk (or what is left), cut at out's
    next 64-byte boundary when streaming and out[s] is not on one; from a
    boundary, whole lines (the rest, under a line, a block of its own), which
    _put copies non-temporally."""
    m = min(hi - s, blk)
    h = _to_line(out, s)
    if stream and h > 0:
        m = min(m, h)
    elif stream and m * out.itemsize > 64:
        m -= m % (64 // out.itemsize)
    return m


@njit(**OPTS)
def _put(buf, out, s, m, stream):
    """out[s:s + m] = buf[:m]: non-temporal stores for whole lines from a line boundary."""
    if stream and _line_offset(out, s) == 0 and (m * out.itemsize) % 64 == 0:
        _stream_copy(buf, out, s, m)
        return
    # indexed from 0 (out[s + i] would carry negative-index wraparound), through a
    # view without a meminfo: a slice's refcount ops are locked instructions, which
    # wait on the non-temporal stores before them (see _prelu_fwd_stream)
    o = carray(_ptr(out, s), m)
    for i in range(m):
        o[i] = buf[i]


@njit(**OPTS)
def _buf1(f, a, out, lo, hi, buf, stream, p0, p1, p2, p3):
    s = lo
    while s < hi:
        m = _block(out, s, hi, stream, buf.shape[0])
        _call_at(f, (_ptr(a, s), _ptr(buf, 0), m, p0, p1, p2, p3))
        _put(buf, out, s, m, stream)
        s += m
    if stream:
        _sfence()


@njit(**OPTS)
def _buf2(f, a, b, out, lo, hi, buf, stream, p0, p1, p2, p3):
    s = lo
    while s < hi:
        m = _block(out, s, hi, stream, buf.shape[0])
        _call_at(f, (_ptr(a, s), _ptr(b, s), _ptr(buf, 0), m, p0, p1, p2, p3))
        _put(buf, out, s, m, stream)
        s += m
    if stream:
        _sfence()


@njit(**OPTS)
def _buf3(f, a, b, c, out, lo, hi, buf, stream, p0, p1, p2, p3):
    s = lo
    while s < hi:
        m = _block(out, s, hi, stream, buf.shape[0])
        _call_at(f, (_ptr(a, s), _ptr(b, s), _ptr(c, s), _ptr(buf, 0), m, p0, p1, p2, p3))
        _put(buf, out, s, m, stream)
        s += m
    if stream:
        _sfence()


@njit(**OPTS)
def _buf_rows(rows, n, stream, out):
    """Scratch for rows buffered drivers over n elements: a buffer's length
    (BUF streaming, else INPLACE_BUF; at most n) and 4 KiB of slack each."""
    blen = min(n, BUF if stream else INPLACE_BUF)
    return np.empty((rows, blen + 4096 // out.itemsize), dtype=out.dtype)


@njit(**OPTS)
def _placed(row, a, b, out, lo):
    """The buffer inside a _buf_rows row for a span from lo, placed by _place_buf."""
    blen = row.shape[0] - 4096 // row.itemsize
    return _place_buf(row, blen, _page_offset(a, lo), _page_offset(b, lo), _page_offset(out, lo))


@njit(parallel=True, **PAR_OPTS)
def _inplace1(f, a, out, stream, p0, p1, p2, p3, nthreads):
    n = a.shape[0]
    bufs = _buf_rows(nthreads, n, stream, out)
    for t in prange(nthreads):
        lo = t * n // nthreads
        _buf1(f, a, out, lo, (t + 1) * n // nthreads, _placed(bufs[t], a, a, out, lo), stream, p0, p1, p2, p3)


@njit(parallel=True, **PAR_OPTS)
def _inplace2(f, a, b, out, stream, p0, p1, p2, p3, nthreads):
    n = a.shape[0]
    bufs = _buf_rows(nthreads, n, stream, out)
    for t in prange(nthreads):
        lo = t * n // nthreads
        _buf2(f, a, b, out, lo, (t + 1) * n // nthreads, _placed(bufs[t], a, b, out, lo), stream, p0, p1, p2, p3)


@njit(parallel=True, **PAR_OPTS)
def _inplace3(f, a, b, c, out, stream, p0, p1, p2, p3, nthreads):
    n = a.shape[0]
    bufs = _buf_rows(nthreads, n, stream, out)
    for t in prange(nthreads):
        lo = t * n // nthreads
        _buf3(f, a, b, c, out, lo, (t + 1) * n // nthreads, _placed(bufs[t], a, b, out, lo), stream, p0, p1, p2, p3)


@njit(**OPTS)
def _inplace1_serial(f, a, out, stream, p0, p1, p2, p3):
    _buf1(f, a, out, 0, a.shape[0], _placed(_buf_rows(1, a.shape[0], stream, out)[0], a, a, out, 0), stream,
          p0, p1, p2, p3)


@njit(**OPTS)
def _inplace2_serial(f, a, b, out, stream, p0, p1, p2, p3):
    _buf2(f, a, b, out, 0, a.shape[0], _placed(_buf_rows(1, a.shape[0], stream, out)[0], a, b, out, 0), stream,
          p0, p1, p2, p3)


@njit(**OPTS)
def _inplace3_serial(f, a, b, c, out, stream, p0, p1, p2, p3):
    _buf3(f, a, b, c, out, 0, a.shape[0], _placed(_buf_rows(1, a.shape[0], stream, out)[0], a, b, out, 0), stream,
          p0, p1, p2, p3)


_INPLACE = {1: (_inplace1_serial, _inplace1), 2: (_inplace2_serial, _inplace2), 3: (_inplace3_serial, _inplace3)}


class Spans:
    """The parallel kernel of one elementwise op: ``_spans<arity>`` with the op's span function.

    ``span(dtype)`` is the op's cfunc for that dtype, compiled (or loaded from the
    cache) on first use; ``kernel(span.address, arrays..., p0..p3, nthreads)`` runs
    it on every thread's span, and calling the object does that in one step.
    """

    def __init__(self, ns, name, arity, cache):
        self._ns, self._name, self.arity, self._cache = ns, name, arity, cache
        self.kernel = _SPANS[arity]
        self.serial = _SPAN_SERIAL[arity]  # kernel's serial form: serial(f, arrays..., p0..p3)
        self.inplace_serial, self.inplace = _INPLACE[arity]  # out is one of the inputs
        self.spans = {}  # (dtype, streamed) -> cfunc
        self.has_nt = name + "_nt" in ns

    def span(self, dtype, nt=False):
        """The span function for ``dtype``; ``nt``: the streamed one (float32, NT_OPS)."""
        dtype = np.dtype(dtype)
        f = self.spans.get((dtype, nt))
        if f is None:
            T = numba.from_dtype(dtype)
            P = numba.types.CPointer(T)
            sig = numba.types.void(*([P] * (self.arity + 1)), numba.types.intp, T, T, T, T)
            fn = self._ns[self._name + ("_nt" if nt else "_c")]
            f = self.spans[(dtype, nt)] = numba.cfunc(sig, **dict(OPTS, cache=self._cache))(fn)
        return f

    def __call__(self, *args):
        return self.kernel(self.span(args[0].dtype).address, *args)


INSTANCES = {}  # (op, arity) -> (serial, parallel); for tests and tools


def _instantiate(op, arity, cache=True):
    """(serial dispatcher, parallel Spans) of the ``arity`` loop around ``_scalar.<op>``."""
    table = TABLE_OPS.get((op, arity))
    staged = STAGED_OPS.get((op, arity))
    name = f"_k_{op}_{_HASH}" + ("_tab" if table else "") + ("_st" if staged else "")
    tail = _scalar.TAIL.get(op) if arity == 2 else None
    template = (_tail_template(*tail, table) if tail else _template(arity, table, staged) if table or staged
                else _TEMPLATES[arity])
    src = _wrap_aligned(template.format(name=name, op=f"_scalar.{op}"), name, arity, op in PREFETCH)
    lane = NT_OPS.get((op, arity))
    if lane:  # the streamed span function (Spans.span(dtype, True))
        ptrs = ", ".join(f"{v}p" for v in "abc"[:arity])
        src += (f"def {name}_nt({ptrs}, outp, n, p0, p1, p2, p3):\n"
                f"    _tab.{lane}_nt({ptrs}, outp, n, p0, p1, p2, p3)\n")
    ns = dict(globals())  # the span function finds the compiled serial one here
    exec(compile(src, __file__, "exec"), ns)
    opts = dict(OPTS, cache=cache)
    for part in ("_f", "_w") if tail else ():
        ns[name + part] = njit(**opts)(ns[name + part])
    ns[name + "_l"] = njit(**opts)(ns[name + "_l"])
    ns[name + "_s"] = njit(**opts)(ns[name + "_s"])
    pair = ns[name + "_s"], Spans(ns, name, arity, cache)
    if cache:
        INSTANCES[(op, arity)] = pair
    return pair


# rrelu in training mode: the slope is an array.
@numba.extending.register_jitable
def _rrelu_fwd(x, s, p0, p1, p2, p3):
    return x if x > 0 else x * s


@numba.extending.register_jitable
def _rrelu_bwd(g, x, s, p0, p1, p2, p3):
    return g if x > 0 else g * s


_scalar.fwd_rrelu = _rrelu_fwd
_scalar.bwd_rrelu = _rrelu_bwd


# glu's forward on its two halves, as an elementwise pair: the glu kernel calls its
# span function per task (see _glu_fwd).
@numba.extending.register_jitable
def _glu_halves(a, b, p0, p1, p2, p3):
    return a * _sigmoid(b)


_scalar.fwd_glu_halves = _glu_halves
_scalar.TAIL["fwd_glu_halves"] = ("below", "cut_neg80")  # a * sigmoid(b): F = sigmoid(b)


# Parallel kernels take ``nthreads`` but do not call numba.set_num_threads
# themselves: that call makes a function uncacheable ("uses dynamic globals",
# measured); backend._run sets the count from Python just before the call.

# ----------------------------------------------------------------- tasks
# prelu's backward splits its work into tasks of at most CHUNK elements of a
# channel's span, so that a single long span still uses every thread (the
# other row kernels give each thread an equal share of the flat indices).
CHUNK = 16384


@njit(cache=True)
def _cdiv(a, b):
    return (a + b - 1) // b


# ------------------------------------------------------------ span helpers
# Helpers take 1-D views already sliced to their span and loop from 0. With
# range(lo, hi) numba keeps its negative-index wraparound test on every access
# (the index could be negative) and the loop stays scalar -- measured: the glu
# span over 5e6 elements took 14.6 ms that way, 1.85 ms as a 0-based loop.

# Reductions: without reassociation LLVM will not vectorise a float sum or a
# float max written as a select. The max is llvm.maximum (_maximum), which it
# vectorises as a reduction; the sums live in functions of their own compiled with
# 'reassoc' that hold only additions, so only the summation order changes
# (several vector partial sums, in float64). They must stay separate
# functions: reassoc would also apply to code inlined with them and undo the
# magic-number rounding in _math.exp.
SUM_OPTS = dict(OPTS, fastmath={"contract", "reassoc"})


@njit(**SUM_OPTS)
def _sum64(a):
    s = 0.0
    for j in range(a.shape[0]):
        s += np.float64(a[j])
    return s


@njit(**SUM_OPTS)
def _dot64(a, b):
    s = 0.0
    for j in range(a.shape[0]):
        s += np.float64(a[j]) * np.float64(b[j])
    return s


# float32 rows of DOT4_MIN and more (softmax's and softmin's backward from y;
# the Cython backend's _SHORT_ROW), on AVX-512: the sum of g*y as the Cython
# build forms it (_tab.dot4: float32 sums of four products, 16 lanes of
# float64 sums; _axis.pxi's _dot_f32 has the why and the bound), the same
# bits. Elsewhere, and for shorter rows, the exact sum (_dot64). 1e5
# float32 in rows of 1000, one thread, the dots alone in one compiled loop:
# _dot64 10.5-11.9 us; LLVM's best of the grouped forms written as loops
# here (a row's quarters) 8.8-9.3: it vectorises by 8 for the float64 sum,
# 16 loads of 8 floats per 32 products.
DOT4_MIN = 256


@njit(inline="always", **OPTS)
def _dot_row(a, b):
    # softmax's and softmin's row sum of g*y (see DOT4_MIN)
    if a.shape[0] >= DOT4_MIN:
        return _tab.dot4(a, b)
    return _dot64(a, b)


@njit(**OPTS)
def _max_scaled(x, sign):
    """max(sign*x) by llvm.maximum, which LLVM vectorises as a reduction: NaN
    if any element is NaN (the row is NaN either way, through the sums). The
    integer max over order_key that it replaces took 24 us per 1e5 float32
    in rows of 1000 on one thread; this, 16 us."""
    m = sign * x[0]
    for j in range(x.shape[0]):
        m = _maximum(m, sign * x[j])
    return m


@njit(**OPTS)
def _max_row(x, sign):
    """max(sign*x) for a softmax row, by _maxnum_loose: where the row holds a
    NaN the value is unspecified, but that NaN reaches every output through
    exp(x - m) and the row's sum, so the row is NaN all the same (its zeros'
    signs do not reach an output either: x - m only meets the sum's log, and
    a row with two zeros sums to at least 2). 1e5 float32 in rows of 1000, one
    thread, inside one compiled loop: 5.1 us against _max_scaled's 12.5."""
    m = sign * x[0]
    for j in range(x.shape[0]):
        m = _maxnum_loose(m, sign * x[j])
    return m


@njit(**OPTS)
def _sum_partials(ps):
    """ps[o, 0] = sum over c of ps[o, c]: combines per-chunk partial sums."""
    for o in range(ps.shape[0]):
        s = ps[o, 0]
        for c in range(1, ps.shape[1]):
            s += ps[o, c]
        ps[o, 0] = s


@njit(**OPTS)
def _max_partials(pm):
    """pm[o, 0] = max over c of pm[o, c], NaN if any is, as in _max_scaled."""
    for o in range(pm.shape[0]):
        m = pm[o, 0]
        for c in range(1, pm.shape[1]):
            m = _maximum(m, pm[o, c])
        pm[o, 0] = m


# ------------------------------------------------------------ softmax family
# x is (outer, n, inner). mode: 0 softmax, 1 log_softmax; sign -1 gives softmin.
# Rows (inner == 1) and columns (inner > 1) use different loops: columns are
# processed a block of inner positions at a time so the innermost loop is
# contiguous and vectorises across positions instead of reducing.
# A row: the max, then exp(x - m) into out, its float64 sum, and the scaling
# (log_softmax: the sum of exps, then x - m - log(s)) -- every pass
# vectorised, and the row is in cache after the first.

# The Cython backend streams the last pass of a large result's long rows
# (_axis.pxi, _last_pass_st). The same scheme here (2026-12-02: the pass
# through a BUF buffer and _stream_copy, in its own function) lost at 1e7
# float32 in rows of 1000, 2 threads, interleaved: softmax's backward from y
# 0.70-0.83, log_softmax's forward 0.83-0.98 (plain / streamed, min); in 10
# rows of 1e6 it gained 3-9 %. The rows stay plain here.

BLK = 2048  # log_softmax parks exps in a buffer of this many (out may be x)

# The forward's exps have arguments <= 0 (x - max; NaN passes), so they are
# formed as _exp_up: exp * 2**S (S = 26 float32, 64 float64) with one power
# of two, normal down to exp's underflow, instead of exp's two-sided clamps
# and two-factor 2**k. softmax's e/s does not see the scale (out = e * (1/s)
# rounds once, also where it is subnormal); log_softmax scales its float64
# sum back by the exact _tail_scale before the log. Outputs are bit for bit
# as before except subnormal softmax outputs, now rounded once. 1e5 float32,
# one thread: rows of 1000 softmax 77 -> 70 us, log_softmax 93 -> 85; rows
# of 16 (blocks) softmax 173 -> 153.


@njit(**OPTS)
def _exp_scaled(v):
    return _exp_up(v, cst(v, 0.0))


@njit(**OPTS)
def _exp_shift(x, out, sign, m):
    # In place (out is x) the loop reads out itself: reading x and writing out,
    # the same memory, fails the vectoriser's runtime alias check and runs
    # scalar (softmax in place, 1e5 float32 in rows of 1000: 224 us against 65).
    if _same_data(x, out):
        for j in range(out.shape[0]):
            out[j] = _exp_scaled(sign * out[j] - m)
    else:
        for j in range(x.shape[0]):
            out[j] = _exp_scaled(sign * x[j] - m)


@njit(**OPTS)
def _row_sum(x, out, sign, mode, m):
    return _row_sum_buf(x, out, sign, mode, m, np.empty(min(x.shape[0], BLK) if mode == 1 else 0, dtype=x.dtype))


@njit(**OPTS)
def _row_sum_buf(x, out, sign, mode, m, buf):
    # log_softmax (mode 1): a row of at most BLK (out of place) takes its
    # exps in out, which _finish_row then overwrites in cache, as _rows_range
    # does; longer rows, or in place, park them in buf (min(n, BLK)
    # elements, the caller's: one per thread, not an np.empty per row).
    # 1e5 float32, one thread, against a buffer allocated per row: rows of
    # 300 1.10x, of 1000 1.16x, of 4000 1.02x (in-process A/B, same bits).
    if mode == 1:
        n = x.shape[0]
        if n <= BLK and not _same_data(x, out):
            # a row that fits the buffer: its exps go to out, which the
            # finish pass then overwrites in cache
            _exp_shift(x, out, sign, m)
            return _sum64(out)
        s = 0.0
        for lo in range(0, n, BLK):
            hi = min(n, lo + BLK)
            b = buf[: hi - lo]
            _exp_shift(x[lo:hi], b, sign, m)
            s += _sum64(b)
        return s
    _exp_shift(x, out, sign, m)
    return _sum64(out)


@njit(**OPTS)
def _finish_row(x, out, sign, mode, m, s):
    if mode == 1:
        # (x - m) first: it is exact near the maximum, m + log(s) is not.
        # s is the sum of _exp_scaled values: scaled back exactly first.
        ls = cst(m, _log(s * _tail_scale(m)))
        if _same_data(x, out):  # in place: one array (see _exp_shift)
            for j in range(out.shape[0]):
                out[j] = (sign * out[j] - m) - ls
        else:
            for j in range(x.shape[0]):
                out[j] = (sign * x[j] - m) - ls
    else:
        inv = cst(m, 1.0 / s)
        for j in range(x.shape[0]):
            out[j] = out[j] * inv


LOGCHUNK = 64  # log_softmax: rows whose sums are logged in one loop


@njit(**OPTS)
def _rows_range(x2, o2, r0, r1, sign, mode):
    # Rows r0..r1 of the (outer, n) views, each as _max_scaled, _row_sum and
    # _finish_row do it for a piece of a row, with the passes written out
    # here: called per row with the row's views, those functions cost more
    # than the arithmetic (1e5 float32 softmax on one thread: rows of 10
    # 1013 -> 362 us, of 32 342 -> 154, of 100 183 -> 133; of 1000 95 -> 99).
    # log_softmax goes by chunks of LOGCHUNK rows: each row's max and sum of
    # exps (parked in the row of out, or in buf where out is x), then the
    # chunk's logs in one vectorised loop (a scalar log per row cost more
    # than a row of 32's exps: 1e5 float32, 2 threads, rows of 32 138 -> 104
    # us), then the rows. One allocation out of place (a row of 1000 is a
    # 2 us call, and each np.empty about 0.1 us of it).
    n = x2.shape[1]
    if mode == 1:
        inplace = _same_data(x2, o2)
        buf = np.empty(min(n, BLK), dtype=x2.dtype) if inplace else o2[r0]
        ml = np.empty(2 * LOGCHUNK, dtype=np.float64)  # the maxima (exact in float64), the sums
        ms, ls = ml[:LOGCHUNK], ml[LOGCHUNK:]
        for c0 in range(r0, r1, LOGCHUNK):
            c = min(r1 - c0, LOGCHUNK)
            for k in range(c):
                xr = x2[c0 + k]
                m = _max_row(xr, sign)
                s = 0.0
                for lo in range(0, n, BLK):
                    hi = min(n, lo + BLK)
                    b = buf[: hi - lo] if inplace else o2[c0 + k][lo:hi]
                    xs = xr[lo:hi]
                    for j in range(b.shape[0]):
                        b[j] = _exp_scaled(sign * xs[j] - m)
                    s += _sum64(b)
                ms[k] = m
                ls[k] = s * _tail_scale(m)
            for k in range(c):
                ls[k] = _log(ls[k])
            for k in range(c):
                xr, orow = x2[c0 + k], o2[c0 + k]
                m = cst(sign, ms[k])
                lk = cst(sign, ls[k])
                if _same_data(xr, orow):  # in place: one array (see _exp_shift)
                    for j in range(n):
                        orow[j] = (sign * orow[j] - m) - lk
                else:
                    for j in range(n):
                        orow[j] = (sign * xr[j] - m) - lk
        return
    for o in range(r0, r1):
        xr, orow = x2[o], o2[o]
        m = _max_row(xr, sign)
        if _same_data(xr, orow):
            for j in range(n):
                orow[j] = _exp_scaled(sign * orow[j] - m)
        else:
            for j in range(n):
                orow[j] = _exp_scaled(sign * xr[j] - m)
        inv = cst(m, 1.0 / _sum64(orow))
        for j in range(n):
            orow[j] = orow[j] * inv


@njit(**OPTS)
def _softmax_row(x, out, sign, mode, buf):
    # one row through the helpers the long-row split uses: for rows of
    # LONG_ROW and more, where a row's cost dwarfs its calls, this was the
    # faster (a float32 row of 1000, log_softmax: 1.59 us, _rows_range 1.76)
    m = _max_row(x, sign)
    s = _row_sum_buf(x, out, sign, mode, m, buf)
    _finish_row(x, out, sign, mode, m, s)


LONG_ROW = 256


@njit(**OPTS)
def _rows(x2, o2, r0, r1, sign, mode):
    if x2.shape[1] >= LONG_ROW:
        buf = np.empty(min(x2.shape[1], BLK) if mode == 1 else 0, dtype=x2.dtype)
        for o in range(r0, r1):
            _softmax_row(x2[o], o2[o], sign, mode, buf)
    else:
        _rows_range(x2, o2, r0, r1, sign, mode)


@njit(parallel=True, **PAR_OPTS)
def _softmax_rows(x, out, sign, mode, nthreads):
    # x, out: (outer, n, 1), a contiguous range of rows per thread.
    outer, n = x.shape[0], x.shape[1]
    x2, o2 = x.reshape(outer, n), out.reshape(outer, n)
    for t in prange(nthreads):
        _rows(x2, o2, t * outer // nthreads, (t + 1) * outer // nthreads, sign, mode)


@njit(parallel=True, **PAR_OPTS)
def _softmax_rows_split(x, out, sign, mode, nchunk, nthreads):
    # Few long rows: each row in nchunk pieces; partial maxima and sums are
    # combined between the passes.
    outer, n = x.shape[0], x.shape[1]
    x2, o2 = x.reshape(outer, n), out.reshape(outer, n)
    clen = _cdiv(n, nchunk)
    pm = np.empty((outer, nchunk), dtype=x.dtype)
    ps = np.empty((outer, nchunk), dtype=np.float64)
    for t in prange(outer * nchunk):
        o, c = t // nchunk, t % nchunk
        lo, hi = c * clen, min(n, (c + 1) * clen)
        pm[o, c] = _max_row(x2[o, lo:hi], sign)
    _max_partials(pm)
    for t in prange(outer * nchunk):
        o, c = t // nchunk, t % nchunk
        lo, hi = c * clen, min(n, (c + 1) * clen)
        ps[o, c] = _row_sum(x2[o, lo:hi], o2[o, lo:hi], sign, mode, pm[o, 0])
    _sum_partials(ps)
    for t in prange(outer * nchunk):
        o, c = t // nchunk, t % nchunk
        lo, hi = c * clen, min(n, (c + 1) * clen)
        _finish_row(x2[o, lo:hi], o2[o, lo:hi], sign, mode, pm[o, 0], ps[o, 0])


@njit(**OPTS)
def _softmax_rows_serial(x, out, sign, mode):
    outer, n = x.shape[0], x.shape[1]
    _rows(x.reshape(outer, n), out.reshape(outer, n), 0, outer, sign, mode)


def _softmax_rows_c(xp, op, outer, n, sign, mode):
    _rows(carray(xp, (outer, n)), carray(op, (outer, n)), 0, outer, sign, mode)


_ROWS_C = {}  # dtype -> cfunc


def softmax_rows_cfunc(dtype):
    """_softmax_rows_serial as a cfunc for ``dtype`` (compiled or loaded from the
    cache on first use): (x, out, outer, n, sign, mode) on the memory of
    C-contiguous (outer, n) rows, for fastact._fastpath.rows."""
    dtype = np.dtype(dtype)
    return _cfunc_of(_ROWS_C, dtype, _softmax_rows_c, dtype, "PPiiTi")


def _softmax_bwd_rows_c(gp, yp, op, outer, n, sign, mode):
    _bwd_rows_range(carray(gp, (outer, n)), carray(yp, (outer, n)), carray(op, (outer, n)), 0, outer, sign, mode)


_BWD_ROWS_C = {}  # dtype -> cfunc


def softmax_bwd_rows_cfunc(dtype):
    """The softmax family's serial backward from y along the last axis
    (_softmax_bwd_serial's rows) as a cfunc for ``dtype`` (compiled or loaded
    from the cache on first use): (g, y, out, outer, n, sign, mode) on the
    memory of C-contiguous (outer, n) rows, for fastact._fastpath.RowsPar."""
    dtype = np.dtype(dtype)
    return _cfunc_of(_BWD_ROWS_C, dtype, _softmax_bwd_rows_c, dtype, "PPPiiTi")


def _softmax_rows_par_c(xp, yp, op, outer, n, sign, mode, nthreads):
    _softmax_rows(carray(xp, (outer, n, 1)), carray(op, (outer, n, 1)), sign, mode, nthreads)


def _softmax_bwd_rows_par_c(gp, yp, op, outer, n, sign, mode, nthreads):
    _softmax_bwd_rows(carray(gp, (outer, n, 1)), carray(yp, (outer, n, 1)), carray(op, (outer, n, 1)), sign, mode,
                      nthreads)


_ROWS_PAR_C = {}  # (dtype, backward) -> cfunc


def softmax_rows_par_cfunc(dtype, backward):
    """The softmax family's parallel rows as a cfunc for ``dtype`` (compiled or
    loaded from the cache on first use): (a, y, out, outer, n, sign, mode,
    nthreads) on the memory of C-contiguous (outer, n, 1) arrays, for
    fastact._fastpath.RowsPar; the forward (_softmax_rows, a = x, y unused)
    or the backward from y (_softmax_bwd_rows, a = g). It holds the GIL on
    entry, as the parallel kernels do (PAR_OPTS)."""
    dtype = np.dtype(dtype)
    fn = _softmax_bwd_rows_par_c if backward else _softmax_rows_par_c
    return _cfunc_of(_ROWS_PAR_C, (dtype, backward), fn, dtype, "PPPiiTii")


# Columns i0..i1 of x[o] (inner > 1), rows j0..j1: each pass runs along rows
# of the block, over 1-D views indexed from 0 (x[o, j, i] with m[i - i0]
# carried numba's negative-index wraparound). _softmax_cols_block runs the
# passes over all rows; _softmax_cols_split over pieces of the rows, the
# maxima and sums combined between the passes. 1e5 float32 as (1000, 100)
# along axis 0: 538 us before these passes, Cython 137.
@njit(**OPTS)
def _cols_max(x, o, i0, i1, j0, j1, sign, mb):
    # mb: the column maxima by llvm.maximum (a NaN wins; it makes its column
    # NaN through the sums either way)
    for k in range(i1 - i0):
        mb[k] = cst(sign, -np.inf)
    for j in range(j0, j1):
        xr = x[o, j, i0:i1]
        for k in range(i1 - i0):
            mb[k] = _maximum(mb[k], sign * xr[k])


@njit(**OPTS)
def _cols_expsum(x, out, o, i0, i1, j0, j1, sign, mode, mb, sb, bb):
    # sb: the float64 sums, accumulated from the exps parked in bb
    # (accumulating float64(exp(...)) in the same loop did not vectorise);
    # softmax keeps the exps in out (row j of x is not read again: out may
    # be x)
    w = i1 - i0
    for k in range(w):
        sb[k] = 0.0
    for j in range(j0, j1):
        xr = x[o, j, i0:i1]
        for k in range(w):
            bb[k] = _exp_scaled(sign * xr[k] - mb[k])
        for k in range(w):
            sb[k] += np.float64(bb[k])
        if mode == 0:
            orow = out[o, j, i0:i1]
            for k in range(w):
                orow[k] = bb[k]


@njit(**OPTS)
def _cols_scale(sign, mode, mb, sb, bb):
    # bb: the sums' logs (log_softmax) or reciprocals (softmax) in x's type,
    # for the last pass (converted from float64 inside it, the backward's
    # same loop ran 2.4x slower)
    if mode == 1:
        for k in range(mb.shape[0]):
            bb[k] = cst(sign, _log(sb[k] * _tail_scale(mb[k])))
    else:
        for k in range(mb.shape[0]):
            bb[k] = cst(sign, 1.0 / sb[k])


@njit(**OPTS)
def _cols_finish(x, out, o, i0, i1, j0, j1, sign, mode, mb, bb):
    # in place (out is x): one array in the loop (see _exp_shift), chosen
    # once, outside the row loop (see _bwd_cols_pass)
    w = i1 - i0
    if mode == 1 and _same_data(x, out):
        for j in range(j0, j1):
            orow = out[o, j, i0:i1]
            for k in range(w):
                orow[k] = (sign * orow[k] - mb[k]) - bb[k]
    elif mode == 1:
        for j in range(j0, j1):
            xr = x[o, j, i0:i1]
            orow = out[o, j, i0:i1]
            for k in range(w):
                orow[k] = (sign * xr[k] - mb[k]) - bb[k]
    else:
        for j in range(j0, j1):
            orow = out[o, j, i0:i1]
            for k in range(w):
                orow[k] = orow[k] * bb[k]


@njit(**OPTS)
def _softmax_cols_block(x, out, o, i0, i1, sign, mode, m, s, buf):
    # columns i0..i1 of x[o], all rows; m, s, buf: scratch of COLBLOCK
    n = x.shape[1]
    w = i1 - i0
    mb, sb, bb = m[:w], s[:w], buf[:w]
    _cols_max(x, o, i0, i1, 0, n, sign, mb)
    _cols_expsum(x, out, o, i0, i1, 0, n, sign, mode, mb, sb, bb)
    _cols_scale(sign, mode, mb, sb, bb)
    _cols_finish(x, out, o, i0, i1, 0, n, sign, mode, mb, bb)


COLBLOCK = 256


@njit(parallel=True, **PAR_OPTS)
def _softmax_cols(x, out, sign, mode, nthreads):
    outer, inner = x.shape[0], x.shape[2]
    nb = _cdiv(inner, COLBLOCK)
    for t in prange(outer * nb):
        o, b = t // nb, t % nb
        m = np.empty(COLBLOCK, dtype=x.dtype)
        s = np.empty(COLBLOCK, dtype=np.float64)
        buf = np.empty(COLBLOCK, dtype=x.dtype)
        _softmax_cols_block(x, out, o, b * COLBLOCK, min(inner, (b + 1) * COLBLOCK), sign, mode, m, s, buf)


def cols_split(outer, inner, n, nthreads):
    # pieces of the rows per column block, where the blocks alone leave a
    # thread idle ((1000, 100) along axis 0 is one block): 1 = no split.
    # Two pieces per thread: 1e5 float32 on 2 threads, one block, softmax
    # forward, us, whole block / 2 pieces / 4 / 8: (1000, 100) 73 / 43-53 /
    # 44-58 / 44-55, (400, 250) 57-65 / 49-55 / 37-42 / 38-40, (4000, 25)
    # 114 / 67-69 / 67 / 67 (one piece per thread, (400, 250): as slow as
    # the whole block, for a reason not found)
    units = outer * ((inner + COLBLOCK - 1) // COLBLOCK)
    if units >= nthreads or n < 64 * nthreads:
        return 1
    return 2 * ((nthreads + units - 1) // units)


@njit(inline="always", **OPTS)
def _piece(t, nchunk, nb, inner, n):
    # task t of the split kernels: block u (outer index o, columns i0..i1),
    # piece c of its rows (j0..j1)
    u, c = t // nchunk, t % nchunk
    i0 = (u % nb) * COLBLOCK
    clen = _cdiv(n, nchunk)
    return u, c, u // nb, i0, min(inner, i0 + COLBLOCK), min(n, c * clen), min(n, (c + 1) * clen)


@njit(inline="always", **OPTS)
def _width(u, nb, inner):
    # the columns of block u (COLBLOCK, or fewer in the last block of a row):
    # the split kernels combine only those partials, the rest is unset
    return min(inner, (u % nb + 1) * COLBLOCK) - (u % nb) * COLBLOCK


@njit(parallel=True, **PAR_OPTS)
def _softmax_cols_split(x, out, sign, mode, nchunk, nthreads):
    # the blocks of _softmax_cols, each one's rows in nchunk pieces: partial
    # maxima and sums per piece, combined between the passes (as
    # _softmax_rows_split does for long rows)
    outer, n, inner = x.shape
    nb = _cdiv(inner, COLBLOCK)
    U = outer * nb
    pm = np.empty((U, nchunk, COLBLOCK), dtype=x.dtype)
    ps = np.empty((U, nchunk, COLBLOCK), dtype=np.float64)
    pb = np.empty((U, nchunk, COLBLOCK), dtype=x.dtype)
    for t in prange(U * nchunk):
        u, c, o, i0, i1, j0, j1 = _piece(t, nchunk, nb, inner, n)
        _cols_max(x, o, i0, i1, j0, j1, sign, pm[u, c, :i1 - i0])
    for u in range(U):
        for c in range(1, nchunk):
            for k in range(_width(u, nb, inner)):
                pm[u, 0, k] = _maximum(pm[u, 0, k], pm[u, c, k])
    for t in prange(U * nchunk):
        u, c, o, i0, i1, j0, j1 = _piece(t, nchunk, nb, inner, n)
        _cols_expsum(x, out, o, i0, i1, j0, j1, sign, mode, pm[u, 0, :i1 - i0], ps[u, c, :i1 - i0], pb[u, c, :i1 - i0])
    for u in range(U):
        w = _width(u, nb, inner)
        for c in range(1, nchunk):
            for k in range(w):
                ps[u, 0, k] += ps[u, c, k]
        _cols_scale(sign, mode, pm[u, 0, :w], ps[u, 0, :w], pb[u, 0, :w])
    for t in prange(U * nchunk):
        u, c, o, i0, i1, j0, j1 = _piece(t, nchunk, nb, inner, n)
        _cols_finish(x, out, o, i0, i1, j0, j1, sign, mode, pm[u, 0, :i1 - i0], pb[u, 0, :i1 - i0])


@njit(**OPTS)
def _softmax_cols_serial(x, out, sign, mode):
    outer, inner = x.shape[0], x.shape[2]
    m = np.empty(COLBLOCK, dtype=x.dtype)
    s = np.empty(COLBLOCK, dtype=np.float64)
    buf = np.empty(COLBLOCK, dtype=x.dtype)
    for o in range(outer):
        for i0 in range(0, inner, COLBLOCK):
            _softmax_cols_block(x, out, o, i0, min(inner, i0 + COLBLOCK), sign, mode, m, s, buf)


# Backward from y. mode 0 (softmax/softmin): out = sign*y*(g - sum(g*y));
# mode 1 (log_softmax): out = g - exp(y)*sum(g).
# log_softmax's float32 sum of g, formed in float64, can pass float32's
# range (64 elements of |g| ~ 1e37) where every result is finite: such rows
# and column blocks form g - exp(y)*sum in float64 (_beyond_f32, _lsm_wide).
@njit(inline="always", **OPTS)
def _beyond_f32(sign, acc):
    # float32 only: a float64 acc that float32 holds only as inf (from 2^128 -
    # 2^103 on; acc = inf gives the same results either way)
    return _is_f32(sign) and abs(acc) >= 3.4028235677973366e38


@njit(inline="always", **OPTS)
def _lsm_wide(g, y, acc):
    # g - exp(y)*acc in float64, in g's type (as the reference forms it)
    return cst(g, np.float64(g) - np.float64(_exp(y)) * acc)


@njit(**OPTS)
def _lsm_wide_block(g, y, out, o, i0, i1, j0, j1, ab, af, sign):
    # _bwd_cols_finish for log_softmax where some column's sum is beyond
    # float32: only those columns in float64, the others keep their bits.
    # Each element is read before it is written (in place).
    for j in range(j0, j1):
        gr, yr, orow = g[o, j, i0:i1], y[o, j, i0:i1], out[o, j, i0:i1]
        for k in range(orow.shape[0]):
            if _beyond_f32(sign, ab[k]):
                orow[k] = _lsm_wide(gr[k], yr[k], ab[k])
            else:
                orow[k] = gr[k] - _exp(yr[k]) * af[k]


@njit(inline="always", **OPTS)
def _bwd_cols_apply(gr, yr, orow, af, sign, mode):
    # one row of _bwd_cols_pass; inlined, so an array passed twice is one
    # value in the loop. af: the sums in the arrays' type (converted from
    # float64 here, the loop was 2.4x slower)
    if mode == 1:
        for k in range(orow.shape[0]):
            orow[k] = gr[k] - _exp(yr[k]) * af[k]
    else:
        for k in range(orow.shape[0]):
            orow[k] = sign * (yr[k] * (gr[k] - af[k]))


@njit(inline="always", **OPTS)
def _bwd_cols_pass(g, y, out, o, i0, i1, j0, j1, af, sign, mode, alias):
    # _bwd_cols_finish's loop. alias, a constant at each call site: 1
    # out is g, 2 out is y -- then the loop reads out itself (see
    # _exp_shift): g's row and out's row as two values, the loop failed its
    # alias check and ran scalar (softmax_backward(g, y=y, axis=0, out=g) on
    # (1000, 100) float32: 130 us, against 67 out of place). The choice is
    # made once, here, not per row in the loop: three loops behind a branch
    # in the row loop ran 2.3x slower (1e5 float32 as (1000, 100) along axis
    # 0, one thread, softmax 72 -> 34 us, log_softmax 73 -> 46).
    for j in range(j0, j1):
        orow = out[o, j, i0:i1]
        if alias == 1:
            _bwd_cols_apply(orow, y[o, j, i0:i1], orow, af, sign, mode)
        elif alias == 2:
            _bwd_cols_apply(g[o, j, i0:i1], orow, orow, af, sign, mode)
        else:
            _bwd_cols_apply(g[o, j, i0:i1], y[o, j, i0:i1], orow, af, sign, mode)


@njit(**OPTS)
def _bwd_cols_acc(g, y, o, i0, i1, j0, j1, mode, ab):
    # inner > 1: the float64 sums of columns i0..i1 of [o] over rows j0..j1,
    # along rows of the block like the forward's passes (one strided column
    # at a time took 191 us for 1e5 float32 as (1000, 100) along axis 0;
    # Cython 49)
    for k in range(i1 - i0):
        ab[k] = 0.0
    for j in range(j0, j1):
        gr = g[o, j, i0:i1]
        yr = y[o, j, i0:i1]
        if mode == 1:
            for k in range(i1 - i0):
                ab[k] += np.float64(gr[k])
        else:
            for k in range(i1 - i0):
                ab[k] += np.float64(gr[k]) * np.float64(yr[k])


@njit(**OPTS)
def _bwd_cols_finish(g, y, out, o, i0, i1, j0, j1, sign, mode, ab, af):
    # rows j0..j1 of the columns from their sums ab; af: scratch, the sums in
    # y's type
    for k in range(i1 - i0):
        af[k] = cst(sign, ab[k])
    if mode == 1:
        for k in range(i1 - i0):
            if _beyond_f32(sign, ab[k]):
                mode = 2
    if mode == 2:
        _lsm_wide_block(g, y, out, o, i0, i1, j0, j1, ab, af, sign)
    elif _same_data(g, out):
        _bwd_cols_pass(g, y, out, o, i0, i1, j0, j1, af, sign, mode, 1)
    elif _same_data(y, out):
        _bwd_cols_pass(g, y, out, o, i0, i1, j0, j1, af, sign, mode, 2)
    else:
        _bwd_cols_pass(g, y, out, o, i0, i1, j0, j1, af, sign, mode, 0)


@njit(**OPTS)
def _bwd_cols_block(g, y, out, o, i0, i1, sign, mode, acc, accf):
    # columns i0..i1 of [o], all rows; acc (float64), accf (y's type): scratch
    n = y.shape[1]
    w = i1 - i0
    _bwd_cols_acc(g, y, o, i0, i1, 0, n, mode, acc[:w])
    _bwd_cols_finish(g, y, out, o, i0, i1, 0, n, sign, mode, acc[:w], accf[:w])


@njit(parallel=True, **PAR_OPTS)
def _softmax_bwd_cols_split(g, y, out, sign, mode, nchunk, nthreads):
    # the blocks of _softmax_bwd, each one's rows in nchunk pieces (cols_split):
    # partial sums per piece, combined, then the last pass per piece
    outer, n, inner = y.shape
    nb = _cdiv(inner, COLBLOCK)
    U = outer * nb
    ps = np.empty((U, nchunk, COLBLOCK), dtype=np.float64)
    pf = np.empty((U, nchunk, COLBLOCK), dtype=y.dtype)
    for t in prange(U * nchunk):
        u, c, o, i0, i1, j0, j1 = _piece(t, nchunk, nb, inner, n)
        _bwd_cols_acc(g, y, o, i0, i1, j0, j1, mode, ps[u, c, :i1 - i0])
    for u in range(U):
        for c in range(1, nchunk):
            for k in range(_width(u, nb, inner)):
                ps[u, 0, k] += ps[u, c, k]
    for t in prange(U * nchunk):
        u, c, o, i0, i1, j0, j1 = _piece(t, nchunk, nb, inner, n)
        _bwd_cols_finish(g, y, out, o, i0, i1, j0, j1, sign, mode, ps[u, 0, :i1 - i0], pf[u, c, :i1 - i0])



@njit(inline="always", **OPTS)
def _nonpos(y):
    # every y[j] <= 0 or NaN, as every log_softmax output is: there
    # exp_neg(y, 0) is exp(y) bit for bit, without exp's upper clamp and split
    # power of two (the Cython backend's _nonpos_f). 1e5 float32, one thread,
    # g - exp(y) a alone: 32.8 -> 26.3 us
    c = 0
    for j in range(y.shape[0]):
        c += 1 if y[j] > 0 else 0
    return c == 0


@njit(inline="always", **OPTS)
def _lsm_apply(g, y, out, a):
    # out = g - exp(y) a for log_softmax's backward (see _nonpos); float32 on
    # AVX-512: the Cython build's loop, exp with vscalefps (_tab.lsm_bwd; its
    # bits, which differ from exp_neg's in the last place on some y)
    if _nonpos(y):
        if _tab.lsm_bwd(g, y, out, a):
            return
        z = cst(a, 0.0)
        for j in range(out.shape[0]):
            out[j] = g[j] - _exp_neg(y[j], z) * a
    else:
        for j in range(out.shape[0]):
            out[j] = g[j] - _exp(y[j]) * a


@njit(**OPTS)
def _bwd_row_acc(g, y, mode):
    return _sum64(g) if mode == 1 else _dot_row(g, y)


@njit(**OPTS)
def _bwd_row_finish(g, y, out, sign, mode, acc):
    a = cst(sign, acc)
    if mode == 1 and _beyond_f32(sign, acc):
        for j in range(g.shape[0]):
            out[j] = _lsm_wide(g[j], y[j], acc)
    elif mode == 1:
        _lsm_apply(g, y, out, a)
    else:
        for j in range(g.shape[0]):
            out[j] = sign * (y[j] * (g[j] - a))


@njit(parallel=True, **PAR_OPTS)
def _softmax_bwd(g, y, out, sign, mode, nthreads):
    # inner > 1: blocks of COLBLOCK columns
    outer, n, inner = y.shape
    nb = _cdiv(inner, COLBLOCK)
    for t in prange(outer * nb):
        o, b = t // nb, t % nb
        acc = np.empty(COLBLOCK, dtype=np.float64)
        accf = np.empty(COLBLOCK, dtype=y.dtype)
        _bwd_cols_block(g, y, out, o, b * COLBLOCK, min(inner, (b + 1) * COLBLOCK), sign, mode, acc, accf)


@njit(**OPTS)
def _bwd_rows_range(g2, y2, o2, r0, r1, sign, mode):
    # Rows r0..r1 of the (outer, n) views, as _bwd_row_acc and
    # _bwd_row_finish do a piece of a row, written out here: called per row
    # they cost more than the arithmetic (1e5 float32 softmax backward on
    # one thread: rows of 10 419 -> 76 us, of 32 156 -> 25, of 100 76 -> 27,
    # of 1000 28 -> 20). From PF_ROWS_MIN elements on (data beyond the
    # caches) each row starts by prefetching every line of the next row's g
    # and y: 1e7 float32 in rows of 1000, 2 threads, ms, the kernel alone,
    # twice each: log_softmax 4.09-4.15 -> 3.18-3.23, softmax 2.74-2.80 ->
    # 2.64-2.71 (another process: 3.13-3.41 -> 2.74-3.02), on an AMD EPYC
    # with AVX2 (Zen 2; not on AMD's with AVX-512: ROWS_PF). In the caches the
    # prefetches cost 5-14 % (1e5 and 1e6). One prefetch per page gained
    # nothing here (a row of 1000 is about a page). Only log_softmax's rows
    # (mode 1, an exp per element) prefetch now: softmax's and softmin's,
    # a product per element, ran 3.97-4.16 ms with it and 3.19-3.22 without
    # (1e7 as above, allocating, PyTorch's 3.12-3.27 in the same runs; the
    # Cython backend's rows lost with it too).
    pf = ROWS_PF and (g2.shape[0] * g2.shape[1] >= PF_ROWS_MIN) and mode == 1
    for o in range(r0, r1):
        if pf and o + 1 < r1:
            _prefetch_range(g2[o + 1], 0, g2.shape[1], 64)
            _prefetch_range(y2[o + 1], 0, y2.shape[1], 64)
        gr, yr, orow = g2[o], y2[o], o2[o]
        if mode == 1:
            acc = _sum64(gr)
            a = cst(sign, acc)
            if _beyond_f32(sign, acc):
                for j in range(orow.shape[0]):
                    orow[j] = _lsm_wide(gr[j], yr[j], acc)
                continue
            _lsm_apply(gr, yr, orow, a)
        else:
            a = cst(sign, _dot_row(gr, yr))
            if _tab.smax_apply(gr, yr, orow, a, sign):  # AVX-512: the Cython build's loop, its masked tail
                continue
            for j in range(orow.shape[0]):
                orow[j] = sign * (yr[j] * (gr[j] - a))


@njit(**OPTS)
def _bwd_rows_range_st(gf, yf, of, n, r0, r1, sign, buf):
    # _bwd_rows_range's softmax and softmin rows (mode 0) for a streamed result,
    # as the Cython backend's _last_pass_st: each row's products in blocks through
    # buf, whole lines of out copied non-temporally (_block, _put); the rows read
    # by pointers into the flat arrays (a view's refcount ops are locked
    # instructions, which wait on the stores before them). The same arithmetic.
    for o in range(r0, r1):
        r = o * n
        a = cst(sign, _dot_row(carray(_ptr(gf, r), n), carray(_ptr(yf, r), n)))
        s = r
        while s < r + n:
            m = _block(of, s, r + n, True, buf.shape[0])
            gb, yb = carray(_ptr(gf, s), m), carray(_ptr(yf, s), m)
            for j in range(m):
                buf[j] = sign * (yb[j] * (gb[j] - a))
            _put(buf, of, s, m, True)
            s += m


@njit(parallel=True, **PAR_OPTS)
def _softmax_bwd_rows_st(g, y, out, sign, nthreads):
    # _softmax_bwd_rows for softmax's and softmin's backward with a result of
    # stream_min bytes or more (backend.py): a placed buffer per thread, one
    # sfence after its rows. 1e7 float32 in rows of 1000, 2 threads, the kernel
    # alone, in-process A/B: 3.27-3.44 -> 2.55-2.73 ms.
    outer, n = y.shape[0], y.shape[1]
    gf, yf, of = g.reshape(outer * n), y.reshape(outer * n), out.reshape(outer * n)
    rows = _buf_rows(nthreads, outer * n, True, of)
    blen = rows.shape[1] - 4096 // rows.itemsize
    for t in prange(nthreads):
        r0, r1 = t * outer // nthreads, (t + 1) * outer // nthreads
        if r0 < r1:
            buf = _place_buf(rows[t], blen, _page_offset(gf, r0 * n), _page_offset(yf, r0 * n), _page_offset(of, r0 * n))
            _bwd_rows_range_st(gf, yf, of, n, r0, r1, sign, buf)
            _sfence()


@njit(parallel=True, **PAR_OPTS)
def _softmax_bwd_rows(g, y, out, sign, mode, nthreads):
    # inner == 1, a contiguous range of rows per thread.
    outer, n = y.shape[0], y.shape[1]
    g2, y2, o2 = g.reshape(outer, n), y.reshape(outer, n), out.reshape(outer, n)
    for t in prange(nthreads):
        _bwd_rows_range(g2, y2, o2, t * outer // nthreads, (t + 1) * outer // nthreads, sign, mode)


@njit(parallel=True, **PAR_OPTS)
def _softmax_bwd_rows_split(g, y, out, sign, mode, nchunk, nthreads):
    # inner == 1 with few long rows: chunk each row, reduce the partial sums.
    outer, n = y.shape[0], y.shape[1]
    g2, y2, o2 = g.reshape(outer, n), y.reshape(outer, n), out.reshape(outer, n)
    clen = _cdiv(n, nchunk)
    ps = np.empty((outer, nchunk), dtype=np.float64)
    for t in prange(outer * nchunk):
        o, c = t // nchunk, t % nchunk
        lo, hi = c * clen, min(n, (c + 1) * clen)
        ps[o, c] = _bwd_row_acc(g2[o, lo:hi], y2[o, lo:hi], mode)
    _sum_partials(ps)
    for t in prange(outer * nchunk):
        o, c = t // nchunk, t % nchunk
        lo, hi = c * clen, min(n, (c + 1) * clen)
        _bwd_row_finish(g2[o, lo:hi], y2[o, lo:hi], o2[o, lo:hi], sign, mode, ps[o, 0])


@njit(**OPTS)
def _softmax_bwd_serial(g, y, out, sign, mode):
    outer, n, inner = y.shape
    if inner == 1:
        _bwd_rows_range(g.reshape(outer, n), y.reshape(outer, n), out.reshape(outer, n), 0, outer, sign, mode)
        return
    acc = np.empty(COLBLOCK, dtype=np.float64)
    accf = np.empty(COLBLOCK, dtype=y.dtype)
    for o in range(outer):
        for i0 in range(0, inner, COLBLOCK):
            _bwd_cols_block(g, y, out, o, i0, min(inner, i0 + COLBLOCK), sign, mode, acc, accf)


# Short rows (inner == 1, n <= SHORT_N), forward: per row, the max, exp
# and scaling passes are too short for their vector loops -- the exps of a
# row of 10 all run in the scalar remainder. Instead a block of SHORT_B rows
# is copied transposed into a (1, n, SHORT_B) scratch, the column passes
# (_softmax_cols_block) run on it vectorised across the rows, and the result
# is copied back: the same arithmetic as inner > 1. A block is read whole
# before anything is written, so out may be x. Measured, 1e5 float32, 2
# threads, rows (_rows_range) -> blocks: softmax rows of 4 587 -> 135 us,
# of 16 125 -> 109, of 24 108 -> 107, of 32 89 -> 108. The backward has no
# exp in its softmax form, and its rows (_bwd_rows_range) beat the blocks
# at every length measured (rows of 2: 128 against 195 us).
# SHORT_N 24 -> 63 (2026-12-01; the rows' loops leave up to 63 elements to
# their scalar remainder, LLVM vectorising by 64: 16 lanes, interleaved 4):
# 1e5 float32, one thread, rows -> blocks, best of 3, softmax / log_softmax:
# rows of 25 269 -> 135 / 317 -> 134, of 32 174 -> 137 / 214 -> 135, of 48
# 163 -> 135 / 183 -> 132, of 63 286 -> 145 / 294 -> 142; two threads, best
# of 5, rows of 32 88 -> 75 / 103 -> 75, of 48 91 -> 80 / 94 -> 79. At 64
# (a whole vector step) the rows win, 132 against 144; at 100 (51 kB of
# scratch, past L1) by 200 to 274.
# Then up to SHORT_N = 127 (short_ok), in blocks of at most SHORT_SCRATCH
# elements (_short_rows: 64 rows of 100 or 127), but rows of 64-71, whose
# scalar remainder is short: one thread, best of 4, rows -> blocks, softmax
# / log_softmax: rows of 100 186 -> 157 / 199 -> 148, of 127 210 -> 167 /
# 216 -> 157; two threads, best of 5: rows of 80 87 -> 84 / 91 -> 82, of
# 100 105 -> 86 / 102 -> 79, of 127 107 -> 91 / 112 -> 85; rows of 65
# (rows kept) 73 against 84.
# 2026-12-02: from rows of FLAT_MIN on the blocks skip the transposes
# (_flat_fwd_blocks): the maxima are spread over a scratch of the block's
# size and the exps run as one loop over the whole block, so only the
# block's remainder is scalar; the same bits as the rows' passes. 1e5
# float32, one thread, softmax / log_softmax, us: against the transposed
# blocks, rows of 16 119 -> 85 / 130 -> 102, of 32 120 -> 62 / 116 -> 68,
# of 100 128 -> 54 / 126 -> 59, of 127 131 -> 57 / 129 -> 61 (rows of 8:
# 135 -> 127 / 138 -> 163, kept transposed); against the rows' passes,
# rows of 64 65 -> 48 / 72 -> 51, of 200 53 -> 46 / 59 -> 51, of 300 75 ->
# 42 / 81 -> 51, of 500 60 -> 48 / 64 -> 56, of 1000 44 -> 46 / 45 -> 50
# (kept as rows). So every row up to SHORT_N goes through blocks.
FLAT_MIN = 16
SHORT_N = 600
SHORT_B = 128
SHORT_SCRATCH = 8192  # elements: blocks of fewer rows past 64 elements (L1)


def short_ok(n):
    # rows of n elements go through the blocks (transposed under FLAT_MIN, flat from it)
    return n <= SHORT_N


@njit(**OPTS)
def _short_rows(n):
    # rows a block: SHORT_B, fewer (a multiple of 16) where SHORT_B rows of
    # n would pass SHORT_SCRATCH elements
    return min(SHORT_B, max(16, (SHORT_SCRATCH // n) // 16 * 16))


@njit(**OPTS)
def _short_in(a2, r0, b, t):
    # t[0, j, r] = a2[r0 + r, j] for the block's b rows
    for r in range(b):
        ar = a2[r0 + r]
        for j in range(ar.shape[0]):
            t[0, j, r] = ar[j]


@njit(**OPTS)
def _short_out(t, b, o2, r0):
    for r in range(b):
        orow = o2[r0 + r]
        for j in range(orow.shape[0]):
            orow[j] = t[0, j, r]


@njit(**OPTS)
def _short_fwd_blocks(x2, o2, k0, k1, sign, mode):
    n = x2.shape[1]
    sb = _short_rows(n)
    t = np.empty((1, n, sb), dtype=x2.dtype)
    m = np.empty(sb, dtype=x2.dtype)
    s = np.empty(sb, dtype=np.float64)
    buf = np.empty(sb, dtype=x2.dtype)
    for k in range(k0, k1):
        r0 = k * sb
        b = min(x2.shape[0] - r0, sb)
        _short_in(x2, r0, b, t)
        _softmax_cols_block(t, t, 0, 0, b, sign, mode, m, s, buf)
        _short_out(t, b, o2, r0)


@njit(**OPTS)
def _flat_fwd_blocks(x2, o2, k0, k1, sign, mode):
    # Blocks k0..k1 of the short rows, without the transposes: per row the
    # maximum, spread over a scratch of the block's size (mb), then one
    # exp loop over the whole block (flat: its remainder is the block's, not
    # every row's), per row the float64 sum and the scaling (log_softmax:
    # the block's logs in one loop, then x - m - log s per row).
    # log_softmax parks the exps in eb; softmax writes them to out.
    outer, n = x2.shape[0], x2.shape[1]
    sb = _short_rows(n)
    xf, of = x2.reshape(outer * n), o2.reshape(outer * n)
    mb = np.empty(sb * n, dtype=x2.dtype)
    eb = np.empty(sb * n if mode == 1 else 0, dtype=x2.dtype)
    ms = np.empty(sb, dtype=x2.dtype)
    ls = np.empty(sb, dtype=np.float64)
    for k in range(k0, k1):
        r0 = k * sb
        b = min(outer - r0, sb)
        L = b * n
        xs, os_ = xf[r0 * n:r0 * n + L], of[r0 * n:r0 * n + L]
        mm = mb[:L]
        for r in range(b):
            m = _max_row(xs[r * n:(r + 1) * n], sign)
            ms[r] = m
            mr = mm[r * n:(r + 1) * n]
            for j in range(n):
                mr[j] = m
        e = eb[:L] if mode == 1 else os_
        if mode == 0 and _same_data(xs, os_):
            for j in range(L):
                os_[j] = _exp_scaled(sign * os_[j] - mm[j])
        else:
            for j in range(L):
                e[j] = _exp_scaled(sign * xs[j] - mm[j])
        if mode == 0:
            for r in range(b):
                orow = os_[r * n:(r + 1) * n]
                inv = cst(sign, 1.0 / _sum64(orow))
                for j in range(n):
                    orow[j] = orow[j] * inv
        else:
            for r in range(b):
                ls[r] = _sum64(e[r * n:(r + 1) * n]) * _tail_scale(ms[r])
            for r in range(b):
                ls[r] = _log(ls[r])
            inplace = _same_data(xs, os_)
            for r in range(b):
                xr, orow = xs[r * n:(r + 1) * n], os_[r * n:(r + 1) * n]
                m = ms[r]
                lk = cst(sign, ls[r])
                if inplace:  # one array (see _exp_shift)
                    for j in range(n):
                        orow[j] = (sign * orow[j] - m) - lk
                else:
                    for j in range(n):
                        orow[j] = (sign * xr[j] - m) - lk


@njit(**OPTS)
def _fwd_blocks(x2, o2, k0, k1, sign, mode):
    if x2.shape[1] < FLAT_MIN:
        _short_fwd_blocks(x2, o2, k0, k1, sign, mode)
    else:
        _flat_fwd_blocks(x2, o2, k0, k1, sign, mode)


@njit(parallel=True, **PAR_OPTS)
def _softmax_short(x, out, sign, mode, nthreads):
    outer, n = x.shape[0], x.shape[1]
    x2, o2 = x.reshape(outer, n), out.reshape(outer, n)
    nb = _cdiv(outer, _short_rows(n))
    for t in prange(nthreads):
        _fwd_blocks(x2, o2, t * nb // nthreads, (t + 1) * nb // nthreads, sign, mode)


@njit(**OPTS)
def _softmax_short_serial(x, out, sign, mode):
    outer, n = x.shape[0], x.shape[1]
    _fwd_blocks(x.reshape(outer, n), out.reshape(outer, n), 0, _cdiv(outer, _short_rows(n)), sign, mode)


# ---------------------------------------------------------------- sparsemax
@njit(**SUM_OPTS)
def _sum_above64(a, m, tau):
    """Sum (float64) and count of the a[j] - m > tau: the sparsemax support."""
    s = 0.0
    c = 0
    for j in range(a.shape[0]):
        v = np.float64(a[j]) - m
        s += v if v > tau else 0.0
        c += 1 if v > tau else 0
    return s, c


@njit(**OPTS)
def _sparsemax_tau(a, m):
    """Michelot's projection, as the Cython backend's _sparsemax_tau: tau =
    (sum of the support - 1)/|support|, the support shrinking to {a > tau}
    until it stops changing. tau only grows, so each pass drops elements for
    good: a few passes in practice, at most n. The sums are of a - m, m the
    line's maximum (sparsemax is shift-invariant; with a itself, 1 vanished
    next to five 3e38), and tau is relative to m. NaN where the support
    empties (a +inf in the line, or only -inf). tau starts at -1, not -inf:
    the answer's is at least -1 (the maximum alone), so nothing further down
    is ever in the support, and summing it overflowed (float64, a line of 3
    and 1.8e308: inf everywhere)."""
    tau = -1.0
    prev = -1
    for _ in range(a.shape[0] + 2):
        s, c = _sum_above64(a, m, tau)
        if c == 0:
            return np.nan
        if c == prev:
            break
        prev = c
        tau = (s - 1.0) / c
    return tau


@njit(**OPTS)
def _sparsemax_line(x, out, o, i, buf):
    # The line is gathered into buf (contiguous, in x's dtype); a NaN in it
    # makes the whole line NaN, as in the reference. (A sort per line, as the
    # reference does, was 8x slower than Cython's passes: 1e5 float32 in rows
    # of 1000, 2.8 ms against 0.34 ms.)
    n = x.shape[1]
    if n == 0:
        return
    has_nan = False
    for j in range(n):
        v = x[o, j, i]
        buf[j] = v
        has_nan |= v != v
    m = np.float64(_max_scaled(buf, cst(buf[0], 1.0)))  # vectorised (a select was not)
    tau = np.nan if has_nan else _sparsemax_tau(buf, m)
    for j in range(n):
        v = (np.float64(buf[j]) - m) - tau
        out[o, j, i] = v if v > 0 else (v if v != v else 0.0)


@njit(parallel=True, **PAR_OPTS)
def _sparsemax_fwd(x, out, nthreads):
    outer, n, inner = x.shape
    for t in prange(outer * inner):
        buf = np.empty(n, dtype=x.dtype)
        _sparsemax_line(x, out, t // inner, t % inner, buf)


@njit(**OPTS)
def _sparsemax_fwd_serial(x, out):
    outer, n, inner = x.shape
    buf = np.empty(n, dtype=x.dtype)
    for o in range(outer):
        for i in range(inner):
            _sparsemax_line(x, out, o, i, buf)


SPB = 32  # elements per block of _sparsemax_bwd_row's test


@njit(**OPTS)
def _sparsemax_bwd_row(g, y, out):
    # one line (contiguous where inner == 1, strided else): the mean of g
    # over the support in float64, as the Cython backend's _sparsemax_bwd_row
    # (a float32 sum of large g overflowed), summed in index order, passing
    # over blocks of SPB whose maximum is not above 0 (y >= 0 or NaN: none of
    # them in the support); NaN where y is NaN, as in the reference
    n = y.shape[0]
    acc = 0.0
    cnt = 0
    for b in range(n // SPB):
        mx = y[b * SPB]
        for k in range(b * SPB, b * SPB + SPB):
            mx = max(mx, y[k])
        if mx > 0:
            for k in range(b * SPB, b * SPB + SPB):
                if y[k] > 0:
                    acc += np.float64(g[k])
                    cnt += 1
    for k in range(n // SPB * SPB, n):
        if y[k] > 0:
            acc += np.float64(g[k])
            cnt += 1
    mean = acc / cnt if cnt > 0 else acc
    for j in range(n):
        v = y[j]
        out[j] = np.float64(g[j]) - mean if v > 0 else (v if v != v else 0.0)


@njit(parallel=True, **PAR_OPTS)
def _sparsemax_bwd(g, y, out, nthreads):
    outer, n, inner = y.shape
    if inner == 1:  # rows typed contiguous
        g2, y2, o2 = g.reshape(outer, n), y.reshape(outer, n), out.reshape(outer, n)
        for t in prange(outer):
            _sparsemax_bwd_row(g2[t], y2[t], o2[t])
    else:
        for t in prange(outer * inner):
            o, i = t // inner, t % inner
            _sparsemax_bwd_row(g[o, :, i], y[o, :, i], out[o, :, i])


@njit(**OPTS)
def _sparsemax_bwd_serial(g, y, out):
    outer, n, inner = y.shape
    if inner == 1:
        g2, y2, o2 = g.reshape(outer, n), y.reshape(outer, n), out.reshape(outer, n)
        for o in range(outer):
            _sparsemax_bwd_row(g2[o], y2[o], o2[o])
    else:
        for o in range(outer):
            for i in range(inner):
                _sparsemax_bwd_row(g[o, :, i], y[o, :, i], out[o, :, i])


# --------------------------------------------------------------------- glu
# x viewed as (outer, 2, L): a = x[:, 0], b = x[:, 1], L = m*inner.

GLU_FWD = _instantiate("fwd_glu_halves", 2)  # (serial, Spans): _glu_fwd runs the span function
_glu_fwd_span = GLU_FWD[0]  # (a, b, out, p0..p3): the serial loop, float32 tail included


@numba.extending.register_jitable(inline="always")
def _glu_bwd_one(g, a, b):
    # da = g*s, db = g*a*s*(1 - s) as (g*a)*s': g*s can underflow where db is
    # normal, and where g*a overflows (db = inf) _glu_bwd_span computes db
    # again in float64.
    s, oms = _sigmoid2(b)
    return g * s, (g * a) * (s * oms)


@njit(**OPTS)
def _glu_bwd_f(g, a, b, da, db):
    # the largest |b| and |db| by the keys of _tail_template
    mb = np.uint32(0)
    md = np.uint32(0)
    for i in range(g.shape[0]):
        u, v = _glu_bwd_one(g[i], a[i], b[i])
        da[i] = u
        db[i] = v
        mb = max(mb, _abs_key(b[i]))
        md = max(md, _abs_key(v))
    return mb, md


@njit(**OPTS)
def _glu_bwd_w(g, a, b):
    return _glu_bwd_one(np.float64(g), np.float64(a), np.float64(b))


@njit(**OPTS)
def _glu_bwd_span(g, a, b, da, db):
    # float32: |b| > 80 (s or 1 - s subnormal) and db = inf (g*a may have
    # overflowed) again in float64, the way of _tail_template (x never
    # overlaps out: the caller copies it).
    if not _is_f32(g):
        for i in range(g.shape[0]):
            da[i], db[i] = _glu_bwd_one(g[i], a[i], b[i])
        return
    c = np.float32(80.0)
    big = np.float32(3.4028234663852886e38)
    mb, md = _glu_bwd_f(g, a, b, da, db)
    if mb > _abs_key(c) or md > _abs_key(big):
        for i in range(g.shape[0]):
            if (abs(b[i]) > c) | (abs(db[i]) > big):
                da[i], db[i] = _glu_bwd_w(g[i], a[i], b[i])


# Half rows L shorter than GLU_SHORT (the inner length included), L not a
# multiple of 8: a task takes a block of GLU_BLK // L whole rows, copies
# their halves into two buffers and runs the elementwise loop once on them
# (per row, the task and the loop's set-up cost more than a short row), as
# the Cython backend's _glu_rows. 1e5 float32, 2 threads, fwd / bwd, on the
# last axis: rows of 2 1380 / 2168 -> 52 / 86 us, of 8 447 / 429 -> 52 /
# 86, of 14 161 / 275 -> 54 / 88, of 34 56 / 123 -> 49 / 77; on axis 1 of
# (1000, 4, 10) 117 / 157 -> 49 / 74. Where L is a multiple of 8 the row
# loops were faster ((1000, 8, 10): 30 / 55 against 45 / 66).
GLU_SHORT = 64
GLU_BLK = 1024


@njit(**OPTS)
def _glu_split(x3, o0, o1, ab, bb):
    # the halves of rows o0..o1 of x3 (outer, 2, L) into ab, bb (row-major)
    L = x3.shape[2]
    if L < 16:  # a column at a time across the rows
        for j in range(L):
            for o in range(o0, o1):
                ab[(o - o0) * L + j] = x3[o, 0, j]
                bb[(o - o0) * L + j] = x3[o, 1, j]
    else:
        for o in range(o0, o1):
            r = (o - o0) * L
            for j in range(L):
                ab[r + j] = x3[o, 0, j]
                bb[r + j] = x3[o, 1, j]


@njit(**OPTS)
def _glu_fwd_rows(x3, oflat, f, z, o0, o1):
    L = x3.shape[2]
    m = (o1 - o0) * L
    ab = np.empty(m, dtype=x3.dtype)
    bb = np.empty(m, dtype=x3.dtype)
    _glu_split(x3, o0, o1, ab, bb)
    _call_at(f, (_ptr(ab, 0), _ptr(bb, 0), _ptr(oflat, o0 * L), m, z, z, z, z))


@njit(**OPTS)
def _glu_bwd_rows(gflat, x3, o3, o0, o1):
    L = x3.shape[2]
    m = (o1 - o0) * L
    ab = np.empty(m, dtype=x3.dtype)
    bb = np.empty(m, dtype=x3.dtype)
    da = np.empty(m, dtype=x3.dtype)
    db = np.empty(m, dtype=x3.dtype)
    _glu_split(x3, o0, o1, ab, bb)
    _glu_bwd_span(gflat[o0 * L:o1 * L], ab, bb, da, db)
    if L < 16:
        for j in range(L):
            for o in range(o0, o1):
                o3[o, 0, j] = da[(o - o0) * L + j]
                o3[o, 1, j] = db[(o - o0) * L + j]
    else:
        for o in range(o0, o1):
            r = (o - o0) * L
            for j in range(L):
                o3[o, 0, j] = da[r + j]
                o3[o, 1, j] = db[r + j]


@njit(**OPTS)
def _glu_fwd_segs(x3, oflat, f, z, s, end):
    # flat indices s..end of out (outer * L), a row's segment at a time
    L = x3.shape[2]
    while s < end:
        o = s // L
        k = s - o * L
        seg = min(L - k, end - s)
        _call_at(f, (_ptr(x3[o, 0], k), _ptr(x3[o, 1], k), _ptr(oflat, s), seg, z, z, z, z))
        s += seg


@njit(**OPTS)
def _glu_fwd_range(x3, oflat, f, z, s, end):
    # flat indices s..end of out: short rows (see GLU_SHORT) by blocks of whole
    # rows, with the partial rows at either end by segments, as the Cython
    # backend's _glu_range
    L = x3.shape[2]
    if L < GLU_SHORT and L % 8 != 0:
        o0, o1 = _cdiv(s, L), end // L
        if o0 < o1:
            _glu_fwd_segs(x3, oflat, f, z, s, o0 * L)
            rb = GLU_BLK // L
            for b0 in range(o0, o1, rb):
                _glu_fwd_rows(x3, oflat, f, z, b0, min(o1, b0 + rb))
            s = o1 * L
    _glu_fwd_segs(x3, oflat, f, z, s, end)


@njit(parallel=True, **PAR_OPTS)
def _glu_fwd(x, out, f, z, nthreads):
    # f: the address of GLU_FWD's span function for x's dtype (a * sigmoid(b) over
    # n elements), called per segment as the elementwise kernels call theirs: inlined,
    # the sigmoid's constants were reloaded in the loop (1e5 float32: 39.7 us, torch
    # 33.3). z: a zero of the dtype for its unused parameters. Each thread takes
    # an equal share of out's flat indices. The tasks of CHUNK elements of a row
    # this replaced left one thread two of the three tasks of a row of 2 * 5e4
    # (1e5 float32, in-process: 13.0 us, now 10.9; torch 12.0-12.6, the Cython
    # backend 8.9-9.4).
    outer = x.shape[0]
    L = out.size // outer
    n = outer * L
    x3, oflat = x.reshape(outer, 2, L), out.reshape(n)
    for t in prange(nthreads):
        _glu_fwd_range(x3, oflat, f, z, t * n // nthreads, (t + 1) * n // nthreads)


@njit(**OPTS)
def _glu_fwd_segs_nt(xflat, oflat, z, s, end, L):
    # flat indices s..end of out, a row's segment at a time, each in one pass
    # from the sigmoid table with out's whole lines stored non-temporally
    # (_tab.glu_st: no fence); the inputs by pointers into the flat x
    while s < end:
        o = s // L
        e = min((o + 1) * L, end)
        d = o * L  # out[s]'s a at x[s + d], b at x[s + d + L]
        _tab.glu_st(_ptr(xflat, s + d), _ptr(xflat, s + d + L), _ptr(oflat, s), e - s, z, z, z, z)
        s = e


@njit(parallel=True, **PAR_OPTS)
def _glu_fwd_nt(x, out, z, nthreads):
    # _glu_fwd for a float32 result of stream_min bytes or more on AVX-512, in
    # rows of GLU_NT_L or more (backend.py): one pass per segment storing
    # non-temporally, one sfence per thread, as the Cython backend's _glu
    outer = x.shape[0]
    L = out.size // outer
    n = outer * L
    xflat, oflat = x.reshape(x.size), out.reshape(n)
    for t in prange(nthreads):
        _glu_fwd_segs_nt(xflat, oflat, z, t * n // nthreads, (t + 1) * n // nthreads, L)
        _sfence()


@njit(**OPTS)
def _glu_fwd_segs_st(xflat, oflat, f, z, s, end, L, buf):
    # _glu_fwd_segs for a streamed result: each row's segment in blocks through buf,
    # the blocks on out's lines copied with non-temporal stores (_block, _put). The
    # inputs by pointers into the flat x (row o's halves start at 2 o L and 2 o L + L):
    # no views whose refcounts would wait on the stores (see _prelu_fwd_stream).
    while s < end:
        o = s // L
        e = min((o + 1) * L, end)
        d = o * L  # out[s]'s a at x[s + d], b at x[s + d + L]
        while s < e:
            m = _block(oflat, s, e, True, buf.shape[0])
            _call_at(f, (_ptr(xflat, s + d), _ptr(xflat, s + d + L), _ptr(buf, 0), m, z, z, z, z))
            _put(buf, oflat, s, m, True)
            s += m


@njit(parallel=True, **PAR_OPTS)
def _glu_fwd_st(x, out, f, z, nthreads):
    # _glu_fwd for a result of stream_min bytes or more (backend.py): each thread's
    # share through a placed buffer (_place_buf), one sfence at its end. 1e7 float32
    # (one row: out 5e6), 2 threads, in-process A/B: see the backend's glu forward.
    outer = x.shape[0]
    L = out.size // outer
    n = outer * L
    xflat, oflat = x.reshape(x.size), out.reshape(n)
    rows = _buf_rows(nthreads, n, True, oflat)
    blen = rows.shape[1] - 4096 // rows.itemsize
    for t in prange(nthreads):
        s = t * n // nthreads
        e = (t + 1) * n // nthreads
        if s < e:
            d = (s // L) * L
            buf = _place_buf(rows[t], blen, _page_offset(xflat, s + d), _page_offset(xflat, s + d + L),
                             _page_offset(oflat, s))
            _glu_fwd_segs_st(xflat, oflat, f, z, s, e, L, buf)
            _sfence()


@njit(**OPTS)
def _glu_fwd_serial(x, out, z):
    outer = x.shape[0]
    L = out.size // outer
    x3, o2 = x.reshape(outer, 2, L), out.reshape(outer, L)
    for o in range(outer):
        _glu_fwd_span(x3[o, 0], x3[o, 1], o2[o], z, z, z, z)


@njit(**OPTS)
def _glu_bwd_segs(gflat, x3, o3, s, end):
    # flat indices s..end of g (outer * L), a row's segment at a time
    L = x3.shape[2]
    while s < end:
        o = s // L
        k = s - o * L
        seg = min(L - k, end - s)
        e = k + seg
        _glu_bwd_span(gflat[s:s + seg], x3[o, 0, k:e], x3[o, 1, k:e], o3[o, 0, k:e], o3[o, 1, k:e])
        s += seg


@njit(**OPTS)
def _glu_bwd_range(gflat, x3, o3, s, end):
    # _glu_fwd_range's split, for the backward
    L = x3.shape[2]
    if L < GLU_SHORT and L % 8 != 0:
        o0, o1 = _cdiv(s, L), end // L
        if o0 < o1:
            _glu_bwd_segs(gflat, x3, o3, s, o0 * L)
            rb = GLU_BLK // L
            for b0 in range(o0, o1, rb):
                _glu_bwd_rows(gflat, x3, o3, b0, min(o1, b0 + rb))
            s = o1 * L
    _glu_bwd_segs(gflat, x3, o3, s, end)


@njit(parallel=True, **PAR_OPTS)
def _glu_bwd(g, x, out, nthreads):
    outer = x.shape[0]
    L = g.size // outer
    n = outer * L
    gflat, x3, o3 = g.reshape(n), x.reshape(outer, 2, L), out.reshape(outer, 2, L)
    for t in prange(nthreads):
        _glu_bwd_range(gflat, x3, o3, t * n // nthreads, (t + 1) * n // nthreads)


@njit(**OPTS)
def _glu_bwd_serial(g, x, out):
    outer = x.shape[0]
    L = g.size // outer
    g2, x3, o3 = g.reshape(outer, L), x.reshape(outer, 2, L), out.reshape(outer, 2, L)
    for o in range(outer):
        _glu_bwd_span(g2[o], x3[o, 0], x3[o, 1], o3[o, 0], o3[o, 1])


# ------------------------------------------------------------------ maxout
# x viewed as (R, k, inner) with R = outer*m; out (R, inner). inner > 1: the
# loops run along inner (contiguous). inner == 1 (the channel axis last): a
# group is k consecutive values; for k = 2, 3 and 4 a k-long scan per group
# with a literal k (_maxout_scan, _maxout_bwd_scan: LLVM unrolls it and
# vectorises the loop over groups); for other k the loops run across the
# groups of a block, one piece at a time (the backward through a contiguous
# column, _maxout_bwd_block, so that its selects vectorise). The backward's
# scan with a run-time k and its branches took 454 us for 1e5 float32, k =
# 2, on one thread, the literal scan 17; the forward 54 -> 10 us.
@njit(**OPTS)
def _maxout_takes(v, cur):
    # v replaces the running max if larger, or if it is the first NaN
    return ((v > cur) | (v != v)) & (cur == cur)


@njit(**OPTS)
def _maxout_scan(xf, out, k):
    # xf (rows*k,), out (rows,): the max of each group, k literal
    for r in range(out.shape[0]):
        cur = xf[r * k]
        for p in range(1, k):
            v = xf[r * k + p]
            cur = v if _maxout_takes(v, cur) else cur
        out[r] = cur


@njit(**OPTS)
def _maxout_bwd_scan(g, xf, of, k):
    # g (rows,), xf and of (rows*k,), k literal: g to the first largest piece
    # (or first NaN); the index kept as a float (exact, k <= 4: one vector
    # width; an integer index ran 41 -> 56 us at k = 3)
    for r in range(g.shape[0]):
        cur = xf[r * k]
        best = cst(cur, 0)
        for p in range(1, k):
            v = xf[r * k + p]
            t = _maxout_takes(v, cur)
            cur = v if t else cur
            best = cst(cur, p) if t else best
        gr = g[r]
        for p in range(k):
            of[r * k + p] = gr if best == cst(cur, p) else cst(gr, 0.0)


@njit(**OPTS)
def _maxout_row(x, out):
    # x (k, inner), out (inner,)
    k, inner = x.shape
    for i in range(inner):
        out[i] = x[0, i]
    for p in range(1, k):
        xp = x[p]
        for i in range(inner):
            v = xp[i]
            cur = out[i]
            out[i] = v if _maxout_takes(v, cur) else cur


@njit(**OPTS)
def _maxout_cols(x, out):
    # x (rows, k) C-contiguous, out (rows,): the max across each row
    rows, k = x.shape
    xf = x.reshape(rows * k)
    if k == 2:
        _maxout_scan(xf, out, 2)
    elif k == 3:
        _maxout_scan(xf, out, 3)
    elif k == 4:
        _maxout_scan(xf, out, 4)
    else:
        for r in range(rows):
            out[r] = x[r, 0]
        for p in range(1, k):
            for r in range(rows):
                v = x[r, p]
                cur = out[r]
                out[r] = v if _maxout_takes(v, cur) else cur


@njit(**OPTS)
def _maxout_bwd_row(g, x, out, best):
    # g (inner,), x (k, inner), out (k, inner); best: scratch (inner,), the
    # index as a float (an integer index mixed vector widths, as in the
    # Cython backend's _maxout_range): of the dtype where k <= 2**24 (exact),
    # float64 beyond (_maxout_bwd picks the scratch)
    k, inner = x.shape
    if k == 1:
        # pieces = 1, the identity: out may be g itself (in place, the one
        # case where the shapes match), which parking below would overwrite
        for i in range(inner):
            out[0, i] = g[i]
        return
    for i in range(inner):
        best[i] = 0
    for i in range(inner):
        out[0, i] = x[0, i]  # running best value, parked in out[0]
    for p in range(1, k):
        pf = cst(best[0], p)
        for i in range(inner):
            v = x[p, i]
            bv = out[0, i]
            take = _maxout_takes(v, bv)
            out[0, i] = v if take else bv
            best[i] = pf if take else best[i]
    for p in range(k):
        pf = cst(best[0], p)
        for i in range(inner):
            out[p, i] = g[i] if best[i] == pf else cst(g[i], 0.0)


@njit(**OPTS)
def _maxout_bwd_block(g, x, out, col, bv, bi):
    # g (rows,), x and out (rows, k), rows <= MCOL: the running best and its
    # index per group in scratch (bi as _maxout_bwd_row's best), each
    # piece's values and outputs through the contiguous column col
    rows, k = x.shape
    for r in range(rows):
        bv[r] = x[r, 0]
    for r in range(rows):
        bi[r] = 0
    for p in range(1, k):
        pf = cst(bi[0], p)
        for r in range(rows):
            col[r] = x[r, p]
        for r in range(rows):
            v = col[r]
            cur = bv[r]
            take = _maxout_takes(v, cur)
            bv[r] = v if take else cur
            bi[r] = pf if take else bi[r]
    for p in range(k):
        pf = cst(bi[0], p)
        for r in range(rows):
            col[r] = g[r] if bi[r] == pf else cst(g[r], 0.0)
        for r in range(rows):
            out[r, p] = col[r]


@njit(**OPTS)
def _maxout_bwd_blocks(g, x, out, bi):
    # _maxout_bwd_block over every block of MCOL groups, bi the index
    # scratch (MCOL) of the type _maxout_bwd_cols picks
    rows, k = x.shape
    col, bv = np.empty(MCOL, dtype=x.dtype), np.empty(MCOL, dtype=x.dtype)
    for lo in range(0, rows, MCOL):
        hi = min(rows, lo + MCOL)
        _maxout_bwd_block(g[lo:hi], x[lo:hi], out[lo:hi], col, bv, bi)


@njit(**OPTS)
def _maxout_bwd_cols(g, x, out):
    # g (rows,), x and out (rows, k) C-contiguous
    rows, k = x.shape
    xf, of = x.reshape(rows * k), out.reshape(rows * k)
    if k == 1:
        for r in range(rows):
            of[r] = g[r]  # out may be g itself (pieces = 1, in place)
    elif k == 2:
        _maxout_bwd_scan(g, xf, of, 2)
    elif k == 3:
        _maxout_bwd_scan(g, xf, of, 3)
    elif k == 4:
        _maxout_bwd_scan(g, xf, of, 4)
    elif k <= MAXOUT_EXACT_K:
        _maxout_bwd_blocks(g, x, out, np.empty(MCOL, dtype=x.dtype))
    else:
        _maxout_bwd_blocks(g, x, out, np.empty(MCOL, dtype=np.float64))


@njit(**OPTS)
def _maxout_bwd_rows(g, x, out, r0, r1):
    # groups r0..r1 with inner > 1, one scratch for the index (_maxout_bwd_row's
    # best): of the dtype where k <= 2**24, float64 beyond
    inner = x.shape[2]
    if x.shape[1] <= MAXOUT_EXACT_K:
        best = np.empty(inner, dtype=x.dtype)
        for r in range(r0, r1):
            _maxout_bwd_row(g[r], x[r], out[r], best)
    else:
        best64 = np.empty(inner, dtype=np.float64)
        for r in range(r0, r1):
            _maxout_bwd_row(g[r], x[r], out[r], best64)


MROWS = 4096  # groups per task when inner == 1
MCOL = 1024  # groups per block of _maxout_cols / _maxout_bwd_cols' column loops
MAXOUT_EXACT_K = 1 << 24  # float32 holds every index below it exactly


@njit(parallel=True, **PAR_OPTS)
def _maxout_fwd(x, out, nthreads):
    R, k, inner = x.shape
    if inner == 1:
        x2, o1 = x.reshape(R, k), out.reshape(R)
        nb = _cdiv(R, MROWS)
        for t in prange(nb):
            lo, hi = t * MROWS, min(R, (t + 1) * MROWS)
            _maxout_cols(x2[lo:hi], o1[lo:hi])
    else:
        for r in prange(R):
            _maxout_row(x[r], out[r])


@njit(**OPTS)
def _maxout_fwd_serial(x, out):
    R, k, inner = x.shape
    if inner == 1:
        _maxout_cols(x.reshape(R, k), out.reshape(R))
    else:
        for r in range(R):
            _maxout_row(x[r], out[r])


@njit(parallel=True, **PAR_OPTS)
def _maxout_bwd(g, x, out, nthreads):
    R, k, inner = x.shape
    if inner == 1:
        g1, x2, o2 = g.reshape(R), x.reshape(R, k), out.reshape(R, k)
        nb = _cdiv(R, MROWS)
        for t in prange(nb):
            lo, hi = t * MROWS, min(R, (t + 1) * MROWS)
            _maxout_bwd_cols(g1[lo:hi], x2[lo:hi], o2[lo:hi])
    else:
        # a range of groups per thread, one scratch each (an np.empty per
        # group cost more than a group of 10 columns)
        nt = min(nthreads, R)
        for t in prange(nt):
            _maxout_bwd_rows(g, x, out, t * R // nt, (t + 1) * R // nt)


@njit(**OPTS)
def _maxout_bwd_serial(g, x, out):
    R, k, inner = x.shape
    if inner == 1:
        _maxout_bwd_cols(g.reshape(R), x.reshape(R, k), out.reshape(R, k))
    else:
        _maxout_bwd_rows(g, x, out, 0, R)


# ------------------------------------------------------------------- prelu
# x (outer, C, inner), weight (C,). The forward gives each thread an equal
# share of the flat elements (_prelu_fwd_range). The backward's
# grad_weight is accumulated in float64 per task, then reduced in task
# order; the tasks do not depend on the thread count, so neither does the
# result.
# inner >= PRELU_ROWS_BELOW: spans of one (o, c), one weight each (backward:
# a task per span of up to CHUNK elements). Smaller inner: x viewed as rows
# of C*inner with a weight per column (w repeated inner times by the
# backend), the loops running along the row (backward: a block of rows per
# task) (a span per (o, c) cost 9 us per 1e3 elements with inner = 1: 1e5
# float32 in rows of 64 took 888 us). w is the weight per channel (C,) for
# spans and per column (C*inner,) for rows: prelu_weight() below makes the
# one a call needs.
PRELU_ROWS_BELOW = 64
PRELU_TASKS = 64  # at most this many row blocks (their partial sums: tasks x columns)
# The forward's whole spans shorter than this run by one loop nest
# (_prelu_fwd_spans); a call of _prelu_fwd_span per span (its slices and
# store head) cost about 25 ns a span. float32, one thread, out given, from
# the cache: (30, 32, 1024) 109 -> 84 us, (120, 32, 256) 175 -> 84, (480,
# 32, 64) 503 -> 84. Longer spans keep the call, whose stores start on a
# line: (1, 1, 1e6) with out 16 bytes off a line 84.6 against 87.1 us.
PRELU_SPAN_CALL_MIN = 4096


@njit(**OPTS)
def _prelu_fwd_span(x, wc, out):
    # stores from out's first 64-byte boundary on, as the elementwise spans
    # (_wrap_aligned): 1e5 float32, one thread, out 16 bytes off a line
    # 11.3-12.4 us, on a line 9.1
    h = _store_head(out)
    _prelu_fwd_span_l(x[:h], wc, out[:h])
    _prelu_fwd_span_l(x[h:], wc, out[h:])


@njit(**OPTS)
def _prelu_fwd_span_l(x, wc, out):
    if _same_data(x, out):  # in place: one array (see _exp_shift)
        for i in range(out.shape[0]):
            v = out[i]
            out[i] = v if v > 0 else wc * v
    else:
        for i in range(x.shape[0]):
            v = x[i]
            out[i] = v if v > 0 else wc * v


@njit(**OPTS)
def _prelu_fwd_spans(x2, w, o2, r0):
    # whole spans: the rows of x2 and o2 (spans, inner) are spans r0, r0 + 1,
    # ... of the (outer * C, inner) views, weight w[(r0 + r) % C] each
    C = w.shape[0]
    if _same_data(x2, o2):  # in place: one array (see _exp_shift)
        for r in range(o2.shape[0]):
            wc = w[(r0 + r) % C]
            for i in range(o2.shape[1]):
                v = o2[r, i]
                o2[r, i] = v if v > 0 else wc * v
        return
    for r in range(x2.shape[0]):
        wc = w[(r0 + r) % C]
        for i in range(x2.shape[1]):
            v = x2[r, i]
            o2[r, i] = v if v > 0 else wc * v


@njit(**OPTS)
def _prelu_bwd_span(g, x, wc, out):
    # the sum first: out may be g (in place), and its stores would change it
    s = _negdot64(x, g)
    for i in range(x.shape[0]):
        out[i] = g[i] if x[i] > 0 else wc * g[i]
    return s


@njit(**SUM_OPTS)
def _negdot64(x, g):
    """Sum of x*g over the x that are not > 0, in float64 (grad_weight)."""
    s = 0.0
    for i in range(x.shape[0]):
        s += 0.0 if x[i] > 0 else np.float64(x[i]) * np.float64(g[i])
    return s


@njit(**OPTS)
def _prelu_fwd_rows(x, w, out):
    # x, out (rows, K), w (K,): a weight per column
    if _same_data(x, out):  # in place: one array (see _exp_shift)
        for r in range(out.shape[0]):
            for c in range(out.shape[1]):
                v = out[r, c]
                out[r, c] = v if v > 0 else w[c] * v
        return
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[r, c]
            out[r, c] = v if v > 0 else w[c] * v


# Rows of K < PRELU_REP_K columns, K not a multiple of 8 (backward: K <
# PRELU_REP_K_BWD, not a multiple of 4): the weights repeated into a block of
# PRELU_REP - PRELU_REP % K (whole rows), and the rows' flat run taken a
# block at a time. The row loop's vector loop of K left a scalar remainder
# per row. 1e5 float32, 2 threads, in-process A/B, forward: C = 3 387 -> 14
# us, 12 88 -> 14, 15 139 -> 14, 20 37 -> 14, 50 19 -> 14; 1e7 C = 3 31 ->
# 2.5 ms, 20 6.1 -> 2.3. Backward: C = 3 475 -> 49 us, 5 135 -> 45, 7 207 ->
# 45, 15 104 -> 43; 1e7 C = 3 39 -> 4.3 ms. Elsewhere the row loop was as
# fast or faster (forward C = 64 at 1e5: 10 against 14 us; backward C = 12,
# 20, 35: 0.79-0.86x). As the Cython backend's _prelu_fwd_rows (PRELU_REP
# is not a multiple of 1024 elements, against 4K aliasing: see _impl.pxi).
PRELU_REP_K = 64
PRELU_ALIGN_MIN = 4096  # _prelu_fwd_whole: rows aligned from this many elements
PRELU_REP_K_BWD = 16
PRELU_REP = 2000


@njit(**OPTS)
def _prelu_fwd_flat(xf, w, of, lo, hi, K):
    # flat elements lo..hi (whole rows of K) of the (rows * K) views
    wr = _prelu_rep(w, K, PRELU_REP - PRELU_REP % K)
    L = wr.shape[0]
    for b in range(lo, hi, L):
        e = min(hi, b + L)
        _prelu_fwd_vec_l(xf[b:e], wr[:e - b], of[b:e])


@njit(**OPTS)
def _prelu_rep(w, K, L):
    # w (K,) repeated into L elements, by doubling copies
    wr = np.empty(L, dtype=w.dtype)
    wr[:K] = w
    m = K
    while m < L:
        c = min(m, L - m)
        wr[m:m + c] = wr[:c]
        m += c
    return wr


@njit(**OPTS)
def _prelu_bwd_flat(gf, xf, w, of, lo, hi, K, part):
    # the backward of flat elements lo..hi (whole rows of K) as
    # _prelu_fwd_flat; the weight's gradient summed per position of the
    # block in float64 and folded into part (K,) at the end, in a fixed
    # order: the serial kernel's blocks give the same sums
    wr = _prelu_rep(w, K, PRELU_REP - PRELU_REP % K)
    L = wr.shape[0]
    acc = np.zeros(L, dtype=np.float64)
    for b in range(lo, hi, L):
        e = min(hi, b + L)
        _prelu_bwd_vec(gf[b:e], xf[b:e], wr[:e - b], of[b:e], acc[:e - b])
    for r in range(0, L, K):
        for c in range(K):
            part[c] += acc[r + c]


@njit(**OPTS)
def _prelu_bwd_vec(g, x, w, out, acc):
    for i in range(x.shape[0]):
        v = x[i]
        gi = g[i]
        pos = v > 0
        out[i] = gi if pos else w[i] * gi
        acc[i] += 0.0 if pos else np.float64(v) * np.float64(gi)


@njit(**OPTS)
def _prelu_fwd_vec(x, w, out):
    # from out's first 64-byte boundary on, as _prelu_fwd_span
    h = _store_head(out)
    _prelu_fwd_vec_l(x[:h], w[:h], out[:h])
    _prelu_fwd_vec_l(x[h:], w[h:], out[h:])


@njit(**OPTS)
def _prelu_fwd_vec_l(x, w, out):
    if _same_data(x, out):  # in place: one array (see _exp_shift)
        for i in range(out.shape[0]):
            v = out[i]
            out[i] = v if v > 0 else w[i] * v
    else:
        for i in range(x.shape[0]):
            v = x[i]
            out[i] = v if v > 0 else w[i] * v


@njit(**OPTS)
def _prelu_bwd_rows(g, x, w, out, gw):
    # gw (K,) float64 += the columns' sums of x*g where x is not > 0
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[r, c]
            gr = g[r, c]
            pos = v > 0
            out[r, c] = gr if pos else w[c] * gr
            gw[c] += 0.0 if pos else np.float64(v) * np.float64(gr)


@njit(**OPTS)
def _prelu_row_blocks(rows, K):
    """(rows per task, tasks) for the row form."""
    rpt = max(_cdiv(rows, PRELU_TASKS), _cdiv(CHUNK, K))
    return rpt, _cdiv(rows, rpt)


def prelu_weight(w, inner):
    """The weight array the prelu kernels take for this inner length."""
    return np.repeat(w, inner) if 1 < inner < PRELU_ROWS_BELOW else w


@njit(**OPTS)
def _prelu_fwd_range(x, w, out, lo, hi):
    # flat elements lo..hi of x and out. inner >= PRELU_ROWS_BELOW: spans of
    # one (o, c), one weight each. Else rows of K = C*inner: the partial rows
    # at either end by one loop along the row, the whole rows between by
    # _prelu_fwd_whole
    outer, C, inner = x.shape
    if inner >= PRELU_ROWS_BELOW:
        x2, o2 = x.reshape(outer * C, inner), out.reshape(outer * C, inner)
        r0, r1 = _cdiv(lo, inner), hi // inner
        if inner < PRELU_SPAN_CALL_MIN and r0 < r1:
            # the part of span r0 - 1 from lo, whole spans r0..r1 by one loop nest, span r1 up to hi
            if lo < r0 * inner:
                _prelu_fwd_span(x2[r0 - 1, lo % inner:], w[(r0 - 1) % C], o2[r0 - 1, lo % inner:])
            _prelu_fwd_spans(x2[r0:r1], w, o2[r0:r1], r0)
            if hi > r1 * inner:
                _prelu_fwd_span(x2[r1, :hi - r1 * inner], w[r1 % C], o2[r1, :hi - r1 * inner])
            return
        f = lo
        while f < hi:
            r, i = f // inner, f % inner
            e = i + min(hi - f, inner - i)
            _prelu_fwd_span(x2[r, i:e], w[r % C], o2[r, i:e])
            f += e - i
        return
    K = C * inner
    xf, of = x.reshape(outer * K), out.reshape(outer * K)
    r0, r1 = _cdiv(lo, K), hi // K
    if r0 > r1:  # lo and hi inside one row
        _prelu_fwd_vec(xf[lo:hi], w[lo % K:lo % K + hi - lo], of[lo:hi])
        return
    _prelu_fwd_vec(xf[lo:r0 * K], w[K - (r0 * K - lo):], of[lo:r0 * K])
    _prelu_fwd_whole(x.reshape(outer, K)[r0:r1], w, out.reshape(outer, K)[r0:r1])
    _prelu_fwd_vec(xf[r1 * K:hi], w[:hi - r1 * K], of[r1 * K:hi])


@njit(**OPTS)
def _prelu_fwd_whole(x2, w, o2):
    # rows (rows, K), w (K,): by blocks (_prelu_fwd_flat) or rows. Where a
    # row is whole 64-byte lines and o2's first element is h short of one,
    # the rows are taken from that line on, the weights rotated by h to
    # match (the first row's first h elements before, the last row's last
    # K - h after), so that the row loop's stores are aligned: 1e5 float32
    # in rows of 64, one thread, out 16 bytes off a line 12.5-13.2 us, on a
    # line 9.6-10.1 (_prelu_fwd_flat, aligned: 14.4-15.1). Not below
    # PRELU_ALIGN_MIN elements, where the rotation cost more than it saved
    # (960 float32: 0.81 against 0.69 us on a line).
    rows, K = x2.shape
    n = rows * K
    if K < PRELU_REP_K and K % 8 != 0:
        _prelu_fwd_flat(x2.reshape(n), w, o2.reshape(n), 0, n, K)
        return
    h = _to_line(o2[0], 0) if (K * o2.itemsize) % 64 == 0 and n >= PRELU_ALIGN_MIN else 0
    if h == 0:
        _prelu_fwd_rows(x2, w, o2)
        return
    xf, of = x2.reshape(n), o2.reshape(n)
    _prelu_fwd_vec_l(xf[:h], w[:h], of[:h])
    wr = np.empty(K, dtype=w.dtype)
    wr[:K - h] = w[h:]
    wr[K - h:] = w[:h]
    m = rows - 1
    _prelu_fwd_rows(xf[h:h + m * K].reshape(m, K), wr, of[h:h + m * K].reshape(m, K))
    _prelu_fwd_vec_l(xf[n - (K - h):], w[h:], of[n - (K - h):])


# The rows' forward with non-temporal stores, for a result of the backend's
# stream_min bytes or more, as the cheap elementwise forwards write theirs
# (_buf1) and the Cython backend's rows (_impl.pxi, _prelu_fwd_rows): each
# whole block of PRELU_STB elements on a 64-byte line computed into a buffer
# and copied to out with non-temporal stores, the rest plain; the weights
# repeated into a block and one row more, so that a block may start at any
# column. The stores then do not read out's lines first, wherever those
# lines are: 1e7 float32 in rows of 64, 2 threads, best of 5 calls timed in
# turns with torch's prelu (as bench/cython_vs_torch.py times), two runs of
# each tree: 2.04-2.73 -> 1.52-1.85 ms; in calls of its own 1.49-1.87 ->
# 1.50-1.69. PRELU_STB is the elementwise blocks' BUF: with 1984 elements
# (7936 bytes), in-process A/B, the same offsets: 2 threads 1.53-1.67 ms ->
# 1.47-1.55, one thread 2.23-2.40 -> 1.84-1.94.
PRELU_STB = BUF  # whole 64-byte lines of float32 or float64


@njit(**OPTS)
def _prelu_fwd_buf(xp, wp, bp, n):
    # _prelu_fwd_vec_l into a buffer apart from x, on pointers: views of the
    # memory without a meminfo. Called with slices (xf[b:b + m], ...), each
    # block increfed and decrefed xf's and wr's meminfo: NRT_incref is a
    # locked add, and a locked instruction waits until the non-temporal
    # stores of the block before have left the write-combining buffers, so a
    # block's loop never ran while the last block's copy drained. 1e7 float32
    # in rows of 64, alternating processes: 2 threads 1.91-2.12 -> 1.56-1.68
    # ms (relu's 1.55-1.94 in the same runs), one thread 3.1 -> 2.3-2.5. The
    # row loops (softmax's, plain stores) lose nothing to the same counts:
    # 1e7 float32 in rows of 1000, in-process A/B, slices 2.35-2.50 ms,
    # carray views 2.33-2.40.
    x, w, buf = carray(xp, n), carray(wp, n), carray(bp, n)
    for i in range(n):
        v = x[i]
        buf[i] = v if v > 0 else w[i] * v


@njit(**OPTS)
def _prelu_fwd_stream(xf, w, of, lo, hi, K):
    # flat elements lo..hi of the (rows * K) views, w (K,) a weight per column
    wr = _prelu_rep(w, K, PRELU_STB + K)
    # the buffer at least 512 bytes from wr, x and out modulo 4 KiB (_place_buf)
    row = np.empty(PRELU_STB + 4096 // of.itemsize, dtype=of.dtype)
    buf = _place_buf(row, PRELU_STB, _page_offset(wr, lo % K), _page_offset(xf, lo), _page_offset(of, lo))
    b = lo
    while b < hi:
        m = _block(of, b, hi, True, PRELU_STB)
        c = b % K
        if m == PRELU_STB and _line_offset(of, b) == 0:
            _prelu_fwd_buf(_ptr(xf, b), _ptr(wr, c), _ptr(buf, 0), m)
            _stream_copy(buf, of, b, m)
        else:
            _prelu_fwd_vec_l(xf[b:b + m], wr[c:c + m], of[b:b + m])
        b += m
    _sfence()


@njit(parallel=True, **PAR_OPTS)
def _prelu_fwd(x, w, out, stream, nthreads):
    # Each thread an equal share of the flat elements (no sums: any split
    # gives the same bits). The tasks of CHUNK elements or blocks of rows
    # this replaced gave one thread 4 of 7 (1e5 float32, 2 threads: one
    # channel, and 64 channels in rows). stream: the rows' stores
    # non-temporal (_prelu_fwd_stream).
    n = x.size
    outer, C, inner = x.shape
    for t in prange(nthreads):
        lo, hi = t * n // nthreads, (t + 1) * n // nthreads
        if stream and inner < PRELU_ROWS_BELOW:
            _prelu_fwd_stream(x.reshape(n), w, out.reshape(n), lo, hi, C * inner)
        else:
            _prelu_fwd_range(x, w, out, lo, hi)


@njit(**OPTS)
def _prelu_fwd_serial(x, w, out, stream):
    # _prelu_fwd_range's work on all of x without its partial rows: each
    # slice and call there cost ~0.07 us (960 float32: 0.75 against 0.37)
    outer, C, inner = x.shape
    if stream and inner < PRELU_ROWS_BELOW:
        _prelu_fwd_stream(x.reshape(x.size), w, out.reshape(x.size), 0, x.size, C * inner)
    elif inner >= PRELU_SPAN_CALL_MIN:
        x2, o2 = x.reshape(outer * C, inner), out.reshape(outer * C, inner)
        for r in range(outer * C):
            _prelu_fwd_span(x2[r], w[r % C], o2[r])
    elif inner >= PRELU_ROWS_BELOW:
        _prelu_fwd_spans(x.reshape(outer * C, inner), w, out.reshape(outer * C, inner), 0)
    else:
        _prelu_fwd_whole(x.reshape(outer, C * inner), w, out.reshape(outer, C * inner))


def _prelu_fwd_c(xp, wp, op, outer, C, inner, nw, stream, nthreads):
    x, out = carray(xp, (outer, C, inner)), carray(op, (outer, C, inner))
    _prelu_fwd(x, carray(wp, nw), out, stream != 0, nthreads)


def _prelu_fwd_serial_c(xp, wp, op, outer, C, inner, nw, stream, nthreads):
    x, out = carray(xp, (outer, C, inner)), carray(op, (outer, C, inner))
    _prelu_fwd_serial(x, carray(wp, nw), out, stream != 0)


_PRELU_C = {}  # (dtype, parallel) -> cfunc


def prelu_fwd_cfunc(dtype, parallel):
    """_prelu_fwd (``parallel``) or _prelu_fwd_serial as a cfunc for ``dtype``
    (compiled or loaded from the cache on first use): (x, w, out, outer, C,
    inner, len(w), stream, nthreads) on the memory of C-contiguous (outer, C,
    inner) x and out and a contiguous w, for fastact._fastpath.PreluFwd (the
    serial one ignores nthreads). The parallel one holds the GIL on entry, as
    the parallel kernels do (PAR_OPTS)."""
    dtype = np.dtype(dtype)
    fn = _prelu_fwd_c if parallel else _prelu_fwd_serial_c
    return _cfunc_of(_PRELU_C, (dtype, parallel), fn, dtype, "PPPiiii4i")


@njit(parallel=True, **PAR_OPTS)
def _prelu_bwd(g, x, w, out, nthreads):
    outer, C, inner = x.shape
    gw = np.zeros(C, dtype=np.float64)
    if inner < PRELU_ROWS_BELOW:
        K = C * inner
        g2, x2, o2 = g.reshape(outer, K), x.reshape(outer, K), out.reshape(outer, K)
        gf, xf, of = g.reshape(outer * K), x.reshape(outer * K), out.reshape(outer * K)
        flat = K < PRELU_REP_K_BWD and K % 4 != 0
        rpt, nb = _prelu_row_blocks(outer, K)
        part = np.zeros((nb, K), dtype=np.float64)
        for t in prange(nb):
            lo, hi = t * rpt, min(outer, (t + 1) * rpt)
            if flat:
                _prelu_bwd_flat(gf, xf, w, of, lo * K, hi * K, K, part[t])
            else:
                _prelu_bwd_rows(g2[lo:hi], x2[lo:hi], w, o2[lo:hi], part[t])
        for t in range(nb):
            for j in range(K):
                gw[j // inner] += part[t, j]
        return gw
    nc = _cdiv(inner, CHUNK)
    part1 = np.empty(outer * C * nc, dtype=np.float64)
    for t in prange(outer * C * nc):
        oc, k = t // nc, t % nc
        o, c = oc // C, oc % C
        lo, hi = k * CHUNK, min(inner, (k + 1) * CHUNK)
        part1[t] = _prelu_bwd_span(g[o, c, lo:hi], x[o, c, lo:hi], w[c], out[o, c, lo:hi])
    for t in range(outer * C * nc):
        gw[(t // nc) % C] += part1[t]
    return gw


@njit(**OPTS)
def _prelu_bwd_serial(g, x, w, out):
    outer, C, inner = x.shape
    gw = np.zeros(C, dtype=np.float64)
    if inner < PRELU_ROWS_BELOW:
        # the same blocks as the parallel kernel, so the same sums
        K = C * inner
        g2, x2, o2 = g.reshape(outer, K), x.reshape(outer, K), out.reshape(outer, K)
        rpt, nb = _prelu_row_blocks(outer, K)
        gf, xf, of = g.reshape(outer * K), x.reshape(outer * K), out.reshape(outer * K)
        flat = K < PRELU_REP_K_BWD and K % 4 != 0
        part = np.zeros(K, dtype=np.float64)
        for t in range(nb):
            lo, hi = t * rpt, min(outer, (t + 1) * rpt)
            part[:] = 0.0
            if flat:
                _prelu_bwd_flat(gf, xf, w, of, lo * K, hi * K, K, part)
            else:
                _prelu_bwd_rows(g2[lo:hi], x2[lo:hi], w, o2[lo:hi], part)
            for j in range(K):
                gw[j // inner] += part[j]
        return gw
    nc = _cdiv(inner, CHUNK)
    for o in range(outer):
        for c in range(C):
            for k in range(nc):
                lo, hi = k * CHUNK, min(inner, (k + 1) * CHUNK)
                gw[c] += _prelu_bwd_span(g[o, c, lo:hi], x[o, c, lo:hi], w[c], out[o, c, lo:hi])
    return gw


# -------------------------------------------------------------------- copy
@njit(parallel=True, **PAR_OPTS)
def parallel_copy(a, out, nthreads):
    """The bandwidth limit for elementwise kernels (bench reference)."""
    for i in prange(a.shape[0]):
        out[i] = a[i]
