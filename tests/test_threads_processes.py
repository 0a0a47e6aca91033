"""Issue 7, parts 2 and 3: Python threads and child processes.

* 8 Python threads call a mix of functions on every backend at once, big
  enough to enter the parallel kernels, for a few seconds: every result must
  be bit-identical to the same call made serially before, and nothing aborts.
  (Numba's workqueue layer aborts the process when two threads enter a
  parallel region together; GNU OpenMP and Cython's own pool must cope too.)
  The threads run in a subprocess, so an abort fails this test instead of
  killing the test session.
* The kernels release the GIL: with the interpreter's switch interval set
  far beyond the test's length, a Python thread can only run while the main
  thread released the GIL -- so a counter that advanced across one kernel
  call proves the kernel released it. No timing is asserted.
* After fastact ran its parallel kernels, children made by ``os.fork()`` and
  by multiprocessing's ``fork``, ``spawn`` and ``forkserver`` can call
  fastact on every backend and get the right results. (GNU OpenMP's pool does
  not survive a fork: a child that enters a parallel region the parent had
  started can hang.) Each child has a timeout, so a hang fails.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fastact
from fastact import _backends, _config

from _helpers import BACKENDS, REQUIRED_BACKENDS, FASTACT_PATH

CHILD_TIMEOUT = 120  # seconds; generous: a spawned child imports numba and loads cached kernels
LARGE = 300_000  # past every backend's serial threshold: the parallel kernels run


def _available_backends():
    names = []
    for name in BACKENDS:
        ok, why = _backends.available(name)
        if ok:
            names.append(name)
        elif name in REQUIRED_BACKENDS:
            pytest.fail(f"backend {name!r} is required but unavailable: {why}")
    return names


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = FASTACT_PATH + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ---------------------------------------------------------------- threads

# Runs in a fresh interpreter: an abort (SIGABRT from a threading layer) then
# shows up as a return code instead of ending pytest.
_THREADS_SCRIPT = r"""
import sys, threading, time
import numpy as np
import fastact
from fastact import _backends

backends = sys.argv[1].split(",")
seconds = float(sys.argv[2])
rng = np.random.default_rng(0)
x_big = (rng.standard_normal(300_000) * 4).astype(np.float32)
x_small = (rng.standard_normal(2_000) * 4).astype(np.float64)
m_big = (rng.standard_normal((600, 500)) * 4).astype(np.float32)
g_big = rng.standard_normal(300_000).astype(np.float32)
calls = [
    ("gelu", lambda: fastact.gelu(x_big)),
    ("sigmoid small f64", lambda: fastact.sigmoid(x_small)),
    ("silu_backward", lambda: fastact.silu_backward(g_big, x_big)),
    ("softmax", lambda: fastact.softmax(m_big, axis=-1)),
    ("log_softmax axis0", lambda: fastact.log_softmax(m_big, axis=0)),
    ("tanh_backward y", lambda: fastact.tanh_backward(g_big, y=np.tanh(x_big))),
    ("glu", lambda: fastact.glu(m_big, axis=-1)),
    ("mish", lambda: fastact.mish(x_big)),
    ("elu in-place", lambda: fastact.elu(x_big.copy(), out=None)),
    ("maxout", lambda: fastact.maxout(m_big, 4, axis=-1)),
]
expected = {}
for b in backends:
    with fastact.use_backend(b):
        for name, f in calls:
            expected[b, name] = f()

errors = []
counts = [0] * 8
stop = time.monotonic() + seconds

