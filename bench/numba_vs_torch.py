"""Numba backend vs PyTorch (CPU, 2 threads) vs the NumPy reference, float32.

    PYTHONPATH=src python bench/numba_vs_torch.py [--sizes 1e3,1e5,1e7] [--only relu,gelu]
    PYTHONPATH=src python bench/numba_vs_torch.py --threshold   # serial/parallel cut-over

Every call allocates its result, on every side: ``out = np.empty_like(x);
BACKEND.forward(name, x, out, params)`` against ``F.<fn>(t)``. Backward uses
the ATen backward kernel where one exists (``torch.ops.aten.<fn>_backward``,
which allocates its result like ours) -- not autograd, whose graph bookkeeping
would flatter us. Where torch's kernel takes the forward output (sigmoid, tanh,
softmax family) ours gets ``y=`` as well, so both do the same work; log_sigmoid's
takes x and a buffer its forward saved, ours the saved output y (one array less
to read, one formula: -g*expm1(y)). softsign, tanhshrink and softmin have no
backward kernel in ATen: torch's is autograd's (``torch.autograd.grad`` on a
graph built once), marked ``ag`` and left out of the geometric mean. prelu is
timed as in bench/cython_vs_torch.py: 64 channels along the last axis
(``F.prelu(t, w)``; backward ``aten._prelu_kernel_backward``, which also returns
the weight's gradient, as ours does).
Kernels are compiled (and torch warmed up) before anything is timed; each
figure is the best of several repeats of a loop lasting >= ~20 ms.

Order (--order, default ``turns``): per case, ours and torch's take turns,
three rounds of two repeats each, with a pause of PAUSE seconds after every
loop, so that the idle workers of one thread pool have gone to sleep before
the other's loop starts (interleaved call by call, the two pools disturbed
each other: ~7 ms stalls per call); each figure is its best over the rounds.
``phases`` times all of ours, then all of torch's, each in a phase of its
own, as before session 38: in a full run that puts minutes between our
figure and torch's for a case, and on a host whose speed drifts (2x at 1e7
on the development VM) a ratio then says more about the drift than about
the kernels (elu's backward at 1e7 read 0.71 in a full run that way, and
1.06 timed in turns in one process).

Allocation (--alloc, default ``reuse``, as in bench/cython_vs_torch.py):
glibc's malloc keeps freed memory (fastact._tuning.keep_freed_memory), so every
allocating call -- ours, torch's, the copy's -- reuses warm pages, as a
training loop does after its first step. ``--alloc system`` keeps the default
allocator: at 1e7 every call then also pays the first-touch faults of a fresh
40 MB result, which vary from run to run on this VM and which torch pays
without the huge pages NumPy asks for.

Columns: times in microseconds; ``vs torch`` = torch time / ours (> 1: we are
faster); ``vs numpy`` = reference time / ours; ``vs copy`` = our time / a
Numba prange copy that also allocates its output (the bandwidth floor; in
--order turns the cheap forwards' copy takes the same turns as the case,
the others' is timed once per size).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

import fastact._config as cfg
from fastact import _tuning
from fastact._numba import BACKEND as NB
from fastact._numba import _kernels as K

try:
    from fastact._reference import BACKEND as REF
except Exception:  # pragma: no cover - the reference is optional here
    REF = None

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
A = torch.ops.aten

ALPHA_SELU, SCALE_SELU = 1.6732632423543772, 1.0507009873554805
PRELU_C = 64  # prelu's channels (the last axis), as bench/cython_vs_torch.py
W_PRELU = torch.full((PRELU_C,), 0.25)


def _ag(f):
    """torch's backward of ``f`` through autograd, for functions without an
    ATen backward kernel: the graph is built once per input tensor."""
    memo = {}

    def tb(g, t, y):
        if memo.get("t") is not t:
            tt = t.detach().requires_grad_(True)
            memo.update(t=t, tt=tt, y=f(tt))
        return torch.autograd.grad(memo["y"], memo["tt"], g, retain_graph=True)

    return tb

# name -> (params, torch forward(t), torch backward(g, t, y) or None, our backward uses y)
CASES = {
    "relu": ({}, F.relu, lambda g, t, y: A.threshold_backward(g, t, 0.0), False),
    "relu6": ({}, F.relu6, lambda g, t, y: A.hardtanh_backward(g, t, 0.0, 6.0), False),
    "leaky_relu": ({"negative_slope": 0.01}, F.leaky_relu, lambda g, t, y: A.leaky_relu_backward(g, t, 0.01, False), False),
    "elu": ({"alpha": 1.0}, F.elu, lambda g, t, y: A.elu_backward(g, 1.0, 1.0, 1.0, False, t), False),
    "selu": ({}, F.selu, lambda g, t, y: A.elu_backward(g, ALPHA_SELU, SCALE_SELU, 1.0, False, t), False),
    "celu": ({"alpha": 1.0}, F.celu, lambda g, t, y: A.elu_backward(g, 1.0, 1.0, 1.0, False, t), False),
    "gelu": ({"approximate": "none"}, F.gelu, lambda g, t, y: A.gelu_backward(g, t), False),
    "gelu_tanh": ({"approximate": "tanh"}, lambda t: F.gelu(t, approximate="tanh"),
                  lambda g, t, y: A.gelu_backward(g, t, approximate="tanh"), False),
    "sigmoid": ({}, torch.sigmoid, lambda g, t, y: A.sigmoid_backward(g, y), True),
    # F.logsigmoid is log_sigmoid_forward, which also returns the buffer its
    # backward reads (with x): ours reads the saved output y instead
    "log_sigmoid": ({}, lambda t: A.log_sigmoid_forward(t), lambda g, t, y: A.log_sigmoid_backward(g, t, y[1]), True),
    "hardsigmoid": ({}, F.hardsigmoid, lambda g, t, y: A.hardsigmoid_backward(g, t), False),
    "hardswish": ({}, F.hardswish, lambda g, t, y: A.hardswish_backward(g, t), False),
    "silu": ({}, F.silu, lambda g, t, y: A.silu_backward(g, t), False),
    "swish": ({"beta": 1.0}, None, None, False),
    "mish": ({}, F.mish, lambda g, t, y: A.mish_backward(g, t), False),
    "tanh": ({}, torch.tanh, lambda g, t, y: A.tanh_backward(g, y), True),
    "hardtanh": ({"min_val": -1.0, "max_val": 1.0}, F.hardtanh, lambda g, t, y: A.hardtanh_backward(g, t, -1.0, 1.0), False),
    "softplus": ({"beta": 1.0, "threshold": 20.0}, F.softplus, lambda g, t, y: A.softplus_backward(g, t, 1.0, 20.0), False),
    "softsign": ({}, F.softsign, _ag(F.softsign), False),
    "hardshrink": ({"lambd": 0.5}, F.hardshrink, lambda g, t, y: A.hardshrink_backward(g, t, 0.5), False),
    "softshrink": ({"lambd": 0.5}, F.softshrink, lambda g, t, y: A.softshrink_backward(g, t, 0.5), False),
    "tanhshrink": ({}, F.tanhshrink, _ag(F.tanhshrink), False),
    "threshold": ({"threshold": 0.1, "value": 0.0}, lambda t: F.threshold(t, 0.1, 0.0),
                  lambda g, t, y: A.threshold_backward(g, t, 0.1), False),
    "squareplus": ({"b": 4.0}, None, None, False),
    # along-axis: one row per 1000 elements (axis=-1)
    "softmax": ({}, lambda t: torch.softmax(t, -1), lambda g, t, y: A._softmax_backward_data(g, y, -1, torch.float32), True),
    "log_softmax": ({}, lambda t: torch.log_softmax(t, -1),
                    lambda g, t, y: A._log_softmax_backward_data(g, y, -1, torch.float32), True),
    "softmin": ({}, lambda t: F.softmin(t, -1), _ag(lambda t: F.softmin(t, -1)), True),
    "sparsemax": ({}, None, None, True),
    "glu": ({}, lambda t: F.glu(t, -1), lambda g, t, y: A.glu_backward(g, t, -1), False),
    "maxout": ({"pieces": 2}, None, None, False),
    "prelu": ({}, lambda t: F.prelu(t, W_PRELU), lambda g, t, y: A._prelu_kernel_backward(g, t, W_PRELU), False),
}
AXIS = {"softmax", "log_softmax", "softmin", "sparsemax"}
AUTOGRAD = {"softsign", "tanhshrink", "softmin"}  # torch's backward is autograd's
CHEAP = {"relu", "relu6", "leaky_relu", "hardtanh", "hardsigmoid", "threshold"}


def best_time(fn, min_time=0.02, repeats=5):
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time or n >= 1 << 20:
            break
        n = max(n * 2, int(n * min_time / max(dt, 1e-9)))
    best = dt / n
    for _ in range(repeats - 1):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


PAUSE = 0.03  # seconds after each timed loop in --order turns (bench_size)
ROUNDS = 3  # rounds of turns per case


def _our_name(key):
    return "gelu" if key == "gelu_tanh" else key


def setup(key, size, rng):
    """(x, g, y, params, torch forward, torch backward) for one case."""
    params, tf, tb, use_y = CASES[key]
    name = _our_name(key)
    x = (rng.standard_normal(size) * 3).astype(np.float32)
    params = dict(params)
    if name in AXIS:
        rows = max(1, size // 1000)
        x = x[: rows * (size // rows)].reshape(rows, -1)
        x3 = x.reshape(rows, -1, 1)
        y3 = np.empty_like(x3)
        NB.forward(name, x3, y3, params)
        g3 = rng.standard_normal(x3.shape).astype(np.float32)
        return name, x3, g3, y3, params, x, tf, tb, use_y
    if name == "glu":
        x3 = x.reshape(1, -1, 1) if x.size % 2 == 0 else x[:-1].reshape(1, -1, 1)
        g3 = rng.standard_normal((1, x3.shape[1] // 2, 1)).astype(np.float32)
        return name, x3, g3, None, params, x3.reshape(-1), tf, tb, use_y
    if name == "maxout":
        x3 = x.reshape(1, -1, 1)
        g3 = rng.standard_normal((1, x3.shape[1] // 2, 1)).astype(np.float32)
        return name, x3, g3, None, params, None, None, None, use_y
    if name == "prelu":
        params = {"weight": W_PRELU.numpy()}
        rows = max(1, size // PRELU_C)
        x = x[: rows * PRELU_C].reshape(rows, PRELU_C)
        x3 = x.reshape(rows, PRELU_C, 1)
        return name, x3, rng.standard_normal(x3.shape).astype(np.float32), None, params, x, tf, tb, use_y
    g = rng.standard_normal(size).astype(np.float32)
    y = np.empty_like(x)
    NB.forward(name, x, y, params)
    return name, x, g, y, params, x, tf, tb, use_y


def bench_size(keys, size, rng, with_ref, order="turns"):
    """Times for every case at one size: in turns (``order``, see the module
    doc), or one implementation at a time (``phases``, described below).

    numba's and torch's OpenMP pools are two libgomp teams in one process;
    idle workers of one spin for a while and steal both cores from the other,
    which then waits a scheduler tick (measured: ~7 ms stalls on every call
    when the two were interleaved). So all our cases run first, then all of
    torch's, then the reference, with a pause between the phases.

    Each phase makes one case's arrays at a time, from a seed of its own (the
    same arrays in every phase): holding all cases' arrays at once took 7 GB
    at 1e7. (In a full run the cheap kernels at 1e7 still measure up to 1.5x
    slower than in a run of a few cases -- relu 1.37-1.50x a parallel copy
    against 1.01x -- with or without this; the cause is not known.)
    """
    seeds = {k: int(rng.integers(2**32)) for k in keys}

    def cases():
        for k in keys:
            yield k, setup(k, size, np.random.default_rng(seeds[k]))

    res = {k: {} for k in keys}
    for k, (name, x, g, y, params, xt, tf, tb, use_y) in cases():
        fshape = g.shape

        def ours_f():
            out = np.empty(fshape, dtype=np.float32) if name in ("glu", "maxout") else np.empty_like(x)
            NB.forward(name, x, out, params)

        def ours_b():
            out = np.empty_like(x)
            if use_y:
                NB.backward(name, g, None, y, out, params)
            else:
                NB.backward(name, g, x, None, out, params)

        if order == "turns":
            fns = {"ours_f": ours_f, "ours_b": ours_b}
            fns.update(_torch_fns(name, x, g, xt, tf, tb))
            if k in CHEAP:
                fns["copy"] = copy_call(size)  # in the same turns: the "vs copy" of a cheap forward
            res[k].update(_in_turns(fns))
            continue
        res[k]["ours_f"] = best_time(ours_f)
        res[k]["ours_b"] = best_time(ours_b)
    res["copy"] = copy_time(size)
    time.sleep(0.2)
    for k, (name, x, g, y, params, xt, tf, tb, use_y) in (cases() if order == "phases" else ()):
        for key, fn in _torch_fns(name, x, g, xt, tf, tb).items():
            res[k][key] = best_time(fn)
    time.sleep(0.2)
    if with_ref and REF is not None:
        for k, (name, x, g, y, params, xt, tf, tb, use_y) in cases():
            fshape = g.shape

            def ref_f():
                out = np.empty(fshape, dtype=np.float32) if name in ("glu", "maxout") else np.empty_like(x)
                REF.forward(name, x, out, params)

            def ref_b():
                out = np.empty_like(x)
                REF.backward(name, g, None if use_y else x, y if use_y else None, out, params)

            res[k]["ref_f"] = best_time(ref_f, min_time=0.01, repeats=2)
            res[k]["ref_b"] = best_time(ref_b, min_time=0.01, repeats=2)
    return res


def _torch_fns(name, x, g, xt, tf, tb):
    """torch's forward and backward calls for a case (none where torch has no such function)."""
    if tf is None:
        return {}
    t = torch.from_numpy(np.ascontiguousarray(xt))
    fns = {"torch_f": lambda: tf(t)}
    if tb is not None:
        yt = tf(t)
        gt = torch.from_numpy(g.reshape(t.shape if isinstance(yt, tuple) else yt.shape))
        fns["torch_b"] = lambda: tb(gt, t, yt)
    return fns


