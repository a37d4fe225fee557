"""Applications as the holder portal leaves them, written straight into the database.

The review queue and the decisions are tested on their own: an application is a row with the
form's JSON built from the catalogue's models, and its files are real JPEGs re-encoded with
Pillow as the portal re-encodes uploads (never the bytes as uploaded).
"""

from __future__ import annotations

import io
import secrets
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from PIL import Image
from sqlalchemy.engine import Engine
from sqlmodel import select

import cardissuer
from cardissuer.core.db import session_scope
from cardissuer.models import OfficeRecord, OfficerRecord, PassportIn, PersonCreate
from cardissuer.portal.catalogue import ApplicationForm, PassportChangeForm, ServiceForm
from cardissuer.portal.models import (
    ApplicationFileKind,
    ApplicationFileRecord,
    ApplicationKind,
    ApplicationRecord,
    ApplicationState,
)
from cardissuer.services.access import Actor
from cardissuer.services.officers import actor_of

SAMPLE_PHOTO = Path(cardissuer.__file__).parent / "demo" / "sample-photo.jpg"
FAR = date(2034, 1, 31)


def jpeg(size: tuple[int, int] | None = None) -> bytes:
    """The demo photo re-encoded as a JPEG (optionally resized): a real upload's shape."""
    with Image.open(SAMPLE_PHOTO) as image:
        picture = image.convert("RGB")
        if size is not None:
            picture = picture.resize(size)
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=80)
    return out.getvalue()


def person(**overrides: object) -> PersonCreate:
    values: dict[str, object] = {
        "family_name": "NGUYEN",
        "given_names": "VAN AN",
        "native_name": "Nguyễn Văn An",
        "nationality": "VNM",
        "birth_date": "1988-04-12",
        "sex": "M",
        "passport": PassportIn(number="C1234567", issuing_country="VNM", expires_on=FAR),
    }
    values.update(overrides)
    return PersonCreate.model_validate(values)


def office_id(engine: Engine, code: str = "YW-FUTIAN") -> int:
    with session_scope(engine) as session:
        office = session.exec(select(OfficeRecord).where(OfficeRecord.code == code)).one()
        assert office.id is not None
        return office.id


def officer(engine: Engine, username: str) -> Actor:
    with session_scope(engine) as session:
        record = session.exec(select(OfficerRecord).where(OfficerRecord.username == username)).one()
        return actor_of(record)


def submit(
    engine: Engine,
    *,
    kind: ApplicationKind = ApplicationKind.FIRST_CARD,
    form: ApplicationForm | PassportChangeForm | ServiceForm | None = None,
    office: str = "YW-FUTIAN",
    email: str | None = "applicant@example.org",
    phone: str | None = None,
    language: str = "en",
    person_id: int | None = None,
    state: ApplicationState = ApplicationState.SUBMITTED,
    submitted_at: datetime | None = None,
    files: bool = True,
) -> str:
    """A submitted application; returns its reference."""
    if form is None and kind is ApplicationKind.FIRST_CARD:
        form = ApplicationForm(person=person(), services=["hc", "bk"])
    at = submitted_at or datetime.now(UTC).replace(microsecond=0)
    reference = secrets.token_urlsafe(12)[:16].upper().replace("-", "X").replace("_", "Y")
    with session_scope(engine) as session:
        record = ApplicationRecord(
            reference=reference,
            secret_hash=secrets.token_hex(32),
            kind=kind.value,
            state=state.value,
            office_id=office_id(engine, office),
            language=language,
            email=email,
            phone=phone,
            form=None if form is None else form.model_dump_json(),
            person_id=person_id,
            created_at=at - timedelta(minutes=20),
            submitted_at=at,
            updated_at=at,
        )
        session.add(record)
        session.flush()
        assert record.id is not None
        if files:
            for file_kind, size in (
                (ApplicationFileKind.PASSPORT_PAGE, (640, 450)),
                (ApplicationFileKind.PORTRAIT, None),
            ):
                session.add(
                    ApplicationFileRecord(
                        application_id=record.id,
                        kind=file_kind.value,
                        media_type="image/jpeg",
                        data=jpeg(size),
                    )
                )
    return reference


def application(engine: Engine, reference: str) -> ApplicationRecord:
    with session_scope(engine) as session:
        record = session.exec(
            select(ApplicationRecord).where(ApplicationRecord.reference == reference)
        ).one()
        session.expunge(record)
        return record


def file_ids(engine: Engine, reference: str) -> list[int]:
    record = application(engine, reference)
    with session_scope(engine) as session:
        ids = session.exec(
            select(ApplicationFileRecord.id).where(
                ApplicationFileRecord.application_id == record.id
            )
        ).all()
        return [file_id for file_id in ids if file_id is not None]
