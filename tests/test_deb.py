"""The Debian package scripts/build-deb makes, checked without installing it (tests/host/ boots a
Debian and installs it): its control data, conffiles, files and modes, maintainer scripts, the
units as installed, and its private virtualenv run from an unpacked copy.

The package is dist/cronwrap_<version>_<arch>.deb ($CRONWRAP_DEB overrides). When it is missing
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
import sys
import tomllib
from pathlib import Path

import pytest
from cronwrap.agent import mib

REPO = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
PYVER = f"{sys.version_info[0]}.{sys.version_info[1]}"
VENV = "usr/lib/cronwrap"
SITE = f"{VENV}/lib/python{PYVER}/site-packages"
TMPFILES = REPO / "packaging" / "tmpfiles.d" / "cronwrap.conf"
SHIPPED = {  # file in the package -> the tree's file it is a copy of
    "lib/systemd/system/cronwrap-agent.service": "packaging/systemd/cronwrap-agent.service",
    "lib/systemd/system/cronwrap-agent.socket": "packaging/systemd/cronwrap-agent.socket",
    "usr/lib/tmpfiles.d/cronwrap.conf": "packaging/tmpfiles.d/cronwrap.conf",
    "etc/cronwrap/agent.toml": "packaging/agent.toml",
    "etc/cronwrap/cronwrap.toml": "docs/cronwrap.toml.example",
    "usr/share/cronwrap/snmpd.conf": "packaging/snmpd/snmpd.conf",
    "usr/share/cronwrap/snmptt/cronwrap.conf": "packaging/snmptt/cronwrap.conf",
    "usr/share/doc/cronwrap/README.md": "README.md",
    "usr/share/doc/cronwrap/docs/operations.md": "docs/operations.md",
    **{f"usr/share/snmp/mibs/{p.name}": f"mibs/{p.name}" for p in (REPO / "mibs").glob("*.txt")},
    "usr/share/cronwrap/prometheus/snmp.yml": "packaging/prometheus/snmp.yml",
    **{f"usr/share/cronwrap/{p.parent.name}/{p.name}": str(p.relative_to(REPO))
       for p in (REPO / "packaging" / "nms").glob("*/*")},  # the NMS files (docs/nms/)
}
MAN_PAGES = {"usr/share/man/man1/cronwrap.1.gz": "docs/man/cronwrap.1",
             "usr/share/man/man8/cronwrap-agent.8.gz": "docs/man/cronwrap-agent.8"}
NOT_BUNDLED = ("pysmi", "jinja2", "lark", "requests", "pytest", "hypothesis", "ruff", "pip",
               "setuptools")


def run(*argv: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300,
                          check=False, **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def deb() -> Path:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    arch = run("dpkg", "--print-architecture").stdout.strip()
    path = Path(os.environ.get("CRONWRAP_DEB") or REPO / "dist" / f"cronwrap_{VERSION}_{arch}.deb")
    if not path.exists():
        if os.environ.get("CI") != "true":
            pytest.skip(f"no {path.relative_to(REPO)}: build it with bash scripts/build-deb")
        built = run("bash", REPO / "scripts" / "build-deb", cwd=REPO)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return path


@pytest.fixture(scope="module")
def root(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's files unpacked, plus what its venv links to: Python, python3-systemd."""
    where = tmp_path_factory.mktemp("root")
    unpacked = run("dpkg-deb", "-x", deb, where)
    assert unpacked.returncode == 0, unpacked.stderr
    python = where / "usr" / "bin" / f"python{PYVER}"
    python.symlink_to(f"/usr/bin/python{PYVER}")
    debian_systemd = where / "usr/lib/python3/dist-packages/systemd"  # python3-systemd's
    debian_systemd.parent.mkdir(parents=True)
    debian_systemd.symlink_to("/usr/lib/python3/dist-packages/systemd")
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
    assert field(control, "Architecture") == run("dpkg", "--print-architecture").stdout.strip()
    depends = [d.strip().split()[0] for d in field(control, "Depends").split(",")]
    assert {f"python{PYVER}", "python3-systemd", "systemd"} <= set(depends)
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
        assert launcher.startswith(f"#!/usr/lib/cronwrap/bin/python{PYVER} -I\n")
    for link, target in ((f"{VENV}/bin/python{PYVER}", f"usr/bin/python{PYVER}"),
                         (f"{SITE}/systemd", "usr/lib/python3/dist-packages/systemd")):
        resolved = os.path.normpath((root / link).parent / os.readlink(root / link))
        assert resolved == str(root / target), link


def test_the_venv_bundles_no_build_or_test_tools(root: Path) -> None:
    names = {p.name.split("-")[0].lower() for p in (root / SITE).iterdir()}
    assert not names & set(NOT_BUNDLED)
    assert {"pysnmp", "pyasn1", "cryptography", "croniter", "filelock", "cronwrap"} <= names


def test_bytecode_is_shipped_and_never_rewritten(root: Path) -> None:
    """Every module has its .pyc, hash-based and unchecked: Python never writes beside it."""
    sources = list((root / SITE).rglob("*.py"))
    assert len(sources) > 100
    for source in sources:
        if not (source.parent / "__pycache__").is_dir() and source.parent.is_symlink():
            continue
        tag = sys.implementation.cache_tag
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        assert pyc.exists(), f"no bytecode for {source.relative_to(root)}"
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{pyc.relative_to(root)}: not unchecked-hash bytecode"


def test_nothing_names_the_build_directory(root: Path) -> None:
    found = run("grep", "-rlF", "-e", "build/deb/", "-e", "debian/cronwrap/", root)
    assert found.stdout == ""


def bundled_python(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(root / VENV / "bin" / f"python{PYVER}", "-I", *args)


def test_the_bundled_agent_runs(root: Path) -> None:
    agent = root / VENV / "bin" / "cronwrap-agent"
    version = bundled_python(root, str(agent), "--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"cronwrap-agent {VERSION}")
    checked = bundled_python(root, str(agent), "--config", str(root / "etc/cronwrap/agent.toml"),
                             "--check-config")
    assert checked.returncode == 0, checked.stderr
    assert "AgentX master: unix:/var/agentx/master" in checked.stdout
    printed = bundled_python(root, str(agent), "--print-mib")
    assert printed.stdout == (REPO / "mibs" / "CRON-JOBS-MIB.txt").read_text()


def test_the_bundled_libraries_import_and_pysmi_is_absent(root: Path) -> None:
    code = ("import importlib.util as u, sys\n"
            "import pysnmp.hlapi.v3arch.asyncio, cryptography.hazmat.primitives.ciphers\n"
            "import croniter, filelock, systemd.daemon, cronwrap.agent.standalone\n"
            "import cronwrap.agent.agentx_session, cronwrap.wrapper.cli\n"
            "print(u.find_spec('pysmi'), sys.prefix)")
    done = bundled_python(root, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", str(root / VENV)]


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
