"""Lazy dask arrays in, lazy dask arrays out, computed block by block by fastact's kernels.

Every block runs the ordinary public NumPy function (``_api.FORWARD[name]`` /
``BACKWARD[name]``), so a block gets exactly the checks, dtype rules and
kernels of a NumPy call. What this module adds is the block structure:

- elementwise functions (and rrelu) keep the input's chunks;
- along-axis functions (softmax family, glu, maxout) first rechunk so that the
  axis lies in one chunk -- a row must be seen whole -- and glu/maxout shrink
  that chunk;
- prelu's forward and grad_input are blockwise with the weight sliced to each
  block's channels; grad_weight is a reduction: each block's partial sums,
  added up in float64;
- rrelu in training mode samples its slopes with ``dask.array.random`` (seeded
  from ``rng``), so ``(y, slopes)`` are both lazy and the slopes can be passed
  to ``rrelu_backward`` like the NumPy ones.

Arguments are checked when the function is called, not when the graph is
computed: the NumPy function is run once on a tiny stand-in with the real
dtypes and the real length of the axis that matters, so every error the NumPy
call would raise (bad parameter, odd glu axis, wrong weight length, y= not
allowed, ...) is raised right away.

The backend in effect at call time (``fastact.use_backend``) is recorded in the
graph and used by the workers, so a lazily computed result does not depend on
where or when it is computed.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import dask.array as da
import numpy as np

from . import _api, _backends
from ._interop import TORCH, _kind, tensor_to_numpy
from ._registry import ELEMENTWISE, PRELU, REQUIRED, RRELU, Spec

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)


# ------------------------------------------------------------ block tasks
# Module-level functions (bound with functools.partial) so the graph pickles by
# reference to worker processes.


def _fwd_block(name: str, backend: str, params: dict, xb: np.ndarray) -> np.ndarray:
    with _backends.use_backend(backend):
        return _api.FORWARD[name](xb, **params)


def _bwd_block(name: str, backend: str, params: dict, use_y: bool, gb: np.ndarray, sb: np.ndarray, *extra) -> np.ndarray:
    p = dict(params)
    if extra:  # rrelu training: the slopes block
        p["slopes"] = extra[0]
    with _backends.use_backend(backend):
        if use_y:
            return _api.BACKWARD[name](gb, y=sb, **p)
        return _api.BACKWARD[name](gb, sb, **p)


def _rrelu_fwd_block(backend: str, params: dict, xb: np.ndarray, sb: np.ndarray) -> np.ndarray:
    with _backends.use_backend(backend):
        return _api.FORWARD["rrelu"](xb, **params, slopes=sb)[0]


def _prelu_fwd_block(backend: str, params: dict, xb: np.ndarray, wb: np.ndarray) -> np.ndarray:
    with _backends.use_backend(backend):
        return _api.FORWARD["prelu"](xb, wb.reshape(-1), **params)


def _prelu_bwd_block(backend: str, params: dict, ct: np.dtype, gb: np.ndarray, xb: np.ndarray, wb: np.ndarray) -> np.ndarray:
    """(grad_input, partial grad_weight) of one block, packed in a 1-element object array.

    Packing both results lets one kernel call feed two dask arrays. float16 is
    run in float32 (what the NumPy path computes it in anyway, so grad_input is
    identical once stored as float16) to keep the partial sums unrounded.
    """
    if ct == _F16:
        gb, xb = gb.astype(_F32), xb.astype(_F32)
    with _backends.use_backend(backend):
        gi, gw = _api.BACKWARD["prelu"](gb, xb, wb.reshape(-1), **params)
    box = np.empty(1, dtype=object)
    box[0] = (gi.astype(ct, copy=False), np.asarray(gw, dtype=np.float64).reshape(-1))
    return box.reshape((1,) * gb.ndim)


def _unbox_first(box: np.ndarray) -> np.ndarray:
    return box.flat[0][0]


def _unbox_second(shape: tuple, box: np.ndarray) -> np.ndarray:
    return box.flat[0][1].reshape(shape)


# ---------------------------------------------------------------- helpers


def _meta(ndim: int, dtype) -> np.ndarray:
    return np.empty((0,) * ndim, dtype=dtype)


def _to_numpy_like(a: Any, fname: str, argname: str) -> Any:
    if _kind(a) == TORCH:
        return tensor_to_numpy(a, fname, argname)
    return a


def _as_dask(a: Any, fname: str, argname: str, chunks=None) -> da.Array | None:
    if a is None:
        return None
    if isinstance(a, da.Array):
        arr = a
    else:
        a = np.asarray(_to_numpy_like(a, fname, argname))
        # chunked like the array it goes with, when it has that array's shape
        fits = chunks is not None and tuple(sum(c) for c in chunks) == a.shape
        arr = da.from_array(a, chunks=chunks if fits else "auto")
    if any(math.isnan(s) for s in arr.shape):
        raise ValueError(f"{fname}: {argname} has unknown chunk sizes; call compute_chunk_sizes() on it first")
    return arr


def _norm_axis(axis: Any, ndim: int) -> int | None:
    """The axis normalised, or None when it is not a valid int (the check then reports it)."""
    try:
        a = int(axis)
    except (TypeError, ValueError):
        return None
    if isinstance(axis, bool):
        return None
    nd = max(ndim, 1)
    return a % nd if -nd <= a < nd else None


def _small(a: da.Array | None, keep: int | None) -> np.ndarray | None:
    """A stand-in for ``a`` with its dtype and ndim: length kept on axis ``keep``, 0 elsewhere.

    A 0-d array stays 0-d (one element). Running the NumPy function on these
    costs next to nothing and raises every error the full call would.
    """
    if a is None:
        return None
    if a.ndim == 0:
        return np.zeros((), dtype=a.dtype)
    shape = tuple(int(s) if i == keep else 0 for i, s in enumerate(a.shape))
    return np.zeros(shape, dtype=a.dtype)


def _check_same_shape(fname: str, named: list, keep: int | None) -> None:
    """Shapes must agree off the key axis; the stand-ins only keep the key axis, so check the rest here."""
    base_name, base = named[0]
    for name, a in named[1:]:
        if a is None:
            continue
        same = a.ndim == base.ndim and all(
            i == keep or int(s) == int(t) for i, (s, t) in enumerate(zip(a.shape, base.shape))
        )
        if not same:
            raise ValueError(f"{fname}: {name} has shape {a.shape}; {base_name} has shape {base.shape}")


def _params(values: dict, drop=()) -> dict:
    return {k: v for k, v in values.items() if k not in drop}


def _no_out(out: Any, fname: str) -> None:
    if out is not None:
        raise TypeError(
            f"{fname}: out= is not supported with dask arrays (they are immutable); use the returned lazy array, "
            "or dask.array.store() it into a NumPy array"
        )


def _rrelu_training(values: dict) -> bool:
    # called after the eager check, which has made sure training is a bool
    return bool(values.get("training"))


# ---------------------------------------------------------------- forward


def forward(spec: Spec, x: Any, out: Any, values: dict) -> Any:
    fname = f"fastact.{spec.name}"
    _no_out(out, fname)
    x = _as_dask(x, fname, "x")
    backend = _backends.get_backend()
    kind = spec.kind

    if kind == PRELU:
        return _prelu_forward(spec, x, values, backend, fname)

    keep = _norm_axis(values.get("axis"), x.ndim) if spec.along_axis else None
    vals = dict(values)
    slopes = None
    if kind == RRELU and vals.get("slopes") is not None:
        slopes = _as_dask(vals["slopes"], fname, "slopes", chunks=x.chunks)
        _check_same_shape(fname, [("x", x), ("slopes", slopes)], None)
        vals["slopes"] = _small(slopes, None)
    # the eager check, which also gives the result dtype
    probe = _api.FORWARD[spec.name](_small(x, keep), **vals)
    probe = probe[0] if isinstance(probe, tuple) else probe
    ct = probe.dtype

    if kind == RRELU and _rrelu_training(values):
        if slopes is None:
            slopes = _sample_slopes(x, values, ct)
        else:
            slopes = slopes.rechunk(x.chunks)
        params = _params(values, drop=("slopes", "rng"))
        y = da.map_blocks(partial(_rrelu_fwd_block, backend, params), x, slopes, dtype=ct, meta=_meta(x.ndim, ct))
        return y, slopes

    if kind in (ELEMENTWISE, RRELU):
        fn = partial(_fwd_block, spec.name, backend, _params(values))
        return x.map_blocks(fn, dtype=ct, meta=_meta(x.ndim, ct))

    # along an axis: the whole axis in one chunk
    fn = partial(_fwd_block, spec.name, backend, _params(values))
    if x.ndim == 0:
        return x.map_blocks(fn, dtype=ct, meta=_meta(0, ct))
    x = x.rechunk({keep: -1})
    chunks = list(x.chunks)
    chunks[keep] = (probe.shape[keep],)
    return x.map_blocks(fn, dtype=ct, chunks=tuple(chunks), meta=_meta(x.ndim, ct))


def _sample_slopes(x: da.Array, values: dict, ct: np.dtype) -> da.Array:
    """rrelu's training slopes as a lazy array: 1 where x > 0, U(lower, upper) elsewhere.

    The seed is drawn from ``rng`` (None, an int or a Generator, as in the NumPy
    path), so an int seed gives the same slopes every time -- but not the same
    ones as the NumPy path, which draws all of them in one stream.
    """
    rng = values.get("rng")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    drng = da.random.default_rng(int(gen.integers(2**63)))
    u = drng.uniform(float(values["lower"]), float(values["upper"]), size=x.shape, chunks=x.chunks)
    return da.where(x > 0, 1.0, u).astype(ct)


def _prelu_weight_blocks(x: da.Array, w: Any, axis: int | None, fname: str):
    """The weight as a dask array that broadcasts against x block by block.

    A one-element weight becomes shape (1, ..., 1); a per-channel weight gets
    its length on the channel axis, chunked like x there, and 1 elsewhere -- so
    each block of x meets exactly the slice of weights for its channels.
    """
    if isinstance(w, da.Array):
        wd = w
    else:
        wd = da.from_array(np.asarray(_to_numpy_like(w, fname, "weight")))
    size = int(wd.size)
    bshape = [1] * x.ndim
    chunks = [(1,)] * x.ndim
    if size != 1 and axis is not None and x.ndim:
        bshape[axis] = size
        chunks[axis] = x.chunks[axis]
    return wd.reshape(tuple(bshape)).rechunk(tuple(chunks)) if x.ndim else wd.reshape(()), size


def _prelu_check(values, x_small, g_small, w, direction: str):
    """The eager check for prelu: a stand-in weight of the real length when it is lazy."""
    vals = dict(values)
    if isinstance(w, da.Array):
        vals["weight"] = np.zeros(w.shape, dtype=w.dtype)
    elif _kind(w) == TORCH:
        vals["weight"] = tensor_to_numpy(w, "fastact.prelu", "weight")
    if direction == "forward":
        return _api.FORWARD["prelu"](x_small, **vals)
    return _api.BACKWARD["prelu"](g_small, x_small, **vals)


def _prelu_forward(spec, x, values, backend, fname):
    w = values["weight"]
    if w is REQUIRED:
        _api.FORWARD["prelu"](np.zeros(0), weight=REQUIRED)  # raises the missing-parameter error
    axis = _norm_axis(values.get("axis"), x.ndim)
    wshape = tuple(w.shape) if isinstance(w, da.Array) else np.shape(_to_numpy_like(w, fname, "weight"))
    keep = axis if math.prod(wshape) != 1 else None
    ct = _prelu_check(values, _small(x, keep), None, w, "forward").dtype
    wb, _ = _prelu_weight_blocks(x, w, keep, fname)
    params = _params(values, drop=("weight",))
    return da.map_blocks(partial(_prelu_fwd_block, backend, params), x, wb, dtype=ct, meta=_meta(x.ndim, ct))


# --------------------------------------------------------------- backward


def backward(spec: Spec, g: Any, x: Any, y: Any, out: Any, values: dict) -> Any:
    fname = f"fastact.{spec.name}_backward"
    _no_out(out, fname)
    backend = _backends.get_backend()
    use_y = y is not None
    src_name = "y" if use_y else "x"
    g = _as_dask(g, fname, "grad_output")
    src = _as_dask(y if use_y else x, fname, src_name, chunks=g.chunks)
    if src is None:  # let the NumPy path say what is missing
        _api.BACKWARD[spec.name](np.zeros(0), **values)
    kind = spec.kind

    if kind == PRELU:
        return _prelu_backward(g, src, values, backend, fname)

    keep = _norm_axis(values.get("axis"), src.ndim) if spec.along_axis else None
    vals = dict(values)
    slopes = None
    if kind == RRELU and vals.get("slopes") is not None:
        slopes = _as_dask(vals["slopes"], fname, "slopes", chunks=src.chunks)
        vals["slopes"] = _small(slopes, None)
    _check_same_shape(fname, [(src_name, src), ("grad_output", g), ("slopes", slopes)], keep)
    gs, ss = _small(g, keep), _small(src, keep)
    probe = _api.BACKWARD[spec.name](gs, None if use_y else ss, y=ss if use_y else None, **vals)
    ct = probe.dtype
    params = _params(values, drop=("slopes",))
    fn = partial(_bwd_block, spec.name, backend, params, use_y)

    if spec.elementwise:
        g = g.rechunk(src.chunks)
        args = [g, src]
        if slopes is not None and _rrelu_training(values):
            args.append(slopes.rechunk(src.chunks))
        return da.map_blocks(fn, *args, dtype=ct, meta=_meta(src.ndim, ct))

    if src.ndim == 0:
        return da.map_blocks(fn, g, src, dtype=ct, meta=_meta(0, ct))
    # along an axis: each row whole; g's other axes chunked like src's
    src = src.rechunk({keep: -1})
    gchunks = list(src.chunks)
    gchunks[keep] = (int(g.shape[keep]),)
    g = g.rechunk(tuple(gchunks))
    return da.map_blocks(fn, g, src, dtype=ct, chunks=src.chunks, meta=_meta(src.ndim, ct))


def _prelu_backward(g, x, values, backend, fname):
    w = values["weight"]
    axis = _norm_axis(values.get("axis"), x.ndim)
    if w is REQUIRED:
        _api.BACKWARD["prelu"](np.zeros(0), np.zeros(0), **values)  # raises the missing-parameter error
    wshape = tuple(w.shape) if isinstance(w, da.Array) else np.shape(_to_numpy_like(w, fname, "weight"))
    wsize = math.prod(wshape)
    keep = axis if wsize != 1 else None
    _check_same_shape(fname, [("x", x), ("grad_output", g)], keep)
    probe_gi, probe_gw = _prelu_check(values, _small(x, keep), _small(g, keep), w, "backward")
    ct = probe_gi.dtype
    wb, _ = _prelu_weight_blocks(x, w, keep, fname)
    g = g.rechunk(x.chunks)
    params = _params(values, drop=("weight",))
    nd = x.ndim
    ones = tuple((1,) * len(c) for c in x.chunks)
    boxes = da.map_blocks(
        partial(_prelu_bwd_block, backend, params, ct), g, x, wb,
        dtype=object, chunks=ones, meta=_meta(nd, object),
    )
    grad_input = boxes.map_blocks(_unbox_first, dtype=ct, chunks=x.chunks, meta=_meta(nd, ct))
    # partial sums: one per block, laid out so that summing over every axis but
    # the channel axis leaves grad_weight
    pchunks = list(ones)
    pshape = [1] * nd
    if keep is not None and nd:
        pchunks[keep] = x.chunks[keep]
        pshape[keep] = -1
    partials = boxes.map_blocks(partial(_unbox_second, tuple(pshape)), dtype=np.float64, chunks=tuple(pchunks),
                                meta=_meta(nd, np.float64))
    other = tuple(i for i in range(nd) if i != keep)
    grad_weight = partials.sum(axis=other) if other else partials
    return grad_input, grad_weight.astype(ct).reshape(wshape)
