"""Hypothesis: any float array, any valid parameters -> the reference's answer, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastact

from _helpers import ELEMENTWISE_SPECS, assert_close, bound_for, default_params, reference_backward, reference_forward

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _param_strategy(spec):
    fields = {}
    for p in spec.params:
        if p.kind != "float" or p.sample is None:
            continue
        # Parameters are rounded to the array's dtype in the kernels (float32 is
        # computed in float32), so draw them where float32 represents them.
        normal = {"allow_subnormal": False}
        if p.valid_text.startswith("a finite number > 0"):
            fields[p.name] = st.floats(1e-3, 1e3, **normal)
        elif ">= 0" in p.valid_text:
            fields[p.name] = st.just(0.0) | st.floats(1e-30, 1e3, **normal)
        elif "non-zero" in p.valid_text:
            fields[p.name] = st.floats(0.01, 100) | st.floats(-100, -0.01)
        else:
            fields[p.name] = st.just(0.0) | st.floats(1e-30, 1e3, **normal) | st.floats(-1e3, -1e-30, **normal)
    return st.fixed_dictionaries(fields)


@pytest.mark.parametrize("spec", ELEMENTWISE_SPECS, ids=lambda s: s.name)
def test_any_array_any_params(spec, backend):
    @SETTINGS
    @given(
        x=hnp.arrays(
            dtype=st.sampled_from([np.float32, np.float64]),
            shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40),
            elements={"allow_nan": True, "allow_infinity": True, "allow_subnormal": True},
        ),
        params=_param_strategy(spec),
        strided=st.booleans(),
    )
    def check(x, params, strided):
        p = dict(default_params(spec), **params)
        if spec.check is not None and spec.check(spec.with_defaults(p)):
            return
        if strided and x.ndim:
            x = x[..., ::-1]
        got = fastact.forward(spec.name, x, **p)
        rtol, atol = bound_for(spec, "forward", x.dtype)
        assert_close(got, reference_forward(spec.name, x, **p), rtol, atol, f"{spec.name} {p}", inputs=x)
        g = np.ones_like(x)
        gb = fastact.backward(spec.name, g, x, **p)
        rtol, atol = bound_for(spec, "backward", x.dtype)
        assert_close(gb, reference_backward(spec.name, g, x, **p), rtol, atol, f"{spec.name}_backward {p}", inputs=x)

    check()
