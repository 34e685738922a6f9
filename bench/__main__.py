"""`python -m bench`: run every benchmark as a subprocess (--json) and print one table.

Run by hand from the repository root:  .venv/bin/python -m bench [--quick] [--only NAME] [--json]

Each benchmark is a script in bench/ that runs alone and prints one JSON object with --json;
this runner starts each with the same interpreter, collects the objects, and prints one row per
figure: ours, the baseline measured in the same run, and their ratio.  --json prints every
result as one JSON document instead.  A benchmark that fails is reported as such and the others
still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

Row = tuple[str, str, str, str]  # what, ours, baseline, ratio
Result = dict[str, Any]


@dataclass(frozen=True)
class Benchmark:
    """One script, its arguments for a full and a --quick run, and how its result reads."""

    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    rows: Callable[[Result], list[Row]]
    summary: str


def ms(value: float) -> str:
    return f"{value:.1f} ms"


def ratio(ours: float, base: float) -> str:
    return f"{ours / base:.2f}x" if base else "-"


def wrapper_rows(r: Result) -> list[Row]:
    """Wall time against the floor; CPU time too where the result has it (it moves far less
    than wall time on a loaded machine)."""
    floor = r["median_ms"][r["floor"]]
    cpu = r.get("median_cpu_ms", {})
    rows: list[Row] = []
    for name, value in r["median_ms"].items():
        if not name.startswith("cronwrap"):
            continue
        rows.append((f"wrapper start-up: {name} (median of {r['runs']})", ms(value),
                     f"{ms(floor)} import filelock", f"{value / floor:.2f}x"))
        if cpu:
            rows.append(("  same, CPU time", ms(cpu[name]), f"{ms(cpu[r['floor']])}",
                         ratio(cpu[name], cpu[r["floor"]])))
    return rows


def ingest_rows(r: Result) -> list[Row]:
    return [
        (f"ingest: acked events/s, {r['senders']} senders", f"{r['agent_events_per_s']}/s",
         f"{r['bare_commits_per_s']}/s bare sqlite", f"{r['ratio']:.2f}x"),
        ("ingest: ack latency p50 / p99", f"{ms(r['ack_p50_ms'])} / {ms(r['ack_p99_ms'])}", "",
         ""),
    ]


WALK_BASELINES = (("agentx", "c-subagent"), ("agentx", "pass_persist"),
                  ("standalone", "agentx"))


def walk_rows(r: Result) -> list[Row]:
    """Varbinds/s against each baseline, the fastest walks; the cost ratio's spread over the
    interleaved rounds (min-max) where the result has it."""
    rows: list[Row] = []
    spreads = r["ratios"].get("spread", {})
    for size, servers in r["results"].items():
        for ours, base in WALK_BASELINES:
            a, b = servers[ours]["varbinds_per_s"], servers[base]["varbinds_per_s"]
            name = f"{ours}_vs_{base.replace('-', '_')}"
            cost = f" (cost {spreads[name][size][0]:.2f}-{spreads[name][size][2]:.2f}x)" \
                if name in spreads else ""
            rows.append((f"walk {int(size):,} jobs: {ours} vs {base}, varbinds/s",
                         f"{a:,.0f}/s", f"{b:,.0f}/s {base}", ratio(a, b) + cost))
    flat = r["ratios"]["flatness"]
    small, large = r["ratios"]["flatness_sizes"]
    rows.append((f"walk flatness: us/varbind at {large:,} / at {small:,} jobs",
                 f"agentx {flat['agentx']:.2f}, standalone {flat['standalone']:.2f}",
                 f"c-subagent {flat['c-subagent']:.2f}", ""))
    return rows


def trap_rows(r: Result) -> list[Row]:
    base = r["agentxtrap"]
    return [
        (f"trap: job failed -> snmptrapd line, p50 ({r['runs']} runs)",
         ms(r["job_exit"]["p50_ms"]), f"{ms(base['p50_ms'])} agentxtrap",
         ratio(r["job_exit"]["p50_ms"], base["p50_ms"])),
        ("trap: job failed -> snmptrapd line, p99", ms(r["job_exit"]["p99_ms"]),
         f"{ms(base['p99_ms'])} agentxtrap", ratio(r["job_exit"]["p99_ms"], base["p99_ms"])),
        ("trap: wrapper spawned -> snmptrapd line, p50", ms(r["cronwrap_spawn"]["p50_ms"]),
         f"{ms(base['p50_ms'])} agentxtrap",
         ratio(r["cronwrap_spawn"]["p50_ms"], base["p50_ms"])),
    ]


def cronlog_rows(r: Result) -> list[Row]:
    rows: list[Row] = []
    for phase, rates in r["phases"].items():
        on, off = rates["agent cron_log on"], rates["agent cron_log off"]
        what = {"quiet": "quiet journal", "noise": f"{r['noise_per_s']:g} other lines/s",
                "cron": f"{r['jobs_per_s']:g} cron job runs/s"}[phase]
        rows.append((f"agent wakeups/s following cron's log, {what}",
                     f"{on['wakeups_per_s']:.1f}/s ({on['cpu_ms_per_s']:.1f} ms CPU/s)",
                     f"{off['wakeups_per_s']:.1f}/s cron_log off "
                     f"({off['cpu_ms_per_s']:.1f} ms CPU/s)",
                     ratio(on["wakeups_per_s"], off["wakeups_per_s"])))
    return rows


def resource_rows(r: Result) -> list[Row]:
    """RSS at each size against the agent's own at 0 jobs; idle CPU at scale against its own
    at 0 jobs (and an idle asyncio loop, the floor of any asyncio daemon)."""
    mib = 1024.0
    alone = r["memory_kib"]["0"]["agent"]["VmRSS"]
    rows: list[Row] = []
    for jobs, mems in r["memory_kib"].items():
        rss = mems["agent"]["VmRSS"]
        rows.append((f"agent RSS, {int(jobs):,} jobs x {r.get('runs', 1)} runs "
                     f"(VmHWM {mems['agent']['VmHWM'] / mib:.1f})",
                     f"{rss / mib:.1f} MiB (+{(rss - alone) / mib:.1f})",
                     f"{alone / mib:.1f} MiB agent at 0 jobs", ratio(rss, alone)))
    idle = [(f"{int(jobs):,} jobs from events", rates) for jobs, rates in r["idle"].items()]
    if "crontabs" in r:
        tabs = r["crontabs"]
        idle.append((f"{tabs['jobs']:,} jobs from {tabs['users']} users' crontabs",
                     tabs["idle"]))
    at_zero = r["idle"]["0"]["agent"]
    for what, rates in idle:
        ours = rates["agent"]
        rows.append((f"agent idle, {what} ({r['seconds']:g} s)",
                     f"{ours['cpu_ms_per_s'] / 10:.2f}% CPU, {ours['wakeups_per_s']:.1f} wakeups/s",
                     f"{at_zero['cpu_ms_per_s'] / 10:.2f}%, {at_zero['wakeups_per_s']:.1f}/s at 0 "
                     f"jobs; asyncio {rates['asyncio_idle']['wakeups_per_s']:.1f}/s", ""))
    return rows


def soak_rows(r: Result) -> list[Row]:
    truth = ", ".join(f"{k} {v}" for k, v in r["truth"].items())
    verdict = "NMS view == truth" if not r["mismatches"] else f"{len(r['mismatches'])} MISMATCHES"
    return [(f"soak: {r['simulated_hours']:g} simulated h, {r['jobs']} jobs, {r['events']} events",
             verdict, truth, f"{r['wall_seconds']:.0f} s wall")]


def snapshot_rows(r: Result) -> list[Row]:
    us = r["us"]
    small, large = min(us, key=int), max(us, key=int)
    spread = r.get("ratio_spread", {})
    rows = []
    for what, label in (("get_next", "MibSnapshot get_next"),
                        ("floor", "  floor: bisect in a plain sorted list + one int read")):
        if what not in us[large]:
            continue
        rounds = (f" (rounds {spread[what][0]:.2f}-{spread[what][2]:.2f})"
                  if what in spread else "")
        rows.append((f"{label} at {int(large):,} jobs, random starts",
                     f"{us[large][what]:.2f} us",
                     f"{us[small][what]:.2f} us at {int(small):,} jobs",
                     ratio(us[large][what], us[small][what]) + rounds))
    if "walk" in us[large]:
        rows.append((f"MibSnapshot walk step at {int(large):,} jobs", f"{us[large]['walk']:.2f} us",
                     f"{us[small]['walk']:.2f} us at {int(small):,} jobs",
                     ratio(us[large]["walk"], us[small]["walk"])))
    return rows


def getnext_rows(r: Result) -> list[Row]:
    return [(f"AgentX GetNext hot path, {int(size):,} entries, per varbind",
             f"{v['hot_path']:.0f} ns", f"{v['baseline']:.0f} ns dict lookup + join",
             ratio(v["hot_path"], v["baseline"])) for size, v in r.items()]


def status_flood_rows(r: Result) -> list[Row]:
    return [(f"event round trip under {r['flooders']} status flooders, {r['jobs']:,} jobs "
             f"({r['flood_requests_per_s']:,} flood requests/s answered)",
             ms(r["flooded_ms"]), f"{ms(r['alone_ms'])} alone", ratio(r["flooded_ms"],
                                                                    r["alone_ms"]))]


def startup_rows(r: Result) -> list[Row]:
    """Exec to READY=1 with the stored table against the same agent with an empty one."""
    jobs = str(r["jobs"])
    rows: list[Row] = []
    for what, key in (("wall", "ready_s"), ("CPU", "ready_cpu_s")):
        ours, base = r[key][jobs], r[key]["0"]
        rows.append((f"agent start to READY, {r['jobs']:,} jobs x {r['durations']} durations, "
                     f"{what} (median of {r['repeats']}, min-max)",
                     f"{ours['median']:.2f} s ({ours['min']:.2f}-{ours['max']:.2f})",
                     f"{base['median']:.2f} s at 0 jobs", ratio(ours["median"], base["median"])))
    return rows


BENCHMARKS = (
    Benchmark("wrapper", "wrapper_overhead", ("50",), ("10",), wrapper_rows,
              "cronwrap start-up vs `python -c 'import filelock'`"),
    Benchmark("ingest", "ingest.py", ("--seconds", "5"), ("--seconds", "1", "--senders", "20"),
              ingest_rows, "acked events/s vs bare SQLite commits"),
    Benchmark("walk", "walk", ("--sizes", "100,10000", "--repeats", "5"),
              ("--sizes", "100,1000"), walk_rows,
              "snmpbulkwalk vs Net-SNMP C subagent and pass_persist"),
    Benchmark("trap", "trap_latency.py", ("--runs", "200"), ("--runs", "20"), trap_rows,
              "failure-to-trap latency vs agentxtrap"),
    Benchmark("resources", "agent_resources.py",
              ("--jobs", "10000", "--seconds", "20", "--crontabs"),
              ("--jobs", "1000", "--seconds", "3", "--crontabs"), resource_rows,
              "agent RSS at 0 / 1,000 / 10,000 jobs x 5 runs, idle CPU with 10,000 jobs"),
    Benchmark("startup", "agent_startup.py", ("--jobs", "10000", "--repeats", "5"),
              ("--jobs", "1000", "--repeats", "2"), startup_rows,
              "agent exec to READY=1 with 10,000 stored jobs vs an empty table"),
    Benchmark("cronlog", "cronlog_idle.py", ("--seconds", "20"), ("--seconds", "3"),
              cronlog_rows, "agent wakeups and CPU following cron's log vs not (needs root)"),
    Benchmark("soak", "soak.py", ("--hours", "24", "--jobs", "100"),
              ("--hours", "2", "--jobs", "20"), soak_rows,
              "a simulated day through the core, checked against ground truth"),
    Benchmark("snapshot", "snapshot_scale.py", (), (), snapshot_rows,
              "MibSnapshot get_next and a walk at 100 / 10,000 jobs"),
    Benchmark("getnext", "agentx_getnext.py", (), (), getnext_rows,
              "AgentX GetNext decode/lookup/encode per varbind"),
    Benchmark("status", "status_flood.py", ("--seconds", "5"), ("--jobs", "1000", "--seconds",
                                                                 "1"), status_flood_rows,
              "another user's event round trip under a status flood vs alone (needs root)"),
)
NAMES = [b.name for b in BENCHMARKS]


def run(bench: Benchmark, quick: bool) -> Result:
    """The benchmark's JSON result, or {"error": ...} / {"available": False}."""
    script = BENCH / bench.script
    if not script.exists():
        return {"available": False}
    argv = [sys.executable, str(script), *(bench.quick if quick else bench.full), "--json"]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        problem = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return {"error": problem}
    result: Result = json.loads(lines[-1])
    return result


