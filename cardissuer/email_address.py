"""A syntax check for the e-mail addresses officers record (registration and its updates).

Offline and deliberately plain: ``local@domain``, where the local part is a dot-atom
(RFC 5322, with the non-ASCII letters RFC 6531 allows) and the domain a host name with at
least one dot, internationalised domains allowed (checked through their ASCII ``xn--`` form).
Quoted local parts, comments and address literals (``[192.0.2.1]``) are refused: nobody gives
one at a registration desk, and each is a way to smuggle odd text into the records. Whether
the address receives mail is not checked (no DNS). Messages never repeat the address.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LENGTH = 128
"""As stored (the ``person.email`` column); RFC 5321 allows 254, nobody needs them."""
MAX_LOCAL_LENGTH = 64
MAX_DOMAIN_LENGTH = 253
_ATEXT = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-"
)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def check_email(value: str) -> str:
    """Return ``value`` if it is a plausible e-mail address; raise ``ValueError`` saying what
    is wrong otherwise (without the address)."""
    if len(value) > MAX_LENGTH:
        raise ValueError(f"an e-mail address has at most {MAX_LENGTH} characters")
    if any(char.isspace() or unicodedata.category(char)[0] in "CZ" for char in value):
        raise ValueError("an e-mail address has no spaces or control characters")
    if value.count("@") != 1:
        raise ValueError("an e-mail address has exactly one @")
    local, domain = value.split("@")
    _check_local(local)
    _check_domain(domain)
    return value


def _check_local(local: str) -> None:
    if not local:
        raise ValueError("the part before the @ is empty")
    if len(local.encode()) > MAX_LOCAL_LENGTH:
        raise ValueError(f"the part before the @ has at most {MAX_LOCAL_LENGTH} bytes")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValueError("the part before the @ has a misplaced dot")
    for char in local:
        if char == "." or char in _ATEXT:
            continue
        if ord(char) > 127 and unicodedata.category(char)[0] in "LMN":  # RFC 6531
            continue
        raise ValueError("the part before the @ has a character addresses do not use")


def _check_domain(domain: str) -> None:
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        raise ValueError("the domain needs a dot between non-empty names (example.com)")
    try:  # internationalised names in their ASCII form (IDNA), e.g. xn--bcher-kva.example
        ascii_labels = [label.encode("idna").decode("ascii").lower() for label in labels]
    except UnicodeError:
        raise ValueError("the domain is not a valid (internationalised) host name") from None
    if len(".".join(ascii_labels)) > MAX_DOMAIN_LENGTH:
        raise ValueError(f"the domain has at most {MAX_DOMAIN_LENGTH} characters")
    if not all(_LABEL.fullmatch(label) for label in ascii_labels):
        raise ValueError("the domain has letters, digits and inner hyphens only")
    if ascii_labels[-1].isdigit():
        raise ValueError("the domain is a name, not an IP address")
