"""Issue 7, part 1: bad input as a matrix over every public function and backend, valid
``out=`` layouts, partial overlap, and a fuzzer over the whole public API.

``test_errors.py`` checks each kind of error once (mostly on the forward);
``test_conformance.py`` checks in-place and one partly overlapping ``out=`` for
elementwise forwards. This file fills the matrix: every backward as well as
every forward, every backend, every argument position (``grad_output``, ``x``,
``y``, ``out``, each parameter), and in each error case a sentinel ``out``
that must not have been touched. Then hypothesis draws whole calls -- any
function, direction, dtype, shape, strides, parameters and ``out=`` -- and
each call must either raise TypeError/ValueError (when the draw was invalid)
or agree with the NumPy reference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastact
from fastact._registry import AXIS, ELEMENTWISE, GLU, MAXOUT, PRELU, RRELU, SPECS

from _helpers import (
    assert_close,
    bound_for,
    default_params,
    grad_shape,
    grad_weight_atol,
    make_case,
    out_dtype,
    random_params,
    random_values,
    reference_backward,
    reference_forward,
    spec_ids,
)

AXIS_LIKE = [s for s in SPECS if s.kind in (AXIS, GLU, MAXOUT)]
Y_SPECS = [s for s in SPECS if s.kind in (ELEMENTWISE, AXIS) and s.y_ok]


def _first(r):
    return r[0] if isinstance(r, tuple) else r


def _case(spec, dtype=np.float64, size=48, seed=0):
    """(x, g, params) for one call: eval-mode rrelu, a 4-channel prelu weight."""
    rng = np.random.default_rng(seed)
    params = {"training": False} if spec.kind == RRELU else None
    x, params = make_case(spec, rng, dtype=dtype, size=size, params=params)
    if spec.kind in (GLU, MAXOUT):
        g = rng.standard_normal(grad_shape(spec, x.shape, params["axis"], params)).astype(dtype)
    else:
        g = rng.standard_normal(x.shape).astype(dtype)
    return x, g, params


def _sentinel(shape, dtype):
    return np.full(shape, 7, dtype=dtype)


# ---------------------------------------------------- bad dtypes, everywhere

BAD = {
    "complex64": lambda shape: np.ones(shape, np.complex64),
    "object": lambda shape: np.ones(shape, dtype=object),
    "str": lambda shape: np.full(shape, "a"),
    "bytes": lambda shape: np.full(shape, b"a"),
    "datetime64": lambda shape: np.full(shape, np.datetime64("2026-01-01")),
    "timedelta64": lambda shape: np.full(shape, np.timedelta64(3, "s")),
    "structured": lambda shape: np.zeros(shape, dtype=[("a", "f4"), ("b", "f8")]),
}


@pytest.mark.parametrize("label", list(BAD))
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_bad_dtype_in_every_position(spec, backend, label):
    """x, grad_output, x of the backward, y, and prelu's weight: a TypeError naming it, out untouched."""
    x, g, params = _case(spec)
    y = _first(reference_forward(spec.name, x, **params))
    out_f = _sentinel(y.shape, y.dtype)
    out_b = _sentinel(x.shape, x.dtype)
    bad = BAD[label]
    with pytest.raises(TypeError, match=r"\bx\b"):
        fastact.forward(spec.name, bad(x.shape), out=out_f, **params)
    with pytest.raises(TypeError, match="grad_output"):
        fastact.backward(spec.name, bad(g.shape), x, out=out_b, **params)
    with pytest.raises(TypeError, match=r"\bx\b"):
        fastact.backward(spec.name, g, bad(x.shape), out=out_b, **params)
    if spec in Y_SPECS and spec.allows_y(params):
        with pytest.raises(TypeError, match=r"\by\b"):
            fastact.backward(spec.name, g, y=bad(x.shape), out=out_b, **params)
    if spec.kind == PRELU:
        with pytest.raises(TypeError, match="weight"):
            fastact.forward(spec.name, x, **dict(params, weight=bad(params["weight"].shape)))
        with pytest.raises(TypeError, match="weight"):
            fastact.backward(spec.name, g, x, **dict(params, weight=bad(params["weight"].shape)))
    assert np.all(out_f == 7) and np.all(out_b == 7), f"{spec.name}: out was written before the error"


