"""The dispatcher's tuning table and ``python -m fastact tune``.

``auto`` picks, per call, a backend and a thread count from a table keyed by
(function, direction, kernel dtype, size bucket, layout). The directions are
``forward``, ``backward`` (from the input x) and ``backward_y`` (from the
forward's output, ``y=``): for sigmoid, tanh, the softmax family and others
the backward from x costs an exp or a whole forward while from y it is a few
multiplications, so the kernels -- and their winners -- differ. The built-in table
below was measured on a 2-core AVX-512 Xeon and is sensible elsewhere;
``python -m fastact tune`` measures this machine and saves a table in the
user's cache directory, keyed by the CPU and the versions of everything that
was measured. A table whose key no longer matches is ignored.

Layout: the public layer makes strided inputs contiguous before any backend
runs, so the kernels -- and hence the choice -- are those of the contiguous
case; the key keeps the layout so that the table can grow strided entries.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as _np

from . import _config
from ._progress import Progress

# 2: a "backward_y" direction; rungs may carry the runner-up and its margin.
# A table of another format is ignored (with a warning) in favour of the built-in one.
FORMAT = 2
# The built-in table may still be format 1: that is format 2 without backward_y
# entries (a backward_y call then uses the backward entry; see _backends._resolve).
_BUILTIN_FORMATS = (1, FORMAT)
DIRECTIONS = ("forward", "backward", "backward_y")
# The size ladder the tuner measures. A call of n elements uses the rung nearest
# to n on a log scale, decided by n's bit length (all sizes in [2**(b-1), 2**b)
# share the rung nearest to 2**(b - 0.5)): one list index, no search, on the
# dispatcher's hot path.
LADDER = (10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)
ACCELERATED = ("cython", "numba")
PARALLEL = -1  # a table's thread entry: 1 = serial, PARALLEL = all of get_num_threads()
QUICK_FUNCTIONS = ("relu", "leaky_relu", "gelu", "sigmoid", "tanh", "silu", "softplus", "elu", "softmax", "log_softmax")
_LAST = len(LADDER) - 1
BUCKET_OF_BITS = tuple(
    min(range(len(LADDER)), key=lambda i: abs(math.log2(LADDER[i]) - max(b - 0.5, 0.0))) for b in range(65)
)


def directions(spec) -> tuple[str, ...]:
    """The table directions of ``spec``: backward_y where its backward accepts y= (default parameters)."""
    return DIRECTIONS if spec.allows_y({}) else DIRECTIONS[:2]


def bucket(n: int) -> int:
    """Index of the ladder rung nearest to n (by n's bit length)."""
    return BUCKET_OF_BITS[n.bit_length()] if n < 1 << 64 else _LAST


# ---------------------------------------------------------------- the key


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_features() -> list[str]:
    wanted = ("avx512f", "avx512dq", "avx512bw", "avx512vl", "avx2", "fma", "avx", "sse4_2", "asimd", "sve")
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    have = set(line.split(":", 1)[1].split())
                    return [f for f in wanted if f in have]
    except OSError:
        pass
    return []


def _dist_version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def _extension_fingerprint() -> str | None:
    """Size and mtime of the compiled extension files: a rebuild changes it. Imports nothing."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("fastact._cython")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    h = hashlib.sha256()
    found = False
    for loc in spec.submodule_search_locations:
        for f in sorted(Path(loc).glob("*.so")) + sorted(Path(loc).glob("*.pyd")):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
            found = True
    return h.hexdigest()[:16] if found else None


def machine_key() -> dict:
    from . import __version__

    import numpy as np

    return {
        "cpu": _cpu_model(),
        "features": _cpu_features(),
        "cpus": _config.cpu_count(),
        "python": platform.python_version(),
        "fastact": __version__,
        "numpy": np.__version__,
        "numba": _dist_version("numba"),
        "extension": _extension_fingerprint(),
    }


# ----------------------------------------------------------- where tables live


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastact"


def table_path() -> Path:
    named = os.environ.get("FASTACT_TUNING_FILE")
    if named:
        return Path(named)
    return cache_dir() / "tuning.json"


# ----------------------------------------------------------------- built in

# The built-in tables: `python -m fastact tune` run on the development
# machines, shipped as package data. The backends' balance depends on the CPU:
# on the 2-core AMD EPYC (AVX2) of _tuning_builtin.json Numba's ymm loops and
# Cython's AVX2 build were close, on the 2-core Intel Xeon with AVX-512 of
# _tuning_builtin_avx512.json Cython's zmm build with libmvec wins more rows
# (tanh forward float32 at 1e5: 1.4x), and the 2-core AMD EPYC with AVX-512
# (LLVM's znver4: 512-bit operations on 256-bit units) of
# _tuning_builtin_epyc_avx512.json picked another backend than the Xeon's table
# in 21 % of the cells. The table whose key has this machine's CPU model and
# SIMD features is the default; failing that, the first one with the same SIMD
# features (they decide which kernels run); on any other machine, the first
# one. The rest of the key is not checked: the default holds until the machine
# has its own table.
_BUILTIN_FILES = (Path(__file__).with_name("_tuning_builtin.json"),
                  Path(__file__).with_name("_tuning_builtin_avx512.json"),
                  Path(__file__).with_name("_tuning_builtin_epyc_avx512.json"))


def _builtin_doc() -> tuple[dict, Path]:
    """The built-in table's document for this CPU (see _BUILTIN_FILES) and its file."""
    model, features = _cpu_model(), _cpu_features()
    first = same_features = None
    for f in _BUILTIN_FILES:
        try:
            with open(f) as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            continue
        key = doc.get("key") or {}
        if key.get("features") == features:
            if key.get("cpu") == model:
                return doc, f
            same_features = same_features or (doc, f)
        first = first or (doc, f)
    if first is None:
        raise OSError("no built-in table")
    return same_features or first


def builtin_table() -> "Table":
    try:
        doc, f = _builtin_doc()
        if doc.get("format") not in _BUILTIN_FORMATS:
            raise ValueError(f"format {doc.get('format')!r}")
        entries, detail = _parse(doc)
        where = (doc.get("key") or {}).get("cpu", "?")
        state = (f"built-in table {f.name} (measured on the development machine, {where}; "
                 "run `python -m fastact tune` for yours)")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        entries, detail, state = {}, {}, "no built-in table: first available backend"
    return Table(entries, state, detail)


class Table:
    """A loaded table: (name, direction, dtype, layout, bucket) -> (backend, threads).

    ``detail`` maps the same keys to (runner-up backend, its threads, its time
    over the winner's) where the tuner recorded them (format 2), for explain.
    """

    def __init__(self, entries: dict, state: str, detail: dict | None = None):
        self.entries = entries
        self.state = state
        self.detail = detail or {}

    def lookup(self, name: str, direction: str, dtype: str, contiguous: bool, rung: int):
        """(backend, threads) for a call, or None; a strided call without its own entry takes the contiguous one."""
        hit = self.entries.get((name, direction, dtype, "C" if contiguous else "S", rung))
        if hit is None and not contiguous:
            hit = self.entries.get((name, direction, dtype, "C", rung))
        return hit

    def runner_up(self, name: str, direction: str, dtype: str, contiguous: bool, rung: int):
        """(backend, threads, margin) of the entry :meth:`lookup` returns, when the tuner recorded it."""
        key = (name, direction, dtype, "C" if contiguous else "S", rung)
        if key not in self.entries:
            key = key[:3] + ("C", rung)
        return self.detail.get(key)


def _parse(doc: dict) -> tuple[dict, dict]:
    """(entries, detail) of a table document; raises ValueError/KeyError/TypeError when malformed.

    A rung is ``[size, backend, threads]``, optionally followed by the
    runner-up's ``backend, threads`` and its time over the winner's.
    """
    entries, detail = {}, {}
    for key, rungs in doc["entries"].items():
        name, direction, dtype, layout = key.split("/")
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r} in {key!r}")
        for rung in rungs:
            n, backend, threads = rung[:3]
            k = (name, direction, dtype, layout, LADDER.index(int(n)))
            entries[k] = (str(backend), int(threads))
            if len(rung) >= 6:
                detail[k] = (str(rung[3]), int(rung[4]), float(rung[5]))
    return entries, detail


