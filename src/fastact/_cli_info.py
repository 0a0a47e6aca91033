"""``python -m fastact info``: the full configuration (``fastact.show_config()``)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    from ._info import show_config

    show_config()
    return 0
