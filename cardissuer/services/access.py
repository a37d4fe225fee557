"""Who may do what, and on which office's records. Deny by default.

Every domain operation names a permission; :func:`require` checks the actor's role against
:data:`PERMISSIONS` and, for records of an office, that the actor belongs to it unless the
role reaches every office (admins; auditors for reading). A refusal raises
:class:`AccessDeniedError`; the caller audits it in a transaction of its own so that the
refused change leaves nothing behind but the audit entry. A record the officer may not even
read is refused with :class:`RecordHiddenError`, which answers like "not found" so that other
offices' codes, passports and serials cannot be probed, and is audited like any refusal.

Managing officers is bounded by :func:`reach`: what an officer of a role in an office may do,
and on which offices. Nobody may create, change or re-enable an officer whose reach, before
or after the change, is not within their own (:func:`require_within_reach`); admins, who
administer every office, are the top. A supervisor thereby manages registrars and
supervisors of their own office, never an auditor (whose reading reaches every office) nor an
admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from cardissuer.errors import AccessDeniedError
from cardissuer.models import Role

R, S, A, X = Role.REGISTRAR, Role.SUPERVISOR, Role.AUDITOR, Role.ADMIN

PERMISSIONS: dict[str, frozenset[Role]] = {
    "person.read": frozenset({R, S, A, X}),
    "person.register": frozenset({R, S}),
    "person.update": frozenset({R, S}),
    "passport.change": frozenset({R, S}),
    "passport.mark_lost": frozenset({R, S}),
    "grant.change": frozenset({R, S}),
    "card.issue": frozenset({R, S}),
    "card.suspend": frozenset({S}),
    "card.reinstate": frozenset({S}),
    "card.revoke": frozenset({S}),
    "duplicate.approve": frozenset({S}),
    "officer.read": frozenset({S, A, X}),
    "officer.manage": frozenset({S, X}),
    "office.manage": frozenset({X}),
    "keys.manage": frozenset({X}),
    "audit.read": frozenset({A, X}),
    "application.read": frozenset({R, S, A, X}),
    "application.decide": frozenset({R, S}),
}
"""Roles allowed per action. Anything not listed is denied."""

ALL_OFFICES: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset(PERMISSIONS),
    Role.AUDITOR: frozenset({"person.read", "officer.read", "audit.read", "application.read"}),
}
"""Permissions a role holds for every office's records, not only its own."""


class RecordHiddenError(AccessDeniedError):
    """The record belongs to an office the officer may not read: answered as "not found"."""

    code = "not-found"
    http_status = 404

    def __init__(self, message: str, audit_detail: str = "record of another office") -> None:
        super().__init__(message)
        self.audit_detail = audit_detail


@dataclass(frozen=True, slots=True)
class Actor:
    """The officer behind a request."""

    officer_id: int
    office_id: int
    role: Role
    username: str


def allowed(actor: Actor, permission: str, *, office_id: int | None = None) -> bool:
    roles = PERMISSIONS.get(permission)
    if roles is None or actor.role not in roles:
        return False
    if office_id is None or office_id == actor.office_id:
        return True
    return permission in ALL_OFFICES.get(actor.role, frozenset())


def require(actor: Actor, permission: str, *, office_id: int | None = None) -> None:
    """Raise :class:`AccessDeniedError` unless ``actor`` may do ``permission``."""
    if not allowed(actor, permission, office_id=office_id):
        where = "" if office_id in (None, actor.office_id) else " on another office's records"
        raise AccessDeniedError(f"role {actor.role.value} may not {permission}{where}")


EVERY_OFFICE: None = None
"""The office part of a :func:`reach` entry held for every office's records."""


def reach(role: Role, office_id: int) -> frozenset[tuple[str, int | None]]:
    """What an officer of ``role`` in office ``office_id`` may do: pairs of a permission and
    the office it holds for (:data:`EVERY_OFFICE` for all of them)."""
    everywhere = ALL_OFFICES.get(role, frozenset())
    return frozenset(
        (permission, EVERY_OFFICE if permission in everywhere else office_id)
        for permission, roles in PERMISSIONS.items()
        if role in roles
    )


def within_reach(actor: Actor, role: Role, office_id: int) -> bool:
    """Whether ``actor`` holds every permission an officer of ``role`` in ``office_id`` would,
    on every office that officer would hold it for.

    Admins are the top of the order: they administer every officer of every office (keys,
    offices, officers) although they do not register persons or issue cards themselves."""
    if actor.role is Role.ADMIN:
        return True
    own = reach(actor.role, actor.office_id)
    return all(
        (permission, EVERY_OFFICE) in own or (office is not None and (permission, office) in own)
        for permission, office in reach(role, office_id)
    )


def require_within_reach(actor: Actor, role: Role, office_id: int, *, doing: str) -> None:
    """Raise :class:`AccessDeniedError` unless an officer of ``role`` in ``office_id`` would
    reach no further than ``actor`` (``doing`` names the change, for the message)."""
    if not within_reach(actor, role, office_id):
        where = "" if office_id == actor.office_id else " of another office"
        raise AccessDeniedError(
            f"role {actor.role.value} may not {doing} an officer with role {role.value}{where}: "
            "that officer's permissions or offices would exceed your own"
        )
