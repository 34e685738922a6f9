"""Mail a run's outcome by SMTP or the local sendmail, without ever failing the job.

Standard library only; the wrapper imports this lazily, only when mail is configured.

API (the wrapper's CLI calls these):

    settings = MailSettings(
        to=parse_mail_to("--mail-to value"),        # -> tuple of addresses
        on=parse_mail_on("--mail-on value"),        # "failure" (default) | "always" | "change"
        smtp="HOST[:PORT]" or None,                 # None: pipe to sendmail -t -oi
        starttls=True/False, username=..., password=..., sender=None, ca_file=None,
    )                                               # invalid combinations raise MailConfigError
    previous = read_last_outcome("last-outcome", dir_fd=job_dir_fd)  # True/False/None
    if should_mail(settings, failed, previous):
        problem = send_run_mail(settings, host=..., job=..., state=..., exit_status=...,
                                duration_ms=..., log_path=..., output_tail=...,
                                previous_failed=previous)
        # problem is None (sent) or one line to print as a warning; the job's status is unchanged
    write_last_outcome("last-outcome", failed, dir_fd=job_dir_fd)  # None or one line

Every error message is one line.  The password is never put into a message or a repr.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import smtplib
import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid

MAIL_ON_CHOICES = ("failure", "always", "change")
DEFAULT_SMTP_PORT = 25
DEFAULT_TIMEOUT = 10.0
MAX_TAIL_BYTES = 64 * 1024
SENDMAIL_FALLBACK_DIRS = ("/usr/sbin", "/usr/lib")
STATE_FAILED = "failed\n"
STATE_OK = "ok\n"
MAX_STATE_BYTES = 64


class MailConfigError(ValueError):
    """A mail option value that cannot be used; str() is one line naming the problem."""


def parse_mail_on(value: str) -> str:
    """Validate a --mail-on value: one of MAIL_ON_CHOICES."""
    if value not in MAIL_ON_CHOICES:
        raise MailConfigError(
            f"invalid mail condition {value!r}: expected one of {', '.join(MAIL_ON_CHOICES)}"
        )
    return value


def parse_smtp_address(value: str) -> tuple[str, int]:
    """Split "HOST[:PORT]" (IPv6 as "[ADDR]:PORT") into (host, port); the port defaults to 25."""
    text = value.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise MailConfigError(f"invalid SMTP address {value!r}: expected [ADDR]:PORT")
        port_text = rest[1:] if rest else ""
    elif text.count(":") > 1:
        raise MailConfigError(f"invalid SMTP address {value!r}: put an IPv6 address in brackets")
    else:
        host, _, port_text = text.partition(":")
    if not host or any(c.isspace() for c in host):
        raise MailConfigError(f"invalid SMTP address {value!r}: missing host")
    if not port_text:
        return host, DEFAULT_SMTP_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise MailConfigError(f"invalid SMTP port {port_text!r} in {value!r}: expected 1-65535")
    return host, int(port_text)


def parse_mail_to(value: str) -> tuple[str, ...]:
    """Split a comma-separated list of recipient addresses; each must look like user@domain."""
    if "\n" in value or "\r" in value:
        raise MailConfigError("invalid mail recipients: line breaks are not allowed")
    addresses = tuple(addr for _, addr in getaddresses([value]) if addr)
    if not addresses:
        raise MailConfigError(f"invalid mail recipients {value!r}: no address given")
    for addr in addresses:
        _check_address(addr, "recipient")
    return addresses


def _check_address(addr: str, role: str) -> None:
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or any(c.isspace() or c in "<>,\r\n" for c in addr):
        raise MailConfigError(f"invalid mail {role} {addr!r}: expected user@domain")


@dataclass(frozen=True)
class MailSettings:
    """Where and when to mail a run's outcome; construct it from parsed option values."""

    to: tuple[str, ...]
    on: str = "failure"
    smtp: str | None = None  # "HOST[:PORT]"; None pipes the message to sendmail -t -oi
    starttls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str | None = None  # None: cronwrap@<fqdn>
    ca_file: str | None = None  # extra CA bundle to verify the STARTTLS server against
    sendmail: str = "sendmail"  # a path, or a name looked up on PATH, then /usr/sbin, /usr/lib
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not self.to:
            raise MailConfigError("mail is configured without any recipient")
        for addr in self.to:
            _check_address(addr, "recipient")
        parse_mail_on(self.on)
        if not self.timeout > 0:
            raise MailConfigError("mail timeout must be positive")
        if self.sender is not None:
            _check_address(self.sender, "sender")
        if self.smtp is None:
            if self.starttls or self.username or self.password:
                raise MailConfigError("STARTTLS and SMTP login need an SMTP server (--mail-smtp)")
            return
        parse_smtp_address(self.smtp)
        if (self.username is None) != (self.password is None):
            raise MailConfigError("SMTP login needs both a username and a password")
        if self.username is not None and not self.starttls:
            raise MailConfigError("SMTP login needs STARTTLS (the password would cross in clear)")


