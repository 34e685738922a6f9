"""The wheel and the sdist: the wheel carries the MIBs (cronwrap-agent --print-mib), a LICENSE,
and no runtime dependency on pysmi; the sdist is the whole source tree and collects its tests."""

from __future__ import annotations

import email
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_support import AGENT, Agent, wait_for
from netsnmp import Snmptrapd, free_port, have_netsnmp, snmp

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
MIBS = sorted(path.name for path in (REPO / "mibs").glob("*.txt"))
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def source_files() -> list[str]:
    """The tree's files as a fresh clone has them (tracked and untracked, not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, timeout=60, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: cannot tell which files the tree holds")
    return sorted(name for name in listed.stdout.splitlines() if (REPO / name).exists())


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the source tree: building writes build/ and *.egg-info into it."""
    copy = tmp_path_factory.mktemp("tree")
    for name in source_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / name).read_bytes())
        target.chmod((REPO / name).stat().st_mode)
    return copy


def build_sdist(tree: Path, out: Path) -> Path:
    """The sdist, built by this venv's setuptools (no download)."""
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(out)!r}))"
    done = subprocess.run([PYTHON, "-c", code], cwd=tree, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def wheel(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built as README says (pip, in an isolated build environment)."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([PYTHON, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
                           str(tree)], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    (built,) = out.glob("cronwrap_snmp-*.whl")
    return built


@pytest.fixture(scope="module")
def sdist(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sdist(tree, tmp_path_factory.mktemp("sdist"))


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(archive.read(name))


def test_the_wheel_carries_the_mibs_and_the_license(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        for mib in MIBS:
            assert archive.read(f"cronwrap/mibs/{mib}") == (REPO / "mibs" / mib).read_bytes()
        licence = next(n for n in names if n.endswith("/LICENSE"))
        assert archive.read(licence) == (REPO / "LICENSE").read_bytes()
    assert not [n for n in names if n.startswith(("agent/", "wrapper/", "tests/"))]
    assert metadata(wheel)["License"] == "MIT"


def test_pysmi_is_not_a_runtime_dependency(wheel: Path) -> None:
    requires = metadata(wheel).get_all("Requires-Dist") or []
    runtime = {r.split(";")[0].split(">")[0].split("<")[0].strip().lower() for r in requires
               if "extra ==" not in r}
    assert "pysmi" not in runtime
    assert {"pysnmp", "pyasn1", "filelock", "systemd-python"} <= runtime
    assert any(r.startswith("pysmi") and 'extra == "test"' in r for r in requires)


def test_only_the_mib_compiler_imports_pysmi() -> None:
    importers = sorted(str(path.relative_to(REPO)) for folder in ("agent", "wrapper")
                       for path in (REPO / folder).glob("*.py")
                       if re.search(r"^\s*(from|import) pysmi\b", path.read_text(), re.M))
    assert importers == ["agent/mibcompile.py"]  # tests and tools only


class AgentWithoutPysmi(Agent):
    """The agent with pysmi unimportable, as in the Debian package (pysnmp then does without)."""

    def args(self) -> list[str]:
        block = ("import sys; sys.modules['pysmi'] = None; "
                 "from cronwrap.agent.main import main; sys.exit(main())")
        return [PYTHON, "-c", block, *super().args()[len(AGENT):]]


@pytest.mark.integration
@pytest.mark.skipif(not have_netsnmp(), reason="Net-SNMP tools are not installed")
def test_the_agent_serves_and_notifies_without_pysmi(tmp_path: Path) -> None:
    with Snmptrapd(tmp_path / "trapd") as trapd:
        port = free_port()
        config = tmp_path / "agent.toml"
        config.write_text(f'[snmp]\nlisten = ["udp:127.0.0.1:{port}"]\n[[snmp.target]]\n'
                          f'address = "127.0.0.1:{trapd.port}"\ncommunity = "public"\n')
        config.chmod(0o600)
        agent = AgentWithoutPysmi(tmp_path / "agent", ["--config", str(config)]).start()
        try:
            wait_for(lambda: "SNMP agent listening" in agent.log.read_text(),
                     "the standalone agent listening", proc=agent.proc, log=agent.log)
            run = subprocess.run(
                [str(BIN / "cronwrap"), "-n", "nopysmi", "--socket", str(agent.socket),
                 "--spool-dir", str(agent.spool), "--log-dir", str(tmp_path / "logs"),
                 "--lock-dir", str(tmp_path / "locks"), "--no-journal", "--", "false"],
                capture_output=True, text=True, timeout=60, check=False)
            assert run.returncode == 1
            trapd.wait_for(r"nopysmi")  # cronJobFailed, with the job's name
            got = snmp("snmpget", "-v2c", "-c", "public", f"127.0.0.1:{port}",
                       "1.3.6.1.4.1.8072.9999.9999.71.1.1.0")
            assert got.stdout.strip().endswith("Gauge32: 1")
        finally:
            assert agent.stop() == 0
    assert "Traceback" not in agent.log.read_text()


@pytest.fixture(scope="module")
def unpacked_wheel(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(where)
    return where


@pytest.mark.parametrize("module", [None, *[name.removesuffix(".txt") for name in MIBS]])
def test_print_mib_from_the_installed_wheel(unpacked_wheel: Path, module: str | None) -> None:
    """Run from the wheel's files (not this tree): --print-mib prints the packaged MIB."""
    code = ("import sys, cronwrap.agent.main as m; "
            f"assert m.__file__.startswith({str(unpacked_wheel)!r}), m.__file__; "
            "sys.exit(m.main(sys.argv[1:]))")
    argv = ["--print-mib"] + ([module] if module else [])
    done = subprocess.run([PYTHON, "-c", code, *argv], capture_output=True, text=True,
                          timeout=60, check=False, env={"PYTHONPATH": str(unpacked_wheel)})
    assert done.returncode == 0, done.stderr
    expected = (REPO / "mibs" / f"{module or 'CRON-JOBS-MIB'}.txt").read_text()
    assert done.stdout == expected


def test_print_mib_refuses_an_unknown_module_in_one_line() -> None:
    done = subprocess.run([PYTHON, "-m", "cronwrap.agent.main", "--print-mib", "IF-MIB"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 64
    assert len(done.stderr.splitlines()) == 1 and "invalid choice: 'IF-MIB'" in done.stderr


def sdist_files(sdist: Path) -> Iterator[str]:
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            if member.isfile():
                yield member.name.split("/", 1)[1]


def test_the_sdist_is_the_whole_source_tree(sdist: Path) -> None:
    generated = {"PKG-INFO", "setup.cfg"}
    files = {name for name in sdist_files(sdist)
             if name not in generated and ".egg-info/" not in name}
    assert files == set(source_files())


def test_the_sdist_collects_its_own_tests(sdist: Path, tmp_path: Path) -> None:
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path, filter="data")
    (root,) = tmp_path.iterdir()
    done = subprocess.run([PYTHON, "-m", "pytest", "--collect-only", "-q", "-p",
                           "no:cacheprovider"], cwd=root, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " error" not in done.stdout.splitlines()[-1]
