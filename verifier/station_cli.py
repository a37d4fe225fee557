"""``fmcard-verify serve``, ``sync`` and ``policy``: the counter station's commands.

``docs/COUNTER.md`` is the manual; :mod:`verifier.server` and :mod:`verifier.sync` do the work.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import webbrowser
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from keys.jwk import key_thumbprint, kid_of
from verifier.bundle import Bundle
from verifier.cli import (
    BUNDLE_ENV,
    UsageError,
    _add_service_arguments,
    add_anchor_arguments,
    add_data_dir_argument,
    anchor_thumbprint,
    parse_arguments,
    service_of,
)
from verifier.errors import VerifierError
from verifier.policy import (
    SHOWABLE_FIELDS,
    LocalPolicy,
    Policy,
    counter_types,
    default_policy,
    load_local_policies,
)
from verifier.scanlog import SALT_FILE, ScanLog, load_or_create_salt
from verifier.server import (
    CLERK_LANGUAGES,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_RETURN_AFTER,
    HOLDER_LANGUAGES,
    BundleHolder,
    Station,
    StationConfig,
    StationServer,
)
from verifier.sync import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    StationData,
    SyncOutcome,
    data_age,
    default_data_dir,
    human_duration,
    report,
    sync,
)

MAX_TIMEOUT = 3600.0
"""The longest ``sync --timeout``: beyond an hour a timer's syncs would pile up."""


def _say(text: str, *, error: bool = False) -> None:
    stream = sys.stderr if error else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmcard-verify serve",
        description=(
            "The counter station: a local web page that reads a card's QR from the camera, a "
            "USB/keyboard-wedge scanner, pasted text or a photo, verifies it offline and shows "
            "the verdict in green, red or amber. Keeps no scan history."
        ),
        epilog=(
            "examples:\n"
            "  fmcard-verify serve --bundle demo-out/workspace/published/bundle.json "
            "--service hc\n"
            "  fmcard-verify serve --counter bank          # the bundle kept by 'sync'\n"
            "  fmcard-verify serve --counter transport --lang en --return-after 4"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        default=os.environ.get(BUNDLE_ENV),
        help=(
            f"verify with this bundle file (default: ${BUNDLE_ENV}, else the bundle that "
            "'fmcard-verify sync' keeps in the data directory); reloaded when it changes"
        ),
    )
    add_anchor_arguments(
        parser, "with --bundle: refuse it unless its trust anchor has this full SHA-256 thumbprint"
    )
    add_data_dir_argument(parser)
    _add_service_arguments(parser)
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--lang",
        choices=CLERK_LANGUAGES,
        default="zh",
        help="the clerk's language (default zh; the page can switch)",
    )
    parser.add_argument(
        "--holder-langs",
        default=",".join(HOLDER_LANGUAGES),
        metavar="LANG,LANG",
        help=(
            "languages of the lines shown to the holder under the verdict "
            f"(default {','.join(HOLDER_LANGUAGES)}; any of {', '.join(CLERK_LANGUAGES)})"
        ),
    )
    parser.add_argument(
        "--return-after",
        type=float,
        default=DEFAULT_RETURN_AFTER,
        metavar="SECONDS",
        help=f"back to scanning after this long (default {DEFAULT_RETURN_AFTER:g}; 0 = stay)",
    )
    parser.add_argument(
        "--log",
        type=Path,
        metavar="FILE",
        help=(
            "append one line per scan: time, reason, service and a salted hash of the card "
            "serial (never names, codes or the QR text). Off by default"
        ),
    )
    parser.add_argument("--open", action="store_true", help="open the page in the browser")
    parser.add_argument("--verbose", action="store_true", help="print each HTTP request")
    return parser


def sync_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmcard-verify sync",
        description=(
            "Fetch the issuer's bundle (HTTP(S) with ETag/Last-Modified, or a file or USB "
            "stick), verify it against the pinned trust anchor, refuse rollback and keep the "
            "last good bundle when the new one is bad. Prints how old the station's data is."
        ),
        epilog=(
            "examples:\n"
            "  fmcard-verify sync --from https://fmcard.example/bundle.json \\\n"
            "      --anchor-thumbprint kPrK_qmxRYjr1ZzLIKGpQRa0t8W0rV9aQvS7J3Xb4sE\n"
            "  fmcard-verify sync --from /media/usb          # bundle.json on a USB stick\n"
            "  fmcard-verify sync                            # the same source as last time\n"
            "  fmcard-verify sync --status --counter bank    # only report the data's age"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="URL-OR-PATH",
        help="the bundle's URL, file, or a directory holding bundle.json (default: last source)",
    )
    add_anchor_arguments(
        parser,
        "first sync: pin the trust anchor only if its full SHA-256 thumbprint (43 characters) "
        "is this (strongly advised)",
    )
    add_data_dir_argument(parser)
    _add_service_arguments(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"for the whole download (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="refuse larger bundles"
    )
    parser.add_argument("--status", action="store_true", help="report only; fetch nothing")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument("--quiet", action="store_true", help="print only errors (for timers)")
    return parser


