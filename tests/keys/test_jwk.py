"""Public JWKs, RFC 7638 thumbprints, key ids, JWKS, and refusing every key we do not use."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keys.errors import UnsupportedKeyError
from keys.jwk import (
    KID_LENGTH,
    algorithm_of,
    generate,
    jwks,
    kid_of,
    public_jwk,
    public_key_from_jwk,
    thumbprint,
)

# RFC 7515 appendix A.3: the ES256 example key.
RFC7515_EC = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}
RFC7515_EC_D = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"

# RFC 8037 appendix A.1 and A.3: an Ed25519 key and its RFC 7638 thumbprint.
RFC8037_OKP = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
RFC8037_OKP_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"

P256_PRIME = 2**256 - 2**224 + 2**192 + 2**96 - 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64(value: int) -> str:
    return _b64(value.to_bytes(32, "big"))


def _rfc7515_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(_unb64(RFC7515_EC_D), "big"), ec.SECP256R1())


def _rfc8037_private_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(_unb64(RFC8037_OKP_D))


# --- public_jwk, thumbprint, kid ---------------------------------------------------------------


def test_public_jwk_of_a_known_p256_key() -> None:
    private = _rfc7515_private_key()
    expected = {"crv": "P-256", "kty": "EC", "x": RFC7515_EC["x"], "y": RFC7515_EC["y"]}
    assert public_jwk(private) == expected
    assert public_jwk(private.public_key()) == expected
    assert list(public_jwk(private)) == ["crv", "kty", "x", "y"]


def test_public_jwk_of_a_known_ed25519_key() -> None:
    private = _rfc8037_private_key()
    expected = {"crv": "Ed25519", "kty": "OKP", "x": RFC8037_OKP["x"]}
    assert public_jwk(private) == expected
    assert public_jwk(private.public_key()) == expected


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_public_jwk_never_holds_private_members(algorithm: str) -> None:
    key = generate(algorithm)
    jwk = public_jwk(key)
    assert "d" not in jwk
    assert set(jwk) <= {"crv", "kty", "x", "y"}
    assert public_jwk(public_key_from_jwk(jwk)) == jwk


def test_p256_coordinates_keep_leading_zero_bytes() -> None:
    # The first small scalar whose public x has a leading zero byte (deterministic search).
    key = next(
        candidate
        for candidate in (ec.derive_private_key(n, ec.SECP256R1()) for n in range(1, 100_000))
        if candidate.public_key().public_numbers().x < 2**248
    )
    jwk = public_jwk(key)
    assert len(jwk["x"]) == 43
    assert len(_unb64(jwk["x"])) == 32
    assert jwk["x"][0] == "A"
    assert jwk["x"][1] in "ABCDEFGHIJKLMNOP"  # the top two bits of the second character are 0
    assert public_jwk(public_key_from_jwk(jwk)) == jwk


def test_ed25519_thumbprint_is_the_rfc8037_value() -> None:
    assert thumbprint(RFC8037_OKP) == RFC8037_THUMBPRINT
    assert thumbprint(public_jwk(_rfc8037_private_key())) == RFC8037_THUMBPRINT
    assert kid_of(_rfc8037_private_key()) == RFC8037_THUMBPRINT[:KID_LENGTH]


def test_p256_thumbprint_is_computed_over_the_canonical_json() -> None:
    # RFC 7638 section 3.2: required members only, in lexicographic order, no whitespace.
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{RFC7515_EC["x"]}","y":"{RFC7515_EC["y"]}"' + "}"
    assert canonical == json.dumps(
        {k: RFC7515_EC[k] for k in sorted(RFC7515_EC)}, separators=(",", ":")
    )
    expected = _b64(hashlib.sha256(canonical.encode("utf-8")).digest())
    assert thumbprint(RFC7515_EC) == expected
    assert thumbprint(public_jwk(_rfc7515_private_key())) == expected
    assert kid_of(_rfc7515_private_key()) == expected[:KID_LENGTH]
    assert len(expected) == 43


def test_thumbprint_ignores_member_order_and_extra_members() -> None:
    reordered: dict[str, Any] = {
        "y": RFC7515_EC["y"],
        "use": "sig",
        "x": RFC7515_EC["x"],
        "kid": "whatever",
        "kty": "EC",
        "alg": "ES256",
        "crv": "P-256",
    }
    as_given = json.dumps(reordered, separators=(",", ":"))
    naive = _b64(hashlib.sha256(as_given.encode()).digest())
    required_as_given = json.dumps(
        {k: v for k, v in reordered.items() if k in {"crv", "kty", "x", "y"}},
        separators=(",", ":"),
    )
    naive_required = _b64(hashlib.sha256(required_as_given.encode()).digest())
    assert thumbprint(reordered) == thumbprint(RFC7515_EC)
    # Hashing the members in the order given would give other values: order matters.
    assert thumbprint(reordered) not in (naive, naive_required)


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_kid_is_a_prefix_of_the_thumbprint(algorithm: str) -> None:
    key = generate(algorithm)
    kid = kid_of(key)
    assert len(kid) == KID_LENGTH == 8
    assert thumbprint(public_jwk(key)).startswith(kid)
    assert kid_of(key.public_key()) == kid
    assert set(kid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert kid_of(generate(algorithm)) != kid


def test_algorithm_of() -> None:
    assert algorithm_of(generate("ES256")) == "ES256"
    assert algorithm_of(generate("EdDSA")) == "EdDSA"
    assert algorithm_of(generate("EdDSA").public_key()) == "EdDSA"
    with pytest.raises(UnsupportedKeyError, match="P-256"):
        algorithm_of(ec.generate_private_key(ec.SECP384R1()))


@pytest.mark.parametrize("algorithm", ["RS256", "HS256", "ES384", "es256", ""])
def test_generate_refuses_other_algorithms(algorithm: str) -> None:
    with pytest.raises(UnsupportedKeyError):
        generate(algorithm)


def test_public_jwk_refuses_other_curves() -> None:
    with pytest.raises(UnsupportedKeyError):
        public_jwk(ec.generate_private_key(ec.SECP384R1()))


# --- public_key_from_jwk -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jwk", "algorithm"),
    [
        pytest.param(RFC7515_EC, "ES256", id="p256"),
        pytest.param(RFC8037_OKP, "EdDSA", id="ed25519"),
        pytest.param({**RFC7515_EC, "kid": "k", "alg": "ES256", "use": "sig"}, "ES256", id="jwks"),
    ],
)
def test_public_key_from_jwk_accepts_p256_and_ed25519(jwk: dict[str, str], algorithm: str) -> None:
    key = public_key_from_jwk(jwk)
    assert algorithm_of(key) == algorithm
    assert public_jwk(key) == {k: jwk[k] for k in ("crv", "kty", "x", "y") if k in jwk}


def _rsa_jwk() -> dict[str, str]:
    numbers = rsa.generate_private_key(65537, 2048).public_key().public_numbers()
    return {
        "kty": "RSA",
        "n": _b64(numbers.n.to_bytes(256, "big")),
        "e": _b64(numbers.e.to_bytes(3, "big")),
    }


def _p384_jwk() -> dict[str, str]:
    numbers = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-384",
        "x": _b64(numbers.x.to_bytes(48, "big")),
        "y": _b64(numbers.y.to_bytes(48, "big")),
    }


def _with_y(value: int) -> dict[str, str]:
    return {**RFC7515_EC, "y": _int_b64(value)}


def _y() -> int:
    return int.from_bytes(_unb64(RFC7515_EC["y"]), "big")


def _non_canonical_last_character(text: str) -> str:
    """Same bytes, other text: set the unused low bits of the last base64url character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    value = alphabet.index(text[-1])
    assert value & 0b11 == 0  # 32 bytes = 43 characters, the last carries 4 bits and 2 spare
    changed = text[:-1] + alphabet[value | 0b01]
    assert _unb64(changed) == _unb64(text)
    return changed


