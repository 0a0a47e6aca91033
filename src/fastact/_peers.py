"""What fastact is measured against, generated from the registry.

One place for the benchmark cases and the peers, shared by ``python -m fastact
bench`` (``_bench.py``) and the pytest-benchmark suite (``bench/``), so that
both time the same calls:

* a **case** is one activation, one direction, one dtype and one size, with
  inputs shaped for its kind (``make_case``);
* **contenders** are zero-argument callables for that case: each fastact
  backend (the public API inside ``use_backend``), PyTorch on the CPU, numexpr
  where the function is expressible, the plain NumPy expression a user would
  write, and a parallel copy of the input -- the memory-bandwidth floor.

A new activation needs no edit here to be benchmarked on every backend and
against PyTorch's forward (``Spec.torch``); the numexpr and NumPy expressions
are per function and simply absent for one not listed below.

This module is not imported by ``import fastact``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ._registry import AXIS, GLU, MAXOUT, PRELU, SPECS, Spec, get_spec

__all__ = [
    "BACKWARD",
    "FORWARD",
    "PEERS",
    "Case",
    "Contender",
    "make_case",
    "contenders",
    "peer_versions",
    "configure_threads",
    "check_result",
]

FORWARD = "forward"
BACKWARD = "backward"
# Peers in the order the tables show them.
PEERS = ("torch", "numexpr", "numpy-expr", "copy")

# Values for required parameters; anything else required falls back to the
# parameter's own sampler so that a new activation still gets a case.
_REQUIRED_VALUES = {"threshold": 0.5, "value": 0.0, "pieces": 2}

# Along-axis inputs are rows of this length, reduced along the last axis: the
# layout of a (batch, features) activation.
ROW = 1024
# PReLU: (N, C, L) with a weight per channel, as after a 1-D convolution.
PRELU_CHANNELS = 32

# The copy below this many elements is np.copyto: a parallel region costs more
# than copying data that sits in cache (measured: 1e4 float32 copyto 1.2 us,
# numba prange 2.1 us; 65536: 5.8 us against 4.1 us).
_COPY_SERIAL_MAX = 1 << 15


@dataclass
class Case:
    """One benchmark case: inputs and parameters for one spec, direction, dtype and size."""

    spec: Spec
    direction: str
    dtype: np.dtype
    size: int  # the nominal size asked for
    x: np.ndarray
    g: np.ndarray | None  # grad_output (backward only), of the forward output's shape
    params: dict  # keyword arguments for the public API (weight included for prelu)
    axis: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def elements(self) -> int:
        return int(self.x.size)

    @property
    def key(self) -> str:
        return f"{self.spec.name}-{self.direction}-{self.dtype.name}-{self.size}"


@dataclass
class Contender:
    """A zero-argument callable to time, and what it is."""

    label: str  # "numba", "cython", "auto", "numpy", "torch", "numexpr", "numpy-expr", "copy"
    kind: str  # "backend" or "peer"
    call: Callable[[], Any]
    backend: str | None = None  # for kind "backend": run inside fastact.use_backend(backend)
    note: str = ""


def _shape_for(spec: Spec, size: int) -> tuple[tuple, int | None]:
    if spec.kind in (AXIS, GLU, MAXOUT):
        return (max(1, round(size / ROW)), ROW), -1
    if spec.kind == PRELU:
        per_channel = max(1, round(size / PRELU_CHANNELS))
        n = max(1, per_channel // 1024)
        return (n, PRELU_CHANNELS, max(1, per_channel // n)), 1
    return (int(size),), None


def _params_for(spec: Spec, shape: tuple, axis: int | None, dtype: np.dtype) -> dict:
    params: dict[str, Any] = {}
    for p in spec.forward_params():
        if p.kind == "rng":
            continue
        if p.kind == "axis":
            params[p.name] = axis if axis is not None else p.default
        elif p.name == "weight":
            # one slope per channel, a typical learned value
            params[p.name] = np.full(shape[1] if len(shape) > 1 else 1, 0.25, dtype=dtype)
        elif p.required:
            if p.name in _REQUIRED_VALUES:
                params[p.name] = _REQUIRED_VALUES[p.name]
            elif p.sample is not None:
                params[p.name] = p.sample(np.random.default_rng(0))
            else:
                raise ValueError(f"benchmark: no value for the required parameter {spec.name}.{p.name}")
    return params


def make_case(spec: Spec | str, direction: str, dtype: Any, size: int, seed: int = 0) -> Case:
    """The inputs for ``spec`` in ``direction``: elementwise 1-D, along-axis rows
    of ``ROW`` with axis=-1, prelu (N, C, L); standard-normal data (both sides of
    every kink), a random grad_output for the backward."""
    if isinstance(spec, str):
        spec = get_spec(spec)
    dtype = np.dtype(dtype)
    shape, axis = _shape_for(spec, int(size))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float64).astype(dtype)
    params = _params_for(spec, shape, axis, dtype)
    g = None
    if direction == BACKWARD:
        from . import _api

        with _reference_backend():
            y = _api.FORWARD[spec.name](x, **params)
        if isinstance(y, tuple):  # rrelu in training mode
            y = y[0]
        g = rng.standard_normal(y.shape, dtype=np.float64).astype(dtype)
    elif direction != FORWARD:
        raise ValueError(f"direction must be {FORWARD!r} or {BACKWARD!r}, got {direction!r}")
    case = Case(spec, direction, dtype, int(size), x, g, params, axis)
    if direction == BACKWARD and from_output(case):
        case.extra["y"] = y
    return case


def _reference_backend():
    from ._backends import use_backend

    return use_backend("numpy")


def all_cases(directions=(FORWARD, BACKWARD), dtypes=("float32",), sizes=(1_000_000,), functions=None):
    """Every (spec, direction, dtype, size) in registry order, as (spec, direction, dtype, size) tuples."""
    names = [s.name for s in SPECS] if functions is None else list(functions)
    for name in names:
        spec = get_spec(name)
        for direction in directions:
            for dtype in dtypes:
                for size in sizes:
                    yield spec, direction, np.dtype(dtype), int(size)


# ------------------------------------------------------------- fastact itself


def fastact_call(case: Case) -> Callable[[], Any]:
    """The public API call for the case (the caller picks the backend)."""
    from . import _api

    x, g, params = case.x, case.g, case.params
    if case.direction == FORWARD:
        fn = _api.FORWARD[case.name]
        return lambda: fn(x, **params)
    fn = _api.BACKWARD[case.name]
    if "y" in case.extra:  # like for like: PyTorch's backward reads the saved output too
        y = case.extra["y"]
        return lambda: fn(g, y=y, **params)
    return lambda: fn(g, x, **params)


def from_output(case: Case) -> bool:
    """Whether fastact's backward for the case is timed from the forward's output
    (``y=``): where PyTorch's backward kernel reads the saved output, so both do
    the same work, and the function accepts ``y=`` with these parameters."""
    return case.name in TORCH_BACKWARD_FROM_OUTPUT and case.spec.allows_y(case.params)


# ---------------------------------------------------------------- threads


def configure_threads(n: int) -> None:
    """Give every peer the thread count fastact uses, so that no one wins by having more cores."""
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))  # thread-local: the caller's thread
    except Exception:  # pragma: no cover - numba is a dependency, but a broken one must not stop the bench
        pass
    torch = _optional("torch")
    if torch is not None:
        torch.set_num_threads(n)
    ne = _optional("numexpr")
    if ne is not None:
        ne.set_num_threads(n)


_MODULES: dict[str, Any] = {}


def _optional(name: str):
    """The module if it imports, else None (remembered: torch costs a second to import)."""
    if name not in _MODULES:
        try:
            import importlib

            _MODULES[name] = importlib.import_module(name)
        except Exception:
            _MODULES[name] = None
    return _MODULES[name]


def peer_versions() -> dict[str, str | None]:
    out = {}
    for name in ("torch", "numexpr", "scipy"):
        mod = _optional(name)
        out[name] = getattr(mod, "__version__", None) if mod is not None else None
    return out


# ------------------------------------------------------------------ the copy


_pcopy = None


def _parallel_copy():
    """A numba prange copy: on this 2-core machine it moves about twice what
    np.copyto (one thread) does at 1e6-1e7 float32 elements (PERF-NOTES)."""
    global _pcopy
    if _pcopy is None:
        try:
            import numba

            @numba.njit(parallel=True, cache=True)
            def pcopy(src, dst):
                for i in numba.prange(src.shape[0]):
                    dst[i] = src[i]

            _pcopy = pcopy
        except Exception:  # pragma: no cover
            _pcopy = False
    return _pcopy


def copy_call(case: Case) -> Callable[[], Any]:
    """Copy the input into a preallocated array: the floor for a function that reads and writes it once."""
    src = case.x.reshape(-1)
    dst = np.empty_like(src)
    pcopy = _parallel_copy() if src.size > _COPY_SERIAL_MAX else None
    if pcopy:
        return lambda: pcopy(src, dst)
    return lambda: np.copyto(dst, src)


# ------------------------------------------------------------------ PyTorch

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _torch_kwargs(case: Case) -> tuple[list, dict]:
    """Positional and keyword arguments for torch.nn.functional.<spec.torch>."""
    torch = _MODULES["torch"]
    args, kw = [], {}
    for p in case.spec.forward_params():
        if p.kind == "rng" or p.name == "slopes":
            continue
        if p.name == "weight":
            args.append(torch.from_numpy(case.params["weight"]))
        elif p.kind == "axis":
            if case.spec.kind != PRELU:  # F.prelu's channel axis is always 1
                kw["dim"] = case.params[p.name]
        elif p.name in case.params:
            kw[p.name] = case.params[p.name]
        else:
            kw[p.name] = p.default
    return args, kw


def _torch_backward_op(case: Case, t, tg):
    """The aten backward kernel autograd would run, without autograd's overhead,
    or None where there is none (then autograd itself is timed)."""
    torch = _MODULES["torch"]
    F = torch.nn.functional
    aten = torch.ops.aten
    name, p = case.name, case.spec.with_defaults(case.params)
    if name == "relu":
        return lambda: aten.threshold_backward(tg, t, 0)
    if name == "relu6":
        return lambda: aten.hardtanh_backward(tg, t, 0.0, 6.0)
    if name == "leaky_relu":
        return lambda: aten.leaky_relu_backward(tg, t, p["negative_slope"], False)
    if name == "rrelu" and not p["training"]:
        slope = 0.5 * (p["lower"] + p["upper"])
        return lambda: aten.leaky_relu_backward(tg, t, slope, False)
    if name == "prelu":
        w = torch.from_numpy(case.params["weight"]).reshape(-1, *([1] * (t.dim() - 2)))
        # The kernel returns grad_weight unreduced; autograd then sums it to
        # the weight's shape, and so must the peer to do fastact's work.
        dims = [d for d in range(t.dim()) if d != 1]

        def prelu_bwd():
            gi, gw = aten._prelu_kernel_backward(tg, t, w)
            return gi, gw.sum(dim=dims)

        return prelu_bwd
    if name == "elu":
        return lambda: aten.elu_backward(tg, p["alpha"], 1.0, 1.0, False, t)
    if name == "selu":
        return lambda: aten.elu_backward(tg, _SELU_ALPHA, _SELU_SCALE, 1.0, False, t)
    if name == "celu":
        return lambda: aten.elu_backward(tg, p["alpha"], 1.0, 1.0 / p["alpha"], False, t)
    if name == "gelu":
        return lambda: aten.gelu_backward(tg, t, approximate=p["approximate"])
    if name in ("hardsigmoid", "hardswish", "silu", "mish"):
        op = getattr(aten, name + "_backward")
        return lambda: op(tg, t)
    if name == "log_sigmoid":
        _, buf = aten.log_sigmoid_forward(t)
        return lambda: aten.log_sigmoid_backward(tg, t, buf)
    # These kernels take the forward's output, as autograd saves it.
    if name == "sigmoid":
        y = torch.sigmoid(t)
        return lambda: aten.sigmoid_backward(tg, y)
    if name == "tanh":
        y = torch.tanh(t)
        return lambda: aten.tanh_backward(tg, y)
    if name in ("softmax", "log_softmax"):
        dim = p["axis"]
        y = getattr(F, name)(t, dim=dim)
        op = aten._softmax_backward_data if name == "softmax" else aten._log_softmax_backward_data
        return lambda: op(tg, y, dim, t.dtype)
    if name == "hardtanh":
        return lambda: aten.hardtanh_backward(tg, t, p["min_val"], p["max_val"])
    if name == "softplus":
        return lambda: aten.softplus_backward(tg, t, p["beta"], p["threshold"])
    if name in ("hardshrink", "softshrink"):
        op = getattr(aten, name + "_backward")
        return lambda: op(tg, t, p["lambd"])
    if name == "threshold":
        return lambda: aten.threshold_backward(tg, t, p["threshold"])
    if name == "glu":
        return lambda: aten.glu_backward(tg, t, p["axis"])
    return None


# Backwards whose PyTorch kernel reads what its forward saved rather than the
# input alone: the output (softmin's through autograd: softmax's backward on
# the saved output, then the negation), or log_sigmoid's x and a buffer of
# exp(-|x|). fastact's are timed from the output (y=), which is what
# fastact.torch saves for them.
TORCH_BACKWARD_FROM_OUTPUT = ("sigmoid", "tanh", "softmax", "log_softmax", "softmin", "log_sigmoid")
_SAVED_NOTE = {"log_sigmoid": " (from x and the buffer its forward saved)"}


def _saved_note(case: Case) -> str:
    if case.name not in TORCH_BACKWARD_FROM_OUTPUT:
        return ""
    return _SAVED_NOTE.get(case.name, " (from the output its forward saved)")


def torch_call(case: Case) -> Contender | None:
    """PyTorch CPU: the allocating F.<name>(t) call a user writes (as fastact
    allocates its result too), and for the backward the aten kernel autograd
    would run (or autograd itself, graph built outside the timing)."""
    torch = _optional("torch")
    if torch is None or case.spec.torch is None:
        return None
    fn = getattr(torch.nn.functional, case.spec.torch, None)
    if fn is None:
        return None
    t = torch.from_numpy(case.x)
    args, kw = _torch_kwargs(case)
    if case.direction == FORWARD:
        return Contender("torch", "peer", lambda: fn(t, *args, **kw), note=f"F.{case.spec.torch}")
    tg = torch.from_numpy(case.g)
    op = _torch_backward_op(case, t, tg)
    if op is not None:
        note = "aten backward" + _saved_note(case)
        return Contender("torch", "peer", op, note=note)
    ta = t.detach().clone().requires_grad_(True)
    y = fn(ta, *args, **kw)
    grad = torch.autograd.grad
    note = "autograd" + _saved_note(case)
    return Contender("torch", "peer", lambda: grad(y, ta, tg, retain_graph=True)[0], note=note)


# ------------------------------------------------------------------ numexpr

# name -> (forward, backward) numexpr expressions of x, g, the parameters and
# the constants below. Float literals are avoided: numexpr computes a float32
# array times a float literal in float64 (measured), so constants are passed
# as variables of the case's dtype. Only functions numexpr can express (no erf,
# no reductions along an axis) are listed.
_NE: dict[str, tuple[str, str]] = {
    "relu": ("where(x > 0, x, 0)", "where(x > 0, g, 0)"),
    "relu6": ("where(x < 0, 0, where(x > 6, 6, x))", "where((x > 0) & (x < 6), g, 0)"),
    "leaky_relu": ("where(x > 0, x, x * negative_slope)", "where(x > 0, g, g * negative_slope)"),
    "rrelu": ("where(x > 0, x, x * slope)", "where(x > 0, g, g * slope)"),
    "elu": ("where(x > 0, x, alpha * expm1(x))", "where(x > 0, g, g * alpha * exp(x))"),
    "selu": ("scale * where(x > 0, x, selu_alpha * expm1(x))", "where(x > 0, g * scale, g * scale * selu_alpha * exp(x))"),
    "celu": ("where(x > 0, x, alpha * expm1(x / alpha))", "where(x > 0, g, g * exp(x / alpha))"),
    "sigmoid": ("1 / (1 + exp(-x))", "g * (1 / (1 + exp(-x))) * (1 - 1 / (1 + exp(-x)))"),
    "log_sigmoid": ("where(x < 0, x, 0) - log1p(exp(-abs(x)))", "g / (1 + exp(x))"),
    "hardsigmoid": ("where(x <= -3, 0, where(x >= 3, 1, x / 6 + half))", "where((x > -3) & (x < 3), g / 6, 0)"),
    "hardswish": ("where(x <= -3, 0, where(x >= 3, x, x * (x + 3) / 6))", "where(x <= -3, 0, where(x < 3, g * (x / 3 + half), g))"),
    "silu": ("x / (1 + exp(-x))", "g * (1 / (1 + exp(-x))) * (1 + x * (1 - 1 / (1 + exp(-x))))"),
    "swish": (
        "x / (1 + exp(-beta * x))",
        "g * (1 / (1 + exp(-beta * x))) * (1 + beta * x * (1 - 1 / (1 + exp(-beta * x))))",
    ),
    "mish": (
        "x * tanh(log1p(exp(x)))",
        "g * (tanh(log1p(exp(x))) + x / (1 + exp(-x)) * (1 - tanh(log1p(exp(x))) ** 2))",
    ),
    "tanh": ("tanh(x)", "g * (1 - tanh(x) ** 2)"),
    "hardtanh": ("where(x < min_val, min_val, where(x > max_val, max_val, x))", "where((x > min_val) & (x < max_val), g, 0)"),
    "softplus": ("where(x * beta > threshold, x, log1p(exp(beta * x)) / beta)", "where(x * beta > threshold, g, g / (1 + exp(-beta * x)))"),
    "softsign": ("x / (1 + abs(x))", "g / (1 + abs(x)) ** 2"),
    "hardshrink": ("where(abs(x) > lambd, x, 0)", "where(abs(x) > lambd, g, 0)"),
    "softshrink": ("where(x > lambd, x - lambd, where(x < -lambd, x + lambd, 0))", "where(abs(x) > lambd, g, 0)"),
    "tanhshrink": ("x - tanh(x)", "g * tanh(x) ** 2"),
    "threshold": ("where(x > threshold, x, value)", "where(x > threshold, g, 0)"),
    "squareplus": ("(x + sqrt(x * x + b)) / 2", "g * (1 + x / sqrt(x * x + b)) / 2"),
}


def numexpr_call(case: Case) -> Contender | None:
    ne = _optional("numexpr")
    if ne is None or case.name not in _NE:
        return None
    p = case.spec.with_defaults(case.params)
    if case.name == "rrelu" and p["training"]:
        return None
    expr = _NE[case.name][0 if case.direction == FORWARD else 1]
    t = case.dtype.type
    env = {k: t(v) for k, v in p.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    env.update(half=t(0.5), scale=t(_SELU_SCALE), selu_alpha=t(_SELU_ALPHA))
    if case.name == "rrelu":
        env["slope"] = t(0.5 * (p["lower"] + p["upper"]))
    env["x"] = case.x
    if case.g is not None:
        env["g"] = case.g
    # evaluate() re-parses its string each call; the compiled expression is
    # cached by numexpr, so after the warm-up this is the steady-state cost.
    return Contender("numexpr", "peer", lambda: ne.evaluate(expr, local_dict=env))


# ------------------------------------------------------ the NumPy expression


def _sig(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _sparsemax(x, axis):
    # the sort-based projection (Martins & Astudillo, 2016), along the last axis
    z = -np.sort(-x, axis=axis)
    k = np.arange(1, x.shape[axis] + 1, dtype=x.dtype)
    cs = np.cumsum(z, axis=axis)
    kz = (1 + k * z > cs).sum(axis=axis, keepdims=True)
    tau = (np.take_along_axis(cs, kz - 1, axis=axis) - 1) / kz.astype(x.dtype)
    return np.maximum(x - tau, 0)


def _maxout_bwd(g, x, pieces):
    xr = x.reshape(*x.shape[:-1], -1, pieces)
    idx = xr.argmax(axis=-1)[..., None]
    out = np.zeros_like(xr)
    np.put_along_axis(out, idx, g[..., None], axis=-1)
    return out.reshape(x.shape)


def _glu_bwd(g, x, axis):
    a, b = np.split(x, 2, axis=axis)
    s = _sig(b)
    return np.concatenate([g * s, g * a * s * (1 - s)], axis=axis)


def _np_table(erf):
    """name -> (forward(x, p), backward(g, x, p)): what a NumPy user writes.
    The along-axis ones assume the case's axis is the last (it is)."""
    r2 = 1 / math.sqrt(2.0)
    r2pi = 1 / math.sqrt(2.0 * math.pi)
    sa, ss = _SELU_ALPHA, _SELU_SCALE
    table = {
        "relu": (lambda x, p: np.maximum(x, 0), lambda g, x, p: g * (x > 0)),
        "relu6": (lambda x, p: np.clip(x, 0, 6), lambda g, x, p: g * ((x > 0) & (x < 6))),
        "leaky_relu": (
            lambda x, p: np.where(x > 0, x, x * p["negative_slope"]),
            lambda g, x, p: np.where(x > 0, g, g * p["negative_slope"]),
        ),
        "rrelu": (
            lambda x, p: np.where(x > 0, x, x * (0.5 * (p["lower"] + p["upper"]))),
            lambda g, x, p: np.where(x > 0, g, g * (0.5 * (p["lower"] + p["upper"]))),
        ),
        "prelu": (
            lambda x, p: np.where(x > 0, x, p["weight"][:, None] * x),
            lambda g, x, p: (
                np.where(x > 0, g, p["weight"][:, None] * g),
                (np.where(x > 0, 0, x) * g).sum(axis=(0, 2)),
            ),
        ),
        "elu": (
            lambda x, p: np.where(x > 0, x, p["alpha"] * np.expm1(x)),
            lambda g, x, p: np.where(x > 0, g, g * p["alpha"] * np.exp(x)),
        ),
        "selu": (
            lambda x, p: ss * np.where(x > 0, x, sa * np.expm1(x)),
            lambda g, x, p: np.where(x > 0, g * ss, g * (ss * sa) * np.exp(x)),
        ),
        "celu": (
            lambda x, p: np.where(x > 0, x, p["alpha"] * np.expm1(x / p["alpha"])),
            lambda g, x, p: np.where(x > 0, g, g * np.exp(x / p["alpha"])),
        ),
        "sigmoid": (lambda x, p: _sig(x), lambda g, x, p: (lambda s: g * s * (1 - s))(_sig(x))),
        "log_sigmoid": (
            lambda x, p: np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x))),
            lambda g, x, p: g / (1 + np.exp(x)),
        ),
        "hardsigmoid": (
            lambda x, p: np.clip(x / 6 + 0.5, 0, 1),
            lambda g, x, p: np.where((x > -3) & (x < 3), g / 6, 0),
        ),
        "hardswish": (
            lambda x, p: x * np.clip(x / 6 + 0.5, 0, 1),
            lambda g, x, p: np.where(x <= -3, 0, np.where(x < 3, g * (x / 3 + 0.5), g)),
        ),
        "silu": (lambda x, p: x * _sig(x), lambda g, x, p: (lambda s: g * s * (1 + x * (1 - s)))(_sig(x))),
        "swish": (
            lambda x, p: x * _sig(p["beta"] * x),
            lambda g, x, p: (lambda s: g * (s + p["beta"] * x * s * (1 - s)))(_sig(p["beta"] * x)),
        ),
        "mish": (
            lambda x, p: x * np.tanh(np.log1p(np.exp(x))),
            lambda g, x, p: (lambda t: g * (t + x * _sig(x) * (1 - t * t)))(np.tanh(np.log1p(np.exp(x)))),
        ),
        "tanh": (lambda x, p: np.tanh(x), lambda g, x, p: (lambda t: g * (1 - t * t))(np.tanh(x))),
        "hardtanh": (
            lambda x, p: np.clip(x, p["min_val"], p["max_val"]),
            lambda g, x, p: g * ((x > p["min_val"]) & (x < p["max_val"])),
        ),
        "softplus": (
            lambda x, p: np.where(x * p["beta"] > p["threshold"], x, np.log1p(np.exp(p["beta"] * x)) / p["beta"]),
            lambda g, x, p: np.where(x * p["beta"] > p["threshold"], g, g * _sig(p["beta"] * x)),
        ),
        "softsign": (lambda x, p: x / (1 + np.abs(x)), lambda g, x, p: g / (1 + np.abs(x)) ** 2),
        "hardshrink": (
            lambda x, p: np.where(np.abs(x) > p["lambd"], x, 0),
            lambda g, x, p: np.where(np.abs(x) > p["lambd"], g, 0),
        ),
        "softshrink": (
            lambda x, p: np.sign(x) * np.maximum(np.abs(x) - p["lambd"], 0),
            lambda g, x, p: np.where(np.abs(x) > p["lambd"], g, 0),
        ),
        "tanhshrink": (lambda x, p: x - np.tanh(x), lambda g, x, p: g * np.tanh(x) ** 2),
        "threshold": (
            lambda x, p: np.where(x > p["threshold"], x, p["value"]),
            lambda g, x, p: np.where(x > p["threshold"], g, 0),
        ),
        "squareplus": (
            lambda x, p: (x + np.sqrt(x * x + p["b"])) / 2,
            lambda g, x, p: g * (1 + x / np.sqrt(x * x + p["b"])) / 2,
        ),
        "glu": (
            lambda x, p: (lambda a, b: a * _sig(b))(*np.split(x, 2, axis=p["axis"])),
            lambda g, x, p: _glu_bwd(g, x, p["axis"]),
        ),
        "softmax": (
            lambda x, p: _softmax(x, p["axis"]),
            lambda g, x, p: (lambda y: y * (g - (g * y).sum(axis=p["axis"], keepdims=True)))(_softmax(x, p["axis"])),
        ),
        "log_softmax": (
            lambda x, p: _log_softmax(x, p["axis"]),
            lambda g, x, p: g - np.exp(_log_softmax(x, p["axis"])) * g.sum(axis=p["axis"], keepdims=True),
        ),
        "softmin": (
            lambda x, p: _softmax(-x, p["axis"]),
            lambda g, x, p: (lambda y: -y * (g - (g * y).sum(axis=p["axis"], keepdims=True)))(_softmax(-x, p["axis"])),
        ),
        "sparsemax": (
            lambda x, p: _sparsemax(x, p["axis"]),
            lambda g, x, p: (
                lambda s: np.where(
                    s, g - (g * s).sum(axis=p["axis"], keepdims=True) / s.sum(axis=p["axis"], keepdims=True).astype(g.dtype), 0
                )
            )(_sparsemax(x, p["axis"]) > 0),
        ),
        "maxout": (
            lambda x, p: x.reshape(*x.shape[:-1], -1, p["pieces"]).max(axis=-1),
            lambda g, x, p: _maxout_bwd(g, x, p["pieces"]),
        ),
    }
    if erf is not None:
        # Exact gelu needs erf, which NumPy lacks: only with scipy. A math.erf
        # through np.vectorize would be a straw man, so without scipy: no peer.
        table["gelu"] = (
            lambda x, p: x * 0.5 * (1 + erf(x * r2)),
            lambda g, x, p: g * (0.5 * (1 + erf(x * r2)) + x * r2pi * np.exp(-0.5 * x * x)),
        )
    return table


