"""The Debian roots the host tests boot (13 and 12): made once by debootstrap, cached, copied.

The cache lives under /var/tmp/cronwrap-host-base/<key>, where the key is a hash of the release
(its suite name), the variant, the mirror and the package list, so a changed list makes a new
root and reruns are fast.  The list is a stock minimal Debian with systemd, cron and Net-SNMP,
plus every package the .deb depends on: the booted container has no network
(--private-network), so `apt install ./x.deb` inside must find its dependencies installed, as
apt would after fetching them on a real host.  CRONWRAP_HOST_BASE names a ready root to use
instead (it must hold every listed package); it is only ever copied, never changed, and it
serves one release only: set CRONWRAP_HOST_RELEASES to that release's suite name with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

# Debian's suite names, the current release first: the whole suite runs on it.
RELEASES = {"trixie": "Debian 13", "bookworm": "Debian 12"}
CURRENT = "trixie"
VARIANT = "minbase"
MIRROR = os.environ.get("CRONWRAP_HOST_MIRROR", "http://deb.debian.org/debian")
CACHE = Path("/var/tmp/cronwrap-host-base")
# A stock Debian host as a sysadmin has it: systemd as init, Debian's cron and snmpd, and the
# Net-SNMP tools; python3-venv for README's other route.
STOCK_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "snmpd", "snmp", "cron",
    "procps",
)
# debootstrap's resolver follows no virtual package, as apt would: what a package needs through
# one (python3-cryptography's python3-cffi-backend-api-min) has to be named.
THROUGH_VIRTUAL_PACKAGES = {"python3-cryptography": ("python3-cffi-backend",)}
DEBOOTSTRAP_TIMEOUT = 1200
HOSTNAME = "cronwrap-host"


def deb_dependencies(deb: Path) -> list[str]:
    """The package names in the .deb's Depends (the first of each `a | b` alternative)."""
    depends = subprocess.run(
        ["dpkg-deb", "--field", str(deb), "Depends"],
        capture_output=True, text=True, check=True,
    ).stdout
    names = []
    for clause in depends.split(","):
        first = clause.split("|")[0].strip()
        name = re.split(r"[\s(:]", first, maxsplit=1)[0]
        if name and name not in names:
            names.append(name)
    return names


def package_list(deb: Path) -> list[str]:
    """What the base root must hold: the stock packages and the .deb's dependencies, sorted."""
    packages = set(STOCK_PACKAGES) | set(deb_dependencies(deb))
    for package in list(packages):
        packages.update(THROUGH_VIRTUAL_PACKAGES.get(package, ()))
    return sorted(packages)


def installed_packages(root: Path) -> set[str]:
    """Names of the packages dpkg lists as installed in the root."""
    status = (root / "var/lib/dpkg/status").read_text(errors="replace")
    installed = set()
    for stanza in status.split("\n\n"):
        name = re.search(r"^Package: (\S+)$", stanza, re.MULTILINE)
        state = re.search(r"^Status: (.*)$", stanza, re.MULTILINE)
        if name and state and state.group(1).endswith(" installed"):
            installed.add(name.group(1))
    return installed


def cache_key(suite: str, packages: list[str]) -> str:
    """Names the cached root of this suite made from these packages (variant and mirror too)."""
    text = f"{suite} {VARIANT} {MIRROR} {','.join(packages)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def base_root(suite: str, packages: list[str], log: Path) -> Path:
    """A `suite` root holding `packages`: CRONWRAP_HOST_BASE, the cached one, or a debootstrap."""
    given = os.environ.get("CRONWRAP_HOST_BASE")
    if given:
        missing = sorted(set(packages) - installed_packages(Path(given)))
        if missing:
            raise RuntimeError(f"CRONWRAP_HOST_BASE={given} lacks packages: {' '.join(missing)}")
        return Path(given)
    CACHE.mkdir(mode=0o755, parents=True, exist_ok=True)
    root = CACHE / cache_key(suite, packages)
    with open(CACHE / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be making the same root
        if not root.is_dir():
            _debootstrap(suite, packages, root, log)
    return root


def _debootstrap(suite: str, packages: list[str], root: Path, log: Path) -> None:
    """debootstrap into a scratch directory, then rename it into place (never half a root)."""
    scratch = root.with_name(root.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    command = [
        "debootstrap", f"--variant={VARIANT}", f"--include={','.join(packages)}",
        suite, str(scratch), MIRROR,
    ]
    with open(log, "ab") as out:
        result = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            timeout=DEBOOTSTRAP_TIMEOUT,
        )
    if result.returncode != 0:
        failed = scratch / "debootstrap/debootstrap.log"  # what went wrong inside, in detail
        if failed.is_file():
            with open(log, "ab") as out:
                out.write(failed.read_bytes()[-20000:])
        shutil.rmtree(scratch, ignore_errors=True)
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{tail}")
    # The downloaded .debs are not part of a host; they would only make every copy bigger.
    for deb in (scratch / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    scratch.rename(root)


def copy_root(base: Path, parent: Path) -> Path:
    """A private copy of the base root for one container (`cp -a`: owners, modes, ACLs)."""
    copy = parent / "root"
    subprocess.run(["cp", "-a", "--", str(base), str(copy)], check=True, timeout=600)
    finish_install(copy)
    return copy


def finish_install(root: Path) -> None:
    """What Debian's installer writes and debootstrap does not: the host name and /etc/hosts."""
    (root / "etc/hostname").write_text(f"{HOSTNAME}\n")
    (root / "etc/hosts").write_text(
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n"
        "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
    )


def remove_root(copy: Path) -> None:
    """Remove a copy made by copy_root (never anything else)."""
    if copy.name != "root" or copy.resolve() == Path("/"):
        raise ValueError(f"refusing to remove {copy}")
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(copy)], check=True, timeout=600)
