"""Every shell command README.md and docs/ show is run in a sandbox, or listed here.

Conventions the documents follow (checked below):

- a command a user types is in a fenced ```sh block, one command per line (a trailing `\\`
  continues it); `# exits N` in its comment states a non-zero exit status, else 0 is expected;
- a ```text block right after a ```sh block is output: every line of it (up to a `...`) must be
  in what the block's last command printed;
- configuration is in ```toml, ```ini, ```crontab, ```json or ```text blocks: TOML must parse and
  be accepted by what reads it (the agent's --check-config, or the wrapper's config loader),
  crontab lines must have a valid schedule and their cronwrap command must run with the job
  replaced by `true`; there are no unlabelled or indented code blocks that could hide a command.

The sandbox, one per document (its commands run in order in it): a temporary HOME whose
cronwrap.toml points logs and locks into it and whose ~/.snmp/snmp.conf finds the MIB in mibs/
(where the package would have put it) and holds the document's own snmp.conf lines; a real
cronwrap-agent on private socket, spool and state directories serving SNMP on a free loopback
port (`backup` has run twice when the commands start); a private snmptrapd; and,
for a document with snmpd.conf lines, a private snmpd configured with them.
Commands that name system paths, hosts or ports are rewritten by SUBSTITUTIONS and PORTS;
`cronwrap-agent` commands are started on private paths, used by the block's later commands,
and must exit 0 on SIGTERM; commands that cannot run here are in NOT_RUN with the reason. Any
other command is run: a new command shown in a document is run from then on, and fails this
test if it does not work.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_support import Agent, wait_for
from croniter import croniter
from cronwrap.wrapper.config import Settings, load_config, resolve_mail
from netsnmp import MIBS_DIR, REPO, SnmpdMaster, Snmptrapd, free_port, have_netsnmp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed"),
]

# Documents whose commands are not run here, and why. Every other Markdown document is.
NOT_RUN_DOCUMENTS = {
    "docs/benchmarks.md": "benchmark commands: run by hand, never by the tests "
        "(tests/test_bench_runner.py checks the runner)",
    "docs/bench-walk.md": "a benchmark: run by hand, never by the tests",
    "docs/wrapper-overhead.md": "a benchmark: run by hand, never by the tests",
    "docs/testing.md": "commands that run tests: CI runs the suite (.ci/run)",
    "docs/nms.md": "needs the NMS servers; tests/test_nms.py and tests/test_prometheus.py run "
        "what it marks tested",
    "docs/protocol.md": "wire examples, not commands (tests/test_events.py checks the codec)",
    **{str(page.relative_to(REPO)): "the NMS servers' own configuration and commands: tests/nms/ "
       "runs them against real servers" for page in (REPO / "docs" / "nms").glob("*.md")},
}
DOCUMENTS = ("README.md", *sorted(
    name for name in (str(path.relative_to(REPO)) for path in (REPO / "docs").rglob("*.md"))
    if name not in NOT_RUN_DOCUMENTS))
LANGUAGES = {"sh", "text", "toml", "ini", "crontab", "json"}
BIN = Path(sys.executable).parent

# Shown commands that are not run, and why. Keys are the command as shown, comment removed.
NOT_RUN = {
    "bash scripts/demo": "README's opening command: tests/test_demo.py and CI run it",
    "bash scripts/demo --keep-running": "tests/test_demo.py runs it and stops what it leaves",
    "snmptrapd -f -Lo -M +/path/to/mibs -m CRON-JOBS-MIB ...": "`...` stands for the receiver's "
        "own options; tests/netsnmp.py runs snmptrapd with these MIB options",
    ".venv/bin/python -m pytest -q -n auto --dist loadfile -m not host and not nms":
        "the test suite itself: CI runs it (.ci/run, test_readme.py)",
    ".venv/bin/python -m pytest -q -m host or nms": "the booted-host and NMS-server suites: "
        "CI runs them (.ci/run, test_readme.py)",
    "bash scripts/setup": "installs Debian packages and rebuilds .venv: CI runs it first (.ci/run)",
    "bash scripts/build-deb": "builds the Debian package (root for its build tools, PyPI): "
        "tests/test_deb.py checks what it builds, tests/host/ installs it",
    "apt install ./dist/cronwrap_*.deb": "changes the host's packages: tests/host/ installs "
        "the package in a booted Debian 13 and 12",
    "cp /usr/share/cronwrap/snmpd.conf /etc/snmp/snmpd.conf.d/cronwrap.conf": "changes the "
        "host's snmpd: tests/host/ does it in booted Debian 13 and 12; test_deb.py checks it",
    "systemctl restart snmpd": "needs systemd as PID 1: tests/host/ runs it in a booted Debian",
    "systemctl restart cron": "needs systemd as PID 1: tests/test_cronlog_cron.py runs Debian's "
        "cron with -L 15 in a private mount namespace",
    "/opt/cronwrap/bin/pip install ./cronwrap_snmp-0.1.0-py3-none-any.whl":
        "downloads the dependencies from PyPI; tests/test_distribution.py builds and checks the "
        "wheel, the tests use the clone's editable install",
    "systemd-tmpfiles --create /etc/tmpfiles.d/cronwrap.conf": "creates /run/cronwrap and "
        "/var/... on the host; tests/test_systemd.py checks the file",
    "systemctl daemon-reload": "needs systemd as PID 1; tests/test_systemd.py runs the units",
    "systemctl enable --now cronwrap-agent.socket cronwrap-agent.service":
        "needs systemd as PID 1; tests/test_systemd.py runs the units",
    ".venv/bin/python bench/wrapper_overhead 40": "a benchmark: run by hand, never by the tests",
}

# Literal text in a command (and in its shown output) -> what it becomes in the sandbox.
SUBSTITUTIONS = {
    "/path/to/cronwrap/mibs": "{mibs}",                 # the clone's mibs/
    "/path/to/mibs": "{mibs}",
    " +DIR ": " +{mibs} ",
    "/tmp/out": "{base}/out",
    "localhost ": "127.0.0.1:161 ",                     # the host's SNMP agent: see PORTS
    "/etc/cronwrap/agent.toml": "{etc}/cronwrap/agent.toml",  # docs/agent-snmp.toml.example, 0600
    "/etc/systemd/system/": "{etc}/systemd/system/",
    "/etc/tmpfiles.d/": "{etc}/tmpfiles.d/",
    "nms.example.net": "127.0.0.1:{trap_port}",         # the private snmptrapd
    "/var/agentx/master": "{agentx_socket}",            # the private snmpd's AgentX socket
    "HOST:161": "127.0.0.1:{configured_port}",          # an agent run with the example config
    "./script": "{base}/script",                        # a script that prints its environment
    "/opt/cronwrap": "{base}/opt/cronwrap",
    "/usr/local/bin/": "{base}/usr/local/bin/",
}
# udp ports in commands: 161 and 1161 are the sandbox agent's free port, until a command in the
# same block starts an agent of its own, which then gets a fresh free port for each.
PORTS = re.compile(r"(127\.0\.0\.1|0\.0\.0\.0|\[::1?\]):(1161|161)\b")
DAEMON_QUERIES = ("--check-config", "--version", "--help", "-h", "--print-mib")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    lang: str
    file: str  # what the block is, when its opening line names it: ```text snmpd.conf
    text: str
    output: str | None  # the ```text block right after it, if any

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(doc: str) -> list[Block]:
    text = (REPO / doc).read_text()
    found = list(re.finditer(r"^```(\w*)[ \t]*(\S*)\n(.*?)^```[ \t]*$", text, re.M | re.S))
    result = []
    for i, match in enumerate(found):
        following = found[i + 1] if i + 1 < len(found) else None
        output = None
        if (following is not None and following.group(1) == "text"
                and not text[match.end():following.start()].strip()):
            output = following.group(3)
        line = text.count("\n", 0, match.start()) + 1
        result.append(Block(doc, line, match.group(1), match.group(2), match.group(3), output))
    return result


def commands(block: Block) -> list[str]:
    """The block's commands, continuation lines joined, comment-only lines dropped."""
    joined = re.sub(r"\\\n\s*", "", block.text)
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def shown(command: str) -> str:
    """The command without its trailing comment, as NOT_RUN names it."""
    return " ".join(shlex.split(command, comments=True))


