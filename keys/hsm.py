"""An issuing key that never leaves a hardware security module, used through PKCS#11.

:class:`HsmSigner` is a :class:`~keys.signer.Signer` for a P-256 (ES256) key pair stored in a
PKCS#11 token: it reads the public key from the token once, and every :meth:`HsmSigner.sign`
asks the token for an ECDSA signature over a SHA-256 digest computed here (plain ``CKM_ECDSA``
is the one EC signing mechanism every token offers; the card payloads are small, so hashing
them in Python costs nothing). The private key is generated inside the token as sensitive and
non-extractable (:func:`generate_hsm_key`), so a stolen disk or a compromised issuer process
yields signatures at most, never the key.

Configuration (see :meth:`HsmSigner.from_env`):

* ``FMCARD_HSM_MODULE``: the PKCS#11 module, e.g. ``/usr/lib/softhsm/libsofthsm2.so``;
* ``FMCARD_HSM_TOKEN``: the token label; ``FMCARD_HSM_KEY``: the key pair's label;
* ``FMCARD_HSM_PIN_FILE`` (a mounted secret) or ``FMCARD_HSM_PIN``: the user PIN. It is never
  a command-line argument (other users can read those in ``ps``) and never shown by ``repr``.

Sessions: each signature opens a session, logs in, signs, logs out and closes it, all under a
lock per PKCS#11 module. python-pkcs11 initialises modules without locking callbacks, which
tells the module that the application will not call it from two threads at once, and login
state is shared by every session of a process; serialising whole sessions keeps both promises,
lets several signers share one token (an old and a new key during rotation), checks the PIN of
every signer rather than riding on another's login, and survives an HSM restart without
reconnection logic. The cost is a login per signature (about 3 ms with SoftHSM2), which an
issuing office never notices. Create signers after any ``fork``: a module initialised in a
parent process is not usable in the child.

``python-pkcs11`` is the optional ``hsm`` extra and is imported only inside functions, so
``import keys`` and the offline verifier never need it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from keys.errors import KeysError
from keys.jwk import ES256, kid_of

if TYPE_CHECKING:
    from pkcs11 import Object, Session, SignMixin, Token
    from pkcs11._pkcs11 import lib as pkcs11_lib

MODULE_ENV = "FMCARD_HSM_MODULE"
TOKEN_ENV = "FMCARD_HSM_TOKEN"  # noqa: S105 - a variable name, not a secret
KEY_ENV = "FMCARD_HSM_KEY"
PIN_ENV = "FMCARD_HSM_PIN"
PIN_FILE_ENV = "FMCARD_HSM_PIN_FILE"

INSTALL_HINT = "python-pkcs11 is not installed; install the hsm extra: pip install 'fmcard[hsm]'"

P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")
"""DER of the named-curve OID 1.2.840.10045.3.1.7 (P-256), the key's ``CKA_EC_PARAMS``."""

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_COORDINATE = 32
_PROBE = b"fmcard HSM key check"


class HsmError(KeysError):
    """The HSM, its token or the key in it cannot be used to sign."""


class HsmModuleError(HsmError):
    """The PKCS#11 module (a shared library) is missing or does not load."""


class HsmTokenError(HsmError):
    """No token, or more than one, has the configured label."""


class HsmPinError(HsmError):
    """The PIN is missing, wrong, locked or expired."""


class HsmKeyError(HsmError):
    """The key pair in the token is unusable: ambiguous label, wrong type or curve, mismatch."""


class HsmKeyNotFoundError(HsmKeyError):
    """The token holds no key object with the configured label."""


