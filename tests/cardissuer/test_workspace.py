"""The offline issuing workspace: random, never reused status indexes; nothing half-done."""

from __future__ import annotations

import base64
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from cardissuer import workspace as workspace_module
from cardissuer.card_request import CardRequest
from cardissuer.errors import CardInputError, WorkspaceError
from cardissuer.portrait import (
    MAX_QR_TEXT,
    MAX_QR_VERSION,
    PORTRAIT_SIZE,
    fit_portrait,
    make_portrait,
    portrait_candidates,
)
from cardissuer.render.card import MIN_BACK_MODULE_MM, back_module_mm
from cardissuer.render.qr import qr_version
from cardissuer.workspace import Workspace
from keys.cards import encode_card
from keys.keyring import IssuerInfo
from keys.status_list import CardStatus
from keys.store import Passphrase
from tests.factories import NOW, Authority, make_card
from verifier import Bundle, Reason, Verifier
from verifier.errors import BundleError

ISSUER = IssuerInfo("CN-ZJ-YWPSB", "Yiwu PSB", "义乌市公安局", "https://fmcard.example/status/")
REQUEST = CardRequest.from_json(
    {
        "family_name": "OKONKWO",
        "nationality": "NGA",
        "birth_date": "1979-07",
        "entitlements": ["hc"],
    }
)
PHOTO = (Path(workspace_module.__file__).parent / "demo" / "sample-photo.jpg").read_bytes()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.create(
        tmp_path / "w", issuer=ISSUER, passphrase=Passphrase.from_text("x" * 16), at=NOW
    )


def test_status_indexes_are_random_and_unique(workspace: Workspace) -> None:
    indexes = [workspace.issue(REQUEST, at=NOW).card.status.index for _ in range(40)]
    assert len(set(indexes)) == len(indexes)
    assert indexes != sorted(indexes)
    assert max(indexes) - min(indexes) > 1000  # spread over the list, not handed out in order


