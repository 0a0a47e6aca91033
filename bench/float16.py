"""float16 elementwise calls: fastact against PyTorch's own float16 kernels.

Standalone script, not a test:  PYTHONPATH=src python bench/float16.py
Options: --sizes 1e3,1e5,1e6,1e7   --only relu,gelu

fastact computes float16 in float32. Where the Cython extension is built with
the conversion instructions (its AVX2 and AVX-512 variants), an elementwise
call on float16 runs the float32 loops block by block, each block widened and
narrowed on the stack (``_elementwise.pxi``, ``_par_u_h``): one pass over
float16 memory. Before that, the public layer widened the whole array into a
float32 temporary, ran the kernel into another and narrowed the result: three
passes. Both are timed here in one process, taking turns (``before`` turns the
block path off, ``fastact._api._half_fns = False``, and keeps the compiled
converter), with PyTorch's float16 kernels and fastact's float32 call on the
same values beside them, all on the Cython backend (``use_backend``: under
``auto`` the whole-array path would run whichever backend the float32 table
picks, whose bits may differ).

Every call allocates its result, through the public functions
(``fastact.gelu(x)``, ``fastact.gelu_backward(g, x)``). Backward rows of
relu, sigmoid and tanh are timed from y (``y=``), as PyTorch's read the
forward's output. softmax, log_softmax and softmin run along rows of 1000
(their float16 rows convert group by group on the stack, ``_impl.pxi``,
``_rows_h``); their backwards from y, against PyTorch's float16 backward
kernels (softmin's has none and is left out); glu along rows of 1000 too
(``_rows_h``), its backward from x as PyTorch's; prelu on rows of 64 channels
and on images of 32 channels of 16 x 16 (``_prelu_h``), its backward against
PyTorch's kernel (``_prelu_kernel_backward``: both gradients).
2 threads; glibc's malloc keeps freed memory, as in the
other benches (``fastact._tuning.keep_freed_memory``). Ratios are PyTorch's
time over ours: above 1, fastact is faster.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import cython_vs_torch as cvt  # noqa: E402  (its tables of torch calls; sets 2 threads)

import fastact  # noqa: E402
from fastact import _api, _tuning  # noqa: E402

import torch  # noqa: E402

F16 = np.float16
FROM_Y = ("relu", "sigmoid", "tanh")  # PyTorch's backward reads y
# the elementwise functions PyTorch has, with their forward and backward calls
NAMES = [n for n, (p, tf) in cvt.FUNCS.items()
         if tf is not None and n in cvt.TORCH_BWD and n not in ("glu", "softmax", "log_softmax", "softmin")]


def _public(name):
    """fastact's forward and backward for a bench name, with its parameters."""
    params = dict(cvt.FUNCS[name][0])
    fn = "gelu" if name == "gelu_tanh" else name
    return getattr(fastact, fn), getattr(fastact, fn + "_backward"), params


# the softmax family along rows of ROW (bench/cython_vs_torch.py's ROW):
# PyTorch's float16 backward kernels read y, as fastact's y= rows here
ROWS = {
    "softmax": (lambda t: torch.softmax(t, -1), lambda g, y: torch.ops.aten._softmax_backward_data(g, y, -1, torch.float16)),
    "log_softmax": (lambda t: torch.log_softmax(t, -1),
                    lambda g, y: torch.ops.aten._log_softmax_backward_data(g, y, -1, torch.float16)),
    "softmin": (lambda t: torch.nn.functional.softmin(t, -1), None),
    # glu: its float16 rows too (_impl.pxi, _rows_h); the backward from x, as PyTorch's
    "glu": (lambda t: torch.nn.functional.glu(t, -1), lambda g, x: torch.ops.aten.glu_backward(g, x, -1)),
}


