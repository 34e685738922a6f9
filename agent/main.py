"""cronwrap-agent's command line: options, sockets and directories, and the tasks it runs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sqlite3
import stat
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn

from cronwrap.wrapper import __version__

from . import mib, mibvalues, systemd_integration
from .config import DEFAULT_CONFIG_FILE, Config, ConfigError, load
from .core import AgentCore
from .mibview import Oid
from .model import AnyNotification
from .ratelimit import OWNER_LINES
from .sources.cronlog import CronLogSource
from .sources.crontabs import CrontabSource
from .sources.wrapper_socket import Intake
from .sources.wrapper_spool import SpoolDrain
from .store import Store
from .watch import Watcher

log = logging.getLogger("cronwrap.agent")

DEFAULT_AGENTX = "unix:/var/agentx/master"
# CRON-JOBS-MIB and the SNMPv2 stand-ins it imports: the source tree's mibs/, installed as the
# package cronwrap.mibs, which is the same relative place.
MIB_DIR = Path(__file__).resolve().parent.parent / "mibs"
MIB_MODULE = "CRON-JOBS-MIB"
EX_USAGE = 64
EX_UNAVAILABLE = 69
EX_CANTCREAT = 73
EX_CONFIG = 78

DESCRIPTION = """\
Keep durable per-job state for cron jobs run under `cronwrap`, and serve it over SNMP
(CRON-JOBS-MIB): as an AgentX subagent of the host's snmpd (--agentx), or on its own
(--listen), or both.

Wrappers report each start, finish and overlap over a Unix socket (the sender's uid comes from
the kernel, never from the message); events they could not deliver are picked up from the spool
directory. Jobs are also learnt from crontabs (lines running `cronwrap -n NAME ...`) so a job
that never starts is reported as missed. `cronwrap status` reads the state back.
"""

EPILOG = """\
examples:
  cronwrap-agent                               defaults: /run/cronwrap/agent.sock, /var/lib/cronwrap
  cronwrap-agent --agentx                      AgentX subagent of snmpd (`master agentx`)
  cronwrap-agent --listen udp:127.0.0.1:1161   standalone SNMP agent, community public, loopback
  cronwrap-agent --config /etc/cronwrap/agent.toml --log-level debug
  cronwrap-agent --config /etc/cronwrap/agent.toml --listen udp:0.0.0.0:161 --check-config
  cronwrap-agent --print-mib > ~/.snmp/mibs/CRON-JOBS-MIB.txt   the MIB, for Net-SNMP tools
  cronwrap-agent --event-socket /tmp/t/agent.sock --state-dir /tmp/t/state \\
                 --spool-dir /tmp/t/spool --crontab-root /tmp/t/root

