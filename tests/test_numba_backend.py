"""Numba-specific behaviour of the numba backend.

Whether results are right is the conformance suite's job; this file checks
what only this backend has: lazy import, the on-disk cache, no compile on a new
parameter value, serial and parallel kernels agreeing, several Python threads
at once, fork safety, and that the hot loops are vectorised.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("numba")

import fastact  # noqa: E402
from fastact._numba import BACKEND  # noqa: E402
from fastact._numba import _kernels as K  # noqa: E402
from _helpers import (check_gelu_f32, check_log_sigmoid_bwd_f32, check_sigmoid_f32, check_silu_bwd_f32,  # noqa: E402
                      check_tanh_f32, check_tanhshrink_f32, gelu_table_inputs, subprocess_env)

def _run_py(code, env=None, timeout=300):
    e = subprocess_env(**(env or {}))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=e, timeout=timeout)


def test_import_fastact_does_not_import_numba():
    r = _run_py("import sys, fastact; print('numba' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_cache_is_hit_by_a_second_process(tmp_path):
    code = """
        import numpy as np
        from fastact._numba import BACKEND, _kernels as K
        x = np.linspace(-3, 3, 50000, dtype=np.float32)
        BACKEND.forward("gelu", x, np.empty_like(x), {"approximate": "none"}, 1)
        BACKEND.forward("gelu", x, np.empty_like(x), {"approximate": "none"}, 2)
        s, p = K.INSTANCES[("fwd_gelu_none", 1)]
        # the serial kernel, the parallel kernel of every unary op (its cfunc, called
        # from fastact._fastpath, or else its array version), and gelu's span function
        c = K._PAR_CFUNCS.get((1, np.dtype(np.float32)))
        if c is not None:
            hits_p, miss_p = c.cache_hits, 0
        else:
            hits_p, miss_p = sum(p.kernel.stats.cache_hits.values()), sum(p.kernel.stats.cache_misses.values())
        print(sum(s.stats.cache_hits.values()), sum(s.stats.cache_misses.values()), hits_p, miss_p,
              p.spans[(np.dtype(np.float32), False)].cache_hits)
    """
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    first = _run_py(code, env)
    assert first.returncode == 0, first.stderr
    second = _run_py(code, env)
    assert second.returncode == 0, second.stderr
    hits_s, miss_s, hits_p, miss_p, hits_span = map(int, second.stdout.split())
    assert (hits_s, miss_s, hits_p, miss_p, hits_span) == (1, 0, 1, 0, 1), second.stdout
    assert "Cannot cache" not in first.stderr + second.stderr


def test_new_parameter_value_does_not_compile():
    x = np.linspace(-2, 2, 1000, dtype=np.float32)
    out = np.empty_like(x)
    BACKEND.forward("leaky_relu", x, out, {"negative_slope": 0.1})
    s, _ = K.INSTANCES[("fwd_leaky_relu", 1)]
    n = len(s.signatures)
    for slope in (0.2, 0.3, 1e-5):
        BACKEND.forward("leaky_relu", x, out, {"negative_slope": slope})
        np.testing.assert_array_equal(out, np.where(x > 0, x, x * np.float32(slope)))
    assert len(s.signatures) == n


@pytest.mark.parametrize("name,params", [("relu", {}), ("gelu", {"approximate": "none"}), ("mish", {}),
                                         ("softplus", {"beta": 2.0, "threshold": 20.0})])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_serial_and_parallel_kernels_agree(name, params, dtype):
    x = np.random.default_rng(0).standard_normal(300_001).astype(dtype) * 4
    a, b = np.empty_like(x), np.empty_like(x)
    BACKEND.forward(name, x, a, params, 1)
    BACKEND.forward(name, x, b, params, 2)
    np.testing.assert_array_equal(a, b)
    g = np.ones_like(x)
    BACKEND.backward(name, g, x, None, a, params, 1)
    BACKEND.backward(name, g, x, None, b, params, 2)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name,params,derived,suffix", [
    ("softplus", {"beta": 1.0, "threshold": 20.0}, (1.0, 0.0, 20.0, 0.0), "beta1"),
    ("celu", {"alpha": 1.0}, (1.0, 0.0, 1.0, 1.0), "alpha1"),
    ("softshrink", {"lambd": 0.5}, (0.5, 0.0, 0.5, 0.0), "exact"),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_parameter_kernels_match_the_general_ones(name, params, derived, suffix, dtype):
    # softplus with beta = 1, celu's backward with alpha = 1 and softshrink's
    # forward with an exact lambda run kernels with fewer steps
    # (_scalar.SPECIAL); the general kernels with the same parameters
    # must give the same bits (NaN inputs: a NaN, payloads may differ),
    # but for a table kernel (K.TABLE_OPS), whose bits test_streaming.py checks.
    from fastact._numba import _scalar as S
    itype, bits = (np.uint32, 32) if dtype == np.float32 else (np.uint64, 64)
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2**bits - 1, 1 << 18, dtype=np.uint64).astype(itype).view(dtype)
    specials = [0.0, -0.0, 0.5, -0.5, np.nextafter(0.5, 1), -np.nextafter(0.5, 1), np.inf, -np.inf, 5e-324, -5e-324,
                1e-45, -1e-45, 19.99, 20.0, 20.01, 88.7, -88.7, -104.0, -150.0, -745.0, 710.0]
    x = np.concatenate([x, np.array(specials, dtype)])
    g = rng.standard_normal(x.size).astype(dtype)
    entries = S.SPECIAL[name]
    k = [sfx for _, sfx in entries].index(suffix)
    test = entries[k][0]
    pd = tuple(dtype(v) for v in derived)  # the derived parameters of params
    assert test(pd) and not any(t(pd) for t, _ in entries[:k])  # the first that holds: this one
    for direction, args in (("fwd", (x,)), ("bwd", (g, x))):
        if not hasattr(S, f"{direction}_{name}_{suffix}"):
            continue
        pub = np.empty_like(x)
        if direction == "fwd":
            BACKEND.forward(name, x, pub, params, 2)
        else:
            BACKEND.backward(name, g, x, None, pub, params, 2)
        general, _ = K.INSTANCES[(f"{direction}_{name}", len(args))]
        special, special_par = K.INSTANCES[(f"{direction}_{name}_{suffix}", len(args))]
        assert special_par.spans, "the backend did not run the special kernel"
        ref, got = np.empty_like(x), np.empty_like(x)
        general(*args, ref, *pd)
        special(*args, got, *pd)
        if dtype == np.float32 and (f"{direction}_{name}_{suffix}", len(args)) in K.TABLE_OPS:
            # a table kernel (softplus's backward with beta 1 on AVX-512: log_sigmoid's table at -x,
            # its own bits, test_streaming.py): the backend's call ran it
            ref = got
        nan = np.isnan(ref)
        for r in (got, pub):
            assert np.array_equal(np.isnan(r), nan), direction
            assert np.array_equal(r[~nan].view(itype), ref[~nan].view(itype)), direction
    assert not test((dtype(2.0), dtype(1e-9), dtype(20.0), dtype(0.0)))


@pytest.mark.parametrize("shape", [(1, 300_000, 1), (3, 100_000, 1), (64, 1000, 1), (40, 500, 30)])
def test_softmax_single_long_row_matches_serial(shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    for name in ("softmax", "log_softmax", "softmin"):
        a, b = np.empty_like(x), np.empty_like(x)
        BACKEND.forward(name, x, a, {}, 1)
        BACKEND.forward(name, x, b, {}, 2)
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7)
        g = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
        r1, r2 = np.empty_like(x), np.empty_like(x)
        BACKEND.backward(name, g, None, a, r1, {}, 1)
        BACKEND.backward(name, g, None, a, r2, {}, 2)
        np.testing.assert_allclose(r1, r2, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name,shape,oshape,params", [
    ("glu", (1, 400_000, 1), (1, 200_000, 1), {}),
    ("glu", (3, 2000, 50), (3, 1000, 50), {}),
    # the threads' shares of glu's flat indices end inside a row: long rows,
    # short rows (L = 21, by blocks of whole rows), one channel a row
    ("glu", (3, 2002, 1), (3, 1001, 1), {}),
    ("glu", (301, 14, 3), (301, 7, 3), {}),
    ("glu", (5, 2, 4001), (5, 1, 4001), {}),
    ("maxout", (1, 300_000, 1), (1, 100_000, 1), {"pieces": 3}),
    ("maxout", (2, 600, 40), (2, 300, 40), {"pieces": 2}),
])
def test_row_kernels_serial_and_parallel_agree(name, shape, oshape, params):
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    x.flat[7] = np.nan
    a, b = np.empty(oshape, np.float32), np.empty(oshape, np.float32)
    BACKEND.forward(name, x, a, params, 1)
    BACKEND.forward(name, x, b, params, 2)
    np.testing.assert_array_equal(a, b)
    g = np.random.default_rng(5).standard_normal(oshape).astype(np.float32)
    r1, r2 = np.empty_like(x), np.empty_like(x)
    BACKEND.backward(name, g, x, None, r1, params, 1)
    BACKEND.backward(name, g, x, None, r2, params, 2)
    np.testing.assert_array_equal(r1, r2)


def test_softmax_rows_straight_to_the_entry_point(monkeypatch):
    # The softmax family's parallel rows (forward, and backward from y) go
    # straight to the kernel's compiled entry point once a call has run the
    # full path with that thread count: the same bits as the full path, per
    # dtype, and a readonly y or x takes the same entry point.
    from fastact._numba import backend as NBK
    rng = np.random.default_rng(6)
    for name in ("softmax", "log_softmax", "softmin"):
        for dt in (np.float32, np.float64, np.float32):
            x = rng.standard_normal((40, 700, 1)).astype(dt)
            g = rng.standard_normal(x.shape).astype(dt)
            sign, mode = NBK._SOFTMAX_SIGN[name, x.dtype.char], NBK._SOFTMAX_MODES[name][1]
            y_full, dx_full = np.empty_like(x), np.empty_like(x)
            NBK._softmax_forward(x, y_full, sign, mode, 2)
            NBK._softmax_backward(g, y_full, dx_full, sign, mode, 2)
            for threads in (2, 0):
                y, dx = np.empty_like(x), np.empty_like(x)
                BACKEND.forward(name, x, y, {}, threads)
                BACKEND.backward(name, g, None, y, dx, {}, threads)
                assert np.array_equal(y.view(np.uint8), y_full.view(np.uint8)), (name, dt, threads)
                assert np.array_equal(dx.view(np.uint8), dx_full.view(np.uint8)), (name, dt, threads)
            xr, yr = x.copy(), y_full.copy()
            xr.flags.writeable = yr.flags.writeable = False
            if NBK._MAXT >= 2:  # (with one numba thread every call is serial)
                with monkeypatch.context() as m:
                    def full_path(*a):
                        raise AssertionError("took the full path")
                    m.setattr(NBK, "_softmax_forward", full_path)
                    m.setattr(NBK, "_softmax_backward", full_path)
                    y, dx = np.empty_like(x), np.empty_like(x)
                    BACKEND.forward(name, xr, y, {}, 2)
                    BACKEND.backward(name, g, None, yr, dx, {}, 2)
                assert np.array_equal(y.view(np.uint8), y_full.view(np.uint8)), (name, dt)
                assert np.array_equal(dx.view(np.uint8), dx_full.view(np.uint8)), (name, dt)
            # serial, short rows and columns still take the full path
            for shape, threads in (((40, 700, 1), 1), ((400, 70, 1), 2), ((40, 70, 10), 2)):
                xs = rng.standard_normal(shape).astype(dt)
                ys, want = np.empty_like(xs), np.empty_like(xs)
                NBK._softmax_forward(xs, want, sign, mode, threads)
                BACKEND.forward(name, xs, ys, {}, threads)
                assert np.array_equal(ys.view(np.uint8), want.view(np.uint8)), (name, dt, shape, threads)
                gs, dxs, want = rng.standard_normal(shape).astype(dt), np.empty_like(xs), np.empty_like(xs)
                NBK._softmax_backward(gs, ys, want, sign, mode, threads)
                BACKEND.backward(name, gs, None, ys, dxs, {}, threads)
                assert np.array_equal(dxs.view(np.uint8), want.view(np.uint8)), (name, dt, shape, threads)


def _with_and_without(monkeypatch, NBK, fp, attrs):
    """Two numba backends: one made with the fastact._fastpath calls ``attrs``
    ({backend attribute: _fastpath function name}) counted, one without them;
    and the counts."""
    calls = dict.fromkeys(attrs.values(), 0)

    def counted(name, f):
        def call(*a):
            calls[name] += 1
            return f(*a)
        return call

    with monkeypatch.context() as m:
        for attr, name in attrs.items():
            m.setattr(NBK, attr, counted(name, getattr(fp, name)))
        fast = NBK.NumbaBackend()
        for attr in attrs:
            m.setattr(NBK, attr, None)
        plain = NBK.NumbaBackend()
    return fast, plain, calls


def _same_elementwise_bits(backends, rng, cases, lengths, threads, inplace=False):
    """Forward and backward from x (and with ``inplace`` an in-place forward) of
    every case give the same bits on each backend: both dtypes, a readonly x,
    out 16 bytes past a 64-byte line."""
    for dt in (np.float32, np.float64):
        for n in lengths:
            x = (rng.standard_normal(n) * 4).astype(dt)
            x.flags.writeable = False
            g = rng.standard_normal(n).astype(dt)
            for name, p in cases:
                outs = []
                for be in backends:
                    buf = np.empty(n + 64, dt)
                    start = ((-buf.ctypes.data) % 64 + 16) // buf.itemsize  # 16 bytes past a line
                    o = buf[start:start + n]
                    gx = np.empty_like(o)
                    be.forward(name, x, o, p, threads)
                    be.backward(name, g, x, None, gx, p, threads)
                    res = [o.copy(), gx.copy()]
                    if inplace:
                        xi = x.copy()
                        be.forward(name, xi, xi, p, threads)  # the buffered driver
                        np.testing.assert_array_equal(xi, res[0])
                        res.append(xi)
                    outs.append(res)
                for a, b in zip(*outs):
                    assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), (name, dt, n)


def test_serial_calls_through_the_span_functions(monkeypatch):
    # With fastact._fastpath built, serial elementwise calls and the softmax
    # family's serial rows go to the kernels' cfuncs from C (span1, span2,
    # rows) instead of the serial kernels' entry points: the same bits as a
    # backend built without them, for both dtypes, parameters, a readonly x,
    # out 16 bytes off a 64-byte line, and every length around a vector; the
    # GIL is released from NOGIL_MIN elements (tests/test_threads_processes.py).
    from fastact._numba import backend as NBK
    fp = pytest.importorskip("fastact._fastpath")
    if NBK._span1 is None:
        pytest.fail("fastact._fastpath is built but the numba backend does not use its span calls")
    monkeypatch.setattr(NBK, "_RowsPar", None)  # (the rows' calls made in C: test_serial_rows_dispatched_in_c)
    tramp, plain, calls = _with_and_without(monkeypatch, NBK, fp,
                                            {"_span1": "span1", "_span2": "span2", "_rows_c": "rows"})
    rng = np.random.default_rng(11)
    cases = (("softshrink", {"lambd": 0.37}), ("elu", {"alpha": 0.7}), ("gelu", {"approximate": "none"}),
             ("relu", {}), ("softplus", {"beta": 2.0, "threshold": 15.0}))
    _same_elementwise_bits((tramp, plain), rng, cases, (1, 15, 16, 17, 1000, 5000), 1)
    for dt in (np.float32, np.float64):
        for name in ("softmax", "log_softmax", "softmin"):
            for shape in ((1, 1000, 1), (3, 333, 1), (2, 5000, 1)):
                x = rng.standard_normal(shape).astype(dt)
                want, got = np.empty_like(x), np.empty_like(x)
                plain.forward(name, x, want, {}, 1)
                tramp.forward(name, x, got, {}, 1)
                assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), (name, dt, shape)
    assert calls["span1"] and calls["span2"] and calls["rows"], calls
    # the checks that keep a wrong call out of the kernels
    a32, a64 = np.zeros(8, np.float32), np.zeros(8, np.float64)
    with pytest.raises(ValueError):
        fp.span1(0, a32, a64, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        fp.span2(0, a32, a32, np.zeros(7, np.float32), 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        fp.rows(0, a32.reshape(1, 8), a32.reshape(1, 8), 1.0, 0)


def _dispatched_and_plain(monkeypatch):
    """The numba backend module and two backends: one dispatching in C
    (fastact._fastpath.Dispatch), one built without Dispatch and Ew (the
    Python handlers make every call)."""
    from fastact._numba import backend as NBK
    pytest.importorskip("fastact._fastpath")
    if NBK._Dispatch is None:
        pytest.fail("fastact._fastpath is built but the numba backend does not dispatch in C")
    fast = NBK.NumbaBackend()
    with monkeypatch.context() as m:
        m.setattr(NBK, "_Dispatch", None)
        m.setattr(NBK, "_Ew", None)
        plain = NBK.NumbaBackend()
    return NBK, fast, plain


def test_calls_dispatched_in_c(monkeypatch):
    # With fastact._fastpath built, the backend's forward and backward make the
    # elementwise ops' common calls in C (_fastpath.Dispatch and Ew: serial
    # through the span function, parallel through the pointer kernel), and
    # prelu's forward's (PreluFwd: through the kernels' cfuncs), and leave the
    # rest to the Python handlers (in place, a result to stream, the first
    # parallel call, a parameter key not seen yet, a weight to repeat): the same
    # bits as a backend without them, for both dtypes, parameters, a readonly
    # x, out 16 bytes off a 64-byte line, serial and parallel, threads left to
    # the backend.
    from fastact import _config
    NBK, fast, plain = _dispatched_and_plain(monkeypatch)
    assert isinstance(fast.forward.__self__, NBK._Dispatch) and plain.forward.__self__ is plain
    rng = np.random.default_rng(13)
    cases = (("softshrink", {"lambd": 0.37}), ("elu", {"alpha": 0.7}), ("gelu", {"approximate": "tanh"}),
             ("relu", {}), ("hardtanh", {"min_val": -0.5, "max_val": 2.0}),
             ("softplus", {"beta": 2.0, "threshold": 15.0}))
    for threads in (1, 2, 0):
        _same_elementwise_bits((fast, plain), rng, cases, (1, 17, 1001, 70001), threads, inplace=True)
    before = _config.set_stream_min_bytes(4096)  # streamed results: the handlers' calls
    try:
        _same_elementwise_bits((fast, plain), rng, cases, (1001, 70001), 2)
    finally:
        _config.set_stream_min_bytes(before)
    # prelu's forward (_fastpath.PreluFwd): a weight per channel taken as it is
    # (inner 1, or PRELU_ROWS_BELOW and more), and repeated (between: the handler)
    for dt in (np.float32, np.float64):
        for shape in ((4, 64, 1), (2, 8, 100), (3, 5, 7), (1, 1, 70001), (40, 32, 64)):
            x = (rng.standard_normal(shape) * 3).astype(dt)
            w = rng.standard_normal(shape[1]).astype(dt)
            for threads in (1, 2, 0):
                outs = []
                for be in (fast, plain):
                    o, xi = np.empty_like(x), x.copy()
                    be.forward("prelu", x, o, {"weight": w}, threads)
                    be.forward("prelu", xi, xi, {"weight": w}, threads)
                    outs.append((o, xi))
                for a, b in zip(*outs):
                    assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), (dt, shape, threads)
    # once a call has taken a handler's full path, its like goes to the kernel from C
    seen = []

    def count(h, op):  # the handler's Python calls (the C ones' fallback) counted
        h.ew.py = (lambda py: lambda *a: seen.append(op) or py(*a))(h.ew.py)

    count(fast._fwd["prelu"], "prelu")
    for table in (fast._fwd, fast._bwd_x, fast._bwd_y):
        for op in ("relu", "elu", "softmax"):
            if op in table:
                count(table[op], op)
    x = rng.standard_normal(70001).astype(np.float32)
    out = np.empty_like(x)
    x3, w = x[:70000].reshape(1000, 70, 1), rng.standard_normal(70).astype(np.float32)
    x4 = x[:70000].reshape(70, 1000, 1)
    for rounds in range(2):
        seen.clear()
        for threads in (1, 2, 0):
            fast.forward("relu", x, out, {}, threads)
            fast.backward("elu", x, x, None, out, {"alpha": 0.5}, threads)
            fast.backward("relu", x, None, out, out.copy(), {}, threads)
            fast.forward("prelu", x3, np.empty_like(x3), {"weight": w}, threads)
            fast.forward("softmax", x4, np.empty_like(x4), {}, threads)  # (rows of SHORT_N or less: the handler's)
            fast.backward("softmax", x4, None, x4, np.empty_like(x4), {}, threads)
    assert seen == [], seen
    x5 = x[:70000].reshape(1000, 7, 10)
    fast.forward("prelu", x5, np.empty_like(x5), {"weight": w[:7]}, 1)  # a weight to repeat: the handler
    assert seen == ["prelu"], seen
    fast.forward("elu", x, x.copy(), {"alpha": 0.25}, 1)  # a parameter not seen yet: the handler's memo
    fast.forward("relu", x, x, {}, 1)  # in place
    assert seen[-2:] == ["elu", "relu"], seen
    # a wrong call still gets the span calls' errors
    with pytest.raises(ValueError):
        fast.forward("relu", x, np.empty(70001, np.float64), {}, 1)
    with pytest.raises(ValueError):
        fast.backward("relu", x, x[:-1], None, out, {}, 2)


def test_serial_rows_dispatched_in_c(monkeypatch):
    # With fastact._fastpath built, the softmax family's serial rows along the
    # last axis, forward and backward from y, go from _fastpath.RowsPar to the
    # rows' cfuncs (_kernels.softmax_rows_cfunc, softmax_bwd_rows_cfunc) once the
    # handler has made the first such call: the same bits as a backend without
    # the C dispatch, for both dtypes, one row and several, rows short and long,
    # in place on g or y, threads 1 and left to the backend; and the handler
    # still makes the calls RowsPar leaves to it (the forward's short rows).
    NBK, fast, plain = _dispatched_and_plain(monkeypatch)
    rng = np.random.default_rng(17)
    for dt in (np.float32, np.float64):
        for name in ("softmax", "log_softmax", "softmin"):
            for shape in ((1, 1000, 1), (1, 7, 1), (3, 333, 1), (2, 5000, 1), (40, 16, 1)):
                x = rng.standard_normal(shape).astype(dt)
                g = rng.standard_normal(shape).astype(dt)
                for threads in (1, 0):
                    res = []
                    for be in (fast, plain, fast):  # the first fast call fills RowsPar's table
                        y = np.empty_like(x)
                        be.forward(name, x, y, {}, threads)
                        gx = np.empty_like(x)
                        be.backward(name, g, None, y, gx, {}, threads)
                        on_g, on_y = g.copy(), y.copy()
                        be.backward(name, on_g, None, y, on_g, {}, threads)
                        be.backward(name, g, None, on_y, on_y, {}, threads)
                        res.append((y, gx, on_g, on_y))
                    for a, b in zip(res[1], res[2]):
                        assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), (name, dt, shape, threads)
    seen = []
    for table in (fast._fwd, fast._bwd_y):
        h = table["softmax"]
        h.ew.py = (lambda py, op: lambda *a: seen.append(op) or py(*a))(h.ew.py, table is fast._bwd_y)
    x = rng.standard_normal((3, 1000, 1)).astype(np.float32)
    fast.forward("softmax", x, np.empty_like(x), {}, 1)
    fast.backward("softmax", x, None, x, np.empty_like(x), {}, 1)
    assert seen == [], seen
    xs = rng.standard_normal((40, 16, 1)).astype(np.float32)  # rows of SHORT_N or less: the forward's handler
    fast.forward("softmax", xs, np.empty_like(xs), {}, 1)
    assert seen == [False], seen


def test_parallel_calls_through_the_pointer_kernels(monkeypatch):
    # With fastact._fastpath built, parallel elementwise calls go to a cfunc of
    # the pointer kernel of their arity from C (par1, par2) instead of the array
    # kernel's entry point: the same bits as a backend without them, for both
    # dtypes, parameters, a readonly x, out 16 bytes off a 64-byte line, lengths
    # that split unevenly, and the in-place driver beside them.
    from fastact._numba import backend as NBK
    fp = pytest.importorskip("fastact._fastpath")
    if NBK._par1 is None:
        pytest.fail("fastact._fastpath is built but the numba backend does not use its parallel calls")
    fast, plain, calls = _with_and_without(monkeypatch, NBK, fp, {"_par1": "par1", "_par2": "par2"})
    rng = np.random.default_rng(12)
    cases = (("softshrink", {"lambd": 0.37}), ("elu", {"alpha": 0.7}), ("gelu", {"approximate": "none"}),
             ("relu", {}), ("sigmoid", {}), ("softplus", {"beta": 2.0, "threshold": 15.0}))
    _same_elementwise_bits((fast, plain), rng, cases, (2, 17, 1001, 40003), 2, inplace=True)
    assert calls["par1"] and calls["par2"], calls
    # the checks that keep a wrong call out of the kernels
    a32, a64 = np.zeros(8, np.float32), np.zeros(8, np.float64)
    with pytest.raises(ValueError):
        fp.par1(0, 0, a32, a64, 0.0, 0.0, 0.0, 0.0, 2)
    with pytest.raises(ValueError):
        fp.par2(0, 0, a32, a32, np.zeros(7, np.float32), 0.0, 0.0, 0.0, 0.0, 2)
    with pytest.raises(ValueError):
        fp.par2(0, 0, a32, a64, a32, 0.0, 0.0, 0.0, 0.0, 2)


def test_softmax_max_pass_orders_nan_and_inf():
    # the max runs on integer keys: a NaN anywhere in a row makes the row NaN,
    # -inf entries give 0, a row of equal values is uniform.
    x = np.zeros((4, 1000, 1), np.float32)
    x[0, 10, 0] = np.nan
    x[1, 20, 0] = -np.nan
    x[2, ::2, 0] = -np.inf
    out = np.empty_like(x)
    BACKEND.forward("softmax", x, out, {})
    assert np.isnan(out[0]).all() and np.isnan(out[1]).all()
    np.testing.assert_array_equal(out[2, ::2, 0], 0)
    np.testing.assert_allclose(out[2, 1::2, 0], 1 / 500, rtol=1e-6)
    np.testing.assert_allclose(out[3], 1 / 1000, rtol=1e-6)


def test_many_python_threads_at_once():
    x = np.random.default_rng(3).standard_normal(400_000).astype(np.float32)
    expect = np.empty_like(x)
    BACKEND.forward("gelu", x, expect, {"approximate": "none"}, 1)

    def work(_):
        out = np.empty_like(x)
        for _ in range(5):
            BACKEND.forward("gelu", x, out, {"approximate": "none"})
        return np.array_equal(out, expect)

    with ThreadPoolExecutor(4) as ex:
        assert all(ex.map(work, range(8)))


def test_forked_child_can_still_compute():
    code = """
        import os, sys, numpy as np
        from fastact._numba import BACKEND
        x = np.random.default_rng(0).standard_normal(500_000).astype(np.float32)
        out = np.empty_like(x)
        BACKEND.forward("sigmoid", x, out, {})  # parallel kernels run in the parent
        expect = out.copy()
        pid = os.fork()
        if pid == 0:
            o = np.empty_like(x)
            BACKEND.forward("sigmoid", x, o, {})
            BACKEND.forward("relu", x, o, {}, 2)
            os._exit(0 if BACKEND.info()["parallel"].startswith("disabled") else 3)
        _, status = os.waitpid(pid, 0)
        import multiprocessing as mp
        ctx = mp.get_context("fork")
        with ctx.Pool(2) as pool:
            res = pool.map(np.sum, [x] * 2)
        print(os.waitstatus_to_exitcode(status), len(res))
    """
    r = _run_py(code, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "2"]


_NESTING_CODE = """
    import ctypes, os, numpy as np
    try:
        import fastact._cython  # its libgomp.so.1 first: torch, loaded after it, would share it
    except ImportError:
        pass
    from fastact._numba import BACKEND
    from fastact._numba import backend as nb
    x = np.ones(500_000, np.float32)
    BACKEND.forward("relu", x, np.empty_like(x), {}, 2)  # starts numba's pool
    lib = ctypes.CDLL("libgomp.so.1")  # the runtime the next library linking libgomp.so.1 gets
    print(nb._state.layer, lib.omp_get_max_active_levels(), sorted(nb._gomp_levels().values()))
