"""fastact's Cython backend: typed loops compiled per instruction set.

The kernels are built three times on x86-64 (``_k_base``: SSE2, ``_k_avx2``:
AVX2+FMA+F16C, ``_k_avx512``: AVX-512 F/DQ/VL/BW with 512-bit vectors).  Importing
this package asks the baseline module which extensions the CPU (and OS)
support and loads the widest one that works.  ``FASTACT_CYTHON_ISA``
(``base``, ``avx2``, ``avx512``) forces a variant -- for tests and
benchmarks; a variant the CPU cannot run is refused, never loaded.

If no compiled module can be imported, importing this package raises
ImportError saying why; ``import fastact`` itself never depends on it.
"""

from __future__ import annotations

import importlib
import os

__all__ = ["BACKEND", "ISA", "available_isas", "load_variant"]

_ORDER = ("avx512", "avx2", "base")
_NEEDS = {"avx512": 2, "avx2": 1, "base": 0}


def _import(name: str):
    return importlib.import_module(f"{__name__}._k_{name}")


def _load():
    try:
        base = _import("base")
    except ImportError as e:
        raise ImportError(
            "fastact's Cython extension is not compiled or failed to load "
            f"({type(e).__name__}: {e}); build it with `pip install .` or "
            "`python setup.py build_ext --inplace`"
        ) from e
    feats = base.cpu_features()
    usable = [v for v in _ORDER if (feats & _NEEDS[v]) == _NEEDS[v]]
    forced = os.environ.get("FASTACT_CYTHON_ISA", "").strip().lower()
    if forced and forced != "auto":
        if forced not in _NEEDS:
            raise ImportError(f"FASTACT_CYTHON_ISA={forced!r}: expected one of auto, {', '.join(_ORDER)}")
        if forced not in usable:
            raise ImportError(f"FASTACT_CYTHON_ISA={forced!r}: this CPU supports only {', '.join(usable)}")
        usable = [forced]
    errors = []
    for v in usable:
        if v == "base":
            return base, v, errors
        try:
            return _import(v), v, errors
        except ImportError as e:  # variant not built (e.g. FASTACT_ISA_VARIANTS) or broken
            errors.append(f"{v}: {e}")
    raise ImportError("fastact's Cython backend: no usable ISA variant (" + "; ".join(errors) + ")")


def available_isas() -> list[str]:
    """ISA variants this CPU can run and that were built and import."""
    base = _import("base")
    feats = base.cpu_features()
    out = []
    for v in _ORDER:
        if (feats & _NEEDS[v]) != _NEEDS[v]:
            continue
        try:
            _import(v)
        except ImportError:
            continue
        out.append(v)
    return out


def load_variant(isa: str):
    """The BACKEND of one ISA variant (tests compare variants with this)."""
    if isa not in available_isas():
        raise ImportError(f"ISA variant {isa!r} is not usable here")
    return _import(isa).BACKEND


_module, ISA, _load_errors = _load()
BACKEND = _module.BACKEND


def info() -> dict:
    d = BACKEND.info()
    d["isa_selected"] = ISA
    d["cpu_features"] = {"avx2_fma": bool(_module.cpu_features() & 1), "avx512": bool(_module.cpu_features() & 2)}
    if _load_errors:
        d["skipped_variants"] = list(_load_errors)
    return d
