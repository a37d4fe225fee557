"""The audit page: the audit log, newest first, a page at a time, and on request
(``?verify=1``) the check of its hash chain and signed checkpoints against the service's keys.
It reads the entries through the same service function as ``GET /api/audit``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRouter
from sqlmodel import select

from cardissuer.core.db import session_scope
from cardissuer.errors import AuditChainError
from cardissuer.models import OfficeRecord, OfficerRecord
from cardissuer.services import audit
from cardissuer.services.access import require
from cardissuer.web.console.common import ActorDep, engine_of, page_number, pages
from cardissuer.web.rendering import render
from keys.jws import VerificationKey

AUDIT_PAGE_SIZE = 50

router = APIRouter(include_in_schema=False)


@router.get("/console/audit", name="audit")
def audit_page(request: Request, actor: ActorDep) -> Response:
    """The audit log, newest first; ``?verify=1`` also checks the chain and checkpoints."""
    require(actor, "audit.read")
    page = page_number(request)
    chain: dict[str, Any] | None = None
    with session_scope(engine_of(request)) as session:
        total, entries = audit.newest_entries(
            session, skip=(page - 1) * AUDIT_PAGE_SIZE, limit=AUDIT_PAGE_SIZE
        )
        officers = {o.id: o for o in session.exec(select(OfficerRecord)).all()}
        offices = {o.id: o.code for o in session.exec(select(OfficeRecord)).all()}
        if request.query_params.get("verify") == "1":
            keys = [VerificationKey(kid, key) for key, kid in request.app.state.public_keys]
            try:
                report = audit.verify_chain(session, keys=keys)
                chain = {
                    "ok": True,
                    "entries": report.entries,
                    "checkpoints": report.checkpoints,
                    "head": report.head_seq,
                }
            except AuditChainError as exc:
                chain = {"ok": False, "detail": str(exc), "seq": exc.seq}
    return render(
        request,
        "audit.html",
        {
            "entries": entries,
            "officers": officers,
            "offices": offices,
            "total": total,
            "page": page,
            "pages": pages(total, AUDIT_PAGE_SIZE),
            "chain": chain,
        },
    )
