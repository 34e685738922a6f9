"""The Debian package scripts/build-deb makes, checked without installing it (tests/host/ boots
Debian 13 and 12 and installs it): its control data, conffiles, files and modes, maintainer
scripts, the units as installed, and its bundled libraries, byte-compiled and run from an
unpacked copy with this machine's /usr/bin/python3 (Debian's, with python3-systemd and
python3-cryptography).

The package is dist/cronwrap_<version>_all.deb ($CRONWRAP_DEB overrides). When it is missing
or was built from another tree, the tests skip, except under CI (CI=true), where a missing one
is built once with scripts/build-deb and a stale one fails.
"""

from __future__ import annotations

import configparser
import gzip
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest
from cronwrap.agent import mib

REPO = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
PYTHON3 = "/usr/bin/python3"  # what the launchers run: the distribution's python3
VENV = "usr/lib/cronwrap"
SITE = f"{VENV}/lib"
DIST_PACKAGES = "/usr/lib/python3/dist-packages"
TMPFILES = REPO / "packaging" / "tmpfiles.d" / "cronwrap.conf"
SHIPPED = {  # file in the package -> the tree's file it is a copy of
    "lib/systemd/system/cronwrap-agent.service": "packaging/systemd/cronwrap-agent.service",
    "lib/systemd/system/cronwrap-agent.socket": "packaging/systemd/cronwrap-agent.socket",
    "usr/lib/tmpfiles.d/cronwrap.conf": "packaging/tmpfiles.d/cronwrap.conf",
    "etc/cronwrap/agent.toml": "packaging/agent.toml",
    "etc/cronwrap/cronwrap.toml": "docs/cronwrap.toml.example",
    "usr/share/cronwrap/snmpd.conf": "packaging/snmpd/snmpd.conf",
    "usr/share/cronwrap/snmptt/cronwrap.conf": "packaging/snmptt/cronwrap.conf",
    "usr/share/cronwrap/snmptt/snmptt.ini": "packaging/snmptt/snmptt.ini",
    "usr/share/cronwrap/snmptrapd/cronwrap.conf": "packaging/snmptrapd/cronwrap.conf",
    "usr/share/cronwrap/snmptrapd/snmptrapd.service.d/cronwrap.conf":
        "packaging/snmptrapd/snmptrapd.service.d/cronwrap.conf",
    "usr/share/doc/cronwrap/README.md": "README.md",
    "usr/share/doc/cronwrap/docs/operations.md": "docs/operations.md",
    "usr/share/doc/cronwrap/docs/nms/receivers.md": "docs/nms/receivers.md",
    "usr/share/doc/cronwrap/docs/security.md": "docs/security.md",
    "usr/share/doc/cronwrap/docs/reference/configuration.md": "docs/reference/configuration.md",
    **{f"usr/share/snmp/mibs/{p.name}": f"mibs/{p.name}" for p in (REPO / "mibs").glob("*.txt")},
    "usr/share/cronwrap/prometheus/snmp.yml": "packaging/prometheus/snmp.yml",
    **{f"usr/share/cronwrap/{p.parent.name}/{p.name}": str(p.relative_to(REPO))
       for p in (REPO / "packaging" / "nms").glob("*/*")},  # the NMS files (docs/nms/)
}
MAN_PAGES = {"usr/share/man/man1/cronwrap.1.gz": "docs/man/cronwrap.1",
             "usr/share/man/man8/cronwrap-agent.8.gz": "docs/man/cronwrap-agent.8"}
NOT_BUNDLED = ("pysmi", "jinja2", "lark", "requests", "pytest", "hypothesis", "ruff", "pip",
               "setuptools", "cryptography", "cffi", "systemd", "systemd_python")


