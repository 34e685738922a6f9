"""The agent's layering, read from its source: the core's transitions alone change a job's row and
raise notifications, sources only submit events, and no module outgrows 600 lines."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

from cronwrap.agent.model import JobRecord
from cronwrap.agent.store import Job
from cronwrap.agent.transitions.door import Statistic

ROOT = Path(__file__).resolve().parent.parent
AGENT = ROOT / "agent"
TRANSITIONS = AGENT / "transitions"
SOURCES = AGENT / "sources"
# A row's birth (who, since when, learnt from where) is the core's; everything else in it is
# decided by the transitions.
BIRTH = {"key", "owner", "counters_since", "source"}
DECIDED = ({f.name for f in fields(JobRecord)} - BIRTH) | {f.name for f in fields(Job)} - {"record"}
# The store builds rows back from what was committed: reading, not deciding.
READS_ROWS_BACK = {AGENT / "store.py"}
# The writer turns what the transitions raised into the published Notification, after the commit.
PUBLISHES = {AGENT / "writer.py"}
MAX_LINES = 600
# A refused row or deferred work is a door event (lifeevents.WorkDeferred, RowOverLimit): its
# transition (transitions/door.py) decides the agent-wide statistic, the core alone counts it.
DOOR_STATISTICS = {statistic.value for statistic in Statistic} | {"deferred", "rows_refused"}
COUNTS_AT_DOOR = {AGENT / "core.py", AGENT / "writer.py"}


def modules(*dirs: Path) -> list[Path]:
    return sorted(path for directory in dirs for path in directory.rglob("*.py"))


def called(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(
        func, ast.Attribute) else ""


def row_decisions(source: str) -> list[str]:
    """Where `source` sets a decided field of a row (rows are frozen: only replace(...),
    JobRecord(...) or Job(...) with such a keyword, or setattr, can), and where it raises a
    notification."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = called(node)
        if name in ("replace", "JobRecord", "Job"):
            found += [f"{name}({kw.arg}=) line {node.lineno}" for kw in node.keywords
                      if kw.arg in DECIDED]
        elif name in ("setattr", "__setattr__", "Raised"):
            found.append(f"{name}(...) line {node.lineno}")
    return found


def test_the_checks_see_what_they_look_for() -> None:
    """Each check finds its violation in a sample, so a passing run means none is there."""
    assert row_decisions("job = replace(job, record=replace(rec, runs=rec.runs + 1))") == [
        "replace(runs=) line 1"]
    assert row_decisions("object.__setattr__(rec, 'state', 1)\nJob(r, alarm=True)\n"
                         "x = Raised(k, key)") == [
        "__setattr__(...) line 1", "Job(alarm=) line 2", "Raised(...) line 3"]
    assert row_decisions("replace(job, record=replace(rec, owner=name))") == []
    assert batch_uses("from ..writer import Batch\nbatch.put(job)") == [
        "imports Batch line 1", ".put() line 2"]
    assert door_counting("self.core.deferred['events'] += 1\nbatch.rows_refused += 1\n"
                         "self.status_deferred = 0\ncore.defer('status')\nn = len(deferred)") == [
        "deferred line 1", "rows_refused line 2", "status_deferred line 3", "defer() line 4"]


def test_only_the_transitions_change_rows_and_raise_notifications() -> None:
    assert JobRecord.__dataclass_params__.frozen and Job.__dataclass_params__.frozen  # type: ignore[attr-defined]
    offenders = {}
    for path in modules(AGENT):
        if path.is_relative_to(TRANSITIONS) or path in READS_ROWS_BACK:
            continue
        found = row_decisions(path.read_text())
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}
    # the store's loading is the one exception, and it does set decided fields
    assert row_decisions((AGENT / "store.py").read_text())


def test_notifications_are_built_only_where_they_are_published() -> None:
    builders = {path for path in modules(AGENT, ROOT / "wrapper")
                if any(isinstance(node, ast.Call) and called(node) == "Notification"
                       for node in ast.walk(ast.parse(path.read_text())))}
    assert builders == PUBLISHES


def batch_uses(source: str) -> list[str]:
    """Where `source` imports the writer's Batch (or the writer) or puts a row."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (
                (node.module or "").endswith("writer")
                or any(alias.name == "Batch" for alias in node.names)):
            found.append(f"imports {', '.join(a.name for a in node.names)} line {node.lineno}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "put":
            found.append(f".put() line {node.lineno}")
    return found


def test_sources_submit_events_and_never_touch_the_batch() -> None:
    sources = modules(SOURCES)
    assert {path.stem for path in sources} >= {
        "wrapper_socket", "wrapper_spool", "cronlog", "journal", "crontabs"}
    offenders = {str(path.relative_to(ROOT)): batch_uses(path.read_text()) for path in sources}
    assert {path: found for path, found in offenders.items() if found} == {}


def test_transitions_depend_on_no_writer_store_or_source() -> None:
    """The transition function is pure: it reads rows and returns rows, it stores nothing."""
    for path in modules(TRANSITIONS):
        imported = {node.module or "" for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.ImportFrom)}
        assert not {m for m in imported if m.split(".")[-1] in (
            "core", "writer", "sources", "cronlog", "wrapper_socket", "wrapper_spool")}, path
        assert "Store" not in path.read_text(), path


def test_no_module_is_over_600_lines() -> None:
    sizes = {str(path.relative_to(ROOT)): len(path.read_text().splitlines())
             for path in modules(AGENT, ROOT / "wrapper")}
    assert {path: lines for path, lines in sizes.items() if lines > MAX_LINES} == {}


def door_counting(source: str) -> list[str]:
    """Where `source` counts a refusal or a deferral itself: sets or adds to an attribute (or
    an item of one) named after a door statistic, or calls a counting method of the core's."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AugAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Subscript):
                    target = target.value
                if isinstance(target, ast.Attribute) and target.attr in DOOR_STATISTICS:
                    found.append(f"{target.attr} line {node.lineno}")
        elif isinstance(node, ast.Call) and called(node) in ("defer", "_count_at_door"):
            found.append(f"{called(node)}() line {node.lineno}")
    return found


def test_refusals_and_deferrals_are_counted_only_by_the_core() -> None:
    """Sources and requests submit a WorkDeferred or RowOverLimit (AgentCore.note, apply);
    none counts one itself."""
    offenders = {str(path.relative_to(ROOT)): door_counting(path.read_text())
                 for path in modules(AGENT) if path not in COUNTS_AT_DOOR
                 and not path.is_relative_to(TRANSITIONS)}
    assert {path: found for path, found in offenders.items() if found} == {}
    assert door_counting((AGENT / "core.py").read_text())  # where they are counted
