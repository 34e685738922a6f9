"""cronJobLastMessage: a job's last line of output, sent only when the job asks, carried in the
failed and timed-out notifications.

End to end: the real wrapper against a real standalone agent, read back with snmpget and from
what a real snmptrapd logged.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cronwrap.wrapper.events import EventError, Finished, decode_message, new_event_id
from cronwrap.wrapper.job import last_line
from e2e_support import instance, received, rig
from netsnmp import free_port, have_netsnmp

e2e = [pytest.mark.integration,
       pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed")]


@pytest.mark.parametrize(("output", "line"), [
    (b"starting\ndisk quota exceeded\n\n  \n", "disk quota exceeded"),
    (b"\x1b[31mred alert\x1b[0m\r\n", "[31mred alert[0m"),  # escapes lose their ESC
    (b"caf\xc3\xa9 \xff ok", "caf\u00e9 \ufffd ok"),
    (b"x" * 300, "x" * 255),
    (b"", None),
    (b"\n\t\n", None),
])
def test_the_last_line_is_printable_and_bounded(output: bytes, line: str | None) -> None:
    assert last_line(output) == line


def test_the_event_carries_it_only_when_set_and_the_agent_refuses_an_oversized_one() -> None:
    event = Finished(new_event_id(), "job", 2.0, 10, start_time=1.0, exit_status=3)
    assert "last_message" not in json.loads(event.to_wire())
    with_message = event._replace(last_message="disk quota exceeded")
    assert decode_message(with_message.to_wire()) == with_message
    oversized = json.loads(with_message.to_wire())
    oversized["last_message"] = "x" * 256
    with pytest.raises(EventError, match="last_message"):
        decode_message(json.dumps(oversized).encode() + b"\n")


def _standalone(tmp_path: Path):
    port = free_port()
    config = f'[[snmp.target]]\naddress = "127.0.0.1:{port}"\ntype = "trap"\ncommunity = "public"\n'
    return rig(tmp_path, agentx=False, listen=True, trap_port=port, config=config)


@pytest.mark.parametrize("mark", e2e)
def test_only_jobs_that_ask_send_it_and_failures_carry_their_own(tmp_path: Path,
                                                                  mark: object) -> None:
    with _standalone(tmp_path) as r:
        script = "printf 'starting\\nuser quota exceeded on /srv\\n\\n'; exit 3"
        assert r.wrap("-n", "quota", "--last-message", "--", "sh", "-c", script).returncode == 3
        line = received(r.trapd, "cronJobFailed", "quota")
        assert line.endswith("\tCRON-JOBS-MIB::cronNotifyMessage.0 = STRING: user quota exceeded "
                             "on /srv")  # the last varbind
        assert r.get(instance("cronJobLastMessage", "quota")) == [
            "STRING: user quota exceeded on /srv"]

        # off by default: the same output, no flag, nothing sent
        assert r.wrap("-n", "quiet", "--", "sh", "-c", script).returncode == 3
        line = received(r.trapd, "cronJobFailed", "quiet")
        assert "cronNotifyMessage" not in line  # no empty varbind stands for it
        assert r.get(instance("cronJobLastMessage", "quiet")) == ["STRING: "]

        # a success replaces the row's message with its own last line
        assert r.wrap("-n", "quota", "--last-message", "--", "echo", "all good").returncode == 0
        assert r.get(instance("cronJobLastMessage", "quota")) == ["STRING: all good"]

        # on for every job of a config file (for the host: /etc/cronwrap/cronwrap.toml)
        r.wrapper_config.write_text("last_message = true\n")
        slow = "echo waiting for the backup server; exec sleep 30"
        assert r.wrap("-n", "slow", "--timeout", "1s", "--", "sh", "-c", slow).returncode == 124
        line = received(r.trapd, "cronJobTimedOut", "slow")
        assert line.endswith("\tCRON-JOBS-MIB::cronNotifyMessage.0 = STRING: waiting for the "
                             "backup server")
