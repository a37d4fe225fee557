"""Database tables of the issuer, and the request and response models of its API.

Table classes end in ``Record`` (``CardRecord``, not ``schemas.Card``). Request models are
separate classes that forbid unknown fields, so a client can never set an id, a status, an
office, an issuing officer or a timestamp (mass assignment); responses are their own models
too and never carry password hashes or photos unless asked.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    inspect,
)
from sqlmodel import Field as DbField
from sqlmodel import SQLModel

from cardissuer.email_address import check_email
from cardissuer.services.search_key import FOLDED_COLUMNS, FOLDED_LENGTH, fold, folded_names
from schemas.countries import NATIONALITY_CODES

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Role(enum.StrEnum):
    """What an officer may do (see ``cardissuer.services.access``)."""

    REGISTRAR = "registrar"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"


class PassportState(enum.StrEnum):
    CURRENT = "current"
    REPLACED = "replaced"
    EXPIRED = "expired"
    LOST = "lost"
    STOLEN = "stolen"


class CardState(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"


# --- tables -------------------------------------------------------------------------------


class OfficeRecord(SQLModel, table=True):
    __tablename__ = "office"

    id: int | None = DbField(default=None, primary_key=True)
    code: str = DbField(unique=True, max_length=32)
    name_en: str = DbField(max_length=128)
    name_zh: str = DbField(max_length=128)
    created_at: datetime = DbField(default_factory=utcnow)


class OfficerRecord(SQLModel, table=True):
    __tablename__ = "officer"

    id: int | None = DbField(default=None, primary_key=True)
    office_id: int = DbField(foreign_key="office.id", index=True)
    username: str = DbField(unique=True, max_length=64)
    display_name: str = DbField(max_length=128)
    role: Role
    password_hash: str = DbField(max_length=256)
    active: bool = True
    created_at: datetime = DbField(default_factory=utcnow)


def _folded(key: str) -> Column[Any]:
    """A search-key column whose insert default is the key of its name, read from the row
    being inserted: one place computes it for a registration and for a bulk load alike."""
    source = FOLDED_COLUMNS[key]

    def default(context: Any) -> str | None:
        value = context.get_current_parameters().get(source)
        return None if value is None else fold(value)

    default_of: Callable[[Any], str | None] = default
    return Column(key, String(FOLDED_LENGTH), nullable=True, default=default_of)


class PersonRecord(SQLModel, table=True):
    """A registered foreigner: small, fixed-size values only. Every search, list and
    duplicate check reads these rows, so the portrait lives in ``person_portrait``."""

    __tablename__ = "person"
    # The list of an office's persons, newest first, a page at a time (keyset on the id).
    # The duplicate check reads only (nationality, birth_date, name_key, id, office_id):
    # this index holds them all, so it never visits the table (an index-only scan).
    # The name-search indexes are not declared here: see cardissuer.core.search_index.
    __table_args__ = (
        Index("ix_person_office_id_id", "office_id", "id"),
        Index(
            "ix_person_duplicates",
            "nationality",
            "birth_date",
            "name_key",
            "id",
            "office_id",
        ),
    )

    id: int | None = DbField(default=None, primary_key=True)
    code: str = DbField(unique=True, max_length=10)
    office_id: int = DbField(foreign_key="office.id", index=True)
    family_name: str = DbField(max_length=64)
    given_names: str = DbField(default="", max_length=64)
    native_name: str | None = DbField(default=None, max_length=64)
    chinese_name: str | None = DbField(default=None, max_length=64)
    name_key: str = DbField(index=True, max_length=64)
    nationality: str = DbField(max_length=3, index=True)
    birth_date: int = DbField(index=True)  # YYYYMMDD, 00 for unknown month/day
    sex: str = DbField(default="X", max_length=1)
    phone: str | None = DbField(default=None, max_length=32)
    email: str | None = DbField(default=None, max_length=128)
    created_at: datetime = DbField(default_factory=utcnow)
    created_by: int = DbField(foreign_key="officer.id")
    updated_at: datetime = DbField(default_factory=utcnow)
    # The names' search keys (cardissuer.services.search_key), which the name-search indexes
    # cover: computed here, on every insert (ORM or bulk) and on a change of a name.
    folded_family: str | None = DbField(default=None, sa_column=_folded("folded_family"))
    folded_given: str | None = DbField(default=None, sa_column=_folded("folded_given"))
    folded_native: str | None = DbField(default=None, sa_column=_folded("folded_native"))
    folded_chinese: str | None = DbField(default=None, sa_column=_folded("folded_chinese"))


@event.listens_for(PersonRecord, "before_update")
def _refold(_mapper: Any, _connection: Any, person: PersonRecord) -> None:
    """A person whose names change gets their new search keys in the same UPDATE. (A bulk
    UPDATE of names, outside the ORM, must set them itself: ``search_key.folded_names``;
    ``fmcard db rebuild-search`` recomputes every person's.)"""
    state = inspect(person)
    if any(state.attrs[name].history.has_changes() for name in FOLDED_COLUMNS.values()):
        names = {name: getattr(person, name) for name in FOLDED_COLUMNS.values()}
        for key, value in folded_names(names).items():
            setattr(person, key, value)


class PersonPortraitRecord(SQLModel, table=True):
    """A person's portrait (the AVIF that cards carry, about 500 bytes), apart from the
    ``person`` row: read only where it is shown or signed (``cardissuer.services.blobs``)."""

    __tablename__ = "person_portrait"

    person_id: int = DbField(
        sa_column=Column(Integer, ForeignKey("person.id"), primary_key=True, autoincrement=False)
    )
    data: bytes = DbField(sa_column=Column(LargeBinary, nullable=False))


class PassportRecord(SQLModel, table=True):
    __tablename__ = "passport"
    __table_args__ = (UniqueConstraint("issuing_country", "number", name="uq_passport_number"),)

    id: int | None = DbField(default=None, primary_key=True)
    person_id: int = DbField(foreign_key="person.id", index=True)
    number: str = DbField(max_length=20, index=True)
    issuing_country: str = DbField(max_length=3)
    expires_on: date | None = None
    state: PassportState = PassportState.CURRENT
    recorded_at: datetime = DbField(default_factory=utcnow)
    recorded_by: int = DbField(foreign_key="officer.id")


class GrantRecord(SQLModel, table=True):
    """An entitlement to one service, with its own validity window."""

    __tablename__ = "grant"

    id: int | None = DbField(default=None, primary_key=True)
    person_id: int = DbField(foreign_key="person.id", index=True)
    service: str = DbField(max_length=8)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    granted_at: datetime = DbField(default_factory=utcnow)
    granted_by: int = DbField(foreign_key="officer.id")
    withdrawn_at: datetime | None = None
    withdrawn_by: int | None = DbField(default=None, foreign_key="officer.id")


class CardRecord(SQLModel, table=True):
    __tablename__ = "card"
    __table_args__ = (
        UniqueConstraint("list_id", "status_index", name="uq_card_status_index"),
        # The expiry timer's "current cards past their expiry" without reading every card.
        Index("ix_card_state_expires_at", "state", "expires_at"),
    )

    id: int | None = DbField(default=None, primary_key=True)
    serial: str = DbField(unique=True, max_length=16)
    person_id: int = DbField(foreign_key="person.id", index=True)
    office_id: int = DbField(foreign_key="office.id", index=True)
    state: CardState = DbField(default=CardState.ACTIVE, index=True)
    list_id: str = DbField(max_length=16)
    status_index: int
    issued_at: datetime
    valid_from: datetime
    expires_at: datetime
    kid: str = DbField(max_length=64)
    claims_digest: str = DbField(max_length=64)
    issued_by: int = DbField(foreign_key="officer.id")
    idempotency_key: str | None = DbField(default=None, unique=True, max_length=128)
    superseded_by: int | None = DbField(default=None, foreign_key="card.id")
    revoked_reason: str | None = DbField(default=None, max_length=256)
    state_changed_at: datetime = DbField(default_factory=utcnow)
    kind: str = DbField(
        default="printed", max_length=8, sa_column_kwargs={"server_default": "printed"}
    )
    """``printed`` (version 1, ``FM1:``) or ``phone`` (version 2, bound to ``device_jwk``).
    Each kind has its own current card; one never supersedes the other (FORMAT.md 11.6)."""
    device_jwk: str | None = DbField(default=None, max_length=256)
    """A phone card's device public key (compact JWK JSON), to re-issue it for the same phone."""


class CardTextRecord(SQLModel, table=True):
    """A card's signed QR text (up to about 1,300 characters with a portrait), apart from the
    ``card`` row that every state change, expiry sweep and list reads."""

    __tablename__ = "card_text"

    card_id: int = DbField(
        sa_column=Column(Integer, ForeignKey("card.id"), primary_key=True, autoincrement=False)
    )
    qr_text: str = DbField(sa_column=Column(Text, nullable=False))


class StatusListRecord(SQLModel, table=True):
    """A status list: its size and bits, and its statuses packed as counters receive them.

    A card's status change never updates this row: every change would take this one row's
    lock, which concurrent transactions took in different orders (a deadlock on PostgreSQL).
    It is written to the ``status_change`` journal instead, and the publisher applies the
    journal to ``statuses`` under this row's lock (``cardissuer.services.statuses``)."""

    __tablename__ = "status_list"

    list_id: str = DbField(primary_key=True, max_length=16)
    bits: int = 2
    size: int
    created_at: datetime = DbField(default_factory=utcnow)
    last_iat: int | None = DbField(default=None, sa_type=BigInteger)
    """``iat`` (seconds since 1970) of the last signed list: the next is signed later, so no
    two different lists share an ``iat`` (counters refuse that as a rollback). Only the
    publisher writes it, under this row's lock."""
    signed_digest: str | None = DbField(default=None, max_length=64)
    """Digest of the statuses the last signed list was made from."""
    signed_token: str | None = DbField(default=None, sa_column=Column(Text, nullable=True))
    """The last signed list: every instance serves the same document until it changes."""
    statuses: bytes | None = DbField(default=None, sa_column=Column(LargeBinary, nullable=True))
    """The packed statuses (``bits`` per card) as of the journal entries applied so far;
    none yet means all valid. 256 KB at a million cards: read only to sign."""


class StatusChangeRecord(SQLModel, table=True):
    """One card status change not yet applied to its list's ``statuses``.

    Written in the transaction that changes the card (``cardissuer.services.statuses``), so
    it exists exactly when the change does; the publisher applies and deletes it."""

    __tablename__ = "status_change"
    __table_args__ = (Index("ix_status_change_list", "list_id", "id"),)

    id: int | None = DbField(default=None, primary_key=True)
    list_id: str = DbField(max_length=16)
    status_index: int
    status: int


class AuditRecord(SQLModel, table=True):
    """One entry of the append-only, hash-chained audit log."""

    __tablename__ = "audit"

    id: int | None = DbField(default=None, primary_key=True)
    seq: int = DbField(unique=True)
    at: datetime
    officer_id: int | None = DbField(default=None, index=True)
    office_id: int | None = DbField(default=None, index=True)
    action: str = DbField(max_length=64)
    record_type: str = DbField(max_length=32)
    record_id: str = DbField(max_length=64)
    outcome: str = DbField(max_length=16)  # "ok" or "denied"
    before_digest: str | None = DbField(default=None, max_length=64)
    after_digest: str | None = DbField(default=None, max_length=64)
    detail: str = DbField(default="", max_length=256)
    prev_hash: str = DbField(max_length=64)
    entry_hash: str = DbField(max_length=64)


class AuditCheckpointRecord(SQLModel, table=True):
    """A signed statement of the chain head: truncation after it is detectable."""

    __tablename__ = "audit_checkpoint"

    id: int | None = DbField(default=None, primary_key=True)
    seq: int
    entry_hash: str = DbField(max_length=64)
    at: datetime
    signature: str  # compact JWS signed by the issuing key


class AuditHeadRecord(SQLModel, table=True):
    """The single row whose lock serialises appends to the audit chain."""

    __tablename__ = "audit_head"

    id: int = DbField(default=1, primary_key=True)
    seq: int = 0
    entry_hash: str = DbField(default="0" * 64, max_length=64)


class LoginAttemptRecord(SQLModel, table=True):
    """Failed logins per username, for rate limiting across service instances."""

    __tablename__ = "login_attempt"

    id: int | None = DbField(default=None, primary_key=True)
    username: str = DbField(max_length=64, index=True)
    at: datetime = DbField(index=True)


class RevokedSessionRecord(SQLModel, table=True):
    """A session token ended before its expiry (logout): refused from then on. Rows are kept
    until the token would have expired anyway, then pruned."""

    __tablename__ = "revoked_session"

    jti: str = DbField(primary_key=True, max_length=64)
    expires_at: datetime = DbField(index=True)


class DuplicateReviewRecord(SQLModel, table=True):
    """An officer's decision on a suspected duplicate registration."""

    __tablename__ = "duplicate_review"

    id: int | None = DbField(default=None, primary_key=True)
    person_id: int = DbField(foreign_key="person.id")
    candidate_ids: str = DbField(max_length=256)  # comma-separated person ids
    decision: str = DbField(max_length=16)  # "new" or "linked"
    decided_by: int = DbField(foreign_key="officer.id")
    decided_at: datetime = DbField(default_factory=utcnow)


# --- requests -----------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)

# Bidirectional embeddings, overrides and isolates make text display differently from what
# was stored (log and screen spoofing); they have no place in any field of a request.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn", "Zl", "Zp"})
EARLIEST_WINDOW = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_WINDOW = datetime(2100, 1, 1, tzinfo=UTC)


def check_text(value: str) -> str:
    """Refuse control, surrogate, private-use, unassigned and bidi-control characters.

    Such characters cannot be stored by PostgreSQL (NUL), break logs and screens, or spoof
    what an officer sees; the message never repeats the submitted value."""
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES or char in _BIDI_CONTROLS:
            raise ValueError(f"contains a control or invisible character (U+{ord(char):04X})")
    return value


def _country(value: str) -> str:
    value = value.upper()
    if value not in NATIONALITY_CODES:
        raise ValueError("not an ISO 3166-1 alpha-3 or ICAO country code")
    return value


class RequestModel(BaseModel):
    """Base of every request body: unknown fields are refused (a client can never set ids,
    states, offices, officers or timestamps) and text may not hold control characters."""

    model_config = _STRICT

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, value: Any) -> Any:
        if isinstance(value, str):
            check_text(value)
        return value


class PassportIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"number": "K1234567", "issuing_country": "SAU", "expires_on": "2031-05-01"}
            ]
        }
    )

    number: str = Field(min_length=3, max_length=20, pattern=r"^[A-Za-z0-9<]+$")
    issuing_country: str = Field(min_length=3, max_length=3)
    expires_on: date | None = None

    @field_validator("number")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("issuing_country")
    @classmethod
    def _issuing_country(cls, value: str) -> str:
        return _country(value)


class PersonCreate(RequestModel):
    """Register a foreigner. The persistent code, office and officer are assigned."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "family_name": "AL-HASHIMI",
                    "given_names": "MOHAMMED",
                    "native_name": "محمد الهاشمي",
                    "chinese_name": "穆罕默德",
                    "nationality": "SAU",
                    "birth_date": "1985-03-14",
                    "sex": "M",
                    "phone": "+86 579 8555 0100",
                    "passport": {"number": "K1234567", "issuing_country": "SAU"},
                    "confirm_new_person": False,
                }
            ]
        },
    )

    family_name: str = Field(min_length=1, max_length=64)
    given_names: str = Field(default="", max_length=64)
    native_name: str | None = Field(default=None, max_length=64)
    chinese_name: str | None = Field(default=None, max_length=64)
    nationality: str = Field(min_length=3, max_length=3)
    birth_date: str = Field(
        pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$",
        description="YYYY-MM-DD; YYYY-MM or YYYY when the passport gives no day or month",
    )
    sex: str = Field(default="X", pattern=r"^[MFX]$")
    # Digits and the separators people write between them; nothing else reaches a page or a
    # dialler (an SMS gateway for one-time codes will read this field).
    phone: str | None = Field(default=None, max_length=32, pattern=r"^\+?[0-9 ()./-]*$")
    email: str | None = Field(default=None, max_length=128)
    passport: PassportIn
    confirm_new_person: bool = Field(
        default=False,
        description="set after reviewing suspected duplicates: register a new person anyway",
    )

    @field_validator("nationality")
    @classmethod
    def _nationality(cls, value: str) -> str:
        return _country(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else check_email(value)


class PassportChange(RequestModel):
    """A new passport replaces the current one; the person keeps the code."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "passport": {"number": "K7654321", "issuing_country": "SAU"},
                    "reason": "renewed",
                }
            ]
        }
    )

    passport: PassportIn
    reason: str = Field(default="renewed", pattern=r"^(renewed|lost|stolen|replaced)$")