def run(*argv: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300,
                          check=False, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def deb() -> Path:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    path = Path(os.environ.get("CRONWRAP_DEB") or REPO / "dist" / f"cronwrap_{VERSION}_all.deb")
    if not path.exists():
        if os.environ.get("CI") != "true":
            pytest.skip(f"no {path.relative_to(REPO)}: build it with bash scripts/build-deb")
        built = run("bash", REPO / "scripts" / "build-deb", cwd=REPO)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return path


@pytest.fixture(scope="module")
def root(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's files unpacked (run with this machine's python3 and its dist-packages)."""
    if not Path(PYTHON3).exists():
        pytest.skip(f"no {PYTHON3}: the package runs the distribution's python3")
    where = tmp_path_factory.mktemp("root")
    unpacked = run("dpkg-deb", "-x", deb, where)
    assert unpacked.returncode == 0, unpacked.stderr
    stale = [packaged for packaged, source in SHIPPED.items()
             if not (where / packaged).exists()
             or (where / packaged).read_bytes() != (REPO / source).read_bytes()]
    if stale and os.environ.get("CI") != "true":
        pytest.skip(f"{deb.name} was built from another tree ({stale[0]} differs): "
                    "rebuild it with bash scripts/build-deb")
    return where


@pytest.fixture(scope="module")
def control(deb: Path, root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The control area; after `root`, which skips when the package is stale."""
    where = tmp_path_factory.mktemp("control")
    done = run("dpkg-deb", "-e", deb, where)
    assert done.returncode == 0, done.stderr
    return where


def field(control: Path, name: str) -> str:
    match = re.search(rf"^{name}: (.*)$", (control / "control").read_text(), re.M)
    assert match, f"no {name} in the control file"
    return match.group(1)


def test_control_fields(control: Path) -> None:
    assert field(control, "Package") == "cronwrap"
    assert field(control, "Version") == VERSION
    assert field(control, "Architecture") == "all"
    depends = [d.strip() for d in field(control, "Depends").split(",")]
    names = [d.split()[0] for d in depends]
    assert {"python3", "python3-systemd", "python3-cryptography", "systemd"} <= set(names)
    # One package for Debian 12 (python3 3.11) and 13 (3.13): no minor version, no upper bound.
    assert [d for d in depends if d.startswith("python3 ")] == ["python3 (>= 3.11)"]
    assert not [n for n in names if re.fullmatch(r"python3\.\d+.*", n)], depends
    assert "snmpd" not in depends  # suggested, never pulled in
    assert "snmpd" in field(control, "Suggests")


def test_conffiles_are_the_two_configuration_files(control: Path) -> None:
    assert (control / "conffiles").read_text().split() == [
        "/etc/cronwrap/agent.toml", "/etc/cronwrap/cronwrap.toml"]


def test_files_are_copies_of_the_tree(root: Path) -> None:
    for packaged, source in SHIPPED.items():
        assert (root / packaged).read_bytes() == (REPO / source).read_bytes(), (
            f"{packaged} differs from {source}: is the .deb built from this tree? "
            "(bash scripts/build-deb)")
    for packaged, source in MAN_PAGES.items():
        assert gzip.decompress((root / packaged).read_bytes()) == (REPO / source).read_bytes()
    copyright_file = root / "usr/share/doc/cronwrap/copyright"
    assert "License: MIT" in copyright_file.read_text()
    bundled = (root / "usr/share/doc/cronwrap/bundled-python-packages.txt").read_text()
    assert "pysnmp " in bundled and "cronwrap-snmp " in bundled


def test_modes_and_links(root: Path) -> None:
    assert stat.S_IMODE((root / "etc/cronwrap/agent.toml").stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "etc/cronwrap/cronwrap.toml").stat().st_mode) == 0o644
    for command in ("cronwrap", "cronwrap-agent"):
        link = root / "usr/bin" / command
        assert os.readlink(link) == f"../lib/cronwrap/bin/{command}"
        launcher = (root / VENV / "bin" / command).read_text()
        assert launcher.startswith("#!/usr/bin/python3 -I\n")
    rtupdate = root / "usr/share/python3/runtime.d/cronwrap.rtupdate"
    assert stat.S_IMODE(rtupdate.stat().st_mode) == 0o755
    assert stat.S_IMODE((root / VENV / "bytecode").stat().st_mode) == 0o755