_NP = None


def numpy_expr_call(case: Case) -> Contender | None:
    global _NP
    if _NP is None:
        sp = _optional("scipy.special")
        _NP = _np_table(getattr(sp, "erf", None) if sp is not None else None)
    p = case.spec.with_defaults(case.params)
    if case.name not in _NP or (case.name == "rrelu" and p["training"]):
        return None
    if case.name == "gelu" and p["approximate"] != "none":
        return None
    if case.spec.along_axis and p.get("axis", -1) not in (-1, case.x.ndim - 1):
        return None
    fwd, bwd = _NP[case.name]
    x, g = case.x, case.g
    if case.direction == FORWARD:
        return Contender("numpy-expr", "peer", lambda: fwd(x, p))
    return Contender("numpy-expr", "peer", lambda: bwd(g, x, p))


# --------------------------------------------------------------- assembling


def backend_contender(case: Case, backend: str) -> Contender:
    note = "backward from the output (y=)" if "y" in case.extra else ""
    return Contender(backend, "backend", fastact_call(case), backend=backend, note=note)


def peer_contenders(case: Case, peers=PEERS) -> list[Contender]:
    out = []
    for label in peers:
        if label == "copy":
            out.append(Contender("copy", "peer", copy_call(case), note="parallel copy of x"))
            continue
        make = {"torch": torch_call, "numexpr": numexpr_call, "numpy-expr": numpy_expr_call}[label]
        c = make(case)
        if c is not None:
            out.append(c)
    return out


