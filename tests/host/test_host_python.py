"""The core of the non-host suite under Debian 13's python3 (3.13), with what the .deb gives it.

In a copy of a Debian 13 root (not booted: `systemd-nspawn` runs one command), the .deb is
installed with dpkg, so its postinst byte-compiles the bundled libraries (pysnmp, pyasn1, ...)
for Python 3.13, and Debian's python3-systemd and python3-cryptography are the compiled pieces.
A virtualenv over the system's packages holds only the test tools (pytest, hypothesis: wheels
downloaded on this machine for CPython 3.13, pinned to this suite's versions), and
pytest runs CORE_TESTS from this tree (bound read-only) with the bundled libraries first on
sys.path and the packaged `cronwrap` on PATH, and Python's deprecation and syntax warnings
turned into errors (in the agents it starts too): one of Python 3.13's in a bundled library
fails it.
"""

from __future__ import annotations

import fcntl
import hashlib
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from .base import CACHE, CURRENT, base_root, copy_root, package_list, remove_root

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

# Codec, events and the core, systemd-python (sd_notify), and end to end through pysnmp and
# Net-SNMP: a standalone walk and trap, AgentX under snmpd, and SNMPv3 privacy (AES through
# Debian's python3-cryptography).
CORE_TESTS = (
    "tests/test_agentx_codec.py",
    "tests/test_events.py",
    "tests/test_agent_core_unit.py",
    "tests/test_agent_systemd.py",
    "tests/test_e2e_standalone.py",
    "tests/test_e2e_agentx.py::test_counts_states_and_times_through_snmpd",
    "tests/test_standalone.py::test_v3_user_reads_with_authentication_and_privacy",
)
# No pytest-xdist: the run is serial, so pyproject's --dist option is dropped (-o addopts=).
TEST_TOOLS = ("pytest", "pytest-timeout", "hypothesis")
PYTHON_VERSION = "3.13"  # Debian 13's python3
EXTRA_PACKAGES = ("snmptrapd",)  # the tests' trap receiver; the rest is the host suite's root
# What a newer Python warns of in code written for an older one: errors here, in the tests
# and in the agents they start.
AS_ERRORS = ("error::DeprecationWarning", "error::PendingDeprecationWarning",
             "error::SyntaxWarning")
VENV = "/opt/cronwrap-tests"
RUN_TIMEOUT = 1200
REPO = Path(__file__).resolve().parents[2]


def tool_pins() -> list[str]:
    """The test tools at the versions this suite runs with."""
    return [f"{name}=={metadata.version(name)}" for name in TEST_TOOLS]


def wheel_tags() -> list[str]:
    """pip download's --abi and --platform options for Debian 13's CPython on this machine."""
    abi = ["--abi", f"cp{PYTHON_VERSION.replace('.', '')}", "--abi", "abi3", "--abi", "none"]
    machine = platform.machine()
    platforms = [f"{glibc}_{machine}" for glibc in ("manylinux_2_28", "manylinux_2_17",
                                                    "manylinux2014")] + ["any"]
    return abi + [option for name in platforms for option in ("--platform", name)]


def downloaded_wheels(pins: list[str]) -> Path:
    """Wheels of `pins` and their dependencies for CPython PYTHON_VERSION on this machine's
    architecture (hypothesis has compiled ones), cached by the list."""
    key = hashlib.sha256(f"{PYTHON_VERSION} {' '.join(pins)}".encode()).hexdigest()[:16]
    wheels = CACHE / f"wheels-{key}"
    CACHE.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(CACHE / f".wheels-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not wheels.is_dir():
            scratch = Path(tempfile.mkdtemp(prefix="wheels-", dir=CACHE))
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                 "--python-version", PYTHON_VERSION, "--implementation", "cp",
                 *wheel_tags(), "--dest", str(scratch), *pins],
                check=True, timeout=600, stdin=subprocess.DEVNULL,
            )
            scratch.rename(wheels)
    return wheels


def inside_script(deb: str, pins: list[str]) -> str:
    """What runs in the container: install the .deb and the tools, then pytest."""
    warnings = " ".join(f"-W {action}" for action in AS_ERRORS)
    return f"""set -e
installed=$(dpkg -i /deb/{deb} 2>&1)  # postinst compiles: no warning may show
case "$installed" in *Warning*|*Error*) echo "$installed"; exit 1 ;; esac
test "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = {PYTHON_VERSION}
python3 -m venv --system-site-packages {VENV}
{VENV}/bin/pip install --quiet --no-index --find-links /wheels {' '.join(pins)}
cd /src
export PYTHONPATH=/usr/lib/cronwrap/lib PYTHONDONTWRITEBYTECODE=1
export PYTHONWARNINGS={','.join(AS_ERRORS)} HYPOTHESIS_STORAGE_DIRECTORY=/tmp/hypothesis
export PATH={VENV}/bin:/usr/lib/cronwrap/bin:$PATH
{VENV}/bin/python -c 'import cronwrap.agent, pysnmp, systemd.daemon, cryptography
for m in (cronwrap.agent, pysnmp, systemd.daemon, cryptography): print(m.__name__, m.__file__)'
exec {VENV}/bin/python -m pytest -q -p no:cacheprovider --color=no {warnings} {' '.join(CORE_TESTS)}
"""


@pytest.fixture(scope="module")
def python_root(built_deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private copy of a Debian 13 root with the host suite's packages and EXTRA_PACKAGES."""
    log = tmp_path_factory.mktemp("debootstrap-python") / "debootstrap.log"
    base = base_root(CURRENT, sorted({*package_list(built_deb), *EXTRA_PACKAGES}), log)
    scratch = Path(tempfile.mkdtemp(prefix="cronwrap-host-", dir="/var/tmp"))
    root = copy_root(base, scratch)
    yield root
    remove_root(root)
    scratch.rmdir()


def test_core_tests_pass_under_debian_13s_python(python_root: Path, built_deb: Path) -> None:
    pins = tool_pins()
    wheels = downloaded_wheels(pins)
    done = subprocess.run(
        ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--as-pid2",
         f"--directory={python_root}", f"--bind-ro={REPO}:/src",
         f"--bind-ro={wheels}:/wheels", f"--bind-ro={built_deb.parent}:/deb",
         "/bin/sh", "-c", inside_script(built_deb.name, pins)],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL,
    )
    print(done.stdout[-3000:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    where = dict(line.split() for line in done.stdout.splitlines()[:4])
    assert where["pysnmp"].startswith("/usr/lib/cronwrap/lib/"), where
    assert where["cronwrap.agent"].startswith("/usr/lib/cronwrap/lib/"), where
    assert where["systemd.daemon"].startswith("/usr/lib/python3/dist-packages/"), where
    assert where["cryptography"].startswith("/usr/lib/python3/dist-packages/"), where
    assert " passed" in done.stdout and " skipped" not in done.stdout, done.stdout[-2000:]
