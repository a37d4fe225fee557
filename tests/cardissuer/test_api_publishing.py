"""What counters download: caching headers, 304s, status lists that follow every change."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest
from sqlmodel import Session, select

from cardissuer.models import CardRecord, CardState, StatusListRecord
from cardissuer.services import cards
from cardissuer.services.publishing import Publisher
from keys.jwk import generate
from keys.jws import VerificationKey
from keys.signer import KeySigner
from keys.status_list import CardStatus, read_status_list
from tests.cardissuer.test_api_helpers import BACKENDS, Service, assert_problem, shared_service
from verifier import Bundle, Reason, Verifier
from verifier.errors import BundleError


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


def other_process(shared: Publisher) -> Publisher:
    """A publisher with its own memory, as in another worker process or instance."""
    return Publisher(
        signer=shared.signer,
        status_uri_prefix=shared.status_uri_prefix,
        validity=shared.validity,
        published_dir=shared.published_dir,
    )


def test_lists_signed_in_one_second_by_two_processes_get_later_iats(service: Service) -> None:
    """Process A signs a list, a card is revoked, process B signs in the same second: B's
    list must carry a later iat (a counter refuses a different list with the held iat), and
    A then serves B's list, not its own older one."""
    registrar, supervisor = service.actor("registrar"), service.actor("supervisor")
    code, _ = service.with_card(("hc",))
    first = other_process(service.app.state.publisher)
    second = other_process(service.app.state.publisher)
    keys = [VerificationKey(kid, key) for key, kid in service.app.state.public_keys]
    at = datetime.now(UTC).replace(microsecond=0)
    with Session(service.engine, expire_on_commit=False) as session:
        card = cards.issue(session, registrar, code, at=at, context=service.context)
        session.commit()
        before = first.status_list(session, card.list_id, at=at)
        session.commit()
        cards.change_state(session, supervisor, card.serial, CardState.REVOKED, at=at, reason="r")
        session.commit()
        after = second.status_list(session, card.list_id, at=at)
        session.commit()
        again = first.status_list(session, card.list_id, at=at)
        session.commit()
    old = read_status_list(before.body.decode(), keys=keys)
    new = read_status_list(after.body.decode(), keys=keys)
    assert new.issued_at > old.issued_at
    assert new.statuses[card.status_index] == CardStatus.REVOKED
    assert again.body == after.body
    assert again.last_modified <= at
    # A counter holding A's list takes B's, and refuses A's list replayed afterwards.
    trust = service.client.get("/bundle.json").json()
    held = Bundle.from_json({**trust, "status_lists": [before.body.decode()]}, at=at)
    updated = held.update({**trust, "status_lists": [after.body.decode()]}, at=at)
    with pytest.raises(BundleError, match="rollback"):
        updated.update({**trust, "status_lists": [before.body.decode()]}, at=at)


def test_concurrent_signers_never_sign_two_lists_with_one_iat(service: Service) -> None:
    """Four workers each revoke a card and sign the list in the same second, at once: every
    iat names one content, and the newest list holds every revocation."""
    supervisor = service.actor("supervisor")
    issued = [service.with_card(("hc",))[1]["serial"] for _ in range(4)]
    keys = [VerificationKey(kid, key) for key, kid in service.app.state.public_keys]
    at = datetime.now(UTC).replace(microsecond=0)
    with Session(service.engine) as session:
        rows = [
            session.exec(select(CardRecord).where(CardRecord.serial == serial)).one()
            for serial in issued
        ]
        (list_id,) = {row.list_id for row in rows}
        indexes = [row.status_index for row in rows]
    start = threading.Barrier(len(issued))
    tokens: list[str] = []
    errors: list[BaseException] = []

    def worker(serial: str) -> None:
        publisher = other_process(service.app.state.publisher)
        try:
            start.wait(timeout=30)
            with Session(service.engine, expire_on_commit=False) as session:
                cards.change_state(
                    session, supervisor, serial, CardState.REVOKED, at=at, reason="r"
                )
                session.commit()
                tokens.append(publisher.status_list(session, list_id, at=at).body.decode())
                session.commit()
        except BaseException as exc:  # reported below, with the thread's context
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(serial,)) for serial in issued]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    lists = [read_status_list(token, keys=keys) for token in tokens]
    by_iat: dict[datetime, set[str]] = {}
    for token, status in zip(tokens, lists, strict=True):
        by_iat.setdefault(status.issued_at, set()).add(token.split(".")[1])
    assert all(len(payloads) == 1 for payloads in by_iat.values()), by_iat
    newest = max(lists, key=lambda status: status.issued_at)
    assert all(newest.statuses[index] == CardStatus.REVOKED for index in indexes)


