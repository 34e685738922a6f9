"""A user's text is made printable at the agent's door, whatever the wrapper did.

Anyone may write the socket or the spool, skipping the wrapper's cleaning. Control characters
and newlines in every field a user fills reach no snmpwalk value, no notification varbind (as a
real snmptrapd logs it), no status reply and no line of the agent's log: names, schedules and
zones holding them are refused, free text (log_path, log_problem, last_message) is escaped in
the one form docs/protocol.md gives. Once, a `last_message` with a newline forged a second
record in snmptrapd's log: a cronJobRecovered for root's backup.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from agent_support import Agent, run_cronwrap, wait_for
from cronwrap.wrapper.events import Finished, Started, new_event_id
from e2e_support import TABLE, Rig, parse_table_walk, rig
from netsnmp import free_port

from .support import User, run_as, send_as, spool_as, tool

FORGED = ("\n2026-01-01 00:00:00 localhost [UDP: [127.0.0.1]:1]: OID: "
          "CRON-JOBS-MIB::cronJobRecovered\tCRON-JOBS-MIB::cronNotifyJobOwner.0 = STRING: root"
          "\tCRON-JOBS-MIB::cronNotifyJobName.0 = STRING: backup\n")
HOSTILE = f"disk \x1b]0;owned\x07\x1b[2J\r\t{FORGED}caf\u00e9 \x9b31m \ud800 end"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # not \t, \n: separators in these logs


def finished(job: str, start: float, **fields: object) -> Finished:
    return Finished(new_event_id(), job, start + 1, 4242, start_time=start, exit_status=1,
                    duration_ms=1000, **fields)  # type: ignore[arg-type]


def raw_started(job: object, cadence: dict[str, object]) -> str:
    """A started event as anyone can write it, with fields the wrapper would never send."""
    return json.dumps({"v": 1, "type": "started", "id": new_event_id(), "job": job,
                       "time": time.time(), "pid": 4242, "cadence": cadence}) + "\n"


def send_raw_as(user: User, agent: Agent, *lines: str) -> list[dict[str, object]]:
    result = run_as(user, *tool("send_lines.py", str(agent.socket)), input="".join(lines))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def hostile_rig(base: Path):
    port = free_port()
    config = f'[[snmp.target]]\naddress = "127.0.0.1:{port}"\ntype = "trap"\ncommunity = "public"\n'
    return rig(base, agentx=False, listen=True, trap_port=port, config=config,
               agent_options=("--watch-interval", "0.5", "--spool-interval", "0.2"))


def attack(r: Rig, attacker: User) -> None:
    now = time.time()
    fields = {"log_path": f"/tmp/{HOSTILE}"[:4096], "log_problem": HOSTILE[:512],
              "last_message": HOSTILE[:255]}
    replies = send_as(attacker, r.agent, Started(new_event_id(), "sent", now, 4242),
                      finished("sent", now, **fields))
    assert replies == [{"ok": True}, {"ok": True}], replies
    spool_as(attacker, r.agent, finished("spooled", now - 50, **fields))
    refused = send_raw_as(
        attacker, r.agent,
        raw_started("bad\x1bname", {}),
        raw_started("bad-schedule", {"schedule": "0 3 * * *\n* * * * *"}),
        raw_started("bad-zone", {"schedule": "0 3 * * *", "tz": "Europe/\x1b[2J"}),
        raw_started("bogus-zone", {"schedule": "0 3 * * *", "tz": "Mars/Olympus_Mons"}))
    assert [reply["ok"] for reply in refused] == [False] * 4, refused
    wait_for(lambda: not list((r.agent.spool / str(attacker.uid)).glob("*.json")),
             "the spool drained", timeout=30, proc=r.agent.proc, log=r.agent.log)


CRONTAB = ("CRON_TZ=Europe/\x1b[2J\n"  # Debian's cron ignores it; the agent too, then
           "0 3 * * * cronwrap -n tabbed -- true\n"
           "*\x1b * * * * cronwrap -n ctlsched -- true\n"  # not cron syntax: cron ignores
           # the whole crontab, and each line has a row in ignoredByCron saying so
           "0 4 * * * cronwrap -n 'bad\x1bname' -- true\n"
           "0 5 * * * cronwrap -n echoed -- printf '\x1b]0;owned\x07\\n'\n")


def plant_crontab(base: Path, attacker: User) -> None:
    """The attacker's crontab, as `crontab -e` leaves it, read by the agent's discovery."""
    crontabs = base / "agent" / "root" / "var/spool/cron/crontabs"
    crontabs.mkdir(parents=True)
    (crontabs / attacker.name).write_text(CRONTAB)
    os.chown(crontabs / attacker.name, attacker.uid, 0)
    os.chmod(crontabs / attacker.name, 0o600)


def assert_printable(where: str, text: str) -> None:
    found = CONTROL.search(text)
    assert found is None, f"{where} holds {found[0]!r}: {text!r}"


def test_control_characters_reach_no_walk_trap_status_or_log_line(
        attackers: tuple[User, ...], shared_base: Path) -> None:
    attacker = attackers[0]
    plant_crontab(shared_base, attacker)
    with hostile_rig(shared_base) as r:
        attack(r, attacker)
        failed = received_about(r, attacker, "sent")
        received_about(r, attacker, "spooled")
        walk = r.walk("snmpwalk", TABLE)
        rows = parse_table_walk(walk)  # every line is one varbind of the table
        ignored = {name for name, row in rows.items() if row["cronJobState"] == "ignoredByCron(21)"}
        assert ignored == set(rows) - {"sent", "spooled"}, sorted(rows)
        assert {"tabbed", "echoed", "ctlsched"} <= ignored, sorted(rows)
        for name in ("sent", "spooled"):
            assert rows[name]["cronJobLastMessage"].startswith("disk \\x1b]0;owned\\x07")
            assert len(rows[name]["cronJobLastMessage"]) <= 255
            assert rows[name]["cronJobLogProblem"].endswith("\\ncaf\\xe9 \\x9b31m \\ud800 end")
        traps = r.trapd.text()
        assert "cronNotifyJobOwner.0 = STRING: root\t" not in traps, traps  # a real tab
        lines = traps.splitlines()
        headers = [line for line in lines if line.startswith(time.strftime("%Y-%m-%d "))]
        bodies = [line for line in lines if line.startswith("SNMPv2-SMI::mib-2.1.3.0 = ")]
        # 2 failed, 2 log failing, a crontab line ignored per ignored row: one line each
        assert len(headers) == len(bodies) == 4 + len(ignored), lines
        rest = set(lines) - set(headers) - set(bodies)
        assert all("NET-SNMP version" in line or "Created directory" in line for line in rest)
        assert "cronNotifyMessage.0 = STRING: disk \\x1b]0;owned\\x07\\x1b[2J\\r\\t\\n" in failed
        status = r.agent.status()
        assert {f"{attacker.name}/{name}" for name in rows} == set(status)
        texts = [value for job in status.values() for value in job.values()
                 if isinstance(value, str)]
        assert all(text.isascii() and text.isprintable() for text in texts), texts
        assert status[f"{attacker.name}/sent"]["last_log_path"].startswith("/tmp/disk \\x1b]0;")
        shown = run_cronwrap(r.agent, "status")
        assert shown.returncode in (0, 2), shown
        for where, text in (("snmpwalk", walk), ("snmptrapd's log", traps),
                            ("cronwrap status", shown.stdout + shown.stderr),
                            ("the agent's log", r.agent.log.read_text(errors="surrogateescape"))):
            assert_printable(where, text)
            assert "\nroot/backup" not in text and "\n2026-01-01 00:00:00 localhost" not in text


def received_about(r: Rig, attacker: User, name: str) -> str:
    """The one cronJobFailed about the attacker's job `name` snmptrapd logged."""
    failed = rf"OID: CRON-JOBS-MIB::cronJobFailed\t.*cronNotifyJobName\.0 = STRING: {name}\t"
    r.trapd.wait_for(failed, timeout=30)
    lines = [line for line in r.trapd.text().splitlines() if re.search(failed, line)]
    assert len(lines) == 1, lines
    assert f"cronNotifyJobOwner.0 = STRING: {attacker.name}\t" in lines[0]
    return lines[0]