def load_table() -> Table:
    """The tuned table for this machine if there is a valid one, else the built-in defaults."""
    path = table_path()
    if not path.exists():
        if os.environ.get("FASTACT_TUNING_FILE"):
            warnings.warn(f"fastact: FASTACT_TUNING_FILE={str(path)!r} does not exist; using the built-in table",
                          RuntimeWarning, stacklevel=4)
        return builtin_table()
    try:
        with open(path) as fh:
            doc = json.load(fh)
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT}")
        entries, detail = _parse(doc)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        warnings.warn(f"fastact: ignoring the tuning table {str(path)!r} ({type(exc).__name__}: {exc}); "
                      "using the built-in table. Run `python -m fastact tune` to remake it.", RuntimeWarning, stacklevel=4)
        builtin = builtin_table()
        builtin.state = f"unreadable table {path}: built-in table"
        return builtin
    key = machine_key()
    if doc.get("key") != key:
        changed = sorted(k for k in set(key) | set(doc.get("key", {})) if key.get(k) != doc.get("key", {}).get(k))
        builtin = builtin_table()
        builtin.state = f"table {path} is for another machine or version ({', '.join(changed)} changed): built-in table"
        return builtin
    return Table(entries, f"tuned table {path} ({doc.get('created', '?')})", detail)