# ---------------------------------------------------------- array-likes


class _ArrayLike:
    """An object that is not an ndarray but converts to one (the __array__ protocol)."""

    def __init__(self, a):
        self._a = a

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_array_likes_in_the_backward(spec, backend):
    """grad_output, x and y as lists, tuples and __array__ objects give the ndarray call's result."""
    x, g, params = _case(spec, size=24)
    expected = _first(fastact.backward(spec.name, g, x, **params))
    for conv in (lambda a: a.tolist(), lambda a: _to_tuple(a.tolist()), _ArrayLike):
        got = _first(fastact.backward(spec.name, conv(g), conv(x), **params))
        np.testing.assert_array_equal(got, expected, err_msg=f"{spec.name}_backward with {type(conv(g)).__name__}")
    if spec in Y_SPECS and spec.allows_y(params):
        y = fastact.forward(spec.name, x, **params)
        expected = fastact.backward(spec.name, g, y=y, **params)
        np.testing.assert_array_equal(fastact.backward(spec.name, g.tolist(), y=_ArrayLike(y), **params), expected)


def _to_tuple(v):
    return tuple(_to_tuple(e) for e in v) if isinstance(v, list) else v


ELEMENTWISE_SPECS = [s for s in SPECS if s.kind == ELEMENTWISE]


@pytest.mark.parametrize("spec", ELEMENTWISE_SPECS, ids=spec_ids(ELEMENTWISE_SPECS))
def test_scalars_in_forward_and_backward(spec, backend):
    """Python and NumPy scalars in every position: 0-d results of NumPy's ufunc dtype."""
    params = default_params(spec)
    for v, dt in ((-0.75, np.float64), (2, np.float64), (np.float32(1.5), np.float32), (np.float16(-2), np.float16)):
        y = fastact.forward(spec.name, v, **params)
        assert y.shape == () and y.dtype == dt, (spec.name, v, y.dtype)
        ref = reference_forward(spec.name, np.asarray(v), **params)
        assert_close(y, ref, *bound_for(spec, "forward", dt), f"{spec.name}({v!r})")
        gb = fastact.backward(spec.name, v, v, **params)
        assert gb.shape == () and gb.dtype == dt
        assert_close(gb, reference_backward(spec.name, np.asarray(v), np.asarray(v), **params),
                     *bound_for(spec, "backward", dt), f"{spec.name}_backward({v!r})")


# ------------------------------------------------------------- bad out=


def _bad_outs(shape, dtype):
    other = np.float32 if np.dtype(dtype) == np.float64 else np.float64
    yield "shape", _sentinel(shape + (1,), dtype), ValueError
    yield "transposed shape", _sentinel(shape[::-1] + (2,), dtype), ValueError
    yield "dtype", _sentinel(shape, other), TypeError
    yield "int dtype", _sentinel(shape, np.int64), TypeError
    ro = _sentinel(shape, dtype)
    ro.flags.writeable = False
    yield "read-only", ro, ValueError
    yield "byteswapped", _sentinel(shape, np.dtype(dtype).newbyteorder()), TypeError
    yield "list", [7.0] * math.prod(shape), TypeError
    yield "scalar", 7.0, TypeError


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_bad_out_in_the_backward(spec, backend):
    x, g, params = _case(spec, dtype=np.float32)
    for label, out, exc in _bad_outs(x.shape, x.dtype):
        before = np.array(out, copy=True) if isinstance(out, np.ndarray) else None
        with pytest.raises(exc, match="out"):
            fastact.backward(spec.name, g, x, out=out, **params)
        if before is not None:
            np.testing.assert_array_equal(out, before, err_msg=f"{spec.name}_backward wrote out ({label})")


# -------------------------------------------------- valid out= layouts


