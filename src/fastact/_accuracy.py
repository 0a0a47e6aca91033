"""``python -m fastact accuracy``: each elementwise function's error in ULP against the reference.

For every elementwise function (default parameters), direction and
accelerated backend, the float32 kernel is run on many float32 inputs and
compared with the NumPy reference computed in float64 and rounded once to
float32 -- the correctly rounded result up to the reference's own float64
error, which is ~1e-16 and so never moves a float32 rounding by a full ULP.

* forward: all 2**32 float32 bit patterns (``--quick``: a sample);
* backward (``grad_output = 1``, from ``x``): a dense sample spread evenly
  over the bit patterns, so every exponent gets the same share.

The ULP distance is measured between float32 bit patterns mapped to ordered
integers, so it counts the representable numbers between the kernel's result
and the correctly rounded one. It is taken only where the correctly rounded
result is a normal number (what the issue's targets are about); elsewhere
the result must match the reference's class: NaN where it is NaN, the same
infinity, and within the smallest normal of it where it is zero or subnormal
(fast kernels may flush those). A violation there is counted as a "special"
mismatch, which is always a bug.

Targets (issue 7): forward within 4 ULP, backward within 8 ULP, or a note in
the registry (``Spec.bound_note``) explaining the bound recorded instead.
The table also checks each result against the registry's recorded bound
``|a - r| <= rtol*|r| + atol`` -- the bound the test suite enforces.

Speed: per chunk of inputs the float64 reference is computed once (in the
reference backend's own blocks) and shared by both backends, and each
backend's result is folded into its row by one fused pass (a numba kernel
when numba imports, else the equivalent NumPy expressions -- the results are
identical, see ``tests/test_accuracy_cli.py``). The exhaustive forward of a
function then takes about a minute on one core, gelu's (whose reference
calls libm's erfc once per element from Python) about ten.

Pieces: ``--part K/N`` measures the forward on the K-th of N equal slices of
the 2**32 bit patterns (the backward sample only in part 1), and ``--merge
a.json b.json ...`` combines the ``--json`` files of such runs into one
table -- identical to the one a single run prints -- so a long measurement
can be interleaved with other work or resumed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from . import _backends
from ._progress import Progress
from ._registry import ELEMENTWISE, SPECS, Spec

__all__ = ["add_arguments", "run", "measure", "merge", "ulp_distance", "Row"]

TARGET_ULP = {"forward": 4, "backward": 8}
ALL = 1 << 32  # float32 bit patterns
# 2**22 float32 inputs per chunk: 16 MiB per float32 buffer, 32 MiB for the
# float64 reference; the buffers are allocated once per run. The reference
# itself works in its own blocks of 65,536 elements (float64 temporaries in
# cache): measured, larger blocks are slower, not faster.
CHUNK = 1 << 22
QUICK_FORWARD = 1 << 22
BACKWARD_SAMPLES = 1 << 24
QUICK_BACKWARD = 1 << 20

# Parameters chosen where the registry has no default (threshold's two).
_REQUIRED_CHOICE = {"threshold": 0.5, "value": -1.5}
# Extra parameter sets worth their own row: the other gelu.
_VARIANTS = {"gelu": ({}, {"approximate": "tanh"})}

_F32_TINY = float(np.finfo(np.float32).tiny)


# ------------------------------------------------------------------ ULPs


def _ordered(bits: np.ndarray) -> np.ndarray:
    """float32 bit patterns (as int32) -> int64 keys whose order is the floats' order.

    Negative floats have the sign bit set, so as int32 they are negative and
    ordered backwards; reflecting them around INT32_MIN puts -0.0 on 0 (next
    to +0.0) and makes consecutive floats consecutive integers.
    """
    i = bits.astype(np.int64)
    return np.where(i < 0, np.int64(-(1 << 31)) - i, i)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many float32 values lie between a and b (0 when equal; +0 and -0 are equal)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    return np.abs(_ordered(a.view(np.int32)) - _ordered(b.view(np.int32)))


# ------------------------------------------------------------ comparing
#
# One chunk's comparison of a kernel's float32 results ``got`` with the
# reference (``r64`` in float64, ``r32`` rounded once to float32) gives
#   (compared, over_target, max_ulp, argmax, max_rel, specials, first_special, bound_violations)
# with argmax the first index of max_ulp and first_special the first index of
# a special-value mismatch (-1: none). Two implementations, same numbers.


def compare_numpy(got, r32, r64, rtol: float, atol: float, target: int) -> tuple:
    """The comparison in whole-array NumPy passes (the fallback without numba)."""
    nan_r = np.isnan(r32)
    nan_a = np.isnan(got)
    with np.errstate(all="ignore"):
        abs_r = np.abs(r32)
        inf_r = np.isinf(r32)
        fin_a = np.isfinite(got)
        normal = (abs_r >= _F32_TINY) & ~inf_r & ~nan_r
        tiny = (abs_r < _F32_TINY) & ~nan_r
        bad = nan_r != nan_a
        bad |= inf_r & (got != r32)
        got64 = got.astype(np.float64)
        err = np.abs(got64 - r32)
        bad |= tiny & ~(err <= _F32_TINY)
        # a normal reference with a NaN or inf result is also a class mismatch
        bad |= normal & ~fin_a
        nb = int(np.count_nonzero(bad))
        first_bad = int(np.argmax(bad)) if nb else -1
        # the registry's bound, as the tests apply it (r rounded to float32)
        both = ~nan_r & ~nan_a & ~inf_r & fin_a
        viol = int(np.count_nonzero(both & (err > rtol * abs_r.astype(np.float64) + atol)))
        cmp = normal & fin_a
        n_cmp = int(np.count_nonzero(cmp))
        if not n_cmp:
            return 0, 0, 0, 0, 0.0, nb, first_bad, viol
        # whole-array passes (no fancy indexing)
        u = np.where(cmp, ulp_distance(got, r32), 0)
        k = int(np.argmax(u))
        rel = np.where(cmp, np.abs(got64 - r64) / np.abs(r64), 0.0)
        return n_cmp, int(np.count_nonzero(u > target)), int(u[k]), k, float(np.max(rel)), nb, first_bad, viol


_NUMBA_COMPARE: list = []  # [the compiled kernel] or [None] once numba turned out unusable


def _numba_kernel():
    """The fused comparison as a numba kernel (compiled on first use), or None without numba."""
    if _NUMBA_COMPARE:
        return _NUMBA_COMPARE[0]
    try:
        from numba import njit
    except Exception:  # not installed, or a broken llvmlite
        _NUMBA_COMPARE.append(None)
        return None
    tiny = _F32_TINY

    # No fastmath: IEEE operations one by one, as NumPy does them (no FMA
    # contraction). The classes come from the bit patterns: |bits| below
    # 0x00800000 is zero or subnormal, 0x7f800000 infinity, above it NaN.
    @njit(nogil=True, cache=False)
    def kernel(got, got_bits, r32, r32_bits, r64, rtol, atol, target):  # pragma: no cover - compiled
        n_cmp = 0
        over = 0
        max_u = 0
        kmax = 0
        max_rel = 0.0
        nb = 0
        first_bad = -1
        viol = 0
        # d*safe <= max_rel*q (both rounded) implies d/q < max_rel exactly, so
        # fl(d/q) cannot raise max_rel: the division is skipped
        safe = 1.0 + 2.0 ** -48
        for i in range(got.shape[0]):
            ia = np.int64(got_bits[i])
            ib = np.int64(r32_bits[i])
            ea = ia & 0x7FFFFFFF
            eb = ib & 0x7FFFFFFF
            a = got[i]
            r = r32[i]
            if eb >= 0x00800000 and eb < 0x7F800000 and ea < 0x7F800000:
                # the common case: a normal reference and a finite result
                err = abs(np.float64(a) - np.float64(r))
                if err > rtol * np.float64(abs(r)) + atol:
                    viol += 1
                n_cmp += 1
                if ia < 0:
                    ia = -2147483648 - ia
                if ib < 0:
                    ib = -2147483648 - ib
                u = ia - ib if ia >= ib else ib - ia
                if u > target:
                    over += 1
                if u > max_u:
                    max_u = u
                    kmax = i
                ref = r64[i]
                d = abs(np.float64(a) - ref)
                q = abs(ref)
                if d * safe > max_rel * q:
                    rel = d / q
                    if rel > max_rel:
                        max_rel = rel
                continue
            nan_r = eb > 0x7F800000
            nan_a = ea > 0x7F800000
            inf_r = eb == 0x7F800000
            fin_a = ea < 0x7F800000
            normal = eb >= 0x00800000 and eb < 0x7F800000
            err = abs(np.float64(a) - np.float64(r))
            bad = nan_r != nan_a
            if inf_r and a != r:
                bad = True
            if eb < 0x00800000 and not (err <= tiny):
                bad = True
            if normal and not fin_a:
                bad = True
            if bad:
                if first_bad < 0:
                    first_bad = i
                nb += 1
            if (not nan_r) and (not nan_a) and (not inf_r) and fin_a:
                if err > rtol * np.float64(abs(r)) + atol:
                    viol += 1
        return n_cmp, over, max_u, kmax, max_rel, nb, first_bad, viol

    _NUMBA_COMPARE.append(kernel)
    return kernel


def compare_fused(got, r32, r64, rtol: float, atol: float, target: int) -> tuple:
    """The comparison in one pass (numba); falls back to :func:`compare_numpy` without numba."""
    kernel = _numba_kernel()
    if kernel is None:
        return compare_numpy(got, r32, r64, rtol, atol, target)
    res = kernel(got, got.view(np.int32), r32, r32.view(np.int32), r64, float(rtol), float(atol), int(target))
    return tuple(int(v) if i != 4 else float(v) for i, v in enumerate(res))


# ----------------------------------------------------------------- rows


@dataclass
class Row:
    """The result for one function (with parameters), direction and backend."""

    function: str
    params: dict
    direction: str
    backend: str
    exhaustive: bool  # every float32 input: forward over all 2**32 bit patterns
    inputs: int = 0
    compared: int = 0  # inputs whose correctly rounded result is normal
    max_ulp: int = 0
    at_x: float = float("nan")
    got: float = float("nan")
    expected: float = float("nan")
    over_target: int = 0  # normal results farther than the target
    max_rel: float = 0.0
    specials: int = 0  # NaN/inf/tiny-result mismatches
    special_example: str = ""
    bound_violations: int = 0  # outside the registry's (rtol, atol)
    rtol: float = 0.0
    atol: float = 0.0
    noted: bool = False  # the registry records a float32 bound for this direction, with a note
    error: str = ""
    seconds: float = 0.0  # in the kernel
    # the bit-pattern ranges [lo, hi) measured, for a forward over consecutive
    # bit patterns (all or a --part of them); empty for a sample
    ranges: list = field(default_factory=list)
    measured: str = ""  # when (UTC), and how long the run took
    wall_seconds: float = 0.0  # of the whole measurement (reference and comparison included)

    @property
    def label(self) -> str:
        if not self.params:
            return self.function
        return self.function + "(" + ", ".join(f"{k}={v!r}" for k, v in self.params.items()) + ")"

    @property
    def target(self) -> int:
        return TARGET_ULP[self.direction]

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        if self.specials:
            return "FAIL (special values)"
        if self.max_ulp <= self.target:
            return "ok"
        if self.noted and not self.bound_violations:
            return "registry bound (noted)"
        return "OVER TARGET"

    def fold(self, x, got, r32, stats: tuple) -> None:
        """Fold one chunk's comparison (see :func:`compare_numpy`) into the row."""
        n_cmp, over, max_u, k, max_rel, nb, first_bad, viol = stats
        self.inputs += x.size
        if nb:
            if not self.specials:
                i = first_bad
                self.special_example = f"x={float(x[i])!r}: got {float(got[i])!r}, expected {float(r32[i])!r}"
            self.specials += nb
        self.bound_violations += viol
        if not n_cmp:
            return
        self.compared += n_cmp
        self.over_target += over
        if max_u > self.max_ulp:
            self.max_ulp = max_u
            self.at_x, self.got, self.expected = float(x[k]), float(got[k]), float(r32[k])
        self.max_rel = max(self.max_rel, max_rel)

    def update(self, x, got, ref32, ref64, fused: bool = True) -> None:
        """Fold one chunk into the row: x inputs, got the kernel's float32, ref32/ref64 the reference."""
        compare = compare_fused if fused else compare_numpy
        self.fold(x, got, ref32, compare(got, ref32, ref64, self.rtol, self.atol, self.target))


