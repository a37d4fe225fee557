"""What counters fetch: status lists, the trust list, JWKS and the verifier bundle.

Status lists are built from the cards' states (revoked, suspended, superseded) and signed with
the active issuing key. The last signed list is kept in its ``status_list`` row with its
``iat`` and a digest of the statuses it was made from, and re-signed only when those statuses
differ or when half its validity has passed, so that counters polling every few minutes cost
one query, not one signature, and every instance serves the same document. (Comparing the
statuses themselves, not a "changed at" time, cannot miss two changes within the same
second.)

Counters refuse a different list with the ``iat`` they hold, so no two different lists of
one list id may share an ``iat``: a new list is signed under the row's lock with
``iat = max(now, last_iat + 1 s)``, from the statuses read after taking the lock, and stored
in the same transaction; whichever process or instance signs next signs later. A process
keeps the last list it served in memory only as long as the row still names it.

The trust list is signed offline by the trust anchor (``fmcard trust-list``) and served as
published: the anchor's private key never needs to be online.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from cardissuer.errors import NotFoundError
from cardissuer.models import CardRecord, CardState, StatusListRecord
from cardissuer.services.cards import STATE_STATUS
from keys.signer import Signer
from keys.status_list import StatusList, sign_status_list
from keys.store import write_file
from verifier.bundle import build_bundle_document
from verifier.policy import Policy

_LIST_ID = re.compile(r"[0-9A-Za-z_-]{1,16}")


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
        issuer_id: str | None = None,
    ) -> None:
        self.issuer_id = issuer_id
        self.signer = signer
        self.status_uri_prefix = status_uri_prefix
        self.validity = validity
        self.published_dir = published_dir
        self.policies = policies or []
        self._cache: dict[str, tuple[int, Published]] = {}
        self._lock = threading.Lock()

    def status_list(self, session: Session, list_id: str, *, at: datetime) -> Published:
        known = _LIST_ID.fullmatch(list_id)
        head = (
            session.exec(
                select(
                    StatusListRecord.size,
                    StatusListRecord.bits,
                    StatusListRecord.last_iat,
                    StatusListRecord.signed_digest,
                ).where(StatusListRecord.list_id == list_id)
            ).first()
            if known
            else None
        )
        if head is None:
            raise NotFoundError("no such status list")
        size, bits, last_iat, digest = head
        _, content = self._statuses(session, list_id, size, bits)
        if last_iat is not None and digest == content and self._fresh(last_iat, at):
            served = self._held(session, list_id, last_iat, at=at)
            if served is not None:
                return served
        return self._sign(session, list_id, at=at)

    def _sign(self, session: Session, list_id: str, *, at: datetime) -> Published:
        """Sign the list under its row's lock with an ``iat`` later than any before it."""
        record = session.exec(
            select(StatusListRecord)
            .where(StatusListRecord.list_id == list_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        # Read the statuses once the lock is held: a list signed after this one (with a
        # later iat) then sees every change this one saw.
        values, content = self._statuses(session, list_id, record.size, record.bits)
        if (
            record.last_iat is not None
            and record.signed_digest == content
            and record.signed_token
            and self._fresh(record.last_iat, at)
        ):  # another process signed these statuses while this one waited for the lock
            return self._remember(list_id, record.last_iat, record.signed_token, at=at)
        iat = max(int(at.timestamp()), (record.last_iat or 0) + 1)
        issued = datetime.fromtimestamp(iat, UTC)
        statuses = StatusList(record.size, record.bits)
        for index, value in values:
            statuses[index] = value
        token = sign_status_list(
            statuses,
            uri=self.status_uri_prefix + list_id,
            signer=self.signer,
            issued_at=issued,
            expires_at=issued + self.validity,
            ttl=self._max_age,
        )
        record.last_iat, record.signed_digest, record.signed_token = iat, content, token
        session.add(record)
        session.flush()
        return self._remember(list_id, iat, token, at=at)

    def _statuses(
        self, session: Session, list_id: str, size: int, bits: int
    ) -> tuple[list[tuple[int, int]], str]:
        """The list's non-valid statuses by index, and their digest (with the list's shape,
        URI and signing key: a list signed by a key since rotated away is signed again)."""
        rows = session.exec(
            select(CardRecord.status_index, CardRecord.state)
            .where(
                CardRecord.list_id == list_id,
                col(CardRecord.state).in_(
                    [CardState.REVOKED, CardState.SUSPENDED, CardState.SUPERSEDED]
                ),
            )
            .order_by(col(CardRecord.status_index))
        ).all()
        values = [(index, int(STATE_STATUS[CardState(state)])) for index, state in rows]
        shape = [size, bits, values, self.status_uri_prefix + list_id, self.signer.kid]
        return values, hashlib.sha256(json.dumps(shape).encode()).hexdigest()

    def _fresh(self, last_iat: int, at: datetime) -> bool:
        """Whether a list signed at ``last_iat`` is younger than half its validity."""
        return at - datetime.fromtimestamp(last_iat, UTC) < self.validity / 2

    def _held(
        self, session: Session, list_id: str, last_iat: int, *, at: datetime
    ) -> Published | None:
        """The list the row holds: from this process's memory while it is the same one."""
        with self._lock:
            cached = self._cache.get(list_id)
        if cached is not None and cached[0] == last_iat:
            return cached[1]
        token = session.exec(
            select(StatusListRecord.signed_token).where(StatusListRecord.list_id == list_id)
        ).one()
        return self._remember(list_id, last_iat, token, at=at) if token else None

    def _remember(self, list_id: str, iat: int, token: str, *, at: datetime) -> Published:
        # Last modified when signed; never in the future, even when iat had to move ahead.
        modified = min(datetime.fromtimestamp(iat, UTC), at)
        published = _published(
            token.encode(), "application/statuslist+jwt", modified, max_age=self._max_age
        )
        with self._lock:
            self._cache[list_id] = (iat, published)
        return published

    @property
    def _max_age(self) -> int:
        return int(self.validity.total_seconds() // 4)

    def status_lists(self, session: Session, *, at: datetime) -> list[Published]:
        ids = session.exec(
            select(StatusListRecord.list_id).order_by(col(StatusListRecord.list_id))
        ).all()
        return [self.status_list(session, list_id, at=at) for list_id in ids]

    def trust_list(self) -> Published:
        path = self.published_dir / "trust-list.jwt"
        try:
            body = path.read_bytes()
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except FileNotFoundError:
            raise NotFoundError(
                "no trust list has been published yet (fmcard trust-list)"
            ) from None
        return _published(body, "application/jwt", modified, max_age=3600)

    def jwks(self, keys: dict[str, Any], *, at: datetime) -> Published:
        return _published(json.dumps(keys).encode(), "application/jwk-set+json", at, max_age=3600)

    def bundle(self, session: Session, *, anchors: list[Any], at: datetime) -> Published:
        """The trust list, every status list and the policies; last modified when the newest
        of its parts was."""
        trust = self.trust_list()
        lists = self.status_lists(session, at=at)
        document = build_bundle_document(
            anchors=anchors,
            trust_list=trust.body.decode(),
            status_lists=[p.body.decode() for p in lists],
            signed_policies=[self.signed_policies(at=at)] if self.issuer_id else None,
        )
        body = (json.dumps(document, indent=1) + "\n").encode()
        modified = max([trust.last_modified, *(p.last_modified for p in lists)])
        return _published(body, "application/json", modified, max_age=300)

    def signed_policies(self, *, at: datetime) -> str:
        """The counter policies (the package's per-counter defaults, or those given) signed by
        the issuing key, kept in ``published/policies.jwt``: re-signed with the next version
        only when they change, since counters refuse a changed policy under an old version."""
        import base64

        from verifier.policy import counter_types, sign_policies

        policies = self.policies or [kind.policy for kind in counter_types().values()]
        path = self.published_dir / "policies.jwt"
        wanted = sorted(json.dumps(p.to_json(), sort_keys=True) for p in policies)
        version = 1
        if path.exists():
            token = path.read_text(encoding="ascii").strip()
            payload = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            held = sorted(json.dumps(p, sort_keys=True) for p in claims.get("policies", []))
            if held == wanted and claims.get("iss") == self.issuer_id:
                return token
            version = int(claims.get("ver", 0)) + 1
        assert self.issuer_id is not None  # noqa: S101 - checked by the caller
        token = sign_policies(
            policies, issuer_id=self.issuer_id, version=version, issued_at=at, signer=self.signer
        )
        write_file(path, token.encode())
        return token


def _published(body: bytes, media_type: str, at: datetime, *, max_age: int) -> Published:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Published(body, media_type, etag, at.astimezone(UTC).replace(microsecond=0), max_age)
