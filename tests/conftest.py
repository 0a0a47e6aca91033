"""The ``backend`` fixture: every test that takes it runs once per registered backend."""

from __future__ import annotations

import pytest

from _helpers import BACKENDS, backend_or_skip


@pytest.fixture(params=BACKENDS)
def backend(request):
    with backend_or_skip(request.param) as name:
        yield name