"""


def test_numba_omp_start_leaves_nested_parallelism_off():
    # numba's omp layer sets libgomp's max-active-levels to 255 when its pool
    # starts; a library sharing that libgomp whose kernels nest parallel
    # regions (torch.tanh) then oversubscribed the cores (100x slower). The
    # backend puts it back, unless the user asked for nesting.
    r = _run_py(_NESTING_CODE, timeout=120)
    assert r.returncode == 0, r.stderr
    layer, level, levels = r.stdout.strip().split(maxsplit=2)
    if layer != "omp":
        pytest.skip(f"numba's threading layer is {layer}, not omp")
    assert level == "1" and levels in ("[1]", "[1, 1]"), r.stdout
    r = _run_py(_NESTING_CODE, env={"OMP_MAX_ACTIVE_LEVELS": "3"}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(maxsplit=2)[1] != "1", r.stdout  # the user's setting (or numba's) stands


def test_info():
    info = BACKEND.info()
    for key in ("threading_layer", "simd", "vector_width_bits", "cache_dir", "threads"):
        assert key in info


def test_log_softmax_rows_prefetch_follows_the_cpu_and_keeps_the_bits(tmp_path):
    """log_softmax's backward rows beyond the caches prefetch the next row unless the CPU is an AMD
    one with AVX-512 (_kernels.ROWS_PF, a constant of the compiled code); info() says so. A process that
    compiles them the other way (its own cache) gives the same bits, on one thread and two."""
    import llvmlite.binding as ll

    amd_avx512 = bool(ll.get_host_cpu_features().get("avx512f")) and ll.get_host_cpu_name().startswith("znver")
    assert K.ROWS_PF is (not amd_avx512)
    assert BACKEND.info()["rows_prefetch"] is K.ROWS_PF
    code = """
        import hashlib, numpy as np
        from fastact._numba import BACKEND, _kernels as K
        K.ROWS_PF = FLAG
        rng = np.random.default_rng(5)
        y = -np.abs(rng.standard_normal((4195, 1000, 1), dtype=np.float32))  # 4 195 000 >= 2**22
        g = rng.standard_normal(y.shape, dtype=np.float32)
        h = []
        for threads in (1, 2):
            out = np.empty_like(y)
            BACKEND.backward("log_softmax", g, None, y, out, {"axis": 1}, threads)
            h.append(hashlib.sha256(out.tobytes()).hexdigest())
        print(K.ROWS_PF, *h)
    """
    runs = []
    for flag in ("1", "0"):
        r = _run_py(code.replace("FLAG", repr(flag == "1")),
                    env={"NUMBA_CACHE_DIR": str(tmp_path / flag)})
        assert r.returncode == 0, r.stderr
        runs.append(r.stdout.split())
    assert runs[0][0] == "True" and runs[1][0] == "False"
    assert runs[0][1] == runs[0][2] == runs[1][1] == runs[1][2]


def test_zmm_preference_follows_the_cpu_and_the_user():
    """On CPUs with AVX-512F and fastact._numba.WIDE_FEATURE, numba gets -prefer-256-bit and the hot loop uses zmm;
    NUMBA_CPU_FEATURES or FASTACT_NUMBA_ZMM=0 leave numba's choice alone."""
    import llvmlite.binding as ll

    code = """
        import numpy as np, numba, fastact
        from fastact._numba import BACKEND, _kernels as K
        info = BACKEND.info()
        # an exp-based loop (sigmoid's table kernel is zmm code whatever numba prefers)
        ks, kp = K._instantiate("fwd_softplus", 1, cache=False)
        z = np.float32(1)
        x = np.linspace(-4, 4, 64, dtype=np.float32)
        ks(x, np.empty_like(x), z, z, z, z)
        asm = ks.inspect_asm(ks.signatures[0])
        print(repr(numba.config.CPU_FEATURES is not None), info["vector_width_bits"], info["cpu_features"].split(",")[0],
              int("zmm" in asm))
    """
    host = ll.get_host_cpu_features()
    wide = bool(host.get("avx512f")) and bool(host.get(__import__("fastact._numba", fromlist=["WIDE_FEATURE"]).WIDE_FEATURE))
    r = _run_py(code)
    assert r.returncode == 0, r.stderr
    set_, width, feats, zmm = r.stdout.split()
    assert set_ == repr(wide) and feats == "host"
    if wide:
        assert width == "512" and zmm == "1"
    r = _run_py(code, env={"FASTACT_NUMBA_ZMM": "0"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "False" and r.stdout.split()[2] == "host"
    own = ll.get_host_cpu_features().flatten()
    r = _run_py(code, env={"NUMBA_CPU_FEATURES": own})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[2] == "NUMBA_CPU_FEATURES"


def _cython_avx512():
    """The Cython backend's AVX-512 variant, or None where this CPU cannot run it (skip: not built)."""
    cy = pytest.importorskip("fastact._cython", reason="Cython backend not built: nothing to compare with")
    return cy.load_variant("avx512") if "avx512" in cy.available_isas() else None


def _same_bits(a, b):
    """float32 (or float64) arrays equal bit for bit (signs of zero included), NaN where the other is NaN."""
    nan = np.isnan(a)
    u = np.uint32 if a.dtype == np.float32 else np.uint64
    return np.array_equal(nan, np.isnan(b)) and np.array_equal(a.view(u)[~nan], b.view(u)[~nan])


def test_gelu_float32_tables():
    """float32 gelu: on CPUs with AVX-512 from the tables of polynomials (_tab), bit for bit the Cython
    AVX-512 variant's (the same tables read from its header, the same operations); elsewhere the exp-based
    loop. Either way within its targets, lanes independent, partial vectors and in place (check_gelu_f32)."""
    from fastact._numba import _tab

    assert _tab.ENABLED == _tab._targets_avx512()  # the header's tables were found
    assert BACKEND.info()["tables"].startswith("float32" if _tab.ENABLED else "none")
    out, gx, x, g = check_gelu_f32(BACKEND, "numba")
    if not _tab.ENABLED:
        return
    tabs = _tab.read_tables()
    assert {k: v.shape for k, v in tabs.items()} == {"phi": (8, 32), "dphi": (8, 32), "tail": (6, 32), "tanh": (7, 32),
                                                     "sigm": (7, 32), "tanhshrink": (8, 32)}
    # Both backends compute the centres, (k - i0) w, rather than pick row 0 (fastact_tab_at): it must hold
    # exactly, for the header's tables and the (1/width, shift) the kernels use with them
    for name, deg, inv_w, shift, _clamp in (_tab.PHI, _tab.DPHI, _tab.TAIL, _tab.TANH, _tab.TANHSHRINK, _tab.SIGM):
        assert tabs[name].shape[0] == deg + 2, name  # the kernel's degree is the header's
        c = tabs[name][0].astype(np.float64)
        w = c[1] - c[0]
        assert np.array_equal(c, (np.arange(32) - (shift - 12582912.0)) * w), name
        assert abs(w * inv_w - 1) < 1e-7, name
    be = _cython_avx512()
    if be is None:
        return
    ref, gref = np.empty_like(x), np.empty_like(x)
    be.forward("gelu", x, ref, {"approximate": "none"}, 1)
    be.backward("gelu", g, x, None, gref, {"approximate": "none"}, 1)
    assert _same_bits(out, ref) and _same_bits(gx, gref)


def test_sigmoid_and_tanh_tables_and_expm1_fit_are_fitpolys():
    """The header's fastact_sigm_tab and fastact_tanh_tab (degree 5, u^0 the float32 nearest f(c_i);
    tanh's last interval reaching to 9.125) are what _fitpoly.fit_table gives, and its fastact_expm1_fit
    (log_sigmoid's backward from y) and _tab.EXPM1_FIT are _fitpoly.fit_expm1_q's, within the fit errors
    the comments quote."""
    pytest.importorskip("mpmath")
    import re

    from fastact._numba import _fitpoly, _tab

    tabs = _tab.read_tables()
    for name, bound in (("sigm", 5.5e-8), ("tanh", 5.3e-8)):
        tab, err = _fitpoly.fit_table(name)
        assert tab.shape == (7, 32) and err < bound, name
        assert np.array_equal(tab, tabs[name]), name
    assert _fitpoly.LAST_HI["tanh"] == _tab.TANH_CLAMP - _tab.TANH[4]
    q, err = _fitpoly.fit_expm1_q()
    assert err < 1.45e-8
    with open(_tab.HEADER) as f:
        m = re.search(r"fastact_expm1_fit\[5\] = \{(.*?)\};", f.read())
    header = np.array([float(v.strip().rstrip("f")) for v in m.group(1).split(",")], np.float32)
    assert np.array_equal(np.array(q, np.float32), header)
    assert np.array_equal(np.array(_tab.EXPM1_FIT, np.float32), header)


def test_gelu_float32_exp_loop_is_the_cython_one():
    """float32 gelu without the tables: the forward's loop in stages (_math's gelu_fwd_staged, the span
    function's path) and its one-loop form (mul_phi, what any other loop calls), and the backward's one
    loop (gelu_dphi), give the Cython AVX2 variant's bits, the same operations in the same order (all
    2**32 inputs when written, the backward with random grads and with 1)."""
    import numba

    from fastact._numba import _scalar, _tab

    cy = pytest.importorskip("fastact._cython", reason="Cython backend not built: nothing to compare with")
    if "avx2" not in cy.available_isas():
        pytest.skip("no AVX2 variant here (its FMAs are the ones Numba's contracted code matches)")
    x = gelu_table_inputs()
    g = np.random.default_rng(8).standard_normal(x.size).astype(np.float32)
    avx2 = cy.load_variant("avx2")
    ref, gref = np.empty_like(x), np.empty_like(x)
    avx2.forward("gelu", x, ref, {"approximate": "none"}, 1)
    avx2.backward("gelu", g, x, None, gref, {"approximate": "none"}, 1)

    @numba.njit(error_model="numpy", fastmath={"contract"})
    def one_loop(g, x, out, gout):
        z = np.float32(0)
        for i in range(x.shape[0]):
            out[i] = _scalar.fwd_gelu_none(x[i], z, z, z, z)
            gout[i] = _scalar.bwd_gelu_none(g[i], x[i], z, z, z, z)

    one, gone = np.empty_like(x), np.empty_like(x)
    one_loop(g, x, one, gone)
    assert _same_bits(one, ref) and _same_bits(gone, gref)
    if _tab.ENABLED:
        return
    for threads in (1, 2):
        out, gx = np.empty_like(x), np.empty_like(x)
        BACKEND.forward("gelu", x, out, {"approximate": "none"}, threads)
        BACKEND.backward("gelu", g, x, None, gx, {"approximate": "none"}, threads)
        assert _same_bits(out, ref) and _same_bits(gx, gref)
    out = np.empty(x.size + 3, np.float32)[3:]  # off the 64-byte boundary: a head span first
    BACKEND.forward("gelu", x, out, {"approximate": "none"}, 1)
    assert _same_bits(out, ref)


def test_softplus_and_log_sigmoid_float32_forwards_in_stages_keep_the_one_loop_bits():
    """float32 softplus (beta 1) and log_sigmoid forwards run in two passes over blocks (_math's
    softplus1_fwd_staged, log_sigmoid_fwd_staged: exp(-|x|), then the log1p): the one loop's bits
    (_scalar's functions, all 2**32 inputs when written), on one thread and two, a result off the
    64-byte boundary, in place, and with softplus' threshold anywhere."""
    import numba

    from fastact._numba import _scalar

    assert K.STAGED_OPS[("fwd_softplus_beta1", 1)] == "_softplus1_fwd_staged"
    assert K.STAGED_OPS[("fwd_log_sigmoid", 1)] == "_log_sigmoid_fwd_staged"
    rng = np.random.default_rng(12)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 1e-38, -1e-38, 3e38, -3e38,
                        20.0, np.nextafter(20, 30), 3.5, 88.7, -88.7, 103.9, -103.9, 1e-8, -1e-8], np.float32)
    x = np.concatenate([special, (rng.standard_normal(20000) * 30).astype(np.float32),
                        rng.uniform(-1e-6, 1e-6, 3000).astype(np.float32),
                        rng.integers(0, 2**32, 30000, dtype=np.uint64).astype(np.uint32).view(np.float32)])

    @numba.njit(error_model="numpy", fastmath={"contract"})
    def one_loop(x, thr, sp, ls):
        z = np.float32(0)
        for i in range(x.shape[0]):
            sp[i] = _scalar.fwd_softplus_beta1(x[i], z, z, thr, z)
            ls[i] = _scalar.fwd_log_sigmoid(x[i], z, z, z, z)

    for thr in (20.0, 3.5, -1.0):
        sp, ls = np.empty_like(x), np.empty_like(x)
        one_loop(x, np.float32(thr), sp, ls)
        cases = [("softplus", {"beta": 1.0, "threshold": thr}, sp), ("log_sigmoid", {}, ls)]
        for name, p, ref in cases:
            params = fastact._registry.get_spec(name).with_defaults(p)
            for threads in (1, 2):
                out = np.empty_like(x)
                BACKEND.forward(name, x, out, params, threads)
                assert _same_bits(out, ref), (name, thr, threads)
            out = np.empty(x.size + 3, np.float32)[3:]  # off the 64-byte boundary: a head span first
            BACKEND.forward(name, x, out, params, 1)
            assert _same_bits(out, ref), (name, thr)
            out = x.copy()
            BACKEND.forward(name, out, out, params, 2)
            assert _same_bits(out, ref), (name, thr)


