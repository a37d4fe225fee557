"""Liveness and readiness for load balancers and orchestration."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from cardissuer.core.db import read_snapshot

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers and the signing key is loaded")
def readyz(request: Request, response: Response) -> dict[str, str]:
    try:
        with read_snapshot(request.app.state.engine) as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        signer = request.app.state.keys.signer
    except Exception as exc:  # readiness reports any failure as not ready
        response.status_code = 503
        return {"status": "not ready", "reason": type(exc).__name__}
    return {"status": "ready", "kid": signer.kid}
