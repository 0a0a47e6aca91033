"""fastact: fast, trustworthy activation functions (forward and backward) for NumPy arrays.

Every function of ``torch.nn.functional``'s activation catalogue, as
``fastact.<name>(x, ..., out=None)`` and ``fastact.<name>_backward(grad_output,
x=None, *, y=None, ..., out=None)``, computed by the fastest backend available
(``numba``, ``cython``) and checked against a NumPy reference (``numpy``).
``fastact.activations()`` lists them with their parameters.
"""

from __future__ import annotations

from . import _api
from ._backends import get_backend, set_backend, use_backend
from ._config import get_num_threads, set_num_threads
from ._info import show_config
from ._registry import SPECS as _SPECS
from ._registry import Param, Spec

__version__ = "0.1.0"

forward = _api.forward
backward = _api.backward
explain = _api.explain

globals().update(_api.FUNCTIONS)


def activations() -> list[Spec]:
    """Every activation's spec: name, parameters with defaults and valid ranges, kind, y= rule, bounds."""
    return list(_SPECS)


__all__ = sorted(
    [
        "activations",
        "forward",
        "backward",
        "explain",
        "get_backend",
        "set_backend",
        "use_backend",
        "get_num_threads",
        "set_num_threads",
        "show_config",
        "Spec",
        "Param",
        "__version__",
    ]
    + list(_api.FUNCTIONS)
)
