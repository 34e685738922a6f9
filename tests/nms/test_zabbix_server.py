"""The shipped Zabbix template in the real Zabbix 6.0 (Debian's zabbix-server-pgsql on a
private PostgreSQL, its frontend's API served by PHP's built-in web server), polling a real
agent whose jobs ran through the real wrapper: imported through the API, linked to a host with
the agent's SNMP interface, every job discovered, the items equal to the agent's counts, and
the failing and the missed job's triggers open problems, never the good job's."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from cronwrap.agent.model import JobState
from e2e_support import rig
from netsnmp import free_port, wait_until

from .conftest import CronJobs
from .support import NMS, Daemon, require

pytestmark = pytest.mark.nms

TEMPLATE = NMS / "zabbix" / "cronwrap_template.yaml"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SCHEMA = Path("/usr/share/zabbix-server-pgsql")
FRONTEND = Path("/usr/share/zabbix")
# Debian's frontend reads its configuration from this absolute path; the test's copy of the
# frontend reads a private one instead.
FRONTEND_CONFIG_LINE = "const CONFIG_FILE_PATH = '/etc/zabbix/zabbix.conf.php';"
PG_PORT = 5432  # a Unix socket in a private directory only: no TCP port is taken
IMPORT_RULES = {name: {"createMissing": True, "updateExisting": True} for name in (
    "templates", "items", "discoveryRules", "triggers", "valueMaps")} | {
    "groups": {"createMissing": True}, "templateLinkage": {"createMissing": True}}
# Polling and discovery every few seconds on the test host (the template's macros).
HOST_MACROS = {"{$CRONJOB.INTERVAL}": "2s", "{$CRONJOB.DISCOVERY.INTERVAL}": "5s"}


def free_tcp_port_below_32768() -> int:
    """zabbix_server's ListenPort must be 1024..32767, below Linux's ephemeral range."""
    for port in range(20000 + os.getpid() % 10000, 32768):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free TCP port below 32768")


def start_postgres(base: Path, stack: ExitStack) -> Path:
    """A private cluster, owned by postgres, with the Zabbix schema and data loaded; returns
    its socket directory."""
    shutil.chown(base, "postgres")
    data = base / "data"
    initdb = subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
                             PG_BIN / "initdb", "-D", data, "-A", "trust", "-U", "postgres"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert initdb.returncode == 0, initdb.stderr
    server = Daemon([str(PG_BIN / "postgres"), "-D", str(data), "-k", str(base), "-p",
                      str(PG_PORT), "-c", "listen_addresses=", "-c", "fsync=off",
                      "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                     base / "postgres.log", user="postgres")
    stack.callback(server.close)
    wait_until(lambda: server.alive() and psql(base, "postgres", "select 1").returncode == 0,
               60, "postgres to accept connections")
    assert psql(base, "postgres", "create database zabbix").returncode == 0
    sql = b"".join(gzip.decompress((SCHEMA / f"{part}.sql.gz").read_bytes())
                   for part in ("schema", "images", "data"))
    loaded = subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(base), "-p",
                             str(PG_PORT), "-U", "postgres", "zabbix"], input=sql,
                            capture_output=True, timeout=600, check=False)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    return base


def psql(socket_dir: Path, database: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["psql", "-h", str(socket_dir), "-p", str(PG_PORT), "-U", "postgres",
                           "-c", command, database], capture_output=True, text=True,
                          timeout=60, check=False)


def start_zabbix_server(base: Path, db_socket: Path, stack: ExitStack) -> None:
    config = base / "zabbix_server.conf"
    (base / "sock").mkdir()
    settings = {
        "LogFile": base / "server.log", "LogFileSize": 0, "PidFile": base / "server.pid",
        "SocketDir": base / "sock", "DBHost": db_socket, "DBPort": PG_PORT, "DBName": "zabbix",
        "DBUser": "postgres", "ListenIP": "127.0.0.1", "ListenPort": free_tcp_port_below_32768(),
        "AllowRoot": 1, "CacheUpdateFrequency": 1, "StartPollers": 2,
        "StartPollersUnreachable": 1, "StartTrappers": 1, "StartPingers": 1,
        "StartDiscoverers": 0, "StartHTTPPollers": 0, "StartLLDProcessors": 1, "Timeout": 5,
        "UnreachableDelay": 1, "UnavailableDelay": 1,
        "StartSNMPTrapper": 1, "SNMPTrapperFile": base / "traps.log",
    }
    config.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    server = Daemon(["zabbix_server", "-f", "-c", str(config)], base / "server.out")
    stack.callback(server.close)
    wait_until(lambda: server.alive() and "configuration syncer" in log_text(base), 60,
               "zabbix_server to start")


def log_text(base: Path) -> str:
    log = base / "server.log"
    return log.read_text(errors="replace") if log.exists() else ""


def start_frontend(base: Path, db_socket: Path, stack: ExitStack) -> str:
    """A copy of Debian's frontend reading a private zabbix.conf.php, served by `php -S`."""
    web = base / "web"
    shutil.copytree(FRONTEND, web, symlinks=True)
    config_class = web / "include" / "classes" / "core" / "CConfigFile.php"
    text = config_class.read_text()
    assert FRONTEND_CONFIG_LINE in text
    config = base / "zabbix.conf.php"
    config_class.write_text(text.replace(FRONTEND_CONFIG_LINE,
                                         f"const CONFIG_FILE_PATH = '{config}';"))
    config.write_text("\n".join([
        "<?php", "$DB['TYPE'] = 'POSTGRESQL';", f"$DB['SERVER'] = '{db_socket}';",
        f"$DB['PORT'] = '{PG_PORT}';", "$DB['DATABASE'] = 'zabbix';",
        "$DB['USER'] = 'postgres';", "$DB['PASSWORD'] = '';", "$DB['SCHEMA'] = '';",
        "$DB['ENCRYPTION'] = false;", "$DB['DOUBLE_IEEE754'] = true;",
        "$ZBX_SERVER_NAME = 'cronwrap tests';", "$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;",
    ]) + "\n")
    port = free_tcp_port_below_32768()
    php = Daemon(["php", "-S", f"127.0.0.1:{port}", "-t", str(web)], base / "php.log", cwd=web)
    stack.callback(php.close)
    url = f"http://127.0.0.1:{port}/api_jsonrpc.php"
    wait_until(lambda: php.alive() and answers(url), 30, "the frontend's API")
    return url


