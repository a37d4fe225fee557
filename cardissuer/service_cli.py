"""The service side of ``fmcard``: serve, publish --to, db upgrade/backup/restore/
expire-cards/purge-applications/send-reminders/rebuild-search/rebuild-status, audit
verify/checkpoint.

Every failure an operator can cause (bad settings, production refusals, an unreachable or
outdated database, a damaged backup) ends in one ``fmcard: error: ...`` line and exit status
1, never a traceback. ``audit verify`` exits 1 when the log is broken too, after naming the
first broken entry, so that monitoring can run it as is.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import shutil
import socket
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from cardissuer.core.config import Environment, Settings
from cardissuer.core.db import make_engine, read_snapshot, session_scope, sqlite_path
from cardissuer.errors import AuditChainError, DemoRefusedError, WorkspaceError
from keys.jws import VerificationKey

WORKSPACE_ENV = "FMCARD_WORKSPACE"


def run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
        if args.command == "serve":
            return _serve(args, settings)
        if args.command == "db":
            actions = {
                "upgrade": _upgrade,
                "backup": _backup,
                "restore": _restore,
                "expire-cards": _expire_cards,
                "purge-applications": _purge_applications,
                "send-reminders": _send_reminders,
                "rebuild-search": _rebuild_search,
                "rebuild-status": _rebuild_status,
            }
            return actions[args.db_command](args, settings)
        if args.command == "publish":
            return _publish_to(args, settings)
        if args.audit_command == "checkpoint":
            return _audit_checkpoint(settings)
        return _audit_verify(settings, incremental=args.incremental)
    except ValidationError as exc:
        print(f"fmcard: error: {_settings_problem(exc)}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"fmcard: error: database: {_database_problem(exc)}", file=sys.stderr)
        return 1


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment; the workspace from ``FMCARD_WORKSPACE``, else ``--dir``.

    Nothing is written to ``os.environ`` (a test, or anything else calling :func:`run` in
    the same process, would inherit it); only multi-worker serving passes the workspace on.
    """
    return Settings(workspace=Path(os.environ.get(WORKSPACE_ENV) or args.dir))


def _settings_problem(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"FMCARD_{where.upper()}: {message}" if where else message)
    return "; ".join(problems) or "invalid settings"


def _database_problem(exc: SQLAlchemyError) -> str:
    """The driver's first line (no SQL, no parameters: they may be personal data)."""
    origin = getattr(exc, "orig", None) or exc
    text = str(origin).strip().splitlines()
    return f"{type(origin).__name__}: {text[0] if text else 'failed'}"


def _trusted_proxies(settings: Settings) -> str | None:
    """Believe ``X-Forwarded-For``/``-Proto`` only from the configured reverse proxies: the
    client address keys the portal's per-client limits, so a header anyone can send must not
    choose it (and behind a proxy on another host, every client would otherwise share the
    proxy's address and its limit)."""
    return settings.forwarded_allow_ips.strip() or None


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from cardissuer.main import create_app

    if args.demo and settings.environment is not Environment.DEVELOPMENT:
        from cardissuer.seed import DEMO_REFUSED

        raise DemoRefusedError(DEMO_REFUSED)  # before the app opens (or migrates) anything
    if args.demo and "public_base_url" not in settings.model_fields_set:
        # The links a demo mails (holder links, the portal) and the cards' status addresses
        # then lead to this very service, not to the placeholder fmcard.example.
        settings = settings.model_copy(
            update={"public_base_url": f"http://{args.host}:{args.port}"}
        )
    app = create_app(settings)  # fail fast, in this process, on bad settings or keys
    try:
        _check_port(args.host, args.port)  # before seeding, and before saying where it listens
    except WorkspaceError:
        app.state.engine.dispose()
        raise
    if args.demo:
        from cardissuer.api.routes.common import issuing_context_of
        from cardissuer.seed import DEMO_PASSWORD, demo_logins, seed_demo

        seeded = seed_demo(
            app.state.engine, issuing_context_of(app), environment=settings.environment
        )
        logins = demo_logins(app.state.engine)  # at every start: a restart needs them too
        if logins:
            made = "seeded the demo office" if seeded else "the demo office is in the database:"
            print(f"{made} YW-FUTIAN; log in as one of:", file=sys.stderr)
            for username, role in logins:
                print(f"  {username:10} / {DEMO_PASSWORD}   ({role.value})", file=sys.stderr)
    workers = args.workers or settings.workers
    if workers > 1 and sqlite_path(settings.database_url) is not None:
        # Measured (bench section 5, 32 clients): p99 77 ms with one worker, 867 ms with two.
        print(
            f"fmcard: warning: {workers} workers on SQLite contend for its write lock (SQLite "
            "retries, it does not queue); one worker issues faster. Use PostgreSQL to scale out.",
            file=sys.stderr,
        )
    _warn_missing_fonts()
    print(f"fmcard issuer on http://{args.host}:{args.port}/  (API docs: /docs)", file=sys.stderr)
    print(
        f"holder portal on http://{args.host}:{args.port}/portal/  (holders sign in with a code "
        f"sent to their e-mail address; mail: {_mail_target(settings)})",
        file=sys.stderr,
    )
    print("Ctrl+C stops the issuer.", file=sys.stderr)
    # Ctrl+C: uvicorn stops gracefully, then raises the SIGINT it caught; that is the way
    # to stop the service, not an interruption of it.
    with contextlib.suppress(KeyboardInterrupt):
        _run_uvicorn(app, args, settings, workers)
    print("fmcard: issuer stopped", file=sys.stderr)
    return 0


