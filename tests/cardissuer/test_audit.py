"""The tamper-evident audit log on both databases: what it catches, and what it reports.

Each kind of tampering someone with write access to the database could try (editing any
field, deleting, swapping, cutting off the tail and rewriting the head, rewriting the chain,
forging checkpoints) is done for real in SQL, and the verifier must name the first entry that
is no longer as written. Most tampering happens inside a transaction that is rolled back, so
one log serves many cases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, delete, func, update
from sqlmodel import Session, col, select

from cardissuer import cli
from cardissuer.api.routes.common import issuing_context_of
from cardissuer.core.config import Settings
from cardissuer.core.db import make_engine, read_snapshot, session_scope
from cardissuer.core.migrations import upgrade
from cardissuer.errors import AuditChainError
from cardissuer.main import create_app
from cardissuer.models import AuditCheckpointRecord, AuditHeadRecord, AuditRecord, Role
from cardissuer.seed import seed_demo
from cardissuer.services import audit
from cardissuer.services.access import Actor
from keys.jwk import generate
from keys.jws import VerificationKey, encode_jwt
from keys.signer import KeySigner
from tests.cardissuer.conftest import login_headers
from tests.factories import Impostor

EVERY = 5
ENTRIES = 23  # checkpoints at 5, 10, 15, 20; three entries after the last one
ACTOR = Actor(officer_id=1, office_id=1, role=Role.SUPERVISOR, username="tester")


def _make_app(workspace: Path, database_url: str) -> FastAPI:
    settings = Settings(
        workspace=workspace, database_url=database_url, audit_checkpoint_every=EVERY
    )
    return create_app(settings)


@pytest.fixture
def audit_app(tmp_path: Path, database_url: str) -> Iterator[FastAPI]:
    """The service (its signer checkpoints every 5 entries) with 23 entries of its own."""
    app = _make_app(tmp_path / "workspace", database_url)
    for number in range(1, ENTRIES + 1):
        with session_scope(app.state.engine) as session:
            audit.append(
                session,
                actor=ACTOR if number % 3 else None,
                action="card.suspended" if number % 2 else "card.active",
                record_type="card",
                record_id=str(number),
                before={"state": "active", "n": number},
                after={"state": "suspended", "n": number},
                detail=f"test entry {number}",
            )
    yield app
    app.state.engine.dispose()


def _keys(app: FastAPI) -> list[VerificationKey]:
    return [VerificationKey(kid, key) for key, kid in app.state.public_keys]


def _verify(app: FastAPI) -> audit.ChainReport:
    with read_snapshot(app.state.engine) as session:
        return audit.verify_chain(session, keys=_keys(app))


@contextmanager
def _tampering(app: FastAPI) -> Iterator[Connection]:
    """A connection whose changes are rolled back at the end: the log is whole again."""
    with app.state.engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


def _broken(app: FastAPI, connection: Connection) -> AuditChainError:
    with Session(bind=connection) as session, pytest.raises(AuditChainError) as caught:
        audit.verify_chain(session, keys=_keys(app))
    return caught.value


def _row(connection: Connection, seq: int) -> dict[str, Any]:
    row = connection.execute(select(AuditRecord).where(AuditRecord.seq == seq)).mappings().one()
    return dict(row)


def _set(connection: Connection, row_id: int, **values: Any) -> None:
    connection.execute(update(AuditRecord).where(col(AuditRecord.id) == row_id).values(**values))


def _rewrite_from(connection: Connection, seq: int) -> str:
    """What a forger who knows the algorithm does: change entry ``seq``, re-hash every
    entry after it and move the head along, so the chain itself is consistent again."""
    with Session(bind=connection) as session:
        entries = session.exec(
            select(AuditRecord).where(AuditRecord.seq >= seq).order_by(col(AuditRecord.seq))
        ).all()
        previous = session.exec(select(AuditRecord).where(AuditRecord.seq == seq - 1)).one()
        previous_hash = previous.entry_hash
        for entry in entries:
            if entry.seq == seq:
                entry.detail = "nothing happened here"
            entry.prev_hash = previous_hash
            entry.entry_hash = audit._entry_hash(entry)
            previous_hash = entry.entry_hash
            session.add(entry)
        head = session.exec(select(AuditHeadRecord)).one()
        head.entry_hash = previous_hash
        session.add(head)
        session.flush()
        return previous_hash


@pytest.fixture
def seeded_app(tmp_path: Path, database_url: str) -> Iterator[FastAPI]:
    """The service (checkpoints every 5 entries) with the demo office, officers and persons."""
    app = _make_app(tmp_path / "workspace", database_url)
    seed_demo(app.state.engine, issuing_context_of(app), environment=app.state.settings.environment)
    yield app
    app.state.engine.dispose()


def test_the_service_checkpoints_every_n_entries_and_the_chain_verifies_after_real_work(
    seeded_app: FastAPI,
) -> None:
    app = seeded_app
    with TestClient(app) as client:
        registrar = login_headers(client, "registrar")
        supervisor = login_headers(client, "supervisor")
        person = client.post("/api/persons", headers=registrar, json={
            "family_name": "NGUYEN", "given_names": "VAN AN", "nationality": "VNM",
            "birth_date": "1988-02-29",
            "passport": {"number": "C1234567", "issuing_country": "VNM"},
        })  # fmt: skip
        assert person.status_code == 201, person.text
        code = person.json()["code"]
        granted = client.post(
            f"/api/persons/{code}/grants", headers=registrar, json={"service": "hc"}
        )
        assert granted.status_code == 201, granted.text
        card = client.post(f"/api/persons/{code}/cards", headers=registrar)
        assert card.status_code == 201, card.text
        serial = card.json()["serial"]
        assert client.post(f"/api/cards/{serial}/revoke", headers=registrar).status_code == 403
        revoked = client.post(
            f"/api/cards/{serial}/revoke", headers=supervisor, json={"reason": "test"}
        )
        assert revoked.status_code == 200, revoked.text
        auditor = login_headers(client, "auditor")
        over_api = client.get("/api/audit/verify", headers=auditor)
        assert over_api.status_code == 200, over_api.text
    report = _verify(app)
    assert report.entries == report.head_seq == over_api.json()["entries"]
    assert report.head_seq >= 3 * EVERY
    with read_snapshot(app.state.engine) as session:
        marks = session.exec(select(AuditCheckpointRecord)).all()
        actions = [e.action for e in session.exec(select(AuditRecord)).all()]
    assert sorted(m.seq for m in marks) == list(range(EVERY, report.head_seq + 1, EVERY))
    assert report.last_checkpoint_seq == max(m.seq for m in marks)
    for action in ("person.register", "grant.create", "card.issue", "card.revoked"):
        assert action in actions


EDITS: dict[str, Any] = {
    "id": lambda row: row["id"] + 100_000,
    "seq": lambda row: row["seq"] + 1000,
    "at": lambda row: row["at"] + timedelta(seconds=1),
    "officer_id": lambda row: (row["officer_id"] or 0) + 1,
    "office_id": lambda row: (row["office_id"] or 0) + 1,
    "action": lambda row: row["action"] + "x",
    "record_type": lambda _: "person",
    "record_id": lambda row: row["record_id"] + "0",
    "outcome": lambda _: "denied",
    "before_digest": lambda _: "f" * 64,
    "after_digest": lambda _: None,
    "detail": lambda row: row["detail"].replace("test", "TEST"),
    "prev_hash": lambda _: "f" * 64,
    "entry_hash": lambda _: "f" * 64,
}


def test_editing_any_field_of_an_entry_is_caught_at_that_entry(audit_app: FastAPI) -> None:
    assert _verify(audit_app).entries == ENTRIES
    with _tampering(audit_app) as connection:
        columns = set(_row(connection, 7))
    assert columns == set(EDITS), "a column of the audit table is not covered here"
    for field, edit in EDITS.items():
        with _tampering(audit_app) as connection:
            row = _row(connection, 7)
            _set(connection, row["id"], **{field: edit(row)})
            error = _broken(audit_app, connection)
        assert error.seq == 7, (field, str(error))
    assert _verify(audit_app).entries == ENTRIES  # every edit was rolled back


def test_deleting_swapping_and_rewriting_entries_are_caught(audit_app: FastAPI) -> None:
    with _tampering(audit_app) as connection:
        connection.execute(delete(AuditRecord).where(col(AuditRecord.seq) == 9))
        error = _broken(audit_app, connection)
        assert (error.seq, "missing" in str(error)) == (9, True)
    with _tampering(audit_app) as connection:
        connection.execute(delete(AuditRecord).where(col(AuditRecord.seq) == ENTRIES))
        assert _broken(audit_app, connection).seq == ENTRIES
    with _tampering(audit_app) as connection:
        first, second = _row(connection, 8), _row(connection, 12)
        _set(connection, first["id"], seq=-1)
        _set(connection, second["id"], **{k: v for k, v in first.items() if k != "id"})
        _set(connection, first["id"], **{k: v for k, v in second.items() if k != "id"})
        assert _broken(audit_app, connection).seq == 8
    with _tampering(audit_app) as connection:
        _rewrite_from(connection, 7)  # consistent chain, but checkpoints 10, 15, 20 disagree
        error = _broken(audit_app, connection)
        assert (error.seq, "signed checkpoint" in str(error)) == (10, True)


def test_cutting_off_the_tail_is_caught_by_a_signed_checkpoint(audit_app: FastAPI) -> None:
    """Delete entries 13.. and rewrite the head to end at 12: the chain and the head agree,
    only the checkpoints at 15 and 20 (signed, so not rewritable) show what is gone."""
    with _tampering(audit_app) as connection:
        kept = _row(connection, 12)
        connection.execute(delete(AuditRecord).where(col(AuditRecord.seq) > 12))
        connection.execute(update(AuditHeadRecord).values(seq=12, entry_hash=kept["entry_hash"]))
        error = _broken(audit_app, connection)
    assert error.seq == 13
    assert "signed checkpoint" in str(error)
    assert "cut off" in str(error)
    # Spoiling the first checkpoint after the cut too changes nothing: 13 is still first.
    with _tampering(audit_app) as connection:
        connection.execute(delete(AuditRecord).where(col(AuditRecord.seq) > 12))
        connection.execute(update(AuditHeadRecord).values(seq=12, entry_hash=kept["entry_hash"]))
        connection.execute(
            update(AuditCheckpointRecord)
            .where(col(AuditCheckpointRecord.seq) == 15)
            .values(signature="forged.forged.forged")
        )
        assert _broken(audit_app, connection).seq == 13


def test_forged_checkpoints_are_caught(audit_app: FastAPI) -> None:
    with _tampering(audit_app) as connection:
        mark = connection.execute(
            select(AuditCheckpointRecord).where(AuditCheckpointRecord.seq == 15)
        ).one()
        header, payload, signature = mark.signature.split(".")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        connection.execute(
            update(AuditCheckpointRecord)
            .where(col(AuditCheckpointRecord.id) == mark.id)
            .values(signature=f"{header}.{payload}.{flipped}")
        )
        error = _broken(audit_app, connection)
    assert (error.seq, "not validly signed" in str(error)) == (15, True)
    # A forger rewrites the chain from entry 7 and re-signs every later checkpoint with a
    # key of their own under the service's kid.
    forger = Impostor(KeySigner(generate()), audit_app.state.keys.signer.kid)
    with _tampering(audit_app) as connection:
        _rewrite_from(connection, 7)
        with Session(bind=connection) as session:
            for later in session.exec(
                select(AuditCheckpointRecord).where(AuditCheckpointRecord.seq >= 7)
            ).all():
                entry = session.exec(select(AuditRecord).where(AuditRecord.seq == later.seq)).one()
                claims = {"seq": later.seq, "hash": entry.entry_hash, "iat": 0}
                later.entry_hash = entry.entry_hash
                later.signature = encode_jwt(claims, forger, typ=audit.CHECKPOINT_TYP)
                session.add(later)
            session.flush()
        error = _broken(audit_app, connection)
    assert (error.seq, "not validly signed" in str(error)) == (10, True)


def test_fmcard_audit_verify_reports_intact_then_the_first_broken_entry(
    audit_app: FastAPI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings: Settings = audit_app.state.settings
    monkeypatch.setenv("FMCARD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FMCARD_WORKSPACE", str(settings.workspace))
    argv = ["--dir", str(settings.workspace), "audit", "verify"]
    capsys.readouterr()
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "intact" in out
    assert f"{ENTRIES} entries, 4 signed checkpoint(s)" in out
    with audit_app.state.engine.begin() as connection:
        _set(connection, _row(connection, 11)["id"], outcome="denied")
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "BROKEN at entry 11" in out
    assert "intact" not in out
    assert cli.main(["--dir", str(settings.workspace), "audit", "checkpoint"]) == 0
    assert capsys.readouterr().out.startswith(f"checkpoint at entry {ENTRIES}: ey")


def _point(app: FastAPI, seq: int) -> audit.VerifiedPoint:
    with read_snapshot(app.state.engine) as session:
        mark = session.exec(
            select(AuditCheckpointRecord).where(AuditCheckpointRecord.seq == seq)
        ).one()
    return audit.VerifiedPoint.from_signature(mark.signature, keys=_keys(app))


def _broken_since(
    app: FastAPI, connection: Connection, since: audit.VerifiedPoint
) -> AuditChainError:
    with Session(bind=connection) as session, pytest.raises(AuditChainError) as caught:
        audit.verify_chain(session, keys=_keys(app), since=since)
    return caught.value


def test_an_incremental_walk_checks_only_what_follows_the_verified_checkpoint(
    audit_app: FastAPI,
) -> None:
    full = _verify(audit_app)
    assert (full.from_seq, full.entries, full.last_checkpoint_seq) == (0, ENTRIES, 20)
    assert full.last_checkpoint is not None
    since = audit.VerifiedPoint.from_signature(full.last_checkpoint, keys=_keys(audit_app))
    assert since.seq == 20
    with read_snapshot(audit_app.state.engine) as session:
        report = audit.verify_chain(session, keys=_keys(audit_app), since=_point(audit_app, 15))
    assert (report.from_seq, report.entries, report.head_seq) == (15, ENTRIES - 15, ENTRIES)
    assert report.checkpoints == 2  # 15 and 20
    assert report.last_checkpoint == since.signature
    with _tampering(audit_app) as connection:  # after the point: caught
        _set(connection, _row(connection, 18)["id"], detail="edited")
        assert _broken_since(audit_app, connection, _point(audit_app, 15)).seq == 18
    with _tampering(audit_app) as connection:  # the point's own entry: caught
        _set(connection, _row(connection, 15)["id"], outcome="denied")
        assert _broken_since(audit_app, connection, _point(audit_app, 15)).seq == 15
    with _tampering(audit_app) as connection:  # the point's entry deleted: caught
        connection.execute(delete(AuditRecord).where(col(AuditRecord.seq) == 15))
        assert _broken_since(audit_app, connection, _point(audit_app, 15)).seq == 15
    with _tampering(audit_app) as connection:  # the tail cut off and the head moved back
        _cut = connection.execute(delete(AuditRecord).where(col(AuditRecord.seq) > 21))
        assert _cut.rowcount == 2
        assert _broken_since(audit_app, connection, _point(audit_app, 15)).seq == 22
    with _tampering(audit_app) as connection:  # an edit before the point: the full walk's job
        _set(connection, _row(connection, 3)["id"], detail="edited")
        with Session(bind=connection) as session:
            audit.verify_chain(session, keys=_keys(audit_app), since=_point(audit_app, 15))
        assert _broken(audit_app, connection).seq == 3


def test_a_remembered_checkpoint_must_be_signed_by_the_issuer(audit_app: FastAPI) -> None:
    with read_snapshot(audit_app.state.engine) as session:
        row = session.exec(select(AuditRecord).where(AuditRecord.seq == 10)).one()
    forged = encode_jwt(
        {"seq": 10, "hash": row.entry_hash, "iat": 1},
        KeySigner(generate()),
        typ=audit.CHECKPOINT_TYP,
    )
    with pytest.raises(AuditChainError, match="not validly signed"):
        audit.VerifiedPoint.from_signature(forged, keys=_keys(audit_app))
    with pytest.raises(AuditChainError, match="not validly signed"):
        audit.VerifiedPoint.from_signature("not a token", keys=_keys(audit_app))


def test_fmcard_audit_verify_incremental_starts_where_the_last_walk_ended(
    audit_app: FastAPI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings: Settings = audit_app.state.settings
    monkeypatch.setenv("FMCARD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FMCARD_WORKSPACE", str(settings.workspace))
    base = ["--dir", str(settings.workspace), "audit", "verify"]
    state = settings.workspace / "audit-verified.jwt"
    capsys.readouterr()
    assert cli.main([*base, "--incremental"]) == 0  # nothing remembered: a full walk
    captured = capsys.readouterr()
    assert "walking the whole chain" in captured.err
    assert f"{ENTRIES} entries" in captured.out
    assert audit.VerifiedPoint.from_signature(state.read_text(), keys=_keys(audit_app)).seq == 20
    for number in range(7):  # 30 entries: a checkpoint at 25 and at 30
        with session_scope(audit_app.state.engine) as session:
            audit.append(session, actor=None, action="t", record_type="x", record_id=str(number))
    assert cli.main([*base, "--incremental"]) == 0
    out = capsys.readouterr().out
    assert "entries 21-30 walked from the checkpoint at entry 20" in out
    assert audit.VerifiedPoint.from_signature(state.read_text(), keys=_keys(audit_app)).seq == 30
    with audit_app.state.engine.begin() as connection:
        _set(connection, _row(connection, 30)["id"], detail="edited")
    assert cli.main([*base, "--incremental"]) == 1
    assert "BROKEN at entry 30" in capsys.readouterr().out
    state.write_text("eyJhbGciOiJFUzI1NiJ9.e30.AAAA\n")
    assert cli.main([*base, "--incremental"]) == 1
    err = capsys.readouterr().err
    assert "run a full walk" in err
    assert err.count("\n") == 1


def test_the_audit_page_counts_from_the_chain_head_and_pages_by_entry_number(
    seeded_app: FastAPI,
) -> None:
    with session_scope(seeded_app.state.engine) as session:
        head = audit.head_seq(session)
        assert head == session.exec(select(func.count()).select_from(AuditRecord)).one()
    with TestClient(seeded_app) as client:
        headers = login_headers(client, "auditor")
        first = client.get("/api/audit", params={"limit": 3}, headers=headers).json()
        later = client.get("/api/audit", params={"offset": 3, "limit": 3}, headers=headers)
        assert first["total"] == head
        assert [e["seq"] for e in first["items"]] == [head, head - 1, head - 2]
        assert [e["seq"] for e in later.json()["items"]] == [head - 3, head - 4, head - 5]


def test_concurrent_appends_form_one_chain(database_url: str) -> None:
    """Eight threads append at once to a log that has no head yet (they race to create it)."""
    engine = make_engine(database_url)
    try:
        _append_from_threads(engine)
    finally:
        engine.dispose()


def _append_from_threads(engine: Engine) -> None:
    upgrade(engine)
    signer = KeySigner(generate())
    audit.sign_checkpoints(engine, signer, every=EVERY)
    threads, per_thread = 8, 10
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def work(number: int) -> None:
        try:
            start.wait(timeout=10)
            for step in range(per_thread):
                with session_scope(engine) as session:
                    audit.append(
                        session,
                        actor=None,
                        action="test.concurrent",
                        record_type="thread",
                        record_id=f"{number}.{step}",
                    )
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 60
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(worker.is_alive() for worker in workers), "appends are stuck"
    assert not failures, failures
    total = threads * per_thread
    with read_snapshot(engine) as session:
        report = audit.verify_chain(session, keys=[VerificationKey(signer.kid, signer.public_key)])
        seqs = sorted(e.seq for e in session.exec(select(AuditRecord)).all())
        marks = sorted(m.seq for m in session.exec(select(AuditCheckpointRecord)).all())
        heads = session.exec(select(func.count()).select_from(AuditHeadRecord)).one()
    assert (report.entries, report.head_seq, seqs) == (total, total, list(range(1, total + 1)))
    assert marks == list(range(EVERY, total + 1, EVERY))
    assert heads == 1
