"""Configuration shared by every backend: threads and streaming stores.

Threads: ``set_num_threads(n)`` over ``FASTACT_NUM_THREADS`` over
``OMP_NUM_THREADS`` over the number of CPUs this process may run on.
Backends call :func:`get_num_threads` at each parallel call; it is a cheap read.

Streaming stores: the compiled backends write an elementwise result of at
least :func:`stream_min_bytes` bytes with non-temporal stores, which do not
read the cache lines they overwrite (see ``_cython/_fastact_cpu.h``).
``FASTACT_STREAM_MIN_BYTES`` sets it (bytes; ``off`` never streams).
"""

from __future__ import annotations

import os

__all__ = ["get_num_threads", "set_num_threads", "cpu_count", "stream_min_bytes"]


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


# ------------------------------------------------------------ streaming stores
# Results of at least this many bytes: measured on the development VM (2
# threads, L2 2 MB a core), a relu forward with non-temporal stores was even
# with plain stores at 5e5 float32 (2 MB), 1.8x faster at 2e6 (8 MB) and 2x at
# 1e7.  Below, the result stays in cache for its next reader; so the default
# is well above the crossover.
STREAM_MIN_BYTES = 8 << 20
_NEVER = 1 << 62


def _default_stream_min() -> int:
    var = "FASTACT_STREAM_MIN_BYTES"
    raw = os.environ.get(var)
    if raw is None or raw.strip() == "":
        return STREAM_MIN_BYTES
    text = raw.strip().lower()
    if text in ("off", "never", "none"):
        return _NEVER
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        import warnings

        warnings.warn(f"fastact: ignoring {var}={raw!r}: not a number of bytes >= 0 or 'off'",
                      RuntimeWarning, stacklevel=3)
        return STREAM_MIN_BYTES
    return min(n, _NEVER)


_stream_min = _default_stream_min()
_stream_listeners: list = []  # the compiled backends' copies of the setting


def stream_min_bytes() -> int:
    """Elementwise results of at least this many bytes are written with non-temporal stores."""
    return _stream_min


def on_stream_change(callback) -> None:
    """Call ``callback(nbytes)`` whenever :func:`set_stream_min_bytes` changes the setting."""
    _stream_listeners.append(callback)


def set_stream_min_bytes(n: int | None) -> int:
    """Set :func:`stream_min_bytes` (``None``: back to ``FASTACT_STREAM_MIN_BYTES`` or
    the default); return the previous value. The results are the same bits
    either way: this only moves where the stores go (tests use it to take the
    streaming path at small sizes)."""
    global _stream_min
    previous = _stream_min
    if n is None:
        n = _default_stream_min()
    elif isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"set_stream_min_bytes: n must be an integer, got {type(n).__name__}")
    n = int(n)
    if n < 0:
        raise ValueError(f"set_stream_min_bytes: n must be >= 0, got {n}")
    _stream_min = min(n, _NEVER)
    for cb in _stream_listeners:
        cb(_stream_min)
    return previous
