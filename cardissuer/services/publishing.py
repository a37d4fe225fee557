"""What counters fetch: status lists, the trust list, JWKS and the verifier bundle.

Every document is built once per change, not once per request. A status list's statuses are
kept packed in its ``status_list`` row and updated from the journal of card status changes
(``cardissuer.services.statuses``); the last signed list is kept in the same row with its
``iat``, the digest of what it was signed as (size, URI, signing key) and the token. A
request costs one small query of the row and of whether its journal holds entries: with
none, and the list younger than half its validity, the held list is served (from this
process's memory while the row still names it). Otherwise the list is signed again under the
row's lock, after applying the journal, and stored in the same transaction. The cards table
is never read to serve a list.

Counters refuse a different list with the ``iat`` they hold, so no two different lists of
one list id may share an ``iat``: a new list is signed under the row's lock with
``iat = max(now, last_iat + 1 s)``, from the statuses as of the journal read after taking
the lock; whichever process or instance signs next signs later.

With ``batch`` (``FMCARD_STATUS_LIST_BATCH_SECONDS``), a list signed less than that long ago
is served as is although changes wait: at most one signing per list per ``batch``, and a
revocation reaches counters up to ``batch`` later (plus their own polling interval).

The bundle is rebuilt only when one of its parts changes (the trust list file, a list's
signed token, the signed policies) and kept in memory with its ETag.

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

from sqlalchemy import exists
from sqlalchemy import select as select_columns  # five columns: more than sqlmodel's typing
from sqlmodel import Session, col, select

from cardissuer.errors import NotFoundError
from cardissuer.models import StatusChangeRecord, StatusListRecord
from cardissuer.services import statuses as journal
from keys.signer import Signer
from keys.status_list import StatusList, sign_status_list
from keys.store import write_file
from verifier.bundle import build_bundle_document
from verifier.policy import Policy

_LIST_ID = re.compile(r"[0-9A-Za-z_-]{1,16}")
_COMPRESSION_LEVEL = 4
"""zlib level of signed status lists (the smaller of the default and filtered strategies).
Measured on a list of 2**20 entries holding half a million cards (bench scale, 1,000,000
persons): level 4 gives 82.9 KB in 23 ms, level 7 84.0 KB in 137 ms, level 9 81.5 KB in
854 ms; on a nearly empty list level 4 is 20.6 KB against 16.9 KB at level 7."""


class SigningNeededError(Exception):
    """A list must be signed (or its journal applied): not possible in a read-only
    transaction; the caller retries in a writing one. Never leaves the publishing route."""


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
        batch: timedelta = timedelta(0),
    ) -> None:
        self.issuer_id = issuer_id
        self.signer = signer
        self.status_uri_prefix = status_uri_prefix
        self.validity = validity
        self.published_dir = published_dir
        self.policies = policies or []
        self.batch = batch
        self._cache: dict[str, tuple[int, Published]] = {}
        self._files: dict[str, tuple[tuple[int, int, int], Any]] = {}
        self._bundle: tuple[tuple[Any, ...], Published] | None = None
        self._anchors: list[Any] = []
        self._lock = threading.Lock()

    def status_list(
        self, session: Session, list_id: str, *, at: datetime, sign: bool = True
    ) -> Published:
        """The list as signed last, or signed now; with ``sign`` false, raise
        :class:`SigningNeededError` instead of signing (``session`` may be read-only)."""
        heads = self._heads(session, list_id) if _LIST_ID.fullmatch(list_id) else []
        if not heads:
            raise NotFoundError("no such status list")
        return self._from_head(session, heads[0], at=at, sign=sign)

    def _heads(self, session: Session, list_id: str | None) -> list[Any]:
        """``(list_id, size, bits, last_iat, signed_digest, changed)`` of one list, or of
        every list in one query (a bundle's 304 then costs one query however many lists a
        large registry has: about two per million cards)."""
        pending = exists().where(col(StatusChangeRecord.list_id) == col(StatusListRecord.list_id))
        query = select_columns(
            col(StatusListRecord.list_id),
            col(StatusListRecord.size),
            col(StatusListRecord.bits),
            col(StatusListRecord.last_iat),
            col(StatusListRecord.signed_digest),
            pending,
        )
        if list_id is not None:
            query = query.where(col(StatusListRecord.list_id) == list_id)
        return list(session.execute(query.order_by(col(StatusListRecord.list_id))).all())

    def _from_head(self, session: Session, head: Any, *, at: datetime, sign: bool) -> Published:
        list_id, size, bits, last_iat, digest, changed = head
        if (
            last_iat is not None
            and digest == self._shape(list_id, size, bits)
            and self._fresh(last_iat, at)
            and (not changed or self._batching(last_iat, at))
        ):
            served = self._held(session, list_id, last_iat, at=at)
            if served is not None:
                return served
        if not sign:
            raise SigningNeededError(list_id)
        return self._sign(session, list_id, at=at)

    def _sign(self, session: Session, list_id: str, *, at: datetime) -> Published:
        """Apply the list's journal and sign it, under its row's lock, with an ``iat`` later
        than any before it."""
        record = session.exec(
            select(StatusListRecord)
            .where(StatusListRecord.list_id == list_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        # The journal is read once the lock is held: a list signed after this one (with a
        # later iat) then holds every change this one holds.
        applied = journal.apply_pending(session, record)
        shape = self._shape(list_id, record.size, record.bits)
        if (
            not applied
            and record.last_iat is not None
            and record.signed_digest == shape
            and record.signed_token
            and self._fresh(record.last_iat, at)
        ):  # another process signed these statuses while this one waited for the lock
            return self._remember(list_id, record.last_iat, record.signed_token, at=at)
        iat = max(int(at.timestamp()), (record.last_iat or 0) + 1)
        issued = datetime.fromtimestamp(iat, UTC)
        token = sign_status_list(
            StatusList(record.size, record.bits, record.statuses),
            uri=self.status_uri_prefix + list_id,
            signer=self.signer,
            issued_at=issued,
            expires_at=issued + self.validity,
            ttl=self._max_age,
            # Signed under the row's lock (on SQLite, the database's write lock): a level
            # that costs tens of milliseconds, not hundreds, for a list as small.
            level=_COMPRESSION_LEVEL,
        )
        record.last_iat, record.signed_digest, record.signed_token = iat, shape, token
        session.add(record)
        session.flush()
        return self._remember(list_id, iat, token, at=at)

    def _shape(self, list_id: str, size: int, bits: int) -> str:
        """Digest of what a list is signed as besides its statuses (which only change through
        the journal): a list signed by a key since rotated away, or for another URI, is
        signed again."""
        shape = [size, bits, self.status_uri_prefix + list_id, self.signer.kid]
        return hashlib.sha256(json.dumps(shape).encode()).hexdigest()

    def _batching(self, last_iat: int, at: datetime) -> bool:
        """Whether waiting changes may wait: the list was signed less than ``batch`` ago."""
        return bool(self.batch) and at - datetime.fromtimestamp(last_iat, UTC) < self.batch

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

    def list_ids(self, session: Session) -> list[str]:
        return list(
            session.exec(
                select(StatusListRecord.list_id).order_by(col(StatusListRecord.list_id))
            ).all()
        )

    def status_lists(self, session: Session, *, at: datetime, sign: bool = True) -> list[Published]:
        return [
            self._from_head(session, head, at=at, sign=sign) for head in self._heads(session, None)
        ]

    def trust_list(self) -> Published:
        """The trust list file as published; read again only when the file changes."""
        path = self.published_dir / "trust-list.jwt"

        def read() -> Published:
            body = path.read_bytes()
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            return _published(body, "application/jwt", modified, max_age=3600)

        try:
            published: Published = self._file(path, read)
        except FileNotFoundError:
            raise NotFoundError(
                "no trust list has been published yet (fmcard trust-list)"
            ) from None
        return published

    def _file(self, path: Path, read: Any) -> Any:
        """What ``read`` made of ``path``, made again only when the file's identity (inode,
        size, modification time) changes: a replaced file always gets a new inode."""
        info = path.stat()
        identity = (info.st_ino, info.st_size, info.st_mtime_ns)
        with self._lock:
            held = self._files.get(str(path))
        if held is not None and held[0] == identity:
            return held[1]
        value = read()
        with self._lock:
            self._files[str(path)] = (identity, value)
        return value

    def jwks(self, keys: dict[str, Any], *, at: datetime) -> Published:
        return _published(json.dumps(keys).encode(), "application/jwk-set+json", at, max_age=3600)

    def bundle(
        self, session: Session, *, anchors: list[Any], at: datetime, sign: bool = True
    ) -> Published:
        """The trust list, every status list and the policies; last modified when the newest
        of its parts was. Built again only when a part changed. ``sign``: as for
        :meth:`status_list`."""
        trust = self.trust_list()
        lists = self.status_lists(session, at=at, sign=sign)
        policies = self.signed_policies(at=at) if self.issuer_id else None
        parts = (tuple(map(id, anchors)), trust.etag, tuple(p.etag for p in lists), policies)
        with self._lock:
            held = self._bundle
        if held is not None and held[0] == parts:
            return held[1]
        document = build_bundle_document(
            anchors=anchors,
            trust_list=trust.body.decode(),
            status_lists=[p.body.decode() for p in lists],
            signed_policies=[policies] if policies else None,
        )
        body = (json.dumps(document, indent=1) + "\n").encode()
        modified = max([trust.last_modified, *(p.last_modified for p in lists)])
        published = _published(body, "application/json", modified, max_age=300)
        with self._lock:
            # The anchors are kept with the key: their ids stay theirs while it is held.
            self._bundle, self._anchors = (parts, published), list(anchors)
        return published

    def signed_policies(self, *, at: datetime) -> str:
        """The counter policies (the package's per-counter defaults, or those given) signed by
        the issuing key, kept in ``published/policies.jwt``: re-signed with the next version
        only when they change, since counters refuse a changed policy under an old version."""
        import base64

        from verifier.policy import counter_types, sign_policies

        policies = self.policies or [kind.policy for kind in counter_types().values()]
        path = self.published_dir / "policies.jwt"
        wanted = sorted(json.dumps(p.to_json(), sort_keys=True) for p in policies)

        def held() -> tuple[str, Any]:
            token = path.read_text(encoding="ascii").strip()
            payload = token.split(".")[1]
            return token, json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

        version = 1
        if path.exists():
            token, claims = self._file(path, held)
            if claims.get("iss") == self.issuer_id and wanted == sorted(
                json.dumps(p, sort_keys=True) for p in claims.get("policies", [])
            ):
                return str(token)
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
