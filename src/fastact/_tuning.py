"""The dispatcher's tuning table and ``python -m fastact tune``.

``auto`` picks, per call, a backend and a thread count from a table keyed by
(function, direction, kernel dtype, size bucket, layout). The built-in table
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
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as _np

from . import _config
from ._progress import Progress

FORMAT = 1
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

# The built-in table: `python -m fastact tune` run on the development machine
# (2-core AMD Zen 4, AVX-512), shipped as package data. Its key is not checked:
# it is the default for any machine until that machine has its own table.
_BUILTIN_FILE = Path(__file__).with_name("_tuning_builtin.json")


def builtin_table() -> "Table":
    try:
        with open(_BUILTIN_FILE) as fh:
            entries = _parse(json.load(fh))
        state = "built-in table (measured on the development machine; run `python -m fastact tune` for yours)"
    except (OSError, ValueError, KeyError, TypeError):
        entries, state = {}, "no built-in table: first available backend"
    return Table(entries, state)


class Table:
    """A loaded table: (name, direction, dtype, layout, bucket) -> (backend, threads)."""

    def __init__(self, entries: dict, state: str):
        self.entries = entries
        self.state = state

    def lookup(self, name: str, direction: str, dtype: str, contiguous: bool, rung: int):
        """(backend, threads) for a call, or None; a strided call without its own entry takes the contiguous one."""
        hit = self.entries.get((name, direction, dtype, "C" if contiguous else "S", rung))
        if hit is None and not contiguous:
            hit = self.entries.get((name, direction, dtype, "C", rung))
        return hit


def _parse(doc: dict) -> dict:
    entries = {}
    for key, rungs in doc["entries"].items():
        name, direction, dtype, layout = key.split("/")
        for rung, backend, threads in rungs:
            entries[(name, direction, dtype, layout, LADDER.index(int(rung)))] = (str(backend), int(threads))
    return entries


def load_table() -> Table:
    """The tuned table for this machine if there is a valid one, else the built-in defaults."""
    path = table_path()
    builtin = builtin_table()
    if not path.exists():
        if os.environ.get("FASTACT_TUNING_FILE"):
            warnings.warn(f"fastact: FASTACT_TUNING_FILE={str(path)!r} does not exist; using the built-in table",
                          RuntimeWarning, stacklevel=4)
        return builtin
    try:
        with open(path) as fh:
            doc = json.load(fh)
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT}")
        entries = _parse(doc)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        warnings.warn(f"fastact: ignoring the tuning table {str(path)!r} ({type(exc).__name__}: {exc}); "
                      "using the built-in table. Run `python -m fastact tune` to remake it.", RuntimeWarning, stacklevel=4)
        builtin.state = f"unreadable table {path}: built-in table"
        return builtin
    key = machine_key()
    if doc.get("key") != key:
        changed = sorted(k for k in set(key) | set(doc.get("key", {})) if key.get(k) != doc.get("key", {}).get(k))
        builtin.state = f"table {path} is for another machine or version ({', '.join(changed)} changed): built-in table"
        return builtin
    return Table(entries, f"tuned table {path} ({doc.get('created', '?')})")


# --------------------------------------------------------------- measuring


def _time_call(fn, budget: float = 0.02, reps_min: int = 3) -> float:
    """Best time of repeated calls, after a warm-up (the warm-up compiles)."""
    fn()
    best = math.inf
    t_end = time.perf_counter() + budget
    reps = 0
    while reps < reps_min or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        reps += 1
        if reps >= 200:
            break
    return best


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


def measure(functions=None, sizes=LADDER, dtypes=("float32", "float64"), progress=True, stream=None) -> dict:
    """Time every function, direction, dtype and size on every accelerated backend, 1 and N threads."""
    import numpy as np

    from . import _backends
    from ._registry import SPECS

    specs = [s for s in SPECS if functions is None or s.name in functions]
    backends = [b for b in ACCELERATED if _backends.available(b)[0]]
    if not backends:
        raise RuntimeError("no accelerated backend is available; nothing to tune (see `python -m fastact info`)")
    nthreads = _config.get_num_threads()
    thread_options = (1, nthreads) if nthreads > 1 else (1,)
    rng = np.random.default_rng(0)
    total = len(specs) * 2 * len(dtypes) * len(sizes)
    bar = Progress(total, "tuning", enabled=progress, stream=stream)
    entries: dict[str, list] = {}
    for spec in specs:
        for dtype in dtypes:
            for direction in ("forward", "backward"):
                rungs = []
                for n in sizes:
                    params, x, out, g, gout = _cases(spec, n, np.dtype(dtype), rng)
                    calls = {}
                    for bname in backends:
                        be = _backends.load(bname)
                        for th in thread_options:
                            # allocating, like the public call: a fresh output's pages are part of the cost
                            if direction == "forward":
                                calls[bname, th] = partial(_alloc_forward, be, spec.name, x, out, params, th)
                            else:
                                calls[bname, th] = partial(_alloc_backward, be, spec.name, g, x, gout, params, th)
                    # rounds interleave the candidates, so a burst of load elsewhere hits them alike
                    times = dict.fromkeys(calls, math.inf)
                    for _ in range(3):
                        for cand, call in calls.items():
                            times[cand] = min(times[cand], _time_call(call, budget=0.008))
                    (bname, th), t = min(times.items(), key=lambda kv: kv[1])
                    # PARALLEL, not the count: set_num_threads keeps its precedence
                    best = (t, bname, 1 if th == 1 else PARALLEL)
                    rungs.append([n, best[1], best[2]])
                    bar.step(f"{spec.name} {direction} {dtype} {n:.0e}")
                entries[f"{spec.name}/{direction}/{dtype}/C"] = rungs
    return entries


def _valid_doc(path: Path) -> dict | None:
    try:
        with open(path) as fh:
            doc = json.load(fh)
        _parse(doc)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return doc if doc.get("format") == FORMAT and doc.get("key") == machine_key() else None


def save(entries: dict, path: Path | None = None) -> Path:
    path = path or table_path()
    doc = {
        "format": FORMAT,
        "key": machine_key(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "threads": _config.get_num_threads(),
        "entries": entries,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=1)
    os.replace(tmp, path)  # never leave a half-written table behind
    return path


# ------------------------------------------------------------------- the CLI


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
    t0 = time.perf_counter()
    entries = measure(functions, sizes=sizes)
    # a partial run (--quick, --functions, --sizes) updates a valid table instead of replacing it
    previous = _valid_doc(path)
    if previous is not None:
        merged = previous["entries"]
        for key, rungs in entries.items():
            old = {r[0]: r for r in merged.get(key, [])}
            old.update({r[0]: r for r in rungs})
            merged[key] = [old[n] for n in sorted(old)]
        entries = merged
    path = save(entries, path)
    print(f"tuned {len(entries)} function/direction/dtype entries in {time.perf_counter() - t0:.0f} s; table: {path}")
    if args.show:
        for key, rungs in entries.items():
            print(f"{key:<32} " + " ".join(f"{n:.0e}:{b}/{t}" for n, b, t in rungs))
    from . import _backends

    _backends.reload_table()
    return 0
