"""``python -m fastact``: the command line.

Subcommands live in their own modules, each with ``add_arguments(parser)`` and
``run(args) -> int`` (see ``_COMMANDS``); one that fails to import is not offered.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). The first is the default.
_COMMANDS = {
    "list": ("fastact._cli", "the catalogue and the backends available here"),
    "info": ("fastact._cli_info", "versions, backends and why one is unavailable, threads, tuning"),
    "bench": ("fastact._bench", "benchmark every function on every backend against PyTorch and NumPy"),
    "tune": ("fastact._tuning", "measure the backends on this machine and save the dispatcher's table"),
    "accuracy": ("fastact._accuracy", "measure each function's error in ULP against the reference"),
}
DEFAULT = "list"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastact", description="fastact: fast activation functions.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = {}
    for name, (modname, helptext) in _COMMANDS.items():
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        modules[name] = mod
        mod.add_arguments(sub.add_parser(name, help=helptext, description=helptext))
    args = parser.parse_args(argv)
    command = args.command or DEFAULT
    if args.command is None:
        args = parser.parse_args([DEFAULT] + (argv if argv is not None else sys.argv[1:]))
    return int(modules[command].run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