def _out_layouts(shape, dtype):
    """(label, buffer, view-of-buffer function): out= layouts of the right shape, all valid."""
    n = len(shape)
    yield "C", np.full(shape, 7, dtype), lambda b: b
    if n >= 2:
        yield "F", np.full(shape, 7, dtype, order="F"), lambda b: b
        yield "transposed", np.full(shape[::-1], 7, dtype), lambda b: b.T
    if n >= 1:
        yield "strided", np.full(shape[:-1] + (shape[-1] * 2 + 1,), 7, dtype), lambda b: b[..., 1::2]
        yield "reversed", np.full(shape, 7, dtype), lambda b: b[..., ::-1]
    if n >= 2:
        big = np.full((shape[0] * 3,) + shape[1:], 7, dtype, order="F")
        yield "F strided", big, lambda b: b[::3]


def _untouched(buf, view_of):
    """Every element of ``buf`` outside ``view_of(buf)`` still holds 7."""
    # the same view of an array of logical indices says which elements it covers
    idx = np.arange(buf.size).reshape(buf.shape)
    outside = np.ones(buf.size, bool)
    outside[view_of(idx).reshape(-1)] = False
    return bool(np.all(buf.reshape(-1, order="C")[outside] == 7))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_valid_out_layouts_forward_and_backward(spec, backend, dtype):
    """F-ordered, transposed, strided and reversed out= of the right shape are valid: the result is right
    and nothing outside the view is written."""
    rng = np.random.default_rng(11)
    params = {"training": False} if spec.kind == RRELU else None
    shape = (6, 10) if spec.kind != PRELU else (3, 4, 5)
    x, params = make_case(spec, rng, dtype=dtype, shape=shape, params=params)
    y_ref = _first(reference_forward(spec.name, x, **params))
    gshape = y_ref.shape
    g = rng.standard_normal(gshape).astype(dtype)
    gx_ref = reference_backward(spec.name, g, x, **params)
    frtol, fatol = bound_for(spec, "forward", dtype)
    brtol, batol = bound_for(spec, "backward", dtype)
    for label, buf, view_of in _out_layouts(y_ref.shape, np.dtype(dtype)):
        out = view_of(buf)
        res = fastact.forward(spec.name, x, out=out, **params)
        assert _first(res) is out
        assert_close(out, y_ref, frtol, fatol, f"{spec.name} out={label} [{backend}, {dtype}]")
        assert _untouched(buf, view_of), f"{spec.name}: out={label} wrote outside the view"
    for label, buf, view_of in _out_layouts(x.shape, np.dtype(dtype)):
        out = view_of(buf)
        res = fastact.backward(spec.name, g, x, out=out, **params)
        assert _first(res) is out
        exp = _first(gx_ref)
        assert_close(out, exp, brtol, batol, f"{spec.name}_backward out={label} [{backend}, {dtype}]")
        if spec.kind == PRELU:
            assert_close(res[1], gx_ref[1], brtol, grad_weight_atol(g, x, params, batol),
                         f"prelu grad_weight with out={label}")
        assert _untouched(buf, view_of), f"{spec.name}_backward: out={label} wrote outside the view"


# ------------------------------------------------------- overlapping out=


def _overlapping(a: np.ndarray, out_shape, shift: int):
    """A copy of ``a`` and an out of ``out_shape``, both views of one buffer, ``shift`` elements apart."""
    n = max(a.size, math.prod(out_shape))
    buf = np.zeros(n + abs(shift), a.dtype)
    lo, hi = (0, shift) if shift >= 0 else (-shift, 0)
    src = buf[lo : lo + a.size].reshape(a.shape)
    src[...] = a
    dst = buf[hi : hi + math.prod(out_shape)].reshape(out_shape)
    assert np.shares_memory(src, dst)
    return src, dst


