"""Every activation x direction x contender x dtype x size, generated from the registry.

Parameters come from ``conftest.py``; inputs and peers from ``fastact._peers``
(the same as ``python -m fastact bench``). Each benchmark is warmed up before
it is timed, so a compilation is never measured. In the smoke run (the
default) each one runs once and its result is checked against the reference.
"""

from __future__ import annotations

import numpy as np

import fastact
from fastact import _peers as P
from fastact._bench import fmt_size

# One case's arrays at a time: the parameters are ordered case-major, and at
# 1e7 a float32 case holds about 80 MB.
_last: dict = {}


def _case(name, direction, dtype, size):
    key = (name, direction, dtype, size)
    if key not in _last:
        _last.clear()
        _last[key] = P.make_case(name, direction, dtype, size)
    return _last[key]


def test_bench(benchmark, bench_item, bench_backend_ok):
    name, direction, dtype, size, label = bench_item
    case = _case(name, direction, dtype, size)
    if label in P.PEERS:
        found = P.peer_contenders(case, [label])
        assert found, f"peer {label} was collected for {name} {direction} but cannot be built"
        contender = found[0]
    else:
        bench_backend_ok(label)
        contender = P.backend_contender(case, label)

    benchmark.group = f"{name} {direction} {dtype} {fmt_size(size)}"
    benchmark.extra_info.update(
        function=name, direction=direction, dtype=dtype, size=size, elements=case.elements,
        contender=label, kind=contender.kind, note=contender.note, threads=fastact.get_num_threads(),
    )
    backend = contender.backend or fastact.get_backend()
    with fastact.use_backend(backend):
        result = contender.call()  # the warm-up: compiles and loads; never timed
        if not benchmark.enabled:
            problem = P.check_result(case, label, result)
            assert problem is None, f"{name} {direction} {dtype}: {problem}"
        benchmark(contender.call)


def test_every_activation_has_a_case():
    """A new activation is benchmarked by being in the registry; this fails,
    naming it, if its parameters need a value the case generator lacks."""
    for spec in fastact.activations():
        for direction in (P.FORWARD, P.BACKWARD):
            case = P.make_case(spec, direction, "float32", 64)
            assert case.x.size > 0 and (case.g is None) == (direction == P.FORWARD)
            with np.errstate(all="ignore"):
                with fastact.use_backend("numpy"):
                    P.fastact_call(case)()
