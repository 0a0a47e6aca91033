"""The backend switch: names, precedence, the environment variable, lazy imports, threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastact
from fastact import _backends


def _run(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FASTACT_")}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)


def test_import_compiles_nothing_and_skips_numba():
    r = _run("import sys, fastact; fastact.relu([1.0]) if False else None; "
             "print('numba' in sys.modules, 'fastact._cython' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


def test_set_backend_returns_previous_and_validates():
    before = fastact.get_backend()
    try:
        prev = fastact.set_backend("numpy")
        assert prev == before
        assert fastact.get_backend() == "numpy"
        assert fastact.set_backend("auto") == "numpy"
        with pytest.raises(ValueError, match="valid"):
            fastact.set_backend("torch")
        with pytest.raises(TypeError):
            fastact.set_backend(3)
    finally:
        fastact.set_backend(before)


def test_unavailable_backend_raises_runtimeerror(monkeypatch):
    monkeypatch.setitem(_backends._MODULES, "numba", "fastact._no_such_module")
    monkeypatch.setattr(_backends, "_loaded", {k: v for k, v in _backends._loaded.items() if k != "numba"})
    monkeypatch.setattr(_backends, "_failed", {})
    with pytest.raises(RuntimeError, match="unavailable"):
        fastact.set_backend("numba")
    with pytest.raises(RuntimeError, match="unavailable"):
        with fastact.use_backend("numba"):
            pass
    ok, why = _backends.available("numba")
    assert not ok and "No module" in why


def test_use_backend_is_a_context_and_thread_local():
    before = fastact.get_backend()
    seen = {}
    with fastact.use_backend("numpy") as name:
        assert name == "numpy" and fastact.get_backend() == "numpy"
        t = threading.Thread(target=lambda: seen.setdefault("other", fastact.get_backend()))
        t.start()
        t.join()
        with pytest.raises(ValueError):
            with fastact.use_backend("nope"):
                pass
        assert fastact.get_backend() == "numpy"
    assert fastact.get_backend() == before
    assert seen["other"] == before


def test_use_backend_wins_over_set_backend():
    before = fastact.set_backend("auto")
    try:
        with fastact.use_backend("numpy"):
            assert fastact.get_backend() == "numpy"
        assert fastact.get_backend() == "auto"
    finally:
        fastact.set_backend(before)


def test_env_backend_is_honoured():
    r = _run("import fastact; print(fastact.get_backend())", FASTACT_BACKEND="numpy")
    assert r.stdout.strip() == "numpy", r.stderr


def test_env_unknown_backend_warns_once_and_falls_back():
    r = _run("import warnings; warnings.simplefilter('always'); import fastact; print(fastact.get_backend())",
             FASTACT_BACKEND="turbo")
    assert r.stdout.strip() == "auto"
    assert r.stderr.count("FASTACT_BACKEND") == 1 and "numpy" in r.stderr and "cython" in r.stderr


def test_env_unavailable_backend_warns_and_falls_back():
    code = (
        "import warnings; warnings.simplefilter('always'); import fastact, fastact._backends as b;"
        "b._MODULES['numba'] = 'fastact._missing';"
        "import numpy as np; print(fastact.relu(np.array([-1.0, 2.0]))); print(fastact.get_backend())"
    )
    r = _run(code, FASTACT_BACKEND="numba")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-1] == "auto"
    assert "unavailable" in r.stderr


def test_num_threads_precedence():
    code = "import fastact; print(fastact.get_num_threads())"
    assert _run(code, FASTACT_NUM_THREADS="3", OMP_NUM_THREADS="1").stdout.strip() == "3"
    assert _run(code, OMP_NUM_THREADS="1").stdout.strip() == "1"
    r = _run("import warnings; warnings.simplefilter('always'); " + code, FASTACT_NUM_THREADS="many")
    assert "FASTACT_NUM_THREADS" in r.stderr
    prev = fastact.set_num_threads(1)
    try:
        assert fastact.get_num_threads() == 1
        with pytest.raises(ValueError):
            fastact.set_num_threads(0)
        with pytest.raises(TypeError):
            fastact.set_num_threads("2")
    finally:
        fastact.set_num_threads(None)
    assert fastact.get_num_threads() == prev or prev == 1


def test_activations_lists_every_public_function():
    names = [s.name for s in fastact.activations()]
    assert len(names) == len(set(names)) == 31
    for n in names:
        assert callable(getattr(fastact, n)) and callable(getattr(fastact, n + "_backward"))
        assert n in fastact.__all__ and n + "_backward" in fastact.__all__
        assert "Formula" in getattr(fastact, n).__doc__ and "Edges" in getattr(fastact, n).__doc__


def test_cli_lists_catalogue_and_backends():
    r = subprocess.run([sys.executable, "-m", "fastact"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for s in fastact.activations():
        assert s.name in r.stdout
    assert "numpy" in r.stdout and "numba" in r.stdout and "cython" in r.stdout


def test_show_config_reports_every_backend(capsys):
    fastact.show_config()
    text = capsys.readouterr().out
    for name in ("numpy", "numba", "cython", "threads"):
        assert name in text
    assert np.__version__ in text


def test_forced_backend_applies_to_the_backward_from_y(monkeypatch):
    # the backward from y has its own key in auto's table; a forced backend overrides it like any other
    from fastact._reference import BACKEND as ref

    seen = []
    monkeypatch.setattr(ref, "backward", lambda *a, _f=ref.backward: seen.append(a[3] is not None) or _f(*a), raising=False)
    y = fastact.sigmoid(np.linspace(-2, 2, 50))
    g = np.ones_like(y)
    with fastact.use_backend("numpy"):
        r = fastact.sigmoid_backward(g, y=y)
        assert fastact.explain("sigmoid", y=y)["backend"] == "numpy"
    assert seen == [True]
    np.testing.assert_allclose(r, y * (1 - y))
    other = "cython" if _backends.available("cython")[0] else "numba"
    with fastact.use_backend(other):
        np.testing.assert_allclose(fastact.sigmoid_backward(g, y=y), y * (1 - y), rtol=1e-12)
        assert fastact.explain("sigmoid", y=y)["backend"] == other
    assert seen == [True]