@dataclass(frozen=True, slots=True, repr=False)
class HsmPin:
    """The token's user PIN; its ``repr`` hides the value so logs and tracebacks never show it.

    Build it with :meth:`from_env` or :meth:`from_file` in production; the plain constructor is
    for tests and for callers that already hold the PIN from a secret store.
    """

    value: str

    @classmethod
    def from_env(cls, name: str = PIN_ENV, environ: Mapping[str, str] | None = None) -> HsmPin:
        """Read the PIN from the environment variable ``name``."""
        env = os.environ if environ is None else environ
        value = env.get(name, "")
        if not value:
            raise HsmPinError(f"no HSM PIN: set {name} (or {PIN_FILE_ENV} to a file holding it)")
        return cls(value)

    @classmethod
    def from_file(cls, path: Path) -> HsmPin:
        """Read the PIN from the first line of ``path`` (a mounted secret)."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            raise HsmPinError(f"cannot read the HSM PIN from {path}") from None
        if not lines or not lines[0]:
            raise HsmPinError(f"the HSM PIN file {path} is empty")
        return cls(lines[0])

    def __repr__(self) -> str:
        return "HsmPin(<hidden>)"


class HsmSigner:
    """A :class:`~keys.signer.Signer` whose P-256 private key stays in a PKCS#11 token.

    Construction logs in once, reads the public key and signs a probe, so a wrong module path,
    token label, PIN or key label, or a private key that is not the public key's pair, fails
    at start-up with an :class:`HsmError` rather than on the first card. Safe to share between
    threads.
    """

    __slots__ = ("_key_label", "_kid", "_module", "_pin", "_public_key", "_token_label")

    def __init__(
        self, module: str | os.PathLike[str], token_label: str, pin: HsmPin, key_label: str
    ) -> None:
        self._module = _Module.of(module)
        self._token_label = token_label
        self._pin = pin
        self._key_label = key_label
        with _session(self._module, token_label, pin) as session:
            public = _find_key(session, "public", token_label, key_label)
            self._public_key = _public_key(public, key_label)
            _signing_key(session, token_label, key_label)
        self._kid = kid_of(self._public_key)
        self.sign(_PROBE)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HsmSigner:
        """Build the signer from ``FMCARD_HSM_MODULE``, ``_TOKEN``, ``_KEY`` and the PIN.

        The PIN comes from the file named by ``FMCARD_HSM_PIN_FILE`` if set, else from
        ``FMCARD_HSM_PIN``.
        """
        env = os.environ if environ is None else environ
        missing = [name for name in (MODULE_ENV, TOKEN_ENV, KEY_ENV) if not env.get(name)]
        if missing:
            raise HsmError(f"HSM signing is not configured: set {', '.join(missing)}")
        pin_file = env.get(PIN_FILE_ENV)
        pin = HsmPin.from_file(Path(pin_file)) if pin_file else HsmPin.from_env(environ=env)
        return cls(env[MODULE_ENV], env[TOKEN_ENV], pin, env[KEY_ENV])

    @property
    def kid(self) -> str:
        return self._kid

    @property
    def algorithm(self) -> str:
        return ES256

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public_key

    def sign(self, signing_input: bytes) -> bytes:
        """Return the raw ES256 signature ``r || s`` (64 bytes) of ``signing_input``.

        Every signature is verified against the public key before it is returned: a token that
        answers in DER instead of ``r || s``, drops leading zero bytes, or holds a private key
        that is not the public key's pair would otherwise produce cards that never verify. That
        check costs about 0.1 ms against a few milliseconds for the token.
        """
        _require_pkcs11()
        from pkcs11 import Mechanism, PKCS11Error

        digest = hashlib.sha256(signing_input).digest()
        with _session(self._module, self._token_label, self._pin) as session:
            key = _signing_key(session, self._token_label, self._key_label)
            try:
                answer = key.sign(digest, mechanism=Mechanism.ECDSA)
            except PKCS11Error as exc:
                raise HsmError(
                    f"token {self._token_label!r} refused to sign with key "
                    f"{self._key_label!r}: {_describe(exc)}"
                ) from exc
        for r, s in _signature_candidates(answer):
            if 0 < r < _P256_ORDER and 0 < s < _P256_ORDER and self._verifies(r, s, signing_input):
                return r.to_bytes(_COORDINATE, "big") + s.to_bytes(_COORDINATE, "big")
        raise HsmKeyError(
            f"the signature from token {self._token_label!r} does not verify with the public "
            f"key labelled {self._key_label!r}: the private and public key objects are not a pair"
        )

    def _verifies(self, r: int, s: int, signing_input: bytes) -> bool:
        try:
            self._public_key.verify(
                encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return (
            f"HsmSigner(module={self._module.path!r}, token={self._token_label!r}, "
            f"key={self._key_label!r}, kid={self._kid!r}, algorithm={ES256!r})"
        )


def generate_hsm_key(
    module: str | os.PathLike[str], token_label: str, pin: HsmPin, key_label: str
) -> ec.EllipticCurvePublicKey:
    """Create a P-256 key pair labelled ``key_label`` in the token; return its public key.

    The private key is created on the token as sensitive and non-extractable, may only sign,
    and so can never be read or wrapped out; that is the point of the HSM. Refuses a label
    already in use, because two keys with one label would make :class:`HsmSigner` ambiguous.
    """
    _require_pkcs11()
    from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, PKCS11Error

    target = _Module.of(module)
    with _session(target, token_label, pin, rw=True) as session:
        if list(session.get_objects({Attribute.LABEL: key_label})):
            raise HsmKeyError(f"token {token_label!r} already holds a key labelled {key_label!r}")
        try:
            public, _private = session.generate_keypair(
                KeyType.EC,
                mechanism=Mechanism.EC_KEY_PAIR_GEN,
                store=True,
                label=key_label,
                # Tools such as pkcs11-tool pair the two objects by CKA_ID.
                id=os.urandom(16),
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={Attribute.EC_PARAMS: P256_PARAMS},
                private_template={
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                },
            )
        except PKCS11Error as exc:
            raise HsmError(
                f"token {token_label!r} could not generate a P-256 key pair: {_describe(exc)}"
            ) from exc
        return _public_key(public, key_label)


@dataclass(frozen=True, slots=True)
class _Module:
    """A PKCS#11 module as configured (for messages) and as loaded (by its real path)."""

    path: str
    resolved: str
    lock: threading.Lock

    @classmethod
    def of(cls, module: str | os.PathLike[str]) -> _Module:
        """Return the module with the lock shared by every user of the same library file.

        The real path is the key so that a symlink and its target are one library: loading it
        twice under two names would initialise it twice.
        """
        path = os.fspath(module)
        resolved = os.path.realpath(path)
        with _LOCKS_GUARD:
            lock = _LOCKS.setdefault(resolved, threading.Lock())
        return cls(path, resolved, lock)


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _require_pkcs11() -> None:
    """Turn a missing optional dependency into one line that says which extra to install."""
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        raise HsmError(INSTALL_HINT) from None


