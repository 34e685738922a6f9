"""The shipped NMS files (packaging/nms/) against their servers' own checkers and the MIB:
promtool's rule checks and unit tests, `icinga2 daemon -C`, `nagios4 -v`, the Zabbix
template's value maps, OIDs and JavaScript (zabbix_js), and the Grafana dashboard's structure."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cronwrap.agent import mibcompile

from .support import NMS, SNMP_YML, STATE_COLUMN, load_yaml, require, table_index

pytestmark = pytest.mark.nms

RULES = NMS / "prometheus" / "cronwrap-rules.yml"
RULES_TEST = NMS / "prometheus" / "cronwrap-rules.test.yml"
TEMPLATE = NMS / "zabbix" / "cronwrap_template.yaml"
DASHBOARD = NMS / "grafana" / "cronwrap-dashboard.json"
NAGIOS_OBJECTS = (NMS / "nagios4" / "cronwrap.cfg", NMS / "nagios4" / "cronwrap-hosts.cfg.example")
TABLE_ENTRY = "1.3.6.1.4.1.8072.9999.9999.71.1.5.1"


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120,
                          check=False, cwd=cwd)


@pytest.fixture(scope="module")
def mib() -> dict[str, Any]:
    return mibcompile.compile_json()


def exporter_metrics() -> set[str]:
    """The series names snmp_exporter's cronwrap module gives (packaging/prometheus/snmp.yml)."""
    return set(re.findall(r"^  - name: (\w+)$", SNMP_YML.read_text(), re.M))



# Prometheus ------------------------------------------------------------------------------------

