"""What counters download: caching headers, 304s, status lists that follow every change."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest
from sqlmodel import Session, select

from cardissuer.models import CardRecord, CardState
from cardissuer.services import cards
from cardissuer.services.publishing import Publisher
from keys.jws import VerificationKey
from keys.status_list import CardStatus, read_status_list
from tests.cardissuer.test_api_helpers import BACKENDS, Service, assert_problem, shared_service
from verifier import Bundle, Reason, Verifier


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


DOCUMENTS = [
    ("/trust-list.jwt", "application/jwt"),
    ("/jwks.json", "application/jwk-set+json"),
    ("/status/1", "application/statuslist+jwt"),
    ("/bundle.json", "application/json"),
]


@pytest.mark.parametrize(("path", "media_type"), DOCUMENTS, ids=[p for p, _ in DOCUMENTS])
def test_documents_carry_caching_headers_and_answer_304(
    service: Service, path: str, media_type: str
) -> None:
    response = service.client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media_type)
    etag = response.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    modified = parsedate_to_datetime(response.headers["last-modified"])
    assert modified <= datetime.now(UTC)
    cache_control = response.headers["cache-control"]
    assert cache_control.startswith("public, max-age=")
    assert int(cache_control.rsplit("=", 1)[1]) > 0
    again = service.client.get(path)
    assert again.headers["etag"] == etag
    assert again.headers["last-modified"] == response.headers["last-modified"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = service.client.get(path, headers={"If-None-Match": header})
        assert cached.status_code == 304, header
        assert cached.content == b""
        assert cached.headers["etag"] == etag
    changed = service.client.get(path, headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200
    assert changed.content == response.content


def test_the_jwks_holds_the_signing_key(service: Service) -> None:
    kids = [key["kid"] for key in service.client.get("/jwks.json").json()["keys"]]
    assert service.app.state.keys.signer.kid in kids


@pytest.mark.parametrize("list_id", ["999", "0", "abc", "1%00", "x" * 17, "%E2%80%AE"])
def test_an_unknown_status_list_is_a_404_problem(service: Service, list_id: str) -> None:
    assert_problem(service.client.get(f"/status/{list_id}"), 404, "not-found")


def test_a_bundle_downloaded_after_a_change_shows_it_at_once(service: Service) -> None:
    supervisor = service.headers("supervisor")
    code, first = service.with_card(("hc",))
    second = service.client.post(f"/api/persons/{code}/cards", headers=supervisor).json()
    before = service.client.get("/bundle.json")
    status_before = service.client.get("/status/1").headers["etag"]
    verifier = Verifier(Bundle.from_json(json.loads(before.content), at=datetime.now(UTC)))
    now = datetime.now(UTC)
    assert verifier.verify(second["qr_text"], service="hc", at=now).reason is Reason.VALID
    for action, reason in (
        ("suspend", Reason.SUSPENDED),
        ("reinstate", Reason.VALID),
        ("revoke", Reason.REVOKED),
    ):
        done = service.client.post(
            f"/api/cards/{second['serial']}/{action}", headers=supervisor, json={"reason": "r"}
        )
        assert done.status_code == 200, done.text
        assert service.reasons(first["qr_text"], second["qr_text"]) == [
            Reason.SUPERSEDED,
            reason,
        ], action
    after = service.client.get("/bundle.json", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert service.client.get("/status/1").headers["etag"] != status_before


def test_two_changes_within_one_second_both_reach_the_status_list(service: Service) -> None:
    """Changes are noticed by content: a "changed at" of whole seconds missed the second."""
    registrar, supervisor = service.actor("registrar"), service.actor("supervisor")
    code, _ = service.with_card(("hc",))
    publisher, context = service.app.state.publisher, service.context
    keys = [VerificationKey(kid, key) for key, kid in service.app.state.public_keys]
    at = datetime.now(UTC).replace(microsecond=0)
    with Session(service.engine) as session:
        card = cards.issue(session, registrar, code, at=at, context=context)
        session.commit()
        before = publisher.status_list(session, card.list_id, at=at)
        cards.change_state(session, supervisor, card.serial, CardState.REVOKED, at=at, reason="r")
        session.commit()
        after = publisher.status_list(session, card.list_id, at=at)
    assert after.etag != before.etag
    status = read_status_list(after.body.decode(), keys=keys)
    assert status.statuses[card.status_index] == CardStatus.REVOKED
    assert read_status_list(before.body.decode(), keys=keys).statuses[card.status_index] == (
        CardStatus.VALID
    )


def test_an_unchanged_status_list_is_not_signed_again(service: Service) -> None:
    shared = service.app.state.publisher
    publisher = Publisher(
        signer=shared.signer,
        status_uri_prefix=shared.status_uri_prefix,
        validity=shared.validity,
        published_dir=shared.published_dir,
    )
    at = datetime.now(UTC).replace(microsecond=0)
    with Session(service.engine) as session:
        list_id = session.exec(select(CardRecord.list_id)).first()
        assert list_id is not None
        first = publisher.status_list(session, list_id, at=at)
        later = publisher.status_list(session, list_id, at=at + publisher.validity / 4)
        stale = publisher.status_list(session, list_id, at=at + publisher.validity)
    assert later is first
    assert stale.etag != first.etag


@pytest.fixture
def shanghai_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone is China's, as at the bureau."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("shanghai_time")
@pytest.mark.parametrize("path", ["/trust-list.jwt", "/bundle.json", "/jwks.json", "/status/1"])
def test_documents_are_served_whatever_the_local_time_zone(service: Service, path: str) -> None:
    assert time.strftime("%z") == "+0800"
    response = service.client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["last-modified"].endswith(" GMT")
    modified = parsedate_to_datetime(response.headers["last-modified"])
    assert abs((datetime.now(UTC) - modified).total_seconds()) < 24 * 3600
