"""The registry of foreigners: one person, one persistent code, a history of passports.

A person is registered once and keeps their code for life. Passports come and go (renewed,
lost, stolen, replaced abroad); each passport number is recorded once, ever, for one person
(a unique constraint, so even two registrations racing each other cannot give one passport two
codes), and a lost or stolen passport can never be used to register again.

Before a new person is created, likely duplicates are searched: same nationality and birth
date, and a Latin name whose consonant skeleton is close (MOHAMMED, MUHAMMAD and MOHAMAD all
read ``MHMD``). The search and the insert hold a lock on (nationality, birth date), so two
registrations of one person at once cannot both find nobody. The officer must then either
link (record the passport on the existing person) or, with a supervisor's permission,
confirm a new person; the decision is audited.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from cardissuer.card_request import claim_problem
from cardissuer.core.db import lock_key
from cardissuer.errors import ConflictError, DuplicateSuspectedError, NotFoundError
from cardissuer.models import (
    DuplicateReviewRecord,
    OfficeRecord,
    PassportChange,
    PassportIn,
    PassportRecord,
    PassportState,
    PersonCreate,
    PersonRecord,
)
from cardissuer.services import audit, blobs, names
from cardissuer.services.access import Actor, RecordHiddenError, allowed, require
from schemas import code as foreigner_code
from schemas.card import BirthDate, Card, Entitlement, StatusRef
from schemas.errors import SchemaError

DUPLICATE_THRESHOLD = 0.8
_SKELETON_MAP = str.maketrans({"Q": "K", "C": "K", "Z": "S", "V": "W", "P": "B"})
_PARTICLES = frozenset({"AL", "EL", "BIN", "IBN", "BEN", "VAN", "DE", "DA", "DI", "VON"})
_PASSPORT_NUMBER = re.compile(r"[A-Z0-9<]{3,20}")
_COUNTRY = re.compile(r"[A-Z]{3}")


class InvalidPersonError(ConflictError):
    """A field of the person is invalid (names, nationality, birth date)."""

    code = "invalid-person"
    http_status = 422
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        if field is not None:
            self.field = field  # the API answers it as a validation problem of that field

    @classmethod
    def of_card_model(cls, exc: SchemaError) -> InvalidPersonError:
        """The card model's refusal, told in the registration's fields (not wire claims)."""
        field, message = claim_problem(exc)
        return cls(message, field=field)


class PassportExpiredError(InvalidPersonError):
    """The passport's expiry date has passed: it cannot be recorded as the current one."""

    code = "passport-expired"
    field = "passport.expires_on"


class PassportRegisteredError(ConflictError):
    """The passport is already recorded for a person: look them up instead."""

    code = "passport-registered"


class PassportBlockedError(ConflictError):
    """The passport was reported lost or stolen: it can never register or be linked again."""

    code = "passport-blocked"


def name_key(family_name: str, given_names: str) -> str:
    """The consonant skeletons of the Latin name's words, used to find transliteration
    variants of one name: MOHAMMED, MUHAMMAD and MOHAMAD all read ``MD``."""
    text = unicodedata.normalize("NFKD", f"{family_name} {given_names}".upper())
    text = text.replace("-", " ").replace("'", "")
    letters = "".join(char for char in text if "A" <= char <= "Z" or char == " ")
    letters = letters.replace("PH", "F").replace("KH", "H").replace("OU", "U").replace("GH", "G")
    words = []
    for word in letters.split():
        if word in _PARTICLES:
            continue
        if len(word) > 5 and word[:2] in ("AL", "EL"):
            word = word[2:]  # ALHASHIMI is AL-HASHIMI
        skeleton = word[0] + re.sub(r"[AEIOUYHW]", "", word[1:])
        words.append(re.sub(r"(.)\1+", r"\1", skeleton.translate(_SKELETON_MAP)))
    return " ".join(words)[:64]


def name_similarity(key_a: str, key_b: str) -> float:
    """Share of the shorter name's words that have a close match in the other (0 to 1).

    Word order is ignored: family and given names swap places between documents."""
    words_a, words_b = key_a.split(), key_b.split()
    if not words_a or not words_b:
        return 0.0
    shorter, longer = sorted((words_a, words_b), key=len)
    matched = sum(
        1
        for word in shorter
        if any(difflib.SequenceMatcher(None, word, other).ratio() >= 0.75 for other in longer)
    )
    return matched / len(shorter)


