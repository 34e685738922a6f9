"""Send wire lines to the agent as myself and never read the replies, as a wrapper that gave up.

usage: send_unread.py SOCKET < LINES

Each line read from stdin is sent on its own connection after shutting down its reading side
(as the wrapper does when its time budget is spent): the agent applies the event and finds it
cannot give the reply, so the event stays in doubt until its retry comes. Prints how many.
"""

from __future__ import annotations

import socket
import sys


def main(path: str) -> int:
    count = 0
    for line in sys.stdin.buffer:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(30)
            sock.connect(path)
            sock.shutdown(socket.SHUT_RD)
            sock.sendall(line)
        count += 1
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