@pytest.mark.parametrize("name", ["tanh", "tanhshrink"])
def test_tanh_and_tanhshrink_float32_tables(name):
    """float32 tanh and tanhshrink: on CPUs with AVX-512 from the header's tables of polynomials, bit for bit the
    Cython AVX-512 variant's; elsewhere the exp-based loops. tanh within 2 ULP (all 2**32 inputs, measured;
    check_tanh_f32), tanhshrink within 3 (check_tanhshrink_f32)."""
    from fastact._numba import _tab

    assert (("fwd_" + name, 1) in K.TABLE_OPS) == _tab.ENABLED
    out, x = check_tanh_f32(BACKEND, "numba") if name == "tanh" else check_tanhshrink_f32(BACKEND, "numba", 3)
    if not _tab.ENABLED:
        return
    be = _cython_avx512()
    if be is None:
        return
    ref = np.empty_like(x)
    be.forward(name, x, ref, {}, 1)
    assert _same_bits(out, ref)


def test_log_sigmoid_backward_float32_tables():
    """float32 log_sigmoid backward, from x and from y: on CPUs with AVX-512 from the header's table (from x)
    and 2^k expm1(r) (from y; 2 ULP on check_log_sigmoid_bwd_f32's inputs), bit for bit the Cython AVX-512
    variant's; elsewhere the exp-based loops (3 ULP there: x = 1.89, g = 58909)."""
    from fastact._numba import _tab

    assert (("bwd_log_sigmoid", 2) in K.TABLE_OPS) == (("bwdy_log_sigmoid", 2) in K.TABLE_OPS) == _tab.ENABLED
    res = check_log_sigmoid_bwd_f32(BACKEND, "numba", bound=2 if _tab.ENABLED else 3)
    if not _tab.ENABLED:
        return
    be = _cython_avx512()
    if be is None:
        return
    for kind, (out, g, v) in res.items():
        ref = np.empty_like(v)
        be.backward("log_sigmoid", g, *((v, None) if kind == "x" else (None, v)), ref, {}, 1)
        assert _same_bits(out, ref), kind


