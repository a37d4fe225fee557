"""Names a card can print: refused at registration, field by field, not at the printer.

Registration runs the card's own fonts and name layout (:mod:`cardissuer.render.fonts`,
:mod:`cardissuer.render.names`) on the names being registered, so a name with a character
no card font has, or too long for two lines of 6 pt type, is a 422 naming the field (and the
characters), and a registered person's card always prints.
"""

from __future__ import annotations

from typing import Any

from cardissuer.errors import IssuerError
from cardissuer.models import PersonCreate
from cardissuer.render import fonts
from cardissuer.render.names import NameDoesNotFitError, layout_names, name_specs
from schemas.names import viz_capitals

LATIN_FIELDS = ("family_name", "given_names")
"""The card prints these two as one line (``latin_name``)."""


class InvalidNameError(IssuerError):
    """A name cannot be printed on the card; ``errors`` lists each field and why."""

    http_status = 422

    def __init__(self, message: str, errors: list[dict[str, str]], **extra: Any) -> None:
        super().__init__(message)
        self.errors = errors
        self.problem_extra: dict[str, Any] = {"errors": errors, **extra}


class UnprintableNameError(InvalidNameError):
    """A name has characters that no card font can draw."""

    code = "name-not-printable"


class NameTooLongError(InvalidNameError):
    """The names do not fit the card, even on two lines of the smallest legible type."""

    code = "name-too-long"


def _fields(card_field: str, data: PersonCreate) -> list[str]:
    if card_field != "latin_name":
        return [card_field]
    return [name for name in LATIN_FIELDS if getattr(data, name)]


def check_printable(data: PersonCreate) -> None:
    """Raise :class:`UnprintableNameError` or :class:`NameTooLongError` unless the card of a
    person registered with ``data`` prints every name (the same layout the card uses)."""
    printed = {
        "family_name": viz_capitals(data.family_name, data.nationality),
        "given_names": viz_capitals(data.given_names, data.nationality),
        "native_name": data.native_name or "",
        "chinese_name": data.chinese_name or "",
    }
    missing = {field: fonts.unprintable(text) for field, text in printed.items()}
    errors = [
        {"field": field, "message": f"no card font can draw {fonts.describe_characters(chars)}"}
        for field, chars in missing.items()
        if chars
    ]
    if errors:
        characters = "".join(dict.fromkeys("".join(missing.values())))
        raise UnprintableNameError(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            errors,
            characters=list(characters),
        )
    latin = " ".join(part for part in (printed["family_name"], printed["given_names"]) if part)
    specs = name_specs(latin, data.native_name, data.chinese_name)
    try:
        layout_names(specs)
    except NameDoesNotFitError as exc:
        message = "too long to print on the card, even on two lines of 6 pt type"
        errors = [
            {"field": field, "message": message}
            for card_field in exc.fields
            for field in _fields(card_field, data)
        ]
        raise NameTooLongError(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors
        ) from None