def parse_birth_date(text: str) -> BirthDate:
    try:
        parts = [int(part) for part in text.split("-")]
        return BirthDate(*parts)
    except SchemaError as exc:
        raise InvalidPersonError.of_card_model(exc) from None
    except (ValueError, TypeError):
        raise InvalidPersonError("not YYYY-MM-DD, YYYY-MM or YYYY", field="birth_date") from None


def validate_person_fields(data: PersonCreate, birth: BirthDate, *, at: datetime) -> None:
    """Reuse the card model's strict rules for names and nationality (one source of truth)."""
    at = at.astimezone(UTC).replace(microsecond=0)
    try:
        Card(
            issuer="CHECK",
            code=foreigner_code.generate(),
            serial="CHECK",
            issued_at=at,
            valid_from=at,
            expires_at=at + timedelta(days=365),  # not year + 1: there is no 29 February next year
            family_name=data.family_name,
            given_names=data.given_names,
            native_name=data.native_name,
            chinese_name=data.chinese_name,
            nationality=data.nationality.upper(),
            birth_date=birth,
            entitlements=(Entitlement("hc"),),
            status=StatusRef("0", 0),
        )
    except SchemaError as exc:
        raise InvalidPersonError.of_card_model(exc) from None
    names.check_printable(data)


def duplicate_candidates(nationality: str, birth: int) -> Select[int | None, str, int]:
    """The persons a registration is compared with: only the compared columns, all held by
    ``ix_person_duplicates`` (an index-only scan), never the whole rows."""
    return select(PersonRecord.id, PersonRecord.name_key, PersonRecord.office_id).where(
        PersonRecord.nationality == nationality, PersonRecord.birth_date == birth
    )


def find_duplicates(session: Session, actor: Actor, data: PersonCreate) -> list[dict[str, Any]]:
    """People with the same nationality and birth date whose names look alike, best first.

    The search covers every office (one person, one code, wherever they registered first),
    but an officer sees only what their role lets them read: a candidate of an office they
    may not read shows its code, office and score, never its names (``readable`` is false),
    so that the officer can ask that office instead of registering the person twice.
    """
    birth = parse_birth_date(data.birth_date).to_wire()
    key = name_key(data.family_name, data.given_names)
    rows = session.exec(duplicate_candidates(data.nationality.upper(), birth)).all()
    scored = []
    for person_id, person_key, person_office in rows:
        score = name_similarity(key, person_key)
        if score >= DUPLICATE_THRESHOLD:
            scored.append((-score, person_id or 0, person_office))
    scored.sort()
    best = scored[:10]
    # The names of the ten shown, by primary key.
    shown = (
        {}
        if not best
        else {
            person_id: (code, family, given)
            for person_id, code, family, given in session.exec(
                select(
                    PersonRecord.id,
                    PersonRecord.code,
                    PersonRecord.family_name,
                    PersonRecord.given_names,
                ).where(col(PersonRecord.id).in_([item[1] for item in best]))
            ).all()
        }
    )
    found = []
    for negative, person_id, person_office in best:
        code, family, given = shown[person_id]
        readable = allowed(actor, "person.read", office_id=person_office)
        found.append(
            {
                "code": code,
                "office_code": office_code(session, person_office),
                "readable": readable,
                "family_name": family if readable else None,
                "given_names": given if readable else None,
                "nationality": data.nationality.upper(),
                "birth_date": str(BirthDate.from_wire(birth)),
                "score": round(-negative, 2),
            }
        )
    return found


