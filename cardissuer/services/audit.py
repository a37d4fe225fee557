"""The tamper-evident audit log: an append-only hash chain with signed checkpoints.

Each entry holds who, when, what, which record and digests of the record before and after
(never names, birth dates, passport numbers, codes or tokens themselves), and the hash of the
previous entry; its own hash covers all of that. Appends are serialised by locking the single
``audit_head`` row, so concurrent requests (or service instances) form one chain. Every
``audit_checkpoint_every`` entries a checkpoint signed with the issuing key records the chain
head, so a truncated log is caught even if the head row is rewritten too.

:func:`verify_chain` walks the log and reports the first entry that was edited, deleted,
reordered or cut off.

Checkpoints are made inside :func:`append`, in the transaction that adds every N-th entry, so
they cannot be skipped by a crash between the entry and its checkpoint. The service registers
its signer and N once per engine (:func:`sign_checkpoints`); the domain services keep calling
``append(session, ...)`` and never need to know about signing. Appends through an engine with
no registered signer (tests, offline tools) add entries without checkpoints.

What checkpoints cannot do: they live in the same database, so someone who can write to it
may cut off the tail *and* delete the checkpoints after the cut. Copies of the checkpoints
kept elsewhere (``fmcard audit checkpoint`` prints one) close that gap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import insert
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

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


def _hash_fields(row: dict[str, Any]) -> str:
    """:func:`_entry_hash` of an entry given as its column values (for bulk appends)."""
    fields = [
        row["seq"],
        row["at"].astimezone(UTC).isoformat(),
        row["officer_id"],
        row["office_id"],
        row["action"],
        row["record_type"],
        row["record_id"],
        row["outcome"],
        row["before_digest"],
        row["after_digest"],
        row["detail"],
        row["prev_hash"],
    ]
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """Who signs audit checkpoints, and after how many entries."""

    signer: Signer
    every: int

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError("checkpoints must come every 1 or more entries")


_POLICIES: WeakKeyDictionary[Engine, CheckpointPolicy] = WeakKeyDictionary()


def sign_checkpoints(engine: Engine, signer: Signer, *, every: int) -> CheckpointPolicy:
    """Have appends through ``engine`` sign a checkpoint at every ``every``-th entry.

    Held per engine (weakly: it goes when the engine goes), so every session of the service,
    including those the domain services and the error handlers open, checkpoints alike.
    """
    policy = CheckpointPolicy(signer, every)
    _POLICIES[engine] = policy
    return policy


def checkpoint_policy(session: Session) -> CheckpointPolicy | None:
    """The policy registered for the engine ``session`` is bound to, if any."""
    try:
        bind = session.get_bind()
    except Exception:  # an unbound session has no engine, hence no policy
        return None
    return _POLICIES.get(bind.engine)


def _locked_head(session: Session) -> AuditHeadRecord:
    """The chain head, locked until the transaction ends (created on the first append).

    ``populate_existing``: a session that outlived an earlier transaction must not append
    after a head it remembers instead of the one in the database.
    """
    query = select(AuditHeadRecord).with_for_update().execution_options(populate_existing=True)
    head = session.exec(query).first()
    if head is not None:
        return head
    # Two first appends may race to create the head: the loser's insert fails on the primary
    # key (after waiting for the winner to commit) and it then locks the winner's row.
    try:
        with session.begin_nested():
            session.add(AuditHeadRecord(id=1))
            session.flush()
    except IntegrityError:
        pass
    return session.exec(query).one()


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
    checkpoints: CheckpointPolicy | None = None,
) -> AuditRecord:
    """Append one entry in the caller's transaction (it commits or rolls back with it).

    When the new entry's ``seq`` is a multiple of the checkpoint interval, a signed checkpoint
    of it is stored in the same transaction (``checkpoints``, else the policy registered for
    the session's engine; none if neither).
    """
    head = _locked_head(session)
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
    policy = checkpoints or checkpoint_policy(session)
    if policy is not None and entry.seq % policy.every == 0:
        checkpoint(session, policy.signer, at=entry.at)
    return entry


@dataclass(frozen=True, slots=True)
class AuditEntryIn:
    """One entry for :func:`append_many`: the arguments :func:`append` takes for one entry."""

    actor: Actor | None
    action: str
    record_type: str
    record_id: str
    outcome: str = "ok"
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    detail: str = ""
    at: datetime | None = None


def append_many(
    session: Session,
    entries: Sequence[AuditEntryIn],
    *,
    checkpoints: CheckpointPolicy | None = None,
) -> int:
    """Append ``entries``, in order, as :func:`append` would one by one; return the new head's
    ``seq``.

    Bulk operations (a batch of issuances) would otherwise lock the head, build an ORM
    object, flush and sign per entry; here the head is locked once, the chain is computed in
    memory and the entries go in with one multi-row ``INSERT`` (no ORM objects: building them
    cost as much as the rest of an entry), together with the head and the checkpoints (at
    every multiple of the interval, signed over the chain as it stood at that entry, exactly
    as :func:`append` signs them). Rows are inserted in chain order, so their ids follow their
    ``seq`` as :func:`verify_chain` expects.
    """
    head = _locked_head(session)
    if not entries:
        return head.seq
    policy = checkpoints or checkpoint_policy(session)
    rows: list[dict[str, Any]] = []
    marks: list[AuditCheckpointRecord] = []
    now = datetime.now(UTC)
    seq, previous = head.seq, head.entry_hash
    for item in entries:
        seq += 1
        at = (item.at or now).astimezone(UTC).replace(microsecond=0)
        row: dict[str, Any] = {
            "seq": seq,
            "at": at,
            "officer_id": item.actor.officer_id if item.actor else None,
            "office_id": item.actor.office_id if item.actor else None,
            "action": item.action,
            "record_type": item.record_type,
            "record_id": item.record_id,
            "outcome": item.outcome,
            "before_digest": digest(item.before),
            "after_digest": digest(item.after),
            "detail": item.detail[:256],
            "prev_hash": previous,
        }
        row["entry_hash"] = previous = _hash_fields(row)
        rows.append(row)
        if policy is not None and seq % policy.every == 0:
            marks.append(_checkpoint_record(policy.signer, seq, previous, at=at))
    session.exec(insert(AuditRecord), params=rows)
    head.seq, head.entry_hash = seq, previous
    session.add(head)
    session.add_all(marks)
    session.flush()
    return seq


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
    """Sign the current chain head and store the checkpoint (in the caller's transaction)."""
    head = _locked_head(session)
    record = _checkpoint_record(signer, head.seq, head.entry_hash, at=at)
    session.add(record)
    session.flush()
    return record


def _checkpoint_record(
    signer: Signer, seq: int, entry_hash: str, *, at: datetime
) -> AuditCheckpointRecord:
    """A signed checkpoint of the chain at entry ``seq`` (shared by single and bulk appends)."""
    claims = {"seq": seq, "hash": entry_hash, "iat": int(at.timestamp())}
    return AuditCheckpointRecord(
        seq=seq,
        entry_hash=entry_hash,
        at=at,
        signature=encode_jwt(claims, signer, typ=CHECKPOINT_TYP),
    )


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of :func:`verify_chain`.

    ``from_seq`` is the entry the walk started from: 0 for a full walk (from the genesis),
    else the signed checkpoint an incremental walk trusted. ``entries`` counts the entries
    walked after it. ``last_checkpoint`` is the newest signed checkpoint the walk confirmed
    (its compact JWS): the starting point to keep for the next incremental walk.
    """

    entries: int
    checkpoints: int
    head_seq: int
    last_checkpoint_seq: int | None = None
    from_seq: int = 0
    last_checkpoint: str | None = None


@dataclass(frozen=True, slots=True)
class VerifiedPoint:
    """A signed checkpoint up to which an earlier walk found the chain intact.

    Kept outside the database (``fmcard audit verify`` writes it to the workspace): it is the
    checkpoint's own JWS, so whoever can rewrite the database cannot move it, and whoever can
    edit the file cannot forge it without the issuing key.
    """

    seq: int
    entry_hash: str
    signature: str

    @classmethod
    def from_signature(cls, signature: str, *, keys: Iterable[VerificationKey]) -> VerifiedPoint:
        """Read a checkpoint JWS; raise :class:`AuditChainError` unless validly signed."""
        try:
            claims, _ = decode_jwt(signature.strip(), typ=CHECKPOINT_TYP, keys=list(keys))
        except SignedDocumentError as exc:
            raise AuditChainError(
                f"the remembered checkpoint is not validly signed: {exc}", None
            ) from exc
        seq, entry_hash = claims.get("seq"), claims.get("hash")
        if (
            not isinstance(seq, int)
            or isinstance(seq, bool)
            or seq < 1
            or not isinstance(entry_hash, str)
        ):
            raise AuditChainError("the remembered checkpoint has no entry number and hash", None)
        return cls(seq, entry_hash, signature.strip())


def _entries(
    session: Session, page: int = 5000, *, after_id: int | None = None
) -> Iterator[AuditRecord]:
    """Every entry in storage order (by id), a page at a time so a long log fits in memory.

    Read as plain rows (attribute access like the record's), not ORM objects: the session
    would keep every one in its identity map, and at a million entries building and
    tracking them cost six times the hashing (16 s per 100,000 entries on PostgreSQL).
    """
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    connection = session.connection()
    after = after_id
    while True:
        query = sa_select(table).order_by(table.c.id).limit(page)
        if after is not None:
            query = query.where(table.c.id > after)
        rows = connection.execute(query).all()
        if not rows:
            return
        yield from rows  # type: ignore[misc]  # Rows with the record's attributes
        after = rows[-1].id


def _walk_start(
    session: Session, since: VerifiedPoint | None
) -> tuple[int, str, int | None, list[AuditChainError]]:
    """Where the walk begins: (seq, hash, id of that entry, problems found there).

    A full walk begins at the genesis. An incremental one begins at the remembered signed
    checkpoint, whose entry must still be in the log and still be what was signed (its own
    hash recomputes and equals the signed one); the entries after it are then walked by id
    from that entry's row on, exactly as the full walk walks them.
    """
    if since is None:
        return 0, GENESIS, None, []
    entry = session.exec(select(AuditRecord).where(col(AuditRecord.seq) == since.seq)).first()
    if entry is None:
        problem = f"entry {since.seq}, the last verified checkpoint, is missing"
    elif entry.entry_hash != since.entry_hash or _entry_hash(entry) != entry.entry_hash:
        problem = f"entry {since.seq} differs from the last verified checkpoint"
    else:
        return since.seq, since.entry_hash, entry.id, []
    return since.seq, since.entry_hash, None, [AuditChainError(problem, since.seq)]


def verify_chain(
    session: Session, *, keys: Iterable[VerificationKey], since: VerifiedPoint | None = None
) -> ChainReport:
    """Check the entries, the head and the signed checkpoints; raise for the first break.

    The error's ``seq`` is the first entry that is not as it was written: the first altered,
    missing or misplaced entry, or the first one cut off the end (caught by the head or by a
    signed checkpoint beyond the end of the log).

    With ``since`` (a checkpoint an earlier walk confirmed) only the entries after it and the
    checkpoints from it on are checked: the cost follows what was appended since, not the
    length of the log. Entries before it were checked by that walk; an edit to them since is
    found by the next full walk, so run one now and then (docs/ISSUER.md).

    Checkpoints and the head are read before the entries, so run outside a snapshot (as the
    API does) entries appended meanwhile only make the log longer than the head it read,
    which is allowed; :func:`cardissuer.core.db.read_snapshot` gives the strictest check.
    """
    key_list = list(keys)
    start_seq, start_hash, start_id, problems = _walk_start(session, since)
    marks = session.exec(
        select(AuditCheckpointRecord)
        .where(col(AuditCheckpointRecord.seq) >= start_seq)
        .order_by(col(AuditCheckpointRecord.seq), col(AuditCheckpointRecord.id))
    ).all()
    head = session.exec(select(AuditHeadRecord)).first()
    wanted = {mark.seq for mark in marks} | ({head.seq} if head is not None else set())
    hashes: dict[int, str] = {start_seq: start_hash}
    previous_hash, expected_seq, count = start_hash, start_seq + 1, 0
    walk = () if problems else _entries(session, after_id=start_id)
    for entry in walk:
        if entry.seq != expected_seq:
            problems.append(
                AuditChainError(
                    f"entry {expected_seq} is missing or out of order (found {entry.seq})",
                    expected_seq,
                )
            )
        elif entry.prev_hash != previous_hash:
            problems.append(
                AuditChainError(f"entry {entry.seq} does not follow its predecessor", entry.seq)
            )
        elif _entry_hash(entry) != entry.entry_hash:
            problems.append(AuditChainError(f"entry {entry.seq} was altered", entry.seq))
        if problems:
            break
        if entry.seq in wanted:
            hashes[entry.seq] = entry.entry_hash
        previous_hash, expected_seq, count = entry.entry_hash, expected_seq + 1, count + 1
    last = expected_seq - 1
    walk_broken = bool(problems)  # then nothing at or after the break can be compared
    intact_until = last + 1
    cut_off = False
    confirmed: AuditCheckpointRecord | None = None
    for mark in marks:
        try:
            claims, _ = decode_jwt(mark.signature, typ=CHECKPOINT_TYP, keys=key_list)
        except SignedDocumentError as exc:
            problems.append(
                AuditChainError(
                    f"checkpoint at entry {mark.seq} is not validly signed: {exc}", mark.seq
                )
            )
            continue
        if (claims.get("seq"), claims.get("hash")) != (mark.seq, mark.entry_hash):
            problems.append(
                AuditChainError(f"checkpoint at entry {mark.seq} was altered", mark.seq)
            )
        elif mark.seq >= intact_until:
            if not walk_broken and not cut_off:
                cut_off = True
                problems.append(
                    AuditChainError(
                        f"a signed checkpoint covers entry {mark.seq} but the log ends at "
                        f"{last}: entries were cut off",
                        last + 1,
                    )
                )
        elif hashes.get(mark.seq) != mark.entry_hash:
            problems.append(
                AuditChainError(f"entry {mark.seq} differs from its signed checkpoint", mark.seq)
            )
        else:
            confirmed = mark
    if head is not None and not walk_broken:
        if head.seq > last:
            problems.append(
                AuditChainError(
                    f"the log ends at entry {last} but its head says {head.seq}: "
                    "entries were cut off",
                    last + 1,
                )
            )
        elif hashes.get(head.seq) != head.entry_hash:
            problems.append(AuditChainError(f"the head does not match entry {head.seq}", head.seq))
    if problems:
        raise min(problems, key=lambda problem: problem.seq or 0)
    kept = confirmed.signature if confirmed else (since.signature if since else None)
    return ChainReport(
        entries=count,
        checkpoints=len(marks),
        head_seq=last,
        last_checkpoint_seq=marks[-1].seq if marks else None,
        from_seq=start_seq,
        last_checkpoint=kept,
    )


def head_seq(session: Session) -> int:
    """The number of entries the chain holds, read from its head row (no count of the log)."""
    head = session.exec(select(AuditHeadRecord)).first()
    return head.seq if head is not None else 0


def newest_entries(session: Session, *, skip: int, limit: int) -> tuple[int, list[AuditRecord]]:
    """The number of entries and up to ``limit`` of them, newest first, after the newest
    ``skip``. Entries are numbered 1..head without gaps, so a page is a range of ``seq`` on
    its unique index: neither a count of the log nor an OFFSET scan."""
    total = head_seq(session)
    rows = session.exec(
        select(AuditRecord)
        .where(col(AuditRecord.seq) <= total - skip)
        .order_by(col(AuditRecord.seq).desc())
        .limit(limit)
    ).all()
    return total, list(rows)
