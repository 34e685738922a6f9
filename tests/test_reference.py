"""docs/reference/ is what scripts/reference.py makes from the code, its checks bite, and the
exit statuses --help repeats are those of docs/reference/exit-codes.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from cronwrap.agent import main as agent_main
from cronwrap.wrapper import errors, life, logview
from reference_support import SCRIPT, reference

REPO = Path(__file__).resolve().parent.parent
AGENT_LINES = ["# Where wrappers report.", "# event_socket = \"/run/cronwrap/agent.sock\"",
               "# state_dir = \"/var/lib/cronwrap\"", "# How often.", "# watch_interval = 5.0"]


def test_the_committed_reference_is_the_generators_output() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert (done.returncode, done.stderr) == (0, "")


def test_comments_and_keys_are_grouped_as_the_file_shows_them() -> None:
    groups = reference.key_groups(AGENT_LINES, {"event_socket", "state_dir", "watch_interval"})
    assert groups == [(["Where wrappers report."], ['event_socket = "/run/cronwrap/agent.sock"',
                                                    'state_dir = "/var/lib/cronwrap"']),
                      (["How often."], ["watch_interval = 5.0"])]


def test_a_key_the_code_reads_but_the_file_lacks_is_refused() -> None:
    known = {"event_socket", "state_dir", "watch_interval", "spool_dir"}
    with pytest.raises(reference.StaleConfigFile, match="spool_dir"):
        reference.check_keys("agent.toml", reference.key_groups(AGENT_LINES, known), known)


def test_a_default_the_file_misstates_is_refused() -> None:
    lines = [*AGENT_LINES[:-1], "# watch_interval = 7.0"]
    known = {"event_socket", "state_dir", "watch_interval"}
    with pytest.raises(reference.StaleConfigFile, match="watch_interval = 7.0"):
        reference.check_agent_defaults(reference.key_groups(lines, known))


def test_a_changed_page_is_reported_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(reference, "OUT", tmp_path)
    monkeypatch.setattr(reference, "PAGES", {"x.md": lambda: "new\n"})
    (tmp_path / "x.md").write_text("old\n")
    assert reference.main(["--check"]) == 1
    assert "reference: x.md is stale" in capsys.readouterr().err
    assert reference.main([]) == 0 and (tmp_path / "x.md").read_text() == "new\n"
    assert reference.main(["--check"]) == 0



@pytest.mark.parametrize(("module", "section"), [
    (errors, "cronwrap -- COMMAND (a run)"), (life, "cronwrap's subcommands"),
    (logview, "cronwrap's subcommands"), (agent_main, "cronwrap-agent")])
def test_every_exit_status_the_code_names_is_in_the_exit_status_page(
        module: ModuleType, section: str) -> None:
    page = (REPO / "docs" / "reference" / "exit-codes.md").read_text()
    text = page.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    statuses = {name: value for name, value in vars(module).items() if name.startswith("EX_")}
    assert statuses, f"{module.__name__} names its exit statuses"
    missing = [name for name, value in statuses.items() if not re.search(rf"\b{value}\b", text)]
    assert missing == []


EXIT_ROWS = {("cronwrap", "logs"): "`cronwrap logs JOB`",
             ("cronwrap", "status"): "`cronwrap status [JOB...]`",
             ("cronwrap", "pause"): "`cronwrap pause`, `resume`, `forget`",
             ("cronwrap", "resume"): "`cronwrap pause`, `resume`, `forget`",
             ("cronwrap", "forget"): "`cronwrap pause`, `resume`, `forget`"}


def leading_numbers(items: str) -> set[str]:
    """The number each `;`- or `,`-separated item starts with: `0; 1 no such job` -> {0, 1}."""
    return {match[1] for item in re.split(r"[;,]", items)
            if (match := re.match(r"\s*(\d+)", item))}


def exit_codes_table(section: str) -> list[list[str]]:
    page = (REPO / "docs" / "reference" / "exit-codes.md").read_text()
    text = page.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split(" | ")]
            for line in text.splitlines() if line.startswith("| ") and "---" not in line]


def documented_statuses(argv: tuple[str, ...]) -> set[str]:
    if argv in EXIT_ROWS:
        rows = exit_codes_table("cronwrap's subcommands")
        return leading_numbers(next(row[1] for row in rows if row[0] == EXIT_ROWS[argv]))
    section = "cronwrap -- COMMAND (a run)" if argv == ("cronwrap",) else "cronwrap-agent"
    return {number for row in exit_codes_table(section)[1:]
            for number in leading_numbers(row[0])}


@pytest.mark.parametrize("argv", reference.HELP_PAGES, ids=" ".join)
def test_the_exit_statuses_help_gives_are_the_exit_status_pages(argv: tuple[str, ...]) -> None:
    """--help repeats the statuses, so that it teaches: it may not tell them differently."""
    _, blocks = reference.help_blocks(reference.help_text(argv))
    said = [text for kind, *rest in blocks if kind == "para"
            for text in rest if text.lower().startswith("exit status")]
    assert len(said) == 1, said
    assert leading_numbers(said[0].split(":", 1)[1]) == documented_statuses(argv)
