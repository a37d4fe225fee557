"""Expiry reminders: an e-mail to the holder at each offset before their card expires.

For each offset ``d`` of ``Settings.reminder_offsets`` (e.g. 60 and 14 days), an active
printed card whose holder has an e-mail address gets one reminder while it has at most ``d``
days left and more than the next smaller offset: a card with 30 days left gets the 60-day
reminder now and the 14-day one later, never both at once. Phone cards follow their printed
card (the holder renews one card, and is reminded once).

**Exactly once, with several instances.** A reminder is *claimed* before it is sent: a row in
``reminder``, unique on (card, offset), inserted and committed first. Two instances that find
the same card race on that unique index; the loser's insert fails (on PostgreSQL after
waiting for the winner's commit) and it skips the card. Then the mail is sent, outside any
transaction (an SMTP server that answers slowly never holds SQLite's write lock). A send that
fails deletes its claim, so the next round tries again while the card is still in the
offset's window. What this cannot do: a process that dies between the claim's commit and the
send loses that one reminder (at most once, rather than a duplicate on every restart).

**Language.** Persons have no language stored: the reminder speaks the language of the
holder's newest online application; a holder who never applied online gets it in English and
Chinese, one after the other.

**Batches.** Cards are read :data:`PER_BATCH` at a time by keyset over (expires_at, id) under
``ix_card_state_expires_at`` (the expiry timer's index), so a million holders never load at
once. The service runs :func:`send_reminders` on the expiry timer's clock
(:class:`ReminderTimer`); ``fmcard db send-reminders`` runs it from cron.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, exists, or_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from cardissuer.core.db import read_snapshot, session_scope
from cardissuer.i18n import N_, translations
from cardissuer.mail import Mail, Mailer, MailError
from cardissuer.models import CardRecord, CardState, PersonRecord
from cardissuer.portal.models import ApplicationRecord, ReminderRecord
from cardissuer.services.cards import PRINTED
from cardissuer.services.expiry import ExpiryTimer

log = logging.getLogger("fmcard.portal.reminders")

PER_BATCH = 500
BILINGUAL = ("en", "zh")
"""The languages of a reminder to a holder who never applied online."""


@dataclass(frozen=True, slots=True)
class Due:
    """A reminder to send: the card, its expiry, and its holder's address and language."""

    card_id: int
    expires_at: datetime
    person_id: int
    email: str


@dataclass(slots=True)
class ReminderReport:
    sent: int = 0
    failed: int = 0
    taken: int = 0
    """Claimed by another instance first."""


def windows(offsets: tuple[int, ...]) -> list[tuple[int, int]]:
    """Each offset with the next smaller one (0 after the smallest): the reminder for ``d``
    is due while the card has at most ``d`` and more than that many days left."""
    ordered = sorted(set(offsets), reverse=True)
    return [(days, ordered[i + 1] if i + 1 < len(ordered) else 0) for i, days in enumerate(ordered)]


def due(
    session: Session,
    *,
    days: int,
    down_to: int,
    at: datetime,
    after: tuple[datetime, int] | None = None,
    limit: int = PER_BATCH,
) -> list[Due]:
    """Up to ``limit`` cards in the ``days`` window with no reminder for it yet, by (expiry,
    id) after ``after``."""
    reminded = exists().where(
        col(ReminderRecord.card_id) == col(CardRecord.id), col(ReminderRecord.days_before) == days
    )
    query = (
        select(CardRecord.id, CardRecord.expires_at, PersonRecord.id, PersonRecord.email)
        .join(PersonRecord, col(PersonRecord.id) == col(CardRecord.person_id))
        .where(
            CardRecord.state == CardState.ACTIVE,
            col(CardRecord.expires_at) > at + timedelta(days=down_to),
            col(CardRecord.expires_at) <= at + timedelta(days=days),
            CardRecord.kind == PRINTED,
            col(PersonRecord.email).is_not(None),
            ~reminded,
        )
        .order_by(col(CardRecord.expires_at), col(CardRecord.id))
        .limit(limit)
    )
    if after is not None:
        moment, last_id = after
        query = query.where(
            or_(
                col(CardRecord.expires_at) > moment,
                and_(col(CardRecord.expires_at) == moment, col(CardRecord.id) > last_id),
            )
        )
    return [
        Due(card_id or 0, _aware(expires), person_id or 0, email or "")
        for card_id, expires, person_id, email in session.exec(query).all()
    ]


