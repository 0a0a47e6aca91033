"""``python -m fastact bench``: time every function on every backend against its peers.

The default run is the main job of the README: every activation, forward and
backward, float32, 1e6 elements, every available backend and ``auto``, and the
installed peers (PyTorch CPU, numexpr, the NumPy expression) with a parallel
copy of the input as the memory-bandwidth floor. It prints a markdown table and
with ``--plot FILE`` draws a PNG.

``--report RESULTS.json`` turns saved results -- this command's ``--json`` or a
pytest-benchmark JSON from ``bench/`` -- into the same table and plot without
measuring anything.

Only the CLI imports this module: ``import fastact`` stays light.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time
from typing import Any, Iterable

from ._progress import Progress
from ._tuning import _cpu_model

DEFAULT_SIZE = 1_000_000
# Per contender and case: keep calling until this much time is spent (after
# the warm-up). 40 ms gives dozens of rounds for a 1e6 float32 call, so the
# minimum is stable, and keeps the default run near a minute on 2 cores.
DEFAULT_BUDGET = 0.04
QUICK_BUDGET = 0.002
# A round lasts at least this long: below it timer resolution and the loop's
# own overhead would show in the result.
MIN_ROUND = 20e-6
# The contenders of a case take turns: each spends its budget in this many
# parts, one per turn, and keeps its best. Timed one after the other, a
# burst of load elsewhere during one contender's 40 ms decided its row (a
# run on 2026-12-05: numba's softmax backward 163 us, 86-87 in the runs
# before and after, the copy timed next to it 94 against 44).
TURNS = 3

_LABELS = {
    "numpy-expr": "NumPy expr",
    "copy": "copy",
}
_DIR_SHORT = {"forward": "fwd", "backward": "bwd"}


# ------------------------------------------------------------------ the CLI


def add_arguments(parser) -> None:
    parser.add_argument("--functions", help="comma-separated names (default: all; `python -m fastact` lists them)")
    parser.add_argument("--directions", default="forward,backward", help="forward, backward or both (default: both)")
    parser.add_argument("--dtype", default="float32", help="float32 or float64, or both comma-separated (default: float32)")
    parser.add_argument("--sizes", default=None, help="comma-separated element counts, e.g. 1e3,1e5,1e7 (default: 1e6)")
    parser.add_argument("--backends", default=None, help="comma-separated fastact backends (default: every available one and auto)")
    parser.add_argument(
        "--peers", default="torch,numexpr,numpy-expr,copy",
        help="comma-separated peers among torch, numexpr, numpy-expr, copy, or 'none' (default: all installed)",
    )
    parser.add_argument("--threads", type=int, default=None, help="threads for fastact and every peer (default: fastact's)")
    parser.add_argument("--budget", type=float, default=None, help=f"seconds of timing per contender and case (default: {DEFAULT_BUDGET})")
    parser.add_argument("--quick", action="store_true", help="a few calls each: checks that everything runs, timings are rough")
    parser.add_argument("--stat", default="min", choices=("min", "median", "mean"), help="statistic shown (default: min, the least noisy)")
    parser.add_argument("--json", metavar="FILE", help="also save the results (pytest-benchmark's JSON layout)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    parser.add_argument("--plot", metavar="FILE", help="write a PNG plot (needs matplotlib)")
    parser.add_argument(
        "--report", metavar="JSON", nargs="+",
        help="measure nothing: build the table (and --plot) from saved results of this command or of pytest-benchmark",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _csv(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def _sizes(text: str | None) -> list[int]:
    if not text:
        return [DEFAULT_SIZE]
    out = []
    for t in _csv(text):
        v = float(t)
        if not v >= 1 or v != int(v):
            raise ValueError(f"--sizes: {t!r} is not a positive element count")
        out.append(int(v))
    return out


def run(args) -> int:
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                "fastact bench: --plot needs matplotlib, which is not installed here; "
                'pip install matplotlib  (or pip install "fastact[bench]")',
                file=sys.stderr,
            )
            return 2
    if args.report:
        try:
            data = [load_json(p) for p in args.report]
        except (OSError, ValueError) as exc:
            print(f"fastact bench --report: {exc}", file=sys.stderr)
            return 2
        records = [r for d in data for r in records_from_json(d)]
        machine = data[0].get("machine_info", {})
        requested = None
        if not records:
            print("fastact bench --report: no fastact benchmark records in " + ", ".join(args.report), file=sys.stderr)
            return 1
    else:
        try:
            records, machine, requested = measure_from_args(args)
        except ValueError as exc:
            print(f"fastact bench: {exc}", file=sys.stderr)
            return 2
        if args.json:
            with open(args.json, "w") as f:
                json.dump(to_json(records, machine), f, indent=1)
    table = markdown(records, machine, stat=args.stat, peers=requested)
    print(table, end="")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    if args.plot:
        plot(records, args.plot, machine, stat=args.stat)
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0


# -------------------------------------------------------------- measuring


def measure_from_args(args) -> tuple[list[dict], dict]:
    import numpy as np

    from . import _backends, _config
    from . import _peers as P
    from ._registry import get_spec

    names = _csv(args.functions)
    if names:
        for n in names:
            get_spec(n)  # ValueError naming the unknown one
    directions = _csv(args.directions) or [P.FORWARD, P.BACKWARD]
    for d in directions:
        if d not in (P.FORWARD, P.BACKWARD):
            raise ValueError(f"--directions: {d!r} is not forward or backward")
    dtypes = _csv(args.dtype) or ["float32"]
    for d in dtypes:
        if d not in ("float32", "float64"):
            raise ValueError(f"--dtype: {d!r} is not float32 or float64")
    sizes = _sizes(args.sizes)
    backends = _csv(args.backends)
    if backends is None:
        backends = available_backends()
    else:
        for b in backends:
            ok, why = _backends.available(b)
            if not ok:
                raise ValueError(f"--backends: {b} is unavailable here: {why}")
    peers = [] if (args.peers or "").strip() == "none" else (_csv(args.peers) or [])
    for p in peers:
        if p not in P.PEERS:
            raise ValueError(f"--peers: {p!r} is not one of {', '.join(P.PEERS)}")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError("--threads must be >= 1")
        _config.set_num_threads(args.threads)
    budget = args.budget if args.budget is not None else (QUICK_BUDGET if args.quick else DEFAULT_BUDGET)
    cases = list(P.all_cases(directions, dtypes, sizes, names))
    failures: list[str] = []
    with np.errstate(all="ignore"):  # the NumPy expressions overflow in exp, as users' do
        records = measure(cases, backends, peers, budget=budget, quick=args.quick, progress=not args.no_progress,
                          failures=failures)
    for f in failures:
        print(f"fastact bench: {f}", file=sys.stderr)
    return records, machine_info(), peers


def available_backends() -> list[str]:
    """Every fastact backend that loads here, then 'auto' (what a user gets by default)."""
    from . import _backends

    names = [b for b in _backends.BACKEND_NAMES if b != "auto" and _backends.available(b)[0]]
    return names + ["auto"]


def time_call(call, budget: float, quick: bool = False) -> dict:
    """Time ``call()``: warm-up calls first (compilation is never timed), then
    rounds of ``number`` calls until ``budget`` seconds are spent.

    Returns per-call seconds: min, median, mean over rounds, and the warm-up.
    """
    return next(_time_in_turns(call, budget, quick, 1))


def _time_in_turns(call, budget: float, quick: bool, turns: int):
    """:func:`time_call` in ``turns`` parts: warms up at the first ``next()``,
    times a ``1/turns`` share of the budget at each, and yields the stats of
    all its rounds so far (see :func:`measure`)."""
    perf = time.perf_counter
    t0 = perf()
    call()  # compiles, loads, first-touches
    warmup = perf() - t0
    if not quick:
        call()  # the first call after compiling may still fault in fresh pages
    t0 = perf()
    call()
    single = max(perf() - t0, 1e-9)
    number = max(1, int(MIN_ROUND / single))
    part = budget / turns
    min_rounds = 1 if quick else (5 if single < part / 10 else 2)
    times = []
    for _ in range(turns):
        start, first = perf(), len(times)
        while True:
            t0 = perf()
            for _ in range(number):
                call()
            times.append((perf() - t0) / number)
            if len(times) - first >= min_rounds and perf() - start >= part:
                break
            if len(times) - first >= 100_000:
                break
        yield {
            "min": min(times),
            "median": statistics.median(times),
            "mean": statistics.fmean(times),
            "max": max(times),
            "rounds": len(times),
            "iterations": number,
            "warmup": warmup,
        }


def measure(cases: Iterable, backends: list[str], peers: list[str], budget: float = DEFAULT_BUDGET,
            quick: bool = False, progress: bool = True, failures: list | None = None) -> list[dict]:
    """Time every contender of every case; one record per (case, contender).

    A contender that raises is left out of the records and described in
    ``failures`` (its cells then read n/a)."""
    from . import _backends, _config
    from . import _peers as P

    cases = list(cases)
    P.configure_threads(_config.get_num_threads())
    per_case = len(backends) + len(peers)
    bar = Progress(len(cases) * per_case, "bench", enabled=progress)
    records = []
    failures = [] if failures is None else failures
    turns = 1 if quick else TURNS
    try:
        for spec, direction, dtype, size in cases:
            case = P.make_case(spec, direction, dtype, size)
            found = P.contenders(case, backends, peers)
            timers, stats = {}, {}
            for turn in range(turns):  # the contenders in turns (TURNS)
                for c in found:
                    if c.label in timers and timers[c.label] is None:  # it failed
                        if turn == turns - 1:
                            bar.step(f"{case.name} {direction} {c.label}")
                        continue
                    try:
                        with _backends.use_backend(c.backend) if c.backend is not None else contextlib.nullcontext():
                            if turn == 0:
                                timers[c.label] = _time_in_turns(c.call, budget, quick, turns)
                            stats[c.label] = next(timers[c.label])
                    except Exception as exc:  # one broken kernel must not cost the user the whole table
                        timers[c.label] = None
                        stats.pop(c.label, None)
                        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                        failures.append(f"{c.label} failed on {case.name} {direction} {case.dtype.name} {case.size}: "
                                        f"{type(exc).__name__}: {first[:200]}")
                    if turn == turns - 1:
                        bar.step(f"{case.name} {direction} {c.label}")
            records += [_record(case, c, stats[c.label]) for c in found if c.label in stats]
            for _ in range(per_case - len(found)):  # peers that cannot compute this one
                bar.step(f"{case.name} {direction}")
    finally:
        bar.close()
    return records


def _record(case, contender, stats: dict) -> dict:
    return {
        "function": case.name,
        "direction": case.direction,
        "dtype": case.dtype.name,
        "size": case.size,
        "elements": case.elements,
        "contender": contender.label,
        "kind": contender.kind,
        "note": contender.note,
        "stats": stats,
    }


# ---------------------------------------------------------------- metadata


def machine_info() -> dict:
    """Machine, versions, threads and date: the table's footnote."""
    import numpy as np

    import fastact

    from . import _config
    from . import _peers as P

    try:
        import numba

        numba_v = numba.__version__
    except Exception:
        numba_v = None
    cython = None
    try:
        from . import _backends

        if _backends.available("cython")[0]:
            be = _backends.load("cython")
            cython = getattr(be, "isa", None) or getattr(sys.modules.get("fastact._cython"), "ISA", None)
    except Exception:
        pass
    try:
        load = round(os.getloadavg()[0], 1)
    except (AttributeError, OSError):  # pragma: no cover - not on Windows
        load = None
    return {
        "load": load,
        "cpu": _cpu_model(),
        "cpus": _config.cpu_count(),
        "threads": _config.get_num_threads(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba_v,
        "fastact": fastact.__version__,
        "cython_isa": cython,
        **P.peer_versions(),
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    }


# ------------------------------------------------------------------- JSON


def to_json(records: list[dict], machine: dict) -> dict:
    """pytest-benchmark's layout (benchmarks[*].extra_info / .stats), so one
    report reads both this command's output and the suite's."""
    benches = []
    for r in records:
        info = {k: v for k, v in r.items() if k != "stats"}
        group = f"{r['function']}-{r['direction']}-{r['dtype']}-{r['size']}"
        benches.append({
            "group": group,
            "name": f"{group}[{r['contender']}]",
            "fullname": f"fastact-bench::{group}[{r['contender']}]",
            "extra_info": info,
            "stats": r["stats"],
        })
    return {"machine_info": {"fastact_bench": machine}, "benchmarks": benches, "datetime": machine.get("date"), "version": "fastact-bench-1"}


def load_json(path: str) -> dict:
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or "benchmarks" not in data:
        raise ValueError(f"{path} holds no 'benchmarks' list (expected this command's --json or pytest-benchmark's)")
    return data


def records_from_json(data: dict) -> list[dict]:
    out = []
    for b in data.get("benchmarks", []):
        info = b.get("extra_info") or {}
        if "function" not in info or "contender" not in info:
            continue  # some other benchmark in the same file
        out.append({**info, "stats": b["stats"]})
    return out


# -------------------------------------------------------------- the table


def fmt_time(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if s >= scale or unit == "ns":
            v = s / scale
            return f"{v:.3g} {unit}" if v < 1000 else f"{v:.0f} {unit}"
    return "n/a"  # pragma: no cover


def fmt_size(n: int) -> str:
    """1000 -> '1e3', 1000000 -> '1e6', 1234 -> '1234'."""
    n = int(n)
    e = len(str(n)) - 1
    if n >= 1000 and n == 10**e:
        return f"1e{e}"
    if n >= 1000 and n % 10 ** (e - 1) == 0:
        return f"{n // 10 ** (e - 1) / 10:g}e{e}"
    return str(n)


def fmt_ratio(r: float | None) -> str:
    if r is None or not math.isfinite(r):
        return "n/a"
    return f"{r:.2g}×" if r < 10 else f"{r:.0f}×"


def _order(records: list[dict]) -> tuple[list[str], list[str]]:
    from . import _peers as P

    seen_b, seen_p = [], []
    for r in records:
        lst = seen_b if r["kind"] == "backend" else seen_p
        if r["contender"] not in lst:
            lst.append(r["contender"])
    pref = ["numba", "cython", "auto", "numpy"]
    backends = sorted(seen_b, key=lambda b: pref.index(b) if b in pref else len(pref))
    peers = sorted(seen_p, key=lambda p: P.PEERS.index(p) if p in P.PEERS else len(P.PEERS))
    return backends, peers


def _geomean(values: list[float]) -> float | None:
    v = [x for x in values if x and math.isfinite(x) and x > 0]
    return math.exp(sum(map(math.log, v)) / len(v)) if v else None


def markdown(records: list[dict], machine: dict | None = None, stat: str = "min", peers: list[str] | None = None) -> str:
    """One table per (dtype, size): a row per function and direction, each
    backend's time and the peers' times, then each backend's ratio to PyTorch,
    to the NumPy expression (speed-up: peer time / backend time, > 1 means
    fastact is faster) and to the copy (backend time / copy time, 1 is the
    memory-bandwidth limit)."""
    backends, seen_peers = _order(records)
    from . import _peers as P

    # requested peers keep their columns (n/a) when not installed, so the
    # table's shape does not depend on what this machine has
    peers = sorted(set(seen_peers) | set(peers or ()), key=lambda p: P.PEERS.index(p) if p in P.PEERS else len(P.PEERS))
    missing = [p for p in peers if p not in seen_peers]
    # the reference backend is the oracle, not a contender: no ratios for it
    rated = [b for b in backends if b != "numpy"] or backends
    groups: dict[tuple, dict[tuple, dict[str, dict]]] = {}
    fn_order: list[str] = []
    for r in records:
        key = (r["dtype"], int(r["size"]))
        row = (r["function"], r["direction"])
        groups.setdefault(key, {}).setdefault(row, {})[r["contender"]] = r
        if r["function"] not in fn_order:
            fn_order.append(r["function"])
    lines = []
    joined = " · ".join(rated)
    for (dtype, size), rows in sorted(groups.items()):
        elements = {int(r["elements"]) for row in rows.values() for r in row.values()}
        approx = "" if elements == {size} else " (along-axis functions: rows of 1024, prelu: 32 channels; the nearest fit)"
        lines.append(f"**{dtype}, {fmt_size(size)} elements{approx}** — {stat} time per call")
        lines.append("")
        head = ["function", "dir"] + backends + [_LABELS.get(p, p) for p in peers]
        ratio_heads = []
        if "torch" in peers:
            ratio_heads.append(f"torch ÷ ({joined})")
        if "numpy-expr" in peers:
            ratio_heads.append(f"NumPy expr ÷ ({joined})")
        if "copy" in peers:
            ratio_heads.append(f"({joined}) ÷ copy")
        head += ratio_heads
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|")
        speedups = {b: {"torch": [], "numpy-expr": []} for b in rated}
        for (fn, direction), cells in sorted(rows.items(), key=lambda kv: (fn_order.index(kv[0][0]), kv[0][1] != "forward")):
            t = {c: r["stats"][stat] for c, r in cells.items()}
            row = [fn, _DIR_SHORT.get(direction, direction)]
            row += [fmt_time(t.get(b)) for b in backends]
            row += [fmt_time(t.get(p)) + ("¹" if p == "torch" and _from_saved(cells.get(p, {})) else "")
                    for p in peers]
            for peer in ("torch", "numpy-expr"):
                if peer in peers:
                    vals = []
                    for b in rated:
                        r = t[peer] / t[b] if peer in t and b in t else None
                        vals.append(fmt_ratio(r))
                        speedups[b][peer].append(r)
                    row.append(" · ".join(vals))
            if "copy" in peers:
                row.append(" · ".join(fmt_ratio(t[b] / t["copy"] if b in t and "copy" in t else None) for b in rated))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        summary = []
        for peer, label in (("torch", "PyTorch"), ("numpy-expr", "the NumPy expression")):
            if peer not in peers:
                continue
            parts = []
            for b in rated:
                gm = _geomean([v for v in speedups[b][peer] if v is not None])
                if gm is not None:
                    parts.append(f"{b} {gm:.2f}×")
            if parts:
                summary.append(f"geometric-mean speed-up over {label}: " + ", ".join(parts))
        if summary:
            lines.append("; ".join(summary) + ".")
            lines.append("")
    if any(_from_saved(r) for r in records if r["contender"] == "torch"):
        if any("from the output" in r.get("note", "") for r in records if r.get("kind") == "backend"):
            lines.append("¹ PyTorch's backward reads what its forward saved (the output; log_sigmoid's: x and a buffer "
                         "of exp(-|x|)); fastact's row is its backward from the output (`y=`), which is what "
                         "`fastact.torch` saves and calls.")
        else:  # results saved before the backends were timed from y
            lines.append("¹ PyTorch's backward kernel reads the saved forward output; fastact's row is the backward from x.")
    lines.append(
        "Ratios: speed-up = peer time ÷ backend time (above 1: fastact is faster); "
        "÷ copy = backend time ÷ the time to copy the input with all threads (1 is the memory-bandwidth floor). "
        "n/a: the peer is not installed or cannot express the function."
    )
    if missing:
        why = {"torch": "PyTorch is not installed (pip install torch)", "numexpr": "numexpr is not installed (pip install numexpr)",
               "numpy-expr": "no NumPy expression could be built"}
        lines.append("Missing peers: " + "; ".join(why.get(p, p) for p in missing) + ".")
    if machine:
        lines.append("")
        lines.append(footnote(machine))
    return "\n".join(lines) + "\n"


def _from_saved(record: dict) -> bool:
    # a torch record whose backward reads what its forward saved (results saved before said "from the output")
    note = record.get("note", "")
    return "saved" in note or "from the output" in note


def footnote(machine: dict) -> str:
    m = machine.get("fastact_bench", machine)  # saved JSON (ours and the suite's) nests it there
    if "cpu" not in m or not isinstance(m.get("cpu"), str):
        cpu = machine.get("cpu", {})
        return f"Measured on {cpu.get('brand_raw', '?') if isinstance(cpu, dict) else cpu}, {machine.get('datetime', '')}."
    versions = ", ".join(
        f"{k} {m[k]}" for k in ("python", "numpy", "numba", "torch", "numexpr", "scipy") if m.get(k)
    )
    isa = f" (Cython {m['cython_isa']} kernels)" if m.get("cython_isa") else ""
    text = (
        f"Measured on {m['cpu']}, {m['cpus']} CPU(s) usable, {m['threads']} thread(s) for fastact and every peer, "
        f"{m.get('system', '')}; fastact {m.get('fastact')}{isa}, {versions}; {m.get('date', '')}."
    )
    load = m.get("load")
    if load is not None:
        text += f" Load average at the end: {load}."
        if load > 0.75 * m["cpus"] and m.get("threads", 1) > 1:
            # measured here: a two-thread region on a busy 2-core machine waits
            # a scheduler tick (~4 ms) for the second core, whatever its work
            text += " **The machine was busy: parallel timings are unreliable; rerun when it is idle.**"
        elif load > m["cpus"]:
            text += " The machine was busy: expect more noise than usual."
    return text


# ---------------------------------------------------------------- the plot

_COLORS = {
    "numba": "#1f77b4", "cython": "#2ca02c", "auto": "#17becf", "numpy": "#7f7f7f",
    "torch": "#d62728", "numexpr": "#9467bd", "numpy-expr": "#ff7f0e", "copy": "black",
}


def plot(records: list[dict], path: str, machine: dict | None = None, stat: str = "min") -> None:
    """Throughput (input elements per second) per backend and peer.

    Several sizes: one panel per function and direction, throughput against
    size, the copy limit as a dashed line. One size: horizontal bars per
    function, the copy limit as a black tick on each row."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    backends, peers = _order(records)
    contenders = backends + [p for p in peers if p != "copy"]
    sizes = sorted({int(r["size"]) for r in records})
    dtypes = sorted({r["dtype"] for r in records})
    tp = {}
    for r in records:
        tp[(r["function"], r["direction"], r["dtype"], int(r["size"]), r["contender"])] = r["elements"] / r["stats"][stat]
    fns = []
    for r in records:
        if r["function"] not in fns:
            fns.append(r["function"])
    dirs = [d for d in ("forward", "backward") if any(r["direction"] == d for r in records)]
    dtype = dtypes[0]
    title = f"fastact vs peers, {dtype}, {stat} time"
    if machine:
        m = machine.get("fastact_bench", machine)
        if isinstance(m.get("cpu"), str):
            title += f" — {m['cpu']}, {m['threads']} threads, {m.get('date', '')}"

    if len(sizes) > 1:
        panels = [(f, d) for f in fns for d in dirs]
        ncol = min(4, len(panels))
        nrow = math.ceil(len(panels) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3 * nrow), squeeze=False, sharex=True)
        for ax, (f, d) in zip(axes.flat, panels):
            for c in contenders:
                pts = [(s, tp[(f, d, dtype, s, c)]) for s in sizes if (f, d, dtype, s, c) in tp]
                if pts:
                    ax.plot(*zip(*pts), marker="o", ms=3, label=c, color=_COLORS.get(c))
            pts = [(s, tp[(f, d, dtype, s, "copy")]) for s in sizes if (f, d, dtype, s, "copy") in tp]
            if pts:
                ax.plot(*zip(*pts), ls="--", color="black", label="copy (limit)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{f} {_DIR_SHORT.get(d, d)}", fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
        for ax in axes.flat[len(panels):]:
            ax.axis("off")
        for ax in axes[-1]:
            ax.set_xlabel("elements")
        for ax in axes[:, 0]:
            ax.set_ylabel("elements / s")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, bbox_to_anchor=(0.5, 1.0))
        fig.suptitle(title, fontsize=9, y=1.03)
    else:
        size = sizes[0]
        fig, axes = plt.subplots(1, len(dirs), figsize=(6 * len(dirs), 0.22 * len(fns) * max(1, len(contenders)) / 3 + 1.5),
                                 squeeze=False, sharey=True)
        h = 0.8 / max(1, len(contenders))
        for ax, d in zip(axes[0], dirs):
            for i, c in enumerate(contenders):
                ys, xs = [], []
                for j, f in enumerate(fns):
                    v = tp.get((f, d, dtype, size, c))
                    if v is not None:
                        ys.append(j - 0.4 + h * (i + 0.5))
                        xs.append(v / 1e9)
                ax.barh(ys, xs, height=h, color=_COLORS.get(c), label=c)
            first = True
            for j, f in enumerate(fns):
                v = tp.get((f, d, dtype, size, "copy"))
                if v is not None:
                    ax.vlines(v / 1e9, j - 0.45, j + 0.45, colors="black", linestyles="--", lw=1.2,
                              label="copy (limit)" if first else None)
                    first = False
            ax.set_yticks(range(len(fns)))
            ax.set_yticklabels(fns, fontsize=8)
            ax.set_ylim(len(fns) - 0.5, -0.5)  # registry order from the top (the axes share y)
            ax.set_xscale("log")
            ax.set_xlabel("G elements / s (log)")
            ax.set_title(f"{_DIR_SHORT.get(d, d)}, {fmt_size(size)} elements", fontsize=9)
            ax.grid(True, axis="x", which="both", alpha=0.3)
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, bbox_to_anchor=(0.5, 1.0))
        fig.suptitle(title, fontsize=9, y=1.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":  # pragma: no cover
    from .__main__ import main

    sys.exit(main(["bench"] + sys.argv[1:]))
