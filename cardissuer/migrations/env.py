"""Alembic environment: runs migrations on the connection the service (or CLI) passes in."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from cardissuer import models  # noqa: F401 - registers the tables
from cardissuer.core.search_index import include_name
from cardissuer.portal import models as portal_models  # noqa: F401 - the holder portal
from cardissuer.wallet import models as wallet_models  # noqa: F401 - and the holder links

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through 'fmcard db upgrade' (it passes the connection)")
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
