"""The man pages cronwrap(1) and cronwrap-agent(8), which scripts/reference.py makes from
docs/man/*.in, --help and docs/reference/ (tests/test_reference.py fails when they are stale),
describe every option --help shows and none that is gone, have a man page's sections, and
format without a groff warning."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from reference_support import reference

REPO = Path(__file__).resolve().parent.parent
MAN = REPO / "docs" / "man"
BIN = Path(sys.executable).parent
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9](?![\w-])")
PAGES = {man.name: [[*argv, "--help"] for argv in man.helps] for man in reference.MAN_PAGES}
SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "FILES", "SEE ALSO"]


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
def test_the_man_page_shows_no_option_the_programs_lack(page: str) -> None:
    """FILES names both programs' options (what sets each path), so either program's count."""
    stale = page_options(page) - set().union(*(help_options(name) for name in PAGES))
    assert not stale, f"docs/man/{page} describes {sorted(stale)}, which --help does not show"


def test_each_program_and_subcommand_has_its_synopsis_and_options() -> None:
    text = (MAN / "cronwrap.1").read_text()
    for subcommand in ("status", "logs", "pause", "resume", "forget"):
        assert f'.SY "cronwrap {subcommand}"' in text
        assert f".SS cronwrap {subcommand}" in text


@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_man_page_has_the_sections_a_man_page_has_in_order(page: str) -> None:
    titles = re.findall(r"^\.SH (.+)$", (MAN / page).read_text(), re.MULTILINE)
    assert [title for title in titles if title in SECTIONS] == SECTIONS


@pytest.mark.parametrize("man", reference.MAN_PAGES, ids=lambda man: man.name)
def test_every_exit_status_of_the_reference_is_in_the_man_page(man: reference.ManPage) -> None:
    page = (MAN / man.name).read_text()
    section = page.split("\n.SH EXIT STATUS\n", 1)[1].split("\n.SH ", 1)[0]
    for title in man.exit_sections:
        rows = re.findall(r"^\| ([^|]+?) \|", reference.markdown_section("exit-codes.md", title),
                          re.MULTILINE)
        statuses = [row for row in rows if row not in ("status", "subcommand")]
        assert statuses
        for status in statuses:
            assert f".TP\n{reference.roff_inline(status)}\n" in section, status


OPTION_SPEC = r"(-\w|--[a-z][\w-]*)( ('[^']*'|\S+))?"
ITEM_SPEC = re.compile(rf"{OPTION_SPEC}(, {OPTION_SPEC})*|[A-Z]+")


@pytest.mark.parametrize("argv", reference.HELP_PAGES, ids=" ".join)
def test_each_help_item_is_an_option_then_two_spaces_then_its_text(argv: tuple[str, ...]) -> None:
    """What the man page's OPTIONS is made from: `  --opt ARG  text`, a long one's text on the
    next line; `  --opt ARG text` would make `ARG text` the option's argument."""
    _, blocks = reference.help_blocks(reference.help_text(argv))
    items = [rest[0] for kind, *rest in blocks if kind == "item"]
    assert items and [spec for spec in items if not ITEM_SPEC.fullmatch(spec)] == []


def test_help_text_is_not_read_as_markdown() -> None:
    """A crontab schedule's stars in --help stay stars, not emphasis."""
    assert "0 3 * * *" in reference.help_text(("cronwrap",))
    assert "\\(aq0 3 * * *\\(aq" in (MAN / "cronwrap.1").read_text().replace("'", "\\(aq")


def test_a_help_item_its_continuation_and_a_heading_become_man_requests() -> None:
    usage, blocks = reference.help_blocks(
        "usage: x [--a N]\n\ngroup:\n  --a N   the a, which\n          goes on\n"
        "  --long-option-name LONG\n          said below\n\nA para\nthat wraps.\n")
    assert usage == ["usage: x [--a N]"]
    assert blocks == [["heading", "group"], ["item", "--a N", "the a, which goes on"],
                      ["item", "--long-option-name LONG", "said below"],
                      ["para", "A para that wraps."]]
    assert reference.help_roff(blocks, True, set()) == [
        ".SS Group", ".TP", "\\fB\\-\\-a\\fR \\fIN\\fR", "the a, which goes on", ".TP",
        "\\fB\\-\\-long\\-option\\-name\\fR \\fILONG\\fR", "said below",
        ".PP", "A para that wraps."]


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
        shown = "\n".join(line for line in text.splitlines() if not line.startswith('.\\"'))
        found += [(page, name) for name in DOCUMENT.findall(shown)]
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
