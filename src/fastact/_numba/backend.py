"""The Numba backend object (see ``docs/backend-contract.md``).

Per call, Python does: one dict lookup for the handler, one for the dtype and
one for the parameter values (which hold the parameters in the array dtype,
derived ones included), and a size test choosing the serial or the ``prange``
kernel; both go straight to the compiled entry points (``_entry``), skipping
the dispatcher's argument typing. With ``fastact._fastpath`` built, a serial
elementwise call, and the softmax family's serial rows, skip the entry
point's unboxing too: C calls the kernel's cfunc with the arrays' pointers
(``_ew_handler``); so does a parallel elementwise call, through a cfunc of
the pointer kernel of its arity (``_kernels.par_cfunc``). Then the backend's
``forward`` and ``backward`` are ``_fastpath.Dispatch``'s, in C: the
elementwise ops' common calls (``_fastpath.Ew``), prelu's forward on a
weight taken as it is (``_fastpath.PreluFwd``) and the softmax family's
rows (``_fastpath.RowsPar``, parallel and serial; both through the kernels'
cfuncs) go from the public function to the kernel without a Python frame
(relu on 1e5 float32, 2 threads, out given: 7.4-7.8 -> 6.9-7.2 us; on 1e3,
0.62 -> 0.44; softmax's backward from y on one row of 1000 float32, serial,
allocating: 1.67 -> 0.52 us, its forward 1.09 -> 0.78, Cython's 0.54 and 0.75),
and the other handlers are called without the methods' frame; every call
those do not know goes to the Python handlers, which make the same call.
Everything that can be decided once is decided at import or on the first
call per dtype.

Thread and fork safety
----------------------
* Before a parallel kernel runs, ``numba.set_num_threads`` gets the count from
  ``fastact._config.get_num_threads()`` (or the dispatcher's request). numba's
  setting is thread-local, so it is set in the calling thread, and only when
  it changes (a thread-local int remembers the last value). Setting it inside
  the kernel would be free but makes the kernel uncacheable.
* numba's workqueue layer aborts the process when two Python threads run a
  parallel region at once. When that layer is the one numba picked, parallel
  calls go through a non-blocking lock; a caller that does not get it runs the
  serial kernel instead of waiting. omp and tbb are thread-safe: no lock.
* GNU OpenMP cannot run a parallel region in a child forked after the parent
  started its thread pool (the child hangs or dies). ``os.register_at_fork``
  switches a forked child to the serial kernels for good once the parent has
  run a parallel kernel.
* numba's omp layer turns on nested parallelism when it starts its pool
  (libgomp's max-active-levels, process-wide: 1 -> 255). PyTorch shares that
  libgomp when it is loaded after fastact's Cython extension (one
  ``libgomp.so.1``), and its kernels that open a parallel region inside
  another then oversubscribe the cores: ``torch.tanh`` on 1e5 float32 went
  from 29 us to 3.4 ms. fastact's kernels never nest numba's regions, so
  after the start ``_start_parallel`` sets each loaded libgomp back to the
  level it had (1 for one numba loaded itself), unless OMP_NESTED or
  OMP_MAX_ACTIVE_LEVELS say what the user wants.
"""

from __future__ import annotations

import ctypes
import os
import threading

import numba
import numpy as np

from .. import _config
from . import _kernels as K
from . import _scalar as S

try:  # serial elementwise calls through the span functions, from C (see _ew_handler)
    from .._fastpath import glu_rows as _glu_rows_c, rows as _rows_c, span1 as _span1, span2 as _span2
except ImportError:  # not built (a source checkout): the serial kernels' entry points
    _span1 = _span2 = _rows_c = _glu_rows_c = None
try:  # parallel elementwise calls through a cfunc of the pointer kernel, from C (see _ew_handler)
    from .._fastpath import par1 as _par1, par2 as _par2
except ImportError:
    _par1 = _par2 = None
try:  # the common elementwise calls dispatched in C (see NumbaBackend.__init__)
    from .._fastpath import (Dispatch as _Dispatch, Ew as _Ew, PreluFwd as _PreluFwd, RowsPar as _RowsPar,
                             set_stream_min as _set_stream_min_c)
    _EW_CALLS = {1: (_span1, _par1), 2: (_span2, _par2)}  # the calls an Ew makes, by arity
except ImportError:
    _Dispatch = _Ew = _PreluFwd = _RowsPar = _set_stream_min_c = _EW_CALLS = None

# Serial below these sizes. Measured with bench/numba_vs_torch.py --threshold
# (float32, 2 threads, shared 2-core znver4 box, 2026-11-23, after the
# entry-point fast path): relu serial/parallel 2**15: 3.5/4.8 us, 2**16:
# 5.8/5.3 us, 2**17: 13.1/9.0 us -- the cut-over sits at ~2**16; sigmoid
# 2**13: 4.8/4.9 us (a tie), 2**14: 9.2/7.2 us. Functions without a
# transcendental behave like relu, the rest like sigmoid or costlier.
# Launching a parallel region costs ~2.5-3 us here (parallel time at 2**10).
SERIAL_MAX = 1 << 13
SERIAL_MAX_CHEAP = 1 << 16
CHEAP = {"relu", "relu6", "leaky_relu", "hardtanh", "threshold", "hardshrink", "softshrink",
         "hardsigmoid", "hardswish", "rrelu"}
# Row kernels (softmax family, glu, maxout, prelu): total elements below
# which the serial kernel runs; not measured separately yet (the row work per
# element is sigmoid-like or costlier, so 2**14 is on the safe side).
SERIAL_MAX_ROWS = 1 << 14


class _State:
    parallel_ok = True  # False in a forked child after parallel use
    parallel_used = False
    layer = None  # numba threading layer, known after the first parallel call
    lock = None  # set when the layer is workqueue
    omp_levels = None  # libgomp max-active-levels after the omp layer started (_restore_gomp_levels)


_state = _State()
_init_lock = threading.Lock()


def _after_fork_in_child():
    if _state.parallel_used:
        _state.parallel_ok = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


