"""What the holder and the officer both read about an application: its states, the reasons
an application is refused and the shape of the form the holder filled in.

The holder portal writes applications and shows their state; the console's review queue
decides them. Both take the words and the form's shape from here, so that a reason an officer
picks is one the holder can read in their language (every string is in the ``fmcard``
catalog).
"""

from __future__ import annotations

from pydantic import Field

from cardissuer.i18n import N_
from cardissuer.models import PassportIn, PersonCreate, RequestModel
from cardissuer.portal.models import ApplicationKind, ApplicationState

STATE_NAMES: dict[ApplicationState, str] = {
    ApplicationState.SUBMITTED: N_("Submitted"),
    ApplicationState.UNDER_REVIEW: N_("Under review"),
    ApplicationState.INFO_NEEDED: N_("More information needed"),
    ApplicationState.APPROVED: N_("Approved"),
    ApplicationState.REJECTED: N_("Rejected"),
    ApplicationState.WITHDRAWN: N_("Withdrawn"),
}

KIND_NAMES: dict[ApplicationKind, str] = {
    ApplicationKind.FIRST_CARD: N_("A first card"),
    ApplicationKind.PASSPORT_CHANGE: N_("A new passport"),
    ApplicationKind.RENEWAL: N_("Renewal of the card"),
    ApplicationKind.SERVICE: N_("A further service"),
    ApplicationKind.LOST_PHONE: N_("A lost phone"),
}

REJECT_REASONS: dict[str, str] = {
    "passport-unreadable": N_("The photo of the passport page cannot be read."),
    "passport-mismatch": N_("The details typed do not match the passport."),
    "portrait-unsuitable": N_("The portrait does not meet the photo rules."),
    "not-resident": N_("No residence or business registration in this city was found."),
    "already-registered": N_("You already hold a card; sign in with it to change it."),
    "document-missing": N_("A document the service needs was not provided."),
    "no-answer": N_("The question asked was not answered in time."),
    "other": N_("The application cannot be approved; please contact the office."),
}
"""Why an application is refused: the code is stored, the holder reads the sentence."""


class ApplicationForm(RequestModel):
    """What a holder's first-card application carries (``ApplicationRecord.form`` as JSON).

    ``person`` is exactly what an officer would type at the desk, so approving it registers
    the person through the registry's own checks; the MRZ lines are kept for the officer to
    compare with the photo of the passport page."""

    person: PersonCreate
    mrz: tuple[str, str] | None = None
    services: list[str] = Field(default_factory=list, max_length=16)


class PassportChangeForm(RequestModel):
    """A card holder's new passport (``ApplicationKind.PASSPORT_CHANGE``)."""

    passport: PassportIn
    mrz: tuple[str, str] | None = None


class ServiceForm(RequestModel):
    """A card holder asks for further services (``ApplicationKind.SERVICE``)."""

    services: list[str] = Field(min_length=1, max_length=16)
