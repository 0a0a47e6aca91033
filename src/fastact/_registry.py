"""The catalogue: one declaration per activation.

Everything else -- the public functions and their docstrings, the argument
checks, the tests, the benchmarks, the CLI listing -- is generated from the
``Spec`` objects below. Adding an activation means: one ``Spec`` here, one
reference formula in ``_reference.py`` and one scalar formula per accelerated
backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

__all__ = ["Param", "Spec", "SPECS", "get_spec", "REQUIRED"]


class _Required:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()

# Kinds of activation, as the backends see them (docs/backend-contract.md).
ELEMENTWISE = "elementwise"
AXIS = "axis"  # softmax-like: output shape == input shape, reduction along one axis
GLU = "glu"  # halves the axis
MAXOUT = "maxout"  # divides the axis by `pieces`
PRELU = "prelu"  # per-channel weight, backward also returns grad_weight
RRELU = "rrelu"  # random slopes in training mode

F32_TINY = 1.1754943508222875e-38
F64_TINY = 2.2250738585072014e-308

# Default accuracy bounds (rtol, atol): |a - r| <= rtol*|r| + atol, with r the
# reference result rounded to the dtype. 1e-6 is about 8 float32 ULP; atol is
# the smallest normal so that outputs the reference rounds to a subnormal may
# be flushed to zero by a fast kernel.
DEFAULT_BOUNDS: Mapping[str, tuple[float, float]] = {
    "float16": (2e-3, 6.2e-5),  # computed in float32, rounded once to float16 (1 half ULP ~ 4.9e-4)
    "float32": (1e-6, F32_TINY),
    "float64": (1e-12, F64_TINY),
}


@dataclass(frozen=True)
class Param:
    """One parameter of an activation.

    ``kind`` is ``"float"``, ``"int"``, ``"choice"``, ``"bool"``, ``"array"``,
    ``"axis"`` or ``"rng"``. ``valid`` tells whether a value is allowed and
    ``valid_text`` says the rule in words (used in error messages and docs).
    ``positional`` parameters may also be passed by position after ``x``.
    ``where`` is ``"both"``, ``"forward"`` or ``"backward"``.
    """

    name: str
    default: Any = REQUIRED
    kind: str = "float"
    valid: Callable[[Any], bool] | None = None
    valid_text: str = ""
    doc: str = ""
    choices: tuple = ()
    positional: bool = False
    where: str = "both"
    # test helper: draws a valid value from a numpy Generator
    sample: Callable[[Any], Any] | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Spec:
    """The declaration of one activation function."""

    name: str
    kind: str
    summary: str
    formula: str
    derivative: str
    edges: str
    params: tuple[Param, ...] = ()
    # Whether the backward may take y= (the forward's output) for these parameters.
    y_ok: Callable[[Mapping[str, Any]], bool] | bool = False
    y_rule: str = ""
    # Cross-parameter check: returns an error message or None.
    check: Callable[[Mapping[str, Any]], str | None] | None = None
    # Points where the derivative jumps, for finite-difference tests.
    kinks: Callable[[Mapping[str, Any]], tuple[float, ...]] = lambda p: ()
    # (direction, dtype) -> (rtol, atol) where the default does not hold, and why.
    bounds: Mapping[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    bound_note: str = ""
    # The PyTorch peer, for benchmarks and optional oracle tests: a
    # torch.nn.functional name (or None when PyTorch has no such function).
    torch: str | None = None

    @property
    def elementwise(self) -> bool:
        return self.kind in (ELEMENTWISE, RRELU)

    @property
    def along_axis(self) -> bool:
        return self.kind in (AXIS, GLU, MAXOUT)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def forward_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.where in ("both", "forward"))

    def backward_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.where in ("both", "backward"))

    def allows_y(self, params: Mapping[str, Any]) -> bool:
        """Whether the backward may take y= for these parameters (defaults fill the gaps)."""
        if not callable(self.y_ok):
            return bool(self.y_ok)
        return self.y_ok(self.with_defaults(params))

    def with_defaults(self, params: Mapping[str, Any]) -> dict:
        return {**{p.name: p.default for p in self.params}, **params}

    def bound(self, direction: str, dtype: str) -> tuple[float, float]:
        return self.bounds.get((direction, dtype), DEFAULT_BOUNDS[dtype])

    def docstring(self, direction: str = "forward") -> str:
        sig_params = self.forward_params() if direction == "forward" else self.backward_params()
        lines = [self.summary if direction == "forward" else f"Gradient of :func:`{self.name}` with respect to its input.", ""]
        lines += ["Formula::", "", "    " + self.formula.replace("\n", "\n    "), ""]
        lines += ["Derivative::", "", "    " + self.derivative.replace("\n", "\n    "), ""]
        lines += ["Parameters", "----------"]
        if direction == "forward":
            lines += ["x : array_like", "    Input; float16/32/64, or integers and bools converted as NumPy's ufuncs do."]
        else:
            lines += [
                "grad_output : array_like",
                "    dL/d(output), the shape of the forward's output.",
                "x : array_like, optional",
                "    The forward's input.",
                "y : array_like, optional",
                "    The forward's output, instead of x: "
                + (self.y_rule or "not accepted for this function (its derivative needs the input)."),
            ]
        for p in sig_params:
            default = "required" if p.required else f"default {p.default!r}"
            rule = f" Valid: {p.valid_text}." if p.valid_text else ""
            lines += [f"{p.name} : {p.kind}, {default}", f"    {p.doc}{rule}"]
        lines += [
            "out : ndarray, optional",
            "    Where to write the result: the result's shape and dtype, writeable; may be the input itself (in-place).",
            "",
            "Returns",
            "-------",
        ]
        if direction == "forward":
            if self.kind == RRELU:
                lines += ["ndarray, or (ndarray, slopes) in training mode"]
            else:
                lines += ["ndarray of the input's dtype (float16/32/64)"]
        elif self.kind == PRELU:
            lines += ["(grad_input, grad_weight)"]
        else:
            lines += ["ndarray: dL/dx, the input's shape"]
        lines += ["", "Edges", "-----", self.edges]
        if self.bound_note:
            lines += ["", "Accuracy", "--------", self.bound_note]
        return "\n".join(lines)


# ---------------------------------------------------------------- parameters


def _finite(v: float) -> bool:
    return math.isfinite(v)


def _not_nan(v: float) -> bool:
    return not math.isnan(v)


def _p_float(name, default, valid=_finite, valid_text="a finite number", doc="", sample=None, **kw) -> Param:
    return Param(name, default, "float", valid, valid_text, doc, sample=sample, **kw)


def _uniform(lo, hi):
    return lambda rng: float(rng.uniform(lo, hi))


# Backwards that are a difference of two terms of order 1 (gelu, silu, swish,
# mish): near the derivative's zero the terms cancel, so no implementation --
# the float64 reference included -- is accurate relative to the tiny result.
# The bound adds two ULP of 1.0 as an absolute error.
_CANCELLING_BWD = {("backward", "float32"): (1e-6, 2.4e-7), ("backward", "float64"): (1e-12, 4.5e-16)}
_CANCELLING_NOTE = (
    "The backward is a difference of terms of order 1 that cancels near its zero crossing: "
    "besides the relative bound it may be off by two ULP of 1.0 absolute (float32 2.4e-7, float64 4.5e-16)."
)

# mish's forward: measured at 5 ULP (not 4) on a handful of the 2**32 float32 inputs
# by the exhaustive run of `python -m fastact accuracy` (2026-11-30). The
# recorded bound is the default one (1e-6 relative; the largest relative error
# found is 3.2e-7), the note says where and why the ULP target is missed.
_F32_FORWARD = {("forward", "float32"): DEFAULT_BOUNDS["float32"]}
_MISH_FORWARD_NOTE = (
    "float32 forward: at most 5 ULP, on 3 (numba) and 2 (cython) of the 2**32 inputs (near x = -3.24 and -6.79), "
    "where x * tanh(softplus(x)) is formed from rounded float32 steps (an exp, a division, the products: "
    "numba as x * n / (n + 2) with n = e^x (e^x + 2)); "
    "largest relative error 3.2e-7."
)

AXIS_PARAM = Param("axis", -1, "axis", None, "an integer in [-ndim, ndim)", "The axis along which the function runs.")


def _softmax_like(name: str, summary: str, formula: str, derivative: str, y_rule: str, edges: str, torch: str, bounds, bound_note) -> Spec:
    return Spec(
        name=name,
        kind=AXIS,
        summary=summary,
        formula=formula,
        derivative=derivative,
        edges=edges,
        params=(AXIS_PARAM,),
        y_ok=True,
        y_rule=y_rule,
        bounds=bounds,
        bound_note=bound_note,
        torch=torch,
    )


_SOFTMAX_EDGES = (
    "-inf entries are masked (probability 0); a row of only -inf, or holding +inf or NaN, gives NaN, "
    "as in PyTorch. An empty axis gives an empty result."
)
# Row sums are accumulated in the working precision; their rounding grows with
# the row length. Tests use rows of at most a few hundred elements.
_AXIS_BOUNDS = {
    ("forward", "float32"): (2e-6, 1e-7),
    ("backward", "float32"): (2e-6, 1e-6),
    ("forward", "float64"): (1e-12, 1e-15),
    ("backward", "float64"): (1e-12, 1e-13),
}
_AXIS_NOTE = (
    "Row sums are rounded in the working precision, so the error grows with the row length; "
    "backward results are differences (g - sum) and carry an absolute error of a few ULP of the row's scale."
)


SPECS: tuple[Spec, ...] = (
    Spec(
        "relu", ELEMENTWISE, "Rectified linear unit.",
        "relu(x) = max(x, 0)",
        "relu'(x) = 1 if x > 0 else 0   (0 at x = 0, as PyTorch)",
        "NaN stays NaN; relu(-0.0) = 0.",
        y_ok=True, y_rule="allowed: relu'(x) = 1 exactly where y > 0.",
        kinks=lambda p: (0.0,), torch="relu",
    ),
    Spec(
        "relu6", ELEMENTWISE, "ReLU capped at 6: min(max(x, 0), 6).",
        "relu6(x) = min(max(x, 0), 6)",
        "relu6'(x) = 1 if 0 < x < 6 else 0   (0 at both kinks, as PyTorch)",
        "NaN stays NaN; +inf gives 6.",
        y_ok=True, y_rule="allowed: the derivative is 1 exactly where 0 < y < 6.",
        kinks=lambda p: (0.0, 6.0), torch="relu6",
    ),
    Spec(
        "leaky_relu", ELEMENTWISE, "Leaky ReLU: x for x > 0, negative_slope*x otherwise.",
        "leaky_relu(x) = x if x > 0 else negative_slope * x",
        "leaky_relu'(x) = 1 if x > 0 else negative_slope   (negative_slope at 0, as PyTorch)",
        "NaN stays NaN; -inf gives -inf*negative_slope.",
        params=(_p_float("negative_slope", 0.01, doc="Slope for x <= 0.", sample=_uniform(-0.5, 0.5)),),
        y_ok=lambda p: p["negative_slope"] > 0, y_rule="allowed when negative_slope > 0 (then y > 0 exactly where x > 0).",
        kinks=lambda p: (0.0,), torch="leaky_relu",
    ),
    Spec(
        "prelu", PRELU, "Parametric ReLU with a learned slope per channel.",
        "prelu(x) = x if x > 0 else weight[c] * x   (c: index along `axis`)",
        "d/dx = 1 if x > 0 else weight[c];   d/dweight[c] = sum over all other axes of (0 if x > 0 else x) * grad",
        "NaN stays NaN. A weight of one element applies to every channel; otherwise its length must equal x.shape[axis].",
        params=(
            Param("weight", REQUIRED, "array", None, "a scalar or a 1-D array of x.shape[axis] finite numbers",
                  "The slopes, one per channel (or one for all).", positional=True),
            Param("axis", 1, "axis", None, "an integer in [-ndim, ndim)", "The channel axis (PyTorch's is 1)."),
        ),
        kinks=lambda p: (0.0,), torch="prelu",
        bounds={("backward", "float32"): (1e-6, 1e-6)},
        bound_note="grad_weight is a sum over all other axes, accumulated in float64; "
        "its float32 result carries an absolute error of about one ULP of the sum of |x*grad|. "
        "In float64 the rounding of that sum depends on its order, which differs between backends "
        "(threads, blocks, pairwise): the results agree to a small multiple of eps times the sum of "
        "|x*grad| (measured: up to 2e-17 of it), not to 1e-12 of a sum that cancels far below it.",
    ),
    Spec(
        "rrelu", RRELU, "Randomized leaky ReLU: a random slope per element in training, their mean in evaluation.",
        "training: rrelu(x) = x if x > 0 else a*x, a ~ U(lower, upper) per element\n"
        "evaluation: rrelu(x) = leaky_relu(x, (lower + upper) / 2)",
        "d/dx = 1 if x > 0 else the slope used in the forward",
        "In training mode the forward returns (y, slopes); slopes holds 1 where x > 0 and the sampled slope elsewhere "
        "(PyTorch's noise tensor), and must be passed to rrelu_backward(..., training=True, slopes=slopes).",
        params=(
            _p_float("lower", 1.0 / 8.0, doc="Lower bound of the slope distribution.", sample=_uniform(0.0, 0.2)),
            _p_float("upper", 1.0 / 3.0, doc="Upper bound of the slope distribution.", sample=_uniform(0.25, 0.5)),
            Param("training", False, "bool", None, "True or False", "Sample random slopes (True) or use their mean (False)."),
            Param("rng", None, "rng", None, "None, an int seed or a numpy.random.Generator",
                  "Random generator for the slopes in training mode.", where="forward"),
            Param("slopes", None, "array", None, "None or an array of x's shape",
                  "Slopes to use instead of sampling (forward) or those the training forward returned (backward)."),
        ),
        check=lambda p: "lower must be <= upper" if p["lower"] > p["upper"] else None,
        kinks=lambda p: (0.0,), torch="rrelu",
    ),
    Spec(
        "elu", ELEMENTWISE, "Exponential linear unit.",
        "elu(x) = x if x > 0 else alpha * (exp(x) - 1)",
        "elu'(x) = 1 if x > 0 else alpha * exp(x)   (alpha at 0, as PyTorch)",
        "-inf gives -alpha; no overflow for large x.",
        params=(_p_float("alpha", 1.0, doc="Scale of the negative part.", sample=_uniform(0.1, 2.0)),),
        y_ok=lambda p: p["alpha"] >= 0, y_rule="allowed when alpha >= 0: elu'(x) = y + alpha where y <= 0.",
        kinks=lambda p: (0.0,), torch="elu",
    ),
    Spec(
        "selu", ELEMENTWISE, "Scaled ELU with the self-normalising constants.",
        "selu(x) = scale * (x if x > 0 else alpha * (exp(x) - 1)),\n"
        "alpha = 1.6732632423543772848170429916717, scale = 1.0507009873554804934193349852946",
        "selu'(x) = scale if x > 0 else scale * alpha * exp(x)",
        "-inf gives -scale*alpha.",
        y_ok=True, y_rule="allowed: selu'(x) = y + scale*alpha where y <= 0.",
        kinks=lambda p: (0.0,), torch="selu",
    ),
    Spec(
        "celu", ELEMENTWISE, "Continuously differentiable ELU.",
        "celu(x) = x if x > 0 else alpha * (exp(x / alpha) - 1)",
        "celu'(x) = 1 if x > 0 else exp(x / alpha)",
        "-inf gives -alpha (alpha > 0).",
        params=(_p_float("alpha", 1.0, valid=lambda v: math.isfinite(v) and v != 0, valid_text="a finite non-zero number",
                         doc="Scale of the negative part.", sample=_uniform(0.2, 2.0)),),
        y_ok=True, y_rule="allowed: celu'(x) = (y + alpha)/alpha where y <= 0.",
        kinks=lambda p: (0.0,), torch="celu",
    ),
    Spec(
        "gelu", ELEMENTWISE, "Gaussian error linear unit.",
        "approximate='none': gelu(x) = x * Phi(x) = x/2 * erfc(-x/sqrt(2))\n"
        "approximate='tanh': gelu(x) = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))",
        "'none': Phi(x) + x * phi(x),  phi(x) = exp(-x^2/2)/sqrt(2 pi)\n"
        "'tanh': (1 + t)/2 + x/2 * (1 - t^2) * sqrt(2/pi) * (1 + 3*0.044715 x^2)",
        "gelu(-inf) = 0 (the limit), gelu(+inf) = +inf; no overflow in the cubic.",
        params=(Param("approximate", "none", "choice", None, "'none' or 'tanh'", "The exact (erf) or the tanh form.",
                      choices=("none", "tanh")),),
        torch="gelu",
        bounds=_CANCELLING_BWD, bound_note=_CANCELLING_NOTE,
    ),
    Spec(
        "sigmoid", ELEMENTWISE, "Logistic sigmoid.",
        "sigmoid(x) = 1 / (1 + exp(-x))",
        "sigmoid'(x) = s (1 - s)",
        "sigmoid(-1000) = 0, sigmoid(1000) = 1, no overflow warning.",
        y_ok=True, y_rule="allowed: sigmoid'(x) = y (1 - y).", torch="sigmoid",
    ),
    Spec(
        "log_sigmoid", ELEMENTWISE, "Logarithm of the sigmoid.",
        "log_sigmoid(x) = -softplus(-x) = min(x, 0) - log1p(exp(-|x|))",
        "log_sigmoid'(x) = sigmoid(-x)",
        "log_sigmoid(-1000) = -1000, log_sigmoid(+inf) = 0.",
        y_ok=True, y_rule="allowed: log_sigmoid'(x) = 1 - exp(y) = -expm1(y); a y above 0, which log_sigmoid never returns, counts as 0.",
        torch="logsigmoid",
    ),
    Spec(
        "hardsigmoid", ELEMENTWISE, "Piecewise-linear sigmoid.",
        "hardsigmoid(x) = 0 if x <= -3, 1 if x >= 3, else x/6 + 1/2",
        "hardsigmoid'(x) = 1/6 if -3 < x < 3 else 0",
        "NaN stays NaN.", kinks=lambda p: (-3.0, 3.0), torch="hardsigmoid",
    ),
    Spec(
        "hardswish", ELEMENTWISE, "Hard swish: x * hardsigmoid(x).",
        "hardswish(x) = 0 if x <= -3, x if x >= 3, else x (x + 3) / 6",
        "hardswish'(x) = 0 if x <= -3, x/3 + 1/2 if x < 3, else 1   (PyTorch's choices at the kinks)",
        "NaN stays NaN.", kinks=lambda p: (-3.0, 3.0), torch="hardswish",
    ),
    Spec(
        "silu", ELEMENTWISE, "Sigmoid linear unit (swish with beta = 1).",
        "silu(x) = x * sigmoid(x)",
        "silu'(x) = s (1 + x (1 - s)),  s = sigmoid(x)",
        "silu(-inf) = 0 (the limit), silu(-1e4) = -0.", torch="silu",
        bounds=_CANCELLING_BWD, bound_note=_CANCELLING_NOTE,
    ),
    Spec(
        "swish", ELEMENTWISE, "Swish with a slope: x * sigmoid(beta x).",
        "swish(x) = x * sigmoid(beta * x)",
        "swish'(x) = s + beta x s (1 - s),  s = sigmoid(beta x)",
        "Equal to silu at beta = 1; the limits at +-inf are taken (0 where sigmoid(beta x) -> 0).",
        params=(_p_float("beta", 1.0, doc="Slope inside the sigmoid.", sample=_uniform(0.2, 3.0)),),
        torch=None,
        bounds=_CANCELLING_BWD, bound_note=_CANCELLING_NOTE,
    ),
    Spec(
        "mish", ELEMENTWISE, "Mish: x * tanh(softplus(x)).",
        "mish(x) = x * tanh(log1p(exp(x)))",
        "mish'(x) = t + x * sigmoid(x) * (1 - t^2),  t = tanh(softplus(x))",
        "mish(-inf) = 0, mish(+inf) = +inf; no overflow at +-1e4.", torch="mish",
        bounds={**_CANCELLING_BWD, **_F32_FORWARD}, bound_note=_CANCELLING_NOTE + " " + _MISH_FORWARD_NOTE,
    ),
    Spec(
        "tanh", ELEMENTWISE, "Hyperbolic tangent.",
        "tanh(x)", "tanh'(x) = 1 - tanh(x)^2", "tanh(+-inf) = +-1.",
        y_ok=True, y_rule="allowed: tanh'(x) = 1 - y^2.", torch="tanh",
    ),
    Spec(
        "hardtanh", ELEMENTWISE, "Clip to [min_val, max_val].",
        "hardtanh(x) = min_val if x < min_val, max_val if x > max_val, else x",
        "hardtanh'(x) = 1 if min_val < x < max_val else 0",
        "NaN stays NaN.",
        params=(
            _p_float("min_val", -1.0, valid=_not_nan, valid_text="a number, not NaN", doc="Lower clip.", sample=_uniform(-2.0, -0.5)),
            _p_float("max_val", 1.0, valid=_not_nan, valid_text="a number, not NaN", doc="Upper clip.", sample=_uniform(0.5, 2.0)),
        ),
        check=lambda p: "min_val must be <= max_val" if p["min_val"] > p["max_val"] else None,
        kinks=lambda p: (p["min_val"], p["max_val"]), torch="hardtanh",
    ),
    Spec(
        "softplus", ELEMENTWISE, "Smooth ReLU: log(1 + exp(beta x)) / beta, linear above a threshold.",
        "softplus(x) = x if beta x > threshold else log1p(exp(beta x)) / beta",
        "softplus'(x) = 1 if beta x > threshold else sigmoid(beta x)",
        "softplus(1000) = 1000, softplus(-1000) = 0; never overflows, whatever the threshold.",
        params=(
            _p_float("beta", 1.0, valid=lambda v: math.isfinite(v) and v > 0, valid_text="a finite number > 0",
                     doc="Sharpness.", sample=_uniform(0.5, 3.0)),
            _p_float("threshold", 20.0, valid=_not_nan, valid_text="a number, not NaN",
                     doc="Above beta*x > threshold the function is x.", sample=_uniform(5.0, 30.0)),
        ),
        y_ok=True, y_rule="allowed: softplus'(x) = -expm1(-beta y) where beta y <= threshold, else 1.",
        kinks=lambda p: (p["threshold"] / p["beta"],), torch="softplus",
    ),
    Spec(
        "softsign", ELEMENTWISE, "Softsign: x / (1 + |x|).",
        "softsign(x) = x / (1 + |x|)", "softsign'(x) = 1 / (1 + |x|)^2", "softsign(+-inf) = +-1.",
        torch="softsign",
    ),
    Spec(
        "hardshrink", ELEMENTWISE, "Hard shrinkage: zero inside [-lambd, lambd].",
        "hardshrink(x) = 0 if -lambd <= x <= lambd else x",
        "hardshrink'(x) = 0 if -lambd <= x <= lambd else 1",
        "NaN stays NaN.",
        params=(_p_float("lambd", 0.5, valid=lambda v: math.isfinite(v) and v >= 0, valid_text="a finite number >= 0",
                         doc="Half-width of the dead zone.", sample=_uniform(0.1, 1.0)),),
        kinks=lambda p: (-p["lambd"], p["lambd"]), torch="hardshrink",
    ),
    Spec(
        "softshrink", ELEMENTWISE, "Soft shrinkage: move x towards 0 by lambd.",
        "softshrink(x) = x - lambd if x > lambd, x + lambd if x < -lambd, else 0",
        "softshrink'(x) = 0 if -lambd <= x <= lambd else 1",
        "NaN stays NaN.",
        params=(_p_float("lambd", 0.5, valid=lambda v: math.isfinite(v) and v >= 0, valid_text="a finite number >= 0",
                         doc="Shrinkage.", sample=_uniform(0.1, 1.0)),),
        kinks=lambda p: (-p["lambd"], p["lambd"]), torch="softshrink",
    ),
    Spec(
        "tanhshrink", ELEMENTWISE, "x - tanh(x).",
        "tanhshrink(x) = x - tanh(x)   (a series near 0, so no cancellation)",
        "tanhshrink'(x) = tanh(x)^2",
        "Accurate to the last bits near 0, where the value is about x^3/3.", torch="tanhshrink",
    ),
    Spec(
        "threshold", ELEMENTWISE, "Replace values at or below a threshold.",
        "threshold(x) = value if x <= threshold else x",
        "threshold'(x) = 0 if x <= threshold else 1",
        "NaN stays NaN.",
        params=(
            _p_float("threshold", REQUIRED, valid=_not_nan, valid_text="a number, not NaN", doc="The threshold.",
                     sample=_uniform(-1.0, 1.0), positional=True),
            _p_float("value", REQUIRED, valid=_not_nan, valid_text="a number, not NaN", doc="The replacement.",
                     sample=_uniform(-2.0, 2.0), positional=True),
        ),
        kinks=lambda p: (p["threshold"],), torch="threshold",
    ),
    Spec(
        "squareplus", ELEMENTWISE, "Squareplus (as in JAX): a smooth ReLU built from a square root.",
        "squareplus(x) = (x + sqrt(x^2 + b)) / 2   (computed as b / (2 (sqrt(x^2 + b) - x)) for x < 0)",
        "squareplus'(x) = (1 + x / sqrt(x^2 + b)) / 2",
        "No overflow in x^2; squareplus(-inf) = 0, squareplus(+inf) = +inf. At b = 0 it is relu, with derivative 1/2 at 0.",
        params=(_p_float("b", 4.0, valid=lambda v: math.isfinite(v) and v >= 0, valid_text="a finite number >= 0",
                         doc="Smoothness.", sample=_uniform(0.5, 8.0)),),
        torch=None,
    ),
    Spec(
        "glu", GLU, "Gated linear unit: the first half of the axis times the sigmoid of the second.",
        "glu(x) = a * sigmoid(b),  a, b = the two halves of x along `axis`",
        "d/da = sigmoid(b) * grad;   d/db = a * sigmoid(b) * (1 - sigmoid(b)) * grad",
        "The axis length must be even; the output's axis is half as long.",
        params=(AXIS_PARAM,), torch="glu",
    ),
    _softmax_like(
        "softmax", "Softmax along an axis.",
        "softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x)",
        "d/dx = y * (grad - sum(grad * y))",
        "allowed: the derivative is written from y.",
        _SOFTMAX_EDGES, "softmax", _AXIS_BOUNDS, _AXIS_NOTE,
    ),
    _softmax_like(
        "log_softmax", "Logarithm of the softmax along an axis.",
        "log_softmax(x)_i = x_i - max x - log(sum_j exp(x_j - max x))",
        "d/dx = grad - exp(y) * sum(grad)",
        "allowed: the derivative is written from y.",
        _SOFTMAX_EDGES, "log_softmax",
        {**_AXIS_BOUNDS, ("forward", "float32"): (2e-6, 1e-6), ("forward", "float64"): (1e-12, 1e-14)},
        _AXIS_NOTE + " log_softmax near 0 (one dominant entry) is a difference of two numbers of the row's scale.",
    ),
    _softmax_like(
        "softmin", "Softmin along an axis: softmax(-x).",
        "softmin(x)_i = exp(min x - x_i) / sum_j exp(min x - x_j)",
        "d/dx = -y * (grad - sum(grad * y))",
        "allowed: the derivative is written from y.",
        "+inf entries are masked (probability 0); a row of only +inf, or holding -inf or NaN, gives NaN.",
        "softmin", _AXIS_BOUNDS, _AXIS_NOTE,
    ),
    _softmax_like(
        "sparsemax", "Sparsemax along an axis: the Euclidean projection onto the probability simplex (JAX's definition).",
        "sparsemax(x)_i = max(x_i - tau, 0), tau such that the outputs sum to 1",
        "d/dx = (grad - mean of grad over the support) on the support (y > 0), 0 elsewhere",
        "allowed: the support is y > 0.",
        "-inf entries get 0; a row of only -inf, or holding +inf or NaN, gives NaN.",
        None,
        {("forward", "float32"): (2e-6, 2e-6), ("backward", "float32"): (2e-6, 2e-6),
         ("forward", "float64"): (1e-12, 1e-13), ("backward", "float64"): (1e-12, 1e-13)},
        "x - tau cancels for entries near the threshold: the error is absolute, a few ULP of the row's scale.",
    ),
    Spec(
        "maxout", MAXOUT, "Maxout: the maximum of each group of `pieces` consecutive values along an axis.",
        "maxout(x)[..., j, ...] = max(x[..., j*pieces : (j+1)*pieces, ...])",
        "the gradient goes to the first maximum of each group; the others get 0",
        "NaN propagates (a group holding NaN gives NaN, and its gradient goes to the first NaN).",
        params=(
            Param("pieces", REQUIRED, "int", lambda v: v >= 1, "an integer >= 1 that divides x.shape[axis]",
                  "Group size.", positional=True, sample=lambda rng: int(rng.integers(1, 4))),
            AXIS_PARAM,
        ),
        torch=None,
    ),
)

_BY_NAME = {s.name: s for s in SPECS}


def get_spec(name: str) -> Spec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; fastact.activations() lists them") from None