def send_reminders(
    engine: Engine,
    mailer: Mailer,
    *,
    offsets: tuple[int, ...],
    at: datetime | None = None,
    base_url: str,
) -> ReminderReport:
    """Send every reminder due at ``at`` (now), batch by batch; see the module's text."""
    at = at or datetime.now(UTC)
    report = ReminderReport()
    for days, down_to in windows(offsets):
        after: tuple[datetime, int] | None = None
        while True:
            # Read in a snapshot: finding the due cards reads the window's cards (at a
            # million persons, tens of thousands whose holders have no address: about 0.35 s)
            # and must not hold SQLite's write lock meanwhile, which every writer waits for.
            with read_snapshot(engine) as session:
                batch = due(session, days=days, down_to=down_to, at=at, after=after)
            if not batch:
                break
            after = (batch[-1].expires_at, batch[-1].card_id)
            _send_batch(engine, mailer, batch, days=days, at=at, base_url=base_url, report=report)
            if len(batch) < PER_BATCH:
                break
    if report.sent or report.failed:
        log.info("expiry reminders: %d sent, %d failed", report.sent, report.failed)
    return report


def _send_batch(
    engine: Engine,
    mailer: Mailer,
    batch: list[Due],
    *,
    days: int,
    at: datetime,
    base_url: str,
    report: ReminderReport,
) -> None:
    claimed = _claim(engine, batch, days=days, at=at)
    report.taken += len(batch) - len(claimed)
    if not claimed:
        return
    with read_snapshot(engine) as session:
        languages = _languages(session, [item.person_id for item in claimed])
    failed: list[int] = []
    for item in claimed:
        try:
            mailer.send(compose(item, languages.get(item.person_id), base_url=base_url))
            report.sent += 1
        except MailError:
            failed.append(item.card_id)
    if failed:  # tried again next round
        report.failed += len(failed)
        with session_scope(engine) as session:
            session.exec(
                delete(ReminderRecord).where(
                    col(ReminderRecord.card_id).in_(failed), col(ReminderRecord.days_before) == days
                )
            )


def _claim(engine: Engine, batch: list[Due], *, days: int, at: datetime) -> list[Due]:
    """Insert the batch's claims, each in a savepoint; those another instance holds fail on
    the unique index and are left out. Committed before anything is sent."""
    claimed = []
    with session_scope(engine) as session:
        for item in batch:
            try:
                with session.begin_nested():
                    session.add(ReminderRecord(card_id=item.card_id, days_before=days, sent_at=at))
                    session.flush()
            except IntegrityError:
                continue
            claimed.append(item)
    return claimed


def _languages(session: Session, person_ids: list[int]) -> dict[int, str]:
    """The language of each person's newest application (none for those who never applied)."""
    newest: dict[int, tuple[int, str]] = {}
    for person_id, application_id, language in session.exec(
        select(ApplicationRecord.person_id, ApplicationRecord.id, ApplicationRecord.language).where(
            col(ApplicationRecord.person_id).in_(person_ids)
        )
    ).all():
        if person_id is None or application_id is None:
            continue
        if person_id not in newest or newest[person_id][0] < application_id:
            newest[person_id] = (application_id, language)
    return {person_id: language for person_id, (_, language) in newest.items()}


def compose(item: Due, language: str | None, *, base_url: str) -> Mail:
    """The reminder in ``language``, or in English and Chinese when none is known."""
    languages = (language,) if language else BILINGUAL
    subjects, bodies = [], []
    expires = item.expires_at.astimezone(UTC).date().isoformat()
    for code in languages:
        _ = translations(code).gettext
        values = {"date": expires, "url": base_url.rstrip("/") + "/portal/"}
        subjects.append(_(N_("Your Foreign Merchant Card expires on {date}")).format(**values))
        bodies.append(
            "\n\n".join(
                [
                    _(N_("Your Foreign Merchant Card expires on {date}.")).format(**values),
                    _(N_("You can renew it online before then: {url}")).format(**values),
                    _(N_("If you have already renewed it, please ignore this message.")),
                ]
            )
        )
    return Mail(
        to=item.email,
        subject=" / ".join(subjects),
        body="\n\n----------\n\n".join(bodies) + "\n",
        language=", ".join(languages),
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ReminderTimer(ExpiryTimer):
    """Sends the reminders on the expiry timer's clock, in a thread of its own (a slow mail
    server never delays the expiry of cards)."""

    def __init__(
        self,
        engine: Engine,
        mailer: Mailer,
        *,
        every_s: float,
        offsets: tuple[int, ...],
        base_url: str,
    ) -> None:
        super().__init__(engine, every_s=every_s, name="fmcard-reminders")
        self._mailer, self._offsets, self._base_url = mailer, offsets, base_url

    def round(self) -> None:
        send_reminders(self._engine, self._mailer, offsets=self._offsets, base_url=self._base_url)
