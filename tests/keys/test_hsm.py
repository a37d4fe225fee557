"""Signing with a key held in an HSM, against a real SoftHSM2 token made fresh for this module.

The module fixture writes a ``softhsm2.conf`` pointing at a temporary token directory,
initialises a token with ``softhsm2-util`` and generates the key pairs through
:func:`keys.hsm.generate_hsm_key`; every test then talks PKCS#11 to that token. Nothing is
mocked. The tests skip on a machine without SoftHSM2 but fail in CI (``CI`` set), where
``.ci/run`` installs it, so a broken install cannot hide behind a skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pkcs11
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from fastapi.testclient import TestClient
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.exceptions import AttributeSensitive

from keys.cards import encode_card
from keys.errors import KeysError
from keys.hsm import (
    INSTALL_HINT,
    PIN_ENV,
    PIN_FILE_ENV,
    HsmError,
    HsmKeyError,
    HsmKeyNotFoundError,
    HsmModuleError,
    HsmPin,
    HsmPinError,
    HsmSigner,
    HsmTokenError,
    generate_hsm_key,
)
from keys.jwk import ES256, kid_of
from keys.status_list import sign_status_list
from tests.factories import NOW, STATUS_URI, Authority, make_card
from verifier.reason import Reason
from verifier.verifier import Verifier

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",  # Debian and Ubuntu (a symlink into the multiarch dir)
    "/usr/lib64/pkcs11/libsofthsm2.so",  # Fedora
    "/usr/local/lib/softhsm/libsofthsm2.so",  # built from source
)
TOKEN = "fmcard-test"
PIN = "4711-fmcard"
SO_PIN = "0815-officer"
KEY = "issuing-2026"
SECOND_KEY = "status-2026"


@dataclass(frozen=True)
class Hsm:
    """The test token: where it is, how to log in, and the public keys generated in it."""

    module: str
    pin: HsmPin
    public_key: ec.EllipticCurvePublicKey
    second_public_key: ec.EllipticCurvePublicKey

    def signer(self, key_label: str = KEY) -> HsmSigner:
        return HsmSigner(self.module, TOKEN, self.pin, key_label)

    def session(self) -> pkcs11.Session:
        """A session of our own, beside fmcard, to look at and rearrange the token's objects."""
        library = pkcs11.lib(os.path.realpath(self.module))
        return library.get_token(token_label=TOKEN).open(rw=True, user_pin=PIN)


def _softhsm_module() -> str:
    """Return the SoftHSM2 module, or skip (fail in CI) when SoftHSM2 is not installed."""
    module = next((path for path in MODULE_CANDIDATES if os.path.isfile(path)), None)
    if shutil.which("softhsm2-util") is None or module is None:
        reason = "SoftHSM2 is not installed (apt-get install softhsm2)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the HSM tests")
        pytest.skip(reason)
    return module


@pytest.fixture(scope="module")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hsm]:
    module = _softhsm_module()
    root = tmp_path_factory.mktemp("softhsm")
    tokens = root / "tokens"
    tokens.mkdir()
    config = root / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(config))
        subprocess.run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                TOKEN,
                "--pin",
                PIN,
                "--so-pin",
                SO_PIN,
            ],
            check=True,
            capture_output=True,
        )
        # SoftHSM2 reads SOFTHSM2_CONF when initialised; start afresh in case an earlier test
        # in this process loaded it with another configuration.
        library = pkcs11.lib(os.path.realpath(module))
        library.reinitialize()
        try:
            pin = HsmPin(PIN)
            public_key = generate_hsm_key(module, TOKEN, pin, KEY)
            second = generate_hsm_key(module, TOKEN, pin, SECOND_KEY)
            yield Hsm(module, pin, public_key, second)
        finally:
            library.finalize()


@pytest.fixture(scope="module")
def signer(hsm: Hsm) -> HsmSigner:
    return hsm.signer()


def _verify(public_key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> None:
    """Verify a raw JWS ES256 signature with ``cryptography`` (raises if it does not verify)."""
    assert len(signature) == 64
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    public_key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))


def _relabel(hsm: Hsm, object_class: ObjectClass, label: str, new_label: str) -> None:
    """Rename a key object behind fmcard's back, as an operator with pkcs11-tool could."""
    with hsm.session() as session:
        session.get_key(object_class, KeyType.EC, label=label)[Attribute.LABEL] = new_label


def _same_key(a: ec.EllipticCurvePublicKey, b: ec.EllipticCurvePublicKey) -> bool:
    return a.public_numbers() == b.public_numbers()


# --- Signing ----------------------------------------------------------------------------------


