"""Helpers of the NMS suite: where the shipped files are, package checks, YAML, table indexes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NMS = REPO / "packaging" / "nms"
SNMP_YML = REPO / "packaging" / "prometheus" / "snmp.yml"
IN_CI = os.environ.get("CI") == "true"
STATE_COLUMN = "1.3.6.1.4.1.8072.9999.9999.71.1.5.1.13"
# Zabbix's frontend parses YAML with its bundled Symfony component: the parser of its imports.
SYMFONY_AUTOLOAD = Path("/usr/share/zabbix/vendor/autoload.php")
PHP_YAML_TO_JSON = ("require $argv[1]; "
                    "echo json_encode(Symfony\\Component\\Yaml\\Yaml::parseFile($argv[2]));")


def require(*tools: tuple[str, str]) -> None:
    """Skip (fail in CI) unless every (program or path, Debian package) is installed."""
    for program, package in tools:
        if shutil.which(program) is None and not Path(program).exists():
            reason = f"{program} not found (apt-get install {package})"
            if IN_CI:
                pytest.fail(f"the NMS suite must run in CI but cannot: {reason}", pytrace=False)
            pytest.skip(reason)


def load_yaml(path: Path) -> Any:
    """A YAML file as Zabbix's frontend reads it (php and zabbix-frontend-php's Symfony YAML)."""
    require(("php", "php-cli"), (str(SYMFONY_AUTOLOAD), "zabbix-frontend-php"))
    done = subprocess.run(["php", "-r", PHP_YAML_TO_JSON, str(SYMFONY_AUTOLOAD), str(path)],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def table_index(owner: str, name: str) -> str:
    """A job's cronJobTable index: each string as its length, then its characters' codes."""
    return ".".join(str(n) for text in (owner, name) for n in (len(text), *text.encode()))


class Daemon:
    """A server in the foreground and its own session, its output in a file; `close` stops
    its whole process group (zabbix_server and nrpe fork workers)."""

    def __init__(self, argv: list[str], log: Path, user: str | None = None,
                 cwd: Path | None = None) -> None:
        self.log = log
        as_user = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"]
        with log.open("wb") as out:
            self.proc = subprocess.Popen([*(as_user if user else []), *argv], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, cwd=cwd)

    def alive(self) -> bool:
        """True while it runs; an AssertionError with its last output once it has exited."""
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.proc.args} exited {self.proc.returncode}: "
                                 f"{self.log.read_text(errors='replace')[-3000:]}")
        return True

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            self.proc.wait()
