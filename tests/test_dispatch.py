"""The dispatcher: precedence, the tuning table (key, corruption, fallback), explain, tune."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastact
from fastact import _backends, _config, _tuning


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


def test_a_table_for_another_machine_is_ignored(tuning_file):
    key = dict(_tuning.machine_key(), numpy="0.0.1")
    _table(tuning_file, {"relu/forward/float32/C": _rungs("numpy", 1)}, key=key)
    info = fastact.explain("relu", np.ones(10, dtype=np.float32))
    assert "another machine or version" in info["reason"] and "numpy" in info["reason"]


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": 99}), json.dumps({"format": 1, "entries": {"x": 1}})])
def test_a_corrupt_table_warns_and_uses_defaults(tuning_file, content):
    tuning_file.write_text(content)
    with pytest.warns(RuntimeWarning, match="tuning table"):
        y = fastact.sigmoid(np.zeros(4))
    assert np.all(y == 0.5)
    assert "unreadable" in fastact.explain("sigmoid", np.zeros(4))["reason"]


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
    assert set(doc["entries"]) == {f"{f}/{d}/{t}/C" for f in ("relu", "softmax") for d in ("forward", "backward")
                                   for t in ("float32", "float64")}
    # a second, partial run merges into the table
    r = subprocess.run([sys.executable, "-m", "fastact", "tune", "--functions", "tanh", "--sizes", "10",
                        "--output", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "relu/forward/float32/C" in json.loads(out.read_text())["entries"]
    code = ("import fastact, numpy as np; i = fastact.explain('relu', np.ones(1000, np.float32)); "
            "print(i['reason']); print(fastact.relu(np.array([-1.0, 2.0])))")
    r = _run(code, FASTACT_TUNING_FILE=str(out))
    assert "tuned table" in r.stdout and "[0. 2.]" in r.stdout, r.stdout + r.stderr