def contenders(case: Case, backends, peers=PEERS) -> list[Contender]:
    """Every contender for the case: the given fastact backends, then the installed peers."""
    return [backend_contender(case, b) for b in backends] + peer_contenders(case, peers)


def _as_numpy(r):
    if isinstance(r, tuple):
        return tuple(_as_numpy(v) for v in r)
    if hasattr(r, "detach"):
        return r.detach().numpy()
    return np.asarray(r)


def check_result(case: Case, label: str, result: Any) -> str | None:
    """None when a contender's result is (loosely) the reference's, else what differs.

    The smoke run uses this so that a peer computing something else -- a typo
    in an expression, a wrong torch argument, a float64 result -- fails instead
    of producing a flattering ratio.
    """
    if label == "copy":
        return None
    from . import _api

    with _reference_backend():
        if case.direction == FORWARD:
            ref = _api.FORWARD[case.name](case.x, **case.params)
        else:
            ref = _api.BACKWARD[case.name](case.g, case.x, **case.params)
    got = _as_numpy(result)
    refs = ref if isinstance(ref, tuple) else (ref,)
    gots = got if isinstance(got, tuple) else (got,)
    if len(refs) != len(gots):
        return f"{label}: {len(gots)} results, expected {len(refs)}"
    # Loose: this catches a peer computing another function, not ULP errors
    # (torch's float64 hardsigmoid_backward, for one, uses a float32 1/6).
    tol = 1e-3 if case.dtype == np.float32 else 1e-6
    for i, (r, a) in enumerate(zip(refs, gots)):
        if a.shape != r.shape:
            return f"{label}: result {i} has shape {a.shape}, expected {r.shape}"
        if a.dtype != r.dtype:
            return f"{label}: result {i} has dtype {a.dtype}, expected {r.dtype} (an unfair comparison)"
        # grad_weight of prelu is a sum over many elements: scale atol with it
        atol = tol * (1 + float(np.abs(r).max(initial=0.0))) if i else tol
        if not np.allclose(a, r, rtol=tol, atol=atol, equal_nan=True):
            err = float(np.nanmax(np.abs(a.astype(np.float64) - r)))
            return f"{label}: result {i} differs from the reference by up to {err:.3g}"
    return None
