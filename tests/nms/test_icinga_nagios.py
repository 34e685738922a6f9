"""The shipped NRPE command, Icinga 2 and Nagios 4 configurations run by the real daemons
(Debian's nrpe, icinga2, nagios4) against a real agent whose jobs ran through the real
wrapper: each check's state, as the daemon recorded it, for a failing, a missed and a good job."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from netsnmp import free_port, wait_until

from .conftest import CronJobs
from .support import NMS, Daemon, require, table_index

pytestmark = pytest.mark.nms

CHECK_NRPE = "/usr/lib/nagios/plugins/check_nrpe"
SHIPPED_NRPE_LINE = "command[check_cron_jobs]=/usr/bin/cronwrap status --nagios"
# What each service must end in: (Nagios exit code / state, start of the plugin's output).
EXPECTED = {
    "cron jobs": (2, "CRONWRAP CRITICAL - 2 of 3 jobs need attention: root/bad failed, "
                     "root/late missed"),
    "cron root/bad": (2, "SNMP CRITICAL - root/bad *2*"),
    "cron root/late": (1, "SNMP WARNING - root/late *6*"),
    "cron root/good": (0, "SNMP OK - root/good 1"),
}


@pytest.fixture(scope="module")
def shared_dir() -> Iterator[Path]:
    """A directory the nagios user can read (the daemons drop root's privileges)."""
    base = Path(tempfile.mkdtemp(prefix="cronwrap-nagios-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


def cronwrap_for_nagios(base: Path) -> Path:
    """This tree's cronwrap as the nagios user can run it: Debian's python3 (as the package's
    /usr/bin/cronwrap has it) with the virtualenv's packages; the virtualenv's own python may
    live where nagios cannot reach (e.g. under /root)."""
    require(("/usr/bin/python3", "python3"))
    launcher = base / "cronwrap"
    launcher.write_text("\n".join([
        "#!/usr/bin/python3", "import site", "import sys",
        f"site.addsitedir({sysconfig.get_paths()['purelib']!r})",
        "from cronwrap.wrapper.cli import main", "sys.exit(main())"]) + "\n")
    launcher.chmod(0o755)
    return launcher


def nrpe_config(base: Path, port: int, socket_path: Path) -> Path:
    """nrpe.cfg with the shipped command, its /usr/bin/cronwrap this tree's, on the test's agent
    (NRPE clears the environment: the socket is an option), and one command for root/good."""
    shipped = (NMS / "nrpe" / "cronwrap.cfg").read_text()
    assert SHIPPED_NRPE_LINE in shipped.splitlines()
    ours = f"{cronwrap_for_nagios(base)} status --nagios --socket {socket_path}"
    commands = [line.replace("/usr/bin/cronwrap status --nagios", ours)
                for line in shipped.splitlines() if line.startswith("command[")]
    path = base / "nrpe.cfg"
    path.write_text("\n".join([
        "server_address=127.0.0.1", f"server_port={port}", "nrpe_user=nagios",
        "nrpe_group=nagios", "allowed_hosts=127.0.0.1", f"pid_file={base / 'nrpe.pid'}",
        *commands, f"command[check_cron_good]={ours} root/good"]) + "\n")
    return path


@pytest.fixture(scope="module")
def nrpe(cron_jobs: CronJobs, shared_dir: Path) -> Iterator[int]:
    """The real nrpe daemon on a loopback port; yields the port."""
    require(("nrpe", "nagios-nrpe-server"), (CHECK_NRPE, "nagios-nrpe-plugin"))
    port = free_port(socket.SOCK_STREAM)
    base = shared_dir / "nrpe"
    base.mkdir()
    daemon = Daemon(["nrpe", "-c", str(nrpe_config(base, port, cron_jobs.rig.agent.socket)),
                     "-f"], base / "nrpe.log")
    try:
        wait_until(lambda: daemon.alive() and listening(port), 30, "nrpe to listen")
        yield port
    finally:
        daemon.close()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def check_nrpe(port: int, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHECK_NRPE, "-H", "127.0.0.1", "-p", str(port), "-c", command],
                          capture_output=True, text=True, timeout=60, check=False)


def test_nrpe_runs_the_shipped_command_for_the_host_summary(nrpe: int) -> None:
    summary = check_nrpe(nrpe, "check_cron_jobs")
    code, output = EXPECTED["cron jobs"]
    assert (summary.returncode, summary.stdout.split(" | ")[0]) == (code, output)
    assert "jobs=3;;;0 ok=1;;;0 failed=1;;;0" in summary.stdout
    good = check_nrpe(nrpe, "check_cron_good")
    assert good.returncode == 0 and good.stdout.startswith("CRONWRAP OK"), good.stdout


# Nagios 4 --------------------------------------------------------------------------------------

def nagios_objects(jobs: CronJobs, nrpe_port: int) -> str:
    """The host and services as cronwrap-hosts.cfg.example has them, on the test's agent."""
    example = (NMS / "nagios4" / "cronwrap-hosts.cfg.example").read_text()
    host = re.search(r"define host \{.*?\}", example, re.S)
    assert host is not None
    services = [
        "define service {\n    use cronwrap-jobs\n    host_name cron01\n}",
        *(f"define service {{\n    use cronwrap-job\n    host_name cron01\n"
          f"    service_description cron root/{name}\n    _CRONWRAP_JOB root/{name}\n"
          f"    _CRONWRAP_INDEX {index}\n}}"
          for name, index in jobs_and_indexes(("bad", "late", "good")))]
    return "\n".join([
        host.group(0).replace("192.0.2.10", jobs.host).replace(
            "}", f"    _SNMP_PORT {jobs.port}\n    _NRPE_PORT {nrpe_port}\n"
                 "    check_command return-ok\n}"),
        *services]) + "\n"


def jobs_and_indexes(names: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(name, table_index("root", name)) for name in names]


def nagios_main(base: Path, objects: Path) -> Path:
    """A private nagios.cfg: Debian's sample objects, the shipped ones, checks at once."""
    main = base / "nagios.cfg"
    main.write_text("\n".join([
        "cfg_dir=/etc/nagios-plugins/config",
        *(f"cfg_file=/etc/nagios4/objects/{name}.cfg"
          for name in ("templates", "timeperiods", "contacts", "commands")),
        f"cfg_file={NMS / 'nagios4' / 'cronwrap.cfg'}", f"cfg_file={objects}",
        "resource_file=/etc/nagios4/resource.cfg",
        *(f"{key}={base / name}" for key, name in (
            ("log_file", "nagios.log"), ("status_file", "status.dat"),
            ("object_cache_file", "objects.cache"), ("temp_file", "nagios.tmp"),
            ("temp_path", "tmp"), ("check_result_path", "checkresults"),
            ("lock_file", "nagios.pid"), ("state_retention_file", "retention.dat"),
            ("command_file", "nagios.cmd"))),
        "retain_state_information=0", "use_syslog=0", "enable_notifications=0",
        "check_external_commands=0", "status_update_interval=1",
        "service_inter_check_delay_method=n", "host_inter_check_delay_method=n",
        "max_service_check_spread=1", "check_result_reaper_frequency=1",
        "illegal_macro_output_chars=`~$&|'\"<>",
    ]) + "\n")
    return main


def service_status(status: Path) -> dict[str, tuple[int, str]]:
    """status.dat's checked services: {description: (current_state, plugin_output)}."""
    found = {}
    text = status.read_text(errors="replace") if status.exists() else ""
    for block in re.findall(r"servicestatus \{(.*?)\}", text, re.S):
        fields = dict(re.findall(r"^\s*(\w+)=(.*)$", block, re.M))
        if fields.get("has_been_checked") == "1":
            found[fields["service_description"]] = (int(fields["current_state"]),
                                                    fields["plugin_output"])
    return found


def test_nagios_runs_the_shipped_checks(cron_jobs: CronJobs, nrpe: int,
                                        shared_dir: Path) -> None:
    require(("nagios4", "nagios4-core"), ("/usr/lib/nagios/plugins/check_snmp",
                                          "monitoring-plugins-standard"))
    base = shared_dir / "nagios"
    for directory in (base, base / "tmp", base / "checkresults"):
        directory.mkdir()
        shutil.chown(directory, "nagios", "nagios")
    objects = base / "cron01.cfg"
    objects.write_text(nagios_objects(cron_jobs, nrpe))
    daemon = Daemon(["nagios4", str(nagios_main(base, objects))], base / "nagios4.out")
    try:
        states = wait_until(lambda: daemon.alive() and (
            found := service_status(base / "status.dat")) and len(found) == len(EXPECTED)
            and found, 120, "nagios to check every service")
    finally:
        daemon.close()
    assert {name: (state, output.split(" | ")[0][:len(EXPECTED[name][1])])
            for name, (state, output) in states.items()} == EXPECTED


# Icinga 2 --------------------------------------------------------------------------------------

ICINGA_MAIN = """include "/etc/icinga2/constants.conf"
include <itl>
include <plugins>
template Host "generic-host" {{
  check_command = "dummy"
}}
template Service "generic-service" {{
  max_check_attempts = 1
  check_interval = 2s
  retry_interval = 2s
}}
include "{shipped}"
object IcingaApplication "app" {{ }}
object CheckerComponent "checker" {{ }}
object PerfdataWriter "states" {{
  service_perfdata_path = "{base}/service-perfdata"
  service_temp_path = "{base}/service-perfdata.tmp"
  host_perfdata_path = "{base}/host-perfdata"
  host_temp_path = "{base}/host-perfdata.tmp"
  service_format_template = "{line}"
  rotation_interval = 1s
}}
object Host "cron01" {{
  import "generic-host"
  address = "{address}"
  vars.snmp_port = {snmp_port}
  vars.nrpe_port = {nrpe_port}
  vars.cronwrap_nrpe = true
  vars.cronwrap_jobs = [ "root/bad", "root/late", "root/good" ]
}}
"""


def icinga_states(base: Path) -> dict[str, tuple[int, str]]:
    """The last state and output of each service, from the PerfdataWriter's rotated files."""
    found = {}
    for path in sorted(base.glob("service-perfdata*")):
        for line in path.read_text(errors="replace").splitlines():
            fields = dict(part.split("::", 1) for part in line.split("\t") if "::" in part)
            if "SERVICE" in fields:
                found[fields["SERVICE"]] = (int(fields["STATE"]), fields["OUTPUT"])
    return found


def test_icinga2_runs_the_shipped_checks(cron_jobs: CronJobs, nrpe: int,
                                         shared_dir: Path) -> None:
    require(("icinga2", "icinga2"), ("/usr/lib/nagios/plugins/check_snmp",
                                     "monitoring-plugins-standard"))
    base = shared_dir / "icinga2"
    base.mkdir()
    main = base / "icinga2.conf"
    main.write_text(ICINGA_MAIN.format(
        shipped=NMS / "icinga2" / "cronwrap.conf", base=base, address=cron_jobs.host,
        line="SERVICE::$service.name$\\tSTATE::$service.state_id$\\tOUTPUT::$service.output$",
        snmp_port=cron_jobs.port, nrpe_port=nrpe))
    defines = []
    for name in ("CacheDir", "DataDir", "LogDir", "InitRunDir", "SpoolDir"):
        (base / name).mkdir()
        defines.append(f"-D{name}={base / name}")
    daemon = Daemon(["icinga2", "daemon", "-c", str(main), *defines, "-DRunAsUser=root",
                     "-DRunAsGroup=root"], base / "icinga2.out")
    try:
        states = wait_until(lambda: daemon.alive() and (found := icinga_states(base))
                            and len(found) == len(EXPECTED) and found, 120,
                            "icinga2 to check every service")
    finally:
        daemon.close()
    assert {name: (state, output[:len(EXPECTED[name][1])])
            for name, (state, output) in states.items()} == EXPECTED