def test_the_bundle_holds_pure_python_and_no_build_or_test_tools(root: Path) -> None:
    names = {p.name.split("-")[0].lower() for p in (root / SITE).iterdir()}
    assert not names & set(NOT_BUNDLED)
    assert {"pysnmp", "pyasn1", "croniter", "filelock", "cronwrap"} <= names
    compiled = [p for p in root.rglob("*") if p.suffix in (".so", ".pyc") or ".so." in p.name]
    assert compiled == []  # Architecture: all; bytecode is made on the host


def test_bytecode_is_made_for_the_hosts_python_and_removed(root: Path) -> None:
    """postinst's compile: every module gets unchecked-hash bytecode (Python never rewrites it)
    for this python3, silently (no SyntaxWarning from a bundled library); prerm's clean
    removes all of it."""
    tag = run(PYTHON3, "-c", "import sys; print(sys.implementation.cache_tag)").stdout.strip()
    compiled = run(root / VENV / "bytecode", "compile")
    assert (compiled.returncode, compiled.stdout, compiled.stderr) == (0, "", "")
    sources = list((root / SITE).rglob("*.py"))
    assert len(sources) > 100
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        assert pyc.exists(), f"no bytecode for {source.relative_to(root)}"
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{pyc.relative_to(root)}: not unchecked-hash bytecode"
    cleaned = run(root / VENV / "bytecode", "clean")
    assert (cleaned.returncode, cleaned.stderr) == (0, "")
    assert list((root / SITE).rglob("__pycache__")) == []


def test_nothing_names_the_build_directory(root: Path) -> None:
    found = run("grep", "-rlF", "-e", "build/deb/", "-e", "debian/cronwrap/", root)
    assert found.stdout == ""