@contextmanager
def _session(
    module: _Module, token_label: str, pin: HsmPin, *, rw: bool = False
) -> Iterator[Session]:
    """Hold the module's lock and a logged-in session on the token; log out and close after.

    PKCS#11 errors inside the block that the caller did not translate become :class:`HsmError`.
    """
    _require_pkcs11()
    import pkcs11
    from pkcs11 import exceptions as p11

    with module.lock:
        token = _find_token(_load(module), module, token_label)
        try:
            session = token.open(rw=rw, user_pin=pin.value)
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
            raise HsmPinError(f"wrong PIN for HSM token {token_label!r}") from None
        except p11.PinLocked:
            raise HsmPinError(
                f"the PIN of HSM token {token_label!r} is locked after too many wrong attempts; "
                "its security officer must reset it"
            ) from None
        except p11.PinExpired:
            raise HsmPinError(f"the PIN of HSM token {token_label!r} has expired") from None
        except p11.UserPinNotInitialized:
            raise HsmPinError(f"HSM token {token_label!r} has no user PIN yet") from None
        except p11.UserAlreadyLoggedIn:
            raise HsmError(
                f"another session of this process is logged in to HSM token {token_label!r}; "
                "fmcard logs in for each signature and cannot share that login"
            ) from None
        except pkcs11.PKCS11Error as exc:
            raise HsmError(f"cannot log in to HSM token {token_label!r}: {_describe(exc)}") from exc
        try:
            yield session
        except pkcs11.PKCS11Error as exc:
            raise HsmError(f"HSM token {token_label!r}: {_describe(exc)}") from exc
        finally:
            # The work is done; a token that fails to log out or close (it was unplugged, say)
            # forgets the session anyway, and the next call opens a new one.
            with suppress(pkcs11.PKCS11Error):
                session.close()