@pytest.mark.parametrize("shift", [1, -3])
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_partly_overlapping_out(spec, backend, shift):
    """out= sharing memory with an input, not as the same array: the result is as if the inputs were
    copied first -- for every kind (along-axis too) and for each backward input (g, x, y)."""
    x, g, params = _case(spec, dtype=np.float32, size=60)
    y_ref = _first(reference_forward(spec.name, x, **params))
    rtol, atol = bound_for(spec, "forward", np.float32)
    src, dst = _overlapping(x, y_ref.shape, shift)
    res = fastact.forward(spec.name, src, out=dst, **params)
    assert_close(_first(res), y_ref, rtol, atol, f"{spec.name} out overlapping x by {shift} [{backend}]")

    brtol, batol = bound_for(spec, "backward", np.float32)
    exp = _first(reference_backward(spec.name, g, x, **params))
    gs, gd = _overlapping(g, x.shape, shift)
    res = fastact.backward(spec.name, gs, x, out=gd, **params)
    assert_close(_first(res), exp, brtol, batol, f"{spec.name}_backward out overlapping g [{backend}]")
    xs, xd = _overlapping(x, x.shape, shift)
    res = fastact.backward(spec.name, g, xs, out=xd, **params)
    assert_close(_first(res), exp, brtol, batol, f"{spec.name}_backward out overlapping x [{backend}]")
    # exactly x (not grad_output): not the in-place case, so x must be read intact
    xa = x.copy()
    res = fastact.backward(spec.name, g, xa, out=xa, **params)
    assert_close(_first(res), exp, brtol, batol, f"{spec.name}_backward out=x [{backend}]")
    if spec in Y_SPECS and spec.allows_y(params):
        exp_y = reference_backward(spec.name, g, y=y_ref, **params)
        ys, yd = _overlapping(y_ref, x.shape, shift)
        res = fastact.backward(spec.name, g, y=ys, out=yd, **params)
        assert_close(res, exp_y, brtol, batol, f"{spec.name}_backward out overlapping y [{backend}]")


@pytest.mark.parametrize("spec", AXIS_LIKE + [s for s in SPECS if s.kind == PRELU], ids=lambda s: s.name)
def test_inplace_along_an_axis_and_transposed(spec, backend):
    """Exact aliasing is in-place for non-contiguous arrays too (a transposed x, out=x)."""
    x, g, params = _case(spec, dtype=np.float64, size=60)
    if spec.kind in (GLU, MAXOUT):
        pytest.skip("the forward's output is smaller than its input: no in-place forward")
    xt = np.ascontiguousarray(x.T).T  # F-ordered, same values
    exp = reference_forward(spec.name, x, **params)
    res = fastact.forward(spec.name, xt, out=xt, **params)
    assert res is xt
    assert_close(xt, exp, *bound_for(spec, "forward", np.float64), f"{spec.name} in-place F-ordered [{backend}]")


# ---------------------------------------------------- invalid parameters


def _bad_values(p):
    """(value, exception) pairs that must be rejected for parameter ``p``."""
    if p.kind == "float":
        yield float("nan"), ValueError
        yield "0.5", TypeError
        yield None, TypeError
        yield [0.5], TypeError
        yield 1 + 0j, TypeError
        if "finite" in p.valid_text:
            yield float("inf"), ValueError
            yield -float("inf"), ValueError
        if "> 0" in p.valid_text:
            yield 0.0, ValueError
            yield -1.0, ValueError
        if ">= 0" in p.valid_text:
            yield -1e-9, ValueError
        if "non-zero" in p.valid_text:
            yield 0.0, ValueError
            yield -0.0, ValueError
    elif p.kind == "choice":
        yield "NONE", ValueError
        yield None, ValueError
    elif p.kind == "bool":
        yield "yes", TypeError
        yield 1, TypeError
    elif p.kind == "int":
        yield 0, ValueError
        yield -2, ValueError
        yield 2.0, TypeError
        yield True, TypeError
    elif p.kind == "axis":
        yield 7, ValueError
        yield -8, ValueError
        yield 1.0, TypeError
        yield "0", TypeError


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_invalid_parameters_forward_and_backward(spec, backend):
    """Every parameter, every kind of bad value, both directions: the error names it, out is untouched."""
    x, g, params = _case(spec)
    y = _first(reference_forward(spec.name, x, **params))
    for p in spec.params:
        for bad, exc in _bad_values(p):
            if p.kind == "axis" and spec.kind == PRELU and np.ndim(params["weight"]) == 0:
                continue  # a scalar weight ignores axis
            kw = dict(params, **{p.name: bad})
            out_f, out_b = _sentinel(y.shape, y.dtype), _sentinel(x.shape, x.dtype)
            if p.where in ("both", "forward"):
                with pytest.raises(exc, match=p.name):
                    fastact.forward(spec.name, x, out=out_f, **kw)
            if p.where in ("both", "backward"):
                with pytest.raises(exc, match=p.name):
                    fastact.backward(spec.name, g, x, out=out_b, **kw)
            assert np.all(out_f == 7) and np.all(out_b == 7), f"{spec.name}: {p.name}={bad!r} wrote out"