Under systemd socket activation the listening socket handed over (LISTEN_FDS) is used instead
of --event-socket.
exit status: 0 after SIGTERM/SIGINT, 64 bad usage, 69 socket in use, 73 cannot create a
directory or socket, 78 bad configuration file (--check-config: 0 when the configuration is
usable).
"""


class UserError(Exception):
    """A mistake the operator can fix; carries the exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EX_USAGE, f"{self.prog}: {message} (see --help)\n")


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = Parser(prog="cronwrap-agent", description=DESCRIPTION, epilog=EPILOG,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--event-socket", metavar="PATH",
                   help="Unix socket the wrappers report to, mode 0666 "
                        "(default /run/cronwrap/agent.sock)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="where the SQLite state lives (default /var/lib/cronwrap)")
    p.add_argument("--spool-dir", metavar="ROOT",
                   help="root of the per-uid spool directories, created 01733 "
                        "(default /var/spool/cronwrap)")
    p.add_argument("--config", metavar="FILE", type=Path,
                   help=f"TOML settings file (default {DEFAULT_CONFIG_FILE} if it exists)")
    p.add_argument("--crontab-root", metavar="DIR",
                   help="look for etc/crontab, etc/cron.d and var/spool/cron/crontabs "
                        "under DIR (default /)")
    p.add_argument("--watch-interval", metavar="SECONDS", type=positive,
                   help="how often to look for missed and overrunning jobs (default 5)")
    p.add_argument("--spool-interval", metavar="SECONDS", type=positive,
                   help="how often to drain the spool (default 10)")
    p.add_argument("--agentx", metavar="ADDRESS", nargs="?", const=DEFAULT_AGENTX,
                   help="serve CRON-JOBS-MIB as an AgentX subagent of the local snmpd at "
                        f"unix:PATH or tcp:HOST:PORT (default {DEFAULT_AGENTX}); notifications "
                        "go out through snmpd's trap sinks; replaces [snmp] agentx of --config")
    p.add_argument("--listen", metavar="ADDRESS", action="append",
                   help="serve SNMP itself (no snmpd needed) on udp:HOST:PORT or "
                        "udp6:[HOST]:PORT; repeatable; replaces [snmp] listen of --config; "
                        "access and trap targets come from the [snmp] section of --config")
    p.add_argument("--print-mib", metavar="MODULE", nargs="?", const=MIB_MODULE,
                   choices=sorted(path.stem for path in MIB_DIR.glob("*.txt")),
                   help="print CRON-JOBS-MIB (or one of the stand-ins for the SNMPv2 modules "
                        "it and its notifications use, for hosts without the IETF MIBs: "
                        "%(choices)s) and exit")
    p.add_argument("--check-config", action="store_true",
                   help="check the configuration file and options, print a summary, and exit")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"], help="default info")
    return p.parse_args(argv)


def config_path(args: argparse.Namespace) -> Path | None:
    if args.config is None and DEFAULT_CONFIG_FILE.exists():
        return DEFAULT_CONFIG_FILE
    return args.config


def build_config(args: argparse.Namespace) -> Config:
    path = config_path(args)
    try:
        config = load(path)
    except ConfigError as exc:
        raise UserError(str(exc), EX_CONFIG) from None
    return config.with_overrides(
        event_socket=args.event_socket, state_dir=args.state_dir, spool_dir=args.spool_dir,
        crontab_root=args.crontab_root, watch_interval=args.watch_interval,
        spool_interval=args.spool_interval)


def notification_payload(notification: AnyNotification) -> tuple[Oid, list[tuple[Oid, Any]]]:
    """The trap OID and varbinds of a notification, as CRON-JOBS-MIB defines them."""
    return mib.notification_oid(notification.kind), mibvalues.notification_varbinds(notification)


def build_frontends(args: argparse.Namespace, core: AgentCore, config: Config,
                    status: StatusLine) -> list[Any]:
    """The SNMP front ends asked for, all answering from one snapshot of the job table."""
    if not args.agentx and not args.listen:
        return []
    from .snapshot import MibSnapshot

    snapshot = MibSnapshot()
    core.add_listener(snapshot)
    frontends: list[Any] = []
    if args.agentx:
        from .agentx_session import AgentXFrontend

        try:
            agentx = AgentXFrontend(args.agentx, snapshot, mib.ROOT,
                                    core.notifications.subscribe(), notification_payload)
        except ValueError as exc:
            raise UserError(f"--agentx: {exc}", EX_USAGE) from None
        agentx.on_state = status.refresh
        status.agentx = agentx
        frontends.append(agentx)
    if args.listen:
        frontends.append(standalone_frontend(args, core, config, snapshot))
    return frontends


def choose_snmp(args: argparse.Namespace, config: Config) -> None:
    """What SNMP to serve: --agentx and --listen when given, else [snmp] agentx and listen."""
    snmp = snmp_settings(args, config)
    if args.agentx is None and snmp.agentx:
        args.agentx = snmp.agentx
    if not args.listen and snmp.listen:
        args.listen = [str(address) for address in snmp.listen]


def snmp_settings(args: argparse.Namespace, config: Config) -> Any:
    """The [snmp] table as an SnmpConfig, refusing a config file with secrets others can read."""
    from .snmp_config import SnmpConfigError, check_secret_file, parse_snmp_config

    try:
        snmp = parse_snmp_config(config.sections.get("snmp", {}))
        path = config_path(args)
        if path is not None:
            check_secret_file(path, snmp)
    except SnmpConfigError as exc:
        raise UserError(str(exc), EX_CONFIG) from None
    return snmp


def standalone_frontend(args: argparse.Namespace, core: AgentCore, config: Config,
                        view: Any) -> Any:
    from .snmp_config import SnmpConfigError
    from .standalone import StandaloneFrontend

    snmp = snmp_settings(args, config)
    try:
        return StandaloneFrontend(args.listen, view, mib.ROOT, snmp, Path(config.state_dir),
                                  core.notifications.subscribe(), notification_payload)
    except SnmpConfigError as exc:
        raise UserError(str(exc), EX_CONFIG) from None


async def frontends_ready(frontends: list[Any]) -> None:
    """Return once the front ends with a `wait_ready` (standalone: bound) serve; AgentX has
    none on purpose: snmpd may come up after us, and the agent is ready without it."""
    for frontend in frontends:
        if hasattr(frontend, "wait_ready"):
            await frontend.wait_ready()


def bind_socket(path: Path) -> socket.socket:
    """Bind the event socket, mode 0666, replacing a stale one but never a live agent's."""
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {path.parent}: {exc.strerror}", EX_CANTCREAT) from None
    if path.is_socket():
        with socket.socket(socket.AF_UNIX) as probe:
            if probe.connect_ex(str(path)) == 0:
                raise UserError(f"another agent is listening on {path}", EX_UNAVAILABLE)
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o666)
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot bind {path}: {exc.strerror}", EX_CANTCREAT) from None
    sock.listen(1024)
    return sock