# --------------------------------------------------------------- measuring


class CpuWatch:
    """How busy the other processes kept the CPUs while we measured (Linux; None elsewhere).

    A process running on another core slows a parallel kernel far more than a
    serial one, so a tune (or a check) on a busy machine measures that machine:
    its serial/parallel choices are off once the load goes. ``other()`` is the
    fraction of all CPUs' time spent by other processes since the start.
    """

    def __init__(self):
        self.start = self._read()

    @staticmethod
    def _read():
        try:
            with open("/proc/stat") as fh:
                fields = [int(v) for v in fh.readline().split()[1:]]
            hz = os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, AttributeError):
            return None
        total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return total / hz, (total - idle) / hz, time.process_time()

    def other(self) -> float | None:
        now = self._read()
        if self.start is None or now is None or now[0] <= self.start[0]:
            return None
        total, busy, own = (b - a for a, b in zip(self.start, now))
        return min(1.0, max(0.0, (busy - own) / total))


BUSY_WARNING = 0.1  # other processes' share of the CPUs above which a tune says it may be off


def _sample(fn, budget: float, reps_min: int) -> float:
    """Best time of repeated calls of ``fn`` for about ``budget`` seconds (at least ``reps_min``, at most 200)."""
    best = math.inf
    t_end = time.perf_counter() + budget
    reps = 0
    while reps < reps_min or (reps < 200 and time.perf_counter() < t_end):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return best


# How one cell (function, direction, dtype, size) is measured. Screening: SCREEN_ROUNDS
# rounds, each timing every candidate (backend x serial/parallel) once, interleaved, so
# that a burst of load elsewhere hits them alike. Then the winner and the runner-up go
# head to head for more rounds when they are close (within CLOSE), or when their rounds
# spread more than the gap between them (the screening could not tell them apart). Two
# full tunes of the screening alone disagreed on 130 of 868 cells; the re-measured
# cells are where they did.
SCREEN_ROUNDS = 3
CLOSE = 0.04
# A burst of load elsewhere can cover a whole cell (all its rounds take 10-100 ms), and
# it hits a parallel candidate harder than a serial one: so the cells up to this size,
# cheap to measure, get a second pass once every cell has had its first, minutes later;
# its rounds join the first pass's and the cell is decided again. Larger cells get it
# when their first pass was close (margin below SECOND_PASS_CLOSE): at 1e7 a round is
# one call, whose time is mostly the page faults of its fresh output, and a first pass
# alone picked numba where cython was 5-12% faster (log_sigmoid, elu backward). (A
# second pass over every cell took the tune from 3.5 to 7.5 minutes.)
SECOND_PASS_MAX = 100_000
SECOND_PASS_CLOSE = 0.10


