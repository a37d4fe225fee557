"""The holder-link table: one-time links that open the card on the holder's phone."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field as DbField
from sqlmodel import SQLModel

from cardissuer.models import utcnow


class HolderLinkRecord(SQLModel, table=True):
    """A link an officer gave a holder; only hashes of its token and device secret are kept,
    so a copy of the database opens no card pages."""

    __tablename__ = "holder_link"

    id: int | None = DbField(default=None, primary_key=True)
    card_id: int = DbField(foreign_key="card.id", index=True)
    token_hash: str = DbField(unique=True, max_length=64)
    created_at: datetime = DbField(default_factory=utcnow)
    created_by: int = DbField(foreign_key="officer.id")
    expires_at: datetime
    device_hash: str | None = DbField(default=None, max_length=64)
    registered_at: datetime | None = None
    device_jwk: str | None = DbField(default=None, max_length=256)
    """The device key the link's device registered (compact JSON, as ``card.device_jwk``):
    one per link; the phone card bound to it is the person's current phone card with it."""
    device_key_tries: int = DbField(default=0, sa_column_kwargs={"server_default": "0"})
    """Registration requests made with this link (:mod:`cardissuer.wallet.phone`)."""
