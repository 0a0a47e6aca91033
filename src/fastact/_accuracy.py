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
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import _backends
from ._progress import Progress
from ._registry import ELEMENTWISE, SPECS, Spec

__all__ = ["add_arguments", "run", "measure", "ulp_distance", "Row"]

TARGET_ULP = {"forward": 4, "backward": 8}
# 2**22 float32 inputs: 16 MiB per float32 array, 32 MiB per float64 one; the
# reference makes a handful of float64 temporaries per chunk, so the tool
# stays around half a GiB while chunks are large enough to amortise calls.
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


# ----------------------------------------------------------------- rows


@dataclass
class Row:
    """The result for one function (with parameters), direction and backend."""

    function: str
    params: dict
    direction: str
    backend: str
    exhaustive: bool
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
    seconds: float = 0.0

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

    def update(self, x, got, ref32, ref64) -> None:
        """Fold one chunk into the row: x inputs, got the kernel's float32, ref32/ref64 the reference."""
        self.inputs += x.size
        nan_r = np.isnan(ref32)
        nan_a = np.isnan(got)
        with np.errstate(all="ignore"):
            abs_r = np.abs(ref32)
            inf_r = np.isinf(ref32)
            normal = (abs_r >= _F32_TINY) & ~inf_r & ~nan_r
            tiny = (abs_r < _F32_TINY) & ~nan_r
            bad = nan_r != nan_a
            bad |= inf_r & (got != ref32)
            bad |= tiny & ~(np.abs(got.astype(np.float64) - ref32) <= _F32_TINY)
            # a normal reference with a NaN or inf result is also a class mismatch
            bad |= normal & ~np.isfinite(got)
            cmp = normal & np.isfinite(got)
            nb = int(np.count_nonzero(bad))
            if nb:
                if not self.specials:
                    i = int(np.flatnonzero(bad)[0])
                    self.special_example = f"x={float(x[i])!r}: got {float(got[i])!r}, expected {float(ref32[i])!r}"
                self.specials += nb
            # the registry's bound, as the tests apply it (r rounded to float32)
            both = ~nan_r & ~nan_a & ~inf_r & np.isfinite(got)
            err = np.abs(got.astype(np.float64) - ref32.astype(np.float64))
            viol = both & (err > self.rtol * abs_r.astype(np.float64) + self.atol)
            self.bound_violations += int(np.count_nonzero(viol))
            if not cmp.any():
                return
            # whole-array passes (no fancy indexing): this runs 2**32 times per row
            u = np.where(cmp, ulp_distance(got, ref32), 0)
            self.compared += int(np.count_nonzero(cmp))
            self.over_target += int(np.count_nonzero(u > self.target))
            k = int(np.argmax(u))
            if int(u[k]) > self.max_ulp:
                self.max_ulp = int(u[k])
                self.at_x, self.got, self.expected = float(x[k]), float(got[k]), float(ref32[k])
            rel = np.where(cmp, np.abs(got - ref64) / np.abs(ref64), 0.0)
            self.max_rel = max(self.max_rel, float(np.max(rel)))


# --------------------------------------------------------------- inputs


def _exhaustive_chunks(chunk: int, total: int = 1 << 32):
    """Every float32 bit pattern (the first ``total``), chunk by chunk."""
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        yield np.arange(start, stop, dtype=np.uint64).astype(np.uint32).view(np.float32)


def _sample_chunks(n: int, chunk: int, seed: int):
    """n bit patterns spread evenly over all 2**32 (one per stride, at a random offset in it).

    Evenly in bit space means evenly over exponents: every binade of
    float32, positive and negative, gets the same number of samples.
    """
    rng = np.random.default_rng(seed)
    stride = (1 << 32) // n
    for start in range(0, n, chunk):
        k = np.arange(start, min(start + chunk, n), dtype=np.uint64)
        bits = k * np.uint64(stride) + rng.integers(0, stride, size=k.size, dtype=np.uint64)
        yield bits.astype(np.uint32).view(np.float32)


