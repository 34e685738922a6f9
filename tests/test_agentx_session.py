"""AgentX session: request handling (sans-IO) and a real Net-SNMP snmpd as master."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agentx_views import SortedView
from cronwrap.agent import agentx_codec as ax
from cronwrap.agent.agentx_session import (
    SNMP_TRAP_OID,
    AgentXFrontend,
    RequestHandler,
    _Connection,
)
from cronwrap.agent.model import JobKey, JobRecord, JobState, Notification, NotificationKind
from cronwrap.agent.snmp_config import parse_agentx_address
from netsnmp import SnmpdMaster, Snmptrapd, free_port, have_netsnmp, snmp, wait_until
from pysnmp.proto import rfc1902

ROOT = (1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 71)
COUNT = ROOT + (1, 1, 0)
ACCEPTED = ROOT + (1, 2, 0)
COLUMN = ROOT + (1, 5, 1)  # cronJobEntry
TRAP_OID = ROOT + (0, 1)


def dotted(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


def table_view(rows: int, columns: int = 3, extra: list[tuple[Any, Any]] | None = None,
               ) -> SortedView:
    items: list[tuple[Any, Any]] = [(COUNT, rfc1902.Gauge32(rows)),
                                    (ACCEPTED, rfc1902.Counter32(4000000000))]
    for row in range(1, rows + 1):
        index = (0, 3, 106, 111, 98) + (row,)  # uid 0, name "job" + row number
        items.append((COLUMN + (2,) + index, rfc1902.OctetString(f"job{row}".encode())))
        for column in range(3, columns + 2):
            items.append((COLUMN + (column,) + index, rfc1902.Integer32(row * 10 + column)))
    return SortedView(items + (extra or []), objects=[COUNT[:-1], ACCEPTED[:-1]]
                      + [COLUMN + (c,) for c in range(2, columns + 2)])


def notification_varbinds(notification: Notification) -> tuple[tuple[int, ...], list[Any]]:
    job = notification.job
    return TRAP_OID, [
        (COLUMN + (2, 0, len(job.key.name), *job.key.name.encode()),
         rfc1902.OctetString(job.key.name)),
        (COLUMN + (14, 0, len(job.key.name), *job.key.name.encode()),
         rfc1902.Integer32(int(job.state))),
    ]


def failed_job(name: str) -> Notification:
    record = JobRecord(key=JobKey(0, name), owner="root", runs=1, failures=1,
                       state=JobState.failed)
    return Notification(kind=NotificationKind.failed, job=record, time=0.0)


# --- sans-IO request handling ---------------------------------------------------------------

def answer(view: SortedView, pdu: ax.PDU) -> ax.Response:
    wire = RequestHandler(view, lambda: 42).handle(pdu)
    assert wire is not None
    response = ax.decode(wire)
    assert isinstance(response, ax.Response)
    assert (response.session_id, response.transaction_id, response.packet_id) == (
        pdu.session_id, pdu.transaction_id, pdu.packet_id)
    assert response.network_order == pdu.network_order
    return response


def names(response: ax.Response) -> list[tuple[int, ...]]:
    return [vb.oid for vb in response.varbinds]


@pytest.mark.parametrize("network_order", [True, False])
def test_get_next_stays_inside_each_range(network_order: bool) -> None:
    view = table_view(2)
    first_row = COLUMN + (2, 0, 3, 106, 111, 98, 1)
    pdu = ax.GetNext(session_id=1, transaction_id=2, packet_id=3, network_order=network_order,
                     ranges=(ax.SearchRange(ROOT, ROOT[:-1] + (72,)),
                             ax.SearchRange(COUNT, COUNT, include=True),
                             ax.SearchRange(COUNT, ACCEPTED),
                             ax.SearchRange(first_row, COLUMN + (3,))))
    response = answer(view, pdu)
    assert names(response) == [COUNT, COUNT, COUNT, COLUMN + (2, 0, 3, 106, 111, 98, 2)]
    assert [ax.var_type(vb.value) for vb in response.varbinds] == [
        ax.VarType.gauge32, ax.VarType.end_of_mib_view, ax.VarType.end_of_mib_view,
        ax.VarType.octet_string]
    assert response.sys_uptime == 42


def test_get_distinguishes_no_such_object_and_instance() -> None:
    pdu = ax.Get(ranges=(ax.SearchRange(COUNT), ax.SearchRange(COUNT[:-1] + (1,)),
                         ax.SearchRange(ROOT + (7, 0))))
    response = answer(table_view(1), pdu)
    assert [vb.value for vb in response.varbinds][0] == 1
    assert [ax.var_type(vb.value) for vb in response.varbinds][1:] == [
        ax.VarType.no_such_instance, ax.VarType.no_such_object]
    assert names(response) == [r.start for r in pdu.ranges]


def test_get_bulk_is_row_interleaved() -> None:
    view = table_view(3, columns=2)
    col2, col3 = COLUMN + (2,), COLUMN + (3,)
    pdu = ax.GetBulk(non_repeaters=1, max_repetitions=5, ranges=(
        ax.SearchRange(ROOT), ax.SearchRange(col2, col3), ax.SearchRange(col3, COLUMN + (4,))))
    response = answer(view, pdu)
    rows = [col + (0, 3, 106, 111, 98, r) for r in (1, 2, 3) for col in (col2, col3)]
    # non-repeater, 3 full rows, then one row of endOfMibView named with the last OIDs
    assert names(response) == [COUNT, *rows, rows[-2], rows[-1]]
    assert {ax.var_type(vb.value) for vb in response.varbinds[-2:]} == {
        ax.VarType.end_of_mib_view}


def test_sets_are_refused_and_cleanup_is_silent() -> None:
    view = table_view(1)
    test_set = ax.TestSet(varbinds=(ax.VarBind(COUNT, rfc1902.Gauge32(9)),))
    refused = answer(view, test_set)
    assert (refused.error, refused.index) == (ax.Error.notWritable, 1)
    assert answer(view, ax.CommitSet()).error == 0
    assert answer(view, ax.UndoSet()).error == 0
    assert RequestHandler(view, lambda: 0).handle(ax.CleanupSet()) is None


def test_other_context_and_unexpected_pdus() -> None:
    view = table_view(1)
    other = ax.GetNext(context=b"other", ranges=(ax.SearchRange(ROOT),))
    assert answer(view, other).error == ax.Error.unsupportedContext
    assert answer(view, ax.Ping()).error == 0
    assert answer(view, ax.Register(subtree=ROOT)).error == ax.Error.processingError


def test_an_unencodable_value_gives_gen_err_not_a_dead_session() -> None:
    view = SortedView([(COUNT, object())])
    response = answer(view, ax.GetNext(ranges=(ax.SearchRange(ROOT),)))
    assert (response.error, response.varbinds) == (ax.Error.genErr, ())


@pytest.mark.parametrize("network_order", [True, False])
def test_the_walk_fast_path_answers_as_the_general_path(network_order: bool) -> None:
    view = table_view(2)
    handler = RequestHandler(view, lambda: 42)
    first_row = COLUMN + (2, 0, 3, 106, 111, 98, 1)
    for search in (ax.SearchRange(ROOT, ROOT[:-1] + (72,)), ax.SearchRange(COUNT, COUNT, True),
                   ax.SearchRange(COUNT, ACCEPTED), ax.SearchRange(first_row, COLUMN + (3,)),
                   ax.SearchRange(first_row)):
        pdu = ax.GetNext(session_id=1, transaction_id=2, packet_id=3,
                         network_order=network_order, ranges=(search,))
        frame = ax.encode(pdu)
        quick = ax.single_get_next(frame)
        assert quick is not None
        assert handler.get_next_frame(frame, *quick) == handler.handle(pdu)
    unencodable = RequestHandler(SortedView([(COUNT, object())]), lambda: 0)
    frame = ax.encode(ax.GetNext(ranges=(ax.SearchRange(ROOT),)))
    quick = ax.single_get_next(frame)
    assert quick is not None
    response = ax.decode(unencodable.get_next_frame(frame, *quick) or b"")
    assert isinstance(response, ax.Response) and response.error == ax.Error.genErr


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return False


def test_requests_are_answered_however_the_reads_cut_them() -> None:
    steps = [ax.encode(ax.GetNext(session_id=1, packet_id=n, network_order=n % 2 == 0,
                                  ranges=(ax.SearchRange(COUNT if n else ROOT),)))
             for n in range(4)]
    ping = ax.encode(ax.Ping(session_id=1, packet_id=9))
    handler = RequestHandler(table_view(1), lambda: 0)
    reads = [steps[0],                               # one whole request per read (the walk)
             steps[1][:7], steps[1][7:] + steps[2],  # split, then coalesced with the next
             steps[3] + ping]                        # a GetNext, then another PDU

    async def serve() -> list[bytes]:
        conn = _Connection(handler, 5.0)
        transport = RecordingTransport()
        conn.connection_made(transport)
        for data in reads:
            conn.data_received(data)
        return transport.written

    written = asyncio.run(serve())
    expected = [handler.handle(ax.decode(wire)) for wire in (*steps, ping)]
    assert written == expected
    assert [ax.decode(w).packet_id for w in written] == [0, 1, 2, 3, 9]


@pytest.mark.parametrize("address", ["", "unix:", "tcp:host", "tcp::161", "tcp:h:0",
                                     "tcp:h:99999", "udp:h:1", "/tmp/sock"])
def test_bad_addresses_are_refused_in_one_line(address: str) -> None:
    with pytest.raises(ValueError, match="^bad AgentX address .*unix:PATH or tcp:HOST:PORT$"):
        parse_agentx_address(address)


def test_good_addresses() -> None:
    assert parse_agentx_address("unix:/run/agentx/master") == ("unix", "/run/agentx/master", 0)
    assert parse_agentx_address("tcp:127.0.0.1:705") == ("tcp", "127.0.0.1", 705)
    assert parse_agentx_address("tcp:[::1]:705") == ("tcp", "::1", 705)


# --- against a real snmpd -------------------------------------------------------------------

needs_netsnmp = pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools not installed")


class FrontendThread:
    """Runs an AgentXFrontend in its own event loop on a background thread."""

    def __init__(self, address: str, view: SortedView, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.queue: asyncio.Queue[Notification] = asyncio.Queue(maxsize=100)
        self.frontend = AgentXFrontend(address, view, ROOT, self.queue, notification_varbinds,
                                       **options)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.task: asyncio.Task[None] | None = None

    def __enter__(self) -> FrontendThread:
        self.thread.start()
        self.task = self.call(self._start())
        return self

    async def _start(self) -> asyncio.Task[None]:
        return asyncio.create_task(self.frontend.run())

    async def _stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task

    def call(self, coroutine: Any, timeout: float = 15) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def wait_registered(self) -> None:
        self.call(self.frontend.wait_registered())

    def publish(self, notification: Notification) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, notification)

    def __exit__(self, *exc_info: object) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def master(tmp_path: Path) -> Iterator[SnmpdMaster]:
    with SnmpdMaster(tmp_path / "snmpd") as daemon:
        yield daemon


def walk(tool: str, master: SnmpdMaster, start: tuple[int, ...] | str) -> list[str]:
    base = start if isinstance(start, str) else dotted(start)
    out = snmp(tool, "-v2c", "-c", "public", "-On", master.address, base).stdout
    return out.splitlines()


def expected_lines(view: SortedView) -> list[str]:
    render = {
        rfc1902.Gauge32: lambda v: f"Gauge32: {int(v)}",
        rfc1902.Counter32: lambda v: f"Counter32: {int(v)}",
        rfc1902.Integer32: lambda v: f"INTEGER: {int(v)}",
        rfc1902.OctetString: lambda v: f'STRING: "{v.asOctets().decode()}"',
    }
    return [f".{dotted(oid)} = {render[type(view.entries[oid].value)](view.entries[oid].value)}"
            for oid in view.oids]


def logged(oid: tuple[int, ...]) -> str:
    """How snmptrapd without MIBs prints an OID."""
    return "iso." + dotted(oid[1:])


def oid_of(line: str) -> tuple[int, ...]:
    return tuple(int(part) for part in line.split(" = ", 1)[0].strip(".").split("."))


@needs_netsnmp
@pytest.mark.integration
def test_get_walk_and_bulkwalk_through_snmpd(master: SnmpdMaster) -> None:
    view = table_view(5)
    with FrontendThread(f"unix:{master.agentx_socket}", view) as running:
        running.wait_registered()
        expected = expected_lines(view)
        assert walk("snmpwalk", master, ROOT) == expected
        assert walk("snmpbulkwalk", master, ROOT) == expected
        # from the enterprise arc: snmpd's own objects, then ours, sorted and complete
        for tool in ("snmpwalk", "snmpbulkwalk"):
            lines = walk(tool, master, "1.3.6.1.4.1.8072")
            oids = [oid_of(line) for line in lines]
            assert oids == sorted(oids) and len(set(oids)) == len(oids)
            ours = [line for line, oid in zip(lines, oids, strict=True) if oid[:10] == ROOT]
            assert ours == expected
            assert any(oid[:10] < ROOT for oid in oids)

        get = snmp("snmpget", "-v2c", "-c", "public", "-On", master.address, dotted(COUNT),
                   dotted(COUNT[:-1] + (7,)), dotted(ROOT + (9, 0))).stdout.splitlines()
        assert get == [f".{dotted(COUNT)} = Gauge32: 5",
                       f".{dotted(COUNT[:-1] + (7,))} = No Such Instance currently exists at "
                       "this OID",
                       f".{dotted(ROOT + (9, 0))} = No Such Object available on this agent at "
                       "this OID"]


@needs_netsnmp
@pytest.mark.integration
def test_getnext_at_the_subtree_edges(master: SnmpdMaster) -> None:
    view = table_view(2)
    with FrontendThread(f"unix:{master.agentx_socket}", view) as running:
        running.wait_registered()

        def next_of(oid: tuple[int, ...]) -> tuple[int, ...]:
            out = snmp("snmpgetnext", "-v2c", "-c", "public", "-On", master.address,
                       dotted(oid)).stdout
            return oid_of(out)

        assert next_of(ROOT[:-1] + (70, 5)) == view.oids[0]   # just before the subtree
        assert next_of(ROOT) == view.oids[0]                  # at its root
        assert next_of(view.oids[3]) == view.oids[4]          # inside
        assert next_of(view.oids[2] + (0,)) == view.oids[3]   # inside, between instances
        after = next_of(view.oids[-1])                         # past the last one
        assert after > view.oids[-1] and after[:10] != ROOT


@needs_netsnmp
@pytest.mark.integration
@pytest.mark.parametrize("sink", ["trap2sink", "informsink", "trapsess-v3"])
def test_notifications_reach_snmptrapd(tmp_path: Path, sink: str) -> None:
    trap_port = free_port()
    v3 = "-u trapuser -l authPriv -a SHA -A authpass123 -x AES -X privpass123"
    sink_line = {
        "trap2sink": f"trap2sink 127.0.0.1:{trap_port} public",
        "informsink": f"informsink 127.0.0.1:{trap_port} public",
        "trapsess-v3": "createUser trapuser SHA authpass123 AES privpass123\n"
                       f"trapsess -v 3 {v3} 127.0.0.1:{trap_port}",
    }[sink]
    with SnmpdMaster(tmp_path / "snmpd", extra_config=sink_line) as master:
        trapd_config = "authCommunity log public"
        if sink == "trapsess-v3":
            engine = snmp("snmpget", "-v2c", "-c", "public", "-Ov", "-Ox", master.address,
                          "1.3.6.1.6.3.10.2.1.1.0").stdout
            engine_hex = re.sub(r"[^0-9A-Fa-f]", "", engine.split(":", 1)[1])
            trapd_config = (f"createUser -e 0x{engine_hex} trapuser SHA authpass123 AES "
                            "privpass123\nauthUser log trapuser priv")
        with Snmptrapd(tmp_path / "trapd", config=trapd_config, port=trap_port) as trapd, \
                FrontendThread(f"unix:{master.agentx_socket}", table_view(1)) as running:
            running.wait_registered()
            running.publish(failed_job("backup"))
            running.publish(failed_job("rotate"))
            trap_oid = f"{logged(SNMP_TRAP_OID)} = OID: {logged(TRAP_OID)}\t"
            trapd.wait_for(re.escape(trap_oid), count=2)
            log = trapd.text()
            for name in ("backup", "rotate"):
                assert f'= STRING: "{name}"' in log
            assert f"{logged(COLUMN + (14, 0, 6, *b'backup'))} = INTEGER: 2" in log
            wait_until(lambda: running.frontend.notifications_sent == 2, 10, "two acks")


@needs_netsnmp
@pytest.mark.integration
def test_snmpd_restart_reconnects_and_delivers_queued_notifications(tmp_path: Path) -> None:
    trap_port = free_port()
    with Snmptrapd(tmp_path / "trapd", port=trap_port) as trapd, \
            SnmpdMaster(tmp_path / "snmpd", trap_port=trap_port) as master, \
            FrontendThread(f"unix:{master.agentx_socket}", table_view(1)) as running:
        running.wait_registered()
        master.stop()
        wait_until(lambda: not running.frontend.registered, 10, "the session to drop")
        running.publish(failed_job("while-down"))  # sent once snmpd is back
        master.start()

        def answers() -> bool:
            probe = snmp("snmpget", "-v2c", "-c", "public", "-On", "-t", "0.5", "-r", "0",
                         master.address, dotted(COUNT), check=False)
            return probe.stdout.strip() == f".{dotted(COUNT)} = Gauge32: 1"

        wait_until(answers, 15, "the subagent to answer again after the restart")
        trapd.wait_for('STRING: "while-down"')
        assert running.frontend.sessions_opened == 2


@needs_netsnmp
@pytest.mark.integration
def test_duplicate_registration_is_reported_and_the_first_keeps_serving(
        master: SnmpdMaster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="cronwrap.agent.agentx_session")
    address = f"unix:{master.agentx_socket}"
    with FrontendThread(address, table_view(1)) as first:
        first.wait_registered()
        with FrontendThread(address, table_view(2), register_retry=60) as second:
            wait_until(lambda: "duplicateRegistration" in caplog.text, 10, "the warning")
            assert not second.frontend.registered
            count = snmp("snmpget", "-v2c", "-c", "public", "-On", master.address,
                         dotted(COUNT)).stdout.strip()
            assert count == f".{dotted(COUNT)} = Gauge32: 1"
        lines = [r for r in caplog.records if "duplicateRegistration" in r.getMessage()]
        assert len(lines) == 1
        assert first.frontend.sessions_opened == 1


@needs_netsnmp
@pytest.mark.integration
def test_snmpd_answers_our_pings(master: SnmpdMaster) -> None:
    with FrontendThread(f"unix:{master.agentx_socket}", table_view(1),
                        ping_interval=0.05) as running:
        running.wait_registered()
        wait_until(lambda: running.frontend.pings_answered >= 5, 10, "five Pings answered")
        assert running.frontend.sessions_opened == 1 and running.frontend.registered


@needs_netsnmp
@pytest.mark.integration
def test_a_large_view_is_walked_completely_in_one_session(master: SnmpdMaster) -> None:
    view = table_view(10_000, columns=2)  # 20,002 instances
    with FrontendThread(f"unix:{master.agentx_socket}", view) as running:
        running.wait_registered()
        out = snmp("snmpbulkwalk", "-v2c", "-c", "public", "-On", "-Cr50", master.address,
                   dotted(ROOT), timeout=300).stdout.splitlines()
        assert out == expected_lines(view)
        assert running.frontend.sessions_opened == 1


def test_unreachable_master_is_retried_not_fatal(tmp_path: Path) -> None:
    async def scenario() -> int:
        frontend = AgentXFrontend(f"unix:{tmp_path / 'nothing'}", table_view(1), ROOT, None,
                                  notification_varbinds)
        task = asyncio.create_task(frontend.run())
        await asyncio.sleep(0.5)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return frontend.sessions_opened

    assert asyncio.run(scenario()) == 0


def test_cancelling_while_the_connect_fails_always_stops_the_frontend(tmp_path: Path) -> None:
    """A cancel that lands as the connect fails must not be lost (3.11's wait_for lost it, so
    the agent's shutdown hung with no snmpd running)."""
    async def cancelled_in_time(delay: float) -> bool:
        frontend = AgentXFrontend(f"unix:{tmp_path / 'nothing'}", table_view(1), ROOT, None,
                                  notification_varbinds)
        task = asyncio.create_task(frontend.run())
        await asyncio.sleep(delay)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=3)
        return task in done and task.cancelled()

    async def scenario() -> list[float]:
        delays = [i * 0.00001 for i in range(300)]  # 0 to 3 ms: before, during, after connect
        return [delay for delay in delays if not await cancelled_in_time(delay)]

    assert asyncio.run(scenario()) == []


