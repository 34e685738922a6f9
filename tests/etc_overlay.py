"""Run a command with chosen files in /etc, in a private mount namespace (needs root, unshare).

An overlay over /etc lives only in the new namespace: the host's /etc is never touched, and
other processes (other tests, other engineers' runs) never see the files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def can_overlay_etc() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None


def with_etc_files(base: Path, files: dict[str, tuple[str, int]], argv: list[str]) -> list[str]:
    """`argv` prefixed to run where each /etc/NAME of `files` holds (text, mode)."""
    layer = base / "etc-layer"
    layer.mkdir()
    sources = base / "etc-files"
    sources.mkdir()
    copies = []
    for number, (name, (text, mode)) in enumerate(sorted(files.items())):
        source = sources / str(number)
        source.write_text(text)
        copies += [str(source), f"/etc/{name}", f"{mode:o}"]
    script = (
        'set -e; layer=$1; shift; mount -t tmpfs cronwrap-test "$layer"; '
        'mkdir "$layer/upper" "$layer/work"; '
        'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$layer/upper,workdir=$layer/work" '
        '/etc; while [ "$1" != -- ]; do mkdir -p "$(dirname "$2")"; cp "$1" "$2"; '
        'chmod "$3" "$2"; shift 3; done; shift; exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
            str(layer), *copies, "--", *argv]
