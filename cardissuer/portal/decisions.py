"""The officer's decisions on online applications: take, ask, reject, approve, dispatch.

Each decision is one transaction and one audited step (``application.<decision>``, with the
application's reference as the record, never a name, a passport number or the question's
text). Approving runs the registry's and the card life cycle's own functions inside that
transaction, so their rules hold unchanged (duplicate candidates and their four-eyes rule,
blocked passports, suspended cards) and a refusal anywhere leaves nothing half-done: no
person, no grant, no card, no link.

Transitions (anything else is :class:`ApplicationStateError`)::

    take      submitted                         -> under review
    ask       submitted, under review           -> info needed   (mail: the question)
    reject    submitted, under review, info     -> rejected      (mail: the reason)
    approve   submitted, under review           -> approved      (mail: the holder link)
    dispatch  approved, with a printed card     -> approved      (courier, tracking number)

E-mail goes out after the commit (:func:`deliver`): a mail server that is down must not undo
a decision, and the holder link's token exists only in memory until it is mailed. A failed
send is recorded (``mail_failed_at``, audited as ``application.mail_failed``) and the console
offers :func:`resend`; resending an approval's mail makes a new holder link, since the old
token was never kept. Applications of another office answer like missing ones.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from cardissuer.core.db import session_scope
from cardissuer.errors import ConflictError, IssuerError, NotFoundError
from cardissuer.i18n import N_, translations
from cardissuer.mail import Mail, Mailer, MailError
from cardissuer.models import (
    CardRecord,
    GrantCreate,
    PassportChange,
    PassportRecord,
    PassportState,
    PersonCreate,
    PersonRecord,
)
from cardissuer.portal.catalogue import (
    REJECT_REASONS,
    ApplicationForm,
    PassportChangeForm,
    ServiceForm,
)
from cardissuer.portal.models import (
    OPEN_STATES,
    ApplicationFileKind,
    ApplicationFileRecord,
    ApplicationKind,
    ApplicationRecord,
    ApplicationState,
)
from cardissuer.portrait import make_portrait
from cardissuer.services import audit, cards, registry
from cardissuer.services.access import ALL_OFFICES, Actor, RecordHiddenError, allowed, require
from cardissuer.services.cards import IssuingContext
from cardissuer.wallet import links

log = logging.getLogger("fmcard.portal.decisions")

QUESTION_MAX = 1000
COURIER_MAX = 64
TRACKING_MAX = 64
_REFERENCE_MAX = 24

S = ApplicationState
TAKEABLE = (S.SUBMITTED,)
ASKABLE = (S.SUBMITTED, S.UNDER_REVIEW)
APPROVABLE = (S.SUBMITTED, S.UNDER_REVIEW)
REJECTABLE = OPEN_STATES
_DONE = {
    "take": "taken into review",
    "ask": "asked a question",
    "reject": "rejected",
    "approve": "approved",
    "dispatch": "dispatched",
}


class ApplicationStateError(ConflictError):
    """The application's state does not allow this decision (already decided, not yet taken)."""

    code = "application-state"


class ApplicationInputError(IssuerError):
    """A decision's input is missing or unusable (an empty question, an unknown reason)."""

    code = "invalid-decision"
    http_status = 422


class Message(enum.StrEnum):
    """Which e-mail a decision sends the holder."""

    APPROVED = "approved"
    QUESTION = "question"
    REJECTED = "rejected"
    NEW_DEVICE = "new_device"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """The e-mail a committed decision owes the holder (sent by :func:`deliver`)."""

    reference: str
    mail: Mail | None
    """``None`` when the application has no e-mail address: recorded as a failed send."""


@dataclass(frozen=True, slots=True)
class Links:
    """Where the holder's mail points: the public address of the service and the link's
    lifetime (``Settings.public_base_url``, ``Settings.holder_link_hours``)."""

    base_url: str
    hours: int


# --- reading -------------------------------------------------------------------------------


def get_application(
    session: Session,
    actor: Actor,
    reference: str,
    *,
    permission: str = "application.read",
    for_update: bool = False,
) -> ApplicationRecord:
    """The application ``reference``; another office's answers like a missing one unless the
    officer may read every office's (auditors), and a reader who may not ``permission`` is
    refused outright (and audited by the caller)."""
    reference = reference.strip()[:_REFERENCE_MAX]
    query = select(ApplicationRecord).where(ApplicationRecord.reference == reference)
    if for_update:
        query = query.with_for_update()
    record = session.exec(query).first() if reference else None
    if record is None:
        raise NotFoundError("no such application")
    if not allowed(actor, "application.read", office_id=record.office_id):
        raise RecordHiddenError("no such application", "application of another office")
    require(actor, permission, office_id=record.office_id)
    return record