@pytest.mark.parametrize("spec", AXIS_LIKE, ids=spec_ids(AXIS_LIKE))
def test_axis_shape_errors_in_the_backward(spec, backend):
    """An axis out of range, an odd glu axis, pieces that do not divide: named, in the backward too."""
    x, g, params = _case(spec)
    out = _sentinel(x.shape, x.dtype)
    for axis in (x.ndim, -x.ndim - 1, 100):
        with pytest.raises(ValueError, match="axis"):
            fastact.backward(spec.name, g, x, out=out, **dict(params, axis=axis))
        if spec.kind == AXIS:
            with pytest.raises(ValueError, match="axis"):
                fastact.backward(spec.name, g, y=x, out=out, **dict(params, axis=axis))
    if spec.kind == GLU:
        xo = np.ones((4, 7))
        with pytest.raises(ValueError, match="even"):
            fastact.glu(xo, out=np.empty((4, 3)))
        with pytest.raises(ValueError, match="even"):
            fastact.glu_backward(np.ones((4, 3)), xo, out=np.empty((4, 7)))
    if spec.kind == MAXOUT:
        xo = np.ones((4, 6))
        for k in (4, 5, 7):
            with pytest.raises(ValueError, match="pieces"):
                fastact.maxout(xo, k)
            with pytest.raises(ValueError, match="pieces"):
                fastact.maxout_backward(np.ones((4, 1)), xo, k)
    # grad_output of the wrong shape
    with pytest.raises(ValueError, match="grad_output"):
        fastact.backward(spec.name, np.ones(g.shape[:-1] + (g.shape[-1] + 1,)), x, out=out, **params)
    assert np.all(out == 7)


def test_prelu_weight_errors_in_both_directions(backend):
    x = np.linspace(-2, 2, 24).reshape(2, 3, 4)
    g = np.ones_like(x)
    out = _sentinel(x.shape, x.dtype)
    for w, exc in (
        (np.ones(4), ValueError),  # x.shape[1] is 3
        (np.ones(2), ValueError),
        (np.ones((3, 1)), ValueError),
        (np.array([0.1, np.inf, 0.2]), ValueError),
        (np.array([0.1, np.nan, 0.2]), ValueError),
        (np.array([]), ValueError),
        ("0.25", TypeError),
        (np.ones(3, dtype="M8[s]"), TypeError),
    ):
        with pytest.raises(exc, match="weight"):
            fastact.prelu(x, w, out=out)
        with pytest.raises(exc, match="weight"):
            fastact.prelu_backward(g, x, w, out=out)
    with pytest.raises(ValueError, match="weight"):
        fastact.prelu(x, np.ones(4), axis=-2)  # axis -2 has 3 channels
    fastact.prelu(x, np.ones(4), axis=-1)  # and -1 has 4: valid
    assert np.all(out == 7)


def test_rrelu_errors_in_both_directions(backend):
    x = np.linspace(-2, 2, 12)
    g = np.ones_like(x)
    out = _sentinel(x.shape, x.dtype)
    with pytest.raises(ValueError, match="lower"):
        fastact.rrelu_backward(g, x, lower=0.5, upper=0.1, out=out)
    with pytest.raises(ValueError, match="slopes"):
        fastact.rrelu_backward(g, x, training=True, slopes=np.ones(11), out=out)
    with pytest.raises(TypeError, match="slopes"):
        fastact.rrelu_backward(g, x, training=True, slopes=np.ones(12, complex), out=out)
    with pytest.raises(TypeError, match="slopes"):
        fastact.rrelu(x, training=True, slopes=np.full(12, "a"), out=out)
    with pytest.raises(ValueError, match="y="):
        fastact.rrelu_backward(g, y=x, out=out)
    assert np.all(out == 7)


