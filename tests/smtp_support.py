"""A real aiosmtpd server for the mail tests: a handler that keeps what it is given."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from aiosmtpd.controller import Controller
from netsnmp import free_port


class Collector:
    """An aiosmtpd handler that keeps every envelope it is given."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def messages(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(
                env.content.replace(b"\r\n", b"\n"), policy=email.policy.default
            )
            for env in self.envelopes
        ]

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages()]


def free_tcp_port() -> int:
    return free_port(socket.SOCK_STREAM)


@contextmanager
def plain_smtp() -> Iterator[tuple[Collector, int]]:
    """A plain aiosmtpd server on 127.0.0.1: (its collector, its port)."""
    handler = Collector()
    port = free_tcp_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()
