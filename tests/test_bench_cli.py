"""``python -m fastact bench``: the command runs and prints the table; the report
turns saved results into the table and the plot. No timing is asserted."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from fastact import _bench


def _run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "fastact", "bench", *args],
        capture_output=True, text=True, timeout=600, cwd=cwd, env=dict(os.environ),
    )


def test_bench_command_prints_the_table(tmp_path):
    out_json = tmp_path / "r.json"
    out_md = tmp_path / "r.md"
    p = _run("--functions", "relu,softmax", "--sizes", "1000", "--quick", "--no-progress",
             "--json", str(out_json), "--markdown", str(out_md))
    assert p.returncode == 0, p.stderr
    for row in ("| relu | fwd |", "| relu | bwd |", "| softmax | fwd |", "| softmax | bwd |"):
        assert row in p.stdout, p.stdout
    header = next(line for line in p.stdout.splitlines() if line.startswith("| function"))
    for col in ("numpy", "auto", "copy"):
        assert col in header
    assert "Measured on" in p.stdout
    assert out_md.read_text() == p.stdout
    data = json.loads(out_json.read_text())
    recs = _bench.records_from_json(data)
    assert {(r["function"], r["direction"]) for r in recs} == {
        ("relu", "forward"), ("relu", "backward"), ("softmax", "forward"), ("softmax", "backward")}
    assert all(r["stats"]["min"] > 0 for r in recs)
    # like for like: softmax's backward is timed from the output, as PyTorch's kernel reads it; relu's from x
    notes = {(r["function"], r["direction"]): r["note"] for r in recs if r["kind"] == "backend"}
    assert "y=" in notes["softmax", "backward"] and "y=" not in notes["relu", "backward"]
    # the saved JSON is a valid --report input: the same table comes back (minus the date line)
    again = _run("--report", str(out_json))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[:8] == p.stdout.splitlines()[:8]


def test_backward_cases_from_the_output_are_the_backward_from_x():
    """Where PyTorch's backward reads the saved output, the bench times fastact's
    ``y=`` call; its result is the backward from x's (up to rounding)."""
    import numpy as np

    import fastact
    from fastact import _api, _peers

    for name in _peers.TORCH_BACKWARD_FROM_OUTPUT:
        case = _peers.make_case(name, _peers.BACKWARD, "float64", 5000)
        assert "y" in case.extra, name
        with fastact.use_backend("numpy"):
            want = _api.BACKWARD[name](case.g, case.x, **case.params)
            np.testing.assert_allclose(_peers.fastact_call(case)(), want, rtol=1e-9, atol=1e-12, err_msg=name)
    assert "y" not in _peers.make_case("relu", _peers.BACKWARD, "float32", 100).extra


def test_bench_command_rejects_bad_arguments():
    p = _run("--functions", "nosuch", "--quick")
    assert p.returncode == 2 and "nosuch" in p.stderr
    p = _run("--peers", "matlab", "--quick")
    assert p.returncode == 2 and "matlab" in p.stderr


def _bench_json(times: dict, function="gelu", direction="forward", size=1000):
    benches = []
    for label, t in times.items():
        kind = "backend" if label in ("numba", "cython", "auto", "numpy") else "peer"
        benches.append({
            "group": "g", "name": label, "fullname": f"test_bench[{label}]",
            "extra_info": {"function": function, "direction": direction, "dtype": "float32", "size": size,
                           "elements": size, "contender": label, "kind": kind, "note": ""},
            "stats": {"min": t, "median": t * 1.1, "mean": t * 1.2},
        })
    # an unrelated benchmark in the same file is ignored
    benches.append({"group": None, "name": "other", "fullname": "x", "extra_info": {}, "stats": {"min": 1.0}})
    return {"machine_info": {"cpu": {"brand_raw": "test cpu"}}, "datetime": "2026-01-01", "benchmarks": benches}


