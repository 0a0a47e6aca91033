"""The pytest-benchmark suite's configuration: options, generated parameters, smoke mode.

Benchmarks are generated from the registry (``fastact._peers``): function x
direction x contender x dtype x size, where the contenders are every fastact
backend (and ``auto``) and the installed peers (PyTorch CPU, numexpr, the NumPy
expression, a parallel copy). One pytest-benchmark group per function,
direction, dtype and size, so that each printed table compares them all.

By default the suite is a smoke test: ``--benchmark-disable`` is implied and
only the smallest size runs, each benchmark once, with the result checked
against the reference. Timings are opt-in with ``--benchmark-enable``.

``FASTACT_BENCH_SLOWDOWN=relu:3`` (or ``relu/forward:3``, comma-separated)
makes the named functions do their work that many times, on every backend,
without touching backend code: the way to see the regression check fail.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastact
from fastact import _backends
from fastact import _peers as P
from fastact._registry import SPECS

SMOKE_SIZES = "1e3"
TIMED_SIZES = "1e3,1e5,1e7"
LARGE_SIZE = 100_000_000

REQUIRED_BACKENDS = {b.strip() for b in os.environ.get("FASTACT_REQUIRE_BACKENDS", "").split(",") if b.strip()}


def pytest_addoption(parser):
    g = parser.getgroup("fastact bench")
    g.addoption("--bench-sizes", default=None,
                help=f"comma-separated sizes (default {TIMED_SIZES} when timed, {SMOKE_SIZES} in the smoke run)")
    g.addoption("--bench-large", action="store_true", help=f"add {LARGE_SIZE:.0e} elements (about 0.4 GB per float32 array)")
    g.addoption("--bench-dtypes", default="float32", help="comma-separated: float32, float64 (default float32)")
    g.addoption("--bench-functions", default=None, help="comma-separated activation names (default: all)")
    g.addoption("--bench-directions", default="forward,backward", help="forward, backward or both")
    g.addoption("--bench-backends", default=None, help="comma-separated fastact backends (default: all and auto)")
    g.addoption("--bench-peers", default=",".join(P.PEERS),
                help=f"comma-separated among {', '.join(P.PEERS)}, or none (default: all installed)")


def _csv(text):
    return [t.strip() for t in (text or "").split(",") if t.strip() and t.strip() != "none"]


def _timed(config) -> bool:
    return bool(config.getoption("benchmark_enable", False))


def pytest_configure(config):
    # Smoke mode unless asked for timings: the same as numbagg's addopts
    # --benchmark-disable, but scoped to this directory.
    if not _timed(config):
        config.option.benchmark_disable = True
    config.addinivalue_line("markers", "fastact_bench: a generated fastact benchmark")
    spec = os.environ.get("FASTACT_BENCH_SLOWDOWN", "").strip()
    if spec:
        _install_slowdown(spec)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    bs = getattr(session.config, "_benchmarksession", None)
    if bs is not None and not _timed(session.config):
        bs.disabled = True  # in case the plugin read the option before pytest_configure above


def pytest_benchmark_update_machine_info(config, machine_info):
    from fastact import _bench

    machine_info["fastact_bench"] = _bench.machine_info()


def pytest_report_header(config):
    mode = "timed" if _timed(config) else "smoke (each benchmark once; --benchmark-enable to time)"
    return f"fastact bench: {mode}; sizes {','.join(map(str, _sizes(config)))}; threads {fastact.get_num_threads()}"


def _sizes(config) -> list[int]:
    text = config.getoption("bench_sizes") or (TIMED_SIZES if _timed(config) else SMOKE_SIZES)
    sizes = [int(float(t)) for t in _csv(text)]
    if config.getoption("bench_large") and LARGE_SIZE not in sizes:
        sizes.append(LARGE_SIZE)
    return sizes


def _size_id(n: int) -> str:
    from fastact._bench import fmt_size

    return fmt_size(n)


_PEER_LABELS: dict = {}


def _peer_labels(spec, direction, peers) -> list[str]:
    """Which peers can compute this function, decided on a tiny case."""
    key = (spec.name, direction, tuple(peers))
    if key not in _PEER_LABELS:
        with np.errstate(all="ignore"):
            case = P.make_case(spec, direction, "float32", 2048)
            _PEER_LABELS[key] = [c.label for c in P.peer_contenders(case, peers)]
    return _PEER_LABELS[key]


def pytest_generate_tests(metafunc):
    if "bench_item" not in metafunc.fixturenames:
        return
    cfg = metafunc.config
    names = _csv(cfg.getoption("bench_functions")) or [s.name for s in SPECS]
    directions = _csv(cfg.getoption("bench_directions"))
    dtypes = _csv(cfg.getoption("bench_dtypes"))
    backends = _csv(cfg.getoption("bench_backends")) or list(_backends.BACKEND_NAMES[1:]) + ["auto"]
    peers = [p for p in _csv(cfg.getoption("bench_peers")) if p in P.PEERS]
    items, ids = [], []
    # case-major order: the test module keeps one case's arrays alive at a time
    for spec, direction, dtype, size in P.all_cases(directions, dtypes, _sizes(cfg), names):
        for label in backends + _peer_labels(spec, direction, peers):
            items.append((spec.name, direction, dtype.name, size, label))
            ids.append(f"{spec.name}-{direction}-{dtype.name}-{_size_id(size)}-{label}")
    metafunc.parametrize("bench_item", items, ids=ids)


@pytest.fixture(scope="session", autouse=True)
def _bench_threads():
    # every peer gets fastact's thread count; numba's setting is per thread
    P.configure_threads(fastact.get_num_threads())
    with np.errstate(all="ignore"):  # the NumPy expressions overflow in exp, as users' do
        yield


@pytest.fixture
def bench_backend_ok():
    def check(name):
        if name == "auto":
            return
        ok, why = _backends.available(name)
        if not ok:
            if name in REQUIRED_BACKENDS:
                pytest.fail(f"backend {name!r} is required (FASTACT_REQUIRE_BACKENDS) but unavailable: {why}")
            pytest.skip(f"backend {name!r} unavailable: {why}")

    return check


# ------------------------------------------------------ the deliberate slowdown


def _install_slowdown(text: str) -> None:
    """Make the named functions do their work ``factor`` times per call.

    The public functions are wrapped rather than the backend objects: a proxy
    around a backend would add its own call overhead to *every* function
    (measured: +50 % on a 1e3-element relu), a regression of its own."""
    from fastact import _api

    for item in _csv(text):
        what, _, factor = item.partition(":")
        name, _, direction = what.partition("/")
        name, k = name.strip(), max(1, int(factor or 2))
        for d, table in (("forward", _api.FORWARD), ("backward", _api.BACKWARD)):
            if direction.strip() in ("", d):
                table[name] = _repeat(table[name], k)
    import warnings

    warnings.warn(f"FASTACT_BENCH_SLOWDOWN={text!r}: functions deliberately slowed for this run", stacklevel=1)


def _repeat(fn, k):
    def slowed(*args, **kw):
        for _ in range(k - 1):
            fn(*args, **kw)
        return fn(*args, **kw)

    return slowed