REFUSED: list[Any] = [
    pytest.param(_rsa_jwk(), id="rsa"),
    pytest.param(_p384_jwk(), id="p384"),
    pytest.param({**RFC7515_EC, "crv": "P-384"}, id="p256-coordinates-labelled-p384"),
    pytest.param({**RFC7515_EC, "crv": "secp256k1"}, id="secp256k1"),
    pytest.param({"kty": "oct", "k": "c2VjcmV0"}, id="hmac-secret"),
    pytest.param({**RFC8037_OKP, "crv": "X25519"}, id="x25519"),
    pytest.param({**RFC8037_OKP, "crv": "Ed448"}, id="ed448"),
    pytest.param({**RFC7515_EC, "kty": "OKP"}, id="kty-crv-mismatch"),
    pytest.param({**RFC7515_EC, "d": RFC7515_EC_D}, id="private-ec"),
    pytest.param({**RFC8037_OKP, "d": RFC8037_OKP_D}, id="private-okp"),
    pytest.param({**RFC8037_OKP, "d": ""}, id="private-empty-d"),
    pytest.param({**RFC7515_EC, "x": RFC7515_EC["x"] + "="}, id="padded-x"),
    pytest.param({**RFC7515_EC, "y": RFC7515_EC["y"].replace("_", "/")}, id="standard-base64-y"),
    pytest.param({**RFC8037_OKP, "x": RFC8037_OKP["x"].replace("_", "/")}, id="standard-b64-okp"),
    pytest.param(
        {**RFC7515_EC, "x": _non_canonical_last_character(RFC7515_EC["x"])},
        id="non-canonical-trailing-bits-x",
    ),
    pytest.param(
        {**RFC8037_OKP, "x": _non_canonical_last_character(RFC8037_OKP["x"])},
        id="non-canonical-trailing-bits-okp",
    ),
    pytest.param({**RFC7515_EC, "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVE!"}, id="bad-char"),
    pytest.param({**RFC7515_EC, "x": RFC7515_EC["x"][:-1]}, id="short-x"),
    pytest.param({**RFC7515_EC, "y": RFC7515_EC["y"] + "A"}, id="long-y"),
    pytest.param({**RFC7515_EC, "x": _b64(b"\x00" + _unb64(RFC7515_EC["x"]))}, id="33-byte-x"),
    pytest.param({**RFC8037_OKP, "x": _b64(_unb64(RFC8037_OKP["x"])[:31])}, id="31-byte-okp"),
    pytest.param({**RFC8037_OKP, "x": RFC8037_OKP["x"] + "AAAA"}, id="35-byte-okp"),
    pytest.param({k: v for k, v in RFC7515_EC.items() if k != "y"}, id="missing-y"),
    pytest.param({k: v for k, v in RFC8037_OKP.items() if k != "x"}, id="missing-okp-x"),
    pytest.param({**RFC7515_EC, "x": 12345}, id="numeric-x"),
    pytest.param(_with_y(_y() ^ 1), id="point-not-on-curve"),
    pytest.param(_with_y(0), id="y-zero"),
    pytest.param({**RFC7515_EC, "x": _int_b64(0), "y": _int_b64(0)}, id="origin"),
    pytest.param({**RFC7515_EC, "x": _int_b64(1), "y": _int_b64(1)}, id="one-one"),
    pytest.param({**RFC7515_EC, "x": _int_b64(P256_PRIME)}, id="x-equal-to-p"),
    pytest.param(_with_y(2**256 - 1), id="y-above-p"),
    pytest.param({}, id="empty"),
    pytest.param([RFC7515_EC], id="list"),
    pytest.param(json.dumps(RFC7515_EC), id="json-string"),
    pytest.param(None, id="none"),
]