# Serial is kept at small sizes unless a parallel candidate is clearly faster. The tuner
# times each candidate in a loop of back-to-back calls, which keeps the thread pool
# awake; a user's call between other work often finds it asleep and pays the wake-up
# (tanh float64 at 1e3 on cython: parallel 3.4 us after a parallel call, 5.1 us after a
# 50 ms pause; serial 4.2 and 4.05 us). Cells where parallel won the loop by a few
# per cent went to parallel in one tune and to serial in another, and were slower
# than serial in the public call.
# The wake-up is a time, not a fraction: at 1e3 float64 the loop's parallel winners
# by 10-20 % (0.5-1 us) were 11-30 % slower than serial in the dispatch check, so a
# parallel winner must also be more than SERIAL_WAKE faster.
SERIAL_BIAS = 0.10
SERIAL_WAKE = 2e-6  # seconds
SERIAL_BIAS_MAX = 10_000


def prefer_serial(d: dict, n: int) -> dict:
    """``decide``'s result with the serial rule applied: below SERIAL_BIAS_MAX elements a
    parallel winner gives way to the fastest serial candidate unless it is more than
    SERIAL_BIAS and more than SERIAL_WAKE faster. The runner-up is then the parallel
    candidate, with a negative margin."""
    a = d["winner"]
    times = d.get("times")
    if n > SERIAL_BIAS_MAX or a[1] == 1 or not times:
        return d
    serial = [c for c in times if c[1] == 1 and times[c]]
    if not serial:
        return d
    s = min(serial, key=lambda c: _score(times[c]))
    ts, ta = _score(times[s]), _score(times[a])
    ratio = ts / ta
    if ratio - 1.0 > SERIAL_BIAS and ts - ta > SERIAL_WAKE:
        return d
    return dict(d, winner=s, runner_up=a, margin=1.0 / ratio - 1.0, serial_rule=True)


def _plan(n: int) -> tuple[float, int, int]:
    """(seconds per sample, minimum calls per sample, head-to-head rounds) for n elements.

    Small sizes take many rounds: a sample (up to 200 calls) costs well under a
    millisecond there. Large ones take few: one call of 1e7 elements takes 3-40 ms.
    """
    if n <= 10_000:
        return 0.003, 3, 16
    if n <= 100_000:
        return 0.004, 3, 10
    if n <= 1_000_000:
        return 0.004, 2, 6
    return 0.0, 1, 6  # one call a round: the 1e7 cells are most of a full tune's time


