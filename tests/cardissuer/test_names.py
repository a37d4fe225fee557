# ruff: noqa: RUF001, N802, N815 - Turkish dotless i; fontTools names its pen methods.
"""Holders' names on the card: every script drawn and shaped, long names wrapped inside the
name box, unprintable names refused at registration, and passport capitals."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uharfbuzz as hb
from fastapi.testclient import TestClient
from fontTools.pens.basePen import BasePen
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from cardissuer.core.config import Settings
from cardissuer.models import CardRecord, PersonRecord
from cardissuer.render import fonts
from cardissuer.render import names as name_layout
from cardissuer.render.card import (
    PAPER,
    CardNotPrintableError,
    CardView,
    Size,
    _Canvas,
    _names,
    render_card,
)
from cardissuer.render.names import MIN_MM, NAME_BOX, layout_names, name_specs
from cardissuer.wallet.apple import PassInput, pass_json
from cardissuer.wallet.google import generic_object
from cardissuer.web.console.registration import _person_create
from cardissuer.web.i18n import Translator
from schemas.card import BirthDate
from schemas.names import viz_capitals
from tests.cardissuer.test_api_helpers import Service, shared_service
from tests.cardissuer.test_console import _client_login

SCRIPT_NAMES: dict[str, str] = {
    "latin": "ĐẶNG Thị Ngọc Ánh Łukasz Ørsted Şahin Ğ Ħ Ŧ",
    "cyrillic": "Иванова Анна Сергеевна Ґ Ў Ә Ө",
    "greek": "Παπαδόπουλος Γιώργος",
    "arabic": "محمد عبدالله الهاشمي",
    "persian": "فاطمه رضایی‌نژاد",
    "urdu": "عمران خان ڈوگر ٹیپو",
    "hebrew": "דוד כהן",
    "devanagari": "क्षत्रिय श्रीनिवास",
    "bengali": "শ্রীকান্ত রায়",
    "tamil": "ஸ்ரீனிவாசன் கிருஷ்ணன்",
    "thai": "ศักดิ์ สวัสดิ์",
    "lao": "ສົມພອນ ແກ້ວມະນີ",
    "khmer": "សុខ ស្រ្តី ខ្មែរ",
    "myanmar": "အောင်ဆန်းစုကြည်",
    "georgian": "გიორგი ბერიძე",
    "armenian": "Արամ Պետրոսյան",
    "ethiopic": "አበበ ቢቂላ",
    "hangul": "김민준",
    "kana": "やまだ タロウ",
    "chinese": "陈𠮷祥",
}
SHAPED: dict[str, str] = {
    "thai": "ศักดิ์ สวัสดิ์ ดิ์",
    "arabic": "محمد الهاشمي",
    "devanagari": "क्षत्रिय श्रीनिवास",
    "myanmar": "အောင်ဆန်းစုကြည်",
    "khmer": "ស្រ្តី សុខ ខ្មែរ",
    "bengali": "শ্রীকান্ত",
    "tamil": "ஸ்ரீனிவாசன்",
}
LONG_LATIN = "MONTGOMERY-FITZWILLIAM ALEXANDRA CHRISTINA ELISABETH MATILDA"
UNPRINTABLE = "\U00013000"  # an Egyptian hieroglyph: a letter, but in no card font


def _view(latin: str, native: str | None = None, chinese: str | None = None) -> CardView:
    return CardView(latin, native, chinese, "FRA", "1980-01-01", "7KQ4MX9TRB", "S0001",
                    "2026-01-01", "2027-01-01", "FM1:X", "Yiwu Public Security Bureau",
                    "义乌市公安局", ("HC", "BK"))  # fmt: skip


def _clear_caches() -> None:
    for cached in (fonts.installed_faces, fonts.split_runs, fonts.text_width, fonts.ink_extent):
        cached.cache_clear()
    name_layout._layout.cache_clear()


@contextmanager
def only_kurinto() -> Iterator[None]:
    """A server without the Debian fonts: only the PyPI fallback is installed."""
    kurinto = tuple(face for face in fonts.FACES if face.package == "weblate-fonts")
    _clear_caches()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(fonts, "installed_faces", lambda: kurinto)
            yield
    finally:
        _clear_caches()


# --- every script ----------------------------------------------------------------------------


@pytest.mark.parametrize("script", sorted(SCRIPT_NAMES))
def test_every_covered_script_is_drawn_from_a_font_that_has_it(script: str) -> None:
    text = SCRIPT_NAMES[script]
    assert fonts.unprintable(text) == ""
    runs = fonts.split_runs(text)
    assert "".join(run.text for run in runs) == text
    for run in runs:
        covered = fonts.coverage(run.font)
        assert all(ord(c) in covered for c in run.text if fonts.needs_glyph(c)), run
    image = render_card(_view("TEST NAME", text, "王小明"), size="print")
    assert image.size == (1011, 638)


def test_a_cluster_is_never_split_between_fonts() -> None:
    """A Thai name is one run, so HarfBuzz sees each consonant with its marks."""
    assert [run.font for run in fonts.split_runs("ศักดิ์ สวัสดิ์")] == ["NotoSansThai"]
    assert [run.font for run in fonts.split_runs("李 Ali")] == ["NotoSansCJK", "NotoSans"]


def test_the_debian_card_fonts_are_installed() -> None:
    """./dev installs them; a machine without them prints fewer scripts (see only_kurinto)."""
    missing = sorted(set(fonts.missing_faces().values()))
    assert not missing, f"card fonts missing: apt-get install {' '.join(missing)} (./dev does)"


# --- shaping against HarfBuzz ----------------------------------------------------------------


class _Outline(BasePen):  # type: ignore[misc]
    """Glyph outlines flattened to polygons (8 segments a curve), in font units."""

    def __init__(self) -> None:
        super().__init__(None)
        self.contours: list[list[tuple[float, float]]] = []
        self.points: list[tuple[float, float]] = []

    def _moveTo(self, pt: tuple[float, float]) -> None:
        self.points = [pt]

    def _lineTo(self, pt: tuple[float, float]) -> None:
        self.points.append(pt)

    def _curveToOne(self, p1: tuple[float, float], p2: tuple[float, float],
                    p3: tuple[float, float]) -> None:  # fmt: skip
        x0, y0 = self.points[-1]
        for i in range(1, 9):
            t, u = i / 8, 1 - i / 8
            self.points.append((
                u**3 * x0 + 3 * u * u * t * p1[0] + 3 * u * t * t * p2[0] + t**3 * p3[0],
                u**3 * y0 + 3 * u * u * t * p1[1] + 3 * u * t * t * p2[1] + t**3 * p3[1],
            ))  # fmt: skip

    def _qCurveToOne(self, p1: tuple[float, float], p2: tuple[float, float]) -> None:
        x0, y0 = self.points[-1]
        for i in range(1, 9):
            t, u = i / 8, 1 - i / 8
            self.points.append((u * u * x0 + 2 * u * t * p1[0] + t * t * p2[0],
                                u * u * y0 + 2 * u * t * p1[1] + t * t * p2[1]))  # fmt: skip

    def _closePath(self) -> None:
        if len(self.points) > 2:
            self.contours.append(self.points)
        self.points = []

    _endPath = _closePath


def _harfbuzz(font_name: str, text: str) -> tuple[hb.Font, int, hb.Buffer]:
    face = fonts.FACE_BY_NAME[font_name]
    path = fonts.face_path(face)
    assert path is not None
    hb_face = hb.Face(hb.Blob.from_file_path(str(path)), face.index)
    font = hb.Font(hb_face)
    buffer = hb.Buffer()
    buffer.add_str(text)
    buffer.guess_segment_properties()
    hb.shape(font, buffer)
    return font, hb_face.upem, buffer


def _reference(font_name: str, text: str, size: int, canvas: tuple[int, int],
               origin: tuple[int, int]) -> Image.Image:  # fmt: skip
    """HarfBuzz's glyphs at HarfBuzz's positions, rasterised from their outlines (4x4
    supersampled, even-odd fill), as a 1-bit ink mask."""
    font, upem, buffer = _harfbuzz(font_name, text)
    ss = 4
    mask = Image.new("1", (canvas[0] * ss, canvas[1] * ss), 0)
    k = size * ss / upem
    x, y = origin[0] * ss, origin[1] * ss
    for info, position in zip(buffer.glyph_infos, buffer.glyph_positions, strict=True):
        pen = _Outline()
        font.draw_glyph_with_pen(info.codepoint, pen)
        gx, gy = x + position.x_offset * k, y - position.y_offset * k
        for contour in pen.contours:
            layer = Image.new("1", mask.size, 0)
            ImageDraw.Draw(layer).polygon([(gx + px * k, gy - py * k) for px, py in contour], 1)
            mask = ImageChops.logical_xor(mask, layer)
        x, y = x + position.x_advance * k, y - position.y_advance * k
    small = mask.convert("L").resize(canvas, Image.Resampling.BOX)
    return small.point(lambda v: 255 if v >= 128 else 0)


def _disagreement(a: Image.Image, b: Image.Image) -> int:
    """Pixels where the two masks differ by more than an edge: blobs of 5x5 or larger."""
    core = ImageChops.difference(a, b).filter(ImageFilter.MinFilter(5))
    histogram = core.histogram()
    return sum(histogram[1:])


@pytest.mark.parametrize("script", sorted(SHAPED))
def test_renderer_shapes_like_harfbuzz(script: str) -> None:
    """The card's drawing of a name is HarfBuzz's shaping of it in the same font: same
    glyphs at the same offsets, so marks stack, conjuncts form and Arabic joins. Pillow does
    not give out its glyph ids, so the glyph runs are compared as ink: HarfBuzz's glyph
    outlines placed at its offsets against the renderer's pixels. An unshaped layout of the
    same text is far off, which shows the comparison can fail."""
    text = SHAPED[script]
    (run,) = fonts.split_runs(text)
    size, canvas, origin = 96, (96 * 22, 96 * 4), (20, 240)
    reference = _reference(run.font, text, size, canvas, origin)
    _, upem, buffer = _harfbuzz(run.font, text)
    advance = sum(position.x_advance for position in buffer.glyph_positions) * size / upem
    assert fonts.text_width(text, size) == pytest.approx(advance, abs=0.1)  # the same run
    drawn = Image.new("RGB", canvas, (0, 0, 0))
    fonts.draw_text(ImageDraw.Draw(drawn), origin, text, size, fill=(255, 255, 255),
                    baseline=True)  # fmt: skip
    drawn = drawn.convert("L").point(lambda v: 255 if v >= 128 else 0)
    assert _disagreement(reference, drawn) <= 10
    unshaped = Image.new("L", canvas, 0)
    path = fonts.face_path(fonts.FACE_BY_NAME[run.font])
    plain = ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)
    ImageDraw.Draw(unshaped).text(origin, text, font=plain, fill=255, anchor="ls")
    assert _disagreement(reference, unshaped.point(lambda v: 255 if v >= 128 else 0)) > 100


@pytest.mark.parametrize("text", ["ดิ์", "ศักดิ์", "สวัสดิ์", "ปิ่น", "ที่"])
def test_thai_upper_marks_sit_above_the_upper_vowel(text: str) -> None:
    """In the font the card uses for Thai, HarfBuzz stacks the tone mark or thanthakhat
    above sara i / sara ii / mai ek instead of on top of it (their ink boxes do not meet)."""
    (run,) = fonts.split_runs(text)
    font, _, buffer = _harfbuzz(run.font, text)
    boxes: dict[int, list[tuple[float, float, float, float]]] = {}
    x = 0
    for info, position in zip(buffer.glyph_infos, buffer.glyph_positions, strict=True):
        extents = font.get_glyph_extents(info.codepoint)
        left = x + position.x_offset + extents.x_bearing
        top = position.y_offset + extents.y_bearing
        box = (left, top + extents.height, left + extents.width, top)  # y up: bottom < top
        boxes.setdefault(info.cluster, []).append(box)
        x += position.x_advance
    upper = [b for cluster in boxes.values() for b in cluster if b[1] > 300]  # above x-height
    for i, (l1, b1, r1, t1) in enumerate(upper):
        for l2, b2, r2, t2 in upper[i + 1 :]:
            overlap = min(r1, r2) > max(l1, l2) and min(t1, t2) > max(b1, b2)
            assert not overlap, (text, upper)


# --- long names --------------------------------------------------------------------------


def _ink_box(view: CardView, size: Size) -> tuple[tuple[int, int, int, int], _Canvas, float]:
    canvas = _Canvas(size)
    bottom = _names(canvas, view)
    paper = Image.new("RGB", canvas.image.size, PAPER)
    box = ImageChops.difference(canvas.image, paper).getbbox()
    assert box is not None
    return box, canvas, bottom


@pytest.mark.parametrize("size", ["print", "screen"])
@pytest.mark.parametrize(
    ("latin", "native", "chinese"),
    [
        (LONG_LATIN, None, None),
        (LONG_LATIN, "Монтгомери-Фицуильям Александра Кристина", "蒙哥马利·菲茨威廉·亚历山德拉"),
        ("NGUYEN THI MINH KHAI", "အောင်ဆန်းစုကြည် ဒေါ်ခင်ကြည်", "陈𠮷祥"),
        ("A" * 30 + " " + "B" * 33, "ศักดิ์ สวัสดิ์ " * 4, "王" * 20),
    ],
)
def test_names_stay_inside_the_name_box_at_6pt_or_more(
    latin: str, native: str | None, chinese: str | None, size: Size
) -> None:
    lines = layout_names(name_specs(latin, native, chinese))
    assert all(line.size_mm >= MIN_MM - 1e-9 for line in lines)
    assert all(line.x + line.width <= NAME_BOX.x + NAME_BOX.width for line in lines)
    box, canvas, bottom = _ink_box(_view(latin, native, chinese), size)
    px = canvas.scale
    allowed = (NAME_BOX.x * px - 1, NAME_BOX.y * px - 1,
               (NAME_BOX.x + NAME_BOX.width) * px + 1, NAME_BOX.bottom * px + 1)  # fmt: skip
    assert allowed[0] <= box[0], (box, allowed)
    assert allowed[1] <= box[1], (box, allowed)
    assert box[2] <= allowed[2], (box, allowed)
    assert box[3] <= allowed[3], (box, allowed)
    assert bottom <= NAME_BOX.bottom


def test_a_long_latin_name_wraps_before_it_shrinks() -> None:
    """60 characters: two lines of 7 pt, where one line would have been 4 pt."""
    assert len(LONG_LATIN) == 60
    lines = layout_names(name_specs(LONG_LATIN, None, None))
    assert [line.text for line in lines] == [
        "MONTGOMERY-FITZWILLIAM ALEXANDRA",
        "CHRISTINA ELISABETH MATILDA",
    ]
    (size,) = {line.size_mm for line in lines}
    one_line = name_layout.LATIN_MM * NAME_BOX.width / _width_mm(LONG_LATIN)
    assert size > 1.5 * one_line
    assert size * 72 / 25.4 > 6.9
    with_native = layout_names(name_specs(LONG_LATIN, "Alexandra Montgomery", "亚历山德拉"))
    assert [line.size_mm for line in with_native] == [size] * 4  # none larger than the Latin
    short = layout_names(name_specs("KIM MINJUN", "김민준", "金敏俊"))
    assert [line.size_mm for line in short] == [4.0, 3.6, 3.6]


def _width_mm(text: str) -> float:
    """The width of ``text`` in bold at the full Latin size, on one line."""
    px = name_layout.PRINT_PX_PER_MM
    return fonts.text_width(text, name_layout.LATIN_MM * px, bold=True) / px


def test_names_that_cannot_fit_are_named() -> None:
    with pytest.raises(name_layout.NameDoesNotFitError) as caught:
        layout_names(name_specs("W" * 64 + " " + "W" * 63, None, None))
    assert caught.value.fields == ("latin_name",)
    with pytest.raises(CardNotPrintableError, match=r"card S0001 .*latin_name"):
        render_card(_view("W" * 64 + " " + "W" * 63))


# --- registration and downloads --------------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with shared_service("sqlite", tmp_path_factory.mktemp("names")) as running:
        yield running


def _issue(service: Service, **body: Any) -> str:
    code = service.register(**body)
    headers = service.headers("registrar")
    granted = service.client.post(f"/api/persons/{code}/grants", headers=headers,
                                  json={"service": "hc"})  # fmt: skip
    assert granted.status_code == 201, granted.text
    issued = service.client.post(f"/api/persons/{code}/cards", headers=headers)
    assert issued.status_code == 201, issued.text
    serial: str = issued.json()["serial"]
    return serial


@pytest.mark.parametrize(
    "names",
    [
        {"native_name": "김민준", "chinese_name": "金敏俊", "nationality": "KOR"},
        {"chinese_name": "陈𠮷祥", "nationality": "TWN"},
        {"native_name": "အောင်ဆန်းစုကြည်", "nationality": "MMR"},
        {"native_name": "សុខ ស្រ្តី", "nationality": "KHM"},
        {
            "family_name": "MONTGOMERY-FITZWILLIAM",
            "given_names": "ALEXANDRA CHRISTINA ELISABETH VICTORIA",
        },
    ],
)
def test_cards_in_every_script_download(service: Service, names: dict[str, str]) -> None:
    serial = _issue(service, **names)
    headers = service.headers("registrar")
    for path in (f"/api/cards/{serial}/card.png", f"/api/cards/{serial}/card.pdf"):
        assert service.client.get(path, headers=headers).status_code == 200, path
    sheet = service.client.post("/api/cards/sheet.pdf", headers=headers, json=[serial])
    assert sheet.status_code == 200


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"native_name": f"Ali {UNPRINTABLE}"}, "native_name", "name-not-printable"),
        ({"chinese_name": f"王{UNPRINTABLE}"}, "chinese_name", "name-not-printable"),
        ({"given_names": "ANNE \ua7c0"}, "given_names", "name-not-printable"),
        ({"family_name": "W" * 64, "given_names": "W" * 64}, "family_name", "name-too-long"),
        ({"native_name": "အောင်ဆန်းစုကြည်" * 4}, "native_name", "name-too-long"),
    ],
)
def test_registration_refuses_names_the_card_cannot_print(
    service: Service, body: dict[str, str], field: str, code: str
) -> None:
    response = service.client.post(
        "/api/persons", headers=service.headers("registrar"), json=service.person_body(**body)
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith(code)
    assert field in [error["field"] for error in problem["errors"]]
    if code == "name-not-printable" and field != "given_names":
        assert problem["characters"] == [UNPRINTABLE]
        assert "U+13000" in problem["detail"]
    elif code == "name-not-printable":  # an Old Polish O (Unicode 14): Latin, in no card font
        assert problem["characters"] == ["\ua7c0"]


def test_a_server_without_the_fonts_names_the_card_and_character(service: Service) -> None:
    """Cards registered while the fonts were there, drawn on a server that lacks them: the
    downloads say which card and which character, as a 409 problem, never a 500; and
    registration there refuses the names it could not print."""
    serial = _issue(service, native_name="김민준")
    other = _issue(service, native_name="Иванова")
    headers = service.headers("registrar")
    link = service.client.post(f"/api/cards/{serial}/holder-link", headers=headers)
    assert link.status_code == 201, link.text
    holder = "/" + link.json()["url"].split("/", 3)[3]
    assert service.client.get(holder).status_code == 200  # registers this device
    with only_kurinto():
        for path in (
            f"/api/cards/{serial}/card.png",
            f"/api/cards/{serial}/card.pdf",
            f"{holder}/card.png",
            f"{holder}/card.pdf",
        ):
            response = service.client.get(path, headers=headers)
            assert response.status_code == 409, path
            assert response.json()["type"].endswith("card-not-printable")
            assert serial in response.json()["detail"]
            assert "U+AE40" in response.json()["detail"]
        sheet = service.client.post("/api/cards/sheet.pdf", headers=headers, json=[other, serial])
        assert sheet.status_code == 409
        assert f"card {serial} " in sheet.json()["detail"]
        assert other not in sheet.json()["detail"]
        refused = service.client.post(
            "/api/persons", headers=headers, json=service.person_body(native_name="김민준")
        )
        assert refused.status_code == 422
        assert refused.json()["characters"] == ["김", "민", "준"]


def test_console_refuses_an_unprintable_name_in_the_officers_language(client: TestClient) -> None:
    if True:
        _client_login(client, "registrar")
        page = client.get("/console/register").text
        csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "family_name": "AHMED", "native_name": f"ع{UNPRINTABLE}",
                "nationality": "EGY", "birth_date": "1990-02-03", "passport_number": "A1234567",
                "passport_country": "EGY"}  # fmt: skip
        for language in ("zh", "en"):
            client.cookies.set("lang", language)
            refused = client.post("/console/register", data=form)
            assert refused.status_code == 422
            assert Translator(language)("refusal_name_not_printable") in refused.text
            assert "native_name" in refused.text
            assert "U+13000" in refused.text


# --- capitals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "nationality", "capitals"),
    [
        ("Çelik", "TUR", "ÇELİK"),
        ("Yıldız", "TUR", "YILDIZ"),
        ("Aliyev İlkin", "AZE", "ALİYEV İLKİN"),
        ("Çelik", "FRA", "ÇELIK"),
        ("Müller", "DEU", "MÜLLER"),
        ("Đặng", "VNM", "ĐẶNG"),
    ],
)
def test_latin_names_take_the_passports_capitals(
    name: str, nationality: str, capitals: str
) -> None:
    assert viz_capitals(name, nationality) == capitals


def _records(**person: Any) -> tuple[CardRecord, PersonRecord]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    card = CardRecord(serial="S0001", person_id=1, office_id=1, list_id="0", status_index=0,
                      issued_at=at, valid_from=at, expires_at=at + timedelta(days=365), kid="k",
                      claims_digest="d", issued_by=1)  # fmt: skip
    fields: dict[str, Any] = {"code": "7KQ4MX9TRB", "office_id": 1, "family_name": "Çelik",
                                 "given_names": "Ayşe Nil", "nationality": "TUR", "name_key": "x",
                                 "birth_date": BirthDate(1990, 1, 1).to_wire(),
                                 "created_by": 1}  # fmt: skip
    fields.update(person)
    return card, PersonRecord(**fields)


def test_the_card_and_the_passes_print_turkish_capitals() -> None:
    card, person = _records()
    view = CardView.from_records(card, person, "Office", "办公室", qr_text="FM1:X", portrait=None)
    assert view.latin_name == "ÇELİK AYŞE NİL"
    assert (
        generic_object(PassInput(card, person, "FM1:X"), _settings(), at=card.issued_at)["header"][
            "defaultValue"
        ]["value"]
        == "ÇELİK AYŞE NİL"
    )


def test_the_console_enters_turkish_capitals() -> None:
    values = {"family_name": "çelik", "given_names": "ayşe", "native_name": "", "chinese_name": "",
              "nationality": "tur", "birth_date": "1990-01-01", "sex": "F", "phone": "",
              "email": "", "passport_number": "U1234567", "passport_country": "TUR",
              "passport_expires": ""}  # fmt: skip
    data = _person_create(values, confirm=False)
    assert (data.family_name, data.given_names) == ("ÇELİK", "AYŞE")


# --- wallet passes ---------------------------------------------------------------------------


def _settings() -> Settings:
    return Settings()


def test_google_pass_labels_the_name_as_the_name_and_shows_every_script() -> None:
    card, person = _records(native_name="Ayşe Çelik", chinese_name="阿伊谢")
    document = generic_object(PassInput(card, person, "FM1:X"), _settings(), at=card.issued_at)
    subheader = document["subheader"]
    labels = [subheader["defaultValue"]["value"]] + [
        t["value"] for t in subheader["translatedValues"]
    ]
    assert labels[:3] == ["姓名", "Name", "Имя"]  # Chinese by default, then every language
    assert len(labels) == 11
    bodies = {module["id"]: module["body"] for module in document["textModulesData"]}
    assert bodies["native_name"] == "Ayşe Çelik"
    assert bodies["chinese_name"] == "阿伊谢"


def test_apple_pass_shows_the_native_name() -> None:
    card, person = _records(native_name="김민준", chinese_name="金敏俊", nationality="KOR",
                            family_name="KIM", given_names="MINJUN")  # fmt: skip
    document = pass_json(PassInput(card, person, "FM1:X"), _settings(), development=True)
    front = document["generic"]
    shown = {field["key"]: field["value"] for part in ("primaryFields", "secondaryFields",
             "auxiliaryFields") for field in front[part]}  # fmt: skip
    assert shown["name"] == "KIM MINJUN"
    assert shown["native_name"] == "김민준"
    assert shown["chinese_name"] == "金敏俊"
    keys = [field["key"] for part in front.values() for field in part]
    assert len(keys) == len(set(keys))


def test_serve_says_which_card_fonts_are_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cardissuer import service_cli

    service_cli._warn_missing_fonts()
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(fonts, "missing_faces", lambda: {"NotoSansThai": "fonts-noto-core"})
    service_cli._warn_missing_fonts()
    assert "card fonts not installed (fonts-noto-core)" in capsys.readouterr().err
