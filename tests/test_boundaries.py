"""The package boundaries, checked rather than hoped for.

``schemas`` imports nothing of ours; ``keys`` may import ``schemas``; ``verifier`` imports only
``schemas`` and ``keys`` (never FastAPI, SQLModel, qrcode or Pillow: a counter installs it
alone). ``tests/test_packaging.py`` proves it on the built wheel in a fresh virtual
environment.
"""

from __future__ import annotations

import ast
import sys
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
