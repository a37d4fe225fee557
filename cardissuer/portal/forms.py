"""Reading the portal's forms: typed fields, MRZ and uploads into the catalogue's models, or
field errors to show next to each field in the holder's language.

Every error is a message id of the ``fmcard`` catalog (English; translated where shown) with
its placeholders' values, keyed by the form's field name, so the page can put it beside the
field it concerns. Nothing here touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from cardissuer.i18n import N_
from cardissuer.models import PassportIn, PersonCreate
from cardissuer.portal import mrz as mrz_reader
from cardissuer.portal.catalogue import ApplicationForm, PassportChangeForm
from cardissuer.portal.uploads import (
    MAX_PIXELS,
    MIN_SIZE,
    CheckedImage,
    UploadError,
    UploadKind,
    UploadProblem,
    check_image,
)
from cardissuer.services.registry import (
    InvalidPersonError,
    PassportExpiredError,
    check_not_expired,
    parse_birth_date,
    validate_person_fields,
)

TEXT_FIELDS = (
    "family_name",
    "given_names",
    "native_name",
    "chinese_name",
    "nationality",
    "birth_date",
    "sex",
    "phone",
    "passport_number",
    "passport_country",
    "passport_expiry",
    "mrz1",
    "mrz2",
)
MAX_FIELD = 200
"""No text field of the portal is longer (the models refuse more still, per field)."""

REQUIRED = N_("Please fill in this field.")
TOO_LONG = N_("This is too long.")
NOT_A_COUNTRY = N_("Use the three-letter country code printed in the passport (e.g. SAU).")
NOT_A_DATE = N_("Use a date as printed in the passport (year-month-day).")
NOT_A_NUMBER = N_("Use only the letters and digits of the passport number.")
NOT_PRINTABLE = N_("This cannot be printed on the card: write it as in the passport.")
EXPIRED = N_("This passport has expired.")
INVALID = N_("This value is not valid.")
CHOOSE_SERVICE = N_("Choose at least one service.")
DOCUMENT_NEEDED = N_("This service needs a supporting document (for example the school's letter).")

MRZ_MESSAGES: dict[mrz_reader.MrzProblem, str] = {
    mrz_reader.MrzProblem.LENGTH: N_("Each line of the machine-readable zone has 44 characters."),
    mrz_reader.MrzProblem.CHARACTERS: N_(
        "Only A-Z, 0-9 and < appear in the machine-readable zone."
    ),
    mrz_reader.MrzProblem.NOT_A_PASSPORT: N_("The first line of a passport starts with P."),
    mrz_reader.MrzProblem.NUMBER_CHECK: N_(
        "The passport number or its check digit is mistyped (line 2)."
    ),
    mrz_reader.MrzProblem.BIRTH_CHECK: N_(
        "The birth date or its check digit is mistyped (line 2)."
    ),
    mrz_reader.MrzProblem.EXPIRY_CHECK: N_(
        "The expiry date or its check digit is mistyped (line 2)."
    ),
    mrz_reader.MrzProblem.OPTIONAL_CHECK: N_(
        "The personal number or its check digit is mistyped (line 2)."
    ),
    mrz_reader.MrzProblem.COMPOSITE_CHECK: N_("The last check digit of line 2 does not match."),
    mrz_reader.MrzProblem.DATE: N_("A date in line 2 is not a date."),
    mrz_reader.MrzProblem.NUMBER_MISMATCH: N_(
        "The machine-readable zone gives another passport number."
    ),
    mrz_reader.MrzProblem.ISSUER_MISMATCH: N_(
        "The machine-readable zone gives another issuing country."
    ),
    mrz_reader.MrzProblem.NATIONALITY_MISMATCH: N_(
        "The machine-readable zone gives another nationality."
    ),
    mrz_reader.MrzProblem.BIRTH_MISMATCH: N_("The machine-readable zone gives another birth date."),
    mrz_reader.MrzProblem.EXPIRY_MISMATCH: N_(
        "The machine-readable zone gives another expiry date."
    ),
    mrz_reader.MrzProblem.SEX_MISMATCH: N_("The machine-readable zone gives another sex."),
    mrz_reader.MrzProblem.NAME_MISMATCH: N_(
        "The names do not match the machine-readable zone (Latin letters as in the passport)."
    ),
}

UPLOAD_MESSAGES: dict[UploadProblem, str] = {
    UploadProblem.MISSING: N_("Please add a photo."),
    UploadProblem.TOO_LARGE: N_("The file is larger than {kb} KB: send a smaller photo."),
    UploadProblem.WRONG_FORMAT: N_("Only JPEG, PNG or WebP photos are accepted."),
    UploadProblem.TOO_MANY_PIXELS: N_("The image has too many pixels ({mp} million at most)."),
    UploadProblem.UNREADABLE: N_("The file cannot be read as a photo."),
    UploadProblem.TOO_SMALL: N_("The photo is too small: at least {width} x {height} pixels."),
    UploadProblem.TOO_DARK: N_("The photo is too dark: take it again in better light."),
    UploadProblem.NOT_A_FACE_CROP: N_(
        "Crop the photo to your head and shoulders, taller than wide, like a passport photo."
    ),
}


@dataclass(frozen=True, slots=True)
class FieldError:
    """A message id of the catalog and the values of its placeholders."""

    message: str
    values: dict[str, Any] = field(default_factory=dict)


Errors = dict[str, FieldError]


@dataclass(frozen=True, slots=True)
class Posted:
    """A posted form read whole: its text fields and the first ``limit + 1`` bytes of each
    file (enough to tell that a file is over the limit), so that the request's temporary
    files are closed before any checking starts."""

    fields: FormData
    files: dict[str, bytes]

    def get(self, name: str) -> str | None:
        value = self.fields.get(name)
        return value if isinstance(value, str) else None

    def getlist(self, name: str) -> list[str]:
        return [value for value in self.fields.getlist(name) if isinstance(value, str)]


async def read_posted(form: FormData, *, limit: int) -> Posted:
    files: dict[str, bytes] = {}
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile) and name not in files:
                files[name] = await value.read(limit + 1)
    finally:
        await form.close()
    return Posted(form, files)


def texts(form: Posted, names: tuple[str, ...] = TEXT_FIELDS) -> dict[str, str]:
    """The text fields, stripped and cut to :data:`MAX_FIELD` characters."""
    values = {}
    for name in names:
        value = form.get(name)
        values[name] = value.strip()[:MAX_FIELD] if isinstance(value, str) else ""
    return values


def upload_of(
    form: Posted, name: str, kind: UploadKind, *, max_bytes: int, errors: Errors
) -> CheckedImage | None:
    """The checked image of file field ``name``; an error noted under ``name`` otherwise."""
    data = form.files.get(name, b"")
    try:
        return check_image(data, kind, max_bytes=max_bytes)
    except UploadError as exc:
        width, height = MIN_SIZE[kind]
        errors[name] = FieldError(
            UPLOAD_MESSAGES[exc.problem],
            {
                "kb": max_bytes // 1024,
                "mp": MAX_PIXELS // 1_000_000,
                "width": width,
                "height": height,
            },
        )
        return None


_PERSON_FIELDS = {
    "family_name": "family_name",
    "given_names": "given_names",
    "native_name": "native_name",
    "chinese_name": "chinese_name",
    "nationality": "nationality",
    "birth_date": "birth_date",
    "sex": "sex",
    "phone": "phone",
    "passport.number": "passport_number",
    "passport.issuing_country": "passport_country",
    "passport.expires_on": "passport_expiry",
    "number": "passport_number",
    "issuing_country": "passport_country",
    "expires_on": "passport_expiry",
}


def _validation_errors(exc: ValidationError, errors: Errors, prefix: str = "") -> None:
    for item in exc.errors():
        location = ".".join(str(part) for part in item.get("loc", ()))
        name = _PERSON_FIELDS.get(location.removeprefix(prefix))
        if name is None or name in errors:
            continue
        kind = item.get("type", "")
        if kind in {"missing", "string_too_short"}:
            message = REQUIRED
        elif kind == "string_too_long":
            message = TOO_LONG
        elif name in {"nationality", "passport_country"}:
            message = NOT_A_COUNTRY
        elif name in {"birth_date", "passport_expiry"}:
            message = NOT_A_DATE
        elif name == "passport_number":
            message = NOT_A_NUMBER
        else:
            message = NOT_PRINTABLE if kind == "value_error" else INVALID
        errors[name] = FieldError(message)


def _expiry(value: str, errors: Errors) -> date | None:
    if not value:
        errors["passport_expiry"] = FieldError(REQUIRED)
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors["passport_expiry"] = FieldError(NOT_A_DATE)
        return None


def _passport(values: dict[str, str], errors: Errors, *, at: datetime) -> PassportIn | None:
    expiry = _expiry(values["passport_expiry"], errors)
    try:
        passport = PassportIn(
            number=values["passport_number"],
            issuing_country=values["passport_country"],
            expires_on=expiry,
        )
    except ValidationError as exc:
        _validation_errors(exc, errors)
        return None
    try:
        check_not_expired(passport, at=at)
    except PassportExpiredError:
        errors["passport_expiry"] = FieldError(EXPIRED)
        return None
    return passport


def _mrz_lines(values: dict[str, str], errors: Errors) -> mrz_reader.Mrz | None:
    for name in ("mrz1", "mrz2"):
        if not values[name]:
            errors[name] = FieldError(REQUIRED)
    if "mrz1" in errors or "mrz2" in errors:
        return None
    try:
        return mrz_reader.read_td3(values["mrz1"], values["mrz2"])
    except mrz_reader.MrzError as exc:
        errors[f"mrz{exc.line}"] = FieldError(MRZ_MESSAGES[exc.problem])
        return None


def _compare_mrz(
    found: mrz_reader.Mrz, typed: dict[str, str], passport: PassportIn, errors: Errors
) -> None:
    for mismatch in mrz_reader.mismatches(
        found,
        number=passport.number,
        issuing_country=passport.issuing_country,
        nationality=typed["nationality"],
        birth_date=typed["birth_date"],
        expires_on=passport.expires_on,
        sex=typed["sex"] or "X",
        family_name=typed["family_name"],
        given_names=typed["given_names"],
    ):
        errors.setdefault(mismatch.field, FieldError(MRZ_MESSAGES[mismatch.problem]))


def services_of(form: Posted, offered: tuple[str, ...], errors: Errors) -> list[str]:
    chosen = form.getlist("services")
    services = [code for code in offered if code in chosen]
    if not services:
        errors["services"] = FieldError(CHOOSE_SERVICE)
    return services


def application_form(
    values: dict[str, str], *, email: str, services: list[str], errors: Errors, at: datetime
) -> ApplicationForm | None:
    """The first-card form from the typed fields, checked as registration will check it and
    against the MRZ; ``None`` with ``errors`` filled when anything is wrong."""
    passport = _passport(values, errors, at=at)
    found = _mrz_lines(values, errors)
    person: PersonCreate | None = None
    if passport is not None:
        try:
            person = PersonCreate(
                family_name=values["family_name"],
                given_names=values["given_names"],
                native_name=values["native_name"] or None,
                chinese_name=values["chinese_name"] or None,
                nationality=values["nationality"],
                birth_date=values["birth_date"],
                sex=values["sex"] or "X",
                phone=values["phone"] or None,
                email=email,
                passport=passport,
            )
        except ValidationError as exc:
            _validation_errors(exc, errors)
    if person is not None:
        try:
            validate_person_fields(person, parse_birth_date(person.birth_date), at=at)
        except InvalidPersonError as exc:
            name = "birth_date" if str(exc).startswith("birth_date") else "family_name"
            errors.setdefault(
                name, FieldError(NOT_A_DATE if name == "birth_date" else NOT_PRINTABLE)
            )
    if (
        found is not None
        and passport is not None
        and not errors.keys()
        & {
            "nationality",
            "birth_date",
            "sex",
            "family_name",
        }
    ):
        _compare_mrz(found, values, passport, errors)
    if errors or person is None or found is None:
        return None
    lines = (mrz_reader.normalise(values["mrz1"]), mrz_reader.normalise(values["mrz2"]))
    return ApplicationForm(person=person, mrz=lines, services=services)


def passport_change_form(
    values: dict[str, str], *, person_values: dict[str, str], errors: Errors, at: datetime
) -> PassportChangeForm | None:
    """A card holder's new passport, checked against its MRZ and the holder's record (the
    names, nationality, birth date and sex come from the person record, not the form)."""
    passport = _passport(values, errors, at=at)
    found = _mrz_lines(values, errors)
    if passport is None or found is None:
        return None
    _compare_mrz(found, {**values, **person_values}, passport, errors)
    if errors:
        return None
    lines = (mrz_reader.normalise(values["mrz1"]), mrz_reader.normalise(values["mrz2"]))
    return PassportChangeForm(passport=passport, mrz=lines)
