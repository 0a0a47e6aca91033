"""Thread-count configuration shared by every backend.

Precedence: ``set_num_threads(n)`` over ``FASTACT_NUM_THREADS`` over
``OMP_NUM_THREADS`` over the number of CPUs this process may run on.
Backends call :func:`get_num_threads` at each parallel call; it is a cheap read.
"""

from __future__ import annotations

import os

__all__ = ["get_num_threads", "set_num_threads", "cpu_count"]


def cpu_count() -> int:
    """Number of CPUs this process may use (affinity mask aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _parse_threads(var: str) -> int | None:
    raw = os.environ.get(var)
    if raw is None or raw.strip() == "":
        return None
    # OMP_NUM_THREADS may be a list ("4,2") for nested levels: the first counts.
    head = raw.split(",")[0].strip()
    try:
        n = int(head)
    except ValueError:
        import warnings

        warnings.warn(f"fastact: ignoring {var}={raw!r}: not a positive integer", RuntimeWarning, stacklevel=3)
        return None
    if n < 1:
        import warnings

        warnings.warn(f"fastact: ignoring {var}={raw!r}: not a positive integer", RuntimeWarning, stacklevel=3)
        return None
    return n


def _default_threads() -> tuple[int, str]:
    for var in ("FASTACT_NUM_THREADS", "OMP_NUM_THREADS"):
        n = _parse_threads(var)
        if n is not None:
            return min(n, cpu_count()) if var == "OMP_NUM_THREADS" else n, var
    return cpu_count(), "cpu count"


_explicit: int | None = None
_default, _default_source = _default_threads()
_listeners: list = []  # called after the setting changes (the dispatcher's memo)


def on_change(callback) -> None:
    """Call ``callback()`` whenever :func:`set_num_threads` changes the setting."""
    _listeners.append(callback)


def _changed() -> None:
    for cb in _listeners:
        cb()


def get_num_threads() -> int:
    """The number of threads a parallel kernel uses."""
    return _explicit if _explicit is not None else _default


def num_threads_source() -> str:
    """Where :func:`get_num_threads` takes its value from (for ``show_config``)."""
    return "set_num_threads()" if _explicit is not None else _default_source


def set_num_threads(n: int | None) -> int:
    """Set the number of threads for later calls; return the previous value.

    ``None`` goes back to the environment (``FASTACT_NUM_THREADS``,
    ``OMP_NUM_THREADS``) or the CPU count.
    """
    global _explicit
    previous = get_num_threads()
    if n is None:
        _explicit = None
        _changed()
        return previous
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"set_num_threads: n must be an integer, got {type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    _explicit = n
    _changed()
    return previous
