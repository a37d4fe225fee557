"""The message catalogs: extract, update, compile and check (``./dev i18n [command]``).

Each domain is one gettext catalog per language, edited by translators as ``.po`` files and
shipped compiled as ``.mo`` beside them:

- ``fmcard-verifier`` (``verifier/locale``): the reasons, the station page, ``fmcard-verify``
  and the names of the services. Read at run time by the standard library alone.
- ``fmcard`` (``cardissuer/locale``): the holder's card page and the wallet passes.
- ``fmcard-console`` (``cardissuer/locale``): the officers' console, by stable key (context).

The ``.mo`` files are committed, not built: the wheel is built by plain setuptools with no
compile step, and a counter installing it must get working catalogs. ``check`` (and
``tests/verifier/test_i18n.py``) fails when a ``.mo`` differs from what its ``.po`` compiles to,
so a translation edited without ``./dev i18n compile`` cannot ship.

Commands: ``extract`` writes each domain's template (``.pot``) from the code; ``update``
merges it into every language's ``.po`` (new messages arrive untranslated, removed ones are
dropped); ``compile`` writes the ``.mo`` files; ``check`` reports what is untranslated or
stale. With no command: extract, update, compile, check.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "babel.cfg"
LANGUAGES = ("zh", "en", "ru", "ar", "fa", "ur", "ko", "tr", "fr", "es", "hi")
PROJECT = "fmcard"
VERSION = "0.1"
REVIEW_NOTE = (
    "Translations other than Chinese and English need review by native speakers at the bureau "
    "before they are relied on."
)

Keywords = dict[str, object]


@dataclass(frozen=True)
class Domain:
    """One catalog: where its sources and its files are, and how the code marks messages."""

    name: str
    locale_dir: Path
    sources: tuple[Path, ...]
    keywords: Keywords

    @property
    def template(self) -> Path:
        return self.locale_dir / f"{self.name}.pot"

    def po(self, language: str) -> Path:
        return self.locale_dir / language / "LC_MESSAGES" / f"{self.name}.po"

    def mo(self, language: str) -> Path:
        return self.po(language).with_suffix(".mo")


DOMAINS = (
    Domain(
        "fmcard-verifier",
        ROOT / "verifier" / "locale",
        (ROOT / "verifier", ROOT / "schemas"),
        # verifier.i18n's helpers take the language first.
        {
            "N_": ((1, "c"), 2),
            "pgettext": ((2, "c"), 3),
            "gettext": (2,),
            "ngettext": (2, 3),
            "_": None,
            "Service": (2,),
        },
    ),
    Domain(
        "fmcard",
        ROOT / "cardissuer" / "locale",
        (
            ROOT / "cardissuer" / "web",
            ROOT / "cardissuer" / "wallet",
            ROOT / "cardissuer" / "portal",
        ),
        {"N_": None, "_": None, "ngettext": (1, 2)},
    ),
    Domain(
        "fmcard-console",
        ROOT / "cardissuer" / "locale",
        (ROOT / "cardissuer" / "web",),
        # cardissuer.web.i18n's table: the key is the context, the English the message id.
        {"K_": ((1, "c"), 2), "KN_": ((1, "c"), 2, 3)},
    ),
)


def extract(domain: Domain) -> Catalog:
    """The domain's messages as the code and templates use them now."""
    with MAPPING.open() as file:
        method_map, options_map = parse_mapping_cfg(file)  # type: ignore[no-untyped-call]
    catalog = Catalog(project=PROJECT, version=VERSION, domain=domain.name, charset="utf-8")
    catalog.msgid_bugs_address = ""
    for source in domain.sources:
        found = extract_from_dir(
            source, method_map, options_map, keywords=domain.keywords,  # type: ignore[arg-type]
            comment_tags=("TRANSLATORS:",), strip_comment_tags=True,
        )  # fmt: skip
        for filename, lineno, message, comments, context in found:
            path = (source / filename).relative_to(ROOT).as_posix()
            catalog.add(message, None, [(path, lineno)], auto_comments=comments, context=context)
    return catalog