def test_the_bundled_agent_runs(root: Path) -> None:
    """The launcher itself (its #! line: /usr/bin/python3 -I), through the /usr/bin link."""
    agent = root / "usr/bin/cronwrap-agent"
    version = run(agent, "--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"cronwrap-agent {VERSION}")
    checked = run(agent, "--config", root / "etc/cronwrap/agent.toml", "--check-config")
    assert checked.returncode == 0, checked.stderr
    assert "AgentX master: unix:/var/agentx/master" in checked.stdout
    printed = run(agent, "--print-mib")
    assert printed.stdout == (REPO / "mibs" / "CRON-JOBS-MIB.txt").read_text()


def test_the_bundled_libraries_import_and_pysmi_is_absent(root: Path) -> None:
    """The bundled libraries come first; systemd-python and cryptography are Debian's, and
    pysnmp's SNMPv3 privacy (AES-CFB) works with Debian's python3-cryptography."""
    code = (f"import sys; sys.path.insert(0, {str(root / SITE)!r})\n"
            "import importlib.util as u, pysnmp.hlapi.v3arch.asyncio, cryptography\n"
            "import croniter, filelock, systemd.daemon, cronwrap.agent.standalone\n"
            "import cronwrap.agent.agentx_session, cronwrap.wrapper.cli\n"
            "from pysnmp.proto.secmod.rfc3826.priv import aes\n"
            "assert not aes.PysnmpCryptoError, 'no AES privacy'\n"
            "cipher = aes._cryptography_cipher(bytes(16), bytes(16))\n"
            "sealed = cipher.encryptor().update(b'cronJobTable')\n"
            "assert cipher.decryptor().update(sealed) == b'cronJobTable'\n"
            "print(u.find_spec('pysmi'))\n"
            "for module in (pysnmp, croniter, cronwrap.agent, systemd, cryptography):\n"
            "    print(module.__name__, module.__file__)")
    done = run(PYTHON3, "-I", "-W", "error::DeprecationWarning", "-c", code)
    assert done.returncode == 0, done.stderr
    found = dict(line.split() for line in done.stdout.splitlines()[1:])
    assert done.stdout.splitlines()[0] == "None"
    for name in ("pysnmp", "croniter", "cronwrap.agent"):
        assert found[name].startswith(f"{root / SITE}/"), found
    for name in ("systemd", "cryptography"):
        assert found[name].startswith(f"{DIST_PACKAGES}/"), found


def test_net_snmp_loads_the_mib_from_the_package_alone(root: Path) -> None:
    """-m CRON-JOBS-MIB needs nothing but the package's MIB directory and Net-SNMP's own."""
    if shutil.which("snmptranslate") is None:
        pytest.skip("snmptranslate is not installed")
    done = run("snmptranslate", "-M", f"{root}/usr/share/snmp/mibs:/usr/share/snmp/mibs",
               "-m", "CRON-JOBS-MIB", "-On", "CRON-JOBS-MIB::cronJobRuns")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.strip().startswith("." + ".".join(map(str, mib.ROOT)))


def test_the_snmpd_drop_in_shows_exactly_our_subtree(root: Path) -> None:
    lines = [line for line in (root / "usr/share/cronwrap/snmpd.conf").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines == ["view systemonly included ." + ".".join(map(str, mib.ROOT))]


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


def test_units_point_at_installed_files(root: Path) -> None:
    service = unit(root / "lib/systemd/system/cronwrap-agent.service")
    executable = service["Service"]["ExecStart"].split()[0]
    assert os.access(root / executable.lstrip("/"), os.X_OK)
    assert "Wants" not in service["Unit"]  # never starts a disabled snmpd
    assert "snmpd.service" in service["Unit"]["After"]
    for name in ("cronwrap-agent.service", "cronwrap-agent.socket"):
        for document in unit(root / "lib/systemd/system" / name)["Unit"]["Documentation"].split():
            if document.startswith("file://"):
                assert (root / document.removeprefix("file:///")).is_file(), document
            else:
                page = re.fullmatch(r"man:([\w-]+)\((\d)\)", document)
                assert page, document
                assert (root / f"usr/share/man/man{page[2]}/{page[1]}.{page[2]}.gz").exists()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None or not Path("/lib/systemd/system")
                    .is_dir(), reason="systemd-analyze or the system units are missing")
def test_systemd_analyze_verify_the_installed_units(root: Path, tmp_path: Path) -> None:
    system = tmp_path / "usr/lib/systemd"
    system.mkdir(parents=True)
    shutil.copytree("/lib/systemd/system", system / "system", symlinks=True)
    for name in ("cronwrap-agent.service", "cronwrap-agent.socket"):
        shutil.copy(root / "lib/systemd/system" / name, system / "system" / name)
    shutil.copytree(root / "usr/lib/cronwrap", tmp_path / VENV, symlinks=True)
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/cronwrap-agent").symlink_to("../lib/cronwrap/bin/cronwrap-agent")
    argv = ["systemd-analyze", "verify", f"--root={tmp_path}", "--man=no",
            "cronwrap-agent.service", "cronwrap-agent.socket"]
    if os.geteuid() == 0 and shutil.which("unshare"):
        from journald import in_private_run

        (tmp_path / "run").mkdir()
        argv = in_private_run(tmp_path / "run", argv)
    done = run(*argv)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")


def test_maintainer_scripts(control: Path) -> None:
    for script in ("postinst", "prerm", "postrm"):
        checked = run("sh", "-n", control / script)
        assert checked.returncode == 0, checked.stderr
    postinst = (control / "postinst").read_text()
    assert re.search(r"systemd-tmpfiles .*--create cronwrap.conf", postinst)
    for name in ("cronwrap-agent.service", "cronwrap-agent.socket"):
        assert re.search(rf"deb-systemd-helper enable '{re.escape(name)}'", postinst), name
    assert "deb-systemd-invoke $_dh_action 'cronwrap-agent.service' 'cronwrap-agent.socket'" \
        in postinst  # start on install, restart both after an upgrade
    postrm = (control / "postrm").read_text()
    directories = [line.split()[1] for line in TMPFILES.read_text().splitlines()
                   if line.split()[:1] in (["d"], ["D"])]
    loop = re.search(r"for dir in (.*); do", postrm)
    assert loop and loop.group(1).split() == directories
    digest = hashlib.sha256((REPO / "packaging/snmpd/snmpd.conf").read_bytes()).hexdigest()
    assert f'"{digest}  $dropin"' in postrm
    assert "@" not in postrm.replace("$@", "")  # every placeholder was filled in