def _check_port(host: str, port: int) -> None:
    """Refuse, in one line, an address that cannot be listened on, before anything says the
    service is there (uvicorn would only log a JSON line and exit 3). Bound the way uvicorn
    binds (address reuse on), so that a port in TIME_WAIT after a restart is not refused."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise WorkspaceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    for family, kind, protocol, _, address in addresses:  # every address uvicorn would bind
        with contextlib.closing(socket.socket(family, kind, protocol)) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio's server: IPv6 only, beside IPv4
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise WorkspaceError(
                        f"{host}:{port} is in use (another fmcard serve?): choose another with "
                        "--port N"
                    ) from None
                raise WorkspaceError(
                    f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                ) from None


def _run_uvicorn(app: Any, args: argparse.Namespace, settings: Settings, workers: int) -> None:
    import uvicorn

    # log_config=None keeps the JSON logging set up by create_app; no access log (full paths).
    if workers > 1:
        app.state.engine.dispose()
        os.environ[WORKSPACE_ENV] = str(settings.workspace)  # the workers build their own app
        uvicorn.run(
            "cardissuer.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=workers,
            log_level="warning",
            log_config=None,
            access_log=False,
            proxy_headers=_trusted_proxies(settings) is not None,
            forwarded_allow_ips=_trusted_proxies(settings),
        )
    else:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level="warning",
            log_config=None,
            access_log=False,
            proxy_headers=_trusted_proxies(settings) is not None,
            forwarded_allow_ips=_trusted_proxies(settings),
        )


def _expire_cards(_: argparse.Namespace, settings: Settings) -> int:
    """The card says its own expiry; this keeps the registry's states in step with it."""
    from datetime import UTC, datetime

    from cardissuer.services.expiry import expire_all

    engine = make_engine(settings.database_url)
    try:
        count = expire_all(engine, at=datetime.now(UTC))
    finally:
        engine.dispose()
    print(f"{count} card(s) marked expired")
    return 0


def _mail_target(settings: Settings) -> str:
    """Where the service's mail goes, for the start-up line (no password)."""
    from urllib.parse import urlsplit

    if settings.mail_url:
        parts = urlsplit(settings.mail_url)
        if parts.scheme == "file":
            return f"written to {parts.path}"
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 'default port'}"
    if settings.environment is Environment.PRODUCTION:
        return "not sent: set FMCARD_MAIL_URL"
    return f"written to {settings.workspace / 'outbox'}/*.eml"


def _purge_applications(_: argparse.Namespace, settings: Settings) -> int:
    """What the service's retention timer does, by hand or from cron."""
    from cardissuer.portal.retention import purge

    engine = make_engine(settings.database_url)
    try:
        purged = purge(engine, days=settings.application_retention_days)
    finally:
        engine.dispose()
    print(
        f"personal data of {purged.applications} application(s) deleted, "
        f"{purged.codes} one-time code(s) pruned"
    )
    return 0


def _send_reminders(_: argparse.Namespace, settings: Settings) -> int:
    """The expiry reminders due now, each (card, offset) once even beside running services."""
    from cardissuer.mail import mailer_for
    from cardissuer.portal.reminders import send_reminders

    engine = make_engine(settings.database_url)
    try:
        report = send_reminders(
            engine,
            mailer_for(settings),
            offsets=settings.reminder_offsets,
            base_url=settings.public_base_url,
        )
    finally:
        engine.dispose()
    print(f"{report.sent} reminder(s) sent, {report.failed} failed (tried again next time)")
    return 1 if report.failed else 0


