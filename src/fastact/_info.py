"""``fastact.show_config()`` and ``python -m fastact info``: what is available and why not."""

from __future__ import annotations

import platform
import sys

from . import _backends, _config, _tuning


def config() -> dict:
    """The configuration as a dict (loads every backend to report on it)."""
    import numpy as np

    info: dict = {
        "fastact": _version(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "backend setting": _backends.get_backend(),
        "threads": _config.get_num_threads(),
        "threads from": _config.num_threads_source(),
        "cpus available": _config.cpu_count(),
        "cpu": _tuning._cpu_model(),
        "cpu features": " ".join(_tuning._cpu_features()),
        "tuning": _tuning.load_table().state,
        "fast-path checks": _api_fastpath(),
        "backends": {},
    }
    for name, (ok, why) in _backends.status().items():
        entry: dict = {"available": ok}
        if ok:
            be = _backends.load(name)
            details = getattr(be, "info", None)
            if details is not None:
                try:
                    entry.update(details())
                except Exception as exc:  # a report must not fail
                    entry["info error"] = repr(exc)
        else:
            entry["why not"] = why
        info["backends"][name] = entry
    return info


def _api_fastpath() -> str:
    from . import _api

    return _api.FASTPATH


def _version() -> str:
    from . import __version__

    return __version__


def show_config(file=None) -> None:
    """Print versions, each backend and why it is or is not available, and the thread settings."""
    cfg = config()
    out = file or sys.stdout
    for key, value in cfg.items():
        if key == "backends":
            continue
        print(f"{key:>16}: {value}", file=out)
    print("        backends:", file=out)
    for name, entry in cfg["backends"].items():
        state = "available" if entry["available"] else "UNAVAILABLE"
        print(f"  {name:>8}: {state}", file=out)
        for k, v in entry.items():
            if k != "available":
                print(f"            {k}: {v}", file=out)
