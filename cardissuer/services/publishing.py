"""What counters fetch: status lists, the trust list, JWKS and the verifier bundle.

Status lists are built from the cards' states (revoked, suspended, superseded) and signed with
the active issuing key. A signed list is cached per process and re-signed when a card's state
changed or when half its validity has passed, so that counters polling every few minutes cost
one query, not one signature. The trust list is signed offline by the trust anchor (``fmcard
trust-list``) and served as published: the anchor's private key never needs to be online.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from cardissuer.errors import NotFoundError
from cardissuer.models import CardRecord, CardState, StatusListRecord
from cardissuer.services.cards import STATE_STATUS
from keys.signer import Signer
from keys.status_list import StatusList, sign_status_list
from verifier.bundle import build_bundle_document
from verifier.policy import Policy


@dataclass(frozen=True, slots=True)
class Published:
    """A published document with what HTTP caching needs."""

    body: bytes
    media_type: str
    etag: str
    last_modified: datetime
    max_age: int


class Publisher:
    """Builds and caches the documents counters download."""

    def __init__(
        self,
        *,
        signer: Signer,
        status_uri_prefix: str,
        validity: timedelta,
        published_dir: Path,
        policies: list[Policy] | None = None,
    ) -> None:
        self.signer = signer
        self.status_uri_prefix = status_uri_prefix
        self.validity = validity
        self.published_dir = published_dir
        self.policies = policies or []
        self._cache: dict[str, tuple[datetime, datetime, Published]] = {}
        self._lock = threading.Lock()

    def status_list(self, session: Session, list_id: str, *, at: datetime) -> Published:
        record = session.get(StatusListRecord, list_id)
        if record is None:
            raise NotFoundError(f"no status list {list_id!r}")
        with self._lock:
            cached = self._cache.get(list_id)
            if cached and cached[0] == record.changed_at and at - cached[1] < self.validity / 2:
                return cached[2]
        statuses = StatusList(record.size, record.bits)
        rows = session.exec(
            select(CardRecord.status_index, CardRecord.state).where(
                CardRecord.list_id == list_id,
                col(CardRecord.state).in_(
                    [CardState.REVOKED, CardState.SUSPENDED, CardState.SUPERSEDED]
                ),
            )
        ).all()
        for index, state in rows:
            statuses[index] = STATE_STATUS[CardState(state)]
        token = sign_status_list(
            statuses,
            uri=self.status_uri_prefix + list_id,
            signer=self.signer,
            issued_at=at,
            expires_at=at + self.validity,
            ttl=int(self.validity.total_seconds() // 4),
        )
        published = _published(
            token.encode(),
            "application/statuslist+jwt",
            at,
            max_age=int(self.validity.total_seconds() // 4),
        )
        with self._lock:
            self._cache[list_id] = (record.changed_at, at, published)
        return published

    def status_lists(self, session: Session, *, at: datetime) -> list[Published]:
        ids = session.exec(
            select(StatusListRecord.list_id).order_by(col(StatusListRecord.list_id))
        ).all()
        return [self.status_list(session, list_id, at=at) for list_id in ids]

    def trust_list(self) -> Published:
        path = self.published_dir / "trust-list.jwt"
        try:
            body = path.read_bytes()
            modified = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
        except FileNotFoundError:
            raise NotFoundError(
                "no trust list has been published yet (fmcard trust-list)"
            ) from None
        return _published(body, "application/jwt", modified, max_age=3600)

    def jwks(self, keys: dict[str, Any], *, at: datetime) -> Published:
        import json

        return _published(json.dumps(keys).encode(), "application/jwk-set+json", at, max_age=3600)

    def bundle(self, session: Session, *, anchors: list[Any], at: datetime) -> Published:
        import json

        trust = self.trust_list().body.decode()
        lists = [p.body.decode() for p in self.status_lists(session, at=at)]
        document = build_bundle_document(
            anchors=anchors, trust_list=trust, status_lists=lists, policies=self.policies
        )
        body = (json.dumps(document, indent=1) + "\n").encode()
        return _published(body, "application/json", at, max_age=300)


def _published(body: bytes, media_type: str, at: datetime, *, max_age: int) -> Published:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Published(body, media_type, etag, at.replace(microsecond=0), max_age)
