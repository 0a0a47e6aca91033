"""float16 where test_conformance does not reach: long arrays, odd layouts, out=, mixed dtypes.

float16 is computed in float32 and stored as float16 by the public layer, so a
backend never sees it; what can go wrong is the conversion around the kernel
(the parallel path on long arrays, strided and Fortran views, a strided out=,
prelu's grad_weight summed over many elements). The bound is the registry's
float16 one.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import fastact
from fastact._registry import AXIS, GLU, MAXOUT, PRELU, RRELU, SPECS

from _helpers import (assert_close, bound_for, grad_shape, make_case, no_general_path, reference_backward,
                      reference_forward, spec_ids)

F16 = np.float16


def _first(r):
    return r[0] if isinstance(r, tuple) else r


def _check(spec, x, params, backend, label, out=None, gout=None):
    what = f"{spec.name} [{backend}, float16, {label}]"
    y = fastact.forward(spec.name, x, out=out, **params)
    exp = reference_forward(spec.name, x, **params)
    assert _first(y).dtype == F16, what
    if out is not None:
        assert _first(y) is out
    assert_close(_first(y), _first(exp), *bound_for(spec, "forward", F16), "forward " + what)
    shape = grad_shape(spec, x.shape, params.get("axis", -1), params) if spec.kind in (GLU, MAXOUT) else x.shape
    g = np.random.default_rng(9).standard_normal(shape).astype(F16)
    got = fastact.backward(spec.name, g, x, out=gout, **params)
    ref = reference_backward(spec.name, g, x, **params)
    for a, e in zip(got if isinstance(got, tuple) else (got,), ref if isinstance(ref, tuple) else (ref,)):
        assert a.dtype == F16, what
        assert_close(a, e, *bound_for(spec, "backward", F16), "backward " + what)


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_float16_long_arrays(spec, backend):
    """Past every backend's serial threshold, so the parallel drivers run on converted float16 data."""
    rng = np.random.default_rng(10)
    params = {"training": True} if spec.kind == RRELU else None
    shape = (400, 512) if spec.kind in (AXIS, GLU, MAXOUT) else None
    x, p = make_case(spec, rng, dtype=F16, size=200_003, shape=shape, params=params)
    _check(spec, x, p, backend, f"shape {x.shape}")


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_float16_layouts_and_strided_out(spec, backend):
    rng = np.random.default_rng(11)
    params = {"training": False} if spec.kind == RRELU else None
    x, p = make_case(spec, rng, dtype=F16, size=4096, params=params)
    if spec.kind == PRELU:
        base = x
    else:
        base = x.reshape(-1, 64) if spec.kind not in (AXIS, GLU, MAXOUT) else x
    # Fortran order and a reversed, strided view
    _check(spec, np.asfortranarray(base), p, backend, "fortran")
    if spec.kind != PRELU or base.shape[-1] > 1:
        _check(spec, base[::-1, ...], p, backend, "reversed")
    # a strided out= (every other column of a wider buffer), forward and backward
    y_shape = _first(reference_forward(spec.name, base, **p)).shape
    buf = np.full(y_shape[:-1] + (2 * y_shape[-1],), 7, dtype=F16)
    gbuf = np.full(base.shape[:-1] + (2 * base.shape[-1],), 7, dtype=F16)
    _check(spec, base, p, backend, "strided out", out=buf[..., ::2], gout=gbuf[..., ::2])
    assert np.all(buf[..., 1::2] == 7) and np.all(gbuf[..., 1::2] == 7)


@pytest.mark.parametrize("name", ["gelu", "softmax", "prelu"])
def test_float16_mixed_with_float32_promotes(name, backend):
    """grad_output float16 with x float32 (or the reverse) is computed and returned in float32, as NumPy promotes."""
    spec = fastact._registry.get_spec(name)
    rng = np.random.default_rng(12)
    x, p = make_case(spec, rng, dtype=np.float32, size=2048)
    g = rng.standard_normal(x.shape)
    for gd, xd in ((F16, np.float32), (np.float32, F16)):
        gg, xx = g.astype(gd), x.astype(xd)
        got = fastact.backward(name, gg, xx, **p)
        ref = reference_backward(name, gg.astype(np.float32), xx.astype(np.float32), **p)
        for a, e in zip(got if isinstance(got, tuple) else (got,), ref if isinstance(ref, tuple) else (ref,)):
            assert a.dtype == np.float32
            assert_close(a, e, *bound_for(spec, "backward", np.float32), f"{name} {gd.__name__}/{xd.__name__}")