def register(
    session: Session,
    actor: Actor,
    data: PersonCreate,
    *,
    at: datetime,
    portrait: bytes | None = None,
) -> PersonRecord:
    """Register a new person with their current passport; return the record (code assigned).

    Raises :class:`DuplicateSuspectedError` with candidates unless ``confirm_new_person`` is
    set (which needs the ``duplicate.approve`` permission), and :class:`ConflictError` when the
    passport is already known or was reported lost or stolen.
    """
    require(actor, "person.register")
    birth = parse_birth_date(data.birth_date)
    validate_person_fields(data, birth, at=at)
    check_not_expired(data.passport, at=at)
    # Registrations of people who could be duplicates of each other (same nationality and
    # birth date) run one after the other, each seeing the persons the previous one made.
    lock_key(session, "person", data.nationality.upper(), str(birth.to_wire()))
    _check_passport_is_new(session, data.passport)
    candidates = find_duplicates(session, actor, data)
    if candidates and not data.confirm_new_person:
        raise DuplicateSuspectedError(
            f"{len(candidates)} registered person(s) look like the same person: link the "
            "passport to one of them, or confirm a new person (supervisor)",
            candidates,
        )
    if candidates:
        require(actor, "duplicate.approve")
    person = PersonRecord(
        code=_unused_code(session),
        office_id=actor.office_id,
        family_name=data.family_name,
        given_names=data.given_names,
        native_name=data.native_name or None,
        chinese_name=data.chinese_name or None,
        name_key=name_key(data.family_name, data.given_names),
        nationality=data.nationality.upper(),
        birth_date=birth.to_wire(),
        sex=data.sex,
        phone=data.phone,
        email=data.email,
        created_at=at,
        updated_at=at,
        created_by=actor.officer_id,
    )
    session.add(person)
    session.flush()
    assert person.id is not None  # noqa: S101 - flushed
    if portrait is not None:
        blobs.store_portrait(session, person.id, portrait)
    _add_passport(session, actor, person, data.passport, at=at)
    audit.append(
        session,
        actor=actor,
        action="person.register",
        record_type="person",
        record_id=str(person.id),
        after=person_values(person, portrait),
        at=at,
    )
    if candidates:
        session.add(
            DuplicateReviewRecord(
                person_id=person.id,
                decision="new",
                decided_by=actor.officer_id,
                decided_at=at,
                candidate_ids=",".join(c["code"] for c in candidates)[:256],
            )
        )
        audit.append(
            session,
            actor=actor,
            action="duplicate.confirm_new",
            record_type="person",
            record_id=str(person.id),
            detail=f"{len(candidates)} candidate(s) reviewed",
            at=at,
        )
    return person


def link_passport_to_existing(
    session: Session, actor: Actor, code: str, passport: PassportIn, *, at: datetime
) -> PersonRecord:
    """The officer decided a suspected duplicate is this existing person: add the passport."""
    person = get_person(session, actor, code, permission="passport.change", for_update=True)
    check_not_expired(passport, at=at)
    _check_passport_is_new(session, passport)
    _replace_current_passport(session, actor, person, passport, reason="replaced", at=at)
    session.add(
        DuplicateReviewRecord(
            person_id=person.id or 0,
            decision="linked",
            decided_at=at,
            decided_by=actor.officer_id,
            candidate_ids=person.code,
        )
    )
    audit.append(
        session,
        actor=actor,
        action="duplicate.link",
        record_type="person",
        record_id=str(person.id),
        at=at,
    )
    return person


def change_passport(
    session: Session, actor: Actor, code: str, change: PassportChange, *, at: datetime
) -> PersonRecord:
    """Record a new passport for the person; the code stays the same.

    The person's row is locked, so two passport changes at once cannot leave two current
    passports."""
    person = get_person(session, actor, code, permission="passport.change", for_update=True)
    check_not_expired(change.passport, at=at)
    _check_passport_is_new(session, change.passport)
    _replace_current_passport(session, actor, person, change.passport, reason=change.reason, at=at)
    return person


def mark_passport(
    session: Session,
    actor: Actor,
    number: str,
    country: str,
    state: PassportState,
    *,
    at: datetime,
) -> PassportRecord:
    """Mark a passport lost or stolen: it can never register anyone again."""
    if state not in (PassportState.LOST, PassportState.STOLEN):
        raise ConflictError("a passport can only be marked lost or stolen")
    number, country = number.strip().upper(), country.strip().upper()
    if not _PASSPORT_NUMBER.fullmatch(number) or not _COUNTRY.fullmatch(country):
        raise NotFoundError("no such passport")
    passport = session.exec(
        select(PassportRecord).where(
            PassportRecord.number == number, PassportRecord.issuing_country == country
        )
    ).first()
    if passport is None:
        raise NotFoundError("no such passport")
    person = session.get(PersonRecord, passport.person_id)
    assert person is not None  # noqa: S101 - foreign key
    _require_visible(actor, person, "no such passport")
    require(actor, "passport.mark_lost", office_id=person.office_id)
    before = audit.record_values(passport)
    passport.state = state
    session.add(passport)
    audit.append(
        session,
        actor=actor,
        action=f"passport.mark_{state.value}",
        record_type="passport",
        record_id=str(passport.id),
        before=before,
        after=audit.record_values(passport),
        at=at,
    )
    return passport


def get_person(
    session: Session,
    actor: Actor,
    code: str,
    *,
    permission: str = "person.read",
    for_update: bool = False,
) -> PersonRecord:
    """The person with ``code``; another office's person is "not found" unless allowed.

    An officer who may not even read the person gets the same answer as for a code that
    does not exist (the refusal is still audited), so codes of other offices cannot be
    probed; one who may read but not do ``permission`` is refused outright."""
    try:
        code = foreigner_code.validate(code)
    except SchemaError:
        raise NotFoundError("no person with that code (check the code's spelling)") from None
    query = select(PersonRecord).where(PersonRecord.code == code)
    if for_update:
        query = query.with_for_update()
    person = session.exec(query).first()
    if person is None:
        raise NotFoundError("no person with that code")
    _require_visible(actor, person, "no person with that code")
    require(actor, permission, office_id=person.office_id)
    return person


