"""Non-temporal ("streaming") stores: the compiled backends write a large
elementwise result of a memory-bound kernel through a small buffer with
non-temporal stores (``_cython/_elementwise.pxi.in``, ``_numba/_kernels._buf1``),
and the Cython backend streams the last pass of some of the softmax family's
rows (``_cython/_axis.pxi``, ``_last_pass_st``; on Numba softmax's and
softmin's backward rows, ``_numba/_kernels._softmax_bwd_rows_st``, and the
other calls must give the same bits too, streamed or not).
The results must be the same bits as with plain stores, for any alignment of
``out``, in place, serial and on two threads; the setting
(``FASTACT_STREAM_MIN_BYTES``, ``_config.set_stream_min_bytes``) must reach
both backends. Aligned plain stores too: prelu's forward starts its row
loops on a 64-byte line of out and must be exact at every offset of out."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fastact
import fastact._config as fa_config
from _helpers import ELEMENTWISE_SPECS, backend_or_skip, make_case, spec_ids, subprocess_env

NEVER = 1 << 62


@pytest.fixture(params=["numba", "cython"])
def compiled(request):
    """The backends that stream (the NumPy reference does not)."""
    with backend_or_skip(request.param) as name:
        yield name


@pytest.fixture
def stream_setting():
    """Restore the setting after the test."""
    before = fa_config.stream_min_bytes()
    yield fa_config.set_stream_min_bytes
    fa_config.set_stream_min_bytes(before)


def _runs(spec, x, g, params, y_ok):
    """Every call whose result could be streamed: forward allocating, into an
    out that starts off a cache line, in place; backward from x and from y."""
    n = x.size
    off = np.empty(n + 1, x.dtype)[1:]  # aligned to the element, not to 64 bytes
    res = [fastact.forward(spec.name, x, **params).copy(), fastact.forward(spec.name, x, out=off, **params).copy()]
    xi = x.copy()
    fastact.forward(spec.name, xi, out=xi, **params)
    res.append(xi)
    res.append(fastact.backward(spec.name, g, x, **params))
    if y_ok:
        res.append(fastact.backward(spec.name, g, y=res[0], **params))
    return res


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", ELEMENTWISE_SPECS, ids=spec_ids(ELEMENTWISE_SPECS))
def test_streamed_results_are_the_same_bits(spec, compiled, dtype, stream_setting):
    rng = np.random.default_rng(31)
    # 70_003: past every serial threshold (two threads; the chunks start off a
    # cache line), several buffer blocks each and a partial one; 5_003: serial
    x, params = make_case(spec, rng, dtype=dtype, size=70_003)
    x = (x * 4).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    y_ok = spec.allows_y(params)
    before = fastact.get_num_threads()
    try:
        for threads, size in ((2, x.size), (1, x.size), (2, 5_003)):
            fastact.set_num_threads(threads)
            stream_setting(NEVER)
            plain = _runs(spec, x[:size], g[:size], params, y_ok)
            stream_setting(0)
            streamed = _runs(spec, x[:size], g[:size], params, y_ok)
            for k, (a, b) in enumerate(zip(plain, streamed)):
                assert a.dtype == b.dtype
                assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), (
                    f"{spec.name} {dtype} [{compiled}] threads={threads} n={size}: call {k} differs when streamed")
    finally:
        fastact.set_num_threads(before)


def _row_runs(x, g, threads):
    """The softmax family's calls whose last pass may stream (rows of 256 and
    more): log_softmax's forward and the backwards from y, allocating, into an
    out one element off a cache line, in place (out is x, or g)."""
    res = []
    for name in ("softmax", "softmin", "log_softmax"):
        y = fastact.forward(name, x, axis=-1)
        res.append(y)
        off = np.empty(x.size + 1, x.dtype)[1:].reshape(x.shape)
        res.append(fastact.forward(name, x, axis=-1, out=off).copy())
        xi = x.copy()
        fastact.forward(name, xi, axis=-1, out=xi)
        res.append(xi)
        res.append(fastact.backward(name, g, y=y, axis=-1))
        off = np.empty(x.size + 1, x.dtype)[1:].reshape(x.shape)
        res.append(fastact.backward(name, g, y=y, axis=-1, out=off).copy())
        gi = g.copy()
        fastact.backward(name, gi, y=y, axis=-1, out=gi)
        res.append(gi)
    return res


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_streamed_rows_are_the_same_bits(compiled, dtype, stream_setting):
    # rows of 1000 (row by row, on each thread) and of 1013 (starting off a
    # cache line and ending in a partial block), one row of 70_003 (split
    # over the threads), the setting toggled
    rng = np.random.default_rng(32)
    before = fastact.get_num_threads()
    try:
        for shape in ((40, 1000), (31, 1013), (1, 70_003)):
            x = (rng.standard_normal(shape) * 4).astype(dtype)
            g = rng.standard_normal(shape).astype(dtype)
            for threads in (2, 1):
                fastact.set_num_threads(threads)
                stream_setting(NEVER)
                plain = _row_runs(x, g, threads)
                stream_setting(0)
                streamed = _row_runs(x, g, threads)
                for k, (a, b) in enumerate(zip(plain, streamed)):
                    assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), (
                        f"{dtype} [{compiled}] {shape} threads={threads}: call {k} differs when streamed")
    finally:
        fastact.set_num_threads(before)
    if compiled == "numba":  # softmax's and softmin's streamed backward rows ran
        from fastact._numba import _kernels
        assert _kernels._softmax_bwd_rows_st.signatures


def test_setting_reaches_both_backends(stream_setting):
    if "FASTACT_STREAM_MIN_BYTES" not in os.environ:
        assert fa_config.stream_min_bytes() == fa_config.STREAM_MIN_BYTES
    before = fa_config.stream_min_bytes()
    assert stream_setting(12345) == before
    assert fa_config.stream_min_bytes() == 12345
    try:
        import fastact._cython as cy
    except ImportError:
        cy = None
    if cy is not None:
        for isa in cy.available_isas():
            mod = cy._import(isa)
            assert mod.build_info()["stream_min_bytes"] == 12345
    try:
        from fastact._numba import backend as nb
    except ImportError:
        nb = None
    if nb is not None:
        assert nb._stream_min == 12345
    assert stream_setting(None) == 12345
    with pytest.raises(ValueError):
        stream_setting(-1)
    with pytest.raises(TypeError):
        stream_setting("8M")
    with pytest.raises(TypeError):
        stream_setting(True)


@pytest.mark.parametrize("raw, expected, warns", [
    ("0", 0, False), ("1048576", 1 << 20, False), (" off ", NEVER, False), ("never", NEVER, False),
    ("", fa_config.STREAM_MIN_BYTES, False), ("-1", fa_config.STREAM_MIN_BYTES, True),
    ("8M", fa_config.STREAM_MIN_BYTES, True),
])
def test_environment_variable(monkeypatch, raw, expected, warns):
    monkeypatch.setenv("FASTACT_STREAM_MIN_BYTES", raw)
    if warns:
        with pytest.warns(RuntimeWarning, match="FASTACT_STREAM_MIN_BYTES"):
            assert fa_config._default_stream_min() == expected
    else:
        assert fa_config._default_stream_min() == expected


def test_environment_variable_at_import():
    code = "import fastact._config as c; print(c.stream_min_bytes())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=subprocess_env(FASTACT_STREAM_MIN_BYTES="4096"), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "4096"


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_one_thread_streaming_starts_no_worker(compiled):
    # With one thread, a streamed result (Numba: the parallel kernel on a team
    # of one, backend.py buffered) must not leave an extra worker thread
    # behind: the same threads after it (12 MB) as after a small call (not
    # streamed: 8 MiB and more streams).
    code = (
        "import os, numpy as np, fastact\n"
        "fastact.relu(np.ones(1000, np.float32))\n"
        "before = len(os.listdir('/proc/self/task'))\n"
        "y = fastact.relu(np.ones(3_000_000, np.float32))\n"
        "assert y.sum() == 3_000_000\n"
        "print(before, len(os.listdir('/proc/self/task')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=subprocess_env(FASTACT_NUM_THREADS="1", FASTACT_BACKEND=compiled,
                                            FASTACT_STREAM_MIN_BYTES=str(8 << 20)))
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    assert after == before, (compiled, before, after)


def _far(t, p):
    d = (t - p) % 4096
    return 512 <= d <= 3584


def test_block_buffers_are_placed_away_from_the_arrays():
    # The buffered loops' blocks are multiples of 4 KiB, so a buffer at nearly
    # the same offset modulo 4 KiB as an array the loop reads or writes stalls
    # its loads for the whole call (4K aliasing). Both backends place the
    # buffer: on a 64-byte line (the Cython loops store to it unaligned), at
    # least 512 bytes from each array's offset, inside 4 KiB of slack. Any
    # three offsets leave a place: the seven candidates start from a's line,
    # and b and o each rule out at most two of them, or three around the
    # nearest (576, 1024 and 1536 bytes on), which the other then shares.
    rng = np.random.default_rng(5)
    cases = [(int(b), int(a), int(c), int(o)) for b, a, c, o in rng.integers(0, 1024, (300, 4)) * 4]
    cases += [(0, 0, 0, 0), (16, 16, 16, 16), (4000, 16, 16, 16), (0, 2048, 0, 1024), (8, 8, 2056, 1032)]
    try:
        import fastact._cython as cy
        mods = [cy._import(isa) for isa in cy.available_isas()]
    except ImportError:
        mods = []
    nb = None
    try:
        from fastact._numba import _kernels as nb
    except ImportError:
        pass
    if not mods and nb is None:
        pytest.skip("no compiled backend")
    big = np.empty(4 * 1024, np.float32)
    base = (-big.ctypes.data // 4) % 1024  # big[base] starts a page
    for boff, pa, pb, po in cases:
        for mod in mods:
            k = mod._place_buf_offset(4096 * 7 + boff, 4096 * 3 + pa, 4096 * 9 + pb, 4096 * 5 + po)
            t = (boff + k) % 4096
            assert 0 <= k < 4096 and t % 64 == 0, (boff, pa, pb, po, k)
            assert _far(t, pa) and _far(t, pb) and _far(t, po), (boff, pa, pb, po, k)
        if nb is not None:
            row = big[base + boff // 4: base + boff // 4 + 1024 + 1024]
            v = nb._place_buf(row, 1024, pa, pb, po)
            k = v.ctypes.data - row.ctypes.data
            t = v.ctypes.data % 4096
            assert v.shape == (1024,) and 0 <= k < 4096 and t % 64 == 0, (boff, pa, pb, po, k)
            assert _far(t, pa) and _far(t, pb) and _far(t, po), (boff, pa, pb, po, t)


def _offset_outs(n, dtype, stream_setting):
    """(out, threads, where): n elements starting at every third offset of an
    element from a 64-byte line, for 1 and 2 threads, with plain stores and
    with streamed ones (the setting set before each)."""
    step = 64 // np.dtype(dtype).itemsize
    for smin in (NEVER, 0):
        stream_setting(smin)
        for off in range(0, step, 3):
            buf = np.empty(n + 2 * step, dtype)
            s = ((-buf.ctypes.data) % 64) // buf.itemsize + off
            for threads in (1, 2):
                yield buf[s:s + n], threads, f"offset {off} threads {threads} stream_min {smin}"


@pytest.mark.parametrize("shape", [(1, 3, 70001), (7, 1000, 1), (301, 64, 1), (2001, 8, 2), (500, 16, 3),
                                   (3333, 30, 1), (40, 5, 100), (7, 3, 101)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prelu_forward_at_every_offset_of_out(compiled, shape, dtype, stream_setting):
    # prelu's forward starts its row loops on a 64-byte line of out (the
    # weights rotated, or read from an offset into their repeated block, to
    # match), and the Numba backend splits the flat elements evenly between
    # the threads (a share may end inside a row or a channel's span). Every
    # offset of out from a line, 1 and 2 threads, out apart from x and
    # out = x, plain and streamed stores (the rows stream their whole blocks
    # on a line): exactly x > 0 ? x : w[c] * x.
    be = fastact._backends.load(compiled)
    rng = np.random.default_rng(8)
    n = int(np.prod(shape))
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[5] = np.nan
    w = (rng.random(shape[1]) * 0.5).astype(dtype)
    want = np.where(x > 0, x, w[None, :, None] * x)
    for flat, threads, where in _offset_outs(n, dtype, stream_setting):
        out = flat.reshape(shape)
        be.forward("prelu", x, out, {"weight": w}, threads)
        np.testing.assert_array_equal(out, want, err_msg=where)
        out[...] = x
        be.forward("prelu", out, out, {"weight": w}, threads)
        np.testing.assert_array_equal(out, want, err_msg=f"in place, {where}")


@pytest.mark.parametrize("shape", [(1, 2 * 70001, 1), (3, 2 * 16411, 1), (2, 2 * 4097, 5), (7, 2000, 1), (40, 10, 100)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_glu_forward_streamed_at_every_offset_of_out(compiled, shape, dtype, stream_setting):
    # glu's forward (axis 1 of (outer, 2 L, inner)) streams a large result in
    # rows of out of 16384 or more on Numba through blocks copied
    # non-temporally (_kernels._glu_fwd_st; float32 on AVX-512 from rows of
    # 256 in one pass, _glu_fwd_nt), its inputs read by pointers into
    # the flat x; a thread's share may start and end inside a row. Every
    # offset of out from a line, 1 and 2 threads, plain and streamed stores:
    # the bits of the plain call.
    be = fastact._backends.load(compiled)
    rng = np.random.default_rng(9)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    x.flat[[3, 200]] = [np.nan, -np.inf]
    oshape = (shape[0], shape[1] // 2, shape[2])
    n = int(np.prod(oshape))
    stream_setting(NEVER)
    want = np.empty(oshape, dtype)
    be.forward("glu", x, want, {"dim": 1}, 1)
    for flat, threads, where in _offset_outs(n, dtype, stream_setting):
        out = flat.reshape(oshape)
        be.forward("glu", x, out, {"dim": 1}, threads)
        np.testing.assert_array_equal(out, want, err_msg=where)
    if compiled == "numba":  # the streamed kernel ran, for this dtype
        import numba
        from fastact._numba import _kernels, backend

        L = oshape[1] * oshape[2]
        if dtype == np.float32 and _kernels._tab.ENABLED and L >= backend.GLU_NT_L:
            ran = _kernels._glu_fwd_nt  # one pass from the table, non-temporal stores
        else:
            ran = _kernels._glu_fwd_st if L >= backend.GLU_STREAM_L else None
        if ran is not None:
            assert any(sig[0].dtype == numba.from_dtype(dtype) for sig in ran.signatures), ran


@pytest.mark.parametrize("offset", [0, 16])
@pytest.mark.parametrize("name, p", [("gelu", {"approximate": "tanh"}), ("softplus", {"beta": 1.0, "threshold": 20.0}),
                                     ("softplus", {"beta": 2.0, "threshold": 5.0}), ("log_sigmoid", {}),
                                     ("mish", {})])
def test_prefetched_blocks_give_the_bits_of_short_calls(compiled, offset, name, p):
    # Four float32 forwards run a span of at least 131072 elements in blocks
    # of 4096, prefetching the next block's x (_numba/_kernels.PREFETCH,
    # _cython/_elementwise.pxi.in PREFETCH_F32). Each element depends on its
    # own x alone, so the result must be the bits of calls short enough to run
    # the plain loop: on 1 and 2 threads, a length that ends inside a block,
    # out on a line or `offset` bytes past one, and in place.
    be = fastact._backends.load(compiled)
    rng = np.random.default_rng(21)
    n = 131072 * 2 + 3 * 4096 + 37
    x = (rng.standard_normal(n) * 4).astype(np.float32)
    x[[0, 4095, 4096, 131071, n - 1]] = [np.nan, -np.inf, 10.5, -9.25, 0.0]
    want = np.empty_like(x)
    for s in range(0, n, 1000):
        be.forward(name, x[s:s + 1000], want[s:s + 1000], p, 1)
    buf = np.empty(n + 32, np.float32)
    s = ((-buf.ctypes.data) % 64 + offset) // 4
    out = buf[s:s + n]
    for threads in (1, 2):
        out[...] = 0
        be.forward(name, x, out, p, threads)
        assert np.array_equal(out.view(np.uint32), want.view(np.uint32)), threads
        out[...] = x
        be.forward(name, out, out, p, threads)
        assert np.array_equal(out.view(np.uint32), want.view(np.uint32)), ("in place", threads)


def test_prefetched_backward_rows_give_the_bits_of_smaller_calls(compiled):
    # From 4194304 elements on, log_softmax's backward rows (and on Numba
    # softmax's) prefetch the next row of g and y (_numba/_kernels.PF_ROWS_MIN,
    # _cython/_axis.pxi _axis). Rows are independent: the same bits as calls
    # on slices of rows below that size, on 1 and 2 threads.
    be = fastact._backends.load(compiled)
    rng = np.random.default_rng(12)
    outer = 4194304 // 1000 + 37
    x = rng.standard_normal((outer, 1000, 1)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    step = 2000
    for name in ("softmax", "log_softmax"):
        y = np.empty_like(x)
        be.forward(name, x, y, {}, 2)
        want = np.empty_like(x)
        for r in range(0, outer, step):
            be.backward(name, g[r:r + step], None, y[r:r + step], want[r:r + step], {}, 2)
        for threads in (1, 2):
            got = np.empty_like(x)
            be.backward(name, g, None, y, got, {}, threads)
            assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (name, threads)


def _backward_bits_at_every_offset(be, name, g, x, params, want, stream_setting):
    """float32 backward from x of ``name`` on backend object ``be``: the bits of ``want`` into out at every
    offset (_offset_outs: 1 and 2 threads, plain and streamed) and in place (out is g)."""
    for out, threads, where in _offset_outs(x.size, np.float32, stream_setting):
        be.backward(name, g, x, None, out, params, threads)
        np.testing.assert_array_equal(out.view(np.uint32), want.view(np.uint32), err_msg=where)
        out[...] = g
        be.backward(name, out, x, None, out, params, threads)
        np.testing.assert_array_equal(out.view(np.uint32), want.view(np.uint32), err_msg=f"in place, {where}")


def _has_sigmoid_table(name):
    """Whether backend ``name`` computes float32 sigmoids from the table (AVX-512)."""
    if name == "numba":
        from fastact._numba import _tab
        return _tab.ENABLED
    import fastact._cython as cy
    return cy.ISA == "avx512"


@pytest.mark.parametrize("threshold", [20.0, 3.3, -0.5, 1e300])
def test_softplus_backward_beta1_float32_is_log_sigmoids_table_at_minus_x(compiled, threshold, stream_setting):
    # softplus's float32 backward with beta 1, where the backend has the
    # sigmoid table: g where x > threshold, else log_sigmoid's backward at
    # -x, g sigmoid(x), from the same table in one pass (_fastact_cpu.h
    # fastact_softplus_bwd1_f32, _numba/_tab.py "softplus_bwd1"; the table's
    # accuracy checks, _helpers.check_log_sigmoid_bwd_f32, carry over). Bit
    # for bit at every offset of out, 1 and 2 threads, plain and streamed,
    # in place; within the registry's bound elsewhere (the exp loops).
    from fastact._registry import get_spec
    from _helpers import assert_close, bound_for
    from fastact._reference import BACKEND as REF

    be = fastact._backends.load(compiled)
    rng = np.random.default_rng(44)
    with np.errstate(over="ignore"):  # 1e300: t is float32's largest, its next up inf
        t = np.float32(threshold)
        t = np.nextafter(t, np.float32(-np.inf)) if float(t) > threshold else t  # x > t: x > threshold exactly
        near = [t, np.nextafter(t, np.float32(np.inf)), np.nextafter(t, np.float32(-np.inf))]
    edges = np.array([0.0, 15.5, 15.75, 16.0, 88.7, 103.9, 192.7, 200.0, 250.0, 3e38, np.inf], np.float32)
    x = np.concatenate([(rng.standard_normal(30_011) * 20).astype(np.float32), edges, -edges, [np.nan] + near])
    x = x.astype(np.float32)
    g = (rng.standard_normal(x.size) * np.exp2(rng.integers(-40, 40, x.size))).astype(np.float32)
    params = {"beta": 1.0, "threshold": threshold}
    want = np.empty_like(x)
    if _has_sigmoid_table(compiled):
        be.backward("log_sigmoid", g, -x, None, want, {}, 1)
        want = np.where(x > t, g, want)
    else:
        be.backward("softplus", g, x, None, want, params, 1)
    ref = np.empty_like(x)
    REF.backward("softplus", g, x, None, ref, params, 1)
    assert_close(want, ref, *bound_for(get_spec("softplus"), "backward", np.float32), "softplus backward, beta 1")
    _backward_bits_at_every_offset(be, "softplus", g, x, params, want, stream_setting)


@pytest.mark.parametrize("shape", [(1, 2 * 40_001, 1), (37, 2000, 1), (300, 2 * 33, 1), (3000, 6, 1), (40, 200, 3)])
def test_glu_forward_float32_is_log_sigmoids_table_at_minus_b(compiled, shape, stream_setting):
    # glu's float32 forward, a sigmoid(b), where the backend has the sigmoid
    # table: log_sigmoid's backward at -b with grad a, from the same table
    # (_fastact_cpu.h fastact_glu_f32, _numba/_tab.py "glu"), bit for bit at
    # every offset of out, 1 and 2 threads, plain and streamed (Cython: rows
    # of 64 and more in one pass with non-temporal stores; Numba: long rows
    # through the streamed buffer); within the registry's bound elsewhere.
    from fastact._registry import get_spec
    from _helpers import assert_close, bound_for
    from fastact._reference import BACKEND as REF

    be = fastact._backends.load(compiled)
    rng = np.random.default_rng(45)
    x = (rng.standard_normal(shape) * 30).astype(np.float32)
    edges = np.array([0.0, 7.75, 15.75, 88.7, 103.9, 150.0, 200.0, 3e38, np.inf, np.nan], np.float32)
    flat = x.reshape(-1)
    flat[:2 * edges.size] = np.concatenate([edges, -edges])
    flat[-2 * edges.size:] = np.concatenate([-edges, edges])
    L = shape[1] // 2
    oshape = (shape[0], L, shape[2])
    a, b = np.ascontiguousarray(x[:, :L]), np.ascontiguousarray(x[:, L:])
    want = np.empty(oshape, np.float32)
    if _has_sigmoid_table(compiled):
        be.backward("log_sigmoid", a.reshape(-1), -b.reshape(-1), None, want.reshape(-1), {}, 1)
    else:
        be.forward("glu", x, want, {"axis": 1}, 1)
    ref = np.empty(oshape, np.float32)
    REF.forward("glu", x, ref, {"axis": 1}, 1)
    assert_close(want, ref, *bound_for(get_spec("glu"), "forward", np.float32), "glu forward")
    for out, threads, where in _offset_outs(want.size, np.float32, stream_setting):
        be.forward("glu", x, out.reshape(oshape), {"axis": 1}, threads)
        np.testing.assert_array_equal(out.view(np.uint32), want.reshape(-1).view(np.uint32), err_msg=where)


def test_table_kernels_keep_the_references_zero_factor_beyond_745(compiled):
    # Where the reference's exp(-|x|) is 0 in float64 (|x| > 745.1332, the
    # largest such float32) its sigmoid factor is 0 and an infinite grad
    # gives NaN; the float32 tables' tail clamps |x| at 200 and gave the
    # grad's infinity (log_sigmoid's, softplus's and silu's backward, glu's
    # forward). Every backend as the reference there, finite grads too
    # (signed zeros as the reference's where the factor is +0).
    from fastact._reference import BACKEND as REF

    be = fastact._backends.load(compiled)
    big = np.array([745.1332, np.nextafter(np.float32(745.1332), np.float32(np.inf)), 800.0, 1e30, 3e38, np.inf],
                   np.float32)
    x = np.concatenate([big, -big])
    gs = [np.full(x.size, np.inf, np.float32), np.full(x.size, -np.inf, np.float32), np.full(x.size, 3e38, np.float32),
          np.full(x.size, -2.0, np.float32)]
    cases = [("log_sigmoid", {}), ("silu", {}), ("softplus", {"beta": 1.0, "threshold": 20.0}), ("sigmoid", {})]
    with np.errstate(all="ignore"):
        for g in gs:
            for name, p in cases:
                got, want = np.empty_like(x), np.empty_like(x)
                be.backward(name, g, x, None, got, p, 1)
                REF.backward(name, g, x, None, want, p, 1)
                nan = np.isnan(want)
                assert np.array_equal(np.isnan(got), nan), (name, g[0], x[np.isnan(got) != nan])
                assert np.array_equal(got[~nan], want[~nan]), (name, g[0])
                zero = ~nan & (want == 0)
                assert np.array_equal(np.signbit(got[zero]), np.signbit(want[zero])), (name, g[0])
            # glu: a sigmoid(b), a = g, b = x
            xg = np.concatenate([g, x]).reshape(1, 2 * x.size, 1)
            got, want = np.empty((1, x.size, 1), np.float32), np.empty((1, x.size, 1), np.float32)
            be.forward("glu", xg, got, {"axis": 1}, 1)
            REF.forward("glu", xg, want, {"axis": 1}, 1)
            nan = np.isnan(want)
            assert np.array_equal(np.isnan(got), nan), ("glu", g[0])
            assert np.array_equal(got[~nan], want[~nan]), ("glu", g[0])


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_sigmoid_and_tanh_backward_from_x_float32(compiled, name, stream_setting):
    # sigmoid's float32 backward from x, where the backend has the sigmoid
    # table: g t (1 - t), t = sigmoid(-|x|) (_fastact_cpu.h fastact_dsig_v,
    # _numba/_tab.py "sigmoid_bwd"); elsewhere, and tanh's, the exp loops. Within the registry's bound on
    # the table's edges, its tail and beyond 745.1332 (an infinite grad: NaN
    # where the reference's factor is 0), grads of every magnitude; the same
    # bits at every offset of out, 1 and 2 threads, plain, streamed, in place.
    from fastact._registry import get_spec
    from _helpers import assert_close, bound_for
    from fastact._reference import BACKEND as REF

    be = fastact._backends.load(compiled)
    rng = np.random.default_rng(46)
    edges = np.array([0.0, 1e-45, 1e-30, 3.875, 7.75, 15.5, 15.75, 16.0, 40.0, 88.7, 103.9, 200.0, 372.6, 745.1332,
                      746.0, 1e30, 3e38, np.inf, np.nan], np.float32)
    x = np.concatenate([(rng.standard_normal(40_000) * s).astype(np.float32) for s in (1, 8, 100)] + [edges, -edges])
    g = (rng.standard_normal(x.size) * np.exp2(rng.integers(-60, 60, x.size))).astype(np.float32)
    g[-4 * edges.size:-2 * edges.size] = np.float32(3e38) * np.sign(g[-4 * edges.size:-2 * edges.size])
    g[-2 * edges.size:] = np.inf
    want = np.empty_like(x)
    ref = np.empty_like(x)
    with np.errstate(all="ignore"):
        be.backward(name, g, x, None, want, {}, 1)
        REF.backward(name, g, x, None, ref, {}, 1)
    assert_close(want, ref, *bound_for(get_spec(name), "backward", np.float32), f"{name} backward")
    _backward_bits_at_every_offset(be, name, g, x, {}, want, stream_setting)