_GOMP_NAMES = ("libgomp.so.1", "libgomp.so.1.0.0")  # as fastact's extension, torch and numba's omppool link it


def _gomp_loaded():
    """The GNU OpenMP runtimes loaded in this process, by the address of their omp_get_max_active_levels.

    Only libraries already loaded (RTLD_NOLOAD): looking does not load one.
    """
    found = {}
    noload = getattr(os, "RTLD_NOLOAD", 0)
    if not noload:
        return found
    for name in _GOMP_NAMES:
        try:
            lib = ctypes.CDLL(name, mode=noload | getattr(os, "RTLD_LAZY", 1))
            fn = lib.omp_get_max_active_levels
        except (OSError, AttributeError):
            continue
        found.setdefault(ctypes.cast(fn, ctypes.c_void_p).value, lib)
    return found


def _gomp_levels():
    return {k: lib.omp_get_max_active_levels() for k, lib in _gomp_loaded().items()}


def _restore_gomp_levels(before):
    """After numba's omp layer started: max-active-levels as before (see the module doc); the levels now."""
    user = "OMP_NESTED" in os.environ or "OMP_MAX_ACTIVE_LEVELS" in os.environ
    now = {}
    for k, lib in _gomp_loaded().items():
        if not user:
            lib.omp_set_max_active_levels(before.get(k, 1))
        now[k] = lib.omp_get_max_active_levels()
    return now


def _start_parallel():
    """Start numba's thread pool once and learn which layer it chose."""
    with _init_lock:
        if _state.layer is None:
            before = _gomp_levels()
            a = np.zeros(1, dtype=np.float64)
            K.parallel_copy(a, a, 1)
            try:
                layer = numba.threading_layer()
            except ValueError:  # pragma: no cover
                layer = "unknown"
            if layer == "omp":
                _state.omp_levels = _restore_gomp_levels(before)
            _state.lock = threading.Lock() if layer == "workqueue" else None
            _state.layer = layer
            _state.parallel_used = True


def _threads(size, limit, requested):
    """Thread count for a parallel call, or 0 when the call must run serially.

    ``requested`` is the caller's count (the dispatcher's tuning table); 0
    means: parallel above ``limit`` elements with ``get_num_threads()``.
    """
    if requested:
        n = requested
    elif size <= limit:
        return 0
    else:
        n = _config.get_num_threads()
    if not _state.parallel_ok:
        return 0
    if n > _MAXT:
        n = _MAXT
    if n < 2:
        return 0
    if _state.layer is None:
        _start_parallel()
    return n


_MAXT = numba.config.NUMBA_NUM_THREADS



_tls = threading.local()


def _set_threads(n):
    # numba's count is per calling thread; only call into numba on a change.
    if getattr(_tls, "n", 0) != n:
        numba.set_num_threads(n)
        _tls.n = n


def _run(kpar, kser, args, n):
    """Run the parallel kernel with ``n`` threads (or the serial one under contention)."""
    _set_threads(n)
    lock = _state.lock
    if lock is None:
        return kpar(*args, n)
    if lock.acquire(blocking=False):
        try:
            return kpar(*args, n)
        finally:
            lock.release()
    return kser(*args)


def _spec(spec):
    """PARAMS entry -> (names, derive); derive(values, T) -> (p0, p1, p2, p3) in T."""
    if len(spec) == 2 and callable(spec[1]):
        names, fn = spec

        def derive(values, T):
            v = tuple(fn(values, T))
            return v + (T(0),) * (4 - len(v))
    else:
        names = tuple(spec)

        def derive(values, T):
            return tuple(T(v) for v in values) + (T(0),) * (4 - len(values))
    return names, derive


def _entry(disp, args):
    """The compiled entry point of dispatcher ``disp`` for ``args`` (compiled or
    loaded from the cache first if needed), or ``disp`` itself.

    A numba dispatcher spends ~0.25 us per call typing its arguments and
    picking the overload -- a quarter of a 1e3-element forward. The backend
    contract fixes everything but the dtype (1-D, C-contiguous, aligned), so
    the entry points are looked up once per dtype and called directly. A
    readonly x only changes the typing, not the data model, so the entry
    point compiled for either serves both. If numba's internals change, this
    quietly falls back to the dispatcher.
    """
    sig = tuple(numba.typeof(v) for v in args)
    disp.compile(sig)
    try:
        cres = disp.overloads.get(sig)
        if cres is not None and callable(cres.entry_point):
            return cres.entry_point
    except Exception:  # pragma: no cover - numba internals moved
        pass
    return disp


_MEMO_MAX = 1024

# Elementwise results of at least this many bytes go through the buffered
# drivers with non-temporal stores (_kernels._buf1..3): fastact._config's
# setting, copied here when it changes. Only the memory-bound kernels: the
# cheap activations' (CHEAP) and these y-based backwards. The costly kernels
# lost: their compute no longer hides under the plain stores' memory traffic
# (measured on the Cython backend, the same scheme: _elementwise.pxi.in).
STREAM_Y = ("sigmoid", "tanh", "elu", "selu", "celu")
# and these backwards from x (an exp where x <= 0): in-process A/B, 1e7 float32,
# 2 threads, ms, plain / buffer: elu 2.64-2.67 / 2.18-2.22, selu 2.70-2.79 /
# 2.20-2.24, celu 2.77-2.87 / 2.49-2.50 (on a faster phase of the host, elu
# 1.92-2.06 either way; softplus's, costlier, lost: 2.63-2.90 / 3.02-3.25)
STREAM_X = ("elu", "selu", "celu")
_stream_min = _config.stream_min_bytes()


def _set_stream_min(nbytes):
    global _stream_min
    _stream_min = nbytes
    if _set_stream_min_c is not None:
        _set_stream_min_c(nbytes)


_set_stream_min(_stream_min)
_config.on_stream_change(_set_stream_min)


def _via_entry(k, f, *args):
    """A parallel elementwise call through the array kernel's entry point k (no _fastpath)."""
    k(f, *args)


