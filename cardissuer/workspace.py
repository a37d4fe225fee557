"""The offline issuing workspace behind the ``fmcard`` command line.

One directory holds what a small issuer needs without a database::

    keys/                   the key ring (keys.keyring)
    status/<list>.bin       the statuses of one list, 2 bits per card
    status/<list>.used      which indexes were ever handed out (never reused)
    cards/<serial>.json     each issued card: its claims and QR text (the issuer's copy)
    published/              what counters fetch: trust-list.jwt, jwks.json,
                            status/<list>.jwt, bundle.json

Every write is atomic (temporary file and rename) and the workspace is locked while a
command runs, so two commands cannot hand out the same status index. The issuer service
keeps the same things in its database.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cardissuer.card_request import CardRequest
from cardissuer.errors import WorkspaceError
from cardissuer.portrait import MAX_QR_TEXT, MAX_QR_VERSION, portrait_candidates
from keys.cards import encode_card
from keys.keyring import IssuerInfo, KeyRing
from keys.signer import Signer
from keys.status_list import CardStatus, StatusList, sign_status_list
from keys.store import Passphrase, write_file
from keys.trust_list import sign_trust_list
from schemas import code as foreigner_code
from schemas.card import Card, StatusRef
from verifier.bundle import build_bundle_document
from verifier.policy import Policy

DEFAULT_ISSUER = IssuerInfo(
    issuer_id="CN-ZJ-YWPSB",
    name_en="Yiwu Public Security Bureau",
    name_zh="义乌市公安局",
    status_uri_prefix="https://fmcard.example/status/",
)
"""The issuer of development workspaces and the demo (``fmcard init`` can name another)."""

LIST_SIZE = 131_072
"""Statuses per list. A list is closed when half its indexes are used, so random allocation
stays quick and an index says little about how many cards exist."""

LIST_FILL_LIMIT = LIST_SIZE // 2
MAX_PORTRAIT_QR_VERSION = MAX_QR_VERSION
MAX_PORTRAIT_QR_TEXT = MAX_QR_TEXT
"""The largest QR a card with portrait may have (see :mod:`cardissuer.portrait`)."""
STATUS_BITS = 2
SERVICE_DATABASE = "fmcard.db"
"""The issuer service's SQLite file in its workspace (``Settings.database_url``'s default)."""
DATABASE_URL_ENV = "FMCARD_DATABASE_URL"
SERIAL_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True, slots=True)
class IssuedCard:
    """A card the workspace signed."""

    card: Card
    qr_text: str
    portrait: bytes | None


@dataclass(frozen=True, slots=True)
class PublishSettings:
    """How long what the workspace publishes stays valid."""

    trust_list_validity: timedelta = timedelta(days=30)
    status_list_validity: timedelta = timedelta(days=7)
    status_list_ttl: timedelta = timedelta(hours=1)


class Workspace:
    """Issue, revoke and publish from one directory."""

    def __init__(self, directory: Path, passphrase: Passphrase) -> None:
        self.directory = directory
        self.passphrase = passphrase

    @property
    def keyring(self) -> KeyRing:
        return KeyRing.load(self.directory / "keys")

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        issuer: IssuerInfo,
        passphrase: Passphrase,
        at: datetime,
        algorithm: str = "ES256",
    ) -> Workspace:
        """Create keys and the first status list in a new workspace directory."""
        directory.mkdir(parents=True, exist_ok=True)
        KeyRing.create(
            directory / "keys", issuer=issuer, passphrase=passphrase, at=at, algorithm=algorithm
        )
        workspace = cls(directory, passphrase)
        with workspace.locked():
            workspace._new_list("1")
        return workspace

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the workspace lock (one command at a time)."""
        if not (self.directory / "keys").is_dir():
            raise WorkspaceError(f"{self.directory} is not an fmcard workspace (run 'fmcard init')")
        with open(self.directory / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def issue(
        self,
        request: CardRequest,
        *,
        at: datetime,
        portrait: bytes | None = None,
        photo: bytes | None = None,
    ) -> IssuedCard:
        """Sign a card for ``request`` (serial and status index are assigned here), record it.

        Give either an encoded ``portrait`` or a ``photo``, from which the best portrait that
        keeps the QR within :data:`MAX_PORTRAIT_QR_VERSION` is made. The card is signed before
        anything is written, so a failure leaves no record and no used-up index.
        """
        with self.locked():
            ring = self.keyring
            list_id, used = self._open_list()
            index = _free_index(used)
            card = request.to_card(
                issuer=ring.issuer.issuer_id,
                serial=self._new_serial(),
                status=StatusRef(list_id, index),
                at=at,
                code=foreigner_code.generate(),
            )
            signer = ring.signer(at, self.passphrase)
            if photo is not None:
                portrait, qr_text = _fit_portrait(card, signer, photo)
            else:
                qr_text = encode_card(card, signer, portrait=portrait)
            used[index >> 3] |= 1 << (index & 7)
            self._write_record(card, qr_text)
            write_file(self._list_path(list_id, "used"), bytes(used))
            return IssuedCard(card, qr_text, portrait)

    def set_status(self, serial: str, status: CardStatus) -> Card:
        """Set the status of the card with ``serial`` (revoke, suspend, reinstate...)."""
        with self.locked():
            card = self.card(serial)
            statuses = self._statuses(card.status.list_id)
            statuses[card.status.index] = status
            write_file(self._list_path(card.status.list_id, "bin"), statuses.to_bytes())
            return card

    def card(self, serial: str) -> Card:
        path = self.directory / "cards" / f"{serial}.json"
        if not serial.isalnum() or not path.exists():
            if self.is_service_workspace():  # its cards are in the service's database
                raise WorkspaceError(
                    f"no card with serial {serial!r} in this workspace: {self.directory} is the "
                    "issuer service's workspace, whose cards are in its database; a supervisor "
                    "revokes, suspends or reinstates them in the console or with POST "
                    "/api/cards/{serial}/revoke (with a reason), /suspend or /reinstate"
                )
            raise WorkspaceError(f"no card with serial {serial!r} in this workspace")
        record = json.loads(path.read_text(encoding="utf-8"))
        return Card.from_claims(record["claims"])

    def status_of(self, serial: str) -> CardStatus:
        card = self.card(serial)
        return CardStatus(self._statuses(card.status.list_id)[card.status.index])

    def publish_trust_list(self, *, at: datetime, validity: timedelta) -> str:
        """Sign the next trust list version with the anchor; write and return it."""
        with self.locked():
            ring = self.keyring
            trust_list = ring.trust_list(self.passphrase, at=at, validity=validity)
            token = sign_trust_list(trust_list, ring.anchor_signer(self.passphrase))
            published = self.directory / "published"
            write_file(published / "trust-list.jwt", token.encode())
            write_file(published / "jwks.json", _json(ring.jwks(self.passphrase)))
            return token

    def publish_status_lists(
        self, *, at: datetime, validity: timedelta, ttl: timedelta
    ) -> list[str]:
        """Sign every status list with the active key; write and return the tokens.

        Each list is signed with ``iat = max(at, its last iat + 1 s)`` (kept in
        ``status/<id>.iat``): counters refuse a different list with the ``iat`` they hold, so
        two publications within one second must not share it."""
        with self.locked():
            ring = self.keyring
            signer = ring.signer(at, self.passphrase)
            tokens = []
            for list_id in self._list_ids():
                issued = self._next_iat(list_id, at)
                token = sign_status_list(
                    self._statuses(list_id),
                    uri=ring.issuer.status_uri_prefix + list_id,
                    signer=signer,
                    issued_at=issued,
                    expires_at=issued + validity,
                    ttl=int(ttl.total_seconds()),
                )
                write_file(
                    self.directory / "published" / "status" / f"{list_id}.jwt", token.encode()
                )
                tokens.append(token)
            return tokens

    def publish(
        self,
        *,
        at: datetime,
        settings: PublishSettings | None = None,
        policies: list[Policy] | None = None,
    ) -> dict[str, Any]:
        """Sign a new trust list and every status list and write the verifier bundle.

        Refused for the issuer service's workspace (its cards, and so its status lists, are in
        the service's database, not here): the bundle would carry no status list, and counters
        holding the service's lists refuse a bundle that drops them. ``fmcard publish --to
        DIR`` publishes the service's documents.
        """
        settings = settings or PublishSettings()
        if not self._issued_any() and self.is_service_workspace():
            raise WorkspaceError(
                f"{self.directory} is the issuer service's workspace: its cards are in the "
                "service's database; use 'fmcard publish --to DIR' (nothing was written)"
            )
        trust_token = self.publish_trust_list(at=at, validity=settings.trust_list_validity)
        status_tokens = self.publish_status_lists(
            at=at, validity=settings.status_list_validity, ttl=settings.status_list_ttl
        )
        with self.locked():
            bundle = build_bundle_document(
                anchors=[self.keyring.anchor_public_key(self.passphrase)],
                trust_list=trust_token,
                status_lists=status_tokens,
                policies=policies,
            )
            write_file(self.directory / "published" / "bundle.json", _json(bundle))
        return bundle

    def _issued_any(self) -> bool:
        return any((self.directory / "cards").glob("*.json"))

    def is_service_workspace(self) -> bool:
        """Whether the issuer service keeps its database with this workspace: its SQLite file
        is here, or ``FMCARD_DATABASE_URL`` names the service's database."""
        return (self.directory / SERVICE_DATABASE).exists() or bool(
            os.environ.get(DATABASE_URL_ENV)
        )

    # -- status lists ---------------------------------------------------------------------

    def _list_path(self, list_id: str, suffix: str) -> Path:
        return self.directory / "status" / f"{list_id}.{suffix}"

    def _list_ids(self) -> list[str]:
        return sorted((path.stem for path in (self.directory / "status").glob("*.bin")), key=int)

    def _new_list(self, list_id: str) -> None:
        empty = bytes(LIST_SIZE * STATUS_BITS // 8)
        write_file(self._list_path(list_id, "bin"), empty)
        write_file(self._list_path(list_id, "used"), bytes(LIST_SIZE // 8))

    def _next_iat(self, list_id: str, at: datetime) -> datetime:
        """The ``iat`` of the list's next signature, recorded before it is used (the caller
        holds the workspace lock)."""
        path = self._list_path(list_id, "iat")
        try:
            last = int(path.read_text(encoding="ascii"))
        except FileNotFoundError:
            last = 0
        except ValueError:
            raise WorkspaceError(f"{path} is damaged: it must hold one integer") from None
        iat = max(int(at.timestamp()), last + 1)
        write_file(path, str(iat).encode("ascii"))
        return datetime.fromtimestamp(iat, UTC)

    def _statuses(self, list_id: str) -> StatusList:
        return StatusList(LIST_SIZE, STATUS_BITS, self._list_path(list_id, "bin").read_bytes())

    def _open_list(self) -> tuple[str, bytearray]:
        """Return the newest list with room, opening a new one when it is half full."""
        ids = self._list_ids()
        if not ids:
            raise WorkspaceError("the workspace has no status list; it is damaged")
        used = bytearray(self._list_path(ids[-1], "used").read_bytes())
        if sum(bin(byte).count("1") for byte in used) < LIST_FILL_LIMIT:
            return ids[-1], used
        new_id = str(int(ids[-1]) + 1)
        self._new_list(new_id)
        return new_id, bytearray(LIST_SIZE // 8)

    # -- cards ----------------------------------------------------------------------------

    def _new_serial(self) -> str:
        while True:
            serial = "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(10))
            if not (self.directory / "cards" / f"{serial}.json").exists():
                return serial

    def _write_record(self, card: Card, qr_text: str) -> None:
        record = {"claims": card.to_claims(), "qr": qr_text}
        write_file(self.directory / "cards" / f"{card.serial}.json", _json(record), mode=0o600)


def _fit_portrait(card: Card, signer: Signer, photo: bytes) -> tuple[bytes, str]:
    """The best-quality portrait whose card still fits :data:`MAX_PORTRAIT_QR_TEXT`."""
    qr_text = ""
    for candidate in portrait_candidates(photo):
        qr_text = encode_card(card, signer, portrait=candidate.data)
        if len(qr_text) <= MAX_PORTRAIT_QR_TEXT:
            return candidate.data, qr_text
    raise WorkspaceError(
        f"the card is too large for a QR of version {MAX_PORTRAIT_QR_VERSION} even with the "
        f"smallest portrait ({len(qr_text)} characters); shorten the native or Chinese name"
    )


def _free_index(used: bytearray) -> int:
    """A random index not handed out before (the list is at most half full)."""
    while True:
        index = secrets.randbelow(LIST_SIZE)
        if not used[index >> 3] & (1 << (index & 7)):
            return index


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