def test_log_softmax_backward_from_y_float32_is_the_cython_loop():
    """float32 log_softmax backward from y, g - exp(y) sum(g): rows whose y are all <= 0 (every log_softmax
    output) take exp(-|y|) without exp's upper clamp (_kernels._nonpos); on CPUs with AVX-512 that loop is
    the Cython AVX-512 variant's in vector IR (_tab.lsm_bwd, vscalefps), bit for bit its results, in rows
    of 1000 and 100, a row with specials, rows with some y > 0 (the general exp), in place too."""
    from _helpers import assert_close, bound_for
    from fastact._numba import _tab
    from fastact._reference import BACKEND as REF
    from fastact._registry import get_spec

    rng = np.random.default_rng(7)
    x = (rng.standard_normal(9000) * 6).astype(np.float32)
    x[:8] = [np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-40, 0.0, -104.5]
    shapes = [(9, 1000, 1), (90, 100, 1)]
    for shape in shapes:
        xs = x.reshape(shape)
        y = np.empty_like(xs)
        BACKEND.forward("log_softmax", xs, y, {"axis": 1})
        g = rng.standard_normal(shape).astype(np.float32)
        mixed = np.where(np.arange(y.size).reshape(shape) % 97 == 0, -y, y)
        be = _cython_avx512() if _tab.ENABLED else None
        for ys in (y, mixed):
            out = np.empty_like(ys)
            BACKEND.backward("log_softmax", g, None, ys, out, {"axis": 1})
            inplace = g.copy()
            BACKEND.backward("log_softmax", inplace, None, ys, inplace, {"axis": 1})
            assert _same_bits(out, inplace)
            ref = np.empty_like(ys)
            REF.backward("log_softmax", g, None, ys, ref, {"axis": 1})
            assert_close(out, ref, *bound_for(get_spec("log_softmax"), "backward", np.float32), "log_softmax from y")
            if be is not None and ys is y:
                c = np.empty_like(ys)
                be.backward("log_softmax", g, None, ys, c, {"axis": 1})
                assert _same_bits(out, c)


