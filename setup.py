"""Build script for fastact's compiled Cython backend.

Metadata lives in pyproject.toml; this file only describes the extension
modules, because what they are depends on the build machine:

* fastact._fastpath: the checks that select the public functions' fast path,
  in C (fastact._api has Python versions of them when it is not built).

* The same kernel source (src/fastact/_cython/_impl.pxi) is compiled once per
  x86-64 instruction set -- baseline SSE2, AVX2+FMA, AVX-512 -- as three
  modules (_k_base, _k_avx2, _k_avx512).  fastact._cython picks one at import
  with a run-time CPU check, so one build is portable (no -march=native) and
  still uses 512-bit vectors where the CPU has them.  Other architectures get
  _k_base only, compiled with the compiler's defaults.
* OpenMP is probed by compiling and linking a tiny program.  Without it the
  modules are built serial, with a warning.
* glibc's vector math library (libmvec) is probed the same way, per
  instruction set.  With it, loops calling exp/tanh/erf/... are vectorised
  (the _ZGV... variants, <= 4 ULP); without it they call scalar libm.
* Never -ffast-math / -Ofast: linking crtfastmath.o would switch the whole
  Python process to flush-to-zero.  -fno-math-errno and -fno-trapping-math
  are enough for gcc to vectorise (libm calls become const, selects around a
  division can be if-converted) and change no result.

Environment knobs: FASTACT_NO_OPENMP=1 builds serial modules,
FASTACT_NO_MVEC=1 skips libmvec, FASTACT_ISA_VARIANTS=base,avx2 limits the
variants built (faster development builds).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
CYDIR = os.path.join("src", "fastact", "_cython")

COMMON_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fno-semantic-interposition"]

# (name, extra flags); the baseline must run on every x86-64 CPU.
# -fsched-pressure: without it gcc 12 read x[i] from memory once per use in
# some vector loops (softshrink's float32 forward: four vector loads of one
# address per iteration, as memory operands), which costs where x is not on a
# 64-byte line and each load splits two lines: 1e6 float32, one thread, x
# 16 bytes off a line, 124 -> 83 us (2 threads, the module: 63 -> 43). It
# changes scheduling and register allocation only, not the arithmetic.
# -mf16c: the float16 conversions (_fastact_cpu.h, fastact_h2f/f2h).
X86_VARIANTS = [
    ("base", []),
    ("avx2", ["-mavx2", "-mfma", "-mf16c", "-fsched-pressure"]),
    (
        "avx512",
        ["-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw", "-mavx2", "-mfma", "-mf16c",
         "-mprefer-vector-width=512", "-fsched-pressure"],
    ),
]

OPENMP_PROBE = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    printf("%d %d\n", n, omp_get_max_threads());
    return n > 0 ? 0 : 1;
}
"""

# The loop must vectorise into _ZGV... calls for every function the kernels
# use; linking then proves that libmvec provides them (glibc >= 2.35 for
# expm1/log1p/tanh/erf/erfc).
MVEC_PROBE = r"""
#define FASTACT_MVEC 1
#include "_fastact_cpu.h"
float xf[1024], yf[1024]; double xd[1024], yd[1024];
int main(void) {
    for (int i = 0; i < 1024; i++) { xf[i] = (float)i / 512.0f; xd[i] = i / 512.0; }
    for (int i = 0; i < 1024; i++)
        yf[i] = expf(xf[i]) + expm1f(xf[i]) + log1pf(xf[i]) + logf(xf[i] + 1.0f)
              + tanhf(xf[i]) + erff(xf[i]) + erfcf(xf[i]);
    for (int i = 0; i < 1024; i++)
        yd[i] = exp(xd[i]) + expm1(xd[i]) + log1p(xd[i]) + log(xd[i] + 1.0)
              + tanh(xd[i]) + erf(xd[i]) + erfc(xd[i]);
    return yf[3] > 0 && yd[3] > 0 ? 0 : 1;
}
"""


def _is_x86_64() -> bool:
    m = platform.machine().lower()
    return m in ("x86_64", "amd64", "x64")


def _compiler_cmd() -> list[str]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return cc.split()


def _try_build(source: str, cflags: list[str], ldflags: list[str], run: bool = False) -> tuple[bool, str]:
    """Compile and link `source`; return (ok, compiler output)."""
    tmp = tempfile.mkdtemp(prefix="fastact-probe-")
    try:
        src = os.path.join(tmp, "probe.c")
        exe = os.path.join(tmp, "probe")
        with open(src, "w") as f:
            f.write(source)
        cmd = _compiler_cmd() + cflags + ["-I", os.path.join(HERE, CYDIR), src, "-o", exe] + ldflags
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as e:
            return False, str(e)
        if p.returncode != 0:
            return False, p.stdout + p.stderr
        if run:
            try:
                r = subprocess.run([exe], capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.SubprocessError) as e:
                return False, str(e)
            return r.returncode == 0, r.stdout + r.stderr
        return True, ""
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _warn(msg: str) -> None:
    print(f"\n*** fastact build WARNING: {msg}\n", file=sys.stderr)
    warnings.warn(msg, stacklevel=2)


