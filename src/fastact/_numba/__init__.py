"""Numba backend: ``BACKEND`` implements ``docs/backend-contract.md``.

Importing this package imports numba but compiles nothing; each kernel compiles
on first use for its dtype and is cached on disk (``cache=True``). The cache
goes next to this package when that is writable; otherwise, unless the user
set ``NUMBA_CACHE_DIR``, to a per-user directory chosen here.
"""

import os
import sys


def _choose_cache_dir():
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    here = os.path.dirname(os.path.abspath(__file__))
    pycache = os.path.join(here, "__pycache__")
    target = pycache if os.path.isdir(pycache) else here
    if os.access(target, os.W_OK | os.X_OK):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastact", "numba")


_cache_dir = _choose_cache_dir()
if _cache_dir is not None:
    os.environ["NUMBA_CACHE_DIR"] = _cache_dir
    if "numba" in sys.modules:  # numba read its config already: tell it directly
        sys.modules["numba"].config.CACHE_DIR = _cache_dir

from .backend import BACKEND  # noqa: E402

__all__ = ["BACKEND"]