def count_chunks(n: int, chunk: int) -> int:
    return -(-n // chunk)


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
) -> list[Row]:
    """Measure every (row, direction, backend); ``forward_samples=None`` means all 2**32 inputs."""
    ref = _backends.load("numpy")
    bes = {}
    load_errors = {}
    for b in backends:
        try:
            bes[b] = _backends.load(b)
        except RuntimeError as exc:
            load_errors[b] = str(exc)
    n_fwd = (1 << 32) if forward_samples is None else forward_samples
    chunk = min(chunk, max(n_fwd, 1))
    total = 0
    if "forward" in directions:
        total += len(rows) * count_chunks(n_fwd, chunk)
    if "backward" in directions:
        total += len(rows) * count_chunks(backward_samples, min(chunk, backward_samples))
    bar = Progress(total, "accuracy", enabled=progress)
    results: list[Row] = []
    for spec, extra in rows:
        params = _full_params(spec, extra)
        shown = _shown_params(spec, extra)
        for direction in directions:
            exhaustive = direction == "forward" and forward_samples is None
            rtol, atol = spec.bound(direction, "float32")
            noted = bool(spec.bound_note) and (direction, "float32") in spec.bounds
            mine = {}
            for b in backends:
                r = Row(spec.name, shown, direction, b, exhaustive, rtol=rtol, atol=atol, noted=noted)
                if b in load_errors:
                    r.error = load_errors[b]
                mine[b] = r
                results.append(r)
            if direction == "forward":
                chunks = _exhaustive_chunks(chunk) if exhaustive else _sample_chunks(n_fwd, chunk, seed)
            else:
                chunks = _sample_chunks(backward_samples, min(chunk, backward_samples), seed + 1)
            for x in chunks:
                with np.errstate(invalid="ignore"):  # signalling NaN patterns raise 'invalid' when widened
                    x64 = x.astype(np.float64)
                r64 = np.empty_like(x64)
                if direction == "forward":
                    ref.forward(spec.name, x64, r64, params)
                    g32 = None
                else:
                    ref.backward(spec.name, np.ones_like(x64), x64, None, r64, params)
                    g32 = np.ones_like(x)
                with np.errstate(over="ignore", invalid="ignore"):
                    r32 = r64.astype(np.float32)
                out = np.empty_like(x)
                for b, be in bes.items():
                    row = mine[b]
                    if row.error:
                        continue
                    t0 = time.perf_counter()
                    try:
                        if direction == "forward":
                            be.forward(spec.name, x, out, params, 0)
                        else:
                            be.backward(spec.name, g32, x, None, out, params, 0)
                    except Exception as exc:  # a broken kernel is a row of the report, not a crash
                        row.error = f"{type(exc).__name__}: {exc}"
                        continue
                    row.seconds += time.perf_counter() - t0
                    row.update(x, out, r32, r64)
                bar.step(f"{spec.name} {direction}")
    return results


# --------------------------------------------------------------- output


def _g(v: float) -> str:
    return "—" if v != v else f"{v:.9g}"


def format_table(results: list[Row]) -> str:
    head = (
        "| function | direction | backend | inputs | max ULP | at x (got / correctly rounded) "
        "| > target | max rel. err | registry bound (rtol) | verdict |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in results:
        inputs = "all 2^32" if r.exhaustive else f"{r.inputs:,} sampled"
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
    parser.add_argument("--seed", type=int, default=0, help="seed for the sampled inputs' offsets")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a row misses its target without a registry note, or errs")


def run(args: argparse.Namespace) -> int:
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
    t0 = time.monotonic()
    results = measure(rows, backends, forward_samples=fwd, backward_samples=bwd, directions=directions,
                      seed=args.seed, progress=not args.no_progress)
    elapsed = time.monotonic() - t0
    fwd_text = "all 2^32 float32 inputs" if fwd is None else f"{fwd:,} float32 inputs spread over all exponents"
    print(f"fastact accuracy, float32: forward on {fwd_text}; backward (grad_output = 1) on {bwd:,} inputs; "
          f"ULP against the reference rounded once to float32, where that is a normal number. "
          f"Targets: forward <= {TARGET_ULP['forward']} ULP, backward <= {TARGET_ULP['backward']} ULP. "
          f"({elapsed:.0f} s)")
    print()
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([dict(asdict(r), label=r.label, verdict=r.verdict) for r in results], fh, indent=1, default=float)
    failing = [r for r in results if r.verdict in ("OVER TARGET", "ERROR") or r.specials]
    if failing:
        print(f"\n{len(failing)} row(s) miss their target without a registry note: "
              + ", ".join(f"{r.label} {r.direction} [{r.backend}]" for r in failing), file=sys.stderr)
    return 1 if (args.strict and failing) else 0


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser(prog="python -m fastact.accuracy")
    add_arguments(p)
    sys.exit(run(p.parse_args()))
