"""The backend switch: named backends, loaded on first use, and the choice per call.

Precedence: ``use_backend`` (a context, local to the thread or task) over
``set_backend`` over ``FASTACT_BACKEND`` (read at import) over ``auto``.
``auto`` runs each call on the preferred available backend; see
:func:`choose`.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
import warnings
from typing import Iterator

from . import _config, _tuning

__all__ = [
    "BACKEND_NAMES",
    "get_backend",
    "set_backend",
    "use_backend",
    "load",
    "available",
    "choose",
]

# name -> module exposing BACKEND. The accelerated ones are imported on first
# use only: numba alone costs about 0.2 s to import.
_MODULES = {
    "numpy": "fastact._reference",
    "numba": "fastact._numba",
    "cython": "fastact._cython",
}
BACKEND_NAMES = ("auto",) + tuple(_MODULES)
# auto's order of preference until a tuning table says otherwise.
_AUTO_ORDER = ("cython", "numba", "numpy")

_lock = threading.Lock()
_loaded: dict[str, object] = {}
_failed: dict[str, str] = {}


def _check_name(name: object, what: str = "backend") -> str:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, one of {', '.join(BACKEND_NAMES)}; got {type(name).__name__}")
    key = name.strip().lower()
    if key not in BACKEND_NAMES:
        raise ValueError(f"unknown {what} {name!r}; valid: {', '.join(BACKEND_NAMES)}")
    return key


def load(name: str):
    """The backend object for ``name`` (not ``auto``); raises RuntimeError when unavailable."""
    be = _loaded.get(name)
    if be is not None:
        return be
    with _lock:
        if name in _loaded:
            return _loaded[name]
        if name in _failed:
            raise RuntimeError(f"fastact backend {name!r} is unavailable: {_failed[name]}")
        try:
            be = importlib.import_module(_MODULES[name]).BACKEND
        except Exception as exc:  # ImportError, numba/llvmlite errors, a broken .so
            _failed[name] = f"{type(exc).__name__}: {exc}"
            raise RuntimeError(f"fastact backend {name!r} is unavailable: {_failed[name]}") from exc
        _loaded[name] = be
        return be


def available(name: str) -> tuple[bool, str]:
    """(True, "") when ``name`` loads, else (False, the reason). Loads it."""
    name = _check_name(name)
    if name == "auto":
        return True, ""
    try:
        load(name)
    except RuntimeError:
        return False, _failed[name]
    return True, ""


def _from_env() -> str:
    raw = os.environ.get("FASTACT_BACKEND")
    if raw is None or raw.strip() == "":
        return "auto"
    try:
        return _check_name(raw, "FASTACT_BACKEND")
    except (ValueError, TypeError):
        warnings.warn(
            f"fastact: FASTACT_BACKEND={raw!r} is not a backend; valid: {', '.join(BACKEND_NAMES)}. Using 'auto'.",
            RuntimeWarning,
            stacklevel=3,
        )
        return "auto"


_global = _from_env()
_global_source = "FASTACT_BACKEND" if _global != "auto" else "default"
_env_unchecked = _global != "auto"  # availability is checked at first use, not at import
# True when the global setting is plain auto (not forced, no FASTACT_BACKEND check pending):
# the public functions then read the memo directly unless a use_backend() context is active.
_plain = _global == "auto"
_context: contextvars.ContextVar[str | None] = contextvars.ContextVar("fastact_backend", default=None)


def get_backend() -> str:
    """The backend name in force here: 'auto', 'numpy', 'numba' or 'cython'."""
    ctx = _context.get()
    return ctx if ctx is not None else _global


def set_backend(name: str) -> str:
    """Use ``name`` for later calls (all threads); return the previous setting.

    Raises ValueError for an unknown name and RuntimeError when the backend
    cannot be loaded on this machine (the message says why).
    """
    global _global, _env_unchecked, _global_source, _plain
    key = _check_name(name)
    if key != "auto":
        load(key)
    previous = get_backend()
    _global = key
    _global_source = "set_backend()"
    _env_unchecked = False
    _plain = key == "auto"
    return previous


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """``with fastact.use_backend("numba"): ...`` -- local to this thread or task."""
    key = _check_name(name)
    if key != "auto":
        load(key)
    token = _context.set(key)
    try:
        yield key
    finally:
        _context.reset(token)


def _env_fallback() -> None:
    """FASTACT_BACKEND named a backend that does not load: warn once, use auto."""
    global _global, _env_unchecked, _global_source, _plain
    with _lock:
        if not _env_unchecked:
            return
        _env_unchecked = False
    try:
        load(_global)
    except RuntimeError as exc:
        warnings.warn(f"fastact: FASTACT_BACKEND={_global!r} unavailable ({exc}); using 'auto'.", RuntimeWarning, stacklevel=4)
        _global = "auto"
        _global_source = "default (FASTACT_BACKEND unavailable)"
        _plain = True


def choose(spec, direction: str, dtype, size: int, contiguous: bool = True):
    """(backend object, threads) for one call; threads 0 lets the backend decide.

    ``direction`` is ``"forward"``, ``"backward"`` (from x) or ``"backward_y"``
    (from the forward's output): different kernels, tuned separately.
    """
    return pick((spec.name, direction, dtype.char, contiguous), size)


def pick(key: tuple, size: int):
    """:func:`choose` for a prepared key (function name, direction, dtype char, contiguous).

    This is on every call's path, so under ``auto`` it is one context-variable
    read, one dict lookup and one list index: the memo maps the key to a list
    indexed by the size's bit length, whose entries hold the backend and the
    thread count already resolved (cleared when the table or the thread
    setting changes).
    """
    ctx = _context.get()
    name = ctx if ctx is not None else _global
    if name != "auto":
        if _env_unchecked:
            _env_fallback()
            return pick(key, size)
        return load(name), 0
    memo = _memo.get(key)
    hit = memo[size.bit_length()] if memo is not None else None
    if hit is None:
        hit = _resolve(*key, size.bit_length())
    return hit


# auto: the tuning table, loaded at the first auto call; each key resolved once.
_table = None
_memo: dict = {}  # (name, direction, char, contiguous) -> [None | (backend, threads)] * 65, see memo()
_UNRESOLVED = (None,) * 65  # bit lengths 0..64 (numpy sizes are below 2**63)


def memo(key: tuple) -> list:
    """The memo list of ``key``, indexed by the size's bit length; the same list for the process's life.

    The public functions hold these lists and read them directly (see
    ``_api._fast_forward_body``), so forgetting choices empties them in place.
    """
    lst = _memo.get(key)
    if lst is None:
        lst = _memo.setdefault(key, list(_UNRESOLVED))
    return lst


def _forget() -> None:
    for lst in _memo.values():
        lst[:] = _UNRESOLVED
_why: dict = {}  # (name, direction, char, contiguous, bucket) -> the reason, for explain


def _resolve(name: str, direction: str, char: str, contiguous: bool, bits: int):
    global _table
    with _lock:
        if _table is None:
            _table = _tuning.load_table()
    bucket = _tuning.BUCKET_OF_BITS[min(bits, 64)]
    dtype = "float32" if char == "f" else "float64"
    looked = direction
    entry = _table.lookup(name, direction, dtype, contiguous, bucket)
    if entry is None and direction == "backward_y":
        # a table without y entries (format 1, or a partial tune): the backward from x is the nearest kernel
        looked = "backward"
        entry = _table.lookup(name, looked, dtype, contiguous, bucket)
    if entry is not None:
        wanted, threads = entry
        why = (f"{_table.state}: {wanted}, {_mode(threads)}, fastest for {name} {_DIRECTION_TEXT[looked]} {dtype} "
               f"near {_tuning.LADDER[bucket]:.0e}")
        if looked != direction:
            why += f" (the table has no {_DIRECTION_TEXT[direction]} entry)"
        runner = _table.runner_up(name, looked, dtype, contiguous, bucket)
        if runner is not None and runner[2] < 0:  # the tuner's serial rule (_tuning.prefer_serial)
            why += (f"; {runner[0]}, {_mode(runner[1])}, was {100 * -runner[2]:.1f}% faster in back-to-back calls, "
                    f"under what a sleeping thread pool can cost at this size ({100 * _tuning.SERIAL_BIAS:.0f}%, "
                    f"at least {_tuning.SERIAL_WAKE * 1e6:.0f} µs)")
        elif runner is not None:
            why += f"; runner-up {runner[0]}, {_mode(runner[1])}, {100 * runner[2]:+.1f}%"
    else:
        wanted, threads = _AUTO_ORDER[0], 0
        why = f"{_table.state}: no entry for {name} {_DIRECTION_TEXT[direction]} {dtype}; {wanted} with its own thread choice"
    if threads == _tuning.PARALLEL:  # as many threads as the thread settings give (the memo is
        threads = _config.get_num_threads()  # cleared when they change)
    order = (wanted,) + tuple(b for b in _AUTO_ORDER if b != wanted)
    for bname in order:
        try:
            be = load(bname)
        except RuntimeError:
            why += f"; {bname} unavailable ({_failed[bname]})"
            continue
        hit = (be, threads if bname == wanted else 0)
        if bname != wanted:
            why += f"; fell back to {bname}"
        _why[name, direction, char, contiguous, bucket] = why
        if bits <= 64:
            memo((name, direction, char, contiguous))[bits] = hit
        return hit
    raise RuntimeError("no fastact backend is available")  # numpy always loads; kept for clarity


_DIRECTION_TEXT = {"forward": "forward", "backward": "backward from x", "backward_y": "backward from y"}


def _mode(threads: int) -> str:
    return "serial" if threads == 1 else "parallel"


def reload_table() -> None:
    """Forget the loaded table and every resolved choice (after `tune`, or a new FASTACT_TUNING_FILE)."""
    global _table
    with _lock:
        _table = None
        _forget()
        _why.clear()


_config.on_change(_forget)  # the thread setting changed: resolve every choice again


def explain_choice(spec, direction: str, dtype, size: int, contiguous: bool) -> dict:
    """Which backend and how many threads a call would use, and why."""
    if _env_unchecked:
        _env_fallback()
    ctx = _context.get()
    setting = ctx if ctx is not None else _global
    if setting != "auto":
        be = load(setting)
        source = "use_backend()" if ctx is not None else _global_source
        why = f"forced by {source}"
        threads = 0
    else:
        be, threads = choose(spec, direction, dtype, size, contiguous)
        why = _why[spec.name, direction, dtype.char, contiguous, _tuning.bucket(size)]
    if threads == 0:
        per = getattr(be, "threads_for", None)
        threads = per(size) if per is not None else 1
    return {"backend": be.name, "threads": threads, "reason": why}


def status() -> dict[str, tuple[bool, str]]:
    """Availability of every backend, for show_config (loads them)."""
    return {name: available(name) for name in _MODULES}