def sees_every_office(actor: Actor) -> bool:
    return "application.read" in ALL_OFFICES.get(actor.role, frozenset())


def open_count(session: Session, actor: Actor) -> int:
    """Open applications of the officer's office (of every office for auditors)."""
    if not allowed(actor, "application.read"):
        return 0
    query = select(func.count()).where(col(ApplicationRecord.state).in_(OPEN_STATES))
    if not sees_every_office(actor):
        query = query.where(ApplicationRecord.office_id == actor.office_id)
    return int(session.exec(query).one())


def form_of(record: ApplicationRecord) -> ApplicationForm | PassportChangeForm | ServiceForm | None:
    """The form the holder filled in, read by its kind (``None``: none kept, or a kind that
    has no form such as a renewal or a lost phone)."""
    if record.form is None:
        return None
    kind = ApplicationKind(record.kind)
    if kind is ApplicationKind.FIRST_CARD:
        return ApplicationForm.model_validate_json(record.form)
    if kind is ApplicationKind.PASSPORT_CHANGE:
        return PassportChangeForm.model_validate_json(record.form)
    if kind is ApplicationKind.SERVICE:
        return ServiceForm.model_validate_json(record.form)
    return None


def passport_holders(session: Session, actor: Actor, number: str) -> list[dict[str, Any]]:
    """Every person who ever held a passport numbered ``number`` (any issuing country, any
    state): a person the officer may not read shows only their code and office."""
    rows = session.exec(
        select(PassportRecord, PersonRecord)
        .join(PersonRecord, col(PersonRecord.id) == col(PassportRecord.person_id))
        .where(PassportRecord.number == number.strip().upper())
        .order_by(col(PassportRecord.id))
    ).all()
    found = []
    for passport, person in rows:
        readable = allowed(actor, "person.read", office_id=person.office_id)
        found.append(
            {
                "code": person.code,
                "office_code": registry.office_code(session, person.office_id),
                "readable": readable,
                "family_name": person.family_name if readable else None,
                "given_names": person.given_names if readable else None,
                "issuing_country": passport.issuing_country,
                "state": passport.state,
            }
        )
    return found


