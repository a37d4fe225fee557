"""``fmcard``: the issuer's command line.

Works on an offline workspace directory (``--dir``, default ``$FMCARD_HOME`` or
``./fmcard-data``): keys, status lists, issued cards and what is published for counters.
Key passphrases come from ``FMCARD_KEY_PASSPHRASE`` or ``FMCARD_KEY_PASSPHRASE_FILE``; a
workspace made with ``init --dev`` keeps a development passphrase file inside it instead, and
every command says so.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cardissuer.card_request import CardRequest, parse_time
from cardissuer.errors import IssuerError, WorkspaceError
from cardissuer.workspace import DEFAULT_ISSUER, PublishSettings, Workspace
from keys.errors import KeysError, PassphraseError
from keys.keyring import IssuerInfo
from keys.status_list import CardStatus
from keys.store import PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, Passphrase, write_private_file
from schemas import code as foreigner_code
from schemas.errors import SchemaError
from verifier._exits import run_command
from verifier.errors import VerifierError

HOME_ENV = "FMCARD_HOME"
DEV_PASSPHRASE_FILE = "dev-passphrase.txt"  # noqa: S105 - a file name
MAX_REQUEST_BYTES = 64 * 1024


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmcard",
        description="Issue and publish signed Foreign Merchant Cards (offline workspace).",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(os.environ.get(HOME_ENV, "fmcard-data")),
        help=f"workspace directory (default: ${HOME_ENV} or ./fmcard-data)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="create a workspace: trust anchor and issuing key")
    init.add_argument("--issuer-id", default=DEFAULT_ISSUER.issuer_id)
    init.add_argument("--name-en", default=DEFAULT_ISSUER.name_en)
    init.add_argument("--name-zh", default=DEFAULT_ISSUER.name_zh)
    init.add_argument("--status-uri-prefix", default=DEFAULT_ISSUER.status_uri_prefix)
    init.add_argument("--algorithm", choices=("ES256", "EdDSA"), default="ES256")
    init.add_argument(
        "--dev",
        action="store_true",
        help="development only: generate a passphrase and keep it in the workspace",
    )

    issue = commands.add_parser("issue", help="sign a card from a JSON request")
    issue.add_argument("request", type=Path, help="card request JSON ('-' = stdin)")
    issue.add_argument("--portrait", type=Path, help="holder photo (JPEG, PNG, WebP, AVIF)")
    issue.add_argument("--out", type=Path, help="write <serial>.txt and <serial>.png here")

    for name, text in (
        ("revoke", "revoke a card for good"),
        ("suspend", "suspend a card (reversible)"),
        ("reinstate", "lift a suspension"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("serial")

    trust = commands.add_parser("trust-list", help="sign and write the next trust list")
    trust.add_argument("--valid-days", type=int, default=30)
    status = commands.add_parser("status-list", help="sign and write every status list")
    status.add_argument("--valid-days", type=int, default=7)
    publish = commands.add_parser(
        "publish", help="sign trust list and status lists and write the verifier bundle"
    )
    publish.add_argument("--trust-days", type=int, default=30)
    publish.add_argument("--status-days", type=int, default=7)
    publish.add_argument(
        "--to",
        type=Path,
        metavar="DIR",
        help=(
            "write what the issuer service serves (from its database, with its settings) to "
            "DIR for a static web server: bundle.json, trust-list.jwt, jwks.json, status/<id>"
        ),
    )

    keys = commands.add_parser("keys", help="list, rotate or retire keys")
    key_commands = keys.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    key_commands.add_parser("list", help="show every key and its state")
    rotate = key_commands.add_parser("rotate", help="announce a new key; it takes over later")
    rotate.add_argument("--announce-days", type=float, default=7.0)
    rotate.add_argument("--algorithm", choices=("ES256", "EdDSA"), default="ES256")
    compromised = key_commands.add_parser("compromised", help="distrust a key")
    compromised.add_argument("kid")
    compromised.add_argument("--since", help="ISO time from which to refuse (default: always)")
    key_commands.add_parser("jwks", help="print the issuing keys as a JWK Set")
    add_hsm = key_commands.add_parser(
        "add-hsm", help="rotate to the HSM key named by FMCARD_HSM_MODULE/_TOKEN/_KEY"
    )
    add_hsm.add_argument("--announce-days", type=float, default=7.0)

    serve = commands.add_parser("serve", help="run the issuer web service (console and API)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default: %(default)s)"
    )
    serve.add_argument("--workers", type=int, help="worker processes (default: settings)")
    serve.add_argument(
        "--demo", action="store_true", help="development: seed a demo office, officers and persons"
    )

    db = commands.add_parser(
        "db", help="database: upgrade, backup, restore, maintenance (expiry, reminders, search)"
    )
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply schema migrations (Alembic)")
    db_commands.add_parser(
        "expire-cards", help="mark cards past their expiry as expired (run daily, e.g. cron)"
    )
    db_commands.add_parser(
        "purge-applications",
        help="delete the personal data of rejected, withdrawn and abandoned online "
        "applications past FMCARD_APPLICATION_RETENTION_DAYS, and dead one-time codes",
    )
    db_commands.add_parser(
        "send-reminders",
        help="e-mail the expiry reminders due now (the service also sends them on its timer)",
    )
    db_commands.add_parser(
        "rebuild-search", help="re-create the name-search indexes from the registry's rows"
    )
    db_commands.add_parser(
        "rebuild-status", help="recompute the stored status lists from the cards (a repair)"
    )
    backup = db_commands.add_parser("backup", help="copy the SQLite database while it runs")
    backup.add_argument("target", type=Path)
    restore = db_commands.add_parser(
        "restore", help="replace the SQLite database (service stopped)"
    )
    restore.add_argument("source", type=Path)

    audit_parser = commands.add_parser("audit", help="check the tamper-evident audit log")
    audit_commands = audit_parser.add_subparsers(
        dest="audit_command", required=True, metavar="ACTION"
    )
    audit_verify = audit_commands.add_parser(
        "verify",
        help="report the first edited, missing or moved entry",
        description=(
            "Walk the audit chain and its signed checkpoints and name the first entry that was "
            "edited, deleted, moved or cut off. Each intact walk remembers the newest signed "
            "checkpoint it confirmed in the workspace (audit-verified.jwt)."
        ),
    )
    audit_verify.add_argument(
        "--incremental",
        action="store_true",
        help=(
            "start from the checkpoint the last intact walk confirmed: only entries appended "
            "since are walked (a full walk, the default, also re-checks older entries)"
        ),
    )
    audit_commands.add_parser(
        "checkpoint", help="sign the chain head now and print it (keep a copy elsewhere)"
    )

    demo = commands.add_parser(
        "demo", help="make keys, issue sample cards, publish and verify them (development)"
    )
    demo.add_argument("--out", type=Path, default=Path("demo-out"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command: an error is one line and status 1, Ctrl+C one line and status 130, a
    closed pipe (``fmcard ... | head``) status 1 (:func:`verifier._exits.run_command`)."""
    args = build_parser().parse_args(argv)
    return run_command("fmcard", lambda: _checked(args))


