"""The printable card: QR round trips through PNG and PDF, glyph coverage, the downloads."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest
import zxingcpp
from PIL import Image, ImageChops

from cardissuer.models import Role
from cardissuer.render import fonts
from cardissuer.render.card import (
    MIN_BACK_MODULE_MM,
    CardView,
    Size,
    back_module_mm,
    card_png,
    render_card,
)
from cardissuer.render.qr import qr_version
from cardissuer.workspace import MAX_PORTRAIT_QR_TEXT, MAX_PORTRAIT_QR_VERSION
from tests.cardissuer.test_api_helpers import BACKENDS, OTHER_OFFICE, Service, shared_service
from verifier import Reason

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
NAMES: dict[str, dict[str, Any]] = {
    "chinese": {"native_name": None, "chinese_name": "王小明", "nationality": "SGP"},
    "russian": {"native_name": "Иванов Сергей", "chinese_name": "伊万诺夫", "nationality": "RUS"},
    "arabic": {"native_name": "محمد الرشيد", "chinese_name": "穆罕默德", "nationality": "SAU"},
    "korean": {"family_name": "KIM", "given_names": "MINJUN", "native_name": "김민준",
               "chinese_name": "金敏俊", "nationality": "KOR"},
    "thai": {"family_name": "SAKDISAWAT", "given_names": "SOMCHAI",
             "native_name": "สมชาย ศักดิ์สวัสดิ์", "chinese_name": "颂猜", "nationality": "THA"},
    "myanmar": {"family_name": "AUNG", "given_names": "KYAW ZIN",
                "native_name": "အောင်ကျော်ဇင်", "nationality": "MMR"},
    "khmer": {"family_name": "SOK", "given_names": "SREYNEANG", "native_name": "សុខ ស្រីនាង",
              "nationality": "KHM"},
    "extension-b": {"family_name": "CHEN", "given_names": "CHI-HSIANG", "native_name": "陳𠮷祥",
                    "chinese_name": "陈𠮷祥", "nationality": "TWN"},
    "long-latin": {"family_name": "MONTGOMERY-FITZWILLIAM",
                   "given_names": "ALEXANDRA CHRISTINA ELISABETH MATILDA",
                   "native_name": "Alexandra Montgomery-Fitzwilliam", "nationality": "GBR"},
    "turkish": {"family_name": "Çelik", "given_names": "Ayşe Nil", "nationality": "TUR"},
}  # fmt: skip


@pytest.fixture(scope="module", params=BACKENDS)
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    with shared_service(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


def _card(service: Service, **names: Any) -> str:
    code = service.register(
        **{k: v for k, v in names.items() if k != "nationality" and v is not None},
        nationality=names.get("nationality", "FRA"),
    )
    headers = service.headers("registrar")
    assert service.client.post(f"/api/persons/{code}/grants", headers=headers,
                               json={"service": "hc"}).status_code == 201  # fmt: skip
    issued = service.client.post(f"/api/persons/{code}/cards", headers=headers)
    assert issued.status_code == 201, issued.text
    serial: str = issued.json()["serial"]
    return serial


def _decode(image: Image.Image) -> list[str]:
    # QR codes only: a line of the card's text was once read as a linear barcode as well.
    qr_only = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    found = zxingcpp.read_barcodes(image.convert("L"), formats=qr_only)
    return [barcode.text for barcode in found]


def _assert_valid(service: Service, image: Image.Image, serial: str) -> None:
    [text] = _decode(image)
    assert service.card(serial)["qr_text"] == text
    assert service.reasons(text) == [Reason.VALID]


@pytest.mark.parametrize("size", ["print", "screen"])
def test_png_back_carries_a_valid_qr(service: Service, size: str) -> None:
    serial = _card(service, **NAMES["arabic"])
    response = service.client.get(
        f"/api/cards/{serial}/card.png",
        params={"side": "back", "size": size},
        headers=service.headers("registrar"),
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-store"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == ((1011, 638) if size == "print" else (856, 540))
    _assert_valid(service, image, serial)


def _pdf_pages(data: bytes, tmp_path: Path) -> list[Image.Image]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "card.pdf"
    source.write_bytes(data)
    subprocess.run(["pdftoppm", "-r", "300", "-png", str(source), str(tmp_path / "p")], check=True)
    return [Image.open(io.BytesIO(path.read_bytes())) for path in sorted(tmp_path.glob("p-*.png"))]


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_pdf_pages_carry_a_valid_qr(service: Service, tmp_path: Path) -> None:
    serial = _card(service, **NAMES["russian"])
    headers = service.headers("registrar")
    response = service.client.get(f"/api/cards/{serial}/card.pdf", headers=headers)
    assert response.status_code == 200
    front, back = _pdf_pages(response.content, tmp_path / "one")
    # The page is the card (85.6 x 54 mm) plus 6 mm all round, at 300 dpi.
    assert abs(back.width - (85.6 + 12) / 25.4 * 300) <= 2
    assert _decode(front) == []
    _assert_valid(service, back, serial)
    sheet = service.client.post("/api/cards/sheet.pdf", headers=headers, json=[serial, serial])
    assert sheet.status_code == 200
    _, backs = _pdf_pages(sheet.content, tmp_path / "sheet")
    assert _decode(backs) == [service.card(serial)["qr_text"]] * 2


@pytest.mark.skipif(shutil.which("pdfimages") is None, reason="poppler-utils not installed")
def test_pdf_pages_hold_the_cards_pixels_unchanged(service: Service, tmp_path: Path) -> None:
    """Lossless: the image in each page is the card image, pixel for pixel (JPEG, as Pillow's
    PDF writer stores RGB, blurred the QR's module edges and the small type)."""
    serial = _card(service, **NAMES["chinese"])
    headers = service.headers("registrar")
    pdf = service.client.get(f"/api/cards/{serial}/card.pdf", headers=headers).content
    assert b"/FlateDecode" in pdf
    assert b"/DCTDecode" not in pdf
    (tmp_path / "card.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdfimages", "-png", str(tmp_path / "card.pdf"), str(tmp_path / "i")], check=True
    )
    stored = [Image.open(path).convert("RGB") for path in sorted(tmp_path.glob("i-*.png"))]
    assert len(stored) == 2
    margin = round(6 * 300 / 25.4)
    for side, page in zip(("front", "back"), stored, strict=True):
        png = service.client.get(
            f"/api/cards/{serial}/card.png",
            params={"side": side, "size": "print"},
            headers=headers,
        ).content
        card = Image.open(io.BytesIO(png)).convert("RGB")
        placed = page.crop((margin, margin, margin + card.width, margin + card.height))
        assert ImageChops.difference(placed, card).getbbox() is None, side


