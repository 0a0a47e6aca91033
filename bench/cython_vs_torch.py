"""Cython backend vs PyTorch (CPU, 2 threads) vs the NumPy reference.

Standalone script, not a test:  PYTHONPATH=src python bench/cython_vs_torch.py
Options: --sizes 1e3,1e5,1e7   --only relu,gelu   --threshold (serial/parallel
break-even sweep for the serial threshold in _impl.pxi).

Every timing is float32 and *allocating*, like the torch call it is compared
with: ours is ``out = np.empty_like(x); BACKEND.forward(name, x, out, params)``
(the backend object directly, without the public layer's validation), torch's
is ``F.f(t)``.  Backward: ours ``BACKEND.backward(name, g, x, None, out, p)``;
torch's is the ATen backward kernel where one exists
(``torch.ops.aten.<fn>_backward`` and friends, listed in TORCH_BWD), otherwise
``torch.autograd.grad(y, t, g, retain_graph=True)`` on a graph built once, so
only the backward pass is timed (marked "ag" in the table; it includes
autograd's per-call overhead of a few microseconds).  The limit at 1e7 is an
allocating 2-thread parallel copy (Numba prange, the bandwidth floor of any
forward).  Times are the best of several repeats, ours and torch's taking
turns (best_of); ratios > 1 mean the Cython backend is faster.

Allocation (--alloc, default ``reuse``).  An allocating call at 1e7 float32
(40 MB) gets its result from mmap, i.e. fresh pages, and on the development
VM (Firecracker, free-page reporting) the page faults dominate and vary from
run to run: the allocating parallel copy took 3.8-59 ms between runs where
the same copy into an existing array took 2.3-2.8 ms; torch's F.relu
15-17 ms (it does not madvise huge pages as NumPy does), ours 4-55 ms.  Two
libgomp pools were suspected and ruled out: OMP_WAIT_POLICY=passive changed
nothing at 1e7 (and made 1e5 calls 2-5x slower), and alternating Cython and
Numba (or torch) parallel calls cost no more than the sum of each alone.  So
by default the script tells glibc's malloc to keep freed memory
(fastact._tuning.keep_freed_memory, as the tuner does): every
allocating call, ours, torch's and the copy's alike, then reuses warm pages,
as a training loop does after its first step.  ``--alloc system`` keeps the
default allocator (numbers then include first-touch page faults).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import fastact._config as _config  # noqa: E402
import fastact._cython as cy  # noqa: E402
from fastact import _tuning  # noqa: E402

try:
    from fastact._reference import BACKEND as REF
except ImportError:  # pragma: no cover
    REF = None

import torch  # noqa: E402

ALLOC = "system"  # "reuse" once glibc's malloc keeps freed memory (__main__, --alloc)
import torch.nn.functional as F  # noqa: E402

NTHREADS = 2
torch.set_num_threads(NTHREADS)
_config.set_num_threads(NTHREADS)
B = cy.BACKEND
aten = torch.ops.aten

# name -> (our params, torch forward or None)
FUNCS = {
    "relu": ({}, F.relu),
    "relu6": ({}, F.relu6),
    "leaky_relu": ({"negative_slope": 0.01}, lambda t: F.leaky_relu(t, 0.01)),
    "prelu": ({"weight": None}, None),  # filled below (needs arrays)
    "rrelu": ({"slopes": None, "lower": 1 / 8, "upper": 1 / 3, "training": True}, None),
    "elu": ({"alpha": 1.0}, F.elu),
    "selu": ({}, F.selu),
    "celu": ({"alpha": 1.0}, F.celu),
    "gelu": ({"approximate": "none"}, F.gelu),
    "gelu_tanh": ({"approximate": "tanh"}, lambda t: F.gelu(t, approximate="tanh")),
    "sigmoid": ({}, torch.sigmoid),
    "log_sigmoid": ({}, F.logsigmoid),
    "hardsigmoid": ({}, F.hardsigmoid),
    "hardswish": ({}, F.hardswish),
    "silu": ({}, F.silu),
    "swish": ({"beta": 1.5}, None),
    "mish": ({}, F.mish),
    "tanh": ({}, torch.tanh),
    "hardtanh": ({"min_val": -1.0, "max_val": 1.0}, F.hardtanh),
    "softplus": ({"beta": 1.0, "threshold": 20.0}, F.softplus),
    "softsign": ({}, F.softsign),
    "hardshrink": ({"lambd": 0.5}, F.hardshrink),
    "softshrink": ({"lambd": 0.5}, F.softshrink),
    "tanhshrink": ({}, F.tanhshrink),
    "threshold": ({"threshold": 0.1, "value": 20.0}, lambda t: F.threshold(t, 0.1, 20.0)),
    "squareplus": ({"b": 4.0}, None),
    "glu": ({"axis": -1}, lambda t: F.glu(t, -1)),
    "softmax": ({"axis": -1}, lambda t: F.softmax(t, -1)),
    "log_softmax": ({"axis": -1}, lambda t: F.log_softmax(t, -1)),
    "softmin": ({"axis": -1}, lambda t: F.softmin(t, -1)),
    "sparsemax": ({"axis": -1}, None),
    "maxout": ({"pieces": 2}, None),
}
# torch's backward kernel for these reads y only: our x-based backward is shown
# but not compared (the bwd(y) row is the like-for-like one). softmin: torch's
# autograd saves softmax(-x) and differentiates from it.
TORCH_Y_ONLY = ("relu", "sigmoid", "tanh", "softmax", "log_softmax", "softmin")
CHEAP = ("relu", "relu6", "leaky_relu", "hardtanh", "hardsigmoid", "threshold")
# torch's backward for these reads the forward's output; fastact also has a
# y-based backward: both are timed ("backward" from x, "backward_y" from y)
# against the same torch call, so the y row compares like with like.
# log_sigmoid's reads x and a buffer its forward saved; ours, the saved y.
Y_BWD = ("relu", "sigmoid", "tanh", "elu", "log_sigmoid", "softmax", "log_softmax", "softmin")
ROW = 1000  # row length for the along-axis functions

# torch backward kernels: f(g, t, y) -> tensor
TORCH_BWD = {
    "relu": lambda g, t, y: aten.threshold_backward(g, y, 0),
    "relu6": lambda g, t, y: aten.hardtanh_backward(g, t, 0.0, 6.0),
    "leaky_relu": lambda g, t, y: aten.leaky_relu_backward(g, t, 0.01, False),
    "elu": lambda g, t, y: aten.elu_backward(g, 1.0, 1.0, 1.0, False, t),
    "selu": lambda g, t, y: aten.elu_backward(g, 1.6732632423543772, 1.0507009873554805, 1.0, False, t),
    "celu": lambda g, t, y: aten.elu_backward(g, 1.0, 1.0, 1.0, False, t),
    "gelu": lambda g, t, y: aten.gelu_backward(g, t),
    "gelu_tanh": lambda g, t, y: aten.gelu_backward(g, t, approximate="tanh"),
    "sigmoid": lambda g, t, y: aten.sigmoid_backward(g, y),
    "hardsigmoid": lambda g, t, y: aten.hardsigmoid_backward(g, t),
    "hardswish": lambda g, t, y: aten.hardswish_backward(g, t),
    "silu": lambda g, t, y: aten.silu_backward(g, t),
    "mish": lambda g, t, y: aten.mish_backward(g, t),
    "tanh": lambda g, t, y: aten.tanh_backward(g, y),
    "hardtanh": lambda g, t, y: aten.hardtanh_backward(g, t, -1.0, 1.0),
    "softplus": lambda g, t, y: aten.softplus_backward(g, t, 1.0, 20.0),
    "hardshrink": lambda g, t, y: aten.hardshrink_backward(g, t, 0.5),
    "softshrink": lambda g, t, y: aten.softshrink_backward(g, t, 0.5),
    "threshold": lambda g, t, y: aten.threshold_backward(g, t, 0.1),
    "softmax": lambda g, t, y: aten._softmax_backward_data(g, y, -1, torch.float32),
    "log_softmax": lambda g, t, y: aten._log_softmax_backward_data(g, y, -1, torch.float32),
    "glu": lambda g, t, y: aten.glu_backward(g, t, -1),
}


def best(fn, size):
    """Best per-call time in seconds."""
    return best_of(size, fn)[0]


def best_of(size, *fns):
    """Best per-call time in seconds of each function, their repeats interleaved.

    Each function is first run for about 2 ms, then the timed repeats take
    turns (ours, torch's, ours, ...): timed one after the other, the first
    function measured at a size paid for whatever warm-up the machine still
    needed (relu, the first, read 0.80-0.88x torch at 1e5 in every run while
    its own hardtanh, and relu in a steady loop, tied torch).
    """
    inner = max(1, int(2e6 // max(size, 1)))
    inner = min(inner, 2000)
    reps = 7 if size < 1e7 else 5
    for fn in fns:
        t0 = time.perf_counter()
        fn()
        while time.perf_counter() - t0 < 2e-3:
            fn()
    bts = [math.inf] * len(fns)
    for _ in range(reps):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            bts[i] = min(bts[i], (time.perf_counter() - t0) / inner)
    return bts


def _parallel_copy():
    try:
        import numba

        # numba's pool started by fastact's Numba backend, which turns off the
        # nested parallelism numba's omp layer turns on at its start (see
        # fastact/_numba/backend.py): started here by this copy, it made
        # torch.tanh at 1e5, sharing the libgomp, 100x slower (3.4 ms)
        from fastact._numba import backend as _nb

        _nb._start_parallel()
        numba.set_num_threads(NTHREADS)

        @numba.njit(parallel=True, cache=False)
        def pcopy(a, b):
            for i in numba.prange(a.shape[0]):
                b[i] = a[i]

        def run(x):
            o = np.empty_like(x)
            pcopy(x.ravel(), o.ravel())
            return o

        run(np.zeros(10, np.float32))
        return run, "numba prange copy"
    except Exception:  # pragma: no cover
        return (lambda x: x.copy()), "np.copy (1 thread)"


def make_case(name, n, rng):
    """Our (x, params, kind-shaped arrays) and the torch tensor."""
    params, _ = FUNCS[name]
    params = dict(params)
    our = "gelu" if name == "gelu_tanh" else name
    if name in ("softmax", "log_softmax", "softmin", "sparsemax"):
        rows = max(1, n // ROW)
        x = rng.standard_normal((rows, ROW)).astype(np.float32)
        x3 = x.reshape(rows, ROW, 1)
        return our, x, x3, params
    if name in ("glu", "maxout"):
        rows = max(1, n // ROW)
        x = rng.standard_normal((rows, ROW)).astype(np.float32)
        return our, x, x.reshape(rows, ROW, 1), params
    if name == "prelu":
        C = 64
        rows = max(1, n // C)
        x = rng.standard_normal((rows, C)).astype(np.float32)
        params["weight"] = np.full(C, 0.25, np.float32)
        return our, x, x.reshape(rows, C, 1), params
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    if name == "rrelu":
        params["slopes"] = rng.uniform(1 / 8, 1 / 3, n).astype(np.float32)
    for k in ("axis",):
        params.pop(k, None)
    return our, x, x, params


def out_shape(name, x3, direction):
    if direction == "forward" and name == "glu":
        return (x3.shape[0], x3.shape[1] // 2, x3.shape[2])
    if direction == "forward" and name == "maxout":
        return (x3.shape[0], x3.shape[1] // 2, x3.shape[2])
    return x3.shape


def torch_case(name, x, params):
    t = torch.from_numpy(x)
    if name == "prelu":
        w = torch.from_numpy(params["weight"])
        return (lambda: F.prelu(t, w)), t
    if name == "rrelu":
        return None, t
    fwd = FUNCS[name][1]
    return ((lambda: fwd(t)) if fwd is not None else None), t


def torch_backward(name, x, params):
    t = torch.from_numpy(x).clone()
    if name in TORCH_BWD:
        y = FUNCS[name][1](t)
        g = torch.randn_like(y)
        f = TORCH_BWD[name]
        return (lambda: f(g, t, y)), "aten"
    if name == "log_sigmoid":
        # the kernel reads x and the buffer (exp(-|x|)) its forward saved
        y, buf = aten.log_sigmoid_forward(t)
        g = torch.randn_like(y)
        return (lambda: aten.log_sigmoid_backward(g, t, buf)), "aten"
    if name == "prelu":
        w = torch.from_numpy(params["weight"])
        g = torch.randn_like(t)
        return (lambda: aten._prelu_kernel_backward(g, t, w)), "aten"
    fwd = FUNCS[name][1]
    if fwd is None:
        return None, ""
    t.requires_grad_(True)
    y = fwd(t)
    g = torch.randn_like(y)
    return (lambda: torch.autograd.grad(y, t, g, retain_graph=True)), "ag"


def run(sizes, only):
    rng = np.random.default_rng(0)
    copy, copy_name = _parallel_copy()
    rows = []
    names = [n for n in FUNCS if not only or n in only]
    for n in sizes:
        xc = rng.standard_normal(n).astype(np.float32)
        t_copy = best(lambda: copy(xc), n)
        for name in names:
            our, x, x3, params = make_case(name, n, rng)
            y3 = np.empty(out_shape(our, x3, "forward"), np.float32)
            B.forward(our, x3, y3, params)
            g3 = rng.standard_normal(y3.shape).astype(np.float32)
            dirs = ("forward", "backward") + (("backward_y",) if name in Y_BWD else ())
            for direction in dirs:
                if direction == "forward":
                    shp = out_shape(our, x3, "forward")

                    def ours(x3=x3, shp=shp, our=our, params=params):
                        o = np.empty(shp, np.float32)
                        B.forward(our, x3, o, params)

                    def ref(x3=x3, shp=shp, our=our, params=params):
                        o = np.empty(shp, np.float32)
                        REF.forward(our, x3, o, params)

                    tf, _ = torch_case(name, x, params)
                    how = ""
                elif direction == "backward_y":

                    def ours(x3=x3, g3=g3, y3=y3, our=our, params=params):
                        o = np.empty(x3.shape, np.float32)
                        B.backward(our, g3, None, y3, o, params)

                    def ref(x3=x3, g3=g3, y3=y3, our=our, params=params):
                        o = np.empty(x3.shape, np.float32)
                        REF.backward(our, g3, None, y3, o, params)

                    tf, how = torch_backward(name, x, params)
                else:

                    def ours(x3=x3, g3=g3, our=our, params=params):
                        o = np.empty(x3.shape, np.float32)
                        B.backward(our, g3, x3, None, o, params)

                    def ref(x3=x3, g3=g3, our=our, params=params):
                        o = np.empty(x3.shape, np.float32)
                        REF.backward(our, g3, x3, None, o, params)

                    tf, how = torch_backward(name, x, params)
                t_ours, t_torch = best_of(n, ours, tf) if tf is not None else (best(ours, n), None)
                t_ref = best(ref, n) if (REF is not None and n == 100_000) else None
                rows.append((name, direction, n, t_ours, t_torch, how, t_ref, t_copy))
                print(
                    f"  {name:12s} {direction:10s} {n:>9d}  cy {t_ours * 1e6:9.1f} us"
                    + (f"  torch {t_torch * 1e6:9.1f} us ({t_torch / t_ours:5.2f}x)" if t_torch else "")
                    + (f"  ref x{t_ref / t_ours:6.1f}" if t_ref else ""),
                    file=sys.stderr,
                    flush=True,
                )
    return rows, copy_name


def report(rows, copy_name):
    print(f"\nallocator: {ALLOC}; x-based backward rows of "
          f"{', '.join(TORCH_Y_ONLY)} are not compared (torch's kernel reads y: see bwd(y))")
    print(f"\nfastact cython backend ({cy.ISA}, libmvec={B.info()['libmvec']}, "
          f"openmp={B.info()['openmp']}) vs torch {torch.__version__} ({NTHREADS} threads); float32, allocating\n")
    print("| function | dir | n | cython µs | torch µs | torch/cython | ref/cython | cython/copy |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    slow = []
    for name, d, n, to, tt, how, tr, tc in rows:
        r = tt / to if tt else None
        if r and d == "backward" and name in TORCH_Y_ONLY:
            r = None  # torch's kernel is y-based: compared in the bwd(y) row
            how = "y"
        if r:
            ratios.append(r)
            if r < 1.0:
                slow.append(f"{name} {d} {n:g} ({r:.2f}x)")
        cells = [
            name,
            {"forward": "fwd", "backward": "bwd", "backward_y": "bwd(y)"}[d],
            f"{n:.0e}",
            f"{to * 1e6:.1f}",
            f"{tt * 1e6:.1f}{' ag' if how == 'ag' else ''}{' (from y)' if how == 'y' else ''}" if tt else "—",
            f"{r:.2f}" if r else "—",
            f"{tr / to:.0f}" if tr else "",
            f"{to / tc:.2f}" if n >= 10**7 else "",
        ]
        print("| " + " | ".join(cells) + " |")
    if ratios:
        gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"\ngeomean torch/cython over {len(ratios)} timings: {gm:.2f}x")
    print("slower than torch:", ", ".join(slow) if slow else "none")
    cheap = [(n_, to / tc) for n_, d, n, to, tt, how, tr, tc in rows if n >= 10**7 and d == "forward" and n_ in CHEAP]
    if cheap:
        print(f"cheap forwards at 1e7 vs {copy_name}: " + ", ".join(f"{a} {b:.2f}x" for a, b in cheap))
    refs = [tr / to for name, d, n, to, tt, how, tr, tc in rows if tr]
    if refs:
        print(f"vs NumPy reference at 1e5: min {min(refs):.1f}x, geomean "
              f"{math.exp(sum(map(math.log, refs)) / len(refs)):.1f}x")


def threshold_sweep():
    """Serial vs 2-thread time per size, for the serial thresholds in _impl.pxi."""
    rng = np.random.default_rng(0)
    # ratio serial/parallel time; > 1 means the parallel run is faster
    print("| n | relu fwd | relu bwd | sigmoid fwd | gelu bwd | softmax fwd (rows of 1000) |")
    print("|---|---|---|---|---|---|")
    for n in (2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144):
        x = rng.standard_normal(n).astype(np.float32)
        g = rng.standard_normal(n).astype(np.float32)
        o = np.empty_like(x)
        x3 = x.reshape(-1, 1024, 1) if n >= 1024 else x.reshape(1, -1, 1)
        o3 = np.empty_like(x3)
        runs = [
            lambda nt: B.forward("relu", x, o, {}, nt),
            lambda nt: B.backward("relu", g, x, None, o, {}, nt),
            lambda nt: B.forward("sigmoid", x, o, {}, nt),
            lambda nt: B.backward("gelu", g, x, None, o, {"approximate": "none"}, nt),
            lambda nt: B.forward("softmax", x3, o3, {}, nt),
        ]
        cells = [str(n)]
        for f in runs:
            cells.append(f"{best(lambda: f(1), n) / best(lambda: f(2), n):.2f}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e3,1e5,1e7")
    ap.add_argument("--only", default="")
    ap.add_argument("--threshold", action="store_true")
    ap.add_argument("--alloc", choices=("reuse", "system"), default="reuse",
                    help="reuse: glibc's malloc keeps freed memory (see the module doc)")
    a = ap.parse_args()
    if a.alloc == "reuse" and _tuning.keep_freed_memory():
        ALLOC = "reuse"
    if a.threshold:
        threshold_sweep()
        sys.exit(0)
    sizes = [int(float(s)) for s in a.sizes.split(",")]
    only = {s.strip() for s in a.only.split(",") if s.strip()}
    rows, copy_name = run(sizes, only)
    report(rows, copy_name)
