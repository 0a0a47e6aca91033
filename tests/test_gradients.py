"""Every backward against central finite differences of its own forward, in float64.

Points are drawn at random away from the kinks, with parameters drawn inside
their valid ranges. Elementwise functions are checked pointwise; the others
through directional derivatives: for random directions v and gradients g,
<backward(g, x), v> must equal d/dt <g, f(x + t v)> at t = 0.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from fastact._registry import ELEMENTWISE, GLU, MAXOUT, PRELU, RRELU, SPECS

from _helpers import grad_shape, make_case, random_params, spec_ids

H = 1e-6


def _away_from_kinks(x, kinks, gap=1e-3):
    if not kinks:
        return x
    k = np.asarray(kinks, dtype=np.float64)
    near = np.min(np.abs(x.reshape(-1)[:, None] - k[None, :]), axis=1) < gap
    return np.where(near.reshape(x.shape), x + 10 * gap, x)


def _fd_elementwise(spec, x, params):
    def f(v):
        r = fastact.forward(spec.name, v, **params)
        return r[0] if isinstance(r, tuple) else r  # rrelu in training: (y, slopes)

    h = H * np.maximum(1.0, np.abs(x))
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_backward_matches_finite_differences(spec, backend):
    rng = np.random.default_rng(11)
    for trial in range(3):
        params = random_params(spec, rng) if trial else None
        if spec.kind == RRELU:
            params = dict(params or {}, training=bool(trial % 2))
        x, params = make_case(spec, rng, size=300, params=params)
        x = np.clip(x, -30, 30)  # finite differences of saturated tails are all rounding
        kinks = spec.kinks(spec.with_defaults(params))
        x = _away_from_kinks(x, kinks)
        what = f"{spec.name} [{backend}, {params}]"

        if spec.kind in (ELEMENTWISE, RRELU):
            fd = _fd_elementwise(spec, x, params)  # rrelu's slopes are fixed: make_case passes them
            got = fastact.backward(spec.name, np.ones_like(x), x, **params)
            np.testing.assert_allclose(got, fd, rtol=2e-6, atol=2e-7, err_msg=what)
            continue

        axis = params.get("axis", -1)
        g = rng.standard_normal(grad_shape(spec, x.shape, axis, params) if spec.kind in (GLU, MAXOUT) else x.shape)
        for _ in range(3):
            v = rng.standard_normal(x.shape)
            f = lambda t: fastact.forward(spec.name, x + t * v, **params)  # noqa: E731
            fp, fm = f(H), f(-H)
            directional = np.sum(g * (fp - fm)) / (2 * H)
            # rounding in f itself: eps*|f| per value, divided by the step
            noise = 8 * np.finfo(np.float64).eps * np.sum(np.abs(g) * (np.abs(fp) + np.abs(fm))) / H
            res = fastact.backward(spec.name, g, x, **params)
            gx = res[0] if spec.kind == PRELU else res
            analytic = np.sum(gx * v)
            scale = np.linalg.norm(gx) * np.linalg.norm(v) + noise / 1e-6
            assert abs(analytic - directional) <= 1e-6 * scale, f"{what}: {analytic} vs {directional}"
            if spec.kind == PRELU:
                w = np.asarray(params["weight"], dtype=np.float64)
                dw = rng.standard_normal(w.shape)
                fw = lambda t: fastact.forward(spec.name, x, **dict(params, weight=w + t * dw))  # noqa: E731
                directional_w = np.sum(g * (fw(H) - fw(-H))) / (2 * H)
                analytic_w = np.sum(res[1] * dw)
                scale_w = np.linalg.norm(res[1]) * np.linalg.norm(dw) + 1e-12
                assert abs(analytic_w - directional_w) <= 1e-6 * scale_w, f"{what} (weight): {analytic_w} vs {directional_w}"
