"""The softmax family along the last axis by row length: Numba, Cython and PyTorch (2 threads), float32.

    PYTHONPATH=src python bench/short_rows.py [--size 1e5] [--rows 2,10,32,100,1000]

The main benches (numba_vs_torch.py, cython_vs_torch.py) use rows of 1000.
Short rows -- a softmax over 10 classes for a batch of 10000 -- cost per row
more than per element, and forward rows of at most 24 (Cython's backward: 12)
take a path of their own (blocks of rows copied transposed; see
_kernels.SHORT_N and _axis.pxi's _SN). Every call allocates its result; backward is from y, against
ATen's ``_softmax_backward_data`` / ``_log_softmax_backward_data``. Columns:
times in microseconds, ``vs torch`` = torch time / ours (> 1: we are faster).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from fastact import _backends, _tuning
from fastact._registry import SPECS

NAMES = ("softmax", "log_softmax", "softmin")


def best(f, target=0.02, repeats=5):
    f()
    t0 = time.perf_counter()
    f()
    once = max(time.perf_counter() - t0, 1e-7)
    n = max(3, int(target / once))
    b = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        b = min(b, (time.perf_counter() - t0) / n)
    return b * 1e6


def torch_calls(name, x, g, y):
    """(forward, backward from y) as PyTorch does them, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    A = torch.ops.aten
    tx, tg, ty = (torch.from_numpy(a.reshape(a.shape[0], a.shape[1])) for a in (x, g, y))
    if name == "log_softmax":
        return (lambda: torch.log_softmax(tx, -1),
                lambda: A._log_softmax_backward_data(tg, ty, -1, torch.float32))
    sx = -tx if name == "softmin" else tx
    return (lambda: torch.softmax(sx, -1), lambda: A._softmax_backward_data(tg, ty, -1, torch.float32))


def run(size, rows, backends, target=0.02, out=sys.stdout):
    _tuning.keep_freed_memory()
    mods = {}
    for b in backends:
        ok, why = _backends.available(b)
        if ok:
            mods[b] = _backends.load(b)
        else:
            print(f"{b}: unavailable ({why})", file=out)
    rng = np.random.default_rng(0)
    header = ["function", "row", "dir"] + [f"{b} µs" for b in mods] + ["torch µs"] + [f"{b} vs torch" for b in mods]
    print("| " + " | ".join(header) + " |", file=out)
    print("|" + "---|" * len(header), file=out)
    results = []
    for name in NAMES:
        for L in rows:
            x = rng.standard_normal((max(1, size // L), L, 1)).astype(np.float32)
            g = rng.standard_normal(x.shape).astype(np.float32)
            y = np.empty_like(x)
            _backends.load("numpy").forward(name, x, y, {"axis": 1})
            tc = torch_calls(name, x, g, y)
            for d in ("fwd", "bwd"):
                times = {}
                for b, B in mods.items():
                    if d == "fwd":
                        def f(B=B):
                            o = np.empty_like(x)
                            B.forward(name, x, o, {"axis": 1})
                    else:
                        def f(B=B):
                            o = np.empty_like(x)
                            B.backward(name, g, None, y, o, {"axis": 1})
                    times[b] = best(f, target)
                tt = best(tc[0 if d == "fwd" else 1], target) if tc else None
                cells = [name, str(L), d] + [f"{times[b]:.1f}" for b in mods]
                cells += [f"{tt:.1f}" if tt else "—"] + [f"{tt / times[b]:.2f}" if tt else "—" for b in mods]
                print("| " + " | ".join(cells) + " |", file=out, flush=True)
                results.append((name, L, d, times, tt))
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1e5", help="elements per array (default 1e5)")
    ap.add_argument("--rows", default="2,10,32,100,1000", help="row lengths (default 2,10,32,100,1000)")
    ap.add_argument("--backends", default="numba,cython")
    ap.add_argument("--target", type=float, default=0.02, help="seconds per timing loop")
    a = ap.parse_args(argv)
    assert {s.name for s in SPECS} >= set(NAMES)
    res = run(int(float(a.size)), [int(r) for r in a.rows.split(",")], a.backends.split(","), a.target)
    slow = [f"{n} {d} rows of {L}: {b} {tt / t[b]:.2f}x" for n, L, d, t, tt in res if tt for b in t if tt / t[b] < 1]
    print("\nslower than torch: " + (", ".join(slow) if slow else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