def _score(ts: list) -> float:
    """A candidate's time from its rounds: the mean of the fastest quarter (at least one).

    With the three screening rounds that is the best round; after a head-to-head
    it averages a few, so that one lucky round does not decide.
    """
    low = sorted(ts)[: max(1, len(ts) // 4)]
    return sum(low) / len(low)


def _spread(ts: list) -> float:
    return max(ts) / min(ts) - 1.0


def decide(calls: dict, sample=_sample, plan=(0.003, 3, 16), times: dict | None = None) -> dict:
    """Measure one cell: ``calls`` maps each candidate to a no-argument call.

    ``sample(call, seconds, min_calls)`` returns one round's time of a call.
    ``times`` (candidate -> list of round times) holds an earlier pass's rounds
    of the same cell, to which this one adds. Returns the ``winner``, the
    ``runner_up``, its ``margin`` (time over the winner's, minus one), the
    ``rounds`` the two were timed, whether the cell was ``remeasured`` head to
    head, and the ``times``.
    """
    budget, reps, extra = plan
    cands = list(calls)
    times = times if times is not None else {}
    for c in cands:
        times.setdefault(c, [])
    for r in range(SCREEN_ROUNDS):
        for c in cands if r % 2 == 0 else cands[::-1]:
            times[c].append(sample(calls[c], budget, reps))
    ranked = sorted(cands, key=lambda c: _score(times[c]))
    if len(ranked) == 1:
        return {"winner": ranked[0], "runner_up": None, "margin": math.inf, "rounds": len(times[ranked[0]]),
                "remeasured": False, "times": times}
    a, b = ranked[0], ranked[1]
    gap = _score(times[b]) / _score(times[a]) - 1.0
    remeasured = gap < CLOSE or max(_spread(times[a]), _spread(times[b])) > gap
    if remeasured:
        # the two, and any other candidate as close, in alternating order (ABBA...)
        heads = [c for c in ranked if c in (a, b) or _score(times[c]) <= _score(times[a]) * (1 + CLOSE)]
        for r in range(extra):
            for c in heads if r % 2 else heads[::-1]:
                times[c].append(sample(calls[c], budget, reps))
        heads.sort(key=lambda c: _score(times[c]))
        a, b = heads[0], heads[1]
    return {
        "winner": a,
        "runner_up": b,
        "margin": _score(times[b]) / _score(times[a]) - 1.0,
        "rounds": len(times[a]),
        "remeasured": remeasured,
        "times": times,
    }


def _cases(spec, n, dtype, rng):
    """(forward args, backward args) as the backends receive them, for n elements."""
    import numpy as np

    from . import _peers
    from ._registry import AXIS, GLU, MAXOUT, PRELU, RRELU

    params = {}
    for p in spec.params:
        if p.kind == "rng":
            continue
        params[p.name] = p.default
    params.update({"threshold": 0.5, "value": 0.0} if spec.name == "threshold" else {})
    if spec.kind == RRELU:
        params = {"lower": 0.125, "upper": 1 / 3, "training": True, "slopes": rng.uniform(0.1, 0.3, n).astype(dtype)}
    if spec.name == "maxout":
        params["pieces"] = 2
    # the geometry of the benchmarks' cases (fastact._peers: rows of ROW along the last
    # axis, prelu (N, 32 channels, L)), shrunk to n elements below one row, as the
    # backends receive them (3-D)
    if spec.kind in (AXIS, GLU, MAXOUT):
        cols = min(_peers.ROW, max(2, n - n % 2))
        rows = max(1, round(n / cols))
        x = rng.standard_normal((rows, cols, 1)).astype(dtype)
        params["axis"] = -1
        gshape = (rows, cols // 2, 1) if spec.kind in (GLU, MAXOUT) else x.shape
    elif spec.kind == PRELU:
        shape, _ = _peers._shape_for(spec, n)
        shape = shape if n >= shape[1] else (1, n, 1)
        x = rng.standard_normal(shape).astype(dtype)
        params["weight"] = rng.uniform(0, 0.5, shape[1]).astype(dtype)
        gshape = x.shape
    else:
        x = rng.standard_normal(n).astype(dtype)
        gshape = x.shape
    out = np.empty_like(x) if spec.kind not in (GLU, MAXOUT) else np.empty(gshape, dtype)
    g = rng.standard_normal(gshape).astype(dtype)
    gout = np.empty_like(x)
    return params, x, out, g, gout


def _alloc_forward(be, name, x, like, params, threads):
    out = _np.empty_like(like)
    be.forward(name, x, out, params, threads)


def _alloc_backward(be, name, g, x, like, params, threads):
    out = _np.empty_like(like)
    be.backward(name, g, x, None, out, params, threads)


def _alloc_backward_y(be, name, g, y, like, params, threads):
    out = _np.empty_like(like)
    be.backward(name, g, None, y, out, params, threads)


def measure(functions=None, sizes=LADDER, dtypes=("float32", "float64"), progress=True, stream=None,
            sample=_sample, stats=None) -> dict:
    """Time every function, direction, dtype and size on every accelerated backend, 1 and N threads.

    Returns the table's entries: ``"name/direction/dtype/C"`` -> rungs of
    ``[size, backend, threads, runner-up backend, its threads, its margin]``.
    ``sample`` times one round of a call (see :func:`decide`); ``stats``, a
    dict, receives the number of ``cells``, of head-to-head re-measurements
    (``remeasured``), of cells given a ``second_pass`` and of those whose
    winner it ``changed``, and ``busy_other`` (see :class:`CpuWatch`).
    """
    import numpy as np

    from . import _backends
    from ._registry import SPECS

    specs = [s for s in SPECS if functions is None or s.name in functions]
    backends = [b for b in ACCELERATED if _backends.available(b)[0]]
    if not backends:
        raise RuntimeError("no accelerated backend is available; nothing to tune (see `python -m fastact info`)")
    by_name = {s.name: s for s in specs}
    ref = _backends.load("numpy")
    nthreads = _config.get_num_threads()
    thread_options = (1, nthreads) if nthreads > 1 else (1,)

    warmed: set = set()

    def cell_calls(spec, direction, dtype, n):
        params, x, out, g, gout = _cases(spec, n, np.dtype(dtype), np.random.default_rng(n))
        if direction == "backward_y":
            y = np.empty_like(x)
            ref.forward(spec.name, x, y, params, 1)
        calls = {}
        for bname in backends:
            be = _backends.load(bname)
            for th in thread_options:
                # allocating, like the public call: a fresh output's pages are part of the cost
                if direction == "forward":
                    call = partial(_alloc_forward, be, spec.name, x, out, params, th)
                elif direction == "backward":
                    call = partial(_alloc_backward, be, spec.name, g, x, gout, params, th)
                else:
                    call = partial(_alloc_backward_y, be, spec.name, g, y, gout, params, th)
                if n <= SECOND_PASS_MAX or (spec.name, direction, dtype, bname, th) not in warmed:
                    call()  # warm-up: compiles, starts the thread pool (and brings a small case into cache)
                    warmed.add((spec.name, direction, dtype, bname, th))
                # PARALLEL, not the count: set_num_threads keeps its precedence
                calls[bname, 1 if th == 1 else PARALLEL] = call
        return calls

    cells = [(spec.name, dtype, direction, n) for spec in specs for dtype in dtypes for direction in directions(spec)
             for n in sizes]
    small = sum(c[3] <= SECOND_PASS_MAX for c in cells)
    # the total counts the large cells' second pass at about half of them (it is known after the first)
    bar = Progress(len(cells) + small + (len(cells) - small) // 2, "tuning", enabled=progress, stream=stream)
    stats = stats if stats is not None else {}
    stats.update(cells=len(cells), remeasured=0, second_pass=0, changed=0, busy_other=None)
    watch = CpuWatch()
    results = {}
    again: list = []
    for second in (False, True):
        if second:
            again = [c for c in cells if c[3] <= SECOND_PASS_MAX or results[c]["margin"] < SECOND_PASS_CLOSE]
            stats["second_pass"] = len(again)
            bar.total = len(cells) + len(again)
        for cell in again if second else cells:
            name, dtype, direction, n = cell
            earlier = results.get(cell)
            d = decide(cell_calls(by_name[name], direction, dtype, n), sample, _plan(n), earlier["times"] if earlier else None)
            d = prefer_serial(d, n)
            if earlier is not None:
                stats["changed"] += d["winner"] != earlier["winner"]
            results[cell] = d
            stats["remeasured"] += d["remeasured"]
            what = f"{name} {direction} {dtype} {n:.0e}"
            bar.step(f"{what}, second pass ({stats['changed']} changed)" if second
                     else f"{what} ({stats['remeasured']} re-measured)")
    bar.close()
    entries: dict[str, list] = {}
    for (name, dtype, direction, n), d in results.items():
        rung = [n, d["winner"][0], d["winner"][1]]
        if d["runner_up"] is not None:
            rung += [d["runner_up"][0], d["runner_up"][1], round(d["margin"], 4)]
        entries.setdefault(f"{name}/{direction}/{dtype}/C", []).append(rung)
    stats["busy_other"] = watch.other()
    return entries


def _valid_doc(path: Path) -> dict | None:
    try:
        with open(path) as fh:
            doc = json.load(fh)
        _parse(doc)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return doc if doc.get("format") == FORMAT and doc.get("key") == machine_key() else None


def save(entries: dict, path: Path | None = None, busy_other: float | None = None) -> Path:
    path = path or table_path()
    doc = {
        "format": FORMAT,
        "key": machine_key(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "threads": _config.get_num_threads(),
        # the share of the CPUs other processes used while this was measured (see CpuWatch)
        "busy_other": None if busy_other is None else round(busy_other, 3),
        "entries": entries,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    head = json.dumps({k: v for k, v in doc.items() if k != "entries"})[:-1]
    lines = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in entries.items())
    with open(tmp, "w") as fh:  # one line per entry: two tables diff line by line
        fh.write(f'{head},\n "entries": {{\n{lines}\n }}\n}}\n')
    os.replace(tmp, path)  # never leave a half-written table behind
    return path


# ------------------------------------------------------------------- the CLI


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for the rest of this process; False where it cannot.

    For measuring processes only (``python -m fastact tune``, the benchmark
    scripts): a kernel's time should not depend on what the allocator did
    before. By default glibc serves a large array from fresh pages of mmap or
    of a heap it trimmed, whose first-touch faults cost as much as a cheap
    kernel, and whether a call gets fresh pages depends on the size and order
    of the calls before it (its mmap threshold moves with what was freed). On
    the 2-core development machine that made the tuner and the dispatch check
    disagree on numba against cython at 1e5 float64 by up to 35 %, in either
    direction between runs. With no mmap'd chunks and no trimming every
    allocating call reuses warm pages, as a training loop does after its first
    step; the faults of fresh pages cost both backends the same and do not
    change which is faster. The process keeps its peak heap until it exits.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
    return bool(mallopt(m_mmap_max, 0) and mallopt(m_trim_threshold, 2**31 - 1) and mallopt(m_top_pad, 64 << 20))


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help=f"tune the common functions only ({', '.join(QUICK_FUNCTIONS)})")
    parser.add_argument("--functions", help="comma-separated function names (default: all)")
    parser.add_argument("--sizes", help="comma-separated sizes from the ladder (default: " + ",".join(map(str, LADDER)) + ")")
    parser.add_argument("--output", help="where to write the table (default: FASTACT_TUNING_FILE or the cache directory)")
    parser.add_argument("--print", action="store_true", dest="show", help="print the chosen backend per function and size")


def run(args) -> int:
    from ._registry import get_spec

    functions = None
    if args.functions:
        functions = [get_spec(f.strip()).name for f in args.functions.split(",") if f.strip()]
    elif args.quick:
        functions = list(QUICK_FUNCTIONS)
    sizes = LADDER
    if args.sizes:
        sizes = tuple(int(float(v)) for v in args.sizes.split(","))
        bad = [v for v in sizes if v not in LADDER]
        if bad:
            raise SystemExit(f"--sizes: {bad} not on the ladder {LADDER}")
    path = Path(args.output) if args.output else table_path()
    keep_freed_memory()  # see there: times that do not depend on the allocator's history
    t0 = time.perf_counter()
    stats: dict = {}
    entries = measure(functions, sizes=sizes, stats=stats)
    # a partial run (--quick, --functions, --sizes) updates a valid table instead of replacing it
    previous = _valid_doc(path)
    if previous is None and path.exists() and (functions is not None or sizes != LADDER):
        print(f"note: {path} holds no valid table for this machine and these versions; "
              "the partial tune replaces it instead of updating it", file=sys.stderr)
    if previous is not None:
        merged = previous["entries"]
        for key, rungs in entries.items():
            old = {r[0]: r for r in merged.get(key, [])}
            old.update({r[0]: r for r in rungs})
            merged[key] = [old[n] for n in sorted(old)]
        entries = merged
    path = save(entries, path, stats["busy_other"])
    print(f"tuned {stats['cells']} cells in {time.perf_counter() - t0:.0f} s ({stats['remeasured']} head-to-head "
          f"re-measurements of close ones; a second pass over the {stats['second_pass']} cells up to "
          f"{SECOND_PASS_MAX:.0e} or within {100 * SECOND_PASS_CLOSE:.0f}% changed {stats['changed']} winners); table: {path} "
          f"({len(entries)} function/direction/dtype entries)")
    busy = stats["busy_other"]
    if busy is not None and busy > BUSY_WARNING:
        print(f"warning: other processes kept {100 * busy:.0f}% of the CPUs busy during the tune; they slow parallel "
              "kernels more than serial ones, so the serial/parallel choices fit a busy machine. "
              "Run it again on a quiet one.", file=sys.stderr)
    if args.show:
        for key, rungs in entries.items():
            print(f"{key:<34} " + " ".join(f"{r[0]:.0e}:{r[1]}/{r[2]}" for r in rungs))
    from . import _backends

    _backends.reload_table()
    return 0
