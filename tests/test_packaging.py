"""The counter install, as a counter gets it: the built wheel alone in a fresh environment.

``python -m build`` makes the sdist and, from it, the wheel (so the sdist is proven complete);
``twine check`` checks their metadata; the wheel is installed with its core dependencies only
(cryptography, pyjwt) into a new virtual environment, where the verifier library verifies a
card it signs, ``fmcard-verify`` verifies a published test vector against the vectors' bundle,
and the issuer's ``fmcard`` says in one line which extra it needs instead of a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from verifier.i18n import LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors" / "cards.json"
ISSUER_ONLY = ("fastapi", "sqlmodel", "qrcode", "segno", "PIL", "pydantic", "sqlalchemy")


@dataclass(frozen=True)
class CoreInstall:
    """A virtual environment holding only the wheel and its core dependencies."""

    dist: Path
    bin: Path
    env: dict[str, str]

    def run(self, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), capture_output=True, text=True, env=self.env, check=False, cwd=cwd,
            timeout=300,
        )  # fmt: skip


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def core_install(tmp_path_factory: pytest.TempPathFactory) -> CoreInstall:
    work = tmp_path_factory.mktemp("packaging")
    dist = work / "dist"
    env = _clean_env()
    build = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
        capture_output=True, text=True, env=env, check=False, cwd=work, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, (build.stdout + build.stderr)[-3000:]
    venv = work / "counter-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / "bin"
    (wheel,) = dist.glob("fmcard-*.whl")
    install = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, env=env, check=False, cwd=work, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    return CoreInstall(dist, bin_dir, env)


def test_sdist_and_wheel_pass_twine_check(core_install: CoreInstall, tmp_path: Path) -> None:
    files = sorted(str(p) for p in core_install.dist.iterdir())
    assert any(f.endswith(".tar.gz") for f in files), files
    assert any(f.endswith(".whl") for f in files), files
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("PASSED") == len(files), check.stdout


def test_wheel_installs_no_issuer_dependency(core_install: CoreInstall, tmp_path: Path) -> None:
    probe = f"import importlib.util as u; print([n for n in {ISSUER_ONLY!r} if u.find_spec(n)])"
    run = core_install.run(str(core_install.bin / "python"), "-c", probe, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


CORE_SCRIPT = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from keys import KeySigner, KeyState, StatusList, TrustedIssuer, TrustedKey, TrustList
    from keys import encode_card, generate, sign_status_list, sign_trust_list
    from schemas import BirthDate, Card, Entitlement, StatusRef
    from schemas import code
    from verifier import Bundle, Verifier, build_bundle_document
    now = datetime(2026, 11, 22, tzinfo=UTC)
    anchor, issuing = KeySigner(generate()), KeySigner(generate())
    key = TrustedKey(issuing.public_key, KeyState.ACTIVE, now - timedelta(days=1))
    issuer = TrustedIssuer("CN-ZJ-YWPSB", "Yiwu PSB", "义乌市公安局", "https://x/s/", (key,))
    trust = TrustList(1, now, now + timedelta(days=30), (issuer,))
    status = sign_status_list(StatusList(64), uri="https://x/s/1", signer=issuing,
                              issued_at=now, expires_at=now + timedelta(days=1), ttl=60)
    document = build_bundle_document(anchors=[anchor.public_key],
                                     trust_list=sign_trust_list(trust, anchor),
                                     status_lists=[status])
    card = Card(issuer="CN-ZJ-YWPSB", code=code.generate(), serial="CORE0001", issued_at=now,
                valid_from=now, expires_at=now + timedelta(days=365), family_name="LI",
                nationality="KOR", birth_date=BirthDate(1990, 1, 2),
                entitlements=(Entitlement("hc"),), status=StatusRef("1", 3))
    result = Verifier(Bundle.from_json(document, at=now)).verify(
        encode_card(card, issuing), service="hc", at=now)
    assert result.ok, result
    forbidden = {"fastapi", "sqlmodel", "qrcode", "PIL", "cardissuer"} & set(sys.modules)
    assert not forbidden, forbidden
    print("core verifier OK")
    """
)


