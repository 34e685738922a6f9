"""Attack tool: fill the spool root with junk that is not a user's spool directory.

usage: junk_spool_root.py SPOOL_ROOT DIRS FILES
Creates DIRS directories and FILES files with names no uid has, plus one directory named
after a uid that is not the caller's.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    root, dirs, files = argv[0], int(argv[1]), int(argv[2])
    for index in range(dirs):
        os.mkdir(os.path.join(root, f"junkdir{index}"), 0o700)
    for index in range(files):
        with open(os.path.join(root, f"junkfile{index}.json"), "w") as fh:
            fh.write("{}\n")
    os.mkdir(os.path.join(root, "4000000"), 0o700)  # a uid's name, the wrong owner
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
