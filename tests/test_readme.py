"""README.md stays true: its opening commands are what CI and the demo run, its links resolve."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def opening_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block, "README.md must open with a ```sh block of two commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_the_demo_and_the_test_command() -> None:
    demo, tests = opening_commands()
    assert demo == "bash scripts/demo"
    assert (REPO / "scripts" / "demo").is_file()
    assert README.index("```sh") < README.index("## ")  # before any section


def test_ci_runs_exactly_the_readme_test_command() -> None:
    _, tests = opening_commands()
    ci_lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci_lines[-1] == tests


def test_every_relative_link_resolves() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    relative = [link for link in links if not link.startswith(("http://", "https://"))]
    assert relative, "the README links to its detailed documents"
    missing = [link for link in relative if not (REPO / link).exists()]
    assert missing == []


def test_every_section_in_the_contents_exists() -> None:
    anchors = re.findall(r"\]\(#([^)]+)\)", README)
    headings = re.findall(r"^## (.+)$", README, re.M)
    slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    assert anchors and set(anchors) <= slugs


def test_every_test_the_security_model_names_exists() -> None:
    section = (REPO / "docs" / "security.md").read_text()
    assert "docs/security.md" in README, "the README links the security model"
    named = re.findall(r"`(tests/[\w/]+\.py)((?:::\w+)?)`", section)
    assert len(named) >= 20, "the security model names the test behind each promise"
    missing = [path + test for path, test in named if not (REPO / path).is_file()
               or (test and f"def {test[2:]}(" not in (REPO / path).read_text())]
    assert missing == []