@pytest.mark.parametrize("jwk", REFUSED)
def test_public_key_from_jwk_refuses(jwk: object) -> None:
    with pytest.raises(UnsupportedKeyError):
        public_key_from_jwk(jwk)


def test_the_point_with_negated_y_is_on_the_curve_and_accepted() -> None:
    # Control for the off-curve cases above: (x, p - y) is a valid point.
    key = public_key_from_jwk(_with_y(P256_PRIME - _y()))
    assert isinstance(key, ec.EllipticCurvePublicKey)


# --- JWKS ----------------------------------------------------------------------------------------


def test_jwks_has_kid_alg_and_use() -> None:
    es256 = generate("ES256").public_key()
    eddsa = generate("EdDSA").public_key()
    document = jwks([(es256, kid_of(es256)), (eddsa, "custom-kid")])
    assert list(document) == ["keys"]
    first, second = document["keys"]
    assert first == {**public_jwk(es256), "kid": kid_of(es256), "alg": "ES256", "use": "sig"}
    assert second == {**public_jwk(eddsa), "kid": "custom-kid", "alg": "EdDSA", "use": "sig"}
    for entry in document["keys"]:
        assert "d" not in entry
        assert public_jwk(public_key_from_jwk(entry)) == public_jwk(
            es256 if entry["kty"] == "EC" else eddsa
        )
    json.dumps(document)  # serialisable as is


def test_empty_jwks() -> None:
    assert jwks([]) == {"keys": []}
