"""README.md's install steps (and other documents' how-tos), taken from their text so that the
host suite runs what they say."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
FENCED_BLOCK = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```", re.S | re.M)


def blocks(info: str, document: Path = README) -> list[str]:
    """The bodies of the document's fenced blocks whose info string is `info` (e.g. "sh")."""
    text = document.read_text()
    return [m["body"] for m in FENCED_BLOCK.finditer(text) if m["info"].strip() == info]


def block_containing(info: str, needle: str, document: Path = README) -> str:
    """The first ```info block that contains `needle`; fails the test when there is none."""
    for body in blocks(info, document):
        if needle in body:
            return body
    raise AssertionError(f"{document.name} has no ```{info} block containing {needle!r}")


def commands(body: str) -> list[str]:
    """A shell block's commands: each line without its trailing comment, blank lines dropped."""
    lines = []
    for line in body.splitlines():
        command = re.sub(r"(^|\s)#.*$", "", line).strip()
        if command:
            lines.append(command)
    return lines


def config_lines(body: str) -> list[str]:
    """A configuration block's lines, comments and blank lines dropped."""
    return [line.strip() for line in body.splitlines() if line.strip() and not line.startswith("#")]


def inline_command(command: str) -> str:
    """`command` itself, once README shows it in backticks (so the suite runs what it says)."""
    assert f"`{command}`" in README.read_text(), f"README.md no longer says `{command}`"
    return command