def make_dirs(config: Config) -> None:
    state = Path(config.state_dir)
    spool = Path(config.spool_dir)
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)  # job lists are private
        if not spool.exists():
            spool.mkdir(parents=True)
            os.chmod(spool, 0o1733)  # anyone may create their own ROOT/<uid>, nobody may list
    except OSError as exc:
        raise UserError(f"cannot create {exc.filename}: {exc.strerror}", EX_CANTCREAT) from None
    if not stat.S_ISDIR(os.lstat(spool).st_mode):
        raise UserError(f"spool root {spool} is not a directory", EX_CANTCREAT)


def open_store(state_dir: Path) -> Store:
    try:
        return Store(state_dir)
    except sqlite3.Error as exc:
        raise UserError(f"cannot open the state database in {state_dir}: {exc}",
                        EX_CANTCREAT) from None


async def every(interval: float, step: Callable[[], Awaitable[Any]], first: bool = False) -> None:
    """Run `step` every `interval` seconds until cancelled; a failing step is logged, not fatal."""
    if not first:
        await asyncio.sleep(interval)
    while True:
        try:
            await step()
        except Exception:
            log.exception("periodic task failed; retrying in %s s", interval)
        await asyncio.sleep(interval)


async def serve(args: argparse.Namespace, config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    make_dirs(config)
    OWNER_LINES.configure(config.log_lines_per_owner)
    sock = systemd_integration.activated_unix_socket() or bind_socket(Path(config.event_socket))
    store = open_store(Path(config.state_dir))
    core = AgentCore(store, config)
    if store.problem is not None:
        log.error("cannot write %s (%s): serving what it holds (%d jobs) read-only, refusing "
                  "events (wrappers spool them) until it can", store.path, store.problem,
                  len(core.records()))
    tasks = [asyncio.create_task(core.run(), name="core")]
    cron_log = CronLogSource.start(core, config)
    crontabs = CrontabSource(core, config, cron_log)
    try:
        # subscribed before the first scan and drain: the notifications they raise wait in the
        # front ends' queues until they run (AgentX: until snmpd is connected)
        status = StatusLine(core, args)
        frontends = build_frontends(args, core, config, status)
        await crontabs.scan()
        # serve first, catch up after: live events, status, SNMP and the watcher run while a
        # big spool left by an outage is drained in slices (wrapper_spool.py)
        tasks.append(asyncio.create_task(Intake(core, config).serve(sock), name="intake"))
        drain = SpoolDrain(core, Path(config.spool_dir), config)
        log.info("started: %d jobs, listening on %s; the spool is drained from now on",
                 len(core.records()), sock.getsockname() or "an inherited socket")
        log.info("SNMP: %s", status.serving())
        runners = [every(config.spool_interval, drain.drain, first=True),
                   every(config.watch_interval, Watcher(core, config).tick, first=True),
                   every(config.discovery_interval, crontabs.scan),
                   every(config.watch_interval, status.refresh_async)]
        if cron_log is not None:  # its verdicts wait for an owner's spool backlog to drain
            runners.append(cron_log.run())
        runners += [frontend.run() for frontend in frontends]
        if systemd_integration.watchdog_interval() is not None:
            runners.append(systemd_integration.watchdog_loop(lambda: not tasks[0].done()))
        tasks += [asyncio.create_task(runner) for runner in runners]
        if await first_of(frontends_ready(frontends), tasks):
            systemd_integration.notify_ready()
            status.refresh()
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter:
                task.result()  # a task that ended on its own is a bug: raise it
        log.info("stopping")
        systemd_integration.notify_stopping()
    finally:
        await shutdown(core, tasks)
        store.close()


async def first_of(step: Awaitable[None], tasks: list[asyncio.Task[Any]]) -> bool:
    """Await `step` unless one of `tasks` ends first; True when `step` finished."""
    waiter = asyncio.ensure_future(step)
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    if waiter in done:
        return True
    waiter.cancel()
    return False


class StatusLine:
    """systemd's STATUS= line (`systemctl status`): the job count, and what SNMP the agent
    serves or waits for; sent again whenever it changes."""

    def __init__(self, core: AgentCore, args: argparse.Namespace) -> None:
        self.core = core
        self.args = args
        self.agentx: Any = None  # the AgentX front end, for its state
        self.sent = ""

    def serving(self) -> str:
        parts = [f"AgentX {self.args.agentx}: {self.agentx.state}"] if self.agentx else []
        parts += [f"SNMP {address}" for address in self.args.listen or []]
        return "; ".join(parts) or "no SNMP served (set agentx or listen in [snmp] of the config)"

    def text(self) -> str:
        text = f"{len(self.core.records())} jobs; {self.serving()}"
        backlog = sum(self.core.spool_backlog.values())
        if backlog:
            text += f"; catching up: {backlog} spooled events to apply"
        if self.core.storage_problem is not None:
            text += f"; state read-only ({self.core.storage_problem}): events refused, spooled"
        return text

    def refresh(self) -> None:
        text = self.text()
        if text != self.sent:
            self.sent = text
            systemd_integration.notify(text)

    async def refresh_async(self) -> None:
        self.refresh()


async def shutdown(core: AgentCore, tasks: list[asyncio.Task[Any]]) -> None:
    """Stop taking events, then let the writer commit and answer what it already has."""
    writer, others = tasks[0], tasks[1:]
    for task in others:
        task.cancel()
    for task in others:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if not writer.done():
        core.stop()
    await writer


def check_config(args: argparse.Namespace, config: Config) -> None:
    """Validate everything a start would read, without binding or writing anything."""
    from .snmp_config import SnmpConfigError, effective_access, parse_agentx_address, parse_listen

    path = config_path(args)
    print(f"config file:   {path or '(none: built-in defaults)'}")
    print(f"event socket:  {config.event_socket}")
    print(f"state dir:     {config.state_dir}")
    print(f"spool root:    {config.spool_dir}")
    print(f"status group:  {status_group_summary(config.status_group)}")
    if args.agentx:
        try:
            parse_agentx_address(args.agentx)
        except ValueError as exc:
            raise UserError(f"--agentx: {exc}", EX_USAGE) from None
        print(f"AgentX master: {args.agentx}")
    snmp = snmp_settings(args, config)
    if args.listen:
        try:
            snmp = effective_access(snmp, [parse_listen(spec) for spec in args.listen])
        except SnmpConfigError as exc:
            raise UserError(str(exc), EX_CONFIG) from None
        print(f"SNMP listen:   {', '.join(args.listen)}")
    if not args.agentx and not args.listen:
        print("SNMP:          none (no agentx or listen in [snmp], no --agentx or --listen)")
    print(f"SNMP access:   {len(snmp.communities)} communities, {len(snmp.users)} v3 users, "
          f"{len(snmp.targets)} notification targets")
    print("configuration OK")


def status_group_summary(group: str) -> str:
    """What --check-config says about [agent] status_group."""
    from .status_access import resolve_group

    if not group:
        return "(none: each user reads only their own jobs' status, root every job's)"
    gid = resolve_group(group)
    if gid is None:
        return f"{group}: no such group on this host (only root and owners read status)"
    return f"{group} (gid {gid}) reads every job's status"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.print_mib:
        sys.stdout.write((MIB_DIR / f"{args.print_mib}.txt").read_text())
        return 0
    systemd_integration.setup_logging(args.log_level)
    try:
        config = build_config(args)
        choose_snmp(args, config)
        if args.check_config:
            check_config(args, config)
            return 0
        asyncio.run(serve(args, config))
    except UserError as exc:
        print(f"cronwrap-agent: {exc}", file=sys.stderr)
        return exc.status
    except Exception as exc:
        from .standalone import StandaloneError

        if not isinstance(exc, StandaloneError):
            raise
        print(f"cronwrap-agent: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    return 0


if __name__ == "__main__":
    sys.exit(main())