# --- against an in-test master speaking the codec over a real Unix socket --------------------

class ScriptedMaster:
    """The master's side of the wire, driven step by step by a test."""

    def __init__(self) -> None:
        self.connections: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue())
        self.buffer = ax.AgentXBuffer()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.connections.put((reader, writer))

    async def read(self, reader: asyncio.StreamReader) -> ax.PDU:
        while (pdu := self.buffer.next_pdu()) is None:
            data = await asyncio.wait_for(reader.read(4096), 5)
            assert data, "the subagent closed the connection"
            self.buffer.receive(data)
        return pdu

    async def expect(self, reader: asyncio.StreamReader, kind: type[ax.PDU]) -> ax.PDU:
        pdu = await self.read(reader)
        assert isinstance(pdu, kind), pdu
        return pdu


def test_session_protocol_against_a_scripted_master(tmp_path: Path) -> None:
    async def scenario() -> None:
        master = ScriptedMaster()
        path = tmp_path / "master.sock"
        server = await asyncio.start_unix_server(master.accept, path=str(path))
        frontend = AgentXFrontend(f"unix:{path}", table_view(1), ROOT, None,
                                  notification_varbinds, ping_interval=0.2)
        task = asyncio.create_task(frontend.run())
        reader, writer = await asyncio.wait_for(master.connections.get(), 5)

        opened = await master.expect(reader, ax.Open)
        assert opened.description == b"cronwrap-agent" and opened.session_id == 0
        writer.write(ax.encode(ax.Response(session_id=77, packet_id=opened.packet_id)))
        register = await master.expect(reader, ax.Register)
        assert (register.subtree, register.session_id) == (ROOT, 77)
        writer.write(ax.encode(ax.Response(session_id=77, packet_id=register.packet_id)))
        await asyncio.wait_for(frontend.wait_registered(), 5)

        # a little-endian request is answered little-endian, with its ids copied
        writer.write(ax.encode(ax.GetNext(session_id=77, transaction_id=5, packet_id=6,
                                          network_order=False,
                                          ranges=(ax.SearchRange(ROOT),))))
        answer = await master.expect(reader, ax.Response)
        assert (answer.network_order, answer.transaction_id, answer.packet_id) == (False, 5, 6)
        assert [vb.oid for vb in answer.varbinds] == [COUNT]

        # a malformed PDU with a readable header gets parseError, and the session goes on
        writer.write(bytes.fromhex("01 05 10 00 0000004d 00000007 00000008 00000004 ff000000"))
        answer = await master.expect(reader, ax.Response)
        assert (answer.error, answer.transaction_id, answer.packet_id) == (266, 7, 8)

        # Pings come on their own, in the session
        ping = await master.expect(reader, ax.Ping)
        assert ping.session_id == 77
        writer.write(ax.encode(ax.Response(session_id=77, packet_id=ping.packet_id)))

        # end-of-file without a Close: the subagent comes back, opens and registers again
        writer.close()
        reader, writer = await asyncio.wait_for(master.connections.get(), 10)
        master.buffer = ax.AgentXBuffer()
        await master.expect(reader, ax.Open)
        assert not frontend.registered

        # stopping says goodbye with a Close (shutdown)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        closed = await master.expect(reader, ax.Close)
        assert closed.reason == ax.CloseReason.shutdown
        server.close()
        assert frontend.sessions_opened == 1

    asyncio.run(scenario())