def _load(module: _Module) -> pkcs11_lib:
    """Load and initialise the module once per process (python-pkcs11 caches it)."""
    import pkcs11

    if not os.path.isfile(module.resolved):
        raise HsmModuleError(f"PKCS#11 module not found: {module.path}")
    try:
        return pkcs11.lib(module.resolved)
    except pkcs11.PKCS11Error as exc:
        raise HsmModuleError(f"cannot load PKCS#11 module {module.path}: {exc}") from None


def _find_token(library: pkcs11_lib, module: _Module, label: str) -> Token:
    """Return the one initialised token labelled ``label``; name the others if there is none."""
    tokens = list(library.get_tokens(token_label=label))
    if len(tokens) == 1:
        return tokens[0]
    if tokens:
        raise HsmTokenError(f"{len(tokens)} HSM tokens are labelled {label!r} in {module.path}")
    present = sorted(repr(token.label) for token in library.get_tokens() if token.label)
    there = f"tokens there: {', '.join(present)}" if present else "it has no initialised token"
    hint = "; check SOFTHSM2_CONF" if "softhsm" in module.resolved.lower() else ""
    raise HsmTokenError(f"no HSM token labelled {label!r} in {module.path} ({there}{hint})")


def _find_key(session: Session, kind: str, token_label: str, key_label: str) -> Object:
    """Return the one ``kind`` ("public" or "private") EC key object labelled ``key_label``."""
    from pkcs11 import Attribute, KeyType, ObjectClass

    object_class = ObjectClass.PUBLIC_KEY if kind == "public" else ObjectClass.PRIVATE_KEY
    found = list(session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: key_label}))
    if not found:
        raise HsmKeyNotFoundError(
            f"no {kind} key labelled {key_label!r} on HSM token {token_label!r}"
        )
    if len(found) > 1:
        raise HsmKeyError(
            f"{len(found)} {kind} keys are labelled {key_label!r} on HSM token {token_label!r}; "
            "labels must be unique"
        )
    if found[0][Attribute.KEY_TYPE] != KeyType.EC:
        raise HsmKeyError(
            f"the {kind} key labelled {key_label!r} is not an EC key; fmcard signs ES256 only"
        )
    return found[0]


def _signing_key(session: Session, token_label: str, key_label: str) -> SignMixin:
    """Return the private key, refusing one whose ``CKA_SIGN`` is false."""
    from pkcs11 import SignMixin

    key = _find_key(session, "private", token_label, key_label)
    if not isinstance(key, SignMixin):
        raise HsmKeyError(f"the private key labelled {key_label!r} is not allowed to sign")
    return key


def _public_key(key: Object, key_label: str) -> ec.EllipticCurvePublicKey:
    """Decode ``CKA_EC_PARAMS`` and ``CKA_EC_POINT`` into a P-256 public key.

    The point is a DER OCTET STRING by the standard, but some tokens return the bare point;
    the two are told apart by length (65 or 33 bytes bare, 67 or 35 wrapped).
    """
    from pkcs11 import Attribute

    params: Any = key[Attribute.EC_PARAMS]
    point: Any = key[Attribute.EC_POINT]
    if bytes(params) != P256_PARAMS:
        raise HsmKeyError(f"the key labelled {key_label!r} is not on P-256; ES256 needs P-256")
    point = bytes(point)
    if len(point) in (35, 67) and point[0] == 0x04 and point[1] == len(point) - 2:
        point = point[2:]
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise HsmKeyError(f"the key labelled {key_label!r} has a malformed EC point") from None


def _signature_candidates(answer: bytes) -> Iterator[tuple[int, int]]:
    """Yield the ``(r, s)`` readings of a token's answer: ``r || s`` first, then DER."""
    if answer and len(answer) % 2 == 0 and len(answer) <= 2 * (_COORDINATE + 1):
        half = len(answer) // 2
        yield int.from_bytes(answer[:half], "big"), int.from_bytes(answer[half:], "big")
    if answer[:1] == b"\x30":
        try:
            yield decode_dss_signature(answer)
        except ValueError:
            return


def _describe(exc: Exception) -> str:
    """Name a python-pkcs11 error: most carry no message, only a class named after the CKR."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