def rows_of(bench: Benchmark, result: Result) -> list[Row]:
    if result.get("available") is False:
        return [(f"{bench.name}: {bench.summary}", "not available", f"bench/{bench.script}", "")]
    if "error" in result:
        return [(f"{bench.name}: {bench.summary}", "FAILED", result["error"][:60], "")]
    try:
        return bench.rows(result)
    except (KeyError, TypeError, ValueError) as exc:
        return [(f"{bench.name}: {bench.summary}", "unreadable result", repr(exc)[:60], "")]


def table(rows: list[Row]) -> str:
    header: Row = ("measurement", "ours", "baseline (same run)", "ratio")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0],
        epilog=f"benchmarks: {', '.join(NAMES)}.  Each script also runs alone: "
               "python bench/SCRIPT --help")
    p.add_argument("--quick", action="store_true", help="small sizes and short runs")
    p.add_argument("--only", metavar="NAME", action="append", choices=NAMES,
                   help="run only this benchmark (repeatable)")
    p.add_argument("--json", action="store_true",
                   help="print all results as one JSON document instead of the table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    results: dict[str, Result] = {}
    seconds: dict[str, float] = {}
    for bench in chosen:
        print(f"running {bench.name} ({bench.script})...", file=sys.stderr, flush=True)
        began = time.monotonic()
        results[bench.name] = run(bench, args.quick)
        seconds[bench.name] = round(time.monotonic() - began, 1)
    if args.json:
        print(json.dumps({"quick": args.quick, "python": sys.executable, "results": results,
                          "wall_seconds": seconds}, indent=1))
    else:
        print(table([row for b in chosen for row in rows_of(b, results[b.name])]))
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
