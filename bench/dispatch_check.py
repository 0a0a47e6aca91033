"""Is ``auto`` as fast as the fastest single backend?  And what does dispatching cost?

    python bench/dispatch_check.py                      # every function, both directions, float32/64, 1e1..1e7
    python bench/dispatch_check.py --functions relu,gelu --sizes 10,1000

For each (function, direction, dtype, size) the public call is timed with each
accelerated backend forced (``fastact.use_backend``) and with ``auto``,
interleaved round by round so that a noisy machine disturbs them alike; the
best time of each is kept. The table gives auto's time over the fastest forced
backend's (<= 1.05 is the target). The overhead line times a one-element call
under ``auto`` and with the backend auto chose forced: the difference is what
the dispatch costs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

import fastact
from fastact import _backends, _peers, _tuning
from fastact._registry import SPECS, get_spec


def _best(fn, reps):
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _compare(call, backends, rounds, reps):
    times = {b: math.inf for b in backends + ["auto"]}
    for b in times:  # warm-up (compiles)
        with fastact.use_backend(b):
            call()
    for _ in range(rounds):
        for b in times:
            with fastact.use_backend(b):
                times[b] = min(times[b], _best(call, reps))
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", default=None)
    ap.add_argument("--sizes", default="10,1000,100000,10000000")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    specs = [s for s in SPECS if args.functions is None or s.name in args.functions.split(",")]
    sizes = [int(float(v)) for v in args.sizes.split(",")]
    backends = [b for b in _tuning.ACCELERATED if _backends.available(b)[0]]
    print(f"tuning: {_tuning.load_table().state}", file=sys.stderr)
    print("| function | direction | dtype | size | " + " | ".join(f"{b} µs" for b in backends)
          + " | auto µs | auto / best |")
    print("|---|---|---|---|" + "---|" * (len(backends) + 2))
    ratios = []
    worst = []
    total = len(specs) * 2 * len(args.dtypes.split(",")) * len(sizes)
    done = 0
    for spec in specs:
        for dtype in args.dtypes.split(","):
            for n in sizes:
                reps = 20 if n <= 10**5 else 3
                for direction in ("forward", "backward"):
                    # the main benchmark's inputs (fastact._peers), so both measure the same calls
                    call = _peers.fastact_call(_peers.make_case(spec, direction, dtype, n))
                    t = _compare(call, backends, args.rounds, reps)
                    best = min(t[b] for b in backends)
                    r = t["auto"] / best
                    ratios.append(r)
                    if r > 1.05:
                        worst.append((r, spec.name, direction, dtype, n))
                    cells = " | ".join(f"{t[b] * 1e6:.1f}" for b in backends)
                    print(f"| {spec.name} | {direction} | {dtype} | {n:.0e} | {cells} | {t['auto'] * 1e6:.1f} | {r:.2f} |",
                          flush=True)
                    done += 1
                    print(f"\r{done}/{total * 1}", end="", file=sys.stderr)
    print(file=sys.stderr)
    within = sum(r <= 1.05 for r in ratios)
    print(f"\nauto within 5% of the fastest backend: {within}/{len(ratios)}; "
          f"geomean auto/best {math.exp(sum(map(math.log, ratios)) / len(ratios)):.3f}")
    for r, *key in sorted(worst, reverse=True)[:15]:
        print(f"  {r:.2f}  {' '.join(map(str, key))}")

    # dispatch overhead on one element: the public call under auto, against the same call
    # with the chosen backend forced, and against that backend's kernel called directly
    # (allocating its output like the public call does)
    x1 = np.ones(1, np.float32)
    info = fastact.explain("relu", x1)
    chosen = info["backend"]
    be, th = _backends.choose(get_spec("relu"), "forward", x1.dtype, 1, True)
    f = lambda: fastact.relu(x1)  # noqa: E731

    def direct():
        out = np.empty_like(x1)
        be.forward("relu", x1, out, {}, th)
        return out

    t_auto = t_forced = t_direct = math.inf
    for _ in range(7):
        t_auto = min(t_auto, _best(lambda: [f() for _ in range(1000)], 5) / 1000)
        with fastact.use_backend(chosen):
            t_forced = min(t_forced, _best(lambda: [f() for _ in range(1000)], 5) / 1000)
        t_direct = min(t_direct, _best(lambda: [direct() for _ in range(1000)], 5) / 1000)
    print(f"\ndispatch overhead (relu, 1 element, float32): auto {t_auto * 1e6:.2f} µs, "
          f"{chosen} forced {t_forced * 1e6:.2f} µs ({(t_auto - t_forced) * 1e6:+.2f} µs), "
          f"{chosen} kernel called directly {t_direct * 1e6:.2f} µs ({(t_auto - t_direct) * 1e6:+.2f} µs; target <= +0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