def candidates_of(
    session: Session, actor: Actor, record: ApplicationRecord
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The registry's duplicate candidates of a first card's person, and the persons who ever
    held the application's passport number: what the officer compares before approving."""
    form = form_of(record)
    duplicates: list[dict[str, Any]] = []
    number = ""
    if isinstance(form, ApplicationForm):
        duplicates = registry.find_duplicates(session, actor, form.person)
        number = form.person.passport.number
    elif isinstance(form, PassportChangeForm):
        number = form.passport.number
    return duplicates, passport_holders(session, actor, number) if number else []


# --- decisions -----------------------------------------------------------------------------


def take(session: Session, actor: Actor, reference: str, *, at: datetime) -> ApplicationRecord:
    """An officer takes a submitted application into review (the holder sees "under review")."""
    record = _for_decision(session, actor, reference, TAKEABLE, "take")
    before = audit.record_values(record)
    record.state = S.UNDER_REVIEW
    _touch(session, record, at)
    _audit(session, actor, record, "take", before, at=at)
    return record


def ask(
    session: Session, actor: Actor, reference: str, question: str, *, at: datetime, urls: Links
) -> Outgoing:
    """Ask the holder for more information; the question is mailed in their language."""
    question = question.strip()
    if not question or len(question) > QUESTION_MAX:
        raise ApplicationInputError(f"the question must have 1 to {QUESTION_MAX} characters")
    record = _for_decision(session, actor, reference, ASKABLE, "ask")
    before = audit.record_values(record)
    record.state = S.INFO_NEEDED
    record.question, record.answer = question, None
    _decided(session, actor, record, at)
    _audit(session, actor, record, "ask", before, at=at)
    return _outgoing(record, Message.QUESTION, urls=urls)


def reject(
    session: Session, actor: Actor, reference: str, reason: str, *, at: datetime, urls: Links
) -> Outgoing:
    """Refuse the application for a reason of the catalogue (the holder reads its sentence)."""
    if reason not in REJECT_REASONS:
        raise ApplicationInputError(f"the reason must be one of {sorted(REJECT_REASONS)}")
    record = _for_decision(session, actor, reference, REJECTABLE, "reject")
    before = audit.record_values(record)
    record.state = S.REJECTED
    record.reject_reason = reason
    _decided(session, actor, record, at)
    _audit(session, actor, record, "reject", before, detail=reason, at=at)
    return _outgoing(record, Message.REJECTED, urls=urls)


@dataclass(frozen=True, slots=True)
class Approval:
    """How the officer approves a first card: a new person (``confirm_new_person`` once the
    duplicate candidates were reviewed, which needs a supervisor) or the existing person
    ``link_to`` (their code)."""

    link_to: str | None = None
    confirm_new_person: bool = False


def approve(
    session: Session,
    actor: Actor,
    reference: str,
    *,
    at: datetime,
    context: IssuingContext,
    catalogue: tuple[str, ...] | list[str],
    urls: Links,
    how: Approval | None = None,
) -> Outgoing:
    """Approve: register or link the person, grant, issue the printed card and make a holder
    link, by the application's kind; all in the caller's transaction, audited once more as
    ``application.approve`` after the registry's and cards' own entries."""
    how = how or Approval()
    record = _for_decision(session, actor, reference, APPROVABLE, "approve")
    require(actor, "card.issue", office_id=record.office_id)
    before = audit.record_values(record)
    kind = ApplicationKind(record.kind)
    detail = kind.value
    if kind is ApplicationKind.FIRST_CARD:
        person, detail = _first_card(session, actor, record, how, at=at, catalogue=catalogue)
    else:
        person = _holder(session, actor, record)
    key = f"application-{record.reference}"  # one card per application, whatever happens
    if kind is ApplicationKind.PASSPORT_CHANGE:
        form = _form(record, PassportChangeForm)
        registry.change_passport(
            session, actor, person.code, PassportChange(passport=form.passport), at=at
        )
    elif kind is ApplicationKind.SERVICE:
        _grant(session, actor, person, _form(record, ServiceForm).services, at, catalogue)
    if kind is ApplicationKind.LOST_PHONE:
        card = _current_printed(session, person)
    else:
        card = cards.issue(session, actor, person.code, at=at, context=context, idempotency_key=key)
    created = links.create(session, actor, card.serial, at=at, hours=urls.hours)
    record.state = S.APPROVED
    record.person_id, record.card_id = person.id, card.id
    _decided(session, actor, record, at)
    _audit(session, actor, record, "approve", before, detail=detail, at=at)
    return _outgoing(
        record,
        _approval_message(record),
        urls=urls,
        token=created.token,
        until=created.expires_at,
    )


def dispatch(
    session: Session,
    actor: Actor,
    reference: str,
    courier: str,
    tracking_number: str,
    *,
    at: datetime,
) -> ApplicationRecord:
    """Record that the approved application's printed card was sent (the holder sees the
    courier and the tracking number); given again, it corrects them."""
    courier, tracking_number = courier.strip(), tracking_number.strip()
    if not (0 < len(courier) <= COURIER_MAX and 0 < len(tracking_number) <= TRACKING_MAX):
        raise ApplicationInputError(
            f"the courier and the tracking number must have 1 to {COURIER_MAX} characters"
        )
    record = _for_decision(session, actor, reference, (S.APPROVED,), "dispatch")
    if record.card_id is None:
        raise ApplicationStateError("the application has no printed card to send")
    before = audit.record_values(record)
    record.courier, record.tracking_number, record.dispatched_at = courier, tracking_number, at
    _touch(session, record, at)
    _audit(session, actor, record, "dispatch", before, at=at)
    return record


def resend(
    session: Session, actor: Actor, reference: str, *, at: datetime, urls: Links
) -> Outgoing:
    """The decision's e-mail again (after a failed send, or when the holder lost it); for an
    approval with a new holder link, since only the token's hash was kept."""
    record = get_application(
        session, actor, reference, permission="application.decide", for_update=True
    )
    state = ApplicationState(record.state)
    if state is S.INFO_NEEDED:
        message, token, until = Message.QUESTION, None, None
    elif state is S.REJECTED:
        message, token, until = Message.REJECTED, None, None
    elif state is S.APPROVED and record.card_id is not None:
        card = session.get(CardRecord, record.card_id)
        assert card is not None  # noqa: S101 - foreign key
        created = links.create(session, actor, card.serial, at=at, hours=urls.hours)
        message, token, until = _approval_message(record), created.token, created.expires_at
    else:
        raise ApplicationStateError(f"an application {state.value} has no e-mail to send again")
    _audit(session, actor, record, "resend", None, detail=message.value, at=at)
    return _outgoing(record, message, urls=urls, token=token, until=until)


def deliver(
    engine: Engine, actor: Actor, outgoing: Outgoing, mailer: Mailer, *, at: datetime
) -> bool:
    """Send a committed decision's e-mail; record the outcome in a transaction of its own.

    Returns whether the mail server took it. A failure never raises: the decision stands,
    ``mail_failed_at`` is set and audited, and the console offers a resend."""
    sent = False
    if outgoing.mail is not None:
        try:
            mailer.send(outgoing.mail)
            sent = True
        except MailError as exc:
            log.warning("a decision's e-mail failed: %s", exc)
    with session_scope(engine) as session:
        record = session.exec(
            select(ApplicationRecord)
            .where(ApplicationRecord.reference == outgoing.reference)
            .with_for_update()
        ).one()
        if sent:
            record.mailed_at, record.mail_failed_at = at, None
        else:
            record.mail_failed_at = at
            audit.append(
                session,
                actor=actor,
                action="application.mail_failed",
                record_type="application",
                record_id=record.reference,
                outcome="failed",
                detail="no address" if outgoing.mail is None else "mail server",
                at=at,
            )
        session.add(record)
    return sent


# --- steps ---------------------------------------------------------------------------------


def _for_decision(
    session: Session,
    actor: Actor,
    reference: str,
    states: tuple[ApplicationState, ...],
    decision: str,
) -> ApplicationRecord:
    record = get_application(
        session, actor, reference, permission="application.decide", for_update=True
    )
    if record.state not in states:
        raise ApplicationStateError(
            f"an application that is {record.state} cannot be {_DONE[decision]}"
        )
    return record


FormT = TypeVar("FormT", ApplicationForm, PassportChangeForm, ServiceForm)


def _form(record: ApplicationRecord, kind: type[FormT]) -> FormT:
    if record.form is None:
        raise ApplicationStateError("the application's form is no longer kept")
    return kind.model_validate_json(record.form)


def _first_card(
    session: Session,
    actor: Actor,
    record: ApplicationRecord,
    how: Approval,
    *,
    at: datetime,
    catalogue: tuple[str, ...] | list[str],
) -> tuple[PersonRecord, str]:
    """Register the applicant (the registry's duplicate rule applies as at the desk) or add
    the passport to the person the officer chose; grant the services asked for."""
    form = _form(record, ApplicationForm)
    data: PersonCreate = form.person
    if data.email is None and record.email is not None:
        data = data.model_copy(update={"email": record.email})
    if how.link_to:
        person = registry.get_person(
            session, actor, how.link_to, permission="passport.change", for_update=True
        )
        if not _holds_current(session, person, data):
            person = registry.link_passport_to_existing(
                session, actor, person.code, data.passport, at=at
            )
        detail = "linked"
    else:
        data = data.model_copy(update={"confirm_new_person": how.confirm_new_person})
        person = registry.register(session, actor, data, at=at, portrait=_portrait(session, record))
        detail = "new person"
    _grant(session, actor, person, form.services, at, catalogue)
    return person, detail


def _holds_current(session: Session, person: PersonRecord, data: PersonCreate) -> bool:
    """Whether the chosen person's current passport is already the application's."""
    return any(
        p.state is PassportState.CURRENT
        and p.number == data.passport.number
        and p.issuing_country == data.passport.issuing_country
        for p in registry.passports_of(session, person)
    )


def _portrait(session: Session, record: ApplicationRecord) -> bytes | None:
    data = session.exec(
        select(ApplicationFileRecord.data)
        .where(
            ApplicationFileRecord.application_id == record.id,
            ApplicationFileRecord.kind == ApplicationFileKind.PORTRAIT,
        )
        .order_by(col(ApplicationFileRecord.id).desc())
    ).first()
    return None if data is None else make_portrait(data).data


def _grant(
    session: Session,
    actor: Actor,
    person: PersonRecord,
    services: list[str],
    at: datetime,
    catalogue: tuple[str, ...] | list[str],
) -> None:
    """Grant the services not yet held; the card is issued once afterwards."""
    held = {grant.service for grant in cards.active_grants(session, person)}
    for service in dict.fromkeys(services):
        if service not in held:
            cards.grant(
                session,
                actor,
                person.code,
                GrantCreate(service=service),
                at=at,
                catalogue=catalogue,
                context=None,
            )


def _holder(session: Session, actor: Actor, record: ApplicationRecord) -> PersonRecord:
    """The card holder a signed-in holder's request is about (checked like any record)."""
    person = session.get(PersonRecord, record.person_id) if record.person_id else None
    if person is None:
        raise ApplicationStateError("the application names no card holder")
    return registry.get_person(
        session, actor, person.code, permission="card.issue", for_update=True
    )


def _current_printed(session: Session, person: PersonRecord) -> CardRecord:
    current = cards.current_cards_of(session, [person.id or 0])[person.id or 0]
    if not current:
        raise ApplicationStateError("the holder has no current card to open on a new phone")
    return current[-1]


def _approval_message(record: ApplicationRecord) -> Message:
    lost = record.kind == ApplicationKind.LOST_PHONE
    return Message.NEW_DEVICE if lost else Message.APPROVED


def _touch(session: Session, record: ApplicationRecord, at: datetime) -> None:
    record.updated_at = at
    session.add(record)


def _decided(session: Session, actor: Actor, record: ApplicationRecord, at: datetime) -> None:
    record.decided_at, record.decided_by = at, actor.officer_id
    record.mailed_at = record.mail_failed_at = None  # this decision's mail is still to go
    _touch(session, record, at)


def _audit(
    session: Session,
    actor: Actor,
    record: ApplicationRecord,
    decision: str,
    before: dict[str, Any] | None,
    *,
    at: datetime,
    detail: str = "",
) -> None:
    session.flush()
    audit.append(
        session,
        actor=actor,
        action=f"application.{decision}",
        record_type="application",
        record_id=record.reference,
        before=before,
        after=audit.record_values(record) if before is not None else None,
        detail=detail,
        at=at,
    )


# --- the holder's e-mail -------------------------------------------------------------------


def _outgoing(
    record: ApplicationRecord,
    message: Message,
    *,
    urls: Links,
    token: str | None = None,
    until: datetime | None = None,
) -> Outgoing:
    if record.email is None:
        return Outgoing(record.reference, None)
    subject, body = compose(record, message, urls=urls, token=token, until=until)
    mail = Mail(to=record.email, subject=subject, body=body, language=record.language)
    return Outgoing(record.reference, mail)


def compose(
    record: ApplicationRecord,
    message: Message,
    *,
    urls: Links,
    token: str | None = None,
    until: datetime | None = None,
) -> tuple[str, str]:
    """The subject and body of ``message`` in the holder's language (the ``fmcard``
    catalog), with the application's reference and, for an approval, the holder link."""
    _ = translations(record.language).gettext
    when = (until or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    base = urls.base_url.rstrip("/")
    values = {
        "reference": record.reference,
        "until": when,
        "url": f"{base}/h/{token}" if token else f"{base}/portal/",
    }

    def say(message: str) -> str:  # translated, then filled (the question is not: braces)
        return _(message).format(**values)

    if message is Message.QUESTION:
        subject = say(N_("Your application {reference}: more information needed"))
        paragraphs = [
            say(N_("The office reviewing your application {reference} asks:")),
            record.question or "",
            say(N_("Please answer on your application's page: {url}")),
        ]
    elif message is Message.REJECTED:
        reason = REJECT_REASONS.get(record.reject_reason or "other", REJECT_REASONS["other"])
        subject = say(N_("Your application {reference} was not approved"))
        paragraphs = [
            say(N_("Your application {reference} was not approved, for this reason:")),
            _(reason),
        ]
    else:
        if message is Message.NEW_DEVICE:
            subject = say(N_("A link for your new phone"))
            opening = say(N_("Open this link on your new phone to show your card on it."))
        else:
            subject = say(N_("Your Foreign Merchant Card is ready"))
            opening = say(
                N_(
                    "Your application {reference} was approved. Open this link on your "
                    "phone to keep your card on it."
                )
            )
        paragraphs = [
            opening,
            values["url"],
            say(
                N_(
                    "The link works on the first device that opens it; open it before "
                    "{until} (UTC). Do not forward this message: the link shows your card."
                )
            ),
        ]
    return subject, "\n\n".join(paragraphs) + "\n"
