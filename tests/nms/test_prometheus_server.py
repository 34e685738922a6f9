"""The shipped Prometheus rules in the real Prometheus (Debian's 2.42), scraping Debian's
snmp_exporter with the cronwrap module, which walks a real agent whose jobs ran through the
real wrapper: the rules fire for the failing and the missed job, never for the good one."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netsnmp import free_port, wait_until
from test_prometheus import SNMP_YML, Exporter

from .conftest import BAD_EXIT, CronJobs
from .support import NMS, require

pytestmark = pytest.mark.nms

RULES = NMS / "prometheus" / "cronwrap-rules.yml"
DASHBOARD = NMS / "grafana" / "cronwrap-dashboard.json"
# scrape_timeout below snmp_exporter's own (5 s x 3 retries): an agent that does not answer
# makes the scrape fail within one interval, so up == 0.
CONFIG = """global:
  scrape_interval: 2s
  scrape_timeout: 2s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: cronwrap
    metrics_path: /snmp
    params:
      module: [cronwrap]
    static_configs:
      - targets: ['{agent}', '{dead}']
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:{exporter}
"""


class Prometheus:
    """The real prometheus on a loopback port with a private TSDB, stopped on close."""

    def __init__(self, base: Path, config: str) -> None:
        require(("prometheus", "prometheus"))
        self.port = free_port(socket.SOCK_STREAM)
        (base / "prometheus.yml").write_text(config)
        self.log = base / "prometheus.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["prometheus", f"--config.file={base / 'prometheus.yml'}",
                 f"--storage.tsdb.path={base / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        wait_until(self._ready, 60, "prometheus to be ready")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited {self.proc.returncode}: "
                               f"{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2):
                return True
        except (urllib.error.URLError, ConnectionError):
            return False

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/{path}",
                                    timeout=30) as response:
            reply = json.load(response)
        assert reply["status"] == "success", reply
        return reply["data"]

    def query(self, expression: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        params = urllib.parse.urlencode({"query": expression})
        data = self.api(f"query?{params}")
        assert data["resultType"] == "vector", data
        return data["result"]

    def alerts(self) -> list[dict[str, Any]]:
        return self.api("alerts")["alerts"]

    def evaluations(self) -> str:
        """When the rule group was last evaluated (it changes every evaluation)."""
        (group,) = self.api("rules")["groups"]
        return group["lastEvaluation"]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def prometheus(cron_jobs: CronJobs, tmp_path: Path) -> Iterator[Prometheus]:
    require(("prometheus-snmp-exporter", "prometheus-snmp-exporter"))
    exporter = Exporter(SNMP_YML, tmp_path / "snmp_exporter.log")
    dead = f"127.0.0.1:{free_port()}"  # nothing answers SNMP there
    config = CONFIG.format(rules=RULES, agent=cron_jobs.rig.listener, dead=dead,
                           exporter=exporter.port)
    try:
        running = Prometheus(tmp_path, config)
        try:
            yield running
        finally:
            running.close()
    finally:
        exporter.close()


def by_job(alerts: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(a["labels"]["alertname"], a["labels"].get("cronjob", a["labels"]["instance"])): a
            for a in alerts}


def test_shipped_rules_fire_for_the_failing_and_missed_jobs_only(
        prometheus: Prometheus, cron_jobs: CronJobs) -> None:
    host = cron_jobs.rig.listener
    wanted = {("CronJobFailed", "root/bad"), ("CronJobMissed", "root/late")}
    firing = wait_until(
        lambda: (found := by_job([a for a in prometheus.alerts() if a["state"] == "firing"]))
        and wanted <= set(found) and found, 90, "the failing and the missed job's alerts")
    failed = firing[("CronJobFailed", "root/bad")]
    assert failed["labels"] | {"cronjob_last_result": "failed"} == {
        "alertname": "CronJobFailed", "severity": "critical", "cronjob": "root/bad",
        "owner": "root", "name": "bad", "job": "cronwrap", "instance": host,
        "cronjob_last_result": "failed"}
    assert failed["annotations"]["summary"] == f"Cron job root/bad on {host} failed"
    assert firing[("CronJobMissed", "root/late")]["labels"]["severity"] == "warning"
    # a few more evaluations, then: nothing about root/good, ever, and the agent answers
    for _ in range(3):
        seen = prometheus.evaluations()
        wait_until(lambda seen=seen: prometheus.evaluations() != seen, 30,
                   "one more rule evaluation")
    alerts = by_job(prometheus.alerts())
    assert not [key for key in alerts if key[1] == "root/good"], alerts
    assert ("CronwrapAgentUnreachable", host) not in alerts
    # root/bad exited BAD_EXIT twice: not yet 3 periods without a success
    assert ("CronJobNoRecentSuccess", "root/bad") not in alerts
    assert cron_jobs.status()["root/bad"]["last_exit_status"] == BAD_EXIT


def test_an_agent_that_does_not_answer_is_pending_unreachable(prometheus: Prometheus,
                                                              cron_jobs: CronJobs) -> None:
    def pending() -> list[dict[str, Any]]:
        return [a for a in prometheus.alerts() if a["labels"]["alertname"]
                == "CronwrapAgentUnreachable"]

    (alert,) = wait_until(pending, 90, "CronwrapAgentUnreachable for the dead target")
    assert alert["state"] == "pending"  # for: 2m
    assert alert["labels"]["instance"] != cron_jobs.rig.listener
    assert alert["labels"]["severity"] == "critical"


def test_dashboard_queries_answer_from_the_real_series(prometheus: Prometheus,
                                                       cron_jobs: CronJobs) -> None:
    """Every Grafana panel's query runs in Prometheus ($instance: the agent); the stat and
    table panels show the agent's jobs."""
    instance = cron_jobs.rig.listener
    wait_until(lambda: prometheus.query(f'cronjob_count{{instance="{instance}"}}'), 60,
               "a scrape of the agent")
    panels = {panel["title"]: [target["expr"].replace("$instance", instance)
                               for target in panel["targets"]]
              for panel in json.loads(DASHBOARD.read_text())["panels"]}
    results = {title: [prometheus.query(expr) for expr in exprs]
               for title, exprs in panels.items()}

    def value(title: str) -> float:
        ((sample,),) = results[title]
        return float(sample["value"][1])

    assert value("Jobs failing now") == 2  # root/bad failed, root/late missed
    assert value("Jobs monitored") == 3
    assert value("Agents not answering") == 0  # the dead target is not this $instance
    ((*table,),) = results["Jobs and their state"]
    assert {(row["metric"]["owner"], row["metric"]["name"], row["metric"]["cronjob_state"])
            for row in table} == {("root", "good", "ok"), ("root", "bad", "failed"),
                                  ("root", "late", "missed")}