def should_mail(settings: MailSettings, failed: bool, previous_failed: bool | None) -> bool:
    """Decide whether this run is mailed; an unknown previous outcome counts as success."""
    if settings.on == "always":
        return True
    if settings.on == "failure":
        return failed
    return failed != bool(previous_failed)


def read_last_outcome(path: str | os.PathLike[str], *, dir_fd: int | None = None) -> bool | None:
    """Return True if the last recorded run failed, False if it succeeded, None if unknown.

    `path` is relative to `dir_fd` when given (e.g. the job's log directory, opened safely).
    A missing, unreadable, oversized or garbled file, or a symlink, reads as unknown.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     dir_fd=dir_fd)
    except OSError:
        return None
    try:
        data = os.read(fd, MAX_STATE_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return {STATE_FAILED.encode(): True, STATE_OK.encode(): False}.get(data)


def write_last_outcome(
    path: str | os.PathLike[str], failed: bool, *, dir_fd: int | None = None
) -> str | None:
    """Record this run's outcome atomically (new file + rename); return None or one line.

    The temporary file is created with O_EXCL|O_NOFOLLOW and renamed over `path`; a symlink
    planted at `path` is replaced, never followed.
    """
    directory, name = os.path.split(os.fspath(path))
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o644, dir_fd=dir_fd)
    except OSError as exc:
        return f"cannot record the last outcome in {path}: {exc.strerror or exc}"
    try:
        with os.fdopen(fd, "w") as out:
            out.write(STATE_FAILED if failed else STATE_OK)
        os.replace(tmp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        return f"cannot record the last outcome in {path}: {exc.strerror or exc}"
    return None


def run_summary(state: str, exit_status: int, previous_failed: bool | None) -> str:
    """The outcome phrase used in subjects: "failed (exit 3)", "ok", "recovered"..."""
    if state == "ok":
        return "recovered" if previous_failed else "ok"
    if state == "timedOut":
        return f"timed out (exit {exit_status})"
    if state == "overlapped":
        return "skipped, previous run still running"
    return f"failed (exit {exit_status})"


def cap_tail(output_tail: str, limit: int = MAX_TAIL_BYTES) -> str:
    """Keep at most `limit` bytes (UTF-8) from the end of the output, saying what was cut."""
    data = output_tail.encode("utf-8", "replace")
    if len(data) <= limit:
        return output_tail
    kept = data[-limit:].decode("utf-8", "ignore")
    return f"[... {len(data) - limit} earlier bytes omitted ...]\n{kept}"


def build_run_message(
    settings: MailSettings,
    *,
    host: str,
    job: str,
    state: str,
    exit_status: int,
    duration_ms: int,
    log_path: str | None,
    output_tail: str,
    previous_failed: bool | None = None,
) -> EmailMessage:
    """Compose the outcome message (no I/O except the sender's default domain lookup)."""
    summary = run_summary(state, exit_status, previous_failed)
    msg = EmailMessage()
    msg["Subject"] = f"[cronwrap] {host}: {job} {summary}"
    msg["From"] = settings.sender or str(Address("cronwrap", addr_spec=default_sender()))
    msg["To"] = ", ".join(settings.to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid("cronwrap")
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Cronwrap-Job"] = job
    lines = [
        f"Job:         {job}",
        f"Host:        {host}",
        f"State:       {state}",
        f"Exit status: {exit_status}",
        f"Duration:    {duration_ms / 1000:.1f} s",
        f"Log:         {log_path or '(none)'}",
        "",
        "Output (tail):" if output_tail else "No output.",
    ]
    body = "\n".join(lines) + "\n"
    if output_tail:
        body += cap_tail(output_tail).rstrip("\n") + "\n"
    msg.set_content(body)
    return msg


def default_sender() -> str:
    return f"cronwrap@{socket.getfqdn()}"


def send_run_mail(
    settings: MailSettings,
    *,
    host: str,
    job: str,
    state: str,
    exit_status: int,
    duration_ms: int,
    log_path: str | None,
    output_tail: str,
    previous_failed: bool | None = None,
) -> str | None:
    """Mail the run's outcome; return None when handed over, else one line saying why not."""
    try:
        msg = build_run_message(
            settings, host=host, job=job, state=state, exit_status=exit_status,
            duration_ms=duration_ms, log_path=log_path, output_tail=output_tail,
            previous_failed=previous_failed,
        )
    except (ValueError, TypeError) as exc:
        return f"mail not sent: cannot build the message: {_one_line(exc)}"
    if settings.smtp is None:
        return _send_with_sendmail(settings, msg)
    return _send_with_smtp(settings, msg)


def _send_with_smtp(settings: MailSettings, msg: EmailMessage) -> str | None:
    assert settings.smtp is not None
    host, port = parse_smtp_address(settings.smtp)
    where = f"{host}:{port}"
    try:
        with smtplib.SMTP(host, port, timeout=settings.timeout) as smtp:
            if settings.starttls:
                context = ssl.create_default_context(cafile=settings.ca_file)
                smtp.starttls(context=context)
            if settings.username is not None and settings.password is not None:
                smtp.login(settings.username, settings.password)
            smtp.send_message(msg, to_addrs=list(settings.to))
    except smtplib.SMTPAuthenticationError as exc:
        return f"mail not sent: SMTP server {where} refused the login ({exc.smtp_code})"
    except smtplib.SMTPNotSupportedError as exc:
        return f"mail not sent: SMTP server {where}: {_one_line(exc)}"
    except smtplib.SMTPResponseException as exc:
        return f"mail not sent: SMTP server {where} answered {exc.smtp_code}: {_reply(exc)}"
    except smtplib.SMTPRecipientsRefused as exc:
        return f"mail not sent: SMTP server {where} refused {', '.join(exc.recipients)}"
    except (smtplib.SMTPException, OSError) as exc:
        return f"mail not sent: SMTP server {where}: {_one_line(exc)}"
    return None


def _send_with_sendmail(settings: MailSettings, msg: EmailMessage) -> str | None:
    program = _find_sendmail(settings.sendmail)
    if program is None:
        return f"mail not sent: no {settings.sendmail} program found (set an SMTP server)"
    try:
        proc = subprocess.run(
            [program, "-t", "-oi"], input=msg.as_bytes(), capture_output=True,
            timeout=settings.timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        return f"mail not sent: {program} did not finish within {settings.timeout:g} s"
    except OSError as exc:
        return f"mail not sent: cannot run {program}: {exc.strerror or exc}"
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = f": {detail[0]}" if detail else ""
        return f"mail not sent: {program} exited {proc.returncode}{why}"
    return None


def _find_sendmail(name: str) -> str | None:
    if os.sep in name:
        return name if os.access(name, os.X_OK) else None
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *SENDMAIL_FALLBACK_DIRS])
    return shutil.which(name, path=search)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return _one_line(text)


def _one_line(obj: object) -> str:
    text = " ".join(str(obj).split())
    return text or type(obj).__name__
