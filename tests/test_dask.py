"""Dask arrays: every public function returns a lazy dask array computed block by block.

The main test computes every function, forward and backward, on a
``distributed.LocalCluster`` with two worker processes (loopback only), on
arrays of several chunks, and compares with the NumPy reference on the whole
array. The others check the block structure, laziness and eager argument
checks with dask's in-process scheduler, which is quicker.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastact
from fastact._registry import AXIS, ELEMENTWISE, GLU, MAXOUT, RRELU, SPECS

from _helpers import assert_close, bound_for, make_case, reference_backward, reference_forward

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


def _tup(r):
    return r if isinstance(r, tuple) else (r,)


def _chunked(a, parts=3):
    """A dask array of ``a`` split into about ``parts`` chunks along every axis."""
    return da.from_array(a, chunks=tuple(max(1, -(-s // parts)) for s in a.shape))


def _case(spec, rng, dtype, size=6000):
    params = {"training": True, "rng": 7} if spec.kind == RRELU else None
    x, p = make_case(spec, rng, dtype=dtype, size=size, params=params)
    p.pop("slopes", None)  # the dask path samples its own
    if spec.kind in (AXIS, GLU, MAXOUT):
        x = np.concatenate([x] * 3, axis=0)  # more rows, so rows span several chunks
    return x, p


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    # Worker processes on loopback only; they import fastact like any user
    # code (CI installs it; a local run needs PYTHONPATH=src).
    # Starting a cluster sets OMP_NUM_THREADS=1 (and more) in *this* process's
    # environment for good; restore it so later tests' subprocesses are not
    # silently single-threaded.
    saved = dict(os.environ)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1",
    )
    try:
        with cluster, distributed.Client(cluster, set_as_default=False) as c:
            yield c
    finally:
        os.environ.clear()
        os.environ.update(saved)


# ------------------------------------------------- on the distributed cluster


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_every_function_on_a_local_cluster(client, dtype):
    rng = np.random.default_rng(0)
    for spec in SPECS:
        x, p = _case(spec, rng, dtype)
        xd = _chunked(x)
        res = _tup(fastact.forward(spec.name, xd, **p))
        assert all(isinstance(r, da.Array) for r in res), spec.name
        assert res[0].npartitions > 1, f"{spec.name}: the test must use several chunks"
        got = client.gather(client.compute(list(res)))
        if spec.kind == RRELU:
            # the slopes are sampled by dask: check them, then use them in the reference
            slopes = got[1]
            assert np.all(slopes[x > 0] == 1)
            neg = slopes[~(x > 0)].astype(np.float64)
            lo, hi = spec.with_defaults(p)["lower"], spec.with_defaults(p)["upper"]
            assert np.all((neg >= lo * (1 - 1e-3)) & (neg <= hi * (1 + 1e-3)))
            p = {k: v for k, v in p.items() if k != "rng"}
            p["slopes"] = slopes
        exp = _tup(reference_forward(spec.name, x, **p))
        rtol, atol = bound_for(spec, "forward", dtype)
        for a, e in zip(got, exp):
            assert a.dtype == e.dtype, spec.name
            assert_close(a, e, rtol, atol, f"dask forward {spec.name} [{dtype}]")

        g = rng.standard_normal(exp[0].shape).astype(dtype)
        gd = _chunked(g, parts=2)  # chunked unlike x: the backward must realign them
        bparams = {k: v for k, v in p.items() if k != "rng"}
        if spec.kind == RRELU:
            bparams["slopes"] = res[1]  # the lazy slopes, as a user would pass them
        bres = _tup(fastact.backward(spec.name, gd, xd, **bparams))
        assert all(isinstance(r, da.Array) for r in bres), spec.name
        got = client.gather(client.compute(list(bres)))
        exp = _tup(reference_backward(spec.name, g, x, **p))
        rtol, atol = bound_for(spec, "backward", dtype)
        for a, e in zip(got, exp):
            assert a.dtype == e.dtype, spec.name
            assert_close(a, e, rtol, atol, f"dask backward {spec.name} [{dtype}]")

        if spec.kind in (ELEMENTWISE, AXIS) and spec.allows_y(p):
            y = exp_y = reference_forward(spec.name, x, **p)
            got = client.compute(fastact.backward(spec.name, gd, y=_chunked(y), **p)).result()
            assert_close(got, reference_backward(spec.name, g, y=exp_y, **p), rtol, atol, f"dask backward(y=) {spec.name}")


def test_backend_is_recorded_in_the_graph(client):
    """A graph built under use_backend("numpy") runs the reference on the workers too."""
    x = np.random.default_rng(1).standard_normal(10_000).astype(np.float32)
    with fastact.use_backend("numpy"):
        lazy = fastact.gelu(_chunked(x))
    got = client.compute(lazy).result()
    np.testing.assert_array_equal(got, reference_forward("gelu", x))


# ------------------------------------------------------------ block structure


def test_elementwise_keeps_chunks_and_stays_lazy():
    x = np.linspace(-5, 5, 1000).reshape(10, 100)
    xd = da.from_array(x, chunks=(3, 40))
    y = fastact.silu(xd)
    assert isinstance(y, da.Array) and y.chunks == xd.chunks and y.dtype == np.float64
    assert_close(y.compute(scheduler="sync"), reference_forward("silu", x), 1e-12, 0, "silu")


@pytest.mark.parametrize("name", ["softmax", "sparsemax", "glu", "maxout"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_axis_functions_see_whole_rows(name, axis):
    rng = np.random.default_rng(2)
    params = {"pieces": 3} if name == "maxout" else {}
    x = rng.standard_normal((12, 18, 6)).astype(np.float32)
    xd = da.from_array(x, chunks=(5, 7, 4))
    y = fastact.forward(name, xd, axis=axis, **params)
    ax = axis % 3
    assert y.numblocks[ax] == 1 and y.npartitions > 1
    exp = reference_forward(name, x, axis=axis, **params)
    assert y.shape == exp.shape
    spec = fastact._registry.get_spec(name)
    assert_close(y.compute(scheduler="sync"), exp, *bound_for(spec, "forward", "float32"), name)
    g = rng.standard_normal(exp.shape).astype(np.float32)
    got = fastact.backward(name, da.from_array(g, chunks=4), xd, axis=axis, **params).compute(scheduler="sync")
    assert_close(got, reference_backward(name, g, x, axis=axis, **params), *bound_for(spec, "backward", "float32"), name)


@pytest.mark.parametrize("wkind", ["numpy", "dask", "scalar"])
def test_prelu_weight_gradient_is_a_reduction(wkind):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 6, 20))
    g = rng.standard_normal(x.shape)
    w = 0.3 if wkind == "scalar" else rng.uniform(-0.5, 0.5, 6)
    wd = da.from_array(w, chunks=4) if wkind == "dask" else w
    xd = da.from_array(x, chunks=(4, 4, 7))
    y = fastact.prelu(xd, wd)
    gi, gw = fastact.prelu_backward(da.from_array(g, chunks=(3, 6, 20)), xd, wd)
    assert isinstance(gi, da.Array) and isinstance(gw, da.Array)
    assert gw.shape == np.shape(w) and gi.chunks == xd.chunks
    y, gi, gw = dask.compute(y, gi, gw, scheduler="sync")
    assert_close(y, reference_forward("prelu", x, weight=w), 1e-12, 0, "prelu")
    egi, egw = reference_backward("prelu", g, x, weight=w)
    assert_close(gi, egi, 1e-12, 0, "prelu grad_input")
    assert_close(gw, egw, 1e-12, 1e-13, "prelu grad_weight")


def test_mixed_numpy_and_dask_arguments():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((50, 30))
    g = rng.standard_normal(x.shape)
    got = fastact.tanh_backward(g, da.from_array(x, chunks=(20, 10)))  # grad numpy, x dask
    assert isinstance(got, da.Array)
    assert_close(got.compute(scheduler="sync"), reference_backward("tanh", g, x), 1e-12, 0, "tanh")
    got = fastact.softmax_backward(da.from_array(g, chunks=7), y=fastact.softmax(x))
    assert_close(got.compute(scheduler="sync"), reference_backward("softmax", g, y=fastact.softmax(x)), 1e-12, 1e-13, "softmax")


def test_rrelu_training_slopes_are_lazy_and_seeded():
    x = np.random.default_rng(5).standard_normal(5000)
    xd = da.from_array(x, chunks=1000)
    y1, s1 = fastact.rrelu(xd, training=True, rng=11)
    y2, s2 = fastact.rrelu(xd, training=True, rng=11)
    assert isinstance(s1, da.Array) and s1.chunks == xd.chunks
    a, b = dask.compute(s1, s2, scheduler="sync")
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a[x <= 0])) > 100  # really sampled
    assert_close(y1.compute(scheduler="sync"), reference_forward("rrelu", x, training=True, slopes=a)[0], 1e-12, 0, "rrelu")
    # explicit slopes= (NumPy) are used as given
    y3, s3 = fastact.rrelu(xd, training=True, slopes=a)
    np.testing.assert_array_equal(s3.compute(scheduler="sync"), a)


def test_zero_d_and_integer_inputs():
    y = fastact.sigmoid(da.from_array(np.array(0.5)))
    assert y.shape == () and abs(float(y.compute(scheduler="sync")) - 1 / (1 + np.exp(-0.5))) < 1e-15
    xi = np.arange(-6, 6, dtype=np.int16)
    y = fastact.relu6(da.from_array(xi, chunks=5))
    assert y.dtype == np.sin(xi).dtype
    assert_close(y.compute(scheduler="sync"), reference_forward("relu6", xi.astype(y.dtype)), 2e-3, 0, "relu6 int16")


# ------------------------------------------------------- errors at call time


def _boom(block):  # pragma: no cover - must never run
    raise AssertionError("the graph was computed")


def test_out_is_refused():
    xd = da.ones(10, chunks=5)
    with pytest.raises(TypeError, match="immutable"):
        fastact.relu(xd, out=np.empty(10))
    with pytest.raises(TypeError, match="immutable"):
        fastact.relu_backward(xd, xd, out=np.empty(10))


def test_bad_arguments_fail_at_call_time_not_at_compute_time():
    # the input itself would fail if computed: the errors must come before that
    xd = da.ones((4, 6), chunks=2).map_blocks(_boom, dtype=np.float64, meta=np.empty((0, 0)))
    with pytest.raises(ValueError, match="alpha"):
        fastact.celu(xd, alpha=0.0)
    with pytest.raises(ValueError, match="even"):
        fastact.glu(da.ones((4, 5), chunks=2), axis=1)
    with pytest.raises(ValueError, match="pieces"):
        fastact.maxout(xd, 4, axis=1)
    with pytest.raises(ValueError, match="axis"):
        fastact.softmax(xd, axis=2)
    with pytest.raises(ValueError, match="y= is not accepted"):
        fastact.gelu_backward(xd, y=xd)
    with pytest.raises(ValueError, match="shape"):
        fastact.tanh_backward(da.ones((4, 5), chunks=2), xd)
    with pytest.raises(ValueError, match="weight"):
        fastact.prelu(xd, np.ones(5), axis=1)
    with pytest.raises(TypeError, match="complex"):
        fastact.relu(da.ones(4, dtype=complex, chunks=2))
    with pytest.raises(TypeError, match="missing required parameter 'weight'"):
        fastact.prelu_backward(xd, xd)
    with pytest.raises(ValueError, match="slopes is required"):
        fastact.rrelu_backward(xd, xd, training=True)


def test_import_fastact_imports_neither_dask_nor_torch():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, fastact\n"
        "fastact.relu(np.ones(3)); fastact.relu([1.0, -1.0])\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'torch', 'distributed')], 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
