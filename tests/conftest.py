from __future__ import annotations

from datetime import datetime

import pytest

from tests.factories import NOW, Authority


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def authority() -> Authority:
    """One issuer world per session (key generation is the slow part)."""
    return Authority()


@pytest.fixture
def fresh_authority() -> Authority:
    """An issuer world a test may change (status values, versions)."""
    return Authority()
