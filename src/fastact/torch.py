"""fastact's kernels inside PyTorch autograd.

``import fastact.torch`` needs PyTorch (it imports it at the top, so without
PyTorch the import fails with ``ImportError``). It offers, for every activation
in the registry:

- ``fastact.torch.FUNCTIONS[name]`` -- a ``torch.autograd.Function`` whose
  forward and backward run fastact's kernels on zero-copy NumPy views of CPU
  tensors;
- ``fastact.torch.<name>(x, *params, **params)`` -- the functional form, with
  fastact's parameter names (``axis``, not ``dim``); positional parameters
  follow the registry's order, as in ``torch.nn.functional``;
- ``fastact.torch.Activation(name, **params)`` -- an ``nn.Module`` around any
  of them, and ``fastact.torch.PReLU`` with a learnable weight.

The backward saves the forward's *output* instead of its input wherever the
derivative can be written from it (the registry's ``y=`` rule), so a model
keeps one tensor per activation either way. Only CPU tensors are accepted; the
backward is first-order (``once_differentiable``). rrelu in training mode
samples its slopes once in the forward and keeps them for the backward; pass an
int ``rng=`` for reproducible slopes.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.autograd.function import once_differentiable

from . import _api
from ._interop import tensor_to_numpy
from ._registry import AXIS, ELEMENTWISE, PRELU, REQUIRED, RRELU, SPECS, Spec, get_spec

__all__ = ["FUNCTIONS", "Activation", "PReLU", "function"] + [s.name for s in SPECS]


def _np(t: torch.Tensor, fname: str, what: str):
    return tensor_to_numpy(t, fname, what)


def _tensor(a) -> torch.Tensor:
    return torch.from_numpy(a)  # shares memory with the NumPy result


def _make_function(spec: Spec) -> type:
    name = spec.name
    fname = f"fastact.torch.{name}"
    backward_names = [p.name for p in spec.backward_params()]

    if spec.kind == PRELU:

        def forward(ctx, x, weight, params):
            y = _api.FORWARD[name](_np(x, fname, "x"), _np(weight, fname, "weight"), **params)
            ctx.save_for_backward(x, weight)
            ctx.params = params
            return _tensor(y)

        @once_differentiable
        def backward(ctx, grad):
            x, weight = ctx.saved_tensors
            gi, gw = _api.BACKWARD[name](_np(grad, fname, "grad"), _np(x, fname, "x"), _np(weight, fname, "weight"),
                                          **ctx.params)
            return (
                _tensor(gi) if ctx.needs_input_grad[0] else None,
                _tensor(gw) if ctx.needs_input_grad[1] else None,
                None,
            )

    else:

        def forward(ctx, x, params):
            res = _api.FORWARD[name](_np(x, fname, "x"), **params)
            bparams = {k: v for k, v in params.items() if k in backward_names}
            if spec.kind == RRELU and params.get("training"):
                res, bparams["slopes"] = res  # keep this call's slopes for its backward
            y = _tensor(res)
            # y-based backward where exact: the model then holds the output,
            # which autograd keeps anyway for the next layer
            ctx.use_y = spec.kind in (ELEMENTWISE, AXIS) and spec.allows_y(params)
            ctx.save_for_backward(y if ctx.use_y else x)
            ctx.params = bparams
            return y

        @once_differentiable
        def backward(ctx, grad):
            (saved,) = ctx.saved_tensors
            g = _np(grad, fname, "grad")
            s = _np(saved, fname, "saved tensor")
            if ctx.use_y:
                dx = _api.BACKWARD[name](g, y=s, **ctx.params)
            else:
                dx = _api.BACKWARD[name](g, s, **ctx.params)
            return _tensor(dx), None

    cls_name = "".join(part.capitalize() for part in name.split("_")) + "Function"
    return type(cls_name, (torch.autograd.Function,), {
        "forward": staticmethod(forward),
        "backward": staticmethod(backward),
        "__doc__": f"torch.autograd.Function running fastact.{name} and fastact.{name}_backward.",
        "__module__": __name__,
    })


def _bind(spec: Spec, args: tuple, kwargs: dict) -> dict:
    """The user's parameters by name, defaults filled in (fastact checks their values)."""
    params = spec.forward_params()
    if len(args) > len(params):
        raise TypeError(f"fastact.torch.{spec.name}: takes at most {len(params)} parameter(s) after x, got {len(args)}")
    vals = {p.name: p.default for p in params}
    for p, v in zip(params, args):
        vals[p.name] = v
    for k, v in kwargs.items():
        if k not in vals:
            raise TypeError(f"fastact.torch.{spec.name}: unexpected parameter {k!r}")
        if params and k in [p.name for p in params[: len(args)]]:
            raise TypeError(f"fastact.torch.{spec.name}: parameter {k!r} given twice")
        vals[k] = v
    return vals


def _make_functional(spec: Spec, cls: type) -> Callable:
    if spec.kind == PRELU:

        def f(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            vals = _bind(spec, args, kwargs)
            weight = vals.pop("weight")
            if weight is REQUIRED:
                raise TypeError("fastact.torch.prelu: missing required parameter 'weight'")
            if not isinstance(weight, torch.Tensor):
                weight = torch.as_tensor(weight, dtype=x.dtype if x.is_floating_point() else None)
            return cls.apply(x, weight, vals)

    else:

        def f(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            return cls.apply(x, _bind(spec, args, kwargs))

    f.__name__ = f.__qualname__ = spec.name
    f.__module__ = __name__
    f.__doc__ = f"{spec.summary}\n\nfastact.{spec.name} as a differentiable PyTorch function; parameters as in " \
                f"fastact.{spec.name} ({', '.join(p.name for p in spec.forward_params()) or 'none'})."
    return f


FUNCTIONS: dict[str, type] = {s.name: _make_function(s) for s in SPECS}
_FUNCTIONAL = {s.name: _make_functional(s, FUNCTIONS[s.name]) for s in SPECS}
globals().update(_FUNCTIONAL)


def function(name: str) -> Callable:
    """The differentiable functional form of ``name``: ``fastact.torch.function("gelu")(x, approximate="tanh")``."""
    return _FUNCTIONAL[get_spec(name).name]


class Activation(torch.nn.Module):
    """``nn.Module`` running one fastact activation: ``Activation("gelu", approximate="tanh")``."""

    def __init__(self, name: str, **params: Any) -> None:
        super().__init__()
        spec = get_spec(name)
        if spec.kind == PRELU:
            raise ValueError("use fastact.torch.PReLU for prelu: its weight is a learnable parameter")
        self.name = spec.name
        self.params = params
        self._f = _FUNCTIONAL[spec.name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._f(x, **self.params)

    def extra_repr(self) -> str:
        return ", ".join([repr(self.name)] + [f"{k}={v!r}" for k, v in self.params.items()])


class PReLU(torch.nn.Module):
    """PReLU with a learnable weight, as ``torch.nn.PReLU`` (channel axis 1 by default)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, axis: int = 1, dtype=None) -> None:
        super().__init__()
        self.axis = axis
        self.weight = torch.nn.Parameter(torch.full((num_parameters,), float(init), dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _FUNCTIONAL["prelu"](x, self.weight, axis=self.axis)
