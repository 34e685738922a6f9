"""The man pages cronwrap(1) and cronwrap-agent(8) describe every option --help shows, and
none that is gone, and format without a groff warning."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAN = REPO / "docs" / "man"
BIN = Path(sys.executable).parent
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9](?![\w-])")
PAGES = {
    "cronwrap.1": [["cronwrap", "--help"], ["cronwrap", "status", "--help"],
                   ["cronwrap", "logs", "--help"], ["cronwrap", "pause", "--help"],
                   ["cronwrap", "resume", "--help"], ["cronwrap", "forget", "--help"]],
    "cronwrap-agent.8": [["cronwrap-agent", "--help"]],
}


def help_options(page: str) -> set[str]:
    found: set[str] = set()
    for program, *args in PAGES[page]:
        done = subprocess.run([str(BIN / program), *args], capture_output=True, text=True,
                              timeout=60, check=True)
        found |= set(OPTION.findall(done.stdout))
    return found


def page_options(page: str) -> set[str]:
    text = re.sub(r"\\f[BIRP]", "", (MAN / page).read_text()).replace("\\-", "-")
    return set(OPTION.findall(text))


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_option_of_the_help_is_in_the_man_page(page: str) -> None:
    missing = help_options(page) - page_options(page)
    assert not missing, f"docs/man/{page} does not describe {sorted(missing)}: add them"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_man_page_shows_no_option_the_program_lacks(page: str) -> None:
    stale = page_options(page) - help_options(page)
    assert not stale, f"docs/man/{page} describes {sorted(stale)}, which --help does not show"


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_man_page_formats_without_warnings(page: str) -> None:
    done = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(MAN / page)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr) == (0, "")