def test_downloads_are_refused_to_other_offices_and_strangers(service: Service) -> None:
    serial = _card(service)
    outsider = service.officer("registrar-b", Role.REGISTRAR, OTHER_OFFICE)
    for path in (f"/api/cards/{serial}/card.png", f"/api/cards/{serial}/card.pdf"):
        assert service.client.get(path, headers=service.headers("registrar")).status_code == 200
        assert service.client.get(path, headers=outsider).status_code == 404
        assert service.client.get(path).status_code == 401
    assert service.client.post("/api/cards/sheet.pdf", headers=outsider,
                               json=[serial]).status_code == 404  # fmt: skip
    assert service.client.post("/api/cards/sheet.pdf", json=[serial]).status_code == 401
    too_many = service.client.post(
        "/api/cards/sheet.pdf", headers=service.headers("registrar"), json=[serial] * 51
    )
    assert too_many.status_code == 422


@pytest.mark.parametrize(
    "text", ["王小明", "Иванов Сергей", "محمد الرشيد", "MÜLLER Zoë", "穆罕默德 Ali", "伊万诺夫"]
)
def test_every_glyph_is_in_the_chosen_font(text: str) -> None:
    runs = fonts.split_runs(text)
    assert "".join(run.text for run in runs) == text
    for run in runs:
        covered = fonts.coverage(run.font)
        assert all(ord(c) in covered for c in run.text if not c.isspace()), run
    if any("\u0600" <= c <= "\u06ff" for c in text):
        assert runs[0].rtl


def test_screenshots(service: Service) -> None:
    """Front sides with each script; written to docs/ with FMCARD_UPDATE_SCREENSHOTS=1."""
    if service.backend != "sqlite":
        pytest.skip("one backend is enough")
    headers = service.headers("registrar")
    for name, names in NAMES.items():
        serial = _card(service, **names)
        response = service.client.get(
            f"/api/cards/{serial}/card.png", params={"size": "screen"}, headers=headers
        )
        assert response.status_code == 200
        if os.environ.get("FMCARD_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            (SCREENSHOTS / f"card-{name}.png").write_bytes(response.content)


def test_render_refuses_unknown_sides() -> None:
    view = CardView("A B", None, None, "FRA", "1980-01-01", "7KQ4MX9TRB", "S", "a", "b",
                    "FM1:X", "Office", "办公室")  # fmt: skip
    with pytest.raises(ValueError, match="unknown side"):
        render_card(view, side="top")  # type: ignore[arg-type]
    assert card_png(view, size="screen")[:4] == b"\x89PNG"


def _finder_width(image: Image.Image) -> int:
    """Pixels across the top-left finder pattern's dark outer ring: 7 modules."""
    dark = numpy.asarray(image.convert("L")) < 128
    rows = numpy.flatnonzero(dark[:, : image.width // 2].any(axis=1))
    row = dark[rows[0], : image.width // 2]
    start = int(numpy.argmax(row))
    return int(numpy.argmin(row[start:])) if not row[start:].all() else len(row) - start


@pytest.mark.parametrize("size", ["print", "screen"])
def test_largest_portrait_card_keeps_its_minimum_module_size(size: Size) -> None:
    """The longest QR text the issuer signs with a portrait (version 16) is printed with
    modules of at least ``MIN_BACK_MODULE_MM``, the size zbar and zxing-cpp still read at a
    quarter of 300 dpi; and it decodes."""
    text = "FM1:" + "7Q" * ((MAX_PORTRAIT_QR_TEXT - 4) // 2)
    assert qr_version(text)[0] == MAX_PORTRAIT_QR_VERSION
    view = CardView("A B", None, None, "FRA", "1980-01-01", "7KQ4MX9TRB", "S", "a", "b",
                    text, "Office", "办公室")  # fmt: skip
    assert back_module_mm(text, size) >= MIN_BACK_MODULE_MM
    back = render_card(view, side="back", size=size)
    per_mm = back.width / 85.6
    assert _finder_width(back) >= 7 * MIN_BACK_MODULE_MM * per_mm - 1
    assert _decode(back) == [text]
