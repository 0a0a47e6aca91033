"""``python -m fastact accuracy``: the ULP arithmetic, and a small run's table and numbers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from fastact import _accuracy, _backends

from _helpers import BACKENDS, REQUIRED_BACKENDS, subprocess_env


def test_ulp_distance_counts_representable_floats():
    one = np.float32(1)
    nxt = np.nextafter(one, np.float32(2))
    tiny_sub = np.float32(np.finfo(np.float32).smallest_subnormal)
    a = np.array([1, 1, 0.0, -0.0, tiny_sub, -tiny_sub, -1, np.finfo(np.float32).max], np.float32)
    b = np.array([1, nxt, -0.0, tiny_sub, -tiny_sub, tiny_sub, np.nextafter(-one, np.float32(0)), np.inf], np.float32)
    np.testing.assert_array_equal(_accuracy.ulp_distance(a, b), [0, 1, 0, 1, 2, 2, 1, 1])
    # across a binade: 2**24 float32 values between 1 and 2
    assert _accuracy.ulp_distance(np.float32([1]), np.float32([2]))[0] == 1 << 23


def test_every_float32_is_visited_once_by_the_exhaustive_chunks():
    # the same generator over a shorter range; the default range is 2**32
    assert _accuracy.count_chunks(1 << 32, _accuracy.CHUNK) * _accuracy.CHUNK == 1 << 32
    seen = 0
    last = None
    for x in _accuracy._exhaustive_chunks(1 << 12, total=(1 << 20) + 5):
        bits = x.view(np.uint32)
        assert last is None or int(bits[0]) == last + 1
        last = int(bits[-1])
        seen += bits.size
    assert seen == (1 << 20) + 5 and last == (1 << 20) + 4


def test_samples_cover_every_exponent():
    x = np.concatenate(list(_accuracy._sample_chunks(1 << 16, 1 << 14, 0)))
    exps = np.unique((x.view(np.uint32) >> 23) & 0xFF)
    assert exps.size == 256  # every biased exponent, subnormals/zero (0) and inf/NaN (255) included
    assert np.any(x < 0) and np.any(x > 0)


def test_a_row_finds_a_planted_error():
    """A kernel 5 ULP off at one input, and one returning 0 where NaN is due: both are caught."""
    x = np.float32([0.5, 1.0, 2.0, np.nan])
    ref64 = x.astype(np.float64) * 3
    ref32 = ref64.astype(np.float32)
    got = ref32.copy()
    got[1] = np.array([ref32[1].view(np.int32) + 5], np.int32).view(np.float32)[0]  # 5 floats away
    got[3] = 0.0
    row = _accuracy.Row("demo", {}, "forward", "x", False, rtol=1e-6, atol=1e-38)
    with np.errstate(invalid="ignore"):
        row.update(x, got, ref32, ref64)
    assert row.max_ulp == 5 and row.at_x == 1.0 and row.over_target == 1
    assert row.specials == 1 and "nan" in row.special_example
    assert row.verdict.startswith("FAIL")


def _accel_backends():
    names = []
    for b in BACKENDS:
        if b == "numpy":
            continue
        ok, why = _backends.available(b)
        if ok:
            names.append(b)
        elif b in REQUIRED_BACKENDS:
            pytest.fail(f"backend {b!r} required but unavailable: {why}")
    if not names:
        pytest.skip("no accelerated backend available")
    return names


ROW = re.compile(r"^\| (?P<f>[^|]+) \| (?P<d>forward|backward) \| (?P<b>\w+) \| (?P<n>[^|]+) \| (?P<ulp>\d+) \|")


def test_quick_run_prints_the_table_within_targets(tmp_path):
    backends = _accel_backends()
    env = subprocess_env()
    out_json = tmp_path / "acc.json"
    proc = subprocess.run(
        [sys.executable, "-m", "fastact", "accuracy", "--quick", "--samples", "2**18", "--backward-samples", "2**16",
         "--functions", "sigmoid,tanh", "--backends", ",".join(backends), "--json", str(out_json)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "%" in proc.stderr  # the progress bar
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("|")]
    assert lines[0].startswith("| function | direction | backend |") and set(lines[1]) <= {"|", "-"}
    rows = [ROW.match(ln) for ln in lines[2:]]
    assert all(rows), lines
    got = {(m["f"], m["d"], m["b"]) for m in rows}
    assert got == {(f, d, b) for f in ("sigmoid", "tanh") for d in ("forward", "backward") for b in backends}
    for m in rows:
        target = _accuracy.TARGET_ULP[m["d"]]
        assert int(m["ulp"]) <= target, f"{m['f']} {m['d']} [{m['b']}]: {m['ulp']} ULP > {target}"
    data = json.loads(out_json.read_text())
    for r in data:
        assert r["specials"] == 0, r
        assert r["bound_violations"] == 0, r
        assert r["inputs"] == (1 << 18 if r["direction"] == "forward" else 1 << 16)
        assert r["compared"] > 0.9 * r["inputs"] * 0.5  # most results are normal numbers


def test_cli_rejects_unknown_names(capsys):
    from fastact.__main__ import main

    assert main(["accuracy", "--functions", "softmax"]) == 2  # along an axis: not measured per element
    assert "not elementwise" in capsys.readouterr().err
    assert main(["accuracy", "--backends", "gpu", "--functions", "relu"]) == 2