class GrantCreate(RequestModel):
    """Grant one service of the catalogue, optionally only within a window (times with a zone,
    between 2000 and 2100)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"service": "hc"},
                {
                    "service": "bk",
                    "valid_from": "2026-01-01T00:00:00+08:00",
                    "valid_until": "2027-01-01T00:00:00+08:00",
                },
            ]
        }
    )

    service: str = Field(pattern=r"^[a-z][a-z0-9]{1,7}$")
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            value = value.astimezone(UTC).replace(microsecond=0)
        except OverflowError:
            raise ValueError("time outside 2000-2100") from None
        if not EARLIEST_WINDOW <= value < LATEST_WINDOW:
            raise ValueError("time outside 2000-2100")
        return value

    @model_validator(mode="after")
    def _window(self) -> GrantCreate:
        if self.valid_from and self.valid_until and self.valid_from >= self.valid_until:
            raise ValueError("valid_until must be after valid_from")
        return self


class CardIssue(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{}, {"valid_days": 365}]})

    valid_days: int | None = Field(default=None, ge=1, le=20 * 365, strict=True)  # not `true`


class PhoneCardIssue(RequestModel):
    """A phone card for the device key the holder's phone made (WebCrypto P-256)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "device_jwk": {
                        "crv": "P-256",
                        "kty": "EC",
                        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
                    }
                }
            ]
        }
    )

    device_jwk: dict[str, str] = Field(max_length=8)
    valid_days: int | None = Field(default=None, ge=1, le=20 * 365, strict=True)


