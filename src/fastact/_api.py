"""The public layer: argument checks, dtypes, layouts and ``out=``, then one backend call.

Everything a backend may assume (``docs/backend-contract.md``) is established
here, and every error of the contract is raised here -- before anything is
written.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any, Callable

import numpy as np

from . import _backends, _interop
from ._registry import AXIS, ELEMENTWISE, GLU, MAXOUT, PRELU, REQUIRED, RRELU, SPECS, Spec, get_spec

__all__ = ["FORWARD", "BACKWARD", "forward", "backward", "explain", "make_public_functions"]

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


# The checks that select the public functions' allocating fast path, with auto's memo read:
# False when the array(s) do not qualify, else the memo entry of the dtype at the size's bit
# length, (backend, threads) or None. fastact._fastpath does the same in C; these are its
# Python versions, used when it is not compiled (tests hold the two to each other).
def _one_py(x: Any, m32: list, m64: list) -> Any:
    if type(x) is np.ndarray:
        dt = x.dtype
        n = x.size
        if (dt is _F32 or dt is _F64) and n:
            fl = x.flags
            if fl.c_contiguous or fl.f_contiguous:
                return (m32 if dt is _F32 else m64)[n.bit_length()]
    return False


def _pair_py(g: Any, s: Any, m32: list, m64: list) -> Any:
    if type(g) is np.ndarray and type(s) is np.ndarray and s.dtype is g.dtype and g.shape == s.shape:
        gl, sl = g.flags, s.flags
        gc = gl.c_contiguous
        if gc == sl.c_contiguous and (gc or (gl.f_contiguous and sl.f_contiguous)):
            return _one_py(g, m32, m64)
    return False


def _half_one_py(x: Any, m: list) -> Any:
    if type(x) is np.ndarray and x.dtype is _F16 and x.size and x.flags.c_contiguous:
        return m[x.size.bit_length()], np.empty(x.shape, _F16)
    return False


def _half_pair_py(g: Any, s: Any, m: list) -> Any:
    if type(s) is np.ndarray and s.dtype is _F16 and s.flags.c_contiguous and type(g) is np.ndarray \
            and g.shape == s.shape:
        return _half_one_py(g, m)
    return False


def _half_axis_forward_py(x: Any, axis: Any, m: list) -> Any:
    t = _half_one_py(x, m)
    if t is False or type(axis) is not int or not x.ndim or not (axis == -1 or axis == x.ndim - 1):
        return False
    n = x.shape[-1]
    g3 = (x.size // n, n, 1)
    return t[0], x.reshape(g3), t[1], t[1].reshape(g3)


def _half_axis_backward_py(g: Any, s: Any, axis: Any, m: list) -> Any:
    t = _half_axis_forward_py(g, axis, m)
    if t is False or _half_pair_py(g, s, m) is False:
        return False
    return t[0], t[1], s.reshape(t[1].shape), t[2], t[3]


def _half_prelu_forward_py(x: Any, weight: Any, axis: Any, m: list) -> Any:
    t = _half_one_py(x, m)
    g3 = _geometry_py(x.shape, axis) if t is not False else None
    if g3 is None or type(weight) is not np.ndarray or weight.dtype is not _F16 or weight.ndim != 1:
        return False
    c = weight.shape[0]
    if c != 1 and c != g3[1]:
        return False
    w = weight.astype(_F32)
    if not np.isfinite(w).all():
        return False
    g3 = (1, 1, x.size) if c == 1 else g3
    return t[0], x.reshape(g3), t[1], t[1].reshape(g3), w


def _half_prelu_backward_py(g: Any, x: Any, weight: Any, axis: Any, m: list) -> Any:
    t = _half_prelu_forward_py(x, weight, axis, m) if _half_pair_py(g, x, m) is not False else False
    if t is False:
        return False
    return t[0], g.reshape(t[1].shape), t[1], t[2], t[3], t[4]


def _into_py(x: Any, out: Any, m32: list, m64: list) -> Any:
    hit = _pair_py(x, out, m32, m64)
    if hit is False or not out.flags.writeable or np.may_share_memory(x, out):
        return False
    return hit


def _into2_py(g: Any, s: Any, out: Any, m32: list, m64: list) -> Any:
    hit = _pair_py(g, s, m32, m64)
    if hit is False or _pair_py(g, out, m32, m64) is False or not out.flags.writeable:
        return False
    if np.may_share_memory(g, out) or np.may_share_memory(s, out):
        return False
    return hit


def _geometry_py(shape: tuple, axis: Any) -> tuple | None:
    nd = len(shape)
    if type(axis) is not int or not -nd <= axis < nd:
        return None
    ax = axis + nd if axis < 0 else axis
    return (math.prod(shape[:ax]), shape[ax], math.prod(shape[ax + 1:]))


# The softmax family: besides the memo entry, the (outer, n, inner) views the kernels
# take and the result, allocated or `out` (see fastact._fastpath.axis_forward / axis_backward).
def _out_for_py(out: Any, a: np.ndarray) -> bool:
    return (type(out) is np.ndarray and out.dtype is a.dtype and out.shape == a.shape and out.flags.c_contiguous
            and out.flags.writeable and not np.may_share_memory(a, out))


def _axis_forward_py(x: Any, axis: Any, m32: list, m64: list, out: Any = None) -> Any:
    if type(x) is np.ndarray and x.flags.c_contiguous and (out is None or _out_for_py(out, x)):
        hit = _one_py(x, m32, m64)
        g3 = _geometry_py(x.shape, axis) if hit is not False else None
        if g3 is not None:
            res = np.empty(x.shape, x.dtype) if out is None else out
            return hit, x.reshape(g3), res, res.reshape(g3)
    return False


def _axis_backward_py(g: Any, s: Any, axis: Any, m32: list, m64: list, out: Any = None) -> Any:
    if type(g) is np.ndarray and type(s) is np.ndarray and s.dtype is g.dtype and g.shape == s.shape \
            and s.flags.c_contiguous and (out is None or _out_for_py(out, s)):
        t = _axis_forward_py(g, axis, m32, m64, out)  # g's checks, entry, views and result serve s too
        if t is not False:
            hit, g3, res, r3 = t
            return hit, g3, s.reshape(g3.shape), res, r3
    return False


# glu and maxout: the output's axis is the input's divided by `div` (see
# fastact._fastpath.shrink_forward / shrink_backward).
def _divisor_py(div: Any, n: int) -> int:
    return div if type(div) is int and div > 0 and n % div == 0 else -1


def _shrink_forward_py(x: Any, axis: Any, div: Any, m32: list, m64: list) -> Any:
    if type(x) is np.ndarray and x.flags.c_contiguous:
        hit = _one_py(x, m32, m64)
        g3 = _geometry_py(x.shape, axis) if hit is not False else None
        d = _divisor_py(div, g3[1]) if g3 is not None else -1
        if d > 0:
            ax = axis + x.ndim if axis < 0 else axis
            res = np.empty(x.shape[:ax] + (g3[1] // d,) + x.shape[ax + 1:], x.dtype)
            return hit, x.reshape(g3), res, res.reshape((g3[0], g3[1] // d, g3[2]))
    return False


def _shrink_backward_py(g: Any, x: Any, axis: Any, div: Any, m32: list, m64: list) -> Any:
    if type(g) is np.ndarray and type(x) is np.ndarray and g.flags.c_contiguous and x.flags.c_contiguous:
        hit = _one_py(x, m32, m64)
        g3 = _geometry_py(x.shape, axis) if hit is not False else None
        d = _divisor_py(div, g3[1]) if g3 is not None else -1
        if d > 0 and g.dtype is x.dtype:
            ax = axis + x.ndim if axis < 0 else axis
            if g.shape == x.shape[:ax] + (g3[1] // d,) + x.shape[ax + 1:]:
                res = np.empty(x.shape, x.dtype)
                return hit, g.reshape((g3[0], g3[1] // d, g3[2])), x.reshape(g3), res, res.reshape(g3)
    return False


# prelu: x's checks as the softmax family's, and a weight of x's dtype, 1-D,
# C-contiguous, of one slope or one per channel, finite (see
# fastact._fastpath.prelu_forward / prelu_backward).
def _prelu_geometry_py(x: Any, weight: Any, g3: tuple) -> Any:
    if type(weight) is np.ndarray and weight.ndim == 1 and weight.dtype is x.dtype and weight.flags.c_contiguous:
        c = weight.shape[0]
        if c and (c == 1 or c == g3[1]) and np.isfinite(weight).all():
            return (1, 1, x.size) if c == 1 else g3
    return None


def _prelu_forward_py(x: Any, weight: Any, axis: Any, m32: list, m64: list) -> Any:
    t = _axis_forward_py(x, axis, m32, m64)
    g3 = _prelu_geometry_py(x, weight, t[1].shape) if t is not False else None
    if g3 is None:
        return False
    return t[0], x.reshape(g3), t[2], t[2].reshape(g3)


def _prelu_backward_py(g: Any, x: Any, weight: Any, axis: Any, m32: list, m64: list) -> Any:
    t = _axis_backward_py(g, x, axis, m32, m64)
    g3 = _prelu_geometry_py(x, weight, t[2].shape) if t is not False else None
    if g3 is None:
        return False
    return t[0], g.reshape(g3), x.reshape(g3), t[3], t[3].reshape(g3)


try:
    from ._fastpath import axis_backward as _axis_backward, axis_forward as _axis_forward, into as _into
    from ._fastpath import into2 as _into2, one as _one, pair as _pair
    from ._fastpath import shrink_backward as _shrink_backward, shrink_forward as _shrink_forward
    from ._fastpath import prelu_backward as _prelu_backward, prelu_forward as _prelu_forward
    from ._fastpath import half_one as _half_one, half_pair as _half_pair
    from ._fastpath import half_axis_backward as _half_axis_b, half_axis_forward as _half_axis_f
    from ._fastpath import half_prelu_backward as _half_prelu_b, half_prelu_forward as _half_prelu_f

    FASTPATH = "compiled"
except ImportError as _e:  # not built (a source checkout): the same checks in Python, slower
    _one, _pair, _axis_forward, _axis_backward = _one_py, _pair_py, _axis_forward_py, _axis_backward_py
    _into, _into2 = _into_py, _into2_py
    _shrink_forward, _shrink_backward = _shrink_forward_py, _shrink_backward_py
    _prelu_forward, _prelu_backward = _prelu_forward_py, _prelu_backward_py
    _half_one, _half_pair = _half_one_py, _half_pair_py
    _half_axis_f, _half_axis_b = _half_axis_forward_py, _half_axis_backward_py
    _half_prelu_f, _half_prelu_b = _half_prelu_forward_py, _half_prelu_backward_py
    FASTPATH = f"Python ({type(_e).__name__}: {_e})"

_BAD_KINDS = {
    "c": "complex",
    "O": "object",
    "U": "string",
    "S": "bytes",
    "M": "datetime",
    "m": "timedelta",
    "V": "structured (void)",
    "T": "string",
}


# ------------------------------------------------------------------- arrays


def _as_array(a: Any, fname: str, argname: str) -> np.ndarray:
    if isinstance(a, np.ndarray):
        arr = a
    else:
        try:
            arr = np.asarray(a)
        except Exception as exc:  # ragged lists, objects whose __array__ fails
            raise TypeError(f"{fname}: {argname} must be array_like; converting {type(a).__name__} failed: {exc}") from None
    kind = arr.dtype.kind
    if kind == "f":
        if arr.dtype.itemsize > 8:
            raise TypeError(f"{fname}: {argname} has dtype {arr.dtype}; only float16, float32 and float64 are supported")
    elif kind not in "biu":
        what = _BAD_KINDS.get(kind, str(arr.dtype))
        raise TypeError(
            f"{fname}: {argname} has dtype {arr.dtype} ({what}); fastact takes float16/32/64, integer or bool arrays"
        )
    return arr


def _float_dtype(dt: np.dtype) -> np.dtype:
    """The float dtype a NumPy ufunc would compute ``dt`` in (native byte order)."""
    if dt.kind == "f":
        return np.dtype(dt.type)
    return np.result_type(dt, np.float16)


def _kernel_dtype(ct: np.dtype) -> np.dtype:
    return _F32 if ct == _F16 else ct


def _check_out(out: Any, shape: tuple, dtype: np.dtype, fname: str, argname: str = "out") -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fname}: {argname} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{fname}: {argname} has shape {out.shape}; the result has shape {shape}")
    if out.dtype != dtype:
        raise TypeError(f"{fname}: {argname} has dtype {out.dtype}; the result has dtype {dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{fname}: {argname} is read-only")
    return out


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        and a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
    )


def _unalias(out: np.ndarray, inputs: list, inplace_ok: int | None) -> list:
    """Copy every input that overlaps ``out``, except an exact alias at ``inplace_ok``."""
    res = []
    for i, a in enumerate(inputs):
        if a is not None and np.may_share_memory(out, a):
            if i == inplace_ok and _same_array(out, a):
                a = out  # the same memory, as the same object (see _flat_inputs)
            else:
                a = a.copy()
        res.append(a)
    return res


def _new_out(shape: tuple, dtype: np.dtype, like: np.ndarray) -> np.ndarray:
    order = "F" if (like.flags.f_contiguous and not like.flags.c_contiguous) else "C"
    return np.empty(shape, dtype=dtype, order=order)


# -------------------------------------------------------------- parameters


def _float_param(v: Any, fname: str, name: str) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        if not (isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iuf"):
            raise TypeError(f"{fname}: {name} must be a real number, got {type(v).__name__}")
    return float(v)


def _resolve_params(spec: Spec, params: tuple, values: dict, fname: str) -> dict:
    if not params:
        return {}
    if not fname.startswith("fastact."):
        fname = "fastact." + fname
    p: dict[str, Any] = {}
    for prm in params:
        v = values[prm.name]
        if v is REQUIRED:
            raise TypeError(f"{fname}: missing required parameter {prm.name!r}")
        kind = prm.kind
        if kind == "float":
            v = _float_param(v, fname, prm.name)
            if prm.valid is not None and not prm.valid(v):
                raise ValueError(f"{fname}: {prm.name} must be {prm.valid_text}, got {v!r}")
        elif kind in ("int", "axis"):
            if isinstance(v, (bool, np.bool_)):
                raise TypeError(f"{fname}: {prm.name} must be an integer, got bool")
            try:
                v = operator.index(v)
            except TypeError:
                raise TypeError(f"{fname}: {prm.name} must be an integer, got {type(v).__name__}") from None
            if prm.valid is not None and not prm.valid(v):
                raise ValueError(f"{fname}: {prm.name} must be {prm.valid_text}, got {v!r}")
        elif kind == "choice":
            if not isinstance(v, str) or v not in prm.choices:
                raise ValueError(f"{fname}: {prm.name} must be {prm.valid_text}, got {v!r}")
        elif kind == "bool":
            if not isinstance(v, (bool, np.bool_)):
                raise TypeError(f"{fname}: {prm.name} must be True or False, got {type(v).__name__}")
            v = bool(v)
        p[prm.name] = v
    if spec.check is not None:
        msg = spec.check(p)
        if msg:
            raise ValueError(f"{fname}: {msg} (got {', '.join(f'{k}={v!r}' for k, v in p.items() if isinstance(v, float))})")
    return p


def _normalize_axis(axis: int, ndim: int, fname: str) -> int:
    nd = max(ndim, 1)  # a 0-d array counts as one element along axis 0 / -1
    if not -nd <= axis < nd:
        raise ValueError(f"{fname}: axis {axis} is out of range for an array of {ndim} dimension(s)")
    return axis % nd


# ----------------------------------------------------------- the execution


def _flat_inputs(inputs: list, out: np.ndarray, kd: np.dtype):
    """1-D contiguous kernel-dtype views (or copies) of inputs and out, in one element order.

    Returns (flat inputs, flat out, finish) where finish() moves a temporary
    result into ``out`` when ``out`` could not be written directly.
    """
    if out.flags.c_contiguous:
        order = "C"
    elif out.flags.f_contiguous:
        order = "F"
    else:
        order = "C"
    flat = []
    for a in inputs:
        if a is None:
            flat.append(None)
        elif a.dtype == kd and (a.flags.c_contiguous if order == "C" else a.flags.f_contiguous):
            flat.append(a.reshape(-1, order=order))
        else:
            flat.append(_as_kernel(a, kd, order).reshape(-1, order=order))
    direct = out.dtype == kd and (out.flags.c_contiguous if order == "C" else out.flags.f_contiguous)
    if direct:
        of = out.reshape(-1, order=order)
        # an input that is out stays the same object as flat out: the backends see in place by identity
        return [of if a is out and f is not None else f for a, f in zip(inputs, flat)], of, None
    tmp = np.empty(out.size, dtype=kd)
    return flat, tmp, lambda: _store(out, tmp.reshape(out.shape, order=order))


def _half_flat(inputs: list, out: np.ndarray):
    """For the float16 block kernels (:func:`_half_kernels`): 1-D views of
    inputs and out in out's element order, ``(flat inputs, flat out)``, where
    all of them are float16 and contiguous in that order; None otherwise (the
    caller converts through :func:`_flat_inputs`). An input that is out
    becomes the flat out itself (in place)."""
    if out.dtype != _F16:
        return None
    fl = out.flags
    order = "C" if fl.c_contiguous else "F" if fl.f_contiguous else None
    if order is None:
        return None
    of = out.reshape(-1, order=order)
    flat = []
    for a in inputs:
        if a is None or a is out:
            flat.append(None if a is None else of)
        elif a.dtype == _F16 and (a.flags.c_contiguous if order == "C" else a.flags.f_contiguous):
            flat.append(a.reshape(-1, order=order))
        else:
            return None
    return flat, of


def _half_call(name: str, be, th: int, ct: np.dtype, inputs: list, out: np.ndarray, p: dict) -> bool:
    """The general path's float16 call on the block kernels: ``name``'s
    forward (``inputs`` = [x]) or backward ([g, x, y]) into ``out``, where
    :func:`_half_kernels` and :func:`_half_flat` allow it. False, nothing
    run, where they do not: the caller converts."""
    hk = _half_kernels(name, be) if ct == _F16 else None
    flat = _half_flat(inputs, out) if hk is not None else None
    if flat is None:
        return False
    fi, of = flat
    th = th if hk is be else 0
    if len(fi) == 1:
        hk.forward(name, fi[0], of, p, th)
    else:
        hk.backward(name, *fi, of, p, th)
    return True


def _store(out: np.ndarray, tmp: np.ndarray) -> None:
    """Copy a kernel's temporary result into ``out``; a float32 result beyond
    float16's range becomes inf there, which is the correctly rounded value."""
    if out.dtype == _F16 and tmp.dtype == _F32 and _half(tmp, out):
        return
    with np.errstate(over="ignore"):
        np.copyto(out, tmp, casting="unsafe")


