"""The two paper documents the package cites resolve: every ``paper/polystep_reconstruction.md §N``
and ``paper/ghosts_notes.md §N`` (optionally ``item K`` / ``caveat K``) written in the code, the
tests, the notebooks, the claims registry and the README names a section of that document that
exists, and a numbered item that exists in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("paper/polystep_reconstruction.md", "paper/ghosts_notes.md")
SCANNED = ("polystep", "ghosts", "theory", "repro", "tests", "notebooks", "paper", "README.md",
           "CONTRIBUTING.md")
CITATION = re.compile(r"(paper/(?:polystep_reconstruction|ghosts_notes)\.md),? §(\d+(?:\.\d+)?)"
                      r"(?:,? (?:item|caveat) (\d+))?")
HEADING = re.compile(r"^#{2,3} (\d+(?:\.\d+)?)[. ]")
ITEM = re.compile(r"^\s*(\d+)\. ")


def sections(path: Path) -> dict[str, set[int]]:
    """Section number -> the numbers of the numbered list items in it (subsections included)."""
    out: dict[str, set[int]] = {}
    current: list[str] = []
    for line in path.read_text().splitlines():
        head = HEADING.match(line)
        if head:
            number = head.group(1)
            current = [number, number.split(".")[0]]
            out.setdefault(number, set())
            out.setdefault(current[1], set())
            continue
        item = ITEM.match(line)
        if item and current:
            for number in current:
                out[number].add(int(item.group(1)))
    return out


def citations() -> list[tuple[str, str, str, int | None]]:
    """(citing file, document, section, item) for every citation of the two documents."""
    files = []
    for name in SCANNED:
        base = ROOT / name
        files += [base] if base.is_file() else sorted(base.rglob("*"))
    found = []
    for path in files:
        if path.suffix not in {".py", ".toml", ".md"} or "__pycache__" in path.parts:
            continue
        for doc, section, item in CITATION.findall(path.read_text()):
            found.append((str(path.relative_to(ROOT)), doc, section, int(item) if item else None))
    return found


def test_documents_have_their_sections() -> None:
    recon = sections(ROOT / DOCUMENTS[0])
    ghosts = sections(ROOT / DOCUMENTS[1])
    assert {str(n) for n in range(8)} <= set(recon) and {"2.13", "3.1", "3.5", "5.3"} <= set(recon)
    assert set(range(1, 20)) <= recon["6"]          # the 19 inconsistencies of the PolyStep paper
    assert {str(n) for n in range(7)} <= set(ghosts) and {"2.15", "4.9"} <= set(ghosts)
    assert set(range(1, 20)) <= ghosts["5"]         # the 19 errors and discrepancies of the ghosts paper


def test_the_package_cites_both_documents() -> None:
    cited = {doc for _, doc, _, _ in citations()}
    assert cited == set(DOCUMENTS)


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_every_citation_resolves(doc: str) -> None:
    known = sections(ROOT / doc)
    bad = [f"{where}: {doc} §{section}" + (f" item {item}" if item else "")
           for where, cited, section, item in citations() if cited == doc
           if section not in known or (item is not None and item not in known[section])]
    assert not bad, "citations of missing sections or items:\n" + "\n".join(bad)