def _rebuild_search(_: argparse.Namespace, settings: Settings) -> int:
    """Recompute the names' search keys that differ from what the search folds today, and
    re-create the trigram and prefix indexes of the person search, then refresh the
    planner's statistics. Safe while the service runs (one transaction; on SQLite it holds
    the write lock meanwhile, on PostgreSQL writes to ``person`` wait)."""
    from sqlalchemy import func, select

    from cardissuer.core import search_index
    from cardissuer.core.db import optimize
    from cardissuer.core.migrations import ensure_schema
    from cardissuer.models import PersonRecord

    engine = make_engine(settings.database_url)
    try:
        ensure_schema(engine, upgrade=False)
        with engine.begin() as connection:
            refolded = search_index.rebuild(connection)
            count = connection.execute(select(func.count()).select_from(PersonRecord)).scalar()
        optimize(engine, analyze_all=True)
    finally:
        engine.dispose()
    print(f"search indexes rebuilt over {count} person(s), search keys recomputed for {refolded}")
    return 0


def _rebuild_status(_: argparse.Namespace, settings: Settings) -> int:
    """Recompute every status list's stored statuses from the cards (a repair: the journal
    keeps them in step); lists that differed are signed again at their next request."""
    from cardissuer.services.statuses import rebuild

    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            differed = rebuild(session)
    finally:
        engine.dispose()
    if differed:
        print(f"status lists repaired (they differed from the cards): {', '.join(differed)}")
    else:
        print("every status list matched its cards")
    return 0


def _publish_to(args: argparse.Namespace, settings: Settings) -> int:
    """Write what counters fetch from the service (its database, keys and settings) to
    ``--to``, for a static web server; only the files whose bytes changed."""
    from datetime import UTC, datetime

    from cardissuer.main import create_app
    from cardissuer.services.static_site import publish_to

    app = create_app(settings)
    state = app.state
    try:
        with session_scope(state.engine) as session:
            written = publish_to(
                args.to,
                state.publisher,
                session,
                anchors=[state.keys.anchor],
                jwks=state.jwks,
                at=datetime.now(UTC),
            )
    finally:
        state.engine.dispose()
    changed = ", ".join(written.changed) or "nothing"
    print(f"wrote {changed} to {args.to} ({len(written.unchanged)} file(s) unchanged)")
    return 0