def test_signer_reads_the_public_key_from_the_token(hsm: Hsm, signer: HsmSigner) -> None:
    assert _same_key(signer.public_key, hsm.public_key)
    assert signer.kid == kid_of(hsm.public_key)
    assert signer.algorithm == ES256


@pytest.mark.parametrize("message", [b"", b"eyJhbGciOiJFUzI1NiJ9.e30", bytes(range(256)) * 40])
def test_signature_verifies_with_cryptography(signer: HsmSigner, message: bytes) -> None:
    _verify(signer.public_key, signer.sign(message), message)


def test_signatures_are_fresh_and_bound_to_the_input(signer: HsmSigner) -> None:
    first, second = signer.sign(b"payload"), signer.sign(b"payload")
    assert first != second  # ECDSA draws a new nonce per signature
    with pytest.raises(InvalidSignature):
        _verify(signer.public_key, first, b"payload!")


def test_card_signed_in_the_hsm_verifies_at_the_counter(hsm: Hsm, signer: HsmSigner) -> None:
    """The full path: the HSM signs the card and the status list; the counter says VALID."""
    authority = Authority()
    trust_list = authority.trust_list(keys=(authority.trusted_key(public_key=hsm.public_key),))
    status = sign_status_list(
        authority.statuses,
        uri=STATUS_URI,
        signer=signer,
        issued_at=NOW - timedelta(hours=1),
        expires_at=NOW + timedelta(days=1),
        ttl=3600,
    )
    bundle = authority.bundle(trust_list=trust_list, status_tokens=[status])
    card_text = encode_card(make_card(), signer)
    result = Verifier(bundle).verify(card_text, service="hc", at=NOW)
    assert result.reason is Reason.VALID


def test_hsm_card_is_refused_when_its_key_is_not_trusted(hsm: Hsm) -> None:
    authority = Authority()
    trust_list = authority.trust_list(keys=(authority.trusted_key(),))
    verifier = Verifier(authority.bundle(trust_list=trust_list))
    result = verifier.verify(encode_card(make_card(), hsm.signer()), service="hc", at=NOW)
    assert result.reason is Reason.UNKNOWN_KEY


def test_concurrent_signing_from_eight_threads(hsm: Hsm) -> None:
    """Eight threads share two signers on one token; every signature is the right key's."""
    signers = (hsm.signer(), hsm.signer(SECOND_KEY))
    start = threading.Barrier(8)

    def work(worker: int) -> list[tuple[int, bytes, bytes]]:
        start.wait()
        signed = []
        for n in range(12):
            which = (worker + n) % 2
            message = f"worker {worker} message {n}".encode()
            signed.append((which, message, signers[which].sign(message)))
        return signed

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [item for batch in pool.map(work, range(8)) for item in batch]
    assert len(results) == 8 * 12
    for which, message, signature in results:
        _verify(signers[which].public_key, signature, message)


# --- The private key stays inside -------------------------------------------------------------


def test_private_key_is_sensitive_and_never_extractable(hsm: Hsm) -> None:
    with hsm.session() as session:
        key = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.EC, label=KEY)
        flags = key.get_attributes(
            [
                Attribute.TOKEN,
                Attribute.PRIVATE,
                Attribute.SENSITIVE,
                Attribute.ALWAYS_SENSITIVE,
                Attribute.EXTRACTABLE,
                Attribute.NEVER_EXTRACTABLE,
                Attribute.DECRYPT,
                Attribute.DERIVE,
            ]
        )
        assert flags == {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.ALWAYS_SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.NEVER_EXTRACTABLE: True,
            Attribute.DECRYPT: False,
            Attribute.DERIVE: False,
        }
        with pytest.raises(AttributeSensitive):
            key[Attribute.VALUE]
        # SoftHSM2 would clear EXTRACTABLE but never set it again; the token refuses.
        with pytest.raises(pkcs11.PKCS11Error):
            key[Attribute.EXTRACTABLE] = True


def test_generate_refuses_a_label_in_use(hsm: Hsm) -> None:
    with pytest.raises(HsmKeyError, match=f"already holds a key labelled '{KEY}'"):
        generate_hsm_key(hsm.module, TOKEN, hsm.pin, KEY)


# --- Clear errors -----------------------------------------------------------------------------


def test_wrong_pin(hsm: Hsm) -> None:
    wrong = "9999-wrong"
    with pytest.raises(HsmPinError, match=f"^wrong PIN for HSM token '{TOKEN}'$") as caught:
        HsmSigner(hsm.module, TOKEN, HsmPin(wrong), KEY)
    assert wrong not in str(caught.value)
    assert isinstance(caught.value, KeysError)