def _in_turns(fns):
    """Best time of each function over ROUNDS rounds in which they take turns,
    two repeats each, a pause of PAUSE seconds after each."""
    best = {}
    for _ in range(ROUNDS):
        for key, fn in fns.items():
            t = best_time(fn, repeats=2)
            best[key] = min(best.get(key, math.inf), t)
            time.sleep(PAUSE)
    return best


def copy_call(size):
    """An allocating parallel copy of ``size`` float32 (the bandwidth floor)."""
    a = np.ones(size, dtype=np.float32)
    nt = cfg.get_num_threads()

    def f():
        out = np.empty_like(a)
        K.parallel_copy(a, out, nt)

    return f


def copy_time(size):
    return best_time(copy_call(size))


def fmt_ratio(a, b):
    return "—" if a is None or b is None else f"{a / b:.2f}"


def run(sizes, only, order="turns"):
    rng = np.random.default_rng(0)
    keys = [k for k in CASES if not only or k in only]
    # best_time() makes one untimed call first: that compiles (or loads) the
    # kernel for the path the size takes, so compilation is never timed.
    rows = []
    geo = {"torch": [], "ref1e5": []}
    for n in sizes:
        allr = bench_size(keys, n, rng, with_ref=n <= 100_000, order=order)
        for k in keys:
            r = allr[k]
            cp = r.get("copy", allr["copy"])
            for d in ("f", "b"):
                ours = r[f"ours_{d}"]
                tt = r.get(f"torch_{d}")
                rf = r.get(f"ref_{d}")
                if tt is not None and not (d == "b" and k in AUTOGRAD):
                    geo["torch"].append(tt / ours)
                if rf is not None and n == 100_000:
                    geo["ref1e5"].append(rf / ours)
                rows.append((k, "fwd" if d == "f" else "bwd", n, ours, tt, rf, cp))
        print(f"  size {n:.0e} done", file=sys.stderr)
    print("| function | dir | size | numba µs | torch µs | numpy µs | vs torch | vs numpy | vs copy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k, d, n, ours, tt, rf, cp in rows:
        ag = " ag" if d == "bwd" and k in AUTOGRAD else ""
        print(f"| {k} | {d} | {n:.0e} | {ours:.1f} | {'—' if tt is None else f'{tt:.1f}{ag}'} | "
              f"{'—' if rf is None else f'{rf:.1f}'} | {fmt_ratio(tt, ours)} | {fmt_ratio(rf, ours)} | "
              f"{ours / cp:.2f} |")
    gm = lambda v: math.exp(sum(map(math.log, v)) / len(v)) if v else float("nan")  # noqa: E731
    slow = [(k, d, n, tt / ours) for k, d, n, ours, tt, rf, cp in rows if tt is not None and tt < ours]
    print()
    print(f"geometric mean vs torch (all sizes, fwd+bwd; autograd rows left out): {gm(geo['torch']):.2f}x over {len(geo['torch'])} cases")
    print(f"geometric mean vs numpy reference at 1e5: {gm(geo['ref1e5']):.2f}x over {len(geo['ref1e5'])} cases")
    print("slower than torch: " + (", ".join(f"{k} {d} {n:.0e} ({r:.2f}x)" for k, d, n, r in slow) or "none"))
    cheap = [(k, ours / cp) for k, d, n, ours, tt, rf, cp in rows if d == "fwd" and n == 10_000_000 and k in CHEAP]
    if cheap:
        print("cheap forwards at 1e7 vs parallel copy: " + ", ".join(f"{k} {r:.2f}x" for k, r in cheap))


def threshold(only):
    """Time serial vs parallel kernels around the cut-over; prints the ratio."""
    rng = np.random.default_rng(0)
    names = only or ["relu", "hardtanh", "sigmoid", "gelu", "mish"]
    print("| function | n | serial µs | parallel µs | parallel/serial |")
    print("|---|---|---|---|---|")
    for name in names:
        params = dict(CASES[name][0])
        h = NB._fwd["gelu_none" if name == "gelu" else name]
        for e in range(10, 19):
            n = 1 << e
            x = rng.standard_normal(n).astype(np.float32)
            out = np.empty_like(x)
            ts = best_time(lambda: h(x, out, params, 1))  # threads=1: serial kernel
            tp = best_time(lambda: h(x, out, params, 2))  # threads=2: parallel kernel
            print(f"| {name} | 2^{e} | {ts:.2f} | {tp:.2f} | {tp / ts:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e3,1e5,1e7")
    ap.add_argument("--only", default="")
    ap.add_argument("--threshold", action="store_true")
    ap.add_argument("--alloc", choices=("reuse", "system"), default="reuse",
                    help="reuse: glibc's malloc keeps freed memory (see the module doc)")
    ap.add_argument("--order", choices=("turns", "phases"), default="turns",
                    help="turns: per case, ours and torch's in turns; phases: all of ours, then all of torch's")
    a = ap.parse_args()
    kept = a.alloc == "reuse" and _tuning.keep_freed_memory()
    print(f"allocator: {'freed memory kept' if kept else 'as it comes'}", file=sys.stderr)
    only = [s for s in a.only.split(",") if s]
    if a.threshold:
        threshold(only)
        return
    print(f"order: {a.order}", file=sys.stderr)
    run([int(float(s)) for s in a.sizes.split(",")], only, a.order)


if __name__ == "__main__":
    main()
