"""The machine-readable zone of a passport (ICAO 9303 part 4, TD3): read it, check its check
digits, and compare it with what the holder typed.

A passport's MRZ is two lines of 44 characters from ``A-Z``, ``0-9`` and the filler ``<``::

    P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<
    L898902C36UTO7408122F1204159ZE184226B<<<<<10

Line 1: document code (2), issuing state (3), names (39: ``SURNAME<<GIVEN<NAMES``). Line 2:
document number (9) and its check digit, nationality (3), birth date (YYMMDD) and check
digit, sex, expiry date (YYMMDD) and check digit, optional data (14) and its check digit, and
the composite check digit over the number, birth, expiry and optional data with their digits.
A number longer than nine characters goes on in the optional data, the number's own check
digit then being ``<`` and the real one following the rest of the number (part 4, 4.2.4).

Reading is strict (every check digit must hold: a mistyped character is caught here rather
than by an officer); the comparison with the typed fields is as strict as the MRZ allows:
names are compared in the MRZ's own alphabet (accents dropped, German and Nordic letters in
either of ICAO's spellings) and only as far as the 39 characters reach; a birth date with an
unknown day or month (``<<``) matches a typed date without them.

The module is pure (no I/O, no clock): :func:`read_td3` returns the fields or raises
:class:`MrzError` naming what is wrong, :func:`mismatches` returns every disagreement with the
typed fields, each naming the field, so that a form can show it beside that field.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass
from datetime import date

LINE_LENGTH = 44
NAME_LENGTH = 39
ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")
_WEIGHTS = (7, 3, 1)
_TRANSLITERATIONS: tuple[dict[str, str], ...] = (
    # ICAO 9303 part 3, 6.A: the recommended spellings, then the one-letter ones it allows.
    {"Ä": "AE", "Ö": "OE", "Ü": "UE", "ß": "SS", "Å": "AA", "Æ": "AE", "Ø": "OE", "Þ": "TH"},
    {"Ä": "A", "Ö": "O", "Ü": "U", "ß": "SS", "Å": "A", "Æ": "AE", "Ø": "O", "Þ": "TH"},
)
_MRZ_COUNTRIES = {"D": "DEU"}
"""Codes the MRZ writes differently from ISO 3166 alpha-3 (Germany is ``D<<``)."""


class MrzProblem(enum.StrEnum):
    """What is wrong with an MRZ, or where it disagrees with the typed fields."""

    LENGTH = "length"
    CHARACTERS = "characters"
    NOT_A_PASSPORT = "not-a-passport"
    NUMBER_CHECK = "number-check"
    BIRTH_CHECK = "birth-check"
    EXPIRY_CHECK = "expiry-check"
    OPTIONAL_CHECK = "optional-check"
    COMPOSITE_CHECK = "composite-check"
    DATE = "date"
    NUMBER_MISMATCH = "number-mismatch"
    ISSUER_MISMATCH = "issuer-mismatch"
    NATIONALITY_MISMATCH = "nationality-mismatch"
    BIRTH_MISMATCH = "birth-mismatch"
    EXPIRY_MISMATCH = "expiry-mismatch"
    SEX_MISMATCH = "sex-mismatch"
    NAME_MISMATCH = "name-mismatch"


class MrzError(ValueError):
    """The MRZ cannot be read: ``problem`` says why, ``line`` which line (1 or 2)."""

    def __init__(self, problem: MrzProblem, line: int) -> None:
        super().__init__(f"MRZ line {line}: {problem.value}")
        self.problem = problem
        self.line = line


@dataclass(frozen=True, slots=True)
class Mrz:
    """The fields of a TD3 MRZ, as printed (fillers removed, dates as ``YYMMDD``)."""

    document_code: str
    issuing_state: str
    surname: str
    given_names: str
    names_truncated: bool
    number: str
    nationality: str
    birth: str
    sex: str
    expiry: str
    optional: str


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A typed field the MRZ contradicts (``field`` is the form's field name)."""

    field: str
    problem: MrzProblem


def normalise(line: str) -> str:
    """A line as a holder may type it: spaces dropped, lower case raised, ``«`` as ``<``."""
    return "".join(line.split()).upper().replace("«", "<")


