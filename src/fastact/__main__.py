"""``python -m fastact``: the command line.

``python -m fastact`` (or ``list``) prints the catalogue and the backends;
``python -m fastact info`` prints the full configuration.
"""

from __future__ import annotations

import argparse
import sys


def _cmd_list(args) -> int:
    from . import _backends
    from ._registry import SPECS

    print(f"{'function':<12} {'kind':<11} {'y=':<4} parameters")
    for spec in SPECS:
        params = ", ".join(
            p.name + ("" if p.required else f"={p.default!r}") for p in spec.params if p.kind not in ("rng",)
        )
        y = "yes" if spec.y_ok is True else ("some" if callable(spec.y_ok) else "no")
        print(f"{spec.name:<12} {spec.kind:<11} {y:<4} {params}")
    print()
    print(f"backend setting: {_backends.get_backend()}")
    for name, (ok, why) in _backends.status().items():
        print(f"  {name:<7} {'available' if ok else 'unavailable: ' + why}")
    return 0


def _cmd_info(args) -> int:
    from ._info import show_config

    show_config()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastact", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("list", help="the catalogue and the backends (the default)")
    sub.add_parser("info", help="versions, backends and why they are or are not available, threads")
    args = parser.parse_args(argv)
    handlers = {None: _cmd_list, "list": _cmd_list, "info": _cmd_info}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
