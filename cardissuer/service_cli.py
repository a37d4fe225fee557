"""The service side of ``fmcard``: serve, db upgrade/backup/restore, audit verify."""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

from cardissuer.core.config import Settings
from cardissuer.core.db import make_engine, session_scope
from cardissuer.errors import AuditChainError, WorkspaceError


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("FMCARD_WORKSPACE", str(args.dir))
    settings = Settings()
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "db":
        return {"upgrade": _upgrade, "backup": _backup, "restore": _restore}[args.db_command](
            args, settings
        )
    return _audit_verify(settings)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from cardissuer.main import create_app

    app = create_app(settings)  # fail fast, in this process, on bad settings or keys
    if args.demo:
        from cardissuer.api.routes.common import issuing_context_of
        from cardissuer.seed import DEMO_OFFICERS, DEMO_PASSWORD, seed_demo

        if seed_demo(app.state.engine, issuing_context_of(app)):
            print("seeded the demo office YW-FUTIAN; log in as one of:", file=sys.stderr)
            for username, _, role in DEMO_OFFICERS:
                print(f"  {username:10} / {DEMO_PASSWORD}   ({role.value})", file=sys.stderr)
    workers = args.workers or settings.workers
    print(f"fmcard issuer on http://{args.host}:{args.port}/  (API docs: /docs)", file=sys.stderr)
    if workers > 1:
        uvicorn.run(
            "cardissuer.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=workers,
            log_level="warning",
        )
    else:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _upgrade(_: argparse.Namespace, settings: Settings) -> int:
    from cardissuer.core.migrations import current_revision, head_revision, upgrade

    engine = make_engine(settings.database_url)
    before = current_revision(engine)
    upgrade(engine)
    print(f"database at revision {head_revision()} (was {before or 'empty'})")
    return 0


def _sqlite_path(settings: Settings) -> Path:
    prefix = "sqlite:///"
    if not settings.database_url.startswith(prefix):
        raise WorkspaceError(
            "backup and restore are for the embedded SQLite database; "
            "use pg_dump/pg_restore for PostgreSQL"
        )
    return Path(settings.database_url[len(prefix) :])


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    source = _sqlite_path(settings)
    if not source.exists():
        raise WorkspaceError(f"no database at {source}")
    target: Path = args.target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        with sqlite3.connect(source) as live, sqlite3.connect(temporary) as copy:
            live.backup(copy)  # SQLite's online backup: consistent while the service writes
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
    print(f"backed up {source} to {target}")
    return 0


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    target = _sqlite_path(settings)
    source: Path = args.source
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as backup:
        result = backup.execute("PRAGMA integrity_check").fetchone()
    if result is None or result[0] != "ok":
        raise WorkspaceError(f"{source} is not a sound SQLite database")
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        shutil.copyfile(source, temporary)
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
    print(f"restored {target} from {source}; start the service again")
    return 0


def _audit_verify(settings: Settings) -> int:
    from cardissuer.core.signing import load_key_material
    from cardissuer.services.audit import verify_chain
    from keys.jws import VerificationKey

    material = load_key_material(settings)
    keys = [
        VerificationKey(kid, key) for key, kid in material.keyring.public_keys(material.passphrase)
    ]
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            report = verify_chain(session, keys=keys)
    except AuditChainError as exc:
        print(f"audit log BROKEN at entry {exc.seq}: {exc}")
        return 1
    print(
        f"audit log intact: {report.entries} entries, {report.checkpoints} signed "
        f"checkpoint(s), head at entry {report.head_seq}"
    )
    return 0
