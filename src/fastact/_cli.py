"""``python -m fastact list``: the catalogue and the backends."""

from __future__ import annotations


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    from . import _backends
    from ._registry import SPECS

    print(f"{'function':<12} {'kind':<11} {'y=':<4} parameters")
    for spec in SPECS:
        params = ", ".join(p.name + ("" if p.required else f"={p.default!r}") for p in spec.params if p.kind != "rng")
        y = "yes" if spec.y_ok is True else ("some" if callable(spec.y_ok) else "no")
        print(f"{spec.name:<12} {spec.kind:<11} {y:<4} {params}")
    print()
    print(f"backend setting: {_backends.get_backend()}")
    for name, (ok, why) in _backends.status().items():
        print(f"  {name:<7} {'available' if ok else 'unavailable: ' + why}")
    return 0
