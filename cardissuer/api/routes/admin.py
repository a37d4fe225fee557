"""Offices, officers and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import func
from sqlmodel import Session, col, select

from cardissuer.api import problems
from cardissuer.api.deps import MAX_OFFSET, ActorDep, SessionDep, now
from cardissuer.core.db import read_snapshot
from cardissuer.models import (
    AuditPublic,
    OfficeCreate,
    OfficerCreate,
    OfficeRecord,
    OfficerPublic,
    OfficerRecord,
    OfficerUpdate,
    Page,
)
from cardissuer.services import audit
from cardissuer.services.access import ALL_OFFICES, require
from cardissuer.services.officers import create_office, create_officer, update_officer
from cardissuer.services.registry import office_code
from keys.jws import VerificationKey

router = APIRouter(
    prefix="/api", tags=["administration"], responses=problems.responses(401, 403, 404, 409, 422)
)


@router.get("/offices", summary="All offices")
def offices(actor: ActorDep, session: SessionDep) -> list[dict[str, str]]:
    require(actor, "officer.read")
    return [
        {"code": o.code, "name_en": o.name_en, "name_zh": o.name_zh}
        for o in session.exec(select(OfficeRecord)).all()
    ]


@router.post("/offices", status_code=status.HTTP_201_CREATED, summary="Create an office (admin)")
def new_office(data: OfficeCreate, actor: ActorDep, session: SessionDep) -> dict[str, str]:
    office = create_office(session, actor, data, at=now())
    session.commit()
    return {"code": office.code}


@router.get("/officers", summary="Officers of the office (admins and auditors: all)")
def officers(
    actor: ActorDep,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Page[OfficerPublic]:
    require(actor, "officer.read")
    query = select(OfficerRecord)
    if "officer.read" not in ALL_OFFICES.get(actor.role, frozenset()):
        query = query.where(OfficerRecord.office_id == actor.office_id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(OfficerRecord.id)).offset(offset).limit(limit)).all()
    items = [
        OfficerPublic(
            username=o.username,
            display_name=o.display_name,
            role=o.role,
            office_code=office_code(session, o.office_id),
            active=o.active,
        )
        for o in rows
    ]
    return Page(items=items, total=total, offset=offset, limit=limit)


@router.post(
    "/officers",
    status_code=status.HTTP_201_CREATED,
    summary="Create an officer (supervisors: registrars and supervisors of their office)",
)
def new_officer(data: OfficerCreate, actor: ActorDep, session: SessionDep) -> OfficerPublic:
    officer = create_officer(session, actor, data, at=now())
    session.commit()
    return _public(session, officer)


@router.patch(
    "/officers/{username}",
    summary="Change an officer's role, office or active flag (within your own reach)",
    description=(
        "Disable (`active: false`), re-enable, change the role or move to another office. "
        "Nobody may create, promote, re-enable or move an officer whose permissions or "
        "offices would exceed their own (a supervisor manages registrars and supervisors of "
        "their own office); refusals are `403 access-denied` and audited."
    ),
)
def change_officer(
    username: str, data: OfficerUpdate, actor: ActorDep, session: SessionDep
) -> OfficerPublic:
    officer = update_officer(session, actor, username, data, at=now())
    session.commit()
    return _public(session, officer)


def _public(session: Session, officer: OfficerRecord) -> OfficerPublic:
    return OfficerPublic(
        username=officer.username,
        display_name=officer.display_name,
        role=officer.role,
        office_code=office_code(session, officer.office_id),
        active=officer.active,
    )


@router.get("/audit", summary="The audit log, newest first (auditors, admins)")
def audit_log(
    actor: ActorDep,
    session: SessionDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[AuditPublic]:
    require(actor, "audit.read")
    total, rows = audit.newest_entries(session, skip=offset, limit=limit)
    items = [
        AuditPublic(
            seq=r.seq,
            at=r.at,
            officer_id=r.officer_id,
            office_id=r.office_id,
            action=r.action,
            record_type=r.record_type,
            record_id=r.record_id,
            outcome=r.outcome,
            detail=r.detail,
            entry_hash=r.entry_hash,
        )
        for r in rows
    ]
    return Page(items=items, total=total, offset=offset, limit=limit)


@router.get("/audit/verify", summary="Check the audit chain and its signed checkpoints")
def audit_verify(actor: ActorDep, request: Request) -> dict[str, int]:
    require(actor, "audit.read")
    keys = [VerificationKey(kid, key) for key, kid in request.app.state.public_keys]
    with read_snapshot(request.app.state.engine) as session:  # writers are not held up
        report = audit.verify_chain(session, keys=keys)
    return {
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "head_seq": report.head_seq,
    }