# --------------------------------------------------------------- fuzzing

FUZZ_DTYPES = ["float16", "float32", "float64", "int8", "uint8", "int32", "int64", "bool"]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@st.composite
def _calls(draw):
    """One public call: function, direction, dtype, shape, layout, parameters, out= mode, maybe invalid."""
    spec = draw(st.sampled_from(SPECS))
    direction = draw(st.sampled_from(["forward", "backward"]))
    dtype = draw(st.sampled_from(FUZZ_DTYPES))
    ndim = draw(st.integers(0 if spec.kind not in (PRELU,) else 1, 4))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim)))
    layout = draw(st.sampled_from(["C", "F", "reversed", "strided", "transposed", "broadcast"]))
    out_mode = draw(st.sampled_from(["none", "C", "F", "strided", "inplace", "overlap"]))
    seed = draw(st.integers(0, 2**32 - 1))
    specials = draw(st.booleans())
    invalid = draw(st.sampled_from([None] * 6 + ["param", "axis", "dtype", "out-dtype", "out-shape"]))
    use_y = draw(st.booleans())
    return spec, direction, dtype, shape, layout, out_mode, seed, specials, invalid, use_y


def _lay(a, layout, rng):
    """The same values as ``a`` in another memory layout."""
    if a.ndim == 0 or a.size == 0:
        return a
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "reversed":
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    if layout == "strided":
        big = np.empty(a.shape[:-1] + (a.shape[-1] * 3,), a.dtype)
        v = big[..., ::3]
        v[...] = a
        return v
    if layout == "transposed":
        return np.ascontiguousarray(a.T).T
    if layout == "broadcast" and a.ndim >= 2:
        # a zero-stride axis: every row the same
        row = a[:1]
        v = np.broadcast_to(row, a.shape)
        return v
    return a


def _fuzz_values(rng, shape, dtype, specials):
    n = math.prod(shape)
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(max(info.min, -100), min(info.max, 100) + 1, shape).astype(dt)
    v = random_values(rng, n, scale=4.0)
    if specials and n:
        k = max(1, n // 5)
        v[rng.choice(n, size=k)] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30], size=k)
    with np.errstate(over="ignore"):
        return v.reshape(shape).astype(dt)


