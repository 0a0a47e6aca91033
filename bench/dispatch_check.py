"""Is ``auto`` as fast as the fastest single backend?  And what does dispatching cost?

    python bench/dispatch_check.py                      # every function, every direction, float32/64, 1e1..1e7
    python bench/dispatch_check.py --functions relu,gelu --sizes 10,1000
    python bench/dispatch_check.py --overhead-only      # the dispatch overhead line alone

For each (function, direction, dtype, size) the public call is timed with each
accelerated backend forced (``fastact.use_backend``) and with ``auto``,
interleaved round by round so that a noisy machine disturbs them alike; the
best time of each is kept. Each setting is first called for ``--warmup``
seconds, so that a cell measures the steady state a loop of calls reaches, as
the tuner does (a Numba kernel can take hundreds of calls to get there). The directions are the forward, the backward from x
and, where the function accepts it, the backward from y (``y=``; its own entry
in the tuning table). The table gives auto's time over the fastest forced
backend's (<= 1.05 is the target).

A cell that misses 5% is measured again, auto against that backend alone, head
to head, one call each in turn, for more rounds: the "confirmed" column gives
the ratio of the best times and the median ratio over the pairs of calls. A
miss is confirmed when both exceed 1.05 and auto ran another kernel than the
fastest backend (another backend, or another thread count): a burst of load
elsewhere shows in one figure or in one pass, a wrong choice in the table in
all of them. The summary counts the cells within 5%, the confirmed misses and
the misses that were noise, lists the confirmed ones with what auto chose, and
gives the geometric mean of auto/best (re-measured cells with their confirmed
best-time ratio), and how busy other processes kept the CPUs meanwhile.

Like the tuner, the check makes glibc's malloc keep freed memory (``--alloc
system`` does not): otherwise whether a call's output gets fresh pages, whose
faults can cost more than a cheap kernel, depends on the calls before it.

The overhead lines (the forward, the backward from x, the backward from y) time
a one-element call under ``auto``, with the backend auto chose forced, and that
backend's kernel called directly: the difference is what the dispatch costs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

import fastact
from fastact import _api, _backends, _peers, _tuning
from fastact._registry import SPECS, get_spec

TARGET = 1.05


def _best(fn, reps):
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _warm(call, seconds):
    """Call ``call`` for ``seconds`` (at least once): compiles it, and brings it to its steady state."""
    end = time.perf_counter() + seconds
    call()
    while time.perf_counter() < end:
        call()


def _compare(call, backends, rounds, reps, warm=0.0):
    """Best time of ``call`` under each backend setting in ``backends``, in interleaved rounds.

    Each setting is first called for ``warm`` seconds (at least once). Numba's
    softmax backward from y at 1e5 float32 took 23-25 us in its first few
    hundred calls of a process and 17-19 us after about a thousand (Cython's
    stayed at 20-21 from its first calls); one warm-up call measured the first
    state, the tuner the second.
    """
    times = {b: math.inf for b in backends}
    for b in times:  # warm-up (compiles)
        with fastact.use_backend(b):
            _warm(call, warm)
    for r in range(rounds):
        for b in backends if r % 2 == 0 else backends[::-1]:
            with fastact.use_backend(b):
                times[b] = min(times[b], _best(call, reps))
    return times


def _head_to_head(call, best_b, rounds, reps):
    """auto against ``best_b``, one call each in turn (ABBA...), ``rounds * reps`` pairs.

    Returns (auto's best / best_b's best, the median over the pairs of auto's
    time over best_b's). Finer-grained than the rounds of :func:`_compare`, so
    that a burst of load elsewhere lands on both of a pair.
    """
    settings = [best_b, "auto"]
    best = dict.fromkeys(settings, math.inf)
    pairs = []
    for i in range(rounds * reps):
        t = {}
        for b in settings if i % 2 == 0 else settings[::-1]:
            with fastact.use_backend(b):
                t0 = time.perf_counter()
                call()
                t[b] = time.perf_counter() - t0
            best[b] = min(best[b], t[b])
        pairs.append(t["auto"] / t[best_b])
    pairs.sort()
    return best["auto"] / best[best_b], pairs[len(pairs) // 2]


def _call(spec, direction, dtype, n):
    """The public call of one cell, on the main benchmark's inputs (fastact._peers), and its input's size."""
    case = _peers.make_case(spec, "forward" if direction == "forward" else "backward", dtype, n)
    if direction != "backward_y":
        return _peers.fastact_call(case), case.x.size
    with fastact.use_backend("numpy"):
        y = _api.FORWARD[spec.name](case.x, **case.params)
    fn, g, params = _api.BACKWARD[spec.name], case.g, case.params
    return (lambda: fn(g, y=y, **params)), y.size


def _directions(spec):
    return _tuning.directions(spec)


def _choice(spec, direction, dtype, size, forced=None):
    """'backend/threads' that auto (or a forced backend, left to its own thread choice) uses for the call."""
    if forced is None:
        be, th = _backends.choose(spec, direction, np.dtype(dtype), size, True)
    else:
        be, th = _backends.load(forced), 0
    if th == 0:
        per = getattr(be, "threads_for", None)
        th = per(size) if per is not None else 1
    return f"{be.name}/{th}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", default=None)
    ap.add_argument("--sizes", default="10,1000,100000,10000000")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--directions", default=",".join(_tuning.DIRECTIONS),
                    help="comma-separated: forward, backward (from x), backward_y (from y; where accepted)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--confirm-rounds", type=int, default=None,
                    help="rounds of the head-to-head re-measurement of a miss (default: 3 x --rounds)")
    ap.add_argument("--warmup", type=float, default=0.03,
                    help="seconds each backend setting is called for before a cell is timed (default 0.03; "
                         "at least one call)")
    ap.add_argument("--overhead-only", action="store_true", help="only the dispatch overhead line")
    ap.add_argument("--alloc", choices=("reuse", "system"), default="reuse",
                    help="reuse (default): glibc's malloc keeps freed memory, as in `python -m fastact tune` "
                         "(fastact._tuning.keep_freed_memory); system: as it comes")
    args = ap.parse_args(argv)
    kept = args.alloc == "reuse" and _tuning.keep_freed_memory()
    print(f"allocator: {'freed memory kept' if kept else 'as it comes'}", file=sys.stderr)
    if not args.overhead_only:
        _grid(args)
    _overhead()
    return 0


def _grid(args) -> None:
    specs = [s for s in SPECS if args.functions is None or s.name in args.functions.split(",")]
    sizes = [int(float(v)) for v in args.sizes.split(",")]
    dtypes = args.dtypes.split(",")
    wanted = args.directions.split(",")
    confirm_rounds = args.confirm_rounds or 3 * args.rounds
    backends = [b for b in _tuning.ACCELERATED if _backends.available(b)[0]]
    print(f"tuning: {_tuning.load_table().state}", file=sys.stderr)
    print("| function | direction | dtype | size | " + " | ".join(f"{b} µs" for b in backends)
          + " | auto µs | auto / best | confirmed |")
    print("|---|---|---|---|" + "---|" * (len(backends) + 3))
    watch = _tuning.CpuWatch()
    first, final = [], []
    misses, noise = [], []  # (first, confirmed, median pair, cell, auto's kernel, the best backend's)
    total = sum(len([d for d in _directions(s) if d in wanted]) for s in specs) * len(dtypes) * len(sizes)
    done = 0
    for spec in specs:
        for dtype in dtypes:
            for n in sizes:
                reps = 20 if n <= 10**5 else 3
                for direction in _directions(spec):
                    if direction not in wanted:
                        continue
                    call, size = _call(spec, direction, dtype, n)
                    t = _compare(call, backends + ["auto"], args.rounds, reps, args.warmup)
                    best_b = min(backends, key=t.get)
                    r = t["auto"] / t[best_b]
                    confirmed = ""
                    rc = r
                    if r > TARGET:
                        # head to head, auto against the best backend alone, more rounds
                        rc, med = _head_to_head(call, best_b, confirm_rounds, reps)
                        auto_k = _choice(spec, direction, dtype, size)
                        best_k = _choice(spec, direction, dtype, size, forced=best_b)
                        miss = (r, rc, med, (spec.name, direction, dtype, f"{n:.0e}"), auto_k, best_k)
                        if rc > TARGET and med > TARGET and auto_k != best_k:
                            misses.append(miss)
                            verdict = "miss"
                        else:
                            noise.append(miss)
                            verdict = "noise" + (" (same kernel)" if auto_k == best_k else "")
                        confirmed = f"{rc:.2f}, median pair {med:.2f}: {verdict}"
                    first.append(r)
                    final.append(rc)
                    cells = " | ".join(f"{t[b] * 1e6:.1f}" for b in backends)
                    print(f"| {spec.name} | {direction} | {dtype} | {n:.0e} | {cells} | {t['auto'] * 1e6:.1f} "
                          f"| {r:.2f} | {confirmed} |", flush=True)
                    done += 1
                    print(f"\r{done}/{total}", end="", file=sys.stderr)
    print(file=sys.stderr)
    if not first:
        return
    within_first = sum(r <= TARGET for r in first)
    geo = math.exp(sum(map(math.log, final)) / len(final))
    geo_first = math.exp(sum(map(math.log, first)) / len(first))
    print(f"\nsummary: auto within 5% of the fastest backend in {len(first) - len(misses)}/{len(first)} cells: "
          f"{within_first} at the first pass and {len(noise)} more whose miss the head-to-head did not confirm "
          f"(noise); {len(misses)} confirmed misses; geomean auto/best {geo:.3f} "
          f"(first pass {geo_first:.3f})")
    busy = watch.other()
    if busy is not None:
        print(f"other processes kept {100 * busy:.0f}% of the CPUs busy during the check"
              + (" (a parallel kernel slows with them: figures of a busy machine)" if busy > _tuning.BUSY_WARNING else ""))
    for r, rc, med, cell, auto, best in sorted(misses, key=lambda m: -m[1]):
        print(f"  confirmed miss {rc:.2f} (first {r:.2f}, median pair {med:.2f})  {' '.join(cell)}: "
              f"auto ran {auto}, fastest was {best}")


def _overhead() -> None:
    # dispatch overhead on one element: the public call under auto, against the same call
    # with the chosen backend forced, and against that backend's kernel called directly
    # (allocating its output like the public call does). The forward, the backward from x
    # and the backward from y; a forward and a backward with parameters; and out=.
    x1 = np.ones(1, np.float32)
    g1 = np.ones(1, np.float32)
    y1 = fastact.sigmoid(x1)
    o1 = np.empty(1, np.float32)
    cases = [
        ("relu(x)", "relu", "forward", lambda: fastact.relu(x1),
         lambda be, th: be.forward("relu", x1, np.empty_like(x1), {}, th)),
        ("sigmoid_backward(g, x)", "sigmoid", "backward", lambda: fastact.sigmoid_backward(g1, x1),
         lambda be, th: be.backward("sigmoid", g1, x1, None, np.empty_like(g1), {}, th)),
        ("sigmoid_backward(g, y=y)", "sigmoid", "backward_y", lambda: fastact.sigmoid_backward(g1, y=y1),
         lambda be, th: be.backward("sigmoid", g1, None, y1, np.empty_like(g1), {}, th)),
        # with parameters: the kernel gets them as the public layer passes them (validated, defaults filled)
        ("leaky_relu(x, negative_slope=0.1)", "leaky_relu", "forward",
         lambda: fastact.leaky_relu(x1, negative_slope=0.1),
         lambda be, th: be.forward("leaky_relu", x1, np.empty_like(x1), {"negative_slope": 0.1}, th)),
        ("hardtanh_backward(g, x)", "hardtanh", "backward", lambda: fastact.hardtanh_backward(g1, x1),
         lambda be, th: be.backward("hardtanh", g1, x1, None, np.empty_like(g1), {"min_val": -1.0, "max_val": 1.0},
                                    th)),
        # into a given output: the kernel writes into it too (nothing allocated on either side)
        ("relu(x, out=o)", "relu", "forward", lambda: fastact.relu(x1, out=o1),
         lambda be, th: be.forward("relu", x1, o1, {}, th)),
        ("sigmoid_backward(g, x, out=o)", "sigmoid", "backward", lambda: fastact.sigmoid_backward(g1, x1, out=o1),
         lambda be, th: be.backward("sigmoid", g1, x1, None, o1, {}, th)),
    ]
    print()
    for label, name, direction, f, kernel in cases:
        be, th = _backends.choose(get_spec(name), direction, x1.dtype, 1, True)
        chosen = be.name
        direct = lambda: kernel(be, th)  # noqa: E731
        t_auto = t_forced = t_direct = math.inf
        for _ in range(25):  # short interleaved rounds: a burst of load elsewhere hits one round, not one variant
            t_auto = min(t_auto, _best(lambda: [f() for _ in range(1000)], 2) / 1000)
            with fastact.use_backend(chosen):
                t_forced = min(t_forced, _best(lambda: [f() for _ in range(1000)], 2) / 1000)
            t_direct = min(t_direct, _best(lambda: [direct() for _ in range(1000)], 2) / 1000)
        print(f"dispatch overhead ({direction}: {label}, 1 element, float32): auto {t_auto * 1e6:.2f} µs, "
              f"{chosen} forced {t_forced * 1e6:.2f} µs ({(t_auto - t_forced) * 1e6:+.2f} µs), "
              f"{chosen} kernel called directly {t_direct * 1e6:.2f} µs ({(t_auto - t_direct) * 1e6:+.2f} µs; "
              "target <= +0.5)")

if __name__ == "__main__":
    sys.exit(main())