def _checked(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (IssuerError, KeysError, SchemaError, VerifierError) as exc:
        print(f"fmcard: error: {exc}", file=sys.stderr)
        if isinstance(exc, PassphraseError) and args.command == "init":
            print("fmcard: for a development workspace: fmcard init --dev", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # the reader went away: run_command ends quietly
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"fmcard: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    if args.command == "demo":
        from cardissuer.core.config import Environment, configured_environment
        from cardissuer.demo import run_demo
        from cardissuer.errors import DemoRefusedError
        from cardissuer.seed import DEMO_REFUSED

        if configured_environment() is not Environment.DEVELOPMENT:
            raise DemoRefusedError(DEMO_REFUSED)
        return run_demo(args.out)
    if args.command == "init":
        return _init(args, now)
    if args.command in ("serve", "db", "audit") or (args.command == "publish" and args.to):
        from cardissuer import service_cli

        return service_cli.run(args)
    if not (args.dir / "keys").is_dir():  # said before the passphrase it would ask for
        raise WorkspaceError(
            f"no workspace in {args.dir}: run 'fmcard --dir {args.dir} init' (or 'init --dev' "
            "for development keys), or name the workspace with --dir or FMCARD_HOME"
        )
    workspace = Workspace(args.dir, _passphrase(args.dir))
    if args.command == "issue":
        return _issue(workspace, args, now)
    if args.command in ("revoke", "suspend", "reinstate"):
        status = {
            "revoke": CardStatus.REVOKED,
            "suspend": CardStatus.SUSPENDED,
            "reinstate": CardStatus.VALID,
        }[args.command]
        if args.command == "reinstate" and workspace.status_of(args.serial) != CardStatus.SUSPENDED:
            raise WorkspaceError(f"card {args.serial} is not suspended")
        if workspace.status_of(args.serial) == CardStatus.REVOKED:
            raise WorkspaceError(f"card {args.serial} is revoked; revocation is final")
        workspace.set_status(args.serial, status)
        print(f"card {args.serial}: {status.name.lower()}; run 'fmcard publish' to tell counters")
        return 0
    if args.command == "trust-list":
        token = workspace.publish_trust_list(at=now, validity=_days(args.valid_days))
        print(f"wrote {args.dir / 'published' / 'trust-list.jwt'} ({len(token)} characters)")
        return 0
    if args.command == "status-list":
        tokens = workspace.publish_status_lists(
            at=now, validity=_days(args.valid_days), ttl=timedelta(hours=1)
        )
        print(f"wrote {len(tokens)} status list(s) to {args.dir / 'published' / 'status'}")
        return 0
    if args.command == "publish":
        settings = PublishSettings(
            trust_list_validity=_days(args.trust_days),
            status_list_validity=_days(args.status_days),
        )
        workspace.publish(at=now, settings=settings)
        print(f"wrote {args.dir / 'published' / 'bundle.json'} (and trust list, status lists)")
        return 0
    return _keys(workspace, args, now)


def _init(args: argparse.Namespace, now: datetime) -> int:
    directory: Path = args.dir
    if args.dev:
        directory.mkdir(parents=True, exist_ok=True)
        if (directory / "keys").exists():
            raise WorkspaceError(f"{directory} already holds a workspace")
        write_private_file(directory / DEV_PASSPHRASE_FILE, secrets.token_urlsafe(24).encode())
    issuer = IssuerInfo(args.issuer_id, args.name_en, args.name_zh, args.status_uri_prefix)
    workspace = Workspace.create(
        directory,
        issuer=issuer,
        passphrase=_passphrase(directory),
        at=now,
        algorithm=args.algorithm,
    )
    ring = workspace.keyring
    print(f"created workspace {directory}")
    print(f"  trust anchor:     {ring.anchor_thumbprint(workspace.passphrase)}")
    print("                    (counters pin it: fmcard-verify sync --anchor-thumbprint ...)")
    print(f"  issuing key kid:  {ring.active_record(now).kid}")
    return 0


def _issue(workspace: Workspace, args: argparse.Namespace, now: datetime) -> int:
    raw = sys.stdin.read(MAX_REQUEST_BYTES) if str(args.request) == "-" else _read(args.request)
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise WorkspaceError(f"{args.request}: not valid JSON ({exc})") from None
    request = CardRequest.from_json(document)
    photo = args.portrait.read_bytes() if args.portrait is not None else None
    issued = workspace.issue(request, at=now, photo=photo)
    card = issued.card
    print(
        f"issued card {card.serial} to {foreigner_code.format_for_reading(card.code)}",
        file=sys.stderr,
    )
    if args.out is not None:
        from cardissuer.render.qr import qr_png, qr_version

        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{card.serial}.txt").write_text(issued.qr_text + "\n", encoding="ascii")
        (args.out / f"{card.serial}.png").write_bytes(qr_png(issued.qr_text))
        version, level = qr_version(issued.qr_text)
        print(f"wrote {args.out / card.serial}.png (QR version {version}-{level})", file=sys.stderr)
    print(issued.qr_text)
    return 0


def _keys(workspace: Workspace, args: argparse.Namespace, now: datetime) -> int:
    ring = workspace.keyring
    if args.key_command == "list":
        anchor = ring.anchor_thumbprint(workspace.passphrase)
        print(f"trust anchor  {ring.anchor_kid}  thumbprint {anchor}")
        for record in ring.keys:
            until = f" until {record.valid_until:%Y-%m-%d %H:%M}" if record.valid_until else ""
            print(
                f"issuing key   {record.kid}  {record.algorithm:5}  "
                f"{record.state_at(now).value:11} from {record.valid_from:%Y-%m-%d %H:%M}{until}"
            )
        return 0
    if args.key_command == "rotate":
        with workspace.locked():
            record = ring.rotate(
                workspace.passphrase,
                at=now,
                announce=timedelta(days=args.announce_days),
                algorithm=args.algorithm,
            )
        print(f"new key {record.kid} signs from {record.valid_from:%Y-%m-%d %H:%M} UTC;")
        print("run 'fmcard publish' now so that counters learn it before then")
        return 0
    if args.key_command == "add-hsm":
        from keys.hsm import HsmSigner

        signer = HsmSigner.from_env()
        with workspace.locked():
            record = ring.add_external(
                signer.public_key, at=now, announce=timedelta(days=args.announce_days)
            )
        print(f"HSM key {record.kid} signs from {record.valid_from:%Y-%m-%d %H:%M} UTC;")
        print("run 'fmcard publish' (or 'fmcard trust-list') now so that counters learn it")
        return 0
    if args.key_command == "compromised":
        since = parse_time("--since", args.since) if args.since else None
        with workspace.locked():
            ring.mark_compromised(args.kid, since=since)
        print(f"key {args.kid} marked compromised; run 'fmcard keys rotate' and 'fmcard publish'")
        return 0
    print(json.dumps(ring.jwks(workspace.passphrase), indent=2))
    return 0


def _passphrase(directory: Path) -> Passphrase:
    if os.environ.get(PASSPHRASE_ENV) or os.environ.get(PASSPHRASE_FILE_ENV):
        return Passphrase.from_env()
    dev_file = directory / DEV_PASSPHRASE_FILE
    if dev_file.exists():
        print(f"fmcard: using the DEVELOPMENT passphrase in {dev_file}", file=sys.stderr)
        return Passphrase.from_file(dev_file)
    return Passphrase.from_env()  # raises with the variable names to set


def _days(days: int) -> timedelta:
    if not 1 <= days <= 366:
        raise WorkspaceError("validity must be between 1 and 366 days")
    return timedelta(days=days)


def _read(path: Path) -> bytes:
    with path.open("rb") as file:
        data = file.read(MAX_REQUEST_BYTES + 1)
    if len(data) > MAX_REQUEST_BYTES:
        raise WorkspaceError(f"{path} is larger than {MAX_REQUEST_BYTES} bytes")
    return data


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
