"""float16 where test_conformance does not reach: long arrays, odd layouts, out=, mixed dtypes.

float16 is computed in float32 and stored as float16 by the public layer, so a
backend never sees it; what can go wrong is the conversion around the kernel
(the parallel path on long arrays, strided and Fortran views, a strided out=,
prelu's grad_weight summed over many elements). The bound is the registry's
float16 one.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from fastact._registry import AXIS, GLU, MAXOUT, PRELU, RRELU, SPECS

from _helpers import assert_close, bound_for, grad_shape, make_case, reference_backward, reference_forward, spec_ids

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
