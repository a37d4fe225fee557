"""The tamper-evident audit log: an append-only hash chain with signed checkpoints.

Each entry holds who, when, what, which record and digests of the record before and after
(never names, birth dates, passport numbers, codes or tokens themselves), and the hash of the
previous entry; its own hash covers all of that. Appends are serialised by locking the single
``audit_head`` row, so concurrent requests (or service instances) form one chain. Every
``audit_checkpoint_every`` entries a checkpoint signed with the issuing key records the chain
head, so a truncated log is caught even if the head row is rewritten too.

:func:`verify_chain` walks the log and reports the first entry that was edited, deleted,
reordered or cut off.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from cardissuer.core.db import session_scope
from cardissuer.errors import AuditChainError
from cardissuer.models import AuditCheckpointRecord, AuditHeadRecord, AuditRecord
from cardissuer.services.access import Actor
from keys.errors import SignedDocumentError
from keys.jws import VerificationKey, decode_jwt, encode_jwt
from keys.signer import Signer

GENESIS = "0" * 64
CHECKPOINT_TYP = "fmcard-audit-checkpoint+jwt"


def digest(values: dict[str, Any] | None) -> str | None:
    """SHA-256 of a record's values (canonical JSON), so the log proves content, not shows it."""
    if values is None:
        return None
    text = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def record_values(record: Any) -> dict[str, Any]:
    """The column values of a table record (binary columns as their digest)."""
    values = record.model_dump()
    return {
        key: hashlib.sha256(value).hexdigest() if isinstance(value, bytes) else value
        for key, value in values.items()
    }


def _entry_hash(entry: AuditRecord) -> str:
    fields = [
        entry.seq,
        entry.at.astimezone(UTC).isoformat(),
        entry.officer_id,
        entry.office_id,
        entry.action,
        entry.record_type,
        entry.record_id,
        entry.outcome,
        entry.before_digest,
        entry.after_digest,
        entry.detail,
        entry.prev_hash,
    ]
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


def append(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    record_type: str,
    record_id: str,
    outcome: str = "ok",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: str = "",
    at: datetime | None = None,
) -> AuditRecord:
    """Append one entry in the caller's transaction (it commits or rolls back with it)."""
    head = session.exec(select(AuditHeadRecord).with_for_update()).first()
    if head is None:
        head = AuditHeadRecord()
        session.add(head)
    entry = AuditRecord(
        seq=head.seq + 1,
        at=(at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0),
        officer_id=actor.officer_id if actor else None,
        office_id=actor.office_id if actor else None,
        action=action,
        record_type=record_type,
        record_id=record_id,
        outcome=outcome,
        before_digest=digest(before),
        after_digest=digest(after),
        detail=detail[:256],
        prev_hash=head.entry_hash,
        entry_hash="",
    )
    entry.entry_hash = _entry_hash(entry)
    head.seq, head.entry_hash = entry.seq, entry.entry_hash
    session.add(entry)
    session.add(head)
    session.flush()
    return entry


def record_denied(
    engine: Engine, *, actor: Actor, action: str, record_type: str, record_id: str, detail: str
) -> None:
    """Audit a refused attempt in a transaction of its own (the refused change rolls back)."""
    with session_scope(engine) as session:
        append(
            session,
            actor=actor,
            action=action,
            record_type=record_type,
            record_id=record_id,
            outcome="denied",
            detail=detail,
        )


def checkpoint(session: Session, signer: Signer, *, at: datetime) -> AuditCheckpointRecord:
    """Sign the current chain head and store the checkpoint."""
    head = session.exec(select(AuditHeadRecord).with_for_update()).first() or AuditHeadRecord()
    claims = {"seq": head.seq, "hash": head.entry_hash, "iat": int(at.timestamp())}
    record = AuditCheckpointRecord(
        seq=head.seq,
        entry_hash=head.entry_hash,
        at=at,
        signature=encode_jwt(claims, signer, typ=CHECKPOINT_TYP),
    )
    session.add(record)
    session.flush()
    return record


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of :func:`verify_chain`."""

    entries: int
    checkpoints: int
    head_seq: int


def verify_chain(session: Session, *, keys: Iterable[VerificationKey]) -> ChainReport:
    """Check every entry, the head and the signed checkpoints; raise on the first break."""
    entries = session.exec(select(AuditRecord).order_by(AuditRecord.id)).all()  # type: ignore[arg-type]
    previous_hash, expected_seq = GENESIS, 1
    hashes: dict[int, str] = {}
    for entry in entries:
        if entry.seq != expected_seq:
            raise AuditChainError(
                f"entry {expected_seq} is missing or out of order (found {entry.seq})",
                expected_seq,
            )
        if entry.prev_hash != previous_hash:
            raise AuditChainError(f"entry {entry.seq} does not follow its predecessor", entry.seq)
        if _entry_hash(entry) != entry.entry_hash:
            raise AuditChainError(f"entry {entry.seq} was altered", entry.seq)
        hashes[entry.seq] = entry.entry_hash
        previous_hash, expected_seq = entry.entry_hash, expected_seq + 1
    last = expected_seq - 1
    head = session.exec(select(AuditHeadRecord)).first()
    if head is not None and (head.seq, head.entry_hash) != (last, previous_hash):
        raise AuditChainError(
            f"the log ends at entry {last} but its head says {head.seq}: entries were cut off",
            last + 1,
        )
    key_list = list(keys)
    checkpoints = session.exec(select(AuditCheckpointRecord)).all()
    for mark in checkpoints:
        try:
            claims, _ = decode_jwt(mark.signature, typ=CHECKPOINT_TYP, keys=key_list)
        except SignedDocumentError as exc:
            raise AuditChainError(
                f"checkpoint at entry {mark.seq} is not validly signed: {exc}", mark.seq
            ) from None
        if (claims.get("seq"), claims.get("hash")) != (mark.seq, mark.entry_hash):
            raise AuditChainError(f"checkpoint at entry {mark.seq} was altered", mark.seq)
        if mark.seq > last:
            raise AuditChainError(
                f"a signed checkpoint covers entry {mark.seq} but the log ends at {last}: "
                "entries were cut off",
                last + 1,
            )
        if mark.seq and hashes.get(mark.seq) != mark.entry_hash:
            raise AuditChainError(f"entry {mark.seq} differs from its signed checkpoint", mark.seq)
    return ChainReport(entries=len(entries), checkpoints=len(checkpoints), head_seq=last)