def policy_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmcard-verify policy",
        description=(
            "Print the policy a counter applies: the issuer's signed policy from the bundle, "
            "else the shipped default of its counter type, made stricter by --policy."
        ),
    )
    parser.add_argument("--bundle", type=Path, help="bundle file (default: the data directory's)")
    add_data_dir_argument(parser)
    _add_service_arguments(parser)
    parser.add_argument("--list", action="store_true", help="list the shipped counter types")
    return parser


def main(command: str, argv: Sequence[str]) -> int:
    handlers = {"serve": _serve, "sync": _sync, "policy": _policy}
    parsers = {"serve": serve_parser, "sync": sync_parser, "policy": policy_parser}
    args = parse_arguments(parsers[command](), list(argv))
    try:
        return handlers[command](args)
    except (UsageError, VerifierError) as exc:
        _say(f"fmcard-verify {command}: error: {exc}", error=True)
        return 2


def _now() -> datetime:
    return datetime.now(UTC)


def _local(path: Path | None) -> tuple[LocalPolicy, ...]:
    return () if path is None else tuple(load_local_policies(path))


def _serve(args: argparse.Namespace) -> int:
    service, counter = service_of(args.counter, args.service)
    local = _local(args.policy)
    data = StationData(args.data_dir or default_data_dir())
    at = _now()
    pinned = anchor_thumbprint(args)
    if args.bundle is not None:
        holder = BundleHolder.from_file(args.bundle, at=at, anchor_thumbprint=pinned)
        station_data = None
    else:
        if pinned is not None:
            raise UsageError(
                "--anchor-thumbprint goes with --bundle (sync pins the data directory's)"
            )
        holder = BundleHolder.from_data_dir(data, at=at)
        station_data = data
    log = None
    if args.log is not None:
        salt = load_or_create_salt(data.directory / SALT_FILE)
        log = ScanLog(args.log, salt)
    config = StationConfig(
        service=service,
        counter=counter,
        clerk_language=args.lang,
        holder_languages=tuple(code.strip() for code in args.holder_langs.split(",") if code),
        return_after=args.return_after,
        local_policies=local,
    )
    station = Station(holder, config, log=log, data=station_data)
    base = holder.bundle.policy(service)
    for restriction in local:
        for note in restriction.loosenings(base):
            _say(f"fmcard-verify serve: local policy ignored: {note}", error=True)
    try:
        server = StationServer((args.host, args.port), station, quiet=not args.verbose)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    try:
        policy = station.policy()
        age = data_age(holder.bundle, at=at, policy=policy)
        status_age = (
            f"status list {human_duration(age.oldest_status_age)} old"
            if age.oldest_status_age is not None
            else "no status list"
        )
        _say(
            f"fmcard counter station on {server.url}  (service {service}"
            f"{', counter ' + counter if counter else ''}; {status_age}, limit "
            f"{human_duration(policy.max_status_age)}; bundle {holder.path})"
        )
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            _say(
                "fmcard-verify serve: warning: reachable from the network; browsers open the "
                "camera only on localhost or HTTPS",
                error=True,
            )
        if log is not None:
            _say(f"scan log: {args.log} (time, reason, service, salted card hash only)")
        _say("Ctrl+C stops the station.")
        if args.open:
            webbrowser.open(server.url)
        signal.signal(signal.SIGTERM, _stop)  # systemd stops services with SIGTERM
        server.serve_forever()
    except KeyboardInterrupt:
        _say("station stopped")
    finally:
        server.server_close()
    return 0


