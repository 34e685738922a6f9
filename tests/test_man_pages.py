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


INSTALLED_DOCS = "/usr/share/doc/cronwrap/"  # packaging/debian/rules installs README.md, docs/
DOCUMENT = re.compile(r"[\w./-]*\.md\b")


def document_mentions() -> list[tuple[str, str]]:
    """(where, document) for every Markdown document --help or a man page names."""
    found = []
    for page, commands in PAGES.items():
        text = re.sub(r"\\f[BIRP]", "", (MAN / page).read_text()).replace("\\-", "-")
        found += [(page, name) for name in DOCUMENT.findall(text)]
        for program, *args in commands:
            done = subprocess.run([str(BIN / program), *args], capture_output=True, text=True,
                                  timeout=60, check=True)
            found += [(" ".join([program, *args]), name) for name in DOCUMENT.findall(done.stdout)]
    return found


def test_help_and_man_pages_name_documents_where_the_package_installs_them() -> None:
    """No `docs/wrapper.md` (a path in the source tree): /usr/share/doc/cronwrap/... paths of
    documents that exist, or a bare file name of docs/ next to the directory that holds it."""
    mentions = document_mentions()
    assert any(name.startswith(INSTALLED_DOCS) for _, name in mentions)
    for where, name in mentions:
        if "/" not in name:
            assert (REPO / "docs" / name).is_file(), (where, name)
            continue
        assert name.startswith(INSTALLED_DOCS), f"{where} names {name}, not an installed path"
        assert (REPO / name.removeprefix(INSTALLED_DOCS)).is_file(), (where, name)