def _require_visible(actor: Actor, person: PersonRecord, message: str) -> None:
    if not allowed(actor, "person.read", office_id=person.office_id):
        raise RecordHiddenError(message)


def find_by_passport(session: Session, actor: Actor, number: str) -> PersonRecord:
    """The person who holds or ever held passport ``number`` (any issuing country)."""
    number = number.strip().upper()
    if not _PASSPORT_NUMBER.fullmatch(number):
        raise NotFoundError("no person with that passport number")
    passport = session.exec(
        select(PassportRecord)
        .where(PassportRecord.number == number)
        .order_by(col(PassportRecord.id))
    ).first()
    if passport is None:
        raise NotFoundError("no person with that passport number")
    person = session.get(PersonRecord, passport.person_id)
    assert person is not None  # noqa: S101 - foreign key
    _require_visible(actor, person, "no person with that passport number")
    require(actor, "person.read", office_id=person.office_id)
    return person


def passports_of(session: Session, person: PersonRecord) -> list[PassportRecord]:
    return list(
        session.exec(
            select(PassportRecord)
            .where(PassportRecord.person_id == person.id)
            .order_by(col(PassportRecord.id))
        ).all()
    )


def person_values(person: PersonRecord, portrait: bytes | None) -> dict[str, Any]:
    """The audited values of ``person``, with its portrait's digest as when it was a column."""
    digest = None if portrait is None else hashlib.sha256(portrait).hexdigest()
    return {**audit.record_values(person), "portrait": digest}


def office_code(session: Session, office_id: int) -> str:
    office = session.get(OfficeRecord, office_id)
    return office.code if office else "?"


def check_not_expired(passport: PassportIn, *, at: datetime) -> None:
    """A passport recorded as current must not have expired before today (``at``'s date in
    UTC; the expiry day itself still counts). Without an expiry date nothing is checked."""
    if passport.expires_on is not None and passport.expires_on < at.astimezone(UTC).date():
        raise PassportExpiredError(
            "passport.expires_on: the passport has expired; record a passport that is valid today"
        )


def _check_passport_is_new(session: Session, passport: PassportIn) -> None:
    known = session.exec(
        select(PassportRecord).where(
            PassportRecord.number == passport.number,
            PassportRecord.issuing_country == passport.issuing_country,
        )
    ).first()
    if known is None:
        return
    if known.state in (PassportState.LOST, PassportState.STOLEN):
        raise PassportBlockedError(
            f"passport was reported {known.state.value}; it cannot be used to register"
        )
    raise PassportRegisteredError(
        "this passport is already registered to a person; look them up by it"
    )


def _replace_current_passport(
    session: Session,
    actor: Actor,
    person: PersonRecord,
    passport: PassportIn,
    *,
    reason: str,
    at: datetime,
) -> None:
    old_state = {
        "renewed": PassportState.REPLACED,
        "replaced": PassportState.REPLACED,
        "lost": PassportState.LOST,
        "stolen": PassportState.STOLEN,
    }[reason]
    for old in passports_of(session, person):
        if old.state is PassportState.CURRENT:
            old.state = old_state
            session.add(old)
    _add_passport(session, actor, person, passport, at=at)
    audit.append(
        session,
        actor=actor,
        action="passport.change",
        record_type="person",
        record_id=str(person.id),
        detail=f"previous passport {reason}",
        at=at,
    )


def _add_passport(
    session: Session, actor: Actor, person: PersonRecord, passport: PassportIn, *, at: datetime
) -> None:
    assert person.id is not None  # noqa: S101 - flushed
    session.add(
        PassportRecord(
            person_id=person.id,
            number=passport.number,
            issuing_country=passport.issuing_country,
            expires_on=passport.expires_on,
            recorded_at=at,
            recorded_by=actor.officer_id,
        )
    )
    try:
        session.flush()
    except IntegrityError:  # another transaction recorded it first
        raise PassportRegisteredError("this passport is already registered to a person") from None


def _unused_code(session: Session) -> str:
    """A fresh random code not used before (a collision is astronomically rare, but checked;
    the unique constraint is the final guard)."""
    while True:
        code = foreigner_code.generate()
        if session.exec(select(PersonRecord.id).where(PersonRecord.code == code)).first() is None:
            return code
