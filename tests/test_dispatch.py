"""The dispatcher: precedence, the tuning table (key, corruption, fallback), explain, tune."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import fastact
from fastact import _backends, _config, _tuning

from _helpers import no_general_path


def _run(code: str, **env) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("FASTACT_")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=300)


def _table(path, entries, key=None):
    doc = {"format": _tuning.FORMAT, "key": key or _tuning.machine_key(), "created": "test", "entries": entries}
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def tuning_file(tmp_path, monkeypatch):
    path = tmp_path / "tuning.json"
    monkeypatch.setenv("FASTACT_TUNING_FILE", str(path))
    _backends.reload_table()
    yield path
    monkeypatch.delenv("FASTACT_TUNING_FILE")
    _backends.reload_table()


def _rungs(backend, threads):
    return [[n, backend, threads] for n in _tuning.LADDER]


def test_bucket_ladder():
    # the rung nearest on a log scale, decided by the bit length
    assert [_tuning.LADDER[_tuning.bucket(n)] for n in (1, 10, 11, 31, 32, 100, 999, 1000, 5000, 10**7, 10**9, 2**70)] == [
        10, 10, 10, 10, 100, 100, 1000, 1000, 10_000, 10**7, 10**7, 10**7]
    for b in range(1, 64):  # every size of one bit length shares the rung
        assert _tuning.bucket(2 ** (b - 1)) == _tuning.bucket(2**b - 1)


def test_memo_follows_thread_setting_and_backend_switch(tuning_file, monkeypatch):
    # auto resolves each key once and the public functions read that memo inline:
    # a new thread setting, set_backend and use_backend must all still take effect.
    _table(tuning_file, {"relu/forward/float32/C": _rungs("numpy", _tuning.PARALLEL)})
    from fastact._reference import BACKEND as ref

    calls = []
    monkeypatch.setattr(ref, "forward", lambda *a, _f=ref.forward: calls.append(a[-1]) or _f(*a), raising=False)
    x = np.linspace(-1, 1, 1000, dtype=np.float32)
    saved = _config._explicit  # None (the environment's count) or a set_num_threads value
    fastact.set_num_threads(1)
    try:
        fastact.relu(x)
        fastact.set_num_threads(2)
        fastact.relu(x)
        assert calls == [1, 2] and fastact.explain("relu", x)["threads"] == 2
        with fastact.use_backend("numba" if _backends.available("numba")[0] else "cython"):
            np.testing.assert_array_equal(fastact.relu(x), np.maximum(x, 0))
        old = fastact.set_backend("cython" if _backends.available("cython")[0] else "numba")
        try:
            np.testing.assert_array_equal(fastact.relu(x), np.maximum(x, 0))
        finally:
            fastact.set_backend(old)
        assert calls == [1, 2]  # neither forced call went to the memo's numpy entry
        fastact.relu(x)
        assert calls == [1, 2, 2]
    finally:
        fastact.set_num_threads(saved)


def test_explain_reports_forced_backends():
    x = np.ones(100, dtype=np.float32)
    with fastact.use_backend("numpy"):
        info = fastact.explain("relu", x)
    assert info["backend"] == "numpy" and info["threads"] == 1 and "use_backend" in info["reason"]
    assert info["key"] == {"function": "relu", "direction": "forward", "dtype": "float32", "size": 100, "layout": "contiguous"}
    prev = fastact.set_backend("numpy")
    try:
        assert "set_backend" in fastact.explain("gelu", x, backward=True)["reason"]
    finally:
        fastact.set_backend(prev)
    r = _run("import fastact, numpy as np; print(fastact.explain('relu', np.ones(3))['reason'])", FASTACT_BACKEND="numpy")
    assert "FASTACT_BACKEND" in r.stdout, r.stderr


def test_explain_describes_dtype_layout_and_rrelu():
    x = np.ones((10, 10), dtype=np.float16)[:, ::2]
    info = fastact.explain("rrelu", x)
    assert info["key"]["function"] == "leaky_relu"  # eval mode runs leaky_relu
    assert info["key"]["dtype"] == "float32" and info["key"]["layout"] == "strided"
    assert "float16" in info["reason"]


def test_a_tuned_table_is_used(tuning_file):
    _table(tuning_file, {"relu/forward/float32/C": _rungs("numpy", 1)})
    x = np.linspace(-1, 1, 1000, dtype=np.float32)
    info = fastact.explain("relu", x)
    assert info["backend"] == "numpy" and info["threads"] == 1 and "tuned table" in info["reason"]
    np.testing.assert_array_equal(fastact.relu(x), np.maximum(x, 0))
    # a function the table does not hold falls back to the built-in defaults
    assert "no entry for sigmoid" in fastact.explain("sigmoid", x)["reason"]


def test_the_built_in_table_follows_the_cpu(monkeypatch):
    # each shipped table is chosen on the CPU (model and SIMD features) it was measured on, and
    # on another model with the same SIMD features; any other CPU gets the first; every shipped
    # table parses and names a backend for every cell
    docs = [json.loads(f.read_text()) for f in _tuning._BUILTIN_FILES]
    assert len({(d["key"]["cpu"], tuple(d["key"]["features"])) for d in docs}) == len(docs)
    for f, d in zip(_tuning._BUILTIN_FILES, docs):
        monkeypatch.setattr(_tuning, "_cpu_model", lambda d=d: d["key"]["cpu"])
        monkeypatch.setattr(_tuning, "_cpu_features", lambda d=d: list(d["key"]["features"]))
        t = _tuning.builtin_table()
        assert f.name in t.state and t.entries
        assert {b for b, _ in t.entries.values()} <= {"numpy", "numba", "cython"}
        monkeypatch.setattr(_tuning, "_cpu_model", lambda: "no such CPU")
        same = next(e for e, o in zip(_tuning._BUILTIN_FILES, docs) if o["key"]["features"] == d["key"]["features"])
        assert same.name in _tuning.builtin_table().state
    monkeypatch.setattr(_tuning, "_cpu_features", lambda: ["sse4_2"])
    assert _tuning._BUILTIN_FILES[0].name in _tuning.builtin_table().state


def test_a_table_for_another_machine_is_ignored(tuning_file):
    key = dict(_tuning.machine_key(), numpy="0.0.1")
    _table(tuning_file, {"relu/forward/float32/C": _rungs("numpy", 1)}, key=key)
    info = fastact.explain("relu", np.ones(10, dtype=np.float32))
    assert "another machine or version" in info["reason"] and "numpy" in info["reason"]


@pytest.mark.parametrize("content", [
    "{not json",
    json.dumps({"format": 99}),
    json.dumps({"format": _tuning.FORMAT, "entries": {"x": 1}}),
    json.dumps({"format": _tuning.FORMAT, "entries": {"relu/sideways/float32/C": [[10, "numpy", 1]]}}),
])
def test_a_corrupt_table_warns_and_uses_defaults(tuning_file, content):
    tuning_file.write_text(content)
    with pytest.warns(RuntimeWarning, match="tuning table"):
        y = fastact.sigmoid(np.zeros(4))
    assert np.all(y == 0.5)
    assert "unreadable" in fastact.explain("sigmoid", np.zeros(4))["reason"]


def test_a_table_of_the_old_format_warns_and_uses_defaults(tuning_file):
    # format 1 had no backward_y entries: a re-tune is needed to get them
    doc = {"format": 1, "key": _tuning.machine_key(), "created": "test",
           "entries": {"relu/forward/float32/C": _rungs("numpy", 1)}}
    tuning_file.write_text(json.dumps(doc))
    with pytest.warns(RuntimeWarning, match="format 1"):
        info = fastact.explain("relu", np.ones(10, dtype=np.float32))
    assert info["backend"] != "numpy" and "unreadable" in info["reason"]


def test_an_unreadable_table_warns(tuning_file):
    tuning_file.mkdir()  # a directory where the file should be: open() fails
    with pytest.warns(RuntimeWarning, match="tuning table"):
        fastact.relu(np.ones(3))


def test_a_missing_named_table_warns(tuning_file):
    with pytest.warns(RuntimeWarning, match="does not exist"):
        fastact.relu(np.ones(3))


def test_fallback_when_the_tuned_backend_is_unavailable(tuning_file, monkeypatch):
    _table(tuning_file, {"tanh/forward/float64/C": _rungs("cython", 2)})
    monkeypatch.setitem(_backends._MODULES, "cython", "fastact._not_built")
    monkeypatch.setattr(_backends, "_loaded", {k: v for k, v in _backends._loaded.items() if k != "cython"})
    monkeypatch.setattr(_backends, "_failed", {})
    info = fastact.explain("tanh", np.ones(10))
    assert info["backend"] != "cython" and "cython unavailable" in info["reason"] and "fell back" in info["reason"]
    np.testing.assert_allclose(fastact.tanh(np.ones(10)), np.tanh(np.ones(10)))


def test_tune_writes_a_table_that_auto_then_uses(tmp_path):
    out = tmp_path / "t.json"
    r = subprocess.run([sys.executable, "-m", "fastact", "tune", "--functions", "relu,softmax", "--sizes", "10,1000",
                        "--output", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "tuning [" in r.stderr  # the progress bar
    doc = json.loads(out.read_text())
    assert doc["key"] == _tuning.machine_key()
    assert doc["format"] == _tuning.FORMAT
    assert set(doc["entries"]) == {f"{f}/{d}/{t}/C" for f in ("relu", "softmax")
                                   for d in ("forward", "backward", "backward_y") for t in ("float32", "float64")}
    assert "head-to-head re-measurements" in r.stdout and "second pass" in r.stdout
    # a second, partial run merges into the table
    r = subprocess.run([sys.executable, "-m", "fastact", "tune", "--functions", "tanh", "--sizes", "10",
                        "--output", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "relu/forward/float32/C" in json.loads(out.read_text())["entries"]
    code = ("import fastact, numpy as np; i = fastact.explain('relu', np.ones(1000, np.float32)); "
            "print(i['reason']); print(fastact.relu(np.array([-1.0, 2.0])))")
    r = _run(code, FASTACT_TUNING_FILE=str(out))
    assert "tuned table" in r.stdout and "[0. 2.]" in r.stdout, r.stdout + r.stderr


# ------------------------------------------------------------ backward from y


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_tuner_can_make_the_allocator_keep_freed_memory():
    # python -m fastact tune calls it (so does bench/dispatch_check.py): a freed
    # 64 MB array stays in the process (resident) instead of going back to the
    # system, so the next allocating call gets warm pages. In a subprocess: it
    # lasts for the life of the process.
    code = """
        import os, sys, numpy as np
        from fastact import _tuning
        def rss():
            with open("/proc/self/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        def after_free():
            a = np.ones(8 << 20)  # 64 MB, touched
            del a
            return rss()
        base = after_free()
        if not _tuning.keep_freed_memory():
            print("unsupported"); sys.exit(0)
        kept = after_free()
        print(kept - base)
    """
    r = _run(textwrap.dedent(code))
    assert r.returncode == 0, r.stderr
    if r.stdout.strip() == "unsupported":
        pytest.skip("not glibc")
    assert int(r.stdout) > 48 << 20, r.stdout


def test_explain_backward_from_y_has_its_own_key(tuning_file, monkeypatch):
    _table(tuning_file, {"sigmoid/backward/float32/C": _rungs("numpy", 1),
                         "sigmoid/backward_y/float32/C": [[n, "numba", 1, "cython", 1, 0.25] for n in _tuning.LADDER]})
    y = fastact.sigmoid(np.linspace(-3, 3, 1000, dtype=np.float32))
    from_x = fastact.explain("sigmoid", y, backward=True)
    assert from_x["backend"] == "numpy" and from_x["key"]["direction"] == "backward"
    if _backends.available("numba")[0]:
        from_y = fastact.explain("sigmoid", y=y)  # y= implies the backward
        assert from_y["backend"] == "numba" and from_y["threads"] == 1
        assert "backward from y" in from_y["reason"] and "runner-up cython, serial, +25.0%" in from_y["reason"]
        assert from_y["key"] == {"function": "sigmoid", "direction": "backward_y", "dtype": "float32", "size": 1000,
                                 "layout": "contiguous"}
        assert fastact.explain("sigmoid", y, backward=True, y=y)["key"]["direction"] == "backward_y"  # y wins, as in the call
    # the calls go where explain says: the numpy entry is for the backward from x only
    from fastact._reference import BACKEND as ref

    g = np.ones_like(y)
    seen = []
    monkeypatch.setattr(ref, "backward", lambda *a, _f=ref.backward: seen.append(a[2] is None) or _f(*a), raising=False)
    fastact.sigmoid_backward(g, y)
    fastact.sigmoid_backward(g, y=y)
    assert seen == [False]  # only the call from x reached numpy
    np.testing.assert_allclose(fastact.sigmoid_backward(g, y=y), y * (1 - y), rtol=1e-6)


def test_explain_backward_from_y_without_an_entry_uses_the_backward_one(tuning_file):
    _table(tuning_file, {"softmax/backward/float64/C": _rungs("numpy", 1)})
    info = fastact.explain("softmax", y=np.full((4, 5), 0.2))
    assert info["backend"] == "numpy" and info["key"]["direction"] == "backward_y"
    assert "no backward from y entry" in info["reason"]


def test_explain_refuses_y_where_the_backward_does():
    y = np.ones(10)
    with pytest.raises(ValueError, match="y= is not accepted"):
        fastact.explain("gelu", y=y)
    with pytest.raises(ValueError, match="negative_slope"):
        fastact.explain("leaky_relu", y=y, negative_slope=-0.5)
    with pytest.raises(ValueError, match="y= is not accepted"):
        fastact.explain("rrelu", y=y)  # eval mode runs leaky_relu, but rrelu's backward refuses y=
    with pytest.raises(TypeError, match="pass x"):
        fastact.explain("sigmoid")
    info = fastact.explain("elu", y=y.astype(np.float16))
    assert info["key"]["direction"] == "backward_y" and info["key"]["dtype"] == "float32"


# ---------------------------------------------------------------- the tuner


def _scripted(script):
    """A sample() for decide() that times nothing: each candidate's rounds come from ``script``
    (the last value repeats), and the calls made are counted."""
    seen = dict.fromkeys(script, 0)

    def sample(call, seconds, min_calls):
        ts = script[call]  # in these tests a candidate's call is its name
        t = ts[min(seen[call], len(ts) - 1)]
        seen[call] += 1
        return t

    return sample, seen


def _decide(script):
    sample, seen = _scripted(script)
    return _tuning.decide({c: c for c in script}, sample, plan=(0.0, 1, 16)), seen


def test_tuner_leaves_clear_cells_after_the_screening():
    d, seen = _decide({"a": [1.0], "b": [1.5], "c": [2.0], "d": [3.0]})
    assert d["winner"] == "a" and d["runner_up"] == "b" and not d["remeasured"]
    assert seen == dict.fromkeys("abcd", _tuning.SCREEN_ROUNDS)
    assert d["margin"] == pytest.approx(0.5)


def test_tuner_remeasures_close_cells_head_to_head():
    d, seen = _decide({"a": [1.0], "b": [1.02], "c": [2.0], "d": [3.0]})
    assert d["remeasured"] and d["winner"] == "a" and d["runner_up"] == "b"
    # only the two close ones get the extra rounds
    assert seen == {"a": _tuning.SCREEN_ROUNDS + 16, "b": _tuning.SCREEN_ROUNDS + 16, "c": 3, "d": 3}
    # a third candidate as close joins them
    d, seen = _decide({"a": [1.0], "b": [1.02], "c": [1.03], "d": [3.0]})
    assert d["remeasured"] and seen == {"a": 19, "b": 19, "c": 19, "d": 3}


def test_tuner_head_to_head_overrides_a_lucky_screening_round():
    # b's first round is a fluke (0.97); every later one says 1.03: the screening's best
    # round picks b, the head-to-head picks a
    d, _ = _decide({"a": [1.0], "b": [0.97, 1.03], "c": [2.0]})
    assert d["remeasured"] and d["winner"] == "a" and d["runner_up"] == "b"
    assert 0 < d["margin"] < 0.03 and d["rounds"] == _tuning.SCREEN_ROUNDS + 16


def test_tuner_remeasures_cells_whose_rounds_spread_more_than_the_gap():
    # b looks 10% slower, but its rounds spread by 36%: a burst of load hit all three;
    # the head-to-head finds it 5% faster
    d, seen = _decide({"a": [1.0], "b": [1.10, 1.5, 1.5, 0.95], "c": [2.0]})
    assert d["remeasured"] and d["winner"] == "b" and seen["c"] == 3
    # the same gap with steady rounds is left alone
    d, seen = _decide({"a": [1.0], "b": [1.10], "c": [2.0]})
    assert not d["remeasured"] and d["winner"] == "a" and seen["b"] == 3


def test_tuner_keeps_serial_at_small_sizes_unless_parallel_is_clearly_faster():
    P = _tuning.PARALLEL
    script = {("cython", 1): [1.0], ("cython", P): [0.95], ("numba", 1): [1.2], ("numba", P): [1.1]}
    sample, _ = _scripted(script)
    d = _tuning.decide({c: c for c in script}, sample, plan=(0.0, 1, 16))
    assert d["winner"] == ("cython", P)
    kept = _tuning.prefer_serial(d, 1000)
    assert kept["winner"] == ("cython", 1) and kept["runner_up"] == ("cython", P)
    assert kept["margin"] == pytest.approx(-0.05) and kept["serial_rule"]
    assert _tuning.prefer_serial(d, 100_000) is d  # above SERIAL_BIAS_MAX the loop's winner stands
    # parallel more than SERIAL_BIAS faster: it stays
    script[("cython", P)] = [0.85]
    sample, _ = _scripted(script)
    d = _tuning.decide({c: c for c in script}, sample, plan=(0.0, 1, 16))
    assert _tuning.prefer_serial(d, 1000)["winner"] == ("cython", P)
    # 25 % faster but by less than SERIAL_WAKE (a wake-up costs time, not a fraction): serial
    script = {("cython", 1): [5e-6], ("cython", P): [4e-6]}
    sample, _ = _scripted(script)
    d = _tuning.decide({c: c for c in script}, sample, plan=(0.0, 1, 16))
    assert d["winner"] == ("cython", P) and _tuning.prefer_serial(d, 1000)["winner"] == ("cython", 1)
    script[("cython", P)] = [2e-6]
    sample, _ = _scripted(script)
    d = _tuning.decide({c: c for c in script}, sample, plan=(0.0, 1, 16))
    assert _tuning.prefer_serial(d, 1000)["winner"] == ("cython", P)


def test_explain_reports_the_serial_rule(tuning_file):
    _table(tuning_file, {"tanh/forward/float64/C": [[n, "cython", 1, "cython", _tuning.PARALLEL, -0.05]
                                                    for n in _tuning.LADDER]})
    info = fastact.explain("tanh", np.ones(1000))
    assert info["threads"] == 1 and "5.0% faster in back-to-back calls" in info["reason"], info


def test_tuner_adds_a_later_pass_to_the_earlier_one():
    # a burst covered the whole first measurement of the parallel candidate; the second
    # pass (on a quiet machine) joins its rounds to the first's and decides again
    d1, _ = _decide({"serial": [1.0], "parallel": [1.6]})
    assert d1["winner"] == "serial" and not d1["remeasured"]
    sample, seen = _scripted({"serial": [1.0], "parallel": [0.6]})
    d2 = _tuning.decide({"serial": "serial", "parallel": "parallel"}, sample, (0.0, 1, 16), d1["times"])
    assert d2["winner"] == "parallel"
    # the two passes disagree (rounds spread more than the gap): a head-to-head settles it
    assert d2["remeasured"] and d2["rounds"] == 2 * _tuning.SCREEN_ROUNDS + 16
    assert d2["margin"] == pytest.approx(1 / 0.6 - 1)


def test_tuner_second_pass_corrects_a_burst(monkeypatch):
    # the whole tuner, scripted: at its first measurement every cell's parallel cython
    # looks slow (a burst elsewhere); measured again later it is the fastest. Only the
    # cells up to SECOND_PASS_MAX get the second pass (and larger ones whose first pass
    # was close: none here, SECOND_PASS_CLOSE = 0; below, the default).
    if not _backends.available("cython")[0] or _config.get_num_threads() < 2:
        pytest.skip("needs cython and two threads")
    monkeypatch.setattr(_tuning, "SECOND_PASS_MAX", 1000)
    monkeypatch.setattr(_tuning, "SECOND_PASS_CLOSE", 0.0)
    visits = {}

    def sample(call, seconds, min_calls):
        be, threads = call.args[0].name, call.args[-1]
        if (be, threads) != ("cython", _config.get_num_threads()):
            return 1.0
        key = (call.func, call.args[2].size)  # one cell per direction and size here
        visits[key] = visits.get(key, 0) + 1
        return 2.0 if visits[key] <= _tuning.SCREEN_ROUNDS else 0.5

    stats = {}
    entries = _tuning.measure(["gelu"], sizes=(10, 1000, 100_000), dtypes=("float32",), progress=False,
                              sample=sample, stats=stats)
    for direction in ("forward", "backward"):
        rungs = entries[f"gelu/{direction}/float32/C"]
        assert [r[1:3] for r in rungs[:2]] == [["cython", _tuning.PARALLEL]] * 2
        assert rungs[2][1:3] != ["cython", _tuning.PARALLEL]  # 1e5: no second pass, the burst stands
    assert stats["cells"] == 6 and stats["second_pass"] == 4 and stats["changed"] == 4
    # 1e5's first pass was a tie of the other candidates (margin 0): with the default
    # SECOND_PASS_CLOSE it gets the second pass too, and the burst no longer stands
    monkeypatch.setattr(_tuning, "SECOND_PASS_CLOSE", 0.10)
    visits.clear()
    entries = _tuning.measure(["gelu"], sizes=(10, 1000, 100_000), dtypes=("float32",), progress=False,
                              sample=sample, stats=stats)
    assert stats["second_pass"] == 6 and stats["changed"] == 6
    assert all(r[1:3] == ["cython", _tuning.PARALLEL] for d in ("forward", "backward")
               for r in entries[f"gelu/{d}/float32/C"])


def test_tune_measures_backward_from_y_separately(tmp_path, monkeypatch):
    # the whole tuner with a scripted sample(): no timing. numba serial "wins" the
    # backward from y, cython serial everything else.
    avail = [b for b in _tuning.ACCELERATED if _backends.available(b)[0]]
    if len(avail) < 2:
        pytest.skip("needs both accelerated backends")

    def sample(call, seconds, min_calls):
        be, threads = call.args[0].name, call.args[-1]
        from_y = call.func is _tuning._alloc_backward_y
        fast = ("numba" if from_y else "cython", 1)
        return 1.0 if (be, threads) == fast else 2.0

    stats = {}
    entries = _tuning.measure(["sigmoid", "gelu"], sizes=(10, 1000), progress=False, sample=sample, stats=stats)
    assert set(entries) == {f"{f}/{d}/{t}/C" for f, ds in (("sigmoid", _tuning.DIRECTIONS), ("gelu", _tuning.DIRECTIONS[:2]))
                            for d in ds for t in ("float32", "float64")}
    assert stats["cells"] == 20 and stats["remeasured"] == 0  # scripted: every cell is clear-cut
    assert entries["sigmoid/backward_y/float32/C"][0][:3] == [10, "numba", 1]
    assert entries["sigmoid/backward/float32/C"][0][:3] == [10, "cython", 1]
    path = _tuning.save(entries, tmp_path / "t.json")
    monkeypatch.setenv("FASTACT_TUNING_FILE", str(path))
    _backends.reload_table()
    try:
        y = np.full(1000, 0.5, dtype=np.float32)
        assert fastact.explain("sigmoid", y=y)["backend"] == "numba"
        assert fastact.explain("sigmoid", y, backward=True)["backend"] == "cython"
        assert "tuned table" in fastact.explain("sigmoid", y=y)["reason"]
    finally:
        monkeypatch.delenv("FASTACT_TUNING_FILE")
        _backends.reload_table()


# ------------------------------------------- the inlined backward fast path


def _strided(a):
    """A copy of ``a`` that is not contiguous (so the call takes the general path)."""
    s = np.empty(a.shape + (2,), a.dtype)[..., 0]
    s[...] = a
    assert a.size < 2 or not (s.flags.c_contiguous or s.flags.f_contiguous)
    return s


_FAST_CASES = [("sigmoid", {}), ("relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("elu", {"alpha": 0.7}),
               ("gelu", {"approximate": "tanh"}), ("tanh", {}), ("rrelu", {"lower": 0.1, "upper": 0.3})]


def test_rrelu_in_evaluation_is_leaky_relus_fast_path(monkeypatch):
    """rrelu with training=False takes leaky_relu's inlined path at the mean
    slope (leaky_relu's bits), still checks its own parameters under its own
    name, and leaves training mode to the general path."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(1000) * 3).astype(np.float32)
    g = rng.standard_normal(1000).astype(np.float32)
    with monkeypatch.context() as m:
        no_general_path(m, fastact.rrelu)
        no_general_path(m, fastact.rrelu_backward)
        for lo, hi in ((0.1, 0.3), (1 / 8, 1 / 3), (0, 0)):
            s = 0.5 * (lo + hi)
            np.testing.assert_array_equal(fastact.rrelu(x, lower=lo, upper=hi), fastact.leaky_relu(x, negative_slope=s))
            np.testing.assert_array_equal(fastact.rrelu_backward(g, x, lower=lo, upper=hi), fastact.leaky_relu_backward(g, x, negative_slope=s))
        with pytest.raises(ValueError, match="fastact.rrelu: lower must be <= upper"):
            fastact.rrelu(x, lower=0.5, upper=0.1)
        with pytest.raises(ValueError, match="fastact.rrelu_backward: lower must be <= upper"):
            fastact.rrelu_backward(g, x, lower=0.5, upper=0.1)
        with pytest.raises(ValueError, match="fastact.rrelu: lower must be a finite number"):
            fastact.rrelu(x, lower=float("nan"))
        with pytest.raises(AssertionError, match="general path"):
            fastact.rrelu(x, training=True, rng=1)
        with pytest.raises(AssertionError, match="general path"):
            fastact.rrelu_backward(g, y=x)  # which the general path refuses
    with pytest.raises(ValueError, match="y= is not accepted"):
        fastact.rrelu_backward(g, y=x)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,params", _FAST_CASES, ids=[c[0] for c in _FAST_CASES])
def test_backward_fast_path_matches_the_general_path(monkeypatch, name, params, dtype):
    rng = np.random.default_rng(5)
    fn = fastact.BACKWARD[name] if hasattr(fastact, "BACKWARD") else getattr(fastact, name + "_backward")
    spec = fastact._registry.get_spec(name)
    allows_y = spec.allows_y(params)
    for shape, order in [((1,), "C"), ((7,), "C"), ((3, 5), "C"), ((3, 5), "F"), ((), "C")]:
        x = np.asarray(rng.standard_normal(shape) * 3, dtype=dtype, order=order)
        g = np.asarray(rng.standard_normal(shape), dtype=dtype, order=order)
        y = getattr(fastact, name)(x, **params)
        forms = [("x", x)] + ([("y", y)] if allows_y else [])
        for form, src in forms:
            call = (lambda g, s: fn(g, s, **params)) if form == "x" else (lambda g, s: fn(g, y=s, **params))
            general = call(_strided(g), _strided(src)) if shape and g.size > 1 else None
            out = np.full(shape, np.nan, dtype)
            fn(g, **{form: _strided(src) if shape and g.size > 1 else src}, **params, out=out)
            with monkeypatch.context() as m:
                no_general_path(m, fn)
                fast = call(g, src)
                backends = [b for b in ("numpy", "numba", "cython") if _backends.available(b)[0]]
                forced = {}
                for b in backends:
                    with fastact.use_backend(b):
                        forced[b] = call(g, src)
            assert fast.dtype == np.dtype(dtype) and fast.shape == shape
            assert fast.flags.f_contiguous == (order == "F" or len(shape) < 2)
            np.testing.assert_array_equal(fast, out)
            if general is not None:
                np.testing.assert_array_equal(fast, general)
            for b in backends:  # forced, the fast path runs that backend's kernel: the general path's result
                with fastact.use_backend(b):
                    ref = fn(g, **{form: src}, **params, out=np.empty(shape, dtype))
                np.testing.assert_array_equal(forced[b], ref)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,params", _FAST_CASES, ids=[c[0] for c in _FAST_CASES])
def test_out_takes_the_fast_path_where_it_can(monkeypatch, name, params, dtype):
    # out= of the input's dtype, shape and layout, writeable and apart from
    # the inputs: the fast path, with the allocating call's result; anything
    # else goes on to the general path, which copies overlapping inputs,
    # refuses read-only outputs and converts layouts as before.
    rng = np.random.default_rng(8)
    f, b = getattr(fastact, name), getattr(fastact, name + "_backward")
    allows_y = fastact._registry.get_spec(name).allows_y(params)
    for shape, order in [((1,), "C"), ((33,), "C"), ((3, 5), "C"), ((3, 5), "F")]:
        x = np.asarray(rng.standard_normal(shape) * 3, dtype=dtype, order=order)
        g = np.asarray(rng.standard_normal(shape), dtype=dtype, order=order)
        y, gx = f(x, **params), b(g, x, **params)
        gy = b(g, y=y, **params) if allows_y else None
        with monkeypatch.context() as m:
            no_general_path(m, f)
            no_general_path(m, b)
            out = np.empty_like(x)
            assert f(x, **params, out=out) is out
            np.testing.assert_array_equal(out, y)
            assert b(g, x, **params, out=out) is out
            np.testing.assert_array_equal(out, gx)
            if allows_y:
                assert b(g, y=y, **params, out=out) is out
                np.testing.assert_array_equal(out, gy)
    # what the fast path leaves alone
    x = (rng.standard_normal(40) * 3).astype(dtype)
    g = rng.standard_normal(40).astype(dtype)
    buf = np.concatenate([x, x[:1]])
    f(buf[:-1], **params, out=buf[1:])  # overlapping: as if x had been copied
    np.testing.assert_array_equal(buf[1:], f(x, **params))
    buf = np.concatenate([g, g[:1]])
    b(buf[:-1], x, **params, out=buf[1:])
    np.testing.assert_array_equal(buf[1:], b(g, x, **params))
    gi = g.copy()
    assert b(gi, x, **params, out=gi) is gi  # in place into grad_output
    np.testing.assert_array_equal(gi, b(g, x, **params))
    ro = np.empty_like(x)
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        f(x, **params, out=ro)
    with pytest.raises(ValueError):
        b(g, x, **params, out=ro)
    x2 = np.asfortranarray((rng.standard_normal((4, 6)) * 3).astype(dtype))
    o2 = np.empty((4, 6), dtype)  # C order for an F-ordered x
    f(x2, **params, out=o2)
    np.testing.assert_array_equal(o2, f(x2, **params))


_AXIS_FAST = ["softmax", "log_softmax", "softmin", "sparsemax"]
_AXIS_SHAPES = [((1, 1024), -1), ((9,), 0), ((7, 5, 3), 1), ((7, 5, 3), 0), ((4, 6), -2), ((2, 3, 4), 2)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", _AXIS_FAST)
def test_axis_fast_paths_match_the_general_path(monkeypatch, name, dtype):
    """softmax & co. on C-contiguous arrays: the inlined forward and backward give the general path's result."""
    rng = np.random.default_rng(11)
    fwd, bwd = getattr(fastact, name), getattr(fastact, name + "_backward")
    backends = [b for b in ("numpy", "numba", "cython") if _backends.available(b)[0]] + ["auto"]
    for shape, axis in _AXIS_SHAPES:
        x = np.asarray(rng.standard_normal(shape) * 3, dtype=dtype)
        g = np.asarray(rng.standard_normal(shape), dtype=dtype)
        for b in backends:
            with fastact.use_backend(b):
                # out= takes the general path: the reference results
                y_ref = fwd(x, axis=axis, out=np.empty(shape, dtype))
                dx_ref = bwd(g, x, axis=axis, out=np.empty(shape, dtype))
                dy_ref = bwd(g, y=y_ref, axis=axis, out=np.empty(shape, dtype))
                with monkeypatch.context() as m:
                    no_general_path(m, fwd)
                    no_general_path(m, bwd)
                    y = fwd(x, axis=axis)
                    dx = bwd(g, x, axis=axis)
                    dy = bwd(g, y=y_ref, axis=axis)
            for got, ref in ((y, y_ref), (dx, dx_ref), (dy, dy_ref)):
                assert got.dtype == np.dtype(dtype) and got.shape == shape and got.flags.c_contiguous
                np.testing.assert_array_equal(got, ref, err_msg=f"{name} {b} {shape} axis={axis}")


@pytest.mark.parametrize("name", _AXIS_FAST)
def test_axis_fast_paths_leave_the_rest_to_the_general_path(name):
    """What the fast path does not take still works or raises as before: the general path sees it."""
    fwd, bwd = getattr(fastact, name), getattr(fastact, name + "_backward")
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    y = fwd(x)
    ref = fwd(np.ascontiguousarray(x))
    np.testing.assert_array_equal(fwd(np.asfortranarray(x)), ref)  # not C-contiguous
    np.testing.assert_array_equal(fwd(x[:, ::-1].copy()[:, ::-1]), ref)  # a view with negative strides
    np.testing.assert_array_equal(fwd(x, axis=np.int64(-1)), ref)  # a NumPy integer axis
    assert fwd(x.astype(np.float16)).dtype == np.float16
    assert fwd(np.zeros((0, 3), np.float32)).shape == (0, 3)
    with pytest.raises(ValueError, match="axis"):
        fwd(x, axis=2)
    with pytest.raises(ValueError, match="axis"):
        bwd(x, y=y, axis=-3)
    with pytest.raises(TypeError):
        fwd(x, axis=1.0)
    with pytest.raises(ValueError):  # grad_output and y disagree
        bwd(x[:, :3].copy(), y=y)
    # x and y both given: y is used, and the general path checks x
    np.testing.assert_array_equal(bwd(x, x, y=y), bwd(x, y=y))


_SHRINK_CASES = [("glu", {}), ("maxout", {"pieces": 2}), ("maxout", {"pieces": 3}), ("maxout", {"pieces": 1})]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,params", _SHRINK_CASES + [("prelu", {})], ids=lambda v: str(v))
def test_glu_maxout_prelu_fast_forward_matches_the_general_path(monkeypatch, name, params, dtype):
    rng = np.random.default_rng(13)
    fwd = getattr(fastact, name)
    backends = [b for b in ("numpy", "numba", "cython") if _backends.available(b)[0]] + ["auto"]
    for shape, axis in [((1, 1020), -1), ((6,), 0), ((6, 12, 3), 1), ((12, 5, 3), 0), ((6, 6), -2), ((2, 3, 6), 2)]:
        x = np.asarray(rng.standard_normal(shape) * 3, dtype=dtype)
        args = dict(params, axis=axis)
        if name == "prelu":
            weights = [rng.uniform(-1, 1, shape[axis]).astype(dtype), np.full(1, 0.3, dtype)]
        for b in backends:
            for w in weights if name == "prelu" else [None]:
                call = (lambda **k: fwd(x, w, **args, **k)) if name == "prelu" else (lambda **k: fwd(x, **args, **k))
                with fastact.use_backend(b):
                    ref = call(out=np.empty(fwd(np.ascontiguousarray(x), *([w] if w is not None else []), **args).shape, dtype))
                    with monkeypatch.context() as m:
                        no_general_path(m, fwd)
                        got = call()
                assert got.dtype == np.dtype(dtype) and got.shape == ref.shape and got.flags.c_contiguous
                np.testing.assert_array_equal(got, ref, err_msg=f"{name} {params} {b} {shape} axis={axis}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,params", _SHRINK_CASES + [("prelu", {})], ids=lambda v: str(v))
def test_glu_maxout_prelu_fast_backward_matches_the_general_path(monkeypatch, name, params, dtype):
    rng = np.random.default_rng(17)
    fwd, bwd = getattr(fastact, name), getattr(fastact, name + "_backward")
    backends = [b for b in ("numpy", "numba", "cython") if _backends.available(b)[0]] + ["auto"]
    for shape, axis in [((1, 1020), -1), ((6,), 0), ((6, 12, 3), 1), ((12, 5, 3), 0), ((6, 6), -2), ((2, 3, 6), 2)]:
        x = np.asarray(rng.standard_normal(shape) * 3, dtype=dtype)
        args = dict(params, axis=axis)
        weights = [rng.uniform(-1, 1, shape[axis]).astype(dtype), np.full(1, 0.3, dtype)] if name == "prelu" else [None]
        for w in weights:
            extra = [w] if w is not None else []
            g = np.asarray(rng.standard_normal(fwd(x, *extra, **args).shape), dtype=dtype)
            for b in backends:
                with fastact.use_backend(b):
                    ref = bwd(g, x, *extra, **args, out=np.empty(shape, dtype))  # out= takes the general path
                    with monkeypatch.context() as m:
                        no_general_path(m, bwd)
                        got = bwd(g, x, *extra, **args)
                if name == "prelu":
                    (got, gw), (ref, rw) = got, ref
                    assert gw.dtype == np.dtype(dtype) and gw.shape == w.shape
                    np.testing.assert_array_equal(gw, rw, err_msg=f"prelu grad_weight {b} {shape} axis={axis}")
                assert got.dtype == np.dtype(dtype) and got.shape == shape and got.flags.c_contiguous
                np.testing.assert_array_equal(got, ref, err_msg=f"{name} {params} {b} {shape} axis={axis}")


def test_glu_maxout_prelu_fast_forward_leave_the_rest_to_the_general_path():
    x = np.random.default_rng(3).standard_normal((4, 6)).astype(np.float32)
    with pytest.raises(ValueError, match="even"):
        fastact.glu(x[:, :5].copy())
    with pytest.raises(ValueError, match="pieces"):
        fastact.maxout(x, 4)
    with pytest.raises(ValueError):
        fastact.maxout(x, 0)
    with pytest.raises(TypeError):
        fastact.maxout(x, 2.0)
    w = np.full(6, 0.25, np.float32)
    np.testing.assert_array_equal(fastact.prelu(x, w, axis=1), fastact.prelu(x, w.astype(np.float64), axis=1))
    for bad in (np.array([0.1, np.nan, 0, 0, 0, 0], np.float32), np.array([np.inf] * 6, np.float32)):
        with pytest.raises(ValueError, match="finite"), np.errstate(invalid="ignore"):
            fastact.prelu(x, bad, axis=1)
    big = np.full(6, 3e38, np.float32)  # finite and huge: the fast path, no overflow warning
    with np.errstate(over="ignore"):
        expected = np.where(x > 0, x, np.float32(3e38) * x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = fastact.prelu(x, big, axis=1)
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="weight has 5 elements"):
        fastact.prelu(x, w[:5].copy(), axis=1)
    with pytest.raises(ValueError, match="axis"):
        fastact.prelu(x, w, axis=2)
    # the backwards: what the fast path does not take is checked by the general path
    with pytest.raises(ValueError):
        fastact.glu_backward(np.ones((4, 2), np.float32), x)  # grad_output of the wrong shape
    with pytest.raises(ValueError):
        fastact.maxout_backward(np.ones((4, 3), np.float32), x, 4)
    with pytest.raises(ValueError):
        fastact.glu_backward(np.ones((4, 3), np.float32), y=x)  # glu refuses y=
    with pytest.raises(ValueError, match="finite"), np.errstate(invalid="ignore"):
        fastact.prelu_backward(np.ones_like(x), x, np.full(6, np.inf, np.float32), axis=1)
    with pytest.raises(ValueError):
        fastact.prelu_backward(np.ones((4, 5), np.float32), x, w, axis=1)
    dx, dw = fastact.prelu_backward(np.ones_like(x), x, w.astype(np.float64), axis=1)  # weight of another dtype
    assert dx.dtype == np.float32 and dw.shape == (6,)


_ERROR_CASES = [
    ("leaky_relu", "x", {"negative_slope": "big"}, TypeError),  # parameter of the wrong type
    ("elu", "x", {"alpha": True}, TypeError),
    ("celu", "x", {"alpha": 0.0}, ValueError),  # parameter out of range
    ("gelu", "x", {"approximate": "fast"}, ValueError),  # not one of the choices
    ("gelu", "y", {}, ValueError),  # y= refused by the function
    ("leaky_relu", "y", {"negative_slope": -0.1}, ValueError),  # y= refused for these parameters
    ("rrelu", "y", {}, ValueError),  # rrelu's backward needs x
    ("sigmoid", "none", {}, TypeError),  # neither x nor y
    ("sigmoid", "shape", {}, ValueError),  # grad_output and x disagree
    ("sigmoid", "y_shape", {}, ValueError),
    ("sigmoid", "bad_x", {}, TypeError),  # x of a dtype fastact refuses
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,form,params,exc", _ERROR_CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(_ERROR_CASES)])
def test_backward_fast_path_raises_what_the_general_path_raises(name, form, params, exc, dtype):
    fn = getattr(fastact, name + "_backward")
    g = np.linspace(-2, 2, 6, dtype=dtype)
    x = np.linspace(-1, 3, 6, dtype=dtype)

    def call(prep):
        gg, xx = prep(g), prep(x)
        if form == "x":
            return fn(gg, xx, **params)
        if form == "y":
            return fn(gg, y=xx, **params)
        if form == "none":
            return fn(gg, **params)
        if form == "shape":
            return fn(gg, prep(np.ones(5, dtype)), **params)
        if form == "y_shape":
            return fn(gg, y=prep(np.ones(5, dtype)), **params)
        return fn(gg, xx.astype(np.complex128), **params)

    messages = []
    for prep in (lambda a: a, _strided):  # contiguous (fast path), strided (general path)
        with pytest.raises(exc) as info:
            call(prep)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    with fastact.use_backend("numpy"):  # forced: the same error
        with pytest.raises(exc, match=None) as info:
            call(lambda a: a)
    assert str(info.value) == messages[0]


def test_backward_fast_path_keeps_the_dtype_rules():
    # mixed dtypes, float16 and integers are not the fast path's: they promote as before
    g32, x64 = np.ones(4, np.float32), np.linspace(-1, 1, 4)
    assert fastact.sigmoid_backward(g32, x64).dtype == np.float64
    assert fastact.sigmoid_backward(g32.astype(np.float16), x64.astype(np.float16)).dtype == np.float16
    assert fastact.relu_backward(np.ones(4, np.int32), np.arange(4) - 2).dtype == np.float64
    # one C-ordered and one F-ordered input: right values, through the general path
    g = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    x = np.arange(6.0).reshape(2, 3) - 2
    np.testing.assert_array_equal(fastact.relu_backward(g, x), np.where(x > 0, g, 0.0))


def test_backward_fast_path_follows_the_memo_and_backend_switch(tuning_file, monkeypatch):
    _table(tuning_file, {"sigmoid/backward/float32/C": _rungs("numpy", _tuning.PARALLEL),
                         "sigmoid/backward_y/float32/C": _rungs("numpy", 1)})
    from fastact._reference import BACKEND as ref

    calls = []
    monkeypatch.setattr(ref, "backward", lambda *a, _f=ref.backward: calls.append((a[2] is None, a[-1])) or _f(*a),
                        raising=False)
    no_general_path(monkeypatch, fastact.sigmoid_backward)
    x = np.linspace(-1, 1, 1000, dtype=np.float32)
    y, g = fastact.sigmoid(x), np.ones(1000, np.float32)
    other = "cython" if _backends.available("cython")[0] else "numba"
    saved = _config._explicit
    fastact.set_num_threads(1)
    try:
        fastact.sigmoid_backward(g, x)
        fastact.sigmoid_backward(g, y=y)
        fastact.set_num_threads(2)
        fastact.sigmoid_backward(g, x)
        assert calls == [(False, 1), (True, 1), (False, 2)]
        with fastact.use_backend(other):
            fastact.sigmoid_backward(g, x)
            fastact.sigmoid_backward(g, y=y)
        old = fastact.set_backend(other)
        try:
            fastact.sigmoid_backward(g, x)
        finally:
            fastact.set_backend(old)
        assert len(calls) == 3  # the forced calls did not reach the memo's numpy entries
        _table(tuning_file, {"sigmoid/backward/float32/C": _rungs(other, 1)})
        _backends.reload_table()  # a new table empties the memo the function reads
        fastact.sigmoid_backward(g, x)
        assert len(calls) == 3
    finally:
        fastact.set_num_threads(saved)
    code = ("import fastact, numpy as np\n"
            "from fastact._reference import BACKEND as ref\n"
            "seen = []\n"
            "f = ref.backward\n"
            "ref.backward = lambda *a: seen.append(1) or f(*a)\n"
            "g = np.ones(1, np.float32)\n"
            "fastact.sigmoid_backward(g, g); fastact.sigmoid_backward(g, y=g)\n"
            "print(len(seen))\n")
    r = _run(code, FASTACT_BACKEND="numpy")
    assert r.stdout.strip() == "2", r.stdout + r.stderr


def _compiled_fastpath():
    """fastact._api, when fastact._fastpath is compiled (a failure if the Cython backend is built and it is not)."""
    from fastact import _api

    if _api.FASTPATH != "compiled":
        if _backends.available("cython")[0]:
            pytest.fail(f"the Cython backend is built but fastact._fastpath is not: {_api.FASTPATH}")
        pytest.skip(f"fastact._fastpath is not compiled ({_api.FASTPATH}); the Python checks are the only ones")
    return _api


def _fast_check_inputs():
    """Arrays the fast-path checks must accept or refuse, and the pairs among them."""
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    f32 = [base, np.asfortranarray(base), base[:, ::2], base.T, base[:1, :1], base.ravel(), base[:, 1],
           np.ones((), np.float32), np.empty((0, 4), np.float32), np.ones((1, 1, 5), np.float32)]
    arrays = f32 + [a.astype(np.float64) for a in f32] + [
        base.astype(np.float16), base.astype(np.int32), base.astype(">f4"), base.astype(np.complex64),
        base.view(np.matrix), np.ma.masked_array(base), [1.0, 2.0], 3.0, None]
    return arrays


def test_compiled_fast_path_checks_agree_with_the_python_ones():
    _api = _compiled_fastpath()
    m32 = [("f32", b) for b in range(65)]
    m64 = [("f64", b) for b in range(65)]
    m32[3] = None  # an unresolved entry
    arrays = _fast_check_inputs()
    for a in arrays:
        assert _api._one(a, m32, m64) == _api._one_py(a, m32, m64), repr(a)
        for b in arrays:
            assert _api._pair(a, b, m32, m64) == _api._pair_py(a, b, m32, m64), (repr(a), repr(b))
    # the out= checks, with outputs that overlap, are read-only, or are apart
    big = np.arange(40, dtype=np.float32)
    ro = np.zeros((3, 4), np.float32)
    ro.flags.writeable = False
    outs = arrays[:6] + [big[:12].reshape(3, 4), big[4:16].reshape(3, 4), big[12:24].reshape(3, 4), ro, None]
    ins = [big[:12].reshape(3, 4), big[12:24].reshape(3, 4), np.zeros((3, 4), np.float32), arrays[0], arrays[1]]
    for a in ins:
        for o in outs:
            assert _api._into(a, o, m32, m64) == _api._into_py(a, o, m32, m64), (repr(a), repr(o))
            for b in ins:
                assert _api._into2(a, b, o, m32, m64) == _api._into2_py(a, b, o, m32, m64), (repr(a), repr(b), repr(o))
    # float16's (the float32 memo list, and a float16 result of x's shape)
    halves = arrays + [a.astype(np.float16) for a in arrays[:10]] + [np.ones((2, 3), np.float16).T]
    for a in halves:
        c, p = _api._half_one(a, m32), _api._half_one_py(a, m32)
        assert (c is False and p is False) or (c[0] == p[0] and c[1].shape == p[1].shape == a.shape
                                               and c[1].dtype == np.float16 and c[1].flags.c_contiguous), repr(a)
        for b in halves[-12:]:
            c, p = _api._half_pair(a, b, m32), _api._half_pair_py(a, b, m32)
            assert (c is False and p is False) or (c[0] == p[0] and c[1].shape == p[1].shape == a.shape), \
                (repr(a), repr(b))
    assert _api._half_one(arrays[0].astype(np.float16), m32)[0] == ("f32", 4)
    assert _api._half_one(np.ones((2, 3), np.float16).T, m32) is False  # F-ordered
    a, b = big[:12].reshape(3, 4), big[12:24].reshape(3, 4)
    assert _api._into(a, b, m32, m64) == ("f32", 4)  # adjacent, not overlapping
    assert _api._into(a, big[11:23].reshape(3, 4), m32, m64) is False  # one element shared
    assert _api._into(a, ro, m32, m64) is False
    assert _api._into2(a, b, big[24:36].reshape(3, 4), m32, m64) == ("f32", 4)
    assert _api._into2(a, b, big[23:35].reshape(3, 4), m32, m64) is False
    # what they accept, spelled out once
    base = arrays[0]
    assert _api._one(base, m32, m64) == ("f32", 4)
    assert _api._one(base.astype(np.float64), m32, m64) == ("f64", 4)
    assert _api._one(base[:1, :], m32, m64) is None  # 4 elements: bit length 3
    assert _api._one(base[:, ::2], m32, m64) is False
    assert _api._pair(base, np.asfortranarray(base), m32, m64) is False
    assert _api._pair(base.T, base.T.copy(), m32, m64) is False  # F-ordered and C-ordered
    assert _api._pair(base.T, np.asfortranarray(base.T), m32, m64) == ("f32", 4)


def _same_axis_result(a, b):
    """Two results of the along-axis checks: False both, or the same entry and arrays alike."""
    if a is False or b is False:
        return a is b
    if a[0] != b[0] or len(a) != len(b):
        return False
    for u, v in zip(a[1:], b[1:]):
        if type(u) is not np.ndarray or u.shape != v.shape or u.dtype != v.dtype or not u.flags.c_contiguous:
            return False
    return all(np.shares_memory(u, v) for u, v in zip(a[1:-2], b[1:-2]))  # the views are of the inputs


def _axis_check_grid(shape):
    """fastact._api with fastact._fastpath compiled, memo lists of tagged entries, the arrays (_fast_check_inputs
    and three of ``shape``) and the axes (in range and not, not int) the along-axis checks are held to."""
    _api = _compiled_fastpath()
    m32 = [("f32", b) for b in range(65)]
    m64 = [("f64", b) for b in range(65)]
    arrays = _fast_check_inputs() + [np.ones(shape, np.float32), np.ones(shape), np.ones((4, 1), np.float32)]
    axes = [0, 1, 2, -1, -2, -3, 3, -4, True, 1.0, None, 2**70, np.int64(1)]
    return _api, m32, m64, arrays, axes


def test_compiled_axis_checks_agree_with_the_python_ones():
    _api, m32, m64, arrays, axes = _axis_check_grid((2, 3, 4))
    for a in arrays:
        for ax in axes:
            c, p = _api._axis_forward(a, ax, m32, m64), _api._axis_forward_py(a, ax, m32, m64)
            assert _same_axis_result(c, p), (repr(a), ax, c, p)
            if c is not False:
                assert c[1].base is a or c[1] is a or np.shares_memory(c[1], a)
                assert c[1].shape == c[3].shape and c[2].shape == np.shape(a)
            for b in arrays[:4] + [a]:
                c, p = _api._axis_backward(a, b, ax, m32, m64), _api._axis_backward_py(a, b, ax, m32, m64)
                assert _same_axis_result(c, p), (repr(a), repr(b), ax)
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    hit, x3, res, r3 = _api._axis_forward(x, 1, m32, m64)
    assert hit == ("f32", 5) and x3.shape == (2, 3, 4) and res.shape == (2, 3, 4)
    assert _api._axis_forward(x, -1, m32, m64)[1].shape == (6, 4, 1)
    assert _api._axis_forward(x, 0, m32, m64)[1].shape == (1, 2, 12)
    # out=: used as the result when it is a C-contiguous ndarray of the input's dtype and shape,
    # writeable and apart from the inputs; anything else is refused (the general path takes it)
    big = np.zeros(80, np.float32)
    ro = np.zeros((2, 3, 4), np.float32)
    ro.flags.writeable = False
    g = np.ones((2, 3, 4), np.float32)
    outs = [np.empty((2, 3, 4), np.float32), big[:24].reshape(2, 3, 4), big[23:47].reshape(2, 3, 4),
            np.empty((2, 3, 4), np.float64), np.empty((2, 4, 3), np.float32), np.empty((4, 3, 2), np.float32).T,
            ro, np.ma.masked_array(np.empty((2, 3, 4), np.float32)), x, g, [0.0] * 24]
    ins = [x, big[:24].reshape(2, 3, 4), big[24:48].reshape(2, 3, 4)]
    for a in ins:
        for o in outs:
            c, p = _api._axis_forward(a, 1, m32, m64, o), _api._axis_forward_py(a, 1, m32, m64, o)
            assert _same_axis_result(c, p), (repr(a), repr(o))
            assert c is False or (c[2] is o and np.shares_memory(c[3], o))
            for b in ins + [g]:
                c, p = _api._axis_backward(a, b, 1, m32, m64, o), _api._axis_backward_py(a, b, 1, m32, m64, o)
                assert _same_axis_result(c, p), (repr(a), repr(b), repr(o))
                assert c is False or c[3] is o
    # float16 along the last axis (the float32 memo list)
    halves = [a.astype(np.float16) for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind == "f"] + arrays
    for a in halves:
        for ax in axes:
            c, p = _api._half_axis_f(a, ax, m32), _api._half_axis_forward_py(a, ax, m32)
            assert _same_axis_result(c, p), (repr(a), ax, c, p)
            assert c is False or (c[1].shape[2] == 1 and c[1].shape[1] == a.shape[-1] and c[2].dtype == np.float16)
            for b in halves[:6] + [a, np.ones(np.shape(a), np.float16)]:
                c, p = _api._half_axis_b(a, b, ax, m32), _api._half_axis_backward_py(a, b, ax, m32)
                assert _same_axis_result(c, p), (repr(a), repr(b), ax)
    assert _api._half_axis_f(x.astype(np.float16), -1, m32)[1].shape == (6, 4, 1)
    assert _api._half_axis_f(x.astype(np.float16), 1, m32) is False  # not the last axis
    assert _api._axis_forward(x, 1, m32, m64, outs[0])[2] is outs[0]
    assert _api._axis_forward(big[:24].reshape(2, 3, 4), 1, m32, m64, outs[2]) is False  # one element shared
    assert _api._axis_forward(big[:24].reshape(2, 3, 4), 1, m32, m64, big[24:48].reshape(2, 3, 4)) is not False
    assert _api._axis_backward(g, x, 1, m32, m64, x) is False and _api._axis_backward(g, x, 1, m32, m64, ro) is False


def test_compiled_shrink_checks_agree_with_the_python_ones():
    # glu's and maxout's fast path (fastact._fastpath.shrink_forward /
    # shrink_backward): x's checks, the memo entry of x's size, the views and
    # a result whose axis is x's divided by div; the backward's grad_output of
    # x's dtype and of that shape
    _api, m32, m64, arrays, axes = _axis_check_grid((2, 6, 4))
    divs = [2, 3, 1, 0, -2, 2**70, True, 2.0, None]
    for a in arrays:
        for ax in axes:
            for d in divs:
                c, p = _api._shrink_forward(a, ax, d, m32, m64), _api._shrink_forward_py(a, ax, d, m32, m64)
                assert _same_axis_result(c, p), (repr(a), ax, d, c, p)
                if c is False:
                    continue
                k = a.shape[ax] // d
                assert c[2].shape == a.shape[:ax % a.ndim] + (k,) + a.shape[ax % a.ndim + 1:]
                assert c[3].shape == (c[1].shape[0], k, c[1].shape[2]) and c[0] == _api._one(a, m32, m64)
                gs = [np.ones(c[2].shape, a.dtype), np.ones(c[2].shape, np.float16), np.ones(a.shape, a.dtype),
                      np.asfortranarray(np.ones(c[2].shape, a.dtype)), np.ones(c[2].shape + (1,), a.dtype),
                      list(np.ones(c[2].shape).ravel())]
                for g in gs:
                    cb, pb = _api._shrink_backward(g, a, ax, d, m32, m64), _api._shrink_backward_py(g, a, ax, d, m32, m64)
                    assert _same_axis_result(cb, pb), (repr(a), ax, d, repr(g))
                    assert cb is False or (cb[3].shape == a.shape and cb[1].shape == c[3].shape)
                assert _api._shrink_backward(gs[0], a, ax, d, m32, m64) is not False or not gs[0].flags.c_contiguous
    x = np.arange(24, dtype=np.float32).reshape(2, 6, 2)
    hit, x3, res, r3 = _api._shrink_forward(x, 1, 3, m32, m64)
    assert hit == ("f32", 5) and x3.shape == (2, 6, 2) and res.shape == (2, 2, 2) and r3.shape == (2, 2, 2)


def test_compiled_prelu_checks_agree_with_the_python_ones():
    # prelu's fast path (fastact._fastpath.prelu_forward / prelu_backward): x's
    # checks as the softmax family's, and a weight of x's dtype, 1-D,
    # C-contiguous, of one slope or x.shape[axis] of them, all finite; one
    # slope makes the views (1, 1, n)
    _api, m32, m64, arrays, axes = _axis_check_grid((2, 3, 4))
    def weights(a):
        dt = a.dtype if isinstance(a, np.ndarray) and a.dtype.kind == "f" else np.float32
        out = [np.array([0.25], dt), np.float32(0.25), [0.25], np.zeros((1, 1), dt), np.array([], dt),
               np.array([np.nan], dt), np.array([0.25], np.float16)]
        for c in {3, 4, 2} | ({a.shape[-1]} if isinstance(a, np.ndarray) and a.ndim else set()):
            v = np.linspace(0.1, 0.5, c).astype(dt)
            out += [v, v.astype(np.float64 if v.dtype == np.float32 else np.float32), np.repeat(v, 2)[::2],
                    np.where(np.arange(c) == c - 1, np.inf, v).astype(dt)]
        return out
    for a in arrays:
        for ax in axes:
            for w in weights(a):
                c, p = _api._prelu_forward(a, w, ax, m32, m64), _api._prelu_forward_py(a, w, ax, m32, m64)
                assert _same_axis_result(c, p), (repr(a), ax, repr(w), c, p)
                if c is not False:
                    assert c[1].shape == ((1, 1, a.size) if w.size == 1 else _api._geometry_py(a.shape, ax))
                    assert c[2].shape == a.shape and c[3].shape == c[1].shape
                for g in (np.ones(np.shape(a), getattr(a, "dtype", np.float32)), np.ones((5,), np.float32)):
                    cb = _api._prelu_backward(g, a, w, ax, m32, m64)
                    pb = _api._prelu_backward_py(g, a, w, ax, m32, m64)
                    assert _same_axis_result(cb, pb), (repr(a), ax, repr(w), repr(g))
                    assert cb is False or (cb[1].shape == cb[2].shape == cb[4].shape and cb[3].shape == a.shape)
    # float16: a float16 weight, returned as float32 (the float32 memo list)
    def same16(c, p):
        return (c is False and p is False) or (_same_axis_result(c[:-1], p[:-1]) and c[-1].dtype == np.float32
                                               and np.array_equal(c[-1], p[-1]))
    halves = [a.astype(np.float16) for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    for a in halves + arrays[-12:]:
        for ax in axes:
            ws = [w.astype(np.float16) for w in weights(a) if isinstance(w, np.ndarray)] + weights(a)[:3]
            for w in ws:
                c, p = _api._half_prelu_f(a, w, ax, m32), _api._half_prelu_forward_py(a, w, ax, m32)
                assert same16(c, p), (repr(a), ax, repr(w))
                for g in (np.ones(np.shape(a), np.float16), np.ones(np.shape(a), np.float32)):
                    c, p = _api._half_prelu_b(g, a, w, ax, m32), _api._half_prelu_backward_py(g, a, w, ax, m32)
                    assert same16(c, p), (repr(a), ax, repr(w), repr(g))
    h = np.ones((2, 3, 4), np.float16)
    assert _api._half_prelu_f(h, np.ones(3, np.float16), 1, m32)[1].shape == (2, 3, 4)
    assert _api._half_prelu_f(h, np.ones(1, np.float16), -1, m32)[1].shape == (1, 1, 24)
    assert _api._half_prelu_f(h, np.ones(6, np.float16)[::2], 1, m32)[4].flags.c_contiguous
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    hit, x3, res, r3 = _api._prelu_forward(x, np.ones(3, np.float32), 1, m32, m64)
    assert hit == ("f32", 5) and x3.shape == (2, 3, 4) and res.shape == (2, 3, 4)
    assert _api._prelu_forward(x, np.ones(1, np.float32), 1, m32, m64)[1].shape == (1, 1, 24)
    assert _api._prelu_forward(x, np.ones(4, np.float32), 1, m32, m64) is False


def test_public_functions_with_the_python_fast_path_checks(monkeypatch):
    """A source checkout without fastact._fastpath: the same fast paths, through the Python checks."""
    from fastact import _api

    x = np.linspace(-3, 3, 15, dtype=np.float32).reshape(3, 5)
    g = np.ones_like(x)
    y = fastact.sigmoid(x)
    want = (fastact.sigmoid(x), fastact.sigmoid_backward(g, x), fastact.sigmoid_backward(g, y=y))
    sm = fastact.softmax(x, axis=0)
    want += (sm, fastact.softmax_backward(g, x, axis=0), fastact.softmax_backward(g, y=sm, axis=0))
    h, gh = x.astype(np.float16), g.astype(np.float16)
    sh = fastact.softmax(h)
    want16 = (sh, fastact.softmax_backward(gh, h), fastact.softmax_backward(gh, y=sh))
    h = x.astype(np.float16)
    want += (fastact.sigmoid(h), fastact.sigmoid_backward(g.astype(np.float16), h),
             fastact.sigmoid_backward(g.astype(np.float16), y=y.astype(np.float16)))
    for fn in (fastact.sigmoid, fastact.sigmoid_backward, fastact.softmax, fastact.softmax_backward):
        monkeypatch.setitem(fn.__globals__, "_one", _api._one_py)
        monkeypatch.setitem(fn.__globals__, "_pair", _api._pair_py)
        monkeypatch.setitem(fn.__globals__, "_h1", _api._half_one_py)
        monkeypatch.setitem(fn.__globals__, "_h2", _api._half_pair_py)
        monkeypatch.setitem(fn.__globals__, "_ha1", _api._half_axis_forward_py)
        monkeypatch.setitem(fn.__globals__, "_ha2", _api._half_axis_backward_py)
        monkeypatch.setitem(fn.__globals__, "_axf", _api._axis_forward_py)
        monkeypatch.setitem(fn.__globals__, "_axb", _api._axis_backward_py)
        no_general_path(monkeypatch, fn)
    got = (fastact.sigmoid(x), fastact.sigmoid_backward(g, x), fastact.sigmoid_backward(g, y=y),
           fastact.softmax(x, axis=0), fastact.softmax_backward(g, x, axis=0), fastact.softmax_backward(g, y=sm, axis=0),
           fastact.sigmoid(h), fastact.sigmoid_backward(g.astype(np.float16), h),
           fastact.sigmoid_backward(g.astype(np.float16), y=y.astype(np.float16)))
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    got16 = (fastact.softmax(h), fastact.softmax_backward(gh, h), fastact.softmax_backward(gh, y=sh))
    for a, b in zip(got16, want16):
        np.testing.assert_array_equal(a, b)
    # out= on the softmax family's fast path
    outs = [np.empty_like(x) for _ in range(3)]
    got = (fastact.softmax(x, axis=0, out=outs[0]), fastact.softmax_backward(g, x, axis=0, out=outs[1]),
           fastact.softmax_backward(g, y=sm, axis=0, out=outs[2]))
    for a, o, b in zip(got, outs, want[3:]):
        assert a is o
        np.testing.assert_array_equal(a, b)
    # glu and maxout
    x = np.linspace(-3, 3, 36, dtype=np.float32).reshape(3, 12)
    want = [fastact.glu(x), fastact.maxout(x, 3), fastact.glu_backward(np.ones((3, 6), np.float32), x),
            fastact.maxout_backward(np.ones((3, 4), np.float32), x, 3)]
    for fn, name in ((fastact.glu, "_shf"), (fastact.maxout, "_shf"), (fastact.glu_backward, "_shb"),
                     (fastact.maxout_backward, "_shb")):
        monkeypatch.setitem(fn.__globals__, name, _api._shrink_forward_py if name == "_shf" else _api._shrink_backward_py)
        no_general_path(monkeypatch, fn)
    got = [fastact.glu(x), fastact.maxout(x, 3), fastact.glu_backward(np.ones((3, 6), np.float32), x),
           fastact.maxout_backward(np.ones((3, 4), np.float32), x, 3)]
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    # prelu, a weight per channel and one slope
    w, w1 = np.linspace(0.1, 0.4, 12, dtype=np.float32), np.array([0.25], np.float32)
    h, wh = x.astype(np.float16), w.astype(np.float16)
    want = [fastact.prelu(x, w), fastact.prelu(x, w1), *fastact.prelu_backward(np.ones_like(x), x, w),
            *fastact.prelu_backward(np.ones_like(x), x, w1), fastact.prelu(h, wh),
            *fastact.prelu_backward(np.ones_like(h), h, wh)]
    for fn, name in ((fastact.prelu, "_prf"), (fastact.prelu_backward, "_prb"), (fastact.prelu, "_hp1"),
                     (fastact.prelu_backward, "_hp2")):
        monkeypatch.setitem(fn.__globals__, name, {"_prf": _api._prelu_forward_py, "_prb": _api._prelu_backward_py,
                                                   "_hp1": _api._half_prelu_forward_py,
                                                   "_hp2": _api._half_prelu_backward_py}[name])
        no_general_path(monkeypatch, fn)
    got = [fastact.prelu(x, w), fastact.prelu(x, w1), *fastact.prelu_backward(np.ones_like(x), x, w),
           *fastact.prelu_backward(np.ones_like(x), x, w1), fastact.prelu(h, wh),
           *fastact.prelu_backward(np.ones_like(h), h, wh)]
    assert len(got) == len(want) == 9
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