def test_softmax_backward_from_y_float32_rows_are_the_cython_ones():
    """float32 softmax's and softmin's backward from y, rows of DOT4_MIN and more: on CPUs with AVX-512 the
    row's sum of g*y and the last pass are the Cython AVX-512 variant's (_tab.dot4: float32 sums of four
    products in steps of 64, the last padded; _tab.smax_apply), bit for bit its results, rows of 256 to
    4097 and a shorter one (the exact sum in both), specials, 1 and 2 threads, in place too; elsewhere
    the exact sum (_dot64), within the registry's bound."""
    from _helpers import assert_close, bound_for
    from fastact._numba import _tab
    from fastact._reference import BACKEND as REF
    from fastact._registry import get_spec

    rng = np.random.default_rng(17)
    be = _cython_avx512() if _tab.ENABLED else None
    for n, name, threads in itertools.product((255, 256, 1000, 1001, 4097), ("softmax", "softmin"), (1, 2)):
        x = rng.standard_normal((5, n, 1)).astype(np.float32)
        y = np.empty_like(x)
        BACKEND.forward(name, x, y, {"axis": 1})
        g = (rng.standard_normal((5, n, 1)) * 100).astype(np.float32)
        g[3, :3, 0] = [np.inf, np.nan, -3e38]
        y[4, 5:7, 0] = [0.0, -0.0]
        out = np.empty_like(y)
        BACKEND.backward(name, g, None, y, out, {"axis": 1}, threads)
        inplace = g.copy()
        BACKEND.backward(name, inplace, None, y, inplace, {"axis": 1}, threads)
        assert _same_bits(out, inplace), (n, name, threads)
        if be is not None:
            c = np.empty_like(y)
            be.backward(name, g, None, y, c, {"axis": 1}, threads)
            assert _same_bits(out, c), (n, name, threads)
        ref = np.empty_like(y)
        with np.errstate(all="ignore"):
            REF.backward(name, g, None, y, ref, {"axis": 1})
        fin = np.isfinite(g).all(axis=1)[:, 0]
        assert_close(out[fin], ref[fin], *bound_for(get_spec(name), "backward", np.float32), f"{name} rows of {n}")