def test_verifier_library_works_in_the_core_install(
    core_install: CoreInstall, tmp_path: Path
) -> None:
    run = core_install.run(str(core_install.bin / "python"), "-c", CORE_SCRIPT, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "core verifier OK" in run.stdout


def test_fmcard_verify_checks_a_vector_card(core_install: CoreInstall, tmp_path: Path) -> None:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(vectors["bundle"]), encoding="utf-8")
    valid = [case for case in vectors["cases"] if case["reason"] == "VALID"]
    refused = [case for case in vectors["cases"] if case["reason"] == "REVOKED"]
    assert valid
    assert refused
    for case, status, word in ((valid[0], 0, "VALID"), (refused[0], 1, "REVOKED")):
        run = core_install.run(
            str(core_install.bin / "fmcard-verify"), "--bundle", str(bundle),
            "--service", case["service"], "--at", case["at"], "--json", case["qr"],
            cwd=tmp_path,
        )  # fmt: skip
        assert run.returncode == status, run.stderr
        assert json.loads(run.stdout)["reason"] == word


def test_the_wheel_carries_the_compiled_catalogs(core_install: CoreInstall) -> None:
    (wheel,) = core_install.dist.glob("fmcard-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for language in LANGUAGES:
        assert f"verifier/locale/{language}/LC_MESSAGES/fmcard-verifier.mo" in names, language
        assert f"cardissuer/locale/{language}/LC_MESSAGES/fmcard.mo" in names, language
        assert f"cardissuer/locale/{language}/LC_MESSAGES/fmcard-console.mo" in names, language


def test_a_counter_reads_its_verdict_in_korean(core_install: CoreInstall, tmp_path: Path) -> None:
    """The core install (no Babel, nothing but cryptography and pyjwt) speaks every language
    from the shipped ``.mo`` files."""
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(vectors["bundle"]), encoding="utf-8")
    case = next(case for case in vectors["cases"] if case["reason"] == "REVOKED")
    expected_lines = {"ko": "NOT VALID (REVOKED): 취소된 카드입니다.", "ar": "تم إلغاء البطاقة."}
    for language, expected in expected_lines.items():
        run = core_install.run(
            str(core_install.bin / "fmcard-verify"), "--bundle", str(bundle),
            "--service", case["service"], "--at", case["at"], "--lang", language, case["qr"],
            cwd=tmp_path,
        )  # fmt: skip
        assert run.returncode == 1, run.stderr
        assert expected in run.stdout, run.stdout


def test_issuer_command_explains_the_missing_extra(
    core_install: CoreInstall, tmp_path: Path
) -> None:
    run = core_install.run(str(core_install.bin / "fmcard"), "--help", cwd=tmp_path)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1
    assert "pip install 'fmcard[issuer]'" in run.stderr


STATIC_SCRIPT = textwrap.dedent(
    """
    import hashlib, json
    from verifier.server import _load_static
    print(json.dumps({path: [hashlib.sha256(body).hexdigest(), media_type]
                      for path, (body, media_type) in _load_static().items()}))
    """
)


def test_the_wheel_holds_every_file_of_the_counter_page(
    core_install: CoreInstall, tmp_path: Path
) -> None:
    """The page, its decoder's script and WebAssembly, and their licences are package data:
    a counter installed from the wheel serves them all, byte for byte as in the source."""
    run = core_install.run(str(core_install.bin / "python"), "-c", STATIC_SCRIPT, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    served = json.loads(run.stdout)
    station = ROOT / "verifier" / "station"
    assert served["/static/vendor/zxing_reader.wasm"][1] == "application/wasm"
    for path, (digest, _) in served.items():
        name = "index.html" if path == "/" else path.removeprefix("/static/")
        assert hashlib.sha256((station / name).read_bytes()).hexdigest() == digest, path
    shipped = {p.relative_to(station).as_posix() for p in station.rglob("*") if p.is_file()}
    served_names = {"index.html" if p == "/" else p.removeprefix("/static/") for p in served}
    assert shipped - served_names == {"vendor/README.md"}
