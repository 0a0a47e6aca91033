"""Inputs that are not NumPy arrays: dask arrays and PyTorch tensors.

``_api`` calls :func:`foreign` only when some array argument is not a plain
``numpy.ndarray``; when it says yes, the call is routed here.

- A **dask array** anywhere among the arrays or array parameters makes the
  result a lazy dask array (``_dask.py``).
- A **PyTorch tensor** (on the CPU) is viewed as a NumPy array without a copy,
  the ordinary NumPy path runs on the view, and the result comes back as a
  tensor sharing memory with it; an ``out=`` tensor is written in place and is
  the object returned.

Neither torch nor dask is ever imported here: a value can only be a tensor or a
dask array if its library is already in ``sys.modules``, so looking there is
enough, and it keeps ``import fastact`` and this check cheap.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

DASK = "dask"
TORCH = "torch"


def _kind(a: Any) -> str | None:
    if a is None or type(a) is np.ndarray:
        return None
    mod = sys.modules.get("dask.array")
    if mod is not None and isinstance(a, mod.Array):
        return DASK
    mod = sys.modules.get("torch")
    tensor = getattr(mod, "Tensor", None) if mod is not None else None
    if tensor is not None and isinstance(a, tensor):
        return TORCH
    return None


def foreign(*arrays: Any) -> bool:
    """True when any argument is an array type this module handles instead of NumPy."""
    return any(_kind(a) is not None for a in arrays)


def _array_params(spec) -> list[str]:
    return [p.name for p in spec.params if p.kind == "array"]


def _kinds(spec, arrays, values) -> set:
    found = {_kind(a) for a in arrays}
    found.update(_kind(values.get(name)) for name in _array_params(spec))
    return found


# ------------------------------------------------------------------- torch


def tensor_to_numpy(t: Any, fname: str, argname: str, writeable: bool = False) -> np.ndarray:
    """A NumPy view of a CPU tensor's memory (never a copy).

    An input that requires grad is detached: these functions are not
    autograd-aware (``fastact.torch`` is), so the view simply reads the data.
    An ``out=`` that requires grad is refused, because writing into it behind
    autograd's back would silently corrupt a recorded graph -- PyTorch refuses
    in-place writes to such leaves too.
    """
    import torch  # already imported: t is a tensor

    if t.device.type != "cpu":
        raise TypeError(f"{fname}: {argname} is a tensor on {t.device}; fastact computes on the CPU (pass {argname}.cpu())")
    if t.layout != torch.strided:
        raise TypeError(f"{fname}: {argname} is a {t.layout} tensor; only dense (strided) tensors are supported")
    if writeable and t.requires_grad:
        raise ValueError(
            f"{fname}: {argname} is a tensor that requires grad; fastact will not write into it behind autograd's back "
            "(use fastact.torch for autograd, or pass a detached tensor)"
        )
    try:
        return t.detach().numpy()
    except (TypeError, RuntimeError) as exc:  # bfloat16 and other dtypes NumPy lacks
        raise TypeError(f"{fname}: {argname} has dtype {t.dtype}, which NumPy cannot represent: {exc}") from None


def _torch_wrap(result: Any, out_np: Any, out_obj: Any, as_tensor: bool) -> Any:
    import torch

    def one(r):
        if out_np is not None and r is out_np:
            return out_obj  # the caller's own out= object, as with NumPy
        if as_tensor and isinstance(r, np.ndarray):
            return torch.from_numpy(r)  # shares memory: no copy of the result
        return r

    if isinstance(result, tuple):
        return tuple(one(r) for r in result)
    return one(result)


def _torch_values(spec, values: dict, fname: str) -> dict:
    vals = dict(values)
    for name in _array_params(spec):
        if _kind(vals.get(name)) == TORCH:
            vals[name] = tensor_to_numpy(vals[name], fname, name)
    return vals


def _np_or_view(a: Any, fname: str, argname: str, writeable: bool = False) -> Any:
    return tensor_to_numpy(a, fname, argname, writeable) if _kind(a) == TORCH else a


def _torch_forward(spec, x, out, values):
    from ._api import FORWARD

    fname = f"fastact.{spec.name}"
    xn = _np_or_view(x, fname, "x")
    on = _np_or_view(out, fname, "out", writeable=True)
    vals = _torch_values(spec, values, fname)
    res = FORWARD[spec.name](xn, **vals, out=on)
    return _torch_wrap(res, on, out, as_tensor=True)


def _torch_backward(spec, g, x, y, out, values):
    from ._api import BACKWARD

    fname = f"fastact.{spec.name}_backward"
    gn = _np_or_view(g, fname, "grad_output")
    xn = _np_or_view(x, fname, "x")
    yn = _np_or_view(y, fname, "y")
    on = _np_or_view(out, fname, "out", writeable=True)
    vals = _torch_values(spec, values, fname)
    res = BACKWARD[spec.name](gn, xn, y=yn, **vals, out=on)
    return _torch_wrap(res, on, out, as_tensor=True)


# --------------------------------------------------------------- dispatch


def forward(spec, x, out, values):
    if DASK in _kinds(spec, (x, out), values):
        from . import _dask

        return _dask.forward(spec, x, out, values)
    return _torch_forward(spec, x, out, values)


def backward(spec, g, x, y, out, values):
    if DASK in _kinds(spec, (g, x, y, out), values):
        from . import _dask

        return _dask.backward(spec, g, x, y, out, values)
    return _torch_backward(spec, g, x, y, out, values)