def _as_kernel(a: np.ndarray, kd: np.dtype, order: str = "C") -> np.ndarray:
    """``a`` as a ``kd`` array contiguous in ``order`` (a copy unless it is one already)."""
    if a.dtype == _F16 and kd == _F32 and (a.flags.c_contiguous if order == "C" else a.flags.f_contiguous):
        f = np.empty(a.shape, _F32, order=order)
        if _half(a, f):
            return f
    return np.asarray(a, dtype=kd, order=order)


_cy_mod = None  # the Cython backend's module, once looked up; False: not available


def _cython_module():
    """The loaded Cython variant's module (its float16 converter and kernel
    lists), or False where the backend is unavailable; looked up once."""
    global _cy_mod
    if _cy_mod is None:
        mod = False
        if _backends.available("cython")[0]:
            import importlib

            mod = importlib.import_module(_backends.load("cython").module)
        _cy_mod = mod
    return _cy_mod


_convert = None  # the Cython backend's float16 <-> float32 conversion, once looked up; False: none


def _converter():
    global _convert
    if _convert is None:
        mod = _cython_module()
        _convert = getattr(mod, "convert", False) if mod else False
    return _convert


def _h16() -> bool:
    """Whether float16 arrays are converted by the compiled converter (the fast paths' condition)."""
    return _converter() is not False


