"""Benchmark: snmpbulkwalk of cronJobTable from the standalone agent at 100, 1,000 and 10,000 jobs.

Run by hand from the repository root:  .venv/bin/python bench/walk_standalone.py
Prints varbinds per second and the per-varbind cost relative to the 100-job walk (flat means a
GETNEXT costs the same however big the table is), beside a baseline measured in the same run:
pysnmp's generic MIB tree (MibScalarInstance objects) serving the same 1,000-job table.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from cronwrap.agent.snmp_config import SnmpConfig  # noqa: E402
from cronwrap.agent.standalone import StandaloneFrontend  # noqa: E402
from netsnmp import free_port  # noqa: E402
from pysnmp.carrier.asyncio.dgram import udp  # noqa: E402
from pysnmp.entity import config, engine  # noqa: E402
from pysnmp.entity.rfc3413 import cmdrsp, context  # noqa: E402
from standalone_views import COLUMNS, JOB_ENTRY, SUBTREE, SortedView, job_rows  # noqa: E402

SIZES = (100, 1_000, 10_000)
BASELINE_SIZES = (100, 1_000)
REPEATS = {100: 5, 1_000: 3, 10_000: 1}
MAX_REPETITIONS = "-Cr50"


def bulkwalk(port: int) -> tuple[int, float]:
    """One snmpbulkwalk of the cronwrap subtree: (varbinds, seconds)."""
    started = time.perf_counter()
    proc = subprocess.run(
        ["snmpbulkwalk", "-m", "", "-On", "-v2c", "-c", "public", "-t", "10", MAX_REPETITIONS,
         f"127.0.0.1:{port}", ".".join(map(str, SUBTREE))],
        capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    return sum("No more variables" not in line for line in proc.stdout.splitlines()), seconds


def best(port: int, repeats: int) -> tuple[int, float]:
    runs = [bulkwalk(port) for _ in range(repeats)]
    return runs[0][0], min(seconds for _, seconds in runs)


async def generic_tree_agent(port: int, values: dict[tuple[int, ...], Any]) -> engine.SnmpEngine:
    """The baseline: the same instances as pysnmp MibScalarInstance objects in its MIB tree."""
    snmp = engine.SnmpEngine()
    config.add_transport(snmp, udp.DOMAIN_NAME,
                         udp.UdpAsyncioTransport().open_server_mode(("127.0.0.1", port)))
    config.add_v1_system(snmp, "bench", "public")
    config.add_vacm_user(snmp, 2, "bench", "noAuthNoPriv", readSubTree=(1, 3, 6, 1))
    builder = snmp.get_mib_builder()
    table, row, column, scalar, instance = builder.import_symbols(
        "SNMPv2-SMI", "MibTable", "MibTableRow", "MibTableColumn", "MibScalar",
        "MibScalarInstance")
    symbols: dict[str, Any] = {"benchTable": table(JOB_ENTRY[:-1]),
                               "benchEntry": row(JOB_ENTRY)}
    for number in COLUMNS:
        symbols[f"benchColumn{number}"] = column(JOB_ENTRY + (number,), values[next(
            oid for oid in values if oid[: len(JOB_ENTRY) + 1] == JOB_ENTRY + (number,))]
        ).setMaxAccess("read-only")
    count_oid = SUBTREE + (1, 1)
    symbols["benchCount"] = scalar(count_oid, values[count_oid + (0,)]).setMaxAccess("read-only")
    for position, (oid, value) in enumerate(values.items()):
        base = count_oid if oid[:-1] == count_oid else oid[: len(JOB_ENTRY) + 1]
        symbols[f"benchCell{position}"] = instance(base, oid[len(base):], value)
    builder.export_symbols("BENCH-MIB", **symbols)
    snmp_context = context.SnmpContext(snmp)
    for responder in (cmdrsp.GetCommandResponder, cmdrsp.NextCommandResponder,
                      cmdrsp.BulkCommandResponder):
        responder(snmp, snmp_context)
    return snmp


def main() -> None:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    state = Path(tempfile.mkdtemp(prefix="walk-standalone-"))

    def start_view(rows: int) -> tuple[int, Any]:
        port = free_port()

        async def start() -> asyncio.Task[None]:
            frontend = StandaloneFrontend([f"udp:127.0.0.1:{port}"], SortedView(job_rows(rows)),
                                          SUBTREE, SnmpConfig(), state, None, lambda n: ((), []))
            task = asyncio.create_task(frontend.run())
            await frontend.wait_ready()
            return task

        return port, asyncio.run_coroutine_threadsafe(start(), loop).result(60)

    print(f"snmpbulkwalk {MAX_REPETITIONS} of the cronwrap subtree, 13 columns per job, "
          "best of N runs")
    print(f"{'server':<28}{'jobs':>7}{'varbinds':>10}{'seconds':>9}{'varbinds/s':>12}"
          f"{'us/varbind':>12}{'ratio':>7}")
    reference = None
    results = {}
    for rows in SIZES:
        port, task = start_view(rows)
        varbinds, seconds = best(port, REPEATS[rows])
        loop.call_soon_threadsafe(task.cancel)
        per = seconds / varbinds * 1e6
        reference = reference or per
        results[rows] = per
        print(f"{'standalone (MibView)':<28}{rows:>7}{varbinds:>10}{seconds:>9.2f}"
              f"{varbinds / seconds:>12.0f}{per:>12.1f}{per / reference:>7.2f}")

    baseline = {}
    for rows in BASELINE_SIZES:
        port = free_port()
        snmp = asyncio.run_coroutine_threadsafe(
            generic_tree_agent(port, job_rows(rows)), loop).result(300)
        varbinds, seconds = best(port, REPEATS[rows])
        loop.call_soon_threadsafe(snmp.close_dispatcher)
        per = baseline[rows] = seconds / varbinds * 1e6
        print(f"{'baseline: pysnmp MIB tree':<28}{rows:>7}{varbinds:>10}{seconds:>9.2f}"
              f"{varbinds / seconds:>12.0f}{per:>12.1f}{per / reference:>7.2f}")
    print(f"per-varbind cost, 10,000 vs 100 jobs: MibView {results[10_000] / results[100]:.2f}x"
          f" (spread {statistics.pstdev(results.values()) / statistics.mean(results.values()):.0%})"
          f"; MIB tree 1,000 vs 100 jobs: {baseline[1_000] / baseline[100]:.2f}x")
    print(f"MIB tree vs MibView at 1,000 jobs: {baseline[1_000] / results[1_000]:.2f}x")

if __name__ == "__main__":
    main()