class CardAction(RequestModel):
    """The reason of a suspension, reinstatement or revocation (required to revoke)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "card reported stolen by the holder"}]}
    )

    reason: str = Field(default="", max_length=256)


class CardRevoke(RequestModel):
    """The reason of a revocation: required, and kept with the card for good."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "card reported stolen by the holder"}]}
    )

    reason: str = Field(
        min_length=1, max_length=256, pattern=r"\S", description="why the card is revoked"
    )


class OfficerCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "username": "zhao.lei",
                    "display_name": "Zhao Lei 赵磊",
                    "role": "registrar",
                    "password": "correct-horse-battery-staple",
                }
            ]
        }
    )

    username: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9._-]+$")
    display_name: str = Field(min_length=1, max_length=128)
    role: Role
    password: str = Field(min_length=12, max_length=256)
    office_code: str | None = Field(
        default=None, max_length=32, description="admins only: another office"
    )


class OfficerUpdate(RequestModel):
    """A change to an officer; fields left out stay as they are."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"role": "supervisor"}, {"active": False}]}
    )

    role: Role | None = None
    active: bool | None = Field(default=None, description="false disables the account at once")
    office_code: str | None = Field(
        default=None, max_length=32, description="move the officer to this office"
    )


class OfficeCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"code": "YW-BEIYUAN", "name_en": "Beiyuan Police Station", "name_zh": "北苑派出所"}
            ]
        }
    )

    code: str = Field(min_length=2, max_length=32, pattern=r"^[A-Z0-9-]+$")
    name_en: str = Field(min_length=1, max_length=128)
    name_zh: str = Field(min_length=1, max_length=128)


class LoginIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"username": "registrar", "password": "••••••••••••"}]}
    )

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


# --- responses ----------------------------------------------------------------------------


class PassportPublic(BaseModel):
    number: str
    issuing_country: str
    state: PassportState
    expires_on: date | None
    recorded_at: datetime


class GrantPublic(BaseModel):
    id: int
    service: str
    valid_from: datetime | None
    valid_until: datetime | None
    granted_at: datetime
    withdrawn_at: datetime | None


class CardPublic(BaseModel):
    serial: str
    state: CardState
    issued_at: datetime
    valid_from: datetime
    expires_at: datetime
    kid: str
    qr_text: str
    revoked_reason: str | None
    kind: str = "printed"
    """``printed`` (``FM1:``) or ``phone`` (``FM2:``, bound to the holder's phone)."""


class PhoneCardPublic(CardPublic):
    """A phone card: ``qr_text`` is its stored form (no proof: no counter accepts it as it
    is); ``phone_card`` is the document the holder's phone keeps to present it live."""

    phone_card: dict[str, Any]


class PersonPublic(BaseModel):
    code: str
    office_code: str
    family_name: str
    given_names: str
    native_name: str | None
    chinese_name: str | None
    nationality: str
    birth_date: str
    sex: str
    phone: str | None
    email: str | None
    has_portrait: bool
    passports: list[PassportPublic]
    grants: list[GrantPublic]
    cards: list[CardPublic]


class PersonSummary(BaseModel):
    code: str
    family_name: str
    given_names: str
    nationality: str
    birth_date: str
    office_code: str


class DuplicateCandidate(BaseModel):
    code: str
    family_name: str
    given_names: str
    nationality: str
    birth_date: str
    score: float


class OfficerPublic(BaseModel):
    username: str
    display_name: str
    role: Role
    office_code: str
    active: bool


class AuditPublic(BaseModel):
    seq: int
    at: datetime
    officer_id: int | None
    office_id: int | None
    action: str
    record_type: str
    record_id: str
    outcome: str
    detail: str
    entry_hash: str


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items``, the ``total`` count and where the page starts.

    Lists that page by cursor also give ``next_cursor`` (``None`` on the last page) and may
    stop counting: ``total_capped`` then says there are more than ``total`` matches."""

    items: list[T]
    total: int
    offset: int
    limit: int
    next_cursor: str | None = None
    total_capped: bool = False
