"""The package boundaries, checked rather than hoped for.

``schemas`` imports nothing of ours; ``keys`` may import ``schemas``; ``verifier`` imports only
``schemas`` and ``keys`` (never FastAPI, SQLModel, qrcode or Pillow: a counter installs it
alone). The last test installs the project without extras into a fresh virtual environment
and verifies a card there.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = set(sys.stdlib_module_names)
ALLOWED = {
    "schemas": {"schemas"},
    "keys": {"schemas", "keys", "cryptography", "jwt"},
    "verifier": {"schemas", "keys", "verifier", "cryptography", "jwt"},
}
# The optional [scan] extra, imported lazily by one module only.
SCAN_MODULE = "verifier/_image.py"
SCAN_IMPORTS = {"zxingcpp", "png", "simplejpeg", "numpy"}
# The optional [hsm] extra, likewise: only the HSM signer talks PKCS#11.
HSM_MODULE = "keys/hsm.py"
HSM_IMPORTS = {"pkcs11"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    offending = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        allowed = ALLOWED[package] | STDLIB
        if relative == SCAN_MODULE:
            allowed = allowed | SCAN_IMPORTS
        if relative == HSM_MODULE:
            allowed = allowed | HSM_IMPORTS
        extra = _imports(path) - allowed - {"__future__"}
        if extra:
            offending[relative] = sorted(extra)
    assert offending == {}


CORE_SCRIPT = textwrap.dedent(
    """
    import importlib.util, sys
    from datetime import UTC, datetime, timedelta
    for name in ("fastapi", "sqlmodel", "qrcode", "PIL", "pydantic"):
        assert importlib.util.find_spec(name) is None, f"{name} is installed in the core venv"
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


def test_verifier_works_with_core_dependencies_only(tmp_path: Path) -> None:
    venv = tmp_path / "core-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         str(ROOT)],
        capture_output=True, text=True, env=env, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    run = subprocess.run(
        [str(python), "-c", CORE_SCRIPT],
        capture_output=True, text=True, env=env, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "core verifier OK" in run.stdout