_half_fns = None  # (the Cython backend, HALF_FUNCTIONS, HALF_ROWS, HALF_ROW_MAX), once looked up; False: none


def _half_info():
    global _half_fns
    if _half_fns is None:
        found = False
        mod = _cython_module()
        fns = getattr(mod, "HALF_FUNCTIONS", frozenset()) if mod else frozenset()
        if fns:
            found = (_backends.load("cython"), fns, getattr(mod, "HALF_ROWS", frozenset()),
                     getattr(mod, "HALF_ROW_MAX", 0))
        _half_fns = found
    return _half_fns


def _half_kernels(name: str, be, rows: bool = False):
    """The backend whose kernels take ``name``'s float16 arrays themselves
    (the Cython backend's HALF_FUNCTIONS, elementwise: each block converted
    on the stack, one pass over float16 memory; with ``rows``, its
    HALF_ROWS, along an axis), or None. Where a backend is chosen
    (``FASTACT_BACKEND``, ``use_backend``), only that one's; under ``auto``,
    whichever backend the float32 table picked."""
    info = _half_info()
    if info is False:
        return None
    cy, fns, rfns, _ = info
    if name in (rfns if rows else fns) and (be is cy or _backends.get_backend() == "auto"):
        return cy
    return None


def _half_c(arrays: list) -> bool:
    """Whether every array given (None passed over) is float16 and C-contiguous."""
    for a in arrays:
        if a is not None and (a.dtype != _F16 or not a.flags.c_contiguous):
            return False
    return True


def _half_rows_call(name: str, be, th: int, geo: tuple, oshape: tuple, inputs: list, out: np.ndarray,
                    p: dict) -> bool:
    """An along-axis call by the backend's own float16 rows (:func:`_half_kernels`
    with ``rows``): C-contiguous float16 arrays, x (or y) of geometry ``geo`` =
    (outer, n, inner), whose rows of n * inner are at most its HALF_ROW_MAX
    (the softmax family: inner 1; glu: any); ``oshape``, the forward's output
    geometry (glu's halves; the softmax family's is ``geo``). The forward
    (``inputs`` = [x]) into ``out`` of ``oshape``, or the backward ([g, x, y],
    g of ``oshape``) into ``out`` of ``geo``. False, nothing run, where that
    does not apply: the caller converts."""
    hk = _half_kernels(name, be, rows=True)
    if hk is None or geo[1] * geo[2] > _half_fns[3] or not _half_c([out, *inputs]):
        return False
    th = th if hk is be else 0
    if len(inputs) == 1:
        hk.forward(name, inputs[0].reshape(geo), out.reshape(oshape), p, th)
    else:
        g, x, y = inputs
        hk.backward(name, g.reshape(oshape), None if x is None else x.reshape(geo), None if y is None else y.reshape(geo),
                    out.reshape(geo), p, th)
    return True


def _half_prelu(be, inputs: list, out: np.ndarray):
    """The backend whose prelu kernels take the float16 arrays themselves
    (:func:`_half_kernels`: prelu in HALF_FUNCTIONS, with its weight in
    float32) where ``inputs`` (x, or g and x) and ``out`` are float16 and
    C-contiguous, or None: the caller converts."""
    hk = _half_kernels("prelu", be)
    return hk if hk is not None and _half_c([out, *inputs]) else None


