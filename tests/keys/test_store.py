"""Private keys at rest: encrypted PKCS#8 files and where the passphrase comes from."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from keys.errors import KeyFileError, PassphraseError, UnsupportedKeyError
from keys.jwk import PrivateKey, generate, public_jwk
from keys.store import (
    MIN_PASSPHRASE_LENGTH,
    PASSPHRASE_ENV,
    PASSPHRASE_FILE_ENV,
    Passphrase,
    load_private_key,
    save_private_key,
    write_file,
)

SECRET = "correct horse battery staple"
PASSPHRASE = Passphrase.from_text(SECRET)


def _raw_private_bytes(key: PrivateKey) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.private_numbers().private_value.to_bytes(32, "big")
    return key.private_bytes_raw()


def _pem_body(pem: bytes) -> bytes:
    lines = pem.decode("ascii").strip().splitlines()
    assert lines[0].startswith("-----BEGIN ")
    assert lines[-1].startswith("-----END ")
    return base64.b64decode("".join(lines[1:-1]))


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_save_and_load_round_trip(tmp_path: Path, algorithm: str) -> None:
    key = generate(algorithm)
    path = tmp_path / "issuing" / "key.pem"
    save_private_key(key, path, PASSPHRASE)
    loaded = load_private_key(path, Passphrase.from_text(SECRET))
    assert type(loaded) is type(key)
    assert public_jwk(loaded) == public_jwk(key)
    assert _raw_private_bytes(loaded) == _raw_private_bytes(key)


def test_key_file_has_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    save_private_key(generate(), path, PASSPHRASE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_mode_0600_even_when_replacing_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(b"old")
    path.chmod(0o644)
    save_private_key(generate(), path, PASSPHRASE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    save_private_key(generate(), tmp_path / "key.pem", PASSPHRASE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.pem"]


def test_write_file_default_mode(tmp_path: Path) -> None:
    path = tmp_path / "public.json"
    write_file(path, b"{}")
    assert path.read_bytes() == b"{}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_key_file_is_encrypted(tmp_path: Path, algorithm: str) -> None:
    key = generate(algorithm)
    path = tmp_path / "key.pem"
    save_private_key(key, path, PASSPHRASE)
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert b"-----BEGIN PRIVATE KEY-----" not in pem
    raw = _raw_private_bytes(key)
    der = _pem_body(pem)
    for where in (pem, der):
        assert raw not in where
        assert base64.b64encode(raw).rstrip(b"=") not in where
        assert base64.urlsafe_b64encode(raw).rstrip(b"=") not in where
        assert raw.hex().encode() not in where
    clear_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert clear_der not in der
    assert SECRET.encode() not in pem


def test_wrong_passphrase_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    save_private_key(generate(), path, PASSPHRASE)
    with pytest.raises(PassphraseError, match="does not open"):
        load_private_key(path, Passphrase.from_text(SECRET + "!"))


def test_unencrypted_pem_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(
        generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyFileError, match="refusing a key in clear"):
        load_private_key(path, PASSPHRASE)


def test_unencrypted_traditional_pem_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyFileError):
        load_private_key(path, PASSPHRASE)


def test_unencrypted_pem_with_a_misleading_label_is_refused(tmp_path: Path) -> None:
    clear = generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "key.pem"
    path.write_bytes(b"ENCRYPTED PRIVATE KEY (not really)\n" + clear)
    with pytest.raises(KeyFileError):
        load_private_key(path, PASSPHRASE)


def test_missing_file_is_a_key_file_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read key file"):
        load_private_key(tmp_path / "absent.pem", PASSPHRASE)


def test_damaged_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    save_private_key(generate(), path, PASSPHRASE)
    lines = path.read_bytes().splitlines()
    middle = len(lines) // 2
    lines[middle] = bytes(reversed(lines[middle]))
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises((PassphraseError, KeyFileError)):
        load_private_key(path, PASSPHRASE)


def test_other_key_types_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    p384 = ec.generate_private_key(ec.SECP384R1())
    path.write_bytes(
        p384.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.value),
        )
    )
    with pytest.raises(UnsupportedKeyError):
        load_private_key(path, PASSPHRASE)
    with pytest.raises(UnsupportedKeyError):
        save_private_key(p384, tmp_path / "other.pem", PASSPHRASE)
    assert not (tmp_path / "other.pem").exists()


def test_ed25519_is_loaded_as_ed25519(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    save_private_key(generate("EdDSA"), path, PASSPHRASE)
    assert isinstance(load_private_key(path, PASSPHRASE), ed25519.Ed25519PrivateKey)


# --- Passphrase ----------------------------------------------------------------------------------


def test_passphrase_from_env_variable() -> None:
    passphrase = Passphrase.from_env({PASSPHRASE_ENV: SECRET})
    assert passphrase.value == SECRET.encode("utf-8")
    assert PASSPHRASE_ENV == "FMCARD_KEY_PASSPHRASE"


def test_passphrase_from_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "passphrase"
    secret_file.write_text(SECRET + "\nsecond line is ignored\n", encoding="utf-8")
    passphrase = Passphrase.from_env({PASSPHRASE_FILE_ENV: str(secret_file)})
    assert passphrase.value == SECRET.encode()
    assert PASSPHRASE_FILE_ENV == "FMCARD_KEY_PASSPHRASE_FILE"


def test_passphrase_file_with_crlf(tmp_path: Path) -> None:
    secret_file = tmp_path / "passphrase"
    secret_file.write_bytes(SECRET.encode() + b"\r\n")
    assert Passphrase.from_env({PASSPHRASE_FILE_ENV: str(secret_file)}).value == SECRET.encode()


def test_passphrase_file_takes_precedence(tmp_path: Path) -> None:
    secret_file = tmp_path / "passphrase"
    secret_file.write_text("from the mounted secret", encoding="utf-8")
    environ = {PASSPHRASE_FILE_ENV: str(secret_file), PASSPHRASE_ENV: SECRET}
    assert Passphrase.from_env(environ).value == b"from the mounted secret"


def test_non_ascii_passphrase_is_utf8() -> None:
    text = "口令口令口令口令口令口令"
    assert Passphrase.from_env({PASSPHRASE_ENV: text}).value == text.encode("utf-8")


def test_passphrase_from_env_reads_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PASSPHRASE_FILE_ENV, raising=False)
    monkeypatch.setenv(PASSPHRASE_ENV, SECRET)
    assert Passphrase.from_env().value == SECRET.encode()


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({}, id="nothing"),
        pytest.param({PASSPHRASE_ENV: ""}, id="empty-variable"),
        pytest.param({PASSPHRASE_FILE_ENV: "", PASSPHRASE_ENV: ""}, id="both-empty"),
        pytest.param({"OTHER": SECRET}, id="other-variable"),
    ],
)
def test_missing_passphrase_is_refused(environ: dict[str, str]) -> None:
    with pytest.raises(PassphraseError, match="no key passphrase"):
        Passphrase.from_env(environ)


@pytest.mark.parametrize("length", [1, MIN_PASSPHRASE_LENGTH - 1])
def test_too_short_passphrase_is_refused(tmp_path: Path, length: int) -> None:
    short = "x" * length
    with pytest.raises(PassphraseError, match="at least 12 characters"):
        Passphrase.from_env({PASSPHRASE_ENV: short})
    secret_file = tmp_path / "passphrase"
    secret_file.write_text(short + "\n", encoding="utf-8")
    with pytest.raises(PassphraseError, match="at least 12 characters"):
        Passphrase.from_env({PASSPHRASE_FILE_ENV: str(secret_file)})


def test_passphrase_of_exactly_the_minimum_length_is_accepted() -> None:
    assert MIN_PASSPHRASE_LENGTH == 12
    assert Passphrase.from_env({PASSPHRASE_ENV: "x" * 12}).value == b"x" * 12


@pytest.mark.parametrize("content", [b"", b"\n", b"\xff\xfe not utf-8 \xff"])
def test_unusable_passphrase_file_is_refused(tmp_path: Path, content: bytes) -> None:
    secret_file = tmp_path / "passphrase"
    secret_file.write_bytes(content)
    with pytest.raises(PassphraseError):
        Passphrase.from_env({PASSPHRASE_FILE_ENV: str(secret_file)})


def test_missing_passphrase_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PassphraseError, match="cannot read a passphrase"):
        Passphrase.from_env({PASSPHRASE_FILE_ENV: str(tmp_path / "absent")})


def test_repr_hides_the_passphrase() -> None:
    passphrase = Passphrase.from_text(SECRET)
    assert repr(passphrase) == "Passphrase(<hidden>)"
    for shown in (repr(passphrase), str(passphrase), f"{passphrase}", f"{passphrase!r}"):
        assert SECRET not in shown
        assert "horse" not in shown
    assert SECRET not in repr([passphrase])