def test_wrong_pin_is_refused_while_another_signer_is_in_use(hsm: Hsm, signer: HsmSigner) -> None:
    """Logins are per process in PKCS#11; a signer never rides on another signer's login."""
    signer.sign(b"in use")
    with pytest.raises(HsmPinError, match="wrong PIN"):
        HsmSigner(hsm.module, TOKEN, HsmPin("9999-wrong"), KEY)
    _verify(signer.public_key, signer.sign(b"still"), b"still")


def test_wrong_token_label_names_the_tokens_there(hsm: Hsm) -> None:
    with pytest.raises(HsmTokenError) as caught:
        HsmSigner(hsm.module, "no-such-token", hsm.pin, KEY)
    assert str(caught.value).startswith("no HSM token labelled 'no-such-token' in ")
    assert f"tokens there: '{TOKEN}'" in str(caught.value)


def test_missing_key(hsm: Hsm) -> None:
    with pytest.raises(HsmKeyNotFoundError, match="no public key labelled 'retired-2019'"):
        HsmSigner(hsm.module, TOKEN, hsm.pin, "retired-2019")


def test_private_key_without_its_public_key(hsm: Hsm) -> None:
    _relabel(hsm, ObjectClass.PUBLIC_KEY, SECOND_KEY, "orphan-public")
    try:
        with pytest.raises(HsmKeyNotFoundError, match=f"no public key labelled '{SECOND_KEY}'"):
            HsmSigner(hsm.module, TOKEN, hsm.pin, SECOND_KEY)
    finally:
        _relabel(hsm, ObjectClass.PUBLIC_KEY, "orphan-public", SECOND_KEY)


def test_signer_refuses_to_share_a_login_held_elsewhere_in_the_process(hsm: Hsm) -> None:
    """PKCS#11 logins are per process: fmcard will not sign on a login it did not make."""
    with hsm.session(), pytest.raises(HsmError, match="another session of this process"):
        hsm.signer()
    hsm.signer()  # and works again once that session is closed


def test_key_objects_that_are_not_a_pair_are_refused(hsm: Hsm) -> None:
    """A public key labelled like another pair's private key: the probe signature catches it."""
    generate_hsm_key(hsm.module, TOKEN, hsm.pin, "half-a")
    generate_hsm_key(hsm.module, TOKEN, hsm.pin, "half-b")
    _relabel(hsm, ObjectClass.PRIVATE_KEY, "half-a", "half-a-unused")
    _relabel(hsm, ObjectClass.PRIVATE_KEY, "half-b", "half-a")
    with pytest.raises(HsmKeyError, match="not a pair"):
        HsmSigner(hsm.module, TOKEN, hsm.pin, "half-a")


def test_missing_module(hsm: Hsm, tmp_path: Path) -> None:
    absent = tmp_path / "libnothere.so"
    with pytest.raises(HsmModuleError, match=f"^PKCS#11 module not found: {absent}$"):
        HsmSigner(absent, TOKEN, hsm.pin, KEY)


