"""Two Python threads running fastact kernels at the same time (the GIL is released).

    python bench/gil_threads.py [--size 1e6] [--calls 200] [--backends numpy,numba,cython]

Each kernel runs on one thread (``set_num_threads(1)``), so any speed-up comes
from the two Python threads, not from the kernels' own parallelism. For each
backend and function the script times ``calls`` calls made by one thread, then
the same number of calls split over two threads started together. Columns:

- ``1 thread`` / ``2 threads``: wall time of all the calls (ms);
- ``speed-up``: the first over the second (2.0 is the ideal on two idle cores,
  1.0 means the calls ran one after the other);
- ``cores busy``: the process's CPU time over the wall time of the two-thread
  run. Two threads computing at once keep two cores busy (~2.0); a kernel
  that held the GIL would keep one (~1.0), whatever the wall times say.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import numpy as np

import fastact
from fastact import _backends

FUNCTIONS = ("sigmoid", "gelu", "softmax")


def _calls(fn, x, calls, barrier):
    barrier.wait()
    for _ in range(calls):
        fn(x)


def measure(backend: str, name: str, size: int, calls: int) -> dict:
    """One row: one- and two-thread wall times, speed-up and cores busy for ``backend``/``name``."""
    x = np.random.default_rng(0).standard_normal(size).astype(np.float32)
    if name == "softmax":
        x = x.reshape(-1, 1000) if size % 1000 == 0 else x
    fn = getattr(fastact, name)
    with fastact.use_backend(backend):
        fn(x)  # compile / warm up
        t0 = time.perf_counter()
        _calls(fn, x, calls, threading.Barrier(1))
        t_one = time.perf_counter() - t0

        two = threading.Barrier(3)

        def work():
            with fastact.use_backend(backend):  # the context is per thread
                _calls(fn, x, calls // 2, two)

        threads = [threading.Thread(target=work) for _ in (0, 1)]
        for t in threads:
            t.start()
        two.wait()
        t0, c0 = time.perf_counter(), time.process_time()
        for t in threads:
            t.join()
        t_two, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"backend": backend, "function": name, "size": size, "calls": calls,
            "t_one": t_one, "t_two": t_two, "speedup": t_one / t_two, "busy": cpu / t_two}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1e6")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--backends", default=None)
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    args = ap.parse_args(argv)
    size = int(float(args.size))
    names = args.backends.split(",") if args.backends else [b for b in ("numpy", "numba", "cython")
                                                             if _backends.available(b)[0]]
    prev = fastact.set_num_threads(1)
    try:
        print(f"float32, {size:.0e} elements, {args.calls} calls, every kernel on one thread")
        print("| backend | function | 1 thread ms | 2 threads ms | speed-up | cores busy |")
        print("|---|---|---|---|---|---|")
        for b in names:
            for name in args.functions.split(","):
                r = measure(b, name, size, args.calls)
                print(f"| {b} | {name} | {r['t_one'] * 1e3:.1f} | {r['t_two'] * 1e3:.1f} | "
                      f"{r['speedup']:.2f}× | {r['busy']:.2f} |", flush=True)
    finally:
        fastact.set_num_threads(prev)
    return 0


if __name__ == "__main__":
    sys.exit(main())