def answers(url: str) -> bool:
    try:
        return isinstance(call(url, "apiinfo.version", {}), str)
    except OSError:
        return False


def call(url: str, method: str, params: Any, auth: str | None = None) -> Any:
    body = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
    if auth is not None:
        body["auth"] = auth
    request = urllib.request.Request(url, json.dumps(body).encode(),
                                     {"Content-Type": "application/json-rpc"})
    with urllib.request.urlopen(request, timeout=120) as response:
        reply = json.load(response)
    assert "error" not in reply, (method, reply["error"])
    return reply["result"]


class ZabbixApi:
    """Zabbix's JSON-RPC API, logged in as the default Admin; `traps` is the server's
    SNMPTrapperFile."""

    def __init__(self, url: str, traps: Path) -> None:
        self.url = url
        self.traps = traps
        self.token = call(url, "user.login", {"username": "Admin", "password": "zabbix"})

    def __call__(self, method: str, **params: Any) -> Any:
        return call(self.url, method, params, self.token)


@pytest.fixture(scope="module")
def zabbix() -> Iterator[ZabbixApi]:
    require((str(PG_BIN / "postgres"), "postgresql"), ("psql", "postgresql-client"),
            ("zabbix_server", "zabbix-server-pgsql"), ("php", "php-cli"),
            (str(FRONTEND / "api_jsonrpc.php"), "zabbix-frontend-php"))
    with ExitStack() as stack:
        base = Path(tempfile.mkdtemp(prefix="cronwrap-zbx-"))
        base.chmod(0o755)  # postgres reaches its cluster below
        stack.callback(shutil.rmtree, base)
        (base / "pg").mkdir()
        db_socket = start_postgres(base / "pg", stack)
        start_zabbix_server(base, db_socket, stack)
        yield ZabbixApi(start_frontend(base, db_socket, stack), base / "traps.log")


def discovered_items(api: ZabbixApi, hostid: str) -> dict[tuple[str, str], dict[str, Any]]:
    """{(job, item): item} of the host's discovered items that have a value."""
    items = api("item.get", hostids=[hostid], filter={"flags": 4},
                output=["name", "key_", "lastvalue", "lastclock", "state", "error"])
    found = {}
    for item in items:
        job, _, what = item["name"].removeprefix("Cron ").partition(": ")
        if item["lastclock"] != "0":
            found[(job, what)] = item
    return found


