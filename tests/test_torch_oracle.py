"""PyTorch as a second oracle for the reference (skipped when torch is not installed).

Checks the kink conventions and formulas of the NumPy reference against
torch.nn.functional in float64, forward and backward (autograd), including the
points exactly at the kinks.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastact
from fastact._registry import AXIS, ELEMENTWISE, GLU, PRELU, SPECS

torch = pytest.importorskip("torch")
F = torch.nn.functional

from _helpers import make_case, random_params  # noqa: E402

# Where torch's float64 kernel is less exact than the reference (checked by hand):
# celu's backward is alpha * exp(x * c) * c with c = 1/alpha taken from alpha
# rounded to float32 (autograd's formula), so its relative error is about
# (1 + |x/alpha|) * 4e-8 in float64 (alpha = 0.3: 4.0e-8 from alpha * c alone,
# 6.2e-7 at x = -5); hardsigmoid's backward multiplies by a float32 1/6 even in
# float64. (rtol, atol) for those backwards:
TORCH_LOOSER = {"celu": (1e-7, 1e-10), "hardsigmoid": (1e-7, 1e-13)}

TORCH_SPECS = [s for s in SPECS if s.torch and s.kind in (ELEMENTWISE, AXIS, GLU, PRELU)]


def _torch_call(spec, t, params):
    fn = getattr(F, spec.torch)
    p = dict(params)
    if spec.kind in (AXIS, GLU):
        return fn(t, dim=p.pop("axis"))
    if spec.kind == PRELU:
        return fn(t, torch.as_tensor(np.asarray(p["weight"], dtype=np.float64)))
    if spec.name == "threshold":
        return fn(t, p["threshold"], p["value"])
    return fn(t, **p)


@pytest.mark.parametrize("spec", TORCH_SPECS, ids=lambda s: s.name)
def test_reference_matches_torch(spec):
    rng = np.random.default_rng(21)
    with fastact.use_backend("numpy"):
        for params in (None, random_params(spec, rng)):
            x, params = make_case(spec, rng, size=512, params=params)
            if spec.kind == ELEMENTWISE:
                kinks = [k for k in spec.kinks(spec.with_defaults(params))]
                x = np.concatenate([x, np.array(kinks + [0.0, -0.0], dtype=x.dtype)])
            t = torch.tensor(x, requires_grad=True)
            ty = _torch_call(spec, t, params)
            g = rng.standard_normal(tuple(ty.shape))
            ty.backward(torch.tensor(g))
            y = fastact.forward(spec.name, x, **params)
            np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=spec.name)
            gx = fastact.backward(spec.name, g, x, **params)
            if spec.kind == PRELU:
                gx = gx[0]
            rtol, atol = TORCH_LOOSER.get(spec.name, (1e-12, 1e-13))
            np.testing.assert_allclose(gx, t.grad.numpy(), rtol=rtol, atol=atol, err_msg=spec.name + " backward")
