"""The card: what the bureau signs and what a counter reads.

:class:`Card` is a frozen value that validates itself when built, so a ``Card`` in hand is
always a valid card. :meth:`Card.to_claims` and :meth:`Card.from_claims` convert to and from
the wire claims (short names, integer times); ``from_claims`` is the strict reader used on
untrusted input: unknown claims, wrong types (``True`` is not an integer), impossible dates and
names with control or bidirectional-override characters are rejected with an
:class:`InvalidClaimError` naming the claim.

The portrait is not a claim: it travels after the claims in the same signed payload
(:mod:`schemas.payload`).

Privacy: the passport number is deliberately not a field. The card identifies the person by
the persistent foreigner code; the passport history stays with the issuer.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from schemas import claims as c
from schemas import code as foreigner_code
from schemas.countries import NATIONALITY_CODES
from schemas.errors import InvalidClaimError, InvalidCodeError
from schemas.services import SERVICE_CODE_PATTERN

FORMAT_VERSION = 1
"""The printed card: unbound, every claim in clear."""
PHONE_VERSION = 2
"""The phone card: bound to a device key (``cnf``), personal claims only as disclosures."""
VERSIONS = (FORMAT_VERSION, PHONE_VERSION)
MAX_DIGESTS = 20
"""``_sd`` digests of a phone card: ``na``, ``bd``, the portrait and up to 16 entitlements."""

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_VALIDITY_DAYS = 20 * 366
"""``exp - nbf`` may be at most this many days of 86 400 seconds (632 448 000 s): twenty
years counted generously, so that leap days never matter."""
MAX_NAME_LENGTH = 64
MAX_ENTITLEMENTS = 16

_ISSUER_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9-]{1,31}")
_SERIAL_PATTERN = re.compile(r"[0-9A-Za-z_-]{4,32}")
_LIST_ID_PATTERN = re.compile(r"[0-9A-Za-z_-]{1,16}")
_DIGEST_PATTERN = re.compile(r"[0-9A-Za-z_-]{21}[AQgw]")
"""A disclosure digest: canonical base64url of 16 bytes (``schemas.disclosure``)."""
_COORDINATE_PATTERN = re.compile(r"[0-9A-Za-z_-]{42}[AEIMQUYcgkosw048]")
"""Canonical base64url of 32 bytes: the last character carries 4 bits and 2 zero bits."""
_MAX_STATUS_INDEX = 2**31 - 1

# Names refuse control, format, surrogate, private-use, unassigned and line/paragraph separator
# characters, except the zero-width (non-)joiners that Persian, Arabic and Indic scripts need:
# bidi embeddings, overrides, isolates and marks can make a name display differently from what
# was signed.
_ALLOWED_FORMAT_CHARACTERS = frozenset("\u200c\u200d")
_ASCII_NAME = re.compile(r"[A-Za-z '.,-]*")


@dataclass(frozen=True, slots=True)
class BirthDate:
    """A birth date as travel documents carry it: the month or day may be unknown (0)."""

    year: int
    month: int = 0
    day: int = 0

    def __post_init__(self) -> None:
        if not 1900 <= self.year <= 2099 or not 0 <= self.month <= 12:
            raise InvalidClaimError(c.BIRTH_DATE, "year or month out of range")
        if self.day and not self.month:
            raise InvalidClaimError(c.BIRTH_DATE, "a day without a month")
        if self.day:
            try:
                date(self.year, self.month, self.day)
            except ValueError:
                raise InvalidClaimError(c.BIRTH_DATE, "no such calendar date") from None

    @classmethod
    def from_wire(cls, value: int) -> BirthDate:
        """Read the integer ``YYYYMMDD`` form."""
        year, rest = divmod(value, 10000)
        return cls(year, *divmod(rest, 100))

    def to_wire(self) -> int:
        """Return the integer ``YYYYMMDD`` form (00 for an unknown month or day)."""
        return self.year * 10000 + self.month * 100 + self.day

    def __str__(self) -> str:
        month = f"{self.month:02d}" if self.month else "XX"
        day = f"{self.day:02d}" if self.day else "XX"
        return f"{self.year:04d}-{month}-{day}"


@dataclass(frozen=True, slots=True)
class Entitlement:
    """The right to one service, within the card's validity and, optionally, its own window."""

    service: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def __post_init__(self) -> None:
        where = f"{c.ENTITLEMENTS}.{self.service}"
        if not SERVICE_CODE_PATTERN.fullmatch(self.service):
            raise InvalidClaimError(c.ENTITLEMENTS, f"service code {self.service!r} is malformed")
        object.__setattr__(self, "valid_from", _utc_or_none(where, self.valid_from))
        object.__setattr__(self, "valid_until", _utc_or_none(where, self.valid_until))
        if self.valid_from and self.valid_until and self.valid_from >= self.valid_until:
            raise InvalidClaimError(where, "window ends before it starts")

    def covers(self, at: datetime) -> bool:
        """Return whether the entitlement's own window includes ``at``."""
        if self.valid_from is not None and at < self.valid_from:
            return False
        return self.valid_until is None or at < self.valid_until

    def to_wire(self) -> list[int | None]:
        if self.valid_from is None and self.valid_until is None:
            return []
        return [_to_seconds(self.valid_from), _to_seconds(self.valid_until)]