def expected_status(command: str) -> int:
    comment = command.partition(" #")[2]
    match = re.search(r"\bexits? (\d+)", comment)
    return int(match.group(1)) if match else 0


ALL = [b for doc in DOCUMENTS for b in blocks(doc)]
README_OPENING = next(b for b in ALL if b.doc == "README.md" and b.lang == "sh")
SH = [b for b in ALL if b.lang == "sh" and b is not README_OPENING]
CRONTAB = [b for b in ALL if b.lang == "crontab"]
TOML = [b for b in ALL if b.lang == "toml"]


def config_text(doc: str, file: str) -> str:
    """The document's blocks labelled `file` (```text snmpd.conf), joined."""
    return "".join(b.text for b in ALL if b.doc == doc and b.file == file)


class Sandbox:
    """The private daemons, directories and environment the documents' commands run in."""

    def __init__(self, base: Path, stack: ExitStack, doc: str) -> None:
        self.base, self.stack, self.doc = base, stack, doc
        self.etc = base / "etc"
        for sub in ("cronwrap", "systemd/system", "tmpfiles.d"):
            (self.etc / sub).mkdir(parents=True)
        (base / "usr" / "local" / "bin").mkdir(parents=True)
        agent_toml = self.etc / "cronwrap" / "agent.toml"
        agent_toml.write_text((REPO / "docs" / "agent-snmp.toml.example").read_text())
        agent_toml.chmod(0o600)
        script = base / "script"
        script.write_text("#!/bin/sh\nenv\n")
        script.chmod(0o755)
        self.home = base / "home"
        user_config = self.home / ".config" / "cronwrap" / "cronwrap.toml"
        user_config.parent.mkdir(parents=True)
        user_config.write_text(f'log_dir = "{base}/logs"\nlock_dir = "{base}/locks"\n')
        (self.home / ".snmp").mkdir()
        # mibs/ stands for /usr/share/snmp/mibs, where the Debian package puts the MIB
        (self.home / ".snmp" / "snmp.conf").write_text(f"mibdirs +{MIBS_DIR}\n" + (
            self.substitute_paths(config_text(doc, "snmp.conf"))))
        self.trapd = stack.enter_context(Snmptrapd(base / "trapd", mibs=True))
        self.master: SnmpdMaster | None = None
        self.port = free_port()
        listen = ["--listen", f"udp:127.0.0.1:{self.port}"]
        # the document's snmpd.conf serves its queries, unless it starts a subagent itself
        subagent = any(is_daemon(c) and "--agentx" in c for b in SH if b.doc == doc
                       for c in commands(b))
        if config_text(doc, "snmpd.conf") and not subagent:
            listen += ["--agentx", f"unix:{self.agentx_master().agentx_socket}"]
        self.agent = self.start_agent("agent", listen)
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(("XDG_", "SNMP", "MIB"))}
        self.env.update(HOME=str(self.home), PATH=f"{BIN}:{os.environ['PATH']}",
                        CRONWRAP_SOCKET=str(self.agent.socket),
                        CRONWRAP_SPOOL_DIR=str(self.agent.spool))
        self.configured: Agent | None = None
        self.configured_port = free_port()
        for _ in range(2):
            self.run("cronwrap -n backup -- true", 0)

    def start_agent(self, name: str, args: list[str]) -> Agent:
        agent = Agent(self.base / name, extra=["--watch-interval", "0.5", *args])
        self.stack.callback(agent.close)
        agent.start()
        wait_for(lambda: "started:" in agent.log.read_text(), f"{name} started",
                 proc=agent.proc, log=agent.log)
        return agent

    def agentx_master(self) -> SnmpdMaster:
        """snmpd configured with the document's snmpd.conf lines (paths and sinks substituted)."""
        if self.master is None:
            lines = config_text(self.doc, "snmpd.conf")
            assert lines, f"{self.doc} shows no ```text snmpd.conf block for its AgentX commands"
            master = SnmpdMaster(self.base / "snmpd")
            lines = lines.replace("/var/agentx/master", str(master.agentx_socket))
            master.extra_config = lines.replace("nms.example.net", f"127.0.0.1:{self.trapd.port}")
            self.master = self.stack.enter_context(master)
        return self.master

    def substitute_paths(self, text: str) -> str:
        for literal in ("/path/to/cronwrap/mibs", "/path/to/mibs"):
            text = text.replace(literal, str(MIBS_DIR))
        return text

    def values(self, command: str) -> dict[str, str]:
        """The substitution values `command` needs (starting what it talks to)."""
        values = {"mibs": str(MIBS_DIR), "etc": str(self.etc), "base": str(self.base),
                  "trap_port": str(self.trapd.port), "agentx_socket": "",
                  "configured_port": str(self.configured_port)}
        if "/var/agentx/master" in command or re.search(r"--agentx\b", command):
            values["agentx_socket"] = str(self.agentx_master().agentx_socket)
        if "HOST:161" in command and self.configured is None:
            self.configured = self.start_agent("configured", [
                "--config", str(self.etc / "cronwrap" / "agent.toml"),
                "--listen", f"udp:127.0.0.1:{self.configured_port}"])
        return values

    def substitute(self, text: str, ports: dict[str, int]) -> str:
        values = self.values(text)
        for literal, replacement in SUBSTITUTIONS.items():
            text = text.replace(literal, replacement.format(**values))
        return PORTS.sub(lambda m: f"{m.group(1)}:{ports[m.group(2)]}", text)

    def run(self, command: str, status: int, ports: dict[str, int] | None = None
            ) -> subprocess.CompletedProcess[str]:
        real = self.substitute(command, ports or self.ports())
        done = subprocess.run(["bash", "-c", real], cwd=REPO, env=self.env, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == status, (
            f"{command!r} ran as {real!r}: exit {done.returncode}, expected {status}\n"
            f"{done.stdout}{done.stderr}")
        return done

    def ports(self) -> dict[str, int]:
        """161 is snmpd when the document configures one, else the agent; 1161 the agent."""
        return {"161": self.master.port if self.master else self.port, "1161": self.port}

    def start_daemon(self, command: str, ports: dict[str, int]) -> Agent:
        """Start a shown `cronwrap-agent ...` on private paths; wait until it serves."""
        for original in set(re.findall(PORTS, command)):
            ports[original[1]] = free_port()
        argv = shlex.split(self.substitute(command, ports), comments=True)
        if argv[-1] == "&":
            argv.pop()
        if "--agentx" in argv and (argv.index("--agentx") == len(argv) - 1
                                   or argv[argv.index("--agentx") + 1].startswith("-")):
            argv.insert(argv.index("--agentx") + 1, f"unix:{self.agentx_master().agentx_socket}")
        n = len(list(self.base.glob("daemon-*")))
        agent = Agent(self.base / f"daemon-{n}", extra=argv[1:])
        log = agent.log
        self.stack.callback(agent.close)
        agent.start()
        listens = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--listen"]

        def serving() -> bool:
            text = log.read_text()
            up = "started:" in text and (not listens or "SNMP agent listening on" in text)
            return (up and all(address in text for address in listens)
                    and ("--agentx" not in argv or " serving " in text))

        wait_for(serving, f"{command!r} serving", proc=agent.proc, log=log)
        return agent


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Sandbox]]:
    with ExitStack() as stack:
        yield KeyedSandboxes(lambda doc: Sandbox(tmp_path_factory.mktemp("docs"), stack, doc))


