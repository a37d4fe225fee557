"""The passport MRZ reader: ICAO 9303's public specimens, check digits, the typed fields."""

from __future__ import annotations

from datetime import date

import pytest

from cardissuer.portal.mrz import (
    Mismatch,
    MrzError,
    MrzProblem,
    check_digit,
    mismatches,
    name_spellings,
    read_td3,
    td3_lines,
)

# ICAO 9303 part 4, Appendix A: the specimen passport of Anna Maria Eriksson of Utopia.
ICAO = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
)
# The German specimen passport (Erika Mustermann): Germany is "D<<", no optional data.
GERMAN = (
    "P<D<<MUSTERMANN<<ERIKA<<<<<<<<<<<<<<<<<<<<<<",
    "C01X00T478D<<6408125F2702283<<<<<<<<<<<<<<<4",
)


def typed(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "number": "L898902C3",
        "issuing_country": "UTO",
        "nationality": "UTO",
        "birth_date": "1974-08-12",
        "expires_on": date(2012, 4, 15),
        "sex": "F",
        "family_name": "Eriksson",
        "given_names": "Anna Maria",
    }
    values.update(changes)
    return values


def test_the_icao_specimen_reads() -> None:
    mrz = read_td3(*ICAO)
    assert (mrz.document_code, mrz.issuing_state, mrz.nationality) == ("P", "UTO", "UTO")
    assert (mrz.surname, mrz.given_names) == ("ERIKSSON", "ANNA MARIA")
    assert (mrz.number, mrz.birth, mrz.sex, mrz.expiry) == ("L898902C3", "740812", "F", "120415")
    assert mrz.optional == "ZE184226B"
    assert not mrz.names_truncated


def test_the_german_specimen_reads_and_d_is_germany() -> None:
    mrz = read_td3(*GERMAN)
    assert (mrz.issuing_state, mrz.nationality, mrz.number) == ("D", "D", "C01X00T47")
    found = mismatches(
        mrz,
        number="C01X00T47",
        issuing_country="DEU",
        nationality="deu",
        birth_date="1964-08-12",
        expires_on=date(2027, 2, 28),
        sex="F",
        family_name="Mustermann",
        given_names="Erika",
    )
    assert found == []


@pytest.mark.parametrize(
    ("text", "digit"),
    [("L898902C3", "6"), ("740812", "2"), ("120415", "9"), ("ZE184226B<<<<<", "1"), ("<<<", "0")],
)
def test_check_digits_of_icao_examples(text: str, digit: str) -> None:
    assert check_digit(text) == digit


def test_typing_is_forgiven_spaces_case_and_guillemets() -> None:
    line1 = ICAO[0].lower().replace("<", "«")
    line2 = " ".join([ICAO[1][:22], ICAO[1][22:]])
    assert read_td3(line1, line2) == read_td3(*ICAO)


def _replace(line: str, at: int, char: str) -> str:
    return line[:at] + char + line[at + 1 :]


@pytest.mark.parametrize(
    ("line2", "problem"),
    [
        (_replace(ICAO[1], 2, "7"), MrzProblem.NUMBER_CHECK),  # a digit of the number
        (_replace(ICAO[1], 9, "7"), MrzProblem.NUMBER_CHECK),
        (_replace(ICAO[1], 15, "9"), MrzProblem.BIRTH_CHECK),
        (_replace(ICAO[1], 25, "2"), MrzProblem.EXPIRY_CHECK),
        (_replace(ICAO[1], 30, "5"), MrzProblem.OPTIONAL_CHECK),
        (_replace(ICAO[1], 43, "1"), MrzProblem.COMPOSITE_CHECK),
        (ICAO[1][:-1], MrzProblem.LENGTH),
        (_replace(ICAO[1], 20, "*"), MrzProblem.CHARACTERS),
    ],
)
def test_a_wrong_character_in_line_2_is_caught(line2: str, problem: MrzProblem) -> None:
    with pytest.raises(MrzError) as raised:
        read_td3(ICAO[0], line2)
    assert (raised.value.problem, raised.value.line) == (problem, 2)


def test_an_identity_card_mrz_is_not_a_passport() -> None:
    with pytest.raises(MrzError) as raised:
        read_td3("I" + ICAO[0][1:], ICAO[1])
    assert raised.value.problem is MrzProblem.NOT_A_PASSPORT


def test_a_line_of_the_wrong_length_is_named() -> None:
    with pytest.raises(MrzError) as raised:
        read_td3(ICAO[0] + "<", ICAO[1])
    assert (raised.value.problem, raised.value.line) == (MrzProblem.LENGTH, 1)


def test_a_month_13_is_refused_even_with_good_check_digits() -> None:
    line1, line2 = td3_lines(
        issuing_state="UTO",
        surname="X",
        given_names="Y",
        number="AB1234567",
        nationality="UTO",
        birth="741312",
        sex="M",
        expiry="300101",
    )
    with pytest.raises(MrzError) as raised:
        read_td3(line1, line2)
    assert raised.value.problem is MrzProblem.DATE


def test_a_number_longer_than_nine_continues_in_the_optional_data() -> None:
    # Part 4, 4.2.4: "<" in place of the number's digit, the rest and its digit after it.
    number = "D23145890734"
    rest = number[9:] + check_digit(number)
    optional = rest.ljust(14, "<")
    head = number[:9] + "<" + "UTO" + "340712" + check_digit("340712") + "M"
    head += "951028" + check_digit("951028") + optional + check_digit(optional)
    line2 = head + check_digit(head[0:10] + head[13:20] + head[21:43])
    line1 = "P<UTOSMITH<<JOHN".ljust(44, "<")
    mrz = read_td3(line1, line2)
    assert mrz.number == number
    assert mrz.optional == ""
    broken = line2[:28] + "5" + line2[29:]
    with pytest.raises(MrzError) as raised:
        read_td3(line1, broken)
    assert raised.value.problem is MrzProblem.NUMBER_CHECK


