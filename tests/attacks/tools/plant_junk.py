"""Attack: fill my own spool directory with things that are not spooled events.

usage: plant_junk.py SPOOL_ROOT

Creates in SPOOL_ROOT/<my uid>/ a directory x.json (with a file inside), a FIFO, a Unix
socket, a symlink to /etc/shadow, a dangling symlink and a garbage file, all named *.json.
Prints the names, one a line.
"""

from __future__ import annotations

import os
import socket
import sys

JUNK = ("x.json", "fifo.json", "socket.json", "shadow.json", "dangling.json", "junk.json")


def main(root: str) -> int:
    mine = os.path.join(root, str(os.getuid()))
    if not os.path.isdir(mine):
        os.mkdir(mine, 0o700)
    os.chdir(mine)
    os.mkdir("x.json")
    with open("x.json/inner.json", "w") as inner:
        inner.write("{}\n")
    os.mkfifo("fifo.json")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("socket.json")
    os.symlink("/etc/shadow", "shadow.json")
    os.symlink("nowhere", "dangling.json")
    with open("junk.json", "wb") as junk:
        junk.write(b"\x00not an event\n")
    print("\n".join(JUNK))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