def _with_c(h, handler):
    """Make ``handler`` (a _fastpath.Handler) h's calls in C (h.ew, which
    NumbaBackend's Dispatch calls), h making the calls it leaves."""
    handler.py = h
    h.ew = handler


def _ew_handler(kser, kpar, spec, limit, arity, special=None, stream=None, nt=False):
    """The per-call path of one elementwise kernel pair (``arity`` input arrays).

    Per call: a dict lookup on the dtype, one on the parameter values, and
    one call of a compiled entry point. Measured on the 2-core box (float32,
    1 element, best of 7): the entry point alone 0.18 us; the previous handler
    (cast the parameters, memo derived ones, unpack) added ~0.5 us, this one
    ~0.15 us. The table entry for (dtype, parameter values) holds the entry
    points and the parameters as Python floats: the entry point unboxes them
    into the dtype exactly, since they are values of that dtype.
    ``special`` = ((test, serial, parallel), ...): kernels to run instead, the
    first whose ``test`` holds for the derived parameters (``_scalar.SPECIAL``).
    ``stream``: how a result of at least ``_stream_min`` bytes is written:
    "buffer" (a memory-bound kernel), through a buffer copied with
    non-temporal stores (_kernels._buf1); None, plainly. ``nt``: a float32
    result of at least ``_stream_min`` bytes runs the op's streamed span
    function instead (kpar.span(dtype, True), _kernels.NT_OPS: one pass, each
    vector stored non-temporally as it is computed; AVX-512) where the kernel
    has one (a special kernel may not); else, and float64, as ``stream``.
    """
    names, derive = _spec(spec)
    nk = len(names)
    n0 = names[0] if nk else None
    n1 = names[1] if nk > 1 else None
    # dtype -> {parameter key: [serial entry, (caller, parallel kernel, span function), p0, p1, p2, p3, p as T,
    #                          the parallel kernel (_kernels.Spans), (p0, p1, p2, p3), span function or None,
    #                          streamed span function (nt) or None]}
    table = {}
    # The serial call goes through the op's span function, the cfunc the parallel
    # kernel's threads call, from fastact._fastpath (C) when that is built: the
    # serial kernel's entry point unboxes each ndarray, the span function takes
    # pointers (1e3 float32, the call alone: relu 0.24 -> 0.11 us, softshrink
    # 0.30 -> 0.16). The span function is the serial kernel on the arrays' memory.
    tramp = _span1 if arity == 1 else _span2
    # The parallel call goes through a cfunc of the pointer kernel of the op's
    # arity, from C, when that is built: c[1] = (caller, kernel, span function),
    # called as caller(kernel, span function, arrays..., p0..p3, nthreads).
    # Against the array kernel's entry point, float32 on 2 threads, the
    # backend's call with its allocation, seven alternating runs: 16 elements,
    # relu 2.25-2.65 -> 2.21-2.42 us, relu's backward 2.29-2.62 -> 2.22-2.42;
    # 1e5 elements 0-0.3 us less, within the noise.
    ptramp = _par1 if arity == 1 else _par2

    def prepare(arrays, params, key):
        T = arrays[0].dtype.type
        with np.errstate(over="ignore", invalid="ignore"):  # a parameter beyond T's range: +-inf, no warning
            p = derive(tuple(params[n] for n in names), T)
        ks, kp = next(((s, k) for test, s, k in special or () if test(p)), (kser, kpar))
        pf = tuple(float(v) for v in p)
        c = [_entry(ks, arrays + p), None, *pf, p, kp, pf, None, None]
        if tramp is not None:
            c[9] = kp.span(arrays[0].dtype).address
        if nt and kp.has_nt and arrays[0].dtype.char == "f":
            # the streamed span function too: loaded (or compiled) with the rest on the first
            # call, not by the first large one
            c[10] = kp.span(arrays[0].dtype, True).address
        try:
            d = table.setdefault(arrays[0].dtype, {})
            if len(d) < _MEMO_MAX:
                d[key] = c
        except TypeError:  # unhashable parameter value: no memo
            pass
        return c

    def parallel(c, arrays, threads):
        n = _threads(len(arrays[0]), limit, threads)
        if not n:
            return False
        if _state.lock is not None:
            # the workqueue: through the dispatcher (the serial entry point when busy), with the
            # parameters in the dtype, as the span function takes them (Python floats typed the
            # kernel float64)
            _run(c[7], c[0], arrays + c[6], n)
            return True
        pe = c[1]
        if pe is None:
            f = c[7].span(arrays[0].dtype).address  # the op's span function
            if ptramp is not None:
                pe = (ptramp, K.par_cfunc(arity, arrays[0].dtype).address, f)
            else:
                pe = (_via_entry, _entry(c[7].kernel, (f,) + arrays + c[6] + (n,)), f)
            c[1] = pe
        _set_threads(n)  # call the kernel straight (saves ~0.3 us of _run)
        pe[0](pe[1], pe[2], *arrays, *c[8], n)
        return True

    def streamed(c, arrays, threads):
        # float32, nt: the op's streamed span function, on the threads the plain call would use
        sp = c[7]
        f = c[10]
        n = _threads(len(arrays[0]), limit, threads) if threads > 1 or (
            threads == 0 and len(arrays[0]) > limit) else 0
        if n and _state.lock is None and ptramp is not None:
            _set_threads(n)
            ptramp(K.par_cfunc(arity, arrays[0].dtype).address, f, *arrays, *c[8], n)
        elif n:
            _run(sp.kernel, sp.serial, (f,) + arrays + c[6], n)
        elif tramp is not None:
            tramp(f, *arrays, *c[8])
        else:
            sp.serial(f, *arrays, *c[6])

    def buffered(c, arrays, threads, stream):
        # out is one of the inputs (the same object), or a result to stream: the span
        # function through a buffer (_kernels.BUF streaming, else INPLACE_BUF), on the
        # threads the plain call would use
        sp = c[7]
        args = (sp.span(arrays[0].dtype).address,) + arrays + (stream,) + c[6]
        n = _threads(len(arrays[0]), limit, threads)
        if n:
            _run(sp.inplace, sp.inplace_serial, args, n)
        elif stream and _state.parallel_ok:
            # one thread, streaming: the parallel kernel on a team of one. Its body,
            # the same _buf1 loop, ran 1.5x faster than the serial function compiled
            # from it (1e7 float32 relu: 3.3-4.0 ms against 5.2-5.9, pinned to one
            # CPU alike; compiled without the parfor, the parallel kernel's source
            # was as slow: the parfor's lowering makes the difference, cause not
            # found). The team's start is nothing next to a result of 8 MiB. One
            # thread first, so that starting the pool here creates no worker.
            _set_threads(1)
            if _state.layer is None:
                _start_parallel()
            _run(sp.inplace, sp.inplace_serial, args, 1)
        else:
            sp.inplace_serial(*args)

    if arity == 1:
        def h(a, out, params, threads):
            k = None if nk == 0 else params[n0] if nk == 1 else (params[n0], params[n1])
            try:
                c = table[a.dtype][k]
            except (KeyError, TypeError):
                c = prepare((a, out), params, k)
            st = (stream or nt) and out.nbytes >= _stream_min
            if out is a:
                buffered(c, (a, out), threads, st and stream == "buffer")
                return
            if st:
                if c[10] is not None:
                    streamed(c, (a, out), threads)
                    return
                if stream == "buffer":
                    buffered(c, (a, out), threads, True)
                    return
            if threads > 1 or (threads == 0 and len(a) > limit):
                n = _direct_threads(threads) if c[1] is not None else 0
                if n:
                    pe = c[1]
                    pe[0](pe[1], pe[2], a, out, c[2], c[3], c[4], c[5], n)
                    return
                if parallel(c, (a, out), threads):
                    return
            if c[9] is not None:
                tramp(c[9], a, out, c[2], c[3], c[4], c[5])
                return
            c[0](a, out, c[2], c[3], c[4], c[5])
    else:
        def h(a, b, out, params, threads):
            k = None if nk == 0 else params[n0] if nk == 1 else (params[n0], params[n1])
            try:
                c = table[a.dtype][k]
            except (KeyError, TypeError):
                c = prepare((a, b, out), params, k)
            st = (stream or nt) and out.nbytes >= _stream_min
            if out is a or out is b:
                buffered(c, (a, b, out), threads, st and stream == "buffer")
                return
            if st:
                if c[10] is not None:
                    streamed(c, (a, b, out), threads)
                    return
                if stream == "buffer":
                    buffered(c, (a, b, out), threads, True)
                    return
            if threads > 1 or (threads == 0 and len(a) > limit):
                n = _direct_threads(threads) if c[1] is not None else 0
                if n:
                    pe = c[1]
                    pe[0](pe[1], pe[2], a, b, out, c[2], c[3], c[4], c[5], n)
                    return
                if parallel(c, (a, b, out), threads):
                    return
            if c[9] is not None:
                tramp(c[9], a, b, out, c[2], c[3], c[4], c[5])
                return
            c[0](a, b, out, c[2], c[3], c[4], c[5])

    if _Ew is not None and (tramp, ptramp) == _EW_CALLS[arity]:
        # its common calls, made in C (NumbaBackend.__init__)
        _with_c(h, _Ew(table, _direct_threads, tuple(names), arity, bool(stream or nt), limit))
    return h


