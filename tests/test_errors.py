"""Every error of the public contract: raised before anything is written, naming the argument."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

import fastact
from fastact._registry import AXIS, GLU, MAXOUT, PRELU, RRELU, SPECS

from _helpers import make_case, spec_ids

BAD_INPUTS = {
    "complex": np.ones(4, dtype=np.complex128),
    "object": np.array([1.0, None, 2.0, 3.0], dtype=object),
    "string": np.array(["a", "b"]),
    "bytes": np.array([b"a", b"b"]),
    "datetime": np.array([np.datetime64("2026-01-01")] * 3),
    "timedelta": np.array([np.timedelta64(1, "s")] * 3),
    "structured": np.zeros(3, dtype=[("a", "f4"), ("b", "f4")]),
    "python-str": "not an array",
    "ragged": [[1.0, 2.0], [3.0]],
    "longdouble": np.ones(3, dtype=np.longdouble) if np.dtype(np.longdouble).itemsize > 8 else np.ones(3, dtype=object),
}


@pytest.mark.parametrize("label", list(BAD_INPUTS))
@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_bad_input_dtype_raises_typeerror(spec, label):
    _, params = make_case(spec, np.random.default_rng(0), size=8)
    if spec.kind == PRELU:
        params["weight"] = 0.2
    bad = BAD_INPUTS[label]
    with pytest.raises(TypeError, match=r"\bx\b"):
        fastact.forward(spec.name, bad, **params)
    with pytest.raises(TypeError, match="grad_output"):
        fastact.backward(spec.name, bad, np.ones(4), **params)


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_array_likes_are_accepted(spec):
    rng = np.random.default_rng(1)
    x, params = make_case(spec, rng, size=8, shape=(2, 4) if spec.kind not in (PRELU,) else (2, 4, 3))
    if spec.kind == RRELU:
        params["training"] = False

    class ArrayLike:
        def __array__(self, dtype=None, copy=None):
            return x

    expected = fastact.forward(spec.name, x, **params)
    for like in (x.tolist(), tuple(map(tuple, x.tolist())) if x.ndim == 2 else x.tolist(), ArrayLike()):
        np.testing.assert_array_equal(fastact.forward(spec.name, like, **params), expected)


def test_scalars_are_accepted():
    assert fastact.relu(-2.0).shape == ()
    assert fastact.sigmoid(0).dtype == np.float64  # int64 -> float64, as np.sin(0)
    assert fastact.sigmoid(np.float32(0)).dtype == np.float32
    assert fastact.sigmoid(True).dtype == np.float16
    assert fastact.sigmoid_backward(1.0, y=0.5) == 0.25


def _out_cases(expected):
    yield "shape", np.empty(expected.shape + (1,), expected.dtype), ValueError
    yield "dtype", np.empty(expected.shape, np.float64 if expected.dtype != np.float64 else np.float32), TypeError
    ro = np.full(expected.shape, 7, expected.dtype)
    ro.flags.writeable = False
    yield "read-only", ro, ValueError
    yield "list", [0.0] * expected.size, TypeError
    yield "byteswapped", np.empty(expected.shape, expected.dtype.newbyteorder()), TypeError


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_bad_out_raises_before_writing(spec, backend):
    rng = np.random.default_rng(2)
    x, params = make_case(spec, rng, dtype=np.float32, size=64)
    if spec.kind == RRELU:
        params["training"] = False
    expected = fastact.forward(spec.name, x, **params)
    for label, out, exc in _out_cases(expected):
        before = np.array(out, copy=True) if isinstance(out, np.ndarray) else None
        with pytest.raises(exc, match="out"):
            fastact.forward(spec.name, x, out=out, **params)
        if before is not None:
            np.testing.assert_array_equal(out, before, err_msg=f"{spec.name}: out was written ({label})")


FLOAT_PARAM_SPECS = [s for s in SPECS if any(p.kind == "float" for p in s.params)]


@pytest.mark.parametrize("spec", FLOAT_PARAM_SPECS, ids=spec_ids(FLOAT_PARAM_SPECS))
def test_invalid_parameters_name_the_parameter(spec):
    rng = np.random.default_rng(3)
    x, params = make_case(spec, rng, size=16)
    sentinel = np.full(x.shape, 7.0)
    for p in spec.params:
        if p.kind != "float":
            continue
        for bad in (float("nan"),):
            with pytest.raises(ValueError, match=p.name):
                fastact.forward(spec.name, x, out=sentinel, **dict(params, **{p.name: bad}))
            with pytest.raises(ValueError, match=p.name):
                fastact.backward(spec.name, np.ones_like(x), x, **dict(params, **{p.name: bad}))
        with pytest.raises(TypeError, match=p.name):
            fastact.forward(spec.name, x, **dict(params, **{p.name: "1.0"}))
        with pytest.raises(TypeError, match=p.name):
            fastact.forward(spec.name, x, **dict(params, **{p.name: True}))
    assert np.all(sentinel == 7.0)


@pytest.mark.parametrize(
    "name,params,match",
    [
        ("celu", {"alpha": 0.0}, "alpha"),
        ("softplus", {"beta": -1.0}, "beta"),
        ("softplus", {"beta": float("inf")}, "beta"),
        ("hardshrink", {"lambd": -0.1}, "lambd"),
        ("softshrink", {"lambd": -0.1}, "lambd"),
        ("squareplus", {"b": -1.0}, r"\bb\b"),
        ("hardtanh", {"min_val": 2.0, "max_val": 1.0}, "min_val"),
        ("rrelu", {"lower": 0.5, "upper": 0.1}, "lower"),
        ("gelu", {"approximate": "erf"}, "approximate"),
        ("leaky_relu", {"negative_slope": float("inf")}, "negative_slope"),
    ],
)
def test_out_of_range_parameters(name, params, match):
    with pytest.raises(ValueError, match=match):
        fastact.forward(name, np.ones(3), **params)


def test_along_axis_errors():
    x = np.ones((4, 6))
    with pytest.raises(ValueError, match="axis"):
        fastact.softmax(x, axis=2)
    with pytest.raises(ValueError, match="axis"):
        fastact.softmax(x, axis=-3)
    with pytest.raises(TypeError, match="axis"):
        fastact.softmax(x, axis=1.0)
    with pytest.raises(ValueError, match="even"):
        fastact.glu(np.ones((4, 5)))
    with pytest.raises(ValueError, match="pieces"):
        fastact.maxout(x, 4)
    with pytest.raises(ValueError, match="pieces"):
        fastact.maxout(x, 0)
    with pytest.raises(TypeError, match="pieces"):
        fastact.maxout(x, 2.0)
    with pytest.raises(ValueError, match="grad_output"):
        fastact.glu_backward(np.ones((4, 6)), x)
    with pytest.raises(ValueError, match="grad_output"):
        fastact.softmax_backward(np.ones((4, 5)), y=x)


def test_prelu_errors():
    x = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match="weight"):
        fastact.prelu(x, np.ones(4))
    with pytest.raises(ValueError, match="weight"):
        fastact.prelu(x, np.ones((3, 1)))
    with pytest.raises(ValueError, match="weight"):
        fastact.prelu(x, np.array([0.1, np.nan, 0.2]))
    with pytest.raises(ValueError, match="weight"):
        fastact.prelu(x, [])
    with pytest.raises(TypeError, match="weight"):
        fastact.prelu(x, np.ones(3, dtype=complex))
    with pytest.raises(ValueError, match="axis"):
        fastact.prelu(x, np.ones(3), axis=5)
    with pytest.raises(TypeError, match="weight"):
        fastact.prelu_backward(np.ones_like(x), x)
    gi, gw = fastact.prelu_backward(np.ones_like(x), -x, np.full(3, 0.5))
    assert gi.shape == x.shape and gw.shape == (3,)
    gi, gw = fastact.prelu_backward(np.ones_like(x), -x, 0.5)
    assert gw.shape == () and gw == -24.0


def test_y_errors():
    x = np.linspace(-2, 2, 9)
    with pytest.raises(ValueError, match="y="):
        fastact.gelu_backward(np.ones(9), y=fastact.gelu(x))
    with pytest.raises(ValueError, match="y="):
        fastact.leaky_relu_backward(np.ones(9), y=x, negative_slope=-0.1)
    with pytest.raises(ValueError, match="y="):
        fastact.elu_backward(np.ones(9), y=x, alpha=-1.0)
    with pytest.raises(TypeError, match="x="):
        fastact.sigmoid_backward(np.ones(9))
    with pytest.raises(ValueError, match="grad_output"):
        fastact.sigmoid_backward(np.ones(8), x)
    # allowed where the spec says so
    fastact.leaky_relu_backward(np.ones(9), y=x, negative_slope=0.1)
    fastact.elu_backward(np.ones(9), y=x, alpha=0.0)


def test_rrelu_training_needs_slopes():
    x = np.linspace(-2, 2, 9)
    y, slopes = fastact.rrelu(x, training=True, rng=1)
    assert slopes.shape == x.shape and np.all(slopes[x > 0] == 1)
    assert np.all((slopes[x <= 0] >= 1 / 8) & (slopes[x <= 0] <= 1 / 3))
    with pytest.raises(ValueError, match="slopes"):
        fastact.rrelu_backward(np.ones(9), x, training=True)
    with pytest.raises(ValueError, match="slopes"):
        fastact.rrelu(x, training=True, slopes=np.ones(3))
    with pytest.raises(TypeError, match="rng"):
        fastact.rrelu(x, training=True, rng="seed")
    np.testing.assert_array_equal(fastact.rrelu(x, training=True, rng=1)[0], y)  # seeded: reproducible
    np.testing.assert_array_equal(fastact.rrelu_backward(np.ones(9), x, training=True, slopes=slopes), slopes)


def test_unknown_activation():
    with pytest.raises(ValueError, match="activations"):
        fastact.forward("swishy", np.ones(2))


def test_missing_required_parameter():
    with pytest.raises(TypeError, match="threshold"):
        fastact.threshold(np.ones(3))  # noqa: the signature itself requires them
    with pytest.raises(TypeError, match="threshold"):
        fastact.threshold_backward(np.ones(3), np.ones(3))


def test_remembered_parameters_are_still_checked():
    # the public functions remember parameter settings that passed (_api._check_memo):
    # a value that hashes like a remembered one but is invalid must still raise
    x = np.linspace(-2, 2, 16, dtype=np.float32)
    g = np.ones_like(x)
    for _ in range(2):  # the second round finds the first one's settings remembered
        np.testing.assert_array_equal(fastact.leaky_relu(x, negative_slope=1), fastact.leaky_relu(x, negative_slope=1.0))
        with pytest.raises(TypeError, match="negative_slope"):
            fastact.leaky_relu(x, negative_slope=True)  # hashes like 1 and 1.0
        with pytest.raises(ValueError, match="negative_slope"):
            fastact.leaky_relu(x, negative_slope=float("nan"))
        np.testing.assert_array_equal(fastact.hardtanh_backward(g, x, min_val=-2.0, max_val=1.0), (x > -2) & (x < 1))
        with pytest.raises(ValueError, match="min_val"):
            fastact.hardtanh_backward(g, x, min_val=2.0, max_val=1.0)
        # a 0-d array (unhashable) is checked every time
        np.testing.assert_array_equal(fastact.elu(x, alpha=np.array(0.5)), fastact.elu(x, alpha=0.5))
    for slope in np.linspace(0.0, 1.0, 200):  # the memo stays bounded
        fastact.leaky_relu(x, negative_slope=float(slope))
    assert 0 < len(fastact.leaky_relu.__globals__["_pmemo"]) <= 64