@pytest.mark.parametrize("name", ["sigmoid", "silu"])
def test_sigmoid_float32_table(name):
    """float32 sigmoid and silu forwards: on CPUs with AVX-512 the table of sigmoid(-|x|) that log_sigmoid's
    backward uses, at -x (1 and 2 ULP on check_sigmoid_f32's inputs, subnormal results included), bit for bit
    the Cython AVX-512 variant's; elsewhere the exp-based loops (2 and 3 ULP)."""
    from fastact._numba import _tab

    assert (("fwd_" + name, 1) in K.TABLE_OPS) == _tab.ENABLED
    bound = (1 if name == "sigmoid" else 2) + (not _tab.ENABLED)
    out, x = check_sigmoid_f32(BACKEND, "numba", bound=bound, name=name, subnormal_ulps=_tab.ENABLED)
    be = _cython_avx512() if _tab.ENABLED else None
    if be is None:
        return
    ref = np.empty_like(x)
    be.forward(name, x, ref, {}, 1)
    assert _same_bits(out, ref)


def test_silu_backward_float32_table():
    """float32 silu backward: on CPUs with AVX-512 from the table of sigmoid(-|x|) (2 ULP with grad 1 away from
    the zero crossing, 3 with g of every magnitude), bit for bit the Cython AVX-512 variant's; elsewhere the
    exp-based loop (5 ULP at x = -6.59)."""
    from fastact._numba import _tab

    assert (("bwd_silu", 2) in K.TABLE_OPS) == _tab.ENABLED
    out, g, x = check_silu_bwd_f32(BACKEND, "numba", 2 if _tab.ENABLED else 5, wide_g=_tab.ENABLED)
    be = _cython_avx512() if _tab.ENABLED else None
    if be is None:
        return
    ref = np.empty_like(x)
    be.backward("silu", g, x, None, ref, {}, 1)
    assert _same_bits(out, ref)