def test_promtool_checks_the_rules() -> None:
    require(("promtool", "prometheus"))
    done = run("promtool", "check", "rules", RULES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout


def test_promtool_unit_tests_pass_and_cover_every_alert() -> None:
    require(("promtool", "prometheus"))
    done = run("promtool", "test", "rules", RULES_TEST.name, cwd=RULES_TEST.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    alerts = {rule["alert"] for group in load_yaml(RULES)["groups"] for rule in group["rules"]}
    fired = {case["alertname"] for test in load_yaml(RULES_TEST)["tests"]
             for case in test["alert_rule_test"] if case.get("exp_alerts")}
    quiet = {case["alertname"] for test in load_yaml(RULES_TEST)["tests"]
             for case in test["alert_rule_test"] if not case.get("exp_alerts")}
    assert fired == alerts  # each rule is seen firing
    assert quiet <= alerts


@pytest.mark.parametrize(("old", "new"), [
    ('cronjob_last_result="failed"} == 1', 'cronjob_last_result="failed"} == 0'),
    ("increase(cronjob_overlaps[1h]) >= 3", "increase(cronjob_overlaps[1h]) >= 30"),
    ("> 3 * (cronjob_next_expected", "> 5 * (cronjob_next_expected"),
])
def test_promtool_unit_tests_fail_on_a_broken_rule(tmp_path: Path, old: str, new: str) -> None:
    require(("promtool", "prometheus"))
    assert old in RULES.read_text()
    (tmp_path / RULES.name).write_text(RULES.read_text().replace(old, new))
    shutil.copy(RULES_TEST, tmp_path)
    done = run("promtool", "test", "rules", RULES_TEST.name, cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    assert "FAILED" in done.stdout + done.stderr


def test_rules_use_only_the_exporters_series() -> None:
    known = exporter_metrics() | {"up"}  # up: Prometheus' own series of each scrape
    for group in load_yaml(RULES)["groups"]:
        for rule in group["rules"]:
            used = set(re.findall(r'(?<!")\b(cron\w+|up)\b', rule["expr"]))
            assert used and used <= known, (rule["alert"], used - known)
            if rule["alert"] not in ("CronwrapAgentUnreachable", "CronDaemonNotRunning"):
                assert rule["labels"]["cronjob"] == "{{ $labels.owner }}/{{ $labels.name }}"
            assert rule["labels"]["severity"] in {"critical", "warning"}
            assert "{{ $labels.instance }}" in rule["annotations"]["summary"]


# Icinga 2 and Nagios ---------------------------------------------------------------------------

ICINGA_MAIN = """include "/etc/icinga2/constants.conf"
include <itl>
include <plugins>
include "/etc/icinga2/conf.d/templates.conf"
include "{shipped}"
object Host "cron01" {{
  import "generic-host"
  address = "127.0.0.1"
  vars.cronwrap_nrpe = true
  vars.cronwrap_jobs = [ "root/backup", "alice/report" ]
}}
object Host "plain" {{
  import "generic-host"
  address = "127.0.0.2"
}}
"""


def icinga_defines(base: Path) -> list[str]:
    """Private paths for icinga2 (never /var/cache/icinga2, /var/lib/icinga2, /run/icinga2)."""
    paths = {"CacheDir": "cache", "DataDir": "data", "LogDir": "log", "InitRunDir": "run",
             "SpoolDir": "spool"}
    for directory in paths.values():
        (base / directory).mkdir(parents=True, exist_ok=True)
    return [f"-D{name}={base / directory}" for name, directory in paths.items()] + [
        "-DRunAsUser=root", "-DRunAsGroup=root"]


def test_icinga2_validates_the_commands_and_apply_rules(tmp_path: Path) -> None:
    require(("icinga2", "icinga2"))
    main = tmp_path / "icinga2.conf"
    main.write_text(ICINGA_MAIN.format(shipped=NMS / "icinga2" / "cronwrap.conf"))
    done = run("icinga2", "daemon", "-C", "-c", main, *icinga_defines(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:]
    # cron01: "cron jobs" over NRPE and one service per job; "plain" gets none
    assert "Instantiated 3 Services." in done.stdout
    assert "Instantiated 2 Hosts." in done.stdout


def test_icinga2_check_rejects_a_broken_file(tmp_path: Path) -> None:
    require(("icinga2", "icinga2"))
    broken = tmp_path / "cronwrap.conf"
    broken.write_text((NMS / "icinga2" / "cronwrap.conf").read_text().replace(
        'import "snmp"', 'import "no-such-template"'))
    main = tmp_path / "icinga2.conf"
    main.write_text(ICINGA_MAIN.format(shipped=broken))
    done = run("icinga2", "daemon", "-C", "-c", main, *icinga_defines(tmp_path))
    assert done.returncode != 0 and "no-such-template" in done.stdout


@pytest.fixture
def nagios_dir() -> Iterator[Path]:
    """A directory the nagios user can read (nagios4 drops root's privileges to check)."""
    base = Path(tempfile.mkdtemp(prefix="cronwrap-nagios-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


def nagios_main(base: Path, objects: tuple[Path, ...]) -> Path:
    """A private nagios.cfg reading Debian's sample objects and `objects`."""
    spool = base / "checkresults"
    spool.mkdir()
    shutil.chown(spool, "nagios")
    main = base / "nagios.cfg"
    main.write_text("\n".join([
        "cfg_dir=/etc/nagios-plugins/config",
        *(f"cfg_file=/etc/nagios4/objects/{name}.cfg"
          for name in ("templates", "timeperiods", "contacts", "commands")),
        *(f"cfg_file={path}" for path in objects),
        "resource_file=/etc/nagios4/resource.cfg",
        f"check_result_path={spool}",
        f"lock_file={base / 'nagios.pid'}",
        "illegal_macro_output_chars=`~$&|'\"<>",
    ]) + "\n")
    return main


def test_nagios4_verifies_the_objects(nagios_dir: Path) -> None:
    require(("nagios4", "nagios4-core"))
    done = run("nagios4", "-v", nagios_main(nagios_dir, NAGIOS_OBJECTS))
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(r"Total Warnings: +0\n", done.stdout), done.stdout[-2000:]
    assert re.search(r"Checked +4 services\.", done.stdout), done.stdout[-2000:]


def test_nagios4_rejects_an_undefined_command(nagios_dir: Path) -> None:
    require(("nagios4", "nagios4-core"))
    broken = nagios_dir / "cronwrap.cfg"
    broken.write_text(NAGIOS_OBJECTS[0].read_text().replace(
        "check_command           check_cronwrap_job\n", "check_command           nothing\n"))
    done = run("nagios4", "-v", nagios_main(nagios_dir, (broken, NAGIOS_OBJECTS[1])))
    assert done.returncode != 0 and "nothing" in done.stdout


def test_nagios_example_indexes_name_their_jobs() -> None:
    text = NAGIOS_OBJECTS[1].read_text()
    pairs = re.findall(r"_CRONWRAP_JOB +(\S+)/(\S+)\n +_CRONWRAP_INDEX +(\S+)", text)
    assert len(pairs) == 2
    for owner, name, index in pairs:
        assert index == table_index(owner, name)
    assert f"-o {STATE_COLUMN}.$_SERVICECRONWRAP_INDEX$" in NAGIOS_OBJECTS[0].read_text()


# Zabbix ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    export = load_yaml(TEMPLATE)["zabbix_export"]
    assert export["version"] == "6.0"
    (only,) = export["templates"]
    return only


def test_value_maps_are_the_mibs_enumerations(template: dict[str, Any],
                                              mib: dict[str, Any]) -> None:
    maps = {m["name"]: {int(v["value"]): v["newvalue"] for v in m["mappings"]}
            for m in template["valuemaps"]}
    assert set(maps) == {"CRON-JOBS-MIB::cronJobState", "CRON-JOBS-MIB::cronJobLastResult",
                         "CRON-JOBS-MIB::cronDaemonState"}
    for name, mapping in maps.items():
        enum = mib[name.split("::")[1]]["syntax"]["constraints"]["enumeration"]
        assert mapping == {number: label for label, number in enum.items()}


def mib_column(mib: dict[str, Any], oid: str) -> str:
    """The MIB name of a cronJobTable column OID (without the index)."""
    names = {doc["oid"]: name for name, doc in mib.items() if isinstance(doc, dict)
             and "oid" in doc}
    return names[oid]


def test_item_prototypes_poll_the_columns_they_describe(template: dict[str, Any],
                                                        mib: dict[str, Any]) -> None:
    (rule,) = template["discovery_rules"]
    assert rule["snmp_oid"] == f"discovery[{{#STATE}},{STATE_COLUMN}]"
    polled = {}
    for item in rule["item_prototypes"]:
        column, suffix = item["snmp_oid"].rsplit(".", 1)
        assert suffix == "{#SNMPINDEX}" and item["key"].endswith("[{#SNMPINDEX}]")
        name = mib_column(mib, column)
        assert item["description"].startswith(f"CRON-JOBS-MIB::{name}")
        assert mib[name]["maxaccess"] == "read-only"
        polled[name] = item["key"]
    assert set(polled) >= {"cronJobRuns", "cronJobFailures", "cronJobState",
                           "cronJobLastResult", "cronJobLastExitStatus", "cronJobLastSuccess",
                           "cronJobLastDuration", "cronJobMisses"}
    for name in ("cronJobState", "cronJobLastResult"):
        (item,) = [i for i in rule["item_prototypes"] if i["key"] == polled[name]]
        assert item["valuemap"]["name"] == f"CRON-JOBS-MIB::{name}"


def test_trigger_prototypes_and_their_severities(template: dict[str, Any]) -> None:
    (rule,) = template["discovery_rules"]
    severities = {t["name"].removeprefix("Cron {#OWNER}/{#NAME}: "): t["priority"]
                  for t in rule["trigger_prototypes"]}
    assert severities == {
        "failed": "HIGH", "missed": "AVERAGE", "timed out": "AVERAGE",
        "wrapper lost": "HIGH", "overlapping repeatedly": "WARNING",
        "duration anomaly": "WARNING",
        "no success within {$CRONJOB.NOSUCCESS.PERIODS} expected periods": "HIGH"}
    keys = {item["key"] for item in rule["item_prototypes"]}
    for trigger in rule["trigger_prototypes"]:
        used = set(re.findall(r"/cronwrap by SNMP/([^)]+?)(?:,[^)]*)?\)", trigger["expression"]))
        assert used and used <= keys, trigger["name"]
    macros = {m["macro"] for m in template["macros"]}
    for text in json.dumps(template).split('"'):
        assert set(re.findall(r"\{\$[A-Z.]+\}", text)) <= macros


def javascript(template: dict[str, Any], key: str) -> str:
    items = template["discovery_rules"][0]["item_prototypes"] + template["discovery_rules"]
    (item,) = [i for i in items if i["key"].startswith(key)]
    (step,) = item["preprocessing"]
    assert step["type"] == "JAVASCRIPT"
    return step["parameters"][0]


def zabbix_js(tmp_path: Path, script: str, value: str) -> str:
    require(("zabbix_js", "zabbix-server-pgsql"))
    path = tmp_path / "step.js"
    path.write_text(script)
    done = run("zabbix_js", "-s", path, "-p", value)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def test_discovery_decodes_owner_and_name_from_the_index(template: dict[str, Any],
                                                         tmp_path: Path) -> None:
    rows = [{"{#SNMPINDEX}": table_index(owner, name), "{#STATE}": "2"}
            for owner, name in (("root", "backup"), ("1001", "a.b_c-9"))]
    out = json.loads(zabbix_js(tmp_path, javascript(template, "cronjob.discovery"),
                               json.dumps(rows)))
    assert [(row["{#OWNER}"], row["{#NAME}"]) for row in out] == [
        ("root", "backup"), ("1001", "a.b_c-9")]


@pytest.mark.parametrize(("value", "expected"), [
    ("07 EA 0B 19 05 00 00 00 2B 00 00", "1795582800"),   # hex, no MIB loaded: UTC
    ("07 EA 0B 19 07 00 00 00 2B 02 00", "1795582800"),   # 07:00 at +02:00
    ("2026-11-25,5:0:0.0,+0:0", "1795582800"),           # as printed with the MIB loaded
    ("2026-11-25,0:0:0.0,-5:0", "1795582800"),
    ("", "0"),                                           # zero-length: never
])
def test_date_and_time_becomes_a_unix_time(template: dict[str, Any], tmp_path: Path,
                                           value: str, expected: str) -> None:
    assert zabbix_js(tmp_path, javascript(template, "cronjob.last_success"), value) == expected


# Grafana ---------------------------------------------------------------------------------------

def test_dashboard_structure() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    known = exporter_metrics() | {"up"}
    for panel in panels:
        grid = panel["gridPos"]
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert grid["x"] + grid["w"] <= 24 and not area & cells, panel["title"]
        cells |= area
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs)
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
            used = set(re.findall(r"\b([a-z_]+)(?=\{)", target["expr"]))
            assert used and used <= known, (panel["title"], used - known)
            assert 'instance=~"$instance"' in target["expr"]
