from __future__ import annotations

import os
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


# The files that take longest, longest first (seconds of one run, summed per file). Under
# pytest-xdist (``./dev test`` runs ``-n auto --dist loadfile``) each file runs whole on one
# worker, in this order first and then in the usual one, so that no worker is left alone
# with a long file at the end. A stale list only costs balance, never a test.
LONGEST_FIRST = (
    "tests/verifier/test_station.py",
    "tests/cardissuer/test_portal.py",
    "tests/cardissuer/test_search.py",
    "tests/cardissuer/test_wallet.py",
    "tests/cardissuer/test_console.py",
    "tests/cardissuer/test_portal_browser.py",
    "tests/cardissuer/test_decisions.py",
    "tests/cardissuer/test_holder_phone.py",
    "tests/verifier/test_sync.py",
    "tests/cardissuer/test_ops.py",
    "tests/test_packaging.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