def _stop(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _sync(args: argparse.Namespace) -> int:
    data = StationData(args.data_dir or default_data_dir())
    pinned = anchor_thumbprint(args)
    service, _ = service_of(args.counter, args.service)
    local = _local(args.policy)
    at = _now()
    if args.status:
        bundle = data.load(at=at)
        policy = _effective(bundle, service, local)
        if args.json:
            _say(json.dumps(_status_json(bundle, data, at, policy, None), indent=2))
        else:
            _say(report(bundle, data.state(), at=at, policy=policy))
        # 0 only when the station holds a bundle to verify with (docs/COUNTER.md): a
        # monitoring check of a station that never synced must not read as healthy.
        return 0 if bundle is not None else 1
    source = args.source or data.state().source
    if not source:
        raise UsageError("no source: give --from URL-or-PATH (later syncs reuse it)")
    if not 0 < args.timeout <= MAX_TIMEOUT:  # also refuses nan
        raise UsageError(f"--timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds")
    outcome = sync(
        data,
        source,
        at=at,
        anchor_thumbprint=pinned,
        timeout=args.timeout,
        max_bytes=args.max_bytes,
    )
    policy = _effective(outcome.bundle, service, local)
    if args.json:
        _say(json.dumps(_status_json(outcome.bundle, data, at, policy, outcome), indent=2))
        return 0 if outcome.ok else 1
    if outcome.error:
        _say(f"fmcard-verify sync: {_failure(outcome)}", error=True)
    elif not args.quiet:
        if outcome.not_modified:
            _say(f"not modified: {source}")
        elif outcome.first_install and outcome.bundle is not None:
            pins = ", ".join(key_thumbprint(k) for k in outcome.bundle.anchors)
            _say(f"installed the first bundle from {source}; pinned trust anchor {pins}")
        else:
            _say(f"installed a new bundle from {source}")
        for note in outcome.notes:
            _say(note)
    if outcome.clock_warning:
        # Even with --quiet: a timer's log is where a wrong clock is noticed. Not an error:
        # what was installed is good, and the exit status says so.
        _say(f"fmcard-verify sync: warning: {outcome.clock_warning}", error=True)
    if not args.quiet or outcome.error:
        # The error is the one line on stderr; what the station still holds goes to stdout
        # (after a failed first sync, without the hint to run the command just run).
        _say(report(outcome.bundle, data.state(), at=at, policy=policy, hint=False))
    return 0 if outcome.ok else 1


def _failure(outcome: SyncOutcome) -> str:
    """The failed sync's line: what stays in use, or, when nothing was held (a first sync),
    that nothing was installed; "the held bundle stays" there contradicted "no bundle yet"."""
    error = outcome.error or "unknown error"
    if outcome.bundle is not None:
        return f"refused, the held bundle stays: {error}"
    if "nothing was installed" in error or "nothing was pinned" in error:
        return f"refused: {error}"
    return f"refused, nothing was installed: {error}"


def _effective(
    bundle: Bundle | None, service: str, local: tuple[LocalPolicy, ...]
) -> Policy | None:
    if bundle is None:
        return None
    policy = bundle.policy(service)
    for restriction in local:
        policy = restriction.apply(policy)
    return policy


def _status_json(
    bundle: Bundle | None,
    data: StationData,
    at: datetime,
    policy: Policy | None,
    outcome: SyncOutcome | None,
) -> dict[str, object]:
    out: dict[str, object] = {"data_dir": str(data.directory), "state": data.state().to_json()}
    if outcome is not None:
        out.update(
            ok=outcome.ok,
            installed=outcome.installed,
            not_modified=outcome.not_modified,
            first_install=outcome.first_install,
            error=outcome.error,
            notes=list(outcome.notes),
            clock_warning=outcome.clock_warning,
        )
    if bundle is not None:
        out["anchors"] = [kid_of(k) for k in bundle.anchors]
        out["anchor_thumbprints"] = [key_thumbprint(k) for k in bundle.anchors]
        out["age"] = data_age(bundle, at=at, policy=policy).to_json()
    return out


def _policy(args: argparse.Namespace) -> int:
    if args.list:
        for name, counter_type in sorted(counter_types().items()):
            p = counter_type.policy
            _say(
                f"{name:10} {p.service:4} status age <= {human_duration(p.max_status_age):5} "
                f"portrait {'required' if p.require_portrait else 'optional':8} "
                f"shows {', '.join(n for n in SHOWABLE_FIELDS if n in p.show)}"
            )
        return 0
    service, counter = service_of(args.counter, args.service)
    local = _local(args.policy)
    at = _now()
    if args.bundle is not None:
        bundle: Bundle | None = Bundle.load(args.bundle, at=at)
    else:
        bundle = StationData(args.data_dir or default_data_dir()).load(at=at)
    if bundle is not None:
        base = bundle.policy(service)
        source = "signed by the issuer" if _signed_for(bundle, service) else "shipped default"
        if bundle.unsigned_policies and any(u.service == service for u in bundle.unsigned_policies):
            source += ", stricter by the bundle's unsigned section"
    else:
        base, source = default_policy(service), "shipped default (no bundle)"
    policy = base
    notes: list[str] = []
    for restriction in local:
        notes += restriction.loosenings(base)
        policy = restriction.apply(policy)
    document = {
        "counter": counter,
        "source": source + (", stricter by --policy" if local else ""),
        **policy.to_json(),
        "show": [name for name in SHOWABLE_FIELDS if name in policy.show],
        "ignored_loosenings": notes,
    }
    _say(json.dumps(document, indent=2, ensure_ascii=False))
    return 0


def _signed_for(bundle: Bundle, service: str) -> bool:
    return any(p.service == service for s in bundle.signed_policies for p in s.policies)