def probe_openmp() -> list[str]:
    """Flags for OpenMP, or [] when the compiler cannot build an OpenMP program."""
    if os.environ.get("FASTACT_NO_OPENMP"):
        _warn("FASTACT_NO_OPENMP is set: the Cython backend is built without OpenMP (single-threaded).")
        return []
    if sys.platform == "win32":
        return []  # MSVC's /openmp is OpenMP 2.0 without the features prange uses reliably
    ok, out = _try_build(OPENMP_PROBE, ["-fopenmp"], ["-fopenmp"])
    if ok:
        return ["-fopenmp"]
    _warn(
        "the C compiler cannot build an OpenMP program (tried -fopenmp); the Cython backend is built "
        "single-threaded. Install an OpenMP runtime (e.g. libgomp / libomp-dev) and rebuild for threads.\n"
        + out.strip()[-800:]
    )
    return []


# gcc stops inlining once the whole translation unit has grown by
# inline-unit-growth per cent. The kernels' vectorised loops depend on their
# math helpers (cdef inline exp, log1p, ...) being inlined: past the limit a
# helper is called out of line and its loop runs scalar, every result still
# right. Measured: the softmax short-row path, when added, left exp out of
# line in the row softmax (a float32 row of 1000: 1.5 -> 4.6 us). A higher
# limit keeps that from depending on how much code the unit holds;
# tests/test_cython_backend.py checks that no helper is out of line.
INLINE_FLAGS = ["--param=inline-unit-growth=400"]


def probe_inline_flags() -> list[str]:
    """INLINE_FLAGS when the compiler takes them (gcc; clang has no such parameter), else []."""
    ok, _ = _try_build("int main(void) { return 0; }\n", INLINE_FLAGS + ["-Werror"], [])
    return INLINE_FLAGS if ok else []


def probe_mvec(isa_flags: list[str]) -> bool:
    if os.environ.get("FASTACT_NO_MVEC") or not _is_x86_64() or sys.platform != "linux":
        return False
    ok, out = _try_build(MVEC_PROBE, ["-O3", "-fno-math-errno", "-fno-trapping-math"] + isa_flags, ["-lmvec", "-lm"])
    return ok


def render_templates() -> None:
    """Render *.pxi.in (Tempita) next to themselves when the output is stale."""
    from Cython import Tempita

    d = os.path.join(HERE, CYDIR)
    for fn in os.listdir(d):
        if not fn.endswith(".pxi.in"):
            continue
        src = os.path.join(d, fn)
        dst = src[:-3]
        if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src):
            continue
        with open(src) as f:
            text = Tempita.sub(f.read())
        with open(dst, "w") as f:
            f.write(text)


def make_extensions() -> list[Extension]:
    import numpy as np
    from Cython.Build import cythonize

    render_templates()
    unix = sys.platform != "win32"
    omp = probe_openmp() if unix else []
    inl = probe_inline_flags() if unix else []
    wanted = os.environ.get("FASTACT_ISA_VARIANTS")
    variants = X86_VARIANTS if (_is_x86_64() and unix) else [("base", [])]
    if wanted:
        keep = {v.strip() for v in wanted.split(",")}
        variants = [v for v in variants if v[0] in keep or v[0] == "base"]

    exts = []
    any_mvec = False
    for name, isa in variants:
        mvec = probe_mvec(isa) if unix else False
        any_mvec |= mvec
        cflags = (COMMON_FLAGS + inl + isa + omp) if unix else ["/O2"]
        macros = [
            ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
            ("FASTACT_ISA", f'"{name}"'),
            ("FASTACT_CFLAGS", '"' + " ".join(cflags + (["-lmvec"] if mvec else [])) + '"'),
        ]
        if mvec:
            macros.append(("FASTACT_MVEC", "1"))
        exts.append(
            Extension(
                f"fastact._cython._k_{name}",
                [os.path.join(CYDIR, f"_k_{name}.pyx")],
                include_dirs=[np.get_include(), CYDIR],
                define_macros=macros,
                extra_compile_args=cflags,
                extra_link_args=omp,
                libraries=(["mvec", "m"] if mvec else (["m"] if unix else [])),
            )
        )
    # the public functions' fast-path checks (fastact._api has Python versions): no ISA flags, no OpenMP
    exts.append(
        Extension(
            "fastact._fastpath",
            [os.path.join("src", "fastact", "_fastpath.pyx")],
            include_dirs=[np.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=COMMON_FLAGS if unix else ["/O2"],
        )
    )
    if unix and _is_x86_64() and not any_mvec and not os.environ.get("FASTACT_NO_MVEC"):
        _warn("glibc libmvec (>= 2.35) not found: exp/tanh/erf loops in the Cython backend stay scalar (slower).")

    return cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "nonecheck": False,
            "embedsignature": False,
        },
        nthreads=int(os.environ.get("FASTACT_CYTHONIZE_JOBS", "0")) or min(3, os.cpu_count() or 1),
    )


class BuildExt(build_ext):
    """build_ext that compiles the ISA variants in parallel by default."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = max(1, min(3, os.cpu_count() or 1))


setup(ext_modules=make_extensions(), cmdclass={"build_ext": BuildExt})
