"""Run-outcome mail against real aiosmtpd servers (plain; STARTTLS + AUTH) and a real sendmail."""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cronwrap.wrapper.mail import (
    MAX_TAIL_BYTES,
    MailConfigError,
    MailSettings,
    parse_mail_on,
    parse_mail_to,
    parse_smtp_address,
    read_last_outcome,
    send_run_mail,
    should_mail,
    write_last_outcome,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from smtp_support import Collector, free_tcp_port, plain_smtp

pytestmark = pytest.mark.integration

USER, PASSWORD = "cron", "s3cret-pw"


def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def plain_server() -> Iterator[tuple[Collector, int]]:
    with plain_smtp() as server:
        yield server


def make_cert(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Collector, int, Path]]:
    import ssl

    cert, key = make_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = Collector()
    port = free_tcp_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        authenticator=authenticate, auth_required=True,
    )
    controller.start()
    try:
        yield handler, port, cert
    finally:
        controller.stop()


def run_mail(settings: MailSettings, **overrides: object) -> str | None:
    fields: dict = dict(
        host="web1", job="backup", state="failed", exit_status=3, duration_ms=1234,
        log_path="/var/log/cronwrap/0/backup/20261125T010000.log",
        output_tail="rsync: connection unexpectedly closed\nbackup failed\n",
    )
    fields.update(overrides)
    return send_run_mail(settings, **fields)


def test_failure_mail_arrives_with_subject_body_and_tail(plain_server) -> None:
    handler, port = plain_server
    settings = MailSettings(to=("ops@example.org",), smtp=f"127.0.0.1:{port}",
                            sender="cronwrap@web1.example.org")
    assert run_mail(settings) is None
    [msg] = handler.messages()
    assert msg["Subject"] == "[cronwrap] web1: backup failed (exit 3)"
    assert msg["From"] == "cronwrap@web1.example.org"
    assert msg["To"] == "ops@example.org"
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_content()
    assert "Job:         backup" in body
    assert "Host:        web1" in body
    assert "State:       failed" in body
    assert "Exit status: 3" in body
    assert "Duration:    1.2 s" in body
    assert "/var/log/cronwrap/0/backup/20261125T010000.log" in body
    assert body.endswith("rsync: connection unexpectedly closed\nbackup failed\n")
    assert handler.envelopes[0].rcpt_tos == ["ops@example.org"]


def test_ok_and_recovered_subjects_and_default_sender(plain_server) -> None:
    handler, port = plain_server
    settings = MailSettings(to=("a@example.org", "b@example.org"), smtp=f"127.0.0.1:{port}")
    assert run_mail(settings, state="ok", exit_status=0, output_tail="") is None
    assert run_mail(settings, state="ok", exit_status=0, previous_failed=True) is None
    assert run_mail(settings, state="timedOut", exit_status=124) is None
    first, second, third = handler.messages()
    assert first["Subject"] == "[cronwrap] web1: backup ok"
    assert "No output." in first.get_content()
    assert second["Subject"] == "[cronwrap] web1: backup recovered"
    assert third["Subject"] == "[cronwrap] web1: backup timed out (exit 124)"
    assert first["From"] == f"cronwrap <cronwrap@{socket.getfqdn()}>"
    assert sorted(handler.envelopes[0].rcpt_tos) == ["a@example.org", "b@example.org"]


def test_output_tail_is_capped_keeping_the_end(plain_server) -> None:
    handler, port = plain_server
    settings = MailSettings(to=("ops@example.org",), smtp=f"127.0.0.1:{port}")
    output = "".join(f"line {i:06d}\n" for i in range(20000))  # 240000 bytes
    assert run_mail(settings, output_tail=output) is None
    body = handler.messages()[0].get_content()
    assert f"[... {len(output) - MAX_TAIL_BYTES} earlier bytes omitted ...]" in body
    assert body.endswith("line 019999\n")
    assert "line 000000" not in body
    assert len(body.encode()) < MAX_TAIL_BYTES + 1024


def test_starttls_with_login_delivers(tls_server) -> None:
    handler, port, cert = tls_server
    settings = MailSettings(
        to=("ops@example.org",), smtp=f"127.0.0.1:{port}", starttls=True,
        username=USER, password=PASSWORD, ca_file=str(cert),
    )
    assert run_mail(settings) is None
    [msg] = handler.messages()
    assert msg["Subject"] == "[cronwrap] web1: backup failed (exit 3)"


def test_refused_login_is_a_one_line_error(tls_server) -> None:
    handler, port, cert = tls_server
    settings = MailSettings(
        to=("ops@example.org",), smtp=f"127.0.0.1:{port}", starttls=True,
        username=USER, password="wrong", ca_file=str(cert),
    )
    problem = run_mail(settings)
    assert problem is not None and "\n" not in problem
    assert "refused the login (535)" in problem
    assert "wrong" not in problem
    assert handler.envelopes == []


def test_untrusted_certificate_is_an_error(tls_server) -> None:
    handler, port, _cert = tls_server
    settings = MailSettings(
        to=("ops@example.org",), smtp=f"127.0.0.1:{port}", starttls=True,
        username=USER, password=PASSWORD,
    )
    problem = run_mail(settings)
    assert problem is not None and "CERTIFICATE_VERIFY_FAILED" in problem
    assert handler.envelopes == []


def test_server_down_is_an_error_not_an_exception() -> None:
    settings = MailSettings(to=("ops@example.org",), smtp=f"127.0.0.1:{free_tcp_port()}")
    problem = run_mail(settings)
    assert problem is not None and "\n" not in problem
    assert problem.startswith("mail not sent: SMTP server 127.0.0.1:")
    assert "refused" in problem.lower()