@dataclass(frozen=True, slots=True)
class StatusRef:
    """Where the card's status lives: an index into one of the issuer's status lists."""

    list_id: str
    index: int

    def __post_init__(self) -> None:
        if not _LIST_ID_PATTERN.fullmatch(self.list_id):
            raise InvalidClaimError(c.STATUS, "status list id is malformed")
        if not 0 <= self.index <= _MAX_STATUS_INDEX:
            raise InvalidClaimError(c.STATUS, "status index out of range")


@dataclass(frozen=True, slots=True)
class Card:
    """A Foreign Merchant Card. Building one validates and normalises every field.

    Version 1 is the printed card. Version 2 is the phone card: ``holder_key`` is required,
    and ``nationality`` and ``birth_date`` may be ``None`` because on the wire they are
    disclosures (:mod:`schemas.disclosure`) that a presentation may leave closed.
    """

    issuer: str
    code: str
    serial: str
    issued_at: datetime
    valid_from: datetime
    expires_at: datetime
    family_name: str
    nationality: str | None
    birth_date: BirthDate | None
    entitlements: tuple[Entitlement, ...]
    status: StatusRef
    given_names: str = ""
    native_name: str | None = None
    chinese_name: str | None = None
    holder_key: Mapping[str, Any] | None = field(default=None, compare=False)
    disclosure_digests: tuple[str, ...] = ()
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise InvalidClaimError(c.VERSION, f"format version {self.version} is not supported")
        if not _ISSUER_PATTERN.fullmatch(self.issuer):
            raise InvalidClaimError(c.ISSUER, "issuer id must be 2-32 of A-Z, 0-9 and '-'")
        try:
            object.__setattr__(self, "code", foreigner_code.validate(self.code))
        except InvalidCodeError as exc:
            raise InvalidClaimError(c.CODE, str(exc)) from None
        if not _SERIAL_PATTERN.fullmatch(self.serial):
            raise InvalidClaimError(c.SERIAL, "card serial must be 4-32 of A-Z a-z 0-9 _ -")
        self._check_times()
        self._check_names()
        self._check_nationality_and_birth_date()
        self._check_entitlements()
        self._check_binding()

    def _check_nationality_and_birth_date(self) -> None:
        if self.version == FORMAT_VERSION:
            if self.nationality is None:
                raise InvalidClaimError(c.NATIONALITY, "a printed card needs a nationality")
            if self.birth_date is None:
                raise InvalidClaimError(c.BIRTH_DATE, "a printed card needs a birth date")
        if self.nationality is not None and self.nationality not in NATIONALITY_CODES:
            raise InvalidClaimError(c.NATIONALITY, "not an ISO 3166-1 alpha-3 or ICAO code")
        born = self.birth_date
        if born is not None and date(born.year, born.month or 1, born.day or 1) > (
            self.issued_at.date()
        ):
            raise InvalidClaimError(c.BIRTH_DATE, "birth date is after the issue date")

    def _check_binding(self) -> None:
        """Version 1 binds nothing; version 2 is always bound to a P-256 device key."""
        if self.version == FORMAT_VERSION:
            if self.holder_key is not None:
                raise InvalidClaimError(c.HOLDER_KEY, "a version-1 card cannot be bound")
            if self.disclosure_digests:
                raise InvalidClaimError(c.DISCLOSURES, "a version-1 card has no disclosures")
            return
        if self.holder_key is None:
            raise InvalidClaimError(c.HOLDER_KEY, "a phone card needs its device key")
        _check_holder_key(self.holder_key)
        if len(self.disclosure_digests) > MAX_DIGESTS:
            raise InvalidClaimError(c.DISCLOSURES, f"more than {MAX_DIGESTS} digests")
        if len(set(self.disclosure_digests)) != len(self.disclosure_digests):
            raise InvalidClaimError(c.DISCLOSURES, "a digest is listed twice")
        for digest in self.disclosure_digests:
            if not _DIGEST_PATTERN.fullmatch(digest):
                raise InvalidClaimError(c.DISCLOSURES, "disclosure digest is malformed")

    def _check_times(self) -> None:
        for claim, name in (
            (c.ISSUED_AT, "issued_at"),
            (c.VALID_FROM, "valid_from"),
            (c.EXPIRES_AT, "expires_at"),
        ):
            value = _utc_or_none(claim, getattr(self, name))
            assert value is not None  # noqa: S101 - the field is not optional
            object.__setattr__(self, name, value)
        if self.expires_at <= self.valid_from:
            raise InvalidClaimError(c.EXPIRES_AT, "card expires before it becomes valid")
        if self.expires_at <= self.issued_at:
            raise InvalidClaimError(c.EXPIRES_AT, "card expires before it was issued")
        if self.expires_at - self.valid_from > timedelta(days=MAX_VALIDITY_DAYS):
            raise InvalidClaimError(c.EXPIRES_AT, "card validity is longer than 20 years")

    def _check_names(self) -> None:
        family = _clean_name(c.FAMILY_NAME, self.family_name)
        if not family:
            raise InvalidClaimError(c.FAMILY_NAME, "family name is empty")
        object.__setattr__(self, "family_name", family)
        object.__setattr__(self, "given_names", _clean_name(c.GIVEN_NAMES, self.given_names))
        for claim, name in ((c.FAMILY_NAME, family), (c.GIVEN_NAMES, self.given_names)):
            if not _is_latin(name):
                raise InvalidClaimError(claim, "Latin name has a character outside Latin script")
        for claim, attribute in ((c.NATIVE_NAME, "native_name"), (c.CHINESE_NAME, "chinese_name")):
            value = getattr(self, attribute)
            if value is not None:
                object.__setattr__(self, attribute, _clean_name(claim, value) or None)

    def _check_entitlements(self) -> None:
        if len(self.entitlements) > MAX_ENTITLEMENTS:
            raise InvalidClaimError(c.ENTITLEMENTS, f"more than {MAX_ENTITLEMENTS} entitlements")
        services = [entitlement.service for entitlement in self.entitlements]
        if len(set(services)) != len(services):
            raise InvalidClaimError(c.ENTITLEMENTS, "a service is listed twice")

    @property
    def latin_name(self) -> str:
        """Family and given names as printed on the card, e.g. ``ALI, MOHAMMED``."""
        return f"{self.family_name}, {self.given_names}" if self.given_names else self.family_name

    def entitlement(self, service: str) -> Entitlement | None:
        """Return the entitlement for ``service``, or ``None`` if the card has none."""
        return next((e for e in self.entitlements if e.service == service), None)

    def replace(self, **changes: Any) -> Card:
        """Return a copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def to_claims(self) -> dict[str, Any]:
        """Return the wire claims, in the order of ``docs/FORMAT.md``.

        For a phone card these are the claims as far as they are known: the signed claims
        when nothing is disclosed (what the issuer signs), with the disclosed ones merged in
        after a presentation was opened.
        """
        out: dict[str, Any] = {
            c.VERSION: self.version,
            c.ISSUER: self.issuer,
            c.CODE: self.code,
            c.SERIAL: self.serial,
            c.ISSUED_AT: _to_seconds(self.issued_at),
            c.VALID_FROM: _to_seconds(self.valid_from),
            c.EXPIRES_AT: _to_seconds(self.expires_at),
            c.FAMILY_NAME: self.family_name,
        }
        if self.given_names:
            out[c.GIVEN_NAMES] = self.given_names
        if self.native_name:
            out[c.NATIVE_NAME] = self.native_name
        if self.chinese_name:
            out[c.CHINESE_NAME] = self.chinese_name
        if self.nationality is not None:
            out[c.NATIONALITY] = self.nationality
        if self.birth_date is not None:
            out[c.BIRTH_DATE] = self.birth_date.to_wire()
        if self.version == FORMAT_VERSION or self.entitlements:
            out[c.ENTITLEMENTS] = {e.service: e.to_wire() for e in self.entitlements}
        out[c.STATUS] = [self.status.list_id, self.status.index]
        if self.holder_key is not None:
            out[c.HOLDER_KEY] = dict(self.holder_key)
        if self.disclosure_digests:
            out[c.DISCLOSURES] = list(self.disclosure_digests)
        return out

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Card:
        """Read and validate wire claims; raise :class:`InvalidClaimError` naming the claim."""
        unknown = sorted(set(claims) - c.KNOWN)
        if unknown:
            raise InvalidClaimError(unknown[0], "unknown claim")
        if c.VERSION not in claims:
            raise InvalidClaimError(c.VERSION, "required claim is missing")
        version = _int(claims, c.VERSION)
        if version not in VERSIONS:
            raise InvalidClaimError(c.VERSION, f"format version {version} is not supported")
        required = c.REQUIRED if version == FORMAT_VERSION else c.REQUIRED_PHONE
        missing = [name for name in required if name not in claims]
        if missing:
            raise InvalidClaimError(missing[0], "required claim is missing")
        if version == PHONE_VERSION:
            clear = [name for name in c.DISCLOSED_ON_PHONE if name in claims]
            if clear:
                raise InvalidClaimError(clear[0], "a phone card discloses this claim, never clear")
        card = cls(
            version=version,
            issuer=_str(claims, c.ISSUER),
            code=_str(claims, c.CODE),
            serial=_str(claims, c.SERIAL),
            issued_at=_time(claims, c.ISSUED_AT),
            valid_from=_time(claims, c.VALID_FROM),
            expires_at=_time(claims, c.EXPIRES_AT),
            family_name=_str(claims, c.FAMILY_NAME),
            given_names=_str(claims, c.GIVEN_NAMES, ""),
            native_name=_optional_str(claims, c.NATIVE_NAME),
            chinese_name=_optional_str(claims, c.CHINESE_NAME),
            nationality=_optional_str(claims, c.NATIONALITY),
            birth_date=read_birth_date(claims[c.BIRTH_DATE]) if c.BIRTH_DATE in claims else None,
            entitlements=read_entitlements(claims.get(c.ENTITLEMENTS, {})),
            status=_status(claims[c.STATUS]),
            holder_key=_holder_key(claims.get(c.HOLDER_KEY)),
            disclosure_digests=_disclosures(claims.get(c.DISCLOSURES, [])),
        )
        _refuse_non_canonical(claims, card.to_claims())
        return card


def _refuse_non_canonical(claims: Mapping[str, Any], canonical: Mapping[str, Any]) -> None:
    """Refuse wire claims that the card would write differently.

    Building a card normalises (NFC names, a code typed with spaces or in lower case, an empty
    optional name left out); the wire must already be in that form, so that what a counter
    shows is exactly what was signed and every verifier reads one card from one payload.
    """
    if claims == canonical:  # the usual case, decided by one C-level comparison
        return
    absent = object()
    for name in (*claims, *canonical):
        if claims.get(name, absent) != canonical.get(name, absent):
            raise InvalidClaimError(name, "not in canonical form (NFC names, canonical code)")


def from_seconds(claim: str, value: int) -> datetime:
    """Return the UTC time of a NumericDate, refusing times outside 2000-2100."""
    if not EARLIEST.timestamp() <= value < LATEST.timestamp():
        raise InvalidClaimError(claim, "time outside 2000-2100")
    return datetime.fromtimestamp(value, UTC)


def _to_seconds(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def _utc_or_none(claim: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidClaimError(claim, "must be a datetime")
    if value.tzinfo is not UTC or value.microsecond:  # the wire reader's times need no work
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidClaimError(claim, "time must carry a time zone")
        value = value.astimezone(UTC).replace(microsecond=0)
    if not EARLIEST <= value < LATEST:
        raise InvalidClaimError(claim, "time outside 2000-2100")
    return value


def _clean_name(claim: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidClaimError(claim, "must be a string")
    if not value.isascii():
        value = unicodedata.normalize("NFC", value)
    # str.isprintable() is False exactly for the categories refused above and for spaces other
    # than U+0020 (no-break and ideographic spaces are refused too, deliberately).
    if not value.replace("\u200c", "").replace("\u200d", "").isprintable():
        bad = next(
            char
            for char in value
            if not char.isprintable() and char not in _ALLOWED_FORMAT_CHARACTERS
        )
        raise InvalidClaimError(
            claim, f"name has a control, direction-changing or invisible character U+{ord(bad):04X}"
        )
    if "  " in value or value.strip() != value:
        raise InvalidClaimError(claim, "name has leading, trailing or repeated spaces")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidClaimError(claim, f"name is longer than {MAX_NAME_LENGTH} characters")
    return value


def _is_latin(name: str) -> bool:
    """Latin letters (any accent), spaces and the punctuation passports print in names."""
    if name.isascii():
        return _ASCII_NAME.fullmatch(name) is not None
    return all(
        char in " -'.,"
        or unicodedata.category(char) == "Mn"
        or unicodedata.name(char, "").startswith("LATIN ")
        for char in name
    )


def _check_holder_key(value: Mapping[str, Any]) -> None:
    """``{"jwk": {"crv": "P-256", "kty": "EC", "x": ..., "y": ...}}`` and nothing else: the
    one key kind WebCrypto keeps non-extractable on every phone. Whether the point lies on
    the curve is checked where the key is built (``keys``), with the rest of the proof."""
    jwk = value.get("jwk") if isinstance(value, Mapping) else None
    if set(value) != {"jwk"} or not isinstance(jwk, Mapping):
        raise InvalidClaimError(c.HOLDER_KEY, "must be {'jwk': <public JWK>}")
    if set(jwk) != {"crv", "kty", "x", "y"} or (jwk["crv"], jwk["kty"]) != ("P-256", "EC"):
        raise InvalidClaimError(c.HOLDER_KEY, "must be a public P-256 JWK: crv, kty, x, y")
    if not all(type(jwk[n]) is str and _COORDINATE_PATTERN.fullmatch(jwk[n]) for n in "xy"):
        raise InvalidClaimError(c.HOLDER_KEY, "x and y must be base64url of 32 bytes")


def _int(claims: Mapping[str, Any], name: str) -> int:
    value = claims[name]
    if type(value) is not int:  # bool is an int subclass and is refused here on purpose
        raise InvalidClaimError(name, "must be an integer")
    return value


def _time(claims: Mapping[str, Any], name: str) -> datetime:
    return from_seconds(name, _int(claims, name))


def _str(claims: Mapping[str, Any], name: str, default: str | None = None) -> str:
    if name not in claims and default is not None:
        return default
    value = claims[name]
    if type(value) is not str:
        raise InvalidClaimError(name, "must be a string")
    return value


def _optional_str(claims: Mapping[str, Any], name: str) -> str | None:
    return _str(claims, name) if name in claims else None


def read_birth_date(value: object) -> BirthDate:
    """Read the wire ``bd`` (an integer ``YYYYMMDD``)."""
    if type(value) is not int:
        raise InvalidClaimError(c.BIRTH_DATE, "must be an integer")
    return BirthDate.from_wire(value)


def read_entitlements(value: object) -> tuple[Entitlement, ...]:
    """Read the wire ``en`` object (also one entitlement disclosure's value)."""
    if not isinstance(value, dict):
        raise InvalidClaimError(c.ENTITLEMENTS, "must be an object")
    if len(value) > MAX_ENTITLEMENTS:
        raise InvalidClaimError(c.ENTITLEMENTS, f"more than {MAX_ENTITLEMENTS} entitlements")
    out = []
    for service, window in value.items():
        where = f"{c.ENTITLEMENTS}.{service}"
        if not isinstance(window, list) or len(window) not in (0, 2):
            raise InvalidClaimError(where, "must be [] or [from, until]")
        bounds: list[datetime | None] = []
        for bound in window:
            if bound is not None and type(bound) is not int:
                raise InvalidClaimError(where, "window bounds must be integers or null")
            bounds.append(None if bound is None else from_seconds(where, bound))
        if window and bounds == [None, None]:
            raise InvalidClaimError(where, "write [] for an entitlement without its own window")
        out.append(Entitlement(service, *bounds))
    return tuple(out)


def _status(value: object) -> StatusRef:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or type(value[0]) is not str
        or type(value[1]) is not int
    ):
        raise InvalidClaimError(c.STATUS, "must be [list id, index]")
    return StatusRef(value[0], value[1])


def _holder_key(value: object) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidClaimError(c.HOLDER_KEY, "must be an object")
    return value


def _disclosures(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(type(item) is str for item in value):
        raise InvalidClaimError(c.DISCLOSURES, "must be a list of digests")
    if len(value) > MAX_DIGESTS:
        raise InvalidClaimError(c.DISCLOSURES, "too many digests")
    return tuple(value)