# --------------------------------------------------------------- inputs


def _exhaustive_chunks(chunk: int, total: int = ALL, start: int = 0):
    """Every float32 bit pattern in [start, total), chunk by chunk.

    The chunks share one buffer (the consumer is done with a chunk before it
    asks for the next).
    """
    base = np.arange(min(chunk, max(total - start, 0)), dtype=np.uint32)
    buf = np.empty_like(base)
    for lo in range(start, total, chunk):
        n = min(chunk, total - lo)
        np.add(base[:n], np.uint32(lo), out=buf[:n])
        yield buf[:n].view(np.float32)


def _sample_chunks(n: int, chunk: int, seed: int):
    """n bit patterns spread evenly over all 2**32 (one per stride, at a random offset in it).

    Evenly in bit space means evenly over exponents: every binade of
    float32, positive and negative, gets the same number of samples.
    """
    rng = np.random.default_rng(seed)
    stride = ALL // n
    for start in range(0, n, chunk):
        k = np.arange(start, min(start + chunk, n), dtype=np.uint64)
        bits = k * np.uint64(stride) + rng.integers(0, stride, size=k.size, dtype=np.uint64)
        yield bits.astype(np.uint32).view(np.float32)


def count_chunks(n: int, chunk: int) -> int:
    return -(-n // chunk)


def part_range(part: int, parts: int) -> tuple[int, int]:
    """The bit patterns [lo, hi) of part ``part`` (1-based) of ``parts`` equal slices of all 2**32."""
    if not 1 <= part <= parts:
        raise ValueError(f"part {part} of {parts}")
    return (part - 1) * ALL // parts, part * ALL // parts


# ------------------------------------------------------------- measuring


def _full_params(spec: Spec, extra: dict) -> dict:
    """Every parameter present with its default (the backend contract), plus ``extra``."""
    p = {}
    for prm in spec.params:
        if prm.required:
            p[prm.name] = _REQUIRED_CHOICE[prm.name]
        else:
            p[prm.name] = prm.default
    p.update(extra)
    return p


def _shown_params(spec: Spec, extra: dict) -> dict:
    p = {prm.name: _REQUIRED_CHOICE[prm.name] for prm in spec.params if prm.required}
    p.update(extra)
    return p


def elementwise_rows() -> list[tuple[Spec, dict]]:
    rows = []
    for spec in SPECS:
        if spec.kind != ELEMENTWISE:
            continue
        for extra in _VARIANTS.get(spec.name, ({},)):
            rows.append((spec, extra))
    return rows


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def measure(
    rows: list[tuple[Spec, dict]],
    backends: list[str],
    *,
    forward_samples: int | None = None,
    backward_samples: int = BACKWARD_SAMPLES,
    directions: tuple[str, ...] = ("forward", "backward"),
    chunk: int = CHUNK,
    seed: int = 0,
    progress: bool = True,
    forward_range: tuple[int, int] = (0, ALL),
    fused: bool = True,
) -> list[Row]:
    """Measure every (row, direction, backend).

    ``forward_samples=None`` means the forward over consecutive bit patterns:
    ``forward_range`` (default all 2**32). ``fused=False`` compares with the
    NumPy passes instead of the numba kernel (same results, slower).
    """
    ref = _backends.load("numpy")
    bes = {}
    load_errors = {}
    for b in backends:
        try:
            bes[b] = _backends.load(b)
        except RuntimeError as exc:
            load_errors[b] = str(exc)
    lo, hi = forward_range
    n_fwd = hi - lo if forward_samples is None else forward_samples
    fchunk = min(chunk, max(n_fwd, 1))
    bchunk = min(chunk, max(backward_samples, 1))
    total = 0
    if "forward" in directions:
        total += len(rows) * count_chunks(n_fwd, fchunk)
    if "backward" in directions:
        total += len(rows) * count_chunks(backward_samples, bchunk)
    bar = Progress(total, "accuracy", enabled=progress)
    compare = compare_fused if fused else compare_numpy
    # buffers for the whole run: the reference (float64 and rounded), a kernel's result, grad_output
    big = max(fchunk if "forward" in directions else 0, bchunk if "backward" in directions else 0, 1)
    r64_buf = np.empty(big, np.float64)
    r32_buf = np.empty(big, np.float32)
    out_buf = np.empty(big, np.float32)
    ones = np.ones(big, np.float32)
    results: list[Row] = []
    for spec, extra in rows:
        params = _full_params(spec, extra)
        shown = _shown_params(spec, extra)
        for direction in directions:
            t_start = time.perf_counter()
            exhaustive = direction == "forward" and forward_samples is None
            rtol, atol = spec.bound(direction, "float32")
            noted = bool(spec.bound_note) and (direction, "float32") in spec.bounds
            mine = {}
            for b in backends:
                r = Row(spec.name, shown, direction, b, exhaustive and (lo, hi) == (0, ALL),
                        rtol=rtol, atol=atol, noted=noted, ranges=[[lo, hi]] if exhaustive else [],
                        measured=_now())
                if b in load_errors:
                    r.error = load_errors[b]
                mine[b] = r
                results.append(r)
            if direction == "forward":
                chunks = _exhaustive_chunks(fchunk, hi, lo) if exhaustive else _sample_chunks(n_fwd, fchunk, seed)
            else:
                chunks = _sample_chunks(backward_samples, bchunk, seed + 1)
            for x in chunks:
                n = x.size
                r64, r32, out = r64_buf[:n], r32_buf[:n], out_buf[:n]
                # the reference widens float32 to float64 itself, block by block
                # (exact; a signalling NaN pattern becomes a quiet NaN either way)
                with np.errstate(all="ignore"):
                    if direction == "forward":
                        ref.forward(spec.name, x, r64, params)
                    else:
                        ref.backward(spec.name, ones[:n], x, None, r64, params)
                    np.copyto(r32, r64, casting="same_kind")
                for b, be in bes.items():
                    row = mine[b]
                    if row.error:
                        continue
                    t0 = time.perf_counter()
                    try:
                        if direction == "forward":
                            be.forward(spec.name, x, out, params, 0)
                        else:
                            be.backward(spec.name, ones[:n], x, None, out, params, 0)
                    except Exception as exc:  # a broken kernel is a row of the report, not a crash
                        row.error = f"{type(exc).__name__}: {exc}"
                        continue
                    row.seconds += time.perf_counter() - t0
                    row.fold(x, out, r32, compare(out, r32, r64, row.rtol, row.atol, row.target))
                bar.step(f"{spec.name} {direction}")
            wall = time.perf_counter() - t_start
            for r in mine.values():
                r.wall_seconds = wall
    bar.close()
    return results


# ---------------------------------------------------------------- pieces


def _row_from_dict(d: dict) -> Row:
    names = {f.name for f in fields(Row)}
    return Row(**{k: v for k, v in d.items() if k in names})


def row_to_dict(r: Row) -> dict:
    return dict(asdict(r), label=r.label, verdict=r.verdict)


def merge(groups: list[list[Row]]) -> list[Row]:
    """Combine the rows of several runs (in order) into one row per (function, direction, backend).

    Forward rows over bit-pattern ranges (``--part``) are combined: their
    ranges must not overlap, and the result is exhaustive when they cover all
    2**32 patterns; the counts add up and the maximum is kept where a single
    run would keep it (the lowest bit patterns on a tie). A row measured
    again over the same range (or sample) replaces the earlier one: later
    files win.
    """
    order = {}
    for i, (spec, extra) in enumerate(elementwise_rows()):
        order[Row(spec.name, _shown_params(spec, extra), "forward", "", False).label] = i
    latest: dict[tuple, dict[tuple, Row]] = {}  # row key -> {range key: row}
    backends: list[str] = []
    for rows in groups:
        for r in rows:
            if r.backend not in backends:
                backends.append(r.backend)
            key = (r.label, r.direction, r.backend)
            pieces = latest.setdefault(key, {})
            if not r.ranges:
                pieces.clear()  # a sample replaces everything measured before for this row
                pieces[("sample",)] = r
                continue
            mine = [(int(lo), int(hi)) for lo, hi in r.ranges]
            for k in list(pieces):
                # an earlier sample, or an earlier piece overlapping this one, is replaced
                if k == ("sample",) or any(lo < b_hi and b_lo < hi for lo, hi in k for b_lo, b_hi in mine):
                    del pieces[k]
            pieces[tuple(mine)] = r
    out = []
    for key, pieces in latest.items():
        rows = list(pieces.values())
        if len(rows) == 1 and not rows[0].ranges:
            out.append(rows[0])
            continue
        rows.sort(key=lambda r: min(lo for lo, _ in r.ranges))
        spans = sorted((int(lo), int(hi)) for r in rows for lo, hi in r.ranges)
        for (a_lo, a_hi), (b_lo, b_hi) in zip(spans, spans[1:]):
            if b_lo < a_hi:
                raise ValueError(f"{key[0]} {key[1]} [{key[2]}]: bit ranges {a_lo:#x}-{a_hi:#x} and "
                                 f"{b_lo:#x}-{b_hi:#x} overlap")
        first = rows[0]
        m = Row(first.function, first.params, first.direction, first.backend, False,
                rtol=first.rtol, atol=first.atol, noted=first.noted)
        joined: list[list[int]] = []
        for lo, hi in spans:
            if joined and joined[-1][1] == lo:
                joined[-1][1] = hi
            else:
                joined.append([lo, hi])
        m.ranges = joined
        m.exhaustive = joined == [[0, ALL]]
        for r in rows:
            if (r.rtol, r.atol, r.noted) != (m.rtol, m.atol, m.noted):
                raise ValueError(f"{key[0]} {key[1]} [{key[2]}]: pieces measured against different registry bounds")
            m.inputs += r.inputs
            m.compared += r.compared
            m.over_target += r.over_target
            m.bound_violations += r.bound_violations
            if r.specials and not m.specials:
                m.special_example = r.special_example
            m.specials += r.specials
            if r.max_ulp > m.max_ulp:
                m.max_ulp, m.at_x, m.got, m.expected = r.max_ulp, r.at_x, r.got, r.expected
            m.max_rel = max(m.max_rel, r.max_rel)
            m.seconds += r.seconds
            m.wall_seconds += r.wall_seconds
            if r.error and r.error not in m.error:
                m.error = (m.error + "; " if m.error else "") + r.error
        times = sorted(t for r in rows for t in r.measured.split(" .. ") if t)
        m.measured = "" if not times else times[0] if times[0] == times[-1] else f"{times[0]} .. {times[-1]}"
        out.append(m)
    dirs = ("forward", "backward")
    out.sort(key=lambda r: (order.get(r.label, len(order)), dirs.index(r.direction), backends.index(r.backend)))
    return out


def load_json(path: str) -> list[Row]:
    with open(path) as fh:
        data = json.load(fh)
    return [_row_from_dict(d) for d in data]


# --------------------------------------------------------------- output


def _g(v: float) -> str:
    return "—" if v != v else f"{v:.9g}"


def _inputs_text(r: Row) -> str:
    if r.exhaustive:
        return "all 2^32"
    if r.ranges:  # a part of the exhaustive forward
        spans = ", ".join(f"{lo:#010x}-{hi - 1:#010x}" for lo, hi in r.ranges)
        return f"{r.inputs:,} of 2^32 (bits {spans})"
    return f"{r.inputs:,} sampled"


def format_table(results: list[Row]) -> str:
    head = (
        "| function | direction | backend | inputs | max ULP | at x (got / correctly rounded) "
        "| > target | max rel. err | registry bound (rtol) | verdict |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in results:
        inputs = _inputs_text(r)
        if r.error:
            lines.append(f"| {r.label} | {r.direction} | {r.backend} | {inputs} | — | {r.error} | — | — | — | ERROR |")
            continue
        at = f"{_g(r.at_x)} ({_g(r.got)} / {_g(r.expected)})" if r.max_ulp else "—"
        bound = f"{r.rtol:g}: " + ("ok" if not r.bound_violations else f"{r.bound_violations:,} outside")
        over = f"{r.over_target:,} (> {r.target})"
        verdict = r.verdict
        if r.specials:
            verdict += f": {r.specials:,}, e.g. {r.special_example}"
        lines.append(
            f"| {r.label} | {r.direction} | {r.backend} | {inputs} | {r.max_ulp} | {at} | {over} "
            f"| {r.max_rel:.3g} | {bound} | {verdict} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------ CLI


def _csv(s: str) -> list[str]:
    return [t.strip() for t in s.split(",") if t.strip()]


def _count(s: str) -> int:
    """'4194304', '2**22' or '4M'."""
    s = s.strip()
    if "**" in s:
        a, b = s.split("**")
        return int(a) ** int(b)
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(s[-1:].lower())
    return int(s[:-1]) * mult if mult else int(s)


def _part(s: str) -> tuple[int, int]:
    """'3/8' -> (3, 8)."""
    try:
        k, n = (int(t) for t in s.split("/"))
        part_range(k, n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N, e.g. 3/8; got {s!r}") from None
    return k, n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help=f"sample {QUICK_FORWARD:,} forward and {QUICK_BACKWARD:,} backward inputs "
                        "instead of all 2**32 (well under a minute per backend)")
    parser.add_argument("--samples", type=_count, default=None,
                        help="forward inputs to sample instead of all 2**32 (e.g. 2**24, 16M)")
    parser.add_argument("--backward-samples", type=_count, default=None,
                        help=f"backward inputs to sample (default {BACKWARD_SAMPLES:,}; --quick {QUICK_BACKWARD:,})")
    parser.add_argument("--functions", type=_csv, default=None,
                        help="comma-separated elementwise functions (default: all of them)")
    parser.add_argument("--backends", type=_csv, default=None,
                        help="comma-separated backends (default: every accelerated one: numba, cython)")
    parser.add_argument("--direction", choices=("forward", "backward", "both"), default="both")
    parser.add_argument("--part", type=_part, default=None, metavar="K/N",
                        help="the exhaustive forward on the K-th of N equal slices of the 2**32 bit patterns "
                        "only (the backward sample is measured with part 1); combine the --json files "
                        "of all N parts with --merge")
    parser.add_argument("--merge", nargs="+", metavar="JSON", default=None,
                        help="measure nothing: combine the --json files of earlier runs (pieces of one "
                        "measurement, later files replacing earlier rows of the same range) into one table")
    parser.add_argument("--seed", type=int, default=0, help="seed for the sampled inputs' offsets")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a row misses its target without a registry note, or errs")


def _report(results: list[Row], header: str, args: argparse.Namespace) -> int:
    print(header)
    print()
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([row_to_dict(r) for r in results], fh, indent=1, default=float)
    failing = [r for r in results if r.verdict in ("OVER TARGET", "ERROR") or r.specials]
    if failing:
        print(f"\n{len(failing)} row(s) miss their target without a registry note: "
              + ", ".join(f"{r.label} {r.direction} [{r.backend}]" for r in failing), file=sys.stderr)
    return 1 if (args.strict and failing) else 0


def _header(fwd_text: str, bwd_text: str, tail: str) -> str:
    return (f"fastact accuracy, float32: forward on {fwd_text}; backward (grad_output = 1) on {bwd_text}; "
            f"ULP against the reference rounded once to float32, where that is a normal number. "
            f"Targets: forward <= {TARGET_ULP['forward']} ULP, backward <= {TARGET_ULP['backward']} ULP. "
            f"({tail})")


def _run_merge(args: argparse.Namespace) -> int:
    try:
        groups = [load_json(p) for p in args.merge]
        results = merge(groups)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        print(f"accuracy: cannot merge: {exc}", file=sys.stderr)
        return 2
    if args.functions:
        results = [r for r in results if r.function in args.functions]
    if args.backends:
        results = [r for r in results if r.backend in args.backends]
    fwd = [r for r in results if r.direction == "forward"]
    bwd = [r for r in results if r.direction == "backward"]
    fwd_text = ("all 2^32 float32 inputs" if fwd and all(r.exhaustive for r in fwd)
                else "the inputs each row says")
    sizes = sorted({r.inputs for r in bwd})
    bwd_text = f"{sizes[0]:,} inputs" if len(sizes) == 1 else "the inputs each row says"
    times = sorted(t for r in results for t in r.measured.split(" .. ") if t)
    when = f"measured {times[0]} .. {times[-1]}" if times else "measured at unknown times"
    wall = sum({(r.label, r.direction, r.measured, r.wall_seconds): r.wall_seconds for r in results}.values())
    tail = f"merged from {len(args.merge)} file(s), {when}, {wall / 60:.0f} min of measuring"
    return _report(results, _header(fwd_text, bwd_text, tail), args)


def run(args: argparse.Namespace) -> int:
    if args.merge:
        return _run_merge(args)
    all_rows = elementwise_rows()
    names = {s.name for s, _ in all_rows}
    if args.functions:
        unknown = [f for f in args.functions if f not in names]
        if unknown:
            print(f"accuracy: not elementwise functions: {', '.join(unknown)}; choose from {', '.join(sorted(names))}",
                  file=sys.stderr)
            return 2
        rows = [(s, e) for s, e in all_rows if s.name in args.functions]
    else:
        rows = all_rows
    backends = args.backends or [b for b in _backends.BACKEND_NAMES if b not in ("auto", "numpy")]
    bad = [b for b in backends if b not in _backends.BACKEND_NAMES or b == "auto"]
    if bad:
        print(f"accuracy: unknown backend(s) {', '.join(bad)}; choose from numpy, numba, cython", file=sys.stderr)
        return 2
    fwd = args.samples if args.samples is not None else (QUICK_FORWARD if args.quick else None)
    bwd = args.backward_samples if args.backward_samples is not None else (QUICK_BACKWARD if args.quick else BACKWARD_SAMPLES)
    directions = ("forward", "backward") if args.direction == "both" else (args.direction,)
    forward_range = (0, ALL)
    fwd_text = "all 2^32 float32 inputs" if fwd is None else f"{fwd:,} float32 inputs spread over all exponents"
    if args.part is not None:
        if fwd is not None:
            print("accuracy: --part splits the exhaustive forward; it does not go with --quick or --samples",
                  file=sys.stderr)
            return 2
        k, n = args.part
        forward_range = part_range(k, n)
        if k != 1:
            directions = tuple(d for d in directions if d != "backward")
        if not directions:
            print(f"accuracy: part {k}/{n} measures only the forward (the backward sample goes with part 1)",
                  file=sys.stderr)
            return 2
        fwd_text = (f"part {k}/{n} of all 2^32 float32 inputs "
                    f"(bits {forward_range[0]:#010x}-{forward_range[1] - 1:#010x})")
    t0 = time.monotonic()
    results = measure(rows, backends, forward_samples=fwd, backward_samples=bwd, directions=directions,
                      seed=args.seed, progress=not args.no_progress, forward_range=forward_range)
    elapsed = time.monotonic() - t0
    bwd_text = f"{bwd:,} inputs" if "backward" in directions else "no inputs (not measured in this run)"
    return _report(results, _header(fwd_text, bwd_text, f"{elapsed:.0f} s"), args)


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser(prog="python -m fastact.accuracy")
    add_arguments(p)
    sys.exit(run(p.parse_args()))