def _cheap_bwd_want(name, g, x, p):
    """The cheap backwards' values in the dtype's own arithmetic (float32: hardsigmoid's g times float32(1/6),
    as the kernels), the tests against the parameter in float64 (the kernels' floored p0 gives the same)."""
    T = x.dtype.type
    x64 = x.astype(np.float64)
    zero = T(0)
    if name == "relu":
        return np.where(x > 0, g, zero)
    if name == "relu6":
        return np.where((x > 0) & (x < 6), g, zero)
    if name == "leaky_relu":
        return np.where(x > 0, g, g * T(p["negative_slope"]))
    if name == "threshold":
        return np.where(x64 <= p["threshold"], zero, g)
    if name in ("hardshrink", "softshrink"):
        return np.where(np.abs(x64) <= p["lambd"], zero, g)
    if name == "hardswish":  # float32: g times (2x + 3) float32(1/6), as the kernels; NaN x: g
        d = g * ((x + x + T(3)) * np.float32(1 / 6)) if T == np.float32 else g * (x / 3 + 0.5)
        return np.where(x <= -3, zero, np.where(x < 3, d, g))
    assert name == "hardsigmoid"
    d = g * np.float32(1 / 6) if T == np.float32 else g / 6
    return np.where((x > -3) & (x < 3), d, zero)


CHEAP_BWD = [("relu", {}), ("relu6", {}), ("leaky_relu", {"negative_slope": 0.3}), ("threshold", {"threshold": 0.1,
             "value": 2.0}), ("hardshrink", {"lambd": 0.3}), ("softshrink", {"lambd": 0.3}), ("hardsigmoid", {}),
             ("hardswish", {})]
