"""What an officer asks for when issuing a card, read from a JSON document.

Example (``fmcard issue card.json``)::

    {
      "family_name": "AL-HASHIMI", "given_names": "MOHAMMED",
      "native_name": "محمد الهاشمي", "chinese_name": "穆罕默德",
      "nationality": "SAU", "birth_date": "1985-03-14",
      "entitlements": ["hc", "bk", {"service": "ed", "from": "2026-09-01", "until": "2027-07-01"}],
      "valid_days": 1825
    }

``code`` may name the holder's existing persistent foreigner code; without it a new one is
made. Dates are ISO 8601 (a date means midnight UTC). Unknown fields are refused by name: a
client cannot set the serial, the status index or the issue time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cardissuer.errors import CardInputError
from schemas import claims as c
from schemas import code as foreigner_code
from schemas.card import BirthDate, Card, Entitlement, StatusRef
from schemas.errors import InvalidClaimError, SchemaError

DEFAULT_VALID_DAYS = 5 * 365


CLAIM_FIELDS = {
    c.CODE: "code",
    c.VALID_FROM: "valid_from",
    c.EXPIRES_AT: "expires_at",
    c.FAMILY_NAME: "family_name",
    c.GIVEN_NAMES: "given_names",
    c.NATIVE_NAME: "native_name",
    c.CHINESE_NAME: "chinese_name",
    c.NATIONALITY: "nationality",
    c.BIRTH_DATE: "birth_date",
    c.ENTITLEMENTS: "entitlements",
}
"""The request's (and the API's) field for each card claim a request sets."""


def claim_problem(exc: SchemaError) -> tuple[str | None, str]:
    """The request field a card-model error is about, and what is wrong with it.

    The card model names its wire claims (``bd``, ``fn``, ``en.hc``); a person filling in a
    request knows the request's fields, so every card-model error a request causes is told
    in those (``birth_date``), once. ``None``: no request field is at fault (the message is
    the card model's own)."""
    if isinstance(exc, InvalidClaimError):
        claim, _, part = exc.claim.partition(".")  # "en.hc": the entitlement to hc
        field = CLAIM_FIELDS.get(claim)
        if field is not None:
            return field, f"{part}: {exc.message}" if part else exc.message
    return None, str(exc)


def claim_message(exc: SchemaError) -> str:
    """``field: message`` for a card-model error, in the request's words."""
    field, message = claim_problem(exc)
    return f"{field}: {message}" if field else message


@dataclass(frozen=True, slots=True)
class CardRequest:
    """A validated request; :meth:`to_card` makes the card once serial and index are known."""

    fields: dict[str, Any]

    @classmethod
    def from_json(cls, document: Any) -> CardRequest:
        if not isinstance(document, dict):
            raise CardInputError("a card request must be a JSON object")
        unknown = sorted(set(document) - _FIELD_CHECKS.keys())
        problems = [f"{name}: unknown field" for name in unknown]
        for name, check in _FIELD_CHECKS.items():
            if name not in document:
                if name in _REQUIRED:
                    problems.append(f"{name}: required field is missing")
                continue
            try:
                check(document)
            except CardInputError as exc:
                problems.append(str(exc))
            except SchemaError as exc:
                problems.append(claim_message(exc))
        if problems:  # every field's problem at once: one round of corrections, not one each
            raise CardInputError("; ".join(problems))
        request = cls(dict(document))
        # Validate every field now, with stand-ins for what the issuer assigns at issuance.
        request.to_card(
            issuer="CHECK",
            serial="CHECK",
            status=StatusRef("0", 0),
            at=datetime.now(UTC),
            code=foreigner_code.generate(),
        )
        return request

    def to_card(
        self, *, issuer: str, serial: str, status: StatusRef, at: datetime, code: str
    ) -> Card:
        """Build the card issued at ``at``; raise :class:`CardInputError` naming the field."""
        doc = self.fields
        try:
            valid_from = _when(doc, "valid_from") or at
            expires_at = _when(doc, "expires_at") or valid_from + timedelta(
                days=_int(doc, "valid_days", DEFAULT_VALID_DAYS)
            )
            return Card(
                issuer=issuer,
                code=_str(doc, "code") or code,
                serial=serial,
                issued_at=at,
                valid_from=valid_from,
                expires_at=expires_at,
                family_name=_str(doc, "family_name") or "",
                given_names=_str(doc, "given_names") or "",
                native_name=_str(doc, "native_name"),
                chinese_name=_str(doc, "chinese_name"),
                nationality=(_str(doc, "nationality") or "").upper(),
                birth_date=_birth_date(doc.get("birth_date")),
                entitlements=tuple(_entitlement(item) for item in _list(doc, "entitlements")),
                status=status,
            )
        except SchemaError as exc:
            raise CardInputError(claim_message(exc)) from None

    @property
    def code(self) -> str | None:
        return _str(self.fields, "code")


def _str(doc: dict[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is not None and not isinstance(value, str):
        raise CardInputError(f"{name}: must be a string")
    return value


def _int(doc: dict[str, Any], name: str, default: int) -> int:
    value = doc.get(name, default)
    if type(value) is not int or not 1 <= value <= 20 * 365:
        raise CardInputError(f"{name}: must be a whole number of days between 1 and 7300")
    return value


def _list(doc: dict[str, Any], name: str) -> list[Any]:
    value = doc.get(name)
    if not isinstance(value, list):
        raise CardInputError(f"{name}: must be a list")
    return value


def _when(doc: dict[str, Any], name: str) -> datetime | None:
    value = _str(doc, name)
    return None if value is None else parse_time(name, value)


def parse_time(name: str, value: str) -> datetime:
    """Read an ISO 8601 date or date-time; a date is midnight UTC, a naive time is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CardInputError(f"{name}: {value!r} is not an ISO 8601 date or time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _birth_date(value: Any) -> BirthDate:
    if not isinstance(value, str):
        raise CardInputError("birth_date: must be a string YYYY-MM-DD (or YYYY-MM, YYYY)")
    parts = value.split("-")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise CardInputError(f"birth_date: {value!r} is not YYYY-MM-DD, YYYY-MM or YYYY")
    try:
        return BirthDate(*(int(p) for p in parts))
    except SchemaError as exc:
        raise CardInputError(claim_message(exc)) from None


_REQUIRED = ("family_name", "nationality", "birth_date", "entitlements")
_FIELD_CHECKS: dict[str, Callable[[dict[str, Any]], object]] = {
    "code": lambda doc: _str(doc, "code"),
    "family_name": lambda doc: _str(doc, "family_name"),
    "given_names": lambda doc: _str(doc, "given_names"),
    "native_name": lambda doc: _str(doc, "native_name"),
    "chinese_name": lambda doc: _str(doc, "chinese_name"),
    "nationality": lambda doc: _str(doc, "nationality"),
    "birth_date": lambda doc: _birth_date(doc.get("birth_date")),
    "entitlements": lambda doc: [_entitlement(item) for item in _list(doc, "entitlements")],
    "valid_from": lambda doc: _when(doc, "valid_from"),
    "valid_days": lambda doc: _int(doc, "valid_days", DEFAULT_VALID_DAYS),
    "expires_at": lambda doc: _when(doc, "expires_at"),
}
"""Each field's own check, in the order problems are told; what involves several fields
(and the card model's rules on names) is checked after, by building the card."""


def _entitlement(item: Any) -> Entitlement:
    if isinstance(item, str):
        return Entitlement(item)
    if not isinstance(item, dict) or set(item) - {"service", "from", "until"}:
        raise CardInputError("entitlements: each is a service code or {service, from, until}")
    service = _str(item, "service")
    if service is None:
        raise CardInputError("entitlements: service is missing")
    return Entitlement(service, _when(item, "from"), _when(item, "until"))