def test_float16_conversion_is_numpys_astype():
    """The Cython build's float16 <-> float32 conversion, which the public
    layer uses around the kernels, is NumPy's astype bit for bit (a NaN stays
    a NaN), on one thread and two; the baseline build has none and says so."""
    import importlib

    cy = pytest.importorskip("fastact._cython")
    rng = np.random.default_rng(4)
    halves = np.arange(1 << 16, dtype=np.uint16).view(F16)
    floats = np.concatenate([
        rng.integers(0, 1 << 32, 1 << 20, dtype=np.uint64).astype(np.uint32).view(np.float32),
        (rng.standard_normal(1 << 20) * np.exp(rng.uniform(-20, 12, 1 << 20))).astype(np.float32),
        np.array([65504, 65519.99, 65520, 65536, 6e-8, 5.96e-8, 2.98e-8, 2.99e-8, 6.1e-5, -0.0, 0.0,
                  np.inf, -np.inf, np.nan, 1 + 2 ** -11, 1 + 3 * 2 ** -11], np.float32),
    ])
    with np.errstate(over="ignore"):
        narrowed = floats.astype(F16)
    for isa in cy.available_isas():
        convert = importlib.import_module(f"fastact._cython._k_{isa}").convert
        if isa == "base":
            assert convert(halves, np.empty(halves.size, np.float32)) is False
            continue
        for threads in (1, 2):
            f = np.empty(halves.size, np.float32)
            assert convert(halves, f, threads)
            want = halves.astype(np.float32)
            nan = np.isnan(want)
            assert np.array_equal(np.isnan(f), nan) and np.array_equal(f.view(np.uint32)[~nan], want.view(np.uint32)[~nan])
            h = np.empty(floats.size, F16)
            assert convert(floats, h, threads)
            nan = np.isnan(narrowed)
            assert np.array_equal(np.isnan(h), nan), isa
            assert np.array_equal(h.view(np.uint16)[~nan], narrowed.view(np.uint16)[~nan]), isa
        with pytest.raises(TypeError):
            convert(floats, np.empty(floats.size))
        with pytest.raises(ValueError):
            convert(halves[::2], np.empty(halves.size // 2, np.float32))


@pytest.mark.parametrize("order", ["C", "F"])
def test_float16_calls_are_the_float32_kernels_between_numpys_conversions(order, backend):
    """A float16 call is the float32 call on x.astype(float32), rounded to
    float16 as NumPy rounds: the same bits, whichever converter runs."""
    rng = np.random.default_rng(6)
    x = np.asarray(rng.standard_normal((300, 700)) * 4, dtype=F16, order=order)
    g = np.asarray(rng.standard_normal(x.shape), dtype=F16, order=order)
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    with np.errstate(over="ignore"):
        for got, want in [
            (fastact.relu(x), fastact.relu(x32).astype(F16)),
            (fastact.gelu(x), fastact.gelu(x32).astype(F16)),
            (fastact.gelu_backward(g, x), fastact.gelu_backward(g32, x32).astype(F16)),
            (fastact.softmax(x, axis=0), fastact.softmax(x32, axis=0).astype(F16)),
            (fastact.sigmoid(x, out=np.empty_like(x)), fastact.sigmoid(x32).astype(F16)),
        ]:
            assert got.dtype == F16
            np.testing.assert_array_equal(got, want)


def test_float16_allocating_calls_take_the_fast_path(monkeypatch, backend):
    """An allocating call on C-contiguous float16 arrays skips the general
    path (fastact._api._half_forward / _half_backward) where the converter is
    built, and gives the general path's result (an out= call still takes the
    general path); other layouts and out= still go there."""
    from fastact import _api

    if not _api._h16():
        pytest.skip("no compiled float16 converter: float16 takes the general path")
    rng = np.random.default_rng(12)
    cases = [("relu", {}), ("gelu", {"approximate": "tanh"}), ("elu", {"alpha": 0.7}), ("sigmoid", {}),
             ("hardtanh", {"min_val": -0.5, "max_val": 2.0}), ("rrelu", {}), ("leaky_relu", {"negative_slope": -0.2})]
    for name, params in cases:
        f, b = getattr(fastact, name), getattr(fastact, name + "_backward")
        spec = fastact._registry.get_spec(name)
        for shape in [(1,), (7,), (3, 5), (300, 70)]:
            x = (rng.standard_normal(shape) * 3).astype(F16)
            g = rng.standard_normal(shape).astype(F16)
            y = f(x, **params, out=np.empty_like(x))
            gx = b(g, x, **params, out=np.empty_like(x))
            allows_y = spec.kind != RRELU and spec.allows_y(params)
            gy = b(g, y=y, **params, out=np.empty_like(x)) if allows_y else None
            with monkeypatch.context() as m:
                for fn in (f, b):
                    no_general_path(m, fn)
                fast = [f(x, **params), b(g, x, **params)] + ([b(g, y=y, **params)] if allows_y else [])
                if x.size > 1:
                    with pytest.raises(AssertionError, match="general path"):
                        f(np.stack([x, x], axis=-1)[..., 0], **params)  # strided
            for got, want in zip(fast, [y, gx, gy]):
                assert got.dtype == F16 and got.shape == shape
                np.testing.assert_array_equal(got, want, err_msg=f"{name} {shape} [{backend}]")


def _half_functions():
    """The Cython backend's elementwise functions that take float16 arrays block by block (empty: none)."""
    import importlib

    from fastact import _backends

    if not _backends.available("cython")[0]:
        return frozenset()
    return getattr(importlib.import_module(_backends.load("cython").module), "HALF_FUNCTIONS", frozenset())


def _same_bits(got, want, what):
    assert got.dtype == F16 and got.shape == want.shape, what
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), what
    assert np.array_equal(got.view(np.uint16)[~nan], want.view(np.uint16)[~nan]), what


def _one_step_at_most(got, want, what):
    """float16 results of the row groups against the whole array's float32 call
    rounded: at most one float16 step apart, equal in more than 99 % of them."""
    steps = np.abs(got.view(np.int16).astype(np.int32) - want.view(np.int16).astype(np.int32))
    assert steps.max() <= 1 and np.mean(steps == 0) > 0.99, what


ELEMENTWISE = [s for s in SPECS if s.kind not in (AXIS, GLU, MAXOUT, PRELU, RRELU)]
_OTHER_PARAMS = {"gelu": [{"approximate": "tanh"}], "softplus": [{"beta": 2.0}, {"beta": 1.0, "threshold": 3.0}],
                 "celu": [{"alpha": 0.37}], "swish": [{"beta": 0.7}], "elu": [{"alpha": 0.7}],
                 "leaky_relu": [{"negative_slope": -0.2}], "hardtanh": [{"min_val": -0.5, "max_val": 2.0}]}


@pytest.mark.parametrize("spec", ELEMENTWISE, ids=spec_ids(ELEMENTWISE))
def test_float16_block_kernels_are_the_float32_kernels(spec, monkeypatch):
    """Where the Cython build converts float16 (its AVX2 and AVX-512
    variants), an elementwise call on float16 runs the float32 loops block by
    block through buffers on the stack (_elementwise.pxi.in, _par_u_h): the
    same bits as the float32 call on x.astype(float32), rounded as NumPy
    rounds. Every elementwise function, forward and backward (from y too),
    one element to past the threads' threshold, x off its allocation's
    alignment, serial and on two threads, streamed and not; no whole-array
    conversion runs (fastact._api._half fails)."""
    from fastact import _api, _backends
    from fastact import _config as fa_config

    fns = _half_functions()
    if not fns:
        pytest.skip("no float16 block kernels in this build (no Cython extension, or its baseline variant)")
    assert spec.name in fns
    rng = np.random.default_rng(21)
    x, p = make_case(spec, rng, dtype=np.float32, size=70_003)
    specials = np.array([0, -0.0, np.inf, -np.inf, np.nan, 65504, -65504, 6e-8, -6e-8, 6.1e-5, 1e-3, -20], F16)
    x = np.concatenate([specials, (x * 4).astype(F16)])
    g = rng.standard_normal(x.size).astype(F16)
    f, b = getattr(fastact, spec.name), getattr(fastact, spec.name + "_backward")
    # other parameters where the loops differ by them (_elementwise.pxi.in: FAST, F32_FAST, the tables)
    params = [p] + [dict(p, **q) for q in _OTHER_PARAMS.get(spec.name, [])]

    def whole(v):
        raise AssertionError("converted the whole array")

    monkeypatch.setattr(_api, "_half", whole)
    before_threads, before_stream = fastact.get_num_threads(), fa_config.stream_min_bytes()
    try:
        with fastact.use_backend("cython"):
            for threads, stream in ((2, 1 << 62), (1, 1 << 62), (2, 0)):
                fastact.set_num_threads(threads)
                fa_config.set_stream_min_bytes(stream)
                for (lo, hi), p in itertools.product(((0, 1), (0, 37), (1, 3001), (0, x.size), (1, x.size)), params):
                    xs, gs = x[lo:hi], g[lo:hi]
                    x32, g32 = xs.astype(np.float32), gs.astype(np.float32)
                    what = f"{spec.name} {p} [{lo}:{hi}] threads {threads} stream_min {stream}"
                    y_ok = spec.allows_y(p)
                    with np.errstate(over="ignore", invalid="ignore"):
                        y32 = f(x32, **p)
                        _same_bits(f(xs, **p), y32.astype(F16), "forward " + what)
                        _same_bits(b(gs, xs, **p), b(g32, x32, **p).astype(F16), "backward " + what)
                        if y_ok:
                            ys = y32.astype(F16)
                            _same_bits(b(gs, y=ys, **p), b(g32, y=ys.astype(np.float32), **p).astype(F16),
                                       "backward from y " + what)
    finally:
        fastact.set_num_threads(before_threads)
        fa_config.set_stream_min_bytes(before_stream)


def test_float16_block_kernels_follow_the_backend_choice():
    """A backend chosen by the user computes its float16 calls itself (the
    whole-array conversions around its float32 kernels); under auto the
    Cython build's block kernels take them, whichever backend the float32
    table picks; functions outside HALF_FUNCTIONS never do. The Cython
    backend refuses arrays of mixed dtypes or sizes rather than reading past
    one."""
    from fastact import _api, _backends

    fns = _half_functions()
    if not fns:
        pytest.skip("no float16 block kernels in this build")
    cy = _backends.load("cython")
    other = _backends.load("numpy")
    assert "softmax" not in fns and "maxout" not in fns and "relu" in fns and "prelu" in fns
    with fastact.use_backend("auto"):
        assert _api._half_kernels("relu", other) is cy
        assert _api._half_kernels("softmax", cy) is None
    with fastact.use_backend("numpy"):
        assert _api._half_kernels("relu", other) is None
    with fastact.use_backend("cython"):
        assert _api._half_kernels("gelu", cy) is cy
    x = np.ones(100, F16)
    with pytest.raises(TypeError, match="one dtype"):
        cy.forward("relu", x, np.empty(100, np.float32), {}, 1)
    with pytest.raises(TypeError, match="one dtype"):
        cy.forward("relu", x.astype(np.float32), np.empty(100, F16), {}, 1)
    with pytest.raises(ValueError, match="one size"):
        cy.forward("relu", x, np.empty(50, F16), {}, 1)
    with pytest.raises(TypeError, match="one dtype"):
        cy.backward("relu", x, x.astype(np.float32), None, np.empty(100, F16), {}, 1)


@pytest.mark.parametrize("order", ["C", "F"])
def test_float16_block_kernels_with_out_and_in_place(order, monkeypatch):
    """out= a float16 array of x's layout, and in place (out=x, out=grad_output),
    take the block kernels too, through the general path: the bits of the
    allocating call, no whole-array conversion."""
    from fastact import _api

    if not _half_functions():
        pytest.skip("no float16 block kernels in this build")
    rng = np.random.default_rng(22)
    x = np.asarray(rng.standard_normal((300, 77)) * 4, dtype=F16, order=order)
    g = np.asarray(rng.standard_normal(x.shape), dtype=F16, order=order)
    with fastact.use_backend("cython"):
        for name, p in [("relu", {}), ("gelu", {"approximate": "tanh"}), ("sigmoid", {}), ("elu", {"alpha": 0.7}),
                        ("softplus", {"beta": 2.0}), ("rrelu", {})]:
            f, b = getattr(fastact, name), getattr(fastact, name + "_backward")
            y, gx = f(x, **p), b(g, x, **p)
            with monkeypatch.context() as m:
                m.setattr(_api, "_half", lambda *a: pytest.fail("converted the whole array"))
                out = np.empty_like(x)
                assert f(x, out=out, **p) is out
                xi = x.copy(order="K")
                assert f(xi, out=xi, **p) is xi
                gout = np.empty_like(g)
                assert b(g, x, out=gout, **p) is gout
                gi = g.copy(order="K")
                assert b(gi, x, out=gi, **p) is gi
            for got in (out, xi):
                _same_bits(got, y, f"{name} forward out= [{order}]")
            for got in (gout, gi):
                _same_bits(got, gx, f"{name} backward out= [{order}]")
            # a strided out= still converts (the general path), to the same bits
            wide = np.zeros((x.shape[0], 2 * x.shape[1]), F16)
            f(x, out=wide[:, ::2], **p)
            _same_bits(wide[:, ::2], y, f"{name} forward strided out= [{order}]")
            assert not wide[:, 1::2].any()


AXIS_SPECS = [s for s in SPECS if s.kind == AXIS]


@pytest.mark.parametrize("spec", AXIS_SPECS, ids=spec_ids(AXIS_SPECS))
def test_float16_rows_take_the_blocks(spec, monkeypatch):
    """The softmax family's float16 rows along the last axis (up to the
    Cython build's HALF_ROW_MAX) run in float32 in groups of rows converted
    on the stack (_axis.pxi, _axis_h): no whole-array conversion, results
    within the float16 bound, the backward from x computed from the float32
    y of each group (as the float32 call on x.astype(float32), rounded:
    checked to within one float16 step, and equal in almost every element).
    Long rows, other axes and strided arrays still convert the whole array."""
    from fastact import _api

    rng = np.random.default_rng(23)
    if not _half_functions():
        pytest.skip("no float16 block kernels in this build")
    f, b = getattr(fastact, spec.name), getattr(fastact, spec.name + "_backward")
    with fastact.use_backend("cython"):
        for shape in [(1, 7), (3, 16), (333, 100), (40, 1000), (2, 5, 2048), (61, 24)]:
            x = (rng.standard_normal(shape) * 4).astype(F16)
            g = rng.standard_normal(shape).astype(F16)
            x32, g32 = x.astype(np.float32), g.astype(np.float32)
            with monkeypatch.context() as m:
                m.setattr(_api, "_half", lambda *a: pytest.fail("converted the whole array"))
                m.setattr(_api, "_as_kernel", lambda *a, **k: pytest.fail("converted the whole array"))
                y = f(x, axis=-1)
                gx = b(g, x, axis=-1)
                gy = b(g, y=y, axis=-1)
                xi = x.copy()
                assert f(xi, axis=-1, out=xi) is xi
            what = f"{spec.name} {shape}"
            _same_bits(xi, y, "in place " + what)
            assert_close(y, reference_forward(spec.name, x, axis=-1), *bound_for(spec, "forward", F16), "forward " + what)
            assert_close(gx, reference_backward(spec.name, g, x, axis=-1), *bound_for(spec, "backward", F16),
                         "backward " + what)
            with np.errstate(over="ignore"):
                for got, want in [(y, f(x32, axis=-1).astype(F16)), (gx, b(g32, x32, axis=-1).astype(F16)),
                                  (gy, b(g32, y=y.astype(np.float32), axis=-1).astype(F16))]:
                    _one_step_at_most(got, want, what)
        # not rows of the block kernels: the whole-array conversions, the same results
        for x in [(rng.standard_normal((2, 3000)) * 4).astype(F16), (rng.standard_normal((30, 20)) * 4).astype(F16)[:, ::2]]:
            y = f(x, axis=-1)
            _same_bits(y, f(x.astype(np.float32), axis=-1).astype(F16), f"{spec.name} {x.shape} converted")
        x = (rng.standard_normal((64, 20)) * 4).astype(F16)
        _same_bits(f(x, axis=0), f(x.astype(np.float32), axis=0).astype(F16), f"{spec.name} axis 0")


def test_float16_loops_of_every_isa_variant():
    """Each ISA variant's float16 loops (the fused _H_ loops of the cheap
    kernels, 8 elements per conversion in the AVX2 build and 16 in the
    AVX-512 one, and the buffered blocks of the others) give its own float32
    loops' bits on x.astype(float32), rounded as NumPy rounds; the baseline
    build lists none and refuses float16."""
    import importlib

    cy = pytest.importorskip("fastact._cython")
    rng = np.random.default_rng(24)
    x = np.concatenate([np.array([0, -0.0, np.inf, -np.inf, np.nan, 6e-8, 65504, -3, 3, 6, -1.5], F16),
                        (rng.standard_normal(5003) * 4).astype(F16)])
    g = rng.standard_normal(x.size).astype(F16)
    cases = [("relu", {}), ("hardtanh", {"min_val": -0.5, "max_val": 2.0}), ("hardswish", {}), ("leaky_relu",
             {"negative_slope": -0.2}), ("threshold", {"threshold": 0.1, "value": 20.0}), ("gelu", {"approximate": "none"}),
             ("elu", {"alpha": 0.7}), ("softshrink", {"lambd": 0.5})]
    for isa in cy.available_isas():
        mod = importlib.import_module(f"fastact._cython._k_{isa}")
        be = mod.BACKEND
        if isa == "base":
            assert not mod.HALF_FUNCTIONS and not mod.HALF_ROWS
            with pytest.raises(TypeError):
                be.forward("relu", x, np.empty_like(x), {}, 1)
            continue
        for (name, p), threads, lo in itertools.product(cases, (1, 2), (0, 1)):
            xs, gs = x[lo:], g[lo:]
            what = f"{name} [{isa}] threads {threads} from {lo}"
            out, out32 = np.empty_like(xs), np.empty(xs.size, np.float32)
            be.forward(name, xs, out, p, threads)
            be.forward(name, xs.astype(np.float32), out32, p, threads)
            with np.errstate(over="ignore"):
                _same_bits(out, out32.astype(F16), "forward " + what)
            be.backward(name, gs, xs, None, out, p, threads)
            be.backward(name, gs.astype(np.float32), xs.astype(np.float32), None, out32, p, threads)
            with np.errstate(over="ignore"):
                _same_bits(out, out32.astype(F16), "backward " + what)


def test_float16_fused_loops_keep_to_registers():
    """The cheap kernels' fused float16 loops (_elementwise.pxi.in, _H_ and
    HALF_FUSED) are only faster than the buffered blocks where gcc compiles
    their 16 elements into vector code in registers; where it spilled them
    to the stack lane by lane they ran up to 8x slower (hardshrink's, which
    is left out). No _H_ loop of any ISA variant touches the stack."""
    import importlib
    import re
    import shutil
    import subprocess

    cy = pytest.importorskip("fastact._cython")
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump (binutils) is not installed")
    checked = 0
    for isa in cy.available_isas():
        if isa == "base":
            continue
        path = importlib.import_module(f"fastact._cython._k_{isa}").__file__
        asm = subprocess.run([objdump, "-d", "--no-show-raw-insn", path], capture_output=True, text=True,
                             check=True).stdout
        bodies = re.findall(r"<(\w+__H_\w+)>:\n(.*?)\n\s+[0-9a-f]+:\s+ret", asm, flags=re.S)
        assert bodies, f"no _H_ loops found in {path}"
        for name, body in bodies:
            assert "(%rsp)" not in body, f"{name} [{isa}] spills to the stack"
            assert "vcvtph2ps" in body and "vcvtps2ph" in body, f"{name} [{isa}]"
            checked += 1
    if not checked:
        pytest.skip("no ISA variant with float16 loops here")


def test_float16_glu_takes_the_blocks(monkeypatch):
    """glu's float16 rows of x (2 * half * inner elements, up to the Cython
    build's HALF_ROW_MAX, along any axis) run in float32 in groups of rows
    converted on the stack (_impl.pxi, _glu_h): no whole-array conversion,
    within the float16 bound, at most one float16 step from the float32 call
    rounded (equal in almost every element). Longer rows convert the whole
    array."""
    from fastact import _api

    info = _api._half_info()
    if not info or "glu" not in info[2]:
        pytest.skip("no float16 rows in this build")
    spec = fastact._registry.get_spec("glu")
    rng = np.random.default_rng(25)
    with fastact.use_backend("cython"):
        for shape, axis in [((1, 2), -1), ((7, 10), -1), ((333, 100), -1), ((3, 2048), -1), ((6, 4, 10), 0),
                            ((64, 8, 3), 1), ((2, 4096), -1)]:
            x = (rng.standard_normal(shape) * 4).astype(F16)
            x32 = x.astype(np.float32)
            y32 = fastact.glu(x32, axis=axis)
            g = rng.standard_normal(y32.shape).astype(F16)
            g32 = g.astype(np.float32)
            blocks = math.prod(shape[axis % len(shape):]) <= info[3]  # the rows of x, (outer, 2m * inner)
            with monkeypatch.context() as m:
                if blocks:
                    m.setattr(_api, "_half", lambda *a: pytest.fail("converted the whole array"))
                    m.setattr(_api, "_as_kernel", lambda *a, **k: pytest.fail("converted the whole array"))
                y = fastact.glu(x, axis=axis)
                gx = fastact.glu_backward(g, x, axis=axis)
            what = f"glu {shape} axis {axis}"
            assert_close(y, reference_forward("glu", x, axis=axis), *bound_for(spec, "forward", F16), "forward " + what)
            assert_close(gx, reference_backward("glu", g, x, axis=axis), *bound_for(spec, "backward", F16),
                         "backward " + what)
            with np.errstate(over="ignore"):
                for got, want in [(y, y32.astype(F16)), (gx, fastact.glu_backward(g32, x32, axis=axis).astype(F16))]:
                    _one_step_at_most(got, want, what)



def test_float16_prelu_takes_the_blocks(monkeypatch):
    """prelu on float16 (in the Cython build's HALF_FUNCTIONS) runs the
    float32 walks with each run of elements converted on the stack
    (_impl.pxi, _prelu_h): the same bits as the float32 call on
    x.astype(float32) rounded, the weight's gradient too (its sums in
    float32's order), for every walk -- rows of at most 100 channels, longer
    rows, short runs of one weight (folded into rows), long ones, one slope
    -- serial and on two threads, streamed and not; allocating (the fast
    path), out=, in place (out=x, out=grad_output) and a float32 weight (the
    general path); no whole-array conversion. A weight that is not finite
    is refused as before."""
    from fastact import _api
    from fastact import _config as fa_config

    if "prelu" not in _half_functions():
        pytest.skip("no float16 block kernels in this build")
    rng = np.random.default_rng(26)
    # (two threads from the backend's threshold on, 32768 elements: the first of each walk below it)
    cases = [((1, 64), 64, 1), ((7, 3), 3, 1), ((333, 64), 64, 1), ((701, 64), 64, 1), ((40, 300), 300, -1),
             ((120, 300), 300, -1), ((9, 5, 7), 5, 1), ((1000, 5, 7), 5, 1), ((3, 6, 1500), 6, 1),
             ((2, 3, 4, 70), 3, 1), ((5000,), 1, 0), ((40000,), 1, 0), ((5, 2000), 2000, 1),
             ((3, 130, 200), 130, -2)]
    before_threads, before_stream = fastact.get_num_threads(), fa_config.stream_min_bytes()
    try:
        with fastact.use_backend("cython"):
            for (shape, c, axis), threads, stream in itertools.product(cases, (1, 2), (1 << 62, 0)):
                fastact.set_num_threads(threads)
                fa_config.set_stream_min_bytes(stream)
                x = (rng.standard_normal(shape) * 4).astype(F16)
                x.flat[:4] = [0, np.inf, -np.inf, -65504]
                g = rng.standard_normal(shape).astype(F16)
                w = rng.uniform(-1, 1, c).astype(F16)
                x32, g32, w32 = x.astype(np.float32), g.astype(np.float32), w.astype(np.float32)
                what = f"prelu {shape} axis {axis} threads {threads} stream_min {stream}"
                with np.errstate(over="ignore", invalid="ignore"):
                    y32 = fastact.prelu(x32, w32, axis=axis).astype(F16)
                    gx32, gw32 = (a.astype(F16) for a in fastact.prelu_backward(g32, x32, w32, axis=axis))
                with monkeypatch.context() as m:
                    m.setattr(_api, "_as_kernel", lambda *a, **k: pytest.fail("converted the whole array"))
                    m.setattr(_api, "_c3_out", lambda *a, **k: pytest.fail("converted the whole array"))
                    y = fastact.prelu(x, w, axis=axis)
                    gx, gw = fastact.prelu_backward(g, x, w, axis=axis)
                    out, gout = np.empty_like(x), np.empty_like(g)
                    assert fastact.prelu(x, w32, axis=axis, out=out) is out
                    gx_o, gw_o = fastact.prelu_backward(g, x, w, axis=axis, out=gout)
                    xi, gi = x.copy(), g.copy()
                    assert fastact.prelu(xi, w, axis=axis, out=xi) is xi
                    gx_i, gw_i = fastact.prelu_backward(gi, x, w, axis=axis, out=gi)
                assert gx_o is gout and gx_i is gi
                for got in (y, out, xi):
                    _same_bits(got, y32, "forward " + what)
                for got in (gx, gx_i):
                    _same_bits(got, gx32, "backward " + what)
                for got in (gw, gw_o, gw_i):
                    assert got.shape == w.shape, what
                    _same_bits(got, gw32, "weight's gradient " + what)
        for bad in (np.inf, np.nan):
            w = np.full(3, 0.25, F16)
            w[1] = bad
            with pytest.raises(ValueError, match="finite"):
                fastact.prelu(np.ones((4, 3), F16), w)
            with pytest.raises(ValueError, match="finite"):
                fastact.prelu_backward(np.ones((4, 3), F16), np.ones((4, 3), F16), w)
    finally:
        fastact.set_num_threads(before_threads)
        fa_config.set_stream_min_bytes(before_stream)


def test_float16_fast_paths_of_glu_prelu_and_the_softmax_family(monkeypatch):
    """Allocating float16 calls of glu, prelu and the softmax family (along
    the last axis) on C-contiguous arrays skip the general path where the
    Cython build's float16 kernels take them (_api._half_glu_forward,
    _half_prelu_forward, _half_axis_forward and their backwards), with the
    general path's results (out= goes there); under auto and with the
    Cython backend chosen."""
    from fastact import _api

    info = _api._half_info()
    if not info or "glu" not in info[2] or "prelu" not in info[1]:
        pytest.skip("no float16 rows and prelu in this build")
    rng = np.random.default_rng(27)
    cases = [("glu", (1, 1000), {"axis": -1}), ("glu", (6, 12, 3), {"axis": 1}), ("glu", (12, 5, 3), {"axis": 0}),
             ("prelu", (15, 64), {"axis": 1}), ("prelu", (6, 12, 3), {"axis": 1}), ("prelu", (4, 5), {"axis": -1}),
             ("prelu", (7, 3), {"one": True})]
    cases += [(n, shape, {"axis": -1}) for n in ("softmax", "log_softmax", "softmin", "sparsemax")
              for shape in [(1, 1000), (3, 7)]]
    for (name, shape, kw), b in itertools.product(cases, ("cython", "auto")):
        f, bw = getattr(fastact, name), getattr(fastact, name + "_backward")
        x = (rng.standard_normal(shape) * 3).astype(F16)
        if name == "prelu":
            c = 1 if kw.get("one") else shape[kw["axis"]]
            kw = {"axis": kw.get("axis", 1)}
            w = rng.uniform(-1, 1, c).astype(F16)
            extra = [w]
        else:
            extra = []
        with fastact.use_backend(b):
            y_ref = f(x, *extra, **kw, out=np.empty(f(x, *extra, **kw).shape, F16))
            g = rng.standard_normal(y_ref.shape).astype(F16)
            ref = bw(g, x, *extra, **kw, out=np.empty(shape, F16))
            ref_y = bw(g, y=y_ref, **kw, out=np.empty(shape, F16)) if name in _api._half_fns[2] - {"glu"} else None
            with monkeypatch.context() as m:
                no_general_path(m, f)
                no_general_path(m, bw)
                y = f(x, *extra, **kw)
                got = bw(g, x, *extra, **kw)
                got_y = bw(g, y=y_ref, **kw) if ref_y is not None else None
        what = f"{name} {shape} {kw} [{b}]"
        _same_bits(y, y_ref, "forward " + what)
        if name == "prelu":
            (got, gw), (ref, rw) = got, ref
            _same_bits(gw, rw, "weight's gradient " + what)
        _same_bits(got, ref, "backward " + what)
        if ref_y is not None:
            _same_bits(got_y, ref_y, "backward from y " + what)


def test_float16_softmax_backward_rows_from_y_are_the_float32_rows():
    """softmax's and softmin's backward from y on float16 rows of 256 to
    2048 (the rows the float32 kernel runs one by one) run straight from
    float16 memory in the Cython AVX-512 build (_fastact_cpu.h,
    fastact_smax_bwd_h: fastact_dot4_f32's sums on the widened values):
    the same bits as the float32 call on the
    widened arrays, rounded -- and as the groups' float32 path they replace,
    in every build. Specials included (inf and NaN in g, zeros and NaN in
    y), 1 and 2 threads."""
    import importlib

    from fastact import _api

    info = _api._half_info()
    if not info or "softmax" not in info[2]:
        pytest.skip("no float16 rows in this build")
    _cy = importlib.import_module("fastact._cython")
    rng = np.random.default_rng(28)
    before = fastact.get_num_threads()
    try:
        with fastact.use_backend("cython"):
            for n, name, threads in itertools.product((256, 257, 511, 1000, 2048), ("softmax", "softmin"), (1, 2)):
                fastact.set_num_threads(threads)
                f, b = getattr(fastact, name), getattr(fastact, name + "_backward")
                x = (rng.standard_normal((33, n)) * 4).astype(F16)
                y = f(x, axis=-1)
                y.flat[5:8] = [0, -0.0, np.nan]
                g = (rng.standard_normal((33, n)) * 3).astype(F16)
                g.flat[:3] = [np.inf, np.nan, -65504]
                with np.errstate(all="ignore"):
                    want = b(g.astype(np.float32), y=y.astype(np.float32), axis=-1).astype(F16)
                    _same_bits(b(g, y=y, axis=-1), want, f"{name} rows of {n}, threads {threads}")
                # every ISA variant with float16 rows, against its own float32 rows
                for isa in _cy.available_isas():
                    mod = importlib.import_module(f"fastact._cython._k_{isa}")
                    if name not in mod.HALF_ROWS:
                        continue
                    geo = (33, n, 1)
                    out, out32 = np.empty(geo, F16), np.empty(geo, np.float32)
                    mod.BACKEND.backward(name, g.reshape(geo), None, y.reshape(geo), out, {"axis": -1}, threads)
                    mod.BACKEND.backward(name, g.astype(np.float32).reshape(geo), None, y.astype(np.float32).reshape(geo),
                                         out32, {"axis": -1}, threads)
                    with np.errstate(all="ignore"):
                        _same_bits(out, out32.astype(F16), f"{name} rows of {n} [{isa}], threads {threads}")
    finally:
        fastact.set_num_threads(before)