def test_report_ratios():
    data = _bench_json({"cython": 1e-6, "auto": 1e-6, "numpy": 8e-6, "torch": 2e-6, "numpy-expr": 4e-6, "copy": 0.5e-6})
    table = _bench.markdown(_bench.records_from_json(data), data["machine_info"])
    row = next(line for line in table.splitlines() if line.startswith("| gelu"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    head = next(line for line in table.splitlines() if line.startswith("| function"))
    cols = [c.strip() for c in head.strip("|").split("|")]
    assert cols[:7] == ["function", "dir", "cython", "auto", "numpy", "torch", "NumPy expr"]
    assert cells[2:7] == ["1 µs", "1 µs", "8 µs", "2 µs", "4 µs"]
    assert cells[cols.index("copy")] == "500 ns"
    assert cells[cols.index("torch ÷ (cython · auto)")] == "2× · 2×"
    assert cells[cols.index("NumPy expr ÷ (cython · auto)")] == "4× · 4×"
    assert cells[cols.index("(cython · auto) ÷ copy")] == "2× · 2×"
    assert "test cpu" in table


def test_report_missing_peer_is_na():
    data = _bench_json({"auto": 1e-6, "numpy-expr": 3e-6})
    data["benchmarks"] += _bench_json({"auto": 1e-6, "numpy-expr": 3e-6, "torch": 5e-6}, function="relu")["benchmarks"]
    table = _bench.markdown(_bench.records_from_json(data))
    gelu = next(line for line in table.splitlines() if line.startswith("| gelu"))
    assert "n/a" in gelu  # no torch time for gelu in this file


def test_report_command_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    src = tmp_path / "in.json"
    recs = _bench_json({"cython": 1e-6, "auto": 1e-6, "torch": 2e-6, "copy": 0.5e-6})
    recs["benchmarks"] += _bench_json({"cython": 50e-6, "auto": 50e-6, "torch": 60e-6, "copy": 20e-6}, size=100000)["benchmarks"]
    src.write_text(json.dumps(recs))
    png = tmp_path / "out.png"
    p = _run("--report", str(src), "--plot", str(png))
    assert p.returncode == 0, p.stderr
    assert "| gelu | fwd |" in p.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # one size: the bar chart
    one = tmp_path / "one.json"
    one.write_text(json.dumps(_bench_json({"cython": 1e-6, "torch": 2e-6, "copy": 0.5e-6})))
    png1 = tmp_path / "one.png"
    assert _run("--report", str(one), "--plot", str(png1)).returncode == 0
    assert png1.read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_is_a_clear_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    parser = argparse.ArgumentParser()
    _bench.add_arguments(parser)
    args = parser.parse_args(["--report", str(tmp_path / "none.json"), "--plot", str(tmp_path / "x.png")])
    assert _bench.run(args) == 2
    assert "matplotlib" in capsys.readouterr().err


def test_report_rejects_a_file_without_benchmarks(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    parser = argparse.ArgumentParser()
    _bench.add_arguments(parser)
    assert _bench.run(parser.parse_args(["--report", str(bad)])) == 2
    assert "benchmarks" in capsys.readouterr().err


def test_bench_command_without_any_peer_installed():
    """A fresh machine without torch, numexpr, scipy or matplotlib still gets the table, peers n/a."""
    code = (
        "import sys\n"
        "for m in ('torch', 'numexpr', 'scipy', 'scipy.special', 'matplotlib'):\n"
        "    sys.modules[m] = None  # import fails as if not installed\n"
        "from fastact.__main__ import main\n"
        "sys.exit(main(['bench', '--functions', 'relu', '--sizes', '1000', '--quick', '--no-progress']))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert p.returncode == 0, p.stderr
    row = next(line for line in p.stdout.splitlines() if line.startswith("| relu | fwd"))
    head = next(line for line in p.stdout.splitlines() if line.startswith("| function"))
    cols = [c.strip() for c in head.strip("|").split("|")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[cols.index("torch")] == "n/a" and cells[cols.index("numexpr")] == "n/a"
    assert cells[cols.index("copy")] != "n/a"
    assert "PyTorch is not installed" in p.stdout


def test_measure_times_the_contenders_in_turns(monkeypatch):
    """Outside --quick the contenders of a case take TURNS turns, each keeping
    the stats of all its rounds; a contender that raises in any turn is left
    out with its failure described, and the others still get their rows."""
    from fastact import _peers

    calls = []
    real = _peers.contenders

    def contenders(case, backends, peers=_peers.PEERS):
        found = real(case, backends, peers)
        for c in found:
            inner = c.call
            c.call = (lambda inner=inner, label=c.label: (calls.append(label), inner())[1])
        broken = _peers.Contender("broken", "peer", lambda: (_ for _ in ()).throw(RuntimeError("no")))
        return found + [broken]

    monkeypatch.setattr(_peers, "contenders", contenders)
    failures = []
    recs = _bench.measure([(_peers.get_spec("relu"), "forward", "float32", 1000)], ["numpy"], ["copy"],
                          budget=0.003, progress=False, failures=failures)
    assert sorted(r["contender"] for r in recs) == ["copy", "numpy"]
    assert all(r["stats"]["rounds"] >= 2 * _bench.TURNS for r in recs)
    assert len(failures) == 1 and "broken failed on relu" in failures[0]
    # in turns: numpy's calls and copy's alternate in blocks, TURNS times each
    blocks = [k for i, k in enumerate(calls) if i == 0 or calls[i - 1] != k]
    assert blocks[:2 * _bench.TURNS] == ["numpy", "copy"] * _bench.TURNS
