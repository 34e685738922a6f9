"""README.md stays true and short: its commands are what CI and the demo run, and every link of
every document resolves, down to the heading it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").rglob("*.md")),
             *sorted(str(p.relative_to(REPO)) for p in (REPO / "packaging").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def sh_blocks(text: str) -> list[list[str]]:
    """Each ```sh block's commands, comments and blank lines dropped."""
    return [[line.split(" #")[0].strip() for line in block.splitlines()
             if line.strip() and not line.startswith("#")]
            for block in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M)]


def opening_commands() -> list[str]:
    assert README.index("```sh") < README.index("## "), "the commands come before any section"
    return sh_blocks(README)[0]


def development_commands() -> list[str]:
    section = README.split("\n## Development\n", 1)[1].split("\n## ", 1)[0]
    return sh_blocks(section)[0]


def test_readme_opens_with_the_demo_and_the_quick_test_command() -> None:
    demo, quick = opening_commands()
    assert demo == "bash scripts/demo"
    assert (REPO / "scripts" / "demo").is_file()
    assert quick.startswith(".venv/bin/python -m pytest ")


def test_development_gives_the_quick_command_then_the_rest() -> None:
    _, quick = opening_commands()
    *_, first, rest = development_commands()
    assert first == quick and quick.endswith('-m "not host and not nms"')
    assert rest.startswith(".venv/bin/python -m pytest ") and rest.endswith('-m "host or nms"')


def test_ci_runs_exactly_the_readme_test_commands_in_order() -> None:
    *_, first, rest = development_commands()
    ci_lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert ci_lines[-2:] == [first, rest]


def test_readme_is_read_in_fifteen_minutes() -> None:
    assert len(README.splitlines()) <= 300
    assert len(README.split()) <= 3000


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_every_relative_link_resolves(doc: str) -> None:
    source = REPO / doc
    text = re.sub(r"^```.*?^```", "", source.read_text(), flags=re.S | re.M)
    broken = []
    for link in LINK.findall(text):
        if link.startswith(("http://", "https://", "mailto:")):
            continue
        target, _, anchor = link.partition("#")
        path = (source.parent / target).resolve() if target else source
        if not path.exists() or (anchor and path.suffix == ".md"
                                 and anchor not in anchors(path)):
            broken.append(link)
    assert broken == [], f"{doc}: links to nothing"


def test_the_readme_links_its_detailed_documents() -> None:
    assert {"docs/README.md", "docs/security.md"} <= set(LINK.findall(README))


def test_every_test_the_security_model_names_exists() -> None:
    section = (REPO / "docs" / "security.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)((?:::\w+)?)`", section)
    assert len(named) >= 20, "the security model names the test behind each promise"
    missing = [path + test for path, test in named if not (REPO / path).is_file()
               or (test and f"def {test[2:]}(" not in (REPO / path).read_text())]
    assert missing == []