def _upgrade(_: argparse.Namespace, settings: Settings) -> int:
    from cardissuer.core.migrations import current_revision, head_revision, upgrade

    engine = make_engine(settings.database_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
    finally:
        engine.dispose()
    print(f"database at revision {head_revision()} (was {before or 'empty'})")
    return 0


def _sqlite_path(settings: Settings) -> Path:
    path = sqlite_path(settings.database_url)
    if path is None:
        raise WorkspaceError(
            "backup and restore are for the embedded SQLite database; "
            "use pg_dump/pg_restore for PostgreSQL"
        )
    return path


def _check_database_file(path: Path) -> None:
    """Refuse anything but a sound fmcard SQLite database (read-only, nothing changes)."""
    if not path.is_file():
        raise WorkspaceError(f"no database at {path}")
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        ) as database:
            result = database.execute("PRAGMA integrity_check").fetchall()
            tables = {
                row[0]
                for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
    except sqlite3.DatabaseError as exc:
        raise WorkspaceError(f"{path} is not a sound SQLite database ({exc})") from None
    if [tuple(row) for row in result] != [("ok",)]:
        raise WorkspaceError(f"{path} is not a sound SQLite database (integrity check failed)")
    if not {"alembic_version", "audit", "card", "person"} <= tables:
        raise WorkspaceError(f"{path} is not an fmcard database")


def _backup(args: argparse.Namespace, settings: Settings) -> int:
    source = _sqlite_path(settings)
    if not source.is_file():
        raise WorkspaceError(f"no database at {source}")
    target: Path = args.target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    temporary = Path(name)
    try:
        with (
            contextlib.closing(sqlite3.connect(source, timeout=30)) as live,
            contextlib.closing(sqlite3.connect(temporary)) as copy,
        ):
            live.backup(copy)  # SQLite's online backup: one consistent state while writes go on
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
        _check_database_file(temporary)
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    print(f"backed up {source} to {target}")
    return 0


def _restore(args: argparse.Namespace, settings: Settings) -> int:
    target = _sqlite_path(settings)
    source: Path = args.source
    _check_database_file(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    temporary = Path(name)
    try:
        shutil.copyfile(source, temporary)
        os.chmod(temporary, 0o600)
        # The old database's write-ahead log belongs to the old file: applied to the restored
        # one it would corrupt it. So it goes first (its changes are being discarded anyway).
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    print(f"restored {target} from {source}; start the service again")
    return 0


def _verification_keys(settings: Settings) -> list[VerificationKey]:
    """Every key that may have signed a checkpoint: the key ring's, and an HSM signer's."""
    from cardissuer.core.signing import load_key_material

    material = load_key_material(settings)
    public = material.keyring.public_keys(material.passphrase)
    if all(kid != material.signer.kid for _, kid in public):
        public.append((material.signer.public_key, material.signer.kid))
    return [VerificationKey(kid, key) for key, kid in public]


AUDIT_STATE_FILE = "audit-verified.jwt"


def _audit_verify(settings: Settings, *, incremental: bool = False) -> int:
    """Walk the chain (all of it, or from the remembered checkpoint) and say what was found.

    An intact walk stores the newest checkpoint it confirmed in the workspace, beside the
    keys: outside the database, so that someone who can rewrite the database cannot move the
    starting point of the next incremental walk.
    """
    from time import perf_counter

    from cardissuer.services.audit import VerifiedPoint, verify_chain
    from keys.store import write_file

    keys = _verification_keys(settings)
    state = settings.workspace / AUDIT_STATE_FILE
    since: VerifiedPoint | None = None
    if incremental:
        if state.exists():
            try:
                since = VerifiedPoint.from_signature(state.read_text("ascii"), keys=keys)
            except (AuditChainError, UnicodeDecodeError) as exc:
                print(
                    f"fmcard: error: {state}: {exc}; run a full walk (fmcard audit verify)",
                    file=sys.stderr,
                )
                return 1
        else:
            print(f"fmcard: no {AUDIT_STATE_FILE} yet: walking the whole chain", file=sys.stderr)
    engine = make_engine(settings.database_url)
    started = perf_counter()
    try:
        with read_snapshot(engine) as session:  # one consistent state while the service writes
            report = verify_chain(session, keys=keys, since=since)
    except AuditChainError as exc:
        print(f"audit log BROKEN at entry {exc.seq}: {exc}")
        return 1
    finally:
        engine.dispose()
    elapsed = perf_counter() - started
    if report.last_checkpoint is not None:
        write_file(state, (report.last_checkpoint + "\n").encode("ascii"))
    since_mark = report.head_seq - (report.last_checkpoint_seq or 0)
    walked = (
        f"entries {report.from_seq + 1}-{report.head_seq} walked from the checkpoint at "
        f"entry {report.from_seq}"
        if report.from_seq
        else f"{report.entries} entries"
    )
    print(
        f"audit log intact: {walked}, {report.checkpoints} signed checkpoint(s), head at "
        f"entry {report.head_seq} ({since_mark} since the last checkpoint), {elapsed:.2f} s"
    )
    return 0


def _audit_checkpoint(settings: Settings) -> int:
    """Sign the chain head now (before a backup, at shutdown, or from a timer) and print it.

    Keep the printed line somewhere else than the database: it proves the log reached this
    entry even to someone who could rewrite the database and its checkpoints.
    """
    from datetime import UTC, datetime

    from cardissuer.core.signing import load_key_material
    from cardissuer.services.audit import checkpoint

    material = load_key_material(settings)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            mark = checkpoint(session, material.signer, at=datetime.now(UTC).replace(microsecond=0))
    finally:
        engine.dispose()
    print(f"checkpoint at entry {mark.seq}: {mark.signature}")
    return 0


def _warn_missing_fonts() -> None:
    """Say at start-up, not at the first card, that some scripts cannot be printed here."""
    from cardissuer.render.fonts import missing_faces

    packages = sorted(set(missing_faces().values()))
    if packages:
        print(
            f"fmcard: warning: card fonts not installed ({', '.join(packages)}): names in "
            "their scripts are refused at registration and cards that need them are not "
            "drawn; install them (./dev does)",
            file=sys.stderr,
        )
