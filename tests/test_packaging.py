"""The counter install, as a counter gets it: the built wheel alone in a fresh environment.

``python -m build`` makes the sdist and, from it, the wheel (so the sdist is proven complete);
``twine check`` checks their metadata; the wheel is installed with its core dependencies only
(cryptography, pyjwt) into a new virtual environment, where the verifier library verifies a
card it signs, ``fmcard-verify`` verifies a published test vector against the vectors' bundle,
and the issuer's ``fmcard`` says in one line which extra it needs instead of a traceback.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keys.jwk import generate, public_jwk
from keys.phone import present, sign_phone_card
from keys.signer import KeySigner
from schemas.card import Entitlement
from tests.factories import Authority, make_card
from verifier.i18n import LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors" / "cards.json"
HOUR = timedelta(hours=1)
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


def test_fmcard_verify_checks_a_phone_live_code_vector(
    core_install: CoreInstall, tmp_path: Path
) -> None:
    """A phone card's live code (FM2:) verifies in the core install, at level live."""
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(vectors["bundle"]), encoding="utf-8")
    case = next(
        c for c in vectors["cases"] if c["qr"].startswith("FM2:") and c["reason"] == "VALID"
    )
    run = core_install.run(
        str(core_install.bin / "fmcard-verify"), "--bundle", str(bundle),
        "--service", case["service"], "--at", case["at"], "--json", case["qr"],
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert (result["reason"], result["level"]) == ("VALID", "live")


def _ask(port: int, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """GET ``path`` of the station on 127.0.0.1:``port`` (a JSON POST with ``body``)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request("GET" if body is None else "POST", path, body, headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_installed_wheel_serves_the_station_and_verifies_a_live_code(
    core_install: CoreInstall, tmp_path: Path
) -> None:
    """``fmcard-verify serve`` from the wheel alone: every file of the page as in the source,
    and a phone card's live code, made now, verified VALID at level live."""
    now = datetime.now(UTC)
    authority = Authority()
    trust_list = authority.trust_list(issued_at=now - HOUR, expires_at=now + timedelta(days=30))
    document = authority.bundle_document(
        trust_list=trust_list, status_tokens=[authority.status_token(issued_at=now - HOUR)]
    )
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(document), encoding="utf-8")
    device = KeySigner(generate())
    card = make_card(
        issued_at=now - HOUR, valid_from=now - HOUR, expires_at=now + timedelta(days=365),
        entitlements=(Entitlement("hc"),),
    )  # fmt: skip
    phone = sign_phone_card(card, authority.issuing, device_jwk=public_jwk(device.public_key))
    port = _free_port()
    station = subprocess.Popen(
        [str(core_install.bin / "fmcard-verify"), "serve", "--bundle", str(bundle),
         "--counter", "hospital", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=core_install.env,
        cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, page = _ask(port, "/")
                break
            except OSError:
                assert station.poll() is None, station.communicate()
                assert time.monotonic() < deadline, "the station did not start"
                time.sleep(0.2)
        source = ROOT / "verifier" / "station"
        assert (status, page) == (200, (source / "index.html").read_bytes())
        for name in ("station.js", "station.css", "decoder.js", "vendor/zxing-reader.js",
                     "vendor/zxing_reader.wasm"):  # fmt: skip
            assert _ask(port, f"/static/{name}") == (200, (source / name).read_bytes()), name
        config = json.loads(_ask(port, "/api/config")[1])
        assert config["text"]["ko"]["verify"] != config["text"]["en"]["verify"]  # catalogs
        live = present(phone, device, service="hc", at=datetime.now(UTC))
        status, body = _ask(port, "/api/verify", json.dumps({"text": live}).encode())
        verdict = json.loads(body)
        assert (status, verdict["reason"], verdict["level"], verdict["verdict"]) == (
            200, "VALID", "live", "green"
        )  # fmt: skip
    finally:
        station.send_signal(signal.SIGTERM)
        _, err = station.communicate(timeout=30)
    assert station.returncode == 0, err
    assert "Traceback" not in err


def test_the_counter_install_instructions_fit_together() -> None:
    """README's counter install builds in a virtual environment (Debian and Ubuntu refuse
    ``pip install`` into the system Python: PEP 668) and installs into /opt/fmcard; the
    counter manual's units and cron line run the fmcard-verify of that environment (they
    named /usr/local/bin/fmcard-verify, which that install does not make)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Verifying") :]
    section = section[: section.index("\n## ", 1)]
    commands = [line for line in section.splitlines() if "pip install" in line]
    assert commands
    for line in commands:
        assert "python3 -m pip install" not in line, line  # the system Python's pip
    assert "python3 -m venv /opt/fmcard" in section
    counter = (ROOT / "docs" / "COUNTER.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"(?<!\S)(/\S*/)fmcard-verify (?:sync|serve|policy)\b", counter))
    assert paths == {"/opt/fmcard/bin/"}, paths