def check_digit(text: str) -> str:
    """ICAO 9303 part 3, 4.9: digits count as themselves, ``A``-``Z`` as 10-35, ``<`` as 0,
    weighted 7, 3, 1 in turn; the digit is the sum modulo 10."""
    total = 0
    for index, char in enumerate(text):
        if char.isdigit():
            value = int(char)
        elif "A" <= char <= "Z":
            value = ord(char) - ord("A") + 10
        elif char == "<":
            value = 0
        else:
            raise ValueError(f"{char!r} is not an MRZ character")
        total += value * _WEIGHTS[index % 3]
    return str(total % 10)


def _digit_holds(field: str, digit: str) -> bool:
    # A field of fillers only may carry "<" for its digit (part 4: optional data unused).
    if digit == "<":
        return set(field) == {"<"}
    return check_digit(field) == digit


def read_td3(line1: str, line2: str) -> Mrz:
    """The fields of a passport's two MRZ lines; :class:`MrzError` if any rule is broken."""
    line1, line2 = normalise(line1), normalise(line2)
    for which, line in ((1, line1), (2, line2)):
        if len(line) != LINE_LENGTH:
            raise MrzError(MrzProblem.LENGTH, which)
        if not set(line) <= ALPHABET:
            raise MrzError(MrzProblem.CHARACTERS, which)
    if line1[0] != "P":
        raise MrzError(MrzProblem.NOT_A_PASSPORT, 1)
    number_field, number_digit = line2[0:9], line2[9]
    birth, birth_digit = line2[13:19], line2[19]
    expiry, expiry_digit = line2[21:27], line2[27]
    optional, optional_digit = line2[28:42], line2[42]
    if number_digit == "<" and optional[0] != "<":
        # A long number: its rest ends in the optional data, followed by the check digit.
        rest = optional.split("<", 1)[0]
        number, digit = number_field + rest[:-1], rest[-1:]
        optional_rest = optional[len(rest) :]
        if not digit or check_digit(number) != digit:
            raise MrzError(MrzProblem.NUMBER_CHECK, 2)
    else:
        if not _digit_holds(number_field, number_digit):
            raise MrzError(MrzProblem.NUMBER_CHECK, 2)
        number, optional_rest = number_field, optional
    if not _digit_holds(birth, birth_digit):
        raise MrzError(MrzProblem.BIRTH_CHECK, 2)
    if not _digit_holds(expiry, expiry_digit):
        raise MrzError(MrzProblem.EXPIRY_CHECK, 2)
    if not _digit_holds(optional, optional_digit):
        raise MrzError(MrzProblem.OPTIONAL_CHECK, 2)
    composite = line2[0:10] + line2[13:20] + line2[21:43]
    if check_digit(composite) != line2[43]:
        raise MrzError(MrzProblem.COMPOSITE_CHECK, 2)
    if not (_plausible_date(birth, unknown_allowed=True) and _plausible_date(expiry)):
        raise MrzError(MrzProblem.DATE, 2)
    surname, _, given = line1[5:].partition("<<")
    return Mrz(
        document_code=line1[0:2].rstrip("<"),
        issuing_state=line1[2:5].rstrip("<"),
        surname=surname.strip("<").replace("<", " "),
        given_names=given.strip("<").replace("<", " "),
        names_truncated=line1[-1] != "<",
        number=number.rstrip("<"),
        nationality=line2[10:13].rstrip("<"),
        birth=birth,
        sex=line2[20],
        expiry=expiry,
        optional=optional_rest.strip("<"),
    )


def _plausible_date(value: str, *, unknown_allowed: bool = False) -> bool:
    year, month, day = value[0:2], value[2:4], value[4:6]
    if not year.isdigit():
        return False
    if unknown_allowed and month == "<<":
        return day == "<<"
    if not month.isdigit() or not 1 <= int(month) <= 12:
        return False
    if unknown_allowed and day == "<<":
        return True
    return day.isdigit() and 1 <= int(day) <= 31


def country(code: str) -> str:
    """The ISO 3166 alpha-3 form of an MRZ state code (``D`` is Germany)."""
    return _MRZ_COUNTRIES.get(code, code)