def _has_nt(op, direction, arity):
    """Whether the op's kernel, or one of its special kernels (_scalar.SPECIAL), has a streamed span function
    (_kernels.NT_OPS); the handler runs it where the kernel it picked has one."""
    return any((f"{direction}_{op}{suffix}", arity) in K.NT_OPS
               for suffix in ("", *("_" + s for _, s in S.SPECIAL.get(op, ()))))


class NumbaBackend:
    name = "numba"

    def __init__(self):
        self._fwd = {}
        self._bwd_x = {}
        self._bwd_y = {}
        def special(op, direction, arity):
            found = tuple((test, *K._instantiate(f"{direction}_{op}_{suffix}", arity))
                          for test, suffix in S.SPECIAL.get(op, ()) if hasattr(S, f"{direction}_{op}_{suffix}"))
            return found or None

        for op, spec in S.PARAMS.items():
            lim = SERIAL_MAX_CHEAP if op in CHEAP else SERIAL_MAX
            cheap = "buffer" if op in CHEAP else None
            self._fwd[op] = _ew_handler(*K._instantiate("fwd_" + op, 1), spec, lim, 1, special(op, "fwd", 1),
                                        cheap, ("fwd_" + op, 1) in K.NT_OPS)
            self._bwd_x[op] = _ew_handler(*K._instantiate("bwd_" + op, 2), spec, lim, 2, special(op, "bwd", 2),
                                          "buffer" if op in STREAM_X else cheap, _has_nt(op, "bwd", 2))
            if hasattr(S, "bwdy_" + op):
                self._bwd_y[op] = _ew_handler(*K._instantiate("bwdy_" + op, 2), spec, lim, 2, None,
                                              "buffer" if op in STREAM_Y else cheap, ("bwdy_" + op, 2) in K.NT_OPS)
        for op in _SOFTMAX_MODES:
            self._fwd[op] = _softmax_handler(op)
            self._bwd_y[op] = _softmax_bwd_handler(op)
        self._fwd["prelu"] = _prelu_handler()
        rr_f = _ew_handler(*K._instantiate("fwd_rrelu", 2), (), SERIAL_MAX_CHEAP, 2)
        self._rrelu_bwd = K._instantiate("bwd_rrelu", 3)
        self._fwd["rrelu"] = lambda x, out, p, th: rr_f(x, p["slopes"], out, p, th)
        if _Dispatch is not None:
            # the elementwise ops' common calls in C, from the public function
            # straight to the kernel, and the other handlers without the Python
            # methods' frame (see _fastpath)
            def ew(handlers):
                return {op: getattr(h, "ew", None) or h for op, h in handlers.items()}
            d = _Dispatch(ew(self._fwd), ew(self._bwd_x), ew(self._bwd_y), self.forward, self.backward)
            self.forward, self.backward = d.forward, d.backward

    # ------------------------------------------------------------ forward
    def threads_for(self, n):
        """Threads this backend uses for ``n`` elements when left to decide (costly functions)."""
        if n <= SERIAL_MAX or not _state.parallel_ok:
            return 1
        return max(1, min(_config.get_num_threads(), _MAXT))

    def forward(self, name, x, out, params, threads=0):
        h = self._fwd.get(name)
        if h is not None:
            h(x, out, params, threads)
            return None
        if name == "gelu":
            self._fwd["gelu_tanh" if params["approximate"] == "tanh" else "gelu_none"](x, out, params, threads)
        elif name == "sparsemax":  # (the softmax family has handlers in _fwd)
            _call(K._sparsemax_fwd, K._sparsemax_fwd_serial, (x, out), x.size, threads)
        elif name == "glu":
            n = _threads(out.size, SERIAL_MAX_ROWS, threads)
            at = _GLU_AT.get(x.dtype.char)
            if at is None:
                at = _GLU_AT[x.dtype.char] = (K.GLU_FWD[1].span(x.dtype).address, x.dtype.type(0))
            if n:
                # a result of stream_min bytes or more: float32 on AVX-512 in rows of GLU_NT_L or
                # more in one pass storing non-temporally; else in rows of GLU_STREAM_L or more
                # through blocks copied non-temporally
                L = out.size // x.shape[0]
                nt = K._tab.ENABLED and x.dtype.char == "f"
                st = out.nbytes >= _stream_min
                if nt:
                    _compile_once(K._glu_fwd_nt, (x, out, at[1], n))
                else:
                    _compile_once(K._glu_fwd_st, (x, out) + at + (n,))
                if st and nt and L >= GLU_NT_L:
                    _run(K._glu_fwd_nt, _glu_fwd_nt_serial, (x, out, at[1]), n)
                else:
                    _run(K._glu_fwd_st if st and L >= GLU_STREAM_L else K._glu_fwd, _glu_fwd_serial, (x, out) + at, n)
            elif _glu_rows_c is not None:  # the span function per outer index, from C
                _glu_rows_c(at[0], x, out)
            else:
                K._glu_fwd_serial(x, out, at[1])
        elif name == "maxout":
            k = int(params["pieces"])
            o, mk, inner = x.shape
            R = o * (mk // k)
            _call(K._maxout_fwd, K._maxout_fwd_serial, (x.reshape(R, k, inner), out.reshape(R, inner)), x.size, threads)
        else:
            raise KeyError(f"numba backend: unknown activation {name!r}")
        return None

    # ----------------------------------------------------------- backward
    def backward(self, name, g, x, y, out, params, threads=0):
        if name == "gelu":
            name = "gelu_tanh" if params["approximate"] == "tanh" else "gelu_none"
        if x is not None:
            h = self._bwd_x.get(name)
            if h is not None:
                h(g, x, out, params, threads)
                return None
        else:
            h = self._bwd_y.get(name)
            if h is not None:
                h(g, y, out, params, threads)
                return None
        if name in _SOFTMAX_MODES:
            mode = _SOFTMAX_MODES[name][1]
            sign = _SOFTMAX_SIGN[name, g.dtype.char]
            if y is None:
                y = np.empty_like(x)
                _softmax_forward(x, y, sign, mode, threads)
            _softmax_backward(g, y, out, sign, mode, threads)
        elif name == "sparsemax":
            if y is None:
                y = np.empty_like(x)
                _call(K._sparsemax_fwd, K._sparsemax_fwd_serial, (x, y), x.size, threads)
            _call(K._sparsemax_bwd, K._sparsemax_bwd_serial, (g, y, out), y.size, threads)
        elif name == "glu":
            _call(K._glu_bwd, K._glu_bwd_serial, (g, x, out), g.size, threads)
        elif name == "maxout":
            k = int(params["pieces"])
            o, mk, inner = x.shape
            R = o * (mk // k)
            _call(K._maxout_bwd, K._maxout_bwd_serial,
                  (g.reshape(R, inner), x.reshape(R, k, inner), out.reshape(R, k, inner)), x.size, threads)
        elif name == "prelu":
            w = K.prelu_weight(params["weight"], x.shape[2])
            gw = _call(K._prelu_bwd, K._prelu_bwd_serial, (g, x, w, out), x.size, threads)
            return gw.astype(x.dtype)
        elif name == "rrelu":
            s = params["slopes"]
            z = x.dtype.type(0)
            kser, kpar = self._rrelu_bwd
            n = _threads(x.shape[0], SERIAL_MAX_CHEAP, threads)
            if n:
                _run(kpar, kser, (g, x, s, out, z, z, z, z), n)
            else:
                kser(g, x, s, out, z, z, z, z)
        else:
            raise KeyError(f"numba backend: unknown activation {name!r} (or no y-based backward)")
        return None

    # -------------------------------------------------------------- misc
    def set_num_threads(self, n):
        return _config.set_num_threads(n)

    def info(self):
        import llvmlite.binding as ll

        cpu = ll.get_host_cpu_name()
        feats = ll.get_host_cpu_features()
        simd = "avx512f" if feats.get("avx512f") else "avx2" if feats.get("avx2") else "sse2"
        return {
            "numba": numba.__version__,
            "threading_layer": _state.layer or f"not started yet (priority {numba.config.THREADING_LAYER_PRIORITY})",
            "omp_max_active_levels": (sorted(_state.omp_levels.values()) if _state.omp_levels is not None else
                                      "not started yet" if _state.layer is None else
                                      f"not the omp layer ({_state.layer})"),
            "threads": min(_config.get_num_threads(), _MAXT),
            "max_threads": _MAXT,
            "parallel": "disabled in this forked child" if not _state.parallel_ok else "enabled",
            "serial_below": {"default": SERIAL_MAX, "cheap": SERIAL_MAX_CHEAP, "rows": SERIAL_MAX_ROWS},
            "stream_min_bytes": _stream_min,
            "rows_prefetch": K.ROWS_PF,
            "cpu": cpu,
            "simd": simd,
            "vector_width_bits": _vector_width(cpu, feats, simd),
            "cpu_features": "host, -prefer-256-bit (fastact: FASTACT_NUMBA_ZMM)" if _zmm_set() else
                            "NUMBA_CPU_FEATURES" if numba.config.CPU_FEATURES else "host",
            "cache_dir": _cache_dir(),
            "tables": ("float32 gelu, silu, tanh, tanhshrink, sigmoid and log_sigmoid backward: tables of polynomials (AVX-512);"
                       " log_softmax backward from y: the Cython AVX-512 loop (vscalefps);"
                       " relu, relu6, leaky_relu, threshold, hardshrink, softshrink and hardsigmoid backward:"
                       " one pass storing non-temporally (AVX-512)") if K._tab.ENABLED else
                      "none: exp-based loops",
        }


# LLVM's tuning for these CPUs prefers 256-bit vectors even with AVX-512
# (verified in the kernels' assembly on znver4 and emeraldrapids: ymm), unless
# the features end in -prefer-256-bit (fastact/_numba/__init__.py).
_PREFER_256 = {"znver4", "znver5", "skylake-avx512", "cascadelake", "cooperlake", "icelake-server",
               "icelake-client", "tigerlake", "sapphirerapids", "emeraldrapids", "graniterapids",
               "graniterapids-d", "diamondrapids", "rocketlake", "alderlake"}


def _zmm_set():
    from . import cpu_features

    return cpu_features is not None and numba.config.CPU_FEATURES == cpu_features


def _vector_width(cpu, feats, simd):
    if simd == "sse2":
        return 128
    if not feats.get("avx512f"):
        return 256
    chosen = numba.config.CPU_FEATURES or ""
    if chosen and "+avx512f" not in chosen.split(","):
        return 256
    if "-prefer-256-bit" in chosen.split(",") or cpu not in _PREFER_256:
        return 512
    return 256


def _cache_dir():
    d = os.environ.get("NUMBA_CACHE_DIR") or getattr(numba.config, "CACHE_DIR", "")
    if d:
        return d
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    return here


_SOFTMAX_MODES = {"softmax": (1, 0), "log_softmax": (1, 1), "softmin": (-1, 0)}
# the sign as a scalar of the kernel's dtype, by (name, dtype char): x.dtype.type(sign)
# costs 0.4 us a call, a quarter of a 1e3-element softmax
_SOFTMAX_SIGN = {(name, c): np.dtype(c).type(sign) for name, (sign, _) in _SOFTMAX_MODES.items() for c in "fd"}


def _call(kpar, kser, args, size, threads):
    n = _threads(size, SERIAL_MAX_ROWS, threads)
    if n:
        return _run(kpar, kser, args, n)
    return kser(*args)


def _nchunk(outer, n, nthreads):
    # Enough chunks per row to give every thread work when rows are few.
    if outer >= nthreads:
        return 1
    per = -(-nthreads // outer)
    return max(1, min(per, n // 4096))


def _direct_threads(threads):
    """The thread count of a parallel call made straight to a compiled entry
    point, once a call has taken the full path with that count: when the
    pool is omp or tbb (no lock), this process may run parallel kernels and
    numba's count for this thread is already that count; else 0 (then the
    full path decides). The caller has found the call parallel (``threads``
    > 1, or 0 above its size threshold). Spares the full path's calls
    (_threads, _run, _set_threads): the elementwise handler's time over the
    entry point's, relu on 2 threads, 0.68-0.78 -> 0.40-0.46 us a call."""
    if _state.lock is not None or not _state.parallel_ok:
        return 0
    n = threads or _config.get_num_threads()
    if n > _MAXT:
        n = _MAXT
    return n if n > 1 and getattr(_tls, "n", 0) == n else 0


def _softmax_handler(name):
    """The forward of one of the softmax family, as the backend's elementwise handlers are called.

    A single row of 1e3 float32 is a 1.4 us kernel: the serial call of rows
    along the last axis goes to the compiled entry point (looked up once per
    dtype, as _ew_handler does) instead of through numba's dispatcher and
    _softmax_forward's branches (measured, the allocation included: 2.9 ->
    2.5 us a call, torch's 2.5 us); with fastact._fastpath built, to the
    rows' cfunc from C (_kernels.softmax_rows_cfunc; the backend's call on
    (1, 1000, 1) float32 with the allocation, 1.61 -> 1.21 us, torch 1.52:
    the entry point unboxed two 3-D arrays). So does the parallel call of rows along
    the last axis, one range of rows a thread (_softmax_rows), once it has
    run through _softmax_forward with the same thread count (the backend's
    forward over the entry point alone, 2 threads, (2, 1000, 1) float32,
    out given: 1.0-1.4 -> 0.6-0.7 us). The arrays are C-contiguous (the
    backend contract), as the entry points for the first call's types
    assume.
    """
    mode = _SOFTMAX_MODES[name][1]
    entries = {}  # dtype char -> (serial entry point, the sign in that dtype)
    par = {}  # dtype char -> (_softmax_rows' entry point, the sign in that dtype)
    cf = {}  # dtype -> (_softmax_rows' cfunc's address, the sign) (_fastpath.RowsPar's table)
    ser = {}  # dtype -> (the serial rows' cfunc's address, the sign) (RowsPar's serial table)

    short_n, short_ok = K.SHORT_N, K.short_ok
    rows_c = _rows_c

    def h(x, out, params, threads):
        sh = x.shape
        # short rows (K.short_ok, asked only up to SHORT_N): _softmax_forward
        rows = sh[2] == 1 and (sh[1] > short_n or not short_ok(sh[1]) or sh[0] == 1)
        serial = rows and (threads == 1 or (threads == 0 and x.size <= SERIAL_MAX_ROWS))
        if serial:
            e = entries.get(x.dtype.char)
            if e is not None:
                if rows_c is not None:
                    rows_c(e[0], x, out, e[1], mode)
                else:
                    e[0](x, out, e[1], mode)
                return
        elif rows:
            e = par.get(x.dtype.char)
            if e is not None:
                n = _direct_threads(threads)
                if n and sh[0] >= n:
                    e[0](x, out, e[1], mode, n)
                    return
        sign = _SOFTMAX_SIGN[name, x.dtype.char]
        if serial:
            entries[x.dtype.char] = ((K.softmax_rows_cfunc(x.dtype).address, float(sign)) if rows_c is not None
                                     else (_entry(K._softmax_rows_serial, (x, out, sign, mode)), sign))
            if rows_c is not None:
                ser[x.dtype] = entries[x.dtype.char]
        elif rows and x.dtype.char not in par:
            n = _threads(x.size, SERIAL_MAX_ROWS, threads)
            if n and sh[0] >= n:
                par[x.dtype.char] = (_entry(K._softmax_rows, (x, out, sign, mode, n)), sign)
                if _RowsPar is not None:  # (after _threads: the cfunc links to the started pool)
                    cf[x.dtype] = (K.softmax_rows_par_cfunc(x.dtype, False).address, float(sign))
        _softmax_forward(x, out, sign, mode, threads)

    if _RowsPar is not None:  # its rows, parallel and serial, made in C (NumbaBackend.__init__)
        _with_c(h, _RowsPar(cf, _direct_threads, SERIAL_MAX_ROWS, mode, False, STREAM_ROW_MIN, short_n, ser))
    return h


def _softmax_bwd_handler(name):
    """The backward from y of one of the softmax family, as the elementwise
    handlers are called: the parallel call of rows along the last axis, one
    range of rows a thread (_softmax_bwd_rows), goes straight to the
    kernel's compiled entry point once it has run through _softmax_backward
    with the same thread count, as _softmax_handler's (the backend's
    backward over the entry point alone, 2 threads, (2, 1000, 1) float32,
    out given: 1.2 -> 0.7 us; 1e5 in rows of 1000: 14.7 -> 13.3 us, torch
    11.2)."""
    mode = _SOFTMAX_MODES[name][1]
    par = {}  # dtype char -> (_softmax_bwd_rows' entry point, the sign in that dtype)
    cf = {}  # dtype -> (_softmax_bwd_rows' cfunc's address, the sign) (_fastpath.RowsPar's table)
    ser = {}  # dtype -> (the serial rows' cfunc's address, the sign) (RowsPar's serial table)

    def h(g, y, out, params, threads):
        sh = y.shape
        par_rows = sh[2] == 1 and (threads > 1 or (threads == 0 and y.size > SERIAL_MAX_ROWS))
        if par_rows:
            e = par.get(y.dtype.char)
            # (a result to stream goes through _softmax_backward: _softmax_bwd_rows_st)
            if e is not None and not _streams_rows(mode, sh[1], out):
                n = _direct_threads(threads)
                if n and sh[0] >= n:
                    e[0](g, y, out, e[1], mode, n)
                    return
        sign = _SOFTMAX_SIGN[name, y.dtype.char]
        if sh[2] == 1 and not par_rows and _RowsPar is not None and y.dtype not in ser:
            ser[y.dtype] = (K.softmax_bwd_rows_cfunc(y.dtype).address, float(sign))
        if sh[2] == 1 and y.dtype.char not in par:
            n = _threads(y.size, SERIAL_MAX_ROWS, threads)
            if n and sh[0] >= n:
                par[y.dtype.char] = (_entry(K._softmax_bwd_rows, (g, y, out, sign, mode, n)), sign)
                if _RowsPar is not None:  # (after _threads: the cfunc links to the started pool)
                    cf[y.dtype] = (K.softmax_rows_par_cfunc(y.dtype, True).address, float(sign))
        _softmax_backward(g, y, out, sign, mode, threads)

    if _RowsPar is not None:  # its rows, parallel and serial, made in C (NumbaBackend.__init__)
        _with_c(h, _RowsPar(cf, _direct_threads, SERIAL_MAX_ROWS, mode, True, STREAM_ROW_MIN, 0, ser))
    return h


def _prelu_handler():
    """prelu's forward, as the elementwise handlers are called: serial calls
    go to the serial kernel's compiled entry point, and parallel ones, once
    one has run through _call with the same thread count, to the parallel
    kernel's (_direct_threads). The weight is 1-D, contiguous and of x's
    dtype (the backend contract), as the entry points for the first call's
    types assume. The backend's time over the entry point alone, float32,
    one channel of 2048, out given: 1 thread 0.56 -> 0.45 us, 2 threads
    1.0 -> 0.6-0.7."""
    ser, par = {}, {}  # dtype char -> the serial / parallel kernel's entry point
    cf = {}  # dtype -> [serial cfunc's address, parallel cfunc's address] (_fastpath.PreluFwd's table)

    def h(x, out, params, threads):
        w = K.prelu_weight(params["weight"], x.shape[2])
        c = x.dtype.char
        st = out.nbytes >= _stream_min  # the rows' stores non-temporal (_kernels._prelu_fwd_stream)
        if threads == 1 or (threads == 0 and x.size <= SERIAL_MAX_ROWS):
            e = ser.get(c)
            if e is None:
                e = ser[c] = _entry(K._prelu_fwd_serial, (x, w, out, st))
                if _Ew is not None:
                    cf.setdefault(x.dtype, [0, 0])[0] = K.prelu_fwd_cfunc(x.dtype, False).address
            e(x, w, out, st)
            return
        e = par.get(c)
        n = _direct_threads(threads) if e is not None else 0
        if n:
            e(x, w, out, st, n)
            return
        n = _threads(x.size, SERIAL_MAX_ROWS, threads)
        if n and c not in par:
            par[c] = _entry(K._prelu_fwd, (x, w, out, st, n))
            if _Ew is not None:  # (after _threads: the cfunc links to the started pool)
                cf.setdefault(x.dtype, [0, 0])[1] = K.prelu_fwd_cfunc(x.dtype, True).address
        _call(K._prelu_fwd, K._prelu_fwd_serial, (x, w, out, st), x.size, threads)

    if _Ew is not None:  # its calls on a weight the kernels take as it is, made in C (NumbaBackend.__init__)
        _with_c(h, _PreluFwd(cf, _direct_threads, SERIAL_MAX_ROWS, K.PRELU_ROWS_BELOW))
    return h


def _softmax_forward(x, out, sign, mode, threads):
    outer, n, inner = x.shape
    nt = _threads(x.size, SERIAL_MAX_ROWS, threads)
    if inner == 1 and K.short_ok(n) and outer > 1:
        if nt:
            _run(K._softmax_short, K._softmax_short_serial, (x, out, sign, mode), nt)
        else:
            K._softmax_short_serial(x, out, sign, mode)
    elif inner == 1:
        if not nt:
            K._softmax_rows_serial(x, out, sign, mode)
        elif outer >= nt:
            _run(K._softmax_rows, K._softmax_rows_serial, (x, out, sign, mode), nt)
        else:
            nchunk = _nchunk(outer, n, nt)
            _run(K._softmax_rows_split, _serial_split, (x, out, sign, mode, nchunk), nt)
    elif nt and K.cols_split(outer, inner, n, nt) > 1:
        _run(K._softmax_cols_split, _serial_cols_split, (x, out, sign, mode, K.cols_split(outer, inner, n, nt)), nt)
    elif nt:
        _run(K._softmax_cols, K._softmax_cols_serial, (x, out, sign, mode), nt)
    else:
        K._softmax_cols_serial(x, out, sign, mode)


def _softmax_backward(g, y, out, sign, mode, threads):
    outer, n, inner = y.shape
    nt = _threads(y.size, SERIAL_MAX_ROWS, threads)
    if not nt:
        K._softmax_bwd_serial(g, y, out, sign, mode)
    elif inner != 1 and K.cols_split(outer, inner, n, nt) > 1:
        _run(K._softmax_bwd_cols_split, _serial_split_bwd, (g, y, out, sign, mode, K.cols_split(outer, inner, n, nt)), nt)
    elif inner != 1:
        _run(K._softmax_bwd, K._softmax_bwd_serial, (g, y, out, sign, mode), nt)
    elif outer >= nt and _streams_rows(mode, n, out):
        _run(K._softmax_bwd_rows_st, _softmax_bwd_serial_st, (g, y, out, sign), nt)
    elif outer >= nt:
        if mode == 0:
            _compile_once(K._softmax_bwd_rows_st, (g, y, out, sign, nt))
        _run(K._softmax_bwd_rows, K._softmax_bwd_serial, (g, y, out, sign, mode), nt)
    else:
        nchunk = _nchunk(outer, n, nt)
        _run(K._softmax_bwd_rows_split, _serial_split_bwd, (g, y, out, sign, mode, nchunk), nt)


_COMPILED = set()  # (kernel, dtype char): _compile_once's


def _compile_once(disp, args):
    """Compile (or load from the cache) the streamed kernel ``disp`` for args' dtype
    with the plain one, on the first call: not in the first large call, where its
    compilation would add to the call's memory and time (test_memory)."""
    key = (disp, args[0].dtype.char)
    if key not in _COMPILED:
        _entry(disp, args)
        _COMPILED.add(key)


# softmax's and softmin's backward (from y) streams a result of stream_min bytes
# or more in rows (inner 1) of at least this many elements, as the Cython
# backend's (_axis.pxi, _last_pass_st); log_softmax's (an exp per element) stays plain.
STREAM_ROW_MIN = 256


def _streams_rows(mode, n, out):
    """Whether softmax's or softmin's backward rows of n stream their result out."""
    return mode == 0 and n >= STREAM_ROW_MIN and out.nbytes >= _stream_min


def _softmax_bwd_serial_st(g, y, out, sign):
    K._softmax_bwd_serial(g, y, out, sign, 0)


_GLU_AT = {}  # dtype char -> (the address of glu's span function, a zero of the dtype)
# glu's forward streams (_kernels._glu_fwd_st) rows of out of at least this many
# elements. 1e7 float32, 2 threads, in-process A/B, ms, plain / streamed: one row
# 1.39-1.45 / 1.18-1.24, rows of 16384 1.51-1.65 / 1.41-1.43, of 4096 1.83-2.11 /
# 2.14-2.18, of 1000 2.38-2.53 / 2.55-2.81 (a row's blocks there are all partial:
# copied plainly, the buffer a pass more).
GLU_STREAM_L = 1 << 14
# float32 on AVX-512 (the sigmoid table): rows of at least this many elements of out
# stream in one pass instead (_kernels._glu_fwd_nt). 1e7, 2 threads, in-process, ms,
# min, plain (_glu_fwd) / one pass / the blocks (_glu_fwd_st): rows of 128 2.41 /
# 3.09 / 4.89, of 256 2.56 / 2.27 / 2.83, of 1000 1.90 / 1.74 / 2.44, of 4096 1.31
# / 1.15 / 1.46, of 16384 1.10 / 0.83 / 0.97, one row 0.99 / 0.73 / 0.83 (rows of 64:
# 1.22 / 4.33, cause not found; the Cython backend's one pass gains there).
GLU_NT_L = 256


def _glu_fwd_serial(x, out, f, z):
    K._glu_fwd_serial(x, out, z)


def _glu_fwd_nt_serial(x, out, z):
    K._glu_fwd_serial(x, out, z)


def _serial_split(x, out, sign, mode, nchunk):
    K._softmax_rows_serial(x, out, sign, mode)


def _serial_cols_split(x, out, sign, mode, nchunk):
    K._softmax_cols_serial(x, out, sign, mode)


def _serial_split_bwd(g, y, out, sign, mode, nchunk):
    K._softmax_bwd_serial(g, y, out, sign, mode)


BACKEND = NumbaBackend()
