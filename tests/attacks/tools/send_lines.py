"""Send wire lines to the agent as myself, one connection each, and print each reply.

usage: send_lines.py SOCKET < LINES

Each line read from stdin is sent as is on its own connection (as a wrapper does); the reply
line is printed, or `{"no reply": true}` when there was none (refused, closed or reset).
"""

from __future__ import annotations

import socket
import sys

NO_REPLY = b'{"no reply": true}\n'


def send(path: str, line: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        try:
            sock.connect(path)
            sock.sendall(line)
            return sock.makefile("rb").readline() or NO_REPLY
        except OSError:
            return NO_REPLY


def main(path: str) -> int:
    for line in sys.stdin.buffer:
        sys.stdout.buffer.write(send(path, line))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
