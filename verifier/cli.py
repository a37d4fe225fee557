"""``fmcard-verify``: check a card at the counter, offline.

::

    fmcard-verify [--bundle FILE] [--service hc | --counter hospital] 'FM1:...'
                                   (no --bundle: $FMCARD_BUNDLE, else the bundle sync keeps)
    fmcard-verify serve [--bundle FILE] [--counter hospital] ...   the counter station page
    fmcard-verify sync --from URL-or-FILE ...                       update the station's bundle
    fmcard-verify policy [--counter bank] ...                       show the effective policy

Exit status of a check: 0 the card is VALID for the service, 1 it is not (the reason is
printed), 2 the command was used wrongly or the bundle/image could not be used. ``sync``: 0 the
station holds a good bundle (new or unchanged), 1 the source failed or was refused (a held
bundle stays), 2 usage error; ``sync --status``: 0 a bundle is held, 1 none is. Output to a
reader that went away (``| head``): 1, quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas import code as foreigner_code
from verifier._exits import run_command
from verifier._image import qr_texts_from_image
from verifier.bundle import Bundle
from verifier.errors import VerifierError
from verifier.i18n import LANGUAGES, gettext
from verifier.policy import LocalPolicy, counter_types, load_local_policies
from verifier.result import VerificationResult
from verifier.sync import StationData, default_data_dir, human_duration
from verifier.verifier import Verifier

BUNDLE_ENV = "FMCARD_BUNDLE"
MAX_INPUT_FILE = 64 * 1024
MAX_IMAGE_FILE = 32 * 1024 * 1024
"""A phone's photo is a few MB; a screenshot less."""


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmcard-verify",
        description=(
            "Verify a Foreign Merchant Card offline against a verifier bundle: signature, "
            "issuer trust, dates, revocation and the holder's entitlement to this counter's "
            "service. Exit status 0 valid, 1 not valid, 2 usage error."
        ),
        epilog=(
            "examples:\n"
            "  fmcard-verify --service hc 'FM1:...'      # the bundle kept by 'sync'\n"
            "  fmcard-verify --bundle bundle.json --service hc 'FM1:...'\n"
            "  fmcard-verify --bundle bundle.json --service bk --image card.png --json\n"
            "  fmcard-verify --bundle bundle.json --file card.txt --lang zh"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "qr_text",
        nargs="?",
        help="the QR text (FM1: a printed card; FM2: a phone card's live code)",
    )
    source.add_argument("--file", type=Path, help="read the QR text from a file ('-' = stdin)")
    source.add_argument(
        "--image", type=Path, help="read the QR from a PNG or JPEG photo or screenshot"
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        default=os.environ.get(BUNDLE_ENV),
        help=(
            f"verifier bundle file (default: ${BUNDLE_ENV}, else the bundle that "
            "'fmcard-verify sync' keeps in the data directory)"
        ),
    )
    add_anchor_arguments(
        parser, "refuse the bundle unless its trust anchor has this full SHA-256 thumbprint"
    )
    add_data_dir_argument(parser)
    _add_service_arguments(parser)
    parser.add_argument(
        "--at", help="verify as of this ISO 8601 time instead of now (for audits and tests)"
    )
    parser.add_argument(
        "--lang",
        choices=LANGUAGES,
        default="en",
        help="language of the verdict (default en): " + ", ".join(LANGUAGES),
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.epilog = (parser.epilog or "") + (
        "\n\nthe counter station and its data:\n"
        "  fmcard-verify serve --help     the counter page (camera, scanner, paste, photo)\n"
        "  fmcard-verify sync --help      fetch and verify the bundle, keep the last good one\n"
        "  fmcard-verify policy --help    the policy a counter applies"
    )
    return parser


ANCHOR_KID_REFUSED = (
    "--anchor-kid is not accepted: a short key id can be forged; give the trust anchor's full "
    "SHA-256 thumbprint (43 characters, printed by 'fmcard init' and 'fmcard keys list') "
    "with --anchor-thumbprint"
)


def add_anchor_arguments(parser: argparse.ArgumentParser, help_text: str) -> None:
    """``--anchor-thumbprint``, and ``--anchor-kid`` kept only to say what to use instead."""
    parser.add_argument("--anchor-thumbprint", metavar="THUMBPRINT", help=help_text)
    parser.add_argument("--anchor-kid", metavar="KID", help="refused: use --anchor-thumbprint")


def add_data_dir_argument(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``: where ``sync`` keeps the station's bundle. The check, ``serve``,
    ``sync`` and ``policy`` take the same option, so a bundle synced once is every command's
    default."""
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"station data directory (default: {default_data_dir()})",
    )


def anchor_thumbprint(args: argparse.Namespace) -> str | None:
    """The pinned anchor's thumbprint from the command line; refuse a bare kid."""
    if args.anchor_kid is not None:
        raise UsageError(ANCHOR_KID_REFUSED)
    value: str | None = args.anchor_thumbprint
    return value


def parse_arguments(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``, letting an option's value begin with ``-``.

    argparse takes the ``-sAL5...`` of ``--anchor-thumbprint -sAL5...`` for an unknown option
    and stops with "expected one argument"; one thumbprint in 64 starts with ``-``. Each
    value-taking long option followed by a separate value is joined into ``--option=value``
    first, which argparse reads as it is.
    """
    return parser.parse_args(join_option_values(parser, argv))


def join_option_values(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--option value`` written ``--option=value`` for every long option of
    ``parser`` that takes one value (also when abbreviated, as argparse allows)."""
    long_options = {
        option: action.nargs is None
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    }
    out: list[str] = []
    items = iter(argv)
    for item in items:
        if item == "--":
            out.append(item)
            out.extend(items)
            break
        matches = [item] if item in long_options else []
        if not matches and item.startswith("--") and "=" not in item:
            matches = [option for option in long_options if option.startswith(item)]
        if len(matches) == 1 and long_options[matches[0]]:
            value = next(items, None)
            if value is not None:
                out.append(f"{item}={value}")
                continue
        out.append(item)
    return out


def _add_service_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--service", help="service code this counter checks, e.g. hc, ed, tr, bk (default hc)"
    )
    parser.add_argument(
        "--counter",
        choices=sorted(counter_types()),
        help="counter type: its shipped policy and service (hospital = hc, bank = bk, ...)",
    )
    parser.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="local policy (JSON): may only make the counter's policy stricter",
    )


SUBCOMMANDS = ("serve", "sync", "policy")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; a reader that went away (``fmcard-verify ... | head``) ends it
    quietly with status 1 (never 0: the verdict may not have been read); Ctrl+C ends it with
    one line and status 130, as a shell reports an interrupted command, never a traceback
    (whose frames could show card data). A sync interrupted mid-transfer has written
    nothing: its bundle is replaced only once verified, atomically. ``serve`` catches
    Ctrl+C itself: a server told to stop says ``station stopped`` and exits 0."""
    return run_command("fmcard-verify", lambda: _run(argv))


def _run(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in SUBCOMMANDS:
        from verifier import station_cli

        return station_cli.main(arguments[0], arguments[1:])
    parser = build_parser()
    args = parse_arguments(parser, arguments)
    try:
        pinned = anchor_thumbprint(args)
        at = _parse_at(args.at)
        service, _ = service_of(args.counter, args.service)
        local = _local_policies(args.policy)
        bundle = _load_bundle(args.bundle, args.data_dir, pinned, at)
        qr_text = _read_input(args)
        result = Verifier(bundle, policies=local).verify(qr_text, service=service, at=at)
    except (UsageError, VerifierError) as exc:
        print(f"fmcard-verify: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        print(render(result, args.lang))
    return 0 if result.ok else 1


def render(result: VerificationResult, language: str) -> str:
    """The verdict as a few lines a clerk can read: the verdict word, then the reason and
    the labels in ``language``."""

    def _(message: str) -> str:
        return gettext(language, message)

    def line(label: str, value: str) -> str:
        return f"  {label}: {value}"

    # The verdict word stays English in every language: scripts and logs grep for it.
    mark = "VALID" if result.ok else f"NOT VALID ({result.reason.value})"
    lines = [f"{mark}: {result.message(language)}"]
    card = result.card
    if card is not None:
        names = [card.latin_name, card.native_name, card.chinese_name]
        lines.append(line(_("name"), " / ".join(n for n in names if n)))
        lines.append(line(_("code"), foreigner_code.format_for_reading(card.code)))
        closed = _("not disclosed")
        lines.append(line(_("nationality"), card.nationality or closed))
        born = closed if card.birth_date is None else str(card.birth_date)
        lines.append(line(_("born"), born))
        valid = _("{start} to {end}").format(
            start=f"{card.valid_from:%Y-%m-%d}", end=f"{card.expires_at:%Y-%m-%d}"
        )
        lines.append(line(_("valid"), valid))
        # A card without a photo (a wallet pass carries none): the passport is the photo.
        none = _("none: compare the face with the passport")
        portrait = _("on the card") if result.portrait else none
        if result.portrait is None and result.disclosed is not None:
            portrait = closed
        lines.append(line(_("portrait"), portrait))
    if result.level is not None:
        shown = {
            "live": _("live phone card"),
            "copy": _("copy of a phone card"),
            "printed": _("printed"),
        }
        level = shown[result.level.value]
        if result.disclosed is not None:
            level += "; " + _("{shown} disclosed, {closed} not disclosed").format(
                shown=len(result.disclosed), closed=result.closed
            )
        lines.append(line(_("shown as"), level))
    if result.entitlement is not None:
        e = result.entitlement
        window = ""
        if e.valid_from or e.valid_until:
            start = f"{e.valid_from:%Y-%m-%d}" if e.valid_from else _("card start")
            end = f"{e.valid_until:%Y-%m-%d}" if e.valid_until else _("card end")
            window = " (" + _("{start} to {end}").format(start=start, end=end) + ")"
        lines.append(line(_("entitlement"), f"{e.service}{window}"))
    age = result.status_age_seconds
    if age is not None:
        # The formatter of sync and the station: "12 min old", never "0 hours old".
        text = _("{age} old").format(age=human_duration(timedelta(seconds=age), language))
        lines.append(line(_("status list"), text))
    if result.detail:
        lines.append(line(_("detail"), result.detail))
    return "\n".join(lines)


def service_of(counter: str | None, service: str | None) -> tuple[str, str | None]:
    """The service a counter checks: ``--counter``'s preset, or ``--service`` (default hc);
    both must agree when both are given. Returns the service and the counter type."""
    types = counter_types()
    if counter is not None:
        preset = types[counter].service
        if service is not None and service != preset:
            raise UsageError(f"--counter {counter} checks {preset!r}, not --service {service!r}")
        return preset, counter
    chosen = service or "hc"
    return chosen, next((t.name for t in types.values() if t.service == chosen), None)


def _local_policies(path: Path | None) -> list[LocalPolicy]:
    return [] if path is None else load_local_policies(path)


def _parse_at(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at {text!r} is not an ISO 8601 time") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _load_bundle(
    path: Path | None, data_dir: Path | None, thumbprint: str | None, at: datetime
) -> Bundle:
    """``--bundle`` (or ``$FMCARD_BUNDLE``), else the bundle ``sync`` keeps in the data
    directory, verified against the anchor it pinned: the same default as ``serve``, so a
    counter that synced can check a card without naming a file."""
    if path is not None:
        bundle = Bundle.load(path, at=at, anchor_thumbprint=thumbprint)
    else:
        data = StationData(data_dir or default_data_dir())
        held = data.load(at=at)
        if held is None:
            raise UsageError(
                f"no bundle: none given (--bundle FILE or ${BUNDLE_ENV}) and none synced into "
                f"{data.directory}; get one with 'fmcard-verify sync --from URL-or-FILE "
                "--anchor-thumbprint THUMBPRINT' (the issuer's /bundle.json)"
            )
        bundle = held
    bundle.require_anchor(thumbprint)
    return bundle


def _read_input(args: argparse.Namespace) -> str:
    if args.qr_text is not None:
        return str(args.qr_text)
    if args.file is not None:
        if str(args.file) == "-":
            return sys.stdin.read(MAX_INPUT_FILE)
        return _read_limited(args.file).decode("utf-8", "replace")
    if args.image is not None:
        data = _read_limited(args.image, limit=MAX_IMAGE_FILE + 1)
        if len(data) > MAX_IMAGE_FILE:
            # Read whole, /dev/zero or a FIFO kept the command running, its memory growing.
            raise UsageError(f"{args.image} is larger than {MAX_IMAGE_FILE} bytes: not a photo")
        texts = qr_texts_from_image(data)
        if not texts:
            # The printed card's front has no code: people photograph the side with the face.
            raise UsageError(
                f"no QR code found in {args.image}: the QR is on the back of a printed card; "
                "give a photo of the back, the QR image, or a screenshot of the holder's screen"
            )
        cards = [t for t in texts if t.startswith("FM1:")]
        return cards[0] if cards else texts[0]
    raise UsageError("give the QR text, --file or --image (see --help)")


def _read_limited(path: Path, limit: int = MAX_INPUT_FILE) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(limit)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
