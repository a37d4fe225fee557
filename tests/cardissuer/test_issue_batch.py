"""Batch issuance (``issuing.issue_batch``) on SQLite and PostgreSQL: the guarantees of ``issue``
for every person, with the database work done in bulk, and all or nothing per batch.

The tests of a backend share one service (see ``test_api_helpers``) and look only at what
changed after they started.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import Session, col, select

import keys.cards
from cardissuer.core.db import session_scope
from cardissuer.errors import IssuerError
from cardissuer.models import AuditCheckpointRecord, CardRecord, CardState, Role
from cardissuer.services import audit, blobs, cards, issuing
from tests.cardissuer.test_api_helpers import (
    BACKENDS,
    OTHER_OFFICE,
    Service,
    shared_service,
)
from verifier import Reason


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def issue_batch(service: Service, codes: list[str], username: str = "registrar") -> list[Any]:
    """Issue ``codes`` in one transaction; return the cards' (serial, qr_text, index) rows."""
    actor = service.actor(username)
    with session_scope(service.engine) as session:
        records = issuing.issue_batch(
            session, actor, codes, at=datetime.now(UTC), context=service.context
        )
        texts = blobs.qr_texts_of(session, [r.id for r in records])
        return [
            (r.serial, texts[r.id or 0], r.list_id, r.status_index, r.person_id) for r in records
        ]


def card_rows(service: Service, serials: list[str]) -> dict[str, CardRecord]:
    with Session(service.engine) as session:
        rows = session.exec(select(CardRecord).where(col(CardRecord.serial).in_(serials))).all()
        return {row.serial: row for row in rows}


def test_a_batch_issues_supersedes_and_audits(service: Service) -> None:
    holders = [service.with_card() for _ in range(5)]
    codes = service.entitled(45) + [code for code, _ in holders]
    seq = service.audit_seq()

    issued = issue_batch(service, codes)

    assert len(issued) == 50
    slots = {(list_id, index) for _, _, list_id, index, _ in issued}
    assert len(slots) == 50
    with Session(service.engine) as session:
        person_ids = [
            session.exec(select(CardRecord.person_id).where(CardRecord.serial == serial)).one()
            for serial, *_ in issued
        ]
        taken = session.exec(select(CardRecord.list_id, CardRecord.status_index)).all()
    assert len(taken) == len(set(taken)), "a status index was used twice"
    assert person_ids == [row[4] for row in issued]  # in the order of the codes
    new_rows = card_rows(service, [serial for serial, *_ in issued])
    old_rows = card_rows(service, [card["serial"] for _, card in holders])
    assert {row.state for row in new_rows.values()} == {CardState.ACTIVE}
    for (_, card), (serial, *_) in zip(holders, issued[45:], strict=True):
        old = old_rows[card["serial"]]
        assert old.state is CardState.SUPERSEDED
        assert old.superseded_by == new_rows[serial].id

    entries = service.audit_after(seq)
    assert [entry.action for entry in entries].count("card.issue") == 50
    assert [entry.action for entry in entries].count("card.superseded") == 5
    assert [entry.seq for entry in entries] == list(range(seq + 1, seq + 56))
    issued_ids = {str(row.id) for row in new_rows.values()}
    assert {e.record_id for e in entries if e.action == "card.issue"} == issued_ids
    service.verify_chain()

    assert set(service.reasons(*(qr for _, qr, *_ in issued))) == {Reason.VALID}
    assert set(service.reasons(*(card["qr_text"] for _, card in holders))) == {Reason.SUPERSEDED}


def test_checkpoints_land_at_multiples_of_n(service: Service) -> None:
    with Session(service.engine) as session:
        policy = audit.checkpoint_policy(session)
    assert policy is not None
    audit.sign_checkpoints(service.engine, policy.signer, every=7)
    try:
        codes = service.entitled(20)
        seq = service.audit_seq()
        issue_batch(service, codes)
    finally:
        audit.sign_checkpoints(service.engine, policy.signer, every=policy.every)
    end = service.audit_seq()
    assert end == seq + 20
    with Session(service.engine) as session:
        marks = session.exec(
            select(AuditCheckpointRecord).where(AuditCheckpointRecord.seq > seq)
        ).all()
    assert sorted(mark.seq for mark in marks) == [n for n in range(seq + 1, end + 1) if n % 7 == 0]
    report = service.verify_chain()
    assert report.last_checkpoint_seq == max(n for n in range(end + 1) if n % 7 == 0)


def _other_office(service: Service) -> str:
    service.officer("registrar-b", Role.REGISTRAR, OTHER_OFFICE)
    return service.entitled(1, "registrar-b")[0]


def _unknown(service: Service) -> str:  # noqa: ARG001 - the signature of REFUSALS
    return "ZZZZZZZZZZ"


def _no_entitlement(service: Service) -> str:
    return service.register()


def _suspended(service: Service) -> str:
    code, card = service.with_card()
    done = service.client.post(
        f"/api/cards/{card['serial']}/suspend",
        headers=service.headers("supervisor"),
        json={"reason": "test"},
    )
    assert done.status_code == 200, done.text
    return code


REFUSALS = {
    "other-office": (_other_office, "not-found"),
    "no-entitlement": (_no_entitlement, "no-entitlement"),
    "suspended": (_suspended, "card-suspended"),
    "unknown-code": (_unknown, "not-found"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_one_refused_person_fails_the_whole_batch(service: Service, case: str) -> None:
    make, code = REFUSALS[case]
    refused = make(service)
    codes = service.entitled(10)
    codes.insert(5, refused)
    before, seq = service.snapshot(), service.audit_seq()

    with pytest.raises(IssuerError) as raised:
        issue_batch(service, codes)

    assert raised.value.code == code
    assert service.snapshot() == before
    assert service.audit_seq() == seq


def test_a_code_twice_fails_the_batch(service: Service) -> None:
    codes = service.entitled(3)
    before, seq = service.snapshot(), service.audit_seq()
    with pytest.raises(cards.DuplicateInBatchError):
        issue_batch(service, [*codes, codes[0]])
    assert service.snapshot() == before
    assert service.audit_seq() == seq


def test_a_failure_mid_batch_leaves_nothing(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = service.entitled(20)
    before, seq = service.snapshot(), service.audit_seq()
    calls = itertools.count(1)
    real = keys.cards.encode_card

    def failing(*args: Any, **kwargs: Any) -> str:
        if next(calls) == 10:
            raise RuntimeError("injected signing failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(cards, "encode_card", failing)
    with pytest.raises(RuntimeError, match="injected"):
        issue_batch(service, codes)

    assert service.snapshot() == before
    assert service.audit_seq() == seq
    monkeypatch.undo()
    assert len(issue_batch(service, codes)) == 20  # and the same persons can then be issued
    service.verify_chain()