class KeyedSandboxes(dict[str, Sandbox]):
    """One sandbox per document, made when first asked for: a document's commands run in
    order in its own sandbox, so one document's failing examples cannot change another's."""

    def __init__(self, make: Callable[[str], Sandbox]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, doc: str) -> Sandbox:
        self[doc] = self.make(doc)
        return self[doc]


def is_daemon(command: str) -> bool:
    argv = shlex.split(command, comments=True)
    return (argv[0] == "cronwrap-agent" and not set(argv) & set(DAEMON_QUERIES)
            and expected_status(command) == 0)


@pytest.mark.parametrize("block", SH, ids=lambda b: b.id)
def test_shown_commands_run_as_shown(sandboxes: dict[str, Sandbox], block: Block) -> None:
    sandbox = sandboxes[block.doc]
    ports = sandbox.ports()
    daemons: list[Agent] = []
    last: subprocess.CompletedProcess[str] | None = None
    for command in commands(block):
        if shown(command) in NOT_RUN:
            continue
        if is_daemon(command):
            daemons.append(sandbox.start_daemon(command, ports))
        else:
            last = sandbox.run(command, expected_status(command), ports)
    if block.output is not None:
        assert last is not None, f"{block.id}: output shown for a command that is not run"
        printed = " ".join((last.stdout + last.stderr).split())
        for line in block.output.splitlines():
            want = " ".join(sandbox.substitute(line.split("...")[0], ports).split())
            assert want in printed, f"{block.id}: {want!r} not in the output:\n{printed}"
    for daemon in daemons:
        assert daemon.stop() == 0, daemon.log.read_text()  # SIGTERM: exit 0, as documented