def _shape(catalog: Catalog) -> set[tuple[object, ...]]:
    """What a template says, without line numbers (the files leave them out)."""
    return {(m.context, m.id, frozenset(path for path, _ in m.locations)) for m in catalog if m.id}


def write_template(domain: Domain, catalog: Catalog) -> None:
    """Write the ``.pot``; an unchanged set of messages keeps its creation date, so that
    running the tools twice changes no file."""
    domain.locale_dir.mkdir(parents=True, exist_ok=True)
    if domain.template.exists():
        with domain.template.open("rb") as file:
            old = read_po(file)
        if _shape(old) == _shape(catalog):
            catalog.creation_date = old.creation_date
    with domain.template.open("wb") as file:
        write_po(file, catalog, width=100, sort_output=True, include_lineno=False)


def load_po(path: Path, language: str) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=language, domain=path.stem)


def update(domain: Domain, template: Catalog) -> None:
    """Merge the template into every language's ``.po`` (creating it if absent)."""
    for language in LANGUAGES:
        path = domain.po(language)
        if path.exists():
            catalog = load_po(path, language)
        else:
            catalog = Catalog(locale=language, domain=domain.name, project=PROJECT)
            catalog.header_comment = f"# {domain.name}: {language}.\n# {REVIEW_NOTE}"
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        catalog.fuzzy = False  # the header; messages keep their own flags
        catalog.version = VERSION
        catalog.language_team = f"{language} <translations of the bureau>"
        catalog.msgid_bugs_address = ""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as file:
            write_po(
                file, catalog, width=100, sort_output=True, include_previous=False,
                include_lineno=False,
            )  # fmt: skip


def compiled(path: Path, language: str) -> bytes:
    """What the ``.po`` at ``path`` compiles to (fuzzy entries left out, as gettext does)."""
    buffer = io.BytesIO()
    write_mo(buffer, load_po(path, language), use_fuzzy=False)
    return buffer.getvalue()


def compile_all(domain: Domain) -> None:
    for language in LANGUAGES:
        domain.mo(language).write_bytes(compiled(domain.po(language), language))


def untranslated(catalog: Catalog) -> Iterator[Message]:
    """Messages without a complete translation (any plural form missing counts)."""
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            yield message


def _key(message: Message) -> tuple[str | None, str]:
    """(context, msgid) of a message; a plural message counts by its singular."""
    msgid = message.id if isinstance(message.id, str) else message.id[0]
    return message.context, msgid


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def problems(domain: Domain) -> list[str]:
    """Everything that would make a shipped catalog wrong, one line each."""
    out: list[str] = []
    used = {_key(m) for m in extract(domain) if m.id}
    for language in LANGUAGES:
        path = domain.po(language)
        if not path.exists():
            out.append(f"{_shown(path)}: missing")
            continue
        catalog = load_po(path, language)
        have = {_key(m) for m in catalog if m.id}
        out.extend(
            f"{_shown(path)}: no entry for {context or ''}|{msgid!r}"
            for context, msgid in sorted(used - have, key=str)
        )
        out.extend(
            f"{_shown(path)}: untranslated {m.context or ''}|{m.id!r}"
            for m in untranslated(catalog)
        )
        mo = domain.mo(language)
        if not mo.exists() or mo.read_bytes() != compiled(path, language):
            out.append(f"{_shown(mo)}: out of date (./dev i18n compile)")
    return out


def main(argv: list[str]) -> int:
    commands = argv or ["extract", "update", "compile", "check"]
    for domain in DOMAINS:
        template = extract(domain)
        if "extract" in commands:
            write_template(domain, template)
        if "update" in commands:
            update(domain, template)
        if "compile" in commands:
            compile_all(domain)
        if "check" in commands:
            found = problems(domain)
            for line in found:
                print(line, file=sys.stderr)
            if found:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