# the other backwards in _kernels.NT_OPS, checked against the op's plain loop: hardtanh's from x (p2, p3: its
# bounds), and from y elu's, selu's (p0..p3: its constants), celu's, sigmoid's and tanh's
NT_BWD = [(name, p, "x") for name, p in CHEAP_BWD] + [("relu", {}, "y"), ("hardtanh", {"min_val": -0.3, "max_val": 3.0}, "x"),
          ("elu", {"alpha": 1.3}, "y"), ("selu", {}, "y"), ("celu", {"alpha": 0.7}, "y"), ("sigmoid", {}, "y"),
          ("tanh", {}, "y")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, p, via", NT_BWD)
def test_backward_one_pass_kernels(dtype, name, p, via):
    """The backwards of _kernels.NT_OPS: a streamed float32 result on AVX-512 from the op's one-pass span function
    (non-temporal stores; float64 streams as before); exactly the plain loop's bits (NaN, signed zeros, the
    intervals' ends included; the cheap ones' also their values in the dtype's arithmetic), at every offset of out
    from a line, 1 and 2 threads, plain and streamed, in place."""
    from fastact import _config
    from fastact._numba import _tab, backend as NBK

    key = ("bwd_" if via == "x" else "bwdy_") + name
    be = NBK.NumbaBackend()  # its kernels are K.INSTANCES' (other tests make backends of their own)
    assert ((key, 2) in K.NT_OPS) == _tab.ENABLED
    rng = np.random.default_rng(42)
    n = 5003
    v = (rng.standard_normal(n) * 4).astype(dtype)
    if via == "y" and name in ("sigmoid", "tanh"):
        v = np.tanh(v).astype(dtype) if name == "tanh" else (0.5 + 0.5 * np.tanh(v)).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    edges = [0.0, -0.0, 6.0, -3.0, 3.0, 0.1, -0.1, 0.3, -0.3, -1.3, -0.7, 1.0, -1.0,
             np.nextafter(dtype(0.1), dtype(1)), np.inf, -np.inf, np.nan]
    v[:len(edges) * 7:7] = np.array(edges, dtype)
    g[::9] = -0.0
    x, y = (v, None) if via == "x" else (None, v)
    before = _config.stream_min_bytes()
    try:
        _config.set_stream_min_bytes(1 << 40)
        want = np.empty_like(g)
        be.backward(name, g, x, y, want, p, 1)
        if via == "x" and name != "hardtanh":
            assert _same_bits(want, _cheap_bwd_want(name, g, x, p))
        for smin in (1 << 40, 0):
            _config.set_stream_min_bytes(smin)
            for off in range(0, 64 // v.itemsize, 3):
                buf = np.empty(n + 16, dtype)
                out = buf[off:off + n]
                for threads in (1, 2):
                    where = f"stream_min {smin} offset {off} threads {threads}"
                    be.backward(name, g, x, y, out, p, threads)
                    assert _same_bits(out, want), where
                    out[...] = g
                    be.backward(name, out, x, y, out, p, threads)
                    assert _same_bits(out, want), "in place, " + where
    finally:
        _config.set_stream_min_bytes(before)
    # the streamed calls ran the streamed span function (float32 on AVX-512 only)
    assert ((np.dtype(dtype), True) in K.INSTANCES[(key, 2)][1].spans) == (_tab.ENABLED and dtype == np.float32)


def test_float32_without_the_tables():
    """FASTACT_NUMBA_ZMM=0 (or a CPU without AVX-512): the exp-based loops of gelu, tanh, tanhshrink, sigmoid,
    silu and log_sigmoid's backward, within their targets."""
    code = f"""
        import sys
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        from fastact._numba import BACKEND, _tab, _kernels as K
        from _helpers import check_gelu_f32, check_log_sigmoid_bwd_f32, check_sigmoid_f32, check_silu_bwd_f32, check_tanh_f32, check_tanhshrink_f32
        assert not _tab.ENABLED and not K.TABLE_OPS and BACKEND.info()["tables"] == "none: exp-based loops"
        check_gelu_f32(BACKEND, "numba, exp loop")
        check_tanh_f32(BACKEND, "numba, exp loop")
        check_tanhshrink_f32(BACKEND, "numba, exp loop", 3)
        check_log_sigmoid_bwd_f32(BACKEND, "numba, exp loop", bound=3)
        check_sigmoid_f32(BACKEND, "numba, exp loop", bound=2)
        check_sigmoid_f32(BACKEND, "numba, exp loop", bound=3, name="silu", subnormal_ulps=False)
        check_silu_bwd_f32(BACKEND, "numba, exp loop", 5, wide_g=False)
        print("ok")
    """
    r = _run_py(code, env={"FASTACT_NUMBA_ZMM": "0"}, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


@pytest.mark.parametrize("op,arity", [("fwd_sigmoid", 1), ("fwd_gelu_none", 1), ("bwd_gelu_none", 2),
                                      ("fwd_mish", 1), ("fwd_softplus", 1), ("bwd_tanh", 2), ("fwd_elu", 1)])
def test_hot_loops_are_vectorised(op, arity):
    """Packed ymm/zmm arithmetic and no libm call in the serial float32 loop."""
    ks, kp = K._instantiate(op, arity, cache=False)  # uncached: inspect_asm needs the compiled code
    x = np.linspace(-4, 4, 64, dtype=np.float32)
    z = np.float32(1)
    if arity == 1:
        ks(x, np.empty_like(x), z, z, z, z)
    else:
        ks(x, x, np.empty_like(x), z, z, z, z)
    asm = ks.inspect_asm(ks.signatures[0])
    packed = re.findall(r"\bv(?:fmadd|fmsub|fnmadd|mul|add|sub|div)\w*ps\s+%[yz]mm", asm)
    assert len(packed) >= 8, f"{op}: loop not vectorised"
    libm = re.findall(r"call\w*\s+\S*(?:expf|exp|logf|log1p|tanhf|erff|erfcf)\b", asm)
    assert not libm, f"{op}: calls libm {libm}"
    # the parallel kernel runs the same loop on each thread's span, in the op's span function
    ll = kp.span(np.float32).inspect_llvm()
    vector_ops = re.findall(r"= f(?:mul|add|sub|div)\b[^=]*<\d+ x float>", ll)
    assert len(vector_ops) >= 8, f"{op}: span loop not vectorised"
    assert not re.search(r"call[^\n]*@(?:expf|exp|logf|log1pf|tanhf|erff|erfcf)\b", ll), f"{op}: span calls libm"


def test_threshold_compares_with_the_unrounded_threshold():
    # float32(1e-30) is just above 1e-30: it must pass the threshold, not be replaced by value
    # (found by the hypothesis property test); a threshold beyond float32's range too
    x = np.array([1e-30, -1e-30, 0.5, 3e38, -3e38, np.inf, -np.inf], np.float32)
    for t in (1e-30, -1e-30, 0.5, 1e300, -1e300):
        with fastact.use_backend("numba"):
            got = fastact.threshold(x, t, -2.0)
            gb = fastact.threshold_backward(np.ones_like(x), x, t, -2.0)
        np.testing.assert_array_equal(got, np.where(x.astype(np.float64) > t, x, np.float32(-2.0)))
        np.testing.assert_array_equal(gb, (x.astype(np.float64) > t).astype(np.float32))


def test_hardtanh_backward_uses_the_unrounded_bounds():
    x = np.array([1e-30, 2e-30, 0.5, -0.5], np.float32)
    x64 = x.astype(np.float64)
    for lo, hi in ((1e-30, 0.7), (-0.9, 0.1 + 1e-9), (-1e300, 1e300)):
        with fastact.use_backend("numba"):
            gb = fastact.hardtanh_backward(np.ones_like(x), x, min_val=lo, max_val=hi)
            fw = fastact.hardtanh(x, min_val=lo, max_val=hi)
        np.testing.assert_array_equal(gb, ((x64 > lo) & (x64 < hi)).astype(np.float32))
        np.testing.assert_array_equal(fw, np.clip(x64, lo, hi).astype(np.float32))


@pytest.mark.parametrize("length", [5, 100, 1000, 40000])
def test_softmax_rows_with_nan_and_inf(length):
    """The softmax family's row maximum ignores NaN (_max_row); a NaN must still make its whole row NaN,
    in short rows, long rows and a single row split across threads; +-inf rows as the reference."""
    rng = np.random.default_rng(length)
    x = rng.standard_normal((7, length)).astype(np.float32)
    x[1, length // 2] = np.nan
    x[2, 0] = np.nan
    x[3, :] = np.nan
    x[4, -1] = np.nan
    x[5, 0] = np.inf
    x[6, :] = -np.inf
    for name in ("softmax", "log_softmax", "softmin"):
        for rows in (x, x[1:2], x[4:5]):  # one row alone: the split path
            with fastact.use_backend("numba"):
                got = getattr(fastact, name)(rows)
            with fastact.use_backend("numpy"):
                want = getattr(fastact, name)(rows)
            assert np.array_equal(np.isnan(got), np.isnan(want)), name
            fin = ~np.isnan(want)
            np.testing.assert_allclose(got[fin], want[fin], rtol=1e-6, atol=1e-37)


def _closures(fn, seen):
    # fn and every function it reaches through its closure cells
    if id(fn) in seen or not callable(fn) or not hasattr(fn, "__code__"):
        return
    seen[id(fn)] = fn
    for cell in fn.__closure__ or ():
        try:
            _closures(cell.cell_contents, seen)
        except ValueError:  # an empty cell
            pass


def test_math_closures_have_names_of_their_own():
    """numba names a compiled function by qualname and a per-process counter: two of
    _math._build's closures sharing a qualname (float32's and float64's pow2, two Horner
    polynomials) could share a symbol between cache entries written by two processes.
    Every function the implementations reach has a qualname no other one has."""
    from numba import types
    from fastact._numba import _math

    seen = {}
    for T in (types.float32, types.float64):
        for f in _math._IMPL[T].values():
            _closures(f, seen)
    by_name = {}
    for f in seen.values():
        by_name.setdefault(f.__qualname__, []).append(f)
    shared = {q: len(fs) for q, fs in by_name.items() if len(fs) > 1}
    assert not shared, shared
    assert len(seen) > 50


def test_table_kernels_do_not_share_symbols():
    """The table kernels' span overloads (_tab._span_overload) and gelu's two drivers
    are closures of one factory each: with one qualname, the symbol of tanh's
    overload and sigmoid's differed only in the process's counter, and after a test
    run had filled the cache tanh's forward returned sigmoid (2026-12-02). Their
    symbols, counter left out, now differ."""
    from fastact._numba import _tab

    if not _tab.ENABLED:
        pytest.skip("no AVX-512: no table kernels")
    names = {}
    x = np.linspace(-4, 4, 64, dtype=np.float32)
    z = np.float32(1)
    for op, arity in (("fwd_tanh", 1), ("fwd_sigmoid", 1), ("fwd_silu", 1), ("fwd_tanhshrink", 1),
                      ("fwd_gelu_none", 1), ("bwd_gelu_none", 2)):
        ks, kp = K._instantiate(op, arity, cache=False)
        ks(*([x] * arity), np.empty_like(x), z, z, z, z)
        # the symbols defined by the kernel's library and those it links (the callees' own
        # modules: LLVM may have inlined a callee into the kernel's)
        libs, seen, defined = [ks.overloads[ks.signatures[0]].library], set(), set()
        while libs:
            lib = libs.pop()
            if id(lib) not in seen:
                seen.add(id(lib))
                defined |= {f.name for f in lib._final_module.functions if not f.is_declaration}
                libs.extend(getattr(lib, "_linking_libraries", ()))
        found = {re.sub(r"B\d+v\d+", "", m) for m in defined if re.match(r"_ZN[\w$.]*(?:_span_overload|_gelu_driver)", m)}
        assert found, op
        names[op] = found
    ops = list(names)
    for i, a in enumerate(ops):
        for b in ops[i + 1:]:
            assert not names[a] & names[b], (a, b, names[a] & names[b])


def test_module_level_kernels_cache_stamp_carries_the_source_hash():
    """numba checks a cache entry against the defining file only: the module-level
    kernels (softmax, glu, ...) inline _math and _tab, and an edit of _math.py alone
    left them running old code from the cache. Their entries' stamp now carries the
    hash of every source they inline (_kernels._stamp_caches_with_the_hash)."""
    x = np.ones(3, np.float32)
    K._dot64(x, x)
    cache = getattr(K._dot64, "_cache", None)
    locator = getattr(getattr(cache, "_impl", None), "locator", None)
    if locator is None:
        pytest.skip("numba's cache internals moved")
    assert type(locator).__name__ == "HashStampedLocator"
    assert locator.get_source_stamp()[1] == K._HASH
    # user code elsewhere is left to numba's own locators
    from numba.core import caching

    assert caching.CacheImpl._locator_classes[0].from_function(test_module_level_kernels_cache_stamp_carries_the_source_hash,
                                                               __file__) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_glu_serial_forward_through_the_span_function_from_c(dtype):
    # glu's serial forward calls the span function per outer index from C
    # (fastact._fastpath.glu_rows): the serial kernel's bits, for short and
    # long halves, inner > 1, one row; mismatched arrays are refused
    fp = pytest.importorskip("fastact._fastpath", reason="fastact._fastpath not compiled: the kernel's entry point runs")
    rng = np.random.default_rng(21)
    f = K.GLU_FWD[1].span(dtype).address
    for shape in [(1, 1000, 1), (7, 6, 1), (5, 10, 3), (3, 2, 1), (0, 4, 1), (2, 9000, 1)]:
        x = (rng.standard_normal(shape) * 20).astype(dtype)
        want = np.empty((shape[0], shape[1] // 2, shape[2]), dtype)
        K._glu_fwd_serial(x, want, dtype(0))
        got = np.empty_like(want)
        fp.glu_rows(f, x, got)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8), err_msg=str(shape))
        out = np.empty_like(want)
        BACKEND.forward("glu", x, out, {"axis": 1}, 1)
        np.testing.assert_array_equal(out.view(np.uint8), want.view(np.uint8), err_msg=str(shape))
    x = np.ones((2, 8, 1), dtype)
    for bad in (np.empty((2, 3, 1), dtype), np.empty((2, 4, 1), np.float16), np.empty((1, 8, 1), dtype), np.empty(8, dtype)):
        with pytest.raises(ValueError, match="glu_rows|span call"):
            fp.glu_rows(f, x, bad)


def test_sigmoid_backward_from_x_float32_is_the_cython_table():
    """float32 sigmoid's backward from x: on CPUs with AVX-512 g t (1 - t) from the sigmoid table, bit for bit
    the Cython AVX-512 variant's; elsewhere the exp-based loops."""
    from fastact._numba import _tab

    assert (("bwd_sigmoid", 2) in K.TABLE_OPS) == _tab.ENABLED
    if not _tab.ENABLED:
        return
    be = _cython_avx512()
    if be is None:
        return
    rng = np.random.default_rng(47)
    x = np.concatenate([rng.integers(0, 2**32, 1 << 18, dtype=np.uint64).astype(np.uint32).view(np.float32),
                        np.linspace(-40, 40, 100_001).astype(np.float32)])
    g = (rng.standard_normal(x.size) * np.exp2(rng.integers(-60, 60, x.size))).astype(np.float32)
    got, ref = np.empty_like(x), np.empty_like(x)
    with np.errstate(all="ignore"):
        BACKEND.backward("sigmoid", g, x, None, got, {}, 1)
        be.backward("sigmoid", g, x, None, ref, {}, 1)
    assert _same_bits(got, ref)
