"""The systemd units and tmpfiles.d entry: checked by systemd's own tools and for key directives."""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from journald import in_private_run

PACKAGING = Path(__file__).resolve().parent.parent / "packaging"
SERVICE = PACKAGING / "systemd" / "cronwrap-agent.service"
SOCKET = PACKAGING / "systemd" / "cronwrap-agent.socket"
TMPFILES = PACKAGING / "tmpfiles.d" / "cronwrap.conf"
SYSTEM_UNITS = Path("/lib/systemd/system")


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


@pytest.mark.skipif(shutil.which("systemd-analyze") is None or not SYSTEM_UNITS.is_dir(),
                    reason="systemd-analyze or the system units are missing")
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    """Verify in a private root holding the distribution's units, ours and a stand-in binary."""
    (tmp_path / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree(SYSTEM_UNITS, tmp_path / "usr/lib/systemd/system", symlinks=True)
    units = tmp_path / "etc/systemd/system"
    units.mkdir(parents=True)
    for path in (SERVICE, SOCKET):
        shutil.copy(path, units / path.name)
    binary = tmp_path / "usr/bin/cronwrap-agent"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    argv = ["systemd-analyze", "verify", f"--root={tmp_path}", "--man=no", SERVICE.name,
            SOCKET.name]
    if os.geteuid() == 0 and shutil.which("unshare"):
        # It leaves a stamp file in /run/systemd: give it a private /run.
        (tmp_path / "run").mkdir()
        argv = in_private_run(tmp_path / "run", argv)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, "", "")


def test_service_directives() -> None:
    service = unit(SERVICE)["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert service["WatchdogSec"] == "30"
    assert service["ExecStart"].split()[0] == "/usr/bin/cronwrap-agent"
    assert service["Restart"] == "on-failure"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"].split() == [
        "/var/lib/cronwrap", "/var/spool/cronwrap", "/run/cronwrap"]
    assert service["ProtectHome"] == "read-only"
    assert service["PrivateTmp"] == service["NoNewPrivileges"] == "yes"
    assert service["RestrictAddressFamilies"].split() == ["AF_UNIX", "AF_INET", "AF_INET6"]
    assert "CAP_SYS_ADMIN" not in service["CapabilityBoundingSet"]


def test_socket_directives() -> None:
    parsed = unit(SOCKET)
    assert parsed["Socket"]["ListenStream"] == "/run/cronwrap/agent.sock"
    assert parsed["Socket"]["SocketMode"] == "0666"
    assert parsed["Socket"]["Service"] == SERVICE.name
    assert parsed["Install"]["WantedBy"] == "sockets.target"
    assert unit(SERVICE)["Unit"]["Requires"] == SOCKET.name


@pytest.mark.skipif(shutil.which("systemd-tmpfiles") is None or os.geteuid() != 0,
                    reason="systemd-tmpfiles missing, or not root (it would chown)")
def test_tmpfiles_create_the_directories(tmp_path: Path) -> None:
    proc = subprocess.run(["systemd-tmpfiles", "--create", f"--root={tmp_path}", str(TMPFILES)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    modes = {
        path: stat.S_IMODE((tmp_path / path.lstrip("/")).stat().st_mode)
        for path in ("/run/cronwrap", "/var/spool/cronwrap", "/var/lib/cronwrap",
                     "/var/log/cronwrap", "/var/log/cronwrap/users", "/run/lock/cronwrap")
    }
    assert modes == {"/run/cronwrap": 0o755, "/var/spool/cronwrap": 0o1733,
                     "/var/lib/cronwrap": 0o750, "/var/log/cronwrap": 0o755,
                     "/var/log/cronwrap/users": 0o1733, "/run/lock/cronwrap": 0o755}