@pytest.fixture(scope="module")
def cron01(zabbix: ZabbixApi, cron_jobs: CronJobs) -> str:
    """The template imported through the API and linked to a host on the agent; its hostid."""
    assert zabbix("configuration.import", format="yaml", source=TEMPLATE.read_text(),
                  rules=IMPORT_RULES) is True
    (template,) = zabbix("template.get", filter={"host": "cronwrap by SNMP"},
                         output=["templateid"])
    (group,) = zabbix("hostgroup.get", filter={"name": "Linux servers"}, output=["groupid"])
    return zabbix("host.create", host="cron01", groups=[group], templates=[template],
                  macros=[{"macro": k, "value": v} for k, v in HOST_MACROS.items()],
                  interfaces=[{"type": 2, "main": 1, "useip": 1, "ip": cron_jobs.host,
                               "dns": "", "port": str(cron_jobs.port),
                               "details": {"version": 2, "bulk": 1,
                                           "community": "public"}}])["hostids"][0]


def test_template_discovers_polls_and_raises_problems(zabbix: ZabbixApi, cron01: str,
                                                     cron_jobs: CronJobs) -> None:
    hostid = cron01
    jobs = sorted(cron_jobs.status())
    columns = ("runs", "failures", "misses", "last exit status", "state", "last result",
               "last success", "last duration")
    wanted = {(job, column) for job in jobs for column in columns}
    items = wait_until(lambda: (found := discovered_items(zabbix, hostid))
                       and wanted <= set(found) and found, 180,
                       "every job's items discovered and polled")
    # LLD made one entity per job row and no other
    assert {job for job, _ in items} == set(jobs) == {"root/good", "root/bad", "root/late"}
    status = cron_jobs.status()
    for job in ("root/good", "root/bad"):
        agent = status[job]
        assert {column: items[(job, column)]["lastvalue"] for column in
                ("runs", "failures", "misses", "last exit status", "state", "last result")} \
            == {"runs": str(agent["runs"]), "failures": str(agent["failures"]),
                "misses": str(agent["misses"]),
                "last exit status": str(agent["last_exit_status"]),
                "state": str(int(JobState[agent["state"]])),
                "last result": str(int(JobState[agent["last_result"]]))}
    assert items[("root/good", "last success")]["lastvalue"] == str(
        int(status["root/good"]["last_success"]))
    assert items[("root/bad", "last success")]["lastvalue"] == "0"  # never succeeded
    assert items[("root/late", "runs")]["lastvalue"] == "1"
    problems = wait_until(lambda: (names := {p["name"] for p in zabbix(
        "problem.get", hostids=[hostid], output=["name"])})
        >= {"Cron root/bad: failed", "Cron root/late: missed"} and names, 120,
        "the failing and the missed job's problems")
    assert not [name for name in problems if "root/good" in name], problems
    (failed,) = zabbix("trigger.get", hostids=[hostid], filter={"value": 1},
                       search={"description": "root/bad: failed"},
                       output=["description", "priority"])
    assert failed["priority"] == "4"  # High


def trap_items(api: ZabbixApi, hostid: str) -> dict[str, str]:
    items = api("item.get", hostids=[hostid], filter={"type": 17},  # SNMP trap
                output=["key_", "lastvalue"])
    return {item["key_"]: item["lastvalue"] for item in items}


def test_a_failure_trap_reaches_the_trap_item_through_snmptrapd(
        zabbix: ZabbixApi, cron01: str, tmp_path: Path) -> None:
    """docs/nms/zabbix.md's receiving steps: the agent's trap, snmptrapd with CRON-JOBS-MIB
    and the shipped traphandle, Zabbix's SNMP trapper reading its SNMPTrapperFile."""
    handler = NMS / "zabbix" / "cronwrap-zabbix-traphandle"
    port = free_port()
    with rig(tmp_path, agentx=False, listen=True, trap_port=port,
             trapd_config=f"authCommunity log,execute public\n"
                          f"traphandle default {handler} {zabbix.traps}",
             config=f'[[snmp.target]]\naddress = "127.0.0.1:{port}"\ntype = "trap"\n'
                    'community = "public"\n') as sender:
        assert sender.wrap("-n", "nightly", "--", "sh", "-c", "exit 3").returncode == 3
        key = 'snmptrap["cronJob(Failed|TimedOut|Missed|WrapperLost|NotStarted|Overrunning)"]'
        value = wait_until(lambda: trap_items(zabbix, cron01).get(key), 60,
                           "the failure trap in the problem trap item")
    assert "CRON-JOBS-MIB::cronJobFailed" in value
    assert "CRON-JOBS-MIB::cronNotifyJobName.0 nightly" in value.splitlines()
    assert not trap_items(zabbix, cron01)['snmptrap["cronJob(Recovered|Cleared)"]']
    problems = wait_until(lambda: {p["name"] for p in zabbix(
        "problem.get", hostids=[cron01], output=["name"])}
        & {"cronwrap: a cron job raised a problem notification"}, 60, "the trap's problem")
    assert problems