def test_silent_server_times_out() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        settings = MailSettings(to=("ops@example.org",), smtp=f"127.0.0.1:{port}", timeout=0.3)
        problem = run_mail(settings)
    assert problem is not None and "timed out" in problem


def write_fake_sendmail(directory: Path, body: str) -> Path:
    directory.mkdir()
    script = directory / "sendmail"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_sendmail_gets_the_message_on_stdin(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    write_fake_sendmail(
        tmp_path / "bin", f'printf "%s\\n" "$@" > {out}.args\ncat > {out}.stdin\n'
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    settings = MailSettings(to=("root@localhost",))
    assert run_mail(settings) is None
    assert (tmp_path / "out.args").read_text() == "-t\n-oi\n"
    msg = email.message_from_bytes((tmp_path / "out.stdin").read_bytes(),
                                   policy=email.policy.default)
    assert msg["To"] == "root@localhost"
    assert msg["Subject"] == "[cronwrap] web1: backup failed (exit 3)"
    assert "backup failed" in msg.get_content()


def test_failing_sendmail_is_a_one_line_error(tmp_path: Path) -> None:
    script = write_fake_sendmail(
        tmp_path / "bin", 'cat >/dev/null\necho "queue full" >&2\nexit 75\n'
    )
    settings = MailSettings(to=("root@localhost",), sendmail=str(script))
    assert run_mail(settings) == f"mail not sent: {script} exited 75: queue full"


def test_missing_sendmail_is_an_error(tmp_path: Path) -> None:
    settings = MailSettings(to=("root@localhost",), sendmail=str(tmp_path / "nope"))
    problem = run_mail(settings)
    assert problem is not None and "no " in problem and "found" in problem


@pytest.mark.parametrize(
    ("on", "failed", "previous", "expected"),
    [
        ("failure", True, None, True),
        ("failure", False, True, False),
        ("always", False, False, True),
        ("always", True, True, True),
        ("change", True, None, True),
        ("change", False, None, False),
        ("change", True, False, True),
        ("change", True, True, False),
        ("change", False, True, True),
        ("change", False, False, False),
    ],
)
def test_should_mail_table(on: str, failed: bool, previous: bool | None, expected: bool) -> None:
    settings = MailSettings(to=("ops@example.org",), on=on)
    assert should_mail(settings, failed, previous) is expected


def test_last_outcome_round_trip_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "backup.last"
    assert read_last_outcome(path) is None
    assert write_last_outcome(path, True) is None
    assert read_last_outcome(path) is True
    assert write_last_outcome(path, False) is None
    assert read_last_outcome(path) is False
    path.write_text("maybe\n")
    assert read_last_outcome(path) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.last"]


def test_last_outcome_ignores_and_replaces_symlinks(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("failed\n")
    link = tmp_path / "backup.last"
    link.symlink_to(target)
    assert read_last_outcome(link) is None
    assert write_last_outcome(link, False) is None
    assert not link.is_symlink()
    assert target.read_text() == "failed\n"


def test_last_outcome_relative_to_a_directory_fd(tmp_path: Path) -> None:
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_last_outcome("last-outcome", dir_fd=dir_fd) is None
        assert write_last_outcome("last-outcome", True, dir_fd=dir_fd) is None
        assert read_last_outcome("last-outcome", dir_fd=dir_fd) is True
    finally:
        os.close(dir_fd)
    assert (tmp_path / "last-outcome").read_text() == "failed\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last-outcome"]


def test_last_outcome_write_error_is_one_line(tmp_path: Path) -> None:
    problem = write_last_outcome(tmp_path / "missing-dir" / "backup.last", True)
    assert problem is not None and "\n" not in problem and "cannot record" in problem


@pytest.mark.parametrize(
    ("value", "expected"),
    [("mail.example.org", ("mail.example.org", 25)), ("mx:587", ("mx", 587)),
     ("[::1]:2525", ("::1", 2525)), ("[::1]", ("::1", 25))],
)
def test_parse_smtp_address(value: str, expected: tuple[str, int]) -> None:
    assert parse_smtp_address(value) == expected


@pytest.mark.parametrize("value", ["", ":25", "mx:0", "mx:99999", "mx:abc", "::1:25", "[::1"])
def test_parse_smtp_address_errors(value: str) -> None:
    with pytest.raises(MailConfigError) as info:
        parse_smtp_address(value)
    assert "\n" not in str(info.value)


def test_option_parsers_and_settings_validation() -> None:
    assert parse_mail_on("change") == "change"
    with pytest.raises(MailConfigError, match="expected one of failure, always, change"):
        parse_mail_on("sometimes")
    assert parse_mail_to("a@x.org, Bob <b@y.org>") == ("a@x.org", "b@y.org")
    for bad in ["", "nobody", "a@x.org\nBcc: evil@z.org"]:
        with pytest.raises(MailConfigError):
            parse_mail_to(bad)
    with pytest.raises(MailConfigError, match="STARTTLS"):
        MailSettings(to=("a@x.org",), smtp="mx", username="u", password="p")
    with pytest.raises(MailConfigError, match="both"):
        MailSettings(to=("a@x.org",), smtp="mx", starttls=True, username="u")
    with pytest.raises(MailConfigError, match="SMTP server"):
        MailSettings(to=("a@x.org",), starttls=True)
    settings = MailSettings(to=("a@x.org",), smtp="mx", starttls=True, username="u",
                            password="hunter2")
    assert "hunter2" not in repr(settings)


def test_header_injection_through_job_is_refused(plain_server) -> None:
    handler, port = plain_server
    settings = MailSettings(to=("ops@example.org",), smtp=f"127.0.0.1:{port}")
    problem = run_mail(settings, job="backup\nBcc: evil@example.org")
    assert problem is not None and problem.startswith("mail not sent: cannot build the message")
    assert handler.envelopes == []