def test_failure_after_allocation_leaves_nothing(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    used_before = (workspace.directory / "status" / "1.used").read_bytes()

    def broken_signer(*_: object, **__: object) -> str:
        raise RuntimeError("HSM unplugged")

    monkeypatch.setattr(workspace_module, "encode_card", broken_signer)
    with pytest.raises(RuntimeError):
        workspace.issue(REQUEST, at=NOW)
    assert (workspace.directory / "status" / "1.used").read_bytes() == used_before
    assert not list((workspace.directory / "cards").glob("*.json"))


def test_issued_cards_verify_and_revocation_shows(workspace: Workspace) -> None:
    kept = workspace.issue(REQUEST, at=NOW)
    revoked = workspace.issue(REQUEST, at=NOW)
    workspace.set_status(revoked.card.serial, CardStatus.REVOKED)
    verifier = Verifier(Bundle.from_json(workspace.publish(at=NOW), at=NOW))
    assert verifier.verify(kept.qr_text, service="hc", at=NOW).reason is Reason.VALID
    assert verifier.verify(revoked.qr_text, service="hc", at=NOW).reason is Reason.REVOKED
    assert workspace.card(kept.card.serial) == kept.card


def test_publish_versions_go_up_and_counters_accept_updates(workspace: Workspace) -> None:
    first = Bundle.from_json(workspace.publish(at=NOW), at=NOW)
    later = NOW + timedelta(hours=1)
    second = first.update(workspace.publish(at=later), at=later)
    assert second.trust_list.version == first.trust_list.version + 1


def test_the_service_workspace_is_not_published_offline(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's cards are in its database: an offline bundle of its workspace would
    carry no status list, and counters holding the service's lists refuse it."""
    monkeypatch.delenv("FMCARD_DATABASE_URL", raising=False)
    (workspace.directory / "fmcard.db").write_bytes(b"")
    trust_list = workspace.directory / "published" / "trust-list.jwt"
    before = trust_list.read_bytes() if trust_list.exists() else None
    with pytest.raises(WorkspaceError, match="publish --to DIR"):
        workspace.publish(at=NOW)
    assert not (workspace.directory / "published" / "bundle.json").exists()
    assert (trust_list.read_bytes() if trust_list.exists() else None) == before
    workspace.issue(REQUEST, at=NOW)  # an offline workspace that issues publishes as before
    assert Bundle.from_json(workspace.publish(at=NOW), at=NOW).status_lists


def test_two_publications_in_one_second_sign_status_lists_with_later_iats(
    workspace: Workspace,
) -> None:
    """A revocation published in the same second as the list before it reaches the counter,
    and the list before it cannot be replayed over it."""
    card = workspace.issue(REQUEST, at=NOW)
    first = Bundle.from_json(workspace.publish(at=NOW), at=NOW)
    workspace.set_status(card.card.serial, CardStatus.REVOKED)
    document = workspace.publish(at=NOW)
    second = first.update(document, at=NOW)
    (held,) = second.status_lists.values()
    (before,) = first.status_lists.values()
    assert held.issued_at == before.issued_at + timedelta(seconds=1)
    assert Verifier(second).verify(card.qr_text, service="hc", at=NOW).reason is Reason.REVOKED
    replay = {**second.to_json(), "status_lists": list(first.status_list_tokens)}
    with pytest.raises(BundleError, match="rollback"):
        second.update(replay, at=NOW)
    # The next one, in the same second again, signs later still.
    third = workspace.publish_status_lists(
        at=NOW, validity=timedelta(days=7), ttl=timedelta(hours=1)
    )
    assert read_iat(third[0]) == int(NOW.timestamp()) + 2


def read_iat(token: str) -> int:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    iat: int = claims["iat"]
    return iat


def test_request_validation_names_the_field() -> None:
    with pytest.raises(CardInputError, match="valid_days"):
        CardRequest.from_json({**REQUEST.fields, "valid_days": 0})
    with pytest.raises(CardInputError, match=r"^entitlements: service code 'Health'"):
        CardRequest.from_json({**REQUEST.fields, "entitlements": ["Health"]})
    with pytest.raises(CardInputError, match="birth_date"):
        CardRequest.from_json({**REQUEST.fields, "birth_date": "14.03.1985"})


def test_portrait_is_small_grey_and_without_metadata() -> None:
    portrait = make_portrait(PHOTO)
    assert portrait.media_type == "image/avif"
    assert 400 < len(portrait.data) < 1100
    assert b"Exif" not in portrait.data
    assert b"prof" not in portrait.data  # no ICC profile box
    sizes = [len(candidate.data) for candidate in portrait_candidates(PHOTO)]
    assert sizes == sorted(sizes, reverse=True)


def test_unreadable_photo_is_refused() -> None:
    from cardissuer.errors import PortraitError

    with pytest.raises(PortraitError, match="not a readable image"):
        make_portrait(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(PortraitError, match="larger than"):
        make_portrait(b"\xff" * (11 * 1024 * 1024))


def _photo(size: tuple[int, int], orientation: int = 1) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation: 6 = rotate 90 degrees to show upright
    Image.new("RGB", size, (120, 100, 80)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("size", "orientation"),
    [((1, 1), 1), ((95, 120), 1), ((96, 119), 1), ((120, 96), 1), ((96, 120), 6)],
    ids=["1x1", "too-narrow", "too-low", "landscape", "upright-after-rotation-is-landscape"],
)
def test_photo_smaller_than_the_portrait_is_refused(
    size: tuple[int, int], orientation: int
) -> None:
    from cardissuer.errors import PortraitError

    with pytest.raises(PortraitError, match=r"at least 96x120 \(width x height\) are needed"):
        make_portrait(_photo(size, orientation))
    with pytest.raises(PortraitError, match="at least 96x120"):
        next(portrait_candidates(_photo(size, orientation)))  # the CLI's and workspace's path


@pytest.mark.parametrize(("size", "orientation"), [((96, 120), 1), ((120, 96), 6)])
def test_photo_of_the_portrait_size_is_accepted(size: tuple[int, int], orientation: int) -> None:
    assert make_portrait(_photo(size, orientation)).media_type == "image/avif"


def test_photo_colour_profile_and_exif_do_not_reach_the_portrait() -> None:
    import io

    from PIL import Image, ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    Image.open(io.BytesIO(PHOTO)).save(buffer, "JPEG", icc_profile=profile, quality=90)
    portrait = make_portrait(buffer.getvalue()).data
    assert profile not in portrait
    assert b"prof" not in portrait
    assert abs(len(portrait) - len(make_portrait(PHOTO).data)) < 64


STRESS_NAMES = {
    "family_name": "GARCÍA-FERNÁNDEZ DE LA TORRE Y SANTOS-MORENO",
    "given_names": "MARÍA JOSÉ ALEJANDRA GUADALUPE",
    "native_name": "عبد الرحمن بن محمد بن عبد الله آل عبد العزيز الهاشمي",
    "chinese_name": "玛丽亚·何塞·亚历杭德拉·瓜达卢佩·加西亚-费尔南德斯",
}


def test_portrait_card_stays_within_the_printable_qr_version(workspace: Workspace) -> None:
    """Long names leave less room: the issuer takes a lower portrait quality rather than a
    QR whose modules on the printed back would be too small to read from a distance."""
    short = workspace.issue(REQUEST, at=NOW, photo=PHOTO)
    names = {**STRESS_NAMES, "family_name": "AL-HASHIMI", "given_names": "MOHAMMED"}
    long = workspace.issue(CardRequest.from_json({**REQUEST.fields, **names}), at=NOW,
                           photo=PHOTO)  # fmt: skip
    best = next(iter(portrait_candidates(PHOTO))).data
    assert short.portrait == best
    assert long.portrait is not None
    assert len(long.portrait) < len(best)
    for issued in (short, long):
        assert len(issued.qr_text) <= workspace_module.MAX_PORTRAIT_QR_TEXT
        assert qr_version(issued.qr_text)[0] <= workspace_module.MAX_PORTRAIT_QR_VERSION
        assert back_module_mm(issued.qr_text) >= MIN_BACK_MODULE_MM


def test_card_too_large_even_with_the_smallest_portrait_is_refused_whole(
    workspace: Workspace,
) -> None:
    used_before = (workspace.directory / "status" / "1.used").read_bytes()
    with pytest.raises(WorkspaceError, match="version 16 even with the smallest portrait"):
        workspace.issue(CardRequest.from_json({**REQUEST.fields, **STRESS_NAMES}), at=NOW,
                        photo=PHOTO)  # fmt: skip
    assert (workspace.directory / "status" / "1.used").read_bytes() == used_before
    assert not list((workspace.directory / "cards").glob("*.json"))


def _legacy_portrait() -> bytes:
    """A portrait as stored before portraits were 64x80: 96x120 grey AVIF at quality 20."""
    with Image.open(io.BytesIO(PHOTO)) as photo:
        face = ImageOps.fit(photo.convert("L"), (96, 120), centering=(0.5, 0.4))
    buffer = io.BytesIO()
    face.save(buffer, "AVIF", quality=20)
    return buffer.getvalue()


def test_fit_portrait_keeps_a_portrait_that_fits_and_shrinks_one_that_does_not() -> None:
    """The console issuer signs stored portraits: one made today is kept as it is; one
    stored before (96x120, ~740 bytes, a version-18 code) is re-encoded to fit version 16."""
    authority = Authority()
    signer = authority.issuing
    card = make_card()

    def encode(portrait: bytes) -> str:
        return encode_card(card, signer, portrait=portrait)

    current = make_portrait(PHOTO).data
    assert fit_portrait(current, encode)[0] == current
    legacy = _legacy_portrait()
    assert qr_version(encode(legacy))[0] > MAX_QR_VERSION
    refitted, text = fit_portrait(legacy, encode)
    assert len(text) <= MAX_QR_TEXT
    assert qr_version(text)[0] <= MAX_QR_VERSION
    with Image.open(io.BytesIO(refitted)) as image:
        assert image.size == PORTRAIT_SIZE
    verified = Verifier(authority.bundle()).verify(text, service="hc", at=NOW)
    assert verified.reason is Reason.VALID
    assert verified.portrait == refitted
