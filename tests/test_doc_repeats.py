"""Each fact of README.md, docs/ and packaging/'s documents is written in one place: no run of
WORDS words is in two paragraphs, table rows or list items; the second links to the first."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import test_readme

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = test_readme.DOCUMENTS
# Made by scripts/reference.py from argparse, the config files and the MIB: their sources are
# the one place, so a repeat between two of them is their sources' (the MIB's DESCRIPTIONs).
GENERATED = {"docs/reference/cli.md", "docs/reference/configuration.md", "docs/reference/mib.md"}
WORDS = 12
ITEM = re.compile(r"([-*]|\d+\.) ")
MARKUP = re.compile(r"\]\([^)]*\)|`?tests/[\w/.-]+::\w+`?|[`*_\[\]|]")


def units(text: str) -> list[tuple[int, str]]:
    """(first line, text) of each paragraph, table row and list item; code and headings left
    out."""
    found: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    code = False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if line.startswith("```"):
            code = not code
        new_unit = code or not stripped or stripped.startswith(("#", "|", "```"))
        if new_unit or ITEM.match(stripped):
            if current:
                found.append((start, " ".join(current)))
            current = []
        if code or line.startswith("```") or not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("|"):
            found.append((number, stripped))
            continue
        if not current:
            start = number
        current.append(stripped)
    if current:
        found.append((start, " ".join(current)))
    return found


def words(unit: str) -> list[str]:
    """The unit's words, without link targets, test ids and Markdown marks, lower case."""
    return MARKUP.sub(" ", ITEM.sub("", unit, count=1)).lower().split()


def repeats(documents: dict[str, str]) -> list[tuple[str, str, str]]:
    """(place, other place, the words) for each two units that share a run of WORDS words,
    one of them at least written by hand."""
    places: dict[str, set[str]] = defaultdict(set)
    for name, text in documents.items():
        for line, unit in units(text):
            said = words(unit)
            for at in range(len(said) - WORDS + 1):
                places[" ".join(said[at:at + WORDS])].add(f"{name}:{line}")
    found: dict[tuple[str, str], str] = {}
    for run, where in places.items():
        ordered = sorted(where)
        for first in ordered:
            for second in ordered[ordered.index(first) + 1:]:
                generated = {place.split(":")[0] in GENERATED for place in (first, second)}
                if generated != {True}:
                    found.setdefault((first, second), run)
    return [(first, second, run) for (first, second), run in sorted(found.items())]


def test_no_fact_is_written_in_two_places() -> None:
    found = repeats({name: (REPO / name).read_text() for name in DOCUMENTS})
    assert found == [], "\n".join(f"{a} and {b} both say: {run} ..." for a, b, run in found)


def test_a_sentence_copied_into_another_paragraph_row_or_item_is_found() -> None:
    sentence = "the agent counts every run exactly once, also when the wrapper spools it"
    documents = {
        "README.md": f"Intro.\n\nSome words first: {sentence}.\n",
        "docs/a.md": f"# Title\n\n| x | {sentence.capitalize()} |\n\n- one\n- *{sentence}*\n",
        "docs/b.md": f"```sh\n# {sentence}\n```\n\n{' '.join(sentence.split()[:WORDS - 1])}\n",
    }
    assert [(a, b) for a, b, _ in repeats(documents)] == [
        ("README.md:3", "docs/a.md:3"), ("README.md:3", "docs/a.md:6"),
        ("docs/a.md:3", "docs/a.md:6")]


def test_link_targets_test_ids_and_a_generated_pair_do_not_count() -> None:
    shared = "one two three four five six seven eight nine ten eleven twelve"
    documents = {
        "README.md": f"[{shared}](docs/a.md) `tests/test_x.py::test_y`\n",
        "docs/a.md": f"[{shared}](../README.md#x) `tests/test_x.py::test_z`\n",
        "docs/reference/mib.md": f"| 1 | {shared} |\n| 2 | {shared} |\n",
    }
    assert {(a, b) for a, b, _ in repeats(documents)} == {
        ("README.md:1", "docs/a.md:1"), ("README.md:1", "docs/reference/mib.md:1"),
        ("README.md:1", "docs/reference/mib.md:2"), ("docs/a.md:1", "docs/reference/mib.md:1"),
        ("docs/a.md:1", "docs/reference/mib.md:2")}
    assert repeats({"docs/reference/mib.md": documents["docs/reference/mib.md"]}) == []
    assert repeats({"README.md": "`tests/t.py::test_" + "_".join(shared.split()) + "`\n",
                    "docs/a.md": "`tests/t.py::test_" + "_".join(shared.split()) + "`\n"}) == []