def test_module_that_is_not_a_library(hsm: Hsm, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.so"
    bogus.write_bytes(b"not an ELF file")
    with pytest.raises(HsmModuleError, match="cannot load PKCS#11 module"):
        HsmSigner(bogus, TOKEN, hsm.pin, KEY)


def test_missing_python_pkcs11_says_what_to_install(
    hsm: Hsm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pkcs11", None)
    with pytest.raises(HsmError) as caught:
        HsmSigner(hsm.module, TOKEN, hsm.pin, KEY)
    assert str(caught.value) == INSTALL_HINT
    with pytest.raises(HsmError, match=re.escape(INSTALL_HINT)):
        generate_hsm_key(hsm.module, TOKEN, hsm.pin, "never-made")
    assert "\n" not in INSTALL_HINT
    assert "fmcard[hsm]" in INSTALL_HINT


def test_importing_keys_does_not_import_pkcs11() -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, keys, keys.hsm; assert 'pkcs11' not in sys.modules, 'pkcs11 imported'",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert run.returncode == 0, run.stderr


# --- The PIN ----------------------------------------------------------------------------------


def test_repr_hides_the_pin(signer: HsmSigner) -> None:
    assert PIN not in repr(signer)
    assert PIN not in str(signer)
    assert repr(signer) == (
        f"HsmSigner(module={signer._module.path!r}, token='{TOKEN}', key='{KEY}', "
        f"kid='{signer.kid}', algorithm='ES256')"
    )
    assert repr(HsmPin(PIN)) == str(HsmPin(PIN)) == "HsmPin(<hidden>)"


def test_pin_from_environment_variable() -> None:
    assert HsmPin.from_env(environ={PIN_ENV: PIN}) == HsmPin(PIN)
    assert HsmPin.from_env("ISSUER_HSM_PIN", environ={"ISSUER_HSM_PIN": PIN}) == HsmPin(PIN)
    with pytest.raises(HsmPinError, match=f"no HSM PIN: set {PIN_ENV}"):
        HsmPin.from_env(environ={})


def test_pin_from_file(tmp_path: Path) -> None:
    path = tmp_path / "pin"
    path.write_text(PIN + "\n", encoding="utf-8")
    assert HsmPin.from_file(path) == HsmPin(PIN)
    path.write_text("", encoding="utf-8")
    with pytest.raises(HsmPinError, match="is empty"):
        HsmPin.from_file(path)
    with pytest.raises(HsmPinError, match="cannot read the HSM PIN"):
        HsmPin.from_file(tmp_path / "absent")


def test_signer_from_environment(hsm: Hsm, tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n", encoding="utf-8")
    environ = {
        "FMCARD_HSM_MODULE": hsm.module,
        "FMCARD_HSM_TOKEN": TOKEN,
        "FMCARD_HSM_KEY": KEY,
        PIN_FILE_ENV: str(pin_file),
    }
    assert HsmSigner.from_env(environ).kid == kid_of(hsm.public_key)
    del environ[PIN_FILE_ENV]
    with pytest.raises(HsmPinError, match=f"no HSM PIN: set {PIN_ENV}"):
        HsmSigner.from_env(environ)
    assert HsmSigner.from_env({**environ, PIN_ENV: PIN}).kid == kid_of(hsm.public_key)
    with pytest.raises(HsmError, match=r"set FMCARD_HSM_MODULE, FMCARD_HSM_KEY$"):
        HsmSigner.from_env({"FMCARD_HSM_TOKEN": TOKEN, PIN_ENV: PIN})


# --- The issuer service with its key in the HSM ----------------------------------------------


def test_issuer_service_signs_cards_with_the_hsm_key(
    hsm: Hsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Register the HSM key in the key ring, publish, and the service's cards verify."""
    from datetime import UTC, datetime, timedelta

    from cardissuer.api.routes.common import issuing_context_of
    from cardissuer.core.config import Settings
    from cardissuer.errors import WorkspaceError
    from cardissuer.main import create_app
    from cardissuer.seed import seed_demo
    from keys.keyring import KeyRing
    from verifier import Bundle, Reason, Verifier

    workspace = tmp_path / "workspace"
    database = f"sqlite:///{tmp_path / 'fmcard.db'}"
    create_app(Settings(workspace=workspace, database_url=database)).state.engine.dispose()
    monkeypatch.setenv("FMCARD_HSM_MODULE", hsm.module)
    monkeypatch.setenv("FMCARD_HSM_TOKEN", TOKEN)
    monkeypatch.setenv("FMCARD_HSM_KEY", KEY)
    monkeypatch.setenv("FMCARD_HSM_PIN", PIN)
    hsm_settings = Settings(workspace=workspace, database_url=database, hsm_module=hsm.module)
    with pytest.raises(WorkspaceError, match="not in the key ring"):
        create_app(hsm_settings)
    ring = KeyRing.load(workspace / "keys")
    ring.add_external(
        hsm.public_key, at=datetime.now(UTC) - timedelta(seconds=1), announce=timedelta(0)
    )
    (workspace / "published" / "trust-list.jwt").unlink()  # development start re-signs it
    app = create_app(hsm_settings)
    try:
        assert app.state.keys.signer.kid == kid_of(hsm.public_key)
        seed_demo(
            app.state.engine, issuing_context_of(app), environment=app.state.settings.environment
        )
        with TestClient(app) as client:
            bundle = client.get("/bundle.json").json()
            headers = {
                "Authorization": "Bearer "
                + client.post(
                    "/api/auth/login",
                    json={"username": "registrar", "password": "fmcard-demo-2026"},
                ).json()["token"]
            }
            code = client.get("/api/persons", headers=headers).json()["items"][0]["code"]
            card = client.get(f"/api/persons/{code}", headers=headers).json()["cards"][0]
        assert card["kid"] == kid_of(hsm.public_key)
        now = datetime.now(UTC)
        result = Verifier(Bundle.from_json(bundle, at=now)).verify(
            card["qr_text"], service="hc", at=now
        )
        assert result.reason is Reason.VALID
    finally:
        app.state.engine.dispose()