def test_typed_fields_that_agree_give_no_mismatch() -> None:
    assert mismatches(read_td3(*ICAO), **typed()) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"number": "L898902C4"}, Mismatch("passport_number", MrzProblem.NUMBER_MISMATCH)),
        ({"issuing_country": "SAU"}, Mismatch("passport_country", MrzProblem.ISSUER_MISMATCH)),
        ({"nationality": "SAU"}, Mismatch("nationality", MrzProblem.NATIONALITY_MISMATCH)),
        ({"birth_date": "1974-08-13"}, Mismatch("birth_date", MrzProblem.BIRTH_MISMATCH)),
        ({"birth_date": "1984-08-12"}, Mismatch("birth_date", MrzProblem.BIRTH_MISMATCH)),
        (
            {"expires_on": date(2012, 5, 15)},
            Mismatch("passport_expiry", MrzProblem.EXPIRY_MISMATCH),
        ),
        ({"expires_on": None}, Mismatch("passport_expiry", MrzProblem.EXPIRY_MISMATCH)),
        ({"sex": "M"}, Mismatch("sex", MrzProblem.SEX_MISMATCH)),
        ({"family_name": "Eriksen"}, Mismatch("family_name", MrzProblem.NAME_MISMATCH)),
        ({"given_names": "Anna"}, Mismatch("family_name", MrzProblem.NAME_MISMATCH)),
    ],
)
def test_each_typed_field_the_mrz_contradicts_is_named(
    change: dict[str, object], expected: Mismatch
) -> None:
    assert mismatches(read_td3(*ICAO), **typed(**change)) == [expected]  # type: ignore[arg-type]


def test_names_compare_in_the_mrz_alphabet() -> None:
    assert "MUELLER<HANS" in name_spellings("Müller-Hans")
    assert "MULLER<HANS" in name_spellings("Müller-Hans")
    assert name_spellings("O'Brien") == {"OBRIEN"}
    assert name_spellings("José") == {"JOSE"}
    line1, line2 = td3_lines(
        issuing_state="DEU",
        surname="MUELLER",
        given_names="JOERG",
        number="C01X00T47",
        nationality="DEU",
        birth="640812",
        sex="M",
        expiry="270228",
    )
    found = mismatches(
        read_td3(line1, line2),
        number="C01X00T47",
        issuing_country="DEU",
        nationality="DEU",
        birth_date="1964-08-12",
        expires_on=date(2027, 2, 28),
        sex="M",
        family_name="Müller",
        given_names="Jörg",
    )
    assert found == []


def test_truncated_names_match_as_far_as_printed() -> None:
    family, given = "Abdulrahman Al-Sharif Bin Khalid", "Mohammed Abdullah Ibrahim"
    line1, line2 = td3_lines(
        issuing_state="SAU",
        surname=family.replace("-", " "),
        given_names=given,
        number="K12345678",
        nationality="SAU",
        birth="850314",
        sex="M",
        expiry="310501",
    )
    mrz = read_td3(line1, line2)
    assert mrz.names_truncated
    common = {
        "number": "K12345678",
        "issuing_country": "SAU",
        "nationality": "SAU",
        "birth_date": "1985-03-14",
        "expires_on": date(2031, 5, 1),
        "sex": "M",
    }
    assert mismatches(mrz, family_name=family, given_names=given, **common) == []  # type: ignore[arg-type]
    wrong = mismatches(mrz, family_name=family, given_names="Ahmed", **common)  # type: ignore[arg-type]
    assert wrong == [Mismatch("family_name", MrzProblem.NAME_MISMATCH)]


def test_unknown_birth_day_and_month() -> None:
    line1, line2 = td3_lines(
        issuing_state="AFG",
        surname="KARIMI",
        given_names="AHMAD",
        number="P01234567",
        nationality="AFG",
        birth="80<<<<",
        sex="M",
        expiry="290101",
    )
    mrz = read_td3(line1, line2)
    base = {
        "number": "P01234567",
        "issuing_country": "AFG",
        "nationality": "AFG",
        "expires_on": date(2029, 1, 1),
        "sex": "M",
        "family_name": "Karimi",
        "given_names": "Ahmad",
    }
    assert mismatches(mrz, birth_date="1980", **base) == []  # type: ignore[arg-type]
    assert mismatches(mrz, birth_date="1980-01-01", **base) == [  # type: ignore[arg-type]
        Mismatch("birth_date", MrzProblem.BIRTH_MISMATCH)
    ]


def test_sex_unspecified_is_x() -> None:
    line1, line2 = td3_lines(
        issuing_state="UTO",
        surname="DOE",
        given_names="SAM",
        number="X1234567",
        nationality="UTO",
        birth="900101",
        sex="<",
        expiry="300101",
    )
    found = mismatches(
        read_td3(line1, line2),
        number="X1234567",
        issuing_country="UTO",
        nationality="UTO",
        birth_date="1990-01-01",
        expires_on=date(2030, 1, 1),
        sex="X",
        family_name="Doe",
        given_names="Sam",
    )
    assert found == []
