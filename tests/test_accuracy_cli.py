"""``python -m fastact accuracy``: the ULP arithmetic, and a small run's table and numbers."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "numpy"])
def test_a_row_finds_a_planted_error(fused):
    """A kernel 5 ULP off at one input, and one returning 0 where NaN is due: both are caught."""
    x = np.float32([0.5, 1.0, 2.0, np.nan])
    ref64 = x.astype(np.float64) * 3
    ref32 = ref64.astype(np.float32)
    got = ref32.copy()
    got[1] = np.array([ref32[1].view(np.int32) + 5], np.int32).view(np.float32)[0]  # 5 floats away
    got[3] = 0.0
    row = _accuracy.Row("demo", {}, "forward", "x", False, rtol=1e-6, atol=1e-38)
    with np.errstate(invalid="ignore"):
        row.update(x, got, ref32, ref64, fused=fused)
    assert row.max_ulp == 5 and row.at_x == 1.0 and row.over_target == 1
    assert row.specials == 1 and "nan" in row.special_example
    assert row.verdict.startswith("FAIL")


def _planted_sample(n, seed):
    """Results near a reference, with every class of trouble planted: NaN, inf, zero, subnormal, huge."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        r64 = np.tanh(x.astype(np.float64)) * np.float64(rng.choice([1e-30, 1e-3, 1.0, 1e30, 3.4e38], n))
        r64[::7] = np.nan
        r64[1::11] = np.inf
        r64[2::13] = -1e-40  # subnormal in float32
        r64[3::17] = 0.0
        r64[4::19] = -3.5e38  # rounds to -inf in float32
        r64[8::31] = 1.1754942e-38  # just below the smallest normal
        r32 = r64.astype(np.float32)
        got = r32.copy()
        got.view(np.int32)[:] += rng.integers(-6, 7, n).astype(np.int32)  # a few ULP, or class changes
        got[5::19] = np.nan
        got[6::23] = np.inf
        got[7::29] = 0.0
        got[9::37] = np.float32(1e-45)
        got[10::41] = -got[10::41]  # the other sign: a huge ULP distance
    return got, r32, r64


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_comparison_agrees_with_numpy(seed):
    """The numba kernel and the NumPy passes give the same numbers (the comparison the tool runs 2**32 times)."""
    pytest.importorskip("numba")
    got, r32, r64 = _planted_sample(1 << 16, seed)
    for (rtol, atol), target in [((1e-6, 1.1754943508222875e-38), 4), ((1e-6, 2.4e-7), 8), ((0.0, 0.0), 0)]:
        a = _accuracy.compare_numpy(got, r32, r64, rtol, atol, target)
        b = _accuracy.compare_fused(got, r32, r64, rtol, atol, target)
        assert a == b
        assert a[5] > 0 and a[6] >= 0 and a[7] > 0 and a[0] > 0  # specials, violations and normals all occur
    # and on realistic results: all close, the maximum in the middle
    x = np.linspace(-10, 10, 1 << 16, dtype=np.float32)
    r64 = np.tanh(x.astype(np.float64))
    r32 = r64.astype(np.float32)
    got = np.tanh(x)
    assert _accuracy.compare_numpy(got, r32, r64, 1e-6, 1e-38, 4) == _accuracy.compare_fused(got, r32, r64, 1e-6, 1e-38, 4)
    empty = np.empty(0, np.float32)
    assert _accuracy.compare_fused(empty, empty, empty.astype(np.float64), 1e-6, 1e-38, 4)[0] == 0