def name_spellings(name: str) -> set[str]:
    """The ways ``name`` can be written in an MRZ: upper case ``A-Z`` with ``<`` for spaces
    and hyphens, apostrophes dropped, accents dropped, special letters per ICAO's table."""
    spellings = set()
    for table in _TRANSLITERATIONS:
        out = []
        for char in name.upper():
            if char in table:
                out.append(table[char])
                continue
            base = unicodedata.normalize("NFKD", char)[0]
            if "A" <= base <= "Z" or base.isdigit():
                out.append(base)
            elif base in " -<,.":
                out.append("<")
            # apostrophes and other marks are left out (O'BRIEN is OBRIEN)
        spellings.add("<".join(part for part in "".join(out).split("<") if part))
    return spellings


def _names_match(mrz: Mrz, family_name: str, given_names: str) -> bool:
    printed = mrz.surname.replace(" ", "<") + "<<" + mrz.given_names.replace(" ", "<")
    printed = printed.rstrip("<")
    for surname in name_spellings(family_name):
        for given in name_spellings(given_names) or {""}:
            typed = f"{surname}<<{given}".rstrip("<")[:NAME_LENGTH]
            if typed == printed or (mrz.names_truncated and typed.startswith(printed)):
                return True
    return False


def _date_matches(printed: str, typed: str) -> bool:
    """``typed`` is ``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``; ``printed`` ``YYMMDD`` with ``<<``
    for what the passport does not know."""
    parts = typed.split("-")
    wanted = parts[0][2:4] + (parts[1] if len(parts) > 1 else "<<")
    wanted += parts[2] if len(parts) > 2 else "<<"
    return printed == wanted


def mismatches(
    mrz: Mrz,
    *,
    number: str,
    issuing_country: str,
    nationality: str,
    birth_date: str,
    expires_on: date | None,
    sex: str,
    family_name: str,
    given_names: str,
) -> list[Mismatch]:
    """Every typed field the MRZ contradicts (empty when they agree). Field names are the
    portal form's."""
    found: list[Mismatch] = []
    if normalise(number) != mrz.number:
        found.append(Mismatch("passport_number", MrzProblem.NUMBER_MISMATCH))
    if issuing_country.upper() != country(mrz.issuing_state):
        found.append(Mismatch("passport_country", MrzProblem.ISSUER_MISMATCH))
    if nationality.upper() != country(mrz.nationality):
        found.append(Mismatch("nationality", MrzProblem.NATIONALITY_MISMATCH))
    if not _date_matches(mrz.birth, birth_date):
        found.append(Mismatch("birth_date", MrzProblem.BIRTH_MISMATCH))
    if expires_on is None or expires_on.strftime("%y%m%d") != mrz.expiry:
        found.append(Mismatch("passport_expiry", MrzProblem.EXPIRY_MISMATCH))
    if (mrz.sex if mrz.sex in "MF" else "X") != sex.upper():
        found.append(Mismatch("sex", MrzProblem.SEX_MISMATCH))
    if not _names_match(mrz, family_name, given_names):
        found.append(Mismatch("family_name", MrzProblem.NAME_MISMATCH))
    return found


def td3_lines(
    *,
    issuing_state: str,
    surname: str,
    given_names: str,
    number: str,
    nationality: str,
    birth: str,
    sex: str,
    expiry: str,
    optional: str = "",
) -> tuple[str, str]:
    """Two MRZ lines with correct check digits (for tests, demonstrations and specimens);
    numbers of at most nine characters."""
    if len(number) > 9:
        raise ValueError("td3_lines writes numbers of at most 9 characters")
    names = (
        "<".join(surname.upper().split()) + "<<" + "<".join(given_names.upper().split())
    ).ljust(NAME_LENGTH, "<")[:NAME_LENGTH]
    line1 = ("P<" + issuing_state.ljust(3, "<") + names)[:LINE_LENGTH]
    number_field = number.ljust(9, "<")
    optional_field = optional.ljust(14, "<")
    optional_digit = "<" if not optional else check_digit(optional_field)
    head = number_field + check_digit(number_field) + nationality.ljust(3, "<")
    head += birth + check_digit(birth) + sex + expiry + check_digit(expiry)
    head += optional_field + optional_digit
    line2 = head + check_digit(head[0:10] + head[13:20] + head[21:43])
    return line1, line2
