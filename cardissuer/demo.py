"""``fmcard demo``: the whole life of a card in one command, with development keys.

Makes a workspace (keys back-dated two years so that an old card can be shown expiring),
issues five sample cards (Latin, Russian + Chinese, Arabic + Chinese with a portrait, one to be
revoked and one long expired), revokes one, publishes the verifier bundle, writes each card's
QR as PNG and text, and verifies every card as a counter would, reading the PNG back when the
``[scan]`` extra is installed.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from cardissuer.card_request import CardRequest
from cardissuer.cli import DEV_PASSPHRASE_FILE
from cardissuer.errors import WorkspaceError
from cardissuer.render.qr import qr_png, qr_version
from cardissuer.workspace import DEFAULT_ISSUER, Workspace
from keys.status_list import CardStatus
from keys.store import Passphrase, write_private_file
from verifier.bundle import Bundle
from verifier.errors import VerifierError
from verifier.verifier import Verifier

MARKER = ".fmcard-demo"
DEMO_PASSPHRASE = "demo passphrase, development only"  # noqa: S105 - public by design


@dataclass(frozen=True, slots=True)
class Sample:
    label: str
    request: dict[str, Any]
    service: str
    portrait: bool = False
    issued_days_ago: int = 0
    revoke: bool = False


SAMPLES = (
    Sample(
        "Latin name, healthcare",
        {
            "family_name": "OKONKWO",
            "given_names": "CHIDI EMEKA",
            "nationality": "NGA",
            "birth_date": "1979-07-02",
            "entitlements": ["hc", "bk", "tr"],
        },
        "hc",
    ),
    Sample(
        "Russian and Chinese names, at a bank",
        {
            "family_name": "IVANOVA",
            "given_names": "ANNA SERGEEVNA",
            "native_name": "Иванова Анна Сергеевна",
            "chinese_name": "伊万诺娃·安娜",
            "nationality": "RUS",
            "birth_date": "1990-11-23",
            "entitlements": ["hc", "ed"],
        },
        "bk",
    ),
    Sample(
        "Arabic and Chinese names with portrait",
        {
            "family_name": "AL-HASHIMI",
            "given_names": "MOHAMMED ABDULLAH",
            "native_name": "محمد عبدالله الهاشمي",
            "chinese_name": "穆罕默德",
            "nationality": "SAU",
            "birth_date": "1985-03-14",
            "entitlements": ["hc", "bk", "ho"],
        },
        "hc",
        portrait=True,
    ),
    Sample(
        "revoked card",
        {
            "family_name": "SHARMA",
            "given_names": "PRIYA",
            "nationality": "IND",
            "birth_date": "1988-01-30",
            "entitlements": ["hc", "bk"],
        },
        "hc",
        revoke=True,
    ),
    Sample(
        "expired card",
        {
            "family_name": "NGUYEN",
            "given_names": "VAN AN",
            "nationality": "VNM",
            "birth_date": "1975",
            "entitlements": ["hc"],
            "valid_days": 365,
        },
        "hc",
        issued_days_ago=400,
    ),
)


def run_demo(out: Path) -> int:
    """Run the demo into ``out`` (replacing an earlier demo there); return an exit status."""
    now = datetime.now(UTC)
    _prepare(out)
    workspace_dir = out / "workspace"
    workspace_dir.mkdir(parents=True)
    write_private_file(workspace_dir / DEV_PASSPHRASE_FILE, DEMO_PASSPHRASE.encode())
    passphrase = Passphrase.from_text(DEMO_PASSPHRASE)
    workspace = Workspace.create(
        workspace_dir, issuer=DEFAULT_ISSUER, passphrase=passphrase, at=now - timedelta(days=730)
    )
    _say(f"Created development keys in {workspace_dir} (passphrase file: {DEV_PASSPHRASE_FILE})")
    photo = resources.files("cardissuer").joinpath("demo/sample-photo.jpg").read_bytes()
    cards_dir = out / "cards"
    cards_dir.mkdir()
    issued = []
    for sample in SAMPLES:
        card = workspace.issue(
            CardRequest.from_json(sample.request),
            at=now - timedelta(days=sample.issued_days_ago),
            photo=photo if sample.portrait else None,
        )
        portrait = card.portrait
        if sample.revoke:
            workspace.set_status(card.card.serial, CardStatus.REVOKED)
        (cards_dir / f"{card.card.serial}.txt").write_text(card.qr_text + "\n", encoding="ascii")
        (cards_dir / f"{card.card.serial}.png").write_bytes(qr_png(card.qr_text))
        version, level = qr_version(card.qr_text)
        portrait_note = f", portrait {len(portrait)} B" if portrait else ""
        _say(
            f"Issued {card.card.serial}  {sample.label:40} QR version {version:2}-{level}, "
            f"{len(card.qr_text)} characters{portrait_note}"
        )
        issued.append((sample, card))
    workspace.publish(at=now)
    bundle_path = workspace_dir / "published" / "bundle.json"
    _say(f"Published the verifier bundle: {bundle_path}\n")
    return _verify_all(bundle_path, cards_dir, issued, now)


def _verify_all(bundle_path: Path, cards_dir: Path, issued: list[Any], now: datetime) -> int:
    verifier = Verifier(Bundle.load(bundle_path, at=now))
    read_image = _image_reader()
    source = "QR image (zxing-cpp)" if read_image else "QR text"
    _say(f"Verifying each card at a counter, from its {source}:")
    wrong = 0
    expected = {
        "revoked card": "REVOKED",
        "expired card": "EXPIRED",
        "Russian and Chinese names, at a bank": "NOT_ENTITLED",
    }
    for sample, card in issued:
        text = card.qr_text
        if read_image is not None:
            texts = read_image((cards_dir / f"{card.card.serial}.png").read_bytes())
            text = texts[0] if texts else ""
        result = verifier.verify(text, service=sample.service, at=now)
        want = expected.get(sample.label, "VALID")
        wrong += result.reason.value != want
        _say(
            f"  {card.card.latin_name:30} at a '{sample.service}' counter -> "
            f"{result.reason.value:12} {result.message('en')} / {result.message('zh')}"
        )
    _say(
        "\nTry it yourself:\n"
        f"  fmcard-verify --bundle {bundle_path} --service hc --file {cards_dir}/<serial>.txt\n"
        f"  fmcard-verify --bundle {bundle_path} --service hc --image {cards_dir}/<serial>.png"
    )
    if wrong:
        _say(f"demo: {wrong} card(s) got an unexpected verdict", error=True)
    return 1 if wrong else 0


def _image_reader() -> Any:
    try:
        import zxingcpp  # noqa: F401

        from verifier._image import qr_texts_from_image
    except ImportError:
        return None

    def read(data: bytes) -> list[str]:
        try:
            return qr_texts_from_image(data)
        except VerifierError:
            return []

    return read


def _prepare(out: Path) -> None:
    if out.exists():
        if not (out / MARKER).exists():
            raise WorkspaceError(f"{out} exists and is not an earlier demo; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by 'fmcard demo'; deleted by the next demo run\n")


def _say(text: str, *, error: bool = False) -> None:
    print(text, file=sys.stderr if error else sys.stdout)