def test_a_list_held_from_a_rotated_key_is_signed_again(service: Service) -> None:
    """The stored list is served to every instance only while the signing key is the same."""
    shared = service.app.state.publisher
    rotated = Publisher(
        signer=KeySigner(generate()),
        status_uri_prefix=shared.status_uri_prefix,
        validity=shared.validity,
        published_dir=shared.published_dir,
    )
    at = datetime.now(UTC).replace(microsecond=0)
    with Session(service.engine) as session:
        list_id = session.exec(select(CardRecord.list_id)).first()
        assert list_id is not None
        held = other_process(shared).status_list(session, list_id, at=at)
        session.commit()
        fresh = rotated.status_list(session, list_id, at=at)
        session.commit()
    header = json.loads(base64.urlsafe_b64decode(fresh.body.split(b".")[0] + b"=="))
    assert header["kid"] == rotated.signer.kid
    assert fresh.body != held.body


def test_the_last_iat_only_goes_up_even_when_the_clock_goes_back(service: Service) -> None:
    publisher = other_process(service.app.state.publisher)
    at = datetime.now(UTC).replace(microsecond=0)
    with Session(service.engine) as session:
        list_id = session.exec(select(CardRecord.list_id)).first()
        assert list_id is not None
        first = publisher.status_list(session, list_id, at=at + publisher.validity)
        session.commit()
        record = session.get(StatusListRecord, list_id)
        assert record is not None
        assert record.last_iat == int((at + publisher.validity).timestamp())
        # The clock steps back past the list's freshness: the next list is still later.
        later = publisher.status_list(session, list_id, at=at + 2 * publisher.validity)
        session.commit()
        session.refresh(record)
        assert record.last_iat == int((at + 2 * publisher.validity).timestamp())
        record.signed_digest = "x"  # as if the statuses changed
        session.add(record)
        session.commit()
        behind = publisher.status_list(session, list_id, at=at)
        session.commit()
        session.refresh(record)
    assert later.etag != first.etag
    assert behind.etag != later.etag
    assert record.last_iat == int((at + 2 * publisher.validity).timestamp()) + 1


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


def test_a_bundle_304_costs_one_query_whatever_the_number_of_lists(service: Service) -> None:
    """A large registry has about two status lists per million cards; the bundle's 304 (what
    thousands of counters ask several times a day) reads every list's head in one query."""
    from sqlalchemy import event

    def statements_of_a_304() -> int:
        bundle = service.client.get("/bundle.json")
        assert bundle.status_code == 200, bundle.text
        seen: list[str] = []

        def count(*args: object) -> None:
            seen.append(str(args[2]))

        event.listen(service.engine, "before_cursor_execute", count)
        try:
            again = service.client.get(
                "/bundle.json", headers={"If-None-Match": bundle.headers["etag"]}
            )
        finally:
            event.remove(service.engine, "before_cursor_execute", count)
        assert again.status_code == 304
        return len([s for s in seen if "status_list" in s])

    few = statements_of_a_304()
    with Session(service.engine) as session:
        known = len(session.exec(select(StatusListRecord)).all())
        for number in range(8):
            session.add(StatusListRecord(list_id=f"bulk{number}", size=1024))
        session.commit()
    try:
        many = statements_of_a_304()
    finally:
        with Session(service.engine) as session:
            for record in session.exec(select(StatusListRecord)).all():
                if record.list_id.startswith("bulk"):
                    session.delete(record)
            session.commit()
    assert known >= 1
    assert few == many == 1
