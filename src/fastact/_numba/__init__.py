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

# LLVM's tuning for Intel's server CPUs with AVX-512 prefers 256-bit vectors
# ("prefer-256-bit"): the Numba kernels then ran in ymm registers, where the
# Cython build and torch use zmm. Measured on an emeraldrapids machine, 1e5
# float32, 2 threads: gelu forward 87 -> 65 us, silu 57 -> 43, tanh 48 -> 40,
# softplus 125 -> 103; one thread gelu 128 -> 83. On CPUs with AVX-512 from
# Ice Lake on (not the older skylake-avx512 / cascadelake / cooperlake, whose
# clock drops with 512-bit work) numba gets the host's features with
# "-prefer-256-bit" appended, unless the user chose features
# (NUMBA_CPU_FEATURES or NUMBA_CPU_NAME) or set FASTACT_NUMBA_ZMM=0. Those
# CPUs are told by a feature the older ones lack (WIDE_FEATURE: AVX512-VBMI2,
# Ice Lake, Tiger Lake, Rocket Lake, Sapphire/Emerald/Granite Rapids, Zen 4
# and 5), not by LLVM's name for the CPU, which comes from the model number:
# virtual machines of one kind here reported emeraldrapids on one day and
# rocketlake (model 167, with AMX and AVX512-FP16) on another, and a list of
# names left the second at ymm (softplus forward 1e5 one thread 133 us against
# 79 in zmm). It is numba's setting for the whole process: numba code of the
# user's compiled after this also prefers 512-bit vectors (same results,
# elementwise; README, "Numba's vector width").
WIDE_FEATURE = "avx512vbmi2"


def _choose_cpu_features():
    if os.environ.get("NUMBA_CPU_FEATURES") or os.environ.get("NUMBA_CPU_NAME"):
        return None
    if os.environ.get("FASTACT_NUMBA_ZMM", "1").strip() == "0":
        return None
    import llvmlite.binding as ll

    feats = ll.get_host_cpu_features()
    if not (feats.get("avx512f") and feats.get(WIDE_FEATURE)):
        return None
    return feats.flatten() + ",-prefer-256-bit"


cpu_features = _choose_cpu_features()
if cpu_features is not None:
    import numba  # noqa: E402

    numba.config.CPU_FEATURES = cpu_features

from .backend import BACKEND  # noqa: E402

__all__ = ["BACKEND"]
