"""Reads do not queue behind writes. On SQLite a write transaction holds the database's one
write lock from its first statement; the API's GET and HEAD requests read in a snapshot
(cardissuer/api/deps.py, ``get_session``), so a search answers while a card is being issued or
the expiry timer refreshes statistics. On PostgreSQL readers never waited; the test runs there
too, as the same promise."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cardissuer.test_api_helpers import (
    BACKENDS,
    Service,
    finishes_while_written,
    shared_service,
)

HELD_S = 20.0
"""How long the test holds the write lock at most; a GET that waits for it would take this
long (SQLite's busy timeout is longer), one that does not answers in milliseconds."""


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


@pytest.mark.parametrize(
    "path",
    ["/api/persons", "/api/persons?q=HASSAN", "/api/persons/{code}", "/api/cards/{serial}"],
)
def test_a_read_answers_while_a_writer_holds_the_database(service: Service, path: str) -> None:
    code, card = service.with_card(("hc",))
    headers = service.headers("registrar")
    answered: list[int] = []

    def read() -> None:
        response = service.client.get(
            path.format(code=code, serial=card["serial"]), headers=headers
        )
        answered.append(response.status_code)

    assert finishes_while_written(service.engine, read, HELD_S), "the read waited for the writer"
    assert answered == [200]