def _half_glu(name: str, x: np.ndarray, axis, key: tuple):
    """For glu's fast float16 calls: ``(backend, threads, x's (outer, 2m,
    inner), the forward's (outer, m, inner), its shape)`` where the
    backend's float16 rows take x (:func:`_half_kernels` with ``rows``; a
    row of x at most its HALF_ROW_MAX), or None: x C-contiguous, not empty,
    an ``int`` axis in range whose length is even (else the general path
    converts or raises)."""
    nd = x.ndim
    if type(axis) is not int or not -nd <= axis < nd or not x.flags.c_contiguous:
        return None
    shape = x.shape
    ax = axis + nd if axis < 0 else axis
    n = shape[ax]
    size = x.size
    if n % 2 or not size:
        return None
    geo = (size // n, n, 1) if ax == nd - 1 else (math.prod(shape[:ax]), n, math.prod(shape[ax + 1:]))
    be, th = _backends.pick(key, size)
    hk = _half_kernels(name, be, rows=True)
    if hk is None or n * geo[2] > _half_fns[3]:
        return None
    return hk, th if hk is be else 0, geo, (geo[0], n // 2, geo[2]), shape[:ax] + (n // 2,) + shape[ax + 1:]


def _half_glu_forward(name: str, x: np.ndarray, axis, key: tuple):
    """glu's fast path for an allocating float16 call: the backend's float16
    rows (:func:`_half_glu`) without the general path's checks (a row of
    1000: 5.2 -> about 2.3 us). None where that does not apply."""
    t = _half_glu(name, x, axis, key)
    if t is None:
        return None
    hk, th, geo, ogeo, oshape = t
    res = np.empty(oshape, _F16)
    hk.forward(name, x.reshape(geo), res.reshape(ogeo), {"axis": axis}, th)
    return res


def _half_glu_backward(name: str, g: np.ndarray, x: np.ndarray, axis, key: tuple):
    """:func:`_half_glu_forward` for the backward from x: float16
    grad_output of the forward's shape, C-contiguous."""
    t = _half_glu(name, x, axis, key) if g.dtype is _F16 and g.flags.c_contiguous else None
    if t is None or g.shape != t[4]:
        return None
    hk, th, geo, ogeo, _ = t
    res = np.empty(x.shape, _F16)
    hk.backward(name, g.reshape(ogeo), x.reshape(geo), None, res.reshape(geo), {"axis": axis}, th)
    return res


def _half_prelu_forward(name: str, axis, key: tuple, t: tuple):
    """prelu's fast path for an allocating float16 call, ``t`` = (auto's
    memo entry, x3, result, result3, the weight as float32) from its checks
    (``_half_prelu_f``): the backend's own float16 kernels
    (:func:`_half_kernels`) without the general path's checks (1000
    elements in rows of 64: 15.5 -> 3.1 us). None where they do not take it."""
    hit, x3, res, r3, w = t
    be, th = _half_pick(key, x3.size, hit)
    hk = _half_kernels(name, be)
    if hk is None:
        return None
    hk.forward(name, x3, r3, {"weight": w, "axis": axis}, th if hk is be else 0)
    return res


def _half_prelu_backward(name: str, axis, key: tuple, t: tuple):
    """:func:`_half_prelu_forward` for the backward from x (``t`` from
    ``_half_prelu_b``): (dL/dx, dL/dweight)."""
    hit, g3, x3, res, r3, w = t
    be, th = _half_pick(key, x3.size, hit)
    hk = _half_kernels(name, be)
    if hk is None:
        return None
    gw = hk.backward(name, g3, x3, None, r3, {"weight": w, "axis": axis}, th if hk is be else 0)
    gh = np.empty(gw.shape, _F16)
    if not _half(gw, gh):  # (the compiled converter; NumPy's warns of overflow)
        with np.errstate(over="ignore"):  # beyond float16's range: inf, the rounded value (as _store)
            gh = gw.astype(_F16)
    return res, gh


def _half_rows_of(name: str, n: int, size: int, key: tuple, hit):
    """For the softmax family's fast float16 calls along the last axis, rows
    of n: ``(backend, threads)`` where the backend's float16 rows take them
    (:func:`_half_kernels` with ``rows``; n at most its HALF_ROW_MAX), or None."""
    be, th = _half_pick(key, size, hit)
    hk = _half_kernels(name, be, rows=True)
    if hk is None or n > _half_fns[3]:
        return None
    return hk, th if hk is be else 0


def _half_axis_forward(name: str, x: np.ndarray, axis, key: tuple, t: tuple):
    """The softmax family's fast path for an allocating float16 call along
    the last axis of a C-contiguous x, ``t`` = (auto's memo entry, x3,
    result, result3) from its checks (``_half_axis_f``): the backend's
    float16 rows (:func:`_half_rows_of`) without the general path's checks (a
    row of 1000: 5.4 -> about 2 us). None where that does not apply: the
    caller goes on to the general path."""
    hit, x3, res, r3 = t
    r = _half_rows_of(name, x3.shape[1], x.size, key, hit)
    if r is None:
        return None
    r[0].forward(name, x3, r3, {"axis": axis}, r[1])
    return res


def _half_axis_backward(name: str, g: np.ndarray, x, y, axis, key: tuple, t: tuple):
    """:func:`_half_axis_forward` for the backward: float16 ``grad_output``
    and one of x or y, of one shape, C-contiguous (``t`` from ``_half_axis_b``)."""
    hit, g3, s3, res, r3 = t
    r = _half_rows_of(name, g3.shape[1], g.size, key, hit)
    if r is None:
        return None
    r[0].backward(name, g3, None if x is None else s3, None if y is None else s3, r3, {"axis": axis}, r[1])
    return res


def _half_pick(key: tuple, n: int, hit) -> tuple:
    """(backend, threads) for a float16 call of n elements: auto's memo entry
    ``hit`` (of the float32 key, from ``_half_one`` / ``_half_pair``) where it
    stands, as in the float32 fast paths (:func:`_entry_src`), else the full pick."""
    if hit is None or not _backends._plain or _backends._context.get() is not None:
        return _backends.pick(key, n)
    return hit


def _half_forward(name: str, x: np.ndarray, p: dict, key: tuple, t: tuple) -> np.ndarray:
    """A float16 C-contiguous x's forward, from the public functions' fast
    path, where ``t`` = (auto's memo entry, a float16 result) came with its
    checks (``_half_one``): what ``_forward`` does for it, without its checks.
    Where :func:`_half_kernels` gives a backend, its loops take x and the
    float16 result themselves (relu on 1000 elements 3.9 -> 1.1 us; 1e7 6.8
    -> 0.9 ms); otherwise x to float32, the float32 kernel into a float32
    result, rounded to float16, by ``_half`` itself rather than
    ``_as_kernel`` and ``_store`` (their checks cost 0.2-0.6 us of a 4-6 us
    call on 1000 elements; relu on 1000 elements: 7.1 -> 3.9 us). None
    where neither applies (no compiled converter): the general path."""
    be, th = _half_pick(key, x.size, t[0])
    res = t[1]
    hk = _half_kernels(name, be)
    if hk is not None:
        hk.forward(name, x, res, p, th if hk is be else 0)  # (its loops take any C-contiguous shape)
        return res
    if not _h16():
        return None
    xf = np.empty(x.shape, _F32)
    _half(x, xf)
    of = np.empty(x.shape, _F32)
    be.forward(name, xf.reshape(-1), of.reshape(-1), p, th)
    _half(of, res)
    return res


def _half_backward(name: str, g: np.ndarray, x, y, p: dict, key: tuple, t: tuple) -> np.ndarray:
    """:func:`_half_forward` for a backward: float16 C-contiguous grad_output
    and x (or y) of one shape (``t`` from ``_half_pair``)."""
    s = x if y is None else y
    be, th = _half_pick(key, g.size, t[0])
    res = t[1]
    hk = _half_kernels(name, be)
    if hk is not None:
        hk.backward(name, g, x, y, res, p, th if hk is be else 0)
        return res
    if not _h16():
        return None
    gf, sf, of = np.empty(g.shape, _F32), np.empty(g.shape, _F32), np.empty(g.shape, _F32)
    _half(g, gf)
    _half(s, sf)
    if y is None:
        be.backward(name, gf.reshape(-1), sf.reshape(-1), None, of.reshape(-1), p, th)
    else:
        be.backward(name, gf.reshape(-1), None, sf.reshape(-1), of.reshape(-1), p, th)
    _half(of, res)
    return res


def _half(src: np.ndarray, dst: np.ndarray) -> bool:
    """float16 to float32 or back, src and dst of one shape and both C- or both
    F-contiguous, by the Cython backend's converter (NumPy's astype bit for
    bit, up to NaN payloads; 8 or 16 elements at a time, on the threads for a
    large array, where NumPy's takes one: 1e6 elements 1.6 and 2.4 ms).
    False, nothing written, where it is not built, not usable or the layouts
    differ: the caller then converts with NumPy."""
    convert = _converter()
    if not convert:
        return False
    if src.flags.c_contiguous and dst.flags.c_contiguous:
        order = "C"
    elif src.flags.f_contiguous and dst.flags.f_contiguous:
        order = "F"
    else:
        return False
    return convert(src.reshape(-1, order=order), dst.reshape(-1, order=order))


def _c3(a: np.ndarray | None, kd: np.dtype, shape3: tuple):
    if a is None:
        return None
    if a.dtype != kd or not a.flags.c_contiguous:
        a = _as_kernel(a, kd)
    return a.reshape(shape3)


def _c3_out(out: np.ndarray, kd: np.dtype, shape3: tuple):
    if out.dtype == kd and out.flags.c_contiguous:
        return out.reshape(shape3), None
    tmp = np.empty(shape3, dtype=kd)
    return tmp, lambda: _store(out, tmp.reshape(out.shape))


def _axis_geometry(shape: tuple, axis: int) -> tuple[int, int, int]:
    if not shape:
        return 1, 1, 1
    outer = math.prod(shape[:axis])
    inner = math.prod(shape[axis + 1 :])
    return outer, shape[axis], inner


def _axis_out_shape(spec: Spec, shape: tuple, axis: int, p: dict, fname: str) -> tuple:
    if spec.kind == AXIS:
        return shape
    n = shape[axis] if shape else 1
    if spec.kind == GLU:
        if n % 2:
            raise ValueError(f"{fname}: x.shape[axis={axis}] = {n} must be even (glu splits it in halves)")
        m = n // 2
    else:  # MAXOUT
        k = p["pieces"]
        if n % k:
            raise ValueError(f"{fname}: pieces={k} must divide x.shape[axis={axis}] = {n}")
        m = n // k
    if not shape:
        return ()
    return shape[:axis] + (m,) + shape[axis + 1 :]


def _prelu_weight(weight: Any, fname: str) -> np.ndarray:
    w = _as_array(weight, fname, "weight")
    if w.ndim > 1:
        raise ValueError(f"{fname}: weight must be a scalar or 1-D, got {w.ndim} dimensions")
    if w.size == 0:
        raise ValueError(f"{fname}: weight is empty")
    with np.errstate(all="ignore"):
        if not np.all(np.isfinite(w.astype(np.float64))):
            raise ValueError(f"{fname}: weight must hold finite numbers")
    return w


def _prelu_geometry(x_shape: tuple, w: np.ndarray, axis: int, fname: str) -> tuple[int, int, int]:
    if w.size == 1:
        return 1, 1, math.prod(x_shape)
    if len(x_shape) < 1:
        raise ValueError(f"{fname}: weight has {w.size} elements but x is 0-d (one channel)")
    ax = _normalize_axis(axis, len(x_shape), fname)
    if x_shape[ax] != w.size:
        raise ValueError(f"{fname}: weight has {w.size} elements; x.shape[axis={axis}] = {x_shape[ax]}")
    return _axis_geometry(x_shape, ax)


def _rng(rng: Any, fname: str) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"{fname}: rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def _slopes_array(slopes: Any, shape: tuple, fname: str) -> np.ndarray:
    s = _as_array(slopes, fname, "slopes")
    if s.shape != shape:
        raise ValueError(f"{fname}: slopes has shape {s.shape}; x has shape {shape}")
    return s


def _all_numpy(*arrays) -> bool:
    return all(a is None or type(a) is np.ndarray for a in arrays)


# Per-spec constants for the hot path: the parameter tuples and function names.
_FWD_PARAMS = {s.name: s.forward_params() for s in SPECS}
_BWD_PARAMS = {s.name: s.backward_params() for s in SPECS}


def _contiguous_1d(a: np.ndarray) -> np.ndarray | None:
    """A 1-D view of a C- or F-contiguous array, in memory order; None when it is strided."""
    if a.ndim == 1:
        return a if a.flags.c_contiguous else None
    fl = a.flags
    if fl.c_contiguous or fl.f_contiguous:
        return a.ravel("K")
    return None


def _forward(spec: Spec, x: Any, out: Any, values: dict) -> Any:
    # The in-place hot path: a contiguous, writeable float32/float64 array, elementwise. (The
    # allocating call of that kind never gets here: the public function runs it itself, see
    # _fast_forward_body.)
    if out is x and type(x) is np.ndarray and spec.kind == ELEMENTWISE:
        dt = x.dtype
        if dt is _F32 or dt is _F64:
            n = x.size
            fl = x.flags
            if n and (fl.c_contiguous or fl.f_contiguous) and fl.writeable:
                prm = _FWD_PARAMS[spec.name]
                p = _resolve_params(spec, prm, values, spec.name) if prm else {}
                xf = x if x.ndim == 1 else x.ravel("K")
                be, th = _backends.choose(spec, "forward", dt, n, True)
                be.forward(spec.name, xf, xf, p, th)
                return x
    if not _all_numpy(x, out) and _interop.foreign(x, out):
        return _interop.forward(spec, x, out, values)
    fname = f"fastact.{spec.name}"
    x = _as_array(x, fname, "x")
    p = _resolve_params(spec, _FWD_PARAMS[spec.name], values, fname)
    ct = _float_dtype(x.dtype)
    kd = _kernel_dtype(ct)
    name = spec.name
    kind = spec.kind
    extra = None

    if kind == RRELU:
        if not p["training"]:
            name, spec_run, p = "leaky_relu", get_spec("leaky_relu"), _rrelu_eval(p)
        else:
            spec_run = spec
            if p["slopes"] is not None:
                slopes = _slopes_array(p["slopes"], x.shape, fname)
            else:
                sampled = _rng(p["rng"], fname).uniform(p["lower"], p["upper"], size=x.shape)
                slopes = np.where(x > 0, 1.0, sampled).astype(ct)
            extra = slopes
        out = _check_out(out, x.shape, ct, fname) if out is not None else _new_out(x.shape, ct, x)
        if x.size:
            if extra is not None:
                x, extra = _unalias(out, [x, extra], 0)
                (xf, sf), of, finish = _flat_inputs([x, extra], out, kd)
                p = {"lower": p["lower"], "upper": p["upper"], "training": True, "slopes": sf}
                be, th = _backends.choose(spec_run, "forward", kd, x.size, x.flags.forc)
            else:
                xs = _unalias(out, [x], 0)
                be, th = _backends.choose(spec_run, "forward", kd, x.size, x.flags.forc)
                if _half_call(name, be, th, ct, xs, out, p):  # leaky_relu's
                    return out
                (xf,), of, finish = _flat_inputs(xs, out, kd)
            be.forward(name, xf, of, p, th)
            if finish:
                finish()
        return (out, extra) if extra is not None else out

    if kind == ELEMENTWISE:
        out = _check_out(out, x.shape, ct, fname) if out is not None else _new_out(x.shape, ct, x)
        if x.size:
            xs = _unalias(out, [x], 0)
            be, th = _backends.choose(spec, "forward", kd, x.size, x.flags.forc)
            if _half_call(name, be, th, ct, xs, out, p):
                return out
            (xf,), of, finish = _flat_inputs(xs, out, kd)
            be.forward(name, xf, of, p, th)
            if finish:
                finish()
        return out

    if kind == PRELU:
        w = _prelu_weight(p.pop("weight", values["weight"]), fname)
        geo = _prelu_geometry(x.shape, w, p["axis"], fname)
        out = _check_out(out, x.shape, ct, fname) if out is not None else np.empty(x.shape, ct)
        if x.size:
            (x,) = _unalias(out, [x], 0)
            p["weight"] = np.ascontiguousarray(w.reshape(-1), dtype=kd)
            be, th = _backends.choose(spec, "forward", kd, x.size, x.flags.c_contiguous)
            hk = _half_prelu(be, [x], out) if ct == _F16 else None
            if hk is not None:
                hk.forward(name, x.reshape(geo), out.reshape(geo), p, th if hk is be else 0)
                return out
            x3 = _c3(x, kd, geo)
            o3, finish = _c3_out(out, kd, geo)
            be.forward(name, x3, o3, p, th)
            if finish:
                finish()
        return out

    # along an axis
    axis = _normalize_axis(p["axis"], x.ndim, fname)
    out_shape = _axis_out_shape(spec, x.shape, axis, p, fname)
    out = _check_out(out, out_shape, ct, fname) if out is not None else np.empty(out_shape, ct)
    if x.size and out.size:
        (x,) = _unalias(out, [x], 0)
        outer, n, inner = _axis_geometry(x.shape, axis)
        o3_shape = _axis_geometry(out_shape, axis) if out_shape else (1, 1, 1)
        be, th = _backends.choose(spec, "forward", kd, x.size, x.flags.c_contiguous)
        if (ct == _F16 and (kind == GLU or kind == AXIS and inner == 1)
                and _half_rows_call(name, be, th, (outer, n, inner), o3_shape, [x], out, p)):
            return out
        x3 = _c3(x, kd, (outer, n, inner))
        o3, finish = _c3_out(out, kd, o3_shape)
        be.forward(name, x3, o3, p, th)
        if finish:
            finish()
    return out


def _backward(spec: Spec, g: Any, x: Any, y: Any, out: Any, values: dict) -> Any:
    # The hot path: contiguous float32/float64 grad_output and x (or y) of one dtype and layout.
    src = y if y is not None else x
    if type(g) is np.ndarray and type(src) is np.ndarray and spec.kind == ELEMENTWISE and (out is None or out is g):
        dt = g.dtype
        if (dt is _F32 or dt is _F64) and src.dtype is dt and g.shape == src.shape and g.size:
            gf = _contiguous_1d(g)
            sf = _contiguous_1d(src)
            if gf is not None and sf is not None and g.flags.c_contiguous == src.flags.c_contiguous:
                p = _resolve_params(spec, _BWD_PARAMS[spec.name], values, spec.name + "_backward")
                if y is None or spec.allows_y(p):
                    res = np.empty_like(g) if out is None else g
                    be, th = _backends.choose(spec, "backward" if y is None else "backward_y", dt, g.size, True)
                    if y is None:
                        be.backward(spec.name, gf, sf, None, gf if out is not None else _contiguous_1d(res), p, th)
                    else:
                        be.backward(spec.name, gf, None, sf, gf if out is not None else _contiguous_1d(res), p, th)
                    return res
    if not _all_numpy(g, x, y, out) and _interop.foreign(g, x, y, out):
        return _interop.backward(spec, g, x, y, out, values)
    fname = f"fastact.{spec.name}_backward"
    p = _resolve_params(spec, _BWD_PARAMS[spec.name], values, fname)
    g = _as_array(g, fname, "grad_output")
    name = spec.name
    kind = spec.kind

    if kind == RRELU and not p["training"]:
        name, spec, p = "leaky_relu", get_spec("leaky_relu"), _rrelu_eval(p)
        kind = ELEMENTWISE
        if y is not None:
            raise ValueError(f"{fname}: y= is not accepted: rrelu's backward needs x")

    if y is not None:
        if not spec.allows_y(p):
            rule = spec.y_rule or "its derivative cannot be written from the output"
            raise ValueError(f"{fname}: y= is not accepted for {spec.name} with these parameters ({rule}); pass x=")
        src = _as_array(y, fname, "y")
        x_arr, y_arr, srcname = None, src, "y"
    elif x is not None:
        src = _as_array(x, fname, "x")
        x_arr, y_arr, srcname = src, None, "x"
    else:
        raise TypeError(f"{fname}: pass the forward's input x=" + (" or its output y=" if spec.y_ok else ""))

    ct = np.result_type(_float_dtype(g.dtype), _float_dtype(src.dtype))
    kd = _kernel_dtype(ct)

    if kind in (ELEMENTWISE, RRELU):
        if g.shape != src.shape:
            raise ValueError(f"{fname}: grad_output has shape {g.shape}; {srcname} has shape {src.shape}")
        out = _check_out(out, src.shape, ct, fname) if out is not None else _new_out(src.shape, ct, src)
        slopes = None
        if kind == RRELU:
            if p["slopes"] is None:
                raise ValueError(f"{fname}: slopes is required in training mode (the forward returned it)")
            slopes = _slopes_array(p["slopes"], src.shape, fname)
        if src.size:
            g, x_arr, y_arr, slopes = _unalias(out, [g, x_arr, y_arr, slopes], 0)
            be, th = _backends.choose(spec, "backward" if y_arr is None else "backward_y", kd, src.size, src.flags.forc)
            if slopes is None and _half_call(name, be, th, ct, [g, x_arr, y_arr], out, p):
                return out
            (gf, xf, yf, sf), of, finish = _flat_inputs([g, x_arr, y_arr, slopes], out, kd)
            if sf is not None:
                p = dict(p, slopes=sf)
            be.backward(name, gf, xf, yf, of, p, th)
            if finish:
                finish()
        return out

    if kind == PRELU:
        w = _prelu_weight(values["weight"], fname)
        p.pop("weight", None)
        if g.shape != src.shape:
            raise ValueError(f"{fname}: grad_output has shape {g.shape}; x has shape {src.shape}")
        geo = _prelu_geometry(src.shape, w, p["axis"], fname)
        out = _check_out(out, src.shape, ct, fname) if out is not None else np.empty(src.shape, ct)
        if not src.size:
            return out, np.zeros(w.shape, ct)
        g, x_arr = _unalias(out, [g, x_arr], 0)
        p["weight"] = np.ascontiguousarray(w.reshape(-1), dtype=kd)
        be, th = _backends.choose(spec, "backward", kd, src.size, src.flags.c_contiguous)
        hk = _half_prelu(be, [g, x_arr], out) if ct == _F16 else None
        if hk is not None:
            gw = hk.backward(name, g.reshape(geo), x_arr.reshape(geo), None, out.reshape(geo), p,
                             th if hk is be else 0)
        else:
            o3, finish = _c3_out(out, kd, geo)
            gw = be.backward(name, _c3(g, kd, geo), _c3(x_arr, kd, geo), None, o3, p, th)
            if finish:
                finish()
        with np.errstate(over="ignore"):  # beyond float16's range: inf, the rounded value (as _store)
            gw = np.asarray(gw, dtype=ct)
        return out, gw.reshape(w.shape)

    # along an axis
    axis = _normalize_axis(p["axis"], src.ndim, fname)
    fwd_shape = _axis_out_shape(spec, src.shape, axis, p, fname) if x_arr is not None else src.shape
    if g.shape != fwd_shape:
        raise ValueError(f"{fname}: grad_output has shape {g.shape}; the forward's output has shape {fwd_shape}")
    out = _check_out(out, src.shape, ct, fname) if out is not None else np.empty(src.shape, ct)
    if src.size and g.size:
        g, x_arr, y_arr = _unalias(out, [g, x_arr, y_arr], 0)
        geo = _axis_geometry(src.shape, axis)
        geo_g = _axis_geometry(g.shape, axis) if g.shape else (1, 1, 1)
        be, th = _backends.choose(spec, "backward" if y_arr is None else "backward_y", kd, src.size, src.flags.c_contiguous)
        if (ct == _F16 and (kind == GLU or kind == AXIS and geo[2] == 1)
                and _half_rows_call(name, be, th, geo, geo_g, [g, x_arr, y_arr], out, p)):
            return out
        o3, finish = _c3_out(out, kd, geo)
        be.backward(name, _c3(g, kd, geo_g), _c3(x_arr, kd, geo), _c3(y_arr, kd, geo), o3, p, th)
        if finish:
            finish()
    return out


# ------------------------------------------------------- public functions


def _signature_parts(params, backward: bool):
    pos, kw = [], []
    for prm in params:
        (pos if prm.positional else kw).append(prm)
    return pos, kw


def _fast_ns(spec: Spec, ns: dict, directions) -> None:
    """What the inlined fast paths read: constants, and per direction and dtype the tuning key
    ``_k<tag>`` and auto's memo ``_m<tag>`` (tag: f forward, x backward from x, y backward from y; 32 or 64)."""
    ns.update(_ndarray=np.ndarray, _F32=_F32, _F64=_F64, _empty_like=np.empty_like,
              _pick=_backends.pick, _B=_backends, _ctx=_backends._context.get, _name=spec.name)
    for d in directions:
        for c, bits in (("f", "32"), ("d", "64")):
            tag = {"forward": "f", "backward": "x", "backward_y": "y"}[d] + bits
            key = (spec.name, d, c, True)
            ns["_k" + tag], ns["_m" + tag] = key, _backends.memo(key)


_PARAM_MEMO_MAX = 64  # parameter settings remembered per public function


def _rrelu_eval(p: dict) -> dict:
    """rrelu's checked parameters in evaluation mode: leaky_relu's at the mean slope."""
    return {"negative_slope": 0.5 * (p["lower"] + p["upper"])}


def _check_memo(memo: dict, key: tuple, spec: Spec, params: tuple, values: dict, fname: str,
                derive: Callable | None = None) -> dict:
    """``_resolve_params``, remembered under ``key`` (the raw values and their types) when it is hashable.

    Validating and converting parameters costs 1-1.8 us a call (hardtanh's
    backward: 2.7 us on one element against relu's 0.9), more than the rest of
    the dispatch; a training loop passes the same values every time. The key
    holds each value's type beside it, since 1, 1.0 and True hash alike and are
    not all valid. Only settings that passed are remembered; the dict is shared
    between calls, so backends must not modify it (docs/backend-contract.md).
    ``derive``: what is remembered (and returned) is ``derive`` of the checked parameters.
    """
    p = _resolve_params(spec, params, values, fname)
    if derive is not None:
        p = derive(p)
    try:
        if len(memo) < _PARAM_MEMO_MAX:
            memo[key] = p
    except TypeError:  # an unhashable value (a 0-d array): checked every time
        pass
    return p


def _params_src(params, values: str, fname: str, pad: str) -> str:
    # the validated parameters: from the memo when these values (of these types) passed before
    names = [prm.name for prm in params]
    key = "(" + ", ".join(names + [f"type({n})" for n in names]) + ",)"
    return (f"{pad}try:\n"
            f"{pad}    p = _pmemo[{key}]\n"
            f"{pad}except (KeyError, TypeError):\n"
            f"{pad}    p = _check_memo(_pmemo, {key}, _spec, _prm, {values}, {fname})\n")


def _entry_src(tag: str, s: str, pad: str) -> str:
    # `hit` came with the checks (_one, _pair, _axis_*): the memo entry, or None when the size is not
    # resolved yet; it stands only under plain auto, else the full pick on the array `s`
    return (f"{pad}if hit is None or not _B._plain or _ctx() is not None:\n"
            f"{pad}    hit = _pick(_k{tag}32 if {s}.dtype is _F32 else _k{tag}64, {s}.size)\n"
            f"{pad}be, th = hit\n")


def _fast_forward_body(spec: Spec, params, values: str, ns: dict) -> str:
    """The call on a contiguous float32/float64 array, inlined into the public function.

    A one-element call is all overhead, so this path does no more than one
    call of ``_one`` (the checks that select it and auto's memo read, in C
    when ``fastact._fastpath`` is compiled), the parameter checks, ``_pick``
    when the memo cannot answer, and the kernel call. ``out=`` an array of
    x's dtype, shape and layout, writeable and not overlapping x, takes the
    same path with ``_into`` for the checks (it took 5.2 us on one element
    through ``_forward``, against 0.8 allocating). Everything else (in-place,
    other ``out=``, other dtypes and layouts, foreign arrays) goes on to
    ``_forward``, except an allocating call on a C-contiguous float16 x where
    the converter is built: :func:`_half_forward`.
    """
    _fast_ns(spec, ns, ("forward",))
    ns.update(_check_memo=_check_memo, _pmemo={}, _prm=tuple(params), _fname=spec.name, _one=_one, _into=_into,
              _h1=_half_one, _half_forward=_half_forward)
    p = _params_src(params, values, "_fname", " " * 8) if params else " " * 8 + "p = {}\n"
    return (
        "    hit = _one(x, _mf32, _mf64) if out is None else _into(x, out, _mf32, _mf64)\n"
        "    if hit is not False:\n"
        + p
        + _entry_src("f", "x", " " * 8)
        + "        res = _empty_like(x) if out is None else out\n"
        "        if x.ndim == 1:\n"
        "            be.forward(_name, x, res, p, th)\n"
        "        else:\n"
        "            be.forward(_name, x.ravel('K'), res.ravel('K'), p, th)\n"
        "        return res\n"
        "    t = _h1(x, _mf32) if out is None else False\n"
        "    if t is not False:\n"
        + p
        + "        res = _half_forward(_name, x, p, _kf32, t)\n"
        "        if res is not None:\n"
        "            return res\n"
    )


def _fast_backward_body(spec: Spec, params, values: str, ns: dict) -> str:
    """The backward on contiguous float32/float64 arrays, inlined into the public function.

    ``grad_output`` and ``x`` (or ``y``) of one dtype, shape and layout (both
    C-contiguous, or both F-contiguous), and no ``out=`` or an ``out=`` of
    the same dtype, shape and layout, writeable and overlapping neither
    input: as in :func:`_fast_forward_body`, one call of ``_pair`` for the
    checks and the memo read (one more for ``out=``), the parameter checks
    and the kernel call. ``y=`` where the spec refuses it (or its parameters
    do) goes on to ``_backward``, which raises; so does every other case.
    """
    _fast_ns(spec, ns, ("backward", "backward_y"))
    ns.update(_check_memo=_check_memo, _pmemo={}, _prm=tuple(params), _fname=spec.name + "_backward",
              _allows=spec.allows_y, _pair=_pair, _into2=_into2, _h2=_half_pair,
              _half_backward=_half_backward)

    def p(pad: str) -> str:
        return _params_src(params, values, "_fname", pad) if params else pad + "p = {}\n"

    def run(from_y: bool, pad: str) -> str:
        s = "y" if from_y else "x"  # the array, and its tag in the namespace
        xs, ys = ("None", "y") if from_y else ("x", "None")
        xr, yr = ("None", "y.ravel('K')") if from_y else ("x.ravel('K')", "None")
        return (
            _entry_src(s, s, pad)
            + f"{pad}res = _empty_like(grad_output) if out is None else out\n"
            f"{pad}if {s}.ndim == 1:\n"
            f"{pad}    be.backward(_name, grad_output, {xs}, {ys}, res, p, th)\n"
            f"{pad}else:\n"
            f"{pad}    be.backward(_name, grad_output.ravel('K'), {xr}, {yr}, res.ravel('K'), p, th)\n"
            f"{pad}return res\n"
        )

    body = (
        "    if y is None:\n"
        "        hit = _pair(grad_output, x, _mx32, _mx64) if out is None else _into2(grad_output, x, out, _mx32, _mx64)\n"
        "        if hit is not False:\n"
        + p(" " * 12)
        + run(False, " " * 12)
    )
    if spec.y_ok:
        rule = spec.y_ok is not True  # a rule on the parameters; where it refuses, _backward raises
        body += ("    else:\n"
                 "        hit = _pair(grad_output, y, _my32, _my64) if out is None else _into2(grad_output, y, out, _my32, _my64)\n"
                 "        if hit is not False:\n"
                 + p(" " * 12)
                 + ("            if _allows(p):\n" if rule else "")
                 + run(True, " " * (16 if rule else 12)))
    # float16 grad_output and x (or y), C-contiguous, allocating: _half_backward
    body += ("    t = _h2(grad_output, x if y is None else y, _mx32 if y is None else _my32) if out is None else False\n"
             "    if t is not False:\n"
             + p(" " * 8)
             + "        if y is None:\n"
             "            res = _half_backward(_name, grad_output, x, None, p, _kx32, t)\n"
             "            if res is not None:\n"
             "                return res\n")
    if spec.y_ok:  # where a rule on the parameters refuses y=, _backward raises
        cond = "        if _allows(p):\n" if spec.y_ok is not True else ""
        pad = " " * (12 if cond else 8)
        body += (cond + f"{pad}res = _half_backward(_name, grad_output, None, y, p, _ky32, t)\n"
                 f"{pad}if res is not None:\n{pad}    return res\n")
    return body


def _fast_axis_forward_body(spec: Spec, params, values: str, ns: dict) -> str:
    """softmax, log_softmax, softmin, sparsemax: the call on a C-contiguous float32/float64 array.

    The general path (``_forward``) validates, normalises and reshapes in
    about 5 us; a row of 1e3 elements takes the kernel 1.5 us. This path makes
    one call of ``_axis_forward`` (in C when ``fastact._fastpath`` is
    compiled): the checks that select it (an ndarray of native
    float32/float64, not empty, C-contiguous, an ``int`` axis in range, and
    no ``out=`` or one of x's dtype and shape, C-contiguous, writeable and
    apart from x), the memo read, the (outer, n, inner) views and the result;
    then the kernel call. Every other case goes on to ``_forward``, which
    converts or raises (``out=`` there: 10.1 us for a row of 1e3 on one
    thread, against 2.1 here).
    """
    _fast_ns(spec, ns, ("forward",))
    ns.update(_axf=_axis_forward, _ha1=_half_axis_f, _haf=_half_axis_forward)
    return (
        "    t = _axf(x, axis, _mf32, _mf64, out)\n"
        "    if t is not False:\n"
        "        hit, x3, res, r3 = t\n"
        + _entry_src("f", "x", " " * 8)
        + "        be.forward(_name, x3, r3, {'axis': axis}, th)\n"
        "        return res\n"
        "    t = _ha1(x, axis, _mf32) if out is None else False\n"
        "    if t is not False:\n"
        "        res = _haf(_name, x, axis, _kf32, t)\n"
        "        if res is not None:\n"
        "            return res\n"
    )


def _fast_axis_backward_body(spec: Spec, params, values: str, ns: dict) -> str:
    """The backward of the softmax family on C-contiguous arrays, as :func:`_fast_axis_forward_body`.

    ``grad_output`` and one of ``x`` or ``y`` (not both: with both, ``_backward``
    checks ``x`` too) of one native float dtype and shape, both C-contiguous;
    an ``out=`` as the forward's, apart from both.
    """
    assert spec.y_ok is True  # the whole family accepts y=; a parameter rule would need spec.allows_y here
    _fast_ns(spec, ns, ("backward", "backward_y"))
    ns.update(_axb=_axis_backward, _ha2=_half_axis_b, _hab=_half_axis_backward)

    def run(from_y: bool) -> str:
        s = "y" if from_y else "x"  # the array, and its tag in the namespace
        xs, ys = ("None", "s3") if from_y else ("s3", "None")
        return (
            f"        t = _axb(grad_output, {s}, axis, _m{s}32, _m{s}64, out)\n"
            "        if t is not False:\n"
            "            hit, g3, s3, res, r3 = t\n"
            + _entry_src(s, s, " " * 12)
            + f"            be.backward(_name, g3, {xs}, {ys}, r3, {{'axis': axis}}, th)\n"
            "            return res\n"
        )

    return (
        "    if y is None:\n"
        + run(False)
        + "    elif x is None:\n"
        + run(True)
        + "    if out is None and (x is None) != (y is None):\n"
        "        t = _ha2(grad_output, x if y is None else y, axis, _mx32 if y is None else _my32)\n"
        "        if t is not False:\n"
        "            res = _hab(_name, grad_output, x, y, axis, _kx32 if y is None else _ky32, t)\n"
        "            if res is not None:\n"
        "                return res\n"
    )


def _shrink_parts(spec: Spec) -> tuple[str, str, str]:
    """glu and maxout: (what divides the axis, the kernel's parameters, the extra checks of the head)."""
    if spec.kind == GLU:
        return "2", "{'axis': axis}", ""
    return "pieces", "{'pieces': pieces, 'axis': axis}", " and type(pieces) is int"


def _fast_shrink_forward_body(spec: Spec, params, values: str, ns: dict) -> str:
    """glu and maxout: the allocating forward on a C-contiguous float32/float64 array.

    As :func:`_fast_axis_forward_body`: one call of ``_shrink_forward`` (in C
    when ``fastact._fastpath`` is compiled) checks x and the axis, reads the
    memo and makes the (outer, n, inner) views and the result, whose axis is
    the input's divided by 2 (glu) or ``pieces`` (maxout). In Python these
    steps took 1.4 us of glu's 1.7 on a row of 1e3 (the kernel 0.3). An
    axis that does not divide goes on to ``_forward``, which raises.
    """
    _fast_ns(spec, ns, ("forward",))
    ns.update(_shf=_shrink_forward, _F16=_F16, _hgf=_half_glu_forward)
    div, kparams, extra = _shrink_parts(spec)
    return (
        f"    if out is None{extra}:\n"
        f"        t = _shf(x, axis, {div}, _mf32, _mf64)\n"
        "        if t is not False:\n"
        "            hit, x3, res, r3 = t\n"
        + _entry_src("f", "x", " " * 12)
        + f"            be.forward(_name, x3, r3, {kparams}, th)\n"
        "            return res\n"
        + ("        if type(x) is _ndarray and x.dtype is _F16:\n"
           "            res = _hgf(_name, x, axis, _kf32)\n"
           "            if res is not None:\n"
           "                return res\n" if spec.kind == GLU else "")
    )


def _fast_shrink_backward_body(spec: Spec, params, values: str, ns: dict) -> str:
    """glu and maxout: the allocating backward from x on C-contiguous arrays (see :func:`_fast_shrink_forward_body`)."""
    _fast_ns(spec, ns, ("backward",))
    ns.update(_shb=_shrink_backward, _F16=_F16, _hgb=_half_glu_backward)
    div, kparams, extra = _shrink_parts(spec)
    return (
        f"    if out is None and y is None{extra}:\n"
        f"        t = _shb(grad_output, x, axis, {div}, _mx32, _mx64)\n"
        "        if t is not False:\n"
        "            hit, g3, x3, res, r3 = t\n"
        + _entry_src("x", "x", " " * 12)
        + f"            be.backward(_name, g3, x3, None, r3, {kparams}, th)\n"
        "            return res\n"
        + ("        if type(x) is _ndarray and type(grad_output) is _ndarray and x.dtype is _F16:\n"
           "            res = _hgb(_name, grad_output, x, axis, _kx32)\n"
           "            if res is not None:\n"
           "                return res\n" if spec.kind == GLU else "")
    )


def _fast_prelu_forward_body(spec: Spec, params, values: str, ns: dict) -> str:
    """prelu: the allocating forward on a C-contiguous x and a 1-D weight of
    x's float32/float64 dtype, as :func:`_fast_axis_forward_body`, with the
    weight's checks in the same call (``_prelu_forward``); of float16,
    :func:`_half_prelu_forward`."""
    _fast_ns(spec, ns, ("forward",))
    ns.update(_prf=_prelu_forward, _hp1=_half_prelu_f, _hpf=_half_prelu_forward)
    return (
        "    if out is None:\n"
        "        t = _prf(x, weight, axis, _mf32, _mf64)\n"
        "        if t is not False:\n"
        "            hit, x3, res, r3 = t\n"
        + _entry_src("f", "x", " " * 12)
        + "            be.forward(_name, x3, r3, {'weight': weight, 'axis': axis}, th)\n"
        "            return res\n"
        "        t = _hp1(x, weight, axis, _mf32)\n"
        "        if t is not False:\n"
        "            res = _hpf(_name, axis, _kf32, t)\n"
        "            if res is not None:\n"
        "                return res\n"
    )


def _fast_prelu_backward_body(spec: Spec, params, values: str, ns: dict) -> str:
    """prelu: the allocating backward on C-contiguous arrays and a 1-D weight
    (``_prelu_backward``); returns (dL/dx, dL/dweight); of float16,
    :func:`_half_prelu_backward`."""
    _fast_ns(spec, ns, ("backward",))
    ns.update(_prb=_prelu_backward, _asarray=np.asarray, _hp2=_half_prelu_b, _hpb=_half_prelu_backward)
    return (
        "    if out is None and y is None:\n"
        "        t = _prb(grad_output, x, weight, axis, _mx32, _mx64)\n"
        "        if t is not False:\n"
        "            hit, g3, x3, res, r3 = t\n"
        + _entry_src("x", "x", " " * 12)
        + "            gw = be.backward(_name, g3, x3, None, r3, {'weight': weight, 'axis': axis}, th)\n"
        "            return res, _asarray(gw, dtype=x.dtype).reshape(weight.shape)\n"
        "        t = _hp2(grad_output, x, weight, axis, _mx32)\n"
        "        if t is not False:\n"
        "            t = _hpb(_name, axis, _kx32, t)\n"
        "            if t is not None:\n"
        "                return t\n"
    )


def _fast_rrelu_body(elementwise_body: Callable) -> Callable:
    """rrelu's fast path: in evaluation mode (``training is False``) it is
    leaky_relu at the mean slope, so it takes leaky_relu's inlined path, its
    kernels and its tuning, with rrelu's checks of the parameters (and rrelu's
    name in their errors). Training mode, and every call the path does not
    take, goes on to ``_forward`` / ``_backward``. Through those, evaluation
    took 9 us on 1000 float32 elements, against 0.9 us for leaky_relu.
    """
    def build(spec: Spec, params, values: str, ns: dict) -> str:
        body = elementwise_body(spec, params, values, ns)
        directions = ("backward",) if elementwise_body is _fast_backward_body else ("forward",)
        _fast_ns(get_spec("leaky_relu"), ns, directions)  # leaky_relu's _name, tuning keys and memos
        ns["_check_memo"] = functools.partial(_check_memo, derive=_rrelu_eval)  # rrelu's checks, leaky_relu's parameters
        return "    if training is False:\n" + "".join("    " + line for line in body.splitlines(True))
    return build


# kind -> the builder of the public function's inlined fast path
_FAST_FORWARD = {ELEMENTWISE: _fast_forward_body, AXIS: _fast_axis_forward_body, GLU: _fast_shrink_forward_body,
                 MAXOUT: _fast_shrink_forward_body, PRELU: _fast_prelu_forward_body,
                 RRELU: _fast_rrelu_body(_fast_forward_body)}
_FAST_BACKWARD = {ELEMENTWISE: _fast_backward_body, AXIS: _fast_axis_backward_body, GLU: _fast_shrink_backward_body,
                  MAXOUT: _fast_shrink_backward_body, PRELU: _fast_prelu_backward_body,
                  RRELU: _fast_rrelu_body(_fast_backward_body)}


def _make(spec: Spec, backward: bool) -> Callable:
    params = spec.backward_params() if backward else spec.forward_params()
    pos, kw = _signature_parts(params, backward)
    ns: dict[str, Any] = {"_spec": spec, "_run": _backward if backward else _forward, "_REQ": REQUIRED}
    args = []
    if backward:
        args.append("grad_output")
        args.append("x=None")
        for prm in pos:  # after x=None every positional one needs a default
            ns[f"_d_{prm.name}"] = prm.default
            args.append(f"{prm.name}=_d_{prm.name}")
        args.append("*")
        args.append("y=None")
    else:
        args.append("x")
        for prm in pos:
            if prm.required:
                args.append(prm.name)
            else:
                ns[f"_d_{prm.name}"] = prm.default
                args.append(f"{prm.name}=_d_{prm.name}")
        args.append("*")
    for prm in kw:
        if prm.required and not backward:
            args.append(prm.name)
        else:
            ns[f"_d_{prm.name}"] = prm.default
            args.append(f"{prm.name}=_d_{prm.name}")
    args.append("out=None")
    values = "{" + ", ".join(f"{prm.name!r}: {prm.name}" for prm in params) + "}"
    fn_name = spec.name + ("_backward" if backward else "")
    fast = (_FAST_BACKWARD if backward else _FAST_FORWARD).get(spec.kind)
    run = f"_run(_spec, grad_output, x, y, out, {values})" if backward else f"_run(_spec, x, out, {values})"
    body = (fast(spec, params, values, ns) if fast else "") + f"    return {run}\n"
    src = f"def {fn_name}({', '.join(args)}):\n{body}"
    exec(src, ns)  # noqa: S102 - generated from the registry, no user input
    fn = ns[fn_name]
    fn.__doc__ = spec.docstring("backward" if backward else "forward")
    fn.__module__ = "fastact"
    fn.__qualname__ = fn_name
    return fn


def make_public_functions() -> dict[str, Callable]:
    funcs = {}
    for spec in SPECS:
        funcs[spec.name] = _make(spec, backward=False)
        funcs[spec.name + "_backward"] = _make(spec, backward=True)
    return funcs


FUNCTIONS = make_public_functions()
FORWARD = {s.name: FUNCTIONS[s.name] for s in SPECS}
BACKWARD = {s.name: FUNCTIONS[s.name + "_backward"] for s in SPECS}


def forward(name: str, x: Any, **params: Any) -> Any:
    """Run the forward of the activation called ``name``: ``fastact.forward("gelu", x, approximate="tanh")``."""
    spec = get_spec(name)
    return FORWARD[spec.name](x, **params)


def backward(name: str, grad_output: Any, x: Any = None, *, y: Any = None, **params: Any) -> Any:
    """Run the backward of ``name``: ``fastact.backward("sigmoid", g, y=y)``."""
    spec = get_spec(name)
    return BACKWARD[spec.name](grad_output, x, y=y, **params)


def explain(name: str, x: Any = None, backward: bool = False, *, y: Any = None, **params: Any) -> dict:
    """Which backend and how many threads ``fastact.<name>(x, **params)`` would use, and why.

    With ``backward=True``, the same for ``<name>_backward`` with an input like
    ``x``; with ``y=`` (which implies the backward), for ``<name>_backward(g, y=y)``,
    the backward computed from the forward's output -- a different kernel, with
    its own entry in the tuning table (direction ``backward_y``). Returns a
    dict: ``backend``, ``threads``, ``reason`` (a tuned table entry, the
    built-in default, forced by ``use_backend``/``set_backend``/
    ``FASTACT_BACKEND``, or a fallback because a backend is unavailable), and
    the ``key`` the dispatcher looked up. Runs nothing.
    """
    spec = get_spec(name)
    fname = f"fastact.explain({name!r})"
    from_y = y is not None
    backward = backward or from_y
    if from_y:
        arr = _as_array(y, fname, "y")
    elif x is not None:
        arr = _as_array(x, fname, "x")
    else:
        raise TypeError(f"{fname}: pass x (an input like the call's) or, for the backward from the output, y=")
    direction = "backward_y" if from_y else "backward" if backward else "forward"
    values = {p.name: p.default for p in (spec.backward_params() if backward else spec.forward_params())}
    values.update(params)
    if from_y and not spec.allows_y(values):  # as the backward itself refuses it
        rule = spec.y_rule or "its derivative cannot be written from the output"
        raise ValueError(f"{fname}: y= is not accepted for {spec.name} with these parameters ({rule}); pass x=")
    if spec.kind == RRELU and not values.get("training", False):
        spec = get_spec("leaky_relu")
    kd = _kernel_dtype(_float_dtype(arr.dtype))
    contiguous = bool(arr.flags.forc if spec.elementwise else arr.flags.c_contiguous)
    info = _backends.explain_choice(spec, direction, kd, arr.size, contiguous)
    info["key"] = {
        "function": spec.name,
        "direction": direction,
        "dtype": kd.name,
        "size": int(arr.size),
        "layout": "contiguous" if contiguous else "strided",
    }
    if arr.dtype != kd:
        info["reason"] += f"; {arr.dtype} input is computed in {kd.name}"
    return info