def row_cases(name, size, rng):
    f, b = getattr(fastact, name), getattr(fastact, name + "_backward")
    tf, tb = ROWS[name]
    rows = max(1, size // cvt.ROW)
    x = (rng.standard_normal((rows, cvt.ROW)) * 3).astype(F16)
    x32 = x.astype(np.float32)
    y, y32 = f(x, axis=-1), f(x32, axis=-1)
    g = rng.standard_normal(y.shape).astype(F16)
    g32 = g.astype(np.float32)
    xt, gt, yt = torch.from_numpy(x), torch.from_numpy(g), torch.from_numpy(y)
    yield "fwd", lambda: f(x, axis=-1), lambda: tf(xt), lambda: f(x32, axis=-1)
    if name == "glu":
        yield "bwd", lambda: b(g, x, axis=-1), lambda: tb(gt, xt), lambda: b(g32, x32, axis=-1)
    elif tb is not None:
        yield "bwd", lambda: b(g, y=y, axis=-1), lambda: tb(gt, yt), lambda: b(g32, y=y32, axis=-1)


# prelu: rows of 64 channels (bench/cython_vs_torch.py's), and images of 32
# channels of 16 x 16 (runs of one weight); one slope of 0.25 per channel.
# Its float16 walks convert run by run on the stack (_impl.pxi, _prelu_h).
PRELU = {"prelu": (64, 1), "prelu_nchw": (32, 256)}


def prelu_cases(name, size, rng):
    c, inner = PRELU[name]
    shape = (max(1, size // (c * inner)), c) + ((inner,) if inner > 1 else ())
    x = (rng.standard_normal(shape) * 3).astype(F16)
    g = rng.standard_normal(shape).astype(F16)
    w = np.full(c, 0.25, F16)
    x32, g32, w32 = x.astype(np.float32), g.astype(np.float32), w.astype(np.float32)
    xt, gt, wt = torch.from_numpy(x), torch.from_numpy(g), torch.from_numpy(w)
    wb = wt.reshape((c,) + (1,) * (len(shape) - 2))  # the kernel's weight broadcasts against x
    yield "fwd", lambda: fastact.prelu(x, w), lambda: torch.nn.functional.prelu(xt, wt), lambda: fastact.prelu(x32, w32)
    yield ("bwd", lambda: fastact.prelu_backward(g, x, w), lambda: torch.ops.aten._prelu_kernel_backward(gt, xt, wb),
           lambda: fastact.prelu_backward(g32, x32, w32))


def cases(name, size, rng):
    if name in ROWS:
        yield from row_cases(name, size, rng)
        return
    if name in PRELU:
        yield from prelu_cases(name, size, rng)
        return
    f, b, p = _public(name)
    tf = cvt.FUNCS[name][1]
    x = (rng.standard_normal(size) * 3).astype(F16)
    g = rng.standard_normal(size).astype(F16)
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    xt, gt = torch.from_numpy(x), torch.from_numpy(g)
    yt = tf(xt)
    if name in FROM_Y:
        y, y32 = f(x, **p), f(x32, **p)
        ours_b = lambda: b(g, y=y, **p)  # noqa: E731
        ours_b32 = lambda: b(g32, y=y32, **p)  # noqa: E731
    else:
        ours_b = lambda: b(g, x, **p)  # noqa: E731
        ours_b32 = lambda: b(g32, x32, **p)  # noqa: E731
    tb = cvt.TORCH_BWD[name]
    yield "fwd", lambda: f(x, **p), lambda: tf(xt), lambda: f(x32, **p)
    yield "bwd", ours_b, lambda: tb(gt, xt, yt), ours_b32


def _before(call):
    """call on the path before the block kernels: whole-array conversions around the float32 kernel."""
    def run():
        saved, _api._half_fns = _api._half_fns, False
        try:
            return call()
        finally:
            _api._half_fns = saved
    return run


def run(sizes, only):
    rng = np.random.default_rng(0)
    names = [n for n in NAMES + list(ROWS) + list(PRELU) if not only or n in only]
    rows = []
    print("| function | dir | size | fastact µs | before µs | torch f16 µs | fastact f32 µs | torch/fastact | before/fastact |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        for name in names:
            for d, ours, theirs, ours32 in cases(name, size, rng):
                a = ours()
                with np.errstate(over="ignore"):
                    want = _before(ours)()
                for ai, wi in zip(a if isinstance(a, tuple) else (a,), want if isinstance(want, tuple) else (want,)):
                    assert ai.dtype == F16 and np.array_equal(ai, wi, equal_nan=True), f"{name} {d} {size}: not the same bits"
                t_o, t_b, t_t, t_32 = cvt.best_of(size, ours, _before(ours), theirs, ours32)
                rows.append((name, d, size, t_o, t_b, t_t))
                print(f"| {name} | {d} | {size:.0e} | {t_o * 1e6:.1f} | {t_b * 1e6:.1f} | {t_t * 1e6:.1f} | "
                      f"{t_32 * 1e6:.1f} | {t_t / t_o:.2f} | {t_b / t_o:.2f} |", flush=True)

    def gm(v):
        return math.exp(sum(math.log(r) for r in v) / len(v))

    for size in sizes:
        sel = [r for r in rows if r[2] == size]
        print(f"size {size:.0e}: torch/fastact {gm([r[5] / r[3] for r in sel]):.2f}x, "
              f"before/fastact {gm([r[4] / r[3] for r in sel]):.2f}x over {len(sel)}")
    slow = [f"{r[0]} {r[1]} {r[2]:.0e} ({r[5] / r[3]:.2f})" for r in rows if r[5] < r[3]]
    print("slower than torch:", ", ".join(slow) or "none")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e3,1e5,1e6,1e7")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    if not _api._half_kernels("relu", fastact._backends.load("cython")):
        sys.exit("no float16 block kernels in this build (the Cython extension's AVX2 or AVX-512 variant)")
    _tuning.keep_freed_memory()
    with fastact.use_backend("cython"):  # the float32 kernels of every column are the Cython backend's
        run([int(float(s)) for s in a.sizes.split(",")], set(filter(None, a.only.split(","))))


if __name__ == "__main__":
    main()