def worker(k):
    i = k
    try:
        while time.monotonic() < stop:
            b = backends[i % len(backends)]
            name, f = calls[(i // len(backends)) % len(calls)]
            with fastact.use_backend(b):
                got = f()
            if not np.array_equal(got, expected[b, name], equal_nan=True):
                errors.append(f"{name} on {b} in thread {k}: differs from the serial call")
            counts[k] += 1
            i += 7
    except BaseException as exc:
        errors.append(f"thread {k}: {type(exc).__name__}: {exc}")

threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("calls", sum(counts), "per thread", counts)
for e in errors[:20]:
    print("ERROR", e)
sys.exit(1 if errors or min(counts) == 0 else 0)
"""


def test_eight_threads_mixed_calls_match_serial_results():
    backends = _available_backends() + ["auto"]
    proc = subprocess.run(
        [sys.executable, "-c", _THREADS_SCRIPT, ",".join(backends), "3"],
        capture_output=True, text=True, env=_env(), timeout=300,
    )
    detail = f"rc={proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode >= 0, f"the process died of signal {-proc.returncode}\n{detail}"
    assert proc.returncode == 0, detail
    assert "calls" in proc.stdout, detail


_WORKQUEUE_SCRIPT = r"""
import numba
import numpy as np
from fastact._numba import BACKEND as NB
from fastact._numba import backend as B

NB.forward("relu", np.ones(300_000, np.float32), np.empty(300_000, np.float32), {}, 2)
assert numba.threading_layer() == "workqueue", numba.threading_layer()
bad = []
for dt in (np.float32, np.float64):
    x = (np.random.default_rng(0).standard_normal(300_000) * 3).astype(dt)
    for name, p in (("leaky_relu", {"negative_slope": 0.1}), ("elu", {"alpha": 0.7}),
                    ("hardtanh", {"min_val": -0.5, "max_val": 0.3}), ("softplus", {"beta": 2.0, "threshold": 20.0})):
        serial = np.empty_like(x)
        NB.forward(name, x, serial, p, 1)
        par = np.empty_like(x)
        NB.forward(name, x, par, p, 2)
        B._state.lock.acquire()  # another thread in a parallel region: the serial fallback
        try:
            busy = np.empty_like(x)
            NB.forward(name, x, busy, p, 2)
        finally:
            B._state.lock.release()
        for label, got in (("parallel", par), ("fallback", busy)):
            if not np.array_equal(got, serial):
                bad.append(f"{name} {dt.__name__} {label}: {got[:3]} against {serial[:3]}")
print("\n".join(bad) or "ok")
raise SystemExit(1 if bad else 0)
"""


def test_workqueue_layer_gives_the_serial_results():
    # Under the workqueue layer the parallel elementwise kernels are called
    # through numba's dispatcher (with a lock), not the entry point: their
    # parameters must reach the span function in the array's dtype (as
    # Python floats, float32 kernels read float64 bits: leaky_relu gave 1e-20
    # for negative x).
    if not _backends.available("numba")[0]:
        pytest.skip("numba is not available")
    env = _env()
    env["NUMBA_THREADING_LAYER"] = "workqueue"
    proc = subprocess.run([sys.executable, "-c", _WORKQUEUE_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


# ------------------------------------------------------------------- GIL


def _gil_cases(be, dtype):
    rng = np.random.default_rng(1)
    n = 1_000_000
    x = (rng.standard_normal(n) * 3).astype(dtype)
    out = np.empty_like(x)
    m = x.reshape(500, 2000)
    mo = np.empty_like(m)
    g = np.ones_like(x)
    m3 = m.reshape(500, 2000, 1)
    yield "gelu forward", lambda th: be.forward("gelu", x, out, {"approximate": "none"}, th)
    yield "mish backward", lambda th: be.backward("mish", g, x, None, out, {}, th)
    yield "softmax forward", lambda th: be.forward("softmax", m3, mo.reshape(m3.shape), {"axis": -1}, th)


@pytest.mark.parametrize("threads", [1, 2])
def test_kernels_release_the_gil(backend, threads):
    """A Python thread runs while a kernel runs, on the serial (1) and the parallel (2) kernels."""
    if backend == "numpy":
        pytest.skip("the reference is NumPy's ufuncs; their GIL handling is NumPy's")
    be = _backends.load(backend)
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1
            if counter[0] % 1000 == 0:
                time.sleep(0)  # hand the GIL back promptly once the kernel returns

    old = sys.getswitchinterval()
    results = {}
    for label, call in _gil_cases(be, np.float32):
        call(threads)  # compile / warm up before the measurement
        t = threading.Thread(target=spin)
        sys.setswitchinterval(100.0)  # the main thread is never forced to yield: only a release lets spin run
        advanced = 0
        try:
            t.start()
            time.sleep(0.05)  # let spin start (sleep releases the GIL)
            # On a loaded machine spin may not get a CPU during one short call: try
            # again. A kernel that keeps the GIL never lets it advance, however often.
            # For 2 seconds, not 30 calls: with both cores in the kernel's team, spin
            # runs only when the scheduler preempts one of them, which 30 calls of a
            # fraction of a millisecond each missed about once in five runs (cython,
            # gelu, 2 threads) -- a scheduler slice is several milliseconds.
            t_end = time.perf_counter() + 2.0
            while time.perf_counter() < t_end:
                c0 = counter[0]
                call(threads)  # only a kernel that releases the GIL lets spin run during this line
                advanced = counter[0] - c0
                if advanced:
                    break
        finally:
            sys.setswitchinterval(old)
            stop.set()
            t.join()
            stop.clear()
        results[label] = advanced
    held = [k for k, v in results.items() if v == 0]
    assert not held, f"{backend}: these kernels kept the GIL ({threads} thread(s)): {held}; counts {results}"


# ------------------------------------------------------------- processes


def _child_work(backends):
    """What every child does: each backend, parallel sizes, forward and backward; returns the results."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(LARGE) * 3).astype(np.float32)
    m = x.reshape(600, 500)
    res = {}
    for b in backends:
        with fastact.use_backend(b):
            res[b, "gelu"] = fastact.gelu(x)
            res[b, "sigmoid_backward"] = fastact.sigmoid_backward(x, x)
            res[b, "softmax"] = fastact.softmax(m, axis=0)
    return res


def _compare(got, expected):
    bad = [k for k in expected if not np.array_equal(got[k], expected[k], equal_nan=True)]
    return "ok" if not bad else f"differ: {bad}"


def _mp_child(backends, expected, q):
    try:
        q.put(_compare(_child_work(backends), expected))
    except BaseException as exc:  # report, don't hang the parent
        q.put(f"{type(exc).__name__}: {exc}")


@pytest.fixture(scope="module")
def parent_ran_parallel_kernels():
    """Run every backend's parallel kernels in this (parent) process first, with 2 threads."""
    backends = _available_backends()
    prev = _config._explicit  # None (the environment's count) or a set_num_threads value
    fastact.set_num_threads(2)
    try:
        expected = _child_work(backends)
    finally:
        fastact.set_num_threads(prev)
    for b in backends:
        if b != "numpy":
            info = _backends.load(b).info()
            assert info, b
    return backends, expected


def test_os_fork_child_after_parallel_kernels(parent_ran_parallel_kernels):
    backends, expected = parent_ran_parallel_kernels
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(r)
            msg = _compare(_child_work(backends), expected)
            os.write(w, msg.encode())
            code = 0
        except BaseException as exc:
            try:
                os.write(w, f"{type(exc).__name__}: {exc}".encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(w)
    deadline = time.monotonic() + CHILD_TIMEOUT
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        pytest.fail(f"the forked child hung (killed after {CHILD_TIMEOUT} s)")
    with os.fdopen(r, "rb") as fh:
        msg = fh.read().decode(errors="replace")
    assert os.WIFEXITED(status), f"the forked child died of signal {os.WTERMSIG(status)}: {msg}"
    assert os.WEXITSTATUS(status) == 0 and msg == "ok", msg


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_child_after_parallel_kernels(parent_ran_parallel_kernels, method):
    if method not in mp.get_all_start_methods():
        pytest.skip(f"start method {method!r} not available on this platform")
    backends, expected = parent_ran_parallel_kernels
    ctx = mp.get_context(method)
    q = ctx.Queue()
    p = ctx.Process(target=_mp_child, args=(backends, expected, q))
    p.start()
    try:
        msg = q.get(timeout=CHILD_TIMEOUT)
    except Exception:
        msg = None
    p.join(timeout=10)
    if p.is_alive():
        p.kill()
        p.join()
        pytest.fail(f"the {method} child hung (killed after {CHILD_TIMEOUT} s); it said {msg!r}")
    assert msg == "ok", f"{method} child: {msg!r} (exit code {p.exitcode})"
    assert p.exitcode == 0, f"{method} child exit code {p.exitcode}"


def test_pool_of_forked_workers_after_parallel_kernels(parent_ran_parallel_kernels):
    """A fork Pool (several children, several tasks each): the usual data-loader pattern."""
    backends, expected = parent_ran_parallel_kernels
    ctx = mp.get_context("fork")
    with ctx.Pool(2) as pool:
        res = pool.starmap_async(_pool_task, [(backends, expected)] * 4)
        msgs = res.get(timeout=CHILD_TIMEOUT)
    assert msgs == ["ok"] * 4, msgs


def _pool_task(backends, expected):
    return _compare(_child_work(backends), expected)


def test_thread_count_changes_do_not_change_results(backend):
    """The same call with 1, 2 and the default thread count gives identical bits (elementwise)."""
    x = (np.random.default_rng(3).standard_normal(LARGE) * 3).astype(np.float32)
    outs = []
    prev = _config._explicit
    try:
        for n in (1, 2, None):
            fastact.set_num_threads(n)
            outs.append(fastact.gelu(x))
    finally:
        fastact.set_num_threads(prev)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])

