"""Service codes: what an entitlement on a card lets the holder use.

Codes are short because every byte of the QR counts; the catalogue below is the default the
issuer starts from and can extend (any code matching :data:`SERVICE_CODE_PATTERN` is valid on
the wire, so a new service needs no new verifier).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SERVICE_CODE_PATTERN = re.compile(r"[a-z][a-z0-9]{1,7}")


@dataclass(frozen=True, slots=True)
class Service:
    """One entry of the service catalogue."""

    code: str
    name_en: str
    name_zh: str


DEFAULT_CATALOGUE: tuple[Service, ...] = (
    Service("hc", "Healthcare", "医疗"),
    Service("ed", "Education", "教育"),
    Service("tr", "Public transport", "公共交通"),
    Service("bk", "Banking", "银行"),
    Service("ho", "Housing", "住房"),
    Service("bz", "Business licensing", "营业执照"),
)

SERVICES_BY_CODE = {service.code: service for service in DEFAULT_CATALOGUE}