def test_pieces_merge_into_the_single_run():
    """Forward parts over adjacent bit ranges, merged, equal the run over their union (ties included)."""
    backends = _accel_backends()
    rows = [r for r in _accuracy.elementwise_rows() if r[0].name in ("sigmoid", "hardtanh")]
    lo, mid, hi = 0x3F000000, 0x3F000000 + 40000, 0x3F000000 + 100000  # around 0.5 .. 0.51
    kw = dict(directions=("forward",), chunk=1 << 14, progress=False)
    whole = _accuracy.measure(rows, backends, forward_range=(lo, hi), **kw)
    a = _accuracy.measure(rows, backends, forward_range=(lo, mid), **kw)
    b = _accuracy.measure(rows, backends, forward_range=(mid, hi), **kw)
    merged = _accuracy.merge([b, a])  # order of the files does not matter for disjoint pieces
    skip = {"seconds", "wall_seconds", "measured"}
    assert len(merged) == len(whole)
    for m, w in zip(merged, whole):
        dm, dw = (_accuracy.asdict(r) for r in (m, w))
        assert {k: v for k, v in dm.items() if k not in skip} == {k: v for k, v in dw.items() if k not in skip}
        assert m.ranges == [[lo, hi]] and not m.exhaustive
    # a later piece replaces the earlier one over the same range; all parts together are exhaustive
    again = _accuracy.merge([a, b, a])
    assert [r.inputs for r in again] == [r.inputs for r in whole]
    parts = []
    for k in (1, 2):
        plo, phi = _accuracy.part_range(k, 2)
        part = [_accuracy.Row(r.function, r.params, r.direction, r.backend, False, inputs=phi - plo,
                              max_ulp=k, ranges=[[plo, phi]]) for r in whole]
        parts.append(part)
    full = _accuracy.merge(parts)
    assert all(r.exhaustive and r.inputs == 1 << 32 and r.max_ulp == 2 for r in full)
    assert "all 2^32" in _accuracy.format_table(full)


def test_fused_and_numpy_measure_alike():
    backends = _accel_backends()
    rows = [r for r in _accuracy.elementwise_rows() if r[0].name in ("gelu", "softsign")]
    kw = dict(forward_samples=1 << 14, backward_samples=1 << 13, chunk=1 << 12, progress=False)
    a = _accuracy.measure(rows, backends, fused=True, **kw)
    b = _accuracy.measure(rows, backends, fused=False, **kw)
    skip = {"seconds", "wall_seconds", "measured"}
    for ra, rb in zip(a, b):
        da, db = (_accuracy.asdict(r) for r in (ra, rb))
        assert {k: v for k, v in da.items() if k not in skip} == {k: v for k, v in db.items() if k not in skip}


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


def test_cli_parts_and_merge(tmp_path):
    """--part K/N runs one slice of the bit patterns (backward with part 1 only); --merge prints one table."""
    backends = _accel_backends()
    env = subprocess_env()
    files = []
    for k in (1, 2):
        f = tmp_path / f"p{k}.json"
        proc = subprocess.run(
            [sys.executable, "-m", "fastact", "accuracy", "--part", f"{k}/65536", "--backward-samples", "2**12",
             "--functions", "relu", "--backends", ",".join(backends), "--json", str(f), "--no-progress"],
            capture_output=True, text=True, env=env, timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"part {k}/65536" in proc.stdout
        data = json.loads(f.read_text())
        dirs = {r["direction"] for r in data}
        assert dirs == ({"forward", "backward"} if k == 1 else {"forward"})
        files.append(str(f))
    merged = tmp_path / "all.json"
    proc = subprocess.run(
        [sys.executable, "-m", "fastact", "accuracy", "--merge", *files, "--json", str(merged)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "merged from 2 file(s)" in proc.stdout
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("|")]
    rows = [ROW.match(ln) for ln in lines[2:]]
    assert all(rows) and len(rows) == 2 * len(backends), lines
    fwd = [m for m in rows if m["d"] == "forward"]
    assert all(m["n"] == "131,072 of 2^32 (bits 0x00000000-0x0001ffff)" for m in fwd), lines
    data = json.loads(merged.read_text())
    assert {r["inputs"] for r in data if r["direction"] == "forward"} == {1 << 17}


def test_cli_rejects_unknown_names(capsys):
    from fastact.__main__ import main

    assert main(["accuracy", "--functions", "softmax"]) == 2  # along an axis: not measured per element
    assert "not elementwise" in capsys.readouterr().err
    assert main(["accuracy", "--backends", "gpu", "--functions", "relu"]) == 2
    assert main(["accuracy", "--part", "2/2", "--direction", "backward", "--functions", "relu"]) == 2
    assert main(["accuracy", "--part", "1/2", "--quick", "--functions", "relu"]) == 2
    assert main(["accuracy", "--merge", "/nonexistent/acc.json"]) == 2
    with pytest.raises(SystemExit):
        main(["accuracy", "--part", "3/2"])
