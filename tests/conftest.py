"""The ``backend`` fixture: every test that takes it runs once per registered backend."""

from __future__ import annotations

import pytest

import fastact
from fastact import _backends

from _helpers import BACKENDS, REQUIRED_BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request):
    name = request.param
    ok, why = _backends.available(name)
    if not ok:
        if name in REQUIRED_BACKENDS:
            pytest.fail(f"backend {name!r} is required (FASTACT_REQUIRE_BACKENDS) but unavailable: {why}")
        pytest.skip(f"backend {name!r} unavailable: {why}")
    with fastact.use_backend(name):
        yield name
