"""The code's citations resolve inside the repository: every ``docs/...md#anchor`` names a
file and a heading that exist, and nothing cites a brief that is not in the repository."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()
SOURCES = sorted(
    p
    for folder in ("herald", "bench", "scripts", "tests")
    for p in (ROOT / folder).rglob("*.py")
    if p.resolve() != THIS
)
CITATION = re.compile(r"docs/[\w./-]+\.md(?:#[\w-]+)?")
#: Briefs the developers read that are not part of the project.
OUTSIDE = re.compile(r"CONTRACT §|CONTRACT\.md|PROVIDERS\.md|CELERY\.md|WEBHOOKS\.md|\.\./shared")


def slug(heading: str) -> str:
    """A heading's anchor, as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    return {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def citations() -> list[tuple[str, str]]:
    found = []
    for path in SOURCES:
        for match in CITATION.finditer(path.read_text(encoding="utf-8")):
            found.append((str(path.relative_to(ROOT)), match[0]))
    return found


def test_the_code_cites_docs() -> None:
    assert len(citations()) >= 10


@pytest.mark.parametrize(("source", "cited"), citations())
def test_a_citation_names_a_doc_and_a_heading_that_exist(source: str, cited: str) -> None:
    file, _, anchor = cited.partition("#")
    doc = ROOT / file
    assert doc.is_file(), f"{source} cites {cited}: no such file"
    if anchor:
        assert anchor in anchors(doc), f"{source} cites {cited}: no such heading"


def test_nothing_cites_a_brief_outside_the_repository() -> None:
    cited = [
        f"{p.relative_to(ROOT)}: {m[0]}"
        for p in SOURCES
        for m in OUTSIDE.finditer(p.read_text(encoding="utf-8"))
    ]
    assert not cited


#: Dotted names in the docs that are task or queue names, not Python objects.
NOT_PYTHON = {
    "herald.send_message",
    "herald.record_interaction",
    "herald.send_batch",
    "herald.bulk",
}


def resolves(dotted: str) -> bool:
    """Whether ``herald.a.b.c`` names a module, or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


def test_the_docs_name_only_code_that_exists() -> None:
    pages = [*(ROOT / "docs").rglob("*.md"), ROOT / "README.md"]
    named = {
        (str(page.relative_to(ROOT)), match[1])
        for page in pages
        for match in re.finditer(r"`(herald(?:\.\w+)+)`", page.read_text(encoding="utf-8"))
    }
    missing = sorted((page, name) for page, name in named if name not in NOT_PYTHON)
    assert [m for m in missing if not resolves(m[1])] == []