@pytest.mark.parametrize("block", CRONTAB, ids=lambda b: b.id)
def test_crontab_lines_have_valid_schedules_and_run(sandboxes: dict[str, Sandbox],
                                                     block: Block) -> None:
    sandbox = sandboxes[block.doc]
    for line in commands(block):
        if re.match(r"[A-Za-z_]+=", line):  # an environment line, e.g. PATH=...
            continue
        fields = line.split(None, 5)
        schedule, command = " ".join(fields[:5]), fields[5]
        assert croniter.is_valid(schedule), f"{block.id}: bad schedule in {line!r}"
        assert command.startswith("cronwrap ") and " -- " in command, line
        sandbox.run(command.split(" -- ")[0] + " -- true", 0)


@pytest.mark.parametrize("block", TOML, ids=lambda b: b.id)
def test_toml_snippets_are_accepted_by_what_reads_them(tmp_path: Path, block: Block) -> None:
    table = tomllib.loads(block.text)
    path = tmp_path / "config.toml"
    path.write_text(block.text)
    path.chmod(0o600)
    if {"agent", "snmp"} & table.keys():
        done = subprocess.run([str(BIN / "cronwrap-agent"), "--config", str(path),
                               "--check-config"], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    else:
        settings = Settings(["true"])
        load_config(settings, [str(path)], explicit=True)
        resolve_mail(settings)
        assert settings.mail_problem is None, settings.mail_problem
        assert table  # every key was accepted above


def test_json_and_ini_snippets_parse() -> None:
    for block in ALL:
        if block.lang == "json":
            json.loads(block.text)
        elif block.lang == "ini":
            parser = configparser.ConfigParser(strict=False, interpolation=None)
            parser.read_string(block.text)
            assert parser.sections(), block.id


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_no_command_hides_in_an_unlabelled_or_indented_block(doc: str) -> None:
    assert {b.lang for b in blocks(doc)} <= LANGUAGES
    outside = re.sub(r"^```.*?^```", "", (REPO / doc).read_text(), flags=re.M | re.S)
    lines = outside.splitlines()
    # an indented code block starts after a blank line; a list item's continuation does not
    indented = [line for before, line in zip(["", *lines], lines, strict=False)
                if line.startswith("    ") and not before.strip()]
    assert indented == [], f"{doc}: indented code; use a fenced block with a language"


def test_every_command_not_run_is_still_shown() -> None:
    shown_commands = {shown(c) for b in ALL if b.lang == "sh" for c in commands(b)}
    assert set(NOT_RUN) <= shown_commands
    assert all((REPO / doc).is_file() for doc in NOT_RUN_DOCUMENTS)


OPTION = r"--[a-z][a-z0-9-]*[a-z0-9](?![-\w])"  # not "--mail-*"
# Options the documents show that belong to other programs.
FOREIGN_OPTIONS = {
    "--create": "systemd-tmpfiles", "--now": "systemctl enable", "--since": "journalctl",
    "--keep-running": "scripts/demo", "--quiet": "the example job /opt/sync/run",
    "--mib-source": "mibdump", "--destination-format": "mibdump",
    "--destination-directory": "mibdump", "--quick": "python -m bench",
    "--no-deps": "pip wheel", "--only-binary": "pip download", "--platform": "pip download",
    "--no-index": "pip install", "--target": "pip install", "--report": "run-parts",
    "--dist": "pytest (pytest-xdist)",
}


def test_every_option_shown_is_in_a_help_text() -> None:
    helps = [[str(BIN / "cronwrap"), "--help"], [str(BIN / "cronwrap-agent"), "--help"],
             [str(BIN / "cronwrap"), "status", "--help"], [str(BIN / "cronwrap"), "logs", "--help"]]
    known = set()
    for argv in helps:
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        known |= set(re.findall(OPTION, done.stdout))
    shown_options = {option for doc in DOCUMENTS
                     for option in re.findall(OPTION, (REPO / doc).read_text())}
    assert shown_options - known - set(FOREIGN_OPTIONS) == set()
    assert set(FOREIGN_OPTIONS) <= shown_options  # no stale entries
