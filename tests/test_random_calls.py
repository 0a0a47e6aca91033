"""Seeded random calls: any function, dtype, shape, layout and call form -> the reference's answer.

Each case draws a function of the catalogue with random valid parameters, a
dtype (float16, float32, float64), a shape of 1 to 4 axes and up to ~5e5
elements (both sides of the serial/parallel limits), and a layout (axes
permuted, stepped, reversed, an element-misaligned base), in about a third
of the cases with 2 % of the inputs edge values (+-inf, NaN, +-0,
subnormals, the dtype's extremes), then runs the
forward, the forward in place, into an out= overlapping its input, the
backward from x, in place into g, and from y= (into y and into g) where the
function allows it, each against the reference. The inputs are never
modified unless they are the out=.

Three bugs were found this way before this file held it (session 24): celu's
backward from y (the reference's cancellation), tanh's float64 backward past
cosh's overflow (the reference), and Numba's maxout backward with one piece
in place. ``FASTACT_RANDOM_CASES`` sets the number of cases per backend
(default 150, a few seconds); ``FASTACT_RANDOM_SEED`` the seed (default 24).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import fastact
from fastact._registry import GLU, MAXOUT, PRELU, RRELU, SPECS

from _helpers import assert_close, bound_for, edge_values, grad_weight_atol, random_params, random_values, reference_backward, reference_forward

CASES = int(os.environ.get("FASTACT_RANDOM_CASES", "150"))
SEED = int(os.environ.get("FASTACT_RANDOM_SEED", "24"))


def _layout(rng, shape, dtype):
    """Random values in a random view of the given shape."""
    nd = len(shape)
    steps = [int(rng.choice([1, 1, 1, 2, 3, -1, -2])) for _ in range(nd)]
    perm = rng.permutation(nd) if nd > 1 and rng.random() < 0.4 else np.arange(nd)
    full = [shape[p] * abs(steps[p]) for p in perm]
    size = math.prod(full)
    vals = random_values(rng, size).reshape(full) if size else np.zeros(full)
    if size and rng.random() < 0.3:  # some edge values too: +-inf, NaN, +-0, subnormals, the extremes
        k = max(1, size // 50)
        vals.reshape(-1)[rng.choice(size, size=k)] = rng.choice(edge_values(dtype).astype(np.float64), size=k)
    if rng.random() < 0.2:  # a base one element off the allocation's alignment
        flat = np.empty(size + 1, dtype)
        base = flat[1:].reshape(full)
        base[...] = vals
    else:
        base = vals.astype(dtype)
    view = base.transpose(np.argsort(perm))[tuple(slice(None, None, s) for s in steps)]
    assert view.shape == tuple(shape)
    return view


def _case(rng):
    spec = SPECS[rng.integers(len(SPECS))]
    dtype = np.dtype(rng.choice(["float16", "float32", "float32", "float64"]))
    params = random_params(spec, rng)
    if spec.kind == RRELU:
        params.pop("training", None)  # evaluation: deterministic
    nd = int(rng.integers(1, 5))
    total = int(10 ** rng.uniform(0, 5.7))
    shape = [1] * nd
    for _ in range(64):
        shape[rng.integers(nd)] += 1
        if math.prod(shape) >= total:
            break
    if rng.random() < 0.1:
        shape[rng.integers(nd)] = int(rng.integers(0, 3))
    if spec.along_axis:
        axis = int(rng.integers(-nd, nd))
        if spec.kind == GLU and shape[axis] % 2:
            shape[axis] += 1
        if spec.kind == MAXOUT:
            k = params.get("pieces", 2)
            shape[axis] = max(1, shape[axis] // k) * k
        params["axis"] = axis
    if spec.kind == PRELU:
        if nd < 2:
            shape, nd = [shape[0], 3], 2
        axis = int(rng.integers(0, nd)) if rng.random() < 0.3 else 1
        params["axis"] = axis
        params["weight"] = rng.uniform(-0.5, 0.5, size=shape[axis] if shape[axis] and rng.random() < 0.8 else 1)
    return spec, dtype, params, _layout(rng, shape, dtype)


def _first(r):
    return r[0] if isinstance(r, tuple) else r


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_random_calls(backend):
    rng = np.random.default_rng(SEED)
    for case in range(CASES):
        spec, dtype, params, x = _case(rng)
        what = f"case {case} (seed {SEED}) {spec.name} {dtype} shape={x.shape} strides={x.strides} {params} [{backend}]"
        x0 = x.copy()
        ref = reference_forward(spec.name, x, **params)
        rtol, atol = bound_for(spec, "forward", dtype)
        r0 = _first(ref)
        assert_close(_first(fastact.forward(spec.name, x, **params)), r0, rtol, atol, "forward " + what)
        same = r0.shape == x.shape and r0.dtype == x.dtype and not isinstance(ref, tuple)
        if same:
            xi = x.copy()
            assert fastact.forward(spec.name, xi, out=xi, **params) is xi
            assert_close(xi, r0, rtol, atol, "forward in place " + what)
            if x.ndim == 1 and x.size > 2:  # out= one element off its input, in the same buffer
                buf = np.empty(x.size + 2, x.dtype)
                buf[1:-1] = x
                dst = buf[2:] if rng.random() < 0.5 else buf[:-2]
                fastact.forward(spec.name, buf[1:-1], out=dst, **params)
                assert_close(dst, r0, rtol, atol, "forward into an overlapping out " + what)

        g = _layout(rng, r0.shape, dtype)
        if g.size:
            g[...] = rng.standard_normal(g.shape)
        g0 = g.copy()
        # a bound wider than the smallest normal is an absolute error of F
        # (the backward's g*F): |g| times it
        brtol, batol = bound_for(spec, "backward", dtype)
        batol *= max(1.0, float(np.max(np.abs(g0.astype(np.float64)), initial=0.0)))
        rb = reference_backward(spec.name, g, x, **params)
        assert_close(_first(fastact.backward(spec.name, g, x, **params)), _first(rb), brtol, batol, "backward " + what)
        if isinstance(rb, tuple):
            assert_close(fastact.backward(spec.name, g, x, **params)[1], rb[1], brtol,
                         grad_weight_atol(g, x, params, batol), "grad_weight " + what)
        elif g.shape == x.shape:
            gi = g.copy()
            assert fastact.backward(spec.name, gi, x, out=gi, **params) is gi
            assert_close(gi, rb, brtol, batol, "backward in place (out=g) " + what)
        if spec.allows_y(params) and not isinstance(ref, tuple):
            y = r0.astype(dtype)
            rby = reference_backward(spec.name, g, y=y, **params)
            assert_close(fastact.backward(spec.name, g, y=y, **params), rby, brtol, batol, "backward from y " + what)
            if y.shape == g.shape:
                yi = y.copy()
                assert fastact.backward(spec.name, g, y=yi, out=yi, **params) is yi
                assert_close(yi, rby, brtol, batol, "backward from y, out=y " + what)
                gi = g.copy()
                assert fastact.backward(spec.name, gi, y=y, out=gi, **params) is gi
                assert_close(gi, rby, brtol, batol, "backward from y, out=g " + what)
        np.testing.assert_array_equal(x, x0, err_msg="input changed " + what)
        np.testing.assert_array_equal(g, g0, err_msg="grad_output changed " + what)