def _fix_shape(spec, shape, params):
    """Make the axis length valid for glu/maxout; axis and prelu channels follow the shape."""
    shape = list(shape)
    if spec.kind in (GLU, MAXOUT) and shape:
        ax = params["axis"] % len(shape)
        k = 2 if spec.kind == GLU else params["pieces"]
        shape[ax] = (shape[ax] // k) * k
    return tuple(shape)


def _params_for(spec, shape, rng, direction):
    p = random_params(spec, rng) if rng.random() < 0.7 else default_params(spec, direction)
    if spec.kind in (AXIS, GLU, MAXOUT):
        p["axis"] = int(rng.integers(-max(len(shape), 1), max(len(shape), 1)))
    if spec.kind == PRELU:
        ax = int(rng.integers(-len(shape), len(shape)))
        if rng.random() < 0.3:
            p["weight"] = float(rng.uniform(-1, 1))
        else:
            p["weight"] = rng.uniform(-1, 1, shape[ax])
            p["axis"] = ax
    if spec.kind == RRELU:
        p["training"] = bool(rng.random() < 0.5)
    if spec.check is not None and spec.check(spec.with_defaults({k: v for k, v in p.items() if k != "weight"})):
        p = default_params(spec, direction) | {k: v for k, v in p.items() if k in ("axis", "weight", "training")}
    return p


def _expected(spec, direction, x, g, y, params):
    if direction == "forward":
        return reference_forward(spec.name, x, **params)
    return reference_backward(spec.name, g, None if y is not None else x, y=y, **params)


def _results(r):
    return list(r) if isinstance(r, tuple) else [r]


def test_fuzz_the_public_api(backend):
    """Random calls of the whole API on this backend: an invalid call raises TypeError/ValueError with
    out untouched; a valid one agrees with the reference. No crash, whatever the draw."""

    @FUZZ
    @given(call=_calls())
    def check(call):
        spec, direction, dtype, shape, layout, out_mode, seed, specials, invalid, use_y = call
        rng = np.random.default_rng(seed)
        params = _params_for(spec, shape, rng, direction)
        shape = _fix_shape(spec, shape, params)
        x0 = _fuzz_values(rng, shape, dtype, specials)
        if spec.kind == RRELU and params["training"]:
            params["slopes"] = rng.uniform(0.1, 0.4, shape).astype(out_dtype(dtype))
            params.pop("rng", None)
        ref_y = _results(reference_forward(spec.name, x0, **params))[0]
        g0 = _fuzz_values(rng, ref_y.shape, dtype, False)
        y = None
        if direction == "backward" and use_y and spec.kind in (ELEMENTWISE, AXIS) and spec.allows_y(params):
            y = ref_y
        x = _lay(x0, layout, rng)
        g = _lay(g0, layout, rng)
        x0, g0 = np.array(x), np.array(g)  # a broadcast layout repeats rows: compare with what was passed
        if y is not None:
            y = _results(reference_forward(spec.name, x0, **params))[0]
        res_shape = ref_y.shape if direction == "forward" else x0.shape
        res_dtype = ref_y.dtype if direction == "forward" else np.result_type(out_dtype(g0.dtype), out_dtype(x0.dtype))

        # the invalid variants
        if invalid == "param":
            floats = [p for p in spec.params if p.kind == "float" and p.where in ("both", direction)]
            if floats:
                params = dict(params, **{floats[0].name: float("nan")})
            else:
                invalid = None
        elif invalid == "axis":
            if "axis" in params and not (spec.kind == PRELU and np.ndim(params["weight"]) == 0):
                params = dict(params, axis=max(x0.ndim, 1) + 2)
            else:
                invalid = None
        elif invalid == "dtype":
            x = x0.astype(np.complex64)
        out = None
        if invalid == "out-dtype":
            out = np.full(res_shape, 7, np.int16)
        elif invalid == "out-shape":
            out = np.full(res_shape + (2,), 7, res_dtype)
        elif out_mode == "C":
            out = np.full(res_shape, 7, res_dtype)
        elif out_mode == "F":
            out = np.full(res_shape, 7, res_dtype, order="F")
        elif out_mode == "strided" and len(res_shape):
            out = np.full(res_shape[:-1] + (res_shape[-1] * 2,), 7, res_dtype)[..., ::2]
        elif out_mode == "inplace" and x.dtype == res_dtype and x.shape == res_shape and x.flags.writeable:
            out = (x if direction == "forward" else g) if (direction == "forward" or g.flags.writeable) else None
        elif out_mode == "overlap" and x.shape == res_shape and x.size > 1 and direction == "forward":
            buf = np.empty(x.size + 1, res_dtype)
            src = buf[:-1].reshape(x.shape)
            src[...] = x0.astype(res_dtype) if x0.dtype == res_dtype else x0
            if src.dtype == x0.dtype:
                x = src
                out = buf[1:].reshape(x.shape)
        before = None if out is None else np.array(out, copy=True)

        def call_it():
            if direction == "forward":
                return fastact.forward(spec.name, x, out=out, **params)
            return fastact.backward(spec.name, g, None if y is not None else x, y=y, out=out, **params)

        what = f"{spec.name} {direction} [{backend}] dtype={dtype} shape={shape} layout={layout} out={out_mode} params={params}"
        if invalid:
            with pytest.raises((TypeError, ValueError)):
                call_it()
            if out is not None and not np.shares_memory(out, x0):
                np.testing.assert_array_equal(out, before, err_msg="written before the error: " + what)
            return
        got = _results(call_it())
        exp = _results(_expected(spec, direction, x0, g0, y, params))
        if out is not None:
            assert got[0] is out, what
        assert len(got) == len(exp), what
        rtol, atol = bound_for(spec, direction, out_dtype(got[0].dtype))
        for a, e in zip(got, exp):
            assert a.shape == e.shape and a.dtype == e.dtype, f"{what}: {a.shape} {a.dtype} vs {e.shape} {e.dtype}"
            assert_close(a, e, rtol, atol, what)

    check()
