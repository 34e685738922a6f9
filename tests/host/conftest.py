"""Fixtures of the real-host suite: the built .deb, the cached Debian roots, a booted container.

Every test runs on the current Debian release (13, trixie); a test marked `every_release` runs
on Debian 12 (bookworm) too, in a second container booted from a bookworm root: the same .deb
installs on both. CRONWRAP_HOST_RELEASES (suite names, e.g. "bookworm") narrows the releases.
In CI (CI=true, set by .ci/run) anything missing is a failure, never a skip; elsewhere the suite
skips with one line saying why (not root, no systemd-nspawn, ...).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from .base import CURRENT, RELEASES, base_root, copy_root, package_list, remove_root
from .machine import Container

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI") == "true"
# What this machine needs to boot a root and talk to it (packaging/debian-packages has them).
HOST_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "nsenter": "util-linux",
    "dpkg-deb": "dpkg",
    "snmpbulkwalk": "snmp",
    "snmptrapd": "snmptrapd",
}
# The .deb is rebuilt when a file under these is newer than it (tests are not in it).
PACKAGED_SOURCES = (
    "agent", "wrapper", "mibs", "packaging", "docs", "scripts/build-deb", "pyproject.toml",
    "README.md", "LICENSE",
)
BUILD_TIMEOUT = 1200


def unavailable() -> str | None:
    """One line saying why this machine cannot run the host suite, or None."""
    if os.geteuid() != 0:
        return "needs root (systemd-nspawn, debootstrap)"
    for tool, package in HOST_TOOLS.items():
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install {package})"
    return None


def require(reason: str | None) -> None:
    """Skip with the reason, or in CI fail loudly with it."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"the host suite must run in CI but cannot: {reason}", pytrace=False)
    pytest.skip(f"host suite: {reason}")


@pytest.fixture(scope="session")
def host_ready() -> None:
    require(unavailable())


def selected_releases() -> list[str]:
    """The releases to boot: CRONWRAP_HOST_RELEASES's suite names, or all of them."""
    chosen = os.environ.get("CRONWRAP_HOST_RELEASES", " ".join(RELEASES)).split()
    unknown = sorted(set(chosen) - set(RELEASES))
    if unknown:
        raise pytest.UsageError(f"CRONWRAP_HOST_RELEASES: unknown {unknown}; know {list(RELEASES)}")
    return [release for release in RELEASES if release in chosen]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test that boots a release: on the current one, and on all if marked every_release."""
    if "release" not in metafunc.fixturenames:
        return
    every = metafunc.definition.get_closest_marker("every_release") is not None
    releases = [release for release in selected_releases() if every or release == CURRENT]
    metafunc.parametrize("release", releases, indirect=True, scope="session")


@pytest.fixture(scope="session")
def release(request: pytest.FixtureRequest) -> str:
    """The Debian suite name the container boots (see pytest_generate_tests)."""
    return request.param


def project_version() -> str:
    with open(REPO / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]["version"]


def newest_source_mtime() -> float:
    """The newest modification time among the files the .deb is built from."""
    newest = 0.0
    for name in PACKAGED_SOURCES:
        top = REPO / name
        files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        for path in files:
            if "__pycache__" not in path.parts:
                newest = max(newest, path.stat().st_mtime)
    return newest


def fresh_deb() -> Path | None:
    """dist/cronwrap_<version>_<arch>.deb if it is newer than every packaged source file."""
    debs = sorted((REPO / "dist").glob(f"cronwrap_{project_version()}_*.deb"))
    if len(debs) != 1:
        return None
    if debs[0].stat().st_mtime < newest_source_mtime():
        return None
    return debs[0]


@pytest.fixture(scope="session")
def built_deb(host_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package to install: dist's .deb when fresh, else `bash scripts/build-deb` makes it."""
    deb = fresh_deb()
    if deb is not None:
        return deb
    if not (REPO / "scripts/build-deb").is_file():
        require("scripts/build-deb is missing")
    log = tmp_path_factory.mktemp("build-deb") / "build-deb.log"
    with open(log, "wb") as out:
        built = subprocess.run(
            ["bash", "scripts/build-deb"], cwd=REPO, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT,
        )
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    assert built.returncode == 0, f"bash scripts/build-deb exited {built.returncode}:\n{tail}"
    deb = fresh_deb()
    assert deb is not None, f"bash scripts/build-deb made no fresh dist/*.deb:\n{tail}"
    return deb


@pytest.fixture(scope="session")
def base(release: str, built_deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cached root of the release holding stock packages and the .deb's dependencies."""
    log = tmp_path_factory.mktemp(f"debootstrap-{release}") / "debootstrap.log"
    return base_root(release, package_list(built_deb), log)


@pytest.fixture(scope="module")
def machine(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """A private copy of the base root, booted under systemd-nspawn; stopped and removed after."""
    scratch = Path(tempfile.mkdtemp(prefix="cronwrap-host-", dir="/var/tmp"))
    logs = tmp_path_factory.mktemp("host")
    container = Container(
        copy_root(base, scratch), logs / "console.log", name=f"cronwrap-{os.getpid()}"
    )
    try:
        container.boot()
        yield container
    finally:
        container.stop()
        remove_root(container.root)
        scratch.rmdir()
